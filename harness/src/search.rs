//! The capacity search's stop rule while the run goes: once a second, when a step's
//! window is over and its media bins have had time to arrive, the run so far is
//! measured and judged ([`harness_core::capacity::should_stop`]); the first step that
//! broke (or in which the harness fell behind) ends the run. Load added after it is
//! never judged: the knee is read from the steps before.

use std::time::Duration;

use bots::EventSink;
use harness_core::capacity;
use harness_core::event::{Event, LATE_AFTER_US};
use harness_core::measure;
use harness_core::plan::{CapacityPlan, Plan};
use tokio::sync::watch;

use crate::eventlog::Live;

/// How long after a step's window its last bins are judged: packets may arrive
/// [`LATE_AFTER_US`] late, and bots flush a bin within a second after that.
pub const SETTLE_US: u64 = LATE_AFTER_US + 1_500_000;

/// Resolves when the search says the run should stop; never, for a plan without one
/// (or once `end` is true).
pub async fn watch(plan: &Plan, live: Live, sink: EventSink, mut end: watch::Receiver<bool>) {
    let Some(cap) = &plan.capacity else {
        return std::future::pending().await;
    };
    let every = cap.step_every.as_micros() as u64;
    let mut judged = 0usize;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = end.wait_for(|e| *e) => return std::future::pending().await,
        }
        let cutoff = sink.now_us().saturating_sub(SETTLE_US);
        // Measuring the run so far takes long at scale (every pair's histograms, every
        // step): off the runtime's workers, so the bots and the dispatch loop sharing
        // them are not held up (it made a search harness-limited when it ran inline).
        let (live2, plan2) = (live.clone(), plan.clone());
        let judge = tokio::task::spawn_blocking(move || {
            let d = crate::eventlog::lock(&live2);
            // Judge only when one more step's window is over.
            let next = CapacityPlan::phase(judged + 1);
            let due = d.events.iter().any(|r| {
                matches!(&r.event, Event::PhaseStarted { name } if *name == next)
                    && r.t_us + every <= cutoff
            });
            if !due {
                return None;
            }
            let m = measure::measure_digest(&d);
            Some(capacity::should_stop(
                &plan2,
                &d.events,
                &m,
                cutoff,
                capacity::host_cores(&d.events),
            ))
        });
        let stop = match judge.await {
            Ok(Some(stop)) => {
                judged += 1;
                stop
            }
            Ok(None) | Err(_) => continue,
        };
        if let Some(step) = stop {
            let why = if step.outcome == "harness-limited" {
                format!(
                    "the harness fell behind ({} late seconds)",
                    step.lagging_seconds
                )
            } else {
                step.limits.join("; ")
            };
            sink.emit(Event::Note {
                source: "capacity".into(),
                message: format!(
                    "step {} ({}) {}: {why}; the search stops here",
                    step.number,
                    cap.level(step.level),
                    step.outcome
                ),
            });
            return;
        }
        sink.emit(Event::Note {
            source: "capacity".into(),
            message: format!(
                "step {judged} ({}) held",
                cap.level(cap.steps[judged - 1].level)
            ),
        });
    }
}
