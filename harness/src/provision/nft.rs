//! nftables rules a run adds, always in a table of its own, always removed.
//!
//! Each fault gets one `inet` table named `sfuh_p<pid>_<n>`: deleting the table undoes
//! everything in it, and the pid in the name lets the next run remove tables a
//! SIGKILLed run left ([`sweep_dead_tables`]). Rules match only the run's own addresses.

use std::io::Write;
use std::net::IpAddr;

use harness_core::fault::Direction;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::OWNED_PREFIX as PREFIX;
static NEXT: AtomicU32 = AtomicU32::new(1);

fn nft(script: &str) -> Result<(), String> {
    nft_in(None, script)
}

/// Runs an nft script in the host's namespace, or in the network namespace `netns`.
fn nft_in(netns: Option<&str>, script: &str) -> Result<(), String> {
    let mut cmd = match netns {
        None => Command::new("nft"),
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "nft"]);
            c
        }
    };
    let mut child = cmd
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e} (is nftables installed? scripts/setup.sh installs it)"))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(script.as_bytes())
        .map_err(|e| format!("nft: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// An applied table; dropping it deletes the table.
#[must_use]
pub struct NftGuard {
    table: String,
    /// The network namespace it is in (`None`: the host's).
    netns: Option<String>,
}

impl NftGuard {
    pub fn clear(self) {}
}

impl Drop for NftGuard {
    fn drop(&mut self) {
        let _ = nft_in(
            self.netns.as_deref(),
            &format!("delete table inet {}\n", self.table),
        );
    }
}

fn next_table() -> String {
    format!(
        "{PREFIX}{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Makes the run's extra networks unreachable from this host (the bots' side): every
/// packet to or from them is dropped, as for the Docker bridges of a multi-homed SFU
/// host that clients can never reach (incident 000). `subnets` are IPv4 CIDRs.
/// In a site's namespace (`netns`), the same: a site's traffic is bridged and routed by
/// the host, never through the host's own input and output chains.
pub fn unreachable_subnets(netns: Option<&str>, subnets: &[String]) -> Result<NftGuard, String> {
    let table = next_table();
    let set = subnets.join(", ");
    let script = format!(
        "table inet {table} {{\n\
         \tchain out {{ type filter hook output priority 0; policy accept; ip daddr {{ {set} }} drop; }}\n\
         \tchain in {{ type filter hook input priority 0; policy accept; ip saddr {{ {set} }} drop; }}\n\
         }}\n"
    );
    nft_in(netns, &script)?;
    Ok(NftGuard {
        table,
        netns: netns.map(str::to_owned),
    })
}

/// Where a firewall fault acts: on the host, on its traffic with one peer (the SFU), or
/// in a site's namespace, on everything but loopback.
#[derive(Debug, Clone)]
pub enum Scope {
    Host { peer: IpAddr },
    Site { netns: String },
}

/// What a firewall fault drops, given as the match for packets going out (towards the
/// SFU) and coming in; a `None` side drops nothing that way.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub out: Option<String>,
    pub inbound: Option<String>,
}

impl Filter {
    /// UDP, to and from the SFU-side `ports` (all when empty), the ways `dir` says.
    pub fn udp(ports: &[u16], dir: Direction) -> Filter {
        Self::ports("udp", ports, dir)
    }

    /// UDP to and from every SFU-side port but `open` (e.g. TURN's), the ways `dir` says.
    pub fn udp_except(open: &[u16], dir: Direction) -> Filter {
        let set: Vec<String> = open.iter().map(u16::to_string).collect();
        let set = set.join(", ");
        Filter {
            out: dir.outbound().then(|| format!("udp dport != {{ {set} }}")),
            inbound: dir.inbound().then(|| format!("udp sport != {{ {set} }}")),
        }
    }

    /// TCP to and from the SFU-side `ports` (all when empty), the ways `dir` says.
    pub fn tcp(ports: &[u16], dir: Direction) -> Filter {
        Self::ports("tcp", ports, dir)
    }

    fn ports(proto: &str, ports: &[u16], dir: Direction) -> Filter {
        let (out, inbound) = if ports.is_empty() {
            let all = format!("meta l4proto {proto}");
            (all.clone(), all)
        } else {
            let set: Vec<String> = ports.iter().map(u16::to_string).collect();
            let set = set.join(", ");
            (
                format!("{proto} dport {{ {set} }}"),
                format!("{proto} sport {{ {set} }}"),
            )
        };
        Filter {
            out: dir.outbound().then_some(out),
            inbound: dir.inbound().then_some(inbound),
        }
    }

    /// `percent` % of UDP each way, at random (nft `numgen random`).
    pub fn udp_loss(percent: u8) -> Filter {
        let m = format!("meta l4proto udp numgen random mod 100 < {percent}");
        Filter {
            out: Some(m.clone()),
            inbound: Some(m),
        }
    }

    /// Every packet each way: a partition.
    pub fn everything() -> Filter {
        Filter {
            out: Some(String::new()),
            inbound: Some(String::new()),
        }
    }
}

/// The nft script of one fault's table.
fn script(table: &str, scope: &Scope, what: &Filter) -> String {
    let (to, from) = match scope {
        Scope::Host { peer } => {
            let fam = if peer.is_ipv4() { "ip" } else { "ip6" };
            (format!("{fam} daddr {peer}"), format!("{fam} saddr {peer}"))
        }
        Scope::Site { .. } => (
            "oifname != \"lo\"".to_owned(),
            "iifname != \"lo\"".to_owned(),
        ),
    };
    let mut s = format!("table inet {table} {{\n");
    for (chain, hook, scope, m) in [
        ("out", "output", to, &what.out),
        ("in", "input", from, &what.inbound),
    ] {
        if let Some(m) = m {
            let rule = [scope.as_str(), m.as_str(), "drop"]
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            s.push_str(&format!(
                "\tchain {chain} {{ type filter hook {hook} priority 0; policy accept; {rule}; }}\n"
            ));
        }
    }
    s.push_str("}\n");
    s
}

/// Applies `what` in `scope`, in a table of its own.
pub fn apply(scope: &Scope, what: &Filter) -> Result<NftGuard, String> {
    let table = next_table();
    let netns = match scope {
        Scope::Host { .. } => None,
        Scope::Site { netns } => Some(netns.clone()),
    };
    nft_in(netns.as_deref(), &script(&table, scope, what))?;
    Ok(NftGuard { table, netns })
}

/// In the namespace `netns`, drops every packet sent from `sources` that would leave it
/// (a table that lives as long as the namespace).
pub fn keep_inside(netns: &str, sources: &[String]) -> Result<(), String> {
    let script = format!(
        "table inet sfuh_vpn {{\n\
         \tchain out {{ type filter hook output priority 0; policy accept; oifname != \"lo\" ip saddr {{ {} }} drop; }}\n\
         }}\n",
        sources.join(", ")
    );
    nft_in(Some(netns), &script)
}

/// Deletes tables of harness processes that no longer run; returns their names.
pub fn sweep_dead_tables() -> Vec<String> {
    super::sweep_dead(
        &["nft", "list", "tables"],
        |line| line.strip_prefix("table inet "),
        |name| nft(&format!("delete table inet {name}\n")).is_ok(),
        "nft table",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Scope {
        Scope::Host {
            peer: "192.168.240.3".parse().unwrap(),
        }
    }

    #[test]
    fn a_udp_block_on_the_host_matches_the_sfu_both_ways() {
        assert_eq!(
            script("t", &host(), &Filter::udp(&[], Direction::Both)),
            "table inet t {\n\
             \tchain out { type filter hook output priority 0; policy accept; ip daddr 192.168.240.3 meta l4proto udp drop; }\n\
             \tchain in { type filter hook input priority 0; policy accept; ip saddr 192.168.240.3 meta l4proto udp drop; }\n\
             }\n"
        );
    }

    #[test]
    fn ports_match_the_sfu_side_and_a_direction_keeps_one_chain() {
        let site = Scope::Site { netns: "n".into() };
        assert_eq!(
            script("t", &site, &Filter::tcp(&[7881, 443], Direction::Out)),
            "table inet t {\n\
             \tchain out { type filter hook output priority 0; policy accept; oifname != \"lo\" tcp dport { 7881, 443 } drop; }\n\
             }\n"
        );
        assert_eq!(
            script("t", &site, &Filter::udp(&[7882], Direction::In)),
            "table inet t {\n\
             \tchain in { type filter hook input priority 0; policy accept; iifname != \"lo\" udp sport { 7882 } drop; }\n\
             }\n"
        );
    }

    #[test]
    fn except_ports_spare_turn_and_drop_every_other_udp_port() {
        let s = script("t", &host(), &Filter::udp_except(&[3478], Direction::Both));
        assert!(
            s.contains("ip daddr 192.168.240.3 udp dport != { 3478 } drop;"),
            "{s}"
        );
        assert!(
            s.contains("ip saddr 192.168.240.3 udp sport != { 3478 } drop;"),
            "{s}"
        );
    }

    #[test]
    fn a_blackhole_drops_everything_but_loopback_in_a_site() {
        let site = Scope::Site { netns: "n".into() };
        let s = script("t", &site, &Filter::everything());
        assert!(s.contains("oifname != \"lo\" drop;"), "{s}");
        assert!(s.contains("iifname != \"lo\" drop;"), "{s}");
    }
}
