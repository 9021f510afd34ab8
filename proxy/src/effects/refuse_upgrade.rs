//! `ws-refuse-upgrade`: the proxy answers a WebSocket upgrade itself instead of forwarding.
//!
//! Two real-world shapes: an error status (a 502/503 from a proxy whose upstream is down,
//! a 400 from one that strips the `Upgrade` header), and `200 OK` with a page and no
//! upgrade headers (livekit/livekit#79: a web server or SPA fallback answering the
//! signal URL). Clients must report both as a failed connect, not hang.

use crate::{ProxyError, http_head};

pub(crate) fn validate(status: u16) -> Result<(), ProxyError> {
    // 1xx would be an interim answer (101 would even pretend the upgrade succeeded).
    if (200..=599).contains(&status) {
        Ok(())
    } else {
        Err(ProxyError::InvalidStatus { status })
    }
}

/// The full answer for `status`: for 200 a small HTML page, the typical fallback body;
/// otherwise a one-line text body naming the refusal.
pub(crate) fn response(status: u16) -> Vec<u8> {
    if status == 200 {
        http_head::response(200, "text/html", "<!doctype html><title>app</title>\n")
    } else {
        let body = format!("websocket upgrade refused by sfu-harness proxy ({status})\n");
        http_head::response(status, "text/plain", &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_200_carries_no_upgrade_headers() {
        let text = String::from_utf8(response(200)).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        let lower = text.to_ascii_lowercase();
        assert!(
            !lower.contains("upgrade") && !lower.contains("sec-websocket"),
            "{text}"
        );
    }

    #[test]
    fn error_answer_names_the_status() {
        let text = String::from_utf8(response(400)).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(
            text.ends_with("refused by sfu-harness proxy (400)\n"),
            "{text}"
        );
    }
}
