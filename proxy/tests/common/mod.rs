//! Test fixtures: an upstream that behaves like LiveKit's signal endpoint as far as the
//! proxy can tell (101 on `/rtc`, 404 elsewhere, then echo), and a raw client.
#![allow(dead_code)] // each test file uses its own subset

use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use signal_proxy::{Proxy, ProxyConfig, ProxyEvent, ProxyEventKind};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{broadcast, mpsc},
    task::{JoinHandle, JoinSet},
};

/// Long enough to never fire on a healthy loaded machine, short enough to fail fast.
pub const PATIENCE: Duration = Duration::from_secs(5);

pub const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.SECRET-TOKEN-4f1c";

pub struct Upstream {
    pub addr: SocketAddr,
    targets: Arc<Mutex<Vec<String>>>,
    closed: Arc<AtomicUsize>,
    push: broadcast::Sender<Vec<u8>>,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicUsize::new(0));
        let (push, _) = broadcast::channel(16);
        let task = tokio::spawn({
            let (targets, closed, push) = (targets.clone(), closed.clone(), push.clone());
            async move {
                let mut conns = JoinSet::new();
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let (targets, closed) = (targets.clone(), closed.clone());
                    let pushed = push.subscribe();
                    conns.spawn(async move {
                        let _ = serve_upstream(stream, &targets, pushed).await;
                        closed.fetch_add(1, SeqCst);
                    });
                }
            }
        });
        Upstream {
            addr,
            targets,
            closed,
            push,
            task,
        }
    }

    /// Request targets as the upstream received them, query included.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }

    /// Upstream-side connections that have ended.
    pub fn closed(&self) -> usize {
        self.closed.load(SeqCst)
    }

    /// Sends `bytes` unsolicited to every upgraded client.
    pub fn push(&self, bytes: &[u8]) {
        let _ = self.push.send(bytes.to_vec());
    }

    pub async fn proxy(&self) -> Proxy {
        let config = ProxyConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream: self.addr,
        };
        Proxy::start(config).await.unwrap()
    }
}

async fn serve_upstream(
    mut stream: TcpStream,
    targets: &Mutex<Vec<String>>,
    mut pushed: broadcast::Receiver<Vec<u8>>,
) -> io::Result<()> {
    let head = read_head(&mut stream).await?;
    let target = head.split(' ').nth(1).unwrap_or_default().to_owned();
    targets.lock().unwrap().push(target.clone());
    let path = target.split('?').next().unwrap_or_default();
    if path != "/rtc" && !path.starts_with("/rtc/") {
        let body = "404 page not found\n";
        let answer = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(answer.as_bytes()).await?;
        return stream.shutdown().await;
    }
    if header(&head, "upgrade").is_none() {
        // Like LiveKit's `/rtc/validate`: a plain answer.
        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nsuccess\n";
        stream.write_all(answer.as_bytes()).await?;
        return stream.shutdown().await;
    }
    let key = header(&head, "sec-websocket-key").unwrap_or_default();
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        websocket_accept(&key)
    );
    stream.write_all(answer.as_bytes()).await?;
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            n = stream.read(&mut buf) => match n? {
                0 => return Ok(()),
                n => stream.write_all(&buf[..n]).await?,
            },
            Ok(bytes) = pushed.recv() => stream.write_all(&bytes).await?,
        }
    }
}

/// Reads an HTTP head byte by byte, so nothing after it is consumed.
pub async fn read_head<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = reader.read_u8().await?;
        head.push(byte);
        assert!(head.len() < 64 * 1024, "head too long");
    }
    Ok(String::from_utf8(head).unwrap())
}

pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// An HTTP answer as the client saw it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    /// Read to EOF for non-101 answers (they all close).
    pub body: String,
}

/// Sends a WebSocket upgrade request for `target` and reads the answer.
pub async fn upgrade(addr: SocketAddr, target: &str) -> (TcpStream, Answer) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: sfu.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = within(read_head(&mut stream)).await.unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = String::new();
    if status != 101 {
        within(stream.read_to_string(&mut body)).await.unwrap();
    }
    (stream, Answer { status, head, body })
}

/// Sends a plain (non-upgrade) GET for `target` and reads the answer to EOF.
pub async fn get(addr: SocketAddr, target: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: sfu.test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = within(read_head(&mut stream)).await.unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = String::new();
    within(stream.read_to_string(&mut body)).await.unwrap();
    Answer { status, head, body }
}

/// An upgraded connection through the proxy, checked to echo.
pub async fn websocket(addr: SocketAddr) -> TcpStream {
    let (mut stream, answer) =
        upgrade(addr, &format!("/rtc?access_token={TOKEN}&protocol=17")).await;
    assert_eq!(answer.status, 101, "{answer:?}");
    assert_eq!(
        header(&answer.head, "sec-websocket-accept").as_deref(),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    echo(&mut stream, b"hello").await;
    stream
}

pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("timed out")
}

/// Writes `message` and expects exactly it back.
pub async fn echo(stream: &mut TcpStream, message: &[u8]) {
    stream.write_all(message).await.unwrap();
    assert_eq!(read_n(stream, message.len()).await, message);
}

pub async fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    within(stream.read_exact(&mut buf)).await.unwrap();
    buf
}

#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    Eof,
    Reset,
}

/// Waits until the peer ends the connection; panics if bytes arrive instead.
pub async fn closed(stream: &mut TcpStream) -> Closed {
    let mut buf = [0u8; 64];
    match within(stream.read(&mut buf)).await {
        Ok(0) => Closed::Eof,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Closed::Reset,
        other => panic!("expected the connection to end, got {other:?}"),
    }
}

/// Waits (yielding, briefly sleeping) until `condition` holds; for counters that settle
/// after the fact, never for timing.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Receives events until one matches.
pub async fn next_matching(
    events: &mut mpsc::UnboundedReceiver<ProxyEvent>,
    mut wanted: impl FnMut(&ProxyEventKind) -> bool,
) -> ProxyEvent {
    within(async {
        loop {
            let event = events.recv().await.expect("event stream ended");
            if wanted(&event.kind) {
                return event;
            }
        }
    })
    .await
}

/// Every event received so far.
pub fn drain(events: &mut mpsc::UnboundedReceiver<ProxyEvent>) -> Vec<ProxyEvent> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

/// `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2).
pub fn websocket_accept(key: &str) -> String {
    let mut input = key.as_bytes().to_vec();
    input.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&sha1(&input))
}

fn sha1(message: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut data = message.to_vec();
    data.push(0x80);
    while data.len() % 64 != 56 {
        data.push(0);
    }
    data.extend_from_slice(&(message.len() as u64 * 8).to_be_bytes());
    for block in data.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes(word.try_into().unwrap());
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..20 => ((b & c) | (!b & d), 0x5A827999),
                20..40 => (b ^ c ^ d, 0x6ED9EBA1),
                40..60 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(wi);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (hi, x) in h.iter_mut().zip([a, b, c, d, e]) {
            *hi = hi.wrapping_add(x);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
