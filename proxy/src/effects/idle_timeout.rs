//! `ws-idle-timeout`: close connections that forwarded nothing for a while, like nginx's
//! `proxy_read_timeout` (60 s by default) in front of a signal connection whose pings are
//! sparser than that.
//!
//! The clock: a connection's deadline is `max(last forwarded byte, effect applied) + idle`,
//! so applying the effect never closes a connection sooner than `idle` after the apply
//! (a scenario can rely on that), and traffic in either direction pushes it back. Time is
//! tokio's, so it follows `tokio::time::pause` in tests.

use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Duration,
};

use tokio::time::Instant;

use crate::ProxyError;

pub(crate) fn validate(idle: Duration) -> Result<(), ProxyError> {
    if idle.is_zero() {
        Err(ProxyError::InvalidIdle { idle })
    } else {
        Ok(())
    }
}

/// The idle timeout in force and when it was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IdleRule {
    pub idle: Duration,
    pub since: Instant,
}

impl IdleRule {
    pub fn deadline(&self, last_activity: Instant) -> Instant {
        last_activity.max(self.since) + self.idle
    }
}

/// When a connection last forwarded a byte; shared by its two pumps and its control
/// future without a lock.
#[derive(Debug)]
pub(crate) struct Activity {
    base: Instant,
    micros_since_base: AtomicU64,
}

impl Activity {
    /// Starts the clock at now (accepting counts as activity).
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            micros_since_base: AtomicU64::new(0),
        }
    }

    pub fn touch(&self) {
        let micros = u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.micros_since_base.fetch_max(micros, Relaxed);
    }

    pub fn last(&self) -> Instant {
        self.base + Duration::from_micros(self.micros_since_base.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_counts_from_the_later_of_activity_and_apply() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(5);
        // Quiet for 10 s before the apply: still gets the full idle time after it.
        let rule = IdleRule {
            idle,
            since: t0 + Duration::from_secs(10),
        };
        assert_eq!(rule.deadline(t0), t0 + Duration::from_secs(15));
        // Traffic 3 s after the apply pushes the deadline back.
        assert_eq!(
            rule.deadline(t0 + Duration::from_secs(13)),
            t0 + Duration::from_secs(18)
        );
    }

    #[test]
    fn activity_only_moves_forward() {
        let activity = Activity::new();
        let start = activity.last();
        activity.touch();
        let touched = activity.last();
        assert!(touched >= start);
        activity.micros_since_base.fetch_max(0, Relaxed);
        assert_eq!(activity.last(), touched);
    }
}
