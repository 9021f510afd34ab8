//! Access tokens the harness mints for its bots (HS256, LiveKit's claims).
//!
//! A token is a credential: it goes into the signal URL and nowhere else. Errors and
//! events that could carry it pass through [`redact`] first.

use std::time::Duration;

use livekit_api::access_token::{AccessToken, VideoGrants};

#[derive(Debug, thiserror::Error)]
#[error("could not mint an access token for `{identity}`")]
pub struct TokenError {
    identity: String,
    #[source]
    source: livekit_api::access_token::AccessTokenError,
}

/// A token that lets `identity` join `room`, publish, subscribe and send data, valid for
/// `ttl`, as a client whose clock is `clock_skew_ms` ahead of the server (negative:
/// behind) would mint it: its `nbf` and `exp` are shifted by the skew, in whole seconds.
pub fn mint(
    api_key: &str,
    api_secret: &str,
    identity: &str,
    room: &str,
    ttl: Duration,
    clock_skew_ms: i64,
    can_publish: bool,
) -> Result<String, TokenError> {
    let jwt = AccessToken::with_api_key(api_key, api_secret)
        .with_identity(identity)
        .with_name(identity)
        .with_ttl(ttl)
        .with_grants(VideoGrants {
            room_join: true,
            room: room.to_owned(),
            can_publish: Some(can_publish),
            can_subscribe: Some(true),
            can_publish_data: Some(true),
            ..Default::default()
        })
        .to_jwt()
        .map_err(|source| TokenError {
            identity: identity.to_owned(),
            source,
        })?;
    let secs = clock_skew_ms / 1000;
    if secs == 0 {
        return Ok(jwt);
    }
    shift_times(&jwt, api_secret, secs).ok_or_else(|| TokenError {
        identity: identity.to_owned(),
        source: livekit_api::access_token::AccessTokenError::InvalidClaims(
            "the minted token could not be re-signed with a skewed clock",
        ),
    })
}

/// Moves a JWT's time claims by `secs` and signs it again (HS256 with `secret`).
fn shift_times(jwt: &str, secret: &str, secs: i64) -> Option<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use hmac::Mac as _;
    let (header, rest) = jwt.split_once('.')?;
    let (payload, _signature) = rest.split_once('.')?;
    let mut claims: serde_json::Value = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
    for key in ["nbf", "exp", "iat"] {
        if let Some(t) = claims.get(key).and_then(serde_json::Value::as_i64) {
            claims[key] = (t + secs).max(0).into();
        }
    }
    let signing_input = format!("{header}.{}", B64.encode(serde_json::to_vec(&claims).ok()?));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(signing_input.as_bytes());
    Some(format!(
        "{signing_input}.{}",
        B64.encode(mac.finalize().into_bytes())
    ))
}

/// Replaces every occurrence of `secret` in `text` (LiveKit echoes an expired token back
/// in its 401 body).
pub fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "<token>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_token_carries_identity_and_room_but_not_the_secret() {
        let secret = "0123456789abcdef0123456789abcdef-secret";
        let jwt = mint(
            "APIkey",
            secret,
            "speaker-1",
            "smoke",
            Duration::from_secs(60),
            0,
            true,
        )
        .unwrap();
        assert_eq!(jwt.split('.').count(), 3);
        assert!(!jwt.contains(secret));
        let claims = livekit_api::access_token::Claims::from_unverified(&jwt).unwrap();
        assert_eq!(claims.sub, "speaker-1");
        assert_eq!(claims.video.room, "smoke");
        assert_eq!(
            redact(&format!("invalid token: {jwt}, error"), &jwt),
            "invalid token: <token>, error"
        );
    }

    #[test]
    fn a_skewed_clock_shifts_nbf_and_exp_and_the_signature_still_verifies() {
        let secret = "0123456789abcdef0123456789abcdef-secret";
        let verifier = livekit_api::access_token::TokenVerifier::with_api_key("APIkey", secret);
        let mint_at = |ttl_s, skew_ms| {
            mint(
                "APIkey",
                secret,
                "b-1",
                "r",
                Duration::from_secs(ttl_s),
                skew_ms,
                true,
            )
            .unwrap()
        };
        let times = |jwt: &str| {
            let c = livekit_api::access_token::Claims::from_unverified(jwt).unwrap();
            (c.nbf as i64, c.exp as i64)
        };
        let (nbf0, exp0) = times(&mint_at(600, 0));
        let ahead = mint_at(600, 90_000);
        let (nbf, exp) = times(&ahead);
        assert!((nbf - nbf0 - 90).abs() <= 1 && (exp - exp0 - 90).abs() <= 1);
        // The signature covers the shifted claims: within the verifier's leeway (60 s)
        // the token is good; 90 s ahead it is not valid yet, 10 min behind with a 5-min
        // TTL it has expired.
        assert!(verifier.verify(&mint_at(600, 30_000)).is_ok());
        let err = |jwt: &str| format!("{:?}", verifier.verify(jwt).unwrap_err());
        assert!(err(&ahead).contains("ImmatureSignature"), "{}", err(&ahead));
        let behind = mint_at(300, -600_000);
        assert!(
            err(&behind).contains("ExpiredSignature"),
            "{}",
            err(&behind)
        );
    }
}
