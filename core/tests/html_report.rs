//! Every report format from a fixed, hand-made run record: snapshots of `report.html`,
//! `report.json`, `junit.xml` and the terminal summary, and the properties a snapshot
//! would not make obvious (self-contained, escaped, bounded).
//!
//! Refresh the snapshot after an intended change with
//! `UPDATE_SNAPSHOTS=1 cargo test -p sfu-harness-core --test html_report`, then read the
//! diff (and open `core/tests/fixtures/report.html` in a browser).

use std::path::PathBuf;

use base64::Engine as _;
use harness_core::event::{Event, EventRecord, SelectedCandidate};
use harness_core::measure::measure;
use harness_core::report::RunInfo;
use harness_core::threshold::ThresholdPlan;
use harness_core::verdict::{Outcome, judge};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2Serializer};

const S: u64 = 1_000_000;

fn hist(ms: &[(u64, u64)]) -> String {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for (v, n) in ms {
        h.record_n(v * 1000, *n).unwrap();
    }
    let mut buf = Vec::new();
    V2Serializer::new().serialize(&h, &mut buf).unwrap();
    base64::engine::general_purpose::STANDARD.encode(buf)
}

fn cand(protocol: &str, local: &str) -> Option<SelectedCandidate> {
    Some(SelectedCandidate {
        protocol: protocol.into(),
        local_type: local.into(),
        remote_type: "host".into(),
        remote_address: "10.0.0.2:7882".into(),
        local_address: String::new(),
    })
}

fn s(x: &str) -> String {
    x.to_owned()
}

/// A publisher and two listeners for 20 s; a ws-drop hits `lis-1` at 8 s (resumed at
/// 9.5 s), a UDP block from 12 s to 15 s, and `l&2` is kicked at 14 s and rejoins.
fn run_record() -> Vec<EventRecord> {
    let mut ev: Vec<(u64, Event)> = vec![
        (
            0,
            Event::RunStarted {
                scenario: s("ws-drop-and-kick"),
                run_id: s("r-0001"),
                bots: 3,
                duration_us: 20 * S,
                host_cores: 0,
            },
        ),
        (
            50_000,
            Event::SfuStarted {
                node: s("sfu-1"),
                image: s("livekit/livekit-server:v1.8.0"),
                url: s("ws://10.0.0.2:7880"),
                ready_us: 40_000,
                node_id: String::new(),
            },
        ),
    ];
    for (t, bot, group) in [
        (100_000, "pub-1", "speakers"),
        (150_000, "lis-1", "listeners"),
        (200_000, "l&2", "listeners"),
    ] {
        ev.push((
            t,
            Event::BotJoinStarted {
                bot: s(bot),
                group: s(group),
                room: String::new(),
            },
        ));
        ev.push((
            t + 200_000,
            Event::SignalConnected {
                bot: s(bot),
                participant_sid: s("PA_x"),
                server_version: s("1.8.0"),
                node_id: String::new(),
            },
        ));
        let tcp = bot == "l&2";
        let (p, l) = if tcp {
            ("tcp", "host")
        } else {
            ("udp", "srflx")
        };
        ev.push((
            t + 500_000,
            Event::PeersConnected {
                bot: s(bot),
                publisher: cand(p, l),
                subscriber: cand(p, l),
            },
        ));
    }
    ev.push((
        700_000,
        Event::TrackPublished {
            bot: s("pub-1"),
            track: s("audio"),
            kind: s("audio"),
        },
    ));
    for (t, bot) in [(900_000, "lis-1"), (950_000, "l&2")] {
        ev.push((
            t,
            Event::FirstMedia {
                bot: s(bot),
                publisher: s("pub-1"),
                track: s("audio"),
                kind: s("audio"),
            },
        ));
    }
    let (normal, slow) = (
        hist(&[(20, 40), (35, 9), (120, 1)]),
        hist(&[(30, 20), (400, 5)]),
    );
    for bin in 0..20u64 {
        let t = (bin + 1) * S;
        let sent = if bin == 0 { 15 } else { 50 };
        ev.push((
            t,
            Event::MediaSent {
                bot: s("pub-1"),
                track: s("audio"),
                bin,
                packets: sent,
                max_pacing_lag_us: 900,
            },
        ));
        for (bot, lost_bins, partial) in [("lis-1", 9, (8, 10)), ("l&2", 14, (15, 25))] {
            let packets = if bin == partial.0 { partial.1 } else { sent };
            if bin == lost_bins {
                continue;
            }
            let latency_hist = if bin == partial.0 {
                slow.clone()
            } else {
                normal.clone()
            };
            ev.push((
                t + 30_000,
                Event::MediaReceived {
                    bot: s(bot),
                    publisher: s("pub-1"),
                    track: s("audio"),
                    bin,
                    packets,
                    max_gap_us: 25_000,
                    latency_hist,
                },
            ));
        }
    }
    ev.extend([
        (
            8 * S,
            Event::FaultApplied {
                id: s("f1"),
                kind: s("ws-drop"),
                target: s("proxy"),
                bots: vec![s("lis-1")],
                skew_us: 1_200,
                until_end: false,
            },
        ),
        (
            8 * S + 1,
            Event::SignalLost {
                bot: s("lis-1"),
                reason: s("signal closed"),
            },
        ),
        (
            8_100_000,
            Event::ResumeStarted {
                bot: s("lis-1"),
                attempt: 1,
            },
        ),
        (9_500_000, Event::Resumed { bot: s("lis-1") }),
        (
            9_600_000,
            Event::MediaGap {
                bot: s("lis-1"),
                publisher: s("pub-1"),
                track: s("audio"),
                from_us: 8_200_000,
            },
        ),
        (
            12 * S,
            Event::FaultApplied {
                id: s("f2"),
                kind: s("block-udp"),
                target: s("sfu"),
                bots: vec![],
                skew_us: 800,
                until_end: false,
            },
        ),
        (
            14 * S,
            Event::Kicked {
                bot: s("l&2"),
                reason: s("DUPLICATE_IDENTITY"),
                action: s("DISCONNECT"),
            },
        ),
        (
            14_500_000,
            Event::RejoinStarted {
                bot: s("l&2"),
                attempt: 1,
            },
        ),
        (15 * S, Event::FaultCleared { id: s("f2") }),
        (
            15_200_000,
            Event::SignalConnected {
                bot: s("l&2"),
                participant_sid: s("PA_y"),
                server_version: s("1.8.0"),
                node_id: String::new(),
            },
        ),
        (
            15_600_000,
            Event::MediaGap {
                bot: s("l&2"),
                publisher: s("pub-1"),
                track: s("audio"),
                from_us: 13_900_000,
            },
        ),
        (
            20_050_000,
            Event::BotLeft {
                bot: s("pub-1"),
                reason: s("completed"),
            },
        ),
        (
            20_060_000,
            Event::BotLeft {
                bot: s("lis-1"),
                reason: s("completed"),
            },
        ),
        (
            20_070_000,
            Event::BotLeft {
                bot: s("l&2"),
                reason: s("completed"),
            },
        ),
        (
            20_100_000,
            Event::RunEnded {
                reason: s("completed"),
            },
        ),
    ]);
    // The SFU's Prometheus endpoint, scraped at 1 s, 10 s and 19 s.
    for (t, participants, packets_in) in [(1, 1.0, 40.0), (10, 3.0, 900.0), (19, 3.0, 1800.0)] {
        ev.push((
            t * S,
            Event::SfuMetricsScraped {
                node: s("sfu-1"),
                values: [("participants", participants), ("packets.in", packets_in)]
                    .into_iter()
                    .map(|(k, v)| (s(k), v))
                    .collect(),
            },
        ));
    }
    ev.sort_by_key(|(t, _)| *t);
    ev.into_iter()
        .map(|(t_us, event)| EventRecord { t_us, event })
        .collect()
}

fn info() -> RunInfo {
    RunInfo {
        run_id: s("r-0001"),
        scenario: s("ws-drop-and-kick"),
        sfu_image: s("livekit/livekit-server:v1.8.0"),
        sfu_config: serde_json::json!({ "port": 7880 }),
        duration_s: 20.0,
        ended: s("completed"),
    }
}

/// Every report of the fixed record: (report.html, report.json, junit.xml, terminal
/// summary, outcome).
fn reports(records: &[EventRecord]) -> (String, String, String, String, Outcome) {
    let m = measure(records);
    let plans = [
        ("continuity", "min >= 0.99", false),
        ("connect.media{group=listeners}", "p(95) < 2s", false),
        ("gap", "max < 500ms", true),
        ("recovery", "max < 5s", false),
    ]
    .map(|(k, e, x)| ThresholdPlan::parse(k, e, x).unwrap());
    let verdict = judge(&plans, &m.store, 20.0, m.invalid.clone());
    let info = info();
    let json =
        serde_json::to_string_pretty(&harness_core::report::report_json(&info, &m, &verdict))
            .unwrap()
            + "\n";
    let junit = harness_core::junit::render(&[harness_core::junit::SuiteInput {
        scenario: &info.scenario,
        run_id: &info.run_id,
        seconds: m.span_us as f64 / 1e6,
        verdict: &verdict,
        capacity: None,
    }]);
    let summary = harness_core::report::terminal_summary(
        &info,
        &m,
        &verdict,
        "reports/ws-drop-and-kick/r-0001",
    );
    (
        harness_core::html::render(&info, records, &m, &verdict),
        json,
        junit,
        summary,
        verdict.outcome,
    )
}

fn render(records: &[EventRecord]) -> (String, Outcome) {
    let (html, _, _, _, outcome) = reports(records);
    (html, outcome)
}

/// Compares `got` with `tests/fixtures/<name>`; `UPDATE_SNAPSHOTS=1` rewrites it.
fn snapshot(name: &str, got: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .expect("snapshot missing: run with UPDATE_SNAPSHOTS=1 to create it");
    if got != want {
        let line = got.lines().zip(want.lines()).position(|(a, b)| a != b);
        panic!(
            "{name} differs from {} (first differing line: {:?}); \
             if intended, rerun with UPDATE_SNAPSHOTS=1 and review the diff",
            path.display(),
            line.map(|l| l + 1)
        );
    }
}

#[test]
fn report_html_matches_snapshot() {
    let (html, outcome) = render(&run_record());
    assert_eq!(outcome, Outcome::Fail, "lis-1 lost most of bin 8");
    snapshot("report.html", &html);
}

#[test]
fn report_json_junit_and_terminal_summary_match_snapshots() {
    let (_, json, junit, summary, _) = reports(&run_record());
    snapshot("report.json", &json);
    snapshot("junit.xml", &junit);
    snapshot("summary.txt", &summary);
}

#[test]
fn openmetrics_text_matches_snapshot_and_ends_with_eof() {
    let records = run_record();
    let m = measure(&records);
    let plans = [ThresholdPlan::parse("continuity", "min >= 0.99", false).unwrap()];
    let verdict = judge(&plans, &m.store, 20.0, None);
    let text = harness_core::openmetrics::render(&info(), &m, &verdict);
    assert!(text.ends_with("\n# EOF\n"));
    assert!(text.contains(
        "sfu_harness_connect_media_seconds{scenario=\"ws-drop-and-kick\",run_id=\"r-0001\",group=\"listeners\",quantile=\"0.5\"} 0.75"
    ));
    snapshot("metrics.txt", &text);
}

#[test]
fn report_html_is_self_contained() {
    let (html, _) = render(&run_record());
    for banned in [
        "http://", "https://", "<script", "<link", "@import", "url(", "ws://",
    ] {
        assert!(!html.contains(banned), "report.html contains {banned:?}");
    }
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.ends_with("</html>\n"));
}

#[test]
fn report_html_names_every_bot_escaped_and_every_fault() {
    let (html, _) = render(&run_record());
    for bot in ["pub-1", "lis-1", "l&amp;2"] {
        assert!(
            html.contains(&format!(">{bot}</text>")),
            "no lane for {bot}"
        );
        assert!(
            html.contains(&format!("<td>{bot}</td>")),
            "no table row for {bot}"
        );
    }
    assert!(!html.contains("l&2"), "an identity went out unescaped");
    for label in ["f1 ws-drop", "f2 block-udp"] {
        assert!(html.contains(label), "no label {label:?}");
    }
    assert!(
        html.contains("DUPLICATE_IDENTITY (DISCONNECT)"),
        "kick reason missing"
    );
    assert!(html.contains("badge b-fail\">FAIL<"));
}

#[test]
fn report_html_is_byte_stable() {
    let records = run_record();
    assert_eq!(render(&records).0, render(&records).0);
}

#[test]
fn markup_in_identities_and_reasons_is_escaped() {
    let bot = "<img src=x onerror=alert(1)>";
    let records: Vec<EventRecord> = [
        (
            0,
            Event::BotJoinStarted {
                bot: s(bot),
                group: s("g\"1"),
                room: String::new(),
            },
        ),
        (
            S,
            Event::Kicked {
                bot: s(bot),
                reason: s("<b>bad</b>"),
                action: s("DISCONNECT"),
            },
        ),
        (
            2 * S,
            Event::FaultApplied {
                id: s("x<y"),
                kind: s("kill"),
                target: s("bots"),
                bots: vec![s(bot)],
                skew_us: 0,
                until_end: false,
            },
        ),
    ]
    .into_iter()
    .map(|(t_us, event)| EventRecord { t_us, event })
    .collect();
    let (html, _) = render(&records);
    for raw in ["<img", "<b>bad", "x<y", "g\"1"] {
        assert!(!html.contains(raw), "{raw:?} went out unescaped");
    }
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
}

/// An hour, 100 bots, one publisher, every listener reconnecting every 10 minutes:
/// the page stays well under a megabyte.
#[test]
fn an_hour_with_a_hundred_bots_stays_small() {
    let mut records = vec![EventRecord {
        t_us: 0,
        event: Event::TrackPublished {
            bot: s("p"),
            track: s("a"),
            kind: s("audio"),
        },
    }];
    let bots: Vec<String> = (0..100).map(|i| format!("b-{i:03}")).collect();
    for b in &bots {
        records.push(EventRecord {
            t_us: 0,
            event: Event::BotJoinStarted {
                bot: b.clone(),
                group: s("g"),
                room: String::new(),
            },
        });
        records.push(EventRecord {
            t_us: 1,
            event: Event::SignalConnected {
                bot: b.clone(),
                participant_sid: s("x"),
                server_version: s("1"),
                node_id: String::new(),
            },
        });
    }
    for bin in 0..3600u64 {
        let t = (bin + 1) * S;
        records.push(EventRecord {
            t_us: t,
            event: Event::MediaSent {
                bot: s("p"),
                track: s("a"),
                bin,
                packets: 50,
                max_pacing_lag_us: 0,
            },
        });
        for (i, b) in bots.iter().enumerate() {
            if (bin + i as u64).is_multiple_of(600) {
                records.push(EventRecord {
                    t_us: t,
                    event: Event::SignalLost {
                        bot: b.clone(),
                        reason: s("x"),
                    },
                });
                records.push(EventRecord {
                    t_us: t + 500_000,
                    event: Event::Resumed { bot: b.clone() },
                });
            }
            records.push(EventRecord {
                t_us: t,
                event: Event::MediaReceived {
                    bot: b.clone(),
                    publisher: s("p"),
                    track: s("a"),
                    bin,
                    packets: 49,
                    max_gap_us: 0,
                    latency_hist: String::new(),
                },
            });
        }
    }
    records.sort_by_key(|r| r.t_us);
    let (html, _) = render(&records);
    assert!(
        html.len() < 1_000_000,
        "report.html is {} bytes",
        html.len()
    );
    let points = html.split("<polyline").nth(1).unwrap().matches(',').count();
    assert!(points <= 600, "{points} points in the continuity series");
}
