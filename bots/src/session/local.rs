//! What a bot publishes: its local tracks, announced with AddTrackRequest when it joins,
//! offered on the publisher connection, and sent once that connection is up; and which
//! simulcast layer it asks for of the video it receives.

use std::sync::Arc;

use livekit_protocol as proto;
use proto::signal_request::Message as Req;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::rtp_transceiver::RtpSender;

use super::{JoinError, Session};
use crate::bot::BotConfig;
use crate::camera::send_video;
use crate::media_tasks::{send_audio, send_data};
use crate::signal::SignalConnection;

/// A track the bot publishes.
pub(super) struct LocalTrack {
    pub(super) kind: LocalKind,
    /// The bot's own id for it (AddTrackRequest.cid; the msid track id).
    pub(super) cid: String,
    /// The SFU's id (`TR_…`) once published: what subscribers see, so what the
    /// publisher's `MediaSent` names too.
    pub(super) sid: Option<String>,
    media: LocalMedia,
    /// Its sender, from the publisher offer until sending starts.
    sender: Option<Arc<dyn RtpSender>>,
}

/// A local track, made when the bot joins (its SSRCs go into AddTrackRequest).
enum LocalMedia {
    Audio(Arc<TrackLocalStaticSample>),
    /// The track and the SSRC of each of its layers.
    Video(Arc<TrackLocalStaticRTP>, Vec<u32>),
}

impl LocalMedia {
    fn track(&self) -> Arc<dyn webrtc::media_stream::track_local::TrackLocal> {
        match self {
            LocalMedia::Audio(t) => t.clone(),
            LocalMedia::Video(t, _) => t.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LocalKind {
    Audio,
    Video,
}

impl LocalKind {
    pub(super) fn name(self) -> &'static str {
        match self {
            LocalKind::Audio => "audio",
            LocalKind::Video => "video",
        }
    }
}

/// Makes the bot's local tracks and announces each to the SFU (AddTrackRequest).
pub(super) fn announce(
    cfg: &BotConfig,
    signal: &SignalConnection,
) -> Result<Vec<LocalTrack>, JoinError> {
    let bot = &cfg.identity;
    let mut local = Vec::new();
    let local_track = |e: webrtc::error::Error| JoinError::Other(format!("local track: {e}"));
    if cfg.publish_audio {
        local.push(LocalTrack {
            kind: LocalKind::Audio,
            cid: format!("{bot}-mic"),
            sid: None,
            media: LocalMedia::Audio(
                crate::media_tasks::new_audio_track(&format!("{bot}-mic")).map_err(local_track)?,
            ),
            sender: None,
        });
        signal.send(Req::AddTrack(proto::AddTrackRequest {
            cid: format!("{bot}-mic"),
            name: "microphone".into(),
            r#type: proto::TrackType::Audio as i32,
            source: proto::TrackSource::Microphone as i32,
            ..Default::default()
        }));
    }
    if let Some(video) = cfg.video {
        let cid = format!("{bot}-cam");
        let (track, ssrcs) = crate::camera::new_video_track(&cid, video);
        let layers = crate::camera::video_layers(video, &ssrcs);
        let top = video
            .layers()
            .last()
            .copied()
            .expect("a video plan has a layer");
        local.push(LocalTrack {
            kind: LocalKind::Video,
            cid: cid.clone(),
            sid: None,
            media: LocalMedia::Video(track, ssrcs),
            sender: None,
        });
        // As LiveKit's SDKs announce a camera: its size, its layers, and its codec
        // with the same layers.
        signal.send(Req::AddTrack(proto::AddTrackRequest {
            cid: cid.clone(),
            name: "camera".into(),
            r#type: proto::TrackType::Video as i32,
            source: proto::TrackSource::Camera as i32,
            width: u32::from(top.width),
            height: u32::from(top.height),
            layers: layers.clone(),
            simulcast_codecs: vec![proto::SimulcastCodec {
                codec: "vp8".into(),
                cid,
                layers,
                ..Default::default()
            }],
            ..Default::default()
        }));
    }
    Ok(local)
}

impl Session<'_> {
    /// Asks the SFU for one simulcast layer of a remote video track, as an SDK does for
    /// a video element of a given size (UpdateTrackSettings, by quality and size).
    pub(super) async fn ask_for_layer(
        &mut self,
        track: &Arc<dyn webrtc::media_stream::track_remote::TrackRemote>,
        q: harness_core::plan::VideoQuality,
    ) {
        if track.kind().await != rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video {
            return;
        }
        let (width, height) = q.size();
        self.signal
            .send(Req::TrackSetting(proto::UpdateTrackSettings {
                track_sids: vec![track.track_id().await],
                quality: crate::camera::proto_quality(q) as i32,
                width: u32::from(width),
                height: u32::from(height),
                ..Default::default()
            }));
    }

    /// Data channels, the audio track, then one offer: what an SDK's first publish does.
    pub(super) async fn offer_publisher(&mut self) -> webrtc::error::Result<()> {
        let Some(pc) = self.publisher.clone() else {
            return Ok(());
        };
        let reliable = webrtc::data_channel::RTCDataChannelInit {
            ordered: true,
            ..Default::default()
        };
        let lossy = webrtc::data_channel::RTCDataChannelInit {
            ordered: false,
            max_retransmits: Some(0),
            ..Default::default()
        };
        let reliable = pc.create_data_channel("_reliable", Some(reliable)).await?;
        let lossy = pc.create_data_channel("_lossy", Some(lossy)).await?;
        self.offered = true;
        if self.cfg.data_interval.is_some() {
            self.data = vec![
                (reliable, crate::media_tasks::data_track("_reliable")),
                (lossy, crate::media_tasks::data_track("_lossy")),
            ];
        }
        for l in &mut self.local {
            l.sender = Some(pc.add_track(l.media.track()).await?);
        }
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer.clone()).await?;
        self.signal.send(Req::Offer(proto::SessionDescription {
            r#type: "offer".into(),
            sdp: offer.sdp,
            ..Default::default()
        }));
        Ok(())
    }

    /// The publisher is connected: every local track starts sending, and data if asked.
    pub(super) fn start_media(&mut self) {
        if let Some(every) = self.cfg.data_interval
            && !self.data.is_empty()
        {
            self.tasks.spawn(send_data(
                std::mem::take(&mut self.data),
                self.cfg.identity.clone(),
                self.sink.clone(),
                self.media_cmd.subscribe(),
                every,
            ));
        }
        for l in &mut self.local {
            let Some(sender) = l.sender.take() else {
                continue;
            };
            let id = l.sid.clone().unwrap_or_default();
            let (bot, sink, cmd) = (
                self.cfg.identity.clone(),
                self.sink.clone(),
                self.media_cmd.subscribe(),
            );
            match (&l.media, self.cfg.video, &self.publisher) {
                (LocalMedia::Audio(track), ..) => {
                    self.tasks
                        .spawn(send_audio(track.clone(), sender, id, bot, sink, cmd));
                }
                (LocalMedia::Video(track, ssrcs), Some(video), Some(pc)) => {
                    self.tasks.spawn(send_video(
                        track.clone(),
                        ssrcs.clone(),
                        pc.clone(),
                        sender,
                        id,
                        bot,
                        sink,
                        cmd,
                        video,
                    ));
                }
                (LocalMedia::Video(..), ..) => {}
            }
        }
    }
}
