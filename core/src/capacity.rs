//! A capacity search, judged: per step its load, cost and stop-on conditions; the knee
//! (the largest level that held, the first that broke, and what broke first); and the
//! cost per participant and per track, fitted over the steps.
//!
//! Rules (part of the report's contract):
//! - A step's window is its phase (`step-i`): from its `PhaseStarted` to the next one,
//!   and at most one `step-every` (the last step's hold to the end is not judged). Only a step whose window ran in full is judged; a step
//!   the run stopped in is listed as not judged.
//! - A step **breaks** when, in its window, a bot's join failed (`joins refused`), the
//!   SFU's CPU averaged [`SFU_CPU_LIMIT`] of the host's cores or more (`sfu cpu`), the
//!   SFU and the harness together did (`host cpu`: they share the machine, so the SFU
//!   had no more to take; the figures say how much of it the harness used), or a
//!   stop-on condition does not hold over the step's samples. A condition with no
//!   sample in the window cannot show a break and is noted, not failed.
//! - A step is **harness-limited** when the harness's own self-check failed in it (its
//!   event loop ran a timer more than [`LAG_BOUND_US`] late in at least
//!   [`LAGGING_MIN_COUNT`] seconds, and more than [`LAGGING_BINS_MAX_SHARE`] of them),
//!   or the kernel dropped datagrams at a bot's full socket (`ReceiveDropped`).
//!   The search then ends there and the run is invalid: a load tester never reports its
//!   own limit as the SFU's. The level is reported as "harness-limited at N".
//! - Cost is the steady part of each window (its second half, past the joins' burst):
//!   SFU CPU summed over nodes and averaged, memory at its highest. A figure per
//!   participant or per track is the slope of a least-squares line over the judged
//!   steps, with its R²; same-shaped rooms make participants and tracks grow together,
//!   so each slope charges the whole cost to its own unit (read one, not their sum).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::event::{Event, EventRecord};
use crate::measure::{LAG_BOUND_US, LAGGING_BINS_MAX_SHARE, LAGGING_MIN_COUNT, Measurements};
use crate::metrics::Aggregation;
use crate::plan::{BotPlan, CapacityPlan, Plan};

/// A step whose SFU used this share of the host's cores (or more) is SFU-limited.
pub const SFU_CPU_LIMIT: f64 = 0.9;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CapacityReport {
    /// What a level counts: `rooms` or `bots`.
    pub unit: &'static str,
    /// The searched group, when a step adds bots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub knee: Knee,
    pub steps: Vec<StepReport>,
    pub cost: Cost,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Knee {
    /// The largest level at which every condition held; `None`: not even the first.
    pub held: Option<u32>,
    /// The first level that broke; `None`: none did (see `reached-max`).
    pub broke: Option<u32>,
    /// What broke first at `broke` (`joins refused`, `sfu cpu`, `host cpu (…)`, or a
    /// condition as `key expr`), in that order when several did.
    pub limit: Option<String>,
    /// Every step up to the scenario's size held.
    pub reached_max: bool,
    /// The harness fell behind first, at this level: no SFU capacity is claimed
    /// beyond `held`.
    pub harness_limited: Option<u32>,
    /// One line for people: "held at 6 bots; broke at 8 (joins refused)".
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct StepReport {
    pub number: usize,
    pub level: u32,
    /// Bots of the run that started joining by the end of this step (plan).
    pub participants: u32,
    pub published_tracks: u32,
    pub subscribed_tracks: u32,
    /// Seconds on the run's clock.
    pub start_s: f64,
    pub end_s: f64,
    /// `held`, `broke`, `harness-limited`, or `not judged`.
    pub outcome: String,
    /// Why it broke, in the order of [`Knee::limit`].
    pub limits: Vec<String>,
    pub joins_failed: u32,
    pub conditions: Vec<ConditionResult>,
    pub sfu_cpu_cores: Option<f64>,
    pub sfu_memory_bytes: Option<f64>,
    pub harness_cpu_cores: Option<f64>,
    pub harness_memory_bytes: Option<f64>,
    pub continuity_p5: Option<f64>,
    pub latency_p95_s: Option<f64>,
    pub gap_max_s: Option<f64>,
    /// Media gaps over 200 ms in the step, summed over its pairs.
    pub freezes: Option<f64>,
    /// Seconds of the window whose event loop ran more than 100 ms late.
    pub lagging_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ConditionResult {
    pub key: String,
    pub expr: String,
    #[serde(serialize_with = "crate::report::serialize_opt_num")]
    pub observed: Option<f64>,
    pub held: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A least-squares line `y = slope · x + intercept` over the judged steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Fit {
    pub slope: f64,
    pub intercept: f64,
    /// 1 is a perfect line; near 0, the slope explains nothing.
    pub r2: f64,
    /// Steps fitted.
    pub points: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct Cost {
    /// SFU cores per participant, per published and per subscribed track.
    pub sfu_cpu_per_participant: Option<Fit>,
    pub sfu_cpu_per_published_track: Option<Fit>,
    pub sfu_cpu_per_subscribed_track: Option<Fit>,
    /// SFU bytes per participant.
    pub sfu_memory_per_participant: Option<Fit>,
    /// Harness cores per subscribed track, and bytes per bot.
    pub harness_cpu_per_subscribed_track: Option<Fit>,
    pub harness_memory_per_bot: Option<Fit>,
    /// Harness CPU slope over SFU CPU slope, per subscribed track: what one more
    /// subscriber costs the load generator against what it costs the SFU.
    pub harness_to_sfu: Option<f64>,
}

/// Load a step puts on the SFU, from the plan: participants, tracks.
fn load(bots: &[BotPlan], until: std::time::Duration) -> (u32, u32, u32) {
    let joined: Vec<&BotPlan> = bots.iter().filter(|b| b.join_at < until).collect();
    let tracks = |b: &BotPlan| u32::from(b.publish_audio) + u32::from(b.video.is_some());
    let published: u32 = joined.iter().map(|b| tracks(b)).sum();
    let mut per_room: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for b in &joined {
        let e = per_room.entry(b.room.as_str()).or_default();
        e.0 += 1;
        e.1 += tracks(b);
    }
    // Each bot subscribes to every track of its room but its own.
    let subscribed = joined
        .iter()
        .map(|b| per_room[b.room.as_str()].1 - tracks(b))
        .sum();
    (joined.len() as u32, published, subscribed)
}

/// Run-clock windows of the steps that started: (start µs, end µs, complete).
fn windows(plan: &CapacityPlan, events: &[EventRecord], end_us: u64) -> Vec<(u64, u64, bool)> {
    let starts: BTreeMap<&str, u64> = events
        .iter()
        .filter_map(|r| match &r.event {
            Event::PhaseStarted { name } => Some((name.as_str(), r.t_us)),
            _ => None,
        })
        .collect();
    let every = plan.step_every.as_micros() as u64;
    let mut out = Vec::new();
    for s in &plan.steps {
        let Some(&start) = starts.get(CapacityPlan::phase(s.number).as_str()) else {
            break;
        };
        let next = starts
            .get(CapacityPlan::phase(s.number + 1).as_str())
            .copied();
        // Every step is judged on one step-every (the last one holds on to the end of
        // the run, which is not part of its window); complete once `end_us` is past it
        // (with 1% slack for timer granularity).
        let end = next.unwrap_or(u64::MAX).min(start + every);
        let complete = end.saturating_sub(every / 100) <= end_us;
        out.push((start, end.min(end_us), complete));
    }
    out
}

/// Judges step `i` (from 0) of the search from the run so far. `cores` is the host's
/// CPU count (0: unknown, no SFU-CPU limit).
#[allow(clippy::too_many_arguments)]
fn judge_step(
    plan: &Plan,
    cap: &CapacityPlan,
    i: usize,
    window: (u64, u64, bool),
    events: &[EventRecord],
    m: &Measurements,
    cores: u32,
    run_seconds: f64,
) -> StepReport {
    let s = &cap.steps[i];
    let (start, end, complete) = window;
    let phase = CapacityPlan::phase(s.number);
    let in_window = |t: u64| t >= start && t < end;
    let steady_from = start + (end - start) / 2;
    let (mut joins_failed, mut lagging, mut seconds) = (0u32, 0usize, 0usize);
    // The harness lost packets at its own sockets in this step.
    let mut dropped = false;
    let mut sfu_cpu: BTreeMap<u64, f64> = BTreeMap::new();
    let (mut sfu_mem, mut harness_cpu, mut harness_mem) = (None::<f64>, Vec::new(), None::<f64>);
    for r in events.iter().filter(|r| in_window(r.t_us)) {
        match &r.event {
            Event::JoinFailed { .. } => joins_failed += 1,
            Event::ReceiveDropped { .. } => dropped = true,
            Event::EventLoopChecked { max_lag_us, .. } => {
                seconds += 1;
                lagging += usize::from(*max_lag_us > LAG_BOUND_US);
            }
            Event::ResourcesSampled {
                source,
                cpu_cores,
                memory_bytes,
                ..
            } if r.t_us >= steady_from => {
                let mem = *memory_bytes as f64;
                if source == "sfu" {
                    // Nodes sampled in the same second add up.
                    *sfu_cpu.entry(r.t_us / 1_000_000).or_default() += cpu_cores;
                    sfu_mem = Some(sfu_mem.map_or(mem, |x| x.max(mem)));
                } else if source == "harness" {
                    harness_cpu.push(*cpu_cores);
                    harness_mem = Some(harness_mem.map_or(mem, |x| x.max(mem)));
                }
            }
            _ => {}
        }
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let sfu_cpu_cores = mean(&sfu_cpu.values().copied().collect::<Vec<_>>());
    let harness_cpu_cores = mean(&harness_cpu);
    let agg = |metric: &str, a: Aggregation| {
        let f = crate::metrics::TagFilter::all().with("phase", &phase);
        m.store.aggregate(metric, &f, &a, run_seconds)
    };
    let conditions: Vec<ConditionResult> = cap
        .stop_on
        .iter()
        .map(|t| {
            let filter = t.filter.clone().with("phase", &phase);
            let observed = m
                .store
                .aggregate(&t.metric, &filter, &t.aggregation, run_seconds);
            let (held, note) = match observed {
                None => (true, Some("no samples in this step".to_owned())),
                Some(x) => (t.holds(x), None),
            };
            ConditionResult {
                key: t.key.clone(),
                expr: t.expr.clone(),
                observed,
                held,
                note,
            }
        })
        .collect();
    let mut limits = Vec::new();
    if joins_failed > 0 {
        limits.push("joins refused".to_owned());
    }
    if cores > 0
        && let Some(c) = sfu_cpu_cores
    {
        let h = harness_cpu_cores.unwrap_or(0.0);
        if c >= SFU_CPU_LIMIT * f64::from(cores) {
            limits.push("sfu cpu".to_owned());
        } else if c + h >= SFU_CPU_LIMIT * f64::from(cores) {
            limits.push(format!(
                "host cpu (sfu {c:.2} + harness {h:.2} of {cores} cores)"
            ));
        }
    }
    limits.extend(
        conditions
            .iter()
            .filter(|c| !c.held)
            .map(|c| format!("{} {}", c.key, c.expr)),
    );
    let harness_limited = dropped
        || (lagging >= LAGGING_MIN_COUNT
            && lagging as f64 / seconds.max(1) as f64 > LAGGING_BINS_MAX_SHARE);
    if !complete {
        limits.clear();
    }
    let outcome = if !complete {
        "not judged"
    } else if harness_limited {
        "harness-limited"
    } else if limits.is_empty() {
        "held"
    } else {
        "broke"
    };
    let (participants, published_tracks, subscribed_tracks) =
        load(&plan.bots, s.at + cap.step_every);
    StepReport {
        number: s.number,
        level: s.level,
        participants,
        published_tracks,
        subscribed_tracks,
        start_s: start as f64 / 1e6,
        end_s: end as f64 / 1e6,
        outcome: outcome.to_owned(),
        limits,
        joins_failed,
        conditions,
        sfu_cpu_cores,
        sfu_memory_bytes: sfu_mem,
        harness_cpu_cores,
        harness_memory_bytes: harness_mem,
        continuity_p5: agg("continuity", Aggregation::Percentile(5.0)),
        latency_p95_s: agg("latency.oneway", Aggregation::Percentile(95.0)),
        gap_max_s: agg("gap", Aggregation::Max),
        freezes: agg("freezes", Aggregation::Count),
        lagging_seconds: lagging as u32,
    }
}

/// Whether the search should stop: the first step complete by `now_us` (run clock)
/// that did not hold. For the run loop, on the events so far; pass a `now_us` that
/// leaves the latest media bins time to arrive ([`crate::event::LATE_AFTER_US`]).
pub fn should_stop(
    plan: &Plan,
    events: &[EventRecord],
    m: &Measurements,
    now_us: u64,
    cores: u32,
) -> Option<StepReport> {
    let cap = plan.capacity.as_ref()?;
    let w = windows(cap, events, now_us);
    w.iter()
        .enumerate()
        .filter(|(_, w)| w.2)
        .map(|(i, w)| judge_step(plan, cap, i, *w, events, m, cores, now_us as f64 / 1e6))
        .find(|s| s.outcome != "held")
}

/// The capacity section of a finished run; `None` when the plan has no search.
pub fn analyse(
    plan: &Plan,
    events: &[EventRecord],
    m: &Measurements,
    cores: u32,
) -> Option<CapacityReport> {
    let cap = plan.capacity.as_ref()?;
    let end_us = m.span_us;
    let mut steps = Vec::new();
    let mut stopped = false;
    for (i, w) in windows(cap, events, end_us).into_iter().enumerate() {
        let mut s = judge_step(plan, cap, i, w, events, m, cores, end_us as f64 / 1e6);
        if stopped {
            s.outcome = "not judged".to_owned();
            s.limits.clear();
        }
        stopped |= s.outcome != "held";
        steps.push(s);
    }
    let unit = cap.unit();
    let held = steps
        .iter()
        .take_while(|s| s.outcome == "held")
        .last()
        .map(|s| s.level);
    let first_bad = steps.iter().find(|s| s.outcome != "held");
    let harness_limited = first_bad
        .filter(|s| s.outcome == "harness-limited")
        .map(|s| s.level);
    let broke_step = first_bad.filter(|s| s.outcome == "broke");
    let reached_max = first_bad.is_none()
        && steps.len() == cap.steps.len()
        && steps.last().is_some_and(|s| s.outcome == "held");
    let held_text = held.map_or_else(
        || format!("no level held (first: {})", cap.steps[0].level),
        |h| format!("held at {}", cap.level(h)),
    );
    let summary = match (broke_step, harness_limited) {
        (Some(b), _) => format!(
            "{held_text}; broke at {} ({})",
            b.level,
            b.limits.first().map_or("", String::as_str)
        ),
        (None, Some(h)) => format!(
            "{held_text}; harness-limited at {}: the harness fell behind before the SFU broke, so this is not the SFU's capacity",
            cap.level(h)
        ),
        (None, None) if reached_max => {
            format!("{held_text}, the scenario's maximum: no knee within it")
        }
        (None, None) => format!("{held_text}; the run ended before the search did"),
    };
    let judged: Vec<&StepReport> = steps
        .iter()
        .filter(|s| s.outcome == "held" || s.outcome == "broke")
        .collect();
    let fit_of = |x: &dyn Fn(&StepReport) -> f64, y: &dyn Fn(&StepReport) -> Option<f64>| {
        let pts: Vec<(f64, f64)> = judged
            .iter()
            .filter_map(|s| y(s).map(|v| (x(s), v)))
            .collect();
        fit(&pts)
    };
    let participants = |s: &StepReport| f64::from(s.participants);
    let subscribed = |s: &StepReport| f64::from(s.subscribed_tracks);
    let sfu_sub = fit_of(&subscribed, &|s| s.sfu_cpu_cores);
    let harness_sub = fit_of(&subscribed, &|s| s.harness_cpu_cores);
    let cost = Cost {
        sfu_cpu_per_participant: fit_of(&participants, &|s| s.sfu_cpu_cores),
        sfu_cpu_per_published_track: fit_of(&|s| f64::from(s.published_tracks), &|s| {
            s.sfu_cpu_cores
        }),
        sfu_cpu_per_subscribed_track: sfu_sub,
        sfu_memory_per_participant: fit_of(&participants, &|s| s.sfu_memory_bytes),
        harness_cpu_per_subscribed_track: harness_sub,
        harness_memory_per_bot: fit_of(&participants, &|s| s.harness_memory_bytes),
        harness_to_sfu: sfu_sub
            .zip(harness_sub)
            .filter(|(s, _)| s.slope > 0.0)
            .map(|(s, h)| h.slope / s.slope),
    };
    Some(CapacityReport {
        unit,
        group: cap.group.clone(),
        knee: Knee {
            held,
            broke: broke_step.map(|s| s.level),
            limit: broke_step.and_then(|s| s.limits.first().cloned()),
            reached_max,
            harness_limited,
            summary,
        },
        steps,
        cost,
    })
}

/// The host's CPU count as the run recorded it (`RunStarted.host_cores`; 0: unknown).
pub fn host_cores(events: &[EventRecord]) -> u32 {
    events
        .iter()
        .find_map(|r| match &r.event {
            Event::RunStarted { host_cores, .. } => Some(*host_cores),
            _ => None,
        })
        .unwrap_or(0)
}

/// Judges the search of a measured run and folds it into the measurements: the
/// `capacity` section, the `capacity.level` metric (the largest level that held; 0 when
/// none did), and — when the harness fell behind first — the run's invalid reason.
pub fn apply(plan: &Plan, events: &[EventRecord], m: &mut Measurements) {
    let Some(report) = analyse(plan, events, m, host_cores(events)) else {
        return;
    };
    m.store.record(
        "capacity.level",
        crate::metrics::Tags::new(),
        f64::from(report.knee.held.unwrap_or(0)),
    );
    if let Some(level) = report.knee.harness_limited
        && m.invalid.is_none()
    {
        m.invalid = Some(format!(
            "the harness fell behind at {level} {}, before the SFU broke: harness-limited, not the SFU's capacity",
            report.unit
        ));
    }
    m.capacity = Some(report);
}

/// Least squares over `(x, y)`; `None` with fewer than two distinct x.
pub fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
    if points.len() < 2 || sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r2 = if syy > 0.0 {
        (sxy * sxy) / (sxx * syy)
    } else {
        1.0
    };
    Some(Fit {
        slope,
        intercept: my - slope * mx,
        r2,
        points: points.len(),
    })
}

#[cfg(test)]
mod tests;
