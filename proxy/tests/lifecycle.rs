//! Guards, shutdown, the proxy's own HTTP answers, and the token-never-leaks contract.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::*;
use signal_proxy::{Effect, MAX_HEAD_BYTES, Proxy, ProxyConfig, ProxyEvent, ProxyEventKind};
use tokio::{io::AsyncWriteExt, net::TcpStream, runtime::Runtime, sync::mpsc::error::TryRecvError};

#[tokio::test]
async fn guard_drop_clears_effect() {
    let upstream = Upstream::start().await;
    let proxy = upstream.proxy().await;
    let mut events = proxy.events();
    let id = {
        let guard = proxy.apply(Effect::RefuseUpgrade { status: 400 }).unwrap();
        assert_eq!(upgrade(proxy.local_addr(), "/rtc").await.1.status, 400);
        guard.id()
    };
    let applied = next_matching(&mut events, |k| {
        matches!(k, ProxyEventKind::EffectApplied { .. })
    })
    .await;
    let cleared = next_matching(&mut events, |k| {
        matches!(k, ProxyEventKind::EffectCleared { .. })
    })
    .await;
    assert!(matches!(applied.kind, ProxyEventKind::EffectApplied { id: i, .. } if i == id));
    assert!(
        matches!(cleared.kind, ProxyEventKind::EffectCleared { id: i, ref effect } if i == id && effect.name() == "ws-refuse-upgrade")
    );
    assert!(cleared.at > applied.at);
    assert_eq!(upgrade(proxy.local_addr(), "/rtc").await.1.status, 101);
}

#[tokio::test]
async fn the_latest_effect_of_a_kind_wins_and_clearing_it_restores_the_previous() {
    let upstream = Upstream::start().await;
    let proxy = upstream.proxy().await;
    let first = proxy.apply(Effect::RefuseUpgrade { status: 503 }).unwrap();
    let second = proxy.apply(Effect::RefuseUpgrade { status: 400 }).unwrap();
    assert_eq!(upgrade(proxy.local_addr(), "/rtc").await.1.status, 400);
    second.clear();
    assert_eq!(upgrade(proxy.local_addr(), "/rtc").await.1.status, 503);
    first.clear();
    assert_eq!(upgrade(proxy.local_addr(), "/rtc").await.1.status, 101);
}

/// Runs the proxy on a runtime of its own, so its task count is the proxy's alone.
fn proxy_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

async fn start_on(rt: &Runtime, upstream: SocketAddr) -> Proxy {
    let config = ProxyConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream,
    };
    rt.spawn(Proxy::start(config)).await.unwrap().unwrap()
}

/// Two upgraded connections and one that never sent its head.
async fn three_clients(proxy: &Proxy) -> [TcpStream; 3] {
    let a = websocket(proxy.local_addr()).await;
    let b = websocket(proxy.local_addr()).await;
    let c = TcpStream::connect(proxy.local_addr()).await.unwrap();
    eventually("three accepted connections", || {
        proxy.stats().connections_active == 3
    })
    .await;
    [a, b, c]
}

#[test]
fn shutdown_leaves_no_task_running() {
    let proxy_rt = proxy_runtime();
    let test_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    test_rt.block_on(async {
        let upstream = Upstream::start().await;
        let proxy = start_on(&proxy_rt, upstream.addr).await;
        let addr = proxy.local_addr();
        let mut clients = three_clients(&proxy).await;
        let mut events = proxy.events();
        // The accept loop and three connection tasks.
        assert_eq!(proxy_rt.metrics().num_alive_tasks(), 4);

        proxy_rt.spawn(proxy.shutdown()).await.unwrap();

        // Every task holds the proxy's shared state, which holds the event senders: the
        // stream is over right when `shutdown` returns only if no task is left.
        assert_eq!(events.try_recv().unwrap_err(), TryRecvError::Disconnected);

        eventually("no task left", || proxy_rt.metrics().num_alive_tasks() == 0).await;
        for client in &mut clients {
            assert_eq!(closed(client).await, Closed::Eof);
        }
        eventually("the upstream side of both to end", || {
            upstream.closed() == 2
        })
        .await;
        let refused = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    });
}

#[test]
fn dropping_the_proxy_aborts_every_task() {
    let proxy_rt = proxy_runtime();
    let test_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    test_rt.block_on(async {
        let upstream = Upstream::start().await;
        let proxy = start_on(&proxy_rt, upstream.addr).await;
        let addr = proxy.local_addr();
        let mut clients = three_clients(&proxy).await;
        assert_eq!(proxy_rt.metrics().num_alive_tasks(), 4);

        drop(proxy);

        eventually("no task left", || proxy_rt.metrics().num_alive_tasks() == 0).await;
        for client in &mut clients {
            closed(client).await;
        }
        assert!(TcpStream::connect(addr).await.is_err());
    });
}

#[tokio::test]
async fn over_long_head_is_answered_431_and_closed() {
    let upstream = Upstream::start().await;
    let proxy = upstream.proxy().await;
    let mut stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let padding = "a".repeat(MAX_HEAD_BYTES);
    let request = format!("GET /rtc HTTP/1.1\r\nX-Pad: {padding}\r\n\r\n");
    // The proxy may answer and close before reading all of it; that is fine.
    let _ = stream.write_all(request.as_bytes()).await;
    let head = within(read_head(&mut stream)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
    assert!(upstream.targets().is_empty());
    // Just under the limit passes.
    let fits = format!("/rtc?pad={}", "a".repeat(MAX_HEAD_BYTES - 300));
    assert_eq!(upgrade(proxy.local_addr(), &fits).await.1.status, 101);
}

#[tokio::test]
async fn unreachable_upstream_is_answered_502_and_reported() {
    let dead = dead_address().await;
    let config = ProxyConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: dead,
    };
    let proxy = Proxy::start(config).await.unwrap();
    let mut events = proxy.events();
    assert_eq!(upgrade(proxy.local_addr(), "/rtc").await.1.status, 502);
    let failed = next_matching(&mut events, |k| {
        matches!(k, ProxyEventKind::ConnectionFailed { .. })
    })
    .await;
    assert_eq!(
        failed.to_string(),
        format!("conn-1 failed: upstream {dead} is unreachable")
    );
}

/// An address nothing listens on (bound, then released).
async fn dead_address() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn query_string_token_never_appears_in_events() {
    let upstream = Upstream::start().await;
    let proxy = upstream.proxy().await;
    let mut events = proxy.events();
    let addr = proxy.local_addr();
    let with_token = format!("/rtc?access_token={TOKEN}&protocol=17");

    // Opened, closed, cut by drop.
    let mut ws = websocket(addr).await;
    drop(websocket(addr).await);
    eventually("the closed one to end", || {
        proxy.stats().connections_active == 1
    })
    .await;
    let drop_guard = proxy.apply(Effect::Drop).unwrap();
    closed(&mut ws).await;
    // Opened through a stripped prefix.
    let strip = proxy
        .apply(Effect::PathPrefix {
            prefix: "/livekit".into(),
            strip: true,
        })
        .unwrap();
    let (mut ws, answer) = upgrade(addr, &format!("/livekit{with_token}")).await;
    assert_eq!(answer.status, 101);
    // Cut by idle timeout.
    let idle = proxy
        .apply(Effect::IdleTimeout {
            idle: Duration::from_millis(20),
        })
        .unwrap();
    closed(&mut ws).await;
    // Refused.
    let refuse = proxy.apply(Effect::RefuseUpgrade { status: 502 }).unwrap();
    assert_eq!(upgrade(addr, &with_token).await.1.status, 502);
    // Malformed and over-long heads that carry the token.
    for request in [
        format!("GET {with_token} HTTP/9.9\r\n\r\n"),
        format!(
            "GET {with_token}{} HTTP/1.1\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        ),
    ] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let _ = stream.write_all(request.as_bytes()).await;
        let head = within(read_head(&mut stream)).await.unwrap();
        assert!(head.starts_with("HTTP/1.1 4"), "{head}");
    }
    for guard in [drop_guard, strip, idle, refuse] {
        guard.clear();
    }
    // An unreachable upstream.
    let config = ProxyConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: dead_address().await,
    };
    let orphan = Proxy::start(config).await.unwrap();
    let mut orphan_events = orphan.events();
    assert_eq!(
        upgrade(orphan.local_addr(), &with_token).await.1.status,
        502
    );
    let orphan_failed = next_matching(&mut orphan_events, |k| {
        matches!(k, ProxyEventKind::ConnectionFailed { .. })
    })
    .await;
    eventually("the last failure to be reported", || {
        proxy.stats().connections_active == 0
    })
    .await;

    let mut all: Vec<ProxyEvent> = drain(&mut events);
    all.push(orphan_failed);
    all.extend(drain(&mut orphan_events));
    // The token did pass through (so its absence below means something)...
    assert!(upstream.targets().iter().any(|t| t.contains(TOKEN)));
    // ...and every kind of event that names a connection was produced.
    let count =
        |wanted: fn(&ProxyEventKind) -> bool| all.iter().filter(|e| wanted(&e.kind)).count();
    assert!(count(|k| matches!(k, ProxyEventKind::ConnectionOpened { .. })) >= 3);
    assert!(count(|k| matches!(k, ProxyEventKind::ConnectionClosed { .. })) >= 1);
    assert_eq!(
        count(|k| matches!(k, ProxyEventKind::ConnectionCut { .. })),
        2
    );
    assert_eq!(
        count(|k| matches!(k, ProxyEventKind::UpgradeRefused { .. })),
        1
    );
    assert_eq!(
        count(|k| matches!(k, ProxyEventKind::ConnectionFailed { .. })),
        3
    );
    for event in &all {
        let mut texts = vec![format!("{event:?}"), event.to_string()];
        if let ProxyEventKind::ConnectionFailed { error, .. } = &event.kind {
            let mut source: Option<&dyn std::error::Error> = Some(&**error);
            while let Some(error) = source {
                texts.push(error.to_string());
                source = error.source();
            }
        }
        for text in texts {
            assert!(
                !text.contains(TOKEN) && !text.contains("SECRET"),
                "token leaked: {text}"
            );
        }
    }
}
