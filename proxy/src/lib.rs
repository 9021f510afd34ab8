//! A WebSocket-aware TCP fault proxy for the SFU's signal path.
//!
//! Bots connect to the proxy instead of the SFU's signal port; the proxy reads the HTTP
//! request head of each connection (enough to see the path and whether it asks for a
//! WebSocket upgrade), connects to the upstream, forwards the head (maybe with a rewritten
//! path) and then pumps bytes both ways. Faults ([`Effect`]) are switched at runtime and
//! act on live and new connections: reset them, refuse upgrades, black-hole them, close
//! idle ones, mis-route their path. This is the signal-path half of the harness's fault
//! catalogue (`ws-drop`, `ws-refuse-upgrade`, `ws-stall`, `ws-idle-timeout`,
//! `path-prefix`); the network half lives in namespaces and nftables.
//!
//! Contract:
//! - [`Proxy::apply`] puts an effect in force before it returns (a state flip that wakes
//!   the connection tasks; no polling), and every switch is an event with its instant
//!   ([`Proxy::events`]). Effects come with a `#[must_use]` [`EffectGuard`]: dropping it
//!   clears the effect.
//! - The query of a request (it carries the `access_token`) is forwarded upstream and
//!   nowhere else: no event, error or `Debug` output contains it.
//! - Nothing the proxy spawns outlives it: [`Proxy::shutdown`] closes every connection and
//!   returns when every task has ended; dropping the [`Proxy`] aborts them all.
//!
//! Why its own proxy rather than toxiproxy or nginx: faults must be switched at a known
//! instant from the harness's own clock and reported as events, and they are WebSocket
//! specific (a refused upgrade, a 200 without upgrade, a path prefix), which a plain TCP
//! proxy cannot express. A real nginx is still used where a scenario asks for realism.

mod conn;
mod effects;
mod error;
mod event;
mod http_head;
mod shared;
mod stats;

use std::{fmt, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
    task::{JoinHandle, JoinSet},
};

use crate::shared::{Shared, State};
pub use crate::{
    effects::Effect,
    error::ProxyError,
    event::{ConnId, CutReason, EffectId, ProxyEvent, ProxyEventKind},
    http_head::MAX_HEAD_BYTES,
    shared::EffectGuard,
    stats::ProxyStats,
};

/// Where the proxy listens and where it forwards to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Listening address; port 0 picks an ephemeral port (read it with
    /// [`Proxy::local_addr`]).
    pub listen: SocketAddr,
    /// The SFU's signal address.
    pub upstream: SocketAddr,
}

/// A running proxy. Dropping it without [`Proxy::shutdown`] aborts every task it spawned.
pub struct Proxy {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Binds the listener and spawns the accept loop on the current tokio runtime.
    pub async fn start(config: ProxyConfig) -> Result<Proxy, ProxyError> {
        let bind_error = |source| ProxyError::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let shared = Arc::new(Shared::new(config.upstream));
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), shared.watch_state()));
        Ok(Proxy {
            shared,
            local_addr,
            accept: Some(accept),
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Puts `effect` in force now (see [`Effect`] for each kind's semantics and how
    /// effects combine) and emits `EffectApplied`. Fails only on invalid parameters.
    pub fn apply(&self, effect: Effect) -> Result<EffectGuard, ProxyError> {
        self.shared.apply(effect)
    }

    /// A new receiver of every event emitted from now on. Each call gets its own stream;
    /// a dropped receiver is forgotten at the next event. Streams end when the proxy has
    /// stopped and every task is gone (guards do not keep it alive).
    pub fn events(&self) -> mpsc::UnboundedReceiver<ProxyEvent> {
        self.shared.subscribe()
    }

    /// The counters since start.
    pub fn stats(&self) -> ProxyStats {
        self.shared.counters.snapshot()
    }

    /// Stops accepting, closes every connection (plain close, both sides), and returns when
    /// every task the proxy spawned has ended. Effects still applied just stop mattering.
    pub async fn shutdown(mut self) {
        self.shared.begin_shutdown();
        if let Some(accept) = self.accept.take() {
            // A panic in the accept loop has already ended it; there is nothing to undo.
            let _ = accept.await;
        }
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("local_addr", &self.local_addr)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            self.shared.begin_shutdown();
            // Aborting drops the loop's JoinSet, which aborts every connection task.
            accept.abort();
        }
    }
}

/// Pause after a failed accept; bounds the loop's CPU use while file descriptors run out.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// Accepts until shutdown, then waits for every connection task. Owning the tasks in a
/// `JoinSet` is what makes an abort of this loop reach them too.
async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut state: watch::Receiver<State>,
) {
    let mut conns = JoinSet::new();
    let mut last_conn = 0;
    loop {
        if state.borrow_and_update().shutdown {
            break;
        }
        tokio::select! {
            accepted = listener.accept() => {
                // Accept errors are per connection (reset before accept) or resource
                // exhaustion (EMFILE); keep serving the others, without spinning on the
                // latter.
                let Ok((client, _)) = accepted else {
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                };
                let _ = client.set_nodelay(true);
                last_conn += 1;
                stats::add(&shared.counters.accepted, 1);
                conns.spawn(conn::run(shared.clone(), ConnId(last_conn), client));
            }
            // Reap finished connections so the set does not grow for the proxy's life.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            changed = state.changed() => if changed.is_err() { break },
        }
    }
    std::mem::drop(listener);
    while conns.join_next().await.is_some() {}
}
