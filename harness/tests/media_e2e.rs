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
