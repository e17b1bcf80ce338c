//! Every key the identity module writes. See docs/data-model.md.

use crate::platform::store::Key;

/// The user: `USER#<id>` / `USER`.
pub fn user(id: &str) -> Key {
    Key::new(format!("USER#{id}"), "USER")
}

/// GSI1 partition of every user (admin listing, oldest first).
pub const USERS_GSI1PK: &str = "USERS";

/// GSI1 sort key of a user: zero-padded creation second, then the id.
pub fn users_gsi1sk(created_at: i64, id: &str) -> String {
    format!("{created_at:012}#{id}")
}

/// Uniqueness of an email (already lowercased): `USEREMAIL#<email>` / `USEREMAIL`, holding `user_id`.
pub fn user_email(email_lower: &str) -> Key {
    Key::new(format!("USEREMAIL#{email_lower}"), "USEREMAIL")
}

/// A phone number as a login identity: `USERPHONE#<phone>` / `USERPHONE`, holding the `user_id` that
/// proved it (verified an OTP sent to it). OTP login resolves this item only.
pub fn user_phone(phone: &str) -> Key {
    Key::new(format!("USERPHONE#{phone}"), "USERPHONE")
}

/// A phone number as a profile's contact number: `USERPHONE#<phone>` / `CONTACT`, holding `user_id`.
/// Keeps profile numbers unique; never logs anyone in. Proving the number moves it to the prover.
pub fn user_contact_phone(phone: &str) -> Key {
    Key::new(format!("USERPHONE#{phone}"), "CONTACT")
}

/// A refresh token that has been used (rotated) or presented: `REFRESH#<jti>` / `USED`, TTL at the token's expiry.
pub fn refresh_used(jti: &str) -> Key {
    Key::new(format!("REFRESH#{jti}"), "USED")
}

/// A refresh-token family (one login session): `TOKENFAMILY#<fam>` / `TOKENFAMILY`; exists only once revoked.
pub fn token_family(fam: &str) -> Key {
    Key::new(format!("TOKENFAMILY#{fam}"), "TOKENFAMILY")
}

/// Login attempts for one email in one minute, reserved before the password is checked and released
/// by a successful login: `LOGINFAIL#EMAIL#<email>` / `MINUTE#<epoch minute>`, `count`, TTL.
pub fn login_failures_email(email_lower: &str, minute: i64) -> Key {
    Key::new(format!("LOGINFAIL#EMAIL#{email_lower}"), format!("MINUTE#{minute}"))
}

/// Login attempts from one source IP in one minute, reserved and released like the email's:
/// `LOGINFAIL#IP#<ip>` / `MINUTE#<epoch minute>`, `count`, TTL.
pub fn login_failures_ip(ip: &str, minute: i64) -> Key {
    Key::new(format!("LOGINFAIL#IP#{ip}"), format!("MINUTE#{minute}"))
}

/// An OTP request: `OTP#<request_id>` / `OTP`, the code's hash, attempts, TTL at its expiry.
pub fn otp(request_id: &str) -> Key {
    Key::new(format!("OTP#{request_id}"), "OTP")
}

/// When a phone last requested an OTP: `OTPRATE#<phone>` / `LAST`, `last_at`, TTL a minute later.
pub fn otp_last_request(phone: &str) -> Key {
    Key::new(format!("OTPRATE#{phone}"), "LAST")
}

/// OTP requests of a phone in one clock hour: `OTPRATE#<phone>` / `HOUR#<epoch hour>`, `count`, TTL.
pub fn otp_hour(phone: &str, hour: i64) -> Key {
    Key::new(format!("OTPRATE#{phone}"), format!("HOUR#{hour}"))
}

/// One entry of a phone's OTP log: `OTPLOG#<phone>` / `<epoch second, 12 digits>#<id>`, kept 90 days.
pub fn otp_log(phone: &str, at: i64, id: &str) -> Key {
    Key::new(format!("OTPLOG#{phone}"), format!("{at:012}#{id}"))
}

/// An RFID tag (8 hex digits, uppercased): `RFID#<tag>` / `RFID`, `user_id`?, `blacklisted`.
pub fn rfid(tag: &str) -> Key {
    Key::new(format!("RFID#{tag}"), "RFID")
}

/// Registrations from one source IP in one minute: `REGISTER#IP#<ip>` / `MINUTE#<epoch minute>`, `count`, TTL.
pub fn registrations_ip(ip: &str, minute: i64) -> Key {
    Key::new(format!("REGISTER#IP#{ip}"), format!("MINUTE#{minute}"))
}

/// RFID logins with an unknown or refused tag from one source IP in one minute, reserved before the
/// lookup and released when the tag logs someone in: `RFIDFAIL#IP#<ip>` / `MINUTE#<epoch minute>`, `count`, TTL.
pub fn rfid_failures_ip(ip: &str, minute: i64) -> Key {
    Key::new(format!("RFIDFAIL#IP#{ip}"), format!("MINUTE#{minute}"))
}
