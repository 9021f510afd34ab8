//! The bot's two peer connections, built the way a LiveKit client builds them.
//!
//! Callbacks from `webrtc` are turned into [`PeerEvent`]s on one channel so the bot's
//! loop handles signal and peer events in one place, in order.

use std::net::IpAddr;
use std::sync::Arc;

use harness_core::event::{SelectedCandidate, Transport};
use rtc::ice::network_type::NetworkType;
use rtc::interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use tokio::sync::mpsc::UnboundedSender;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceServer, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCStatsReport, RTCStatsReportEntry, SettingEngineBuilder, StatsSelector,
    register_default_interceptors,
};

/// What a peer connection tells the bot.
pub enum PeerEvent {
    /// A local candidate to trickle to the server (JSON of RTCIceCandidateInit).
    Candidate(Transport, String),
    State(Transport, RTCPeerConnectionState),
    Track(Arc<dyn TrackRemote>),
    /// A data channel the server opened (on the subscriber connection).
    DataChannel(Arc<dyn webrtc::data_channel::DataChannel>),
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

    async fn on_data_channel(&self, dc: Arc<dyn webrtc::data_channel::DataChannel>) {
        let _ = self.tx.send(PeerEvent::DataChannel(dc));
    }
}

/// Lets keyframe requests (PLI, FIR) from the SFU through to the local track they are
/// about, where the video sender answers them with a keyframe. Every other RTCP packet
/// stops in the interceptor chain, as usual. Sits application-ward of the default chain.
#[derive(Default)]
struct KeyframeRequests {
    read: std::collections::VecDeque<TaggedPacket>,
    write: std::collections::VecDeque<TaggedPacket>,
}

/// Whether an RTCP packet asks for a keyframe.
pub fn is_keyframe_request(p: &dyn rtc::rtcp::Packet) -> bool {
    p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = std::time::Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet
            && packets.iter().any(|p| is_keyframe_request(p.as_ref()))
        {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }

    fn handle_timeout(&mut self, _now: std::time::Instant) -> Result<(), Self::Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        None
    }
}

impl Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

pub type Pc = Arc<dyn PeerConnection>;

/// Builds one peer connection bound to `bind_ips` only (so host candidates are the run's
/// own addresses, never another interface of the machine), its sockets from `runtime`
/// (the bot's [`crate::gate::GatedRuntime`]).
pub async fn build(
    transport: Transport,
    bind_ips: &[IpAddr],
    ice_servers: Vec<RTCIceServer>,
    tx: UnboundedSender<PeerEvent>,
    runtime: Arc<dyn webrtc::runtime::Runtime>,
) -> webrtc::error::Result<Pc> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_default_codecs()?;
    let registry = Registry::new().with(Slot::from(14_000), KeyframeRequests::default());
    let registry = register_default_interceptors(registry, &mut media_engine)?;
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(ice_servers)
        .build();
    // UDP and ICE-TCP (active; LiveKit listens on rtc.tcp_port): a bot whose UDP is
    // blocked falls back to TCP the way a browser does.
    //
    // A check from the SFU can arrive before its candidate does (on the publisher
    // connection LiveKit starts checking as soon as it has the offer); the pair is then
    // peer-reflexive, and webrtc-rs would wait 1 s (its default prflx acceptance wait)
    // before nominating it: the ~1 s ICE straggler, about 1 publisher join in 4 (traced
    // in docs/decisions.md). Browsers nominate such a pair at once.
    let settings = SettingEngineBuilder::new()
        .with_network_types(vec![NetworkType::Udp4, NetworkType::Tcp4])
        .with_prflx_acceptance_min_wait(Some(std::time::Duration::ZERO))
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(config)
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler { transport, tx }))
        .with_setting_engine(settings)
        // The bot's sockets, behind its sleep gate.
        .with_runtime(runtime)
        .with_udp_addrs(
            bind_ips
                .iter()
                .map(|ip| std::net::SocketAddr::new(*ip, 0))
                .collect(),
        )
        .with_tcp_addrs(
            bind_ips
                .iter()
                .map(|ip| std::net::SocketAddr::new(*ip, 0))
                .collect(),
        )
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
    selected_in(&report)
}

/// The selected candidate pair a stats report names (the same report type for the full
/// bot's async connections and the lean bot's sans-IO one).
pub(crate) fn selected_in(report: &RTCStatsReport) -> Option<SelectedCandidate> {
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
        local_address: format!("{}:{}", local.address.as_deref().unwrap_or("?"), local.port),
    })
}
