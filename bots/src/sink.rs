//! Where a bot's events go: stamped at the source on the run's one clock.

use std::time::Instant;

use harness_core::event::{Event, EventRecord};
use tokio::sync::mpsc::UnboundedSender;

/// A cheap, cloneable handle: the run's epoch and the channel to the one aggregator.
#[derive(Clone, Debug)]
pub struct EventSink {
    epoch: Instant,
    tx: UnboundedSender<EventRecord>,
}

impl EventSink {
    pub fn new(epoch: Instant, tx: UnboundedSender<EventRecord>) -> Self {
        Self { epoch, tx }
    }

    /// Microseconds since the run's epoch, now.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Microseconds since the run's epoch at `at` (0 before the epoch).
    pub fn us_at(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_micros() as u64
    }

    /// Stamps and sends. A closed aggregator means the run is over: the event is dropped.
    pub fn emit(&self, event: Event) {
        self.emit_at(self.now_us(), event);
    }

    pub fn emit_at(&self, t_us: u64, event: Event) {
        let _ = self.tx.send(EventRecord { t_us, event });
    }
}
