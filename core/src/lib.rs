//! sfu-harness core: the pure part of the pipeline
//! `scenario.toml → ScenarioSpec → Plan → events → metrics → verdict → reports`.
//!
//! Nothing here opens a socket, starts a container or reads a clock: time comes in as
//! values. The runtime (crate `sfu-harness`) and the bots (crate `sfu-harness-bots`)
//! do the I/O and feed [`event::Event`]s back in.

pub mod capacity;
pub mod event;
pub mod fault;
pub mod html;
pub mod junit;
pub mod measure;
pub mod metrics;
pub mod openmetrics;
pub mod plan;
pub mod prometheus;
pub mod report;
pub mod scenario;
pub mod sfu_config;
pub mod sfu_file;
pub mod threshold;
pub mod verdict;
