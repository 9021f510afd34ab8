//! `sfu-harness doctor`: what this machine supports, and what each missing piece
//! disables. Every probe is real (it tries the thing, in a namespace it removes again)
//! rather than guessing from versions.

use std::process::{Command, Stdio};

use harness_core::plan::DEFAULT_LIVEKIT_IMAGE;

use crate::provision::docker;

/// One line of the doctor's answer.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// What was found (version, error).
    pub detail: String,
    /// What is disabled when this is missing.
    pub disables: &'static str,
}

fn cmd_ok(program: &str, args: &[&str]) -> Result<String, String> {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout)
            .trim()
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr)
            .trim()
            .lines()
            .next()
            .unwrap_or("failed")
            .to_owned()),
        Err(e) => Err(format!("{program}: {e}")),
    }
}

/// A check from a probe's result: `Ok(detail)` or `Err(what went wrong)`.
fn check(name: &'static str, probe: Result<String, String>, disables: &'static str) -> Check {
    let ok = probe.is_ok();
    Check {
        name,
        ok,
        detail: probe.unwrap_or_else(|e| e),
        disables,
    }
}

/// Tries to add a root qdisc of `kind` on `lo` inside namespace `ns`.
fn qdisc_probe(ns: &str, kind: &str, args: &[&str]) -> Result<String, String> {
    let mut argv = vec![
        "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", kind,
    ];
    argv.extend_from_slice(args);
    cmd_ok("ip", &argv).map(|_| format!("kernel has sch_{kind}"))
}

/// Runs every probe. Needs a tokio runtime for the engine check.
pub async fn run() -> Vec<Check> {
    let mut checks = Vec::new();
    let engine = docker::connect().await;
    let (engine_ok, engine_detail) = match &engine {
        Ok(d) => match d.version().await {
            Ok(v) => (
                true,
                format!(
                    "engine {} (API {})",
                    v.version.unwrap_or_default(),
                    v.api_version.unwrap_or_default()
                ),
            ),
            Err(e) => (false, e.to_string()),
        },
        Err(e) => (false, e.to_string()),
    };
    checks.push(Check {
        name: "docker engine",
        ok: engine_ok,
        detail: engine_detail,
        disables: "every run (scripts/setup-docker.sh installs and starts one)",
    });
    let image_ok = match &engine {
        Ok(d) => docker::image_present(d, DEFAULT_LIVEKIT_IMAGE).await,
        Err(_) => false,
    };
    checks.push(Check {
        name: "livekit image",
        ok: image_ok,
        detail: DEFAULT_LIVEKIT_IMAGE.to_owned(),
        disables: "scenarios on the default SFU (scripts/build-sfu-image.sh builds it)",
    });
    for (name, image, disables) in [
        (
            "redis image",
            crate::provision::livekit::REDIS_IMAGE,
            "multi-node SFUs (sfu.nodes > 1) and server-switch (scripts/build-redis-image.sh builds it)",
        ),
        (
            "nginx image",
            crate::provision::livekit::NGINX_IMAGE,
            "scenarios with an [nginx] table (scripts/build-nginx-image.sh builds it)",
        ),
    ] {
        let ok = match &engine {
            Ok(d) => docker::image_present(d, image).await,
            Err(_) => false,
        };
        checks.push(Check {
            name,
            ok,
            detail: image.to_owned(),
            disables,
        });
    }
    let root = unsafe { libc::geteuid() } == 0;
    checks.push(Check {
        name: "privileges",
        ok: root,
        detail: if root { "root".into() } else { "not root".into() },
        disables: "network sites and network faults (namespaces, veth, nftables need CAP_NET_ADMIN)",
    });
    checks.push(check(
        "nftables",
        cmd_ok("nft", &["--version"]),
        "block-udp, block-tcp, loss, blackhole faults",
    ));
    let ns = format!("sfu-harness-doctor-{}", std::process::id());
    let netns = cmd_ok("ip", &["netns", "add", &ns]);
    let netns_ok = netns.is_ok();
    checks.push(Check {
        name: "network namespaces",
        ok: netns_ok,
        detail: netns
            .map(|_| "ip netns add works".to_owned())
            .unwrap_or_else(|e| e),
        disables: "network sites (group `site`) and the faults that target one (bandwidth, link-down, per-site block-udp/block-tcp/loss/blackhole)",
    });
    if netns_ok {
        checks.push(check(
            "tc netem",
            qdisc_probe(&ns, "netem", &["delay", "1ms"]),
            "nothing yet: `delay` runs in the bots' own socket layer (see docs/decisions.md)",
        ));
        checks.push(check(
            "tc tbf",
            qdisc_probe(
                &ns,
                "tbf",
                &["rate", "1mbit", "burst", "32kbit", "latency", "400ms"],
            ),
            "the bandwidth fault",
        ));
        let _ = cmd_ok("ip", &["netns", "del", &ns]);
    }
    checks.push(check(
        "go toolchain",
        cmd_ok("go", &["version"]),
        "building the LiveKit image locally when no registry is reachable",
    ));
    checks
}

/// The human-readable answer.
pub fn render(checks: &[Check]) -> String {
    let mut s = String::new();
    for c in checks {
        let mark = if c.ok { "ok     " } else { "MISSING" };
        s.push_str(&format!("{mark} {:<20} {}\n", c.name, c.detail));
        if !c.ok {
            s.push_str(&format!("        {:<20} disables: {}\n", "", c.disables));
        }
    }
    s
}
