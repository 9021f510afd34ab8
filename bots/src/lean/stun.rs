//! The lean peer's ICE: an ICE-lite agent (RFC 8445 §2.5) that answers the SFU's
//! connectivity checks and sends none of its own.
//!
//! The SFU is the controlling agent (it made the offer); it checks the lean peer's one
//! host candidate and nominates the pair with USE-CANDIDATE. A lean peer only has to
//! answer each binding request whose USERNAME and MESSAGE-INTEGRITY are its own with a
//! success response (XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT). The SFU's
//! keep-alive checks keep coming every few seconds, so they are also how the peer
//! knows its path is alive.

use std::net::SocketAddr;

use rtc::crypto::RTCCrypto;
use rtc::stun::attributes::{ATTR_USE_CANDIDATE, ATTR_USERNAME};
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message, Setter};
use rtc::stun::textattrs::TextAttribute;
use rtc::stun::xoraddr::XorMappedAddress;

/// A binding request the peer answered.
#[derive(Debug)]
pub struct Answered {
    pub response: Vec<u8>,
    /// The request carried USE-CANDIDATE: the SFU nominated this path.
    pub nominated: bool,
}

/// Answers `data` (a STUN datagram from `from`) if it is a binding request for this
/// peer: `ufrag` and `pwd` are the peer's own ICE credentials. Anything else (a bad
/// integrity, someone else's username, a response) gets no answer.
pub fn answer(
    data: &[u8],
    from: SocketAddr,
    ufrag: &str,
    pwd: &str,
    crypto: &dyn RTCCrypto,
) -> Option<Answered> {
    let mut m = Message::new();
    m.unmarshal_binary(data).ok()?;
    if m.typ != BINDING_REQUEST {
        return None;
    }
    let user = TextAttribute::get_from_as(&m, ATTR_USERNAME).ok()?;
    // USERNAME is "<our ufrag>:<their ufrag>".
    if user.text.split(':').next() != Some(ufrag) {
        return None;
    }
    MessageIntegrity::check(&mut m, pwd.as_bytes(), crypto).ok()?;
    let nominated = m.contains(ATTR_USE_CANDIDATE);
    let mut out = Message::new();
    let setters: [Box<dyn Setter + '_>; 5] = [
        Box::new(m),
        Box::new(BINDING_SUCCESS),
        Box::new(XorMappedAddress {
            ip: from.ip(),
            port: from.port(),
        }),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
            pwd.to_owned(),
            crypto,
        )),
        Box::new(FINGERPRINT),
    ];
    out.build(&setters).ok()?;
    Some(Answered {
        response: out.raw,
        nominated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::stun::message::TransactionId;

    fn request(username: &str, pwd: &str, nominate: bool) -> Vec<u8> {
        let crypto = rtc::crypto::default_provider().unwrap();
        let mut m = Message::new();
        let mut setters: Vec<Box<dyn Setter + '_>> = vec![
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId::new()),
            Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())),
        ];
        if nominate {
            setters.push(Box::new(rtc::stun::attributes::RawAttribute {
                typ: ATTR_USE_CANDIDATE,
                length: 0,
                value: vec![],
            }));
        }
        setters.push(Box::new(
            MessageIntegrity::new_short_term_integrity_with_provider(
                pwd.to_owned(),
                crypto.crypto(),
            ),
        ));
        setters.push(Box::new(FINGERPRINT));
        m.build(&setters).unwrap();
        m.raw
    }

    /// A check for this peer is answered with a response the checker can verify with
    /// the same password, naming the address it came from.
    #[test]
    fn a_check_for_this_peer_is_answered_with_its_mapped_address() {
        let crypto = rtc::crypto::default_provider().unwrap();
        let from: SocketAddr = "172.20.0.2:7882".parse().unwrap();
        let req = request("mine:theirs", "secretpwd", true);
        let a = answer(&req, from, "mine", "secretpwd", crypto.crypto()).expect("answered");
        assert!(a.nominated);
        let mut resp = Message::new();
        resp.unmarshal_binary(&a.response).unwrap();
        assert_eq!(resp.typ, BINDING_SUCCESS);
        MessageIntegrity::check(&mut resp, b"secretpwd", crypto.crypto()).unwrap();
        let mut mapped = XorMappedAddress::default();
        mapped
            .get_from_as(&resp, rtc::stun::attributes::ATTR_XORMAPPED_ADDRESS)
            .unwrap();
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), from);
        let plain = request("mine:theirs", "secretpwd", false);
        assert!(
            !answer(&plain, from, "mine", "secretpwd", crypto.crypto())
                .unwrap()
                .nominated
        );
    }

    /// The twin: a wrong password or someone else's username gets no answer.
    #[test]
    fn a_check_with_a_wrong_password_or_username_is_not_answered() {
        let crypto = rtc::crypto::default_provider().unwrap();
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let bad_pwd = request("mine:theirs", "otherpwd", false);
        assert!(answer(&bad_pwd, from, "mine", "secretpwd", crypto.crypto()).is_none());
        let other = request("yours:theirs", "secretpwd", false);
        assert!(answer(&other, from, "mine", "secretpwd", crypto.crypto()).is_none());
        assert!(
            answer(
                b"not stun at all",
                from,
                "mine",
                "secretpwd",
                crypto.crypto()
            )
            .is_none()
        );
    }
}
