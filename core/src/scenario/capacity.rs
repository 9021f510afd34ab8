//! `[capacity]`: a capacity search. The load grows in steps — every `step-every`,
//! `step` more rooms (`add = "rooms"`, rooms shaped like the scenario's groups) or bots
//! of one group (`add = "<group>"`) — from `start` up to the scenario's own size (its
//! `rooms`, or the group's `count`), and the run stops at the first step whose window
//! breaks a `[capacity.stop-on]` condition (threshold syntax, judged over that step
//! alone) or refuses a join.
//!
//! ```toml
//! rooms = 8
//! [capacity]
//! add = "rooms"
//! step = 1
//! step-every = "10s"
//! [capacity.stop-on]
//! "continuity" = ["p(5) >= 0.95"]
//! ```

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::DeTable;

use super::ThresholdSpec;
use super::walk::{Cx, MAX_COUNT, at_least, duration, fields, get, ident, ranged, spanned, table};

const KEYS: &[&str] = &["add", "step", "start", "step-every", "stop-on"];

/// Shortest step: a step's media bins must close (2 s late) and still leave a window.
pub(super) const MIN_STEP_EVERY: Duration = Duration::from_secs(4);

/// What a step adds.
pub const ADD_ROOMS: &str = "rooms";

/// A valid `[capacity]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacitySpec {
    /// The `[capacity]` header, for messages about the table as a whole.
    pub span: Range<usize>,
    /// `rooms`, or the name of the group whose bots a step adds.
    pub add: Spanned<String>,
    /// Rooms or bots added per step; at least 1.
    pub step: Spanned<u32>,
    /// Load of the first step; default `step`.
    pub start: Option<Spanned<u32>>,
    pub step_every: Spanned<Duration>,
    /// The conditions judged on each step's window; never empty.
    pub stop_on: Vec<ThresholdSpec>,
}

impl CapacitySpec {
    pub fn adds_rooms(&self) -> bool {
        self.add.get_ref() == ADD_ROOMS
    }

    pub fn start(&self) -> u32 {
        self.start
            .as_ref()
            .map_or(*self.step.get_ref(), |s| *s.get_ref())
    }

    /// The load of each step, from `start` up to `max`, the last one `max` itself.
    pub fn levels(&self, max: u32) -> Vec<u32> {
        let step = (*self.step.get_ref()).max(1);
        let mut out = Vec::new();
        let mut level = self.start().min(max);
        loop {
            out.push(level);
            if level >= max {
                return out;
            }
            level = level.saturating_add(step).min(max);
        }
    }
}

/// `[capacity]` as read; `None` fields had a problem.
pub(super) struct CapacityDraft {
    pub span: Range<usize>,
    pub add: Option<Spanned<String>>,
    pub step: Option<Spanned<u32>>,
    pub start: Option<Spanned<u32>>,
    pub step_every: Option<Spanned<Duration>>,
    pub stop_on: Vec<ThresholdSpec>,
    /// `stop-on` was there and every entry of it was readable.
    stop_on_ok: bool,
}

impl CapacityDraft {
    pub fn finish(self) -> Option<CapacitySpec> {
        self.stop_on_ok.then_some(())?;
        Some(CapacitySpec {
            span: self.span,
            add: self.add?,
            step: self.step?,
            start: self.start,
            step_every: self.step_every?,
            stop_on: self.stop_on,
        })
    }
}

pub(super) fn read(cx: &mut Cx<'_>, t: &DeTable<'_>, span: Range<usize>) -> CapacityDraft {
    let place = "[capacity]";
    let f = fields(cx, t, place, KEYS);
    for key in ["add", "step", "step-every", "stop-on"] {
        if get(&f, key).is_none() {
            cx.error(span.clone(), format!("missing key `{key}` in {place}"));
        }
    }
    let count = |cx: &mut Cx<'_>, key: &str| {
        ranged(cx, &f, key, &format!("{key} of {place}"), 1..=MAX_COUNT)
            .map(|n| spanned(n.span(), *n.get_ref() as u32))
    };
    let step = count(cx, "step");
    let start = count(cx, "start");
    let add = get(&f, "add").and_then(|v| ident(cx, v, &format!("add of {place}")));
    let step_every = get(&f, "step-every")
        .and_then(|v| duration(cx, v, &format!("step-every of {place}")))
        .and_then(|d| at_least(cx, d, MIN_STEP_EVERY, &format!("step-every of {place}")));
    let mut stop_on = Vec::new();
    let mut stop_on_ok = false;
    if let Some(v) = get(&f, "stop-on")
        && let Some(t) = table(cx, v, "stop-on of [capacity]")
    {
        let before = cx.problems.len();
        (stop_on, _) = super::thresholds::read(cx, t);
        stop_on_ok = cx.problems.len() == before;
        if stop_on_ok && stop_on.is_empty() {
            cx.error(
                v.span(),
                "stop-on of [capacity] must name at least one condition, such as \
                 \"continuity\" = [\"p(5) >= 0.95\"]",
            );
            stop_on_ok = false;
        }
    }
    CapacityDraft {
        span,
        add,
        step,
        start,
        step_every,
        stop_on,
        stop_on_ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(start: Option<u32>, step: u32) -> CapacitySpec {
        CapacitySpec {
            span: 0..0,
            add: Spanned::new(0..0, "rooms".into()),
            step: Spanned::new(0..0, step),
            start: start.map(|s| Spanned::new(0..0, s)),
            step_every: Spanned::new(0..0, Duration::from_secs(10)),
            stop_on: Vec::new(),
        }
    }

    #[test]
    fn levels_climb_by_step_and_end_at_the_maximum() {
        assert_eq!(spec(None, 2).levels(8), vec![2, 4, 6, 8]);
        assert_eq!(spec(Some(1), 3).levels(8), vec![1, 4, 7, 8]);
        assert_eq!(spec(Some(5), 1).levels(5), vec![5]);
        assert_eq!(spec(Some(9), 1).levels(4), vec![4]);
    }
}
