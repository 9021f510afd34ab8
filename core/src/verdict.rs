//! The verdict: thresholds judged against the measured metrics.
//!
//! Rules (the contract CI relies on):
//! - A threshold is *satisfied* when its expression holds for the observed aggregate; an
//!   expected-to-fail threshold (the scenario reproduces an outage) is satisfied only
//!   when its expression does **not** hold. [`ThresholdResult::pass`] is "satisfied".
//! - A threshold whose metric has no matching sample is never satisfied (note
//!   `no samples`), expected to fail or not: a bound that saw no data proves nothing, and
//!   a reproduction that produced no data did not reproduce anything.
//! - An observed NaN is never satisfied either (note says so).
//! - The outcome is [`Outcome::Pass`] when every threshold is satisfied, else
//!   [`Outcome::Fail`]; [`Outcome::Invalid`] overrides both when the harness itself says
//!   the run cannot be judged (it fell behind, or the run was interrupted).
//!
//! Exit codes of the whole tool are listed once, in [`exit`].

use serde::Serialize;

use crate::metrics::MetricStore;
use crate::threshold::ThresholdPlan;

/// Process exit codes of `sfu-harness` (DESIGN.md, "Contract for users").
pub mod exit {
    /// Every threshold satisfied.
    pub const PASS: i32 = 0;
    /// At least one threshold not satisfied.
    pub const FAIL: i32 = 1;
    /// A scenario file is invalid, or the command line is.
    pub const INVALID_INPUT: i32 = 2;
    /// The environment or provisioning failed (no container engine, image, ...).
    pub const ENVIRONMENT: i32 = 3;
    /// The run cannot be judged: the harness was overloaded, or it was interrupted.
    pub const RUN_INVALID: i32 = 4;
}

/// How the run ended, as far as thresholds go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Fail,
    Invalid { reason: String },
}

impl Outcome {
    /// 0 pass, 1 fail, 4 invalid; see [`exit`].
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Pass => exit::PASS,
            Outcome::Fail => exit::FAIL,
            Outcome::Invalid { .. } => exit::RUN_INVALID,
        }
    }
}

/// One threshold expression, judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ThresholdResult {
    /// The key as written.
    pub key: String,
    pub metric: String,
    /// The expression as written.
    pub expr: String,
    /// The aggregate (base unit: seconds for durations); `None`: no samples.
    pub observed: Option<f64>,
    /// Satisfied (see the module doc for expected-to-fail thresholds).
    pub pass: bool,
    pub expected_to_fail: bool,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Verdict {
    pub outcome: Outcome,
    /// In plan order.
    pub thresholds: Vec<ThresholdResult>,
}

/// Judges every threshold over `store`; `run_seconds` is the measured duration (for
/// `rate`); `harness_invalid` is why the run cannot be judged, if it cannot.
pub fn judge(
    thresholds: &[ThresholdPlan],
    store: &MetricStore,
    run_seconds: f64,
    harness_invalid: Option<String>,
) -> Verdict {
    let results: Vec<ThresholdResult> = thresholds
        .iter()
        .map(|t| {
            let observed = store.aggregate(&t.metric, &t.filter, &t.aggregation, run_seconds);
            let (pass, note) = match observed {
                None => (false, Some("no samples".to_owned())),
                Some(x) if x.is_nan() => (false, Some("observed value is not a number".to_owned())),
                Some(x) => {
                    let holds = t.holds(x);
                    let note = (t.expected_to_fail && holds)
                        .then(|| "expected to fail, but held".to_owned());
                    (holds != t.expected_to_fail, note)
                }
            };
            ThresholdResult {
                key: t.key.clone(),
                metric: t.metric.clone(),
                expr: t.expr.clone(),
                observed,
                pass,
                expected_to_fail: t.expected_to_fail,
                note,
            }
        })
        .collect();
    let outcome = match harness_invalid {
        Some(reason) => Outcome::Invalid { reason },
        None if results.iter().all(|r| r.pass) => Outcome::Pass,
        None => Outcome::Fail,
    };
    Verdict {
        outcome,
        thresholds: results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Tags;

    fn store() -> MetricStore {
        let mut s = MetricStore::new();
        for (bot, c) in [("a-1", 1.0), ("a-2", 0.95)] {
            s.record("continuity", Tags::from([("bot".into(), bot.into())]), c);
        }
        s.record("connect.media", Tags::new(), 0.4);
        s
    }

    fn plan(key: &str, expr: &str, expected_to_fail: bool) -> ThresholdPlan {
        ThresholdPlan::parse(key, expr, expected_to_fail).unwrap()
    }

    #[test]
    fn all_satisfied_passes_with_exit_code_0() {
        let v = judge(
            &[
                plan("continuity", "min >= 0.9", false),
                plan("connect.media", "p(95) < 2s", false),
            ],
            &store(),
            10.0,
            None,
        );
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(v.outcome.exit_code(), 0);
        assert_eq!(v.thresholds[0].observed, Some(0.95));
    }

    #[test]
    fn one_broken_bound_fails_with_exit_code_1() {
        let v = judge(
            &[
                plan("continuity", "min >= 1.01", false),
                plan("connect.media", "p(95) < 2s", false),
            ],
            &store(),
            10.0,
            None,
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.outcome.exit_code(), 1);
        assert_eq!(
            v.thresholds.iter().map(|t| t.pass).collect::<Vec<_>>(),
            [false, true]
        );
    }

    #[test]
    fn a_threshold_without_samples_fails_with_a_note() {
        let v = judge(&[plan("gap", "max < 1s", false)], &store(), 10.0, None);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.thresholds[0].observed, None);
        assert_eq!(v.thresholds[0].note.as_deref(), Some("no samples"));
        let v = judge(&[plan("gap", "max < 1s", true)], &store(), 10.0, None);
        assert_eq!(
            v.outcome,
            Outcome::Fail,
            "an expected failure without data did not reproduce anything"
        );
    }

    #[test]
    fn expected_failures_are_satisfied_only_when_the_bound_breaks() {
        let v = judge(
            &[plan("continuity", "min >= 0.99", true)],
            &store(),
            10.0,
            None,
        );
        assert_eq!(v.outcome, Outcome::Pass);
        let v = judge(
            &[plan("continuity", "min >= 0.5", true)],
            &store(),
            10.0,
            None,
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.thresholds[0].note.as_deref(),
            Some("expected to fail, but held")
        );
    }

    #[test]
    fn filters_select_series() {
        let v = judge(
            &[plan("continuity{bot=a-1}", "min >= 0.99", false)],
            &store(),
            10.0,
            None,
        );
        assert_eq!(v.outcome, Outcome::Pass);
    }

    #[test]
    fn invalid_overrides_pass_and_fail() {
        let reason = Some("the harness fell behind".to_owned());
        let v = judge(
            &[plan("continuity", "min >= 1.01", false)],
            &store(),
            10.0,
            reason.clone(),
        );
        assert_eq!(
            v.outcome,
            Outcome::Invalid {
                reason: "the harness fell behind".into()
            }
        );
        assert_eq!(v.outcome.exit_code(), 4);
        let v = judge(
            &[plan("continuity", "min >= 0.5", false)],
            &store(),
            10.0,
            reason,
        );
        assert_eq!(v.outcome.exit_code(), exit::RUN_INVALID);
    }

    #[test]
    fn verdict_serializes_kebab_case() {
        let v = judge(&[plan("gap", "max < 1s", true)], &store(), 10.0, None);
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(
            json,
            r#"{"outcome":"fail","thresholds":[{"key":"gap","metric":"gap","expr":"max < 1s","observed":null,"pass":false,"expected-to-fail":true,"note":"no samples"}]}"#
        );
        let invalid = serde_json::to_string(&Outcome::Invalid { reason: "x".into() }).unwrap();
        assert_eq!(invalid, r#"{"invalid":{"reason":"x"}}"#);
    }
}
