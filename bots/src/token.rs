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

/// A token that lets `identity` join `room`, publish, subscribe and send data, valid for `ttl`.
pub fn mint(
    api_key: &str,
    api_secret: &str,
    identity: &str,
    room: &str,
    ttl: Duration,
) -> Result<String, TokenError> {
    AccessToken::with_api_key(api_key, api_secret)
        .with_identity(identity)
        .with_name(identity)
        .with_ttl(ttl)
        .with_grants(VideoGrants {
            room_join: true,
            room: room.to_owned(),
            can_publish: Some(true),
            can_subscribe: Some(true),
            can_publish_data: Some(true),
            ..Default::default()
        })
        .to_jwt()
        .map_err(|source| TokenError {
            identity: identity.to_owned(),
            source,
        })
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
}
