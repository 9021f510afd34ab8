//! Per-packet cost of what a bot does for every media packet, without the network:
//! building a payload (send path) and decoding + binning it (receive path).
//! These bound how many bots one core can drive before pacing lag marks a run invalid.

use std::hint::black_box;

use bots::media::{self, OPUS_TOC, ReceiveBins, SendBins};
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
    g.bench_function("encode+bin per video frame (833 B)", |b| {
        let mut buf = Vec::with_capacity(900);
        let mut bins = SendBins::default();
        let mut seq = 0u32;
        b.iter(|| {
            let send_us = u64::from(seq) * 33_333;
            media::encode_vp8(
                &mut buf,
                seq.is_multiple_of(100),
                seq,
                send_us,
                "camera-12",
                833,
            );
            black_box(bins.record("camera-12", "TR_vid", send_us, 150));
            seq = seq.wrapping_add(1);
        })
    });
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
    g.bench_function(
        "decode+record per video frame (behind a VP8 descriptor)",
        |b| {
            let mut r = ReceiveBins::new();
            let mut seq = 0u32;
            b.iter_batched(
                || {
                    let mut frame = Vec::with_capacity(900);
                    media::encode_vp8(
                        &mut frame,
                        false,
                        seq,
                        u64::from(seq) * 33_333,
                        "camera-12",
                        833,
                    );
                    seq = seq.wrapping_add(1);
                    // The packetizer's payload descriptor with a 15-bit picture id.
                    [&[0x90u8, 0x80, 0x80, 0x05][..], &frame[..]].concat()
                },
                |payload| {
                    let stamp = media::decode(black_box(&payload)).unwrap();
                    let now = stamp.send_us + 12_345;
                    r.record(&stamp, now);
                    if stamp.seq.is_multiple_of(30) {
                        black_box(r.flush("viewer-1", "camera-12", "TR_vid", now, false));
                    }
                },
                BatchSize::SmallInput,
            )
        },
    );
    g.finish();
}

fn config() -> Criterion {
    // Short runs: two noisy cores; the figures are per packet, so 3 s is plenty.
    Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
}

criterion_group!(name = benches; config = config(); targets = send_path, receive_path);
criterion_main!(benches);
