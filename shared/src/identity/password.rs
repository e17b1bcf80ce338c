//! Password hashing (argon2id, OWASP parameters) and the password rules.
//!
//! Hashing is CPU- and memory-heavy (19 MiB a hash), so every hash or
//! verification runs on tokio's blocking pool and holds one of
//! [`HASHING_PERMITS`] permits of a process-wide semaphore: a burst of logins
//! queues instead of allocating 19 MiB per request at once.

use std::sync::LazyLock;

use tokio::sync::Semaphore;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

/// OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 128;

/// Hashes or verifications running at once in one process (at most 2 × 19 MiB of argon2 memory);
/// further requests wait their turn. Two, the CPUs of the smallest machine this runs on; a Lambda
/// instance serves one request at a time anyway.
pub const HASHING_PERMITS: usize = 2;

static HASHING: Semaphore = Semaphore::const_new(HASHING_PERMITS);

/// Runs `work` on the blocking pool once a hashing permit is free.
async fn bounded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let _permit = HASHING.acquire().await?;
    Ok(tokio::task::spawn_blocking(work).await?)
}

fn hasher() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).map_err(anyhow::Error::msg)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::Error::new(e).context("salt"))?;
    let hash =
        hasher()?.hash_password(password.as_bytes(), &salt).map_err(|e| anyhow::Error::new(e).context("hashing"))?;
    Ok(hash.to_string())
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    hasher().is_ok_and(|h| h.verify_password(password.as_bytes(), &parsed).is_ok())
}

/// The argon2id PHC string of `password`.
pub async fn hash(password: String) -> anyhow::Result<String> {
    bounded(move || hash_blocking(&password)).await?
}

/// Whether `password` matches `hash` (false for a malformed hash).
pub async fn verify(password: String, hash: String) -> bool {
    bounded(move || verify_blocking(&password, &hash)).await.unwrap_or(false)
}

/// Spends the time of a verification when there is no user, so that an
/// unknown email answers as slowly as a wrong password.
pub async fn verify_nothing(password: String) {
    static DUMMY: LazyLock<String> = LazyLock::new(|| hash_blocking("premises-dummy-password").unwrap_or_default());
    let _ = bounded(move || verify_blocking(&password, &DUMMY)).await;
}

/// Why a password is not acceptable (message), or `None`.
pub fn problem(password: &str) -> Option<String> {
    let len = password.chars().count();
    if len < MIN_LENGTH {
        return Some(format!("This password is too short. It must contain at least {MIN_LENGTH} characters."));
    }
    if len > MAX_LENGTH {
        return Some(format!("This password is too long. It must contain at most {MAX_LENGTH} characters."));
    }
    if password.chars().all(|c| c.is_ascii_digit()) {
        return Some("This password is entirely numeric.".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse".into(), h.clone()).await);
        assert!(!verify("wrong horse".into(), h).await);
        assert!(!verify("x".into(), "not a hash".into()).await);
    }

    #[test]
    fn short_or_numeric_passwords_are_rejected() {
        assert!(problem("short1!").is_some());
        assert!(problem("12345678901").is_some());
        assert!(problem("Secure123!").is_none());
    }
}
