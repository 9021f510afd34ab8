//! sfu-harness runtime: provisioning, dispatch of bots on one clock, the event log, and
//! the glue from a [`harness_core::plan::Plan`] to a verdict and reports.
//!
//! The CLI (`src/main.rs`) is only argument parsing, rendering and exit codes.

pub mod cost;
pub mod doctor;
pub mod eventlog;
pub mod exit;
pub mod faults;
pub mod fleet;
pub mod progress;
pub mod provision;
pub mod run;
pub mod scrape;
pub mod search;
pub mod selfcheck;
