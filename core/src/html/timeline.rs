//! The timeline: one lane per bot identity with its session state over run time, kicks
//! and media gaps on the lane, fault windows across all lanes. Lanes hold state
//! *changes* only, and marks closer than a pixel are merged, so size follows what
//! happened, not how long the run was.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{LEFT, P, PLOT_W, W, esc, legend, secs};
use crate::event::{Event, EventRecord};
use crate::fault::FaultKind;

/// Run time (µs since the epoch) to x.
pub(super) struct Axis {
    pub(super) end_us: u64,
}

impl Axis {
    pub(super) fn x(&self, t_us: u64) -> f64 {
        LEFT + (t_us.min(self.end_us) as f64 / self.end_us as f64) * PLOT_W
    }

    /// The run time one pixel stands for.
    fn pixel_us(&self) -> u64 {
        (self.end_us as f64 / PLOT_W) as u64
    }

    /// Vertical grid lines from `y0` to `y1` and second labels below `y1`.
    pub(super) fn ticks(&self, o: &mut String, y0: f64, y1: f64) {
        let end_s = self.end_us as f64 / 1e6;
        let step = [
            1u64, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
        ]
        .into_iter()
        .find(|s| end_s / *s as f64 <= 12.0)
        .unwrap_or(14_400);
        let mut t = 0;
        while t as f64 <= end_s {
            let x = P(self.x(t * 1_000_000));
            let label = if step >= 60 {
                format!("{}m", t / 60)
            } else {
                format!("{t}s")
            };
            w!(
                o,
                "<line class=\"grid\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\"/>",
                P(y0),
                P(y1)
            );
            w!(
                o,
                "<text class=\"mid\" x=\"{x}\" y=\"{}\">{label}</text>\n",
                P(y1 + 14.0)
            );
            t += step;
        }
        w!(
            o,
            "<line class=\"axis\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\n",
            P(LEFT),
            P(y1),
            P(LEFT + PLOT_W),
            P(y1)
        );
    }
}

/// A fault as drawn: a window, or a line for kinds that act once.
pub(super) struct FaultMark {
    id: String,
    kind: String,
    from: u64,
    to: Option<u64>,
    instant: bool,
}

/// Shades fault windows between `y0` and `y1`; with `labels`, writes "id kind" above.
pub(super) fn fault_marks(
    o: &mut String,
    ax: &Axis,
    faults: &[FaultMark],
    y0: f64,
    y1: f64,
    labels: bool,
) {
    for (i, f) in faults.iter().enumerate() {
        let (x0, label) = (ax.x(f.from), format!("{} {}", esc(&f.id), esc(&f.kind)));
        let to =
            f.to.map_or("not cleared".to_owned(), |t| secs(t as f64 / 1e6));
        if f.instant {
            w!(
                o,
                "<line class=\"fl\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"><title>{label} at {}</title></line>\n",
                P(x0),
                P(y0),
                P(x0),
                P(y1),
                secs(f.from as f64 / 1e6)
            );
        } else {
            let x1 = ax.x(f.to.unwrap_or(ax.end_us)).max(x0 + 1.0);
            w!(
                o,
                "<rect class=\"fw\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{label}: {} to {to}</title></rect>\n",
                P(x0),
                P(y0),
                P(x1 - x0),
                P(y1 - y0),
                secs(f.from as f64 / 1e6)
            );
        }
        if labels {
            let y = y0 - 4.0 - 12.0 * (i % 2) as f64;
            w!(
                o,
                "<text class=\"fault\" x=\"{}\" y=\"{}\">{label}</text>\n",
                P(x0 + 2.0),
                P(y)
            );
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Joining,
    Connected,
    Down,
    Gone,
}

impl State {
    const ALL: [State; 4] = [State::Joining, State::Connected, State::Down, State::Gone];

    fn class(self) -> &'static str {
        match self {
            State::Joining => "s-joining",
            State::Connected => "s-connected",
            State::Down => "s-down",
            State::Gone => "s-gone",
        }
    }

    fn label(self) -> &'static str {
        match self {
            State::Joining => "joining",
            State::Connected => "connected",
            State::Down => "disconnected / reconnecting",
            State::Gone => "gone",
        }
    }
}

/// One bot identity's row: state changes, kicks (time, reason) and media gaps.
#[derive(Default)]
pub(super) struct Lane {
    states: Vec<(u64, State)>,
    kicks: Vec<(u64, String)>,
    gaps: Vec<(u64, u64)>,
}

impl Lane {
    fn set(&mut self, t: u64, s: State) {
        if self.states.last().is_none_or(|(_, last)| *last != s) {
            self.states.push((t, s));
        }
    }
}

pub(super) fn read_lanes(records: &[EventRecord]) -> (BTreeMap<&str, Lane>, Vec<FaultMark>) {
    let mut lanes: BTreeMap<&str, Lane> = BTreeMap::new();
    let mut faults: Vec<FaultMark> = Vec::new();
    for r in records {
        let t = r.t_us;
        let change = match &r.event {
            Event::BotJoinStarted { bot, .. } => Some((bot, State::Joining)),
            Event::SignalConnected { bot, .. } | Event::Resumed { bot } => {
                Some((bot, State::Connected))
            }
            Event::SignalLost { bot, .. } | Event::JoinFailed { bot, .. } => {
                Some((bot, State::Down))
            }
            Event::Kicked {
                bot,
                reason,
                action,
            } => {
                let lane = lanes.entry(bot).or_default();
                lane.kicks.push((t, format!("{reason} ({action})")));
                Some((bot, State::Down))
            }
            Event::GaveUp { bot, .. } | Event::BotLeft { bot, .. } => Some((bot, State::Gone)),
            Event::MediaGap { bot, from_us, .. } => {
                lanes.entry(bot).or_default().gaps.push((*from_us, t));
                None
            }
            Event::FaultApplied { id, kind, .. } => {
                faults.push(FaultMark {
                    id: id.clone(),
                    kind: kind.clone(),
                    from: t,
                    to: None,
                    instant: FaultKind::from_name(kind).is_some_and(FaultKind::instantaneous),
                });
                None
            }
            Event::FaultCleared { id } => {
                if let Some(f) = faults
                    .iter_mut()
                    .rev()
                    .find(|f| f.id == *id && f.to.is_none())
                {
                    f.to = Some(t);
                }
                None
            }
            _ => None,
        };
        if let Some((bot, state)) = change {
            lanes.entry(bot).or_default().set(t, state);
        }
    }
    (lanes, faults)
}

/// Intervals merged when closer than `tol`: (from, to, how many).
fn merge_intervals(mut v: Vec<(u64, u64)>, tol: u64) -> Vec<(u64, u64, usize)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64, usize)> = Vec::new();
    for (from, to) in v {
        match out.last_mut() {
            Some(last) if from <= last.1.saturating_add(tol) => {
                last.1 = last.1.max(to);
                last.2 += 1;
            }
            _ => out.push((from, to, 1)),
        }
    }
    out
}

const LANE_TOP: f64 = 34.0;
const LANE_PITCH: f64 = 20.0;
const LANE_H: f64 = 14.0;

pub(super) fn timeline(
    o: &mut String,
    ax: &Axis,
    lanes: &BTreeMap<&str, Lane>,
    faults: &[FaultMark],
) {
    o.push_str("<h2>Timeline</h2>\n");
    if lanes.is_empty() && faults.is_empty() {
        o.push_str("<p class=\"empty\">no bot or fault events</p>\n");
        return;
    }
    let bottom = LANE_TOP + LANE_PITCH * lanes.len().max(1) as f64;
    w!(
        o,
        "<svg viewBox=\"0 0 {W} {}\" width=\"{W}\" role=\"img\" aria-label=\"bot states over time\">\n",
        P(bottom + 22.0)
    );
    ax.ticks(o, LANE_TOP - 4.0, bottom);
    for (i, (bot, lane)) in lanes.iter().enumerate() {
        lane_row(o, ax, bot, lane, LANE_TOP + LANE_PITCH * i as f64);
    }
    fault_marks(o, ax, faults, LANE_TOP - 4.0, bottom, true);
    o.push_str("</svg>\n");
    let mut items: Vec<(String, String)> = State::ALL
        .iter()
        .map(|s| {
            (
                format!("background:{}", state_color(*s)),
                s.label().to_owned(),
            )
        })
        .collect();
    items.push(("background:#6a1b9a;height:4px".into(), "media gap".into()));
    items.push((
        "background:#111;border-radius:6px".into(),
        "kicked (hover for reason)".into(),
    ));
    items.push((
        "background:#1e88e5;opacity:.3".into(),
        "fault window".into(),
    ));
    items.push((
        "border-left:2px dashed #1e88e5;border-radius:0;width:0".into(),
        "instantaneous fault".into(),
    ));
    legend(o, &items);
}

fn state_color(s: State) -> &'static str {
    match s {
        State::Joining => "#f2c14e",
        State::Connected => "#43a047",
        State::Down => "#e4572e",
        State::Gone => "#d0d0d0",
    }
}

fn lane_row(o: &mut String, ax: &Axis, bot: &str, lane: &Lane, y: f64) {
    let name = esc(bot);
    w!(
        o,
        "<text class=\"lbl\" x=\"{}\" y=\"{}\">{name}</text>\n",
        P(LEFT - 6.0),
        P(y + 11.0)
    );
    // Short outages must stay visible on long runs: they get at least 2 px and are
    // drawn over the connected stretches around them.
    let ends = lane.states.iter().skip(1).map(|n| n.0).chain([ax.end_us]);
    let mut segments: Vec<(u64, u64, State)> = lane
        .states
        .iter()
        .zip(ends)
        .map(|((t, s), e)| (*t, e, *s))
        .collect();
    segments.sort_by_key(|(t, _, s)| (matches!(s, State::Joining | State::Down), *t));
    for (t, end, s) in segments {
        let (x0, x1) = (ax.x(t), ax.x(end));
        let min = if matches!(s, State::Joining | State::Down) {
            2.0
        } else {
            0.5
        };
        w!(
            o,
            "<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{name}: {} {} to {}</title></rect>\n",
            s.class(),
            P(x0),
            P(y),
            P((x1 - x0).max(min)),
            P(LANE_H),
            s.label(),
            secs(t as f64 / 1e6),
            secs(end as f64 / 1e6)
        );
    }
    for (from, to, n) in merge_intervals(lane.gaps.clone(), ax.pixel_us()) {
        let (x0, x1) = (ax.x(from), ax.x(to));
        let what = if n == 1 {
            "media gap".to_owned()
        } else {
            format!("{n} media gaps")
        };
        w!(
            o,
            "<rect class=\"gap\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"4\"><title>{name}: {what} {} to {}</title></rect>\n",
            P(x0),
            P(y + LANE_H - 4.0),
            P((x1 - x0).max(1.0)),
            secs(from as f64 / 1e6),
            secs(to as f64 / 1e6)
        );
    }
    let kicks: Vec<(u64, u64)> = lane.kicks.iter().map(|(t, _)| (*t, *t)).collect();
    for (from, _, n) in merge_intervals(kicks, ax.pixel_us() * 4) {
        let reason = lane
            .kicks
            .iter()
            .find(|k| k.0 == from)
            .map_or("", |k| k.1.as_str());
        let more = if n > 1 {
            format!(" (and {} more)", n - 1)
        } else {
            String::new()
        };
        let x = ax.x(from);
        w!(
            o,
            "<path class=\"kick\" d=\"M{} {}l-5 -7h10z\"><title>{name}: kicked at {}: {}{more}</title></path>\n",
            P(x),
            P(y + 7.0),
            secs(from as f64 / 1e6),
            esc(reason)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_closer_than_the_tolerance_merge_and_are_counted() {
        let merged = merge_intervals(vec![(50, 60), (0, 10), (12, 20), (100, 101)], 5);
        assert_eq!(merged, [(0, 20, 2), (50, 60, 1), (100, 101, 1)]);
    }

    #[test]
    fn lanes_keep_state_changes_only() {
        let mut lane = Lane::default();
        for (t, s) in [
            (0, State::Joining),
            (1, State::Connected),
            (2, State::Connected),
            (3, State::Down),
        ] {
            lane.set(t, s);
        }
        assert_eq!(
            lane.states,
            [(0, State::Joining), (1, State::Connected), (3, State::Down)]
        );
    }

    #[test]
    fn the_axis_clamps_to_the_plot() {
        let ax = Axis { end_us: 10_000_000 };
        assert_eq!(
            (ax.x(0), ax.x(10_000_000), ax.x(u64::MAX)),
            (LEFT, LEFT + PLOT_W, LEFT + PLOT_W)
        );
    }
}
