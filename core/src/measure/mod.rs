//! From the event stream to metrics: the definitions of DESIGN.md, in code.
//!
//! [`measure`] reads events only, so a finished run, a crashed run's `events.jsonl` and a
//! hand-made stream in a test are measured the same way. Values a bot never reached are
//! recorded as `+inf` (a bot that never got media has an infinite `connect.media`), so a
//! bound over them fails instead of the bot silently dropping out of the sample.
//!
//! - `connect.signal`: `BotJoinStarted` → `SignalConnected`.
//! - `connect.ice`: `BotJoinStarted` → `PeersConnected`.
//! - `connect.media`: `BotJoinStarted` → `FirstMedia` of the last expected remote track
//!   (every track of every other bot of its room that had started joining by the time
//!   this bot's signal connected and had not left before it started; bots that join
//!   later, or left earlier, are not part of its connect).
//! - `continuity` per (subscriber, publisher track): received / sent over the send-time
//!   bins the subscriber was meant to receive: from the bin after its first packet of that
//!   track (or, if none ever came, from the bin in which both were up, plus
//!   [`NEVER_RECEIVED_GRACE_BINS`]) up to, not including, the publisher's last (partial)
//!   bin, and not past the subscriber's own leave.
//! - `gap` per pair: the longest inter-arrival interval, or the longest run of bins in the
//!   window that received nothing while the publisher sent, whichever is longer.
//! - `latency.oneway` per pair: the merged histograms of the pair's bins.
//! - `freezes` per pair (and phase): gaps longer than [`crate::event::GAP_EVENT_US`]
//!   (`MediaGap`) that ended within the pair's window; `count` sums them.
//!   `freeze.duration` per pair (and phase): their total length.
//! - `layer.switches` per video pair (and phase): how often the simulcast layer it
//!   received changed (`LayerReceived` with a `from`) within its window.
//! - `harness.lag`: the worst publisher pacing lag of each sent bin.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

mod digest;
mod faults;
mod hist;

pub use digest::Digest;
pub use faults::FaultSummary;

use crate::event::{BIN_US, Event, EventRecord, SelectedCandidate};

use crate::metrics::{MetricStore, Tags};

/// A subscriber that never received a track is judged from this many bins after both
/// ends were up (time it would reasonably take media to start).
pub const NEVER_RECEIVED_GRACE_BINS: u64 = 5;

/// The run is invalid when more than this share of sent bins had a pacing lag above
/// [`LAG_BOUND_US`], or of seconds an event-loop lag above it: the harness, not the
/// SFU, fell behind (a packet handled 100 ms late is 100 ms of latency and maybe a
/// gap that the SFU did not cause).
pub const LAGGING_BINS_MAX_SHARE: f64 = 0.05;
/// ... and at least this many of them: one hiccup of the machine (a container starting
/// beside the run) in a 6-s run is 17% of its seconds, but as tolerable as one in 20 s.
pub const LAGGING_MIN_COUNT: usize = 2;
pub const LAG_BOUND_US: u64 = 100_000;

/// Per-bot facts for `report.json`'s `bots[]`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct BotSummary {
    pub identity: String,
    pub group: String,
    pub joins: u32,
    pub join_failures: u32,
    /// Resumes plus successful rejoins.
    pub reconnects: u32,
    pub resumes: u32,
    pub rejoins: u32,
    pub kicks: u32,
    /// The reason of the last kick.
    pub kicked: Option<String>,
    pub gave_up: Option<String>,
    pub left: Option<String>,
    pub publisher_candidate: Option<SelectedCandidate>,
    pub subscriber_candidate: Option<SelectedCandidate>,
    pub ice_servers_ignored: u32,
    /// Requests the SFU refused (`RequestResponse`), as `Request: REASON`.
    pub requests_refused: Vec<String>,
    /// ICE candidate pairs (UDP) checked over all the bot's sessions, and those that
    /// never answered.
    pub ice_pairs_tried: u32,
    pub ice_pairs_failed: u32,
}

/// Per (subscriber, publisher track) facts, for reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct PairSummary {
    pub subscriber: String,
    pub publisher: String,
    pub track: String,
    pub sent: u64,
    pub received: u64,
    pub continuity: f64,
    pub longest_gap_s: f64,
}

/// Everything [`measure`] derives.
#[derive(Debug)]
pub struct Measurements {
    pub store: MetricStore,
    pub bots: BTreeMap<String, BotSummary>,
    pub pairs: Vec<PairSummary>,
    /// Why the run cannot be judged, if the harness fell behind.
    pub invalid: Option<String>,
    /// Microseconds from the first to the last event.
    pub span_us: u64,
    pub faults: Vec<FaultSummary>,
    /// SFU-side series per node: series name → (seconds since the run began, value),
    /// one point per scrape.
    pub sfu_metrics: BTreeMap<String, BTreeMap<String, Vec<(f64, f64)>>>,
    /// Continuity over time: per subscriber group, per send-time bin (index = bin),
    /// (received capped at sent, sent) summed over the pairs and windows judged above.
    pub continuity_bins: BTreeMap<String, Vec<(u64, u64)>>,
    /// The capacity search, judged; set by [`crate::capacity::apply`] (needs the plan).
    pub capacity: Option<crate::capacity::CapacityReport>,
}

#[derive(Default)]
struct BotTimes {
    group: String,
    /// The LiveKit room it joined (empty in logs older than rooms).
    room: String,
    join_started: Option<u64>,
    signal: Option<u64>,
    peers: Option<u64>,
    left: Option<u64>,
    /// First packet received per (publisher, kind of track).
    first_media: BTreeMap<(String, String), u64>,
}

/// Measures a run from its events (any order of bots; records sorted by time first).
pub fn measure(records: &[EventRecord]) -> Measurements {
    let mut d = Digest::new();
    for r in records {
        d.push(r.clone());
    }
    measure_digest(&d)
}

/// Measures a run from its folded events.
/// The tags of an SFU node's sample: its name, when the run has one.
fn node_tags(node: &str) -> Tags {
    let mut tags = Tags::new();
    if !node.is_empty() {
        tags.insert("node".to_owned(), node.to_owned());
    }
    tags
}

/// LiveKit adds to its byte counters once per [`SFU_STATS_PERIOD_S`] per stream (each
/// stream on its own phase), so a counter's growth over a span of exactly that length
/// holds exactly one report of every stream: the rate over it is exact at steady load,
/// where over any other span it is off by up to a report.
const SFU_STATS_PERIOD_S: f64 = 5.0;

/// Rates of a byte counter, in bits per second, over consecutive spans of
/// [`SFU_STATS_PERIOD_S`] (within the scrapes' half-second jitter): `(end time, rate)`.
/// A span without a scrape at its end, or in which the counter went down (the SFU
/// restarted), is skipped and the next starts there.
fn bitrates(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut from: Option<(f64, f64)> = None;
    for &(t, v) in points {
        let Some((t0, v0)) = from else {
            from = Some((t, v));
            continue;
        };
        let span = t - t0;
        if v < v0 || span > SFU_STATS_PERIOD_S + 0.5 {
            from = Some((t, v));
        } else if span >= SFU_STATS_PERIOD_S - 0.1 {
            out.push((t, (v - v0) * 8.0 / span));
            from = Some((t, v));
        }
    }
    out
}

pub fn measure_digest(d: &Digest) -> Measurements {
    let mut bots: BTreeMap<String, BotTimes> = BTreeMap::new();
    let mut summaries: BTreeMap<String, BotSummary> = BTreeMap::new();
    let mut published_at: BTreeMap<String, u64> = BTreeMap::new();
    // What each publisher publishes: (bot, kind) of every track.
    let mut published_kinds: BTreeSet<(String, String)> = BTreeSet::new();
    // Track id (`TR_…`) → `audio` / `video`, for the pairs' `kind` tag.
    let mut track_kinds: BTreeMap<String, String> = BTreeMap::new();
    let mut loop_lags: Vec<u64> = Vec::new();
    // Datagrams the kernel dropped at bots' full sockets, by bot.
    let mut receive_drops: BTreeMap<&str, u64> = BTreeMap::new();
    let mut sfu_metrics: BTreeMap<String, BTreeMap<String, Vec<(f64, f64)>>> = BTreeMap::new();
    // Media gaps longer than GAP_EVENT_US: (subscriber, publisher, track) → (end time,
    // length) of each.
    let mut gap_ends: BTreeMap<(String, String, String), Vec<(u64, u64)>> = BTreeMap::new();
    // Simulcast layer switches a subscriber saw: (subscriber, publisher, track) → times.
    let mut layer_switches: BTreeMap<(String, String, String), Vec<u64>> = BTreeMap::new();
    // Cost accounting samples: (metric, tags, value), recorded once the store exists.
    let mut resources: Vec<(&str, Tags, f64)> = Vec::new();
    let (sent, recv, lags, span_us) = (&d.sent, &d.recv, &d.lags, d.span_us);
    let phases = &d.phases;
    // Tags of a value measured in phase `i`: the phase only when the scenario has any.
    let with_phase = |mut tags: Tags, i: usize| {
        if let Some(p) = phases.name(i) {
            tags.insert("phase".to_owned(), p.to_owned());
        }
        tags
    };

    for r in &d.events {
        let t = r.t_us;
        match &r.event {
            Event::BotJoinStarted { bot, group, room } => {
                let b = bots.entry(bot.clone()).or_default();
                b.group = group.clone();
                b.room = room.clone();
                b.join_started.get_or_insert(t);
                entry(&mut summaries, bot).group = group.clone();
            }
            Event::SignalConnected { bot, .. } => {
                bots.entry(bot.clone()).or_default().signal.get_or_insert(t);
                entry(&mut summaries, bot).joins += 1;
            }
            Event::PeersConnected {
                bot,
                publisher,
                subscriber,
            } => {
                bots.entry(bot.clone()).or_default().peers.get_or_insert(t);
                let s = entry(&mut summaries, bot);
                s.publisher_candidate = publisher.clone();
                s.subscriber_candidate = subscriber.clone();
            }
            Event::TrackPublished { bot, track, kind } => {
                published_at.entry(bot.clone()).or_insert(t);
                track_kinds.insert(track.clone(), kind.clone());
                published_kinds.insert((bot.clone(), kind.clone()));
            }
            Event::FirstMedia {
                bot,
                publisher,
                kind,
                ..
            } => {
                bots.entry(bot.clone())
                    .or_default()
                    .first_media
                    .entry((publisher.clone(), kind.clone()))
                    .or_insert(t);
            }
            Event::EventLoopChecked { max_lag_us, .. } => loop_lags.push(*max_lag_us),
            Event::ReceiveDropped { bot, dropped } => {
                *receive_drops.entry(bot.as_str()).or_default() += dropped;
            }
            Event::MediaGap {
                bot,
                publisher,
                track,
                from_us,
            } => gap_ends
                .entry((bot.clone(), publisher.clone(), track.clone()))
                .or_default()
                .push((t, t.saturating_sub(*from_us))),
            Event::LayerReceived {
                bot,
                publisher,
                track,
                from: Some(_),
                ..
            } => layer_switches
                .entry((bot.clone(), publisher.clone(), track.clone()))
                .or_default()
                .push(t),
            Event::ResourcesSampled {
                source,
                node,
                cpu_cores,
                memory_bytes,
            } => {
                let (cpu, memory) = match source.as_str() {
                    "sfu" => ("sfu.cpu", "sfu.memory"),
                    "harness" => ("harness.cpu", "harness.memory"),
                    _ => continue,
                };
                let tags = with_phase(node_tags(node), phases.index_at(t));
                resources.push((cpu, tags.clone(), *cpu_cores));
                resources.push((memory, tags, *memory_bytes as f64));
            }
            Event::SfuMetricsScraped { node, values } => {
                let series = sfu_metrics.entry(node.clone()).or_default();
                for (k, v) in values {
                    series
                        .entry(k.clone())
                        .or_default()
                        .push((t as f64 / 1e6, *v));
                }
            }
            Event::IceServerIgnored { bot, .. } => {
                entry(&mut summaries, bot).ice_servers_ignored += 1
            }
            Event::JoinFailed { bot, .. } => entry(&mut summaries, bot).join_failures += 1,
            Event::IcePairsCounted { bot, tried, failed } => {
                let s = entry(&mut summaries, bot);
                s.ice_pairs_tried += tried;
                s.ice_pairs_failed += failed;
            }
            Event::RequestRefused {
                bot,
                request,
                reason,
                ..
            } => entry(&mut summaries, bot)
                .requests_refused
                .push(format!("{request}: {reason}")),
            Event::Resumed { bot } => entry(&mut summaries, bot).resumes += 1,
            Event::Kicked { bot, reason, .. } => {
                let s = entry(&mut summaries, bot);
                s.kicks += 1;
                s.kicked = Some(reason.clone());
            }
            Event::GaveUp { bot, why } => entry(&mut summaries, bot).gave_up = Some(why.clone()),
            Event::BotLeft { bot, reason } => {
                bots.entry(bot.clone()).or_default().left.get_or_insert(t);
                entry(&mut summaries, bot).left = Some(reason.clone());
            }
            _ => {}
        }
    }

    let mut store = MetricStore::new();
    for (metric, tags, v) in resources {
        store.record(metric, tags, v);
    }
    for (name, b) in &bots {
        let Some(start) = b.join_started else {
            continue;
        };
        let tags = with_phase(
            room_tag(bot_tags(&b.group, name), &b.room),
            phases.index_at(start),
        );
        store.record("connect.signal", tags.clone(), since(start, b.signal));
        store.record("connect.ice", tags.clone(), since(start, b.peers));
        // Every kind of track that every other bot of its room publishes, if that bot
        // had started joining by the time this one's signal connected: its first
        // packet. (A bot that joins later, as in a capacity ramp, is not part of this
        // bot's connect time.)
        let cutoff = b.signal.unwrap_or(u64::MAX);
        let expected: Vec<&(String, String)> = published_kinds
            .iter()
            .filter(|(p, _)| {
                p != name
                    && same_room(&bots, p, &b.room)
                    && bots.get(p).is_none_or(|o| {
                        o.join_started.is_none_or(|t| t <= cutoff)
                            && o.left.is_none_or(|l| l > start)
                    })
            })
            .collect();
        if !expected.is_empty() {
            let last = expected
                .iter()
                .map(|k| b.first_media.get(*k).copied())
                .try_fold(0u64, |acc, t| t.map(|t| acc.max(t)));
            store.record("connect.media", tags.clone(), since(start, last));
        }
    }

    let mut pairs = Vec::new();
    let mut continuity_bins: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for ((publisher, track), sent_bins) in sent {
        let Some(last_sent_bin) = sent_bins.iter().map(|(b, _)| b).last() else {
            continue;
        };
        for (sub, b) in &bots {
            if sub == publisher || b.join_started.is_none() || !same_room(&bots, publisher, &b.room)
            {
                continue;
            }
            let key = (sub.clone(), publisher.clone(), track.clone());
            let rb = recv.get(&key);
            // Judged from the first packet of the pair's kind of track on: a video
            // subscriber gets nothing until the SFU has a keyframe for it, which
            // connect.media counts; continuity counts what is lost after that.
            let kind = track_kinds.get(track).cloned().unwrap_or_default();
            let first = b.first_media.get(&(publisher.clone(), kind)).or_else(|| {
                b.first_media
                    .iter()
                    .filter(|((p, _), _)| p == publisher)
                    .map(|(_, t)| t)
                    .min()
            });
            let start_bin = match first {
                Some(t) => t / BIN_US + 1,
                None => {
                    let up = b
                        .signal
                        .unwrap_or(u64::MAX)
                        .max(published_at.get(publisher).copied().unwrap_or(0));
                    if up == u64::MAX {
                        continue; // never joined: connect.* already says so
                    }
                    up / BIN_US + NEVER_RECEIVED_GRACE_BINS
                }
            };
            let end_bin = match b.left {
                Some(t) => last_sent_bin.min(t / BIN_US),
                None => last_sent_bin,
            };
            let (mut s, mut rcv, mut gap_us, mut empty_run) = (0u64, 0u64, 0u64, 0u64);
            // Per phase: (sent, received, longest gap, current empty run).
            let mut per_phase: BTreeMap<usize, (u64, u64, u64, u64)> = BTreeMap::new();
            // Data messages ride the same bins (`data/_reliable`, `data/_lossy`) but are
            // judged as data.loss and data.latency, not as media.
            let data = track.strip_prefix("data/_");
            let mut no_over_time = Vec::new();
            let over_time = match data {
                Some(_) => &mut no_over_time,
                None => continuity_bins.entry(b.group.clone()).or_default(),
            };
            let window = sent_bins
                .iter()
                .skip_while(|(bin, _)| *bin < start_bin)
                .take_while(|(bin, _)| *bin < end_bin);
            for (bin, &n) in window {
                s += u64::from(n);
                let (got, g) = rb
                    .and_then(|rb| rb.bins.get(bin))
                    .copied()
                    .unwrap_or((0, 0));
                rcv += u64::from(got.min(n));
                if let Ok(i) = usize::try_from(bin) {
                    if over_time.len() <= i {
                        over_time.resize(i + 1, (0, 0));
                    }
                    over_time[i].0 += u64::from(got.min(n));
                    over_time[i].1 += u64::from(n);
                }
                gap_us = gap_us.max(g);
                let ph = per_phase.entry(phases.index_of_bin(bin)).or_default();
                ph.0 += u64::from(n);
                ph.1 += u64::from(got.min(n));
                ph.2 = ph.2.max(g);
                if got == 0 && n > 0 {
                    empty_run += BIN_US;
                    gap_us = gap_us.max(empty_run);
                    ph.3 += BIN_US;
                    ph.2 = ph.2.max(ph.3);
                } else {
                    empty_run = 0;
                    ph.3 = 0;
                }
            }
            if s == 0 {
                continue;
            }
            let continuity = rcv as f64 / s as f64;
            let mut tags = room_tag(pair_tags(&b.group, sub, publisher), &b.room);
            if let Some(kind) = data.or(track_kinds.get(track).map(String::as_str)) {
                tags.insert("kind".to_owned(), kind.to_owned());
            }
            if data.is_some() {
                for (&i, &(ps, pr, ..)) in per_phase.iter().filter(|(_, p)| p.0 > 0) {
                    let loss = 1.0 - pr as f64 / ps as f64;
                    store.record("data.loss", with_phase(tags.clone(), i), loss);
                }
                for (&i, h) in rb.iter().flat_map(|rb| &rb.latency) {
                    if !h.is_empty() {
                        store.record_histogram("data.latency", with_phase(tags.clone(), i), h);
                    }
                }
                continue;
            }
            // Freezes and layer switches: the pair's that ended within its judged window,
            // by phase.
            let (from_us, to_us) = (start_bin * BIN_US, end_bin.saturating_mul(BIN_US));
            let within = |t: u64| t >= from_us && t < to_us;
            let mut freezes: BTreeMap<usize, (u32, u64)> = BTreeMap::new();
            for &(t, len) in gap_ends.get(&key).into_iter().flatten() {
                if within(t) {
                    let f = freezes.entry(phases.index_at(t)).or_default();
                    f.0 += 1;
                    f.1 += len;
                }
            }
            let mut switches: BTreeMap<usize, u32> = BTreeMap::new();
            for &t in layer_switches.get(&key).into_iter().flatten() {
                if within(t) {
                    *switches.entry(phases.index_at(t)).or_default() += 1;
                }
            }
            let video = tags.get("kind").is_some_and(|k| k == "video");
            // With phases, a pair has one sample per phase it was judged in.
            for (&i, &(ps, pr, pgap, _)) in per_phase.iter().filter(|(_, p)| p.0 > 0) {
                let tags = with_phase(tags.clone(), i);
                store.record("continuity", tags.clone(), pr as f64 / ps as f64);
                store.record("gap", tags.clone(), pgap as f64 / 1e6);
                let (n, len) = freezes.get(&i).copied().unwrap_or_default();
                store.record("freezes", tags.clone(), f64::from(n));
                store.record("freeze.duration", tags.clone(), len as f64 / 1e6);
                if video {
                    let n = switches.get(&i).copied().unwrap_or(0);
                    store.record("layer.switches", tags, f64::from(n));
                }
            }
            for (&i, h) in rb.iter().flat_map(|rb| &rb.latency) {
                if !h.is_empty() {
                    store.record_histogram("latency.oneway", with_phase(tags.clone(), i), h);
                }
            }
            pairs.push(PairSummary {
                subscriber: sub.clone(),
                publisher: publisher.clone(),
                track: track.clone(),
                sent: s,
                received: rcv,
                continuity,
                longest_gap_s: gap_us as f64 / 1e6,
            });
        }
    }

    for lag in lags {
        store.record("harness.lag", Tags::new(), *lag as f64 / 1e6);
    }
    // The SFU's own bitrate, per node, from its byte counters.
    for (node, series) in &sfu_metrics {
        for (counter, metric) in [
            ("bytes.in", "sfu.bitrate.in"),
            ("bytes.out", "sfu.bitrate.out"),
        ] {
            let tags = node_tags(node);
            for (t, bits_per_s) in bitrates(series.get(counter).map_or(&[][..], Vec::as_slice)) {
                store.record(
                    metric,
                    with_phase(tags.clone(), phases.index_at((t * 1e6) as u64)),
                    bits_per_s,
                );
            }
        }
    }
    for points in sfu_metrics.values().filter_map(|s| s.get("participants")) {
        for (_, v) in points {
            store.record("sfu.participants", Tags::new(), *v);
        }
    }
    for lag in &loop_lags {
        store.record("harness.loop.lag", Tags::new(), *lag as f64 / 1e6);
    }
    let reasons: Vec<String> = [
        (lags.as_slice(), "media bins were paced"),
        (
            loop_lags.as_slice(),
            "seconds had its event loop run a timer",
        ),
    ]
    .into_iter()
    .filter_map(|(lags, what)| {
        let lagging = lags.iter().filter(|l| **l > LAG_BOUND_US).count();
        (lagging >= LAGGING_MIN_COUNT
            && lagging as f64 / lags.len() as f64 > LAGGING_BINS_MAX_SHARE)
            .then(|| {
                format!(
                    "{lagging} of {} {what} more than {} ms late",
                    lags.len(),
                    LAG_BOUND_US / 1000
                )
            })
    })
    .chain((!receive_drops.is_empty()).then(|| {
        let total: u64 = receive_drops.values().sum();
        format!(
            "{total} datagrams sent to {} bots were dropped at their full sockets (first: {})",
            receive_drops.len(),
            receive_drops.keys().next().copied().unwrap_or_default()
        )
    }))
    .collect();
    let invalid =
        (!reasons.is_empty()).then(|| format!("the harness fell behind: {}", reasons.join("; ")));

    for s in summaries.values_mut() {
        s.rejoins = s.joins.saturating_sub(1);
        s.reconnects = s.resumes + s.rejoins;
        let tags = bot_tags(&s.group, &s.identity);
        store.record("reconnects", tags.clone(), f64::from(s.reconnects));
        store.record("kicks", tags.clone(), f64::from(s.kicks));
        store.record("joins.failed", tags, f64::from(s.join_failures));
    }
    continuity_bins.retain(|_, bins| bins.iter().any(|b| b.1 > 0));
    let faults = faults::faults(&d.events, &d.active_bins, &mut store, span_us);
    Measurements {
        store,
        bots: summaries,
        pairs,
        invalid,
        span_us,
        faults,
        sfu_metrics,
        continuity_bins,
        capacity: None,
    }
}

fn entry<'a>(summaries: &'a mut BTreeMap<String, BotSummary>, bot: &str) -> &'a mut BotSummary {
    summaries
        .entry(bot.to_owned())
        .or_insert_with(|| BotSummary {
            identity: bot.to_owned(),
            ..Default::default()
        })
}

/// Seconds from `start` to `end`, or `+inf` when `end` never happened.
fn since(start: u64, end: Option<u64>) -> f64 {
    end.map_or(f64::INFINITY, |e| e.saturating_sub(start) as f64 / 1e6)
}

fn bot_tags(group: &str, bot: &str) -> Tags {
    Tags::from([
        ("group".to_owned(), group.to_owned()),
        ("bot".to_owned(), bot.to_owned()),
    ])
}

/// Adds the `room` tag, when the bot's join named its room.
fn room_tag(mut tags: Tags, room: &str) -> Tags {
    if !room.is_empty() {
        tags.insert("room".to_owned(), room.to_owned());
    }
    tags
}

/// Whether `publisher` joined `room` (a publisher never seen joining counts as in every
/// room: hand-made streams name no rooms).
fn same_room(bots: &BTreeMap<String, BotTimes>, publisher: &str, room: &str) -> bool {
    bots.get(publisher).is_none_or(|p| p.room == room)
}

fn pair_tags(group: &str, sub: &str, publisher: &str) -> Tags {
    let mut t = bot_tags(group, sub);
    t.insert("pair".to_owned(), format!("{sub}<-{publisher}"));
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates_span_the_sfus_stats_period_and_start_over_after_a_restart() {
        let points = [
            (0.0, 0.0),
            (1.0, 100.0),
            (5.0, 1_250_000.0), // one report of every stream: 2 Mbit/s
            (10.0, 2_500_000.0),
            (11.0, 10.0), // the counter went down: the SFU restarted
            (16.0, 625_010.0),
            (23.0, 900_000.0), // a span with missing scrapes: skipped
            (28.0, 1_525_000.0),
        ];
        assert_eq!(
            bitrates(&points),
            [
                (5.0, 2_000_000.0),
                (10.0, 2_000_000.0),
                (16.0, 1_000_000.0),
                (28.0, 1_000_000.0)
            ]
        );
    }

    fn lag_events(pacing: &[u64], event_loop: &[u64]) -> Vec<EventRecord> {
        let pacing = pacing.iter().enumerate().map(|(i, &lag)| Event::MediaSent {
            bot: "a".into(),
            track: "T".into(),
            bin: i as u64,
            packets: 50,
            max_pacing_lag_us: lag,
        });
        let event_loop = event_loop.iter().map(|&lag| Event::EventLoopChecked {
            max_lag_us: lag,
            ticks: 100,
        });
        pacing
            .chain(event_loop)
            .enumerate()
            .map(|(i, event)| EventRecord {
                t_us: i as u64 * 1000,
                event,
            })
            .collect()
    }

    /// Datagrams lost at a bot's own full socket were the SFU's to deliver: any such
    /// loss makes the run invalid, with how many and whose.
    #[test]
    fn datagrams_dropped_at_a_bots_socket_make_the_run_invalid() {
        let ok = [5_000; 10];
        let mut events = lag_events(&ok, &ok);
        assert_eq!(measure(&events).invalid, None);
        for (bot, dropped) in [("lean-2", 3), ("lean-1", 4), ("lean-2", 1)] {
            events.push(EventRecord {
                t_us: 20_000,
                event: Event::ReceiveDropped {
                    bot: bot.into(),
                    dropped,
                },
            });
        }
        assert_eq!(
            measure(&events).invalid.as_deref(),
            Some(
                "the harness fell behind: 8 datagrams sent to 2 bots were dropped at their \
                 full sockets (first: lean-1)"
            )
        );
    }

    #[test]
    fn a_harness_that_fell_behind_makes_the_run_invalid_and_says_which_check() {
        // One late second never invalidates a run, even a short one (1 of 6: 17%)...
        let short = [5_000; 6];
        let mut one_late = short;
        one_late[3] = 180_000;
        assert_eq!(measure(&lag_events(&short, &one_late)).invalid, None);
        // ... two do, when they are more than 5% of it.
        one_late[4] = 120_000;
        assert!(measure(&lag_events(&short, &one_late)).invalid.is_some());
        let ok = [5_000; 40];
        let mut loop_late = ok;
        loop_late[..2].fill(150_000); // 2 of 40 seconds: within the 5% allowed
        assert_eq!(measure(&lag_events(&ok, &loop_late)).invalid, None);
        loop_late[2] = 100_001; // 3 of 40: more than 5%
        assert_eq!(
            measure(&lag_events(&ok, &loop_late)).invalid.as_deref(),
            Some(
                "the harness fell behind: 3 of 40 seconds had its event loop run a timer \
                 more than 100 ms late"
            )
        );
        let m = measure(&lag_events(&loop_late, &loop_late));
        let reason = m.invalid.unwrap();
        assert!(
            reason.contains("3 of 40 media bins were paced")
                && reason.contains("; 3 of 40 seconds"),
            "{reason}"
        );
        let lag = m.store.aggregate(
            "harness.loop.lag",
            &crate::metrics::TagFilter::default(),
            &crate::metrics::Aggregation::Max,
            40.0,
        );
        assert_eq!(lag, Some(0.15));
    }

    #[test]
    fn with_phases_each_pair_is_judged_per_phase_and_joins_carry_their_phase() {
        let s = |x: &str| x.to_owned();
        let mut ev = vec![
            (0, Event::PhaseStarted { name: s("steady") }),
            (
                100_000,
                Event::BotJoinStarted {
                    bot: s("a"),
                    group: s("g"),
                    room: String::new(),
                },
            ),
            (
                100_000,
                Event::BotJoinStarted {
                    bot: s("b"),
                    group: s("g"),
                    room: String::new(),
                },
            ),
            (
                150_000,
                Event::SignalConnected {
                    bot: s("b"),
                    participant_sid: s("P"),
                    server_version: s("1"),
                    node_id: String::new(),
                },
            ),
            (
                200_000,
                Event::TrackPublished {
                    bot: s("a"),
                    track: s("T"),
                    kind: s("audio"),
                },
            ),
            (
                1_200_000,
                Event::FirstMedia {
                    bot: s("b"),
                    publisher: s("a"),
                    track: s("T"),
                    kind: s("audio"),
                },
            ),
            (6_000_000, Event::PhaseStarted { name: s("outage") }),
            (8_000_000, Event::PhaseStarted { name: s("after") }),
        ];
        for bin in 1..=10u64 {
            ev.push((
                bin * 1_000_000 + 3_000_000,
                Event::MediaSent {
                    bot: s("a"),
                    track: s("T"),
                    bin,
                    packets: 50,
                    max_pacing_lag_us: 0,
                },
            ));
            let packets = if (6..=7).contains(&bin) { 0 } else { 50 };
            ev.push((
                bin * 1_000_000 + 3_000_000,
                Event::MediaReceived {
                    bot: s("b"),
                    publisher: s("a"),
                    track: s("T"),
                    bin,
                    packets,
                    max_gap_us: 20_000,
                    latency_hist: String::new(),
                },
            ));
        }
        let records: Vec<EventRecord> = ev
            .into_iter()
            .map(|(t_us, event)| EventRecord { t_us, event })
            .collect();
        let m = measure(&records);
        let get = |metric: &str, phase: &str, agg: crate::metrics::Aggregation| {
            m.store.aggregate(
                metric,
                &crate::metrics::TagFilter::default().with("phase", phase),
                &agg,
                10.0,
            )
        };
        use crate::metrics::Aggregation::{Count, Max, Min};
        assert_eq!(get("continuity", "steady", Min), Some(1.0));
        assert_eq!(get("continuity", "outage", Min), Some(0.0));
        assert_eq!(get("gap", "outage", Max), Some(2.0));
        assert_eq!(get("continuity", "after", Min), Some(1.0));
        assert_eq!(get("connect.signal", "steady", Count), Some(2.0)); // a never connected: inf
        assert_eq!(get("connect.signal", "after", Count), None);
        // The pair's overall figure stays in pairs[].
        assert_eq!(m.pairs[0].continuity, 0.75);
    }
}
