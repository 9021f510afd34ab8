//! One headless participant: join, publish, subscribe, measure, leave — and, when the
//! session breaks, what its [`Policy`] says (resume, rejoin, or stay out).
//!
//! The bot does what a LiveKit client does on the wire (protocol 17 over `/rtc`): the
//! server offers on the subscriber connection and the bot answers; the bot offers on the
//! publisher connection (with `_reliable` and `_lossy` data channels and its audio track,
//! announced first with `AddTrackRequest`); candidates trickle both ways; `ping_req`
//! every `ping_interval`, and silence past `ping_timeout` counts as a lost signal; a
//! `LeaveRequest` on the way out.
//!
//! Everything it observes goes out as events on the run's clock.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use harness_core::event::Event;
use livekit_protocol as proto;
use proto::signal_response::Message as Resp;
use tokio::sync::watch;

use crate::reconnect::{self, Next, Policy, SessionEnd};
use crate::session::{JoinError, ResumeError, Session};
use crate::sink::EventSink;
use crate::token;

/// Everything one bot needs to know. The API secret is here to mint tokens; it is never
/// put into an event or an error.
#[derive(Clone)]
pub struct BotConfig {
    pub identity: String,
    pub group: String,
    pub room: String,
    /// `ws://host:port` of the SFU's signal endpoint.
    pub signal_url: String,
    pub api_key: String,
    pub api_secret: Arc<str>,
    pub token_ttl: Duration,
    /// The bot's clock offset for the tokens it mints, ms (+ ahead of the SFU's clock).
    pub clock_skew_ms: i64,
    pub publish_audio: bool,
    /// The `canPublish` grant of the tokens the harness mints for the bot.
    pub can_publish: bool,
    /// Synthetic VP8 video, if the bot publishes it.
    pub video: Option<harness_core::plan::VideoPlan>,
    /// The simulcast layer to ask for on every video track received; `None`: the SFU's
    /// default.
    pub video_quality: Option<harness_core::plan::VideoQuality>,
    /// How often the bot sends a data message on each of `_reliable` and `_lossy`.
    pub data_interval: Option<Duration>,
    /// The local addresses the bot's media sockets bind to (one each; the first is the
    /// one its network reaches the SFU from, others are e.g. a site's VPN-like address).
    pub bind_ips: Vec<IpAddr>,
    /// ICE servers whose host is not one of these are dropped (LiveKit hands out public
    /// STUN servers by default; a bot of this harness never sends to them).
    pub allowed_ice_ips: Vec<IpAddr>,
    pub join_timeout: Duration,
    pub policy: Policy,
    /// Where the bot's tasks run; `None`: wherever it is spawned. A network site's
    /// runtime has its threads in the site's network namespace, so every socket the bot
    /// opens (signal, ICE UDP and TCP) is the site's.
    pub runtime: Option<tokio::runtime::Handle>,
    /// Run as a lean bot ([`crate::lean`]): receive-only, one task, no reconnection.
    pub lean: bool,
}

impl std::fmt::Debug for BotConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotConfig")
            .field("identity", &self.identity)
            .field("group", &self.group)
            .field("signal_url", &self.signal_url)
            .field("api_secret", &"<redacted>")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// What the runtime tells a bot, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Command {
    /// Join, publish, receive.
    Run,
    /// Laptop sleep: no packets in or out, no timers, until `Run` again (the wake).
    Sleep,
    /// Stop publishing media; keep receiving what is in flight.
    StopMedia,
    /// Close every receive bin, send a LeaveRequest and disconnect.
    Leave,
    /// Vanish without a LeaveRequest (a killed client): the server finds out on its own.
    Kill,
}

impl Command {
    /// The bot is done: no more joins or retries.
    pub fn ends(self) -> bool {
        matches!(self, Command::Leave | Command::Kill)
    }
}

/// Runs one bot until it is told to leave or its policy gives up.
pub async fn run(cfg: BotConfig, sink: EventSink, cmd: watch::Receiver<Command>) {
    run_gated(cfg, sink, cmd, crate::gate::Gate::new()).await
}

/// [`run`], with the bot's sockets behind `gate` (which the caller keeps, to delay them).
pub async fn run_gated(
    cfg: BotConfig,
    sink: EventSink,
    cmd: watch::Receiver<Command>,
    gate: Arc<crate::gate::Gate>,
) {
    let bot = cfg.identity.clone();
    sink.emit(Event::BotJoinStarted {
        bot: bot.clone(),
        group: cfg.group.clone(),
        room: cfg.room.clone(),
    });
    let reason = Bot {
        cfg: &cfg,
        sink: &sink,
        cmd,
        gate,
    }
    .lifecycle()
    .await;
    sink.emit(Event::BotLeft { bot, reason });
}

struct Bot<'a> {
    cfg: &'a BotConfig,
    sink: &'a EventSink,
    cmd: watch::Receiver<Command>,
    /// The bot's network, shared by all its sessions' sockets.
    gate: Arc<crate::gate::Gate>,
}

impl Bot<'_> {
    fn mint(&self) -> Result<String, String> {
        let c = self.cfg;
        token::mint(
            &c.api_key,
            &c.api_secret,
            &c.identity,
            &c.room,
            c.token_ttl,
            c.clock_skew_ms,
            c.can_publish,
        )
        .map_err(|e| e.to_string())
    }

    fn leaving(&self) -> bool {
        self.cmd.borrow().ends()
    }

    /// Waits `d`, or less if the bot is told to leave; `false` when it was.
    async fn pause(&mut self, d: Duration) -> bool {
        if d.is_zero() {
            return !self.leaving();
        }
        let mut cmd = self.cmd.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = async { while cmd.changed().await.is_ok() && !cmd.borrow().ends() {} } => {}
        }
        !self.leaving()
    }

    fn give_up(&self, why: String) -> String {
        self.sink.emit(Event::GaveUp {
            bot: self.cfg.identity.clone(),
            why: why.clone(),
        });
        why
    }

    /// Join, run, and follow the policy until the bot is done; returns why.
    async fn lifecycle(&mut self) -> String {
        let bot = self.cfg.identity.clone();
        // The token the SDK policy reuses; reinit mints a fresh one for every rejoin.
        let mut jwt = match self.mint() {
            Ok(t) => t,
            Err(e) => return self.give_up(e),
        };
        let mut join_attempt: u32 = 0;
        loop {
            if self.leaving() {
                return "left".into();
            }
            let mut session = match Session::join(
                self.cfg,
                self.sink,
                self.cmd.clone(),
                self.gate.clone(),
                &jwt,
            )
            .await
            {
                Ok(s) => s,
                Err(e) => {
                    self.sink.emit(Event::JoinFailed {
                        bot: bot.clone(),
                        error: e.to_string(),
                    });
                    let retry = match (self.cfg.policy, &e) {
                        (Policy::None, _) => None,
                        (Policy::Sdk, JoinError::Refused { status, .. })
                            if reconnect::is_terminal_status(*status) =>
                        {
                            None
                        }
                        (Policy::Sdk, _) => {
                            reconnect::sdk_delay(join_attempt, rand::random::<f64>())
                        }
                        // A reinit bridge tries again at its next health check.
                        (Policy::Reinit { check_every, .. }, _) => Some(check_every),
                    };
                    let Some(delay) = retry else {
                        return self.give_up(format!("join failed: {e}"));
                    };
                    join_attempt += 1;
                    if !self.pause(delay).await {
                        return "left".into();
                    }
                    if matches!(self.cfg.policy, Policy::Reinit { .. }) {
                        jwt = self.mint().unwrap_or(jwt);
                    }
                    self.sink.emit(Event::RejoinStarted {
                        bot: bot.clone(),
                        attempt: join_attempt,
                    });
                    continue;
                }
            };
            join_attempt = 0;
            // Run, resuming in place as long as the policy says so.
            let next = loop {
                let end = session.run().await;
                self.report_end(&end);
                match reconnect::after(self.cfg.policy, &end) {
                    Next::Resume => match self.resume(&mut session, &jwt).await {
                        Ok(()) => continue,
                        Err(next) => break next,
                    },
                    next => break next,
                }
            };
            session.shutdown().await;
            match next {
                Next::GiveUp(why) if why == "left" || why == "killed" => return why,
                Next::GiveUp(why) => return self.give_up(why),
                Next::Resume | Next::Rejoin => {
                    join_attempt += 1;
                    if let Policy::Reinit { .. } = self.cfg.policy {
                        jwt = match self.mint() {
                            Ok(t) => t,
                            Err(e) => return self.give_up(e),
                        };
                    }
                    let delay = match self.cfg.policy {
                        Policy::Sdk => {
                            reconnect::sdk_delay(join_attempt - 1, rand::random::<f64>())
                        }
                        // A reinit bridge notices at its next health check.
                        Policy::Reinit { check_every, .. } => Some(check_every),
                        Policy::None => Some(Duration::ZERO),
                    };
                    let Some(delay) = delay else {
                        return self.give_up("reconnect attempts used up".into());
                    };
                    if !self.pause(delay).await {
                        return "left".into();
                    }
                    self.sink.emit(Event::RejoinStarted {
                        bot: bot.clone(),
                        attempt: join_attempt,
                    });
                }
            }
        }
    }

    fn report_end(&self, end: &SessionEnd) {
        let bot = self.cfg.identity.clone();
        match end {
            SessionEnd::Left | SessionEnd::Killed => {}
            SessionEnd::Kicked { reason, action } => self.sink.emit(Event::Kicked {
                bot,
                reason: reason.clone(),
                action: format!("{action:?}").to_uppercase(),
            }),
            other => self.sink.emit(Event::SignalLost {
                bot,
                reason: reconnect::describe(other),
            }),
        }
    }

    /// SDK-style resume with backoff; `Err(next)` when it did not work out.
    async fn resume(&mut self, session: &mut Session<'_>, jwt: &str) -> Result<(), Next> {
        let bot = self.cfg.identity.clone();
        for attempt in 0..reconnect::SDK_MAX_ATTEMPTS {
            let Some(delay) = reconnect::sdk_delay(attempt, rand::random::<f64>()) else {
                break;
            };
            if !self.pause(delay).await {
                return Err(Next::GiveUp("left".into()));
            }
            self.sink.emit(Event::ResumeStarted {
                bot: bot.clone(),
                attempt: attempt + 1,
            });
            match session.resume(jwt).await {
                Ok(()) => {
                    self.sink.emit(Event::Resumed { bot: bot.clone() });
                    return Ok(());
                }
                Err(ResumeError::Rejoin(why)) => {
                    self.sink.emit(Event::ResumeFailed {
                        bot: bot.clone(),
                        error: why,
                        terminal: false,
                    });
                    return Err(Next::Rejoin);
                }
                Err(ResumeError::Terminal(why)) => {
                    self.sink.emit(Event::ResumeFailed {
                        bot: bot.clone(),
                        error: why.clone(),
                        terminal: true,
                    });
                    return Err(Next::GiveUp(format!("resume refused: {why}")));
                }
                Err(ResumeError::Retry(why)) => {
                    self.sink.emit(Event::ResumeFailed {
                        bot: bot.clone(),
                        error: why,
                        terminal: false,
                    });
                }
            }
        }
        Err(Next::Rejoin)
    }
}

/// LiveKit's name for a DisconnectReason number.
pub fn reason_name(reason: i32) -> String {
    proto::DisconnectReason::try_from(reason)
        .map_or_else(|_| reason.to_string(), |r| r.as_str_name().to_owned())
}

pub fn message_name(m: &Resp) -> &'static str {
    match m {
        Resp::Join(_) => "JoinResponse",
        Resp::Offer(_) => "Offer",
        Resp::Answer(_) => "Answer",
        Resp::Trickle(_) => "Trickle",
        Resp::Update(_) => "ParticipantUpdate",
        Resp::Leave(_) => "LeaveRequest",
        Resp::Reconnect(_) => "ReconnectResponse",
        _ => "another message",
    }
}
