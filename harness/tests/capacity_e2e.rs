//! Capacity searches against a real LiveKit: the known knee that LiveKit's own
//! `room.max_participants` sets, rooms added step by step, cost accounting from the
//! SFU container's cgroup and the harness's own process. Each check has a twin that
//! shows it can fail.

mod common;

use common::*;
use serde_json::Value;

fn knee(report: &Value) -> &Value {
    &report["capacity"]["knee"]
}

fn outcomes(report: &Value) -> Vec<String> {
    report["capacity"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["outcome"].as_str().unwrap().to_owned())
        .collect()
}

/// LiveKit refuses the 6th participant: the search reports exactly 5, "joins refused",
/// and stops there (the 7th and 8th members never join).
#[test]
fn the_known_knee_is_the_room_limit_livekit_enforces() {
    let (code, report, dir, text) = run("scenarios/capacity/known-knee.toml", "known-knee");
    assert_eq!(code, 0, "{text}");
    let k = knee(&report);
    assert_eq!(k["held"], 5, "{text}");
    assert_eq!(k["broke"], 6, "{text}");
    assert_eq!(k["limit"], "joins refused", "{text}");
    assert_eq!(k["summary"], "held at 5 bots; broke at 6 (joins refused)");
    assert_eq!(
        outcomes(&report)[..5],
        ["held", "held", "held", "held", "broke"],
        "{text}"
    );
    assert_eq!(report["metrics"]["capacity.level"]["max"], 5.0);
    // The search stopped: the last member was never started.
    let events = events(&dir);
    assert!(
        !events
            .iter()
            .any(|e| e["type"] == "BotJoinStarted" && e["bot"] == "members-8"),
        "{text}"
    );
    assert!(text.contains("capacity        held at 5 bots; broke at 6 (joins refused)"));
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("name=\"capacity\" value=\"held at 5 bots; broke at 6"));
    let metrics = std::fs::read_to_string(dir.join("metrics.txt")).unwrap();
    assert!(metrics.contains("level=\"held\"} 5"), "{metrics}");
}

/// The same search without the room limit: nothing is refused, the search reaches all
/// 8 members, and the expected failure (capacity.level below 8) does not happen.
#[test]
fn twin_without_the_room_limit_has_no_knee_and_fails_its_expectation() {
    let path = variant(
        "scenarios/capacity/known-knee.toml",
        "known-knee-twin",
        |src| src.replace("max_participants = 5", "max_participants = 0"),
    );
    let (code, report, _dir, text) = run(&path, "known-knee-twin");
    assert_eq!(code, 1, "{text}");
    let k = knee(&report);
    assert_eq!(k["held"], 8, "{text}");
    assert_eq!(k["reached-max"], true, "{text}");
    assert_eq!(k["broke"], Value::Null, "{text}");
}

/// Three rooms, one per step: every step holds, media stays within each room, and the
/// SFU's and the harness's costs are accounted every second and fitted over the steps.
#[test]
fn rooms_added_step_by_step_hold_and_their_cost_is_fitted() {
    let (code, report, dir, text) = run("scenarios/capacity/audio-rooms.toml", "audio-rooms");
    assert_eq!(code, 0, "{text}");
    assert_eq!(outcomes(&report), ["held", "held", "held"], "{text}");
    assert_eq!(knee(&report)["reached-max"], true);
    // 3 rooms x 5 bots x 2 speakers' tracks, less each speaker's own: 3 x 8 pairs.
    assert_eq!(report["pairs"].as_array().unwrap().len(), 24, "{text}");
    for p in report["pairs"].as_array().unwrap() {
        let room = |b: &Value| b.as_str().unwrap().split('-').next().unwrap().to_owned();
        assert_eq!(room(&p["subscriber"]), room(&p["publisher"]), "{p}");
    }
    let steps = report["capacity"]["steps"].as_array().unwrap();
    let participants: Vec<u64> = steps
        .iter()
        .map(|s| s["participants"].as_u64().unwrap())
        .collect();
    assert_eq!(participants, [5, 10, 15]);
    // Cost accounting came from the SFU container's cgroup and from this process.
    for metric in ["sfu.cpu", "sfu.memory", "harness.cpu", "harness.memory"] {
        assert!(
            report["metrics"][metric]["count"].as_f64() > Some(5.0),
            "{metric}: {text}"
        );
    }
    let cost = &report["capacity"]["cost"];
    let per = cost["sfu-cpu-per-participant"]["slope"].as_f64().unwrap();
    assert!(per > 0.0 && per < 0.5, "{cost}");
    assert!(cost["harness-to-sfu"].as_f64().is_some(), "{cost}");
    let samples = events(&dir)
        .iter()
        .filter(|e| e["type"] == "ResourcesSampled" && e["source"] == "sfu")
        .count();
    assert!(samples >= 15, "{samples} SFU samples");
}

/// The same rooms with a stop-on condition nothing can meet: the first step breaks, the
/// search stops, no level held, and the capacity threshold fails.
#[test]
fn twin_with_an_impossible_stop_on_condition_breaks_at_the_first_step() {
    let path = variant(
        "scenarios/capacity/audio-rooms.toml",
        "audio-rooms-twin",
        |src| src.replace("p(95) < 250ms", "max < 1us"),
    );
    let (code, report, _dir, text) = run(&path, "audio-rooms-twin");
    assert_eq!(code, 1, "{text}");
    let k = knee(&report);
    assert_eq!(k["held"], Value::Null, "{text}");
    assert_eq!(k["broke"], 1, "{text}");
    assert_eq!(k["limit"], "latency.oneway max < 1us", "{text}");
    assert_eq!(outcomes(&report)[0], "broke");
    assert_eq!(
        threshold_by_key(&report, "capacity.level")["pass"],
        false,
        "{text}"
    );
}

/// A load shape: listeners ramp up one a second, hold, and ramp down; every one joins,
/// hears both speakers while it is there, and leaves with a LeaveRequest at its time.
#[test]
fn a_ramp_up_hold_and_ramp_down_joins_and_leaves_on_schedule() {
    let (code, report, dir, text) = run("scenarios/capacity/ramp.toml", "ramp");
    assert_eq!(code, 0, "{text}");
    // 2 speakers hear each other; 6 listeners hear 2 speakers each.
    assert_eq!(report["pairs"].as_array().unwrap().len(), 14, "{text}");
    let events = events(&dir);
    let at = |kind: &str, bot: &str| {
        events
            .iter()
            .find(|e| e["type"] == kind && e["bot"] == bot)
            .and_then(|e| e["t_us"].as_f64())
            .unwrap_or_else(|| panic!("no {kind} of {bot}"))
            / 1e6
    };
    // listeners-6 joins last (5 s in) and leaves first (14.7 s); listeners-1 leaves at
    // 18 s, all on the bots' clock, which starts a little after the run's.
    let (j1, j6) = (
        at("BotJoinStarted", "listeners-1"),
        at("BotJoinStarted", "listeners-6"),
    );
    assert!((j6 - j1 - 5.0).abs() < 0.5, "joins {j1} {j6}");
    let (l1, l6) = (at("BotLeft", "listeners-1"), at("BotLeft", "listeners-6"));
    assert!((l1 - j1 - 18.0).abs() < 1.0, "listeners-1 left at {l1}");
    assert!((l6 - j1 - 14.67).abs() < 1.0, "listeners-6 left at {l6}");
    assert_eq!(bot(&report, "listeners-6")["left"], "left", "{text}");
}

/// The same ramp into a room LiveKit limits to 5: the 4th to 6th listeners are refused,
/// and the joins threshold says so.
#[test]
fn twin_ramp_into_a_full_room_fails_its_joins_threshold() {
    let path = variant("scenarios/capacity/ramp.toml", "ramp-twin", |src| {
        src.replace(
            "[[groups]]\nname = \"speakers\"",
            "[sfu.config.room]\nmax_participants = 5\n\n[[groups]]\nname = \"speakers\"",
        )
    });
    let (code, report, _dir, text) = run(&path, "ramp-twin");
    assert_eq!(code, 1, "{text}");
    let t = threshold_by_key(&report, "joins.failed");
    assert_eq!(t["pass"], false, "{text}");
    assert!(t["observed"].as_f64() >= Some(3.0), "{text}");
}

/// Video rooms with simulcast, one per step: both steps hold, each viewer ends on the
/// layer its group asked for (the small ones switched down from the top layer the SFU
/// starts with), and the cost per subscribed video track is fitted.
#[test]
fn video_rooms_with_simulcast_hold_and_viewers_get_their_layers() {
    let (code, report, dir, text) = run("scenarios/capacity/video-rooms.toml", "video-rooms");
    assert_eq!(code, 0, "{text}");
    assert_eq!(outcomes(&report), ["held", "held"], "{text}");
    // 2 rooms x 4 viewers of one camera.
    assert_eq!(report["pairs"].as_array().unwrap().len(), 8, "{text}");
    let mut last = std::collections::BTreeMap::new();
    for e in events(&dir).iter().filter(|e| e["type"] == "LayerReceived") {
        last.insert(
            e["bot"].as_str().unwrap().to_owned(),
            e["layer"].as_u64().unwrap(),
        );
    }
    for room in 1..=2 {
        for n in 1..=2 {
            assert_eq!(
                last.get(&format!("r{room}-small-{n}")),
                Some(&0),
                "{last:?}"
            );
            assert_eq!(
                last.get(&format!("r{room}-large-{n}")),
                Some(&2),
                "{last:?}"
            );
        }
    }
    let per_track = &report["capacity"]["cost"]["sfu-cpu-per-subscribed-track"]["slope"];
    assert!(per_track.as_f64().is_some_and(|v| v > 0.0), "{text}");
}

/// The same rooms, stopping on any layer switch: the SFU moves the small viewers off the
/// top layer in the first step, so the search breaks there and no level holds.
#[test]
fn twin_stopping_on_layer_switches_breaks_at_the_first_step() {
    let path = variant(
        "scenarios/capacity/video-rooms.toml",
        "video-rooms-twin",
        |src| {
            src.replace(
                "[capacity.stop-on]",
                "[capacity.stop-on]\n\"layer.switches\" = [\"max < 1\"]",
            )
        },
    );
    let (code, report, _dir, text) = run(&path, "video-rooms-twin");
    assert_eq!(code, 1, "{text}");
    let k = knee(&report);
    assert_eq!(k["broke"], 1, "{text}");
    assert_eq!(k["limit"], "layer.switches max < 1", "{text}");
}
