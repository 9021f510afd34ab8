//! Runs a plan's fault timeline on the bots' clock.
//!
//! Each fault is applied at `bots_epoch + at` and, unless instantaneous, cleared after
//! `for` or at the end of the run; `FaultApplied` carries how late it took effect (the
//! skew the fault-engine bench reports). Effects with an undo hold it as a guard until
//! cleared, so ending the run — normally or by error — always undoes them.

use std::sync::Arc;
use std::time::Duration;

use bots::{Command, EventSink};
use harness_core::event::Event;
use harness_core::fault::{FaultKind, FaultPlan, FaultTarget};
use signal_proxy::{Effect, EffectGuard, Proxy};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::fleet::Fleet;
use crate::provision::docker;
use crate::provision::nft::{self, Filter, NftGuard, Scope};
use crate::provision::site::SiteLink;

/// How long before the bots' clock starts a fault scheduled at 0s is applied (the
/// bots' clock starts at least this late).
pub const ZERO_LEAD: Duration = Duration::from_millis(200);

/// What faults act on.
pub struct Targets {
    pub proxy: Option<Arc<Proxy>>,
    pub docker: bollard::Docker,
    /// Each LiveKit node's container, node 1 first.
    pub sfu_containers: Vec<String>,
    /// Node 1's address: what host-level network faults match.
    pub sfu_ip: std::net::IpAddr,
    pub fleet: Arc<Fleet>,
    /// Each node's signal URL as the bots use it (node 1's through the proxy, if any).
    pub node_urls: Vec<String>,
    /// The run's network sites.
    pub sites: Vec<SiteLink>,
}

impl Targets {
    /// The container of LiveKit node `n` (1-based).
    fn node_container(&self, n: u8) -> Result<String, String> {
        self.sfu_containers
            .get(usize::from(n.max(1)) - 1)
            .cloned()
            .ok_or_else(|| format!("no SFU node {n} in this run"))
    }

    fn site(&self, name: &str) -> Result<&SiteLink, String> {
        self.sites
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| format!("no site `{name}` in this run"))
    }

    /// Where a network fault acts: `sfu` is every bot's path (the host's, and each
    /// site's: a site's traffic is bridged, it never passes the host's own chains).
    fn scopes(&self, target: &FaultTarget) -> Result<Vec<Scope>, String> {
        let site = |s: &SiteLink| Scope::Site {
            netns: s.netns.clone(),
        };
        match target {
            FaultTarget::Site { name, .. } => Ok(vec![site(self.site(name)?)]),
            _ => Ok(std::iter::once(Scope::Host { peer: self.sfu_ip })
                .chain(self.sites.iter().map(site))
                .collect()),
        }
    }
}

/// An applied fault's undo.
enum Undo {
    Proxy(EffectGuard),
    Nft(Vec<NftGuard>),
    /// `bandwidth`: take the limit off this site's link.
    Unlimit(SiteLink),
    /// `link-down`: bring this site's interface up again.
    LinkUp(SiteLink),
    StartSfu(String),
    /// `sleep`: wake these bots.
    Wake(Vec<String>),
    /// `delay`: take it off these bots.
    Undelay(Vec<String>),
    /// `sfu-drain`: the grace period is over; SIGKILL if LiveKit is still draining (as an
    /// orchestrator does), then start the node again.
    EndDrain(String),
    Nothing,
}

/// Runs every fault; returns when all are done or `end` flips to true (then clears what
/// is still applied).
pub async fn run(
    faults: Vec<FaultPlan>,
    bots_epoch: Instant,
    targets: Arc<Targets>,
    sink: EventSink,
    end: watch::Receiver<bool>,
) {
    let mut set = tokio::task::JoinSet::new();
    for f in faults {
        let (targets, sink, mut end) = (targets.clone(), sink.clone(), end.clone());
        set.spawn(async move {
            // A fault at 0s must be in force before the first bot starts, not race it.
            let due = if f.at.is_zero() {
                bots_epoch - ZERO_LEAD
            } else {
                bots_epoch + f.at
            };
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = end.wait_for(|e| *e) => return,
            }
            // Stamped as the action starts: a container restart takes most of a second,
            // and what it breaks breaks at its start.
            sink.emit(Event::FaultApplied {
                id: f.id.clone(),
                kind: f.kind.name().to_owned(),
                target: match (&f.target, f.node) {
                    (FaultTarget::Sfu, n) if n > 1 => format!("sfu node {n}"),
                    (t, _) => t.label().to_owned(),
                },
                bots: bot_ids(&f.target).to_vec(),
                skew_us: due.elapsed().as_micros() as u64,
                until_end: !f.kind.instantaneous() && f.duration.is_none(),
            });
            let undo = match apply(&f, &targets).await {
                Ok(u) => u,
                Err(e) => {
                    sink.emit(Event::Note {
                        source: f.id.clone(),
                        message: format!("{} could not be applied: {e}", f.kind),
                    });
                    sink.emit(Event::FaultCleared { id: f.id.clone() });
                    return;
                }
            };
            if f.kind.instantaneous() {
                return;
            }
            if let Some(d) = f.duration {
                tokio::select! {
                    _ = tokio::time::sleep_until(due + d) => {}
                    _ = end.wait_for(|e| *e) => {}
                }
            } else {
                let _ = end.wait_for(|e| *e).await;
            }
            if let Some(message) = clear(undo, &targets).await {
                sink.emit(Event::Note {
                    source: f.id.clone(),
                    message,
                });
            }
            sink.emit(Event::FaultCleared { id: f.id.clone() });
        });
    }
    while set.join_next().await.is_some() {}
}

async fn apply(f: &FaultPlan, t: &Targets) -> Result<Undo, String> {
    let proxy = || {
        t.proxy
            .as_ref()
            .ok_or_else(|| "no signal proxy in this run".to_owned())
    };
    let effect = |e: Effect| -> Result<Undo, String> {
        proxy()?
            .apply(e)
            .map(Undo::Proxy)
            .map_err(|e| e.to_string())
    };
    match f.kind {
        FaultKind::WsDrop => {
            // Instantaneous: the guard's clear is a no-op.
            effect(Effect::Drop).map(|_| Undo::Nothing)
        }
        FaultKind::WsRefuseUpgrade => effect(Effect::RefuseUpgrade {
            status: f.status.unwrap_or(502),
        }),
        FaultKind::WsStall => effect(Effect::Stall),
        FaultKind::PathPrefix => effect(Effect::PathPrefix {
            prefix: f.prefix.clone().unwrap_or_else(|| "/livekit".to_owned()),
            strip: f.strip,
        }),
        FaultKind::WsIdleTimeout => effect(Effect::IdleTimeout {
            idle: f.idle.unwrap_or(Duration::from_secs(10)),
        }),
        FaultKind::SfuKill | FaultKind::SfuDrain => {
            let container = t.node_container(f.node)?;
            let signal = if f.kind == FaultKind::SfuKill {
                "SIGKILL"
            } else {
                "SIGTERM"
            };
            docker::kill(&t.docker, &container, signal)
                .await
                .map_err(|e| e.to_string())?;
            Ok(if f.kind == FaultKind::SfuKill {
                Undo::StartSfu(container)
            } else {
                Undo::EndDrain(container)
            })
        }
        FaultKind::SfuRestart => {
            docker::restart(&t.docker, &t.node_container(f.node)?)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Undo::Nothing)
        }
        FaultKind::BlockUdp | FaultKind::BlockTcp | FaultKind::Blackhole | FaultKind::Loss => {
            let what = match f.kind {
                FaultKind::BlockUdp if !f.except_ports.is_empty() => {
                    Filter::udp_except(&f.except_ports, f.direction)
                }
                FaultKind::BlockUdp => Filter::udp(&f.ports, f.direction),
                FaultKind::BlockTcp => Filter::tcp(&f.ports, f.direction),
                FaultKind::Loss => Filter::udp_loss(f.percent.unwrap_or(10)),
                _ => Filter::everything(),
            };
            let mut guards = Vec::new();
            for scope in t.scopes(&f.target)? {
                // An error drops the guards applied so far: all or nothing.
                guards.push(nft::apply(&scope, &what)?);
            }
            Ok(Undo::Nft(guards))
        }
        FaultKind::Bandwidth | FaultKind::LinkDown => {
            let FaultTarget::Site { name, .. } = &f.target else {
                return Err(format!("{} needs a site", f.kind));
            };
            let link = t.site(name)?.clone();
            if f.kind == FaultKind::Bandwidth {
                link.limit(f.kbps.unwrap_or(1000))?;
                Ok(Undo::Unlimit(link))
            } else {
                link.set_up(false)?;
                Ok(Undo::LinkUp(link))
            }
        }
        FaultKind::Kill => {
            for id in bot_ids(&f.target) {
                t.fleet.send_to(id, Command::Kill);
            }
            Ok(Undo::Nothing)
        }
        FaultKind::Delay => {
            let ids = bot_ids(&f.target).to_vec();
            let delay = (f.delay.unwrap_or_default(), f.jitter.unwrap_or_default());
            for id in &ids {
                t.fleet.set_delay(id, Some(delay));
            }
            Ok(Undo::Undelay(ids))
        }
        FaultKind::Sleep => {
            let ids = bot_ids(&f.target).to_vec();
            for id in &ids {
                t.fleet.sleep(id);
            }
            Ok(Undo::Wake(ids))
        }
        FaultKind::ServerSwitch => {
            for id in bot_ids(&f.target) {
                let mut cfg = t
                    .fleet
                    .config_of(id)
                    .ok_or_else(|| format!("no bot `{id}`"))?;
                let here = t
                    .node_urls
                    .iter()
                    .position(|u| *u == cfg.signal_url)
                    .unwrap_or(0);
                let next = (here + 1) % t.node_urls.len().max(1);
                cfg.signal_url = t
                    .node_urls
                    .get(next)
                    .cloned()
                    .ok_or_else(|| "server-switch needs sfu.nodes of 2 or more".to_owned())?;
                t.fleet.spawn_at(cfg, Instant::now());
            }
            Ok(Undo::Nothing)
        }
        FaultKind::DuplicateIdentity => {
            for id in bot_ids(&f.target) {
                let cfg = t
                    .fleet
                    .config_of(id)
                    .ok_or_else(|| format!("no bot `{id}`"))?;
                t.fleet.spawn_at(cfg, Instant::now());
            }
            Ok(Undo::Nothing)
        }
    }
}

/// Undoes a fault; returns a note worth an event, if any.
async fn clear(undo: Undo, t: &Targets) -> Option<String> {
    match undo {
        Undo::Proxy(guard) => guard.clear(),
        Undo::Nft(guards) => guards.into_iter().for_each(NftGuard::clear),
        Undo::Unlimit(link) => {
            if let Err(e) = link.unlimit() {
                return Some(format!("the bandwidth limit could not be taken off: {e}"));
            }
        }
        Undo::LinkUp(link) => {
            if let Err(e) = link.set_up(true) {
                return Some(format!("the link could not be brought up again: {e}"));
            }
        }
        Undo::Undelay(ids) => {
            for id in &ids {
                t.fleet.set_delay(id, None);
            }
        }
        Undo::Wake(ids) => {
            for id in &ids {
                t.fleet.wake(id);
            }
        }
        Undo::StartSfu(container) => {
            let _ = docker::start(&t.docker, &container).await;
        }
        Undo::EndDrain(container) => {
            let running = docker::is_running(&t.docker, &container).await;
            let note = if running == Some(true) {
                let _ = docker::kill(&t.docker, &container, "SIGKILL").await;
                "the SFU was still draining when the grace period ended: SIGKILLed"
            } else {
                "the SFU had drained and exited before the grace period ended"
            };
            let _ = docker::start(&t.docker, &container).await;
            return Some(format!("{note}; started again"));
        }
        Undo::Nothing => {}
    }
    None
}

fn bot_ids(target: &FaultTarget) -> &[String] {
    match target {
        FaultTarget::Bots { identities, .. } | FaultTarget::Site { identities, .. } => identities,
        _ => &[],
    }
}
