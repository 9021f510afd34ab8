//! The lean bot: a receive-only participant for the many listeners of a capacity run.
//!
//! The full bot ([`crate::bot`]) runs `webrtc`'s async peer connections: a driver task
//! per connection, a reader task per track, channels between them, and the sleep gate
//! under every socket. That is what the fault scenarios need, and it costs about as much
//! CPU per received packet as the SFU spends forwarding it. A listener in a capacity run
//! needs none of it: this bot drives its signal connection and one UDP socket from **one
//! task**, with no WebRTC stack between the socket and the measurement ([`peer`]): an
//! ICE-lite agent answers the SFU's checks ([`stun`]), `rtc-dtls`'s sans-IO endpoint does
//! the DTLS handshake and yields the SRTP keys ([`dtls`]), and every SRTP packet is
//! decrypted and measured in place by the same [`TrackReceiver`] the full bot uses, its
//! SSRC naming the track from the offer ([`sdp`]). Once connected it reads the socket on
//! a tick ([`peer::READ_TICK`]), taking everything queued with one `recvmmsg` instead of
//! waking for every datagram; each packet's arrival is the kernel's receive timestamp,
//! so continuity, gaps, layers and one-way latency stay exact, and the kernel's drop
//! count tells when the bot read too late ([`batch`]).
//!
//! What it leaves out, and the scenario check refuses for a lean group: publishing
//! (audio, video, data), reconnection (it stays out after any disconnect, as
//! `reconnect = "none"`), ICE over TCP or TURN (host UDP only), the sleep and delay
//! faults (they act on the full bot's socket gate), data channels (it accepts the SFU's
//! SCTP section and never answers it) and RTCP (it negotiates no feedback).

use std::time::{Duration, Instant};

use harness_core::event::{Event, Transport};
use livekit_protocol as proto;
use proto::{signal_request::Message as Req, signal_response::Message as Resp};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use tokio::sync::watch;

use crate::bot::{BotConfig, Command};
use crate::reconnect::{self, SessionEnd};
use crate::session::{candidate_summary, kicked, signal_join};
use crate::signal::{SignalConnection, SignalEvent};
use crate::sink::EventSink;

pub mod batch;
mod dtls;
pub mod peer;
mod sdp;
mod stun;
pub use peer::{LeanPeer, PeerNews};

/// Runs one lean bot until it is told to leave or its session ends.
pub async fn run(cfg: BotConfig, sink: EventSink, cmd: watch::Receiver<Command>) {
    let bot = cfg.identity.clone();
    sink.emit(Event::BotJoinStarted {
        bot: bot.clone(),
        group: cfg.group.clone(),
        room: cfg.room.clone(),
    });
    let reason = lifecycle(&cfg, &sink, cmd).await;
    sink.emit(Event::BotLeft { bot, reason });
}

async fn lifecycle(cfg: &BotConfig, sink: &EventSink, cmd: watch::Receiver<Command>) -> String {
    let bot = &cfg.identity;
    let give_up = |why: String| {
        sink.emit(Event::GaveUp {
            bot: bot.clone(),
            why: why.clone(),
        });
        why
    };
    if cmd.borrow().ends() {
        return "left".into();
    }
    let jwt = match crate::token::mint(
        &cfg.api_key,
        &cfg.api_secret,
        bot,
        &cfg.room,
        cfg.token_ttl,
        cfg.clock_skew_ms,
        cfg.can_publish,
    ) {
        Ok(t) => t,
        Err(e) => return give_up(e.to_string()),
    };
    let mut lean = match Lean::join(cfg, sink, cmd, &jwt).await {
        Ok(l) => l,
        Err(e) => {
            sink.emit(Event::JoinFailed {
                bot: bot.clone(),
                error: e.clone(),
            });
            return give_up(format!("join failed: {e}"));
        }
    };
    let end = lean.run().await;
    lean.shutdown().await;
    match end {
        SessionEnd::Left => "left".into(),
        SessionEnd::Killed => "killed".into(),
        SessionEnd::Kicked { reason, action } => {
            sink.emit(Event::Kicked {
                bot: bot.clone(),
                reason: reason.clone(),
                action: format!("{action:?}").to_uppercase(),
            });
            give_up(format!("lean bot stays out: kicked: {reason}"))
        }
        other => {
            let why = reconnect::describe(&other);
            sink.emit(Event::SignalLost {
                bot: bot.clone(),
                reason: why.clone(),
            });
            give_up(format!("lean bot stays out: {why}"))
        }
    }
}

struct Lean<'a> {
    cfg: &'a BotConfig,
    sink: &'a EventSink,
    cmd: watch::Receiver<Command>,
    signal: SignalConnection,
    peer: LeanPeer,
    ping_interval: Duration,
    ping_timeout: Duration,
    last_pong: Instant,
}

impl<'a> Lean<'a> {
    async fn join(
        cfg: &'a BotConfig,
        sink: &'a EventSink,
        cmd: watch::Receiver<Command>,
        jwt: &str,
    ) -> Result<Lean<'a>, String> {
        let (signal, join) = signal_join(cfg, sink, jwt)
            .await
            .map_err(|e| e.to_string())?;
        let ip = *cfg
            .bind_ips
            .first()
            .ok_or_else(|| "no address to bind".to_owned())?;
        let peer = LeanPeer::bind(ip, cfg.identity.clone(), sink.clone()).await?;
        let secs = |v: i32, default: u64| {
            Duration::from_secs(u64::try_from(v).ok().filter(|v| *v > 0).unwrap_or(default))
        };
        Ok(Lean {
            cfg,
            sink,
            cmd,
            signal,
            peer,
            ping_interval: secs(join.ping_interval, 5),
            ping_timeout: secs(join.ping_timeout, 15),
            last_pong: Instant::now(),
        })
    }

    fn bot(&self) -> String {
        self.cfg.identity.clone()
    }

    /// The one loop: the peer (datagrams and its timers), the signal, pings, bins and
    /// commands, until something ends the session.
    async fn run(&mut self) -> SessionEnd {
        let mut ping = tokio::time::interval(self.ping_interval);
        let mut flush = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                biased;
                changed = self.cmd.changed() => {
                    let c = if changed.is_err() { Command::Leave } else { *self.cmd.borrow() };
                    match c {
                        Command::Kill => return SessionEnd::Killed,
                        Command::Leave => {
                            self.signal.leave();
                            return SessionEnd::Left;
                        }
                        // Nothing to stop sending; sleep is refused for lean groups.
                        Command::Run | Command::StopMedia | Command::Sleep => {}
                    }
                }
                ev = self.signal.events.recv() => match ev {
                    Some(SignalEvent::Message(m)) => {
                        if let Some(end) = self.on_signal(*m) { return end; }
                    }
                    Some(SignalEvent::Closed(reason)) => return SessionEnd::SignalLost(reason),
                    None => return SessionEnd::SignalLost("signal closed".into()),
                },
                r = self.peer.next() => {
                    if let Err(e) = r {
                        return SessionEnd::PeerFailed(format!("socket: {e}"));
                    }
                    if let Some(end) = self.on_news() {
                        return end;
                    }
                }
                _ = ping.tick() => {
                    if self.last_pong.elapsed() > self.ping_timeout {
                        return SessionEnd::SignalLost(format!("no pong for {:?} (ping timeout)", self.ping_timeout));
                    }
                    self.signal.ping(self.sink.now_us() as i64 / 1000);
                }
                _ = flush.tick() => self.peer.flush_bins(false),
            }
        }
    }

    /// Reports what the peer did; asks for the group's layer on every video track.
    fn on_news(&mut self) -> Option<SessionEnd> {
        let news: Vec<PeerNews> = self.peer.news().collect();
        for n in news {
            match n {
                PeerNews::State(state) => {
                    self.sink.emit(Event::PeerStateChanged {
                        bot: self.bot(),
                        transport: Transport::Subscriber,
                        state: state.to_string(),
                    });
                    if state == RTCPeerConnectionState::Failed {
                        return Some(SessionEnd::PeerFailed(
                            "Subscriber peer connection failed".into(),
                        ));
                    }
                }
                PeerNews::Connected(subscriber) => self.sink.emit(Event::PeersConnected {
                    bot: self.bot(),
                    publisher: None,
                    subscriber,
                }),
                PeerNews::VideoTrack(track) => {
                    if let Some(q) = self.cfg.video_quality {
                        let (width, height) = q.size();
                        self.signal
                            .send(Req::TrackSetting(proto::UpdateTrackSettings {
                                track_sids: vec![track],
                                quality: crate::camera::proto_quality(q) as i32,
                                width: u32::from(width),
                                height: u32::from(height),
                                ..Default::default()
                            }));
                    }
                }
            }
        }
        None
    }

    fn on_signal(&mut self, m: Resp) -> Option<SessionEnd> {
        match m {
            Resp::Offer(sd) => match self.peer.answer(sd.sdp) {
                Ok((sdp, trickle)) => {
                    // The host candidate is trickled too, as a browser does: LiveKit then
                    // knows the address before the first connectivity check arrives.
                    if let Some(json) = trickle.and_then(|c| serde_json::to_string(&c).ok()) {
                        self.signal.send(Req::Trickle(proto::TrickleRequest {
                            candidate_init: json,
                            target: proto::SignalTarget::Subscriber as i32,
                            ..Default::default()
                        }));
                    }
                    self.signal.send(Req::Answer(proto::SessionDescription {
                        r#type: "answer".into(),
                        sdp,
                        id: sd.id,
                        ..Default::default()
                    }));
                }
                Err(e) => {
                    return Some(SessionEnd::PeerFailed(format!(
                        "subscriber negotiation: {e}"
                    )));
                }
            },
            Resp::Trickle(t) if t.target == proto::SignalTarget::Subscriber as i32 => {
                if let Ok(init) = serde_json::from_str::<RTCIceCandidateInit>(&t.candidate_init) {
                    if let Some(candidate) = candidate_summary(&init.candidate) {
                        self.sink.emit(Event::CandidateReceived {
                            bot: self.bot(),
                            transport: Transport::Subscriber,
                            candidate,
                        });
                    }
                    self.peer.add_remote_candidate(init);
                }
            }
            Resp::Leave(l) => return Some(kicked(&l)),
            Resp::Pong(_) | Resp::PongResp(_) => self.last_pong = Instant::now(),
            _ => {}
        }
        None
    }

    /// Closes every bin, the connection and the signal.
    async fn shutdown(mut self) {
        self.peer.close().await;
        self.signal.close(Duration::from_millis(500)).await;
    }
}
