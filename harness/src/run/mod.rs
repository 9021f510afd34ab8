//! Executes one plan: provision, dispatch bots on the run's clock, collect events,
//! measure, judge, write reports — and always remove what it made.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bots::EventSink;
use harness_core::event::{Event, EventRecord};
use harness_core::measure::{self, Digest, Measurements};
use harness_core::plan::Plan;
use harness_core::report::{self, RunInfo};
use harness_core::verdict::{self, Verdict};
use tokio::sync::mpsc;

mod dispatch;
mod setup;

use crate::eventlog;
use crate::provision::docker::{self, DockerError, RunResources};
use crate::provision::livekit::{self, SfuError};

/// How long bots keep receiving after publishers stop, before they leave: packets in
/// flight must land in their bins.
pub const DRAIN: Duration = Duration::from_millis(1500);
/// How long bots get to leave cleanly before their tasks are aborted.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(10);

/// What replaces the API secret in the run directory's copy of the scenario.
pub const REDACTED_SECRET: &str = "redacted-by-sfu-harness-000000000000";

/// The scenario file's copy inside a run directory.
pub const SCENARIO_COPY: &str = "scenario.toml";

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Reports go to `<reports_dir>/<scenario>/<run-id>/`.
    pub reports_dir: PathBuf,
    /// Print progress lines while the run goes.
    pub progress: bool,
}

/// What a finished run hands the CLI.
#[derive(Debug)]
pub struct RunOutcome {
    pub scenario: String,
    pub run_id: String,
    pub verdict: Verdict,
    pub report_dir: PathBuf,
    pub summary: String,
    pub measurements: Measurements,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Sfu(#[from] SfuError),
    #[error("the signal proxy could not start: {0}")]
    Proxy(String),
    #[error("the network set-up failed: {0}")]
    Network(String),
    #[error("cannot write the run's reports under {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Re-renders every report of a run directory from its `events.jsonl` and
/// `scenario.toml`, e.g. after the run was killed.
pub fn rerender(run_dir: &Path, plan: &Plan) -> Result<RunOutcome, RunError> {
    let events_path = run_dir.join("events.jsonl");
    let file = std::fs::File::open(&events_path).map_err(io(&events_path))?;
    let (digest, _torn) = Digest::read_jsonl(std::io::BufReader::with_capacity(1 << 20, file))
        .map_err(io(&events_path))?;
    let mut info = RunInfo {
        run_id: run_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        scenario: plan.name.clone(),
        sfu_image: plan.sfu.image.clone(),
        sfu_config: serde_json::Value::Null,
        duration_s: plan.duration.as_secs_f64(),
        ended: "killed: events.jsonl ends without RunEnded".to_owned(),
    };
    for r in &digest.events {
        match &r.event {
            Event::RunStarted { run_id, .. } => info.run_id = run_id.clone(),
            Event::SfuStarted { image, .. } => info.sfu_image = image.clone(),
            Event::RunEnded { reason } => info.ended = reason.clone(),
            _ => {}
        }
    }
    // Keep the (redacted) SFU config of an earlier report, if there is one.
    if let Ok(old) = std::fs::read_to_string(run_dir.join("report.json"))
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&old)
    {
        info.sfu_config = v["sfu"]["config"].clone();
    }
    finish(plan, info, &digest, run_dir)
}

/// A sortable, unique-enough run id: UTC time plus 4 random hex digits.
pub fn new_run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}-{:04x}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        rand::random::<u16>()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Writes the user's LiveKit config file beside the scenario's copy, its API secrets
/// redacted, so `report DIR` can load the copy again; returns the copy's text naming it
/// there.
fn copy_config_file(
    f: &harness_core::scenario::LoadedConfigFile,
    scenario_file: &Path,
    report_dir: &Path,
    mut text: String,
) -> Result<String, RunError> {
    let full = Path::new(&f.path);
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "livekit.yaml".to_owned());
    let mut yaml = f.text.clone();
    if let Some(serde_json::Value::Object(keys)) = f.map.get("keys") {
        for secret in keys
            .values()
            .filter_map(|v| v.as_str())
            .filter(|s| !s.is_empty())
        {
            yaml = yaml.replace(secret, REDACTED_SECRET);
        }
    }
    let dest = report_dir.join(&name);
    std::fs::write(&dest, yaml).map_err(io(&dest))?;
    let dir = scenario_file.parent().unwrap_or_else(|| Path::new(""));
    if let Ok(rel) = full.strip_prefix(dir) {
        let rel = rel.display().to_string();
        if rel != name {
            text = text.replace(&format!("\"{rel}\""), &format!("\"{name}\""));
        }
    }
    Ok(text)
}

/// Runs `plan` against a real SFU. Errors are environment or provisioning failures
/// (exit 3); a run that happened always yields a verdict, even when interrupted.
pub async fn run(
    plan: &Plan,
    scenario_file: &Path,
    opts: &RunOptions,
) -> Result<RunOutcome, RunError> {
    let run_id = new_run_id();
    let report_dir = opts.reports_dir.join(&plan.name).join(&run_id);
    std::fs::create_dir_all(&report_dir).map_err(io(&report_dir))?;
    // The scenario as run, so `sfu-harness report DIR` can judge the events again; its API
    // secret replaced (by a value that still validates: judging needs no secret).
    let copy = report_dir.join(SCENARIO_COPY);
    let mut text = std::fs::read_to_string(scenario_file).map_err(io(scenario_file))?;
    for secret in plan.sfu.secrets() {
        text = text.replace(secret, REDACTED_SECRET);
    }
    if let Some(f) = &plan.sfu.config_file {
        text = copy_config_file(f, scenario_file, &report_dir, text)?;
    }
    std::fs::write(&copy, text).map_err(io(&copy))?;
    let epoch = Instant::now();
    let (tx, rx) = mpsc::unbounded_channel::<EventRecord>();
    let events_path = report_dir.join("events.jsonl");
    let (writer, live) =
        eventlog::start(events_path.clone(), rx, opts.progress).map_err(io(&events_path))?;
    let sink = EventSink::new(epoch, tx);
    sink.emit(Event::RunStarted {
        scenario: plan.name.clone(),
        run_id: run_id.clone(),
        bots: plan.bots.len() as u32,
        duration_us: plan.duration.as_micros() as u64,
        host_cores: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
    });

    let docker = docker::connect().await?;
    let mut swept = docker::sweep_dead_runs(&docker).await?;
    swept.extend(crate::provision::nft::sweep_dead_tables());
    swept.extend(crate::provision::site::sweep_dead_sites());
    if !swept.is_empty() {
        sink.emit(Event::Note {
            source: "harness".into(),
            message: format!("removed leftovers of dead runs: {}", swept.join(", ")),
        });
    }
    let mut res = RunResources::new(docker, &run_id);
    let result = drive(plan, &sink, &mut res, &report_dir, &live).await;
    let problems = res.teardown().await;
    if !problems.is_empty() {
        sink.emit(Event::Note {
            source: "harness".into(),
            message: format!("clean-up problems: {}", problems.join("; ")),
        });
    }
    let (reason, sfu) = match result {
        Ok(x) => x,
        Err(e) => {
            sink.emit(Event::RunEnded {
                reason: format!("error: {e}"),
            });
            drop(sink);
            let _ = writer.await;
            return Err(e);
        }
    };
    sink.emit(Event::RunEnded {
        reason: reason.clone(),
    });
    drop(sink);
    let digest = writer
        .await
        .map_err(|e| RunError::Io {
            path: events_path.clone(),
            source: std::io::Error::other(e),
        })?
        .map_err(io(&events_path))?;

    let info = RunInfo {
        run_id,
        scenario: plan.name.clone(),
        sfu_image: plan.sfu.image.clone(),
        sfu_config: sfu.map(|s| s.config_redacted).unwrap_or_default(),
        duration_s: plan.duration.as_secs_f64(),
        ended: reason,
    };
    finish(plan, info, &digest, &report_dir)
}

/// Measures, judges and writes the reports of a run from its events: shared by `run` and
/// by `sfu-harness report DIR` (which re-reads `events.jsonl`).
pub fn finish(
    plan: &Plan,
    info: RunInfo,
    digest: &Digest,
    report_dir: &Path,
) -> Result<RunOutcome, RunError> {
    let mut measurements = measure::measure_digest(digest);
    harness_core::capacity::apply(plan, &digest.events, &mut measurements);
    let invalid = if info.ended == "completed" {
        measurements.invalid.clone()
    } else {
        Some(info.ended.clone())
    };
    let verdict = verdict::judge(
        &plan.thresholds,
        &measurements.store,
        info.duration_s,
        invalid,
    );
    let json = report::report_json(&info, &measurements, &verdict);
    let report_path = report_dir.join("report.json");
    std::fs::write(
        &report_path,
        serde_json::to_string_pretty(&json).expect("report is plain JSON") + "\n",
    )
    .map_err(io(&report_path))?;
    let junit = harness_core::junit::render(&[harness_core::junit::SuiteInput {
        scenario: &info.scenario,
        run_id: &info.run_id,
        seconds: measurements.span_us as f64 / 1e6,
        verdict: &verdict,
        capacity: measurements
            .capacity
            .as_ref()
            .map(|c| c.knee.summary.as_str()),
    }]);
    let html_path = report_dir.join("report.html");
    std::fs::write(
        &html_path,
        harness_core::html::render(&info, &digest.events, &measurements, &verdict),
    )
    .map_err(io(&html_path))?;
    let metrics_path = report_dir.join("metrics.txt");
    std::fs::write(
        &metrics_path,
        harness_core::openmetrics::render(&info, &measurements, &verdict),
    )
    .map_err(io(&metrics_path))?;
    let junit_path = report_dir.join("junit.xml");
    std::fs::write(&junit_path, junit).map_err(io(&junit_path))?;
    let summary = report::terminal_summary(
        &info,
        &measurements,
        &verdict,
        &report_dir.display().to_string(),
    );
    Ok(RunOutcome {
        scenario: info.scenario.clone(),
        run_id: info.run_id.clone(),
        verdict,
        report_dir: report_dir.to_owned(),
        summary,
        measurements,
    })
}

/// Provisions the SFU and what the scenario puts around it, then dispatches the bots and
/// faults on one clock; returns why the run ended (`completed` or `interrupted`).
/// Everything it creates is in `res`, removed by the caller.
async fn drive(
    plan: &Plan,
    sink: &EventSink,
    res: &mut RunResources,
    report_dir: &Path,
    live: &eventlog::Live,
) -> Result<(String, Option<livekit::SfuNode>), RunError> {
    let setup = setup::provision(plan, sink, res, report_dir).await?;
    let interrupted = dispatch::dispatch(plan, sink, res, live, &setup).await;
    let node = setup.finish().await;
    Ok((
        if interrupted {
            "interrupted".to_owned()
        } else {
            "completed".to_owned()
        },
        Some(node),
    ))
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_right_at_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn run_ids_sort_by_time() {
        let id = new_run_id();
        assert_eq!(id.len(), "20261122T071500-ab12".len(), "{id}");
        assert_eq!(&id[8..9], "T");
    }
}
