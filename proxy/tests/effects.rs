//! One test per effect, against real sockets on 127.0.0.1: each shows the behaviour
//! before the effect (so the check can fail) and under it.

mod common;

use std::time::Duration;

use common::*;
use signal_proxy::{CutReason, Effect, ProxyEventKind};
use tokio::{io::AsyncWriteExt, net::TcpStream};

#[tokio::test]
async fn drop_cuts_live_connections_and_new_ones_still_work() {
    let upstream = Upstream::start().await;
    let proxy = upstream.proxy().await;
    let mut events = proxy.events();
    let mut a = websocket(proxy.local_addr()).await;
    let mut b = websocket(proxy.local_addr()).await;
    assert_eq!(upstream.closed(), 0);

    let guard = proxy.apply(Effect::Drop).unwrap();

    assert_eq!(closed(&mut a).await, Closed::Reset);
    assert_eq!(closed(&mut b).await, Closed::Reset);
    eventually("the upstream side of both to end", || {
        upstream.closed() == 2
    })
    .await;
    let applied = next_matching(&mut events, |k| {
        matches!(k, ProxyEventKind::EffectApplied { .. })
    })
    .await;
    for _ in 0..2 {
        let cut = next_matching(&mut events, |k| {
            matches!(k, ProxyEventKind::ConnectionCut { .. })
        })
        .await;
        assert!(matches!(
            cut.kind,
            ProxyEventKind::ConnectionCut {
                reason: CutReason::Drop,
                ..
            }
        ));
        assert!(cut.at >= applied.at);
    }

    let mut c = websocket(proxy.local_addr()).await;
    echo(&mut c, b"after the drop").await;
    assert_eq!(proxy.stats().connections_cut, 2);

    // Instantaneous: clearing has nothing to undo and reports nothing.
    guard.clear();
    echo(&mut c, b"still").await;
    let later = drain(&mut events);
    assert!(
        !later
            .iter()
            .any(|e| matches!(e.kind, ProxyEventKind::EffectCleared { .. })),
        "{later:?}"
    );
}

#[tokio::test]
async fn refuse_upgrade_answers_502_and_spares_live_connections() {
    let upstream = Upstream::start().await;
    let proxy = upstream.proxy().await;
    let mut events = proxy.events();
    let mut live = websocket(proxy.local_addr()).await;
    let seen_before = upstream.targets().len();

    let guard = proxy.apply(Effect::RefuseUpgrade { status: 502 }).unwrap();

    let (_refused, answer) = upgrade(proxy.local_addr(), "/rtc?protocol=17").await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert!(answer.body.contains("refused"), "{answer:?}");
    assert_eq!(
        upstream.targets().len(),
        seen_before,
        "a refused upgrade must not reach upstream"
    );
    let refused = next_matching(&mut events, |k| {
        matches!(k, ProxyEventKind::UpgradeRefused { .. })
    })
    .await;
    assert!(matches!(
        refused.kind,
        ProxyEventKind::UpgradeRefused { status: 502, .. }
    ));
    echo(&mut live, b"live connection untouched").await;
    // Plain requests (LiveKit's /rtc/validate) are not upgrades and pass.
    assert_eq!(get(proxy.local_addr(), "/rtc/validate").await.status, 200);

    guard.clear();
    let mut again = websocket(proxy.local_addr()).await;
    echo(&mut again, b"upgrades work again").await;
    let stats = proxy.stats();
    assert_eq!((stats.upgrades_seen, stats.upgrades_refused), (3, 1));
}

#[tokio::test]
async fn upgrade_answered_200_without_upgrade_headers() {
    let upstream = Upstream::start().await;
    let proxy = upstream.proxy().await;
    let (_ok, answer) = upgrade(proxy.local_addr(), "/rtc").await;
    assert_eq!(answer.status, 101);
    assert!(header(&answer.head, "upgrade").is_some());

    let _guard = proxy.apply(Effect::RefuseUpgrade { status: 200 }).unwrap();

    let (mut stream, answer) = upgrade(proxy.local_addr(), "/rtc").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.head.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
    assert_eq!(header(&answer.head, "upgrade"), None);
    assert_eq!(header(&answer.head, "sec-websocket-accept"), None);
    assert!(answer.body.contains("<!doctype html>"), "{answer:?}");
    assert_eq!(closed(&mut stream).await, Closed::Eof);
}

#[tokio::test]
async fn stall_forwards_nothing_until_cleared_then_resumes() {
    let upstream = Upstream::start().await;
    let proxy = upstream.proxy().await;
    let mut live = websocket(proxy.local_addr()).await;
    let discarded = || proxy.stats().bytes_discarded;
    assert_eq!(discarded(), 0);

    let stall = proxy.apply(Effect::Stall).unwrap();

    // Both directions are swallowed.
    live.write_all(b"lost-up").await.unwrap();
    eventually("client bytes to be discarded", || discarded() == 7).await;
    upstream.push(b"lost-down");
    eventually("upstream bytes to be discarded", || discarded() == 16).await;
    // A newcomer is accepted and read, but its request never reaches upstream.
    let seen_before = upstream.targets().len();
    let mut newcomer = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let request = b"GET /rtc HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    newcomer.write_all(request).await.unwrap();
    eventually("the newcomer's request to be discarded", || {
        discarded() == 16 + request.len() as u64
    })
    .await;

    stall.clear();

    // The first bytes after the stall are new ones: nothing read during it was kept.
    echo(&mut live, b"after").await;
    upstream.push(b"pushed");
    assert_eq!(read_n(&mut live, 6).await, b"pushed");
    // The newcomer's request was lost with the stall; its socket stays open, still a hole.
    newcomer.write_all(b"more").await.unwrap();
    eventually("the newcomer to stay a black hole", || {
        discarded() == 20 + request.len() as u64
    })
    .await;
    assert_eq!(upstream.targets().len(), seen_before);
}

#[tokio::test]
async fn idle_timeout_closes_quiet_connections_only() {
    let upstream = Upstream::start().await;
    let proxy = upstream.proxy().await;
    let mut events = proxy.events();
    let idle = Duration::from_millis(400);
    let talk_every = Duration::from_millis(40);
    let mut quiet = websocket(proxy.local_addr()).await;
    let mut busy = websocket(proxy.local_addr()).await;

    let _guard = proxy.apply(Effect::IdleTimeout { idle }).unwrap();
    let applied = next_matching(&mut events, |k| {
        matches!(k, ProxyEventKind::EffectApplied { .. })
    })
    .await;

    let keep_talking = async {
        loop {
            echo(&mut busy, b"ping").await;
            tokio::time::sleep(talk_every).await;
        }
    };
    tokio::select! {
        end = closed(&mut quiet) => assert_eq!(end, Closed::Eof),
        () = keep_talking => unreachable!(),
    }
    let cut = next_matching(&mut events, |k| {
        matches!(k, ProxyEventKind::ConnectionCut { .. })
    })
    .await;
    assert!(matches!(
        cut.kind,
        ProxyEventKind::ConnectionCut {
            reason: CutReason::IdleTimeout,
            ..
        }
    ));
    assert!(
        cut.at - applied.at >= idle,
        "cut after {:?}",
        cut.at - applied.at
    );

    // The busy one outlives two more idle periods while it keeps talking.
    let until = tokio::time::Instant::now() + 2 * idle;
    while tokio::time::Instant::now() < until {
        echo(&mut busy, b"ping").await;
        tokio::time::sleep(talk_every).await;
    }
    assert_eq!(proxy.stats().connections_cut, 1);
}

#[tokio::test]
async fn unstripped_prefix_reaches_upstream_as_404_and_strip_fixes_it() {
    let upstream = Upstream::start().await;
    let proxy = upstream.proxy().await;
    let mut events = proxy.events();
    let target = "/livekit/rtc?access_token=t&protocol=17";
    let (_, answer) = upgrade(proxy.local_addr(), target).await;
    assert_eq!(answer.status, 404, "no rule: forwarded unchanged");
    assert_eq!(upstream.targets().last().unwrap(), target);

    let _fixed = proxy
        .apply(Effect::PathPrefix {
            prefix: "/livekit".into(),
            strip: true,
        })
        .unwrap();
    let (mut stream, answer) = upgrade(proxy.local_addr(), target).await;
    assert_eq!(answer.status, 101, "{answer:?}");
    assert_eq!(
        upstream.targets().last().unwrap(),
        "/rtc?access_token=t&protocol=17"
    );
    echo(&mut stream, b"through the stripped path").await;
    let opened: Vec<_> = drain(&mut events)
        .into_iter()
        .filter_map(|e| match e.kind {
            ProxyEventKind::ConnectionOpened {
                path,
                upstream_path,
                ..
            } => Some((path, upstream_path)),
            _ => None,
        })
        .collect();
    let expected = [("/livekit/rtc", "/livekit/rtc"), ("/livekit/rtc", "/rtc")];
    assert_eq!(opened, expected.map(|(p, u)| (p.to_owned(), u.to_owned())));

    let broken = proxy
        .apply(Effect::PathPrefix {
            prefix: "/livekit".into(),
            strip: false,
        })
        .unwrap();
    let (_, answer) = upgrade(proxy.local_addr(), target).await;
    assert_eq!(
        answer.status, 404,
        "the fault on top of the baseline breaks it"
    );
    assert_eq!(upstream.targets().last().unwrap(), target);
    echo(&mut stream, b"open connections keep their path").await;

    broken.clear();
    let (_, answer) = upgrade(proxy.local_addr(), target).await;
    assert_eq!(
        answer.status, 101,
        "clearing the fault restores the baseline"
    );
}
