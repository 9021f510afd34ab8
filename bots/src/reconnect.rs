//! What a bot does when its session breaks: the three policies of DESIGN.md.
//!
//! - [`Policy::None`]: stay out (a server-side bridge with no reconnection logic, the
//!   bridge of incident 002).
//! - [`Policy::Sdk`]: what LiveKit's client SDKs do: resume first (`reconnect=1&sid=…`,
//!   keep the peer connections, ICE-restart them), then full reconnects; delays
//!   0, 300, 1200, 2700, 4800, then 7000 ms, with up to 1 s of jitter from the second
//!   retry on; 10 attempts; an HTTP 401/403 or a DUPLICATE_IDENTITY leave ends it.
//! - [`Policy::Reinit`]: a health check every `check_every`; when the signal is closed,
//!   a peer connection failed, or no media came in for `media_timeout`, a full rejoin
//!   with a freshly minted token (incident 002's fix).
//!
//! The schedule is pure (jitter comes in as a value) so tests pin it exactly.

use std::time::Duration;

/// A bot group's reconnection policy: the plan's type, used as is.
pub use harness_core::plan::ReconnectPlan as Policy;

/// The SDK's retry delays before jitter, in ms (client-sdk-js DefaultReconnectPolicy).
const SDK_DELAYS_MS: [u64; 6] = [0, 300, 1200, 2700, 4800, 7000];
/// Attempts before an SDK gives up.
pub const SDK_MAX_ATTEMPTS: u32 = 10;

/// Delay before SDK retry `attempt` (0-based), with `jitter` in [0, 1) scaling up to 1 s
/// of extra wait from the second retry on. `None` once the attempts are used up.
pub fn sdk_delay(attempt: u32, jitter: f64) -> Option<Duration> {
    if attempt >= SDK_MAX_ATTEMPTS {
        return None;
    }
    let base = SDK_DELAYS_MS[(attempt as usize).min(SDK_DELAYS_MS.len() - 1)];
    let extra = if attempt >= 1 {
        (jitter.clamp(0.0, 1.0) * 1000.0) as u64
    } else {
        0
    };
    Some(Duration::from_millis(base + extra))
}

/// Why a session ended, as far as reconnection is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The harness told the bot to leave.
    Left,
    /// The harness killed the bot (no leave sent).
    Killed,
    /// The signal connection closed or went silent past the ping timeout.
    SignalLost(String),
    /// A peer connection failed.
    PeerFailed(String),
    /// The server sent a LeaveRequest.
    Kicked { reason: String, action: LeaveAction },
}

/// LeaveRequest.action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveAction {
    Disconnect,
    Resume,
    Reconnect,
}

/// What the SDK policy does next after `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Try to resume the session (keep peer connections).
    Resume,
    /// Join again from scratch.
    Rejoin,
    /// Stop, with the reason a person reads.
    GiveUp(String),
}

/// The decision table of [`Policy::Sdk`] and [`Policy::None`] for a session end.
pub fn after(policy: Policy, end: &SessionEnd) -> Next {
    match (policy, end) {
        (_, SessionEnd::Left) => Next::GiveUp("left".into()),
        (_, SessionEnd::Killed) => Next::GiveUp("killed".into()),
        (Policy::None, e) => Next::GiveUp(format!("no reconnection policy: {}", describe(e))),
        // A reinit bridge rejoins whatever happened: two of them with one identity kick each
        // other forever (decentraland's loop); an SDK client stops.
        (Policy::Reinit { .. }, _) => Next::Rejoin,
        (Policy::Sdk, SessionEnd::Kicked { reason, .. }) if reason == "DUPLICATE_IDENTITY" => {
            Next::GiveUp("kicked: DUPLICATE_IDENTITY (terminal for SDK clients)".into())
        }
        (
            Policy::Sdk,
            SessionEnd::Kicked {
                action: LeaveAction::Disconnect,
                reason,
            },
        ) => Next::GiveUp(format!("kicked: {reason}")),
        (
            Policy::Sdk,
            SessionEnd::Kicked {
                action: LeaveAction::Reconnect,
                ..
            },
        ) => Next::Rejoin,
        (Policy::Sdk, _) => Next::Resume,
    }
}

pub fn describe(end: &SessionEnd) -> String {
    match end {
        SessionEnd::Left => "left".into(),
        SessionEnd::Killed => "killed".into(),
        SessionEnd::SignalLost(r) => format!("signal lost: {r}"),
        SessionEnd::PeerFailed(r) => format!("peer connection failed: {r}"),
        SessionEnd::Kicked { reason, action } => format!("kicked: {reason} ({action:?})"),
    }
}

/// An HTTP status on (re)connect that ends SDK retries: the credentials are not coming
/// back (LiveKit answers 401 "token is expired" after a long sleep).
pub fn is_terminal_status(status: u16) -> bool {
    matches!(status, 401 | 403)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_delays_follow_the_js_sdk_schedule() {
        let ms: Vec<u64> = (0..12)
            .map(|a| sdk_delay(a, 0.0).map_or(u64::MAX, |d| d.as_millis() as u64))
            .collect();
        assert_eq!(
            ms,
            vec![
                0,
                300,
                1200,
                2700,
                4800,
                7000,
                7000,
                7000,
                7000,
                7000,
                u64::MAX,
                u64::MAX
            ]
        );
        assert_eq!(
            sdk_delay(0, 0.99),
            Some(Duration::ZERO),
            "no jitter on the first retry"
        );
        assert_eq!(sdk_delay(1, 0.5), Some(Duration::from_millis(800)));
    }

    #[test]
    fn decision_table() {
        let lost = SessionEnd::SignalLost("closed".into());
        let dup = SessionEnd::Kicked {
            reason: "DUPLICATE_IDENTITY".into(),
            action: LeaveAction::Disconnect,
        };
        let full = SessionEnd::Kicked {
            reason: "STATE_MISMATCH".into(),
            action: LeaveAction::Reconnect,
        };
        let reinit = Policy::Reinit {
            check_every: Duration::from_secs(1),
            media_timeout: Duration::from_secs(5),
        };
        assert_eq!(after(Policy::Sdk, &lost), Next::Resume);
        assert_eq!(after(Policy::Sdk, &full), Next::Rejoin);
        assert!(matches!(after(Policy::Sdk, &dup), Next::GiveUp(_)));
        assert!(matches!(after(Policy::None, &lost), Next::GiveUp(_)));
        assert_eq!(after(reinit, &lost), Next::Rejoin);
        assert!(matches!(after(reinit, &SessionEnd::Left), Next::GiveUp(_)));
        assert_eq!(
            after(reinit, &dup),
            Next::Rejoin,
            "reinit bridges kick each other forever"
        );
    }
}
