//! Reads `[[faults]]`: when, for how long, what and on what.
//!
//! Everything one entry can be wrong about on its own is checked here: types, the
//! effect's name, `for` on an instantaneous effect, the effect's own parameters, and the
//! `proxy`/`sfu` targets. What needs the rest of the file (the run's end, bot targets)
//! is in [`super::validate`].

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use super::FaultSpec;
use super::diagnostic::hint;
use super::walk::{
    Cx, at_least, at_most, boolean, describe, duration, fields, get, integer, ranged, spanned,
    string,
};
use crate::fault::{Direction, FaultKind, TargetKind};

/// Keys every fault takes.
const COMMON_KEYS: [&str; 4] = ["at", "for", "target", "effect"];
/// Shortest `idle` a `ws-idle-timeout` may ask for.
const MIN_IDLE: Duration = Duration::from_millis(100);
/// Most `delay` (and `jitter`) a `delay` fault may add: beyond it nothing real-time is
/// left to measure.
const MAX_DELAY: Duration = Duration::from_secs(10);
/// Rates a `bandwidth` fault may set, kbit/s (below 8 not even a ping gets through in
/// time; above 1 Gbit/s tbf on a veth limits nothing a bot sends).
const KBPS: std::ops::RangeInclusive<i64> = 8..=1_000_000;
/// HTTP statuses `ws-refuse-upgrade` may answer with.
const STATUSES: std::ops::RangeInclusive<i64> = 200..=599;

/// The keys of a `[[faults]]` table: the common ones, then every kind's parameters.
fn known_keys() -> Vec<&'static str> {
    let mut keys = COMMON_KEYS.to_vec();
    for kind in FaultKind::ALL {
        for (param, _) in kind.params() {
            if !keys.contains(param) {
                keys.push(param);
            }
        }
    }
    keys
}

/// A fault as far as it was readable; `None` where a value was missing or wrong.
pub(super) struct FaultDraft {
    /// 1-based position among `[[faults]]`.
    pub number: usize,
    /// The `[[faults]]` header.
    pub span: Range<usize>,
    pub at: Option<Spanned<Duration>>,
    pub duration: Option<Spanned<Duration>>,
    pub target: Option<Spanned<String>>,
    pub effect: Option<Spanned<FaultKind>>,
    pub status: Option<Spanned<u16>>,
    pub idle: Option<Spanned<Duration>>,
    pub percent: Option<Spanned<u8>>,
    pub delay: Option<Spanned<Duration>>,
    pub jitter: Option<Spanned<Duration>>,
    pub ports: Option<Spanned<Vec<u16>>>,
    pub except_ports: Option<Spanned<Vec<u16>>>,
    pub direction: Option<Spanned<Direction>>,
    pub kbps: Option<Spanned<u32>>,
    pub prefix: Option<Spanned<String>>,
    pub strip: Option<bool>,
    pub node: Option<Spanned<u8>>,
}

impl FaultDraft {
    pub fn label(&self) -> String {
        format!("faults[{}]", self.number)
    }

    pub fn finish(self) -> Option<FaultSpec> {
        Some(FaultSpec {
            number: self.number,
            at: self.at?,
            duration: self.duration,
            target: self.target?,
            effect: self.effect?,
            status: self.status,
            idle: self.idle,
            percent: self.percent,
            delay: self.delay,
            jitter: self.jitter,
            ports: self.ports,
            except_ports: self.except_ports,
            direction: self.direction,
            kbps: self.kbps,
            prefix: self.prefix,
            strip: self.strip,
            node: self.node,
        })
    }
}

/// The top-level `faults` value: an array of tables (possibly empty).
pub(super) fn read(cx: &mut Cx<'_>, v: &Spanned<DeValue<'_>>) -> Vec<FaultDraft> {
    let not_tables = |cx: &mut Cx<'_>, found: String| {
        cx.error(
            v.span(),
            format!("faults must be an array of tables ([[faults]]), but is {found}"),
        );
    };
    let DeValue::Array(items) = v.get_ref() else {
        not_tables(cx, describe(v.get_ref()));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let DeValue::Table(t) = item.get_ref() else {
            not_tables(cx, format!("an array holding {}", describe(item.get_ref())));
            return Vec::new();
        };
        let mut d = FaultDraft {
            number: i + 1,
            span: item.span(),
            at: None,
            duration: None,
            target: None,
            effect: None,
            status: None,
            idle: None,
            percent: None,
            delay: None,
            jitter: None,
            ports: None,
            except_ports: None,
            direction: None,
            kbps: None,
            prefix: None,
            strip: None,
            node: None,
        };
        let label = d.label();
        let f = fields(cx, t, &label, &known_keys());
        for key in ["at", "target", "effect"] {
            if get(&f, key).is_none() {
                cx.error(d.span.clone(), format!("missing key `{key}` in {label}"));
            }
        }
        d.effect = get(&f, "effect")
            .and_then(|v| string(cx, v, &format!("effect of {label}")))
            .and_then(|s| effect(cx, s, &label));
        d.at = get(&f, "at").and_then(|v| duration(cx, v, &format!("at of {label}")));
        d.duration = get(&f, "for").and_then(|v| for_(cx, v, &label, d.effect.as_ref()));
        d.target = get(&f, "target")
            .and_then(|v| string(cx, v, &format!("target of {label}")))
            .filter(|t| target(cx, t, &label, d.effect.as_ref()));
        params(cx, &f, &mut d);
        out.push(d);
    }
    out
}

fn effect(cx: &mut Cx<'_>, s: Spanned<String>, label: &str) -> Option<Spanned<FaultKind>> {
    let Some(kind) = FaultKind::from_name(s.get_ref()) else {
        let names = FaultKind::ALL.map(FaultKind::name);
        let hint = hint(s.get_ref(), names);
        cx.error(
            s.span(),
            format!(
                "unknown effect `{}` of {label}; expected one of: {}{hint}",
                s.get_ref(),
                names.join(", ")
            ),
        );
        return None;
    };
    Some(spanned(s.span(), kind))
}

/// `for`: more than 0s, and only for effects that last.
fn for_(
    cx: &mut Cx<'_>,
    v: &Spanned<DeValue<'_>>,
    label: &str,
    effect: Option<&Spanned<FaultKind>>,
) -> Option<Spanned<Duration>> {
    let d = duration(cx, v, &format!("for of {label}"))?;
    if let Some(kind) = effect.map(|e| *e.get_ref()).filter(|k| k.instantaneous()) {
        cx.error(
            v.span(),
            format!("for of {label} does not apply to {kind}: it acts once at `at`"),
        );
        return None;
    }
    if d.get_ref().is_zero() {
        cx.error(
            v.span(),
            format!(
                "for of {label} must be more than 0s, or left out to last until the end of the run"
            ),
        );
        return None;
    }
    Some(d)
}

/// `proxy` and `sfu` targets; bot and site targets need the groups (see `validate`).
fn target(
    cx: &mut Cx<'_>,
    t: &Spanned<String>,
    label: &str,
    effect: Option<&Spanned<FaultKind>>,
) -> bool {
    let Some(kind) = effect.map(|e| *e.get_ref()) else {
        return true;
    };
    let must = match kind.target_kind() {
        TargetKind::Proxy => "proxy",
        TargetKind::Sfu => "sfu",
        // A site's name, or `sfu` for network effects: they need the groups' sites.
        TargetKind::Network | TargetKind::Site | TargetKind::Bots => return true,
    };
    if t.get_ref() == must {
        return true;
    }
    cx.error(
        t.span(),
        format!(
            "target of {label} must be `{must}` for {kind}, but is `{}`",
            t.get_ref()
        ),
    );
    false
}

/// The effect's own parameters: each checked on its own, then against the effect.
fn params(cx: &mut Cx<'_>, f: &[(&str, &Spanned<DeValue<'_>>)], d: &mut FaultDraft) {
    let label = d.label();
    d.status = get(f, "status")
        .and_then(|v| integer(cx, v, &format!("status of {label}")))
        .and_then(|n| {
            if STATUSES.contains(n.get_ref()) {
                return Some(spanned(n.span(), *n.get_ref() as u16));
            }
            let written = cx.source[n.span()].to_owned();
            cx.error(
                n.span(),
                format!(
                    "status of {label} must be an http status from {} to {}, but is {written}",
                    STATUSES.start(),
                    STATUSES.end()
                ),
            );
            None
        });
    d.idle = get(f, "idle")
        .and_then(|v| duration(cx, v, &format!("idle of {label}")))
        .and_then(|i| at_least(cx, i, MIN_IDLE, &format!("idle of {label}")));
    d.percent = ranged(cx, f, "percent", &format!("percent of {label}"), 1..=100)
        .map(|n| spanned(n.span(), *n.get_ref() as u8));
    for (key, slot) in [("delay", &mut d.delay), ("jitter", &mut d.jitter)] {
        *slot = get(f, key)
            .and_then(|v| duration(cx, v, &format!("{key} of {label}")))
            .and_then(|v| at_most(cx, v, MAX_DELAY, &format!("{key} of {label}")));
    }
    d.ports = get(f, "ports").and_then(|v| ports(cx, v, "ports", &label));
    d.except_ports = get(f, "except-ports").and_then(|v| ports(cx, v, "except-ports", &label));
    // (Only block-udp takes except-ports; for any other kind that is the message below.)
    if let (Some(_), Some(e)) = (&d.ports, &d.except_ports)
        && d.effect.as_ref().map(|k| *k.get_ref()) == Some(FaultKind::BlockUdp)
    {
        cx.error(
            e.span(),
            format!(
                "except-ports of {label} cannot go with ports: block the ports listed, or every port but those in except-ports"
            ),
        );
        d.except_ports = None;
    }
    d.direction = get(f, "direction")
        .and_then(|v| string(cx, v, &format!("direction of {label}")))
        .and_then(|s| match Direction::from_name(s.get_ref()) {
            Some(dir) => Some(spanned(s.span(), dir)),
            None => {
                let names = Direction::ALL.map(Direction::name);
                cx.error(
                    s.span(),
                    format!(
                        "direction of {label} must be one of: {}, but is `{}`{}",
                        names.join(", "),
                        s.get_ref(),
                        hint(s.get_ref(), names)
                    ),
                );
                None
            }
        });
    d.kbps = ranged(cx, f, "kbps", &format!("kbps of {label}"), KBPS)
        .map(|n| spanned(n.span(), *n.get_ref() as u32));
    d.prefix = get(f, "prefix")
        .and_then(|v| string(cx, v, &format!("prefix of {label}")))
        .and_then(|p| {
            let text = p.get_ref();
            if super::walk::is_url_path(text) && text != "/" {
                return Some(p);
            }
            cx.error(
                p.span(),
                format!(
                    "prefix of {label} must be a path such as \"/livekit\": a `/`, then letters, digits, `-`, `_`, `.`, `~` or `/`, not ending in `/`, but is `{text}`"
                ),
            );
            None
        });
    d.strip = get(f, "strip").and_then(|v| boolean(cx, v, &format!("strip of {label}")));
    d.node = ranged(
        cx,
        f,
        "node",
        &format!("node of {label}"),
        1..=super::sfu::MAX_NODES,
    )
    .map(|n| spanned(n.span(), *n.get_ref() as u8));
    let Some(kind) = d.effect.as_ref().map(|e| *e.get_ref()) else {
        return;
    };
    let takes = kind.params();
    for (key, v) in f {
        if COMMON_KEYS.contains(key) || takes.iter().any(|(p, _)| p == key) {
            continue;
        }
        let owners: Vec<&str> = FaultKind::ALL
            .into_iter()
            .filter(|k| k.params().iter().any(|(p, _)| p == key))
            .map(FaultKind::name)
            .collect();
        cx.error(
            v.span(),
            format!(
                "{key} of {label} does not apply to {kind}; only {} takes it",
                owners.join(", ")
            ),
        );
        match *key {
            "status" => d.status = None,
            "idle" => d.idle = None,
            "percent" => d.percent = None,
            "delay" => d.delay = None,
            "jitter" => d.jitter = None,
            "ports" => d.ports = None,
            "except-ports" => d.except_ports = None,
            "direction" => d.direction = None,
            "kbps" => d.kbps = None,
            "prefix" => d.prefix = None,
            "strip" => d.strip = None,
            "node" => d.node = None,
            _ => {}
        }
    }
    for (param, required) in takes {
        if *required && get(f, param).is_none() {
            cx.error(
                d.span.clone(),
                format!(
                    "missing key `{param}` in {label}; {kind} needs it, such as {}",
                    example(param)
                ),
            );
        }
    }
}

/// `ports` (or `except-ports`, as `key`): a non-empty array of port numbers, 1 to
/// 65535, each once.
fn ports(
    cx: &mut Cx<'_>,
    v: &Spanned<DeValue<'_>>,
    key: &str,
    label: &str,
) -> Option<Spanned<Vec<u16>>> {
    let what = format!("{key} of {label}");
    let DeValue::Array(items) = v.get_ref() else {
        cx.error(
            v.span(),
            format!(
                "{what} must be an array of port numbers, such as [7881], but is {}",
                describe(v.get_ref())
            ),
        );
        return None;
    };
    if items.is_empty() {
        cx.error(
            v.span(),
            format!("{what} must name at least one port; leave it out for every port"),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for item in items.iter() {
        let Some(n) = integer(cx, item, &format!("a port in {what}")) else {
            ok = false;
            continue;
        };
        let port = *n.get_ref();
        if !(1..=65535).contains(&port) {
            let written = cx.source[n.span()].to_owned();
            cx.error(
                n.span(),
                format!("a port in {what} must be from 1 to 65535, but is {written}"),
            );
            ok = false;
        } else if out.contains(&(port as u16)) {
            cx.error(n.span(), format!("{what} names port {port} more than once"));
            ok = false;
        } else {
            out.push(port as u16);
        }
    }
    ok.then(|| spanned(v.span(), out))
}

/// How the messages show a parameter being given.
fn example(param: &str) -> String {
    match param {
        "status" => "status = 503".to_owned(),
        "idle" => "idle = \"30s\"".to_owned(),
        "percent" => "percent = 20".to_owned(),
        "delay" => "delay = \"100ms\"".to_owned(),
        "jitter" => "jitter = \"20ms\"".to_owned(),
        "ports" => "ports = [7881]".to_owned(),
        "except-ports" => "except-ports = [3478]".to_owned(),
        "direction" => "direction = \"out\"".to_owned(),
        "kbps" => "kbps = 256".to_owned(),
        "prefix" => "prefix = \"/livekit\"".to_owned(),
        "strip" => "strip = true".to_owned(),
        "node" => "node = 2".to_owned(),
        other => format!("{other} = ..."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parameter added to [`FaultKind::params`] must be read here too (and get a field
    /// in `FaultSpec` and `FaultPlan`).
    #[test]
    fn every_parameter_of_every_kind_is_read() {
        assert_eq!(
            known_keys(),
            [
                "at",
                "for",
                "target",
                "effect",
                "status",
                "idle",
                "prefix",
                "strip",
                "node",
                "ports",
                "except-ports",
                "direction",
                "percent",
                "kbps",
                "delay",
                "jitter"
            ]
        );
        for kind in FaultKind::ALL {
            for (param, _) in kind.params() {
                assert_ne!(example(param), format!("{param} = ..."), "{kind}: {param}");
            }
        }
    }
}
