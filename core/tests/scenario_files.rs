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
        // A scenario whose name ends in `-broken` reproduces a config that must be
        // refused before a run starts: it must not load.
        if f.file_stem()
            .is_some_and(|s| s.to_string_lossy().ends_with("-broken"))
        {
            if load(f).is_ok() {
                failures.push(format!("{} loads, but is meant to be refused", f.display()));
            }
            continue;
        }
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
    // The same bots, each in its scenario's own room.
    let in_one_room = |bots: &[harness_core::plan::BotPlan]| {
        bots.iter()
            .map(|b| harness_core::plan::BotPlan {
                room: String::new(),
                ..b.clone()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        in_one_room(&smoke.bots),
        in_one_room(&twin.bots),
        "the twin must run the same bots"
    );

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

/// The ws-drop pair runs the same bots and the same fault; only the policy and the
/// expected failure differ, so the twin's failing `recovery` is the policy's doing.
#[test]
fn ws_drop_and_its_no_reconnect_twin_differ_only_in_the_policy() {
    use harness_core::plan::ReconnectPlan;
    let dir = scenarios_dir();
    let sdk = compile(&load(&dir.join("faults/ws-drop.toml")).unwrap());
    let none = compile(&load(&dir.join("faults/ws-drop-no-reconnect.toml")).unwrap());
    assert_eq!(sdk.faults, none.faults);
    assert_eq!(sdk.duration, none.duration);
    let without_policy = |p: &harness_core::plan::Plan| {
        p.bots
            .iter()
            .map(|b| (b.identity.clone(), b.join_at, b.publish_audio))
            .collect::<Vec<_>>()
    };
    assert_eq!(without_policy(&sdk), without_policy(&none));
    assert!(sdk.bots.iter().all(|b| b.reconnect == ReconnectPlan::Sdk));
    assert!(none.bots.iter().all(|b| b.reconnect == ReconnectPlan::None));
    let expected = |p: &harness_core::plan::Plan| {
        p.thresholds
            .iter()
            .map(|t| (t.expr.clone(), t.expected_to_fail))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        expected(&none),
        [
            ("min >= 0.97".to_owned(), false),
            ("max < 3s".to_owned(), true),
            ("p(95) < 2s".to_owned(), false),
        ]
    );
    assert!(expected(&sdk).iter().all(|(_, fails)| !fails));
}

/// Each policy's bot gets its own duplicate, by identity.
#[test]
fn duplicate_identity_targets_one_bot_per_policy() {
    use harness_core::fault::{FaultKind, FaultTarget};
    let plan = compile(&load(&scenarios_dir().join("bots/duplicate-identity.toml")).unwrap());
    let targets: Vec<(FaultKind, Vec<String>)> = plan
        .faults
        .iter()
        .map(|f| match &f.target {
            FaultTarget::Bots { identities, .. } => (f.kind, identities.clone()),
            other => panic!("{} targets {other:?}", f.id),
        })
        .collect();
    let dup = |id: &str| (FaultKind::DuplicateIdentity, vec![id.to_owned()]);
    assert_eq!(
        targets,
        [
            dup("bridge-none-1"),
            dup("bridge-sdk-1"),
            dup("bridge-reinit-1")
        ]
    );
}

/// The README's annotated scenario is what users copy: it must be a valid scenario too,
/// with its commented keys as written.
#[test]
fn the_readme_scenario_example_parses() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let start = readme
        .find("```toml\nname = \"smoke\"")
        .expect("the README's scenario example")
        + "```toml\n".len();
    let len = readme[start..].find("```").expect("its closing fence");
    let example = &readme[start..start + len];
    if let Err(e) = harness_core::scenario::parse(example, "README.md example") {
        panic!("{e:?}");
    }
}
