//! Per-fault facts and the `recovery` metric, from the event stream alone.
//!
//! Recovery of a fault: from its reference instant — the clear, or the fault itself for
//! instantaneous kinds (`ws-drop`, `sfu-restart`) — until every affected bot has its
//! signal back *and* media flows again on every pair it takes part in. A bot whose
//! session broke and never came back, or a pair whose media never resumed, makes the
//! recovery infinite. A bot whose session did not break and whose media did not stop
//! recovers at the reference instant (recovery 0).
//!
//! Affected bots: the ones the fault names, or every bot that was up when it hit.
//! `kill` and `duplicate-identity` get no recovery: the first removes a bot for good,
//! the second is judged by its kicks.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::event::{BIN_US, Event, EventRecord};
use crate::metrics::{MetricStore, Tags};

/// How long after a fault's reference instant a broken session still counts as caused
/// by it (a black-holed signal is only noticed at the ping timeout, 15 s by default).
pub const LOSS_WINDOW_US: u64 = 20_000_000;

/// A media gap belongs to a fault when it starts between [`GAP_LEAD_US`] before the fault
/// (the last packet before it) and [`GAP_SLACK_US`] after its reference instant: media
/// stops at once, unlike a signal loss, and a later fault's gaps must not be charged to
/// an earlier one.
pub const GAP_LEAD_US: u64 = 200_000;
pub const GAP_SLACK_US: u64 = 500_000;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct FaultSummary {
    pub id: String,
    pub kind: String,
    pub target: String,
    pub applied_s: f64,
    pub cleared_s: Option<f64>,
    /// How late the fault took effect against its schedule.
    pub skew_ms: f64,
    /// `None` when not measured for this kind or never cleared; `+inf` never recovered.
    #[serde(serialize_with = "crate::report::serialize_opt_num")]
    pub recovery_s: Option<f64>,
}

struct Applied {
    id: String,
    kind: String,
    target: String,
    bots: Vec<String>,
    at: u64,
    skew_us: u64,
    until_end: bool,
}

/// Bot facts recovery needs, in time order.
#[derive(Default)]
struct Timeline {
    up: Vec<u64>,   // SignalConnected, Resumed
    lost: Vec<u64>, // SignalLost, Kicked
    /// Media gaps seen on pairs this bot is part of: (from, to).
    gaps: Vec<(u64, u64)>,
    /// First packets on a pair this bot is part of (again after every join): (time,
    /// the other bot, whether this bot is the receiver).
    first_media: Vec<(u64, String, bool)>,
    /// Receive bins (by send time) that got packets, and sent bins, for "media never back".
    received_bins: BTreeSet<u64>,
    connected_at: Option<u64>,
    left_at: Option<u64>,
}

/// `active_bins`: per bot, the bins in which it received media or its media was received
/// (what [`super::Digest`] keeps of the media bins).
pub fn faults(
    records: &[EventRecord],
    active_bins: &BTreeMap<String, BTreeSet<u64>>,
    store: &mut MetricStore,
    end_us: u64,
) -> Vec<FaultSummary> {
    let mut applied = Vec::new();
    let mut cleared: BTreeMap<String, u64> = BTreeMap::new();
    let mut bots: BTreeMap<String, Timeline> = BTreeMap::new();
    for (bot, bins) in active_bins {
        bots.entry(bot.clone()).or_default().received_bins = bins.clone();
    }
    for r in records {
        let t = r.t_us;
        match &r.event {
            Event::FaultApplied {
                id,
                kind,
                target,
                bots: b,
                skew_us,
                until_end,
            } => applied.push(Applied {
                id: id.clone(),
                kind: kind.clone(),
                target: target.clone(),
                bots: b.clone(),
                at: t,
                skew_us: *skew_us,
                until_end: *until_end,
            }),
            Event::FaultCleared { id } => {
                cleared.insert(id.clone(), t);
            }
            Event::SignalConnected { bot, .. } => {
                let tl = bots.entry(bot.clone()).or_default();
                tl.up.push(t);
                tl.connected_at.get_or_insert(t);
            }
            Event::Resumed { bot } => bots.entry(bot.clone()).or_default().up.push(t),
            Event::SignalLost { bot, .. } | Event::Kicked { bot, .. } => {
                bots.entry(bot.clone()).or_default().lost.push(t)
            }
            Event::MediaGap {
                bot,
                publisher,
                from_us,
                ..
            } => {
                bots.entry(bot.clone())
                    .or_default()
                    .gaps
                    .push((*from_us, t));
                bots.entry(publisher.clone())
                    .or_default()
                    .gaps
                    .push((*from_us, t));
            }
            Event::FirstMedia { bot, publisher, .. } => {
                bots.entry(bot.clone())
                    .or_default()
                    .first_media
                    .push((t, publisher.clone(), true));
                bots.entry(publisher.clone())
                    .or_default()
                    .first_media
                    .push((t, bot.clone(), false));
            }
            Event::BotLeft { bot, .. } => {
                bots.entry(bot.clone())
                    .or_default()
                    .left_at
                    .get_or_insert(t);
            }
            _ => {}
        }
    }

    let mut out = Vec::new();
    for a in applied {
        let instantaneous = matches!(a.kind.as_str(), "ws-drop" | "sfu-restart");
        // Nothing recovers within the run from a fault that lasts until its end.
        let measured = !a.until_end
            && !matches!(
                a.kind.as_str(),
                "kill" | "duplicate-identity" | "server-switch"
            );
        let clear = cleared.get(&a.id).copied();
        let reference = if instantaneous { Some(a.at) } else { clear };
        let recovery = match reference {
            Some(reference) if measured => recovery_of(&a, reference, &bots, end_us),
            _ => None,
        };
        if let Some(secs) = recovery {
            store.record(
                "recovery",
                Tags::from([("fault".to_owned(), a.id.clone())]),
                secs,
            );
        }
        out.push(FaultSummary {
            id: a.id,
            kind: a.kind,
            target: a.target,
            applied_s: a.at as f64 / 1e6,
            cleared_s: clear.map(|c| c as f64 / 1e6),
            skew_ms: a.skew_us as f64 / 1e3,
            recovery_s: recovery,
        });
    }
    // In file order (`faults[N]`), not in the order their tasks happened to apply them:
    // two faults due at the same instant race.
    out.sort_by_key(|f: &FaultSummary| {
        f.id.strip_prefix("faults[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(usize::MAX)
    });
    out
}

/// Seconds from `reference` until every affected bot is back; `+inf` if one never is;
/// `None` if no bot was affected.
fn recovery_of(
    a: &Applied,
    reference: u64,
    bots: &BTreeMap<String, Timeline>,
    end_us: u64,
) -> Option<f64> {
    let affected: Vec<(&String, &Timeline)> = bots
        .iter()
        .filter(|(name, tl)| {
            if a.bots.is_empty() {
                tl.connected_at.is_some_and(|c| c <= a.at) && tl.left_at.is_none_or(|l| l > a.at)
            } else {
                a.bots.contains(name)
            }
        })
        .collect();
    if affected.is_empty() {
        return None;
    }
    let in_fault = |name: &String| affected.iter().any(|(n, _)| *n == name);
    let mut back = reference;
    for &(_, tl) in &affected {
        // Signal: the first loss after the fault hit, then the first "up" after it.
        let loss = tl
            .lost
            .iter()
            .copied()
            .find(|l| *l >= a.at && *l <= reference + LOSS_WINDOW_US);
        if let Some(loss) = loss {
            let Some(up) = tl.up.iter().copied().find(|u| *u > loss) else {
                return Some(f64::INFINITY);
            };
            back = back.max(up);
            // A new session: media is back when every pair the bot had before the fault
            // has its first packet again, each way. A peer that was down itself for
            // another reason is not this fault's to wait for.
            for (_, peer, receiving) in tl.first_media.iter().filter(|(t, ..)| *t < a.at) {
                let peer_down = !in_fault(peer)
                    && bots.get(peer).is_some_and(|p| {
                        p.lost.iter().any(|l| *l >= a.at && *l <= up)
                            || p.left_at.is_some_and(|l| l <= up)
                    });
                if peer_down {
                    continue;
                }
                if let Some((again, ..)) = tl
                    .first_media
                    .iter()
                    .find(|(t, p, r)| *t > up && p == peer && r == receiving)
                {
                    back = back.max(*again);
                }
            }
        }
        // Media: gaps that started with the fault, ending after it hit.
        for (from, to) in &tl.gaps {
            if *to > a.at && *from + GAP_LEAD_US >= a.at && *from <= reference + GAP_SLACK_US {
                back = back.max(*to);
            }
        }
        // Media that stopped for good: nothing received in any bin after the fault's.
        let after = a.at / BIN_US + 1;
        let last_bin = end_us / BIN_US;
        if after < last_bin
            && tl.received_bins.range(after..).next().is_none()
            && !tl.received_bins.is_empty()
        {
            return Some(f64::INFINITY);
        }
    }
    Some(back.saturating_sub(reference) as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventRecord;

    fn at(t_ms: u64, event: Event) -> EventRecord {
        EventRecord {
            t_us: t_ms * 1000,
            event,
        }
    }
    fn up(t: u64, bot: &str) -> EventRecord {
        at(
            t,
            Event::SignalConnected {
                bot: bot.into(),
                participant_sid: "PA".into(),
                server_version: "1".into(),
                node_id: String::new(),
            },
        )
    }
    fn applied(t: u64, id: &str, kind: &str) -> EventRecord {
        at(
            t,
            Event::FaultApplied {
                id: id.into(),
                kind: kind.into(),
                target: "proxy".into(),
                bots: vec![],
                skew_us: 700,
                until_end: false,
            },
        )
    }
    fn gap(t: u64, bot: &str, publisher: &str, from_ms: u64) -> EventRecord {
        at(
            t,
            Event::MediaGap {
                bot: bot.into(),
                publisher: publisher.into(),
                track: "TR".into(),
                from_us: from_ms * 1000,
            },
        )
    }
    fn run(records: &[EventRecord]) -> (Vec<FaultSummary>, MetricStore) {
        let mut store = MetricStore::new();
        let f = faults(records, &BTreeMap::new(), &mut store, 20_000_000);
        (f, store)
    }

    fn first(t: u64, bot: &str, publisher: &str) -> EventRecord {
        at(
            t,
            Event::FirstMedia {
                bot: bot.into(),
                publisher: publisher.into(),
                track: "TR".into(),
                kind: "audio".into(),
            },
        )
    }

    #[test]
    fn faults_are_reported_in_file_order_whichever_applied_first() {
        let (f, _) = run(&[
            up(100, "a"),
            applied(1_000, "faults[2]", "ws-stall"),
            applied(1_000, "faults[10]", "ws-stall"),
            applied(1_001, "faults[1]", "ws-stall"),
        ]);
        let ids: Vec<&str> = f.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["faults[1]", "faults[2]", "faults[10]"]);
    }

    #[test]
    fn a_fault_that_lasts_until_the_end_has_no_recovery() {
        let mut until_end = applied(1_000, "f1", "block-udp");
        if let Event::FaultApplied { until_end: u, .. } = &mut until_end.event {
            *u = true;
        }
        let cleared = at(10_000, Event::FaultCleared { id: "f1".into() });
        let (f, store) = run(&[up(100, "a"), until_end, cleared.clone()]);
        assert_eq!(f[0].recovery_s, None, "{f:?}");
        assert!(store.get("recovery").is_none(), "no recovery sample");
        // The same fault with a `for` that ended in the run is measured.
        let (f, _) = run(&[up(100, "a"), applied(1_000, "f1", "block-udp"), cleared]);
        assert_eq!(f[0].recovery_s, Some(0.0), "{f:?}");
    }

    #[test]
    fn a_rejoined_bot_recovers_when_its_pairs_have_media_again_not_at_the_join() {
        let lost = |t, bot: &str| {
            at(
                t,
                Event::SignalLost {
                    bot: bot.into(),
                    reason: "woke".into(),
                },
            )
        };
        let (f, _) = run(&[
            up(100, "a"),
            up(100, "b"),
            up(100, "c"),
            first(300, "a", "b"),
            first(300, "b", "a"),
            first(300, "a", "c"),
            first(300, "c", "a"),
            at(
                5000,
                Event::FaultApplied {
                    id: "faults[1]".into(),
                    kind: "sleep".into(),
                    target: "a".into(),
                    bots: vec!["a".into()],
                    skew_us: 0,
                    until_end: false,
                },
            ),
            at(
                15_000,
                Event::FaultCleared {
                    id: "faults[1]".into(),
                },
            ),
            lost(15_000, "a"),
            lost(15_000, "c"), // asleep too, under another fault: not a's to wait for
            up(15_010, "a"),
            first(15_100, "b", "a"),
            first(15_200, "a", "b"),
            up(17_000, "c"),
            first(17_100, "a", "c"),
        ]);
        assert_eq!(f[0].recovery_s, Some(0.2));
    }

    #[test]
    fn ws_drop_recovers_when_the_last_bot_resumed_and_its_media_came_back() {
        let (f, store) = run(&[
            up(100, "a"),
            up(120, "b"),
            applied(5000, "faults[1]", "ws-drop"),
            at(
                5002,
                Event::SignalLost {
                    bot: "a".into(),
                    reason: "reset".into(),
                },
            ),
            at(
                5003,
                Event::SignalLost {
                    bot: "b".into(),
                    reason: "reset".into(),
                },
            ),
            at(5010, Event::Resumed { bot: "a".into() }),
            at(5040, Event::Resumed { bot: "b".into() }),
            gap(5300, "a", "b", 4990), // b's media to a stopped with the drop, back at 5.3 s
        ]);
        assert_eq!(f[0].recovery_s, Some(0.3));
        assert_eq!(f[0].skew_ms, 0.7);
        assert_eq!(store.series("recovery").count(), 1);
    }

    #[test]
    fn a_bot_that_never_comes_back_makes_recovery_infinite() {
        let (f, _) = run(&[
            up(100, "a"),
            applied(5000, "faults[1]", "ws-drop"),
            at(
                5002,
                Event::SignalLost {
                    bot: "a".into(),
                    reason: "reset".into(),
                },
            ),
            at(
                5003,
                Event::GaveUp {
                    bot: "a".into(),
                    why: "no reconnection policy".into(),
                },
            ),
        ]);
        assert_eq!(f[0].recovery_s, Some(f64::INFINITY));
    }

    #[test]
    fn a_later_faults_gap_is_not_charged_to_an_earlier_one_and_clearable_faults_count_from_the_clear()
     {
        let (f, _) = run(&[
            up(100, "a"),
            applied(2000, "faults[1]", "ws-stall"),
            at(
                2300,
                Event::FaultCleared {
                    id: "faults[1]".into(),
                },
            ),
            applied(3900, "faults[2]", "block-udp"),
            at(
                4200,
                Event::FaultCleared {
                    id: "faults[2]".into(),
                },
            ),
            gap(4230, "a", "b", 3889),
        ]);
        assert_eq!(f[0].recovery_s, Some(0.0), "the stall broke nothing");
        assert_eq!(
            f[1].recovery_s,
            Some(0.03),
            "media back 30 ms after the clear"
        );
        assert_eq!(f[1].cleared_s, Some(4.2));
    }

    #[test]
    fn kill_and_duplicate_identity_get_no_recovery() {
        let (f, store) = run(&[up(100, "a"), applied(1000, "faults[1]", "kill")]);
        assert_eq!(f[0].recovery_s, None);
        assert_eq!(store.series("recovery").count(), 0);
    }
}
