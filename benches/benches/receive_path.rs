//! The lean bot's receive path at scale, with no SFU: how much CPU do 1,000 subscribed
//! audio tracks cost the harness, and does one core hold them?
//!
//! Real parts only below the bot: `LEAN_PEERS` lean peers ([`bots::lean::LeanPeer`], the
//! code a lean bot runs) each answer an offer from a sender `rtc` peer connection with
//! two Opus-sized audio tracks, over real UDP sockets on loopback, with real ICE, DTLS
//! and SRTP (AES-GCM, as LiveKit negotiates). The senders send one stamped packet per
//! track every 20 ms, as the bots' microphones do, and the receivers measure every packet
//! exactly as in a run (stamps decoded, bins, latencies, `MediaReceived` events).
//!
//! The receivers run on one OS thread (a current-thread tokio runtime), the senders on
//! another, so the receive path's cost is that thread's own CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) over a steady window, divided by the packets it measured.
//! "Within one core" means that thread used less than one core while every packet sent
//! arrived (no loss, no kernel drops at the sockets).
//!
//! With `RECEIVE_PATH_KIND=video`, each lean peer receives one VP8 track instead: 30
//! frames a second of 8 packets of 1,100 bytes (2.1 Mbit/s), built by the bots' own
//! packetizer and reassembled by the receivers into frames, as in a run.
//!
//! Run: `cargo bench -p sfu-harness-benches --bench receive_path`
//! (`RECEIVE_PATH_TRACKS=1000` tracks by default, 100 for video; `RECEIVE_PATH_SECONDS=10`
//! measured).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bots::EventSink;
use bots::lean::{LeanPeer, PeerNews};
use bots::media::{self, OPUS_TOC};
use bots::media_tasks::{AUDIO_PAYLOAD_BYTES, AUDIO_PTIME};
use bots::video;
use bytes::{Bytes, BytesMut};
use harness_core::event::{Event, EventRecord};
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;

/// What every sender sends: two audio tracks, or one video track.
#[derive(Clone, Copy)]
struct Load {
    video: bool,
    tracks_per_peer: usize,
    /// Between two packets of a track (audio) or two frames (video).
    every: Duration,
}

impl Load {
    fn from_env() -> Self {
        if std::env::var("RECEIVE_PATH_KIND").as_deref() == Ok("video") {
            Self {
                video: true,
                tracks_per_peer: 1,
                every: Duration::from_micros(33_333),
            }
        } else {
            Self {
                video: false,
                tracks_per_peer: 2,
                every: AUDIO_PTIME,
            }
        }
    }
}

/// A video frame's bytes: 8 packets of 1,100 (`MAX_PACKET_PAYLOAD`).
const VIDEO_FRAME_BYTES: usize = 8 * 1_100;
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The process's resident set, bytes (`VmRSS`).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc_timespec();
    // SAFETY: a valid clock id and a pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn libc_timespec() -> libc::timespec {
    libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    }
}

/// An offer and the offerer's candidate, for one lean peer to answer.
struct Offer {
    sdp: String,
    candidate: RTCIceCandidateInit,
}

struct Answer {
    sdp: String,
    candidate: RTCIceCandidateInit,
}

/// Shared between the threads: when to measure, and what was sent in the window.
#[derive(Default)]
struct Shared {
    connected: AtomicU64,
    sending: AtomicBool,
    stop: AtomicBool,
    /// Packets sent.
    sent: AtomicU64,
    /// Media units sent: packets of audio, whole frames of video (what the bins count).
    units: AtomicU64,
}

fn main() {
    let load = Load::from_env();
    let tracks = env_or("RECEIVE_PATH_TRACKS", if load.video { 100 } else { 1000 }) as usize;
    let seconds = env_or("RECEIVE_PATH_SECONDS", 10);
    let peers = tracks.div_ceil(load.tracks_per_peer);
    let tracks = peers * load.tracks_per_peer;
    println!(
        "receive_path: {tracks} subscribed {} tracks on {peers} lean peers (one thread), {seconds} s measured",
        if load.video { "video" } else { "audio" }
    );
    let rss_start = rss();
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel::<EventRecord>();
    let sink = EventSink::new(Instant::now(), tx);
    let shared = Arc::new(Shared::default());
    let (offers_tx, offers_rx) = std::sync::mpsc::channel::<Vec<Offer>>();
    let (answers_tx, answers_rx) = std::sync::mpsc::channel::<Vec<Answer>>();
    // The receive thread's CPU time, read on that thread whenever the main thread asks.
    let (cpu_req, cpu_req_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (cpu_tx, cpu_rx) = std::sync::mpsc::channel::<Duration>();

    let senders = {
        let (shared, sink) = (shared.clone(), sink.clone());
        std::thread::spawn(move || {
            runtime().block_on(send_all(peers, load, shared, sink, offers_tx, answers_rx))
        })
    };
    let receivers = {
        let (shared, sink) = (shared.clone(), sink.clone());
        std::thread::spawn(move || {
            runtime().block_on(receive_all(
                shared, sink, offers_rx, answers_tx, cpu_req_rx, cpu_tx,
            ))
        })
    };

    // Wait for every connection, then a warm-up second, then the window.
    let t0 = Instant::now();
    while shared.connected.load(Ordering::Relaxed) < 2 * peers as u64 {
        if t0.elapsed() > Duration::from_secs(60) {
            eprintln!(
                "only {} of {} connections up after 60 s",
                shared.connected.load(Ordering::Relaxed),
                2 * peers
            );
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("all connected after {:.1} s", t0.elapsed().as_secs_f64());
    shared.sending.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(2));
    let sent_before = shared.sent.load(Ordering::Relaxed);
    let rss_media = rss();
    let cpu_now = |cpu_req: &tokio::sync::mpsc::UnboundedSender<()>| {
        cpu_req.send(()).expect("receive thread");
        cpu_rx.recv().expect("receiver CPU")
    };
    let wall0 = Instant::now();
    let cpu0 = cpu_now(&cpu_req);
    std::thread::sleep(Duration::from_secs(seconds));
    let cpu1 = cpu_now(&cpu_req);
    let wall = wall0.elapsed();
    let sent = shared.sent.load(Ordering::Relaxed) - sent_before;
    shared.sending.store(false, Ordering::Relaxed);
    // Let the last packets land and every bin close.
    std::thread::sleep(Duration::from_millis(500));
    shared.stop.store(true, Ordering::Relaxed);
    drop(cpu_req);
    let _ = senders.join();
    let _ = receivers.join();

    let (mut received, mut dropped, mut received_all, mut sent_all) = (0u64, 0u64, 0u64, 0u64);
    let (w0, w1) = (sink.us_at(wall0), sink.us_at(wall0 + wall));
    while let Ok(r) = events.try_recv() {
        match r.event {
            Event::MediaReceived { packets, .. } => {
                received_all += u64::from(packets);
                if (w0..w1).contains(&r.t_us) {
                    received += u64::from(packets);
                }
            }
            Event::ReceiveDropped { dropped: d, .. } => dropped += d,
            _ => {}
        }
    }
    sent_all += shared.units.load(Ordering::Relaxed);
    let unit = if load.video { "frames" } else { "packets" };
    let cpu = cpu1 - cpu0;
    let cores = cpu.as_secs_f64() / wall.as_secs_f64();
    let rate = sent as f64 / wall.as_secs_f64();
    println!(
        "sent {sent} packets in {:.1} s ({rate:.0}/s, {:.1} per track per s); measured {received} {unit} in bins closed in the window",
        wall.as_secs_f64(),
        rate / tracks as f64
    );
    println!(
        "receive thread: {:.3} s CPU over {:.1} s = {cores:.3} cores; {:.2} us per packet sent in the window",
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / sent.max(1) as f64
    );
    println!(
        "whole run: {sent_all} {unit} sent, {received_all} measured, {} missing; {dropped} datagrams dropped at full sockets",
        sent_all.saturating_sub(received_all)
    );
    println!(
        "memory: {:.1} MB resident with media flowing, {:.2} MB per peer pair (a sender and a lean receiver, both in this process): an upper bound per lean peer",
        rss_media as f64 / 1e6,
        rss_media.saturating_sub(rss_start) as f64 / 1e6 / peers as f64
    );
    let within = cores < 1.0 && dropped == 0 && received_all + tracks as u64 >= sent_all;
    println!(
        "{tracks} tracks {} within one core",
        if within { "held" } else { "did NOT hold" }
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn codec(video: bool) -> RTCRtpCodec {
    if video {
        return RTCRtpCodec {
            mime_type: "video/VP8".to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        };
    }
    RTCRtpCodec {
        mime_type: "audio/opus".to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

struct Sender {
    pc: RTCPeerConnection,
    socket: UdpSocket,
    local_addr: SocketAddr,
    /// Per track: its sender, SSRC, and the stamp's publisher name.
    tracks: Vec<(RTCRtpSenderId, u32, String)>,
}

async fn send_all(
    peers: usize,
    load: Load,
    shared: Arc<Shared>,
    sink: EventSink,
    offers_tx: std::sync::mpsc::Sender<Vec<Offer>>,
    answers_rx: std::sync::mpsc::Receiver<Vec<Answer>>,
) {
    let mut senders = Vec::with_capacity(peers);
    let mut offers = Vec::with_capacity(peers);
    for i in 0..peers {
        let socket = UdpSocket::bind(SocketAddr::new(LOCALHOST, 0))
            .await
            .expect("bind");
        let local_addr = socket.local_addr().expect("address");
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs().expect("codecs");
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)
            .expect("interceptors");
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .build(Instant::now())
            .expect("a peer connection");
        let mut tracks = Vec::new();
        for t in 0..load.tracks_per_peer {
            let ssrc = rand_ssrc(i, t);
            let track = MediaStreamTrack::new(
                format!("s{i}"),
                format!("TR_{i}_{t}"),
                "microphone".to_owned(),
                if load.video {
                    RtpCodecKind::Video
                } else {
                    RtpCodecKind::Audio
                },
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec: codec(load.video),
                    ..Default::default()
                }],
            );
            let id = pc.add_track(track).expect("a track");
            tracks.push((id, ssrc, format!("pub-{i}-{t}")));
        }
        let offer = pc.create_offer(None).expect("an offer");
        pc.set_local_description(Instant::now(), offer.clone())
            .expect("local offer");
        let candidate = bots::lean::peer::host_candidate(local_addr).expect("a candidate");
        pc.add_local_candidate(candidate.clone())
            .expect("local candidate");
        offers.push(Offer {
            sdp: offer.sdp,
            candidate,
        });
        senders.push(Sender {
            pc,
            socket,
            local_addr,
            tracks,
        });
    }
    offers_tx.send(offers).expect("receiver thread");
    let answers = answers_rx.recv().expect("answers");
    let mut set = tokio::task::JoinSet::new();
    for (mut s, a) in senders.into_iter().zip(answers) {
        s.pc.set_remote_description(
            Instant::now(),
            RTCSessionDescription::answer(a.sdp).expect("an answer"),
        )
        .expect("remote answer");
        s.pc.add_remote_candidate(a.candidate)
            .expect("remote candidate");
        set.spawn(send_one(s, load, shared.clone(), sink.clone()));
    }
    while set.join_next().await.is_some() {}
}

fn rand_ssrc(i: usize, t: usize) -> u32 {
    0x1000_0000 ^ ((i as u32) << 4) ^ t as u32
}

async fn send_one(mut s: Sender, load: Load, shared: Arc<Shared>, sink: EventSink) {
    let mut buf = vec![0u8; 1500];
    let mut payload = Vec::with_capacity(AUDIO_PAYLOAD_BYTES + 64);
    let mut tick = tokio::time::interval(load.every);
    let (mut frame, mut ends) = (BytesMut::new(), Vec::new());
    let mut seq: u32 = 0;
    let mut rtp_seq: u16 = 0;
    let mut up = false;
    let mut payload_types: HashMap<RTCRtpSenderId, u8> = HashMap::new();
    loop {
        while let Some(out) = s.pc.poll_write() {
            let _ = s
                .socket
                .send_to(&out.message, out.transport.peer_addr)
                .await;
        }
        while let Some(ev) = s.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = ev
                && state == RTCPeerConnectionState::Connected
                && !up
            {
                up = true;
                shared.connected.fetch_add(1, Ordering::Relaxed);
            }
        }
        while s.pc.poll_read().is_some() {}
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let wake =
            s.pc.poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            r = s.socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    let _ = s.pc.handle_read(TaggedBytesMut {
                        now: Instant::now(),
                        transport: TransportContext {
                            local_addr: s.local_addr,
                            peer_addr: from,
                            ecn: None,
                            transport_protocol: TransportProtocol::UDP,
                        },
                        message: BytesMut::from(&buf[..n]),
                    });
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let _ = s.pc.handle_timeout(Instant::now());
            }
            _ = tick.tick() => {
                if !(up && shared.sending.load(Ordering::Relaxed)) {
                    continue;
                }
                for (id, ssrc, publisher) in &s.tracks {
                    let Some(mut sender) = s.pc.rtp_sender(*id) else { continue };
                    let pt = *payload_types.entry(*id).or_insert_with(|| {
                        sender
                            .get_parameters()
                            .rtp_parameters
                            .codecs
                            .first()
                            .map_or(111, |c| c.payload_type)
                    });
                    let payloads: Vec<Bytes> = if load.video {
                        video::Frame {
                            seq,
                            send_us: sink.now_us(),
                            keyframe: false,
                            picture_id: (seq & 0x7fff) as u16,
                            layer: 2,
                            width: 1280,
                            height: 720,
                            delta_bytes: VIDEO_FRAME_BYTES,
                            publisher,
                        }
                        .build(&mut frame, &mut ends);
                        let mut start = 0;
                        ends.iter()
                            .map(|&end| {
                                let part = Bytes::copy_from_slice(&frame[start..end]);
                                start = end;
                                part
                            })
                            .collect()
                    } else {
                        media::encode(&mut payload, OPUS_TOC, seq, sink.now_us(), publisher, AUDIO_PAYLOAD_BYTES);
                        vec![Bytes::copy_from_slice(&payload)]
                    };
                    let last = payloads.len() - 1;
                    for (i, part) in payloads.into_iter().enumerate() {
                        let packet = rtc::rtp::Packet {
                            header: rtc::rtp::Header {
                                version: 2,
                                payload_type: pt,
                                sequence_number: rtp_seq,
                                timestamp: seq.wrapping_mul(if load.video { 3000 } else { 960 }),
                                ssrc: *ssrc,
                                marker: load.video && i == last,
                                ..Default::default()
                            },
                            payload: part,
                        };
                        rtp_seq = rtp_seq.wrapping_add(1);
                        if sender.write_rtp(Instant::now(), packet).is_ok() {
                            shared.sent.fetch_add(1, Ordering::Relaxed);
                            if !load.video || i == last {
                                shared.units.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
                seq = seq.wrapping_add(1);
            }
        }
    }
}

async fn receive_all(
    shared: Arc<Shared>,
    sink: EventSink,
    offers_rx: std::sync::mpsc::Receiver<Vec<Offer>>,
    answers_tx: std::sync::mpsc::Sender<Vec<Answer>>,
    mut cpu_req: tokio::sync::mpsc::UnboundedReceiver<()>,
    cpu_tx: std::sync::mpsc::Sender<Duration>,
) {
    let offers = offers_rx.recv().expect("offers");
    let mut answers = Vec::with_capacity(offers.len());
    let mut lean = Vec::with_capacity(offers.len());
    for (i, o) in offers.into_iter().enumerate() {
        let mut peer = LeanPeer::bind(LOCALHOST, format!("lean-{i}"), sink.clone())
            .await
            .expect("a lean peer");
        peer.add_remote_candidate(o.candidate);
        let (sdp, candidate) = peer.answer(o.sdp).expect("an answer");
        answers.push(Answer {
            sdp,
            candidate: candidate.expect("the first answer's candidate"),
        });
        lean.push(peer);
    }
    answers_tx.send(answers).expect("sender thread");
    let mut set = tokio::task::JoinSet::new();
    for mut peer in lean {
        let shared = shared.clone();
        set.spawn(async move {
            let mut flush = tokio::time::interval(Duration::from_millis(500));
            let mut up = false;
            while !shared.stop.load(Ordering::Relaxed) {
                tokio::select! {
                    r = peer.next() => {
                        if r.is_err() { break; }
                        for n in peer.news() {
                            if matches!(n, PeerNews::Connected(_)) && !up {
                                up = true;
                                shared.connected.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    _ = flush.tick() => peer.flush_bins(false),
                }
            }
            peer.close().await;
        });
    }
    set.spawn(async move {
        while cpu_req.recv().await.is_some() {
            let _ = cpu_tx.send(thread_cpu());
        }
    });
    while set.join_next().await.is_some() {}
}
