//! Threshold keys: a metric name with an optional tag filter, as in k6:
//! `connect.media`, `connect.media{group=listeners}`, `gap{group=a,bot=a-1}`.
//!
//! The metric must be in the catalogue and every tag one of
//! [`crate::metrics::FILTER_TAGS`]. Values may hold anything but `,{}=` (pair tags look
//! like `a-1<-b-2`); whitespace around names and values is ignored. A key displays with
//! its tags in name order, which parses back to the same key.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use super::{ThresholdError, ThresholdErrorKind as K};
use crate::metrics::{CatalogueEntry, FILTER_TAGS, TagFilter, catalogue, lookup};
use crate::scenario::diagnostic::hint;

/// A parsed threshold key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdKey {
    pub metric: String,
    pub filter: TagFilter,
}

impl ThresholdKey {
    /// The catalogue entry of the key's metric (parsing guarantees there is one).
    pub fn entry(&self) -> Option<&'static CatalogueEntry> {
        lookup(&self.metric)
    }
}

impl fmt::Display for ThresholdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.metric, self.filter)
    }
}

fn fail<T>(span: Range<usize>, kind: K) -> Result<T, ThresholdError> {
    Err(ThresholdError {
        span,
        in_key: true,
        kind,
    })
}

/// `s` without surrounding whitespace, and its span given that `s` starts at `at`.
fn trimmed(s: &str, at: usize) -> (&str, Range<usize>) {
    let lead = s.len() - s.trim_start().len();
    let t = s.trim();
    (t, at + lead..at + lead + t.len())
}

impl FromStr for ThresholdKey {
    type Err = ThresholdError;

    fn from_str(text: &str) -> Result<Self, ThresholdError> {
        let open = text.find('{');
        let (name, name_span) = trimmed(&text[..open.unwrap_or(text.len())], 0);
        if name.is_empty() {
            return fail(name_span, K::EmptyKey);
        }
        if lookup(name).is_none() {
            let names = catalogue().iter().map(|e| e.name);
            let hint = match hint(name, names.clone()) {
                h if h.is_empty() => format!(
                    "; expected one of: {}",
                    names.collect::<Vec<_>>().join(", ")
                ),
                h => h,
            };
            return fail(
                name_span,
                K::UnknownMetric {
                    name: name.to_owned(),
                    hint,
                },
            );
        }
        let mut filter = TagFilter::all();
        if let Some(open) = open {
            let Some(close) = text[open..].find('}').map(|i| open + i) else {
                return fail(
                    open..text.len(),
                    K::UnclosedFilter {
                        found: text[open..].to_owned(),
                    },
                );
            };
            let (rest, rest_span) = trimmed(&text[close + 1..], close + 1);
            if !rest.is_empty() {
                return fail(
                    rest_span,
                    K::TrailingAfterFilter {
                        found: rest.to_owned(),
                    },
                );
            }
            let inner = &text[open + 1..close];
            if inner.trim().is_empty() {
                return fail(open..close + 1, K::EmptyFilter);
            }
            let mut at = open + 1;
            for item in inner.split(',') {
                parse_tag(item, at, &mut filter)?;
                at += item.len() + 1;
            }
        }
        Ok(ThresholdKey {
            metric: name.to_owned(),
            filter,
        })
    }
}

/// One `tag=value` entry of a filter, starting at byte `at` of the key.
fn parse_tag(item: &str, at: usize, filter: &mut TagFilter) -> Result<(), ThresholdError> {
    let (whole, whole_span) = trimmed(item, at);
    let Some(eq) = item.find('=') else {
        return fail(
            whole_span,
            K::BadTag {
                found: whole.to_owned(),
            },
        );
    };
    let (tag, tag_span) = trimmed(&item[..eq], at);
    let (value, _) = trimmed(&item[eq + 1..], at + eq + 1);
    if !FILTER_TAGS.contains(&tag) {
        let hint = hint(tag, FILTER_TAGS.iter().copied());
        return fail(
            tag_span,
            K::UnknownTag {
                tag: tag.to_owned(),
                hint,
            },
        );
    }
    if value.is_empty() || value.contains(['=', '{']) {
        return fail(
            whole_span,
            K::BadTag {
                found: whole.to_owned(),
            },
        );
    }
    if filter
        .tags
        .insert(tag.to_owned(), value.to_owned())
        .is_some()
    {
        return fail(
            tag_span,
            K::DuplicateTag {
                tag: tag.to_owned(),
            },
        );
    }
    Ok(())
}
