//! Thresholds: k6-like pass/fail bounds over metrics.
//!
//! In a scenario, `[thresholds]` maps a *key* (metric name and optional tag filter, see
//! [`ThresholdKey`]) to an array of *expressions* (`AGG OP VALUE`, see
//! [`ThresholdExpr`]):
//!
//! ```toml
//! [thresholds]
//! "connect.media{group=listeners}" = ["p(95) < 2s", "max < 5s"]
//! "continuity" = ["min >= 0.99"]
//! ```
//!
//! Each expression compiles into one [`ThresholdPlan`] whose bound is in the metric's
//! base unit (seconds for durations), which is what [`crate::verdict::judge`] compares
//! with [`crate::metrics::MetricStore::aggregate`]. `count` and `rate` always take plain
//! numbers; `rate` is `count` per second of the run's measured duration.
//!
//! Errors carry a byte span inside the key or the expression text, so the scenario
//! parser can point at the exact character in the file.

mod expr;
mod key;

use std::ops::Range;

pub use expr::{Bound, Op, ThresholdExpr, TimeUnit};
pub use key::ThresholdKey;

pub use crate::metrics::{Aggregation, TagFilter};

/// One compiled threshold expression.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdPlan {
    /// The key exactly as written in `[thresholds]`.
    pub key: String,
    pub metric: String,
    pub filter: TagFilter,
    /// The expression exactly as written.
    pub expr: String,
    pub aggregation: Aggregation,
    pub op: Op,
    /// In the metric's base unit: seconds for durations.
    pub bound: f64,
    /// The scenario declares that this key must fail (it reproduces an outage).
    pub expected_to_fail: bool,
}

impl ThresholdPlan {
    /// Compiles one key and one expression, both as written. Which of the two an error
    /// is about is in [`ThresholdError::in_key`].
    pub fn parse(key: &str, expr: &str, expected_to_fail: bool) -> Result<Self, ThresholdError> {
        let k: ThresholdKey = key.parse()?;
        let entry = k.entry().expect("a parsed key names a catalogue metric");
        let e = ThresholdExpr::parse_for(expr, entry)?;
        Ok(Self::new(key, &k, expr, &e, expected_to_fail))
    }

    /// Builds the plan from an already parsed key and expression.
    pub fn new(
        key_text: &str,
        key: &ThresholdKey,
        expr_text: &str,
        expr: &ThresholdExpr,
        expected_to_fail: bool,
    ) -> Self {
        ThresholdPlan {
            key: key_text.to_owned(),
            metric: key.metric.clone(),
            filter: key.filter.clone(),
            expr: expr_text.to_owned(),
            aggregation: expr.aggregation,
            op: expr.op,
            bound: expr.bound.base(),
            expected_to_fail,
        }
    }

    /// Whether the expression is true for `observed` (before expected-to-fail is
    /// taken into account).
    pub fn holds(&self, observed: f64) -> bool {
        self.op.holds(observed, self.bound)
    }
}

/// A problem in a threshold key or expression, at `span` (bytes of that text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ThresholdError {
    pub span: Range<usize>,
    /// The problem is in the key (else in the expression).
    pub in_key: bool,
    pub kind: ThresholdErrorKind,
}

const AGG_LIST: &str = "min, max, avg, med, p(N), count, rate";
const OP_LIST: &str = "<, <=, >, >=, ==";

/// What is wrong; `hint`s are pre-rendered "; did you mean `x`?" suffixes (or empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdErrorKind {
    #[error("threshold key is empty; expected a metric name, such as `connect.media`")]
    EmptyKey,
    #[error("unknown metric `{name}`{hint}")]
    UnknownMetric { name: String, hint: String },
    #[error("missing `}}` at the end of the tag filter `{found}`")]
    UnclosedFilter { found: String },
    #[error("unexpected `{found}` after the tag filter")]
    TrailingAfterFilter { found: String },
    #[error("empty tag filter `{{}}`; remove it or name a tag, such as `{{group=listeners}}`")]
    EmptyFilter,
    #[error("tag filter entry `{found}` must be `tag=value`, such as `group=listeners`")]
    BadTag { found: String },
    #[error("unknown tag `{tag}`; expected one of: group, bot, fault, phase, pair, track{hint}")]
    UnknownTag { tag: String, hint: String },
    #[error("tag `{tag}` appears more than once in the filter")]
    DuplicateTag { tag: String },

    #[error("empty threshold expression; expected `AGG OP VALUE`, such as `p(95) < 2s`")]
    Empty,
    #[error("missing aggregation before `{before}`; expected one of: {AGG_LIST}")]
    MissingAggregation { before: String },
    #[error("unknown aggregation `{found}`; expected one of: {AGG_LIST}{hint}")]
    UnknownAggregation { found: String, hint: String },
    #[error("missing `)` after `p({found}`")]
    UnclosedPercentile { found: String },
    #[error("percentile must be a number, such as p(95), but is `{found}`")]
    BadPercentile { found: String },
    #[error("percentile must be more than 0 and at most 100, but is {found}")]
    PercentileRange { found: String },
    #[error("missing comparison operator after `{after}`; expected one of: {OP_LIST}")]
    MissingOp { after: String },
    #[error("unknown comparison operator `{found}`; expected one of: {OP_LIST}")]
    UnknownOp { found: String },
    #[error("missing bound after `{op}`; expected a number or a duration, such as 2s")]
    MissingBound { op: String },
    #[error("bound must be a number or a duration, such as 2s, but is `{found}`")]
    BadBound { found: String },
    #[error("unknown unit `{unit}` in `{found}`; expected one of: us, ms, s, m, h")]
    UnknownUnit { unit: String, found: String },
    #[error("unexpected `{found}` after the bound")]
    Trailing { found: String },

    #[error("{metric} is a duration: write the bound with a unit, such as 2s")]
    DurationNeedsUnit { metric: &'static str },
    #[error("{metric} is {noun}: write the bound as a plain number, such as {example}")]
    NumberNeeded {
        metric: &'static str,
        noun: &'static str,
        example: &'static str,
    },
    #[error("`count` takes a plain number, such as 10, not a duration")]
    CountTakesNumber,
    #[error("`rate` is per second of the run: write the bound as a plain number, such as 5")]
    RateTakesNumber,
}

#[cfg(test)]
mod tests;
