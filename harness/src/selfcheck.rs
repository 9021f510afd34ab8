//! The harness watching itself: a probe on the runtime that drives the bots and faults
//! asks for a timer every [`LOOP_TICK_US`] and records how late it ran. Once a second it
//! emits [`Event::EventLoopChecked`] with the worst lateness; `measure` turns those into
//! `harness.loop.lag` and declares the run invalid when the runtime was often
//! late, since then every latency and gap it measured carries the harness's own delay.
//!
//! For tests only, `SFU_HARNESS_TEST_BLOCK_RUNTIME_MS=N` makes the harness overload
//! itself: tasks that block every runtime worker for N ms four times a second. The
//! end-to-end twin uses it to show an overloaded run comes out invalid, not failed.

use std::time::Duration;

use bots::EventSink;
use harness_core::event::{Event, LOOP_TICK_US};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The environment variable of the overload hook (tests only).
pub const BLOCK_RUNTIME_ENV: &str = "SFU_HARNESS_TEST_BLOCK_RUNTIME_MS";

/// Starts the probe (and the overload hook, if asked for); both stop when `end` is true.
pub fn spawn(sink: EventSink, end: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![tokio::spawn(probe(sink, end.clone()))];
    let block_ms = std::env::var(BLOCK_RUNTIME_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0);
    if let Some(ms) = block_ms {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        for _ in 0..workers {
            tasks.push(tokio::spawn(block_workers(
                Duration::from_millis(ms),
                end.clone(),
            )));
        }
    }
    tasks
}

async fn probe(sink: EventSink, mut end: watch::Receiver<bool>) {
    let tick = Duration::from_micros(LOOP_TICK_US);
    let mut due = Instant::now() + tick;
    let mut window_end = Instant::now() + Duration::from_secs(1);
    let (mut max_lag, mut ticks) = (Duration::ZERO, 0u32);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = end.wait_for(|e| *e) => return,
        }
        let now = Instant::now();
        max_lag = max_lag.max(now - due);
        ticks += 1;
        // After a stall, measure from now rather than firing a burst of catch-up ticks.
        due = (due + tick).max(now + tick / 2);
        if now >= window_end {
            sink.emit(Event::EventLoopChecked {
                max_lag_us: max_lag.as_micros() as u64,
                ticks,
            });
            (max_lag, ticks) = (Duration::ZERO, 0);
            window_end += Duration::from_secs(1);
        }
    }
}

async fn block_workers(block: Duration, mut end: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = end.wait_for(|e| *e) => return,
        }
        // Deliberately blocking: this is the overload the self-check must notice.
        std::thread::sleep(block);
    }
}
