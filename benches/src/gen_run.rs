//! Writes a synthetic run directory (`scenario.toml` + `events.jsonl`) of any size, so the
//! cost of building reports can be measured without running the bots for an hour:
//!
//! ```sh
//! cargo run --release -p sfu-harness-benches --bin gen-run -- \
//!     --bots 100 --publishers 100 --seconds 3600 reports/gen/100x1h
//! /usr/bin/time -v target/release/sfu-harness report reports/gen/100x1h
//! ```
//!
//! Every bot subscribes to every publisher but itself; media is audio at 50 packets/s with
//! a realistic latency spread, and one ws-drop-like fault at a third of the run gives every
//! bot a signal loss, a resume and a 300 ms gap, so recovery and the timeline have work.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use harness_core::event::{BIN_US, Event, EventRecord, SelectedCandidate};

struct Args {
    bots: usize,
    publishers: usize,
    seconds: u64,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        bots: 100,
        publishers: 100,
        seconds: 3600,
        out: PathBuf::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a whole number"))
        };
        match arg.as_str() {
            "--bots" => a.bots = num("--bots")? as usize,
            "--publishers" => a.publishers = num("--publishers")? as usize,
            "--seconds" => a.seconds = num("--seconds")?,
            s if !s.starts_with('-') && a.out.as_os_str().is_empty() => a.out = s.into(),
            s => return Err(format!("unknown argument {s:?}")),
        }
    }
    if a.out.as_os_str().is_empty() {
        return Err("usage: gen-run [--bots N] [--publishers P] [--seconds S] OUT_DIR".into());
    }
    a.publishers = a.publishers.min(a.bots);
    Ok(a)
}

/// A small deterministic generator (xorshift), so two runs write the same file.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match generate(&args) {
        Ok(n) => {
            eprintln!("wrote {n} events to {}", args.out.display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", args.out.display());
            std::process::ExitCode::FAILURE
        }
    }
}

fn generate(a: &Args) -> std::io::Result<u64> {
    std::fs::create_dir_all(&a.out)?;
    std::fs::write(
        a.out.join("scenario.toml"),
        format!(
            "name = \"generated\"\nduration = \"{}s\"\n\n[[groups]]\nname = \"bots\"\ncount = {}\n\n\
             [thresholds]\n\"continuity\" = [\"min >= 0.99\"]\n\"connect.media\" = [\"p(95) < 2s\"]\n\
             \"latency.oneway\" = [\"p(99) < 50ms\"]\n\"recovery\" = [\"max < 5s\"]\n",
            a.seconds, a.bots
        ),
    )?;
    let file = std::fs::File::create(a.out.join("events.jsonl"))?;
    let mut w = Out {
        w: BufWriter::with_capacity(1 << 20, file),
        n: 0,
    };
    let bot = |i: usize| format!("bots-{}", i + 1);
    let candidate = SelectedCandidate {
        protocol: "udp".into(),
        local_type: "host".into(),
        remote_type: "host".into(),
        remote_address: "172.18.0.2:7882".into(),
        local_address: String::new(),
    };
    w.put(
        0,
        Event::RunStarted {
            scenario: "generated".into(),
            run_id: "generated".into(),
            bots: a.bots as u32,
            duration_us: a.seconds * 1_000_000,
            host_cores: 0,
        },
    )?;
    for i in 0..a.bots {
        let t = 100_000 + i as u64 * 1000;
        w.put(
            t,
            Event::BotJoinStarted {
                bot: bot(i),
                group: "bots".into(),
                room: String::new(),
            },
        )?;
        w.put(
            t + 15_000,
            Event::SignalConnected {
                bot: bot(i),
                participant_sid: format!("PA_{i}"),
                server_version: "1.13.5".into(),
                node_id: String::new(),
            },
        )?;
        w.put(
            t + 230_000,
            Event::PeersConnected {
                bot: bot(i),
                publisher: Some(candidate.clone()),
                subscriber: Some(candidate.clone()),
            },
        )?;
        if i < a.publishers {
            w.put(
                t + 240_000,
                Event::TrackPublished {
                    bot: bot(i),
                    track: "audio".into(),
                    kind: "audio".into(),
                },
            )?;
        }
    }
    let start = 1_000_000; // media from the second bin on
    for i in 0..a.bots {
        for p in (0..a.publishers).filter(|&p| p != i) {
            w.put(
                start + 270_000,
                Event::FirstMedia {
                    bot: bot(i),
                    publisher: bot(p),
                    track: "audio".into(),
                    kind: "audio".into(),
                },
            )?;
        }
    }
    let fault_bin = a.seconds / 3;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut hist = bots::media::new_latency_histogram();
    // In time order, as a run writes them: at second `sec` the fault events of that
    // second, then the media bin that closed LATE_AFTER_US + 1 s earlier.
    let lag_bins = LATE / BIN_US + 1;
    for sec in 1..a.seconds + lag_bins {
        let bin = sec.wrapping_sub(lag_bins);
        let t = sec * BIN_US;
        if sec == fault_bin {
            let bin = sec;
            w.put(
                bin * BIN_US,
                Event::FaultApplied {
                    id: "faults[0]".into(),
                    kind: "ws-drop".into(),
                    target: "proxy".into(),
                    bots: vec![],
                    skew_us: 900,
                    until_end: false,
                },
            )?;
            for i in 0..a.bots {
                w.put(
                    bin * BIN_US + 2_000,
                    Event::SignalLost {
                        bot: bot(i),
                        reason: "signal closed".into(),
                    },
                )?;
                w.put(
                    bin * BIN_US + 3_000,
                    Event::ResumeStarted {
                        bot: bot(i),
                        attempt: 1,
                    },
                )?;
                w.put(bin * BIN_US + 20_000, Event::Resumed { bot: bot(i) })?;
            }
            for i in 0..a.bots {
                for p in (0..a.publishers).filter(|&p| p != i) {
                    w.put(
                        bin * BIN_US + 500_000,
                        Event::MediaGap {
                            bot: bot(i),
                            publisher: bot(p),
                            track: "audio".into(),
                            from_us: bin * BIN_US + 200_000,
                        },
                    )?;
                }
            }
        }
        if bin == 0 || bin >= a.seconds {
            continue;
        }
        for p in 0..a.publishers {
            w.put(
                t,
                Event::MediaSent {
                    bot: bot(p),
                    track: "audio".into(),
                    bin,
                    packets: 50,
                    max_pacing_lag_us: 300 + rng.next() % 700,
                },
            )?;
        }
        for i in 0..a.bots {
            for p in (0..a.publishers).filter(|&p| p != i) {
                hist.reset();
                for _ in 0..50 {
                    // 0.6-1.5 ms, and one packet in a hundred 8 ms later (a jitter spike).
                    let spike = u64::from(rng.next().is_multiple_of(100)) * 8000;
                    let _ = hist.record(600 + rng.next() % 900 + spike);
                }
                let gap = bin == fault_bin;
                w.put(
                    t,
                    Event::MediaReceived {
                        bot: bot(i),
                        publisher: bot(p),
                        track: "audio".into(),
                        bin,
                        packets: if gap { 35 } else { 50 },
                        max_gap_us: if gap {
                            300_000
                        } else {
                            20_000 + rng.next() % 5000
                        },
                        latency_hist: bots::media::encode_histogram(&hist),
                    },
                )?;
            }
        }
        if bin % 300 == 0 {
            eprintln!("  {bin}/{} s, {} events", a.seconds, w.n);
        }
    }
    for i in 0..a.bots {
        w.put(
            a.seconds * BIN_US + 2_500_000,
            Event::BotLeft {
                bot: bot(i),
                reason: "run ended".into(),
            },
        )?;
    }
    w.put(
        a.seconds * BIN_US + 3_000_000,
        Event::RunEnded {
            reason: "completed".into(),
        },
    )?;
    w.w.flush()?;
    Ok(w.n)
}

/// Bins are written once they closed: a bin's packets can arrive up to LATE_AFTER_US late.
const LATE: u64 = harness_core::event::LATE_AFTER_US;

struct Out {
    w: BufWriter<std::fs::File>,
    n: u64,
}

impl Out {
    fn put(&mut self, t_us: u64, event: Event) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.w, &EventRecord { t_us, event })?;
        self.w.write_all(b"\n")?;
        self.n += 1;
        Ok(())
    }
}
