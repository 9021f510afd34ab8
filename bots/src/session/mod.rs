//! One session of a bot: a signal connection plus its two peer connections, from join
//! (or resume) until something ends it. [`crate::bot`] decides what happens next.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use harness_core::event::{Event, Transport};
use livekit_protocol as proto;
use proto::{signal_request::Message as Req, signal_response::Message as Resp};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use webrtc::peer_connection::{RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription};

use crate::bot::{BotConfig, Command, message_name, reason_name};
use crate::gate::{Gate, GatedRuntime};
use crate::ice::filter_ice_servers;
use crate::media_tasks::{receive_data, receive_track};
use crate::peer::{self, Pc, PeerEvent};
use crate::reconnect::{LeaveAction, Policy, SessionEnd};
use crate::signal::{JoinParams, SignalConnection, SignalError, SignalEvent};
use crate::sink::EventSink;

mod local;
mod suspend;
use local::LocalTrack;

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("{0}")]
    Other(String),
}

impl From<SignalError> for JoinError {
    fn from(e: SignalError) -> Self {
        match e {
            SignalError::Refused { status, body } => JoinError::Refused { status, body },
            other => JoinError::Other(other.to_string()),
        }
    }
}

/// Why a resume did not work.
#[derive(Debug)]
pub enum ResumeError {
    /// Try again after the next delay.
    Retry(String),
    /// The server wants a full rejoin (unknown participant, STATE_MISMATCH).
    Rejoin(String),
    /// No point retrying: the credentials are refused.
    Terminal(String),
}

pub struct Session<'a> {
    cfg: &'a BotConfig,
    sink: &'a EventSink,
    /// The bot's commands.
    cmd: watch::Receiver<Command>,
    /// The bot's network: shut while it sleeps.
    gate: Arc<Gate>,
    /// This session's media tasks follow this: the bot's commands, and `Leave` when the
    /// session shuts down (so they flush their bins before a rejoin replaces them).
    media_cmd: watch::Sender<Command>,
    signal: SignalConnection,
    peer_rx: mpsc::UnboundedReceiver<PeerEvent>,
    subscriber: Pc,
    publisher: Option<Pc>,
    participant_sid: String,
    /// The latest token the server handed out (used to resume, as SDKs do).
    refresh_token: Option<String>,
    /// Candidates that arrived before the remote description they belong to.
    pending: HashMap<Transport, Vec<RTCIceCandidateInit>>,
    has_remote: HashMap<Transport, bool>,
    connected: HashMap<Transport, bool>,
    reported_connected: bool,
    /// What the bot publishes (audio, video), in AddTrackRequest order.
    local: Vec<LocalTrack>,
    /// The publisher's `_reliable` and `_lossy` channels, from the offer until data
    /// sending starts (only when the group sends data).
    data: Vec<(Arc<dyn webrtc::data_channel::DataChannel>, String)>,
    /// The publisher offer went out (a bot that publishes only data offers at once).
    offered: bool,
    published: Vec<proto::TrackPublishedResponse>,
    ping_interval: Duration,
    ping_timeout: Duration,
    last_pong: Instant,
    /// When any remote media last arrived (µs on the run clock; 0: never).
    last_media_us: Arc<AtomicU64>,
    tasks: JoinSet<()>,
}

impl<'a> Session<'a> {
    pub async fn join(
        cfg: &'a BotConfig,
        sink: &'a EventSink,
        cmd: watch::Receiver<Command>,
        gate: Arc<Gate>,
        jwt: &str,
    ) -> Result<Self, JoinError> {
        let bot = &cfg.identity;
        let (signal, join) = signal_join(cfg, sink, jwt).await?;
        let participant_sid = join
            .participant
            .as_ref()
            .map(|p| p.sid.clone())
            .unwrap_or_default();
        let ice_servers = filter_ice_servers(&join.ice_servers, &cfg.allowed_ice_ips, |url| {
            sink.emit(Event::IceServerIgnored {
                bot: bot.clone(),
                url: url.to_owned(),
            })
        });

        let (peer_tx, peer_rx) = mpsc::unbounded_channel();
        let runtime: Arc<dyn webrtc::runtime::Runtime> = GatedRuntime::new(gate.clone());
        let subscriber = peer::build(
            Transport::Subscriber,
            &cfg.bind_ips,
            ice_servers.clone(),
            peer_tx.clone(),
            runtime.clone(),
        )
        .await
        .map_err(|e| JoinError::Other(format!("subscriber peer connection: {e}")))?;
        let publishes = cfg.publish_audio || cfg.video.is_some() || cfg.data_interval.is_some();
        let publisher = if publishes {
            Some(
                peer::build(
                    Transport::Publisher,
                    &cfg.bind_ips,
                    ice_servers,
                    peer_tx,
                    runtime,
                )
                .await
                .map_err(|e| JoinError::Other(format!("publisher peer connection: {e}")))?,
            )
        } else {
            None
        };
        let local = local::announce(cfg, &signal)?;
        let secs = |v: i32, default: u64| {
            Duration::from_secs(u64::try_from(v).ok().filter(|v| *v > 0).unwrap_or(default))
        };
        let (media_cmd, _) = watch::channel(*cmd.borrow());
        Ok(Self {
            cfg,
            sink,
            cmd,
            gate,
            media_cmd,
            signal,
            peer_rx,
            subscriber,
            publisher,
            participant_sid,
            refresh_token: None,
            pending: HashMap::new(),
            has_remote: HashMap::new(),
            connected: HashMap::new(),
            reported_connected: false,
            local,
            data: Vec::new(),
            offered: false,
            published: Vec::new(),
            ping_interval: secs(join.ping_interval, 5),
            ping_timeout: secs(join.ping_timeout, 15),
            last_pong: Instant::now(),
            last_media_us: Arc::new(AtomicU64::new(0)),
            tasks: JoinSet::new(),
        })
    }

    /// Runs until something ends the session.
    pub async fn run(&mut self) -> SessionEnd {
        let mut ping = tokio::time::interval(self.ping_interval);
        self.last_pong = Instant::now();
        let (check_every, media_timeout) = match self.cfg.policy {
            Policy::Reinit {
                check_every,
                media_timeout,
            } => (check_every, Some(media_timeout)),
            _ => (Duration::from_secs(3600), None),
        };
        let mut health = tokio::time::interval(check_every);
        // Only data to publish: no track to wait for before the first offer.
        if self.publisher.is_some()
            && self.local.is_empty()
            && !self.offered
            && let Err(e) = self.offer_publisher().await
        {
            return SessionEnd::PeerFailed(format!("publisher negotiation: {e}"));
        }
        loop {
            tokio::select! {
                _ = health.tick(), if media_timeout.is_some() => {
                    let last = self.last_media_us.load(Ordering::Relaxed);
                    let quiet = self.sink.now_us().saturating_sub(last);
                    if let Some(limit) = media_timeout.filter(|l| last > 0 && quiet > l.as_micros() as u64) {
                        return SessionEnd::PeerFailed(format!("health check: no media for {limit:?}"));
                    }
                }
                ev = self.signal.events.recv() => match ev {
                    Some(SignalEvent::Message(m)) => {
                        if let Some(end) = self.on_signal(*m).await { return end; }
                    }
                    Some(SignalEvent::Closed(reason)) => return SessionEnd::SignalLost(reason),
                    None => return SessionEnd::SignalLost("signal closed".into()),
                },
                Some(ev) = self.peer_rx.recv() => {
                    if let Some(end) = self.on_peer(ev).await { return end; }
                }
                _ = ping.tick() => {
                    if self.last_pong.elapsed() > self.ping_timeout {
                        return SessionEnd::SignalLost(format!("no pong for {:?} (ping timeout)", self.ping_timeout));
                    }
                    self.signal.ping(self.sink.now_us() as i64 / 1000);
                }
                changed = self.cmd.changed() => {
                    let c = if changed.is_err() { Command::Leave } else { *self.cmd.borrow() };
                    if c == Command::Sleep {
                        if let Some(end) = self.sleep().await {
                            return end;
                        }
                        ping.reset();
                        continue;
                    }
                    let _ = self.media_cmd.send(c);
                    if c == Command::Kill {
                        return SessionEnd::Killed;
                    }
                    if c == Command::Leave {
                        self.signal.leave();
                        return SessionEnd::Left;
                    }
                }
            }
        }
    }

    /// Handles one server message; `Some(end)` ends the session.
    async fn on_signal(&mut self, m: Resp) -> Option<SessionEnd> {
        match m {
            Resp::Offer(sd) => {
                if let Err(e) = self.answer_subscriber(sd).await {
                    return Some(SessionEnd::PeerFailed(format!(
                        "subscriber negotiation: {e}"
                    )));
                }
            }
            Resp::Answer(sd) => {
                let publisher = self.publisher.clone()?;
                let desc = match RTCSessionDescription::answer(sd.sdp) {
                    Ok(d) => d,
                    Err(e) => {
                        return Some(SessionEnd::PeerFailed(format!("bad publisher answer: {e}")));
                    }
                };
                if let Err(e) = publisher.set_remote_description(desc).await {
                    return Some(SessionEnd::PeerFailed(format!(
                        "publisher set_remote_description: {e}"
                    )));
                }
                self.remote_set(Transport::Publisher).await;
            }
            Resp::Trickle(t) => {
                let transport = if t.target == proto::SignalTarget::Subscriber as i32 {
                    Transport::Subscriber
                } else {
                    Transport::Publisher
                };
                if let Ok(init) = serde_json::from_str::<RTCIceCandidateInit>(&t.candidate_init) {
                    if let Some(candidate) = candidate_summary(&init.candidate) {
                        self.sink.emit(Event::CandidateReceived {
                            bot: self.cfg.identity.clone(),
                            transport,
                            candidate,
                        });
                    }
                    if self.has_remote.get(&transport).copied().unwrap_or(false) {
                        if let Some(pc) = self.pc(transport) {
                            let _ = pc.add_ice_candidate(init).await;
                        }
                    } else {
                        self.pending.entry(transport).or_default().push(init);
                    }
                }
            }
            Resp::TrackPublished(tp)
                if self
                    .local
                    .iter()
                    .any(|l| l.cid == tp.cid && l.sid.is_none()) =>
            {
                let sid = tp.track.as_ref().map(|t| t.sid.clone()).unwrap_or_default();
                let l = self.local.iter_mut().find(|l| l.cid == tp.cid)?;
                self.sink.emit(Event::TrackPublished {
                    bot: self.cfg.identity.clone(),
                    track: sid.clone(),
                    kind: l.kind.name().into(),
                });
                l.sid = Some(sid);
                self.published.push(tp);
                // One offer once every track is announced, as an SDK's first publish.
                if self.local.iter().any(|l| l.sid.is_none()) {
                    return None;
                }
                if let Err(e) = self.offer_publisher().await {
                    return Some(SessionEnd::PeerFailed(format!(
                        "publisher negotiation: {e}"
                    )));
                }
            }
            Resp::Leave(l) => return Some(kicked(&l)),
            Resp::RefreshToken(t) => self.refresh_token = Some(t),
            Resp::RequestResponse(rr)
                if rr.reason != proto::request_response::Reason::Ok as i32 =>
            {
                let reason = proto::request_response::Reason::try_from(rr.reason)
                    .map_or_else(|_| rr.reason.to_string(), |r| r.as_str_name().to_owned());
                let request = rr.request.as_ref().map_or("request", request_name);
                self.sink.emit(Event::RequestRefused {
                    bot: self.cfg.identity.clone(),
                    request: request.to_owned(),
                    reason,
                    message: rr.message,
                });
            }
            Resp::Pong(_) | Resp::PongResp(_) => self.last_pong = Instant::now(),
            _ => {}
        }
        None
    }

    async fn on_peer(&mut self, ev: PeerEvent) -> Option<SessionEnd> {
        match ev {
            PeerEvent::Candidate(transport, json) => {
                let target = match transport {
                    Transport::Publisher => proto::SignalTarget::Publisher,
                    Transport::Subscriber => proto::SignalTarget::Subscriber,
                };
                self.signal.send(Req::Trickle(proto::TrickleRequest {
                    candidate_init: json,
                    target: target as i32,
                    ..Default::default()
                }));
            }
            PeerEvent::State(transport, state) => {
                self.sink.emit(Event::PeerStateChanged {
                    bot: self.cfg.identity.clone(),
                    transport,
                    state: state.to_string(),
                });
                if state == RTCPeerConnectionState::Failed {
                    return Some(SessionEnd::PeerFailed(format!(
                        "{transport:?} peer connection failed"
                    )));
                }
                let up = state == RTCPeerConnectionState::Connected;
                self.connected.insert(transport, up);
                if up && transport == Transport::Publisher {
                    self.start_media();
                }
                let all_up = self.connected.get(&Transport::Subscriber) == Some(&true)
                    && (self.publisher.is_none()
                        || self.connected.get(&Transport::Publisher) == Some(&true));
                if all_up && !self.reported_connected {
                    self.reported_connected = true;
                    // Stamped now (that is when ICE was up); the selected pair may take a
                    // moment to show in the stats, so it is read in the background.
                    let t_us = self.sink.now_us();
                    let (publisher, subscriber) = (self.publisher.clone(), self.subscriber.clone());
                    let (sink, bot) = (self.sink.clone(), self.cfg.identity.clone());
                    self.tasks.spawn(async move {
                        let publisher = match &publisher {
                            Some(pc) => peer::selected_candidate(pc).await,
                            None => None,
                        };
                        let subscriber = peer::selected_candidate(&subscriber).await;
                        sink.emit_at(
                            t_us,
                            Event::PeersConnected {
                                bot,
                                publisher,
                                subscriber,
                            },
                        );
                    });
                }
            }
            PeerEvent::DataChannel(dc) => {
                self.tasks.spawn(receive_data(
                    dc,
                    self.cfg.identity.clone(),
                    self.sink.clone(),
                    self.media_cmd.subscribe(),
                ));
            }
            PeerEvent::Track(track) => {
                if let Some(q) = self.cfg.video_quality {
                    self.ask_for_layer(&track, q).await;
                }
                self.tasks.spawn(receive_track(
                    track,
                    self.cfg.identity.clone(),
                    self.sink.clone(),
                    self.media_cmd.subscribe(),
                    self.last_media_us.clone(),
                ));
            }
        }
        None
    }

    fn pc(&self, transport: Transport) -> Option<&Pc> {
        match transport {
            Transport::Subscriber => Some(&self.subscriber),
            Transport::Publisher => self.publisher.as_ref(),
        }
    }

    async fn remote_set(&mut self, transport: Transport) {
        self.has_remote.insert(transport, true);
        let queued = self.pending.remove(&transport).unwrap_or_default();
        if let Some(pc) = self.pc(transport) {
            for c in queued {
                let _ = pc.add_ice_candidate(c).await;
            }
        }
    }

    async fn answer_subscriber(
        &mut self,
        sd: proto::SessionDescription,
    ) -> webrtc::error::Result<()> {
        let offer = RTCSessionDescription::offer(sd.sdp)?;
        self.subscriber.set_remote_description(offer).await?;
        self.remote_set(Transport::Subscriber).await;
        let answer = self.subscriber.create_answer(None).await?;
        self.subscriber
            .set_local_description(answer.clone())
            .await?;
        self.signal.send(Req::Answer(proto::SessionDescription {
            r#type: "answer".into(),
            sdp: answer.sdp,
            id: sd.id,
            ..Default::default()
        }));
        Ok(())
    }

    /// Stops media (receivers flush their bins), closes the peer connections and the signal.
    pub async fn shutdown(mut self) {
        let _ = self.media_cmd.send(Command::Leave);
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
        if let Some(pc) = &self.publisher {
            let _ = pc.close().await;
        }
        let _ = self.subscriber.close().await;
        let (tried, failed) = self.gate.take_pair_counts();
        self.sink.emit(Event::IcePairsCounted {
            bot: self.cfg.identity.clone(),
            tried,
            failed,
        });
        self.signal.close(Duration::from_millis(500)).await;
    }
}

/// What a server's LeaveRequest means for the session.
pub(crate) fn kicked(l: &proto::LeaveRequest) -> SessionEnd {
    let action = match proto::leave_request::Action::try_from(l.action) {
        Ok(proto::leave_request::Action::Resume) => LeaveAction::Resume,
        Ok(proto::leave_request::Action::Reconnect) => LeaveAction::Reconnect,
        _ => LeaveAction::Disconnect,
    };
    SessionEnd::Kicked {
        reason: reason_name(l.reason),
        action,
    }
}

/// Opens the signal connection with `jwt` and waits for the JoinResponse (reported as
/// `SignalConnected`): the first step of every join, full or lean.
pub(crate) async fn signal_join(
    cfg: &BotConfig,
    sink: &EventSink,
    jwt: &str,
) -> Result<(SignalConnection, proto::JoinResponse), JoinError> {
    let params = JoinParams {
        auto_subscribe: true,
        resume: None,
    };
    let mut signal =
        SignalConnection::connect(&cfg.signal_url, jwt, &params, cfg.join_timeout).await?;
    let join = match tokio::time::timeout(cfg.join_timeout, signal.events.recv()).await {
        Err(_) => {
            return Err(JoinError::Other(format!(
                "no JoinResponse within {:?}",
                cfg.join_timeout
            )));
        }
        Ok(None) => return Err(JoinError::Other("signal closed before JoinResponse".into())),
        Ok(Some(SignalEvent::Closed(reason))) => return Err(JoinError::Other(reason)),
        Ok(Some(SignalEvent::Message(m))) => match *m {
            Resp::Join(join) => join,
            Resp::Leave(l) => {
                return Err(JoinError::Other(format!(
                    "server sent leave before join: {}",
                    reason_name(l.reason)
                )));
            }
            other => {
                return Err(JoinError::Other(format!(
                    "expected JoinResponse, got {}",
                    message_name(&other)
                )));
            }
        },
    };
    sink.emit(Event::SignalConnected {
        bot: cfg.identity.clone(),
        participant_sid: join
            .participant
            .as_ref()
            .map(|p| p.sid.clone())
            .unwrap_or_default(),
        server_version: join.server_version.clone(),
        node_id: join
            .server_info
            .as_ref()
            .map(|s| s.node_id.clone())
            .unwrap_or_default(),
    });
    Ok((signal, join))
}

/// The request a `RequestResponse` answers, by its signal message name.
fn request_name(r: &proto::request_response::Request) -> &'static str {
    use proto::request_response::Request as R;
    match r {
        R::Trickle(_) => "Trickle",
        R::AddTrack(_) => "AddTrack",
        R::Mute(_) => "Mute",
        R::UpdateMetadata(_) => "UpdateMetadata",
        R::UpdateAudioTrack(_) => "UpdateAudioTrack",
        R::UpdateVideoTrack(_) => "UpdateVideoTrack",
        R::PublishDataTrack(_) => "PublishDataTrack",
        R::UnpublishDataTrack(_) => "UnpublishDataTrack",
    }
}

/// `candidate:1 1 udp 2130706431 172.18.0.2 7882 typ host …` → `udp 172.18.0.2:7882 host`.
pub(crate) fn candidate_summary(sdp: &str) -> Option<String> {
    let f: Vec<&str> = sdp
        .trim_start_matches("candidate:")
        .split_whitespace()
        .collect();
    let typ = f
        .iter()
        .position(|w| *w == "typ")
        .and_then(|i| f.get(i + 1))?;
    Some(format!(
        "{} {}:{} {typ}",
        f.get(2)?.to_lowercase(),
        f.get(4)?,
        f.get(5)?
    ))
}

#[cfg(test)]
mod candidate_tests {
    #[test]
    fn a_trickled_candidate_is_summarized() {
        assert_eq!(
            super::candidate_summary(
                "candidate:3 1 UDP 2130706431 172.18.0.2 7882 typ host generation 0"
            ),
            Some("udp 172.18.0.2:7882 host".to_owned())
        );
        assert_eq!(super::candidate_summary("garbage"), None);
    }
}
