//! The bot's two peer connections, built the way a LiveKit client builds them.
//!
//! Callbacks from `webrtc` are turned into [`PeerEvent`]s on one channel so the bot's
//! loop handles signal and peer events in one place, in order.

use std::net::IpAddr;
use std::sync::Arc;

use harness_core::event::{SelectedCandidate, Transport};
use rtc::ice::network_type::NetworkType;
use rtc::interceptor::Registry;
use tokio::sync::mpsc::UnboundedSender;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceServer, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCStatsReportEntry, SettingEngineBuilder, StatsSelector, register_default_interceptors,
};

/// What a peer connection tells the bot.
pub enum PeerEvent {
    /// A local candidate to trickle to the server (JSON of RTCIceCandidateInit).
    Candidate(Transport, String),
    State(Transport, RTCPeerConnectionState),
    Track(Arc<dyn TrackRemote>),
}

struct Handler {
    transport: Transport,
    tx: UnboundedSender<PeerEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let Ok(mut init) = event.candidate.to_json() else {
            return;
        };
        // LiveKit matches candidates to the first (bundled) m-section.
        init.sdp_mid = Some("0".to_owned());
        init.sdp_mline_index = Some(0);
        if let Ok(json) = serde_json::to_string(&init) {
            let _ = self.tx.send(PeerEvent::Candidate(self.transport, json));
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.tx.send(PeerEvent::State(self.transport, state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tx.send(PeerEvent::Track(track));
    }
}

pub type Pc = Arc<dyn PeerConnection>;

/// Builds one peer connection bound to `bind_ip` only (so host candidates are the run's
/// own address, never another interface of the machine).
pub async fn build(
    transport: Transport,
    bind_ip: IpAddr,
    ice_servers: Vec<RTCIceServer>,
    tx: UnboundedSender<PeerEvent>,
) -> webrtc::error::Result<Pc> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_default_codecs()?;
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(ice_servers)
        .build();
    // UDP and ICE-TCP (active; LiveKit listens on rtc.tcp_port): a bot whose UDP is
    // blocked falls back to TCP the way a browser does.
    let settings = SettingEngineBuilder::new()
        .with_network_types(vec![NetworkType::Udp4, NetworkType::Tcp4])
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(config)
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler { transport, tx }))
        .with_setting_engine(settings)
        .with_udp_addrs(vec![std::net::SocketAddr::new(bind_ip, 0)])
        .with_tcp_addrs(vec![std::net::SocketAddr::new(bind_ip, 0)])
        .build()
        .await?;
    Ok(Arc::new(pc))
}

/// The candidate pair the connection settled on, from its stats. Right after
/// `connected` the stats may not name the pair yet: a few short retries.
pub async fn selected_candidate(pc: &Pc) -> Option<SelectedCandidate> {
    for _ in 0..20 {
        if let Some(c) = selected_candidate_once(pc).await {
            return Some(c);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    None
}

async fn selected_candidate_once(pc: &Pc) -> Option<SelectedCandidate> {
    let report = pc
        .get_stats(std::time::Instant::now(), StatsSelector::None)
        .await;
    let pair_id = &report.transport()?.selected_candidate_pair_id;
    let pair = match report.get(pair_id)? {
        RTCStatsReportEntry::IceCandidatePair(p) => p,
        _ => return None,
    };
    // Candidate entries are keyed `RTCLocalIceCandidate_<id>` while the pair names the
    // bare `<id>`: match on the suffix.
    let local = report.iter().find_map(|e| match e {
        RTCStatsReportEntry::LocalCandidate(c)
            if c.stats.id.ends_with(&pair.local_candidate_id) =>
        {
            Some(c)
        }
        _ => None,
    })?;
    // The pair can name a remote candidate the stats do not list (the same address
    // learnt twice, from the SDP and from trickle): the remote side is then unknown, the
    // protocol and local type still are.
    let remote = report.iter().find_map(|e| match e {
        RTCStatsReportEntry::RemoteCandidate(c)
            if c.stats.id.ends_with(&pair.remote_candidate_id) =>
        {
            Some(c)
        }
        _ => None,
    });
    Some(SelectedCandidate {
        protocol: local.protocol.to_lowercase(),
        local_type: local.candidate_type.to_string(),
        remote_type: remote.map_or_else(|| "unknown".to_owned(), |r| r.candidate_type.to_string()),
        remote_address: remote.map_or_else(
            || "unknown".to_owned(),
            |r| format!("{}:{}", r.address.as_deref().unwrap_or("?"), r.port),
        ),
    })
}
