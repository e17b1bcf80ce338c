//! Phone OTP login (HunarMitra, seed 004).
//!
//! A request stores the code's SHA-256 hash (never the code) with a TTL and
//! sends the code by SMS through the notifications queue; a verification
//! compares hashes in constant time, counts wrong codes (five kill the
//! request), and logs the phone in, creating its user on first use. Every
//! request and verification attempt is written to the phone's OTP log.
//!
//! A phone number is a login identity of the user that proved it (verified a
//! code sent to it), never of a profile that merely shows it: see [`verify`].

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::App;
use crate::notifications::{self, Channel, Notification, Recipient};
use crate::platform::clock::new_id;
use crate::platform::config::Env;
use crate::platform::store::{self, Cond, Item, StoreError, Tx, TxError, Update, Write, n, s};

use super::keys;
use super::service::{self, IdentityError, Result, normalize_phone, user_item};
use super::types::{Role, TokenPair, User};

/// Wrong codes after which a request is dead.
pub const MAX_ATTEMPTS: i64 = 5;
/// Requests per phone: at most one per this many seconds…
pub const MIN_SECS_BETWEEN_REQUESTS: i64 = 60;
/// …and at most this many per clock hour.
pub const MAX_REQUESTS_PER_HOUR: i64 = 5;
/// How long the OTP log keeps an entry.
const LOG_RETENTION_SECS: i64 = 90 * 24 * 3600;

crate::bounded_id!(
    /// The id of an OTP request (a UUID today).
    pub OtpRequestId, max = 64
);

/// The roles a phone may sign up with (never admin or staff).
pub const SIGNUP_ROLES: &[Role] = &[Role::Worker, Role::Contractor, Role::Member];

/// What [`request`] hands back to the handler.
#[derive(Debug)]
pub struct Requested {
    pub request_id: String,
    pub phone: String,
    pub ttl_secs: i64,
    /// The code, for the dev-mode response only.
    pub code: String,
}

/// The OTP request item (`keys::otp`).
#[derive(Debug, Serialize, Deserialize)]
struct OtpRequest {
    request_id: String,
    phone: String,
    role: Role,
    /// Lowercase hex SHA-256 of the code.
    code_hash: String,
    attempts: i64,
    created_at: i64,
    expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    used_at: Option<i64>,
}

fn hash_code(code: &str) -> String {
    Sha256::digest(code.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn random_code(digits: u32) -> String {
    let mut rng = rand::rng();
    (0..digits).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect()
}

/// An entry of the phone's OTP log.
fn log_item(phone: &str, now: i64, event: &str, request_id: &str) -> Item {
    let mut item = keys::otp_log(phone, now, &new_id()).to_item();
    item.insert("type".into(), s("otp_log"));
    item.insert("event".into(), s(event));
    item.insert("request_id".into(), s(request_id));
    item.insert("at".into(), n(now));
    item.insert("expires_at".into(), n(now + LOG_RETENTION_SECS));
    item
}

fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(store::Value::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// Starts an OTP login for `phone`. One transaction (rate limits, request,
/// log), one queue send; a refused request adds a get and a log write.
pub async fn request(app: &App, phone: &str, role: Role) -> Result<Requested> {
    let phone = normalize_phone("phone", phone)?;
    if !SIGNUP_ROLES.contains(&role) {
        return Err(IdentityError::Invalid {
            field: "role",
            code: "invalid_choice",
            message: format!("\"{}\" is not a valid choice.", role.as_str()),
        });
    }
    let now = app.clock.now_secs();
    let hour = now.div_euclid(3600);
    let code = random_code(app.config.otp_length);
    let request_id = new_id();
    let otp = OtpRequest {
        request_id: request_id.clone(),
        phone: phone.clone(),
        role,
        code_hash: hash_code(&code),
        attempts: 0,
        created_at: now,
        expires_at: now + app.config.otp_ttl_secs,
        used_at: None,
    };
    let mut otp_item = store::to_item(&otp)?;
    let key = keys::otp(&request_id);
    otp_item.insert(store::TABLE.pk.to_string(), s(key.pk));
    otp_item.insert(store::TABLE.sk.to_string(), s(key.sk));
    otp_item.insert("type".into(), s("otp_request"));

    /// Which throttle refused the request.
    #[derive(Clone, Copy)]
    enum Throttle {
        Cooldown,
        Hourly,
    }
    let mut tx = Tx::new();
    tx.push_or(
        Write::Update {
            key: keys::otp_last_request(&phone),
            update: Update::new()
                .set("last_at", n(now))
                .set("type", s("otp_rate"))
                .set("expires_at", n(now + MIN_SECS_BETWEEN_REQUESTS)),
            cond: Some(Cond::not_exists("last_at").or(Cond::le("last_at", n(now - MIN_SECS_BETWEEN_REQUESTS)))),
        },
        Throttle::Cooldown,
    )
    .push_or(
        Write::Update {
            key: keys::otp_hour(&phone, hour),
            update: Update::new().add("count", 1).set("type", s("otp_rate")).set("expires_at", n((hour + 2) * 3600)),
            cond: Some(Cond::not_exists("count").or(Cond::lt("count", n(MAX_REQUESTS_PER_HOUR)))),
        },
        Throttle::Hourly,
    )
    .push(Write::Put { item: otp_item, cond: Some(Cond::item_absent()) })
    .push(Write::Put { item: log_item(&phone, now, "requested", &request_id), cond: None });
    match app.store.commit(tx).await {
        Ok(()) => {}
        Err(TxError::Failed(throttle)) => {
            let retry_after_secs = match throttle {
                Throttle::Cooldown => {
                    let last = app.store.get(&keys::otp_last_request(&phone)).await?;
                    let last_at = last.as_ref().and_then(|i| number(i, "last_at")).unwrap_or(now);
                    last_at + MIN_SECS_BETWEEN_REQUESTS - now
                }
                Throttle::Hourly => (hour + 1) * 3600 - now,
            };
            app.store.put(log_item(&phone, now, "rate_limited", &request_id), None).await?;
            return Err(IdentityError::TooManyOtpRequests { retry_after_secs: retry_after_secs.max(1) });
        }
        Err(TxError::Store(StoreError::Conflict)) => {
            return Err(IdentityError::TooManyOtpRequests { retry_after_secs: MIN_SECS_BETWEEN_REQUESTS });
        }
        Err(TxError::Store(e)) => return Err(e.into()),
    }

    // The code travels sealed: the queue, its DLQ and the delivery records never hold it in plain text.
    let notification = Notification {
        id: new_id(),
        recipient: Recipient::Phone(phone.clone()),
        kind: "otp".into(),
        title: "Your login code".into(),
        body: format!(
            "Your Premises code is {}. It expires in {} minutes.",
            notifications::sealed::SECRET_PLACEHOLDER,
            app.config.otp_ttl_secs / 60
        ),
        data: serde_json::json!({"request_id": request_id}),
        channels: vec![Channel::Sms],
        sealed_secret: None,
    }
    .seal_secret(app, &code)
    .map_err(|e| IdentityError::Internal(e.into()))?;
    notifications::enqueue(app, &notification).await.map_err(|e| IdentityError::Internal(e.into()))?;
    if app.config.env == Env::Dev {
        tracing::info!(phone = %phone, otp = %code, request_id = %request_id, "dev mode: OTP");
    }
    Ok(Requested { request_id, phone, ttl_secs: app.config.otp_ttl_secs, code })
}

/// A successful verification.
#[derive(Debug)]
pub struct Verified {
    pub user: User,
    pub tokens: TokenPair,
    pub is_new_user: bool,
}

/// The signed-in user a verification is for (from a valid access token sent along).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    /// The token's generation; a token from before a password change does not prove anything.
    pub generation: Option<i64>,
}

/// Who a right code logs in, decided from the phone's login identity and the caller.
enum Outcome {
    /// The user that proved this phone before.
    Owner(User),
    /// The caller, whose profile shows this phone unproven: it becomes their login identity.
    Bind(User),
    /// Nobody proved this phone: a new user, taking the number over from the profile that
    /// shows it unproven (`holder`), if any.
    Create { holder: Option<User> },
}

/// Checks a code and logs its phone in.
///
/// Without a caller: the user that proved the phone before, else a new user
/// that proves it now (a profile that only shows the number loses it to the
/// new user). With a caller (an access token sent along): the caller, who must
/// be the phone's prover already or show the number unproven in their profile,
/// which then binds it as their login identity; anyone else is 400
/// `phone_not_in_profile` and the code stays usable.
///
/// Round trips: the request; then a wrong code is one transaction (attempt and
/// log); a right one is the phone's login identity (+ the user), the contact
/// item (+ its user) when nobody proved the phone, and one transaction.
pub async fn verify(app: &App, request_id: &OtpRequestId, code: &str, caller: Option<Caller>) -> Result<Verified> {
    let request_id = request_id.as_str();
    let now = app.clock.now_secs();
    let expired = || IdentityError::OtpRefused { code: "otp_expired", message: "OTP expired or not found." };
    let Some(item) = app.store.get(&keys::otp(request_id)).await? else { return Err(expired()) };
    let otp: OtpRequest = store::from_item(item)?;
    if otp.expires_at <= now {
        app.store.put(log_item(&otp.phone, now, "expired", request_id), None).await?;
        return Err(expired());
    }
    if otp.used_at.is_some() {
        app.store.put(log_item(&otp.phone, now, "used", request_id), None).await?;
        return Err(IdentityError::OtpRefused { code: "otp_used", message: "OTP already used." });
    }
    if otp.attempts >= MAX_ATTEMPTS {
        app.store.put(log_item(&otp.phone, now, "locked", request_id), None).await?;
        return Err(locked());
    }
    // Usable: not used, not dead, not expired; any concurrent change is caught here.
    let usable = Cond::item_exists()
        .and(Cond::not_exists("used_at"))
        .and(Cond::lt("attempts", n(MAX_ATTEMPTS)))
        .and(Cond::gt("expires_at", n(now)));

    let right: bool = hash_code(code.trim()).as_bytes().ct_eq(otp.code_hash.as_bytes()).into();
    if !right {
        let writes = vec![
            Write::Update { key: keys::otp(request_id), update: Update::new().add("attempts", 1), cond: Some(usable) },
            Write::Put { item: log_item(&otp.phone, now, "wrong_code", request_id), cond: None },
        ];
        return match app.store.transact(writes).await {
            Ok(()) if otp.attempts + 1 >= MAX_ATTEMPTS => Err(locked()),
            Ok(()) => Err(IdentityError::OtpRefused { code: "otp_invalid", message: "Invalid OTP." }),
            Err(StoreError::TransactionCanceled { .. } | StoreError::Conflict) => {
                // A concurrent attempt used or killed the code first; this attempt is logged all the same.
                app.store.put(log_item(&otp.phone, now, "wrong_code_refused", request_id), None).await?;
                Err(locked())
            }
            Err(e) => Err(e.into()),
        };
    }

    for _ in 0..3 {
        // Read on each turn: a retry decides on what the store holds now.
        let caller = match &caller {
            None => None,
            Some(caller) => {
                let user = service::get_user(app, &caller.user_id).await?.ok_or(IdentityError::TokenInvalid)?;
                if !user.is_active || caller.generation.is_some_and(|g| g != user.token_generation) {
                    return Err(IdentityError::TokenInvalid);
                }
                Some(user)
            }
        };
        let owner = service::find_by_phone(app, &otp.phone).await?;
        let outcome = match (owner, &caller) {
            (Some(owner), None) => Outcome::Owner(owner),
            (Some(owner), Some(caller)) if owner.id == caller.id => Outcome::Owner(owner),
            (None, Some(caller)) if caller.phone.as_deref() == Some(otp.phone.as_str()) => {
                Outcome::Bind(caller.clone())
            }
            (_, Some(_)) => return Err(not_in_profile()),
            (None, None) => {
                let holder = match service::contact_holder(app, &otp.phone).await? {
                    Some(id) => service::get_user(app, &id).await?,
                    None => None,
                };
                Outcome::Create { holder }
            }
        };
        let use_code = Write::Update {
            key: keys::otp(request_id),
            update: Update::new().set("used_at", n(now)),
            cond: Some(usable.clone()),
        };
        let mut writes = vec![Write::Put { item: log_item(&otp.phone, now, "verified", request_id), cond: None }];
        let proven = || Update::new().set("is_verified", store::Value::Bool(true)).set("last_login", n(now));
        let (mut user, is_new_user) = match outcome {
            Outcome::Owner(user) => {
                if !user.is_active {
                    return Err(IdentityError::BadCredentials);
                }
                writes.push(Write::Update {
                    key: keys::user(&user.id),
                    update: proven(),
                    cond: Some(Cond::item_exists()),
                });
                (user, false)
            }
            Outcome::Bind(mut user) => {
                writes.push(Write::Put {
                    item: service::owner_item("user_phone", keys::user_phone(&otp.phone), &user.id),
                    cond: Some(Cond::item_absent()),
                });
                writes.push(Write::Update {
                    key: keys::user(&user.id),
                    update: proven().set("phone_verified", store::Value::Bool(true)),
                    cond: Some(Cond::item_exists().and(Cond::eq("phone", s(&otp.phone)))),
                });
                writes.push(Write::Check {
                    key: keys::user_contact_phone(&otp.phone),
                    cond: Cond::eq("user_id", s(&user.id)),
                });
                user.phone_verified = true;
                (user, false)
            }
            Outcome::Create { holder } => {
                let user = User {
                    id: new_id(),
                    email: None,
                    phone: Some(otp.phone.clone()),
                    phone_verified: true,
                    // No password: this user logs in with OTPs only.
                    password_hash: String::new(),
                    first_name: String::new(),
                    last_name: String::new(),
                    role: otp.role,
                    is_active: true,
                    is_verified: true,
                    telegram_chat_id: None,
                    created_at: now,
                    last_login: Some(now),
                    token_generation: 0,
                };
                writes.push(Write::Put { item: user_item(&user)?, cond: Some(Cond::item_absent()) });
                writes.push(Write::Put {
                    item: service::owner_item("user_phone", keys::user_phone(&otp.phone), &user.id),
                    cond: Some(Cond::item_absent()),
                });
                // The number moves to its prover: the profile that showed it unproven loses it.
                let contact_unchanged = match &holder {
                    Some(holder) => Cond::eq("user_id", s(&holder.id)),
                    None => Cond::item_absent(),
                };
                writes.push(Write::Put {
                    item: service::owner_item("user_contact_phone", keys::user_contact_phone(&otp.phone), &user.id),
                    cond: Some(contact_unchanged),
                });
                if let Some(holder) = holder.filter(|h| h.phone.as_deref() == Some(otp.phone.as_str())) {
                    tracing::info!(user_id = %holder.id, "an unproven phone number moves to the user that proved it");
                    writes.push(Write::Update {
                        key: keys::user(&holder.id),
                        update: Update::new().remove("phone").set("phone_verified", store::Value::Bool(false)),
                        cond: Some(Cond::eq("phone", s(&otp.phone))),
                    });
                }
                (user, true)
            }
        };
        /// Why the verification did not commit.
        #[derive(Clone, Copy)]
        enum Race {
            /// Someone else used the code first.
            Used,
            /// The phone's login identity or contact number changed meanwhile.
            Changed,
        }
        let mut tx = Tx::new();
        tx.push_or(use_code, Race::Used).extend_or(writes, Race::Changed);
        match app.store.commit(tx).await {
            Ok(()) => {
                user.is_verified = true;
                user.last_login = Some(now);
                let tokens = service::start_session(app, &user)?;
                return Ok(Verified { user, tokens, is_new_user });
            }
            // The phone's login identity or contact number changed concurrently: decide again.
            Err(TxError::Failed(Race::Changed)) => continue,
            Err(
                TxError::Failed(Race::Used)
                | TxError::Store(StoreError::TransactionCanceled { .. } | StoreError::Conflict),
            ) => {
                app.store.put(log_item(&otp.phone, now, "used", request_id), None).await?;
                return Err(IdentityError::OtpRefused { code: "otp_used", message: "OTP already used." });
            }
            Err(TxError::Store(e)) => return Err(e.into()),
        }
    }
    app.store.put(log_item(&otp.phone, now, "used", request_id), None).await?;
    Err(IdentityError::OtpRefused { code: "otp_used", message: "OTP already used." })
}

fn not_in_profile() -> IdentityError {
    IdentityError::Invalid {
        field: "phone",
        code: "phone_not_in_profile",
        message: "Signed in, a code proves the phone number of your own profile only.".into(),
    }
}

fn locked() -> IdentityError {
    IdentityError::OtpRefused { code: "otp_locked", message: "Too many wrong codes; request a new OTP." }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_configured_digits() {
        for digits in [4, 6, 10] {
            let code = random_code(digits);
            assert_eq!(code.len(), digits as usize);
            assert!(code.chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(hash_code("1234"), "03ac674216f3e15c761ee1a5e255f067953623c8b388b4459e13f978d7c846f4");
    }
}
