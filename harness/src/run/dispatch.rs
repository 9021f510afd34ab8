//! Dispatch, the run's middle stage: the probes (self-check, cost accounting, the SFU's
//! metrics), every bot at its join time, the fault timeline and the phases on one
//! clock, the capacity search's stop rule; then media stops, bots drain and leave.
//! Returns whether the run was interrupted.

use std::sync::Arc;
use std::time::Duration;

use bots::{BotConfig, Command, EventSink};
use harness_core::event::Event;
use harness_core::plan::Plan;
use tokio::sync::watch;

use super::setup::Setup;
use super::{DRAIN, LEAVE_TIMEOUT, shutdown_signal};
use crate::eventlog;
use crate::faults;
use crate::fleet::Fleet;
use crate::provision::docker::RunResources;

pub(super) async fn dispatch(
    plan: &Plan,
    sink: &EventSink,
    res: &RunResources,
    live: &eventlog::Live,
    setup: &Setup,
) -> bool {
    let Setup {
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
        ..
    } = setup;
    let (end_tx, end_rx) = watch::channel(false);
    let mut probes = crate::selfcheck::spawn(sink.clone(), end_rx.clone());
    probes.push(crate::cost::spawn(
        cost_nodes.clone(),
        sink.clone(),
        end_rx.clone(),
    ));
    probes.push(crate::scrape::spawn(
        node.name.clone(),
        node.ip,
        &node.config_redacted,
        sink.clone(),
        end_rx.clone(),
    ));
    let fleet = Arc::new(Fleet::new(sink.clone()));
    let bots_epoch = tokio::time::Instant::now() + faults::ZERO_LEAD;
    for b in &plan.bots {
        let site = b
            .site
            .as_ref()
            .and_then(|name| sites.iter().find(|s| &s.link.name == name));
        let bind_ips = match site {
            Some(s) => std::iter::once(s.address)
                .chain(s.extra_addresses.iter().copied())
                .collect(),
            None => vec![network.gateway],
        };
        let cfg = BotConfig {
            identity: b.identity.clone(),
            group: b.group.clone(),
            room: b.room.clone(),
            // Node 1 is behind the signal proxy when there is one; other nodes are direct.
            signal_url: match b.node {
                0 | 1 => signal_url.clone(),
                n => node_urls[usize::from(n) - 1].clone(),
            },
            api_key: api_key.clone(),
            api_secret: Arc::clone(api_secret),
            token_ttl: b.token_ttl,
            clock_skew_ms: b.clock_skew_ms,
            publish_audio: b.publish_audio,
            can_publish: b.can_publish,
            video: b.video,
            video_quality: b.video_quality,
            data_interval: b.data_interval,
            bind_ips,
            allowed_ice_ips: node_ips.clone(),
            join_timeout: Duration::from_secs(15),
            policy: b.reconnect,
            runtime: site.map(|s| s.handle()),
            lean: b.lean,
        };
        fleet.spawn_at(cfg, bots_epoch + b.join_at);
    }
    // A staged group's ramp down: each bot leaves (a LeaveRequest) at its time.
    for b in plan.bots.iter().filter(|b| b.leave_at.is_some()) {
        let (fleet, mut end) = (fleet.clone(), end_rx.clone());
        let (identity, at) = (
            b.identity.clone(),
            bots_epoch + b.leave_at.unwrap_or_default(),
        );
        probes.push(tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until(at) => { fleet.send_to(&identity, Command::Leave); }
                _ = end.wait_for(|e| *e) => {}
            }
        }));
    }
    let targets = Arc::new(faults::Targets {
        proxy: proxy.clone(),
        docker: res.docker().clone(),
        sfu_containers: node_containers.clone(),
        sfu_ip: node.ip,
        fleet: fleet.clone(),
        node_urls: {
            let mut urls = node_urls.clone();
            urls[0] = signal_url.clone();
            urls
        },
        sites: sites.iter().map(|s| s.link.clone()).collect(),
    });
    for p in plan.phases.clone() {
        let (sink, mut end) = (sink.clone(), end_rx.clone());
        probes.push(tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until(bots_epoch + p.at) => {
                    // Stamped at its planned instant, not when this task woke: a bot
                    // planned to join at the phase's start wakes no earlier than that, so
                    // its join always counts in the new phase (woken first, it used to
                    // land a few hundred µs before the phase began).
                    let t = sink.us_at((bots_epoch + p.at).into_std());
                    sink.emit_at(t, Event::PhaseStarted { name: p.name });
                }
                _ = end.wait_for(|e| *e) => {}
            }
        }));
    }
    let end_rx_search = end_rx.clone();
    let fault_runner = tokio::spawn(faults::run(
        plan.faults.clone(),
        bots_epoch,
        targets,
        sink.clone(),
        end_rx,
    ));

    let search = crate::search::watch(plan, live.clone(), sink.clone(), end_rx_search);
    let interrupted = tokio::select! {
        _ = tokio::time::sleep_until(bots_epoch + plan.duration) => false,
        _ = search => false,
        _ = shutdown_signal() => true,
    };
    let _ = end_tx.send(true);
    let _ = fault_runner.await;
    for p in probes {
        let _ = p.await;
    }
    fleet.broadcast(Command::StopMedia);
    if !interrupted {
        tokio::time::sleep(DRAIN).await;
    }
    fleet.broadcast(Command::Leave);
    let aborted = fleet.join_all(LEAVE_TIMEOUT).await;
    if aborted > 0 {
        sink.emit(Event::Note {
            source: "harness".into(),
            message: format!("{aborted} bots did not leave within {LEAVE_TIMEOUT:?}; aborted"),
        });
    }
    interrupted
}
