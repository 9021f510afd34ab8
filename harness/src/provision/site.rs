//! Network sites: a network namespace per site, wired to the SFU's Docker network, where
//! a group's bots live so that a network fault can hit one group and spare another.
//!
//! A site is `ip netns add sfuh_p<pid>_<n>` with one veth: its inner end (`eth0`) holds
//! an address near the top of the run network's subnet (Docker hands out addresses from
//! the bottom), its host end is enslaved to the network's bridge, and the default route
//! goes to the bridge's gateway. The bots of a site run on a tokio runtime of their own
//! whose every thread joined the namespace before doing any work (`setns`), so each
//! socket a bot opens — signal WebSocket, ICE UDP and TCP — belongs to the site. Faults
//! then act inside the namespace (nftables, tbf, the link itself).
//!
//! Dropping a [`Site`] shuts its runtime down and deletes the namespace, which also
//! deletes the veth pair; the pid in the name lets the next run delete the namespaces a
//! SIGKILLed run left ([`sweep_dead_sites`]).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use harness_core::plan::SitePlan;

use super::docker::{RunNetwork, RunResources};
use crate::run::RunError;

use super::OWNED_PREFIX as PREFIX;
/// Worker threads per site runtime (the machine this runs on may have 2 cores).
const WORKERS: usize = 2;

/// A site of the run: its link and the runtime its bots run on.
pub struct Site {
    pub link: SiteLink,
    /// The site's address on the run network, and that network's prefix length.
    pub address: IpAddr,
    pub prefix: u8,
    /// Addresses of its VPN-like interfaces (`vpn1`, …): nothing routes to them, and
    /// nothing from them leaves the site.
    pub extra_addresses: Vec<IpAddr>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// What faults need of a site: its namespace and both ends of its link.
#[derive(Debug, Clone)]
pub struct SiteLink {
    pub name: String,
    /// The network namespace (`ip netns` name).
    pub netns: String,
    /// The host end of the veth (on the Docker bridge).
    pub host_if: String,
    /// The run network's gateway (the host's bridge address): the site's default route.
    pub gateway: IpAddr,
}

impl SiteLink {
    /// The default route via the gateway (an interface going down takes it away).
    pub fn restore_route(&self) -> Result<(), String> {
        ip(&[
            "-n",
            &self.netns,
            "route",
            "replace",
            "default",
            "via",
            &self.gateway.to_string(),
            "dev",
            SITE_IF,
        ])
    }

    /// Takes the site's interface down, or up again with its default route.
    pub fn set_up(&self, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.netns, "link", "set", SITE_IF, state])?;
        if up {
            self.restore_route()?;
        }
        Ok(())
    }

    /// Limits the link to `kbps` each way: a tbf qdisc on the site's end (upload) and
    /// on the host's end (download).
    pub fn limit(&self, kbps: u32) -> Result<(), String> {
        let rate = format!("{kbps}kbit");
        // A burst of 20 ms at the rate, and never less than two full frames.
        let burst = (u64::from(kbps) * 1000 / 8 / 50).max(3200).to_string();
        let tbf = [
            "root", "tbf", "rate", &rate, "burst", &burst, "latency", "200ms",
        ];
        let mut site = vec![
            "-n",
            self.netns.as_str(),
            "qdisc",
            "replace",
            "dev",
            SITE_IF,
        ];
        site.extend(tbf);
        tc(&site)?;
        let mut host = vec!["qdisc", "replace", "dev", self.host_if.as_str()];
        host.extend(tbf);
        tc(&host)
    }

    /// Takes the limits off again.
    pub fn unlimit(&self) -> Result<(), String> {
        let site = tc(&["-n", &self.netns, "qdisc", "del", "dev", SITE_IF, "root"]);
        let host = tc(&["qdisc", "del", "dev", &self.host_if, "root"]);
        site.and(host)
    }
}

fn tc(args: &[&str]) -> Result<(), String> {
    run(Command::new("tc").args(args))
}

/// The interface name inside every site.
pub const SITE_IF: &str = "eth0";

fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{shown}: {e} (is iproute2 installed?)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{shown}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run(Command::new("ip").args(args))
}

/// Runs `program args` inside `netns`.
/// `a.b.c.d/len` → (network address, prefix length); IPv4 only (Docker's default pools).
pub fn parse_cidr(cidr: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = cidr.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 30)?;
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    Some((Ipv4Addr::from(u32::from(addr) & mask), len))
}

/// The address of site `n` (from 1) in `cidr`: counted down from the last host address,
/// far from where Docker allocates (upwards from the gateway).
pub fn site_address(cidr: &str, n: u32) -> Option<Ipv4Addr> {
    let (net, len) = parse_cidr(cidr)?;
    let size = 1u64 << (32 - u32::from(len));
    // The broadcast address is size-1; keep the top 8 host addresses apart from
    // containers, and never more than a quarter of the subnet.
    if u64::from(n) == 0 || u64::from(n) > (size / 4).min(8) {
        return None;
    }
    Some(Ipv4Addr::from(
        (u64::from(u32::from(net)) + size - 1 - u64::from(n)) as u32,
    ))
}

impl Site {
    /// Creates site number `n` (from 1) of this process on the network whose bridge is
    /// `bridge`, with subnet `subnet` and gateway `gateway`.
    pub async fn create(
        name: &str,
        n: u32,
        bridge: &str,
        subnet: &str,
        gateway: IpAddr,
        extra_addresses: &[IpAddr],
    ) -> Result<Site, String> {
        let pid = std::process::id();
        let netns = format!("{PREFIX}{pid}_{n}");
        // IFNAMSIZ is 16: `sfh` + pid (at most 7 digits) + `s` + n.
        let host_if = format!("sfh{pid}s{n}");
        let address = site_address(subnet, n)
            .ok_or_else(|| format!("site `{name}`: no free address for it in {subnet}"))?;
        let (_, prefix) = parse_cidr(subnet).ok_or_else(|| format!("bad subnet {subnet}"))?;
        ip(&["netns", "add", &netns])?;
        let mut site = Site {
            link: SiteLink {
                name: name.to_owned(),
                netns,
                host_if,
                gateway,
            },
            address: IpAddr::V4(address),
            prefix,
            extra_addresses: extra_addresses.to_vec(),
            runtime: None,
        };
        // From here on, dropping `site` removes whatever was made.
        site.wire(bridge)?;
        site.add_vpn_interfaces()?;
        site.runtime = Some(site.build_runtime().await?);
        Ok(site)
    }

    fn wire(&self, bridge: &str) -> Result<(), String> {
        let l = &self.link;
        let ns = l.netns.as_str();
        ip(&[
            "link", "add", &l.host_if, "type", "veth", "peer", "name", SITE_IF, "netns", ns,
        ])?;
        ip(&["link", "set", &l.host_if, "master", bridge, "up"])?;
        let cidr = format!("{}/{}", self.address, self.prefix);
        ip(&["-n", ns, "addr", "add", &cidr, "dev", SITE_IF])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        l.set_up(true)
    }

    /// An interface per extra address, and a rule that keeps anything sent from
    /// those addresses inside the site (a VPN's traffic goes into its tunnel, not onto
    /// the LAN): candidates on them are offered and never answered.
    fn add_vpn_interfaces(&self) -> Result<(), String> {
        if self.extra_addresses.is_empty() {
            return Ok(());
        }
        let ns = self.link.netns.as_str();
        for (i, addr) in self.extra_addresses.iter().enumerate() {
            let dev = format!("vpn{}", i + 1);
            // A veth whose peer stays in the site too (this kernel has no dummy
            // interfaces): an up interface holding the address, leading nowhere.
            let peer = format!("{dev}p");
            ip(&[
                "-n", ns, "link", "add", &dev, "type", "veth", "peer", "name", &peer,
            ])?;
            ip(&["-n", ns, "addr", "add", &format!("{addr}/32"), "dev", &dev])?;
            ip(&["-n", ns, "link", "set", &peer, "up"])?;
            ip(&["-n", ns, "link", "set", &dev, "up"])?;
        }
        let set: Vec<String> = self.extra_addresses.iter().map(IpAddr::to_string).collect();
        super::nft::keep_inside(ns, &set)
    }

    /// A runtime whose threads all live in the site's namespace; checked, not assumed.
    async fn build_runtime(&self) -> Result<tokio::runtime::Runtime, String> {
        let (name, netns) = (&self.link.name, &self.link.netns);
        let path = format!("/run/netns/{netns}");
        let file = Arc::new(std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?);
        let failed = Arc::new(AtomicBool::new(false));
        let (f, bad) = (file.clone(), failed.clone());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name(format!("site-{name}"))
            .enable_all()
            .on_thread_start(move || {
                // SAFETY: setns on this thread with an open namespace fd; it changes only
                // the calling thread's network namespace.
                if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    bad.store(true, Ordering::SeqCst);
                }
            })
            .build()
            .map_err(|e| format!("site `{name}`: runtime: {e}"))?;
        let want = file.metadata().map_err(|e| format!("{path}: {e}"))?.ino();
        // Asked of one of the runtime's own threads (awaited from the caller's runtime).
        let seen = rt
            .spawn(async { std::fs::metadata("/proc/thread-self/ns/net").map(|m| m.ino()) })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        match seen {
            Ok(ino) if ino == want && !failed.load(Ordering::SeqCst) => Ok(rt),
            Ok(_) | Err(_) => {
                rt.shutdown_background();
                Err(format!(
                    "site `{name}`: its threads could not join network namespace {netns} (setns needs CAP_SYS_ADMIN)"
                ))
            }
        }
    }

    /// Where the site's bots run.
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("a created site has a runtime")
            .handle()
            .clone()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        // Deleting the namespace deletes its end of the veth, and with it the pair.
        let _ = ip(&["netns", "del", &self.link.netns]);
        // Gone with the namespace already, unless a thread still held it.
        let _ = ip(&["link", "del", &self.link.host_if]);
    }
}

/// Site number `n` (from 1) of the plan on the run `network`, with its VPN-like
/// addresses: one per extra interface, from a network of the run nothing is attached to
/// (the SFU's answers to it end at this host's empty bridge).
pub async fn provision(
    res: &mut RunResources,
    network: &RunNetwork,
    plan: &SitePlan,
    n: u32,
) -> Result<Site, RunError> {
    let bridge = format!("br-{}", network.id.get(..12).unwrap_or(&network.id));
    let mut extra = Vec::new();
    for j in 1..=plan.extra_interfaces {
        let vpn = res.create_network(&format!("site{n}-vpn{j}")).await?;
        let addr = site_address(&vpn.subnet, 1)
            .ok_or_else(|| RunError::Network(format!("no address in {}", vpn.subnet)))?;
        extra.push(IpAddr::V4(addr));
    }
    Site::create(
        &plan.name,
        n,
        &bridge,
        &network.subnet,
        network.gateway,
        &extra,
    )
    .await
    .map_err(RunError::Network)
}

/// Deletes the namespaces of harness processes that no longer run; returns their names.
pub fn sweep_dead_sites() -> Vec<String> {
    super::sweep_dead(
        &["ip", "netns", "list"],
        |line| line.split_whitespace().next(),
        |name| ip(&["netns", "del", name]).is_ok(),
        "network namespace",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_take_addresses_from_the_top_of_the_subnet() {
        assert_eq!(
            site_address("192.168.240.0/20", 1),
            Some(Ipv4Addr::new(192, 168, 255, 254))
        );
        assert_eq!(
            site_address("172.18.0.0/16", 2),
            Some(Ipv4Addr::new(172, 18, 255, 253))
        );
        // A host part in the written address is ignored, as Docker writes none.
        assert_eq!(
            site_address("10.1.2.3/24", 1),
            Some(Ipv4Addr::new(10, 1, 2, 254))
        );
        assert_eq!(site_address("10.1.2.0/24", 0), None);
        assert_eq!(site_address("10.1.2.0/24", 9), None, "at most 8 sites");
        assert_eq!(site_address("10.1.2.0/29", 3), None, "a quarter of 8");
        assert_eq!(site_address("fd00::/64", 1), None, "IPv4 only");
        assert_eq!(site_address("10.0.0.0/31", 1), None);
    }
}
