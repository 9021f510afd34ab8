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
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::rtp_transceiver::RtpSender;

use crate::bot::Command;
use crate::media::{self, OPUS_TOC, ReceiveBins, SendBins};
use crate::sink::EventSink;

/// One Opus packet every 20 ms, as a real microphone track sends.
pub const AUDIO_PTIME: Duration = Duration::from_millis(20);
/// Padding so the synthetic audio is ~32 kbit/s like speech Opus: 80 bytes per 20 ms.
const AUDIO_PAYLOAD_BYTES: usize = 80;

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
    let Some(ssrc) = track.ssrcs().await.first().copied() else {
        return;
    };
    let payload_type = match sender.get_parameters().await {
        Ok(p) => match p.rtp_parameters.codecs.first() {
            Some(c) => c.payload_type,
            None => return,
        },
        Err(_) => return,
    };
    let mut bins = SendBins::default();
    let mut buf = Vec::with_capacity(AUDIO_PAYLOAD_BYTES);
    let start = tokio::time::Instant::now();
    let mut seq: u32 = 0;
    loop {
        let due = start + AUDIO_PTIME * seq;
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = cmd.changed() => {}
        }
        if *cmd.borrow() != Command::Run {
            break;
        }
        let lag_us = due.elapsed().as_micros() as u64;
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
        seq = seq.wrapping_add(1);
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
    let track_id = track.track_id().await;
    let kind = track.kind().await.to_string().to_lowercase();
    // Keyed by the publisher identity read from the payload.
    let mut pairs: BTreeMap<String, ReceiveBins> = BTreeMap::new();
    let mut flush = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            ev = track.poll() => match ev {
                Some(TrackRemoteEvent::OnRtpPacket(pkt)) => {
                    let now = sink.now_us();
                    if let Some(stamp) = media::decode(&pkt.payload) {
                        last_media_us.store(now, Ordering::Relaxed);
                        let r = pairs.entry(stamp.publisher.to_owned()).or_default();
                        let arrival = r.record(&stamp, now);
                        if arrival.first {
                            sink.emit_at(now, Event::FirstMedia {
                                bot: bot.clone(),
                                publisher: stamp.publisher.to_owned(),
                                track: track_id.clone(),
                                kind: kind.clone(),
                            });
                        }
                        if let Some(from_us) = arrival.gap_from_us {
                            sink.emit_at(now, Event::MediaGap {
                                bot: bot.clone(),
                                publisher: stamp.publisher.to_owned(),
                                track: track_id.clone(),
                                from_us,
                            });
                        }
                    }
                }
                Some(TrackRemoteEvent::OnEnded) | None => break,
                Some(_) => {}
            },
            _ = flush.tick() => {
                let now = sink.now_us();
                for (publisher, r) in &mut pairs {
                    for ev in r.flush(&bot, publisher, &track_id, now, false) {
                        sink.emit(ev);
                    }
                }
            }
            changed = cmd.changed() => {
                if changed.is_err() || cmd.borrow().ends() { break; }
            }
        }
    }
    let now = sink.now_us();
    for (publisher, r) in &mut pairs {
        for ev in r.flush(&bot, publisher, &track_id, now, true) {
            sink.emit(ev);
        }
    }
}
