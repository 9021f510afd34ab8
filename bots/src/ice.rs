//! ICE servers a bot may use: only the run's own.
//!
//! LiveKit hands out Google's and Twilio's STUN servers when `rtc.stun_servers` is
//! empty; a bot of this harness must never send a packet to them (or to anything else
//! outside the run), whatever the server's config says.

use std::net::IpAddr;

use livekit_protocol as proto;
use webrtc::peer_connection::RTCIceServer;

/// Keeps the ICE servers whose every URL points at one of `allowed` (an IP literal);
/// `dropped` is called with each URL of a server that is left out.
pub fn filter_ice_servers(
    servers: &[proto::IceServer],
    allowed: &[IpAddr],
    mut dropped: impl FnMut(&str),
) -> Vec<RTCIceServer> {
    let mut out = Vec::new();
    for s in servers {
        let urls: Vec<String> = s
            .urls
            .iter()
            .filter(|u| {
                let ok = url_host(u)
                    .and_then(|h| h.parse::<IpAddr>().ok())
                    .is_some_and(|ip| allowed.contains(&ip));
                if !ok {
                    dropped(u);
                }
                ok
            })
            .cloned()
            .collect();
        if !urls.is_empty() {
            out.push(RTCIceServer {
                urls,
                username: s.username.clone(),
                credential: s.credential.clone(),
            });
        }
    }
    out
}

/// Host part of a `stun:`/`turn:`/`turns:` URL (`turn:1.2.3.4:3478?transport=udp`).
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once(':')?.1;
    let rest = rest.split('?').next()?;
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.split(']').next();
    }
    Some(rest.rsplit_once(':').map_or(rest, |(h, _)| h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_stun_servers_are_dropped_and_reported() {
        let servers = vec![
            proto::IceServer {
                urls: vec![
                    "stun:stun.l.google.com:19302".into(),
                    "stun:172.18.0.2:3478".into(),
                ],
                ..Default::default()
            },
            proto::IceServer {
                urls: vec!["turn:8.8.8.8:3478?transport=udp".into()],
                ..Default::default()
            },
        ];
        let mut dropped = Vec::new();
        let kept = filter_ice_servers(&servers, &["172.18.0.2".parse().unwrap()], |u| {
            dropped.push(u.to_owned())
        });
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].urls, vec!["stun:172.18.0.2:3478".to_owned()]);
        assert_eq!(
            dropped,
            vec![
                "stun:stun.l.google.com:19302",
                "turn:8.8.8.8:3478?transport=udp"
            ]
        );
    }

    #[test]
    fn url_host_handles_ports_queries_and_ipv6() {
        assert_eq!(url_host("stun:1.2.3.4:3478"), Some("1.2.3.4"));
        assert_eq!(url_host("turn:1.2.3.4?transport=tcp"), Some("1.2.3.4"));
        assert_eq!(url_host("stun:[::1]:3478"), Some("::1"));
    }
}
