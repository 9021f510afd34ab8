//! Live progress of a run, derived from its event stream: elapsed and remaining time,
//! bots connected out of the plan's, faults in force.
//!
//! On a terminal it is one status line on stderr, redrawn in place under the event
//! lines; otherwise (CI logs, a pipe) a plain line every [`PLAIN_EVERY_US`] of run time.
//! Time is the run's own clock as the events carry it: the probe of
//! [`crate::selfcheck`] emits an event every second, so the line never stalls.

use std::collections::BTreeSet;
use std::io::Write as _;

use harness_core::event::{Event, EventRecord};
use harness_core::fault::FaultKind;

/// How often a plain (non-terminal) progress line is printed, in run time.
pub const PLAIN_EVERY_US: u64 = 5_000_000;
/// A terminal's status line is redrawn at most this often.
const REDRAW_EVERY_US: u64 = 250_000;

#[derive(Debug, Default)]
pub struct Progress {
    bots_planned: u32,
    duration_us: u64,
    /// When the first bot started joining: the scenario's time 0.
    started_us: Option<u64>,
    now_us: u64,
    connected: BTreeSet<String>,
    /// (id, kind) of faults applied and not yet cleared.
    faults: BTreeSet<(String, String)>,
    ended: bool,
}

impl Progress {
    pub fn observe(&mut self, r: &EventRecord) {
        self.now_us = self.now_us.max(r.t_us);
        match &r.event {
            Event::RunStarted {
                bots, duration_us, ..
            } => {
                self.bots_planned = *bots;
                self.duration_us = *duration_us;
            }
            Event::BotJoinStarted { .. } => {
                self.started_us.get_or_insert(r.t_us);
            }
            Event::PeersConnected { bot, .. } | Event::Resumed { bot } => {
                self.connected.insert(bot.clone());
            }
            Event::SignalLost { bot, .. }
            | Event::Kicked { bot, .. }
            | Event::BotLeft { bot, .. }
            | Event::JoinFailed { bot, .. } => {
                self.connected.remove(bot);
            }
            // Instantaneous faults act once; they are never "in force".
            Event::FaultApplied { id, kind, .. }
                if !FaultKind::from_name(kind).is_some_and(FaultKind::instantaneous) =>
            {
                self.faults.insert((id.clone(), kind.clone()));
            }
            Event::FaultCleared { id } => self.faults.retain(|(f, _)| f != id),
            Event::RunEnded { .. } => self.ended = true,
            _ => {}
        }
    }

    /// `12.0s of 20s (8.0s left) · bots 3/4 connected · faults: faults[1] sfu-drain`
    pub fn status(&self) -> String {
        let elapsed = self.started_us.map_or(0, |s| self.now_us.saturating_sub(s));
        let left = match self.duration_us.saturating_sub(elapsed) {
            0 => "bots leaving".to_owned(),
            us => format!("{:.1}s left", us as f64 / 1e6),
        };
        let elapsed = elapsed.min(self.duration_us);
        let faults = if self.faults.is_empty() {
            "none".to_owned()
        } else {
            let names: Vec<String> = self
                .faults
                .iter()
                .map(|(id, k)| format!("{id} {k}"))
                .collect();
            names.join(", ")
        };
        format!(
            "{:.1}s of {:.0}s ({left}) · bots {}/{} connected · faults: {faults}",
            elapsed as f64 / 1e6,
            self.duration_us as f64 / 1e6,
            self.connected.len(),
            self.bots_planned,
        )
    }
}

/// Prints event lines and the progress, to a terminal or as plain lines.
pub struct Printer {
    progress: Progress,
    tty: bool,
    last_status_us: Option<u64>,
}

impl Printer {
    pub fn new(tty: bool) -> Self {
        Printer {
            progress: Progress::default(),
            tty,
            last_status_us: None,
        }
    }

    /// Takes one event: prints its line (if it has one) and, when due, the status.
    pub fn event(&mut self, r: &EventRecord, line: Option<String>) {
        self.progress.observe(r);
        let mut err = std::io::stderr().lock();
        if self.tty {
            if let Some(line) = line {
                let _ = write!(err, "\r\x1b[2K{line}\n");
                self.last_status_us = None; // the status line was overwritten
            }
            let due = self
                .last_status_us
                .is_none_or(|t| self.progress.now_us >= t + REDRAW_EVERY_US);
            if self.progress.ended {
                let _ = write!(err, "\r\x1b[2K");
            } else if due && self.progress.started_us.is_some() {
                let _ = write!(err, "\r\x1b[2K{}", self.progress.status());
                self.last_status_us = Some(self.progress.now_us);
            }
        } else {
            if let Some(line) = line {
                let _ = writeln!(err, "{line}");
            }
            let Some(started) = self.progress.started_us else {
                return;
            };
            let last = self.last_status_us.unwrap_or(started);
            if !self.progress.ended && self.progress.now_us >= last + PLAIN_EVERY_US {
                let t = self.progress.now_us as f64 / 1e6;
                let _ = writeln!(err, "[{t:7.2}s] progress: {}", self.progress.status());
                self.last_status_us = Some(self.progress.now_us);
            }
        }
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_ms: u64, event: Event) -> EventRecord {
        EventRecord {
            t_us: t_ms * 1000,
            event,
        }
    }

    #[test]
    fn status_follows_bots_and_faults_in_force() {
        let mut p = Progress::default();
        let bot = |b: &str| b.to_owned();
        for r in [
            at(
                0,
                Event::RunStarted {
                    scenario: bot("s"),
                    run_id: bot("r"),
                    bots: 3,
                    duration_us: 20_000_000,
                    host_cores: 0,
                },
            ),
            at(
                1000,
                Event::BotJoinStarted {
                    bot: bot("a"),
                    group: bot("g"),
                    room: String::new(),
                },
            ),
            at(
                1200,
                Event::PeersConnected {
                    bot: bot("a"),
                    publisher: None,
                    subscriber: None,
                },
            ),
            at(
                1300,
                Event::PeersConnected {
                    bot: bot("b"),
                    publisher: None,
                    subscriber: None,
                },
            ),
            at(
                4000,
                Event::FaultApplied {
                    id: bot("faults[1]"),
                    kind: bot("sfu-drain"),
                    target: bot("sfu"),
                    bots: vec![],
                    skew_us: 0,
                    until_end: false,
                },
            ),
            at(
                4000,
                Event::FaultApplied {
                    id: bot("faults[2]"),
                    kind: bot("ws-drop"),
                    target: bot("proxy"),
                    bots: vec![],
                    skew_us: 0,
                    until_end: false,
                },
            ),
            at(
                5000,
                Event::SignalLost {
                    bot: bot("b"),
                    reason: bot("x"),
                },
            ),
        ] {
            p.observe(&r);
        }
        assert_eq!(
            p.status(),
            "4.0s of 20s (16.0s left) · bots 1/3 connected · faults: faults[1] sfu-drain"
        );
        p.observe(&at(
            8000,
            Event::FaultCleared {
                id: bot("faults[1]"),
            },
        ));
        p.observe(&at(8100, Event::Resumed { bot: bot("b") }));
        assert_eq!(
            p.status(),
            "7.1s of 20s (12.9s left) · bots 2/3 connected · faults: none"
        );
        p.observe(&at(
            23_000,
            Event::BotLeft {
                bot: bot("a"),
                reason: bot("left"),
            },
        ));
        assert_eq!(
            p.status(),
            "20.0s of 20s (bots leaving) · bots 1/3 connected · faults: none"
        );
    }
}
