//! The capacity search: the knee in words, one small chart per series against the
//! load level (SFU CPU, SFU memory, harness CPU, continuity p5, longest gap, latency
//! p95) with the knee marked, the steps as a table, and the fitted cost.

use std::fmt::Write as _;

use super::{LEFT, P, PLOT_W, esc, num, table};
use crate::capacity::{CapacityReport, Fit, StepReport};
use crate::report::{human_bytes, human_seconds};

const PANEL_H: f64 = 90.0;
const PANEL_GAP: f64 = 34.0;

type Series = (
    &'static str,
    fn(&StepReport) -> Option<f64>,
    fn(f64) -> String,
);

const SERIES: [Series; 7] = [
    (
        "SFU CPU (cores)",
        |s| s.sfu_cpu_cores,
        |v| format!("{v:.2}"),
    ),
    ("SFU memory", |s| s.sfu_memory_bytes, human_bytes),
    (
        "harness CPU (cores)",
        |s| s.harness_cpu_cores,
        |v| format!("{v:.2}"),
    ),
    ("continuity p5", |s| s.continuity_p5, |v| format!("{v:.3}")),
    ("longest gap", |s| s.gap_max_s, human_seconds),
    ("freezes (> 200 ms)", |s| s.freezes, |v| format!("{v:.0}")),
    ("latency p95", |s| s.latency_p95_s, human_seconds),
];

pub(super) fn capacity(o: &mut String, c: Option<&CapacityReport>) {
    let Some(c) = c else { return };
    o.push_str("<h2>Capacity search</h2>\n");
    w!(o, "<p><b>{}</b></p>\n", esc(&c.knee.summary));
    let judged: Vec<&StepReport> = c
        .steps
        .iter()
        .filter(|s| s.outcome != "not judged")
        .collect();
    if judged.len() >= 2 {
        chart(o, c, &judged);
    }
    let rows: Vec<Vec<String>> = c
        .steps
        .iter()
        .map(|s| {
            let opt = |v: Option<f64>, f: fn(f64) -> String| num(v.map_or("—".to_owned(), f));
            vec![
                num(s.number),
                num(format!("{} {}", s.level, c.unit)),
                num(s.participants),
                num(s.subscribed_tracks),
                opt(s.sfu_cpu_cores, |v| format!("{v:.3}")),
                opt(s.sfu_memory_bytes, human_bytes),
                opt(s.harness_cpu_cores, |v| format!("{v:.3}")),
                opt(s.continuity_p5, |v| format!("{v:.4}")),
                opt(s.latency_p95_s, human_seconds),
                num(s.joins_failed),
                format!(
                    "<span class=\"{}\">{}</span>{}",
                    if s.outcome == "held" { "ok" } else { "bad" },
                    esc(&s.outcome),
                    if s.limits.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", esc(&s.limits.join("; ")))
                    }
                ),
            ]
        })
        .collect();
    table(
        o,
        &[
            "step",
            "level",
            "participants",
            "subscribed tracks",
            "SFU cores",
            "SFU memory",
            "harness cores",
            "continuity p5",
            "latency p95",
            "joins failed",
            "outcome",
        ],
        &rows,
    );
    let fit = |label: &str, f: Option<Fit>, show: fn(f64) -> String| {
        f.map(|f| {
            vec![
                esc(label),
                num(show(f.slope)),
                num(format!("{:.3}", f.r2)),
                num(f.points),
            ]
        })
    };
    let cores = |v: f64| format!("{v:.5} cores");
    let k = &c.cost;
    let rows: Vec<Vec<String>> = [
        fit("SFU CPU per participant", k.sfu_cpu_per_participant, cores),
        fit(
            "SFU CPU per published track",
            k.sfu_cpu_per_published_track,
            cores,
        ),
        fit(
            "SFU CPU per subscribed track",
            k.sfu_cpu_per_subscribed_track,
            cores,
        ),
        fit(
            "SFU memory per participant",
            k.sfu_memory_per_participant,
            human_bytes,
        ),
        fit(
            "harness CPU per subscribed track",
            k.harness_cpu_per_subscribed_track,
            cores,
        ),
        fit(
            "harness memory per bot",
            k.harness_memory_per_bot,
            human_bytes,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !rows.is_empty() {
        o.push_str(
            "<p class=\"meta\">cost: slopes of least-squares lines over the judged steps \
             (steady second half of each step); rooms shaped alike grow participants and \
             tracks together, so read one slope, not their sum</p>\n",
        );
        table(o, &["cost", "slope", "R²", "steps"], &rows);
    }
    if let Some(r) = k.harness_to_sfu {
        w!(
            o,
            "<p class=\"meta\">harness/SFU CPU per subscribed track: <b>{r:.2}</b></p>\n"
        );
    }
}

/// One panel per series; x is the load level, the knee a green (held) and a red
/// (broke) or orange (harness-limited) dashed line.
fn chart(o: &mut String, c: &CapacityReport, steps: &[&StepReport]) {
    let lo = steps.iter().map(|s| s.level).min().unwrap_or(0) as f64;
    let hi = steps.iter().map(|s| s.level).max().unwrap_or(1) as f64;
    let x_of = |level: f64| LEFT + (level - lo) / (hi - lo).max(1.0) * PLOT_W;
    let height = SERIES.len() as f64 * (PANEL_H + PANEL_GAP) + 30.0;
    w!(
        o,
        "<svg viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"capacity search\">\n",
        P(super::W),
        P(height)
    );
    for (i, (label, get, show)) in SERIES.iter().enumerate() {
        let top = 20.0 + i as f64 * (PANEL_H + PANEL_GAP);
        let points: Vec<(f64, f64)> = steps
            .iter()
            .filter_map(|s| {
                get(s)
                    .filter(|v| v.is_finite())
                    .map(|v| (f64::from(s.level), v))
            })
            .collect();
        let max = points.iter().map(|p| p.1).fold(0.0, f64::max);
        let y_of = |v: f64| top + PANEL_H - if max > 0.0 { v / max * PANEL_H } else { 0.0 };
        w!(
            o,
            "<text x=\"{}\" y=\"{}\">{}</text><line class=\"axis\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\
             <text class=\"lbl\" x=\"{}\" y=\"{}\">{}</text><text class=\"lbl\" x=\"{}\" y=\"{}\">0</text>\n",
            P(8.0),
            P(top + PANEL_H / 2.0),
            esc(label),
            P(LEFT),
            P(top + PANEL_H),
            P(LEFT + PLOT_W),
            P(top + PANEL_H),
            P(LEFT - 6.0),
            P(top + 4.0),
            esc(&show(max)),
            P(LEFT - 6.0),
            P(top + PANEL_H),
        );
        for (level, class) in [
            (c.knee.held, "#2e7d32"),
            (c.knee.broke, "#c62828"),
            (c.knee.harness_limited, "#ef6c00"),
        ] {
            if let Some(l) = level {
                let x = P(x_of(f64::from(l)));
                w!(
                    o,
                    "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{class}\" stroke-dasharray=\"4 3\"/>\n",
                    P(top),
                    P(top + PANEL_H)
                );
            }
        }
        let path: Vec<String> = points
            .iter()
            .map(|(l, v)| format!("{},{}", P(x_of(*l)), P(y_of(*v))))
            .collect();
        w!(
            o,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
            super::PALETTE[i % super::PALETTE.len()],
            path.join(" ")
        );
        for (l, v) in &points {
            w!(
                o,
                "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"/>\n",
                P(x_of(*l)),
                P(y_of(*v)),
                super::PALETTE[i % super::PALETTE.len()]
            );
        }
    }
    let bottom = 20.0 + SERIES.len() as f64 * (PANEL_H + PANEL_GAP) - PANEL_GAP + 16.0;
    for s in steps {
        w!(
            o,
            "<text class=\"mid\" x=\"{}\" y=\"{}\">{}</text>\n",
            P(x_of(f64::from(s.level))),
            P(bottom),
            s.level
        );
    }
    w!(
        o,
        "<text class=\"mid\" x=\"{}\" y=\"{}\">load level ({})</text>\n</svg>\n",
        P(LEFT + PLOT_W / 2.0),
        P(bottom + 14.0),
        esc(c.unit)
    );
}
