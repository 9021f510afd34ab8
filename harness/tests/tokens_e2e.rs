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

/// Bins (whole seconds of send time) in which media between `a` and `b` was received.
fn media_bins_between(events: &[Value], a: &str, b: &str) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e["type"] == "MediaReceived")
        .filter(|e| {
            (e["bot"] == a && e["publisher"] == b) || (e["bot"] == b && e["publisher"] == a)
        })
        .filter_map(|e| e["bin"].as_u64())
        .collect()
}

/// The laptop sleeps 30 s, longer than the ping timeout and than LiveKit keeps a silent
/// participant, far shorter than its tokens live: `sdk` resumes, is told the
/// participant is gone (STATE_MISMATCH) and rejoins; `reinit` rejoins at its next health
/// check. Its twin is the token-expiry test below: the same sleep, made longer than the
/// tokens live, breaks `sdk` for good.
#[test]
fn after_a_nap_shorter_than_the_token_life_both_policies_come_back() {
    let (code, report, dir, text) = run("scenarios/bots/sleep.toml", "sleep");
    assert_eq!(code, 0, "{text}");
    for identity in ["laptop-1", "bridge-1"] {
        let b = bot(&report, identity);
        assert_eq!(
            (b["joins"].as_u64(), b["gave-up"].as_str()),
            (Some(2), None),
            "{b}"
        );
    }
    let events = events(&dir);
    let resume_failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "ResumeFailed" && e["bot"] == "laptop-1")
        .collect();
    assert_eq!(resume_failed.len(), 1, "{resume_failed:?}");
    assert!(
        resume_failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("STATE_MISMATCH"),
        "{resume_failed:?}"
    );
    // Asleep means no packet either way: nothing sent in the sleep's inner seconds was
    // received, by the sleeper or from it.
    let f = &report["faults"][0];
    let (from, to) = (
        f["applied-s"].as_f64().unwrap() as u64 + 1,
        f["cleared-s"].as_f64().unwrap() as u64 - 1,
    );
    let during: Vec<u64> = media_bins_between(&events, "laptop-1", "desk-1")
        .into_iter()
        .filter(|b| (from..to).contains(b))
        .collect();
    assert!(
        during.is_empty(),
        "media crossed during the sleep: bins {during:?}"
    );
    for f in report["faults"].as_array().unwrap() {
        let r = f["recovery-s"].as_f64().unwrap();
        assert!(r > 0.0 && r < 10.0, "{f}");
    }
}

/// Incident 002: asleep longer than the refresh token lives (11 min 10 s; v1.13.5's
/// refresh tokens live 10 min, plus a minute of leeway). `sdk` resumes with its refresh
/// token, gets 401 "token is expired" and gives up (recovery infinite, declared
/// expected); `reinit` rejoins with a fresh token. About 11.5 minutes.
#[test]
fn after_a_sleep_past_the_token_life_sdk_gives_up_with_401_and_reinit_comes_back() {
    let (code, report, _, text) = run("scenarios/bots/token-expiry.toml", "token-expiry");
    assert_eq!(code, 0, "{text}");
    let laptop = bot(&report, "laptop-1");
    let gave_up = laptop["gave-up"].as_str().unwrap_or_default();
    assert!(
        gave_up.contains("401") && gave_up.contains("token is expired"),
        "{laptop}"
    );
    assert_eq!(laptop["joins"], 1, "{laptop}");
    let bridge = bot(&report, "bridge-1");
    assert_eq!(
        (bridge["joins"].as_u64(), bridge["gave-up"].as_str()),
        (Some(2), None),
        "{bridge}"
    );
    let faults = report["faults"].as_array().unwrap();
    assert_eq!(faults[0]["recovery-s"], "inf", "{faults:?}");
    let r = faults[1]["recovery-s"].as_f64().unwrap();
    assert!(r > 0.0 && r < 10.0, "{faults:?}");
    assert!(!text.contains("eyJ"), "no token in the output");
}

/// A token without the publish grant: LiveKit refuses the bot's AddTrackRequest with a
/// RequestResponse NOT_ALLOWED, and the report names the refused request. Its twin
/// gives the grant back: nothing is refused and the declared failure does not happen.
#[test]
fn a_token_without_the_publish_grant_gets_add_track_refused() {
    let (code, report, _, text) = run("scenarios/bots/publish-denied.toml", "publish-denied");
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        bot(&report, "no-grant-1")["requests-refused"],
        serde_json::json!(["AddTrack: NOT_ALLOWED"]),
        "{text}"
    );
    assert_eq!(
        bot(&report, "speakers-1")["requests-refused"],
        serde_json::json!([])
    );
    assert!(
        text.contains("no-grant-1: AddTrack refused by the server: NOT_ALLOWED"),
        "{text}"
    );
}

#[test]
fn twin_with_the_publish_grant_nothing_is_refused_and_the_run_fails() {
    let path = variant(
        "scenarios/bots/publish-denied.toml",
        "publish-denied-twin",
        |src| src.replace("can-publish = false", "can-publish = true"),
    );
    let (code, report, _, text) = run(&path, "publish-denied-twin");
    assert_eq!(code, 1, "the expected failure did not happen: {text}");
    assert_eq!(
        bot(&report, "no-grant-1")["requests-refused"],
        serde_json::json!([])
    );
}
