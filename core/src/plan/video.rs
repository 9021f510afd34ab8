//! A bot's synthetic VP8 video: its bitrate, frame rate and simulcast layers.
//!
//! Frames are as large as the bitrate makes them and span as many RTP packets as they
//! need (at most [`MAX_PACKET_PAYLOAD`] bytes each), as a real encoder's do. With
//! simulcast, the bot sends three layers, as LiveKit's SDKs do for a camera: `f` (full
//! resolution, the group's `video-kbps`), `h` (half: a quarter of it) and `q` (quarter: a
//! tenth), close to the SDKs' default ladders (h720 at 1.7 Mbit/s over h360 at 450 kbit/s
//! and h180 at 160 kbit/s).

/// Frames per second when a group does not say.
pub const DEFAULT_VIDEO_FPS: u32 = 30;
/// Bitrate (of the top layer) when a group does not say, kbit/s.
pub const DEFAULT_VIDEO_KBPS: u32 = 200;
/// The most payload one RTP packet carries (an MTU of 1200 less headers and SRTP).
pub const MAX_PACKET_PAYLOAD: usize = 1100;
/// A keyframe this many times the size of a delta frame, as encoders make them.
pub const KEYFRAME_SIZE_FACTOR: usize = 3;
/// Keyframes this often (seconds), besides the first and every one the SFU asks for.
pub const KEYFRAME_EVERY_S: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoPlan {
    pub fps: u32,
    /// The top layer's bitrate, kbit/s.
    pub kbps: u32,
    /// Three layers (q, h, f), not one.
    pub simulcast: bool,
}

/// A simulcast layer a subscriber can ask for, LiveKit's `VideoQuality`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum VideoQuality {
    Low,
    Medium,
    High,
}

impl VideoQuality {
    pub const ALL: [VideoQuality; 3] = [Self::Low, Self::Medium, Self::High];

    pub fn name(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.name() == name)
    }

    /// The picture size of this simulcast layer (and what a subscriber asking for it
    /// says its video element is).
    pub fn size(self) -> (u16, u16) {
        match self {
            Self::Low => (320, 180),
            Self::Medium => (640, 360),
            Self::High => (1280, 720),
        }
    }
}

/// One encoding a publisher sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerPlan {
    /// The RTP stream id (`q`, `h`, `f`); empty without simulcast.
    pub rid: &'static str,
    pub quality: VideoQuality,
    /// 0 for the lowest.
    pub spatial: u8,
    pub width: u16,
    pub height: u16,
    pub kbps: u32,
}

impl VideoPlan {
    /// The encodings, lowest first.
    pub fn layers(self) -> Vec<LayerPlan> {
        if !self.simulcast {
            let (width, height) = if self.kbps >= 1000 {
                (1280, 720)
            } else {
                (640, 360)
            };
            return vec![LayerPlan {
                rid: "",
                quality: VideoQuality::High,
                spatial: 0,
                width,
                height,
                kbps: self.kbps,
            }];
        }
        let at = |rid, quality: VideoQuality, spatial, div: u32| LayerPlan {
            rid,
            quality,
            spatial,
            width: quality.size().0,
            height: quality.size().1,
            kbps: (self.kbps / div).max(1),
        };
        vec![
            at("q", VideoQuality::Low, 0, 10),
            at("h", VideoQuality::Medium, 1, 4),
            at("f", VideoQuality::High, 2, 1),
        ]
    }

    /// Bytes of a delta frame of a layer at `kbps`.
    pub fn frame_bytes(self, kbps: u32) -> usize {
        (u64::from(kbps) * 1000 / 8 / u64::from(self.fps.max(1))) as usize
    }

    /// Bytes per second of all layers together.
    pub fn total_kbps(self) -> u32 {
        self.layers().iter().map(|l| l.kbps).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulcast_has_three_layers_lowest_first_with_the_top_at_the_groups_bitrate() {
        let v = VideoPlan {
            fps: 30,
            kbps: 2000,
            simulcast: true,
        };
        let l = v.layers();
        assert_eq!(
            l.iter().map(|l| (l.rid, l.kbps)).collect::<Vec<_>>(),
            [("q", 200), ("h", 500), ("f", 2000)]
        );
        assert_eq!(v.total_kbps(), 2700);
        assert_eq!(v.frame_bytes(2000), 8333);
    }

    #[test]
    fn one_layer_without_simulcast() {
        let v = VideoPlan {
            fps: 30,
            kbps: 200,
            simulcast: false,
        };
        assert_eq!(v.layers().len(), 1);
        assert_eq!(v.layers()[0].rid, "");
        assert_eq!((v.layers()[0].width, v.layers()[0].height), (640, 360));
    }
}
