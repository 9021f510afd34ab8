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
    // The bots checked pairs towards the unreachable addresses too, and those failed.
    let failed: u64 = report["bots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["ice-pairs-failed"].as_u64().unwrap())
        .sum();
    assert!(failed >= 1, "no failed pair: {}", report["bots"]);
}

/// Twin: with LiveKit's interface filter only the reachable address is offered (the
/// check above, "three addresses", fails here), and the bots connect.
#[test]
fn with_the_interface_filter_only_the_reachable_address_is_offered() {
    let (code, report, run_dir, text) = run(
        "scenarios/faults/multi-homed-sfu-filtered.toml",
        "multi-homed-sfu-filtered",
    );
    assert_eq!(code, 0, "{text}");
    for b in report["bots"].as_array().unwrap() {
        assert_eq!(b["ice-pairs-failed"], 0, "only reachable pairs: {b}");
        assert!(b["ice-pairs-tried"].as_u64().unwrap() >= 1, "{b}");
    }
    let offered = offered_addresses(&run_dir);
    let signal_ip = text
        .split("ws://")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .unwrap()
        .to_owned();
    assert_eq!(offered, BTreeSet::from([signal_ip]), "{text}");
}

/// The LiveKit node ids each SignalConnected of `bot` names, in order.
fn nodes_of(events: &[serde_json::Value], bot: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "SignalConnected" && e["bot"] == bot)
        .map(|e| e["node_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn kicks_of(events: &[serde_json::Value], bot: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "Kicked" && e["bot"] == bot)
        .map(|e| e["reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Multi-node LiveKit with a real Redis: a bridge's identity joins again through the
/// other node, and LiveKit kicks the first session across nodes (DUPLICATE_IDENTITY).
/// The room lives on one node: every session, whichever node took its signal, names
/// that node in its JoinResponse (the other node relays the signalling).
#[test]
fn a_server_switch_joins_through_the_other_node_and_kicks_the_first_session() {
    let (code, _, dir, text) = run("scenarios/faults/server-switch.toml", "server-switch");
    assert_eq!(code, 0, "{text}");
    let events = common::events(&dir);
    let nodes = nodes_of(&events, "bridge-none-1");
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(!nodes[0].is_empty() && nodes[0] == nodes[1], "{nodes:?}");
    assert_eq!(
        nodes_of(&events, "caller-1"),
        vec![nodes[0].clone()],
        "relayed by node 2"
    );
    assert_eq!(
        kicks_of(&events, "bridge-none-1"),
        ["DUPLICATE_IDENTITY"],
        "{text}"
    );
}

/// Its twin: the same nodes without the shared Redis are two separate SFUs: the
/// switched session lands on the other node's own room and nobody is kicked.
#[test]
fn twin_without_the_shared_redis_the_nodes_do_not_see_each_other() {
    let path = variant(
        "scenarios/faults/server-switch.toml",
        "server-switch-twin",
        |src| {
            src.replace(
                "\n[[groups]]\nname = \"caller\"",
                "\n[sfu.config.redis]\naddress = \"\"\n\n[[groups]]\nname = \"caller\"",
            )
        },
    );
    let (code, _, run_dir, text) = run(&path, "server-switch-twin");
    assert_eq!(code, 1, "no kicks: the kick thresholds fail: {text}");
    let events = common::events(&run_dir);
    assert!(kicks_of(&events, "bridge-none-1").is_empty(), "{text}");
    let nodes = nodes_of(&events, "bridge-none-1");
    assert_eq!(nodes.len(), 2, "{text}");
    assert_ne!(nodes[0], nodes[1], "two unconnected nodes, two rooms");
}

/// SFU faults can name a node: node 2 killed for 3 s takes the signal of the bots that
/// use it, and the sdk policy brings them back once it is up again.
#[test]
fn killing_node_2_breaks_its_bots_signal_and_sdk_bots_recover() {
    let (code, report, dir, text) = run("scenarios/faults/sfu-kill-node2.toml", "kill-node2");
    assert_eq!(code, 0, "{text}");
    let lost: Vec<String> = common::events(&dir)
        .iter()
        .filter(|e| e["type"] == "SignalLost")
        .filter_map(|e| e["bot"].as_str().map(str::to_owned))
        .collect();
    assert!(lost.iter().any(|b| b == "two-1"), "{text}");
    let recovery = report["faults"][0]["recovery-s"].as_f64().unwrap();
    assert!(recovery.is_finite(), "{text}");
    // Where the room was decides what node 1's bot saw: with the room on node 2 it lost
    // its session too, else it never noticed.
    let events = common::events(&dir);
    let node2 = events
        .iter()
        .find(|e| e["type"] == "SfuStarted" && e["node"] == "lk2")
        .and_then(|e| e["node_id"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(node2.starts_with("ND_"), "node 2's id from its log: {text}");
    let room = nodes_of(&events, "one-1")[0].clone();
    let one_lost = lost.iter().any(|b| b == "one-1");
    assert_eq!(
        one_lost,
        room == node2,
        "room on {room}, node 2 is {node2}: {text}"
    );
}

/// Its twin: the same outage with a bridge that does not reconnect never recovers.
#[test]
fn twin_without_reconnection_node_2_s_bots_stay_out() {
    let path = variant(
        "scenarios/faults/sfu-kill-node2.toml",
        "kill-node2-twin",
        |src| {
            src.replace(
                "node = 2\n\n[[faults]]",
                "node = 2\nreconnect = \"none\"\n\n[[faults]]",
            )
        },
    );
    let (code, report, _, text) = run(&path, "kill-node2-twin");
    assert_eq!(code, 1, "{text}");
    assert_eq!(report["faults"][0]["recovery-s"], "inf", "{text}");
}
