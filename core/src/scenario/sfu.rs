//! Reads `[sfu]`: which SFU, its image, credentials and config overrides.
//!
//! The API secret gets special care: its messages never quote it, and
//! [`redact_secret`] masks it in the copy of the file that diagnostics render.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::walk::{Cx, fields, get, integer, spanned, string, table};
use super::{Secret, SfuSpec};
use crate::plan::SfuKind;

const SFU_KEYS: &[&str] = &[
    "kind",
    "image",
    "api-key",
    "api-secret",
    "config",
    "config-file",
    "env",
    "extra-networks",
    "nodes",
];

/// Most LiveKit nodes a run may start (they share one Redis).
pub(super) const MAX_NODES: i64 = 4;
/// Most extra networks a multi-homed SFU may be put on.
pub(super) const MAX_EXTRA_NETWORKS: i64 = 4;
/// LiveKit signs tokens with HMAC-SHA256; shorter secrets are guessable and it warns.
pub(super) const MIN_SECRET_CHARS: usize = 32;

/// `[sfu]`.
pub(super) fn read(cx: &mut Cx<'_>, t: &DeTable<'_>) -> SfuSpec {
    let f = fields(cx, t, "`sfu`", SFU_KEYS);
    let mut spec = SfuSpec::default();
    if let Some(kind) = get(&f, "kind").and_then(|v| string(cx, v, "sfu.kind")) {
        if kind.get_ref() != "livekit" {
            cx.error(
                kind.span(),
                format!(
                    "unknown sfu.kind `{}`; expected one of: livekit",
                    kind.get_ref()
                ),
            );
        }
        spec.kind = SfuKind::Livekit;
    }
    spec.image = get(&f, "image").and_then(|v| string(cx, v, "sfu.image")).filter(|image| {
        let text = image.get_ref();
        let last = text.rsplit('/').next().unwrap_or(text);
        let tagged = last.split_once(':').is_some_and(|(n, tag)| !n.is_empty() && !tag.is_empty())
            || last.split_once('@').is_some_and(|(n, digest)| !n.is_empty() && !digest.is_empty());
        let ok = tagged && !text.contains(char::is_whitespace) && !text.starts_with('/');
        if !ok {
            cx.error(
                image.span(),
                format!("sfu.image must be `name:tag`, such as `livekit/livekit-server:v1.13.5`, but is `{text}`"),
            );
        }
        ok
    });
    spec.api_key = get(&f, "api-key")
        .and_then(|v| string(cx, v, "sfu.api-key"))
        .filter(|k| {
            let text = k.get_ref();
            let ok = !text.is_empty() && !text.contains(char::is_whitespace);
            if !ok {
                cx.error(
                    k.span(),
                    format!("sfu.api-key must be non-empty without spaces, but is {text:?}"),
                );
            }
            ok
        });
    if let Some(v) = get(&f, "api-secret") {
        match v.get_ref() {
            DeValue::String(s) if s.chars().count() >= MIN_SECRET_CHARS => {
                spec.api_secret = Some(spanned(v.span(), Secret::new(s.to_string())));
            }
            // Never echo a secret, not even a bad one.
            DeValue::String(s) => cx.error(
                v.span(),
                format!("sfu.api-secret must be at least {MIN_SECRET_CHARS} characters long, but has {}", s.chars().count()),
            ),
            other => cx.error(v.span(), format!("sfu.api-secret must be a string, but is {}", other.type_str())),
        }
    }
    spec.extra_networks = get(&f, "extra-networks")
        .and_then(|v| integer(cx, v, "sfu.extra-networks"))
        .and_then(|n| {
            let (span, n) = (n.span(), *n.get_ref());
            if (0..=MAX_EXTRA_NETWORKS).contains(&n) {
                return Some(n as u8);
            }
            cx.error(
                span,
                format!("sfu.extra-networks must be from 0 to {MAX_EXTRA_NETWORKS}, but is {n}"),
            );
            None
        })
        .unwrap_or(0);
    spec.nodes = get(&f, "nodes")
        .and_then(|v| integer(cx, v, "sfu.nodes"))
        .and_then(|n| {
            let (span, n) = (n.span(), *n.get_ref());
            if (1..=MAX_NODES).contains(&n) {
                return Some(n as u8);
            }
            cx.error(
                span,
                format!("sfu.nodes must be from 1 to {MAX_NODES}, but is {n}"),
            );
            None
        })
        .unwrap_or(1);
    // A fixed secret with a generated key (or the reverse) is never what was meant.
    match (get(&f, "api-key"), get(&f, "api-secret")) {
        (Some(v), None) | (None, Some(v)) => cx.error(
            v.span(),
            "sfu.api-key and sfu.api-secret must be given together, or both left out to generate them per run",
        ),
        _ => {}
    }
    if let Some(t) = get(&f, "config").and_then(|v| table(cx, v, "sfu.config")) {
        spec.config = config_table(cx, t, "sfu.config");
    }
    spec.config_file = get(&f, "config-file")
        .and_then(|v| string(cx, v, "sfu.config-file"))
        .filter(|p| {
            let ok = !p.get_ref().trim().is_empty();
            if !ok {
                cx.error(
                    p.span(),
                    "sfu.config-file must name a file (relative to the scenario)",
                );
            }
            ok
        });
    if let Some(t) = get(&f, "env").and_then(|v| table(cx, v, "sfu.env")) {
        for (k, v) in t.iter() {
            let name = k.get_ref();
            let path = format!("sfu.env.{name}");
            let Some(value) = string(cx, v, &path) else {
                continue;
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                cx.error(
                    v.span(),
                    format!("{path}: an environment variable's name is letters, digits and `_`"),
                );
            } else if name == "LIVEKIT_CONFIG" {
                cx.error(
                    v.span(),
                    "sfu.env.LIVEKIT_CONFIG is the harness's (the merged config); use sfu.config-file or [sfu.config]",
                );
            } else {
                spec.env
                    .insert(name.to_string(), Secret::new(value.into_inner()));
            }
        }
    }
    spec
}

/// `[sfu.config]` as plain TOML values (it goes to LiveKit as JSON, which has no
/// infinities and no integers beyond i64).
fn config_table(cx: &mut Cx<'_>, t: &DeTable<'_>, path: &str) -> toml::Table {
    let mut out = toml::Table::new();
    for (k, v) in t.iter() {
        let path = format!("{path}.{}", k.get_ref());
        if let Some(value) = config_value(cx, v, &path) {
            out.insert(k.get_ref().to_string(), value);
        }
    }
    out
}

fn config_value(cx: &mut Cx<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<toml::Value> {
    Some(match v.get_ref() {
        DeValue::String(s) => toml::Value::String(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => {
                cx.error(
                    v.span(),
                    format!("{path} must fit in a 64-bit integer, but is {i}"),
                );
                return None;
            }
        },
        DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
            Ok(x) if x.is_finite() => toml::Value::Float(x),
            _ => {
                cx.error(
                    v.span(),
                    format!("{path} must be a finite number, but is {f}"),
                );
                return None;
            }
        },
        DeValue::Boolean(b) => toml::Value::Boolean(*b),
        DeValue::Datetime(d) => toml::Value::Datetime(*d),
        DeValue::Array(items) => toml::Value::Array(
            items
                .iter()
                .filter_map(|item| config_value(cx, item, path))
                .collect(),
        ),
        DeValue::Table(t) => toml::Value::Table(config_table(cx, t, path)),
    })
}

/// `source` with the characters of `sfu.api-secret` replaced by `*` (same byte length,
/// line breaks kept, so spans and line numbers stay valid).
pub(super) fn redact_secret(source: &str, doc: &DeTable<'_>) -> String {
    let span = doc
        .iter()
        .find(|(k, _)| k.get_ref() == "sfu")
        .and_then(|(_, v)| v.get_ref().as_table())
        .and_then(|t| t.iter().find(|(k, _)| k.get_ref() == "api-secret"))
        .map(|(_, v)| v.span());
    let mut out = String::with_capacity(source.len());
    for (i, c) in source.char_indices() {
        match &span {
            Some(s) if i > s.start && i + c.len_utf8() < s.end && c != '\n' => {
                out.extend(std::iter::repeat_n('*', c.len_utf8()));
            }
            _ => out.push(c),
        }
    }
    out
}
