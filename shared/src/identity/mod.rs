//! Identity: users, passwords and JWT sessions.
//!
//! - [`types`]: the user as stored and as shown, roles;
//! - [`keys`]: every key this module writes (one place);
//! - [`password`]: argon2id hashing and the password rules;
//! - [`tokens`]: signing and verifying JWTs, the platform's [`TokenVerifier`](crate::platform::http::auth::TokenVerifier);
//! - [`service`]: the rules (registration, login, refresh rotation, revocation);
//! - [`handlers`]: SmartLock's `/api/v1/auth/…` and `/api/v1/users/…` (seed 003);
//! - [`admin`]: `/api/admin/users/…` for admins;
//! - [`circle`]: Circle Time's `/api/auth/…` in its `{success, data}` envelope (seed 001).

pub mod admin;
pub mod circle;
pub mod handlers;
pub mod keys;
pub mod otp;
pub mod password;
pub mod rfid;
pub mod service;
pub mod tokens;
pub mod types;
