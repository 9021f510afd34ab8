//! A session that pauses and comes back: the laptop sleeping (nothing in or out until
//! it wakes), and a resume over a new signal connection with the peer connections kept.

use std::time::Instant;

use harness_core::event::Transport;
use livekit_protocol as proto;
use proto::{signal_request::Message as Req, signal_response::Message as Resp};

use super::{ResumeError, Session};
use crate::bot::{Command, message_name, reason_name};
use crate::reconnect::SessionEnd;
use crate::signal::{JoinParams, SignalConnection, SignalError, SignalEvent};

impl Session<'_> {
    /// The laptop lid is shut: nothing in or out, no timers, no signal handling, until the
    /// harness wakes the bot (or ends it). Returns how the session ends, if it does.
    ///
    /// On waking, a sleep longer than the ping timeout is a lost signal at once (an SDK's
    /// ping timer fires first thing; the server has long given up on the session). After
    /// a shorter nap the session goes on: the timers resume where they stopped and what
    /// the server sent meanwhile is read now, as TCP delivers it late.
    pub(super) async fn sleep(&mut self) -> Option<SessionEnd> {
        let started = Instant::now();
        self.gate.sleep();
        let _ = self.media_cmd.send(Command::Sleep);
        let woke_to = loop {
            if self.cmd.changed().await.is_err() {
                break Command::Leave;
            }
            match *self.cmd.borrow() {
                // The run ends while the bot sleeps: it stays asleep.
                Command::Sleep | Command::StopMedia => {}
                other => break other,
            }
        };
        let _ = self.media_cmd.send(woke_to);
        match woke_to {
            // Ended in its sleep: no LeaveRequest goes out; the gate stays shut, so
            // closing the peer connections sends nothing either.
            Command::Leave => return Some(SessionEnd::Left),
            Command::Kill => return Some(SessionEnd::Killed),
            _ => {}
        }
        self.gate.wake();
        let slept = started.elapsed();
        if slept > self.ping_timeout {
            return Some(SessionEnd::SignalLost(format!(
                "woke after {:.1} s asleep: no pong for longer than the ping timeout ({:?})",
                slept.as_secs_f64(),
                self.ping_timeout
            )));
        }
        self.last_pong += slept;
        None
    }

    /// Resumes this session over a new signal connection (`reconnect=1&sid=…`): the peer
    /// connections stay, the publisher restarts ICE, the server re-offers the subscriber.
    pub async fn resume(&mut self, jwt: &str) -> Result<(), ResumeError> {
        let token = self.refresh_token.clone().unwrap_or_else(|| jwt.to_owned());
        let params = JoinParams {
            auto_subscribe: true,
            resume: Some((
                self.participant_sid.clone(),
                proto::ReconnectReason::RrSignalDisconnected as i32,
            )),
        };
        let mut signal = match SignalConnection::connect(
            &self.cfg.signal_url,
            &token,
            &params,
            self.cfg.join_timeout,
        )
        .await
        {
            Ok(s) => s,
            Err(SignalError::Refused { status, body })
                if crate::reconnect::is_terminal_status(status) =>
            {
                return Err(ResumeError::Terminal(format!("HTTP {status}: {body}")));
            }
            Err(e) => return Err(ResumeError::Retry(e.to_string())),
        };
        match tokio::time::timeout(self.cfg.join_timeout, signal.events.recv()).await {
            Err(_) => return Err(ResumeError::Retry("no ReconnectResponse in time".into())),
            Ok(None) | Ok(Some(SignalEvent::Closed(_))) => {
                return Err(ResumeError::Retry("signal closed during resume".into()));
            }
            Ok(Some(SignalEvent::Message(m))) => match *m {
                Resp::Reconnect(_) => {}
                Resp::Leave(l) => {
                    return Err(ResumeError::Rejoin(format!(
                        "server sent leave: {}",
                        reason_name(l.reason)
                    )));
                }
                other => {
                    return Err(ResumeError::Retry(format!(
                        "expected ReconnectResponse, got {}",
                        message_name(&other)
                    )));
                }
            },
        }
        self.signal = signal;
        self.last_pong = Instant::now();
        let answer = self
            .subscriber
            .local_description()
            .await
            .map(|d| proto::SessionDescription {
                r#type: "answer".into(),
                sdp: d.sdp,
                ..Default::default()
            });
        self.signal.send(Req::SyncState(proto::SyncState {
            answer,
            subscription: Some(proto::UpdateSubscription {
                subscribe: true,
                ..Default::default()
            }),
            publish_tracks: self.published.clone(),
            ..Default::default()
        }));
        // SDKs ICE-restart the publisher on every resume; a browser keeps media on the old
        // pair meanwhile, but webrtc-rs rebinds its sockets on restart (a ~1 s gap the
        // SFU is not to blame for). So restart only when the publisher is not connected.
        let publisher_up = self.connected.get(&Transport::Publisher) == Some(&true);
        if let Some(pc) = self.publisher.clone().filter(|_| !publisher_up)
            && pc.restart_ice().await.is_ok()
            && let Ok(offer) = pc.create_offer(None).await
            && pc.set_local_description(offer.clone()).await.is_ok()
        {
            self.signal.send(Req::Offer(proto::SessionDescription {
                r#type: "offer".into(),
                sdp: offer.sdp,
                ..Default::default()
            }));
        }
        Ok(())
    }
}
