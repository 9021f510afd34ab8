//! Threshold expressions: `AGG OP VALUE`, such as `p(95) < 2s` or `min >= 0.99`.
//!
//! Grammar (whitespace between the three parts is optional):
//! - `AGG`: `min` `max` `avg` `med` `count` `rate` or `p(N)` with `0 < N <= 100`;
//! - `OP`: `<` `<=` `>` `>=` `==` (`==` compares floats exactly);
//! - `VALUE`: digits with an optional fraction (`2`, `0.99`, `1.5`), optionally followed
//!   directly by a time unit `us` `ms` `s` `m` `h` (`250ms`, `2s`). No sign, no exponent:
//!   every metric is non-negative, and Rust prints any finite `f64` this way, so
//!   `Display` output always parses back to the same expression.
//!
//! Parsing ([`str::parse`]) checks syntax only; [`ThresholdExpr::parse_for`] also checks
//! the bound's unit against the metric's, because "connect.media p(95) < 2" is almost
//! certainly a bug (2 what?). Errors carry a byte span inside the expression text.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use super::{ThresholdError, ThresholdErrorKind as K};
use crate::metrics::{Aggregation, CatalogueEntry, Unit};
use crate::scenario::diagnostic::hint;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    /// Whether `observed OP bound` is true (false whenever either side is NaN).
    pub fn holds(self, observed: f64, bound: f64) -> bool {
        match self {
            Op::Lt => observed < bound,
            Op::Le => observed <= bound,
            Op::Gt => observed > bound,
            Op::Ge => observed >= bound,
            Op::Eq => observed == bound,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// The unit written after a duration bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Us,
    Ms,
    S,
    M,
    H,
}

const TIME_UNITS: &[(&str, TimeUnit)] = &[
    ("us", TimeUnit::Us),
    ("ms", TimeUnit::Ms),
    ("s", TimeUnit::S),
    ("m", TimeUnit::M),
    ("h", TimeUnit::H),
];

impl TimeUnit {
    pub fn seconds(self) -> f64 {
        match self {
            TimeUnit::Us => 1e-6,
            TimeUnit::Ms => 1e-3,
            TimeUnit::S => 1.0,
            TimeUnit::M => 60.0,
            TimeUnit::H => 3600.0,
        }
    }

    fn suffix(self) -> &'static str {
        TIME_UNITS
            .iter()
            .find(|(_, u)| *u == self)
            .map_or("", |(s, _)| s)
    }
}

/// The right-hand side, as written: `value` in `unit` (a plain number when `None`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    pub value: f64,
    pub unit: Option<TimeUnit>,
}

impl Bound {
    /// The bound in the metric's base unit: seconds for durations.
    pub fn base(&self) -> f64 {
        self.unit.map_or(self.value, |u| self.value * u.seconds())
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}",
            self.value,
            self.unit.map_or("", TimeUnit::suffix)
        )
    }
}

/// One parsed expression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdExpr {
    pub aggregation: Aggregation,
    pub op: Op,
    pub bound: Bound,
}

impl fmt::Display for ThresholdExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.aggregation, self.op, self.bound)
    }
}

impl FromStr for ThresholdExpr {
    type Err = ThresholdError;

    /// Syntax only; see [`ThresholdExpr::parse_for`] for the unit check.
    fn from_str(text: &str) -> Result<Self, ThresholdError> {
        parse_spanned(text).map(|(e, _)| e)
    }
}

impl ThresholdExpr {
    /// Parses `text` and checks that its bound fits `metric`'s unit.
    pub fn parse_for(text: &str, metric: &CatalogueEntry) -> Result<Self, ThresholdError> {
        let (expr, bound_span) = parse_spanned(text)?;
        let err = |kind| {
            Err(ThresholdError {
                span: bound_span.clone(),
                in_key: false,
                kind,
            })
        };
        let has_unit = expr.bound.unit.is_some();
        match expr.aggregation {
            Aggregation::Count if has_unit => err(K::CountTakesNumber),
            Aggregation::Rate if has_unit => err(K::RateTakesNumber),
            Aggregation::Count | Aggregation::Rate => Ok(expr),
            _ => match metric.unit {
                Unit::Duration if !has_unit => err(K::DurationNeedsUnit {
                    metric: metric.name,
                }),
                Unit::Ratio if has_unit => err(K::NumberNeeded {
                    metric: metric.name,
                    noun: "a ratio",
                    example: "0.99",
                }),
                Unit::Count if has_unit => err(K::NumberNeeded {
                    metric: metric.name,
                    noun: "a count",
                    example: "1",
                }),
                Unit::Cores if has_unit => err(K::NumberNeeded {
                    metric: metric.name,
                    noun: "a number of cores",
                    example: "1.5",
                }),
                Unit::Bytes if has_unit => err(K::NumberNeeded {
                    metric: metric.name,
                    noun: "a number of bytes",
                    example: "500000000",
                }),
                Unit::Bitrate if has_unit => err(K::NumberNeeded {
                    metric: metric.name,
                    noun: "a bitrate in bits per second",
                    example: "2500000",
                }),
                _ => Ok(expr),
            },
        }
    }
}

/// A byte cursor over the (ASCII) grammar; non-ASCII text only ever ends up inside an
/// error token, which is cut at whitespace, so slices stay on char boundaries.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> (&'a str, Range<usize>) {
        let start = self.pos;
        let rest = &self.text[start..];
        let len = rest.find(|c| !f(c)).unwrap_or(rest.len());
        self.pos += len;
        (&rest[..len], start..self.pos)
    }

    /// The next whitespace-delimited token, without consuming it.
    fn peek_token(&self) -> (&'a str, Range<usize>) {
        let rest = &self.text[self.pos..];
        let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        (&rest[..len], self.pos..self.pos + len)
    }
}

fn fail<T>(span: Range<usize>, kind: K) -> Result<T, ThresholdError> {
    Err(ThresholdError {
        span,
        in_key: false,
        kind,
    })
}

/// The expression and the span of its bound (where unit errors point).
fn parse_spanned(text: &str) -> Result<(ThresholdExpr, Range<usize>), ThresholdError> {
    let mut c = Cursor { text, pos: 0 };
    c.skip_ws();
    if c.pos == text.len() {
        return fail(0..text.len(), K::Empty);
    }
    let aggregation = parse_aggregation(&mut c)?;
    let agg_text = text[..c.pos].trim_start().to_owned();

    c.skip_ws();
    let (op_text, op_span) = c.take_while(|ch| matches!(ch, '<' | '>' | '=' | '!'));
    let op = match op_text {
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "==" => Op::Eq,
        "" => {
            let (_, span) = c.peek_token();
            return fail(span, K::MissingOp { after: agg_text });
        }
        other => {
            return fail(
                op_span,
                K::UnknownOp {
                    found: other.to_owned(),
                },
            );
        }
    };

    c.skip_ws();
    let (token, bound_span) = c.peek_token();
    if token.is_empty() {
        return fail(
            op_span,
            K::MissingBound {
                op: op_text.to_owned(),
            },
        );
    }
    c.pos = bound_span.end;
    let bound = parse_bound(token).ok_or_else(|| ThresholdError {
        span: bound_span.clone(),
        in_key: false,
        kind: match split_number(token) {
            Some((_, unit))
                if !unit.is_empty() && unit.chars().all(|ch| ch.is_ascii_alphabetic()) =>
            {
                K::UnknownUnit {
                    unit: unit.to_owned(),
                    found: token.to_owned(),
                }
            }
            _ => K::BadBound {
                found: token.to_owned(),
            },
        },
    })?;

    c.skip_ws();
    if c.pos < text.len() {
        let rest = text[c.pos..].trim_end();
        return fail(
            c.pos..c.pos + rest.len(),
            K::Trailing {
                found: rest.to_owned(),
            },
        );
    }
    Ok((
        ThresholdExpr {
            aggregation,
            op,
            bound,
        },
        bound_span,
    ))
}

const AGGREGATIONS: &[&str] = &["min", "max", "avg", "med", "count", "rate"];

fn parse_aggregation(c: &mut Cursor<'_>) -> Result<Aggregation, ThresholdError> {
    let (word, span) = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    match word {
        "min" => return Ok(Aggregation::Min),
        "max" => return Ok(Aggregation::Max),
        "avg" => return Ok(Aggregation::Avg),
        "med" => return Ok(Aggregation::Med),
        "count" => return Ok(Aggregation::Count),
        "rate" => return Ok(Aggregation::Rate),
        "p" if c.text[c.pos..].starts_with('(') => {}
        "" => {
            let (token, span) = c.peek_token();
            return fail(
                span,
                K::MissingAggregation {
                    before: token.to_owned(),
                },
            );
        }
        other => {
            // `p95` is the most likely slip; suggest the spelling that works.
            let digits = other
                .strip_prefix('p')
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()) && !d.is_empty());
            let hint = match digits {
                Some(d) => format!("; did you mean `p({d})`?"),
                None => hint(other, AGGREGATIONS.iter().copied()),
            };
            return fail(
                span,
                K::UnknownAggregation {
                    found: other.to_owned(),
                    hint,
                },
            );
        }
    }
    let open = c.pos;
    let Some(close) = c.text[open..].find(')').map(|i| open + i) else {
        let inner = c.text[open + 1..].trim_end();
        return fail(
            span.start..open + 1 + inner.len(),
            K::UnclosedPercentile {
                found: inner.to_owned(),
            },
        );
    };
    c.pos = close + 1;
    let raw = &c.text[open + 1..close];
    let inner = raw.trim();
    let lead = raw.len() - raw.trim_start().len();
    let inner_span = open + 1 + lead..open + 1 + lead + inner.len();
    let n = match split_number(inner) {
        Some((n, "")) => n,
        _ => {
            return fail(
                inner_span,
                K::BadPercentile {
                    found: inner.to_owned(),
                },
            );
        }
    };
    if !(n > 0.0 && n <= 100.0) {
        return fail(
            inner_span,
            K::PercentileRange {
                found: inner.to_owned(),
            },
        );
    }
    Ok(Aggregation::Percentile(n))
}

/// `digits[.digits]` at the start of `s`, as a number, and the rest of `s`.
fn split_number(s: &str) -> Option<(f64, &str)> {
    let int = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if int == 0 {
        return None;
    }
    let mut end = int;
    if let Some(frac) = s[int..].strip_prefix('.') {
        let digits = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if digits == 0 {
            return None;
        }
        end = int + 1 + digits;
    }
    // A long enough digit string parses to infinity, which could not be displayed back.
    let n: f64 = s[..end].parse().ok().filter(|n: &f64| n.is_finite())?;
    Some((n, &s[end..]))
}

fn parse_bound(token: &str) -> Option<Bound> {
    let (value, unit) = split_number(token)?;
    if unit.is_empty() {
        return Some(Bound { value, unit: None });
    }
    TIME_UNITS
        .iter()
        .find(|(s, _)| *s == unit)
        .map(|(_, u)| Bound {
            value,
            unit: Some(*u),
        })
}
