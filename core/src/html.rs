//! `report.html`: one self-contained page an on-call engineer reads in seconds.
//!
//! Contract: no network at view time (no CDN, fonts or scripts; inline CSS; SVG drawn
//! here); a pure function of its inputs with stable order and fixed float formatting, so
//! it is snapshot-tested; every text that came from the run is HTML-escaped and raw
//! events are never dumped. Size follows state changes and at most [`MAX_POINTS`] points
//! per series, not the run's length or packet count.

use std::fmt::{self, Write as _};

use crate::event::{BIN_US, EventRecord};
use crate::measure::Measurements;
use crate::metrics::{Unit, lookup};
use crate::report::{RunInfo, human_seconds};
use crate::verdict::{Outcome, Verdict};

/// Most points one plotted series holds; longer series are merged into buckets.
pub const MAX_POINTS: usize = 600;

const W: f64 = 960.0;
const LEFT: f64 = 160.0;
const RIGHT: f64 = 24.0;
const PLOT_W: f64 = W - LEFT - RIGHT;
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
];

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222;padding:0 12px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:30px 0 8px;border-bottom:1px solid #ddd}
.badge{display:inline-block;padding:2px 12px;border-radius:4px;color:#fff;font-weight:700;vertical-align:middle}
.b-pass{background:#2e7d32}.b-fail{background:#c62828}.b-invalid{background:#ef6c00}
.meta{color:#555}.meta b{color:#222;font-weight:600}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
th{background:#f6f6f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#2e7d32;font-weight:700}.bad{color:#c62828;font-weight:700}
.xf{border:1px solid #ef6c00;color:#ef6c00;border-radius:3px;padding:0 4px;font-size:11px}
svg{display:block;max-width:100%;height:auto}svg text{font:11px system-ui,sans-serif;fill:#333}
.grid{stroke:#e6e6e6}.axis{stroke:#888}.lbl{text-anchor:end}.mid{text-anchor:middle}
.s-joining{fill:#f2c14e}.s-connected{fill:#43a047}.s-down{fill:#e4572e}.s-gone{fill:#d0d0d0}
.gap{fill:#6a1b9a}.kick{fill:#111}.fw{fill:#1e88e5;fill-opacity:.14}
.fl{stroke:#1e88e5;stroke-width:2;stroke-dasharray:4 2}.fault{fill:#0d47a1}
.legend{font-size:12px;color:#444}.legend span{margin-right:14px;white-space:nowrap}
.sw{display:inline-block;width:12px;height:12px;vertical-align:-1px;margin-right:4px;border-radius:2px}
.empty{color:#888;font-style:italic}";

/// `write!` into a `String`, which cannot fail.
macro_rules! w {
    ($o:expr, $($arg:tt)*) => {{ let _ = write!($o, $($arg)*); }};
}

mod capacity;
mod continuity;
mod latency;
mod timeline;

/// The whole page.
pub fn render(
    info: &RunInfo,
    records: &[EventRecord],
    m: &Measurements,
    verdict: &Verdict,
) -> String {
    let end_us = m
        .span_us
        .max((info.duration_s.max(0.0) * 1e6) as u64)
        .max(BIN_US);
    let ax = timeline::Axis { end_us };
    let (lanes, faults) = timeline::read_lanes(records);
    let mut o = String::with_capacity(32 * 1024);
    w!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{} {} - sfu-harness</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n",
        esc(&info.scenario),
        verdict_word(&verdict.outcome)
    );
    header(&mut o, info, m, verdict);
    thresholds(&mut o, verdict);
    capacity::capacity(&mut o, m.capacity.as_ref());
    timeline::timeline(&mut o, &ax, &lanes, &faults);
    continuity::continuity(&mut o, &ax, &faults, &m.continuity_bins);
    latency::latency(&mut o, m);
    recovery(&mut o, m);
    sfu_metrics(&mut o, m);
    bots(&mut o, m);
    o.push_str("</body>\n</html>\n");
    o
}

// ---------------------------------------------------------------- text and tables

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with one decimal, never `-0.0`.
struct P(f64);

impl fmt::Display for P {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1}", self.0 + 0.0)
    }
}

fn verdict_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Invalid { .. } => "INVALID",
    }
}

fn secs(s: f64) -> String {
    format!("{s:.2} s")
}

/// Marks a table cell as a number (right-aligned). [`esc`] drops control characters, so
/// no escaped text can start with it.
const NUM: char = '\u{1}';

fn num(s: impl fmt::Display) -> String {
    format!("{NUM}{s}")
}

/// A table; `rows` are already HTML.
fn table(o: &mut String, head: &[&str], rows: &[Vec<String>]) {
    o.push_str("<table>\n<tr>");
    for h in head {
        w!(o, "<th>{h}</th>");
    }
    o.push_str("</tr>\n");
    for row in rows {
        o.push_str("<tr>");
        for cell in row {
            match cell.strip_prefix(NUM) {
                Some(n) => w!(o, "<td class=\"n\">{n}</td>"),
                None => w!(o, "<td>{cell}</td>"),
            }
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
}

fn legend(o: &mut String, items: &[(String, String)]) {
    o.push_str("<p class=\"legend\">");
    for (swatch_style, label) in items {
        w!(
            o,
            "<span><i class=\"sw\" style=\"{swatch_style}\"></i>{label}</span>"
        );
    }
    o.push_str("</p>\n");
}

fn header(o: &mut String, info: &RunInfo, m: &Measurements, v: &Verdict) {
    let word = verdict_word(&v.outcome);
    w!(
        o,
        "<h1>{} <span class=\"badge b-{}\">{word}</span></h1>\n",
        esc(&info.scenario),
        word.to_ascii_lowercase()
    );
    if let Outcome::Invalid { reason } = &v.outcome {
        w!(o, "<p class=\"bad\">run invalid: {}</p>\n", esc(reason));
    }
    let failed = v.thresholds.iter().filter(|t| !t.pass).count();
    w!(
        o,
        "<p class=\"meta\">run <b>{}</b> · duration <b>{}</b> · ended <b>{}</b> · SFU <b>{}</b> · \
         {} bots · {} faults · {failed} of {} thresholds not satisfied</p>\n",
        esc(&info.run_id),
        human_seconds(info.duration_s),
        esc(&info.ended),
        esc(&info.sfu_image),
        m.bots.len(),
        m.faults.len(),
        v.thresholds.len()
    );
}

/// An observed value in its metric's unit; `+inf` reads "never".
fn observed(metric: &str, v: Option<f64>) -> String {
    match (v, lookup(metric).map(|e| e.unit)) {
        (None, _) => "no samples".to_owned(),
        (Some(x), _) if x == f64::INFINITY => "never".to_owned(),
        (Some(x), Some(Unit::Duration)) => human_seconds(x),
        (Some(x), Some(Unit::Ratio)) => format!("{x:.4}"),
        (Some(x), Some(Unit::Cores)) => format!("{x:.3} cores"),
        (Some(x), Some(Unit::Bytes)) => crate::report::human_bytes(x),
        (Some(x), Some(Unit::Bitrate)) => crate::report::human_bitrate(x),
        (Some(x), _) => format!("{x}"),
    }
}

fn thresholds(o: &mut String, v: &Verdict) {
    o.push_str("<h2>Thresholds</h2>\n");
    if v.thresholds.is_empty() {
        o.push_str("<p class=\"empty\">no thresholds declared</p>\n");
        return;
    }
    let rows: Vec<Vec<String>> = v
        .thresholds
        .iter()
        .map(|t| {
            let result = if t.pass {
                "<span class=\"ok\">✔ pass</span>"
            } else {
                "<span class=\"bad\">✘ fail</span>"
            };
            let xf = if t.expected_to_fail {
                " <span class=\"xf\">expected to fail</span>"
            } else {
                ""
            };
            vec![
                format!("<code>{}</code>", esc(&t.key)),
                format!("<code>{}</code>", esc(&t.expr)),
                num(esc(&observed(&t.metric, t.observed))),
                format!("{result}{xf}"),
                esc(t.note.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    table(
        o,
        &["key", "expression", "observed", "result", "note"],
        &rows,
    );
}

const PLOT_TOP: f64 = 30.0;
const PLOT_H: f64 = 200.0;

fn y_of(frac: f64) -> f64 {
    PLOT_TOP + (1.0 - frac.clamp(0.0, 1.0)) * PLOT_H
}

/// Horizontal grid lines and labels for a 0..1 y axis.
fn y_grid(o: &mut String, label: fn(f64) -> String) {
    for q in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y = P(y_of(q));
        w!(
            o,
            "<line class=\"grid\" x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\"/><text class=\"lbl\" x=\"{}\" y=\"{}\">{}</text>\n",
            P(LEFT),
            P(LEFT + PLOT_W),
            P(LEFT - 6.0),
            P(y_of(q) + 4.0),
            label(q)
        );
    }
}

// ---------------------------------------------------------------- faults, SFU, bots

/// The SFU's own view, from its Prometheus endpoint: per node and series, the first,
/// lowest, highest and last value scraped.
fn sfu_metrics(o: &mut String, m: &Measurements) {
    o.push_str("<h2>SFU-side metrics</h2>\n");
    if m.sfu_metrics.is_empty() {
        o.push_str("<p class=\"empty\">none scraped</p>\n");
        return;
    }
    o.push_str(
        "<p class=\"meta\">from LiveKit's Prometheus endpoint, once a second; counters \
         count from the node's start</p>\n",
    );
    let mut rows = Vec::new();
    for (node, series) in &m.sfu_metrics {
        for (name, points) in series {
            let values = || points.iter().map(|p| p.1);
            let show = |v: Option<f64>| {
                num(v.map_or("—".to_owned(), |v| {
                    format!("{v:.6}")
                        .trim_end_matches('0')
                        .trim_end_matches('.')
                        .to_owned()
                }))
            };
            rows.push(vec![
                esc(node),
                esc(name),
                num(points.len()),
                show(values().next()),
                show(values().min_by(f64::total_cmp)),
                show(values().max_by(f64::total_cmp)),
                show(points.last().map(|p| p.1)),
            ]);
        }
    }
    table(
        o,
        &["node", "series", "scrapes", "first", "min", "max", "last"],
        &rows,
    );
}

fn recovery_text(r: Option<f64>) -> String {
    r.map_or("not measured".to_owned(), human_seconds)
}

fn recovery(o: &mut String, m: &Measurements) {
    o.push_str("<h2>Faults and recovery</h2>\n");
    if m.faults.is_empty() {
        o.push_str("<p class=\"empty\">no faults injected</p>\n");
        return;
    }
    let rows: Vec<Vec<String>> = m
        .faults
        .iter()
        .map(|f| {
            vec![
                esc(&f.id),
                esc(&f.kind),
                esc(&f.target),
                num(secs(f.applied_s)),
                num(f.cleared_s.map_or("—".to_owned(), secs)),
                num(format!("{:.1} ms", f.skew_ms)),
                num(recovery_text(f.recovery_s)),
            ]
        })
        .collect();
    table(
        o,
        &[
            "id",
            "kind",
            "target",
            "applied at",
            "cleared at",
            "skew",
            "recovery",
        ],
        &rows,
    );
    let scale = m
        .faults
        .iter()
        .filter_map(|f| f.recovery_s)
        .filter(|r| r.is_finite())
        .fold(1.0, f64::max);
    let h = 24.0 * m.faults.len() as f64 + 8.0;
    w!(
        o,
        "<svg viewBox=\"0 0 {W} {}\" width=\"{W}\" role=\"img\" aria-label=\"recovery per fault\">\n",
        P(h)
    );
    for (i, f) in m.faults.iter().enumerate() {
        let y = 4.0 + 24.0 * i as f64;
        let (name, text) = (
            format!("{} {}", esc(&f.id), esc(&f.kind)),
            recovery_text(f.recovery_s),
        );
        w!(
            o,
            "<text class=\"lbl\" x=\"{}\" y=\"{}\">{name}</text>",
            P(LEFT - 6.0),
            P(y + 13.0)
        );
        let (width, color) = match f.recovery_s {
            Some(r) if r.is_finite() => (r / scale * (PLOT_W - 90.0), "#1e88e5"),
            Some(_) => (PLOT_W - 90.0, "#c62828"),
            None => (0.0, "#999"),
        };
        w!(
            o,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"16\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{text}</text>\n",
            P(LEFT),
            P(y),
            P(width),
            P(LEFT + width + 6.0),
            P(y + 13.0)
        );
    }
    o.push_str("</svg>\n");
}

fn candidate(c: Option<&crate::event::SelectedCandidate>) -> String {
    c.map_or("—".to_owned(), |c| {
        esc(&format!(
            "{}/{} → {}",
            c.protocol, c.local_type, c.remote_type
        ))
    })
}

fn bots(o: &mut String, m: &Measurements) {
    o.push_str("<h2>Bots</h2>\n");
    if m.bots.is_empty() {
        o.push_str("<p class=\"empty\">no bots</p>\n");
        return;
    }
    let opt = |s: &Option<String>| s.as_deref().map_or("—".to_owned(), esc);
    let rows: Vec<Vec<String>> = m
        .bots
        .values()
        .map(|b| {
            vec![
                esc(&b.identity),
                esc(&b.group),
                num(b.joins),
                num(b.resumes),
                num(b.rejoins),
                num(b.kicks),
                opt(&b.kicked),
                opt(&b.gave_up),
                candidate(b.publisher_candidate.as_ref()),
                candidate(b.subscriber_candidate.as_ref()),
            ]
        })
        .collect();
    let head = [
        "identity",
        "group",
        "joins",
        "resumes",
        "rejoins",
        "kicks",
        "kicked",
        "gave up",
        "publisher pair",
        "subscriber pair",
    ];
    table(o, &head, &rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_quotes_and_control_characters() {
        assert_eq!(
            esc("<a href='x'>\"&\u{1}"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;"
        );
    }

    #[test]
    fn coordinates_have_one_decimal_and_no_negative_zero() {
        assert_eq!(
            format!("{} {} {}", P(-0.0), P(1.25), P(2.0 / 3.0)),
            "0.0 1.2 0.7"
        );
    }

    #[test]
    fn observed_values_read_in_their_units() {
        assert_eq!(observed("connect.media", Some(0.4123)), "412 ms");
        assert_eq!(observed("connect.media", Some(f64::INFINITY)), "never");
        assert_eq!(observed("continuity", Some(0.98765)), "0.9877");
        assert_eq!(observed("kicks", Some(3.0)), "3");
        assert_eq!(observed("gap", None), "no samples");
    }
}
