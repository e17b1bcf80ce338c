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

use crate::platform::function::{Module, Param};

/// `PREMISES_JWT_KEYS` in every function: each verifies access tokens.
pub const JWT_KEYS: Param = Param::global(
    "JwtKeys",
    "PREMISES_JWT_KEYS",
    "PREMISES_JWT_KEYS: comma-separated kid:secret pairs (secrets of at least 32 characters); the first signs, all verify. Put a new key first to rotate; drop the old one after the refresh-token lifetime.",
)
.secret();

/// The identity module's functions, in catalog order.
pub static MODULE: Module = Module {
    name: "identity",
    description: "Accounts: email and password (SmartLock, Circle Time), phone OTP (HunarMitra), RFID tags; users' admin",
    functions: &[
        handlers::AUTH_REGISTER,
        handlers::AUTH_LOGIN,
        handlers::AUTH_LOGOUT,
        handlers::AUTH_TOKEN_REFRESH,
        handlers::USERS_PROFILE_GET,
        handlers::USERS_PROFILE_PUT,
        handlers::USERS_CHANGE_PASSWORD,
        circle::CIRCLE_AUTH_LOGIN,
        circle::CIRCLE_AUTH_REFRESH,
        circle::CIRCLE_AUTH_ME,
        admin::ADMIN_USERS_LIST,
        admin::ADMIN_USERS_UPDATE,
        handlers::AUTH_REQUEST_OTP,
        handlers::AUTH_VERIFY_OTP,
        rfid::RFID_LOGIN,
        rfid::ADMIN_RFID_ASSIGN,
        rfid::ADMIN_RFID_UNASSIGN,
        rfid::ADMIN_RFID_BLACKLIST,
        rfid::ADMIN_RFID_UNBLACKLIST,
    ],
    queues: &[],
    params: &[JWT_KEYS],
};
