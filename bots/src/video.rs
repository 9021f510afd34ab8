//! Synthetic VP8 video as an encoder and a packetizer make it, and its reassembly.
//!
//! A frame is as large as its layer's bitrate makes it (a keyframe
//! [`KEYFRAME_SIZE_FACTOR`] times larger) and spans as many RTP packets as it needs,
//! each at most [`MAX_PACKET_PAYLOAD`] bytes, as libwebrtc sends them: every packet
//! starts with a VP8 payload descriptor (RFC 7741 4.2) carrying a 15-bit picture id, the
//! first of a frame has the start bit and the VP8 frame tag (with the start code and size
//! on a keyframe), and the sender sets the RTP marker bit on the last. Every packet then
//! carries the measurement stamp ([`crate::media`]) with its place in the frame, so a
//! subscriber knows when it holds a whole frame — continuity for video counts frames,
//! not packets — whatever the SFU did to sequence numbers and picture ids.
//!
//! Both halves are pure: [`Frame::build`] writes into a caller's buffer, [`Frames`] takes
//! stamps, so they are unit-tested and benchmarked without a network.

use bytes::{BufMut, BytesMut};
use harness_core::plan::{KEYFRAME_SIZE_FACTOR, MAX_PACKET_PAYLOAD};

use crate::media::{self, Stamp};

/// A frame spans at most this many packets (the stamp counts them in a byte).
pub const MAX_PARTS: usize = u8::MAX as usize;

/// What one frame is.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The frame's number, shared by every layer (they encode the same picture).
    pub seq: u32,
    pub send_us: u64,
    pub keyframe: bool,
    /// The VP8 picture id (15 bits), per layer.
    pub picture_id: u16,
    /// Spatial layer, 0 the lowest.
    pub layer: u8,
    pub width: u16,
    pub height: u16,
    /// Bytes of a delta frame at the layer's bitrate.
    pub delta_bytes: usize,
    pub publisher: &'a str,
}

impl Frame<'_> {
    /// Appends the frame's packet payloads to `out`, back to back, and the end offset of
    /// each to `ends` (both cleared first). The caller sends `out[ends[i-1]..ends[i]]` as
    /// packet `i`, the marker bit on the last.
    pub fn build(&self, out: &mut BytesMut, ends: &mut Vec<usize>) {
        out.clear();
        ends.clear();
        let size = if self.keyframe {
            self.delta_bytes * KEYFRAME_SIZE_FACTOR
        } else {
            self.delta_bytes
        };
        let header = 4 + media::stamp_len(self.publisher);
        let parts = size.div_ceil(MAX_PACKET_PAYLOAD).clamp(1, MAX_PARTS);
        // Spread the frame evenly over its packets, as packetizers do.
        let each = (size / parts).clamp(header + 10, MAX_PACKET_PAYLOAD);
        for part in 0..parts {
            let start = out.len();
            let first = part == 0;
            // Descriptor: X, S on the first packet, partition 0; I; M and the 15-bit id.
            out.put_u8(0x80 | if first { 0x10 } else { 0 });
            out.put_u8(0x80);
            out.put_u16(0x8000 | (self.picture_id & 0x7fff));
            if first {
                // Frame tag (RFC 6386 9.1): P bit 0 for a keyframe, version 0, show_frame;
                // first partition size 0 (nothing on the path decodes the frame).
                out.put_slice(&[if self.keyframe { 0x10 } else { 0x11 }, 0, 0]);
                if self.keyframe {
                    out.put_slice(&[0x9d, 0x01, 0x2a]);
                    out.put_u16_le(self.width);
                    out.put_u16_le(self.height);
                }
            }
            media::put_stamp(
                out,
                &Stamp {
                    seq: self.seq,
                    send_us: self.send_us,
                    part: part as u8,
                    parts: parts as u8,
                    layer: self.layer,
                    publisher: self.publisher,
                },
            );
            let len = out.len() - start;
            if len < each {
                out.put_bytes(0, each - len);
            }
            ends.push(out.len());
        }
    }
}

/// A frame some of whose packets arrived.
struct Pending {
    seq: u32,
    send_us: u64,
    parts: u8,
    got: [u64; 4],
    count: u8,
}

/// Reassembles one (subscriber, track) pair's frames from their packets' stamps.
#[derive(Default)]
pub struct Frames {
    pending: Vec<Pending>,
    newest: u32,
}

/// Frames this far behind the newest are given up on (their packets are lost or late).
const KEEP_BEHIND: u32 = 30;

impl Frames {
    /// Takes one packet's stamp; returns the frame's stamp (part 0 of 1) when this packet
    /// completed it. A packet seen twice (a retransmission) counts once.
    pub fn arrive<'a>(&mut self, s: &Stamp<'a>) -> Option<Stamp<'a>> {
        if s.parts <= 1 {
            return Some(Stamp::whole(s.seq, s.send_us, s.publisher));
        }
        if s.seq > self.newest {
            self.newest = s.seq;
            let oldest = self.newest.saturating_sub(KEEP_BEHIND);
            self.pending.retain(|p| p.seq >= oldest);
        }
        let at = match self.pending.iter().position(|p| p.seq == s.seq) {
            Some(i) => i,
            None => {
                self.pending.push(Pending {
                    seq: s.seq,
                    send_us: s.send_us,
                    parts: s.parts,
                    got: [0; 4],
                    count: 0,
                });
                self.pending.len() - 1
            }
        };
        let p = &mut self.pending[at];
        let (word, bit) = (usize::from(s.part / 64), 1u64 << (s.part % 64));
        if p.got[word] & bit != 0 || s.parts != p.parts {
            return None;
        }
        p.got[word] |= bit;
        p.count += 1;
        if p.count < p.parts {
            return None;
        }
        let done = self.pending.swap_remove(at);
        Some(Stamp::whole(done.seq, done.send_us, s.publisher))
    }

    /// Frames waiting for packets (for tests and benches).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(keyframe: bool, delta_bytes: usize) -> Frame<'static> {
        Frame {
            seq: 41,
            send_us: 9_000,
            keyframe,
            picture_id: 0x1234,
            layer: 2,
            width: 1280,
            height: 720,
            delta_bytes,
            publisher: "cam-1",
        }
    }

    fn packets(f: &Frame<'_>) -> Vec<Vec<u8>> {
        let (mut out, mut ends) = (BytesMut::new(), Vec::new());
        f.build(&mut out, &mut ends);
        let mut start = 0;
        ends.iter()
            .map(|&e| {
                let p = out[start..e].to_vec();
                start = e;
                p
            })
            .collect()
    }

    #[test]
    fn a_frame_spans_packets_of_at_most_the_payload_limit_with_a_descriptor_each() {
        // 2 Mbit/s at 30 fps: 8,333 bytes a frame, 8 packets.
        let ps = packets(&frame(false, 8_333));
        assert_eq!(ps.len(), 8);
        assert!(ps.iter().all(|p| p.len() <= MAX_PACKET_PAYLOAD));
        let total: usize = ps.iter().map(Vec::len).sum();
        assert!((8_300..=8_333).contains(&total), "{total}");
        for (i, p) in ps.iter().enumerate() {
            assert_eq!(p[0] & 0x10 != 0, i == 0, "start bit only on the first");
            assert_eq!(&p[1..4], &[0x80, 0x92, 0x34], "I bit and 15-bit picture id");
            let s = media::decode(p).expect("every packet carries a stamp");
            assert_eq!((s.seq, s.part, s.parts, s.layer), (41, i as u8, 8, 2));
        }
        // The first packet's frame tag says delta frame.
        assert_eq!(ps[0][4] & 1, 1);
    }

    #[test]
    fn a_keyframe_is_larger_and_says_its_size() {
        let ps = packets(&frame(true, 8_333));
        assert_eq!(ps.len(), 23);
        assert_eq!(ps[0][4] & 1, 0, "P bit clear: a keyframe");
        assert_eq!(&ps[0][7..10], &[0x9d, 0x01, 0x2a]);
        assert_eq!(u16::from_le_bytes([ps[0][10], ps[0][11]]), 1280);
        assert_eq!(media::decode(&ps[0]).unwrap().parts, 23);
    }

    #[test]
    fn a_small_frame_is_one_packet() {
        let ps = packets(&frame(false, 200));
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].len(), 200);
        let s = media::decode(&ps[0]).unwrap();
        assert_eq!((s.part, s.parts), (0, 1));
    }

    #[test]
    fn frames_complete_when_every_packet_arrived_in_any_order_once() {
        let ps = packets(&frame(false, 3_000));
        assert_eq!(ps.len(), 3);
        let mut f = Frames::default();
        let s: Vec<Stamp<'_>> = ps.iter().map(|p| media::decode(p).unwrap()).collect();
        assert_eq!(f.arrive(&s[2]), None);
        assert_eq!(f.arrive(&s[2]), None, "a duplicate does not count");
        assert_eq!(f.arrive(&s[0]), None);
        let done = f.arrive(&s[1]).expect("complete");
        assert_eq!((done.seq, done.send_us, done.parts), (41, 9_000, 1));
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn a_frame_missing_a_packet_never_completes_and_is_given_up() {
        let mut f = Frames::default();
        let mut older = frame(false, 3_000);
        older.seq = 1;
        let ps = packets(&older);
        for p in &ps[..2] {
            assert_eq!(f.arrive(&media::decode(p).unwrap()), None);
        }
        assert_eq!(f.pending(), 1);
        let mut newer = frame(false, 3_000);
        newer.seq = 1 + KEEP_BEHIND + 1;
        let p = packets(&newer);
        f.arrive(&media::decode(&p[0]).unwrap());
        assert_eq!(
            f.pending(),
            1,
            "the old frame was dropped, the new one waits"
        );
    }
}
