//! Synthetic media that measures itself.
//!
//! Every packet a bot publishes carries, after a codec-valid first byte (or, for video, the
//! VP8 payload descriptor), a small header: magic, format version, the publisher's own
//! sequence number (of the packet, or for video of the frame), its send time (µs since the
//! run's epoch — every bot in a run shares one host clock), which part of the frame the
//! packet is and of how many, the simulcast layer, and the publisher's identity. The SFU
//! forwards payloads untouched (it rewrites RTP headers, not payloads), so a subscriber
//! learns exactly which packet of whom it got and how late, without trusting RTP
//! sequence numbers the SFU has munged.
//!
//! [`SendBins`] and [`ReceiveBins`] turn packets into the per-bin counts of
//! [`harness_core::event::Event::MediaSent`] / `MediaReceived`. Both are pure: time is
//! passed in, so they are unit-tested without a clock and benchmarked per packet.

use std::collections::BTreeMap;

use harness_core::event::{BIN_US, Event, GAP_EVENT_US, LATE_AFTER_US};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2Serializer};

const MAGIC: [u8; 4] = *b"SFUH";
const VERSION: u8 = 2;
/// Opus TOC byte: config 31 (CELT fullband 20 ms), mono, one frame. Keeps the payload a
/// plausible Opus packet for anything on the path that looks at the first byte.
pub const OPUS_TOC: u8 = 0xF8;
/// Stamp bytes before the identity: magic, version, seq (u32), send time (u64), part,
/// parts, layer, id length.
pub const FIXED: usize = 4 + 1 + 4 + 8 + 3 + 1;

/// What a subscriber reads back out of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp<'a> {
    pub seq: u32,
    pub send_us: u64,
    /// This packet's place in its frame (0-based), of `parts`; 0 of 1 for audio and data.
    pub part: u8,
    pub parts: u8,
    /// The simulcast layer (spatial, 0 the lowest) it was sent on.
    pub layer: u8,
    pub publisher: &'a str,
}

impl<'a> Stamp<'a> {
    /// A stamp for a whole packet (audio, data, a one-packet frame).
    pub fn whole(seq: u32, send_us: u64, publisher: &'a str) -> Self {
        Self {
            seq,
            send_us,
            part: 0,
            parts: 1,
            layer: 0,
            publisher,
        }
    }
}

/// Writes a payload of at least `min_len` bytes (padding with zeros, so bitrate is
/// realistic) into `out`, replacing its contents.
pub fn encode(
    out: &mut Vec<u8>,
    first_byte: u8,
    seq: u32,
    send_us: u64,
    publisher: &str,
    min_len: usize,
) {
    out.clear();
    out.push(first_byte);
    put_stamp(out, &Stamp::whole(seq, send_us, publisher));
    pad(out, min_len);
}

/// Appends the stamp.
pub fn put_stamp(out: &mut impl bytes::BufMut, stamp: &Stamp<'_>) {
    let id = stamp.publisher.as_bytes();
    let id_len = id.len().min(u8::MAX as usize);
    out.put_slice(&MAGIC);
    out.put_u8(VERSION);
    out.put_u32(stamp.seq);
    out.put_u64(stamp.send_us);
    out.put_u8(stamp.part);
    out.put_u8(stamp.parts);
    out.put_u8(stamp.layer);
    out.put_u8(id_len as u8);
    out.put_slice(&id[..id_len]);
}

/// How many bytes [`put_stamp`] writes for `publisher`.
pub fn stamp_len(publisher: &str) -> usize {
    FIXED + publisher.len().min(u8::MAX as usize)
}

fn pad(out: &mut Vec<u8>, min_len: usize) {
    if out.len() < min_len {
        out.resize(min_len, 0);
    }
}

/// Reads a payload written by [`encode`] (Opus, data) or an RTP VP8 payload written by
/// [`crate::video`] (descriptor, the frame header on a frame's first packet, then the
/// stamp); `None` for anything else (a stray packet from a client that is not a bot of
/// this harness).
pub fn decode(payload: &[u8]) -> Option<Stamp<'_>> {
    stamp_at(payload, 1).or_else(|| stamp_at(payload, vp8_stamp_offset(payload)?))
}

/// Where the stamp starts in an RTP VP8 payload: after the payload descriptor (RFC 7741
/// 4.2) and, on a frame's first packet, the frame tag (10 bytes for a keyframe, else 3).
fn vp8_stamp_offset(payload: &[u8]) -> Option<usize> {
    let b0 = *payload.first()?;
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let x = *payload.get(1)?;
        at = 2;
        if x & 0x80 != 0 {
            at += if payload.get(at)? & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1;
        }
        if x & 0x30 != 0 {
            at += 1;
        }
    }
    let starts_frame = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    if !starts_frame {
        return Some(at);
    }
    let keyframe = payload.get(at)? & 0x01 == 0;
    Some(at + if keyframe { 10 } else { 3 })
}

fn stamp_at(payload: &[u8], at: usize) -> Option<Stamp<'_>> {
    let p = payload.get(at..)?;
    if p.len() < FIXED || p[0..4] != MAGIC || p[4] != VERSION {
        return None;
    }
    let seq = u32::from_be_bytes(p[5..9].try_into().ok()?);
    let send_us = u64::from_be_bytes(p[9..17].try_into().ok()?);
    let (part, parts, layer) = (p[17], p[18], p[19]);
    if part >= parts {
        return None;
    }
    let id_len = p[20] as usize;
    let publisher = std::str::from_utf8(p.get(FIXED..FIXED + id_len)?).ok()?;
    Some(Stamp {
        seq,
        send_us,
        part,
        parts,
        layer,
        publisher,
    })
}

/// Publisher-side counts per send-time bin, plus the pacing loop's worst lateness.
#[derive(Debug, Default)]
pub struct SendBins {
    bin: Option<u64>,
    packets: u32,
    max_lag_us: u64,
}

impl SendBins {
    /// Records a packet sent at `send_us`, `lag_us` after it was due. Returns the
    /// previous bin's event when this packet opens a new bin.
    pub fn record(&mut self, bot: &str, track: &str, send_us: u64, lag_us: u64) -> Option<Event> {
        let bin = send_us / BIN_US;
        let closed = match self.bin {
            Some(b) if b != bin => self.take(bot, track),
            _ => None,
        };
        self.bin = Some(bin);
        self.packets += 1;
        self.max_lag_us = self.max_lag_us.max(lag_us);
        closed
    }

    /// Closes the open bin (end of sending).
    pub fn take(&mut self, bot: &str, track: &str) -> Option<Event> {
        let bin = self.bin.take()?;
        let ev = Event::MediaSent {
            bot: bot.to_owned(),
            track: track.to_owned(),
            bin,
            packets: self.packets,
            max_pacing_lag_us: self.max_lag_us,
        };
        self.packets = 0;
        self.max_lag_us = 0;
        Some(ev)
    }
}

struct Bin {
    packets: u32,
    max_gap_us: u64,
    /// Each packet's one-way latency, µs (at most [`LATE_AFTER_US`], so it fits): kept
    /// raw and put into a histogram once, when the bin closes. A histogram per open bin
    /// (tens of kB each, three or so open per pair) was most of a bot's memory.
    latencies_us: Vec<u32>,
}

/// What one received packet meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// The first packet of this pair.
    pub first: bool,
    /// It ended a gap longer than [`GAP_EVENT_US`] that started at this time.
    pub gap_from_us: Option<u64>,
}

/// Subscriber-side state for one (subscriber, remote track) pair.
pub struct ReceiveBins {
    bins: BTreeMap<u64, Bin>,
    last_arrival_us: Option<u64>,
    /// Packets that arrived after [`LATE_AFTER_US`]: counted as lost.
    pub late: u64,
    /// Bins at or below this are closed; their packets arrive too late.
    closed_through: Option<u64>,
    recent: SeqWindow,
}

impl Default for ReceiveBins {
    fn default() -> Self {
        Self::new()
    }
}

impl ReceiveBins {
    pub fn new() -> Self {
        Self {
            bins: BTreeMap::new(),
            last_arrival_us: None,
            late: 0,
            closed_through: None,
            recent: SeqWindow::default(),
        }
    }

    /// Records a packet arriving at `now_us`.
    pub fn record(&mut self, stamp: &Stamp<'_>, now_us: u64) -> Arrival {
        let first = self.last_arrival_us.is_none();
        // A packet the SFU forwarded twice (a retransmission) counts once.
        if !self.recent.insert(stamp.seq) {
            return Arrival {
                first,
                gap_from_us: None,
            };
        }
        let bin_id = stamp.send_us / BIN_US;
        let latency = now_us.saturating_sub(stamp.send_us);
        if latency > LATE_AFTER_US || self.closed_through.is_some_and(|c| bin_id <= c) {
            self.late += 1;
            return Arrival {
                first,
                gap_from_us: None,
            };
        }
        let gap = self
            .last_arrival_us
            .map_or(0, |last| now_us.saturating_sub(last));
        let gap_from_us = self.last_arrival_us.filter(|_| gap > GAP_EVENT_US);
        self.last_arrival_us = Some(now_us);
        let bin = self.bins.entry(bin_id).or_insert_with(|| Bin {
            packets: 0,
            max_gap_us: 0,
            latencies_us: Vec::new(),
        });
        bin.packets += 1;
        bin.max_gap_us = bin.max_gap_us.max(gap);
        bin.latencies_us.push(latency.max(1) as u32);
        Arrival { first, gap_from_us }
    }

    /// Closes every bin whose packets can no longer arrive in time at `now_us` (all of
    /// them when `all`), returning their events.
    pub fn flush(
        &mut self,
        bot: &str,
        publisher: &str,
        track: &str,
        now_us: u64,
        all: bool,
    ) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some((&bin_id, _)) = self.bins.first_key_value() {
            let bin_end = (bin_id + 1) * BIN_US;
            if !all && bin_end + LATE_AFTER_US > now_us {
                break;
            }
            let bin = self.bins.remove(&bin_id).expect("first key exists");
            self.closed_through = Some(self.closed_through.map_or(bin_id, |c| c.max(bin_id)));
            out.push(Event::MediaReceived {
                bot: bot.to_owned(),
                publisher: publisher.to_owned(),
                track: track.to_owned(),
                bin: bin_id,
                packets: bin.packets,
                max_gap_us: bin.max_gap_us,
                latency_hist: encode_latencies(&bin.latencies_us),
            });
        }
        out
    }
}

/// Remembers the last 1024 sequence numbers seen, to drop duplicates cheaply.
#[derive(Default)]
struct SeqWindow {
    highest: Option<u32>,
    seen: [u64; 16],
}

impl SeqWindow {
    /// `false` when `seq` was seen already (or is too old to tell: treated as seen).
    fn insert(&mut self, seq: u32) -> bool {
        const SPAN: u32 = 1024;
        let Some(high) = self.highest else {
            self.highest = Some(seq);
            self.set(seq);
            return true;
        };
        if seq > high {
            // Clear the slots the window slides over.
            let advance = (seq - high).min(SPAN);
            for s in 1..=advance {
                self.clear(high.wrapping_add(s));
            }
            self.highest = Some(seq);
            self.set(seq);
            return true;
        }
        if high - seq >= SPAN || self.get(seq) {
            return false;
        }
        self.set(seq);
        true
    }
    fn slot(seq: u32) -> (usize, u64) {
        let i = (seq % 1024) as usize;
        (i / 64, 1u64 << (i % 64))
    }
    fn set(&mut self, seq: u32) {
        let (w, b) = Self::slot(seq);
        self.seen[w] |= b;
    }
    fn clear(&mut self, seq: u32) {
        let (w, b) = Self::slot(seq);
        self.seen[w] &= !b;
    }
    fn get(&self, seq: u32) -> bool {
        let (w, b) = Self::slot(seq);
        self.seen[w] & b != 0
    }
}

/// The V2 histogram of `latencies_us`, built in one scratch histogram per thread (its
/// counts array stays allocated; only the bins' raw values are kept per pair).
fn encode_latencies(latencies_us: &[u32]) -> String {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Histogram<u64>> =
            std::cell::RefCell::new(new_latency_histogram());
    }
    SCRATCH.with(|h| {
        let mut h = h.borrow_mut();
        h.reset();
        for &l in latencies_us {
            // saturating: a latency beyond the range is clamped, never dropped.
            h.saturating_record(u64::from(l));
        }
        encode_histogram(&h)
    })
}

/// One-way latencies from 1 µs to 60 s at 3 significant figures.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid")
}

/// V2 serialization, base64: the form events carry histograms in.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    use base64::Engine as _;
    let mut buf = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut buf)
        .expect("serializing into a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_pads() {
        let mut buf = Vec::new();
        encode(&mut buf, OPUS_TOC, 7, 123_456, "speaker-1", 60);
        assert_eq!(buf.len(), 60);
        assert_eq!(buf[0], OPUS_TOC);
        assert_eq!(decode(&buf), Some(Stamp::whole(7, 123_456, "speaker-1")));
        assert_eq!(decode(&buf[..10]), None);
        assert_eq!(decode(b"\xF8not a harness payload at all"), None);
    }

    #[test]
    fn send_bins_close_when_a_new_bin_opens() {
        let mut s = SendBins::default();
        assert!(s.record("a", "t", 10, 0).is_none());
        assert!(s.record("a", "t", 999_999, 500).is_none());
        let Some(Event::MediaSent {
            bin,
            packets,
            max_pacing_lag_us,
            ..
        }) = s.record("a", "t", 1_000_000, 0)
        else {
            panic!("bin 0 should close")
        };
        assert_eq!((bin, packets, max_pacing_lag_us), (0, 2, 500));
        let Some(Event::MediaSent { bin, packets, .. }) = s.take("a", "t") else {
            panic!()
        };
        assert_eq!((bin, packets), (1, 1));
    }

    fn stamp(seq: u32, send_us: u64) -> Stamp<'static> {
        Stamp::whole(seq, send_us, "p")
    }

    #[test]
    fn receive_bins_count_by_send_time_drop_duplicates_and_late_packets() {
        let mut r = ReceiveBins::new();
        assert!(r.record(&stamp(0, 0), 5_000).first);
        assert_eq!(
            r.record(&stamp(1, 20_000), 25_000),
            Arrival {
                first: false,
                gap_from_us: None
            }
        );
        r.record(&stamp(1, 20_000), 26_000); // duplicate
        // bin 1, after a 1.675 s gap
        assert_eq!(
            r.record(&stamp(60, 1_200_000), 1_700_000).gap_from_us,
            Some(25_000)
        );
        r.record(&stamp(61, 1_220_000), 1_220_000 + LATE_AFTER_US + 1); // too late
        assert_eq!(r.late, 1);
        let evs = r.flush("s", "p", "t", 10_000_000, false);
        let got: Vec<(u64, u32, u64)> = evs
            .iter()
            .map(|e| match e {
                Event::MediaReceived {
                    bin,
                    packets,
                    max_gap_us,
                    ..
                } => (*bin, *packets, *max_gap_us),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(got, vec![(0, 2, 20_000), (1, 1, 1_675_000)]);
        // A packet for a closed bin is late, not counted again.
        r.record(&stamp(2, 40_000), 10_000_001);
        assert_eq!(r.late, 2);
    }

    #[test]
    fn flush_keeps_bins_that_packets_can_still_reach() {
        let mut r = ReceiveBins::new();
        r.record(&stamp(0, 0), 1_000);
        assert!(r.flush("s", "p", "t", 2_500_000, false).is_empty());
        assert_eq!(r.flush("s", "p", "t", 3_000_000, false).len(), 1);
    }

    #[test]
    fn seq_window_slides() {
        let mut w = SeqWindow::default();
        assert!(w.insert(5));
        assert!(!w.insert(5));
        assert!(w.insert(3000));
        assert!(!w.insert(5)); // too old to tell
        assert!(w.insert(2999));
        assert!(w.insert(5 + 1024 * 3)); // 3077: slot of 5 was cleared by the slide
    }
}
