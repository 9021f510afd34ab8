//! Adding a serialized latency histogram (HdrHistogram V2, base64, as bots put them in
//! `MediaReceived`) into an accumulator without building a histogram per event.
//!
//! Deserializing allocates and zeroes a full counts array (~140 KB for 1 µs..60 s at three
//! digits) and `Histogram::add` then walks all of it, for a bin that holds 50 samples: on
//! a 1-hour run that was 70% of the time `report` took. The V2 form already lists the
//! counts run-length encoded, so walking it and recording each non-zero count is exact
//! and touches only what is there. The index → value mapping is HdrHistogram's own
//! (documented in its V2 format description); the tests check it against the crate.

use base64::Engine as _;
use hdrhistogram::Histogram;

/// `0x1c849303 | 0x10`: an uncompressed V2 histogram.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_HEADER_LEN: usize = 40;

/// Decodes base64 into `scratch` and records every count of the V2 histogram into `acc`.
/// Returns the number of samples added, or `None` (and adds nothing) when the text is
/// not a histogram of the supported form.
pub fn add_serialized(acc: &mut Histogram<u64>, b64: &str, scratch: &mut Vec<u8>) -> Option<u64> {
    scratch.clear();
    base64::engine::general_purpose::STANDARD
        .decode_vec(b64, scratch)
        .ok()?;
    let counts = decode_v2(scratch)?;
    // Validate everything before touching `acc`, so a corrupt event adds nothing.
    let mut pairs = Vec::new();
    for item in counts {
        pairs.push(item?);
    }
    let mut n = 0;
    for (value, count) in pairs {
        // An auto-resizing accumulator takes any value; a fixed one refuses what it
        // cannot hold rather than clamping it to its top.
        if acc.record_n(value, count).is_ok() {
            n += count;
        }
    }
    Some(n)
}

/// Iterates the (value, count) pairs of a V2 histogram's non-zero counts; an item is
/// `None` when the payload turns out to be corrupt.
fn decode_v2(buf: &[u8]) -> Option<impl Iterator<Item = Option<(u64, u64)>> + '_> {
    let u32_at = |i: usize| Some(u32::from_be_bytes(buf.get(i..i + 4)?.try_into().ok()?));
    let u64_at = |i: usize| Some(u64::from_be_bytes(buf.get(i..i + 8)?.try_into().ok()?));
    if u32_at(0)? != V2_COOKIE || u32_at(8)? != 0 {
        return None; // compressed, or a normalizing offset: not what bots write
    }
    let payload_len = u32_at(4)? as usize;
    let sigfig = u32_at(12)?;
    let low = u64_at(16)?;
    if f64::from_bits(u64_at(32)?) != 1.0 || !(1..=5).contains(&sigfig) || low == 0 {
        return None;
    }
    let payload = buf.get(V2_HEADER_LEN..V2_HEADER_LEN.checked_add(payload_len)?)?;
    let layout = Layout::new(low, sigfig);
    let mut pos = 0;
    let mut index: u64 = 0;
    Some(std::iter::from_fn(move || {
        loop {
            if pos >= payload.len() {
                return None;
            }
            let Some((zz, read)) = varint(&payload[pos..]) else {
                pos = payload.len();
                return Some(None);
            };
            pos += read;
            let v = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
            if v < 0 {
                index = index.saturating_add(v.unsigned_abs());
                continue;
            }
            let i = index;
            index += 1;
            if v > 0 {
                return Some(layout.value_at(i).map(|value| (value, v as u64)));
            }
        }
    }))
}

/// HdrHistogram's bucket layout for a lowest discernible value and precision.
struct Layout {
    unit_magnitude: u32,
    half_count_magnitude: u32,
}

impl Layout {
    fn new(low: u64, sigfig: u32) -> Self {
        let largest = 2 * 10u64.pow(sigfig);
        let count_magnitude = 64 - (largest - 1).leading_zeros(); // ceil(log2(largest))
        Layout {
            unit_magnitude: 63 - low.leading_zeros(), // floor(log2(low))
            half_count_magnitude: count_magnitude - 1,
        }
    }

    /// The lowest value counted at `index` (what the crate's own `value_for` gives).
    fn value_at(&self, index: u64) -> Option<u64> {
        let half = 1u64 << self.half_count_magnitude;
        let bucket = (index >> self.half_count_magnitude).checked_sub(1);
        let (bucket, sub) = match bucket {
            Some(b) => (b, (index & (half - 1)) + half),
            None => (0, index & (half - 1)),
        };
        let shift = u32::try_from(bucket).ok()? + self.unit_magnitude;
        (shift < 64 && sub.leading_zeros() >= shift).then(|| sub << shift)
    }
}

/// LEB128-64b9B: up to eight 7-bit groups, then a ninth byte taken whole.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for i in 0..8 {
        let byte = *b.get(i)?;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    Some((v | u64::from(*b.get(8)?) << 56, 9))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{Serializer, V2Serializer};

    fn encode(h: &Histogram<u64>) -> String {
        let mut buf = Vec::new();
        V2Serializer::new().serialize(h, &mut buf).unwrap();
        base64::engine::general_purpose::STANDARD.encode(buf)
    }

    fn sample(seed: u64, n: usize, max: u64) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        let mut x = seed;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            h.record(1 + x % max).unwrap();
        }
        h
    }

    #[test]
    fn adding_serialized_equals_deserialize_and_add() {
        let mut ours = Histogram::<u64>::new(3).unwrap();
        let mut theirs = Histogram::<u64>::new(3).unwrap();
        let mut scratch = Vec::new();
        for (seed, max) in [(1, 2_000), (2, 50_000), (3, 59_000_000), (4, 1)] {
            let h = sample(seed, 500, max);
            let b64 = encode(&h);
            assert_eq!(add_serialized(&mut ours, &b64, &mut scratch), Some(500));
            theirs.add(&h).unwrap();
        }
        assert_eq!(ours.len(), theirs.len());
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                ours.value_at_quantile(q),
                theirs.value_at_quantile(q),
                "q={q}"
            );
        }
        let a: Vec<_> = ours
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        let b: Vec<_> = theirs
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn other_layouts_map_indexes_like_the_crate() {
        for (low, sigfig) in [(1, 2), (1000, 3), (7, 4), (1, 1)] {
            let mut h = Histogram::<u64>::new_with_bounds(low, 1 << 40, sigfig).unwrap();
            for v in [low, low * 3, 12_345 * low, 1 << 39] {
                h.record(v).unwrap();
            }
            let mut acc = Histogram::<u64>::new_with_bounds(low, 1 << 40, sigfig).unwrap();
            add_serialized(&mut acc, &encode(&h), &mut Vec::new()).unwrap();
            let a: Vec<_> = acc.iter_recorded().map(|v| v.value_iterated_to()).collect();
            let b: Vec<_> = h.iter_recorded().map(|v| v.value_iterated_to()).collect();
            assert_eq!(a, b, "low {low} sigfig {sigfig}");
        }
    }

    #[test]
    fn empty_histogram_adds_nothing_and_garbage_is_refused_whole() {
        let mut acc = Histogram::<u64>::new(3).unwrap();
        let empty = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        assert_eq!(
            add_serialized(&mut acc, &encode(&empty), &mut Vec::new()),
            Some(0)
        );
        assert_eq!(
            add_serialized(&mut acc, "not base64!", &mut Vec::new()),
            None
        );
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(encode(&sample(9, 10, 5000)))
            .unwrap();
        bytes.truncate(bytes.len() - 1); // payload shorter than its length says
        let torn = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert_eq!(add_serialized(&mut acc, &torn, &mut Vec::new()), None);
        assert!(acc.is_empty());
    }
}
