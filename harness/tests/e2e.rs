//! End-to-end: the `sfu-harness` binary against a real LiveKit in Docker.
//!
//! Needs a Docker engine and the LiveKit image (`scripts/setup.sh`). Runs are serialized:
//! on 2 cores, concurrent SFUs and bots would measure the machine, not the SFU.

mod common;

use common::*;

#[test]
fn smoke_passes_with_measured_latency_and_continuity_and_leaves_nothing_behind() {
    let (code, report, run_dir, text) = run("scenarios/smoke.toml", "smoke");
    assert_eq!(code, 0, "smoke should pass:\n{text}");
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["schema-version"], 1);
    // Real measured values, not defaults.
    let media = threshold(&report, "connect.media")["observed"]
        .as_f64()
        .unwrap();
    assert!(media > 0.0 && media < 2.0, "connect.media p95 {media}");
    let continuity = threshold(&report, "continuity")["observed"]
        .as_f64()
        .unwrap();
    assert!(continuity >= 0.99, "continuity {continuity}");
    let lat = &report["metrics"]["latency.oneway"];
    assert!(
        lat["count"].as_f64().unwrap() > 500.0,
        "one-way latency samples: {lat}"
    );
    assert!(lat["med"].as_f64().unwrap() > 0.0);
    // Not a terminal: plain progress lines every 5 s of run time.
    let progress: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("] progress: "))
        .collect();
    assert!(
        progress.len() >= 2
            && progress.iter().all(|l| l.contains(" of 10s ("))
            && progress[0].contains("· bots 2/2 connected · faults: none"),
        "{text}"
    );
    let om = std::fs::read_to_string(run_dir.join("metrics.txt")).unwrap();
    assert!(
        om.ends_with("# EOF\n") && om.contains("sfu_harness_continuity_ratio{"),
        "{om}"
    );
    // The SFU's own count, scraped from its Prometheus endpoint, saw both bots.
    let participants = &report["sfu-metrics"]["lk1"]["participants"];
    assert_eq!(participants["max"], 2.0, "{participants}");
    assert!(
        participants["samples"].as_array().unwrap().len() >= 5,
        "{participants}"
    );
    let lag = &report["metrics"]["harness.loop.lag"];
    assert!(
        lag["count"].as_f64().unwrap() >= 5.0 && lag["max"].as_f64().unwrap() < 0.1,
        "the self-check ran once a second and the harness kept up: {lag}"
    );
    let pairs = report["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2, "each bot receives the other");
    for p in pairs {
        assert!(
            p["sent"].as_u64().unwrap() >= 300,
            "about 8 s of 50 pps: {p}"
        );
    }
    let bots = report["bots"].as_array().unwrap();
    assert_eq!(bots.len(), 2);
    for b in bots {
        assert_eq!(b["joins"], 1);
        assert_eq!(b["publisher-candidate"]["protocol"], "udp", "{b}");
    }
    // The public STUN servers LiveKit would hand out never reach a bot's ICE agent.
    let events = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    assert!(
        !events.contains("google"),
        "a public STUN server reached the events"
    );
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(
        html.contains("speaker-1") && html.contains("<svg"),
        "report.html has the lanes"
    );
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert_eq!(
        junit.matches("<testcase").count(),
        2,
        "one case per threshold:\n{junit}"
    );
    assert!(!junit.contains("<failure"), "{junit}");
    let run_id = report["run-id"].as_str().unwrap();
    assert_eq!(
        leftovers(run_id),
        Vec::<String>::new(),
        "the run left docker objects behind"
    );
}

#[test]
fn impossible_threshold_fails_with_exit_code_1_and_secrets_stay_out_of_every_output() {
    let (code, report, run_dir, text) =
        run("scenarios/tests/impossible-threshold.toml", "impossible");
    assert_eq!(code, 1, "continuity >= 1.01 cannot hold:\n{text}");
    assert_eq!(report["verdict"], "fail");
    let t = threshold(&report, "continuity");
    assert_eq!(t["pass"], false);
    assert!(
        t["observed"].as_f64().unwrap() > 0.9,
        "it failed on the bound, not for lack of media: {t}"
    );
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert_eq!(
        junit.matches("<failure").count(),
        1,
        "only the impossible bound fails:\n{junit}"
    );
    // The scenario gives its API secret: it must appear nowhere the run wrote.
    let secret = "impossible-threshold-secret-0123456789abcdef";
    assert!(!text.contains(secret), "secret in the CLI output");
    for entry in std::fs::read_dir(&run_dir).unwrap() {
        let path = entry.unwrap().path();
        let body = std::fs::read_to_string(&path).unwrap();
        assert!(!body.contains(secret), "secret in {}", path.display());
        assert!(!body.contains("eyJ"), "a JWT in {}", path.display());
    }
}

#[test]
fn a_sigkilled_run_leaves_its_events_and_the_next_run_removes_its_containers() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let reports = reports_dir("killed");
    // Killed once the SFU is up and bots are in, without warning.
    let run_dir = run_and_sigkill_after_join("scenarios/smoke.toml", &reports);
    let events_path = run_dir.join("events.jsonl");
    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_owned();
    // The twin: the kill really left objects behind (else this test proves nothing).
    assert!(
        !leftovers(&run_id).is_empty(),
        "a SIGKILLed run should leave its containers"
    );
    let events = std::fs::read_to_string(&events_path).unwrap();
    assert!(
        events.lines().next().unwrap().contains("RunStarted"),
        "events.jsonl survives the kill"
    );
    // `report` renders the dead run from its events: judged invalid (it was killed).
    let out = harness(&["report", run_dir.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["verdict"], "invalid");
    assert_eq!(
        report["bots"].as_array().unwrap().len(),
        2,
        "the bots that joined before the kill are in the report"
    );

    let out = harness(&[
        "run",
        "scenarios/tests/short.toml",
        "--quiet",
        "--reports",
        reports_dir("after-kill").to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        leftovers(&run_id),
        Vec::<String>::new(),
        "the next run should have swept the dead run's objects"
    );
}

#[test]
fn check_names_a_misspelled_key_and_its_line() {
    let dir = reports_dir("check");
    let smoke = std::fs::read_to_string(repo().join("scenarios/smoke.toml")).unwrap();
    let mut lines: Vec<&str> = smoke.lines().collect();
    lines.insert(1, "durration = \"10s\"");
    let bad = dir.join("misspelled.toml");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out = harness(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("durration"), "{err}");
    assert!(err.contains("misspelled.toml:2:"), "{err}");
}

/// Twin of the smoke test's self-check: a harness that blocks its own runtime (the
/// test-only overload hook) must come out invalid (exit 4), not pass or fail.
#[test]
fn an_overloaded_harness_marks_the_run_invalid_not_failed() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let reports = reports_dir("overloaded");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sfu-harness"))
        .current_dir(repo())
        .env("SFU_HARNESS_TEST_BLOCK_RUNTIME_MS", "150")
        .args(["run", "scenarios/tests/short.toml", "--quiet"])
        .args(["--reports", reports.to_str().unwrap()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        !text.contains("progress:"),
        "--quiet prints no progress: {text}"
    );
    let run_dir = only_run_dir(&reports).unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["verdict"], "invalid");
    let reason = report["invalid-reason"].as_str().unwrap();
    assert!(
        reason.contains("event loop run a timer more than 100 ms late"),
        "{reason}"
    );
}

/// Twin of the smoke test's SFU-metrics check: with LiveKit's endpoint switched off the
/// report has no SFU series, and says why instead of showing silent empties.
#[test]
fn with_the_prometheus_endpoint_off_the_report_says_so_and_has_no_sfu_series() {
    let src = std::fs::read_to_string(repo().join("scenarios/tests/short.toml")).unwrap();
    let off = format!("{src}\n[sfu.config]\nprometheus_port = 0\n");
    let dir = reports_dir("prometheus-off-src");
    let path = dir.join("short-prometheus-off.toml");
    std::fs::write(&path, off).unwrap();
    let (code, report, run_dir, text) = run(path.to_str().unwrap(), "prometheus-off");
    assert_eq!(code, 0, "{text}");
    assert_eq!(report["sfu-metrics"], serde_json::json!({}));
    let events = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    assert!(
        events.contains("Prometheus endpoint is off (prometheus_port = 0)"),
        "{events}"
    );
}

/// Runs a scenario whose LiveKit must refuse its config: exit 3, seen when the node
/// exited (not the 30-s readiness timeout). Returns the output and the reports folder.
fn run_refused(scenario: &str, test: &str) -> (String, std::path::PathBuf) {
    let (code, text, reports) = run_raw(scenario, test);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("LiveKit refused its config"), "{text}");
    assert!(!text.contains("did not answer 200"), "{text}");
    (text, reports)
}

/// LiveKit refusing its config ends the run as soon as the node exits, with LiveKit's
/// own message and the scenario key its line number points at (go-yaml names a line of
/// the config LiveKit read, which the scenario's author never saw). The twin is the
/// previous test: a valid `[sfu.config]` value starts and runs.
#[test]
fn a_config_livekit_refuses_fails_at_once_naming_the_scenario_key() {
    let path = variant("scenarios/tests/short.toml", "refused-config", |src| {
        format!("{src}\n[sfu.config.rtc]\nport_range_start = \"abc\"\n")
    });
    let (text, _) = run_refused(&path, "refused-config");
    assert!(text.contains("cannot unmarshal !!str `abc`"), "{text}");
    assert!(
        text.contains(
            "is `rtc.port_range_start`, from the scenario's [sfu.config.rtc] port_range_start"
        ),
        "{text}"
    );
}

/// Every file of a run directory and the run's output, as one text (for secrets).
fn everything(run_dir: &std::path::Path, output: &str) -> String {
    let mut all = output.to_owned();
    for entry in std::fs::read_dir(run_dir).unwrap() {
        all.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    all
}

/// Incident 000's operator brings their own LiveKit file: LiveKit runs with it (its
/// `room` settings are in the config LiveKit got), the keys that would leave the run or
/// are the harness's own are laid over it and listed, the file's API secret is nowhere,
/// and `report DIR` re-judges the run from its directory alone.
#[test]
fn a_users_own_livekit_file_runs_with_the_harness_keys_laid_over_it() {
    let (code, report, dir, text) = run(
        "scenarios/incidents/000-own-config.toml",
        "incident-000-own-config",
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        report["sfu"]["config"]["room"]["max_participants"], 100,
        "{report}"
    );
    assert_eq!(report["sfu"]["config"]["rtc"]["use_external_ip"], false);
    assert!(report["sfu"]["config"].get("redis").is_none());
    let laid = events(&dir)
        .into_iter()
        .find(|e| e["type"] == "Note" && e["source"] == "sfu")
        .unwrap_or_else(|| panic!("no note of the laid-over keys\n{text}"));
    let note = laid["message"].as_str().unwrap();
    for key in [
        "redis",
        "keys: <redacted> -> removed",
        "rtc.port_range_start: 52000 -> removed",
    ] {
        assert!(note.contains(key), "{note}");
    }
    let all = everything(&dir, &text);
    assert!(
        !all.contains("prod-secret-from-the-operators-file"),
        "the file's secret leaked"
    );
    let again = harness(&["report", dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
}

/// The twin: the same file with a key missing its colon (the write-up's
/// `could not find expected ':'`) is refused before anything starts, at the line and
/// column of the user's file, by `check` and by `run` alike (exit 2).
#[test]
fn a_livekit_file_that_is_not_yaml_is_refused_at_its_line_before_anything_starts() {
    for cmd in ["check", "run"] {
        let out = harness(&[cmd, "scenarios/incidents/000-own-config-broken.toml"]);
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {text}");
        assert!(
            text.contains("000-livekit-broken.yaml:27:3"),
            "{cmd}: {text}"
        );
        assert!(
            text.contains("could not find expected ':'"),
            "{cmd}: {text}"
        );
    }
}

/// Incident 003's second attempt: `LIVEKIT_KEYS` without the space LiveKit requires.
/// The run ends as soon as LiveKit exits, with LiveKit's own message, and the value
/// (a secret) is in no output.
#[test]
fn livekit_keys_without_the_space_fail_at_once_with_livekits_message() {
    let (text, reports) = run_refused(
        "scenarios/incidents/003-keys-env.toml",
        "incident-003-keys-env",
    );
    assert!(
        text.contains(
            "Could not parse keys, it needs to be exactly, \"key: secret\", including the space"
        ),
        "{text}"
    );
    let all = match only_run_dir(&reports) {
        Some(d) => everything(&d, &text),
        None => text.clone(),
    };
    assert!(
        !all.contains("a-secret-of-the-kind"),
        "the env secret leaked"
    );
}
