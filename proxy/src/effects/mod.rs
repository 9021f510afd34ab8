//! The faults the proxy can put on the signal path, one file per kind.
//!
//! Each file holds the kind's validation and the piece of connection behaviour it
//! changes; [`crate::shared`] composes the effects in force into one state that every
//! connection task watches. Composition rules (several effects may be in force at once):
//! - `Drop` is instantaneous: it bumps an epoch; every connection accepted before the bump
//!   is reset. Nothing stays in force.
//! - `Stall`: in force while any `Stall` is applied.
//! - `RefuseUpgrade`, `IdleTimeout`: the latest applied one of the kind wins; clearing it
//!   reinstates the previous one still applied.
//! - `PathPrefix`: per prefix, the latest applied rule wins; for a path, the longest
//!   matching prefix decides. So a baseline `strip: true` with a fault `strip: false`
//!   applied on top shows the broken deployment, and clearing the fault fixes it again.
//! - A stall takes precedence over everything that answers or forwards: a connection it
//!   black-holes gets no refusal and reaches no upstream.

pub(crate) mod drop;
pub(crate) mod idle_timeout;
pub(crate) mod path_prefix;
pub(crate) mod refuse_upgrade;
pub(crate) mod stall;

use std::time::Duration;

use crate::ProxyError;

/// One fault on the signal path. Apply with [`crate::Proxy::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Reset every live connection now, both sockets (`SO_LINGER` 0: the client and the
    /// upstream each get a TCP RST, like a middlebox dropping its state), and keep
    /// accepting. Instantaneous: its guard's clear does nothing.
    Drop,
    /// Answer new WebSocket upgrade requests with `status` and a short body, then close;
    /// `200` answers `200 OK` with an HTML page and no upgrade headers (a web server or SPA
    /// fallback in front of the SFU, livekit/livekit#79). Requests that are not upgrades
    /// (e.g. `/rtc/validate`) and live connections are untouched. `status` in 200..=599.
    RefuseUpgrade { status: u16 },
    /// Black hole: every byte read from either side of a live connection is discarded, and
    /// new connections are accepted, their bytes read and discarded, and never forwarded.
    /// Sockets stay open. When cleared, live connections forward again; what was read
    /// during the stall is lost. A connection that arrived during the stall stays a black
    /// hole for its life (its request is lost; the client must give up and reconnect).
    Stall,
    /// Close (plain FIN, like nginx's `proxy_read_timeout`) any connection with nothing
    /// forwarded in either direction for `idle`. Counted from the later of the last
    /// forwarded byte and the instant the effect was applied. A stall forwards nothing, so
    /// it also runs this clock. `idle` > 0.
    IdleTimeout { idle: Duration },
    /// Path rewriting for new requests. `strip: true` rewrites `{prefix}/rest` to `/rest`
    /// (`{prefix}` alone to `/`); `strip: false` forwards such paths unchanged, like a
    /// reverse proxy that does not strip its location (LiveKit then answers 404). Matches
    /// whole segments only: `/livekit` matches `/livekit/rtc`, not `/livekitx`. `prefix`
    /// starts with `/`, does not end with `/`, and holds no `?`, `#` or whitespace.
    PathPrefix { prefix: String, strip: bool },
}

impl Effect {
    /// The effect's kind, as the harness's fault catalogue names it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Drop => "ws-drop",
            Self::RefuseUpgrade { .. } => "ws-refuse-upgrade",
            Self::Stall => "ws-stall",
            Self::IdleTimeout { .. } => "ws-idle-timeout",
            Self::PathPrefix { .. } => "path-prefix",
        }
    }

    /// Checks the effect's parameters; `apply` does the same, so a plan can check early.
    pub fn validate(&self) -> Result<(), ProxyError> {
        match self {
            Self::Drop | Self::Stall => Ok(()),
            Self::RefuseUpgrade { status } => refuse_upgrade::validate(*status),
            Self::IdleTimeout { idle } => idle_timeout::validate(*idle),
            Self::PathPrefix { prefix, .. } => path_prefix::validate(prefix),
        }
    }

    /// Whether applying acts once and leaves nothing in force.
    pub fn is_instantaneous(&self) -> bool {
        matches!(self, Self::Drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_parameters_are_named_with_their_value() {
        let cases = [
            (
                Effect::RefuseUpgrade { status: 101 },
                "refuse-upgrade status must be in 200..=599, but is 101",
            ),
            (
                Effect::RefuseUpgrade { status: 600 },
                "refuse-upgrade status must be in 200..=599, but is 600",
            ),
            (
                Effect::IdleTimeout {
                    idle: Duration::ZERO,
                },
                "idle timeout must be greater than 0s, but is 0ns",
            ),
            (
                Effect::PathPrefix {
                    prefix: "livekit".into(),
                    strip: true,
                },
                "path prefix must start with '/', but is \"livekit\"",
            ),
            (
                Effect::PathPrefix {
                    prefix: "/".into(),
                    strip: true,
                },
                "path prefix must name at least one path segment, but is \"/\"",
            ),
            (
                Effect::PathPrefix {
                    prefix: "/livekit/".into(),
                    strip: true,
                },
                "path prefix must not end with '/', but is \"/livekit/\"",
            ),
            (
                Effect::PathPrefix {
                    prefix: "/live kit?x".into(),
                    strip: false,
                },
                "path prefix must hold no '?', '#', whitespace or control characters, but is \"/live kit?x\"",
            ),
        ];
        for (effect, message) in cases {
            assert_eq!(effect.validate().unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn valid_parameters_pass() {
        for effect in [
            Effect::Drop,
            Effect::Stall,
            Effect::RefuseUpgrade { status: 200 },
            Effect::RefuseUpgrade { status: 599 },
            Effect::IdleTimeout {
                idle: Duration::from_millis(1),
            },
            Effect::PathPrefix {
                prefix: "/livekit".into(),
                strip: false,
            },
            Effect::PathPrefix {
                prefix: "/a/b".into(),
                strip: true,
            },
        ] {
            assert!(effect.validate().is_ok(), "{effect:?}");
        }
    }
}
