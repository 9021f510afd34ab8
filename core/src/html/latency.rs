//! Cumulative distributions on a log-millisecond axis: one-way latency (all histogram
//! series merged) and the connect times, at most [`MAX_POINTS`] steps each.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use super::{LEFT, MAX_POINTS, P, PALETTE, PLOT_H, PLOT_TOP, PLOT_W, W, legend, y_grid, y_of};
use crate::measure::Measurements;
use crate::metrics::Values;

/// One CDF: (milliseconds, fraction at or below), plus how many samples never happened.
struct Cdf {
    name: &'static str,
    points: Vec<(f64, f64)>,
    n: u64,
    never: u64,
}

fn latency_cdf(m: &Measurements) -> Option<Cdf> {
    let mut h = Histogram::<u64>::new(3).ok()?;
    for (_, v) in m.store.series("latency.oneway") {
        match v {
            Values::Histogram(s) => h.add(s).ok()?,
            Values::Exact(xs) => {
                for x in xs.iter().filter(|x| x.is_finite()) {
                    h.record((x.max(0.0) * 1e6) as u64).ok()?;
                }
            }
        }
    }
    if h.is_empty() {
        return None;
    }
    let mut qs: Vec<f64> = (1..=200).map(|i| f64::from(i) / 200.0).collect();
    qs.extend([0.995, 0.999, 0.9999]);
    qs.sort_by(f64::total_cmp);
    let mut points: Vec<(f64, f64)> = vec![(h.min() as f64 / 1e3, 0.0)];
    for q in qs {
        let ms = h.value_at_quantile(q) as f64 / 1e3;
        match points.last_mut() {
            Some(last) if last.0 == ms => last.1 = q,
            _ => points.push((ms, q)),
        }
    }
    Some(Cdf {
        name: "latency.oneway",
        points,
        n: h.len(),
        never: 0,
    })
}

fn exact_cdf(m: &Measurements, name: &'static str) -> Option<Cdf> {
    let all: Vec<f64> = m
        .store
        .series(name)
        .filter_map(|(_, v)| {
            if let Values::Exact(xs) = v {
                Some(xs)
            } else {
                None
            }
        })
        .flatten()
        .copied()
        .collect();
    let mut finite: Vec<f64> = all.iter().copied().filter(|x| x.is_finite()).collect();
    if all.is_empty() {
        return None;
    }
    finite.sort_by(f64::total_cmp);
    let n = all.len();
    let k = finite.len().div_ceil(MAX_POINTS).max(1);
    let mut points: Vec<(f64, f64)> = finite.first().map(|x| (x * 1e3, 0.0)).into_iter().collect();
    for (i, x) in finite.iter().enumerate() {
        if (i + 1) % k == 0 || i + 1 == finite.len() {
            points.push((x * 1e3, (i + 1) as f64 / n as f64));
        }
    }
    Some(Cdf {
        name,
        points,
        n: n as u64,
        never: (n - finite.len()) as u64,
    })
}

/// A log10 x axis over whole decades of milliseconds.
struct LogAxis {
    lo: i32,
    hi: i32,
}

impl LogAxis {
    fn x(&self, ms: f64) -> f64 {
        let e = ms
            .max(1e-3)
            .log10()
            .clamp(f64::from(self.lo), f64::from(self.hi));
        LEFT + (e - f64::from(self.lo)) / f64::from(self.hi - self.lo) * PLOT_W
    }
}

/// `m`·10^`e` milliseconds as a tick label: `0.01 ms`, `20 ms`, `5 s`.
fn tick_label(m: u64, e: i32) -> String {
    match e {
        e if e >= 3 => format!("{} s", m * 10u64.pow((e - 3) as u32)),
        e if e >= 0 => format!("{} ms", m * 10u64.pow(e as u32)),
        e => format!("0.{}{m} ms", "0".repeat((-e - 1) as usize)),
    }
}

impl LogAxis {
    /// Grid lines at 1, 2 and 5 of each decade; 2 and 5 labelled on short axes only.
    fn ticks(&self, o: &mut String, y0: f64, y1: f64) {
        for e in self.lo..=self.hi {
            for m in [1u64, 2, 5] {
                if m > 1 && e == self.hi {
                    break;
                }
                let x = P(self.x(m as f64 * 10f64.powi(e)));
                w!(
                    o,
                    "<line class=\"grid\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\"/>",
                    P(y0),
                    P(y1)
                );
                if m == 1 || self.hi - self.lo <= 3 {
                    let label = tick_label(m, e);
                    w!(
                        o,
                        "<text class=\"mid\" x=\"{x}\" y=\"{}\">{label}</text>",
                        P(y1 + 14.0)
                    );
                }
                o.push('\n');
            }
        }
    }
}

pub(super) fn latency(o: &mut String, m: &Measurements) {
    o.push_str("<h2>Latency and connect time (CDF)</h2>\n");
    let cdfs: Vec<Cdf> = [
        latency_cdf(m),
        exact_cdf(m, "connect.signal"),
        exact_cdf(m, "connect.media"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let all = || {
        cdfs.iter()
            .flat_map(|c| c.points.iter().map(|p| p.0.max(1e-3)))
    };
    let (Some(lo), Some(hi)) = (all().min_by(f64::total_cmp), all().max_by(f64::total_cmp)) else {
        o.push_str("<p class=\"empty\">no latency or connect samples</p>\n");
        return;
    };
    let lo = lo.log10().floor() as i32;
    let ax = LogAxis {
        lo,
        hi: (hi.log10().ceil() as i32).max(lo + 1),
    };
    w!(
        o,
        "<svg viewBox=\"0 0 {W} {}\" width=\"{W}\" role=\"img\" aria-label=\"cumulative distributions\">\n",
        P(PLOT_TOP + PLOT_H + 22.0)
    );
    y_grid(o, |q| format!("{:.0}%", q * 100.0));
    ax.ticks(o, PLOT_TOP, PLOT_TOP + PLOT_H);
    let mut items = Vec::new();
    for (i, c) in cdfs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        if let Some(first) = c.points.first() {
            w!(
                o,
                "<path fill=\"none\" stroke-width=\"1.5\" stroke=\"{color}\" d=\"M{} {}",
                P(ax.x(first.0)),
                P(y_of(0.0))
            );
            for (ms, f) in c.points.iter().filter(|p| p.1 > 0.0) {
                w!(o, "H{}V{}", P(ax.x(*ms)), P(y_of(*f)));
            }
            w!(o, "\"><title>{}</title></path>\n", c.name);
        }
        let never = if c.never > 0 {
            format!(", {} never", c.never)
        } else {
            String::new()
        };
        items.push((
            format!("background:{color}"),
            format!("{} (n={}{never})", c.name, c.n),
        ));
    }
    o.push_str("</svg>\n");
    legend(o, &items);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_name_milliseconds_and_seconds() {
        let labels: Vec<String> = [(1, -2), (5, -1), (1, 0), (2, 1), (5, 2), (1, 3), (2, 4)]
            .into_iter()
            .map(|(m, e)| tick_label(m, e))
            .collect();
        assert_eq!(
            labels,
            [
                "0.01 ms", "0.5 ms", "1 ms", "20 ms", "500 ms", "1 s", "20 s"
            ]
        );
    }
}
