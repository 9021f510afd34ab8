//! What the bots publish and measure, against a real LiveKit: audio, VP8 video with
//! keyframes on request, and data messages on `_reliable` and `_lossy`.
//! Each check has a twin that shows it can fail.

mod common;

use common::*;
use serde_json::Value;

fn observed(report: &Value, key: &str) -> f64 {
    threshold_by_key(report, key)["observed"]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} has no number"))
}

/// Four bots with audio, video and data: everyone receives everyone, every kind.
#[test]
fn in_an_av_room_everyone_receives_everyones_audio_video_and_data() {
    let (code, report, dir, text) = run("scenarios/bots/av-room.toml", "av-room");
    assert_eq!(code, 0, "{text}");
    // 4 x 3 pairs of audio and of video; 4 x 3 pairs on each of two data channels.
    assert_eq!(
        report["metrics"]["continuity"]["count"].as_f64(),
        Some(24.0),
        "{text}"
    );
    assert_eq!(
        report["metrics"]["data.loss"]["count"].as_f64(),
        Some(24.0),
        "{text}"
    );
    assert!(
        observed(&report, "continuity{kind=video}") >= 0.99,
        "{text}"
    );
    // The SFU asks a publisher for a keyframe when a subscriber's video starts; the bot
    // answers with one (its first frame is one anyway).
    let events = events(&dir);
    let requests = events
        .iter()
        .filter(|e| e["type"] == "KeyframeRequested")
        .count();
    assert!(requests >= 1, "no PLI/FIR reached a publisher");
    let video_tracks = events
        .iter()
        .filter(|e| e["type"] == "TrackPublished" && e["kind"] == "video")
        .count();
    assert_eq!(video_tracks, 4);
}

/// The same room with 20% of UDP dropped each way for 4 s: video continuity and the
/// lossy channel's losses break their thresholds, so those checks can fail.
#[test]
fn twin_with_packet_loss_video_and_lossy_data_fail_their_thresholds() {
    let path = variant("scenarios/bots/av-room.toml", "av-room-twin", |src| {
        src.replace(
            "[thresholds]",
            "[[faults]]\nat = \"6s\"\nfor = \"4s\"\ntarget = \"sfu\"\neffect = \"loss\"\npercent = 20\n\n[thresholds]",
        )
    });
    let (code, report, _, text) = run(&path, "av-room-twin");
    assert_eq!(code, 1, "{text}");
    let lossy_loss = observed(&report, "data.loss{kind=lossy}");
    assert!(
        lossy_loss > 0.02,
        "lossy data lost only {lossy_loss}: {text}"
    );
    assert_eq!(
        threshold_by_key(&report, "data.loss{kind=lossy}")["pass"],
        false
    );
    assert_eq!(
        threshold_by_key(&report, "continuity")["pass"],
        false,
        "{text}"
    );
}

/// The layer each viewer's frames came on last (LayerReceived), by viewer.
fn last_layers(events: &[Value]) -> std::collections::BTreeMap<String, u64> {
    events
        .iter()
        .filter(|e| e["type"] == "LayerReceived")
        .map(|e| {
            (
                e["bot"].as_str().unwrap().to_owned(),
                e["layer"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A 2.5 Mbit/s camera with three simulcast layers: each viewer gets the layer it asked
/// for, every frame of it whole, and LiveKit's own byte counters confirm the bitrates
/// (all three layers in, the two chosen ones out).
#[test]
fn simulcast_video_reaches_each_viewer_on_its_layer_at_the_bitrate_livekit_counts() {
    let (code, report, dir, text) = run("scenarios/bots/video-simulcast.toml", "video-simulcast");
    assert_eq!(code, 0, "{text}");
    let events = events(&dir);
    let layers = last_layers(&events);
    assert_eq!(layers.get("small-1"), Some(&0), "{layers:?}");
    assert_eq!(layers.get("large-1"), Some(&2), "{layers:?}");
    // Frames, not packets: 30 a second, though the top layer's span ten packets each.
    let frames: u64 = events
        .iter()
        .filter(|e| e["type"] == "MediaSent")
        .map(|e| e["packets"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(frames, 30, "{text}");
    let packets_in = events
        .iter()
        .filter(|e| e["type"] == "SfuMetricsScraped")
        .filter_map(|e| e["values"]["packets.in"].as_f64())
        .fold(0.0, f64::max);
    let frames_sent: u64 = events
        .iter()
        .filter(|e| e["type"] == "MediaSent")
        .map(|e| e["packets"].as_u64().unwrap())
        .sum();
    // 1 + 3 + 10 packets per frame over the layers (more for keyframes): LiveKit counted
    // far more packets than frames.
    assert!(
        packets_in > 10.0 * frames_sent as f64,
        "{packets_in} packets for {frames_sent} frames"
    );
    let bitrate_in = observed(&report, "sfu.bitrate.in");
    assert!((3.0e6..4.0e6).contains(&bitrate_in), "{bitrate_in}: {text}");
}

/// The same camera without simulcast: one 2.5 Mbit/s layer, so LiveKit receives less
/// than three layers' worth, forwards the top layer to both viewers, and both bitrate
/// checks fail.
#[test]
fn twin_without_simulcast_fails_the_bitrate_livekit_counts() {
    let path = variant(
        "scenarios/bots/video-simulcast.toml",
        "video-simulcast-twin",
        |src| src.replace("simulcast = true", "simulcast = false"),
    );
    let (code, report, dir, text) = run(&path, "video-simulcast-twin");
    assert_eq!(code, 1, "{text}");
    for key in ["sfu.bitrate.in", "sfu.bitrate.out"] {
        let failed = report["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == key && t["pass"] == false);
        assert!(failed, "{key} held: {text}");
    }
    // One layer only: the small viewer gets what there is.
    assert_eq!(last_layers(&events(&dir)).get("small-1"), Some(&0));
}

/// Lean listeners (one task, one sans-IO connection each) beside full publishers: each
/// receives both speakers and the camera, the small viewer ends on the lowest layer, and
/// their continuity and latency pass. Their events are the full bot's events.
#[test]
fn lean_listeners_receive_every_track_and_their_layer() {
    let (code, report, dir, text) = run("scenarios/bots/lean-listeners.toml", "lean-listeners");
    assert_eq!(code, 0, "{text}");
    let events = events(&dir);
    let lean = ["listener-1", "listener-2", "listener-3", "small-1"];
    for bot in lean {
        let firsts: Vec<&str> = events
            .iter()
            .filter(|e| e["type"] == "FirstMedia" && e["bot"] == bot)
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(firsts.len(), 3, "{bot}: {firsts:?}\n{text}");
        assert_eq!(firsts.iter().filter(|k| **k == "video").count(), 1, "{bot}");
        assert!(
            events.iter().any(|e| e["type"] == "PeersConnected"
                && e["bot"] == bot
                && e["subscriber"]["protocol"] == "udp"),
            "{bot} reported no UDP pair"
        );
    }
    let layers = last_layers(&events);
    assert_eq!(layers.get("small-1"), Some(&0), "{layers:?}");
    assert_eq!(layers.get("listener-1"), Some(&2), "{layers:?}");
    // Speakers receive each other and the camera, the camera both speakers, listeners
    // all three: 2x2 + 2 + 4x3 pairs.
    assert_eq!(
        report["metrics"]["continuity"]["count"].as_f64(),
        Some(18.0),
        "{text}"
    );
}

/// The same room with UDP blocked from 5 s on: a lean bot has host UDP only (no ICE-TCP,
/// no TURN, no reconnection), so its media stops and continuity fails: the lean bots'
/// measurements are not something that passes regardless.
#[test]
fn twin_with_udp_blocked_lean_listeners_lose_their_media() {
    let path = variant(
        "scenarios/bots/lean-listeners.toml",
        "lean-listeners-twin",
        |src| {
            src.replace(
                "[thresholds]",
                "[[faults]]\nat = \"5s\"\ntarget = \"sfu\"\neffect = \"block-udp\"\n\n[thresholds]",
            )
        },
    );
    let (code, report, _dir, text) = run(&path, "lean-listeners-twin");
    assert_eq!(code, 1, "{text}");
    assert_eq!(threshold(&report, "continuity")["pass"], false, "{text}");
}
