//! The user as stored and as shown.

use serde::{Deserialize, Serialize};

use crate::platform::clock::UtcDateTime;

pub use crate::platform::http::auth::Role;

/// The user item (`keys::user`). Timestamps are epoch seconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    /// Lowercased; unique through `keys::user_email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// E.164 contact number, unique through `keys::user_contact_phone`. A login identity
    /// (`keys::user_phone`) only once `phone_verified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Whether this user proved `phone` by verifying an OTP sent to it; only then does an OTP
    /// login with that number enter this account.
    #[serde(default)]
    pub phone_verified: bool,
    /// argon2id PHC string.
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub is_active: bool,
    pub is_verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram_chat_id: Option<String>,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<i64>,
    /// Bumped when the password changes; refresh tokens carry the generation they were issued in.
    #[serde(default)]
    pub token_generation: i64,
}

/// The user as the API shows it (never the password hash).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub full_name: String,
    pub phone_number: Option<String>,
    /// Whether the phone number was proven with an OTP (only then does it log in here).
    pub phone_verified: bool,
    pub role: Role,
    pub is_active: bool,
    pub is_verified: bool,
    pub telegram_chat_id: Option<String>,
    pub created_at: String,
    pub last_login: Option<String>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        let full_name = format!("{} {}", u.first_name, u.last_name).trim().to_string();
        UserView {
            id: u.id.clone(),
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            full_name,
            phone_number: u.phone.clone(),
            phone_verified: u.phone.is_some() && u.phone_verified,
            role: u.role,
            is_active: u.is_active,
            is_verified: u.is_verified,
            telegram_chat_id: u.telegram_chat_id.clone(),
            created_at: UtcDateTime::from_epoch_secs(u.created_at).rfc3339(),
            last_login: u.last_login.map(|t| UtcDateTime::from_epoch_secs(t).rfc3339()),
        }
    }
}

crate::bounded_id!(
    /// A user's id as a client names it (a UUID today; any short token id is accepted).
    pub UserId, max = 64
);

/// Longest Telegram chat id (Telegram's are at most 20 characters; 256 is plenty for any such id).
pub const MAX_TELEGRAM_CHAT_ID: usize = 256;
/// Longest first or last name.
pub const MAX_NAME: usize = 150;
/// Longest email (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;

/// An access and a refresh token.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
}
