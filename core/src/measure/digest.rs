//! A run's events folded as they arrive: what [`super::measure_digest`] and the reports
//! need, in memory that grows with bots × tracks × bins, not with the event count.
//!
//! Media bins (`MediaSent`, `MediaReceived`) are folded into per-track and per-pair
//! counts and latency histograms and then dropped; every other event is kept as it came
//! (joins, faults, gaps, kicks: a few per bot per minute at most). A live run pushes each
//! event as it is written to `events.jsonl`; `sfu-harness report DIR` reads the file line
//! by line ([`Digest::read_jsonl`]) and never holds it whole.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

use hdrhistogram::Histogram;

use super::hist::add_serialized;
use crate::event::{BIN_US, Event, EventParseError, EventRecord};

/// (subscriber, publisher, track).
pub(super) type PairKey = (String, String, String);

/// Per-bin cells from the first bin seen: dense, because media flows every second.
#[derive(Default)]
pub(super) struct BinCells<T> {
    first: u64,
    cells: Vec<T>,
}

/// Bins more than this far from a track's first are ignored: a corrupt bin number must
/// not allocate without bound (ten days of one-second bins).
const MAX_BIN_SPAN: u64 = 864_000;

impl<T: Default + Clone> BinCells<T> {
    fn cell(&mut self, bin: u64) -> Option<&mut T> {
        if self.cells.is_empty() {
            self.first = bin;
        }
        if bin < self.first {
            let grow = self.first - bin;
            if grow + self.cells.len() as u64 > MAX_BIN_SPAN {
                return None;
            }
            self.cells
                .splice(0..0, std::iter::repeat_n(T::default(), grow as usize));
            self.first = bin;
        }
        let i = bin - self.first;
        if i >= MAX_BIN_SPAN {
            return None;
        }
        if i as usize >= self.cells.len() {
            self.cells.resize(i as usize + 1, T::default());
        }
        self.cells.get_mut(i as usize)
    }

    pub(super) fn get(&self, bin: u64) -> Option<&T> {
        self.cells
            .get(usize::try_from(bin.checked_sub(self.first)?).ok()?)
    }

    /// (bin, cell) in bin order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        (self.first..).zip(self.cells.iter())
    }
}

/// Receive side of one pair.
#[derive(Default)]
pub(super) struct RecvPair {
    /// Per bin: (packets, longest inter-arrival gap µs).
    pub(super) bins: BinCells<(u32, u64)>,
    /// Latency per phase (index into [`Digest::phases`]; 0 when there are none).
    pub(super) latency: BTreeMap<usize, Histogram<u64>>,
}

/// The run's phases as `PhaseStarted` events announced them: (start µs, name).
#[derive(Default)]
pub struct Phases(pub(super) Vec<(u64, String)>);

impl Phases {
    /// The phase in force at `t_us` (events before the first phase belong to it).
    pub(super) fn index_at(&self, t_us: u64) -> usize {
        self.0
            .partition_point(|(start, _)| *start <= t_us)
            .saturating_sub(1)
    }

    /// The phase of a send-time bin: the one in force at its end, so a second that
    /// straddles a phase start (an outage beginning mid-second) counts in the new phase.
    pub(super) fn index_of_bin(&self, bin: u64) -> usize {
        self.index_at(bin.saturating_add(1).saturating_mul(BIN_US) - 1)
    }

    /// The `phase` tag for index `i`; `None` when the scenario has no phases.
    pub(super) fn name(&self, i: usize) -> Option<&str> {
        self.0.get(i).map(|(_, n)| n.as_str())
    }
}

/// Everything measured from a run, folded event by event.
#[derive(Default)]
pub struct Digest {
    /// Every event except media bins, in arrival order.
    pub events: Vec<EventRecord>,
    /// (publisher, track) → packets sent per bin.
    pub(super) sent: BTreeMap<(String, String), BinCells<u32>>,
    pub(super) recv: BTreeMap<PairKey, RecvPair>,
    /// Worst pacing lag of every sent bin.
    pub(super) lags: Vec<u64>,
    /// Per bot: bins in which it received media or its media was received.
    pub(super) active_bins: BTreeMap<String, BTreeSet<u64>>,
    /// Latest event time.
    pub(super) span_us: u64,
    pub(super) phases: Phases,
    /// Media bins whose latency histogram could not be read.
    pub bad_histograms: u64,
    scratch: Vec<u8>,
}

impl Digest {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, r: EventRecord) {
        self.span_us = self.span_us.max(r.t_us);
        match r.event {
            Event::MediaSent {
                bot,
                track,
                bin,
                packets,
                max_pacing_lag_us,
            } => {
                let cells = self.sent.entry((bot, track)).or_default();
                if let Some(c) = cells.cell(bin) {
                    *c += packets;
                }
                self.lags.push(max_pacing_lag_us);
            }
            Event::MediaReceived {
                bot,
                publisher,
                track,
                bin,
                packets,
                max_gap_us,
                latency_hist,
            } => {
                if packets > 0 {
                    for who in [&bot, &publisher] {
                        match self.active_bins.get_mut(who) {
                            Some(set) => set.insert(bin),
                            None => self.active_bins.entry(who.clone()).or_default().insert(bin),
                        };
                    }
                }
                let pair = self.recv.entry((bot, publisher, track)).or_default();
                if let Some(c) = pair.bins.cell(bin) {
                    c.0 += packets;
                    c.1 = c.1.max(max_gap_us);
                }
                let latency = pair
                    .latency
                    .entry(self.phases.index_of_bin(bin))
                    .or_insert_with(|| {
                        Histogram::new(3).expect("3 significant figures is a valid precision")
                    });
                if add_serialized(latency, &latency_hist, &mut self.scratch).is_none() {
                    self.bad_histograms += 1;
                }
            }
            event => {
                if let Event::PhaseStarted { name } = &event {
                    self.phases.0.push((r.t_us, name.clone()));
                }
                self.events.push(EventRecord {
                    t_us: r.t_us,
                    event,
                });
            }
        }
    }

    /// Folds `events.jsonl` read line by line. Blank lines are skipped; a torn last line
    /// (a run killed mid-write) is ignored and counted in the second value; any other bad
    /// line is an error (`InvalidData`, wrapping an [`EventParseError`] naming the line).
    pub fn read_jsonl(mut reader: impl BufRead) -> std::io::Result<(Digest, usize)> {
        let mut d = Digest::new();
        let mut line = Vec::with_capacity(4096);
        for n in 1.. {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let ended = line.last() == Some(&b'\n');
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<EventRecord>(&line) {
                Ok(r) => d.push(r),
                // A run killed mid-write leaves a last line without its newline.
                Err(_) if !ended => return Ok((d, 1)),
                Err(source) => {
                    let e = EventParseError { line: n, source };
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
                }
            }
        }
        Ok((d, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"t_us":1,"type":"RunEnded","reason":"completed"}"#;

    #[test]
    fn torn_last_line_is_tolerated_but_a_bad_middle_line_is_not() {
        let (d, torn) =
            Digest::read_jsonl(format!("{GOOD}\n\n{{\"t_us\":2,\"ty").as_bytes()).unwrap();
        assert_eq!((d.events.len(), torn), (1, 1));
        let Err(err) = Digest::read_jsonl(format!("{GOOD}\nnot json\n{GOOD}\n").as_bytes()) else {
            panic!("a bad middle line must be an error");
        };
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(err.to_string(), "events.jsonl line 2 is not an event");
        // A bad last line that did end in a newline was written whole: not torn.
        assert!(Digest::read_jsonl(format!("{GOOD}\nnot json\n").as_bytes()).is_err());
    }

    #[test]
    fn media_bins_are_folded_and_dropped_other_events_kept() {
        let lines = [
            r#"{"t_us":5,"type":"MediaSent","bot":"a","track":"T","bin":3,"packets":50,"max_pacing_lag_us":7}"#,
            r#"{"t_us":6,"type":"MediaSent","bot":"a","track":"T","bin":1,"packets":49,"max_pacing_lag_us":9}"#,
            r#"{"t_us":7,"type":"MediaReceived","bot":"b","publisher":"a","track":"T","bin":3,"packets":48,"max_gap_us":30000,"latency_hist":""}"#,
            GOOD,
        ];
        let (d, _) = Digest::read_jsonl(lines.join("\n").as_bytes()).unwrap();
        assert_eq!(d.events.len(), 1);
        assert_eq!(d.span_us, 7);
        let sent = &d.sent[&("a".to_owned(), "T".to_owned())];
        assert_eq!(
            sent.iter().collect::<Vec<_>>(),
            [(1, &49), (2, &0), (3, &50)]
        );
        let pair = &d.recv[&("b".to_owned(), "a".to_owned(), "T".to_owned())];
        assert_eq!(pair.bins.get(3), Some(&(48, 30000)));
        assert_eq!(d.bad_histograms, 1); // "" is not a histogram
        assert_eq!(d.lags, [7, 9]);
        assert!(d.active_bins["a"].contains(&3) && d.active_bins["b"].contains(&3));
    }

    #[test]
    fn a_corrupt_bin_number_does_not_allocate_without_bound() {
        let mut cells = BinCells::<u32>::default();
        *cells.cell(10).unwrap() += 1;
        assert!(cells.cell(10 + MAX_BIN_SPAN).is_none());
        assert!(cells.cell(u64::MAX).is_none());
        assert_eq!(cells.iter().count(), 1);
    }
}
