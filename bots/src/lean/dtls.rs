//! The lean peer's DTLS-SRTP: `rtc-dtls`'s sans-IO endpoint as the DTLS client, and the
//! SRTP context that decrypts what the SFU sends, keyed from the handshake (RFC 5764).
//!
//! One certificate serves every lean peer of the process (each answer carries its
//! fingerprint; the SFU checks it in the handshake). The SFU's certificate is checked
//! against the fingerprint of its offer, as a browser checks it.

use std::sync::{Arc, OnceLock};

use rtc::crypto::{HashAlgorithm, RTCCryptoProvider};
use rtc::dtls::config::{
    ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig,
    VerifyPeerCertificateFn,
};
use rtc::dtls::crypto::Certificate;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::dtls::state::State;
use rtc::srtp::config::{Config as SrtpConfig, LABEL_EXTRACTOR_DTLS_SRTP};
use rtc::srtp::context::Context;
use rtc::srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc::srtp::protection_profile::ProtectionProfile;

/// The replay window of the decrypting context, as `rtc`'s peer connection has it.
const REPLAY_WINDOW: usize = 64;

/// What every lean peer of the process shares: the crypto provider and the certificate.
pub struct Identity {
    pub crypto: Arc<dyn RTCCryptoProvider>,
    pub certificate: Certificate,
    /// `sha-256` fingerprint of the certificate, as the answer writes it.
    pub fingerprint: String,
}

/// The process's one identity, made on first use.
pub fn identity() -> Result<&'static Identity, String> {
    static ID: OnceLock<Result<Identity, String>> = OnceLock::new();
    ID.get_or_init(|| {
        let crypto = rtc::crypto::default_provider().map_err(|e| e.to_string())?;
        let certificate =
            Certificate::generate_self_signed(vec!["sfu-harness-lean".to_owned()], crypto.crypto())
                .map_err(|e| format!("certificate: {e}"))?;
        let der = certificate
            .certificate
            .first()
            .ok_or("certificate: empty chain")?;
        let fingerprint = sha256_fingerprint(crypto.as_ref(), der)?;
        Ok(Identity {
            crypto,
            certificate,
            fingerprint,
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// `AB:CD:...`: the SHA-256 of `der`, as SDP writes a fingerprint.
fn sha256_fingerprint(crypto: &dyn RTCCryptoProvider, der: &[u8]) -> Result<String, String> {
    let hash = crypto
        .crypto()
        .hash(HashAlgorithm::Sha256, der)
        .map_err(|e| format!("sha-256: {e}"))?;
    Ok(hash
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// The client's handshake configuration for a peer whose offer gave `remote_fingerprint`.
pub fn client_config(
    id: &Identity,
    remote_fingerprint: &str,
) -> Result<Arc<HandshakeConfig>, String> {
    let expected = remote_fingerprint.to_owned();
    let crypto = Arc::clone(&id.crypto);
    let verify: VerifyPeerCertificateFn = Arc::new(move |certs, _| {
        let first = certs
            .first()
            .ok_or(rtc::shared::error::Error::ErrNonCertificate)?;
        let got =
            sha256_fingerprint(crypto.as_ref(), first).map_err(rtc::shared::error::Error::Other)?;
        if got.eq_ignore_ascii_case(&expected) {
            Ok(())
        } else {
            Err(rtc::shared::error::Error::ErrNoMatchingCertificateFingerprint)
        }
    });
    let config = ConfigBuilder::default()
        .with_crypto_provider(Arc::clone(&id.crypto))
        .with_certificates(vec![id.certificate.clone()])
        .with_srtp_protection_profiles(vec![
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
        ])
        .with_client_auth(ClientAuthType::RequireAnyClientCert)
        .with_insecure_skip_verify(true)
        .with_verify_peer_certificate(Some(verify))
        .with_extended_master_secret(ExtendedMasterSecretType::Require)
        .build(true, None)
        .map_err(|e| format!("dtls config: {e}"))?;
    Ok(Arc::new(config))
}

/// The context that decrypts the remote side's SRTP, from a finished handshake.
pub fn remote_srtp(state: &State, id: &Identity) -> Result<Context, String> {
    let profile = match state.srtp_protection_profile() {
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => ProtectionProfile::AeadAes128Gcm,
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => {
            ProtectionProfile::Aes128CmHmacSha1_80
        }
        other => return Err(format!("srtp profile {other:?} was not offered")),
    };
    let mut config = SrtpConfig {
        profile,
        ..Default::default()
    };
    let material = state
        .export_keying_material(LABEL_EXTRACTOR_DTLS_SRTP, &[], config.keying_material_len())
        .map_err(|e| format!("srtp keys: {e}"))?;
    config
        .set_session_keys_from_keying_material(material.as_ref(), state.is_client())
        .map_err(|e| format!("srtp keys: {e}"))?;
    Context::new(
        &config.keys.remote_master_key,
        &config.keys.remote_master_salt,
        profile,
        Some(srtp_replay_protection(REPLAY_WINDOW)),
        Some(srtcp_replay_protection(REPLAY_WINDOW)),
        id.crypto.crypto(),
    )
    .map_err(|e| format!("srtp context: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_has_a_sha256_fingerprint_and_a_client_config() {
        let id = identity().unwrap();
        assert_eq!(id.fingerprint.len(), 32 * 3 - 1, "{}", id.fingerprint);
        assert!(client_config(id, "AA:BB").is_ok());
    }
}
