//! The run's own metrics as OpenMetrics text (`metrics.txt` in the run directory), for
//! dashboards and for pushing into a time-series store after a nightly run.
//!
//! Each catalogue metric with samples becomes a `summary` (quantiles 0.5, 0.95 and 0.99,
//! `_count` and `_sum`) per subscriber group, plus one series over every group; durations
//! are in seconds as OpenMetrics wants, a bot that never got there is `+Inf`. Each
//! threshold is a gauge (`1` held, `0` broke) and the run a `_info` series. Counters of
//! the SFU itself are not repeated here: they are LiveKit's own, on its endpoint.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::measure::Measurements;
use crate::metrics::{Aggregation, TagFilter, Unit, catalogue};
use crate::report::RunInfo;
use crate::verdict::{Outcome, Verdict};

const PREFIX: &str = "sfu_harness_";

/// The whole exposition, ending in `# EOF`.
pub fn render(info: &RunInfo, m: &Measurements, verdict: &Verdict) -> String {
    let mut o = String::new();
    let run = format!(
        "scenario=\"{}\",run_id=\"{}\"",
        esc(&info.scenario),
        esc(&info.run_id)
    );
    let outcome = match &verdict.outcome {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Invalid { .. } => "invalid",
    };
    let _ = writeln!(o, "# TYPE {PREFIX}run info");
    let _ = writeln!(o, "# HELP {PREFIX}run one sfu-harness run and its verdict");
    let _ = writeln!(o, "{PREFIX}run_info{{{run},verdict=\"{outcome}\"}} 1");
    for entry in catalogue() {
        let Some(metric) = m.store.get(entry.name) else {
            continue;
        };
        let unit = match entry.unit {
            Unit::Duration => Some("seconds"),
            Unit::Ratio => Some("ratio"),
            Unit::Count => None,
            Unit::Cores => Some("cores"),
            Unit::Bytes => Some("bytes"),
            Unit::Bitrate => Some("bits_per_second"),
        };
        let name = format!(
            "{PREFIX}{}{}",
            entry.name.replace(['.', '-'], "_"),
            unit.map_or(String::new(), |u| format!("_{u}"))
        );
        let _ = writeln!(o, "# TYPE {name} summary");
        if let Some(u) = unit {
            let _ = writeln!(o, "# UNIT {name} {u}");
        }
        let _ = writeln!(o, "# HELP {name} {}", esc_help(entry.description));
        let groups: BTreeSet<&str> = metric
            .series()
            .filter_map(|(tags, _)| tags.get("group").map(String::as_str))
            .collect();
        let filters = std::iter::once((String::new(), TagFilter::default())).chain(
            groups.into_iter().map(|g| {
                (
                    format!(",group=\"{}\"", esc(g)),
                    TagFilter::default().with("group", g),
                )
            }),
        );
        for (labels, filter) in filters {
            let agg = |a: &Aggregation| m.store.aggregate(entry.name, &filter, a, info.duration_s);
            for (q, a) in [
                ("0.5", Aggregation::Med),
                ("0.95", Aggregation::Percentile(95.0)),
                ("0.99", Aggregation::Percentile(99.0)),
            ] {
                if let Some(v) = agg(&a) {
                    let _ = writeln!(o, "{name}{{{run}{labels},quantile=\"{q}\"}} {}", value(v));
                }
            }
            // `count` of a count-unit metric sums it; a summary's _count is samples.
            let (Some(avg), Some(n)) = (agg(&Aggregation::Avg), samples(m, entry.name, &filter))
            else {
                continue;
            };
            let _ = writeln!(o, "{name}_count{{{run}{labels}}} {n}");
            let _ = writeln!(o, "{name}_sum{{{run}{labels}}} {}", value(avg * n as f64));
        }
    }
    let _ = writeln!(o, "# TYPE {PREFIX}threshold gauge");
    let _ = writeln!(
        o,
        "# HELP {PREFIX}threshold 1 when the threshold held (or, expected to fail, broke), else 0"
    );
    for t in &verdict.thresholds {
        let _ = writeln!(
            o,
            "{PREFIX}threshold{{{run},key=\"{}\",expr=\"{}\"}} {}",
            esc(&t.key),
            esc(&t.expr),
            u8::from(t.pass)
        );
    }
    if let Some(c) = &m.capacity {
        let _ = writeln!(o, "# TYPE {PREFIX}capacity gauge");
        let _ = writeln!(
            o,
            "# HELP {PREFIX}capacity the capacity search's knee: the largest level that held and the first that broke (rooms or bots)"
        );
        let unit = format!(",unit=\"{}\"", c.unit);
        for (what, v) in [
            ("held", c.knee.held),
            ("broke", c.knee.broke),
            ("harness_limited", c.knee.harness_limited),
        ] {
            if let Some(v) = v {
                let _ = writeln!(o, "{PREFIX}capacity{{{run}{unit},level=\"{what}\"}} {v}");
            }
        }
        let _ = writeln!(o, "# TYPE {PREFIX}capacity_cost gauge");
        let _ = writeln!(
            o,
            "# HELP {PREFIX}capacity_cost fitted cost per unit of load (slope over the steps): cores or bytes"
        );
        let cost = &c.cost;
        for (what, f) in [
            ("sfu_cpu_per_participant", cost.sfu_cpu_per_participant),
            (
                "sfu_cpu_per_published_track",
                cost.sfu_cpu_per_published_track,
            ),
            (
                "sfu_cpu_per_subscribed_track",
                cost.sfu_cpu_per_subscribed_track,
            ),
            (
                "sfu_memory_per_participant",
                cost.sfu_memory_per_participant,
            ),
            (
                "harness_cpu_per_subscribed_track",
                cost.harness_cpu_per_subscribed_track,
            ),
            ("harness_memory_per_bot", cost.harness_memory_per_bot),
        ] {
            if let Some(f) = f {
                let _ = writeln!(
                    o,
                    "{PREFIX}capacity_cost{{{run},per=\"{what}\"}} {}",
                    value(f.slope)
                );
            }
        }
    }
    o.push_str("# EOF\n");
    o
}

/// Samples in the series `filter` selects (a histogram counts its values).
fn samples(m: &Measurements, metric: &str, filter: &TagFilter) -> Option<u64> {
    let n: u64 = m
        .store
        .series(metric)
        .filter(|(tags, _)| filter.matches(tags))
        .map(|(_, v)| v.len())
        .sum();
    (n > 0).then_some(n)
}

fn value(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

/// A label value: backslash, double quote and newline escaped.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn esc_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}
