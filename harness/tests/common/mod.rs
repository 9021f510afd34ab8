//! Shared by the end-to-end test binaries: run the real binary, read its reports.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// Runs are serialized: on 2 cores, concurrent SFUs and bots would measure the machine.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

pub fn reports_dir(test: &str) -> PathBuf {
    let dir = repo().join("target").join("e2e-reports").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sfu-harness"))
        .current_dir(repo())
        .args(args)
        .output()
        .expect("binary runs")
}

/// Runs `scenario`, returns (exit code, report.json, run dir, combined output).
pub fn run(scenario: &str, test: &str) -> (i32, serde_json::Value, PathBuf, String) {
    let (code, text, reports) = run_raw(scenario, test);
    let run_dir =
        only_run_dir(&reports).unwrap_or_else(|| panic!("no run directory; output:\n{text}"));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("report.json"))
            .unwrap_or_else(|e| panic!("no report.json ({e}); output:\n{text}")),
    )
    .unwrap();
    (code, report, run_dir, text)
}

/// Runs `scenario` (serialized with the other runs) into a fresh reports folder for
/// `test`; returns the exit code, the combined output and the folder.
pub fn run_raw(scenario: &str, test: &str) -> (i32, String, PathBuf) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let reports = reports_dir(test);
    let out = harness(&["run", scenario, "--reports", reports.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text, reports)
}

/// Starts `run scenario --quiet` into `reports`, waits (at most 60 s) until a bot has
/// its signal, then SIGKILLs the run; returns the dead run's directory. The caller holds
/// [`SERIAL`].
pub fn run_and_sigkill_after_join(scenario: &str, reports: &Path) -> PathBuf {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sfu-harness"))
        .current_dir(repo())
        .args([
            "run",
            scenario,
            "--quiet",
            "--reports",
            reports.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let dir = loop {
        if let Some(dir) = only_run_dir(reports)
            && std::fs::read_to_string(dir.join("events.jsonl"))
                .is_ok_and(|s| s.contains("SignalConnected"))
        {
            break dir;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never got its bots in"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    dir
}

pub fn only_run_dir(reports: &Path) -> Option<PathBuf> {
    let scenario_dir = std::fs::read_dir(reports).ok()?.next()?.ok()?.path();
    Some(std::fs::read_dir(scenario_dir).ok()?.next()?.ok()?.path())
}

pub fn threshold<'a>(report: &'a serde_json::Value, metric: &str) -> &'a serde_json::Value {
    report["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["metric"] == metric)
        .unwrap()
}

/// Docker objects still carrying a run's label.
pub fn leftovers(run_id: &str) -> Vec<String> {
    let label = format!("label=sfu-harness.run={run_id}");
    let mut out = Vec::new();
    for args in [
        vec!["ps", "-aq", "--filter", &label],
        vec!["network", "ls", "-q", "--filter", &label],
    ] {
        let o = Command::new("docker")
            .args(&args)
            .output()
            .expect("docker CLI");
        out.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned),
        );
    }
    out
}

/// A bot's entry in report.json's `bots[]`.
pub fn bot<'a>(report: &'a serde_json::Value, identity: &str) -> &'a serde_json::Value {
    report["bots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["identity"] == identity)
        .unwrap_or_else(|| panic!("no bot {identity}"))
}

/// A threshold of report.json by its key as written (`metric{tag=value}`).
pub fn threshold_by_key<'a>(report: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    report["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no threshold {key}"))
}

/// A twin's variant of `scenario` (a path under the repo), `edit`ed and written into the
/// test's own reports area; returns the variant's path for [`run`].
pub fn variant(scenario: &str, test: &str, edit: impl Fn(&str) -> String) -> String {
    let src = std::fs::read_to_string(repo().join(scenario)).unwrap();
    let changed = edit(&src);
    assert_ne!(changed, src, "the twin must really change {scenario}");
    let path = reports_dir(&format!("{test}-src")).join(Path::new(scenario).file_name().unwrap());
    std::fs::write(&path, changed).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Every event of a run, from its events.jsonl.
pub fn events(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
