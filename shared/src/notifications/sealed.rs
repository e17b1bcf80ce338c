//! Sealed secrets: the secret part of a notification (an OTP code) travels on
//! the queue, its dead-letter queue and the delivery records only encrypted.
//!
//! A producer writes the body with [`SECRET_PLACEHOLDER`] where the secret
//! goes and seals the secret ([`Notification::seal_secret`]); the consumer
//! opens it just before the provider call ([`open`]). The cipher is
//! ChaCha20-Poly1305 with a random 96-bit nonce; the key is HKDF-SHA256 of the
//! first JWT signing secret (`PREMISES_JWT_KEYS`), derived once per process
//! and per key; the notification id is the associated data, so a sealed secret
//! moved to another message does not open. Sealed text: `v1.<kid>.<base64url
//! of nonce and ciphertext>`. Any JWT key of the configuration opens what it
//! sealed, so a key rotation does not strand the messages in flight.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use crate::App;
use crate::platform::config::JwtKey;

use super::Notification;

/// Where the opened secret goes in a notification's body.
pub const SECRET_PLACEHOLDER: &str = "{secret}";

/// What the body shows where the secret was, wherever it is not being delivered (inbox, outbox beyond dev).
pub const REDACTED: &str = "[sealed]";

const VERSION: &str = "v1";
const HKDF_SALT: &[u8] = b"premises";
const HKDF_INFO: &[u8] = b"premises notification secret v1";
const NONCE_LEN: usize = 12;
/// Longest secret sealed (OTP codes are 4 to 8 digits).
pub const MAX_SECRET_LEN: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("no JWT signing key is configured to seal with")]
    NoKey,
    #[error("the secret is empty or longer than {MAX_SECRET_LEN} bytes")]
    BadSecret,
    #[error("the sealed secret is malformed")]
    Malformed,
    #[error("the sealed secret names key {0:?}, which is not configured")]
    UnknownKey(String),
    #[error("the sealed secret does not open (tampered, or sealed for another message)")]
    DoesNotOpen,
}

/// Derived keys, by key id and a SHA-256 digest of its secret.
type DerivedKeys = HashMap<(String, [u8; 32]), [u8; 32]>;

/// The cipher of a JWT key (one derivation per key per process).
fn cipher(key: &JwtKey) -> ChaCha20Poly1305 {
    static KEYS: OnceLock<Mutex<DerivedKeys>> = OnceLock::new();
    let fingerprint: [u8; 32] = Sha256::digest(key.secret.as_bytes()).into();
    let mut keys = KEYS.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let derived = keys.entry((key.kid.clone(), fingerprint)).or_insert_with(|| {
        let mut okm = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8,160-byte limit: expand cannot fail.
        let _ = Hkdf::<Sha256>::new(Some(HKDF_SALT), key.secret.as_bytes()).expand(HKDF_INFO, &mut okm);
        okm
    });
    ChaCha20Poly1305::new(Key::from_slice(derived))
}

/// Seals `secret` for the notification `id` with the first configured key.
pub fn seal(keys: &[JwtKey], id: &str, secret: &str) -> Result<String, SealError> {
    let key = keys.first().ok_or(SealError::NoKey)?;
    if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
        return Err(SealError::BadSecret);
    }
    let nonce_bytes: [u8; NONCE_LEN] = rand::random();
    let nonce = Nonce::from_slice(&nonce_bytes);
    let sealed = cipher(key)
        .encrypt(nonce, Payload { msg: secret.as_bytes(), aad: id.as_bytes() })
        .map_err(|_| SealError::BadSecret)?;
    let mut bytes = nonce_bytes.to_vec();
    bytes.extend_from_slice(&sealed);
    Ok(format!("{VERSION}.{}.{}", key.kid, URL_SAFE_NO_PAD.encode(bytes)))
}

/// Opens what [`seal`] sealed for the notification `id`, with the key it names.
pub fn open_with(keys: &[JwtKey], id: &str, sealed: &str) -> Result<String, SealError> {
    let mut parts = sealed.splitn(3, '.');
    let (Some(VERSION), Some(kid), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SealError::Malformed);
    };
    let key = keys.iter().find(|k| k.kid == kid).ok_or_else(|| SealError::UnknownKey(kid.to_string()))?;
    let bytes = URL_SAFE_NO_PAD.decode(data).map_err(|_| SealError::Malformed)?;
    if bytes.len() <= NONCE_LEN {
        return Err(SealError::Malformed);
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let opened = cipher(key)
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: id.as_bytes() })
        .map_err(|_| SealError::DoesNotOpen)?;
    String::from_utf8(opened).map_err(|_| SealError::DoesNotOpen)
}

/// The body to hand a provider: the placeholder replaced by the opened secret (the body as it is
/// when the notification carries no sealed secret).
pub fn open(app: &App, notification: &Notification) -> Result<String, SealError> {
    match &notification.sealed_secret {
        None => Ok(notification.body.clone()),
        Some(sealed) => {
            let secret = open_with(&app.config.jwt_keys, &notification.id, sealed)?;
            Ok(notification.body.replace(SECRET_PLACEHOLDER, &secret))
        }
    }
}

/// The body with the secret's place marked, for wherever the secret must not be stored.
pub fn redacted(notification: &Notification) -> String {
    notification.body.replace(SECRET_PLACEHOLDER, REDACTED)
}

impl Notification {
    /// Seals `secret` into this notification (its body holds [`SECRET_PLACEHOLDER`] where it goes).
    pub fn seal_secret(mut self, app: &App, secret: &str) -> Result<Self, SealError> {
        self.sealed_secret = Some(seal(&app.config.jwt_keys, &self.id, secret)?);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<JwtKey> {
        vec![
            JwtKey { kid: "k2".into(), secret: "a-new-secret-of-enough-length-for-hs256!".into() },
            JwtKey { kid: "k1".into(), secret: "an-old-secret-of-enough-length-for-hs256".into() },
        ]
    }

    #[test]
    fn a_sealed_secret_opens_for_its_message_only() {
        let sealed = seal(&keys(), "n1", "123456").unwrap();
        assert!(!sealed.contains("123456"), "{sealed}");
        assert!(sealed.starts_with("v1.k2."), "{sealed}");
        assert_eq!(open_with(&keys(), "n1", &sealed).unwrap(), "123456");
        assert_eq!(open_with(&keys(), "n2", &sealed), Err(SealError::DoesNotOpen));
        assert_ne!(seal(&keys(), "n1", "123456").unwrap(), sealed, "a fresh nonce each time");
    }

    #[test]
    fn a_rotated_key_still_opens_what_it_sealed_and_tampering_is_refused() {
        let old = seal(&keys()[1..], "n1", "4321").unwrap();
        assert_eq!(open_with(&keys(), "n1", &old).unwrap(), "4321");
        assert_eq!(open_with(&keys()[..1], "n1", &old), Err(SealError::UnknownKey("k1".into())));
        let mut tampered = old.clone();
        tampered.pop();
        tampered.push(if old.ends_with('A') { 'B' } else { 'A' });
        assert!(open_with(&keys(), "n1", &tampered).is_err());
        assert_eq!(open_with(&keys(), "n1", "v1.k1"), Err(SealError::Malformed));
        assert_eq!(open_with(&keys(), "n1", "v9.k1.AAAA"), Err(SealError::Malformed));
    }
}
