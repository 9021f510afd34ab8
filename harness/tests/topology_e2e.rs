//! Topologies against a real LiveKit: a multi-homed SFU (incident 000). Each check has
//! a twin that shows it can fail.

mod common;

use std::collections::BTreeSet;

use common::*;

/// The distinct addresses of the candidates the SFU offered the bots.
fn offered_addresses(run_dir: &std::path::Path) -> BTreeSet<String> {
    events(run_dir)
        .into_iter()
        .filter(|e| e["type"] == "CandidateReceived")
        .map(|e| {
            let c = e["candidate"].as_str().unwrap();
            let addr = c.split_whitespace().nth(1).unwrap();
            addr.rsplit_once(':').unwrap().0.to_owned()
        })
        .collect()
}

#[test]
fn a_multi_homed_sfu_offers_unreachable_candidates_and_bots_still_connect() {
    let (code, report, run_dir, text) =
        run("scenarios/faults/multi-homed-sfu.toml", "multi-homed-sfu");
    assert_eq!(code, 0, "{text}");
    let offered = offered_addresses(&run_dir);
    assert_eq!(
        offered.len(),
        3,
        "one address per network of the SFU: {offered:?}"
    );
    let ice = &report["metrics"]["connect.ice"];
    assert!(ice["max"].as_f64().unwrap() < 5.0, "{ice}");
}

/// Twin: with LiveKit's interface filter only the reachable address is offered (the
/// check above, "three addresses", fails here), and the bots connect.
#[test]
fn with_the_interface_filter_only_the_reachable_address_is_offered() {
    let (code, _, run_dir, text) = run(
        "scenarios/faults/multi-homed-sfu-filtered.toml",
        "multi-homed-sfu-filtered",
    );
    assert_eq!(code, 0, "{text}");
    let offered = offered_addresses(&run_dir);
    let signal_ip = text
        .split("ws://")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .unwrap()
        .to_owned();
    assert_eq!(offered, BTreeSet::from([signal_ip]), "{text}");
}
