//! The plan as text: what `sfu-harness plan` prints.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{BotPlan, CapacityPlan, Plan, ReconnectPlan, SfuKind};
use crate::fault::{Direction, FaultKind, FaultPlan, FaultTarget, TargetKind};

/// The plan as `sfu-harness plan` prints it. Never prints the API secret, nor any
/// config override that looks like a credential (under `keys`, or named like a secret,
/// password or token).
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: &str| out.push_str(&format!("{label:<11} {value}\n"));
    line("scenario", &plan.name);
    line(
        "duration",
        &format!("{} (measured from the first join)", show(plan.duration)),
    );
    if plan.rooms > 1 {
        line(
            "rooms",
            &format!(
                "{} rooms shaped alike: {r}-1 ... {r}-{} (bots r<k>-<identity>)",
                plan.rooms,
                plan.rooms,
                r = plan.room
            ),
        );
    } else {
        line("room", &plan.room);
    }
    let kind = match plan.sfu.kind {
        SfuKind::Livekit => "livekit",
    };
    line("sfu", &format!("{kind}, image {}", plan.sfu.image));
    line(
        "api key",
        plan.sfu.api_key.as_deref().unwrap_or("generated per run"),
    );
    line(
        "api secret",
        if plan.sfu.api_secret.is_some() {
            "(hidden)"
        } else {
            "(hidden) generated per run"
        },
    );
    if let Some(n) = &plan.nginx {
        line(
            "nginx",
            &format!(
                "in front of node 1 at {}{}, websocket upgrade {}, read timeout {}",
                n.location,
                if n.location == "/" {
                    String::new()
                } else if n.strip_location {
                    " (stripped)".to_owned()
                } else {
                    " (not stripped)".to_owned()
                },
                if n.websocket {
                    "forwarded"
                } else {
                    "NOT forwarded"
                },
                show(n.read_timeout)
            ),
        );
    }
    let mut overrides = Vec::new();
    for (k, v) in &plan.sfu.config_overrides {
        flatten(k, v, false, &mut overrides);
    }
    if let Some(f) = &plan.sfu.config_file {
        // The keys the harness lays over it, as the run will report them.
        let (_, changed) = crate::sfu_config::livekit_config_with_file(
            "<key>",
            "<secret>",
            Some(&f.map),
            &serde_json::Map::new(),
        );
        line("sfu file", &f.path);
        for c in changed.iter().filter(|c| !c.key.starts_with("keys")) {
            line("", &format!("laid over: {c}"));
        }
        if changed.iter().any(|c| c.key.starts_with("keys")) {
            line("", "laid over: keys (the run's own API key)");
        }
    }
    if !plan.sfu.env.is_empty() {
        let names: Vec<&str> = plan.sfu.env.keys().map(String::as_str).collect();
        line("sfu env", &format!("{} (values hidden)", names.join(", ")));
    }
    if overrides.is_empty() {
        line("sfu config", "harness defaults");
    } else {
        line("sfu config", "harness defaults, overridden by:");
        for o in &overrides {
            out.push_str(&format!("  {o}\n"));
        }
    }
    let groups: BTreeSet<&str> = plan.bots.iter().map(|b| b.group.as_str()).collect();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    out.push_str(&format!(
        "\njoins ({} in {})\n",
        plural(plan.bots.len(), "bot", "bots"),
        plural(groups.len(), "group", "groups")
    ));
    let id_width = plan
        .bots
        .iter()
        .map(|b| b.identity.len())
        .max()
        .unwrap_or(0)
        .max("identity".len());
    let group_width = groups
        .iter()
        .map(|g| g.len())
        .max()
        .unwrap_or(0)
        .max("group".len());
    let reconnects: Vec<String> = plan
        .bots
        .iter()
        .map(|b| show_reconnect(b.reconnect))
        .collect();
    let reconnect_width = reconnects
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max("reconnect".len());
    let publishes: Vec<String> = plan.bots.iter().map(publishes).collect();
    let pub_width = publishes
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max("publishes".len());
    out.push_str(&format!(
        "  {:<10} {:<id_width$}  {:<group_width$}  {:<pub_width$}  {:<reconnect_width$}  token ttl\n",
        "at", "identity", "group", "publishes", "reconnect"
    ));
    for ((b, reconnect), publishes) in plan.bots.iter().zip(&reconnects).zip(&publishes) {
        out.push_str(&format!(
            "  {:<10} {:<id_width$}  {:<group_width$}  {publishes:<pub_width$}  {reconnect:<reconnect_width$}  {}{}\n",
            show(b.join_at),
            b.identity,
            b.group,
            show(b.token_ttl),
            match b.clock_skew_ms {
                0 => String::new(),
                ms => format!(" (clock {}{})", if ms > 0 { "+" } else { "-" }, show(Duration::from_millis(ms.unsigned_abs()))),
            } + &b.leave_at.map_or(String::new(), |l| format!("  leaves at {}", show(l)))
        ));
    }
    if !plan.sites.is_empty() {
        out.push_str("\nsites (network namespaces on the SFU's network)\n");
        for site in &plan.sites {
            let bots: Vec<&str> = plan
                .bots
                .iter()
                .filter(|b| b.site.as_ref() == Some(&site.name))
                .map(|b| b.identity.as_str())
                .collect();
            let extra = match site.extra_interfaces {
                0 => String::new(),
                n => format!(
                    " (+{n} unreachable VPN-like interface{})",
                    if n == 1 { "" } else { "s" }
                ),
            };
            out.push_str(&format!("  {}{extra}: {}\n", site.name, bots.join(", ")));
        }
    }
    if let Some(c) = &plan.capacity {
        let adds = match &c.group {
            Some(g) => format!("bots of group `{g}`"),
            None => "rooms".to_owned(),
        };
        out.push_str(&format!(
            "\ncapacity search (adds {adds} every {}; stops at the first step that breaks)\n",
            show(c.step_every)
        ));
        let mut rows = vec![["step", "at", "level", "bots", "phase"].map(String::from)];
        rows.extend(c.steps.iter().map(|s| {
            [
                s.number.to_string(),
                show(s.at),
                c.level(s.level),
                s.bots.to_string(),
                CapacityPlan::phase(s.number),
            ]
        }));
        out.push_str(&columns(&rows));
        let mut stops: Vec<String> = c
            .stop_on
            .iter()
            .map(|t| format!("{} {}", t.key, t.expr))
            .collect();
        stops.push("a refused join".into());
        stops.push(format!(
            "the SFU (or the SFU and the harness together) using {:.0}% of the host's cores",
            crate::capacity::SFU_CPU_LIMIT * 100.0
        ));
        out.push_str(&format!("  a step breaks on: {}\n", stops.join("; ")));
        out.push_str(
            "  a step in which the harness falls behind ends the search as harness-limited\n",
        );
    } else if !plan.phases.is_empty() {
        out.push_str("\nphases\n");
        for p in &plan.phases {
            out.push_str(&format!("  {:<10} {}\n", show(p.at), p.name));
        }
    }
    out.push_str("\nfaults\n");
    if plan.faults.is_empty() {
        out.push_str("  none\n");
    } else {
        let mut rows = vec![["id", "at", "for", "effect", "target", "params"].map(String::from)];
        rows.extend(plan.faults.iter().map(fault_row));
        out.push_str(&columns(&rows));
    }
    out.push_str("\nthresholds\n");
    if plan.thresholds.is_empty() {
        out.push_str("  none: the run passes unless it is invalid\n");
    }
    let key_width = plan
        .thresholds
        .iter()
        .map(|t| t.key.len())
        .max()
        .unwrap_or(0);
    for t in &plan.thresholds {
        let expected = if t.expected_to_fail {
            "   (expected to fail)"
        } else {
            ""
        };
        out.push_str(&format!("  {:<key_width$}  {}{expected}\n", t.key, t.expr));
    }
    out
}

fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// What a bot sends, for the plan: `audio, video 30fps 200kbps, data/100ms`.
fn publishes(b: &BotPlan) -> String {
    let mut media: Vec<String> = Vec::new();
    if b.publish_audio {
        media.push("audio".into());
    }
    if let Some(v) = b.video {
        if v.simulcast {
            let layers: Vec<String> = v
                .layers()
                .iter()
                .map(|l| format!("{} {}", l.rid, l.kbps))
                .collect();
            media.push(format!(
                "video {}fps simulcast {}kbps",
                v.fps,
                layers.join("/")
            ));
        } else {
            media.push(format!("video {}fps {}kbps", v.fps, v.kbps));
        }
    }
    if let Some(d) = b.data_interval {
        media.push(format!("data/{}", show(d)));
    }
    if let Some(q) = b.video_quality {
        media.push(format!("receives video {}", q.name()));
    }
    let mut what = if media.is_empty() {
        "nothing".to_owned()
    } else {
        media.join(", ")
    };
    if b.lean {
        what.push_str(" (lean)");
    }
    if b.can_publish {
        what
    } else {
        format!("{what} (token: no canPublish)")
    }
}

fn show_reconnect(r: ReconnectPlan) -> String {
    match r {
        ReconnectPlan::None => "none".to_owned(),
        ReconnectPlan::Sdk => "sdk".to_owned(),
        ReconnectPlan::Reinit {
            check_every,
            media_timeout,
        } => format!(
            "reinit (check {}, media {})",
            show(check_every),
            show(media_timeout)
        ),
    }
}

/// id, at, for, effect, target, params.
fn fault_row(f: &FaultPlan) -> [String; 6] {
    let lasts = match f.duration {
        _ if f.kind.instantaneous() => "instant".to_owned(),
        Some(d) => show(d),
        None => "until the end".to_owned(),
    };
    let target = match &f.target {
        FaultTarget::Bots { label, identities } if identities != std::slice::from_ref(label) => {
            let n = identities.len();
            format!("{label} (group, {n} bot{})", if n == 1 { "" } else { "s" })
        }
        FaultTarget::Site { name, identities } => {
            let n = identities.len();
            format!("{name} (site, {n} bot{})", if n == 1 { "" } else { "s" })
        }
        FaultTarget::Sfu if f.kind.target_kind() == TargetKind::Network => {
            "sfu (every bot's path)".to_owned()
        }
        t => t.label().to_owned(),
    };
    let mut params = Vec::new();
    if let Some(s) = f.status {
        params.push(format!("status {s}"));
    }
    if let Some(p) = f.percent {
        params.push(format!("{p}%"));
    }
    if let Some(i) = f.idle {
        params.push(format!("idle {}", show(i)));
    }
    if let Some(d) = f.delay {
        params.push(format!("delay {}", show(d)));
    }
    if let Some(j) = f.jitter {
        params.push(format!("jitter {}", show(j)));
    }
    if !f.ports.is_empty() {
        let ports: Vec<String> = f.ports.iter().map(u16::to_string).collect();
        params.push(format!("ports {}", ports.join(",")));
    }
    if !f.except_ports.is_empty() {
        let ports: Vec<String> = f.except_ports.iter().map(u16::to_string).collect();
        params.push(format!("all ports but {}", ports.join(",")));
    }
    if matches!(f.kind, FaultKind::BlockUdp | FaultKind::BlockTcp) {
        params.push(format!(
            "{} {}",
            f.direction.name(),
            if f.direction == Direction::Both {
                "ways"
            } else {
                "only"
            }
        ));
    }
    if f.node != 1 {
        params.push(format!("node {}", f.node));
    }
    if let Some(p) = &f.prefix {
        params.push(format!(
            "{p} {}",
            if f.strip { "stripped" } else { "not stripped" }
        ));
    }
    if let Some(k) = f.kbps {
        params.push(format!("{k} kbit/s each way"));
    }
    [
        f.id.clone(),
        show(f.at),
        lasts,
        f.kind.name().to_owned(),
        target,
        params.join(", "),
    ]
}

/// Rows as left-aligned columns two spaces apart, indented by two, no trailing spaces.
fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(&format!("  {}\n", line.join("  ").trim_end()));
    }
    out
}

/// `rtc.tcp_port = 7881` lines for every leaf of an override, credentials hidden.
fn flatten(path: &str, v: &serde_json::Value, hidden: bool, out: &mut Vec<String>) {
    let last = path.rsplit('.').next().unwrap_or(path).to_ascii_lowercase();
    let hidden = hidden
        || path == "keys"
        || ["secret", "password", "token"]
            .iter()
            .any(|w| last.contains(w));
    match v {
        serde_json::Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                flatten(&format!("{path}.{k}"), v, hidden, out);
            }
        }
        _ if hidden => out.push(format!("{path} = (hidden)")),
        _ => out.push(format!("{path} = {v}")),
    }
}
