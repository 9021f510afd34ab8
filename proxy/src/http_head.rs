//! The little HTTP/1.1 the proxy speaks: read one request head, parse what the effects need
//! (target path, whether it asks for a WebSocket upgrade), forward it with a possibly
//! rewritten path, and build the proxy's own short answers.
//!
//! Contract: only the first request on a connection is inspected; after its head the
//! connection is a byte pump (the WebSocket, or an HTTP answer the client reads and then
//! closes). The head is bounded ([`MAX_HEAD_BYTES`]); bytes read past its end are handed
//! back so they are forwarded, not lost. The query is kept only to forward it: `Debug`
//! redacts it and no error quotes the head.

use std::fmt;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::ProxyError;

/// Upper bound on a request head (request line, headers and the blank line); nginx's
/// default `large_client_header_buffers` is of the same order.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// A parsed request head. The query is private so it can only travel upstream.
pub(crate) struct RequestHead {
    method: String,
    path: String,
    query: Option<String>,
    version: String,
    /// Everything after the request line's CRLF, blank line included, byte for byte.
    fields: Vec<u8>,
    /// `Upgrade: websocket` together with `Connection: upgrade`.
    pub upgrade: bool,
}

impl fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query.as_ref().map(|_| "<redacted>"))
            .field("version", &self.version)
            .field("upgrade", &self.upgrade)
            .finish_non_exhaustive()
    }
}

impl RequestHead {
    /// The request path without query.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The head as sent upstream: same method, query, version and fields; `path` replaces
    /// the client's path.
    pub fn forward(&self, path: &str) -> Vec<u8> {
        let mut line = format!("{} {path}", self.method);
        if let Some(query) = &self.query {
            line.push('?');
            line.push_str(query);
        }
        line.push(' ');
        line.push_str(&self.version);
        line.push_str("\r\n");
        let mut out = line.into_bytes();
        out.extend_from_slice(&self.fields);
        out
    }
}

/// A head read off a connection, with the bytes that followed it in the same reads.
#[derive(Debug)]
pub(crate) struct Received {
    pub head: RequestHead,
    pub head_len: usize,
    pub leftover: Vec<u8>,
}

/// Reads until the end of the request head. `Ok(None)`: the peer closed or failed before
/// the head was complete (nothing to answer).
pub(crate) async fn read<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> Result<Option<Received>, ProxyError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => n,
        };
        // The terminator may straddle two reads.
        let scan_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = find(&buf[scan_from..], b"\r\n\r\n") {
            let head_len = scan_from + pos + 4;
            if head_len > limit {
                return Err(ProxyError::HeadTooLarge { limit });
            }
            let leftover = buf.split_off(head_len);
            let head = parse(&buf)?;
            return Ok(Some(Received {
                head,
                head_len,
                leftover,
            }));
        }
        if buf.len() >= limit {
            return Err(ProxyError::HeadTooLarge { limit });
        }
    }
}

fn malformed(problem: &'static str) -> ProxyError {
    ProxyError::MalformedHead { problem }
}

/// Parses a complete head (ending in CRLFCRLF).
pub(crate) fn parse(head: &[u8]) -> Result<RequestHead, ProxyError> {
    let line_end = find(head, b"\r\n").ok_or(malformed("request line has no crlf"))?;
    let line = std::str::from_utf8(&head[..line_end])
        .ok()
        .filter(|line| line.is_ascii())
        .ok_or(malformed("request line is not ascii"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("request line is not `method target version`"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(malformed("method is not a token"));
    }
    if !version.starts_with("HTTP/1.") {
        return Err(malformed("version is not http/1.x"));
    }
    if !target.starts_with('/') {
        return Err(malformed("request target is not origin-form"));
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (target, None),
    };

    let fields = head[line_end + 2..].to_vec();
    let (mut upgrade_websocket, mut connection_upgrade) = (false, false);
    for field in fields.split(|&b| b == b'\n') {
        let field = field.strip_suffix(b"\r").unwrap_or(field);
        if field.is_empty() {
            continue;
        }
        let colon = field
            .iter()
            .position(|&b| b == b':')
            .ok_or(malformed("header line has no colon"))?;
        let (name, value) = (field[..colon].trim_ascii(), &field[colon + 1..]);
        if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade_websocket |= has_token(value, b"websocket");
        } else if name.eq_ignore_ascii_case(b"connection") {
            connection_upgrade |= has_token(value, b"upgrade");
        }
    }

    Ok(RequestHead {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        version: version.to_owned(),
        fields,
        upgrade: upgrade_websocket && connection_upgrade,
    })
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A complete answer from the proxy itself: status line, the given type and body, and
/// `Connection: close` (the proxy closes after sending it).
pub(crate) fn response(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    )
    .into_bytes()
}

/// Reason phrases for the statuses a scenario is likely to ask for; clients ignore them.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &str = "GET /livekit/rtc?access_token=SECRET&protocol=17 HTTP/1.1\r\n\
        Host: sfu\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn parses_upgrade_request_and_forwards_with_new_path_keeping_query() {
        let head = parse(UPGRADE.as_bytes()).unwrap();
        assert_eq!(head.path(), "/livekit/rtc");
        assert!(head.upgrade);
        let forwarded = String::from_utf8(head.forward("/rtc")).unwrap();
        assert_eq!(forwarded, UPGRADE.replacen("/livekit/rtc", "/rtc", 1));
    }

    #[test]
    fn upgrade_needs_both_upgrade_and_connection_headers() {
        let cases = [
            ("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", false),
            ("GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n", false),
            (
                "GET / HTTP/1.1\r\nupgrade:WebSocket\r\nCONNECTION: Upgrade\r\n\r\n",
                true,
            ),
            (
                "GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
                false,
            ),
        ];
        for (text, upgrade) in cases {
            assert_eq!(parse(text.as_bytes()).unwrap().upgrade, upgrade, "{text:?}");
        }
    }

    #[test]
    fn malformed_heads_are_named_without_quoting_them() {
        let cases = [
            (
                "GET /rtc?access_token=SECRET\r\n\r\n",
                "request head is malformed: request line is not `method target version`",
            ),
            (
                "GET /rtc?access_token=SECRET HTTP/2\r\n\r\n",
                "request head is malformed: version is not http/1.x",
            ),
            (
                "GET http://h/rtc?access_token=SECRET HTTP/1.1\r\n\r\n",
                "request head is malformed: request target is not origin-form",
            ),
            (
                "G=T /rtc?access_token=SECRET HTTP/1.1\r\n\r\n",
                "request head is malformed: method is not a token",
            ),
            (
                "GET /rtc?access_token=SECRET HTTP/1.1\r\nHost sfu\r\n\r\n",
                "request head is malformed: header line has no colon",
            ),
            (
                "GET /rtc?access_token=S\u{e9}CRET HTTP/1.1\r\n\r\n",
                "request head is malformed: request line is not ascii",
            ),
        ];
        for (text, message) in cases {
            let err = parse(text.as_bytes()).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn debug_redacts_the_query() {
        let head = parse(UPGRADE.as_bytes()).unwrap();
        let debug = format!("{head:?}");
        assert!(
            debug.contains("<redacted>") && !debug.contains("SECRET"),
            "{debug}"
        );
    }

    #[tokio::test]
    async fn read_returns_bytes_after_the_head_as_leftover() {
        let mut input = format!("{UPGRADE}frame-bytes").into_bytes();
        let received = read(&mut input.as_slice(), MAX_HEAD_BYTES)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(received.head_len, UPGRADE.len());
        assert_eq!(received.leftover, b"frame-bytes");
        input.truncate(UPGRADE.len() - 1);
        assert!(
            read(&mut input.as_slice(), MAX_HEAD_BYTES)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn read_refuses_heads_over_the_limit() {
        let long = format!("GET /rtc HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(100));
        let exact = long.len();
        assert!(read(&mut long.as_bytes(), exact).await.unwrap().is_some());
        let err = read(&mut long.as_bytes(), exact - 1).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "request head must end within {} bytes, but does not",
                exact - 1
            )
        );
        let endless = "a".repeat(64);
        assert!(matches!(
            read(&mut endless.as_bytes(), 32).await,
            Err(ProxyError::HeadTooLarge { limit: 32 })
        ));
    }

    #[test]
    fn response_has_length_and_close() {
        let text = String::from_utf8(response(502, "text/plain", "no\n")).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n"
        );
    }
}
