//! The proxy's one error type.
//!
//! Contract: no message ever quotes request content. A request target carries the access
//! token in its query (`access_token=...`), so errors about a request head name the
//! problem, never the bytes that caused it.

use std::{io, net::SocketAddr, time::Duration};

/// Everything that can go wrong in the proxy: starting it, validating an effect, or serving
/// one connection (the latter reach the caller as [`crate::ProxyEventKind::ConnectionFailed`]).
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The listening socket could not be bound (or its address read back).
    #[error("proxy listener cannot bind to {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// `RefuseUpgrade` with a status that is not a final HTTP status.
    #[error("refuse-upgrade status must be in 200..=599, but is {status}")]
    InvalidStatus { status: u16 },
    /// `PathPrefix` with a prefix that cannot match a path segment boundary.
    #[error("path prefix must {rule}, but is {prefix:?}")]
    InvalidPrefix { prefix: String, rule: &'static str },
    /// `IdleTimeout` of zero would cut every connection at once; that is `Drop`.
    #[error("idle timeout must be greater than 0s, but is {idle:?}")]
    InvalidIdle { idle: Duration },
    /// The request head did not end within the limit; answered with 431.
    #[error("request head must end within {limit} bytes, but does not")]
    HeadTooLarge { limit: usize },
    /// The request head is not HTTP/1.x as the proxy understands it; answered with 400.
    #[error("request head is malformed: {problem}")]
    MalformedHead { problem: &'static str },
    /// The upstream refused or failed the TCP connect; answered with 502.
    #[error("upstream {upstream} is unreachable")]
    UpstreamConnect {
        upstream: SocketAddr,
        #[source]
        source: io::Error,
    },
}
