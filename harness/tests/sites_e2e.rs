//! End-to-end network sites against a real LiveKit: groups in network namespaces of the
//! run, faults on one site's own link, and clean-up of the namespaces. Every check has a
//! twin that shows it can fail. (The UDP-blocked site scenarios with ICE-TCP fallback are
//! in `faults_e2e.rs`; the TURN rescue is here.)

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

/// The network namespaces `ip netns list` shows.
fn namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The namespaces a run's `site …: network namespace NS at …` notes name.
fn site_namespaces(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "Note")
        .filter_map(|e| e["message"].as_str()?.split("network namespace ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The report's summary of the pair `sub<-publisher` (its first track).
fn pair<'a>(report: &'a Value, sub: &str, publisher: &str) -> &'a Value {
    report["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["subscriber"] == sub && p["publisher"] == publisher)
        .unwrap_or_else(|| panic!("no pair {sub}<-{publisher}"))
}

/// The café's link goes down for 3 s: the laptop's pairs show a gap of about that long,
/// the office's own pairs none, and the run removes its namespaces at the end.
#[test]
fn a_site_whose_link_goes_down_shows_the_gap_and_the_other_site_keeps_its_media() {
    let (code, report, run_dir, text) = run("scenarios/faults/site-link-down.toml", "link-down");
    assert_eq!(code, 0, "{text}");
    for (sub, publisher) in [("laptop-1", "desk-1"), ("desk-2", "laptop-1")] {
        let gap = pair(&report, sub, publisher)["longest-gap-s"]
            .as_f64()
            .unwrap();
        assert!(
            (2.5..4.5).contains(&gap),
            "{sub}<-{publisher}: gap {gap}: {text}"
        );
    }
    let gap = pair(&report, "desk-1", "desk-2")["longest-gap-s"]
        .as_f64()
        .unwrap();
    assert!(gap < 0.5, "the office is not the café: gap {gap}");
    let recovery = report["faults"][0]["recovery-s"].as_f64().unwrap();
    assert!(recovery < 5.0, "media back after the link: {recovery}");
    let made = site_namespaces(&events(&run_dir));
    assert_eq!(made.len(), 2, "{made:?}");
    let left = namespaces();
    assert!(
        made.iter().all(|ns| !left.contains(ns)),
        "{made:?} outlived the run: {left:?}"
    );
}

/// Its twin: the same outage at the office's site instead breaks the office's own pairs,
/// so their continuity bound fails.
#[test]
fn twin_the_same_outage_at_the_other_site_breaks_its_pairs() {
    let path = variant(
        "scenarios/faults/site-link-down.toml",
        "link-down-twin",
        |src| src.replace("target = \"cafe\"", "target = \"office\""),
    );
    let (code, report, _, text) = run(&path, "link-down-twin");
    assert_eq!(code, 1, "{text}");
    let t = threshold_by_key(&report, "continuity{pair=desk-1<-desk-2}");
    assert_eq!(t["pass"], false, "{t}");
}

/// A streamer's site gets half its video bitrate for 4 s: continuity falls while the
/// limit holds (declared as expected) and is whole before and after.
#[test]
fn a_bandwidth_limit_on_a_site_drops_video_while_it_holds() {
    let (code, report, _, text) = run("scenarios/faults/site-bandwidth.toml", "bandwidth");
    assert_eq!(code, 0, "{text}");
    let limited = threshold_by_key(&report, "continuity{phase=limited}");
    let observed = limited["observed"].as_f64().unwrap();
    assert!(observed < 0.9, "{limited}");
    assert_eq!(
        threshold_by_key(&report, "continuity{phase=steady}")["pass"],
        true
    );
    assert_eq!(report["faults"][0]["kind"], "bandwidth");
}

/// Its twin: a limit far above the bitrate limits nothing, so the expected failure does
/// not happen and the run fails.
#[test]
fn twin_an_ample_bandwidth_limit_drops_nothing_and_the_run_fails() {
    let path = variant(
        "scenarios/faults/site-bandwidth.toml",
        "bandwidth-twin",
        |src| src.replace("kbps = 120 ", "kbps = 100000 "),
    );
    let (code, report, _, text) = run(&path, "bandwidth-twin");
    assert_eq!(code, 1, "{text}");
    let limited = threshold_by_key(&report, "continuity{phase=limited}");
    assert!(limited["observed"].as_f64().unwrap() >= 0.9, "{limited}");
}

/// A SIGKILLed run cannot remove its sites; the next run does (by the pid in their
/// names). The twin is the first assertion: the namespaces really were left.
#[test]
fn a_sigkilled_run_leaves_its_sites_and_the_next_run_removes_them() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let reports = reports_dir("sites-killed");
    let run_dir = run_and_sigkill_after_join("scenarios/faults/site-link-down.toml", &reports);
    let made = site_namespaces(&events(&run_dir));
    assert_eq!(made.len(), 2, "{made:?}");
    let left = namespaces();
    assert!(
        made.iter().all(|ns| left.contains(ns)),
        "a SIGKILLed run should leave its namespaces: {made:?} vs {left:?}"
    );
    let out = harness(&[
        "run",
        "scenarios/tests/short.toml",
        "--quiet",
        "--reports",
        reports_dir("sites-after-kill").to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = namespaces();
    assert!(
        made.iter().all(|ns| !left.contains(ns)),
        "the next run removes them: {made:?} still in {left:?}"
    );
}

/// UDP blocked at the office but for TURN's port, no ICE-TCP: the office connects
/// through LiveKit's embedded TURN (relay pairs), home directly.
#[test]
fn a_site_with_only_the_turn_port_open_connects_through_the_relay() {
    let (code, report, _, text) = run("scenarios/faults/udp-blocked-turn.toml", "turn");
    assert_eq!(code, 0, "{text}");
    for b in ["office-1", "office-2"] {
        let b = bot(&report, b);
        for pc in ["publisher-candidate", "subscriber-candidate"] {
            assert_eq!(b[pc]["local-type"], "relay", "{b}");
        }
    }
    let home = bot(&report, "home-1");
    assert_eq!(home["subscriber-candidate"]["local-type"], "host", "{home}");
}

/// Its twin: without the allow list LiveKit's TURN refuses to relay to the SFU's private
/// address, so the office never connects.
#[test]
fn twin_turn_without_the_private_peer_allow_list_never_connects() {
    let path = variant(
        "scenarios/faults/udp-blocked-turn.toml",
        "turn-twin",
        |src| {
            src.lines()
                .filter(|l| !l.starts_with("allow_restricted_peer_cidrs"))
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    let (code, report, _, text) = run(&path, "turn-twin");
    assert_eq!(code, 1, "{text}");
    for b in ["office-1", "office-2"] {
        let b = bot(&report, b);
        assert!(b["publisher-candidate"].is_null(), "{b}");
    }
    assert_eq!(
        bot(&report, "home-1")["subscriber-candidate"]["local-type"],
        "host"
    );
}

/// A laptop with a VPN-like second interface: the pairs on the VPN address are checked
/// and fail, the LAN pairs connect; the desk without a VPN has no failed pair.
#[test]
fn a_site_with_a_vpn_like_interface_checks_pairs_that_fail_and_still_connects() {
    let (code, report, _, text) = run("scenarios/faults/multi-homed-site.toml", "vpn-site");
    assert_eq!(code, 0, "{text}");
    let laptop = bot(&report, "vpn-laptop-1");
    let desk = bot(&report, "desk-1");
    let (tried, failed) = (
        laptop["ice-pairs-tried"].as_u64().unwrap(),
        laptop["ice-pairs-failed"].as_u64().unwrap(),
    );
    assert!(failed >= 1 && tried > failed, "{laptop}");
    assert_eq!(desk["ice-pairs-failed"], 0, "{desk}");
    assert!(
        tried > desk["ice-pairs-tried"].as_u64().unwrap(),
        "{laptop} vs {desk}"
    );
}

/// Its twin: without the extra interface the laptop has no failed pair either.
#[test]
fn twin_without_the_vpn_interface_no_pair_fails() {
    let path = variant(
        "scenarios/faults/multi-homed-site.toml",
        "vpn-site-twin",
        |src| src.replace("extra-interfaces = 1", "extra-interfaces = 0"),
    );
    let (code, report, _, text) = run(&path, "vpn-site-twin");
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        bot(&report, "vpn-laptop-1")["ice-pairs-failed"],
        0,
        "{text}"
    );
}
