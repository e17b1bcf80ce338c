//! The room TOTP throttle (the seed terminal's "loginFailed > 3 → Blocked,
//! 5 min passed → Idle", enforced by the server), per room and per endpoint.
//!
//! Every code comparison is reserved first, by one conditional update of the
//! `(room, endpoint)` throttle item that counts it as a failure, so concurrent
//! requests never compare more than `MAX_FAILURES + 1` codes in a window: the
//! first reservation of a window counts 1, the next ones add 1 while at most
//! [`MAX_FAILURES`] are counted. The code that is wrong with the count past
//! [`MAX_FAILURES`] (the 4th wrong code within [`WINDOW_SECS`]) locks the
//! room's TOTP on that endpoint for [`LOCK_SECS`], and so does a reservation
//! refused because the count is full: 429 `totp_locked` with `Retry-After`,
//! even for the right code. A right code before the lock deletes the item
//! (the count starts again). The one request whose update set the lock tells
//! the resident.

use ::http::StatusCode;

use crate::App;
use crate::platform::clock::new_id;
use crate::platform::http::ApiError;
use crate::platform::store::{self, Cond, StoreError, Update, n, s};

use super::keys;
use super::model::{Room, TotpThrottle};
use crate::notifications::{self, Channel, Notification, Recipient};

/// Wrong codes allowed per room and endpoint within one window; the next wrong one locks.
pub const MAX_FAILURES: i64 = 3;
/// The window the failures are counted in, from the first one.
pub const WINDOW_SECS: i64 = 300;
/// How long a lock lasts.
pub const LOCK_SECS: i64 = 300;
/// Reservations that lost a race re-read the item and try again, this often.
const ATTEMPTS: u32 = 64;
/// The item outlives its window or lock by this much before the TTL sweeps it.
const TTL_SLACK_SECS: i64 = 60;

/// What a reservation got.
#[derive(Debug, PartialEq, Eq)]
pub enum Reserved {
    /// One code may be compared (it already counts as a failure): the `count`-th of the window.
    Attempt { count: i64 },
    /// Locked for `retry_after` more seconds; `newly`: this request set the lock.
    Locked { retry_after: i64, newly: bool },
}

/// 429 `totp_locked`; the body carries `retry_after` (seconds) for MQTT clients, HTTP adds `Retry-After`.
pub fn locked(retry_after: i64) -> ApiError {
    let retry_after = retry_after.max(1);
    let message = format!("Too many wrong codes for this room at this endpoint. Try again in {retry_after} seconds.");
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "totp_locked", message.clone())
        .with_body(serde_json::json!({"detail": message, "code": "totp_locked", "retry_after": retry_after}))
}

/// The throttle item, if any (expired ones read as absent).
pub async fn get(app: &App, room: &str, endpoint_id: &str) -> Result<Option<TotpThrottle>, ApiError> {
    Ok(app.store.get(&keys::totp_throttle(room, endpoint_id)).await?.map(store::from_item).transpose()?)
}

/// Reserves one comparison for `room` at `endpoint_id`, starting from `current` (read by the caller).
/// One conditional update; a lost race re-reads the item and decides again.
pub async fn reserve(
    app: &App,
    room: &str,
    endpoint_id: &str,
    mut current: Option<TotpThrottle>,
) -> Result<Reserved, ApiError> {
    let key = keys::totp_throttle(room, endpoint_id);
    for _ in 0..ATTEMPTS {
        let now = app.clock.now_secs();
        if let Some(until) = current.as_ref().and_then(|t| t.locked_until).filter(|until| *until > now) {
            return Ok(Reserved::Locked { retry_after: until - now, newly: false });
        }
        let unlocked = || Cond::not_exists("locked_until").or(Cond::le("locked_until", n(now)));
        let in_window = Cond::gt("window_start", n(now - WINDOW_SECS));
        let (update, cond, locks) = match &current {
            Some(t) if t.window_start > now - WINDOW_SECS && t.failures > MAX_FAILURES => (
                Update::new()
                    .set("locked_until", n(now + LOCK_SECS))
                    .set(store::TABLE.ttl_attribute, n(now + LOCK_SECS + TTL_SLACK_SECS)),
                in_window.and(Cond::gt("failures", n(MAX_FAILURES))).and(unlocked()),
                true,
            ),
            Some(t) if t.window_start > now - WINDOW_SECS => (
                Update::new().add("failures", 1),
                in_window.and(Cond::le("failures", n(MAX_FAILURES))).and(unlocked()),
                false,
            ),
            _ => (
                Update::new()
                    .set("type", s("totp_throttle"))
                    .set("endpoint_id", s(endpoint_id))
                    .set("failures", n(1))
                    .set("window_start", n(now))
                    .remove("locked_until")
                    .set(store::TABLE.ttl_attribute, n(now + WINDOW_SECS + TTL_SLACK_SECS)),
                Cond::absent_or_expired(now).or(Cond::le("window_start", n(now - WINDOW_SECS)).and(unlocked())),
                false,
            ),
        };
        match app.store.update(&key, update, Some(cond)).await {
            Ok(_) if locks => return Ok(Reserved::Locked { retry_after: LOCK_SECS, newly: true }),
            Ok(item) => {
                let count = store::from_item::<TotpThrottle>(item).map(|t| t.failures).unwrap_or(MAX_FAILURES + 1);
                return Ok(Reserved::Attempt { count });
            }
            Err(StoreError::ConditionFailed | StoreError::Conflict) => current = get(app, room, endpoint_id).await?,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy_retry", "Too many concurrent attempts; retry."))
}

/// A wrong code: 401 `wrong`, or, when it was the `count`-th of the window past [`MAX_FAILURES`], the
/// lock (429; the request that set it tells the resident). At most one conditional update.
pub async fn after_wrong_code(
    app: &App,
    room_key: &str,
    room: Option<&Room>,
    endpoint_id: &str,
    count: i64,
    wrong: ApiError,
) -> ApiError {
    if count <= MAX_FAILURES {
        return wrong;
    }
    let now = app.clock.now_secs();
    let lock = Update::new()
        .set("locked_until", n(now + LOCK_SECS))
        .set(store::TABLE.ttl_attribute, n(now + LOCK_SECS + TTL_SLACK_SECS));
    let unlocked = Cond::exists("failures").and(Cond::not_exists("locked_until").or(Cond::le("locked_until", n(now))));
    match app.store.update(&keys::totp_throttle(room_key, endpoint_id), lock, Some(unlocked)).await {
        Ok(_) => tell_of_lock(app, room_key, room, endpoint_id).await,
        // Locked meanwhile by a concurrent request (which told the resident).
        Err(StoreError::ConditionFailed) => {}
        Err(e) => return e.into(),
    }
    locked(LOCK_SECS)
}

/// A right code: the count starts again (unless a concurrent reservation locked meanwhile). One conditional delete.
pub async fn reset(app: &App, room: &str, endpoint_id: &str) -> Result<(), ApiError> {
    let now = app.clock.now_secs();
    let unlocked = Cond::not_exists("locked_until").or(Cond::le("locked_until", n(now)));
    match app.store.delete(&keys::totp_throttle(room, endpoint_id), Some(unlocked)).await {
        Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Tells the room's resident of a new lock (inbox and email), once per lock: only the request that set
/// it calls this. A room without a resident (or no room: a guessed key) gets a warning in the log.
/// Never fails the request: the lock is written either way.
pub async fn tell_of_lock(app: &App, room_key: &str, room: Option<&Room>, endpoint_id: &str) {
    tracing::warn!(room = %room_key, endpoint_id = %endpoint_id, lock_secs = LOCK_SECS, "room TOTP locked after too many wrong codes");
    let Some(resident) = room.and_then(|r| r.resident_id.as_ref()) else {
        tracing::warn!(room = %room_key, endpoint_id = %endpoint_id, "room TOTP locked; no resident to tell (security)");
        return;
    };
    let notification = Notification {
        id: new_id(),
        recipient: Recipient::User(resident.clone()),
        kind: "totp_locked".into(),
        title: format!("Room {room_key}: codes blocked"),
        body: format!(
            "More than {MAX_FAILURES} wrong codes within {} minutes for room {room_key} at endpoint {endpoint_id}: codes are blocked there for {} minutes.",
            WINDOW_SECS / 60,
            LOCK_SECS / 60
        ),
        data: serde_json::json!({"room": room_key, "endpoint_id": endpoint_id, "lock_secs": LOCK_SECS}),
        channels: vec![Channel::Inbox, Channel::Email],
        sealed_secret: None,
    };
    if let Err(e) = notifications::enqueue(app, &notification).await {
        tracing::error!(room = %room_key, error = %e, "TOTP lock notification not enqueued");
    }
}
