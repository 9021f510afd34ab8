//! The lean bot's receive path, without the signal: one sans-IO `rtc` peer connection,
//! one UDP socket, and a [`TrackReceiver`] per remote track. [`LeanPeer::next`] waits
//! for whatever the connection needs next (datagrams, its own timers) and handles it;
//! the LiveKit session ([`super`]) and the receive-path bench drive it the same way.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use harness_core::event::{Event, SelectedCandidate};
use rtc::interceptor::Registry;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::statistics::StatsSelector;
use tokio::net::UdpSocket;
use tokio::time::{Interval, MissedTickBehavior, Sleep};

use super::batch;
use crate::media_tasks::TrackReceiver;
use crate::sink::EventSink;

/// How often a connected lean peer reads its socket: two audio packet times, so a batch
/// holds about two packets of each track it receives. Reading later costs no accuracy
/// (every datagram carries the kernel's receive time, for the bins and for the
/// connection's feedback); it delays only the feedback the peer sends (receiver reports,
/// TWCC, NACK) by at most this. 40 ms against 20 ms: 11.3 against 13.9 us per packet in
/// the `receive_path` bench.
pub const READ_TICK: Duration = Duration::from_millis(40);

/// What the connection did that its owner may act on.
#[derive(Debug)]
pub enum PeerNews {
    /// The connection's state changed (`connected`, `failed`, ...).
    State(RTCPeerConnectionState),
    /// First `connected`: the pair it settled on.
    Connected(Option<SelectedCandidate>),
    /// A remote video track opened (its track id).
    VideoTrack(String),
}

pub struct LeanPeer {
    pc: RTCPeerConnection,
    socket: Arc<UdpSocket>,
    local_addr: SocketAddr,
    /// The host candidate, until the first answer adds it.
    candidate: Option<RTCIceCandidateInit>,
    /// Remote candidates that came before the first offer.
    pending: Vec<RTCIceCandidateInit>,
    tracks: HashMap<String, TrackReceiver>,
    /// Connected: the socket is read on [`READ_TICK`] rather than as datagrams come.
    batched: bool,
    connected_once: bool,
    /// The kernel's count of datagrams dropped at this socket, as last reported.
    dropped: u32,
    news: Vec<PeerNews>,
    timer: Pin<Box<Sleep>>,
    tick: Interval,
    /// Whose packets these are, for the events.
    bot: String,
    sink: EventSink,
}

impl LeanPeer {
    /// A receive-only connection on a UDP socket bound to `ip` (port chosen by the OS).
    pub async fn bind(ip: IpAddr, bot: String, sink: EventSink) -> Result<Self, String> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|e| format!("bind {ip}: {e}"))?;
        let local_addr = socket.local_addr().map_err(|e| e.to_string())?;
        batch::prepare(&socket).map_err(|e| format!("socket options on {local_addr}: {e}"))?;
        let pc = build_pc().map_err(|e| format!("subscriber peer connection: {e}"))?;
        let candidate =
            host_candidate(local_addr).map_err(|e| format!("host candidate {local_addr}: {e}"))?;
        let mut tick = tokio::time::interval(READ_TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(Self {
            pc,
            socket: Arc::new(socket),
            local_addr,
            candidate: Some(candidate),
            pending: Vec::new(),
            tracks: HashMap::new(),
            batched: false,
            connected_once: false,
            dropped: 0,
            news: Vec::new(),
            timer: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
            tick,
            bot,
            sink,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Answers an offer (the first and every renegotiation); with the first, also the
    /// host candidate to trickle (`sdpMid` 0: LiveKit matches candidates to the first,
    /// bundled, m-section).
    pub fn answer(
        &mut self,
        offer_sdp: String,
    ) -> rtc::shared::error::Result<(String, Option<RTCIceCandidateInit>)> {
        let now = Instant::now();
        self.pc
            .set_remote_description(now, RTCSessionDescription::offer(offer_sdp)?)?;
        for c in std::mem::take(&mut self.pending) {
            let _ = self.pc.add_remote_candidate(c);
        }
        let mut trickle = None;
        if let Some(c) = self.candidate.take() {
            self.pc.add_local_candidate(c.clone())?;
            let mut init = c;
            init.sdp_mid = Some("0".to_owned());
            init.sdp_mline_index = Some(0);
            trickle = Some(init);
        }
        let answer = self.pc.create_answer(None)?;
        self.pc.set_local_description(now, answer.clone())?;
        Ok((answer.sdp, trickle))
    }

    /// A candidate of the remote side (kept until the first offer is set).
    pub fn add_remote_candidate(&mut self, init: RTCIceCandidateInit) {
        if self.pc.remote_description().is_some() {
            let _ = self.pc.add_remote_candidate(init);
        } else {
            self.pending.push(init);
        }
    }

    /// What happened since the last call.
    pub fn news(&mut self) -> std::vec::Drain<'_, PeerNews> {
        self.news.drain(..)
    }

    /// Sends what the connection has to send, then waits for the next thing it needs
    /// (datagrams, or one of its timers) and handles it. Cancel-safe: the timer and the
    /// tick live in `self`, and readiness stays with the socket.
    pub async fn next(&mut self) -> std::io::Result<()> {
        self.flush_writes().await;
        self.settle(self.sink.now_us());
        let wake: tokio::time::Instant = self
            .pc
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
            .into();
        if self.timer.deadline() != wake || self.timer.is_elapsed() {
            self.timer.as_mut().reset(wake);
        }
        tokio::select! {
            biased;
            // Until connected, every datagram at once: ICE and DTLS round trips are what
            // connect latency measures.
            r = self.socket.readable(), if !self.batched => r.and_then(|()| self.read()),
            _ = self.tick.tick(), if self.batched => self.read(),
            () = &mut self.timer => {
                let _ = self.pc.handle_timeout(Instant::now());
                Ok(())
            }
        }
    }

    /// Emits the bins that are due (every one when `all`).
    pub fn flush_bins(&mut self, all: bool) {
        for t in self.tracks.values_mut() {
            t.flush(&self.bot, &self.sink, all);
        }
    }

    /// Closes every bin and the connection (sending what closing sends).
    pub async fn close(&mut self) {
        self.flush_bins(true);
        let _ = self.pc.close();
        self.flush_writes().await;
    }

    async fn flush_writes(&mut self) {
        while let Some(out) = self.pc.poll_write() {
            let _ = self
                .socket
                .send_to(&out.message, out.transport.peer_addr)
                .await;
        }
    }

    /// Everything queued on the socket, each datagram handled (and its media measured)
    /// at the time the kernel received it.
    fn read(&mut self) -> std::io::Result<()> {
        let (now_sys, now, now_us) = (SystemTime::now(), Instant::now(), self.sink.now_us());
        let socket = Arc::clone(&self.socket);
        let drained = batch::drain(&socket, |d| {
            // How long ago the kernel received it: the connection (receiver reports'
            // jitter, TWCC feedback's arrival times) and the bins both see that time.
            let ago = d
                .arrived
                .and_then(|a| now_sys.duration_since(a).ok())
                .unwrap_or_default();
            let at_us = now_us.saturating_sub(ago.as_micros() as u64);
            let arrived = now.checked_sub(ago).unwrap_or(now);
            // A datagram the connection cannot use (a stray STUN retransmit, a packet
            // for an unknown SSRC) is dropped, as a browser drops it.
            let _ = self.pc.handle_read(TaggedBytesMut {
                now: arrived,
                transport: TransportContext {
                    local_addr: self.local_addr,
                    peer_addr: d.from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: BytesMut::from(d.data),
            });
            self.settle(at_us);
        })?;
        if let Some(total) = drained.dropped_total
            && total > self.dropped
        {
            self.sink.emit(Event::ReceiveDropped {
                bot: self.bot.clone(),
                dropped: u64::from(total - self.dropped),
            });
            self.dropped = total;
        }
        Ok(())
    }

    /// The connection's events (a track's first packet opens it), then its media,
    /// stamped `at_us`.
    fn settle(&mut self, at_us: u64) {
        while let Some(ev) = self.pc.poll_event() {
            self.on_event(ev);
        }
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            if let RTCMessage::RtpPacket(track_id, pkt) = message
                && let Some(t) = self.tracks.get_mut(&track_id)
            {
                t.packet(&pkt.payload, at_us, &self.bot, &self.sink);
            }
        }
    }

    fn on_event(&mut self, ev: RTCPeerConnectionEvent) {
        match ev {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                self.news.push(PeerNews::State(state));
                if state == RTCPeerConnectionState::Connected && !self.connected_once {
                    self.connected_once = true;
                    self.batched = true;
                    let report = self.pc.get_stats(Instant::now(), StatsSelector::None);
                    self.news
                        .push(PeerNews::Connected(crate::peer::selected_in(&report)));
                }
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                let video = self
                    .pc
                    .rtp_receiver(init.receiver_id)
                    .is_some_and(|r| r.track().kind() == RtpCodecKind::Video);
                if video {
                    self.news.push(PeerNews::VideoTrack(init.track_id.clone()));
                }
                let kind = if video { "video" } else { "audio" };
                self.tracks
                    .entry(init.track_id.clone())
                    .or_insert_with(|| TrackReceiver::new(init.track_id, kind.to_owned()));
            }
            _ => {}
        }
    }
}

/// A receive-only peer connection with the default codecs and interceptors (receiver
/// reports, NACK, TWCC feedback), as the full bot's subscriber has.
fn build_pc() -> rtc::shared::error::Result<RTCPeerConnection> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_default_codecs()?;
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
    RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .build(Instant::now())
}

/// The peer's one ICE candidate: its socket's address.
pub fn host_candidate(addr: SocketAddr) -> rtc::shared::error::Result<RTCIceCandidateInit> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    RTCIceCandidate::from(&candidate).to_json()
}
