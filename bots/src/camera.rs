//! The video sender: a synthetic camera with one or three simulcast layers.
//!
//! Each layer is an encoding of one local track with its own SSRC and, with simulcast,
//! its RTP stream id (`q`, `h`, `f`), announced in the offer (`a=rid`, `a=simulcast`) and
//! in AddTrackRequest's layers, as LiveKit's SDKs do. Packets carry the `sdes:mid` and
//! `sdes:rtp-stream-id` header extensions, by which the SFU tells the layers apart. All
//! layers encode the same picture: frame `n` of every layer has the same number, send
//! time and RTP timestamp, so a subscriber's continuity survives the SFU switching layers.
//! A keyframe starts every layer, and comes again every [`KEYFRAME_EVERY_S`] and whenever
//! the SFU asks for one on that layer (PLI, FIR).

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use harness_core::event::Event;
use harness_core::plan::{KEYFRAME_EVERY_S, LayerPlan, VideoPlan};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::rtp_transceiver::RtpSender;

use crate::bot::Command;
use crate::media::SendBins;
use crate::media_tasks::{Pacer, Tick};
use crate::sink::EventSink;
use crate::video::Frame;

const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// A local VP8 track whose msid track id is `cid`, with one encoding per layer.
pub fn new_video_track(cid: &str, video: VideoPlan) -> (Arc<TrackLocalStaticRTP>, Vec<u32>) {
    let codec = RTCRtpCodec {
        mime_type: "video/VP8".to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    };
    let ssrcs: Vec<u32> = video.layers().iter().map(|_| rand::random()).collect();
    let encodings = video
        .layers()
        .iter()
        .zip(&ssrcs)
        .map(|(l, &ssrc)| RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                rid: l.rid.to_owned(),
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: codec.clone(),
            ..Default::default()
        })
        .collect();
    let track = MediaStreamTrack::new(
        format!("{cid}-stream"),
        cid.to_owned(),
        "camera".to_owned(),
        RtpCodecKind::Video,
        encodings,
    );
    (Arc::new(TrackLocalStaticRTP::new(track)), ssrcs)
}

/// AddTrackRequest's `layers` for the plan, lowest first, with the SSRCs of
/// [`new_video_track`].
pub fn video_layers(video: VideoPlan, ssrcs: &[u32]) -> Vec<livekit_protocol::VideoLayer> {
    video
        .layers()
        .iter()
        .zip(ssrcs.iter().copied().chain(std::iter::repeat(0)))
        .map(|(l, ssrc)| livekit_protocol::VideoLayer {
            quality: proto_quality(l.quality) as i32,
            width: u32::from(l.width),
            height: u32::from(l.height),
            bitrate: l.kbps * 1000,
            ssrc,
            spatial_layer: i32::from(l.spatial),
            rid: l.rid.to_owned(),
            ..Default::default()
        })
        .collect()
}

/// LiveKit's name for a layer's quality.
pub fn proto_quality(q: harness_core::plan::VideoQuality) -> livekit_protocol::VideoQuality {
    match q {
        harness_core::plan::VideoQuality::Low => livekit_protocol::VideoQuality::Low,
        harness_core::plan::VideoQuality::Medium => livekit_protocol::VideoQuality::Medium,
        harness_core::plan::VideoQuality::High => livekit_protocol::VideoQuality::High,
    }
}

/// One layer's sending state.
struct Layer {
    plan: LayerPlan,
    ssrc: u32,
    seq: u16,
    picture_id: u16,
    keyframe: bool,
}

/// Sends synthetic VP8 on every layer at `video.fps` until told to stop. Paced, binned
/// (one `MediaSent` count per frame, whatever the layers) and put to sleep like audio.
#[allow(clippy::too_many_arguments)]
pub async fn send_video(
    track: Arc<TrackLocalStaticRTP>,
    ssrcs: Vec<u32>,
    pc: crate::peer::Pc,
    sender: Arc<dyn RtpSender>,
    track_id: String,
    bot: String,
    sink: EventSink,
    mut cmd: watch::Receiver<Command>,
    video: VideoPlan,
) {
    let Ok(params) = sender.get_parameters().await else {
        return;
    };
    let Some(payload_type) = params
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case("video/VP8"))
        .map(|c| c.payload_type)
    else {
        return;
    };
    let ext_id = |uri: &str| {
        params
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|e| e.uri == uri)
            .and_then(|e| u8::try_from(e.id).ok())
            .filter(|id| (1..=14).contains(id))
    };
    let (mid_id, rid_id) = (ext_id(MID_URI), ext_id(RID_URI));
    let mid = match sender_mid(&pc, &sender).await {
        Some(m) => bytes::Bytes::from(m),
        None => bytes::Bytes::new(),
    };
    let mut layers: Vec<Layer> = video
        .layers()
        .into_iter()
        .zip(ssrcs)
        .map(|(plan, ssrc)| Layer {
            plan,
            ssrc,
            seq: rand::random(),
            picture_id: rand::random::<u16>() & 0x7fff,
            keyframe: true,
        })
        .collect();
    let frame_time = Duration::from_secs(1) / video.fps.max(1);
    let ts_step = 90_000 / video.fps.max(1);
    let ts_base: u32 = rand::random();
    let keyframe_every = KEYFRAME_EVERY_S * video.fps.max(1);
    let mut bins = SendBins::default();
    let (mut buf, mut ends) = (BytesMut::new(), Vec::new());
    let mut pacer = Pacer::new(frame_time);
    // Until the track is unbound (then `poll` answers `None` at once, for good).
    let mut feedback = true;
    'frames: loop {
        tokio::select! {
            _ = tokio::time::sleep_until(pacer.due()) => {}
            _ = cmd.changed() => {}
            ev = track.poll(), if feedback => {
                match ev {
                    Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                        for p in packets.iter().filter(|p| crate::peer::is_keyframe_request(p.as_ref())) {
                            let asked: Vec<u32> = p.destination_ssrc();
                            for l in layers.iter_mut().filter(|l| asked.contains(&l.ssrc)) {
                                l.keyframe = true;
                            }
                            sink.emit(Event::KeyframeRequested { bot: bot.clone(), track: track_id.clone() });
                        }
                    }
                    Some(_) => {}
                    None => feedback = false,
                }
                continue;
            }
        }
        let (n, lag_us) = match pacer.tick(&mut cmd).await {
            Tick::Send { n, lag_us } => (n, lag_us),
            Tick::Again => continue,
            Tick::Stop => break,
        };
        let send_us = sink.now_us();
        let timestamp = ts_base.wrapping_add(n.wrapping_mul(ts_step));
        let mut sent = false;
        for l in &mut layers {
            let frame = Frame {
                seq: n,
                send_us,
                keyframe: l.keyframe || n % keyframe_every == 0,
                picture_id: l.picture_id,
                layer: l.plan.spatial,
                width: l.plan.width,
                height: l.plan.height,
                delta_bytes: video.frame_bytes(l.plan.kbps),
                publisher: &bot,
            };
            frame.build(&mut buf, &mut ends);
            let data = buf.split().freeze();
            let mut start = 0;
            for (i, &end) in ends.iter().enumerate() {
                let mut header = rtp::Header {
                    version: 2,
                    marker: i + 1 == ends.len(),
                    payload_type,
                    sequence_number: l.seq,
                    timestamp,
                    ssrc: l.ssrc,
                    ..Default::default()
                };
                if let Some(id) = mid_id.filter(|_| !mid.is_empty()) {
                    set_extension(&mut header, id, mid.clone());
                }
                if let Some(id) = rid_id.filter(|_| !l.plan.rid.is_empty()) {
                    set_extension(
                        &mut header,
                        id,
                        bytes::Bytes::from_static(l.plan.rid.as_bytes()),
                    );
                }
                let packet = rtp::Packet {
                    header,
                    payload: data.slice(start..end),
                };
                start = end;
                l.seq = l.seq.wrapping_add(1);
                if track.write_rtp(packet).await.is_err() {
                    // Not bound (yet, or any more): this frame is not sent.
                    if *cmd.borrow() != Command::Run {
                        break 'frames;
                    }
                    continue;
                }
                sent = true;
            }
            l.picture_id = (l.picture_id + 1) & 0x7fff;
            l.keyframe = false;
        }
        if sent && let Some(ev) = bins.record(&bot, &track_id, send_us, lag_us) {
            sink.emit(ev);
        }
    }
    if let Some(ev) = bins.take(&bot, &track_id) {
        sink.emit(ev);
    }
}

fn set_extension(header: &mut rtp::Header, id: u8, value: bytes::Bytes) {
    if !header.extension {
        header.extension = true;
        header.extension_profile = rtp::header::EXTENSION_PROFILE_ONE_BYTE;
    }
    let _ = header.set_extension(id, value);
}

/// The mid of the transceiver `sender` belongs to, once negotiated.
async fn sender_mid(pc: &crate::peer::Pc, sender: &Arc<dyn RtpSender>) -> Option<String> {
    for t in pc.get_transceivers().await {
        if let Ok(Some(s)) = t.sender().await
            && s.id() == sender.id()
        {
            return t.mid().await.ok().flatten();
        }
    }
    None
}
