//! Reads `[thresholds]`: keys and expressions go through [`crate::threshold`]'s parsers,
//! and their errors, whose spans are bytes of the key or expression text, are mapped to
//! bytes of the file so they point at the very character.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::walk::{Cx, describe, spanned};
use super::{ExprSpec, ThresholdSpec};
use crate::threshold::{ThresholdError, ThresholdExpr, ThresholdKey};

/// Where `sub` (bytes of the decoded string `decoded`) lies in the file, given the span
/// `outer` of the string token. Exact when the token is the text between its quotes
/// (no escapes); otherwise the whole token, which is still the right place.
fn inner_span(
    source: &str,
    outer: &Range<usize>,
    decoded: &str,
    sub: &Range<usize>,
) -> Range<usize> {
    let raw = source.get(outer.clone()).unwrap_or("");
    for q in ["\"\"\"", "'''", "\"", "'", ""] {
        let inner = raw
            .strip_prefix(q)
            .and_then(|r| r.strip_suffix(q))
            .filter(|_| raw.len() >= 2 * q.len());
        if inner == Some(decoded) {
            let at = outer.start + q.len();
            return at + sub.start..at + sub.end;
        }
    }
    outer.clone()
}

/// Threshold messages name what they are about (`unknown metric `x``, `connect.media
/// is a duration: ...`) and point inside the string, so they need no prefix.
fn threshold_error(cx: &mut Cx<'_>, token: &Range<usize>, text: &str, e: &ThresholdError) {
    let span = inner_span(cx.source, token, text, &e.span);
    cx.error(span, e.to_string());
}

pub(super) fn read(cx: &mut Cx<'_>, t: &DeTable<'_>) -> (Vec<ThresholdSpec>, Vec<String>) {
    let mut specs = Vec::new();
    let mut keys = Vec::new();
    for (k, v) in t.iter() {
        let key_text = k.get_ref().to_string();
        keys.push(key_text.clone());
        // `connect.media = [..]` unquoted is a dotted key: a table named `connect`.
        if let DeValue::Table(_) = v.get_ref() {
            cx.error(
                k.span(),
                format!(
                    "threshold key `{key_text}` is a table: quote metric names that contain dots, such as \"connect.media\" = [\"p(95) < 2s\"]"
                ),
            );
            continue;
        }
        let key = match key_text.parse::<ThresholdKey>() {
            Ok(key) => Some(key),
            Err(e) => {
                threshold_error(cx, &k.span(), &key_text, &e);
                None
            }
        };
        let items = match v.get_ref() {
            DeValue::Array(items) if !items.is_empty() => items,
            DeValue::Array(_) => {
                cx.error(
                    v.span(),
                    format!("thresholds for `{key_text}` must not be empty"),
                );
                continue;
            }
            other => {
                cx.error(
                    v.span(),
                    format!(
                        "thresholds for `{key_text}` must be an array of strings, such as [\"p(95) < 2s\"], but is {}",
                        describe(other)
                    ),
                );
                continue;
            }
        };
        let mut exprs = Vec::new();
        for item in items.iter() {
            let DeValue::String(text) = item.get_ref() else {
                let found = describe(item.get_ref());
                cx.error(item.span(), format!("each threshold of `{key_text}` must be a string, such as \"p(95) < 2s\", but is {found}"));
                continue;
            };
            // With a bad key there is no unit to check against, but syntax still is.
            let parsed = match key.as_ref().and_then(ThresholdKey::entry) {
                Some(entry) => ThresholdExpr::parse_for(text, entry),
                None => text.parse::<ThresholdExpr>(),
            };
            match parsed {
                Ok(parsed) => exprs.push(ExprSpec {
                    text: spanned(item.span(), text.to_string()),
                    parsed,
                }),
                Err(e) => threshold_error(cx, &item.span(), text, &e),
            }
        }
        if let Some(parsed) = key {
            specs.push(ThresholdSpec {
                key: spanned(k.span(), key_text),
                parsed,
                exprs,
            });
        }
    }
    // The TOML map orders keys alphabetically; show them in file order.
    specs.sort_by_key(|s| s.key.span().start);
    (specs, keys)
}
