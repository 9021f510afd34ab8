//! The tasks that move media: one paced sender per local track, one reader per remote
//! track. They share nothing with the bot's loop but the command channel and the sink.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use harness_core::event::Event;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::watch;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelState};
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::rtp_transceiver::RtpSender;

use crate::bot::Command;
use crate::media::{self, OPUS_TOC, ReceiveBins, SendBins};
use crate::sink::EventSink;
use crate::video::Frames;

/// One Opus packet every 20 ms, as a real microphone track sends.
pub const AUDIO_PTIME: Duration = Duration::from_millis(20);
/// Padding so the synthetic audio is ~32 kbit/s like speech Opus: 80 bytes per 20 ms.
pub const AUDIO_PAYLOAD_BYTES: usize = 80;

/// A local Opus track whose msid track id is `cid` (LiveKit matches it to AddTrackRequest).
pub fn new_audio_track(cid: &str) -> webrtc::error::Result<Arc<TrackLocalStaticSample>> {
    let codec = RTCRtpCodec {
        mime_type: "audio/opus".to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    };
    let track = MediaStreamTrack::new(
        format!("{cid}-stream"),
        cid.to_owned(),
        "microphone".to_owned(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(rand::random::<u32>()),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    );
    Ok(Arc::new(TrackLocalStaticSample::new(
        Instant::now(),
        track,
    )?))
}

/// A sender's clock: a tick every `period` against absolute due times, so a late tick
/// is measured (harness lag), not silently absorbed. While the bot sleeps it pauses, and
/// on waking it owes nothing for the ticks it slept through.
pub(crate) struct Pacer {
    start: tokio::time::Instant,
    period: Duration,
    n: u32,
}

pub(crate) enum Tick {
    /// Send now: tick `n`, `lag_us` after it was due.
    Send { n: u32, lag_us: u64 },
    /// Nothing to send yet (woken early, or just woke from a sleep): wait again.
    Again,
    /// The bot stopped sending.
    Stop,
}

impl Pacer {
    pub(crate) fn new(period: Duration) -> Self {
        Self {
            start: tokio::time::Instant::now(),
            period,
            n: 0,
        }
    }

    pub(crate) fn due(&self) -> tokio::time::Instant {
        self.start + self.period * self.n
    }

    /// After waiting for [`Pacer::due`] or a command: what the sender does now.
    pub(crate) async fn tick(&mut self, cmd: &mut watch::Receiver<Command>) -> Tick {
        if *cmd.borrow() == Command::Sleep {
            while *cmd.borrow() == Command::Sleep {
                if cmd.changed().await.is_err() {
                    break;
                }
            }
            self.start = tokio::time::Instant::now() - self.period * self.n;
            return Tick::Again;
        }
        if *cmd.borrow() != Command::Run {
            return Tick::Stop;
        }
        let due = self.due();
        if tokio::time::Instant::now() < due {
            return Tick::Again;
        }
        let n = self.n;
        self.n = self.n.wrapping_add(1);
        Tick::Send {
            n,
            lag_us: due.elapsed().as_micros() as u64,
        }
    }
}

/// The track's SSRC and the payload type its sender negotiated for `mime`.
async fn ssrc_and_payload_type(
    track: &TrackLocalStaticSample,
    sender: &Arc<dyn RtpSender>,
    mime: &str,
) -> Option<(u32, u8)> {
    let ssrc = track.ssrcs().await.first().copied()?;
    let p = sender.get_parameters().await.ok()?;
    let codec = p
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))?;
    Some((ssrc, codec.payload_type))
}

/// Sends one packet per [`AUDIO_PTIME`] until told to stop, emitting `MediaSent` bins.
/// Pacing is against absolute due times, so a late tick is measured (harness lag), not
/// silently absorbed.
pub async fn send_audio(
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    track_id: String,
    bot: String,
    sink: EventSink,
    mut cmd: watch::Receiver<Command>,
) {
    let Some((ssrc, payload_type)) = ssrc_and_payload_type(&track, &sender, "audio/opus").await
    else {
        return;
    };
    let mut bins = SendBins::default();
    let mut buf = Vec::with_capacity(AUDIO_PAYLOAD_BYTES);
    let mut pacer = Pacer::new(AUDIO_PTIME);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(pacer.due()) => {}
            _ = cmd.changed() => {}
        }
        let (seq, lag_us) = match pacer.tick(&mut cmd).await {
            Tick::Send { n, lag_us } => (n, lag_us),
            Tick::Again => continue,
            Tick::Stop => break,
        };
        let send_us = sink.now_us();
        media::encode(&mut buf, OPUS_TOC, seq, send_us, &bot, AUDIO_PAYLOAD_BYTES);
        let sample = Sample {
            data: Bytes::copy_from_slice(&buf),
            duration: AUDIO_PTIME,
            ..Sample::new(Instant::now())
        };
        if track
            .sample_writer(ssrc, payload_type)
            .write_sample(&sample)
            .await
            .is_ok()
            && let Some(ev) = bins.record(&bot, &track_id, send_us, lag_us)
        {
            sink.emit(ev);
        }
    }
    if let Some(ev) = bins.take(&bot, &track_id) {
        sink.emit(ev);
    }
}

/// Reads a remote track until it ends or the bot leaves; bins close as they age and all
/// at once on leave.
pub async fn receive_track(
    track: Arc<dyn TrackRemote>,
    bot: String,
    sink: EventSink,
    mut cmd: watch::Receiver<Command>,
    last_media_us: Arc<AtomicU64>,
) {
    let kind = track.kind().await.to_string().to_lowercase();
    let mut rx = TrackReceiver::new(track.track_id().await, kind);
    let mut flush = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            ev = track.poll() => match ev {
                Some(TrackRemoteEvent::OnRtpPacket(pkt)) => {
                    let now = sink.now_us();
                    if rx.packet(&pkt.payload, now, &bot, &sink) {
                        last_media_us.store(now, Ordering::Relaxed);
                    }
                }
                Some(TrackRemoteEvent::OnEnded) | None => break,
                Some(_) => {}
            },
            _ = flush.tick() => rx.flush(&bot, &sink, false),
            changed = cmd.changed() => {
                if changed.is_err() || cmd.borrow().ends() { break; }
            }
        }
    }
    rx.flush(&bot, &sink, true);
}

/// What a subscriber measures of one remote track: a [`Pair`] per publisher (read from
/// the payload), and the events a packet causes. Shared by the full bot's per-track task
/// and the lean bot's single loop.
pub(crate) struct TrackReceiver {
    track_id: String,
    kind: String,
    video: bool,
    pairs: BTreeMap<String, Pair>,
}

impl TrackReceiver {
    pub(crate) fn new(track_id: String, kind: String) -> Self {
        Self {
            video: kind == "video",
            track_id,
            kind,
            pairs: BTreeMap::new(),
        }
    }

    /// One RTP payload that arrived at `now`; `false` if it carries no stamp.
    pub(crate) fn packet(&mut self, payload: &[u8], now: u64, bot: &str, sink: &EventSink) -> bool {
        let Some(stamp) = media::decode(payload) else {
            return false;
        };
        let pair = pair_of(&mut self.pairs, stamp.publisher);
        // Video counts whole frames; audio, every packet.
        let Some(unit) = pair.frames.arrive(&stamp) else {
            return true;
        };
        if self.video && pair.layer != Some(stamp.layer) {
            sink.emit_at(
                now,
                Event::LayerReceived {
                    bot: bot.to_owned(),
                    publisher: stamp.publisher.to_owned(),
                    track: self.track_id.clone(),
                    from: pair.layer,
                    layer: stamp.layer,
                },
            );
            pair.layer = Some(stamp.layer);
        }
        let arrival = pair.bins.record(&unit, now);
        if arrival.first {
            sink.emit_at(
                now,
                Event::FirstMedia {
                    bot: bot.to_owned(),
                    publisher: stamp.publisher.to_owned(),
                    track: self.track_id.clone(),
                    kind: self.kind.clone(),
                },
            );
        }
        if let Some(from_us) = arrival.gap_from_us {
            sink.emit_at(
                now,
                Event::MediaGap {
                    bot: bot.to_owned(),
                    publisher: stamp.publisher.to_owned(),
                    track: self.track_id.clone(),
                    from_us,
                },
            );
        }
        true
    }

    /// Emits the bins that are due (every one when `all`).
    pub(crate) fn flush(&mut self, bot: &str, sink: &EventSink, all: bool) {
        flush_all(
            self.pairs.iter_mut().map(|(k, p)| (k, &mut p.bins)),
            bot,
            &self.track_id,
            sink,
            all,
        );
    }
}

/// The state kept for `publisher`, made on its first packet (looked up without
/// allocating, as every packet does).
fn pair_of<'a, T: Default>(pairs: &'a mut BTreeMap<String, T>, publisher: &str) -> &'a mut T {
    if !pairs.contains_key(publisher) {
        pairs.insert(publisher.to_owned(), T::default());
    }
    pairs.get_mut(publisher).expect("inserted above")
}

/// A subscriber's state for one publisher's track.
#[derive(Default)]
struct Pair {
    frames: Frames,
    bins: ReceiveBins,
    /// The simulcast layer its last frame came on.
    layer: Option<u8>,
}

/// Where data messages show in the media bins: `data/_reliable`, `data/_lossy`.
pub fn data_track(label: &str) -> String {
    format!("data/{label}")
}

/// Sends one data message on each channel every `every` (LiveKit `DataPacket`s with a
/// user payload that carries the stamp, one sequence per channel; the SFU tells reliable
/// from lossy by the channel a packet came on), binned like media so
/// `data.loss` and `data.latency` come out of the same arithmetic. A message the channel
/// would not take (not open yet) is not counted as sent.
pub async fn send_data(
    channels: Vec<(Arc<dyn DataChannel>, String)>,
    bot: String,
    sink: EventSink,
    mut cmd: watch::Receiver<Command>,
    every: Duration,
) {
    use prost::Message as _;
    let mut bins: Vec<SendBins> = channels.iter().map(|_| SendBins::default()).collect();
    let mut seqs = vec![0u32; channels.len()];
    let mut buf = Vec::new();
    let mut pacer = Pacer::new(every);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(pacer.due()) => {}
            _ = cmd.changed() => {}
        }
        let lag_us = match pacer.tick(&mut cmd).await {
            Tick::Send { lag_us, .. } => lag_us,
            Tick::Again => continue,
            Tick::Stop => break,
        };
        for (i, (dc, track)) in channels.iter().enumerate() {
            // Until the channel is open a message would only queue (or vanish): an SDK
            // waits for `open` too.
            if !matches!(dc.ready_state().await, Ok(RTCDataChannelState::Open)) {
                continue;
            }
            let send_us = sink.now_us();
            media::encode(&mut buf, b'D', seqs[i], send_us, &bot, 0);
            seqs[i] = seqs[i].wrapping_add(1);
            let packet = livekit_protocol::DataPacket {
                value: Some(livekit_protocol::data_packet::Value::User(
                    livekit_protocol::UserPacket {
                        payload: buf.clone(),
                        topic: Some("sfu-harness".to_owned()),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            };
            let bytes = bytes::BytesMut::from(&packet.encode_to_vec()[..]);
            if dc.send(bytes).await.is_ok()
                && let Some(ev) = bins[i].record(&bot, track, send_us, lag_us)
            {
                sink.emit(ev);
            }
        }
    }
    for (b, (_, track)) in bins.iter_mut().zip(&channels) {
        if let Some(ev) = b.take(&bot, track) {
            sink.emit(ev);
        }
    }
}

/// Reads the data messages the SFU forwards on one of the subscriber's channels until it
/// closes or the bot leaves; bins like [`receive_track`] (no gap events: data is judged by
/// `data.loss` and `data.latency`).
pub async fn receive_data(
    dc: Arc<dyn DataChannel>,
    bot: String,
    sink: EventSink,
    mut cmd: watch::Receiver<Command>,
) {
    use prost::Message as _;
    let label = dc.label().await.unwrap_or_default();
    if label != "_reliable" && label != "_lossy" {
        return;
    }
    let track = data_track(&label);
    let mut pairs: BTreeMap<String, ReceiveBins> = BTreeMap::new();
    let mut flush = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            ev = dc.poll() => match ev {
                Some(DataChannelEvent::OnMessage(m)) => {
                    let now = sink.now_us();
                    let Ok(packet) = livekit_protocol::DataPacket::decode(&m.data[..]) else {
                        continue;
                    };
                    if let Some(livekit_protocol::data_packet::Value::User(u)) = &packet.value
                        && let Some(stamp) = media::decode(&u.payload)
                    {
                        pair_of(&mut pairs, stamp.publisher).record(&stamp, now);
                    }
                }
                Some(DataChannelEvent::OnClose) | None => break,
                Some(_) => {}
            },
            _ = flush.tick() => flush_all(pairs.iter_mut(), &bot, &track, &sink, false),
            changed = cmd.changed() => {
                if changed.is_err() || cmd.borrow().ends() { break; }
            }
        }
    }
    flush_all(pairs.iter_mut(), &bot, &track, &sink, true);
}

/// Emits the receive bins that are due (every one when `all`), for every publisher.
fn flush_all<'a>(
    pairs: impl Iterator<Item = (&'a String, &'a mut ReceiveBins)>,
    bot: &str,
    track: &str,
    sink: &EventSink,
    all: bool,
) {
    let now = sink.now_us();
    for (publisher, r) in pairs {
        for ev in r.flush(bot, publisher, track, now, all) {
            sink.emit(ev);
        }
    }
}
