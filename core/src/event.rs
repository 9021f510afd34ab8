//! The run's event stream: everything observable, on one clock, in one order.
//!
//! Bots, provisioning and fault guards emit [`Event`]s; the runtime stamps each with the
//! microseconds since the run's epoch ([`EventRecord::t_us`]) and appends it to
//! `events.jsonl` as it goes, so a run that dies still leaves its record. Metrics and
//! reports only ever read this stream ([`crate::measure`]), which is why `sfu-harness
//! report DIR` can rebuild every report from the file alone.
//!
//! Media is summarised, not logged per packet: a publisher emits one [`Event::MediaSent`]
//! and a subscriber one [`Event::MediaReceived`] per track and per *send-time bin* of
//! [`BIN_US`]. Bins are keyed by the send time the publisher embedded in the payload,
//! so a late packet still lands in the bin it was sent in and continuity is an exact
//! ratio of counts.
//!
//! Events are in the past tense (`BotJoined`, not `JoinBot`). No event carries a secret:
//! tokens and API secrets never enter this type.

use serde::{Deserialize, Serialize};

/// Length of a media bin, in microseconds of publisher send time.
pub const BIN_US: u64 = 1_000_000;

/// A packet received later than this after its send time counts as lost: real-time media
/// that late is useless to a listener, and bins must close for continuity to be computed.
pub const LATE_AFTER_US: u64 = 2_000_000;

/// An inter-arrival gap longer than this is reported as a [`Event::MediaGap`] (a freeze
/// a listener notices; also how recovery finds when media came back).
pub const GAP_EVENT_US: u64 = 200_000;

/// Period of the harness's event-loop probe ([`Event::EventLoopChecked`]).
pub const LOOP_TICK_US: u64 = 10_000;

/// One line of `events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Microseconds since the run's epoch (the instant the run started).
    pub t_us: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// The kind of a peer connection, as LiveKit names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    Publisher,
    Subscriber,
}

/// The candidate pair ICE settled on, as the bot's stats report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct SelectedCandidate {
    /// `udp` or `tcp`.
    pub protocol: String,
    /// Local candidate type: `host`, `srflx`, `prflx` or `relay`.
    pub local_type: String,
    /// Remote candidate type.
    pub remote_type: String,
    /// Remote address:port (the SFU's candidate the bot reached).
    pub remote_address: String,
    /// Local address:port (the bot's own side; a site's bots show the site's address).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub local_address: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    /// The run began; `t_us` 0 is this instant.
    RunStarted {
        scenario: String,
        run_id: String,
        /// Bots the plan holds.
        bots: u32,
        /// Planned measured duration, in microseconds.
        duration_us: u64,
        /// CPUs of the machine the harness (and, started by it, the SFU) runs on: what
        /// a capacity search's SFU-CPU limit is measured against. 0: unknown.
        #[serde(default, skip_serializing_if = "is_zero")]
        host_cores: u32,
    },
    /// An SFU node answered its health check.
    SfuStarted {
        node: String,
        image: String,
        /// Signal URL bots use (no credentials).
        url: String,
        /// How long from container create to a 200 on `GET /`, in microseconds.
        ready_us: u64,
        /// LiveKit's node id (`ND_…`, from its start-up log): what `SignalConnected`'s
        /// `node_id` names when this node hosts the room. Empty if not found.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        node_id: String,
    },
    /// The bot started joining (opened its signal connection). `room` is the LiveKit
    /// room it joins: media is only expected between bots of one room.
    BotJoinStarted {
        bot: String,
        group: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        room: String,
    },
    /// JoinResponse received: the signal connection is up.
    SignalConnected {
        bot: String,
        participant_sid: String,
        server_version: String,
        /// The LiveKit node that answered (`ServerInfo.node_id`), which tells the nodes
        /// of a multi-node SFU apart.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        node_id: String,
    },
    /// Every peer connection the bot uses reached `connected`.
    PeersConnected {
        bot: String,
        publisher: Option<SelectedCandidate>,
        subscriber: Option<SelectedCandidate>,
    },
    /// A peer connection changed state (`new`, `connecting`, `connected`,
    /// `disconnected`, `failed`, `closed`).
    PeerStateChanged {
        bot: String,
        transport: Transport,
        state: String,
    },
    /// The SFU acknowledged one of the bot's tracks.
    TrackPublished {
        bot: String,
        track: String,
        kind: String,
    },
    /// The SFU asked the bot for a keyframe on its video track (RTCP PLI or FIR); the
    /// next frame it sends is one.
    KeyframeRequested { bot: String, track: String },
    /// The SFU refused one of the bot's requests (a `RequestResponse` with a reason other
    /// than OK): `request` names it (`AddTrack`, `Mute`, ...), `reason` is LiveKit's.
    RequestRefused {
        bot: String,
        request: String,
        reason: String,
        message: String,
    },
    /// A session's ICE connectivity checks over UDP, counted in the bot's socket layer
    /// when the session ends: candidate pairs checked (a binding request sent) and how
    /// many of them never got a success response.
    IcePairsCounted {
        bot: String,
        tried: u32,
        failed: u32,
    },
    /// The simulcast layer a subscriber receives of a video track changed (or, with
    /// `from` absent, its first frame arrived): the SFU switched layers, on the
    /// subscriber's request or its congestion control's decision. `layer` is the
    /// spatial layer, 0 the lowest.
    LayerReceived {
        bot: String,
        publisher: String,
        track: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<u8>,
        layer: u8,
    },
    /// The bot received the first packet of a remote track.
    FirstMedia {
        bot: String,
        publisher: String,
        track: String,
        kind: String,
    },
    /// Publisher side of a media bin: how many packets the bot sent on `track` with a
    /// send time in bin `bin` (send time / [`BIN_US`]).
    MediaSent {
        bot: String,
        track: String,
        bin: u64,
        packets: u32,
        /// Worst lateness of the pacing loop in this bin (harness self-check), µs.
        max_pacing_lag_us: u64,
    },
    /// Subscriber side of a media bin: packets of `publisher`'s `track` that were sent in
    /// `bin` and arrived within [`LATE_AFTER_US`].
    MediaReceived {
        bot: String,
        publisher: String,
        track: String,
        bin: u64,
        packets: u32,
        /// Longest inter-arrival interval that ended on a packet of this bin, µs.
        max_gap_us: u64,
        /// One-way latency of this bin's packets: an HDR histogram (µs), V2 serialized,
        /// base64.
        latency_hist: String,
    },
    /// Media from `publisher` stopped at `from_us` and came back at the event's time
    /// (longer than [`GAP_EVENT_US`]).
    MediaGap {
        bot: String,
        publisher: String,
        track: String,
        from_us: u64,
    },
    /// A `[[phases]]` entry began; metrics measured from here until the next one carry
    /// its name as their `phase` tag.
    PhaseStarted { name: String },
    /// A fault took effect. `id` names it within the run (`faults[i]`).
    FaultApplied {
        id: String,
        kind: String,
        target: String,
        /// The bots the fault is aimed at; empty: every bot (proxy and SFU faults).
        bots: Vec<String>,
        /// How late it took effect against its scheduled time.
        skew_us: u64,
        /// A lasting fault without `for`: it holds until the run ends, so nothing
        /// recovers from it within the run (no recovery is measured).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        until_end: bool,
    },
    /// A fault was undone (never emitted for instantaneous faults).
    FaultCleared { id: String },
    /// The SFU offered an ICE candidate (trickled): `candidate` is `protocol
    /// address:port type`, e.g. `udp 172.18.0.2:7882 host`.
    CandidateReceived {
        bot: String,
        transport: Transport,
        candidate: String,
    },
    /// An ICE server from the JoinResponse was dropped because its address is not one of
    /// the run's own (LiveKit hands out public STUN servers by default).
    IceServerIgnored { bot: String, url: String },
    /// The bot could not join; `error` is safe to show (no token).
    JoinFailed { bot: String, error: String },
    /// The bot noticed its session broke (signal closed or silent past the ping
    /// timeout, a peer connection failed, a health check failed).
    SignalLost { bot: String, reason: String },
    /// The server sent a LeaveRequest. `reason` is LiveKit's DisconnectReason name,
    /// `action` DISCONNECT, RESUME or RECONNECT.
    Kicked {
        bot: String,
        reason: String,
        action: String,
    },
    /// A resume attempt (`reconnect=1&sid=…`) started; `attempt` counts from 1.
    ResumeStarted { bot: String, attempt: u32 },
    /// The server accepted the resume (ReconnectResponse).
    Resumed { bot: String },
    /// A resume attempt failed; `terminal` when no retry will follow.
    ResumeFailed {
        bot: String,
        error: String,
        terminal: bool,
    },
    /// A full rejoin (new peer connections, same identity) started.
    RejoinStarted { bot: String, attempt: u32 },
    /// The bot stopped trying; its policy gave up.
    GaveUp { bot: String, why: String },
    /// The bot's session ended.
    BotLeft { bot: String, reason: String },
    /// Harness self-check, once a second: the latest the runtime ran a timer of
    /// [`LOOP_TICK_US`] in that second (how long a ready task could have waited).
    EventLoopChecked { max_lag_us: u64, ticks: u32 },
    /// Harness self-check: the kernel dropped `dropped` datagrams sent to this bot
    /// because its socket's queue was full (a lean bot read too late). Those packets
    /// were the SFU's to deliver and the harness lost them, so the run is invalid.
    ReceiveDropped { bot: String, dropped: u64 },
    /// One scrape of an SFU node's Prometheus endpoint, reduced to the report's series
    /// ([`crate::prometheus::summarize`]).
    SfuMetricsScraped {
        node: String,
        values: std::collections::BTreeMap<String, f64>,
    },
    /// What one part of the run cost in the last second (cost accounting): `source` is
    /// `sfu` (one SFU node's container, from its cgroup) or `harness` (this process);
    /// `node` names the SFU node. CPU in cores (CPU-seconds per second), memory in bytes
    /// (resident, page cache not counted).
    ResourcesSampled {
        source: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        node: String,
        cpu_cores: f64,
        memory_bytes: u64,
    },
    /// Something worth a line in the report that fits no other event.
    Note { source: String, message: String },
    /// The run ended; `reason` is `completed`, `interrupted`, or an error.
    RunEnded { reason: String },
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, thiserror::Error)]
#[error("events.jsonl line {line} is not an event")]
pub struct EventParseError {
    pub line: usize,
    #[source]
    pub source: serde_json::Error,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_serializes_flat_with_type_tag() {
        let r = EventRecord {
            t_us: 1500,
            event: Event::BotJoinStarted {
                bot: "a-1".into(),
                group: "a".into(),
                room: String::new(),
            },
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"t_us":1500,"type":"BotJoinStarted","bot":"a-1","group":"a"}"#
        );
        let back: EventRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
    }
}
