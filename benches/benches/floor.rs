//! The *floor* cost of receiving one media packet: a real UDP receive on loopback plus an
//! SRTP decrypt, with no WebRTC stack above it (no ICE/DTLS demux, no RTP unmarshal, no
//! interceptors, no async runtime, no bot logic).
//!
//! Why: this is the reference for the lean-bots target of issue #11, *whole-process harness
//! CPU per received packet ≤ 3x this floor*. Nothing that receives SRTP over UDP can do less
//! per packet than a `recvfrom` and a decrypt, so the ratio says how much the harness adds.
//!
//! What each bench times, per packet (`Throughput::Elements(1)`):
//!
//! * `floor/audio`: `send_to` on one blocking loopback socket, `recv_from` on another, then
//!   `decrypt_rtp` of the received bytes. An Opus-sized packet: 12-byte RTP header + 100-byte
//!   payload (112 bytes before SRTP; 128 on the wire with AEAD_AES_128_GCM's 16-byte tag).
//! * `floor/video`: the same with a 1,100-byte payload (1,128 bytes on the wire).
//! * `floor/udp-send-only` and `floor/udp-send-only-video`: the `send_to` alone, for each
//!   size, so it can be subtracted: the modelled receive is `audio - udp-send-only`. On
//!   loopback (as over a veth from an SFU container on the same host) the kernel's delivery,
//!   IP/UDP receive and the enqueue on the socket, runs in the sending thread's `send_to`;
//!   the difference, `recv_from` + decrypt, is what the receiving process itself does.
//!   The receiver is drained outside the timing, every 64 sends.
//! * `floor/decrypt-audio` and `floor/decrypt-video`: `decrypt_rtp` alone (no socket), to
//!   show the split between the syscall and the crypto.
//!
//! Each one is repeated as `floor-aes-cm-sha1-80/...` (no send-only: it does not depend on
//! the profile) for AES128_CM_HMAC_SHA1_80, the other profile LiveKit/pion offer;
//! AEAD_AES_128_GCM is what they negotiate by default.
//!
//! The SRTP is the stack's own: `rtc` 0.21.1's `rtc-srtp` (through its re-export
//! `rtc::srtp`), its default crypto provider (`ring`; for AES-CM and HMAC-SHA1 it uses
//! RustCrypto's `aes`/`ctr`/`sha1`), and the decrypt context built as
//! `rtc`'s peer connection builds its remote context, with a 64-packet replay window. So
//! that no packet is a replay, a ring of 1,024 packets with consecutive sequence numbers is
//! encrypted outside the timing before each 1,024 timed iterations; the decrypted buffer is
//! freed inside it, as a receiver frees it. One packet is sent and one received per
//! iteration, into socket buffers of 4 MiB, so nothing queues or drops (a lost packet fails
//! the bench after 1 s instead of hanging it).
//!
//! Run: `cargo bench -p sfu-harness-benches --bench floor` (add `-- --quick` for a rough
//! figure, or a filter such as `-- floor/audio`).
//! On the 2-core VM the socket figures varied by up to 2x between runs, even when the machine
//! was otherwise idle (the decrypt-only ones varied less): compare the harness with a floor
//! measured on the same machine at about the same time.

use std::hint::black_box;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtc::rtp;
use rtc::shared::marshal::Marshal;
use rtc::srtp::context::Context;
use rtc::srtp::option::srtp_replay_protection;
use rtc::srtp::protection_profile::ProtectionProfile;
use socket2::SockRef;

/// An Opus packet's payload; with the 12-byte header, 112 bytes before SRTP.
const AUDIO_PAYLOAD: usize = 100;
/// A full-size video packet's payload.
const VIDEO_PAYLOAD: usize = 1_100;
/// Packets encrypted (untimed) ahead of each run of timed iterations.
const RING: usize = 1_024;
/// Sends between two (untimed) drains of the receiver in the send-only benches.
const DRAIN_EVERY: usize = 64;
/// SO_RCVBUF / SO_SNDBUF asked for (the kernel caps it at net.core.[rw]mem_max).
const SOCKET_BUFFER: usize = 4 << 20;
/// The receive buffer must hold at least this much for a send-only drain cycle not to drop
/// (a loopback datagram costs about twice its size in socket memory; 4x is a wide margin).
const MIN_RECV_BUFFER: usize = DRAIN_EVERY * (12 + VIDEO_PAYLOAD + 16) * 4;
/// `rtc`'s `DEFAULT_SESSION_SRTP_REPLAY_PROTECTION_WINDOW` for the remote (decrypt) context.
const REPLAY_WINDOW: usize = 64;
const SSRC: u32 = 0x1234_5678;

/// One RTP stream: an encrypting and a decrypting context with the same key and salt, and
/// the next sequence number to send.
struct Stream {
    encrypt: Context,
    decrypt: Context,
    payload: Bytes,
    payload_type: u8,
    seq: u16,
    timestamp: u32,
}

impl Stream {
    fn new(profile: ProtectionProfile, payload_len: usize) -> Self {
        let provider = rtc::crypto::default_provider().expect("rtc's default crypto provider");
        let key: Vec<u8> = (0..profile.key_len()).map(|i| i as u8 ^ 0x5a).collect();
        let salt: Vec<u8> = (0..profile.salt_len()).map(|i| i as u8 ^ 0xa5).collect();
        let context = |replay| {
            Context::new(&key, &salt, profile, replay, None, provider.crypto())
                .expect("an SRTP context")
        };
        let payload: Bytes = (0..payload_len).map(|i| (i * 7) as u8).collect();
        Stream {
            encrypt: context(None),
            decrypt: context(Some(srtp_replay_protection(REPLAY_WINDOW))),
            payload,
            payload_type: if payload_len == AUDIO_PAYLOAD {
                111
            } else {
                96
            },
            seq: 0,
            timestamp: 0,
        }
    }

    /// The next packet of the stream, encrypted.
    fn next(&mut self) -> BytesMut {
        let packet = rtp::Packet {
            header: rtp::Header {
                version: 2,
                payload_type: self.payload_type,
                sequence_number: self.seq,
                timestamp: self.timestamp,
                ssrc: SSRC,
                ..Default::default()
            },
            payload: self.payload.clone(),
        };
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(960);
        let plain = packet.marshal().expect("an RTP packet");
        self.encrypt.encrypt_rtp(&plain).expect("SRTP encrypt")
    }

    /// Replaces `ring` with the stream's next `n` packets, encrypted.
    fn refill(&mut self, ring: &mut Vec<BytesMut>, n: usize) {
        ring.clear();
        ring.extend((0..n).map(|_| self.next()));
    }

    /// Times `each` on `iters` fresh packets, in rings of [`RING`] encrypted untimed.
    fn time(&mut self, iters: u64, mut each: impl FnMut(&mut Context, &[u8])) -> Duration {
        let mut ring = Vec::with_capacity(RING);
        let (mut left, mut total) = (iters, Duration::ZERO);
        while left > 0 {
            let n = left.min(RING as u64);
            self.refill(&mut ring, n as usize);
            let start = Instant::now();
            for packet in &ring {
                each(&mut self.decrypt, packet);
            }
            total += start.elapsed();
            left -= n;
        }
        total
    }
}

/// Two blocking UDP sockets on 127.0.0.1 with big buffers, and a receive buffer.
struct Loopback {
    tx: UdpSocket,
    rx: UdpSocket,
    to: SocketAddr,
    buf: Vec<u8>,
}

impl Loopback {
    fn new() -> Self {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind the receiving socket");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind the sending socket");
        SockRef::from(&rx)
            .set_recv_buffer_size(SOCKET_BUFFER)
            .expect("set SO_RCVBUF");
        SockRef::from(&tx)
            .set_send_buffer_size(SOCKET_BUFFER)
            .expect("set SO_SNDBUF");
        let got = SockRef::from(&rx).recv_buffer_size().expect("SO_RCVBUF");
        assert!(
            got >= MIN_RECV_BUFFER,
            "receive buffer {got} bytes is below {MIN_RECV_BUFFER}: raise net.core.rmem_max"
        );
        rx.set_read_timeout(Some(Duration::from_secs(1)))
            .expect("set a read timeout");
        let to = rx.local_addr().expect("the receiving socket's address");
        Loopback {
            tx,
            rx,
            to,
            buf: vec![0; 2_048],
        }
    }

    fn send(&self, packet: &[u8]) {
        let n = self
            .tx
            .send_to(packet, self.to)
            .expect("send_to on loopback");
        assert_eq!(n, packet.len());
    }

    /// Receives one datagram into `buf`; its length.
    fn recv(&mut self) -> usize {
        let (n, _from) = self
            .rx
            .recv_from(&mut self.buf)
            .expect("a datagram sent on loopback, received within 1 s (was it dropped?)");
        n
    }
}

/// Sends one packet of `stream` and checks it comes back out of the socket and SRTP intact.
fn self_check(stream: &mut Stream, net: &mut Loopback) {
    let packet = stream.next();
    net.send(&packet);
    let n = net.recv();
    let plain = stream.decrypt.decrypt_rtp(&net.buf[..n]).expect("decrypt");
    assert_eq!(&plain[12..], &stream.payload[..], "decrypted payload");
}

fn bench_profile(c: &mut Criterion, group: &str, profile: ProtectionProfile, send_only: bool) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    let mut net = Loopback::new();
    for (name, payload) in [("audio", AUDIO_PAYLOAD), ("video", VIDEO_PAYLOAD)] {
        g.bench_function(name, |b| {
            let mut stream = Stream::new(profile, payload);
            self_check(&mut stream, &mut net);
            b.iter_custom(|iters| {
                stream.time(iters, |decrypt, packet| {
                    net.send(packet);
                    let n = net.recv();
                    black_box(decrypt.decrypt_rtp(&net.buf[..n]).expect("decrypt"));
                })
            })
        });
        if send_only {
            let id = if name == "audio" {
                "udp-send-only".to_owned()
            } else {
                format!("udp-send-only-{name}")
            };
            g.bench_function(id, |b| {
                let packet = Stream::new(profile, payload).next();
                b.iter_custom(|iters| {
                    let (mut left, mut total) = (iters, Duration::ZERO);
                    while left > 0 {
                        let n = left.min(DRAIN_EVERY as u64);
                        let start = Instant::now();
                        for _ in 0..n {
                            net.send(black_box(&packet));
                        }
                        total += start.elapsed();
                        for _ in 0..n {
                            net.recv();
                        }
                        left -= n;
                    }
                    total
                })
            });
        }
        g.bench_function(format!("decrypt-{name}"), |b| {
            let mut stream = Stream::new(profile, payload);
            b.iter_custom(|iters| {
                stream.time(iters, |decrypt, packet| {
                    black_box(decrypt.decrypt_rtp(packet).expect("decrypt"));
                })
            })
        });
    }
    g.finish();
}

fn floor(c: &mut Criterion) {
    bench_profile(c, "floor", ProtectionProfile::AeadAes128Gcm, true);
    bench_profile(
        c,
        "floor-aes-cm-sha1-80",
        ProtectionProfile::Aes128CmHmacSha1_80,
        false,
    );
}

criterion_group!(benches, floor);
criterion_main!(benches);
