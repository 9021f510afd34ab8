//! The bot's own LiveKit signal client: protobuf over a WebSocket on `/rtc`.
//!
//! Owning it (rather than an SDK's) is what lets the harness control resume and reconnect
//! exactly and see every message. One reader task turns frames into
//! [`SignalEvent`]s; one writer task drains the request queue. Dropping the
//! [`SignalConnection`] closes both.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use livekit_protocol::{SignalRequest, SignalResponse, signal_request, signal_response};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::token::redact;

/// LiveKit's signal protocol version the bots speak.
pub const PROTOCOL_VERSION: u32 = 17;

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// The server answered the upgrade with an HTTP error (401 expired token, 404 no
    /// room, ...). `body` has the token redacted.
    #[error("signal upgrade refused: HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("signal connection to {url} failed: {reason}")]
    Connect { url: String, reason: String },
    #[error("signal connection timed out after {0:?}")]
    Timeout(Duration),
}

/// What the reader task reports.
#[derive(Debug)]
pub enum SignalEvent {
    Message(Box<signal_response::Message>),
    /// The socket closed or failed; the reason is safe to show.
    Closed(String),
}

/// Query parameters of a join or a resume.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub auto_subscribe: bool,
    /// `Some((participant sid, ReconnectReason))` for a resume (`reconnect=1&sid=…`).
    pub resume: Option<(String, i32)>,
}

pub struct SignalConnection {
    requests: mpsc::UnboundedSender<signal_request::Message>,
    pub events: mpsc::UnboundedReceiver<SignalEvent>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for SignalConnection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// The URL of a join, without the token (safe to show) and with it (to connect).
pub fn join_url(base: &str, token: &str, params: &JoinParams) -> String {
    let mut url = format!(
        "{}/rtc?access_token={}&auto_subscribe={}&sdk=rust&version={}&protocol={}&adaptive_stream=0",
        base.trim_end_matches('/'),
        token,
        u8::from(params.auto_subscribe),
        env!("CARGO_PKG_VERSION"),
        PROTOCOL_VERSION,
    );
    if let Some((sid, reason)) = &params.resume {
        url.push_str(&format!("&reconnect=1&sid={sid}&reconnect_reason={reason}"));
    }
    url
}

impl SignalConnection {
    /// Opens `/rtc` on `base` (e.g. `ws://172.18.0.2:7880`) with `token`.
    pub async fn connect(
        base: &str,
        token: &str,
        params: &JoinParams,
        timeout: Duration,
    ) -> Result<Self, SignalError> {
        let url = join_url(base, token, params);
        let connecting = tokio_tungstenite::connect_async(url.as_str());
        let (ws, _response) = match tokio::time::timeout(timeout, connecting).await {
            Err(_) => return Err(SignalError::Timeout(timeout)),
            Ok(Err(tungstenite::Error::Http(resp))) => {
                let body = resp
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                return Err(SignalError::Refused {
                    status: resp.status().as_u16(),
                    body: redact(body.trim(), token),
                });
            }
            Ok(Err(e)) => {
                return Err(SignalError::Connect {
                    url: base.to_owned(),
                    reason: redact(&e.to_string(), token),
                });
            }
            Ok(Ok(pair)) => pair,
        };
        let (mut sink, mut stream) = ws.split();
        let (req_tx, mut req_rx) = mpsc::unbounded_channel::<signal_request::Message>();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();

        let writer = tokio::spawn(async move {
            while let Some(message) = req_rx.recv().await {
                let bytes = SignalRequest {
                    message: Some(message),
                }
                .encode_to_vec();
                if sink.send(Message::Binary(bytes.into())).await.is_err() {
                    break;
                }
            }
            let _ = sink.send(Message::Close(None)).await;
        });
        let reader = tokio::spawn(async move {
            let reason = loop {
                match stream.next().await {
                    Some(Ok(Message::Binary(bytes))) => {
                        match SignalResponse::decode(bytes.as_ref()) {
                            Ok(SignalResponse { message: Some(m) }) => {
                                if ev_tx.send(SignalEvent::Message(Box::new(m))).is_err() {
                                    return;
                                }
                            }
                            Ok(SignalResponse { message: None }) => {}
                            Err(e) => break format!("undecodable signal message: {e}"),
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        break frame.map_or("closed by server".to_owned(), |f| {
                            format!("closed by server: {} {}", f.code, f.reason)
                        });
                    }
                    Some(Ok(_)) => {} // ping/pong/text: tungstenite answers pings itself
                    Some(Err(e)) => break format!("signal socket error: {e}"),
                    None => break "signal socket ended".to_owned(),
                }
            };
            let _ = ev_tx.send(SignalEvent::Closed(reason));
        });
        Ok(Self {
            requests: req_tx,
            events: ev_rx,
            reader,
            writer,
        })
    }

    /// Queues a request; `false` when the writer is gone (socket closed).
    /// Both pings a client sends (the old `ping` and `ping_req`), stamped `now_ms`.
    pub fn ping(&self, now_ms: i64) {
        self.send(signal_request::Message::Ping(now_ms));
        self.send(signal_request::Message::PingReq(livekit_protocol::Ping {
            timestamp: now_ms,
            rtt: 0,
        }));
    }

    /// A client's own goodbye: LeaveRequest, client initiated, no reconnect.
    pub fn leave(&self) {
        self.send(signal_request::Message::Leave(
            livekit_protocol::LeaveRequest {
                can_reconnect: false,
                reason: livekit_protocol::DisconnectReason::ClientInitiated as i32,
                action: livekit_protocol::leave_request::Action::Disconnect as i32,
                ..Default::default()
            },
        ));
    }

    pub fn send(&self, message: signal_request::Message) -> bool {
        self.requests.send(message).is_ok()
    }

    /// Stops writing after the queued requests (a Leave, typically) and lets the writer
    /// close the socket, waiting at most `grace`.
    pub async fn close(mut self, grace: Duration) {
        let (tx, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.requests, tx));
        let _ = tokio::time::timeout(grace, &mut self.writer).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_url_has_protocol_and_flags() {
        let url = join_url(
            "ws://10.0.0.1:7880/",
            "TOK",
            &JoinParams {
                auto_subscribe: true,
                resume: None,
            },
        );
        assert!(
            url.starts_with("ws://10.0.0.1:7880/rtc?access_token=TOK&auto_subscribe=1&sdk=rust"),
            "{url}"
        );
        assert!(url.contains("&protocol=17"));
        assert!(!url.contains("reconnect"));
        let resume = JoinParams {
            auto_subscribe: true,
            resume: Some(("PA_x".into(), 1)),
        };
        assert!(
            join_url("ws://h:1", "T", &resume)
                .ends_with("&reconnect=1&sid=PA_x&reconnect_reason=1")
        );
    }
}
