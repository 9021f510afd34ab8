//! Every scenario file in the repository is a fixture: it must parse, validate and
//! compile, and the smoke pair must differ exactly where the twin is meant to fail.

use std::path::{Path, PathBuf};

use harness_core::metrics::{MetricStore, Tags};
use harness_core::plan::{compile, render};
use harness_core::scenario::load;
use harness_core::verdict::{Outcome, judge};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            toml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

#[test]
fn every_scenario_file_parses_and_compiles() {
    let mut files = Vec::new();
    toml_files(&scenarios_dir(), &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("smoke.toml")),
        "no scenarios found in {}",
        scenarios_dir().display()
    );
    let mut failures = Vec::new();
    for f in &files {
        match load(f) {
            Ok(spec) => {
                let plan = compile(&spec);
                assert!(!plan.bots.is_empty(), "{}", f.display());
                assert!(render(&plan).contains(&format!("scenario    {}\n", plan.name)));
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What a healthy two-speaker run records: full continuity, media within 0.5 s.
fn healthy_run() -> MetricStore {
    let mut store = MetricStore::new();
    for (sub, publ) in [("speaker-1", "speaker-2"), ("speaker-2", "speaker-1")] {
        let tags = Tags::from([
            ("group".to_owned(), "speakers".to_owned()),
            ("bot".to_owned(), sub.to_owned()),
            ("pair".to_owned(), format!("{sub}<-{publ}")),
        ]);
        store.record("continuity", tags.clone(), 1.0);
        store.record("connect.media", tags, 0.5);
    }
    store
}

#[test]
fn smoke_passes_a_healthy_run_and_its_impossible_twin_fails_it() {
    let dir = scenarios_dir();
    let smoke = compile(&load(&dir.join("smoke.toml")).unwrap());
    let twin = compile(&load(&dir.join("tests/impossible-threshold.toml")).unwrap());
    assert_eq!(smoke.bots, twin.bots, "the twin must run the same bots");

    let store = healthy_run();
    let pass = judge(&smoke.thresholds, &store, 10.0, None);
    assert_eq!(pass.outcome, Outcome::Pass, "{pass:?}");
    assert_eq!(pass.outcome.exit_code(), 0);

    let fail = judge(&twin.thresholds, &store, 10.0, None);
    assert_eq!(fail.outcome, Outcome::Fail);
    assert_eq!(fail.outcome.exit_code(), 1);
    let broken: Vec<&str> = fail
        .thresholds
        .iter()
        .filter(|t| !t.pass)
        .map(|t| t.expr.as_str())
        .collect();
    assert_eq!(broken, ["min >= 1.01"]);
}
