//! nftables rules a run adds, always in a table of its own, always removed.
//!
//! Each fault gets one `inet` table named `sfuh_p<pid>_<n>`: deleting the table undoes
//! everything in it, and the pid in the name lets the next run remove tables a
//! SIGKILLed run left ([`sweep_dead_tables`]). Rules match only the run's own addresses.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

const PREFIX: &str = "sfuh_p";
static NEXT: AtomicU32 = AtomicU32::new(1);

fn nft(script: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
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
}

impl NftGuard {
    pub fn clear(self) {}
}

impl Drop for NftGuard {
    fn drop(&mut self) {
        let _ = nft(&format!("delete table inet {}\n", self.table));
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
pub fn unreachable_subnets(subnets: &[String]) -> Result<NftGuard, String> {
    let table = next_table();
    let set = subnets.join(", ");
    let script = format!(
        "table inet {table} {{\n\
         \tchain out {{ type filter hook output priority 0; policy accept; ip daddr {{ {set} }} drop; }}\n\
         \tchain in {{ type filter hook input priority 0; policy accept; ip saddr {{ {set} }} drop; }}\n\
         }}\n"
    );
    nft(&script)?;
    Ok(NftGuard { table })
}

/// Drops every UDP packet between this host and `peer` (both directions), as a
/// firewall that lets only TCP through would. TCP (signal, ICE-TCP) is untouched.
pub fn block_udp(peer: IpAddr) -> Result<NftGuard, String> {
    drop_to_and_from(peer, "meta l4proto udp drop")
}

/// Drops every packet between this host and `peer`: a network partition.
pub fn blackhole(peer: IpAddr) -> Result<NftGuard, String> {
    drop_to_and_from(peer, "drop")
}

/// A table whose output and input chains apply `verdict` to traffic with `peer`.
fn drop_to_and_from(peer: IpAddr, verdict: &str) -> Result<NftGuard, String> {
    let table = next_table();
    let fam = if peer.is_ipv4() { "ip" } else { "ip6" };
    let script = format!(
        "table inet {table} {{\n\
         \tchain out {{ type filter hook output priority 0; policy accept; {fam} daddr {peer} {verdict}; }}\n\
         \tchain in {{ type filter hook input priority 0; policy accept; {fam} saddr {peer} {verdict}; }}\n\
         }}\n"
    );
    nft(&script)?;
    Ok(NftGuard { table })
}

/// Drops `percent` % of the UDP packets between this host and `peer`, each way, at
/// random (nft `numgen random`): loss on the media path; signal (TCP) is untouched.
pub fn udp_loss(peer: IpAddr, percent: u8) -> Result<NftGuard, String> {
    drop_to_and_from(
        peer,
        &format!("meta l4proto udp numgen random mod 100 < {percent} drop"),
    )
}

/// Deletes tables of harness processes that no longer run; returns their names.
pub fn sweep_dead_tables() -> Vec<String> {
    let Ok(out) = Command::new("nft")
        .args(["list", "tables"])
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.strip_prefix("table inet ") else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('_').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let alive = pid == std::process::id() as i32 || unsafe { libc::kill(pid, 0) == 0 };
        if !alive && nft(&format!("delete table inet {name}\n")).is_ok() {
            removed.push(format!("nft table {name}"));
        }
    }
    removed
}
