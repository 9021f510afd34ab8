//! Reads an SFU node's Prometheus endpoint once a second while the run goes, and puts
//! each scrape on the event stream as [`Event::SfuMetricsScraped`] (so `report DIR`
//! renders them again). A plain HTTP/1.0 GET over a TCP socket is all it takes; the
//! parsing and the choice of series are in [`harness_core::prometheus`].
//!
//! Failures are reported, never silent: the first failed scrape and the count of failed
//! ones become notes; an endpoint switched off (`prometheus_port = 0`) is a note too.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bots::EventSink;
use harness_core::event::Event;
use harness_core::prometheus;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const EVERY: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(2);
/// A scrape larger than this is refused (LiveKit's is ~40 KB).
const MAX_BYTES: usize = 4 << 20;

/// Starts scraping `node` at `ip`, on the port its config names; stops when `end` is true.
pub fn spawn(
    node: String,
    ip: IpAddr,
    config: &serde_json::Value,
    sink: EventSink,
    mut end: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let port = config
        .get("prometheus_port")
        .and_then(serde_json::Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0);
    tokio::spawn(async move {
        let Some(port) = port else {
            sink.emit(Event::Note {
                source: node,
                message: "LiveKit's Prometheus endpoint is off (prometheus_port = 0): no \
                          SFU-side metrics"
                    .into(),
            });
            return;
        };
        let addr = SocketAddr::new(ip, port);
        let (mut ok, mut failed) = (0u32, 0u32);
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = end.wait_for(|e| *e) => break,
            }
            match scrape(addr).await {
                Ok(values) => {
                    ok += 1;
                    sink.emit(Event::SfuMetricsScraped {
                        node: node.clone(),
                        values,
                    });
                }
                Err(e) => {
                    failed += 1;
                    if failed == 1 {
                        sink.emit(Event::Note {
                            source: node.clone(),
                            message: format!("scraping http://{addr}/metrics failed: {e}"),
                        });
                    }
                }
            }
        }
        if failed > 0 {
            sink.emit(Event::Note {
                source: node,
                message: format!("{failed} of {} metrics scrapes failed", ok + failed),
            });
        }
    })
}

async fn scrape(addr: SocketAddr) -> Result<std::collections::BTreeMap<String, f64>, String> {
    let body = tokio::time::timeout(TIMEOUT, get(addr))
        .await
        .map_err(|_| format!("no answer within {TIMEOUT:?}"))??;
    let samples = prometheus::parse(&body)?;
    Ok(prometheus::summarize(&samples))
}

async fn get(addr: SocketAddr) -> Result<String, String> {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let req = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    (&mut s)
        .take(MAX_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| e.to_string())?;
    if buf.len() > MAX_BYTES {
        return Err(format!("answer larger than {MAX_BYTES} bytes"));
    }
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("answer without an HTTP header")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answer `{status}`"));
    }
    Ok(body.to_owned())
}
