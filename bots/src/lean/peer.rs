//! The lean bot's receive path, without the signal: one UDP socket that carries an
//! ICE-lite agent ([`super::stun`]), a DTLS client (`rtc-dtls`'s sans-IO endpoint), and
//! an SRTP decrypting context, and a [`TrackReceiver`] per remote track. No RTP stack sits
//! between the socket and the measurement: a datagram is told apart by its first byte
//! (RFC 7983), an SRTP packet is decrypted in place of where it was read, its SSRC names
//! the track (from the offer's `a=ssrc ... msid` lines) and its payload goes to the
//! track's receiver. It sends no RTCP: it negotiates no feedback (no NACK, PLI or TWCC),
//! as a listener that never asks for anything; the SFU's keep-alive checks and their
//! answers keep the path up.
//!
//! [`LeanPeer::next`] waits for whatever the peer needs next (datagrams, the DTLS
//! retransmission timer, its liveness check) and handles it; the LiveKit session
//! ([`super`]) and the receive-path bench drive it the same way.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use harness_core::event::{Event, SelectedCandidate};
use rtc::dtls::config::HandshakeConfig;
use rtc::dtls::endpoint::{Endpoint, EndpointEvent};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::shared::TransportProtocol;
use rtc::srtp::context::Context;
use tokio::net::UdpSocket;
use tokio::time::{Interval, MissedTickBehavior, Sleep};

use super::batch;
use super::dtls::{self, Identity};
use super::sdp::{self, Offer};
use super::stun;
use crate::media_tasks::TrackReceiver;
use crate::sink::EventSink;

/// How often a connected lean peer reads its socket: two audio packet times, so a batch
/// holds about two packets of each track it receives. Reading later costs no accuracy:
/// every datagram carries the kernel's receive time, and that is what the bins record;
/// the peer sends no feedback that a later read would delay. What bounds it is the
/// socket's queue (a tick of 4 Mbit/s video is about 45 datagrams); a queue that
/// overflows is counted ([`batch`]) and makes the run invalid. 100 ms against 40 ms:
/// 4.0 against 5.2 us per packet in the `receive_path` bench.
pub const READ_TICK: Duration = Duration::from_millis(100);
/// The first read tick after `now` on the process's one grid of [`READ_TICK`]s. Every
/// lean peer reads on the same instants, so a runtime thread wakes once per tick for all
/// of them rather than once for each (parking and waking again was a quarter of the
/// receive thread's CPU in the `receive_path` bench when 500 peers' ticks were spread
/// over the 100 ms).
fn next_read_tick(now: Instant) -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| now);
    let tick = READ_TICK.as_nanos();
    let since = now.saturating_duration_since(epoch).as_nanos();
    let ticks = u32::try_from(since / tick + 1).unwrap_or(u32::MAX);
    epoch + READ_TICK * ticks
}

/// Nothing heard from the SFU for this long (its keep-alive checks come every 2 s):
/// `disconnected`, as pion's and the browsers' ICE agents have it.
const DISCONNECTED_AFTER: Duration = Duration::from_secs(5);
/// ... and for this long: `failed`.
const FAILED_AFTER: Duration = Duration::from_secs(30);
/// From the first answer, the longest ICE and DTLS may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The peer's socket: registered with the runtime's reactor until the peer is
/// connected (every ICE and DTLS datagram is handled as it comes), then a plain one that
/// is read only on the tick. A registered socket wakes the runtime's reactor on every
/// datagram even when no task waits for it: with 500 peers that was a third of the
/// receive thread's CPU in the `receive_path` bench (epoll and the context switches).
enum Sock {
    Registered(UdpSocket),
    Plain(std::net::UdpSocket),
}

impl Sock {
    fn source(&self) -> batch::Source<'_> {
        match self {
            Sock::Registered(s) => batch::Source::Registered(s),
            Sock::Plain(s) => batch::Source::Plain(s),
        }
    }
}

/// Resolves when a registered socket has datagrams; never for a plain one.
async fn readable(socket: &Option<Sock>) -> std::io::Result<()> {
    match socket {
        Some(Sock::Registered(s)) => s.readable().await,
        _ => std::future::pending().await,
    }
}

/// Where a packet of one SSRC goes.
struct Route {
    track: String,
    video: bool,
    /// Index in `LeanPeer::tracks`, once its first packet opened it.
    open: Option<usize>,
}

pub struct LeanPeer {
    id: &'static Identity,
    /// `None` only while [`Self::read`] drains it.
    socket: Option<Sock>,
    local_addr: SocketAddr,
    ufrag: String,
    pwd: String,
    /// Answers given so far (the SDP version).
    answers: u64,
    /// Addresses the offer and trickle listed for the SFU.
    remote_candidates: Vec<SocketAddr>,
    /// Built from the first offer: the handshake checks the SFU against its fingerprint.
    dtls_config: Option<Arc<HandshakeConfig>>,
    dtls: Endpoint,
    /// The nominated path: where the SFU's checks came from.
    remote: Option<SocketAddr>,
    srtp: Option<Context>,
    routes: HashMap<u32, Route>,
    tracks: Vec<TrackReceiver>,
    state: RTCPeerConnectionState,
    answered_at: Option<Instant>,
    last_heard: Instant,
    /// The kernel's count of datagrams dropped at this socket, as last reported.
    dropped: u32,
    /// Datagrams to send (STUN answers, DTLS flights).
    out: Vec<(BytesMut, SocketAddr)>,
    news: Vec<PeerNews>,
    timer: Pin<Box<Sleep>>,
    tick: Interval,
    /// Whose packets these are, for the events.
    bot: String,
    sink: EventSink,
}

impl LeanPeer {
    /// A receive-only peer on a UDP socket bound to `ip` (port chosen by the OS).
    pub async fn bind(ip: IpAddr, bot: String, sink: EventSink) -> Result<Self, String> {
        let id = dtls::identity()?;
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|e| format!("bind {ip}: {e}"))?;
        let local_addr = socket.local_addr().map_err(|e| e.to_string())?;
        batch::prepare(&socket).map_err(|e| format!("socket options on {local_addr}: {e}"))?;
        let mut tick = tokio::time::interval_at(next_read_tick(Instant::now()).into(), READ_TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Ok(Self {
            id,
            socket: Some(Sock::Registered(socket)),
            local_addr,
            ufrag: random_token(16),
            pwd: random_token(32),
            answers: 0,
            remote_candidates: Vec::new(),
            dtls_config: None,
            dtls: Endpoint::new(local_addr, TransportProtocol::UDP, None),
            remote: None,
            srtp: None,
            routes: HashMap::new(),
            tracks: Vec::new(),
            state: RTCPeerConnectionState::New,
            answered_at: None,
            last_heard: Instant::now(),
            dropped: 0,
            out: Vec::new(),
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
    ) -> Result<(String, Option<RTCIceCandidateInit>), String> {
        let offer = sdp::parse_offer(&offer_sdp)?;
        if self.dtls_config.is_none() {
            self.dtls_config = Some(dtls::client_config(self.id, &offer.fingerprint)?);
        }
        self.remote_candidates
            .extend(offer.candidates.iter().copied());
        self.route(&offer);
        self.answers += 1;
        let answer = sdp::write_answer(
            &offer,
            &sdp::Local {
                ice_ufrag: &self.ufrag,
                ice_pwd: &self.pwd,
                fingerprint: &self.id.fingerprint,
                candidate: self.local_addr,
                session_id: u64::from(self.local_addr.port()) << 16 | 0x5eed,
                version: self.answers,
            },
        );
        let mut trickle = None;
        if self.answered_at.is_none() {
            self.answered_at = Some(Instant::now());
            self.set_state(RTCPeerConnectionState::Connecting);
            let mut init = host_candidate(self.local_addr)
                .map_err(|e| format!("host candidate {}: {e}", self.local_addr))?;
            init.sdp_mid = Some("0".to_owned());
            init.sdp_mline_index = Some(0);
            trickle = Some(init);
        }
        Ok((answer, trickle))
    }

    /// Every SSRC the offer names, to its track (kept across renegotiations, so a track
    /// keeps its receiver).
    fn route(&mut self, offer: &Offer) {
        for s in offer.sections.iter().filter(|s| s.sends()) {
            let video = s.kind == "video";
            for (ssrc, track) in &s.ssrcs {
                self.routes.entry(*ssrc).or_insert_with(|| Route {
                    track: track.clone(),
                    video,
                    open: None,
                });
            }
        }
    }

    /// A UDP candidate of the remote side (its address, for the pair's type).
    pub fn add_remote_candidate(&mut self, init: RTCIceCandidateInit) {
        let value = init.candidate.trim_start_matches("candidate:");
        self.remote_candidates.extend(sdp::udp_candidate(value));
    }

    /// What happened since the last call.
    pub fn news(&mut self) -> std::vec::Drain<'_, PeerNews> {
        self.news.drain(..)
    }

    /// Sends what the peer has to send, then waits for the next thing it needs
    /// (datagrams, or its timer) and handles it. Cancel-safe: the timer and the tick live
    /// in `self`, and readiness stays with the socket.
    pub async fn next(&mut self) -> std::io::Result<()> {
        let keyed = self.srtp.is_some();
        if keyed
            && let Some(Sock::Registered(_)) = &self.socket
            && let Some(Sock::Registered(s)) = self.socket.take()
        {
            self.socket = Some(Sock::Plain(s.into_std()?));
        }
        self.flush_writes().await;
        let wake: tokio::time::Instant = self.wake_at().into();
        if self.timer.deadline() != wake || self.timer.is_elapsed() {
            self.timer.as_mut().reset(wake);
        }
        tokio::select! {
            biased;
            // Until connected, every datagram at once: ICE and DTLS round trips are what
            // connect latency measures.
            r = readable(&self.socket), if !keyed => r.and_then(|()| self.read()),
            // Connected (keyed): the socket is read on the tick.
            _ = self.tick.tick(), if keyed => {
                self.check_liveness(Instant::now());
                self.read()
            }
            () = &mut self.timer => {
                self.on_timer(Instant::now());
                Ok(())
            }
        }
    }

    /// The next instant the peer must act without a datagram: a DTLS retransmission, or
    /// the end of the time it gives connecting.
    fn wake_at(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        // Keyed: the handshake is over, and its timers with it.
        let dtls = match (self.remote, &self.srtp) {
            (Some(r), None) => self.dtls.poll_timeout(&r),
            _ => None,
        };
        let give_up = match self.state {
            RTCPeerConnectionState::Connecting => self.answered_at.map(|t| t + CONNECT_TIMEOUT),
            _ => None,
        };
        [dtls, give_up].into_iter().flatten().min().unwrap_or(far)
    }

    fn on_timer(&mut self, now: Instant) {
        if let Some(r) = self.remote {
            let _ = self.dtls.handle_timeout(r, now);
            self.take_transmits();
        }
        if self.state == RTCPeerConnectionState::Connecting
            && self.answered_at.is_some_and(|t| now >= t + CONNECT_TIMEOUT)
        {
            self.set_state(RTCPeerConnectionState::Failed);
        }
    }

    /// `disconnected` after [`DISCONNECTED_AFTER`] of silence, `failed` after
    /// [`FAILED_AFTER`], and `connected` again if the SFU is heard before that.
    fn check_liveness(&mut self, now: Instant) {
        let quiet = now.saturating_duration_since(self.last_heard);
        let next = match self.state {
            RTCPeerConnectionState::Connected if quiet > DISCONNECTED_AFTER => {
                RTCPeerConnectionState::Disconnected
            }
            RTCPeerConnectionState::Disconnected if quiet > FAILED_AFTER => {
                RTCPeerConnectionState::Failed
            }
            RTCPeerConnectionState::Disconnected if quiet <= DISCONNECTED_AFTER => {
                RTCPeerConnectionState::Connected
            }
            _ => return,
        };
        self.set_state(next);
    }

    fn set_state(&mut self, state: RTCPeerConnectionState) {
        if self.state != state {
            self.state = state;
            self.news.push(PeerNews::State(state));
        }
    }

    /// Emits the bins that are due (every one when `all`).
    pub fn flush_bins(&mut self, all: bool) {
        for t in &mut self.tracks {
            t.flush(&self.bot, &self.sink, all);
        }
    }

    /// Closes every bin and the connection (a DTLS close_notify to the SFU).
    pub async fn close(&mut self) {
        self.flush_bins(true);
        if let Some(r) = self.remote {
            let _ = self.dtls.stop(Instant::now(), r);
            self.take_transmits();
        }
        self.set_state(RTCPeerConnectionState::Closed);
        self.flush_writes().await;
    }

    async fn flush_writes(&mut self) {
        for (data, to) in std::mem::take(&mut self.out) {
            // A datagram the kernel would not take now is lost, as any UDP send may be.
            let _ = match &self.socket {
                Some(Sock::Registered(s)) => s.send_to(&data, to).await,
                Some(Sock::Plain(s)) => s.send_to(&data, to),
                None => Ok(0),
            };
        }
    }

    fn take_transmits(&mut self) {
        while let Some(t) = self.dtls.poll_transmit() {
            self.out.push((t.message, t.transport.peer_addr));
        }
    }

    /// Everything queued on the socket, each datagram handled (and its media measured)
    /// at the time the kernel received it.
    fn read(&mut self) -> std::io::Result<()> {
        let (now_sys, now, now_us) = (SystemTime::now(), Instant::now(), self.sink.now_us());
        let Some(socket) = self.socket.take() else {
            return Ok(());
        };
        let drained = batch::drain(socket.source(), |d| {
            let ago = d
                .arrived
                .and_then(|a| now_sys.duration_since(a).ok())
                .unwrap_or_default();
            let at_us = now_us.saturating_sub(ago.as_micros() as u64);
            self.datagram(d.data, d.from, now, at_us);
        });
        self.socket = Some(socket);
        let drained = drained?;
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

    /// One datagram, told apart by its first byte (RFC 7983): STUN, DTLS or SRTP/SRTCP.
    /// What the peer cannot use (a check for someone else, an unknown SSRC, a packet
    /// that does not decrypt) is dropped, as a browser drops it.
    fn datagram(&mut self, data: &[u8], from: SocketAddr, now: Instant, at_us: u64) {
        match data.first() {
            Some(0..=3) => self.stun(data, from, now),
            Some(20..=63) => self.dtls_record(data, from, now),
            Some(128..=191) if Some(from) == self.remote => {
                self.last_heard = now;
                // RTCP (RFC 5761: payload types 64-95 with the marker bit): sender
                // reports, which a listener that reports nothing does not need.
                if data.len() >= 12 && !(192..=223).contains(&data[1]) {
                    self.rtp(data, at_us);
                }
            }
            _ => {}
        }
    }

    fn stun(&mut self, data: &[u8], from: SocketAddr, now: Instant) {
        let Some(a) = stun::answer(data, from, &self.ufrag, &self.pwd, self.id.crypto.crypto())
        else {
            return;
        };
        self.out.push((BytesMut::from(&a.response[..]), from));
        self.last_heard = now;
        // The SFU nominated this path: start the handshake on it, as the DTLS client.
        if a.nominated
            && self.remote.is_none()
            && let Some(config) = self.dtls_config.clone()
        {
            self.remote = Some(from);
            if self.dtls.connect(now, from, config, None).is_ok() {
                self.take_transmits();
            }
        }
    }

    fn dtls_record(&mut self, data: &[u8], from: SocketAddr, now: Instant) {
        if Some(from) != self.remote {
            return;
        }
        self.last_heard = now;
        let events = self
            .dtls
            .read(now, from, None, BytesMut::from(data))
            .unwrap_or_default();
        self.take_transmits();
        for e in events {
            // Application data would be the SFU's SCTP (data channels): the lean bot
            // measures media only, and lets it go unanswered.
            if let EndpointEvent::HandshakeComplete = e {
                self.handshake_complete(from);
            }
        }
    }

    fn handshake_complete(&mut self, from: SocketAddr) {
        let keyed = self
            .dtls
            .get_connection_state(from)
            .ok_or_else(|| "no dtls state".to_owned())
            .and_then(|state| dtls::remote_srtp(state, self.id));
        match keyed {
            Ok(ctx) => {
                self.srtp = Some(ctx);
                self.set_state(RTCPeerConnectionState::Connected);
                let remote_type = if self.remote_candidates.contains(&from) {
                    "host"
                } else {
                    "prflx"
                };
                self.news.push(PeerNews::Connected(Some(SelectedCandidate {
                    protocol: "udp".into(),
                    local_type: "host".into(),
                    remote_type: remote_type.into(),
                    remote_address: from.to_string(),
                    local_address: self.local_addr.to_string(),
                })));
            }
            Err(e) => {
                self.sink.emit(Event::PeerStateChanged {
                    bot: self.bot.clone(),
                    transport: harness_core::event::Transport::Subscriber,
                    state: format!("failed: {e}"),
                });
                self.set_state(RTCPeerConnectionState::Failed);
            }
        }
    }

    /// One SRTP packet: decrypted, and its payload measured by its track's receiver.
    fn rtp(&mut self, data: &[u8], at_us: u64) {
        let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        let Some(route) = self.routes.get_mut(&ssrc) else {
            return;
        };
        let Some(Ok(plain)) = self.srtp.as_mut().map(|c| c.decrypt_rtp(data)) else {
            return;
        };
        let Some(payload) = rtp_payload(&plain) else {
            return;
        };
        let i = match route.open {
            Some(i) => i,
            None => {
                // A track's first packet opens it, as a browser's ontrack.
                let kind = if route.video { "video" } else { "audio" };
                self.tracks
                    .push(TrackReceiver::new(route.track.clone(), kind.to_owned()));
                if route.video {
                    self.news.push(PeerNews::VideoTrack(route.track.clone()));
                }
                route.open = Some(self.tracks.len() - 1);
                self.tracks.len() - 1
            }
        };
        self.tracks[i].packet(payload, at_us, &self.bot, &self.sink);
    }
}

/// The payload of a decrypted RTP packet: past the CSRCs and the header extension,
/// before the padding.
fn rtp_payload(p: &[u8]) -> Option<&[u8]> {
    let first = *p.first()?;
    let mut start = 12 + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let words = u16::from_be_bytes([*p.get(start + 2)?, *p.get(start + 3)?]);
        start += 4 + 4 * usize::from(words);
    }
    let mut end = p.len();
    if first & 0x20 != 0 {
        end = end.checked_sub(usize::from(*p.last()?))?;
    }
    p.get(start..end)
}

/// `len` characters of `[a-zA-Z0-9]`, for the ICE credentials.
fn random_token(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_skips_csrcs_and_extension_and_drops_padding() {
        // Plain header: 12 bytes.
        let mut p = vec![0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(b"opus");
        assert_eq!(rtp_payload(&p), Some(&b"opus"[..]));
        // One CSRC, a one-word extension, two bytes of padding.
        let mut q = vec![0xb1, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(&[0, 0, 0, 9]); // CSRC
        q.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension
        q.extend_from_slice(b"vp8");
        q.extend_from_slice(&[0, 2]); // padding
        assert_eq!(rtp_payload(&q), Some(&b"vp8"[..]));
        // Truncated: no payload rather than a panic.
        assert_eq!(rtp_payload(&q[..14]), None);
        assert_eq!(rtp_payload(&[]), None);
    }
}
