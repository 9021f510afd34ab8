//! `[[phases]]`: named stretches of the run (`warmup`, `steady`, `outage`, …) that tag
//! the metrics measured in them, so a threshold can hold for one phase only
//! (`"continuity{phase=steady}"`). Each phase has a `name` and an `at` on the bots'
//! clock and lasts until the next one or the end; the first starts at `0s`.

use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use super::walk::{Cx, describe, duration, fields, get, ident, show, spanned};

const KEYS: &[&str] = &["name", "at"];

/// A `[[phases]]` entry as read; fields with a problem stay `None`.
#[derive(Debug)]
pub(super) struct PhaseDraft {
    pub number: usize,
    pub name: Option<Spanned<String>>,
    pub at: Option<Spanned<Duration>>,
}

/// A phase of a valid scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSpec {
    pub name: Spanned<String>,
    pub at: Spanned<Duration>,
}

impl PhaseDraft {
    pub fn finish(self) -> Option<PhaseSpec> {
        Some(PhaseSpec {
            name: self.name?,
            at: self.at?,
        })
    }
}

pub(super) fn read(cx: &mut Cx<'_>, v: &Spanned<DeValue<'_>>) -> Vec<PhaseDraft> {
    let DeValue::Array(items) = v.get_ref() else {
        let found = describe(v.get_ref());
        cx.error(
            v.span(),
            format!("phases must be an array of tables ([[phases]]), but is {found}"),
        );
        return Vec::new();
    };
    let mut out: Vec<PhaseDraft> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let label = format!("phases[{}]", i + 1);
        let DeValue::Table(t) = item.get_ref() else {
            let found = describe(item.get_ref());
            cx.error(
                item.span(),
                format!("{label} must be a table, but is {found}"),
            );
            continue;
        };
        let f = fields(cx, t, &label, KEYS);
        for key in KEYS {
            if get(&f, key).is_none() {
                cx.error(item.span(), format!("missing key `{key}` in {label}"));
            }
        }
        let name = get(&f, "name").and_then(|v| ident(cx, v, &format!("name of {label}")));
        let at = get(&f, "at").and_then(|v| duration(cx, v, &format!("at of {label}")));
        if let Some(n) = &name
            && let Some(first) = out
                .iter()
                .find(|p| p.name.as_ref().is_some_and(|o| o.get_ref() == n.get_ref()))
        {
            cx.error(
                n.span(),
                format!(
                    "name of {label} is `{}`, which phases[{}] already uses; phase names must be unique",
                    n.get_ref(),
                    first.number
                ),
            );
        }
        if let Some(at) = &at {
            let previous = out.iter().rev().find_map(|p| p.at.as_ref());
            if i == 0 && !at.get_ref().is_zero() {
                cx.error(
                    at.span(),
                    format!(
                        "at of {label} must be 0s: the first phase starts the run, but is {}",
                        show(*at.get_ref())
                    ),
                );
            } else if let Some(prev) = previous.filter(|p| p.get_ref() >= at.get_ref()) {
                cx.error(
                    at.span(),
                    format!(
                        "at of {label} must be after the phase before it ({}), but is {}",
                        show(*prev.get_ref()),
                        show(*at.get_ref())
                    ),
                );
            }
        }
        out.push(PhaseDraft {
            number: i + 1,
            name,
            at: at.map(|a| spanned(a.span(), *a.get_ref())),
        });
    }
    out
}
