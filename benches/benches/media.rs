//! Per-packet cost of what a bot does for every media packet, without the network:
//! building a payload (send path) and decoding + binning it (receive path). The video
//! receive bench times a frame's 8 packets per iteration and counts 8 elements, so its
//! throughput is per packet.
//! These bound how many bots one core can drive before pacing lag marks a run invalid.

use std::hint::black_box;

use bots::media::{self, OPUS_TOC, ReceiveBins, SendBins};
use bots::video::{Frame, Frames};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn send_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("send");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode+bin per audio packet", |b| {
        let mut buf = Vec::with_capacity(80);
        let mut bins = SendBins::default();
        let mut seq = 0u32;
        b.iter(|| {
            let send_us = u64::from(seq) * 20_000;
            media::encode(&mut buf, OPUS_TOC, seq, send_us, "speaker-12", 80);
            black_box(bins.record("speaker-12", "TR_abc", send_us, 150));
            seq = seq.wrapping_add(1);
        })
    });
    g.bench_function(
        "build+bin per video frame (2 Mbit/s at 30 fps: 8 packets)",
        |b| {
            let (mut buf, mut ends) = (bytes::BytesMut::new(), Vec::new());
            let mut bins = SendBins::default();
            let mut seq = 0u32;
            b.iter(|| {
                let send_us = u64::from(seq) * 33_333;
                frame(seq, send_us).build(&mut buf, &mut ends);
                black_box(buf.split().freeze());
                black_box(bins.record("camera-12", "TR_vid", send_us, 150));
                seq = seq.wrapping_add(1);
            })
        },
    );
    g.finish();
}

fn receive_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("receive");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode+record per audio packet", |b| {
        let mut r = ReceiveBins::new();
        let mut seq = 0u32;
        // The payload is built in setup (untimed): this measures only what a subscriber
        // does per packet, with every packet new (no duplicate fast path).
        b.iter_batched(
            || {
                let mut buf = Vec::with_capacity(80);
                media::encode(
                    &mut buf,
                    OPUS_TOC,
                    seq,
                    u64::from(seq) * 20_000,
                    "speaker-12",
                    80,
                );
                seq = seq.wrapping_add(1);
                buf
            },
            |payload| {
                let stamp = media::decode(black_box(&payload)).unwrap();
                let now = stamp.send_us + 12_345;
                r.record(&stamp, now);
                if stamp.seq.is_multiple_of(50) {
                    black_box(r.flush("listener-1", "speaker-12", "TR_abc", now, false));
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(8));
    g.bench_function("decode+reassemble+record per video packet (1,041 B)", |b| {
        let mut frames = Frames::default();
        let mut r = ReceiveBins::new();
        let mut seq = 0u32;
        // One frame's 8 packets built in setup (untimed); timed per packet.
        b.iter_batched(
            || {
                let (mut buf, mut ends) = (bytes::BytesMut::new(), Vec::new());
                frame(seq, u64::from(seq) * 33_333).build(&mut buf, &mut ends);
                seq = seq.wrapping_add(1);
                let mut start = 0;
                ends.iter()
                    .map(|&e| {
                        let p = buf[start..e].to_vec();
                        start = e;
                        p
                    })
                    .collect::<Vec<_>>()
            },
            |packets| {
                for payload in &packets {
                    let stamp = media::decode(black_box(payload)).unwrap();
                    let now = stamp.send_us + 12_345;
                    if let Some(unit) = frames.arrive(&stamp) {
                        r.record(&unit, now);
                        if unit.seq.is_multiple_of(30) {
                            black_box(r.flush("viewer-1", "camera-12", "TR_vid", now, false));
                        }
                    }
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// A delta frame of a 2 Mbit/s, 30 fps top layer.
fn frame(seq: u32, send_us: u64) -> Frame<'static> {
    Frame {
        seq,
        send_us,
        keyframe: false,
        picture_id: (seq & 0x7fff) as u16,
        layer: 2,
        width: 1280,
        height: 720,
        delta_bytes: 8_333,
        publisher: "camera-12",
    }
}

fn config() -> Criterion {
    // Short runs: two noisy cores; the figures are per packet, so 3 s is plenty.
    Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
}

criterion_group!(name = benches; config = config(); targets = send_path, receive_path);
criterion_main!(benches);
