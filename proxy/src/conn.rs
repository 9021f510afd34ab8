//! One client connection, from accept to close.
//!
//! Shape: two futures race. `serve` does the work (read the request head, maybe refuse,
//! connect upstream, forward the head, pump bytes both ways); `control` watches the
//! shared state and the idle clock and wins the race when the connection must end
//! (drop, idle timeout, shutdown). Losing the race drops `serve` wherever it is, even in
//! the middle of a blocked write, so a cut never waits for a slow peer. The sockets live
//! outside both futures, so after the race the winner's verdict decides how they close.
//!
//! Pumps copy with their own read/write loops (not `tokio::io::copy`) because each read
//! must consult the stall and each write must move the idle clock. A peer's FIN is passed
//! on as a write shutdown (half-close); an I/O error on either side ends the connection.

use std::{io, sync::Arc, sync::atomic::AtomicU64};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
    sync::watch,
    time::Instant,
};

use crate::{
    ConnId, CutReason, ProxyError, ProxyEventKind,
    effects::{drop, idle_timeout::Activity, path_prefix, refuse_upgrade, stall},
    http_head,
    shared::{Shared, State},
    stats,
};

/// How a connection ended; decides how its sockets close and what is reported.
enum End {
    /// A peer closed or failed, or the connection was black-holed until its client left.
    Closed {
        report: bool,
    },
    /// The proxy answered the request itself (refusal, error answer).
    Answered {
        failure: Option<ProxyError>,
    },
    Cut(CutReason),
    Shutdown,
}

pub(crate) async fn run(shared: Arc<Shared>, conn: ConnId, mut client: TcpStream) {
    let _active = shared.counters.track_active();
    let mut control_rx = shared.watch_state();
    let (epoch, stalled_at_accept) = {
        let state = control_rx.borrow_and_update();
        (state.drop_epoch, state.stall)
    };
    let state_rx = control_rx.clone();
    let activity = Activity::new();
    let mut upstream = None;

    let end = tokio::select! {
        end = control(&mut control_rx, epoch, &activity) => end,
        end = serve(&shared, conn, &mut client, &mut upstream, &state_rx, &activity, stalled_at_accept) => end,
    };

    if let End::Cut(CutReason::Drop) = end {
        drop::arm_reset(&client);
        if let Some(upstream) = &upstream {
            drop::arm_reset(upstream);
        }
    }
    std::mem::drop((client, upstream));

    match end {
        End::Closed { report: true } => shared.emit_now(ProxyEventKind::ConnectionClosed { conn }),
        End::Answered {
            failure: Some(error),
        } => {
            let error = Arc::new(error);
            shared.emit_now(ProxyEventKind::ConnectionFailed { conn, error });
        }
        End::Cut(reason) => {
            stats::add(&shared.counters.cut, 1);
            shared.emit_now(ProxyEventKind::ConnectionCut { conn, reason });
        }
        End::Closed { report: false } | End::Answered { failure: None } | End::Shutdown => {}
    }
}

/// Ends only when the connection must be ended from outside.
async fn control(rx: &mut watch::Receiver<State>, epoch: u64, activity: &Activity) -> End {
    loop {
        let deadline = {
            let state = rx.borrow_and_update();
            if state.shutdown {
                return End::Shutdown;
            }
            if state.drop_epoch != epoch {
                return End::Cut(CutReason::Drop);
            }
            state.idle.map(|rule| rule.deadline(activity.last()))
        };
        match deadline {
            Some(deadline) if deadline <= Instant::now() => {
                return End::Cut(CutReason::IdleTimeout);
            }
            // Wakes at the deadline, then re-checks: traffic may have moved it.
            Some(deadline) => tokio::select! {
                changed = rx.changed() => if changed.is_err() { return End::Shutdown },
                () = tokio::time::sleep_until(deadline) => {}
            },
            None => {
                if rx.changed().await.is_err() {
                    return End::Shutdown;
                }
            }
        }
    }
}

async fn serve(
    shared: &Shared,
    conn: ConnId,
    client: &mut TcpStream,
    upstream_slot: &mut Option<TcpStream>,
    state: &watch::Receiver<State>,
    activity: &Activity,
    stalled_at_accept: bool,
) -> End {
    let counters = &shared.counters;
    if stalled_at_accept {
        stall::black_hole(client, &counters.discarded).await;
        return End::Closed { report: false };
    }

    let received = match http_head::read(client, http_head::MAX_HEAD_BYTES).await {
        Ok(Some(received)) => received,
        Ok(None) => return End::Closed { report: false },
        Err(error) => {
            let status = if matches!(error, ProxyError::HeadTooLarge { .. }) {
                431
            } else {
                400
            };
            answer(
                client,
                &http_head::response(status, "text/plain", "bad request\n"),
            )
            .await;
            return End::Answered {
                failure: Some(error),
            };
        }
    };
    let head = &received.head;
    let head_bytes = received.head_len + received.leftover.len();

    let (stalled, refuse, upstream_path) = {
        let state = state.borrow();
        let path = path_prefix::rewrite(&state.prefixes, head.path()).into_owned();
        (state.stall, state.refuse, path)
    };
    if stalled {
        // The stall began while the head was on its way: it is lost like everything else.
        stats::add(&counters.discarded, head_bytes);
        stall::black_hole(client, &counters.discarded).await;
        return End::Closed { report: false };
    }
    if head.upgrade {
        stats::add(&counters.upgrades_seen, 1);
        if let Some(status) = refuse {
            answer(client, &refuse_upgrade::response(status)).await;
            stats::add(&counters.upgrades_refused, 1);
            shared.emit_now(ProxyEventKind::UpgradeRefused { conn, status });
            return End::Answered { failure: None };
        }
    }

    let stream = match TcpStream::connect(shared.upstream).await {
        Ok(stream) => stream,
        Err(source) => {
            let body = "upstream unreachable\n";
            answer(client, &http_head::response(502, "text/plain", body)).await;
            let failure = ProxyError::UpstreamConnect {
                upstream: shared.upstream,
                source,
            };
            return End::Answered {
                failure: Some(failure),
            };
        }
    };
    if state.borrow().stall {
        // Same as above, for a stall that began during the connect.
        std::mem::drop(stream);
        stats::add(&counters.discarded, head_bytes);
        stall::black_hole(client, &counters.discarded).await;
        return End::Closed { report: false };
    }
    // Signal messages are small and latency-bound; Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    let upstream = upstream_slot.insert(stream);

    let mut first = head.forward(&upstream_path);
    first.extend_from_slice(&received.leftover);
    if upstream.write_all(&first).await.is_err() {
        return End::Closed { report: true };
    }
    stats::add(&counters.to_upstream, first.len());
    activity.touch();
    shared.emit_now(ProxyEventKind::ConnectionOpened {
        conn,
        path: head.path().to_owned(),
        upstream_path,
        upgrade: head.upgrade,
    });

    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let to_upstream = pump(
        client_read,
        upstream_write,
        state,
        activity,
        &counters.to_upstream,
        &counters.discarded,
    );
    let to_client = pump(
        upstream_read,
        client_write,
        state,
        activity,
        &counters.to_client,
        &counters.discarded,
    );
    // Either way the connection is over; an error is how peers usually leave.
    let _ = tokio::try_join!(to_upstream, to_client);
    End::Closed { report: true }
}

/// Writes the proxy's own answer and half-closes; the caller then closes the socket.
async fn answer(client: &mut TcpStream, response: &[u8]) {
    if client.write_all(response).await.is_ok() {
        let _ = client.shutdown().await;
    }
}

/// Copies one direction until EOF (passed on as a write shutdown) or an I/O error.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    state: &watch::Receiver<State>,
    activity: &Activity,
    forwarded: &AtomicU64,
    discarded: &AtomicU64,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        // Checked per read: bytes read after a stall was published are lost, bytes read
        // after it was cleared flow again.
        if state.borrow().stall {
            stats::add(discarded, n);
            continue;
        }
        to.write_all(&buf[..n]).await?;
        stats::add(forwarded, n);
        activity.touch();
    }
}
