//! Counters the connection tasks bump, and the snapshot callers read.
//!
//! Counters are independent relaxed atomics: a snapshot is not one consistent instant
//! across fields, but each field is exact once the traffic it counts has settled.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of the proxy's counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Client connections accepted.
    pub connections_accepted: u64,
    /// Client connections whose task is still running.
    pub connections_active: u64,
    /// Requests that asked for a WebSocket upgrade (refused ones included).
    pub upgrades_seen: u64,
    /// Upgrade requests the proxy answered itself (`RefuseUpgrade`).
    pub upgrades_refused: u64,
    /// Bytes written to the upstream (request heads included, as forwarded).
    pub bytes_to_upstream: u64,
    /// Bytes written to clients from the upstream.
    pub bytes_to_client: u64,
    /// Bytes read and thrown away by a stall, in either direction.
    pub bytes_discarded: u64,
    /// Connections cut by `Drop` or `IdleTimeout`.
    pub connections_cut: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub accepted: AtomicU64,
    active: AtomicU64,
    pub upgrades_seen: AtomicU64,
    pub upgrades_refused: AtomicU64,
    pub to_upstream: AtomicU64,
    pub to_client: AtomicU64,
    pub discarded: AtomicU64,
    pub cut: AtomicU64,
}

/// Counts a connection as active for as long as it lives, however its task ends
/// (including abort, which drops the task's future).
pub(crate) struct ActiveGuard<'a>(&'a Counters);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Relaxed);
}

impl Counters {
    pub fn track_active(&self) -> ActiveGuard<'_> {
        self.active.fetch_add(1, Relaxed);
        ActiveGuard(self)
    }

    pub fn snapshot(&self) -> ProxyStats {
        ProxyStats {
            connections_accepted: self.accepted.load(Relaxed),
            connections_active: self.active.load(Relaxed),
            upgrades_seen: self.upgrades_seen.load(Relaxed),
            upgrades_refused: self.upgrades_refused.load(Relaxed),
            bytes_to_upstream: self.to_upstream.load(Relaxed),
            bytes_to_client: self.to_client.load(Relaxed),
            bytes_discarded: self.discarded.load(Relaxed),
            connections_cut: self.cut.load(Relaxed),
        }
    }
}
