//! Cross-field checks over a [`Draft`]: things no single value can be wrong about.
//!
//! Only values that passed their own checks are in the draft, so a problem is reported
//! once, where it is, and not again as a consequence elsewhere.

use std::time::Duration;

use super::diagnostic::hint;
use super::walk::{Cx, Draft};

pub(super) fn check(cx: &mut Cx<'_>, d: &Draft) {
    unique_names(cx, d);
    unique_identities(cx, d);
    if let Some(duration) = &d.duration {
        joins_within_run(cx, d, *duration.get_ref());
    }
    expected_failures(cx, d);
}

fn unique_names(cx: &mut Cx<'_>, d: &Draft) {
    let groups = d.groups.as_deref().unwrap_or_default();
    for (i, g) in groups.iter().enumerate() {
        let Some(name) = &g.name else { continue };
        if let Some(first) = groups[..i]
            .iter()
            .find(|o| o.name.as_ref().map(|n| n.get_ref()) == Some(name.get_ref()))
        {
            cx.error(
                name.span(),
                format!(
                    "name of group #{} is `{}`, which group #{} already uses; group names must be unique",
                    g.number,
                    name.get_ref(),
                    first.number
                ),
            );
        }
    }
}

/// Identities are `<prefix>-<n>`; since `n` has no `-`, two groups can only produce the
/// same identity when their prefixes are equal.
fn unique_identities(cx: &mut Cx<'_>, d: &Draft) {
    let groups = d.groups.as_deref().unwrap_or_default();
    let prefix = |g: &super::walk::GroupDraft| g.identity_prefix.clone().or_else(|| g.name.clone());
    for (i, g) in groups.iter().enumerate() {
        let Some(p) = prefix(g) else { continue };
        let Some(first) = groups[..i]
            .iter()
            .find(|o| prefix(o).as_ref().map(|q| q.get_ref()) == Some(p.get_ref()))
        else {
            continue;
        };
        if g.identity_prefix.is_none() && first.identity_prefix.is_none() {
            continue; // same names: already reported by unique_names
        }
        cx.error(
            p.span(),
            format!(
                "identity prefix `{}` of {} is already used by {}; bot identities must be unique across groups",
                p.get_ref(),
                g.label(),
                first.label()
            ),
        );
    }
}

fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A bot that starts joining after the run ended would measure nothing; the run ends
/// `duration` after the first join.
fn joins_within_run(cx: &mut Cx<'_>, d: &Draft, duration: Duration) {
    let groups = d.groups.as_deref().unwrap_or_default();
    let at =
        |g: &super::walk::GroupDraft| g.join_at.as_ref().map_or(Duration::ZERO, |j| *j.get_ref());
    let Some(first) = groups.iter().map(at).min() else {
        return;
    };
    let end = first + duration;
    for g in groups {
        let Some(count) = &g.count else { continue };
        let join_at = at(g);
        if join_at >= end {
            let span = g.join_at.as_ref().map_or(g.span.clone(), |j| j.span());
            let message = format!(
                "join-at of {} must be before the end of the run at {} (first join + duration), but is {}",
                g.label(),
                show(end),
                show(join_at)
            );
            cx.error(span, message);
            continue;
        }
        let Some(spacing) = &g.join_spacing else {
            continue;
        };
        let last = spacing
            .get_ref()
            .checked_mul(count.get_ref() - 1)
            .and_then(|s| s.checked_add(join_at));
        if last.is_none_or(|l| l >= end) {
            let when = last.map_or_else(|| "never".to_owned(), show);
            let message = format!(
                "join-spacing of {} makes its last bot start joining at {when}, but the run ends at {} (first join + duration); shorten join-spacing or lengthen duration",
                g.label(),
                show(end)
            );
            cx.error(spacing.span(), message);
        }
    }
}

fn expected_failures(cx: &mut Cx<'_>, d: &Draft) {
    for (i, name) in d.expected_failures.iter().enumerate() {
        let text = name.get_ref();
        if !d.threshold_keys.iter().any(|k| k == text) {
            let hint = hint(text, d.threshold_keys.iter().map(String::as_str));
            cx.error(
                name.span(),
                format!(
                    "expected-failures names `{text}`, which is not a key of [thresholds]{hint}"
                ),
            );
        } else if d.expected_failures[..i].iter().any(|o| o.get_ref() == text) {
            cx.error(
                name.span(),
                format!("expected-failures names `{text}` more than once"),
            );
        }
    }
}
