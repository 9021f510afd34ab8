//! Tokens the harness mints, against a real LiveKit: clocks that are off (`clock-skew`).
//! Each check has a twin that shows it can fail.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn clocks_far_off_are_refused_with_401_and_a_small_skew_joins() {
    let (code, report, _, text) = run("scenarios/bots/clock-skew.toml", "clock-skew");
    // The refusals are declared expected failures: they must happen for a pass.
    assert_eq!(code, 0, "{text}");
    for (identity, why) in [
        ("fast-10m-1", "token is not valid yet"),
        ("slow-10m-1", "token is expired"),
    ] {
        let b = bot(&report, identity);
        assert_eq!(b["joins"], 0, "{b}");
        assert_eq!(
            b["join-failures"], 1,
            "401 is terminal for sdk: one try: {b}"
        );
        let gave_up = b["gave-up"].as_str().unwrap_or_default();
        assert!(gave_up.contains("401") && gave_up.contains(why), "{b}");
    }
    for identity in ["fast-30s-1", "fast-30s-2"] {
        let b = bot(&report, identity);
        assert_eq!(
            (b["joins"].as_u64(), b["join-failures"].as_u64()),
            (Some(1), Some(0)),
            "{b}"
        );
    }
    assert!(!text.contains("eyJ"), "no token in the output");
}

#[test]
fn twin_without_the_skew_the_expected_refusal_does_not_happen_and_the_run_fails() {
    let src = std::fs::read_to_string(repo().join("scenarios/bots/clock-skew.toml")).unwrap();
    let unskewed: String = src
        .lines()
        .filter(|l| !l.starts_with("clock-skew = \"+10m\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(unskewed, src, "the twin must really drop the skew");
    let dir = reports_dir("clock-skew-twin-src");
    let path = dir.join("clock-skew-unskewed.toml");
    std::fs::write(&path, unskewed).unwrap();
    let (code, report, _, text) = run(path.to_str().unwrap(), "clock-skew-twin");
    assert_eq!(
        code, 1,
        "an expected failure that did not happen fails the run: {text}"
    );
    assert_eq!(bot(&report, "fast-10m-1")["joins"], 1);
    let t = threshold_by_key(&report, "joins.failed{group=fast-10m}");
    assert_eq!(
        (&t["pass"], &t["note"]),
        (
            &Value::Bool(false),
            &Value::from("expected to fail, but held")
        ),
        "{t}"
    );
}
