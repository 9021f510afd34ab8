//! Events: every effect switch and every connection fact, stamped with the instant it
//! happened.
//!
//! Contract: an effect's `EffectApplied` is emitted before any connection can act on the
//! effect (so a `ConnectionCut` never precedes the `Drop` that caused it), and its `at` is
//! taken immediately before the state flip that puts it in force. Paths are reported
//! without their query: the query carries the access token and never leaves the proxy
//! except towards the upstream.

use std::{fmt, sync::Arc, time::Instant};

use crate::{Effect, ProxyError};

/// Identifies one accepted client connection, in accept order from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn-{}", self.0)
    }
}

/// Identifies one `apply`, in apply order from 1; pairs `EffectApplied` with `EffectCleared`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EffectId(pub u64);

impl fmt::Display for EffectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "effect-{}", self.0)
    }
}

/// Why the proxy cut a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutReason {
    /// `Effect::Drop`: both sockets reset.
    Drop,
    /// `Effect::IdleTimeout`: both sockets closed after the idle time.
    IdleTimeout,
}

/// One observable fact and the instant it happened.
#[derive(Clone, Debug)]
pub struct ProxyEvent {
    pub at: Instant,
    pub kind: ProxyEventKind,
}

/// What happened.
#[derive(Clone, Debug)]
pub enum ProxyEventKind {
    /// The effect is in force from `at` on (for `Drop`: the cut was ordered at `at`).
    EffectApplied { id: EffectId, effect: Effect },
    /// The effect is no longer in force from `at` on. Never emitted for `Drop`.
    EffectCleared { id: EffectId, effect: Effect },
    /// A request head was read and forwarded; from now on bytes are pumped.
    ConnectionOpened {
        conn: ConnId,
        /// The request path as the client sent it, without query.
        path: String,
        /// The path forwarded upstream (differs when a prefix was stripped), without query.
        upstream_path: String,
        /// Whether the request asked for a WebSocket upgrade.
        upgrade: bool,
    },
    /// An upgrade request was answered by the proxy with `status` and closed.
    UpgradeRefused { conn: ConnId, status: u16 },
    /// The proxy cut a live connection because of an effect.
    ConnectionCut { conn: ConnId, reason: CutReason },
    /// A connection ended on its own: a peer closed it or an I/O error ended it.
    ConnectionClosed { conn: ConnId },
    /// A connection could not be served; the client got an HTTP error answer.
    ConnectionFailed {
        conn: ConnId,
        error: Arc<ProxyError>,
    },
}

impl fmt::Display for ProxyEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EffectApplied { id, effect } => write!(f, "{id} {} applied", effect.name()),
            Self::EffectCleared { id, effect } => write!(f, "{id} {} cleared", effect.name()),
            Self::ConnectionOpened {
                conn,
                path,
                upstream_path,
                upgrade,
            } => {
                let kind = if *upgrade { "upgrade" } else { "request" };
                write!(
                    f,
                    "{conn} opened: {kind} {path} forwarded as {upstream_path}"
                )
            }
            Self::UpgradeRefused { conn, status } => {
                write!(f, "{conn} upgrade refused with {status}")
            }
            Self::ConnectionCut { conn, reason } => {
                let why = match reason {
                    CutReason::Drop => "ws-drop",
                    CutReason::IdleTimeout => "ws-idle-timeout",
                };
                write!(f, "{conn} cut by {why}")
            }
            Self::ConnectionClosed { conn } => write!(f, "{conn} closed"),
            Self::ConnectionFailed { conn, error } => write!(f, "{conn} failed: {error}"),
        }
    }
}

impl fmt::Display for ProxyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}
