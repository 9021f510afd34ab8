//! The bot's socket layer: a `webrtc` [`Runtime`] that hands out the tokio runtime's
//! sockets behind a [`Gate`].
//!
//! While the gate is shut (the bot is asleep, DESIGN.md's `sleep` fault) every datagram
//! in or out is dropped, not queued, and an ICE-TCP stream is cut: what a laptop's
//! network does while its lid is shut. Reads and writes go straight through otherwise;
//! the one extra cost per datagram is an atomic load.
//!
//! The same layer delays packets (DESIGN.md's `delay`/`jitter` where the kernel has no
//! netem): each datagram out goes through a delay line and each datagram in waits in an
//! inbox until it is due, `delay` plus or minus up to `jitter` later, in order (no
//! reordering). The signal WebSocket is not delayed.
//!
//! Everything else (tasks, timers, name resolution) is the tokio runtime's, unchanged.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::watch;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit,
};

/// Open (awake) or shut (asleep). One per bot, shared by every socket of its sessions.
pub struct Gate {
    asleep: watch::Sender<bool>,
    /// Mirrors `asleep` for the per-datagram check (no lock on the packet path).
    shut: AtomicBool,
    /// `(delay, jitter)` while a delay is in force.
    delay: std::sync::Mutex<Option<(Duration, Duration)>>,
    delayed: AtomicBool,
    /// ICE connectivity checks seen, per (local socket, remote address): binding
    /// requests sent, success responses received.
    checks: std::sync::Mutex<std::collections::BTreeMap<(SocketAddr, SocketAddr), (u32, u32)>>,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("asleep", &self.is_asleep())
            .finish()
    }
}

impl Gate {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            asleep: watch::Sender::new(false),
            shut: AtomicBool::new(false),
            delay: std::sync::Mutex::new(None),
            delayed: AtomicBool::new(false),
            checks: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        })
    }

    /// ICE candidate pairs (over UDP) the bot's connections checked since the last call,
    /// and how many of them never got a success response; starts counting afresh.
    pub fn take_pair_counts(&self) -> (u32, u32) {
        let pairs = std::mem::take(&mut *self.checks.lock().unwrap_or_else(|p| p.into_inner()));
        let tried = pairs.values().filter(|(req, _)| *req > 0).count() as u32;
        let failed = pairs
            .values()
            .filter(|(req, ok)| *req > 0 && *ok == 0)
            .count() as u32;
        (tried, failed)
    }

    fn count_check(&self, local: SocketAddr, remote: SocketAddr, request: bool) {
        let mut checks = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        let c = checks.entry((local, remote)).or_default();
        if request {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }

    /// Every packet from now on, each way, `delay` ± up to `jitter` late.
    pub fn set_delay(&self, delay: Duration, jitter: Duration) {
        *self.delay.lock().unwrap_or_else(|p| p.into_inner()) = Some((delay, jitter));
        self.delayed.store(true, Ordering::SeqCst);
    }

    pub fn clear_delay(&self) {
        self.delayed.store(false, Ordering::SeqCst);
        *self.delay.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// This packet's extra latency, if a delay is in force.
    fn packet_delay(&self) -> Option<Duration> {
        if !self.delayed.load(Ordering::Relaxed) {
            return None;
        }
        let (delay, jitter) = (*self.delay.lock().unwrap_or_else(|p| p.into_inner()))?;
        let spread = jitter.as_secs_f64() * (2.0 * rand::random::<f64>() - 1.0);
        Some(Duration::from_secs_f64(
            (delay.as_secs_f64() + spread).max(0.0),
        ))
    }

    pub fn sleep(&self) {
        self.shut.store(true, Ordering::SeqCst);
        self.asleep.send_replace(true);
    }

    pub fn wake(&self) {
        self.shut.store(false, Ordering::SeqCst);
        self.asleep.send_replace(false);
    }

    pub fn is_asleep(&self) -> bool {
        self.shut.load(Ordering::Relaxed)
    }

    /// Completes when the gate is (or becomes) shut.
    async fn shuts(&self) {
        let mut rx = self.asleep.subscribe();
        let _ = rx.wait_for(|a| *a).await;
    }

    /// Completes when the gate is (or becomes) open.
    async fn opens(&self) {
        let mut rx = self.asleep.subscribe();
        let _ = rx.wait_for(|a| !*a).await;
    }
}

/// A STUN message's type, if `b` is one (RFC 5389: top bits 0, the magic cookie).
fn stun_type(b: &[u8]) -> Option<u16> {
    (b.len() >= 20 && b[0] & 0xC0 == 0 && b[4..8] == [0x21, 0x12, 0xA4, 0x42])
        .then(|| u16::from_be_bytes([b[0], b[1]]))
}
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;

/// The tokio runtime with gated sockets.
#[derive(Debug)]
pub struct GatedRuntime {
    inner: TokioRuntime,
    gate: Arc<Gate>,
}

impl GatedRuntime {
    pub fn new(gate: Arc<Gate>) -> Arc<Self> {
        Arc::new(Self {
            inner: TokioRuntime,
            gate,
        })
    }

    fn tcp(&self, inner: Arc<dyn AsyncTcpStream>) -> Arc<dyn AsyncTcpStream> {
        Arc::new(GatedTcp {
            inner,
            gate: self.gate.clone(),
            cut: AtomicBool::new(false),
        })
    }
}

impl Runtime for GatedRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(GatedUdp {
            inner: self.inner.wrap_udp_socket(socket)?,
            gate: self.gate.clone(),
            out: std::sync::Mutex::new(None),
            inbox: std::sync::Mutex::new(Inbox::default()),
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        Ok(Arc::new(GatedListener {
            inner: self.inner.wrap_tcp_listener(listener)?,
            runtime: GatedRuntime {
                inner: TokioRuntime,
                gate: self.gate.clone(),
            },
        }))
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        Box::pin(async move {
            if self.gate.is_asleep() {
                return Err(io::Error::from(io::ErrorKind::NetworkUnreachable));
            }
            Ok(self.tcp(self.inner.connect_tcp(remote_addr).await?))
        })
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio (sfu-harness gated sockets)"
    }
}

struct GatedUdp {
    inner: Arc<dyn AsyncUdpSocket>,
    gate: Arc<Gate>,
    /// The outbound delay line: a task that sends each datagram when it is due.
    out: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<Delayed>>>,
    inbox: std::sync::Mutex<Inbox>,
}

impl fmt::Debug for GatedUdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatedUdp")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// A datagram on its way out, and when it may go.
struct Delayed {
    due: tokio::time::Instant,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// Datagrams received while a delay is in force, waiting until they are due.
#[derive(Default)]
struct Inbox {
    queue: std::collections::VecDeque<(tokio::time::Instant, Vec<u8>, RecvMeta)>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    scratch: Vec<u8>,
}

impl GatedUdp {
    /// Counts an ICE check going out (a binding request) or an answer coming in.
    fn watch_stun(&self, bytes: &[u8], remote: SocketAddr, outbound: bool) {
        let want = if outbound {
            BINDING_REQUEST
        } else {
            BINDING_SUCCESS
        };
        if stun_type(bytes) == Some(want)
            && let Ok(local) = self.inner.local_addr()
        {
            self.gate.count_check(local, remote, outbound);
        }
    }

    /// Queues `transmit` on the delay line; false when there is no runtime to run it on.
    fn send_later(&self, transmit: &Transmit<'_>, delay: Duration) -> bool {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if out.as_ref().is_none_or(|tx| tx.is_closed()) {
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                return false;
            };
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Delayed>();
            let inner = self.inner.clone();
            rt.spawn(async move {
                while let Some(d) = rx.recv().await {
                    tokio::time::sleep_until(d.due).await;
                    let _ = inner.send_to(&d.bytes, d.to).await;
                }
            });
            *out = Some(tx);
        }
        let Some(tx) = out.as_ref() else {
            return false;
        };
        let due = tokio::time::Instant::now() + delay;
        // A GSO batch goes out as the datagrams it holds.
        let step = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        for bytes in transmit.contents.chunks(step) {
            let _ = tx.send(Delayed {
                due,
                to: transmit.destination,
                bytes: bytes.to_vec(),
            });
        }
        true
    }

    /// The delayed receive path: everything the socket has goes into the inbox, and the
    /// oldest datagram comes out once it is due.
    fn poll_recv_delayed(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
        let inbox = &mut *inbox;
        if inbox.scratch.is_empty() {
            inbox.scratch = vec![0; 64 * 1024];
        }
        loop {
            let mut m = [RecvMeta::default()];
            let got = self
                .inner
                .poll_recv(cx, &mut [IoSliceMut::new(&mut inbox.scratch)], &mut m);
            match got {
                Poll::Ready(Ok(n)) if n >= 1 => {
                    if self.gate.is_asleep() {
                        continue;
                    }
                    let now = tokio::time::Instant::now();
                    let mut due = now + self.gate.packet_delay().unwrap_or_default();
                    // In order: a packet never overtakes the one before it.
                    if let Some((last, ..)) = inbox.queue.back() {
                        due = due.max(*last);
                    }
                    let len = m[0].len.min(inbox.scratch.len());
                    inbox
                        .queue
                        .push_back((due, inbox.scratch[..len].to_vec(), m[0]));
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                _ => break,
            }
        }
        loop {
            let Some((due, ..)) = inbox.queue.front() else {
                return Poll::Pending;
            };
            if *due <= tokio::time::Instant::now() {
                let (_, bytes, m) = inbox.queue.pop_front().expect("front exists");
                let (Some(buf), Some(slot)) = (bufs.first_mut(), meta.first_mut()) else {
                    return Poll::Ready(Ok(0));
                };
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                self.watch_stun(&bytes[..n], m.addr, false);
                *slot = m;
                slot.len = n;
                slot.stride = m.stride.clamp(1, n.max(1));
                return Poll::Ready(Ok(1));
            }
            let due = *due;
            let timer = inbox
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
            timer.as_mut().reset(due);
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl AsyncUdpSocket for GatedUdp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        if self.gate.is_asleep() {
            // Gone into the void, as from a machine whose network is off.
            return Poll::Ready(Ok(transmit.contents.len()));
        }
        self.watch_stun(transmit.contents, transmit.destination, true);
        if let Some(delay) = self.gate.packet_delay()
            && self.send_later(transmit, delay)
        {
            return Poll::Ready(Ok(transmit.contents.len()));
        }
        self.inner.poll_send(cx, transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let pending = || {
            !self
                .inbox
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .queue
                .is_empty()
        };
        if self.gate.delayed.load(Ordering::Relaxed) || pending() {
            return self.poll_recv_delayed(cx, bufs, meta);
        }
        loop {
            let got = self.inner.poll_recv(cx, bufs, meta);
            // Asleep: what arrived is lost, not delivered late. Drain until the socket
            // has nothing more (which registers the waker for the next datagram).
            if self.gate.is_asleep() && matches!(got, Poll::Ready(Ok(_))) {
                continue;
            }
            if let Poll::Ready(Ok(n)) = got {
                for (buf, m) in bufs.iter().zip(meta.iter()).take(n) {
                    self.watch_stun(&buf[..m.len.min(buf.len())], m.addr, false);
                }
            }
            return got;
        }
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

#[derive(Debug)]
struct GatedListener {
    inner: Arc<dyn AsyncTcpListener>,
    runtime: GatedRuntime,
}

impl AsyncTcpListener for GatedListener {
    fn accept<'a>(
        &'a self,
    ) -> Pin<Box<dyn Future<Output = io::Result<(Arc<dyn AsyncTcpStream>, SocketAddr)>> + Send + 'a>>
    {
        Box::pin(async move {
            let (stream, addr) = self.inner.accept().await?;
            Ok((self.runtime.tcp(stream), addr))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// An ICE-TCP stream: a sleep cuts it for good (after a long sleep the peer has long
/// reset it). The cut shows only once the bot is awake again: while asleep a read waits
/// and a write vanishes.
#[derive(Debug)]
struct GatedTcp {
    inner: Arc<dyn AsyncTcpStream>,
    gate: Arc<Gate>,
    cut: AtomicBool,
}

impl GatedTcp {
    async fn cut_after_wake(&self) -> io::Error {
        self.cut.store(true, Ordering::SeqCst);
        self.gate.opens().await;
        io::Error::new(io::ErrorKind::ConnectionReset, "cut while the bot slept")
    }
}

impl AsyncTcpStream for GatedTcp {
    fn read<'a, 'b>(
        &'a self,
        buf: &'b mut [u8],
    ) -> Pin<Box<dyn Future<Output = io::Result<usize>> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(async move {
            if self.cut.load(Ordering::SeqCst) || self.gate.is_asleep() {
                return Err(self.cut_after_wake().await);
            }
            tokio::select! {
                r = self.inner.read(buf) => {
                    if self.gate.is_asleep() {
                        Err(self.cut_after_wake().await)
                    } else {
                        r
                    }
                }
                _ = self.gate.shuts() => Err(self.cut_after_wake().await),
            }
        })
    }

    fn write_all<'a, 'b>(
        &'a self,
        buf: &'b [u8],
    ) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(async move {
            if self.cut.load(Ordering::SeqCst) {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "cut while the bot slept",
                ));
            }
            if self.gate.is_asleep() {
                self.cut.store(true, Ordering::SeqCst);
                return Ok(());
            }
            self.inner.write_all(buf).await
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two real UDP sockets on loopback, one behind the gate: asleep, nothing crosses in
    /// either direction and what arrived meanwhile is gone after the wake.
    #[tokio::test]
    async fn a_shut_gate_drops_datagrams_both_ways_and_keeps_none() {
        let gate = Gate::new();
        let rt = GatedRuntime::new(gate.clone());
        let bot = rt
            .wrap_udp_socket(std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .unwrap();
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (bot_addr, peer_addr) = (bot.local_addr().unwrap(), peer.local_addr().unwrap());
        let mut buf = [0u8; 64];

        bot.send_to(b"awake", peer_addr).await.unwrap();
        let (n, _) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"awake");

        gate.sleep();
        bot.send_to(b"asleep-out", peer_addr).await.unwrap();
        peer.send_to(b"asleep-in", bot_addr).await.unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(200), peer.recv_from(&mut buf));
        assert!(quiet.await.is_err(), "a sleeping bot sent a datagram");
        let quiet = tokio::time::timeout(Duration::from_millis(200), bot.recv_from(&mut buf));
        assert!(quiet.await.is_err(), "a sleeping bot received a datagram");

        gate.wake();
        peer.send_to(b"after", bot_addr).await.unwrap();
        let (n, _) = bot.recv_from(&mut buf).await.unwrap();
        assert_eq!(
            &buf[..n],
            b"after",
            "the datagram sent during sleep was kept"
        );
    }

    /// A delay holds datagrams both ways and delivers them in order; clearing it lets
    /// the next ones through at once.
    #[tokio::test]
    async fn a_delay_holds_datagrams_both_ways_in_order() {
        let gate = Gate::new();
        let rt = GatedRuntime::new(gate.clone());
        let bot = rt
            .wrap_udp_socket(std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .unwrap();
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (bot_addr, peer_addr) = (bot.local_addr().unwrap(), peer.local_addr().unwrap());
        let mut buf = [0u8; 64];
        let delay = Duration::from_millis(150);
        gate.set_delay(delay, Duration::from_millis(20));

        let sent = tokio::time::Instant::now();
        for msg in [&b"out-1"[..], b"out-2"] {
            bot.send_to(msg, peer_addr).await.unwrap();
        }
        for want in [&b"out-1"[..], b"out-2"] {
            let (n, _) = peer.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], want);
        }
        assert!(
            sent.elapsed() >= Duration::from_millis(130),
            "{:?}",
            sent.elapsed()
        );

        let sent = tokio::time::Instant::now();
        for msg in [&b"in-1"[..], b"in-2"] {
            peer.send_to(msg, bot_addr).await.unwrap();
        }
        for want in [&b"in-1"[..], b"in-2"] {
            let (n, _) = bot.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], want);
        }
        assert!(
            sent.elapsed() >= Duration::from_millis(130),
            "{:?}",
            sent.elapsed()
        );

        gate.clear_delay();
        let sent = tokio::time::Instant::now();
        peer.send_to(b"now", bot_addr).await.unwrap();
        let (n, _) = bot.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"now");
        assert!(sent.elapsed() < delay, "{:?}", sent.elapsed());
    }

    /// Binding requests out and success responses in are counted per remote address:
    /// one pair answered, one silent.
    #[tokio::test]
    async fn ice_checks_are_counted_per_pair_and_unanswered_ones_failed() {
        let gate = Gate::new();
        let rt = GatedRuntime::new(gate.clone());
        let bot = rt
            .wrap_udp_socket(std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .unwrap();
        let answering = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let stun = |kind: [u8; 2]| {
            let mut m = vec![kind[0], kind[1], 0, 0, 0x21, 0x12, 0xA4, 0x42];
            m.extend_from_slice(&[7; 12]);
            m
        };
        for peer in [&answering, &silent] {
            bot.send_to(&stun([0x00, 0x01]), peer.local_addr().unwrap())
                .await
                .unwrap();
        }
        let mut buf = [0u8; 64];
        let (_, from) = answering.recv_from(&mut buf).await.unwrap();
        answering.send_to(&stun([0x01, 0x01]), from).await.unwrap();
        bot.recv_from(&mut buf).await.unwrap();
        assert_eq!(gate.take_pair_counts(), (2, 1));
        assert_eq!(
            gate.take_pair_counts(),
            (0, 0),
            "taking the counts resets them"
        );
    }
}
