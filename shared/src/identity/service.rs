//! The identity rules: registration, login, token rotation and revocation,
//! profile and password changes. No HTTP here; handlers shape the answers.

use std::time::Duration;

use crate::App;
use crate::platform::clock::new_id;
use crate::platform::store::{self, Cond, Index, Query, StoreError, Tx, TxError, Update, Write, n, s};

use super::keys;
use super::password;
use super::tokens::{self, Claims, TokenError, Tokens};
use super::types::{MAX_EMAIL, MAX_NAME, MAX_TELEGRAM_CHAT_ID, Role, TokenPair, User};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Bad input on one field.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, code: &'static str, message: String },
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error("a user with this phone number already exists")]
    PhoneTaken,
    #[error("no active account found with the given credentials")]
    BadCredentials,
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: i64 },
    #[error("too many registrations from this address; retry in {retry_after_secs} s")]
    TooManyRegistrations { retry_after_secs: i64 },
    #[error("too many OTP requests; retry in {retry_after_secs} s")]
    TooManyOtpRequests { retry_after_secs: i64 },
    /// An OTP verification that did not log anyone in.
    #[error("{message}")]
    OtpRefused { code: &'static str, message: &'static str },
    #[error("token not valid")]
    TokenInvalid,
    /// The caller's own user is gone (its token outlived it).
    #[error("user not found")]
    UserNotFound,
    /// An admin named a user that does not exist.
    #[error("no such user")]
    NoSuchUser,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<TokenError> for IdentityError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid | TokenError::Expired => IdentityError::TokenInvalid,
            TokenError::Signing(e) => IdentityError::Internal(e.into()),
        }
    }
}

pub type Result<T, E = IdentityError> = std::result::Result<T, E>;

fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> IdentityError {
    IdentityError::Invalid { field, code, message: message.into() }
}

/// A registration.
#[derive(Debug)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    pub password_confirm: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
    pub role: Role,
}

/// Changes to a profile; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub telegram_chat_id: Option<String>,
}

/// The lowercased email, or why it is not one.
pub fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= MAX_EMAIL
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.split('.').count() >= 2
                && domain.split('.').all(|part| !part.is_empty())
        });
    if valid { Ok(email) } else { Err(invalid("email", "invalid", "Enter a valid email address.")) }
}

/// An E.164 phone number (`+` and 8 to 15 digits), or why it is not one.
pub fn normalize_phone(field: &'static str, phone: &str) -> Result<String> {
    let phone: String = phone.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
    match phone.strip_prefix('+') {
        Some(digits)
            if (8..=15).contains(&digits.len())
                && digits.chars().all(|c| c.is_ascii_digit())
                && !digits.starts_with('0') =>
        {
            Ok(phone)
        }
        _ => Err(invalid(field, "invalid", "Enter a phone number in E.164 format, such as +14155550123.")),
    }
}

fn check_name(field: &'static str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.chars().count() > MAX_NAME {
        return Err(invalid(field, "max_length", format!("Ensure this field has no more than {MAX_NAME} characters.")));
    }
    Ok(value.to_string())
}

fn check_new_password(field: &'static str, confirm_field: &'static str, password: &str, confirm: &str) -> Result<()> {
    if let Some(problem) = password::problem(password) {
        return Err(invalid(field, "password_invalid", problem));
    }
    if password != confirm {
        return Err(invalid(confirm_field, "password_mismatch", "The two password fields didn't match."));
    }
    Ok(())
}

pub(super) fn user_item(user: &User) -> Result<store::Item> {
    let key = keys::user(&user.id);
    let mut item = store::to_item(user)?;
    item.insert(store::TABLE.pk.to_string(), s(key.pk));
    item.insert(store::TABLE.sk.to_string(), s(key.sk));
    item.insert("type".into(), s("user"));
    item.insert("GSI1PK".into(), s(keys::USERS_GSI1PK));
    item.insert("GSI1SK".into(), s(keys::users_gsi1sk(user.created_at, &user.id)));
    Ok(item)
}

/// An item of `entity` that points at a user (uniqueness, token bookkeeping).
pub(super) fn owner_item(entity: &str, key: store::Key, user_id: &str) -> store::Item {
    let mut item = key.to_item();
    item.insert("type".into(), s(entity));
    item.insert("user_id".into(), s(user_id));
    item
}

/// Most attempts of a transaction that conflicts with a concurrent one.
const CONFLICT_ATTEMPTS: u32 = 4;

/// Registrations per source IP per minute; the next one is 429.
pub const MAX_REGISTRATIONS_PER_IP: i64 = 30;

/// Seconds until the next minute starts (at least 1): the `Retry-After` of a per-minute counter.
pub(super) fn retry_after_minute(now: i64) -> i64 {
    ((now.div_euclid(60) + 1) * 60 - now).max(1)
}

/// Reserves one slot of a per-minute counter (`count`, TTL after the next minute) before the
/// expensive or secret-revealing work it guards: one conditional update that fails once the
/// counter holds `max`. The count afterwards, or `None` when the counter is full.
pub(super) async fn reserve(app: &App, key: &store::Key, max: i64, entity: &str) -> Result<Option<i64>> {
    let minute = app.clock.now_secs().div_euclid(60);
    let update = Update::new().add("count", 1).set("type", s(entity)).set("expires_at", n((minute + 2) * 60));
    let room = Cond::not_exists("count").or(Cond::lt("count", n(max)));
    match app.store.update(key, update, Some(room)).await {
        Ok(item) => Ok(Some(count_of(&item))),
        Err(StoreError::ConditionFailed) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Gives back a slot [`reserve`] took (an attempt that turned out not to count). One update.
pub(super) async fn release(app: &App, key: &store::Key) -> Result<()> {
    let cond = Cond::item_exists().and(Cond::gt("count", n(0)));
    match app.store.update(key, Update::new().add("count", -1), Some(cond)).await {
        Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Creates a user. Round trips: one conditional update (the source IP's registrations this
/// minute, reserved before the password is hashed; at most [`MAX_REGISTRATIONS_PER_IP`]), then the
/// user and its email (and contact phone) uniqueness items in one transaction, so one email makes
/// one user. The phone number is contact data only until an OTP sent to it is verified.
pub async fn register(app: &App, new: NewUser, source_ip: Option<&str>) -> Result<User> {
    let email = normalize_email(&new.email)?;
    let phone = new.phone.as_deref().map(|p| normalize_phone("phone_number", p)).transpose()?;
    let first_name = check_name("first_name", &new.first_name)?;
    let last_name = check_name("last_name", &new.last_name)?;
    check_new_password("password", "password_confirm", &new.password, &new.password_confirm)?;
    if let Some(ip) = source_ip {
        let now = app.clock.now_secs();
        let key = keys::registrations_ip(ip, now.div_euclid(60));
        if reserve(app, &key, MAX_REGISTRATIONS_PER_IP, "registrations").await?.is_none() {
            return Err(IdentityError::TooManyRegistrations { retry_after_secs: retry_after_minute(now) });
        }
    }
    let password_hash = password::hash(new.password).await?;
    let user = User {
        id: new_id(),
        email: Some(email.clone()),
        phone: phone.clone(),
        phone_verified: false,
        password_hash,
        first_name,
        last_name,
        role: new.role,
        is_active: true,
        is_verified: false,
        telegram_chat_id: None,
        created_at: app.clock.now_secs(),
        last_login: None,
        token_generation: 0,
    };
    /// Which login identity another user holds.
    #[derive(Clone, Copy)]
    enum Taken {
        Email,
        Phone,
    }
    let mut tx = Tx::new();
    tx.push(Write::Put { item: user_item(&user)?, cond: Some(Cond::item_absent()) }).push_or(
        Write::Put {
            item: owner_item("user_email", keys::user_email(&email), &user.id),
            cond: Some(Cond::item_absent()),
        },
        Taken::Email,
    );
    if let Some(phone) = &phone {
        tx.push_or(
            Write::Put {
                item: owner_item("user_contact_phone", keys::user_contact_phone(phone), &user.id),
                cond: Some(Cond::item_absent()),
            },
            Taken::Phone,
        );
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        match app.store.commit(tx.clone()).await {
            Ok(()) => return Ok(user),
            Err(TxError::Failed(Taken::Email)) => return Err(IdentityError::EmailTaken),
            Err(TxError::Failed(Taken::Phone)) => return Err(IdentityError::PhoneTaken),
            Err(TxError::Store(StoreError::Conflict)) if attempt < CONFLICT_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            }
            Err(TxError::Store(e)) => return Err(e.into()),
        }
    }
}

/// The user, if any.
pub async fn get_user(app: &App, id: &str) -> Result<Option<User>> {
    match app.store.get(&keys::user(id)).await? {
        Some(item) => Ok(Some(store::from_item(item)?)),
        None => Ok(None),
    }
}

/// The user that owns `email`, if any. Two round trips (uniqueness item, user).
pub async fn find_by_email(app: &App, email: &str) -> Result<Option<User>> {
    let Ok(email) = normalize_email(email) else { return Ok(None) };
    let Some(owner) = app.store.get(&keys::user_email(&email)).await? else { return Ok(None) };
    match owner.get("user_id") {
        Some(store::Value::S(id)) => get_user(app, id).await,
        _ => Ok(None),
    }
}

/// The user that proved the E.164 `phone` (its login identity), if any. Two round trips
/// (login identity item, user). A number that is only some profile's contact number finds nobody.
pub async fn find_by_phone(app: &App, phone: &str) -> Result<Option<User>> {
    let Some(owner) = app.store.get(&keys::user_phone(phone)).await? else { return Ok(None) };
    match owner.get("user_id") {
        Some(store::Value::S(id)) => get_user(app, id).await,
        _ => Ok(None),
    }
}

/// The id of the user whose profile shows `phone` as contact number, if any. One round trip.
pub async fn contact_holder(app: &App, phone: &str) -> Result<Option<String>> {
    Ok(app.store.get(&keys::user_contact_phone(phone)).await?.and_then(|item| match item.get("user_id") {
        Some(store::Value::S(id)) => Some(id.clone()),
        _ => None,
    }))
}

/// Failed logins per email per minute before further attempts are refused.
pub const MAX_FAILURES_PER_EMAIL: i64 = 5;
/// Failed logins per source IP per minute before further attempts are refused.
pub const MAX_FAILURES_PER_IP: i64 = 20;

/// The failure counters of this attempt's minute with their limits.
fn failure_counters(email: &str, source_ip: Option<&str>, minute: i64) -> Vec<(store::Key, i64)> {
    // Bounded so that a huge "email" cannot make a key DynamoDB refuses.
    let email: String = email.trim().to_lowercase().chars().take(254).collect();
    let mut counters = vec![(keys::login_failures_email(&email, minute), MAX_FAILURES_PER_EMAIL)];
    if let Some(ip) = source_ip {
        counters.push((keys::login_failures_ip(ip, minute), MAX_FAILURES_PER_IP));
    }
    counters
}

fn count_of(item: &store::Item) -> i64 {
    match item.get("count") {
        Some(store::Value::N(v)) => v.parse().unwrap_or(0),
        _ => 0,
    }
}

/// Checks an email and password and records the login. Each attempt first
/// reserves a slot of the email's and of the source IP's counter of this
/// minute (one conditional update each, refused once the counter is full), so
/// no more than [`MAX_FAILURES_PER_EMAIL`] passwords of one email (and
/// [`MAX_FAILURES_PER_IP`] of one address) are ever evaluated in a minute,
/// however many requests arrive at once. A failure keeps its slots; a success
/// gives them back. Round trips: 1–2 counter updates, 2 gets, 1 update, and
/// 1–2 counter updates on success.
pub async fn login(app: &App, email: &str, password: &str, source_ip: Option<&str>) -> Result<User> {
    let now = app.clock.now_secs();
    let counters = failure_counters(email, source_ip, now.div_euclid(60));
    let mut reserved = Vec::with_capacity(counters.len());
    for (key, max) in &counters {
        if reserve(app, key, *max, "login_failures").await?.is_none() {
            for key in &reserved {
                release(app, key).await?;
            }
            return Err(IdentityError::TooManyAttempts { retry_after_secs: retry_after_minute(now) });
        }
        reserved.push(key.clone());
    }
    // No stored password is longer, so a longer one is wrong without hashing it.
    let user = if password.chars().count() > password::MAX_LENGTH { None } else { find_by_email(app, email).await? };
    let matches = match &user {
        Some(user) => password::verify(password.to_string(), user.password_hash.clone()).await,
        None => {
            password::verify_nothing(password.chars().take(password::MAX_LENGTH).collect()).await;
            false
        }
    };
    let Some(mut user) = user.filter(|u| matches && u.is_active) else {
        return Err(IdentityError::BadCredentials);
    };
    for key in &reserved {
        release(app, key).await?;
    }
    let now = app.clock.now_secs();
    app.store.update(&keys::user(&user.id), Update::new().set("last_login", n(now)), Some(Cond::item_exists())).await?;
    user.last_login = Some(now);
    Ok(user)
}

fn sign_pair(app: &App, tokens: &Tokens, user: &User, family: &str) -> Result<TokenPair> {
    let now = app.clock.now_secs();
    let access = tokens.sign(&Claims {
        jti: new_id(),
        sub: user.id.clone(),
        role: user.role.as_str().to_string(),
        typ: tokens::ACCESS.to_string(),
        exp: now + tokens.access_ttl_secs,
        iat: now,
        fam: None,
        generation: Some(user.token_generation),
    })?;
    let refresh = tokens.sign(&Claims {
        jti: new_id(),
        sub: user.id.clone(),
        role: user.role.as_str().to_string(),
        typ: tokens::REFRESH.to_string(),
        exp: now + tokens.refresh_ttl_secs,
        iat: now,
        fam: Some(family.to_string()),
        generation: Some(user.token_generation),
    })?;
    Ok(TokenPair { access, refresh })
}

/// A new session (token family) for the user. No round trip.
pub fn start_session(app: &App, user: &User) -> Result<TokenPair> {
    sign_pair(app, &Tokens::from_config(&app.config), user, &new_id())
}

/// Marks a token family revoked until every token of it has expired.
async fn revoke_family(app: &App, tokens: &Tokens, family: &str, user_id: &str) -> Result<()> {
    let item = {
        let mut item = owner_item("token_family", keys::token_family(family), user_id);
        item.insert("revoked".into(), store::Value::Bool(true));
        item.insert("expires_at".into(), n(app.clock.now_secs() + tokens.refresh_ttl_secs + 1));
        item
    };
    app.store.put(item, None).await?;
    Ok(())
}

/// Rotates a refresh token: the token is used up and a new pair of the same
/// family is issued. A used token presented again revokes its family.
/// Two round trips (user, transaction); three on reuse.
pub async fn refresh(app: &App, refresh_token: &str) -> Result<(User, TokenPair)> {
    let tokens = Tokens::from_config(&app.config);
    let claims = tokens.verify(refresh_token, tokens::REFRESH, app.clock.now_secs())?;
    let family = claims.fam.clone().ok_or(IdentityError::TokenInvalid)?;
    let generation = claims.generation.ok_or(IdentityError::TokenInvalid)?;
    let user = get_user(app, &claims.sub).await?.ok_or(IdentityError::TokenInvalid)?;
    if !user.is_active || user.token_generation != generation {
        return Err(IdentityError::TokenInvalid);
    }
    let mut used = owner_item("refresh_used", keys::refresh_used(&claims.jti), &user.id);
    used.insert("expires_at".into(), n(claims.exp));
    /// Why a refresh token was refused.
    #[derive(Clone, Copy, PartialEq)]
    enum Refused {
        /// Used before: its family is revoked.
        Reused,
        /// Its family is revoked, or the user deactivated or logged out everywhere.
        Revoked,
    }
    let mut tx = Tx::new();
    tx.push_or(Write::Put { item: used, cond: Some(Cond::item_absent()) }, Refused::Reused)
        .push_or(Write::Check { key: keys::token_family(&family), cond: Cond::not_exists("revoked") }, Refused::Revoked)
        .push_or(
            Write::Check {
                key: keys::user(&user.id),
                cond: Cond::eq("is_active", store::Value::Bool(true)).and(Cond::eq("token_generation", n(generation))),
            },
            Refused::Revoked,
        );
    match app.store.commit(tx).await {
        Ok(()) => {}
        Err(TxError::Failed(refused)) => {
            if refused == Refused::Reused {
                tracing::warn!(user_id = %user.id, family = %family, "refresh token reused; revoking its family");
                revoke_family(app, &tokens, &family, &user.id).await?;
            }
            return Err(IdentityError::TokenInvalid);
        }
        Err(TxError::Store(StoreError::Conflict | StoreError::TransactionCanceled { .. })) => {
            return Err(IdentityError::TokenInvalid);
        }
        Err(TxError::Store(e)) => return Err(e.into()),
    }
    let pair = sign_pair(app, &tokens, &user, &family)?;
    Ok((user, pair))
}

/// Ends the session of a refresh token (revokes its family). One round trip.
pub async fn logout(app: &App, refresh_token: &str) -> Result<()> {
    let tokens = Tokens::from_config(&app.config);
    let claims = tokens.verify(refresh_token, tokens::REFRESH, app.clock.now_secs())?;
    let family = claims.fam.ok_or(IdentityError::TokenInvalid)?;
    revoke_family(app, &tokens, &family, &claims.sub).await
}

/// Applies profile changes. One round trip (the user) plus one write, a
/// transaction when the phone number changes: the new number becomes this
/// user's contact number (unique: 400 when another profile shows it), not a
/// login identity; the old number, proven or not, is given up.
pub async fn update_profile(app: &App, user_id: &str, changes: ProfileChanges) -> Result<User> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_update_profile(app, user_id, &changes).await {
            // The phone number changed under this update (a proof took it over): read again.
            Err(IdentityError::Store(StoreError::Conflict)) if attempt < CONFLICT_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            }
            Err(IdentityError::Store(StoreError::Conflict)) => {
                return Err(invalid("phone_number", "changed", "The phone number changed meanwhile; try again."));
            }
            other => return other,
        }
    }
}

async fn try_update_profile(app: &App, user_id: &str, changes: &ProfileChanges) -> Result<User> {
    let mut user = get_user(app, user_id).await?.ok_or(IdentityError::UserNotFound)?;
    let mut update = Update::new();
    if let Some(v) = &changes.first_name {
        user.first_name = check_name("first_name", v)?;
        update = update.set("first_name", s(&user.first_name));
    }
    if let Some(v) = &changes.last_name {
        user.last_name = check_name("last_name", v)?;
        update = update.set("last_name", s(&user.last_name));
    }
    if let Some(v) = &changes.telegram_chat_id {
        let v = v.trim().to_string();
        if v.chars().count() > MAX_TELEGRAM_CHAT_ID {
            return Err(invalid(
                "telegram_chat_id",
                "too_long",
                format!("telegram_chat_id must be at most {MAX_TELEGRAM_CHAT_ID} characters."),
            ));
        }
        update = if v.is_empty() { update.remove("telegram_chat_id") } else { update.set("telegram_chat_id", s(&v)) };
        user.telegram_chat_id = Some(v).filter(|v| !v.is_empty());
    }
    /// Why the profile change did not commit.
    #[derive(Clone, Copy)]
    enum Refused {
        /// Another user shows the new number.
        PhoneTaken,
        /// The profile changed meanwhile.
        Changed,
    }
    let mut tx = Tx::new();
    let mut phone_cond = None;
    if let Some(v) = &changes.phone {
        let phone = if v.trim().is_empty() { None } else { Some(normalize_phone("phone_number", v)?) };
        if phone != user.phone {
            if let Some(new) = &phone {
                tx.push_or(
                    Write::Put {
                        item: owner_item("user_contact_phone", keys::user_contact_phone(new), user_id),
                        cond: Some(Cond::item_absent()),
                    },
                    Refused::PhoneTaken,
                );
                update = update.set("phone", s(new));
            } else {
                update = update.remove("phone");
            }
            update = update.set("phone_verified", store::Value::Bool(false));
            let mine = || Cond::eq("user_id", s(user_id));
            if let Some(old) = &user.phone {
                tx.push_or(Write::Delete { key: keys::user_contact_phone(old), cond: Some(mine()) }, Refused::Changed);
                if user.phone_verified {
                    tx.push_or(Write::Delete { key: keys::user_phone(old), cond: Some(mine()) }, Refused::Changed);
                }
                phone_cond = Some(Cond::eq("phone", s(old)));
            } else {
                phone_cond = Some(Cond::not_exists("phone"));
            }
            user.phone = phone;
            user.phone_verified = false;
        }
    }
    if update.actions.is_empty() {
        return Ok(user);
    }
    if tx.is_empty() {
        app.store.update(&keys::user(user_id), update, Some(Cond::item_exists())).await?;
        return Ok(user);
    }
    let cond = Cond::item_exists().and(phone_cond.unwrap_or_else(Cond::item_exists));
    tx.push_or(Write::Update { key: keys::user(user_id), update, cond: Some(cond) }, Refused::Changed);
    match app.store.commit(tx).await {
        Ok(()) => Ok(user),
        Err(TxError::Failed(Refused::PhoneTaken)) => Err(IdentityError::PhoneTaken),
        Err(TxError::Failed(Refused::Changed) | TxError::Store(StoreError::TransactionCanceled { .. })) => {
            Err(StoreError::Conflict.into())
        }
        Err(TxError::Store(e)) => Err(e.into()),
    }
}

/// Changes the password after checking the old one; every refresh token
/// issued before stops working (the token generation moves on). Two round trips.
pub async fn change_password(
    app: &App,
    user_id: &str,
    old_password: &str,
    new_password: &str,
    new_password_confirm: &str,
) -> Result<()> {
    let user = get_user(app, user_id).await?.ok_or(IdentityError::UserNotFound)?;
    if !password::verify(old_password.to_string(), user.password_hash.clone()).await {
        return Err(invalid("old_password", "wrong_password", "Your old password was entered incorrectly."));
    }
    check_new_password("new_password", "new_password_confirm", new_password, new_password_confirm)?;
    let hash = password::hash(new_password.to_string()).await?;
    let update = Update::new().set("password_hash", s(hash)).add("token_generation", 1);
    let unchanged = Cond::eq("token_generation", n(user.token_generation)).or(Cond::not_exists("token_generation"));
    match app.store.update(&keys::user(user_id), update, Some(Cond::item_exists().and(unchanged))).await {
        Ok(_) => Ok(()),
        // Another change of this password won the race; this one's old password is no longer current.
        Err(StoreError::ConditionFailed) => {
            Err(invalid("old_password", "wrong_password", "Your old password was entered incorrectly."))
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates the admin of `PREMISES_ADMIN_EMAIL` unless a user has that email.
/// Returns whether it created one. Idempotent (a concurrent start loses the race harmlessly).
pub async fn ensure_admin(app: &App, email: &str, password: &str) -> Result<bool> {
    if find_by_email(app, email).await?.is_some() {
        return Ok(false);
    }
    let new = NewUser {
        email: email.to_string(),
        password: password.to_string(),
        password_confirm: password.to_string(),
        first_name: String::new(),
        last_name: String::new(),
        phone: None,
        role: Role::Admin,
    };
    match register(app, new, None).await {
        Ok(_) => Ok(true),
        Err(IdentityError::EmailTaken) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Users matching a role and a search text (email, names, phone; case-insensitive), oldest first.
/// Reads the whole `USERS` partition of GSI1 (one round trip per page of users).
pub async fn search_users(app: &App, search: Option<&str>, role: Option<Role>) -> Result<Vec<User>> {
    let needle = search.map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty());
    let mut users = Vec::new();
    let mut cursor = None;
    loop {
        let page = app.store.query(Query::partition(keys::USERS_GSI1PK).index(Index::Gsi1).after(cursor)).await?;
        for item in page.items {
            let user: User = store::from_item(item)?;
            let role_ok = role.is_none_or(|r| user.role == r);
            let text_ok = needle.as_deref().is_none_or(|n| {
                [user.email.as_deref(), Some(&user.first_name), Some(&user.last_name), user.phone.as_deref()]
                    .into_iter()
                    .flatten()
                    .any(|field| field.to_lowercase().contains(n))
            });
            if role_ok && text_ok {
                users.push(user);
            }
        }
        cursor = page.cursor;
        if cursor.is_none() {
            return Ok(users);
        }
    }
}

/// What an admin may change on a user.
#[derive(Debug, Default)]
pub struct AdminChanges {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

/// Changes a user's role or active flag. A deactivated user can no longer log
/// in or refresh. One round trip (the update returns the user).
pub async fn admin_update(app: &App, user_id: &str, changes: AdminChanges) -> Result<User> {
    let mut update = Update::new();
    if let Some(role) = changes.role {
        update = update.set("role", s(role.as_str()));
    }
    if let Some(active) = changes.is_active {
        update = update.set("is_active", store::Value::Bool(active));
    }
    if update.actions.is_empty() {
        return get_user(app, user_id).await?.ok_or(IdentityError::NoSuchUser);
    }
    match app.store.update(&keys::user(user_id), update, Some(Cond::item_exists())).await {
        Ok(item) => Ok(store::from_item(item)?),
        Err(StoreError::ConditionFailed) => Err(IdentityError::NoSuchUser),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(normalize_email(" Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in ["ann", "ann@", "@example.com", "ann@example", "a b@example.com", "ann@example..com"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones_must_be_e164() {
        assert_eq!(normalize_phone("p", "+1 (415) 555-0123").unwrap(), "+14155550123");
        for bad in ["14155550123", "+0123456789", "+12", "+1415555012x"] {
            assert!(normalize_phone("p", bad).is_err(), "{bad}");
        }
    }
}
