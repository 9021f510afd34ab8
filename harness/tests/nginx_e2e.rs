//! End-to-end with a real nginx (Debian's, in a container of the run) in front of a real
//! LiveKit: the reverse-proxy settings that break deployments, each with a twin that
//! shows the check can fail.

mod common;

use common::*;

/// Without the WebSocket lines nginx forwards /rtc as a plain request: every join fails
/// (declared as expected), with LiveKit's answer in the JoinFailed events.
#[test]
fn nginx_without_the_websocket_upgrade_fails_every_join() {
    let (code, report, run_dir, text) = run("scenarios/faults/nginx-no-upgrade.toml", "nginx-up");
    assert_eq!(code, 0, "{text}");
    let t = threshold(&report, "connect.signal");
    assert_eq!(t["observed"], "inf", "{t}");
    let events = events(&run_dir);
    assert!(
        events.iter().any(
            |e| e["type"] == "JoinFailed" && e["error"].as_str().unwrap_or("").contains("HTTP")
        ),
        "{text}"
    );
    let conf = std::fs::read_to_string(run_dir.join("nginx.conf")).unwrap();
    assert!(!conf.contains("Upgrade"), "{conf}");
}

/// Its twin: with the upgrade forwarded everyone joins through nginx, so the expected
/// failure does not happen (exit 1).
#[test]
fn twin_nginx_with_the_websocket_upgrade_lets_everyone_join() {
    let path = variant(
        "scenarios/faults/nginx-no-upgrade.toml",
        "nginx-up-twin",
        |src| src.replace("websocket = false ", "websocket = true "),
    );
    let (code, report, run_dir, text) = run(&path, "nginx-up-twin");
    assert_eq!(code, 1, "{text}");
    for b in report["bots"].as_array().unwrap() {
        assert_eq!(b["joins"], 1, "{b}");
    }
    // The run really put nginx in the path.
    assert!(
        events(&run_dir).iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("nginx at "))),
        "{text}"
    );
}

/// A 3 s proxy_read_timeout closes quiet signal sockets: the sdk bots resume again and
/// again, and the media keeps flowing.
#[test]
fn a_short_nginx_read_timeout_makes_bots_resume_while_media_flows() {
    let (code, report, _, text) = run("scenarios/faults/nginx-read-timeout.toml", "nginx-rt");
    assert_eq!(code, 0, "{text}");
    for b in report["bots"].as_array().unwrap() {
        assert!(b["resumes"].as_u64().unwrap() >= 2, "{b}");
        assert_eq!(b["rejoins"], 0, "{b}");
    }
}

/// Its twin: nginx's default 60 s never fires in a 15 s run: no resume, and the
/// reconnect threshold fails.
#[test]
fn twin_the_default_read_timeout_needs_no_resume() {
    let path = variant(
        "scenarios/faults/nginx-read-timeout.toml",
        "nginx-rt-twin",
        |src| src.replace("read-timeout = \"3s\"", "read-timeout = \"60s\""),
    );
    let (code, report, _, text) = run(&path, "nginx-rt-twin");
    assert_eq!(code, 1, "{text}");
    for b in report["bots"].as_array().unwrap() {
        assert_eq!(b["resumes"], 0, "{b}");
    }
}
