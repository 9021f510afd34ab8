//! The lean peer's SDP: what it reads of LiveKit's subscriber offer, and the answer it
//! writes back.
//!
//! A lean peer only receives, answers ICE checks as an ICE-lite agent, and is the DTLS
//! client, so it needs little of an offer: the remote ICE credentials and certificate
//! fingerprint, and per media section its kind, mid, direction, codecs and the SSRCs
//! with the track each carries (`a=ssrc:N msid:STREAM TRACK`, as pion writes them). The
//! answer accepts one codec per section (the first that is not a repair format: RED, RTX,
//! FEC), negotiates no header extension and no RTCP feedback, and accepts the data
//! channel section without ever speaking SCTP (the lean bot measures media only).
//!
//! Pure: parsing and writing only, unit-tested below.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// What the lean peer reads of an offer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Offer {
    pub ice_ufrag: String,
    pub ice_pwd: String,
    /// `sha-256` fingerprint, colon-separated hex as written.
    pub fingerprint: String,
    pub sections: Vec<Section>,
    /// Addresses of the UDP candidates listed in the offer.
    pub candidates: Vec<SocketAddr>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Section {
    /// `audio`, `video` or `application`.
    pub kind: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<String>,
    pub mid: String,
    /// `sendrecv`, `sendonly`, `recvonly` or `inactive` (default `sendrecv`).
    pub direction: String,
    /// Payload type → `name/clock[/channels]`.
    pub rtpmap: BTreeMap<u8, String>,
    /// Payload type → its `a=fmtp` parameters.
    pub fmtp: BTreeMap<u8, String>,
    /// SSRC → track id (the second word of its `msid`).
    pub ssrcs: BTreeMap<u32, String>,
    /// The section's own `a=msid` track, when its SSRC lines name none.
    pub msid_track: Option<String>,
    /// Lines kept verbatim for an application section (`a=sctp-port`, ...).
    pub sctp: Vec<String>,
}

impl Section {
    /// The payload type the answer accepts: the first offered format that is a media
    /// codec, not a repair format.
    pub fn codec(&self) -> Option<u8> {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .find(|pt| {
                let name = self
                    .rtpmap
                    .get(pt)
                    .map_or("", |r| r.split('/').next().unwrap_or(""));
                !name.is_empty()
                    && !["rtx", "red", "ulpfec", "flexfec-03"]
                        .iter()
                        .any(|r| name.eq_ignore_ascii_case(r))
            })
    }

    /// Whether the remote side sends on this section.
    pub fn sends(&self) -> bool {
        self.port != 0 && matches!(self.direction.as_str(), "sendrecv" | "sendonly")
    }
}

/// Reads an offer. Errors name what is missing.
pub fn parse_offer(sdp: &str) -> Result<Offer, String> {
    let mut offer = Offer::default();
    let mut current: Option<Section> = None;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            offer.sections.extend(current.take());
            let mut words = m.split_whitespace();
            let kind = words.next().unwrap_or_default().to_owned();
            let port = words.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            let proto = words.next().unwrap_or_default().to_owned();
            current = Some(Section {
                kind,
                port,
                proto,
                formats: words.map(str::to_owned).collect(),
                direction: "sendrecv".into(),
                ..Section::default()
            });
            continue;
        }
        let Some(attr) = line.strip_prefix("a=") else {
            continue;
        };
        let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
        match name {
            "ice-ufrag" if offer.ice_ufrag.is_empty() => offer.ice_ufrag = value.to_owned(),
            "ice-pwd" if offer.ice_pwd.is_empty() => offer.ice_pwd = value.to_owned(),
            "fingerprint" if offer.fingerprint.is_empty() => {
                if let Some(("sha-256", fp)) = value.split_once(' ') {
                    offer.fingerprint = fp.trim().to_owned();
                }
            }
            "candidate" => offer.candidates.extend(udp_candidate(value)),
            _ => {}
        }
        let Some(s) = current.as_mut() else {
            continue;
        };
        match name {
            "mid" => s.mid = value.to_owned(),
            "sendrecv" | "sendonly" | "recvonly" | "inactive" => s.direction = name.to_owned(),
            "rtpmap" | "fmtp" => {
                if let Some((pt, rest)) = value.split_once(' ')
                    && let Ok(pt) = pt.parse::<u8>()
                {
                    let map = if name == "rtpmap" {
                        &mut s.rtpmap
                    } else {
                        &mut s.fmtp
                    };
                    map.insert(pt, rest.to_owned());
                }
            }
            "ssrc" => {
                let mut words = value.split_whitespace();
                if let (Some(ssrc), Some(attr)) = (words.next(), words.next())
                    && let Some(("msid", _stream)) = attr.split_once(':')
                    && let (Ok(ssrc), Some(track)) = (ssrc.parse::<u32>(), words.next())
                {
                    s.ssrcs.insert(ssrc, track.to_owned());
                }
            }
            "msid" => s.msid_track = value.split_whitespace().nth(1).map(str::to_owned),
            "sctp-port" | "max-message-size" => s.sctp.push(line.to_owned()),
            _ => {}
        }
    }
    offer.sections.extend(current);
    if offer.ice_ufrag.is_empty() || offer.ice_pwd.is_empty() {
        return Err("the offer has no ICE credentials".into());
    }
    if offer.fingerprint.is_empty() {
        return Err("the offer has no sha-256 certificate fingerprint".into());
    }
    if offer.sections.is_empty() {
        return Err("the offer has no media section".into());
    }
    Ok(offer)
}

/// `foundation component udp priority address port typ ...` → the address.
pub(super) fn udp_candidate(value: &str) -> Option<SocketAddr> {
    let w: Vec<&str> = value.split_whitespace().collect();
    if w.len() < 6 || !w[2].eq_ignore_ascii_case("udp") {
        return None;
    }
    Some(SocketAddr::new(
        w[4].parse::<IpAddr>().ok()?,
        w[5].parse().ok()?,
    ))
}

/// The lean peer's side of the session.
pub struct Local<'a> {
    pub ice_ufrag: &'a str,
    pub ice_pwd: &'a str,
    pub fingerprint: &'a str,
    /// Its one host candidate.
    pub candidate: SocketAddr,
    /// `o=` session id and version (the version goes up with every answer).
    pub session_id: u64,
    pub version: u64,
}

/// The answer to `offer`: every section answered in order, media received (never sent),
/// all bundled on one transport with the lean peer as an ICE-lite agent and DTLS client.
pub fn write_answer(offer: &Offer, local: &Local<'_>) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "v=0\r\no=- {} {} IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
        local.session_id, local.version
    );
    let bundle: Vec<&str> = offer
        .sections
        .iter()
        .filter(|s| s.port != 0 && accepted(s))
        .map(|s| s.mid.as_str())
        .collect();
    if !bundle.is_empty() {
        let _ = write!(out, "a=group:BUNDLE {}\r\n", bundle.join(" "));
    }
    out.push_str("a=ice-lite\r\na=msid-semantic: WMS\r\n");
    for s in &offer.sections {
        let codec = s.codec();
        let format = match (s.kind.as_str(), codec) {
            ("application", _) => s.formats.join(" "),
            (_, Some(pt)) => pt.to_string(),
            (_, None) => s.formats.first().cloned().unwrap_or_else(|| "0".into()),
        };
        let port = if s.port == 0 || !accepted(s) { 0 } else { 9 };
        let _ = write!(
            out,
            "m={} {port} {} {format}\r\nc=IN IP4 0.0.0.0\r\n",
            s.kind, s.proto
        );
        if port == 0 {
            let _ = write!(out, "a=mid:{}\r\na=inactive\r\n", s.mid);
            continue;
        }
        let _ = write!(
            out,
            "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:sha-256 {}\r\na=setup:active\r\na=mid:{}\r\n",
            local.ice_ufrag, local.ice_pwd, local.fingerprint, s.mid
        );
        let _ = write!(
            out,
            "a=candidate:1 1 udp 2130706431 {} {} typ host\r\na=end-of-candidates\r\n",
            local.candidate.ip(),
            local.candidate.port()
        );
        if s.kind == "application" {
            for l in &s.sctp {
                let _ = write!(out, "{l}\r\n");
            }
            continue;
        }
        let direction = if s.sends() { "recvonly" } else { "inactive" };
        let _ = write!(out, "a={direction}\r\na=rtcp-mux\r\n");
        if let Some(pt) = codec {
            if let Some(map) = s.rtpmap.get(&pt) {
                let _ = write!(out, "a=rtpmap:{pt} {map}\r\n");
            }
            if let Some(fmtp) = s.fmtp.get(&pt) {
                let _ = write!(out, "a=fmtp:{pt} {fmtp}\r\n");
            }
        }
    }
    out
}

/// A section the lean peer takes part in: media it can decode, or the data channel.
fn accepted(s: &Section) -> bool {
    s.kind == "application" || s.codec().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped as LiveKit (pion) writes a subscriber offer: an audio section with RED
    /// first, a simulcast video section with RTX, the data channel, and a stopped one.
    const OFFER: &str = "v=0\r\n\
o=- 123 2 IN IP4 0.0.0.0\r\n\
s=-\r\n\
t=0 0\r\n\
a=fingerprint:sha-256 AA:BB:CC\r\n\
a=group:BUNDLE 0 1 2\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 63 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=ice-ufrag:remoteufrag\r\n\
a=ice-pwd:remotepassword\r\n\
a=rtcp-mux\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=fmtp:63 111/111\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=ssrc:1111 cname:PA_x\r\n\
a=ssrc:1111 msid:PA_x|TR_audio TR_audio\r\n\
a=msid:PA_x|TR_audio TR_audio\r\n\
a=sendonly\r\n\
a=candidate:1 1 udp 2130706431 172.20.0.2 7882 typ host\r\n\
a=candidate:2 1 tcp 1671430143 172.20.0.2 7881 typ host tcptype passive\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
c=IN IP4 0.0.0.0\r\n\
a=mid:1\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=ssrc-group:FID 2222 3333\r\n\
a=ssrc:2222 msid:PA_y|TR_video TR_video\r\n\
a=ssrc:3333 msid:PA_y|TR_video TR_video\r\n\
a=sendonly\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
c=IN IP4 0.0.0.0\r\n\
a=mid:2\r\n\
a=sctp-port:5000\r\n\
m=audio 0 UDP/TLS/RTP/SAVPF 111\r\n\
a=mid:3\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=inactive\r\n";

    #[test]
    fn an_offer_yields_credentials_codecs_and_the_track_of_every_ssrc() {
        let o = parse_offer(OFFER).unwrap();
        assert_eq!(o.ice_ufrag, "remoteufrag");
        assert_eq!(o.ice_pwd, "remotepassword");
        assert_eq!(o.fingerprint, "AA:BB:CC");
        assert_eq!(
            o.candidates,
            vec!["172.20.0.2:7882".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(o.sections.len(), 4);
        let (a, v, d, stopped) = (
            &o.sections[0],
            &o.sections[1],
            &o.sections[2],
            &o.sections[3],
        );
        assert_eq!(
            (a.kind.as_str(), a.codec(), a.sends()),
            ("audio", Some(111), true)
        );
        assert_eq!(a.ssrcs.get(&1111).map(String::as_str), Some("TR_audio"));
        assert_eq!(v.codec(), Some(96));
        assert_eq!(v.ssrcs.len(), 2);
        assert_eq!(d.kind, "application");
        assert!(!stopped.sends());
    }

    #[test]
    fn the_answer_receives_one_codec_per_section_bundled_as_an_ice_lite_dtls_client() {
        let o = parse_offer(OFFER).unwrap();
        let local = Local {
            ice_ufrag: "u",
            ice_pwd: "p",
            fingerprint: "11:22",
            candidate: "127.0.0.1:5000".parse().unwrap(),
            session_id: 7,
            version: 1,
        };
        let a = write_answer(&o, &local);
        assert!(a.contains("a=group:BUNDLE 0 1 2\r\n"), "{a}");
        assert!(a.contains("a=ice-lite\r\n"));
        assert!(a.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"), "{a}");
        assert!(a.contains("a=fmtp:111 minptime=10;useinbandfec=1\r\n"));
        assert!(a.contains("m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"), "{a}");
        assert!(!a.contains("rtx"), "{a}");
        assert!(a.contains("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"));
        assert!(a.contains("a=sctp-port:5000\r\n"));
        assert!(
            a.contains(
                "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:3\r\na=inactive\r\n"
            ),
            "{a}"
        );
        assert_eq!(a.matches("a=setup:active").count(), 3);
        assert_eq!(a.matches("a=recvonly").count(), 2);
        assert_eq!(
            a.matches("a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host")
                .count(),
            3
        );
        // The answer's own SDP parses as an offer would (credentials, sections).
        let back = parse_offer(&a).unwrap();
        assert_eq!(
            (back.ice_ufrag.as_str(), back.fingerprint.as_str()),
            ("u", "11:22")
        );
        assert_eq!(back.sections.len(), 4);
    }

    #[test]
    fn an_offer_without_credentials_or_fingerprint_is_refused_by_name() {
        let no_ice = OFFER.replace("a=ice-ufrag:remoteufrag\r\n", "");
        assert!(
            parse_offer(&no_ice)
                .unwrap_err()
                .contains("ICE credentials")
        );
        let no_fp = OFFER.replace("a=fingerprint:sha-256 AA:BB:CC\r\n", "");
        assert!(parse_offer(&no_fp).unwrap_err().contains("fingerprint"));
    }
}
