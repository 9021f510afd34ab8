//! A group's `stages`: its count over time, as k6's stages are. Each stage moves the
//! number of the group's bots in the room linearly to `target` over `duration`: up
//! (bots join, evenly spread), flat (a hold), or down (the latest bots leave with a
//! LeaveRequest, evenly spread, the last at the stage's end). The stages start at the
//! group's `join-at`; the group's size is its largest target, so `count` is not given.
//!
//! ```toml
//! [[groups]]
//! name = "listeners"
//! stages = [
//!   { target = 20, duration = "10s" },   # ramp up
//!   { target = 20, duration = "20s" },   # hold
//!   { target = 0, duration = "10s" },    # ramp down
//! ]
//! ```

use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use super::walk::{Cx, MAX_COUNT, describe, duration, fields, get, ranged, spanned};

const KEYS: &[&str] = &["target", "duration"];

/// One stage of a valid group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageSpec {
    pub target: u32,
    pub duration: Duration,
}

/// When each bot `n` (from 1) of a staged group joins and, if it does, leaves; offsets
/// from the group's `join-at`, to the millisecond.
pub fn schedule(stages: &[StageSpec]) -> Vec<(Duration, Option<Duration>)> {
    let max = stages.iter().map(|s| s.target).max().unwrap_or(0) as usize;
    let mut out: Vec<(Duration, Option<Duration>)> = vec![(Duration::ZERO, None); max];
    let ms = |d: Duration| Duration::from_millis(d.as_secs_f64().mul_add(1e3, 0.5) as u64);
    let (mut at, mut level) = (Duration::ZERO, 0u32);
    for s in stages {
        let (a, b) = (level, s.target);
        if b > a {
            for k in a + 1..=b {
                out[k as usize - 1].0 =
                    ms(at + s.duration.mul_f64(f64::from(k - a - 1) / f64::from(b - a)));
            }
        } else if b < a {
            for k in (b + 1..=a).rev() {
                out[k as usize - 1].1 =
                    Some(ms(at
                        + s.duration
                            .mul_f64(f64::from(a - k + 1) / f64::from(a - b))));
            }
        }
        at += s.duration;
        level = b;
    }
    out
}

/// The stages' total length.
pub fn length(stages: &[StageSpec]) -> Duration {
    stages.iter().map(|s| s.duration).sum()
}

/// Reads `stages` of a group; `None` when anything in it was wrong (reported).
pub(super) fn read(
    cx: &mut Cx<'_>,
    v: &Spanned<DeValue<'_>>,
    label: &str,
) -> Option<Spanned<Vec<StageSpec>>> {
    let what = format!("stages of {label}");
    let DeValue::Array(items) = v.get_ref() else {
        cx.error(
            v.span(),
            format!(
                "{what} must be an array of tables such as {{ target = 10, duration = \"10s\" }}, but is {}",
                describe(v.get_ref())
            ),
        );
        return None;
    };
    if items.is_empty() {
        cx.error(v.span(), format!("{what} must hold at least one stage"));
        return None;
    }
    let before = cx.problems.len();
    let mut out = Vec::new();
    let mut went_down = false;
    let mut level = 0u32;
    for (i, item) in items.iter().enumerate() {
        let place = format!("stages[{}] of {label}", i + 1);
        let DeValue::Table(t) = item.get_ref() else {
            cx.error(
                item.span(),
                format!(
                    "{place} must be a table, but is {}",
                    describe(item.get_ref())
                ),
            );
            continue;
        };
        let f = fields(cx, t, &place, KEYS);
        for key in KEYS {
            if get(&f, key).is_none() {
                cx.error(item.span(), format!("missing key `{key}` in {place}"));
            }
        }
        let target = ranged(
            cx,
            &f,
            "target",
            &format!("target of {place}"),
            0..=MAX_COUNT,
        )
        .map(|n| spanned(n.span(), *n.get_ref() as u32));
        let d = get(&f, "duration").and_then(|v| duration(cx, v, &format!("duration of {place}")));
        if let Some(t) = &target {
            let n = *t.get_ref();
            if n > level && went_down {
                cx.error(
                    t.span(),
                    format!(
                        "target of {place} ramps up again after a ramp down ({level} to {n}); a group's stages ramp up, hold, then ramp down (bots that left do not come back)"
                    ),
                );
            }
            went_down |= n < level;
            level = n;
        }
        if let (Some(t), Some(d)) = (target, d) {
            out.push(StageSpec {
                target: *t.get_ref(),
                duration: *d.get_ref(),
            });
        }
    }
    if cx.problems.len() != before {
        return None;
    }
    if out.iter().all(|s| s.target == 0) {
        cx.error(
            v.span(),
            format!("{what} never bring a bot in: every target is 0"),
        );
        return None;
    }
    Some(spanned(v.span(), out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(target: u32, secs: u64) -> StageSpec {
        StageSpec {
            target,
            duration: Duration::from_secs(secs),
        }
    }

    #[test]
    fn ramps_spread_joins_and_leaves_evenly_and_the_latest_leave_first() {
        let plan = schedule(&[s(4, 8), s(4, 10), s(0, 4)]);
        let secs = |d: Duration| d.as_secs_f64();
        let joins: Vec<f64> = plan.iter().map(|p| secs(p.0)).collect();
        assert_eq!(joins, [0.0, 2.0, 4.0, 6.0]);
        let leaves: Vec<f64> = plan.iter().map(|p| secs(p.1.unwrap())).collect();
        // Down from 4 to 0 over 4 s starting at 18 s: bot 4 first, bot 1 at the end.
        assert_eq!(leaves, [22.0, 21.0, 20.0, 19.0]);
        assert_eq!(
            length(&[s(4, 8), s(4, 10), s(0, 4)]),
            Duration::from_secs(22)
        );
    }

    #[test]
    fn a_staircase_adds_bots_stage_by_stage_and_a_partial_ramp_down_keeps_the_rest() {
        let plan = schedule(&[s(2, 0), s(2, 5), s(4, 2), s(3, 1)]);
        let joins: Vec<u128> = plan.iter().map(|p| p.0.as_millis()).collect();
        assert_eq!(joins, [0, 0, 5_000, 6_000]);
        let leaves: Vec<Option<u128>> = plan.iter().map(|p| p.1.map(|d| d.as_millis())).collect();
        assert_eq!(leaves, [None, None, None, Some(8_000)]);
    }
}
