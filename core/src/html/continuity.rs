//! Continuity over time: per subscriber group and send-time bin, packets received over
//! packets sent, on the pairs and bins [`crate::measure`] judges (it sums them into
//! [`crate::measure::Measurements::continuity_bins`] while judging).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::timeline::{Axis, FaultMark, fault_marks};
use super::{MAX_POINTS, P, PALETTE, PLOT_H, PLOT_TOP, W, esc, legend, y_grid, y_of};
use crate::event::BIN_US;

/// Per bin: (received, sent) packets.
pub(super) type Bins = Vec<(u64, u64)>;

/// (seconds, received/sent) per bucket of consecutive bins that sent anything. A bucket
/// of several bins shows its worst bin: a one-second outage in an hour-long run must
/// still reach the bottom of the chart, not be averaged away.
fn continuity_points(bins: &[(u64, u64)]) -> Vec<(f64, f64)> {
    let used: Vec<(usize, (u64, u64))> = bins
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, b)| b.1 > 0)
        .collect();
    let k = used.len().div_ceil(MAX_POINTS).max(1);
    used.chunks(k)
        .map(|c| {
            let worst = c.iter().map(|(_, (r, s))| *r as f64 / *s as f64);
            let mid_bin = (c[0].0 + c[c.len() - 1].0 + 1) as f64 / 2.0;
            (mid_bin * BIN_US as f64 / 1e6, worst.fold(1.0, f64::min))
        })
        .collect()
}

pub(super) fn continuity(
    o: &mut String,
    ax: &Axis,
    faults: &[FaultMark],
    groups: &BTreeMap<String, Bins>,
) {
    o.push_str("<h2>Continuity over time, per subscriber group</h2>\n");
    o.push_str(
        "<p class=\"meta\">packets received / sent per second of send time, over every \
         pair whose subscriber is in the group; on long runs a point is the worst second \
         it stands for</p>\n",
    );
    if groups.is_empty() {
        o.push_str("<p class=\"empty\">no media was expected</p>\n");
        return;
    }
    w!(
        o,
        "<svg viewBox=\"0 0 {W} {}\" width=\"{W}\" role=\"img\" aria-label=\"received over sent per second\">\n",
        P(PLOT_TOP + PLOT_H + 22.0)
    );
    y_grid(o, |q| format!("{q:.2}"));
    ax.ticks(o, PLOT_TOP, PLOT_TOP + PLOT_H);
    fault_marks(o, ax, faults, PLOT_TOP, PLOT_TOP + PLOT_H, true);
    let mut items = Vec::new();
    for (i, (group, bins)) in groups.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let pts = continuity_points(bins);
        o.push_str("<polyline fill=\"none\" stroke-width=\"1.5\" ");
        w!(o, "stroke=\"{color}\" points=\"");
        for (j, (t, r)) in pts.iter().enumerate() {
            let sep = if j == 0 { "" } else { " " };
            w!(o, "{sep}{},{}", P(ax.x((t * 1e6) as u64)), P(y_of(*r)));
        }
        w!(o, "\"><title>{}</title></polyline>\n", esc(group));
        let min = pts.iter().map(|p| p.1).min_by(f64::total_cmp);
        let min = min.map_or("no bins".to_owned(), |m| format!("lowest {m:.4}"));
        items.push((
            format!("background:{color}"),
            format!("{} ({min})", esc(group)),
        ));
    }
    o.push_str("</svg>\n");
    legend(o, &items);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_of_bins_is_bucketed_to_at_most_max_points_with_exact_ratios() {
        let mut bins: Bins = vec![(50, 50); 3600];
        bins[10] = (0, 50);
        bins[20] = (7, 0); // nothing sent: not a point
        let pts = continuity_points(&bins);
        assert_eq!(pts.len(), 600);
        assert_eq!(pts[1], (9.0, 0.0)); // bins 6..12: the empty one shows
        assert_eq!(
            continuity_points(&bins[..3]),
            [(0.5, 1.0), (1.5, 1.0), (2.5, 1.0)]
        );
    }
}
