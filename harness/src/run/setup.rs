//! Provisioning, the run's first stage: the run network (and a multi-homed SFU's extra
//! ones), network sites, Redis for several nodes, the SFU nodes, nginx and the signal
//! proxy in front of node 1 — and the signal URL the bots use. What it makes is in the
//! caller's `RunResources` (containers, networks) or held by [`Setup`] (sites, nft
//! tables, the proxy) until the run is over.

use std::path::Path;
use std::sync::Arc;

use bots::EventSink;
use harness_core::event::Event;
use harness_core::plan::Plan;

use super::{RunError, io};
use crate::provision::docker::{RunNetwork, RunResources};
use crate::provision::livekit::{self, SfuNode};
use crate::provision::site::Site;

/// What the run provisioned, for dispatch.
pub(super) struct Setup {
    pub network: RunNetwork,
    pub sites: Vec<Site>,
    /// Node 1 (the room's node unless LiveKit places it elsewhere).
    pub node: SfuNode,
    pub node_urls: Vec<String>,
    pub node_ips: Vec<std::net::IpAddr>,
    pub node_containers: Vec<String>,
    pub cost_nodes: Vec<crate::cost::Node>,
    pub proxy: Option<Arc<signal_proxy::Proxy>>,
    /// Node 1's signal URL as bots reach it: through the proxy or nginx, if any.
    pub signal_url: String,
    pub api_key: String,
    pub api_secret: Arc<str>,
    /// nftables tables that keep the extra networks unreachable; dropped at the end.
    _unreachable: Vec<crate::provision::nft::NftGuard>,
}

impl Setup {
    /// Ends what the setup holds once the bots are gone (the proxy, the sites' runtimes
    /// and namespaces, the nft tables); node 1 goes back to the caller for the report.
    pub async fn finish(self) -> SfuNode {
        if let Some(p) = self.proxy.and_then(|p| Arc::try_unwrap(p).ok()) {
            p.shutdown().await;
        }
        drop(self.sites);
        drop(self._unreachable);
        self.node
    }
}

pub(super) async fn provision(
    plan: &Plan,
    sink: &EventSink,
    res: &mut RunResources,
    report_dir: &Path,
) -> Result<Setup, RunError> {
    let network = res.create_network("net").await?;
    // A multi-homed SFU: more networks on the node, none of them reachable by the bots.
    // Docker names a container's interfaces in the order of its networks' names, so
    // `…-net` stays eth0 and the extras (`…-net-x1`, …) come after it.
    let mut extra = Vec::new();
    for i in 1..=plan.sfu.extra_networks {
        extra.push(res.create_network(&format!("net-x{i}")).await?);
    }
    let unreachable: Vec<String> = extra.iter().map(|n| n.subnet.clone()).collect();
    let mut unreachable_guards = Vec::new();
    if !unreachable.is_empty() {
        unreachable_guards.push(
            crate::provision::nft::unreachable_subnets(None, &unreachable)
                .map_err(RunError::Network)?,
        );
        sink.emit(Event::Note {
            source: "harness".into(),
            message: format!(
                "the SFU is also on {}, which the bots cannot reach",
                unreachable.join(", ")
            ),
        });
    }
    // Network sites: a namespace per site on the run network, for the groups that name one.
    let mut sites = Vec::new();
    for (i, sp) in plan.sites.iter().enumerate() {
        let site = crate::provision::site::provision(res, &network, sp, i as u32 + 1).await?;
        if !unreachable.is_empty() {
            unreachable_guards.push(
                crate::provision::nft::unreachable_subnets(Some(&site.link.netns), &unreachable)
                    .map_err(RunError::Network)?,
            );
        }
        let vpn: Vec<String> = site
            .extra_addresses
            .iter()
            .map(ToString::to_string)
            .collect();
        sink.emit(Event::Note {
            source: "harness".into(),
            message: format!(
                "site {}: network namespace {} at {}/{} on the SFU's network{}",
                sp.name,
                site.link.netns,
                site.address,
                site.prefix,
                if vpn.is_empty() {
                    String::new()
                } else {
                    format!(", VPN-like {}", vpn.join(", "))
                }
            ),
        });
        sites.push(site);
    }
    let (api_key, api_secret) = livekit::credentials(&plan.sfu);
    // Multi-node: every node shares one Redis, in a container of the run.
    let mut sfu = plan.sfu.clone();
    // (A scenario's own `[sfu.config.redis]` wins: an empty address runs the nodes
    // unconnected, each on its own.)
    if sfu.nodes > 1 && !sfu.config_overrides.contains_key("redis") {
        let address = livekit::start_redis(res, &network).await?;
        sfu.config_overrides.insert(
            "redis".into(),
            serde_json::json!({ "address": address.to_string() }),
        );
        sink.emit(Event::Note {
            source: "harness".into(),
            message: format!("redis at {address} for {} LiveKit nodes", sfu.nodes),
        });
    }
    let mut nodes = Vec::new();
    for i in 1..=sfu.nodes {
        let node = livekit::start_node(
            res,
            &sfu,
            &format!("lk{i}"),
            &network,
            if i == 1 { &extra } else { &[] },
            &api_key,
            &api_secret,
        )
        .await?;
        if i == 1
            && let Some(file) = &plan.sfu.config_file
        {
            let changed: Vec<String> = node
                .file_overrides
                .iter()
                .map(ToString::to_string)
                .collect();
            sink.emit(Event::Note {
                source: "sfu".into(),
                message: if changed.is_empty() {
                    format!("LiveKit runs with {} as written", file.path)
                } else {
                    format!(
                        "LiveKit runs with {}, these keys laid over by the harness (they would reach outside the run or are the harness's own): {}",
                        file.path,
                        changed.join("; ")
                    )
                },
            });
        }
        sink.emit(Event::SfuStarted {
            node: node.name.clone(),
            image: plan.sfu.image.clone(),
            url: node.signal_url.clone(),
            ready_us: node.ready_after.as_micros() as u64,
            node_id: node.node_id.clone(),
        });
        nodes.push(node);
    }
    let node_urls: Vec<String> = nodes.iter().map(|n| n.signal_url.clone()).collect();
    let node_ips: Vec<std::net::IpAddr> = nodes.iter().map(|n| n.ip).collect();
    let node_containers: Vec<String> = nodes.iter().map(|n| n.container_id.clone()).collect();
    let cost_nodes: Vec<crate::cost::Node> = nodes
        .iter()
        .map(|n| crate::cost::Node {
            name: n.name.clone(),
            container_id: n.container_id.clone(),
        })
        .collect();
    let node = nodes.swap_remove(0);

    // A real nginx in front of node 1's signal port, when the scenario asks for one.
    let node_signal = std::net::SocketAddr::new(node.ip, harness_core::sfu_config::SIGNAL_PORT);
    let nginx = match &plan.nginx {
        Some(n) => {
            let conf =
                std::path::absolute(report_dir.join("nginx.conf")).map_err(io(report_dir))?;
            let addr = livekit::start_nginx(res, &network, n, node_signal, &conf).await?;
            sink.emit(Event::Note {
                source: "harness".into(),
                message: format!(
                    "nginx at {addr} in front of {} (config: nginx.conf in the run directory)",
                    node.signal_url
                ),
            });
            Some(addr)
        }
        None => None,
    };
    // Where node 1's signal is reached: through nginx, if there is one; its path.
    let front = nginx.unwrap_or(node_signal);
    let front_path = plan.nginx.as_ref().map_or("", |n| n.url_path());
    // Bots reach the SFU through the harness's signal proxy when a fault needs it.
    let proxy = if plan.faults.iter().any(|f| f.kind.needs_proxy()) {
        // On loopback, unless bots in sites need it: they reach the host at the gateway.
        let listen_ip = if sites.is_empty() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            network.gateway
        };
        let cfg = signal_proxy::ProxyConfig {
            listen: std::net::SocketAddr::new(listen_ip, 0),
            upstream: front,
        };
        let p = signal_proxy::Proxy::start(cfg)
            .await
            .map_err(|e| RunError::Proxy(e.to_string()))?;
        sink.emit(Event::Note {
            source: "harness".into(),
            message: format!("signal proxy at {} in front of {front}", p.local_addr()),
        });
        Some(Arc::new(p))
    } else {
        None
    };
    // Published under a path prefix (a path-prefix fault), the URL carries it: the
    // proxy strips it, or (the mistake) forwards it to LiveKit unchanged.
    let signal_url = match &proxy {
        Some(p) => {
            let prefix = harness_core::fault::FaultPlan::signal_prefix(&plan.faults);
            format!(
                "ws://{}{front_path}{}",
                p.local_addr(),
                prefix.unwrap_or_default()
            )
        }
        None if nginx.is_some() => format!("ws://{front}{front_path}"),
        None => node.signal_url.clone(),
    };

    Ok(Setup {
        network,
        sites,
        node,
        node_urls,
        node_ips,
        node_containers,
        cost_nodes,
        proxy,
        signal_url,
        api_key,
        api_secret,
        _unreachable: unreachable_guards,
    })
}
