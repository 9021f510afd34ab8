//! Reports built from a measured run: `report.json` (the contract of DESIGN.md) and the
//! terminal summary. Pure: the runtime writes the strings where they belong.
//!
//! Numbers that never happened (a bot that never connected) are `+inf` in the metrics;
//! JSON has no infinity, so they are written as the string `"inf"`.

use serde_json::{Map, Value, json};

use crate::measure::Measurements;
use crate::metrics::{Aggregation, MetricStore, TagFilter, Unit, catalogue};
use crate::verdict::{Outcome, Verdict};

/// Bumped on any incompatible change to `report.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// Facts about the run that are not measurements.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub run_id: String,
    pub scenario: String,
    pub sfu_image: String,
    /// The SFU config as started, secrets already redacted.
    pub sfu_config: Value,
    pub duration_s: f64,
    /// `completed`, `interrupted`, or an error.
    pub ended: String,
}

/// Serde helper: `Option<f64>` as null, a number, or `"inf"`.
pub fn serialize_opt_num<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    v.map_or(Value::Null, num).serialize(s)
}

/// A JSON number, or `"inf"` / `"-inf"` / `"nan"` for what JSON cannot hold.
pub fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else if x.is_nan() {
        json!("nan")
    } else if x > 0.0 {
        json!("inf")
    } else {
        json!("-inf")
    }
}

const SUMMARY_AGGS: &[(&str, Aggregation)] = &[
    ("count", Aggregation::Count),
    ("min", Aggregation::Min),
    ("med", Aggregation::Med),
    ("avg", Aggregation::Avg),
    ("p(95)", Aggregation::Percentile(95.0)),
    ("p(99)", Aggregation::Percentile(99.0)),
    ("max", Aggregation::Max),
];

/// Per metric: its unit and the usual aggregations over every series.
pub fn metrics_json(store: &MetricStore, run_seconds: f64) -> Value {
    let mut out = Map::new();
    for entry in catalogue() {
        let all = TagFilter::default();
        if store.get(entry.name).is_none() {
            continue;
        }
        let mut m = Map::new();
        m.insert("unit".into(), json!(unit_name(entry.unit)));
        for (label, agg) in SUMMARY_AGGS {
            if let Some(v) = store.aggregate(entry.name, &all, agg, run_seconds) {
                m.insert((*label).into(), num(v));
            }
        }
        out.insert(entry.name.into(), Value::Object(m));
    }
    Value::Object(out)
}

fn unit_name(u: Unit) -> &'static str {
    match u {
        Unit::Duration => "seconds",
        Unit::Ratio => "ratio",
        Unit::Count => "count",
        Unit::Cores => "cores",
        Unit::Bytes => "bytes",
        Unit::Bitrate => "bits per second",
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Invalid { .. } => "invalid",
    }
}

/// The whole `report.json` value.
pub fn report_json(info: &RunInfo, m: &Measurements, verdict: &Verdict) -> Value {
    let thresholds: Vec<Value> = verdict
        .thresholds
        .iter()
        .map(|t| {
            json!({
                "metric": t.metric,
                "key": t.key,
                "expr": t.expr,
                "observed": t.observed.map_or(Value::Null, num),
                "pass": t.pass,
                "expected-to-fail": t.expected_to_fail,
                "note": t.note,
            })
        })
        .collect();
    let invalid_reason = match &verdict.outcome {
        Outcome::Invalid { reason } => Value::String(reason.clone()),
        _ => Value::Null,
    };
    let pairs: Vec<Value> = m
        .pairs
        .iter()
        .map(|p| {
            json!({
                "subscriber": p.subscriber,
                "publisher": p.publisher,
                "track": p.track,
                "sent": p.sent,
                "received": p.received,
                "continuity": num(p.continuity),
                "longest-gap-s": num(p.longest_gap_s),
            })
        })
        .collect();
    let mut out = json!({
        "schema-version": SCHEMA_VERSION,
        "scenario": info.scenario,
        "run-id": info.run_id,
        "verdict": outcome_name(&verdict.outcome),
        "invalid-reason": invalid_reason,
        "exit-code": verdict.outcome.exit_code(),
        "ended": info.ended,
        "duration-s": num(info.duration_s),
        "sfu": { "image": info.sfu_image, "config": info.sfu_config },
        "thresholds": thresholds,
        "metrics": metrics_json(&m.store, info.duration_s),
        "bots": m.bots.values().collect::<Vec<_>>(),
        "pairs": pairs,
        "faults": m.faults,
        "sfu-metrics": sfu_metrics_json(m),
    });
    if let (Some(c), Value::Object(o)) = (&m.capacity, &mut out) {
        o.insert(
            "capacity".into(),
            serde_json::to_value(c).expect("capacity report is plain data"),
        );
    }
    out
}

/// Per node and series: last and max value, and every (seconds, value) point.
fn sfu_metrics_json(m: &Measurements) -> Value {
    let nodes: serde_json::Map<String, Value> = m
        .sfu_metrics
        .iter()
        .map(|(node, series)| {
            let series: serde_json::Map<String, Value> = series
                .iter()
                .map(|(name, points)| {
                    let max = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
                    let samples: Vec<Value> = points
                        .iter()
                        .map(|(t, v)| json!([num(*t), num(*v)]))
                        .collect();
                    let last = points.last().map_or(Value::Null, |p| num(p.1));
                    (
                        name.clone(),
                        json!({ "last": last, "max": num(max), "samples": samples }),
                    )
                })
                .collect();
            (node.clone(), Value::Object(series))
        })
        .collect();
    Value::Object(nodes)
}

/// Seconds as a person reads them: `412 ms`, `2.31 s`, `inf`.
pub fn human_seconds(s: f64) -> String {
    if !s.is_finite() {
        "never".to_owned()
    } else if s < 0.01 {
        format!("{:.2} ms", s * 1000.0)
    } else if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        format!("{s:.2} s")
    }
}

fn human(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Duration => human_seconds(v),
        Unit::Ratio => format!("{v:.4}"),
        Unit::Count => format!("{v}"),
        Unit::Cores => format!("{v:.3}"),
        Unit::Bytes => human_bytes(v),
        Unit::Bitrate => human_bitrate(v),
    }
}

/// Bits per second as Mbit/s with two decimals, or kbit/s below a megabit.
pub fn human_bitrate(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.2} Mbit/s", v / 1e6)
    } else {
        format!("{:.0} kbit/s", v / 1e3)
    }
}

/// Bytes as MB (10^6) with one decimal, or kB below a megabyte.
pub fn human_bytes(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1} MB", v / 1e6)
    } else {
        format!("{:.0} kB", v / 1e3)
    }
}

/// `cost  sfu 0.41 cores avg, 63.2 MB max · harness 0.12 cores, 40.1 MB`, when the
/// run was accounted; empty otherwise.
fn cost_line(m: &Measurements, seconds: f64) -> String {
    let all = TagFilter::default();
    let get = |metric: &str, a: Aggregation| m.store.aggregate(metric, &all, &a, seconds);
    let part = |who: &str| {
        let cpu = get(&format!("{who}.cpu"), Aggregation::Avg)?;
        let mem = get(&format!("{who}.memory"), Aggregation::Max)?;
        Some(format!(
            "{who} {cpu:.2} cores avg, {} max",
            human_bytes(mem)
        ))
    };
    let parts: Vec<String> = ["sfu", "harness"].into_iter().filter_map(part).collect();
    if parts.is_empty() {
        return String::new();
    }
    format!("  cost            {}\n", parts.join(" · "))
}

/// The capacity search: the knee, the steps, the fitted cost.
fn capacity_lines(c: &crate::capacity::CapacityReport) -> String {
    let mut s = format!("  capacity        {}\n", c.knee.summary);
    for st in &c.steps {
        let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_owned(), f);
        s.push_str(&format!(
            "    step {:>2}  {:>4} {}  {:>4} bots  sfu {:>10}  {:>9}  continuity p5 {:>6}  latency p95 {:>8}  {}{}\n",
            st.number,
            st.level,
            c.unit,
            st.participants,
            opt(st.sfu_cpu_cores, &|x| format!("{x:.2} cores")),
            opt(st.sfu_memory_bytes, &human_bytes),
            opt(st.continuity_p5, &|x| format!("{x:.3}")),
            opt(st.latency_p95_s, &human_seconds),
            st.outcome,
            if st.limits.is_empty() {
                String::new()
            } else {
                format!(" ({})", st.limits.join("; "))
            }
        ));
    }
    let fit = |label: &str, f: Option<crate::capacity::Fit>, show: &dyn Fn(f64) -> String| {
        f.map(|f| {
            format!(
                "    {label:<34} {}  (R² {:.2}, {} steps)\n",
                show(f.slope),
                f.r2,
                f.points
            )
        })
        .unwrap_or_default()
    };
    let cores = |x: f64| format!("{:.4} cores", x);
    s.push_str(&fit(
        "sfu cpu per participant",
        c.cost.sfu_cpu_per_participant,
        &cores,
    ));
    s.push_str(&fit(
        "sfu cpu per subscribed track",
        c.cost.sfu_cpu_per_subscribed_track,
        &cores,
    ));
    s.push_str(&fit(
        "sfu memory per participant",
        c.cost.sfu_memory_per_participant,
        &human_bytes,
    ));
    s.push_str(&fit(
        "harness cpu per subscribed track",
        c.cost.harness_cpu_per_subscribed_track,
        &cores,
    ));
    s.push_str(&fit(
        "harness memory per bot",
        c.cost.harness_memory_per_bot,
        &human_bytes,
    ));
    if let Some(r) = c.cost.harness_to_sfu {
        s.push_str(&format!(
            "    harness/sfu cost per subscribed track {r:.2}\n"
        ));
    }
    s
}

/// The summary printed at the end of a run.
pub fn terminal_summary(
    info: &RunInfo,
    m: &Measurements,
    verdict: &Verdict,
    report_dir: &str,
) -> String {
    let mut s = String::new();
    let word = match &verdict.outcome {
        Outcome::Pass => "PASS".to_owned(),
        Outcome::Fail => "FAIL".to_owned(),
        Outcome::Invalid { reason } => format!("INVALID ({reason})"),
    };
    s.push_str(&format!(
        "{} — {word}   run {}\n",
        info.scenario, info.run_id
    ));
    let all = TagFilter::default();
    for entry in catalogue() {
        let get = |a: &Aggregation| m.store.aggregate(entry.name, &all, a, info.duration_s);
        let Some(count) = get(&Aggregation::Count).filter(|c| *c > 0.0) else {
            continue;
        };
        // Self-checks, and the SFU's gauge (whose `count` would sum scrapes), are in
        // report.json and report.html; the summary keeps to what the run measured.
        // (capacity.level has its own line below.)
        if entry.name.starts_with("harness.")
            || entry.name.starts_with("sfu.")
            || entry.name.starts_with("capacity.")
        {
            continue;
        }
        let (Some(min), Some(med), Some(p95), Some(max)) = (
            get(&Aggregation::Min),
            get(&Aggregation::Med),
            get(&Aggregation::Percentile(95.0)),
            get(&Aggregation::Max),
        ) else {
            continue;
        };
        let u = entry.unit;
        s.push_str(&format!(
            "  {:<15} min {:>9}  med {:>9}  p95 {:>9}  max {:>9}  (n={count})\n",
            entry.name,
            human(u, min),
            human(u, med),
            human(u, p95),
            human(u, max)
        ));
    }
    s.push_str(&cost_line(m, info.duration_s));
    if let Some(c) = &m.capacity {
        s.push_str(&capacity_lines(c));
    }
    for f in &m.faults {
        let recovery = match f.recovery_s {
            Some(r) => format!("recovery {}", human_seconds(r)),
            None => "recovery not measured".to_owned(),
        };
        s.push_str(&format!(
            "  fault {} {} on {} at {:.2} s (skew {:.1} ms): {recovery}\n",
            f.id, f.kind, f.target, f.applied_s, f.skew_ms
        ));
    }
    for t in &verdict.thresholds {
        let mark = if t.pass { "✔" } else { "✘" };
        let observed = t.observed.map_or("no samples".to_owned(), |v| {
            let unit = catalogue()
                .iter()
                .find(|e| e.name == t.metric)
                .map_or(Unit::Count, |e| e.unit);
            human(unit, v)
        });
        let expected = if t.expected_to_fail {
            " (expected to fail)"
        } else {
            ""
        };
        s.push_str(&format!(
            "  {mark} {} {}{expected}   observed {observed}\n",
            t.key, t.expr
        ));
    }
    s.push_str(&format!("  report: {report_dir}/report.json\n"));
    s
}
