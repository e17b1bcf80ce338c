//! The appliance flow of seed 000 — challenge, verify (TOTP), start, finish —
//! and aborts. Money moves only inside a transaction that also writes the run,
//! the occupancy and the ledger entry: all of it or none of it.
//!
//! The operations take the request body as JSON and answer the seed's body,
//! so HTTP and MQTT share them.

use std::time::Duration;

use ::http::StatusCode;
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use subtle::ConstantTimeEq;

use crate::App;
use crate::platform::clock::new_id;
use crate::platform::http::ApiError;
use crate::platform::id::{BoundedId, bounded_text};
use crate::platform::store::{self, Cond, Item, StoreError, Tx, TxError, Update, Write, n, s};

use super::keys;
use super::model::{Appliance, Endpoint, EndpointId, LedgerEntry, Room, RoomKey, RoomTotp, Run, RunStatus};
use super::throttle::{self, Reserved};
use super::tokens::{self, Kind};

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Largest price (whole currency units) any appliance may allow a run to reserve (its `max_price` is at most this).
pub const MAX_PRICE: i64 = 1_000_000;
/// Largest number of units any appliance may allow a run to ask for (its `max_units` is at most this).
pub const MAX_UNITS: i64 = 1_000_000_000;
/// The longest appliance name.
pub const MAX_APPLIANCE_NAME: usize = 64;
/// The header an endpoint sends its device key in (HTTP).
pub const ENDPOINT_KEY_HEADER: &str = "x-endpoint-key";
/// Attempts of a balance transaction that lost a race with another one.
const BALANCE_ATTEMPTS: u32 = 40;
pub const TOTP_STEP_SECS: i64 = 30;
pub const TOTP_DIGITS: usize = 6;

pub fn room_not_found() -> ApiError {
    ApiError::not_found("room_not_found", "No room has this key.")
}

pub fn endpoint_not_found() -> ApiError {
    ApiError::not_found("endpoint_not_found", "No endpoint has this id.")
}

fn insufficient_funds() -> ApiError {
    ApiError::new(StatusCode::PAYMENT_REQUIRED, "insufficient_funds", "The room's balance does not cover this price.")
}

/// An ending found the appliance held by another run than the one it ends (a bug, not a race).
#[derive(Debug, thiserror::Error)]
#[error("run {run_id}: the occupancy is not this run's")]
struct ForeignOccupancy {
    run_id: String,
}

fn not_running() -> ApiError {
    ApiError::conflict("run_not_running", "The run is not running.")
}

/// Who sends an operation: an HTTP client, with the endpoint's device key if it sent
/// `X-Endpoint-Key`, or an endpoint over MQTT, whose certificate identity is the topic's endpoint.
#[derive(Clone, Copy, Debug)]
pub enum Caller<'a> {
    Http { endpoint_key: Option<&'a str> },
    Mqtt { endpoint_id: &'a str },
}

impl Caller<'_> {
    /// The endpoint of the MQTT topic the request came on; tokens must name it.
    fn topic_endpoint(&self) -> Option<&str> {
        match self {
            Caller::Mqtt { endpoint_id } => Some(endpoint_id),
            Caller::Http { .. } => None,
        }
    }
}

/// The stored form of an endpoint's device key: SHA-256, hex (the key is 256 random bits).
pub fn hash_endpoint_key(key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// An HTTP caller must send the endpoint's device key (401 `endpoint_key_required` or
/// `endpoint_key_invalid`), unless an admin marked the endpoint `legacy_keyless` (logged).
/// MQTT callers are the endpoint (the broker checked its certificate).
fn check_endpoint_key(endpoint: &Endpoint, caller: Caller<'_>) -> Result<()> {
    let Caller::Http { endpoint_key } = caller else { return Ok(()) };
    if endpoint.legacy_keyless {
        tracing::warn!(endpoint_id = %endpoint.endpoint_id, "legacy keyless endpoint: request accepted without a device key");
        return Ok(());
    }
    let Some(key) = endpoint_key else {
        return Err(ApiError::unauthorized(
            "endpoint_key_required",
            "This endpoint's device key is required in the X-Endpoint-Key header.",
        ));
    };
    let matches = endpoint
        .key_hash
        .as_ref()
        .is_some_and(|stored| bool::from(hash_endpoint_key(key).as_bytes().ct_eq(stored.as_bytes())));
    if matches {
        Ok(())
    } else {
        Err(ApiError::unauthorized("endpoint_key_invalid", "The X-Endpoint-Key is not this endpoint's device key."))
    }
}

/// 400 `amount_out_of_range` naming `amount`: a balance would leave the range of 64-bit cents.
pub fn amount_out_of_range() -> ApiError {
    ApiError::invalid_field("amount", "amount_out_of_range", "The amount would take the balance out of range.")
}

/// Parses an operation's body as HTTP's `json_body` does: 400 naming the field.
pub fn parse<T: DeserializeOwned>(body: Json) -> Result<T> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = match inner.strip_prefix("missing field `") {
            Some(rest) => rest.split('`').next().unwrap_or("").to_string(),
            None => path,
        };
        if field.is_empty() || field == "." {
            ApiError::bad_request("invalid_body", inner)
        } else {
            ApiError::invalid_field(field, "invalid", inner)
        }
    })
}

/// A room key or endpoint id sent as a JSON number or string (1 to 64 of `[A-Za-z0-9_-]`): 400 naming the field.
pub fn id_of(field: &'static str, value: &Json) -> Result<String> {
    typed_id_of::<RoomKey>(field, value).map(RoomKey::into_string)
}

/// A room key or endpoint id sent as a JSON number or string, parsed into its newtype: 400 naming the field.
pub fn typed_id_of<T: BoundedId>(field: &'static str, value: &Json) -> Result<T> {
    let id = match value {
        Json::Number(n) if n.is_u64() => n.to_string(),
        Json::String(s) => s.trim().to_string(),
        _ => String::new(),
    };
    T::parse(&id).map_err(|_| ApiError::invalid_field(field, "invalid", format!("{field} must be a number or an id.")))
}

async fn get_as<T: DeserializeOwned>(app: &App, key: &store::Key) -> Result<Option<T>> {
    match app.store.get(key).await? {
        Some(item) => Ok(Some(store::from_item(item)?)),
        None => Ok(None),
    }
}

pub async fn get_room(app: &App, key: &str) -> Result<Option<Room>> {
    get_as(app, &keys::room(key)).await
}

pub async fn get_endpoint(app: &App, id: &str) -> Result<Option<Endpoint>> {
    get_as(app, &keys::endpoint(id)).await
}

pub async fn get_run(app: &App, id: &str) -> Result<Option<Run>> {
    get_as(app, &keys::run(id)).await
}

pub async fn get_appliance(app: &App, name: &str) -> Result<Option<Appliance>> {
    get_as(app, &keys::appliance(name)).await
}

/// The writes that change a room's balance from `old` by `amount` with its
/// ledger entry: a conditional update (the balance is still `old`) and a put.
pub fn balance_change(
    room: &str,
    old: i64,
    amount: i64,
    kind: &str,
    reference: &str,
    at_millis: i64,
) -> Result<(Vec<Write>, LedgerEntry)> {
    let balance_after = old.checked_add(amount).ok_or_else(amount_out_of_range)?;
    let entry = LedgerEntry {
        id: new_id(),
        room: room.to_string(),
        amount,
        balance_after,
        kind: kind.to_string(),
        reference: reference.to_string(),
        at: at_millis,
    };
    let mut item = store::to_item(&entry)?;
    let key = keys::ledger(room, at_millis, &entry.id);
    item.insert(store::TABLE.pk.to_string(), s(key.pk));
    item.insert(store::TABLE.sk.to_string(), s(key.sk));
    item.insert("type".into(), s("ledger_entry"));
    let writes = vec![
        Write::Update {
            key: keys::room(room),
            update: Update::new().set("balance", n(balance_after)),
            cond: Some(Cond::eq("balance", n(old))),
        },
        Write::Put { item, cond: Some(Cond::item_absent()) },
    ];
    Ok((writes, entry))
}

/// Waits a little before retrying a transaction that lost a race.
pub async fn backoff(attempt: u32) {
    let ms = rand::rng().random_range(1..=5 + 5 * u64::from(attempt.min(10)));
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn conflict_exhausted() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy_retry", "Too many concurrent changes to this room; retry.")
}

// ------------------------------------------------------------------ challenge

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct ChallengeBody {
    #[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$", example = "101")]
    room_num: Json,
    #[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$", example = "1")]
    endpoint_id: Json,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenReply {
    pub token: String,
}

/// `challenge`: a 60 s token bound to the room and the endpoint. It does not tell whether the room
/// exists: any well-formed room key gets a token, and a token for a key no room has never verifies
/// (verify answers it as a wrong code). An unknown endpoint is 404 `endpoint_not_found`; over HTTP the
/// endpoint's device key is required. One get.
pub async fn challenge(app: &App, body: Json, caller: Caller<'_>) -> Result<TokenReply> {
    let body: ChallengeBody = parse(body)?;
    let room_key: RoomKey = typed_id_of("room_num", &body.room_num)?;
    let endpoint_id: EndpointId = typed_id_of("endpoint_id", &body.endpoint_id)?;
    if caller.topic_endpoint().is_some_and(|from| from != endpoint_id.as_str()) {
        return Err(ApiError::invalid_field("endpoint_id", "endpoint_mismatch", "Not the endpoint of this topic."));
    }
    let endpoint = get_endpoint(app, &endpoint_id).await?.ok_or_else(endpoint_not_found)?;
    check_endpoint_key(&endpoint, caller)?;
    let token = tokens::sign(
        app,
        Kind::ApplianceChallenge,
        &room_key,
        &endpoint_id,
        endpoint.token_version,
        None,
        tokens::CHALLENGE_TTL_SECS,
    )?;
    Ok(TokenReply { token })
}

// --------------------------------------------------------------------- verify

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct VerifyBody {
    token: String,
    #[schema(value_type = String, pattern = "^[0-9]{6}$", example = "123456")]
    auth_code: Json,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApplianceOffer {
    pub name: String,
    /// Price per unit.
    pub value: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerifyReply {
    pub token: String,
    pub balance: i64,
    pub appliances: Vec<ApplianceOffer>,
}

/// The code as six digits: a JSON number lost its leading zeros (12345 is 012345).
fn auth_code(value: &Json) -> Result<String> {
    let code = match value {
        Json::Number(n) if n.is_u64() => format!("{:0>TOTP_DIGITS$}", n.as_u64().unwrap_or_default()),
        Json::String(s) => s.trim().to_string(),
        _ => String::new(),
    };
    if code.len() == TOTP_DIGITS && code.chars().all(|c| c.is_ascii_digit()) {
        Ok(code)
    } else {
        Err(ApiError::invalid_field("auth_code", "invalid", "auth_code must be 6 digits."))
    }
}

/// The TOTP (RFC 6238: SHA-1, 6 digits, 30 s) of a base32 secret.
pub fn totp(secret: &str) -> Result<totp_rs::TOTP> {
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .map_err(|e| ApiError::internal(anyhow::Error::new(e).context("stored TOTP secret does not decode")))?;
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, TOTP_DIGITS, 1, TOTP_STEP_SECS as u64, bytes)
        .map_err(|e| ApiError::internal(anyhow::Error::new(e).context("stored TOTP secret unusable")))
}

/// The time step (previous, current or next) whose code is `code`, compared in constant time.
fn matching_step(totp: &totp_rs::TOTP, code: &str, now_secs: i64) -> Option<i64> {
    let current = now_secs.div_euclid(TOTP_STEP_SECS);
    let mut found = None;
    for step in [current - 1, current, current + 1] {
        let expected = totp.generate((step * TOTP_STEP_SECS).max(0) as u64);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

fn wrong_code() -> ApiError {
    ApiError::unauthorized("invalid_auth_code", "The authentication code is wrong.")
}

/// Compares the code with the room's secret and accepts its step (each step once per room: one
/// conditional update). `Ok(Err(_))`: the code is wrong or replayed (a failure the throttle counts).
async fn match_code(app: &App, room: &str, secret: &RoomTotp, code: &str) -> Result<Result<i64>> {
    let Some(step) = matching_step(&totp(&secret.secret)?, code, app.clock.now_secs()) else {
        return Ok(Err(wrong_code()));
    };
    let replayed = || ApiError::unauthorized("auth_code_replayed", "This authentication code was already used.");
    if secret.last_step.is_some_and(|last| last >= step) {
        return Ok(Err(replayed()));
    }
    let accept = Update::new().set("last_step", n(step));
    let fresh =
        Cond::eq("secret", s(&secret.secret)).and(Cond::not_exists("last_step").or(Cond::lt("last_step", n(step))));
    match app.store.update(&keys::room_totp(room), accept, Some(fresh)).await {
        Ok(_) => Ok(Ok(step)),
        Err(StoreError::ConditionFailed) => Ok(Err(replayed())),
        Err(e) => Err(e.into()),
    }
}

/// `verify`: checks the room's TOTP (each step accepted once per room) and
/// returns a 5-minute access token, the balance and the endpoint's
/// appliances. The comparison is reserved first (`throttle`): a 4th wrong
/// code within 5 minutes for the room at this endpoint locks it there for 5
/// minutes (429 `totp_locked`, even for the right code). A room that does not
/// exist or has no secret answers as a wrong code does. Round trips: 4 gets
/// in parallel, the reservation (1 conditional update), 1 conditional update
/// accepting the step (or, for the 4th wrong code, setting the lock), 1
/// conditional delete (the count starts again), the appliances' gets in parallel.
pub async fn verify(app: &App, body: Json, caller: Caller<'_>) -> Result<VerifyReply> {
    let body: VerifyBody = parse(body)?;
    let claims = tokens::verify(app, &body.token, Kind::ApplianceChallenge, caller.topic_endpoint())?;
    let code = auth_code(&body.auth_code)?;
    let totp_key = keys::room_totp(&claims.room);
    let (room, secret, endpoint, counted) = tokio::try_join!(
        get_room(app, &claims.room),
        get_as::<RoomTotp>(app, &totp_key),
        get_endpoint(app, &claims.ep),
        throttle::get(app, &claims.room, &claims.ep),
    )?;
    let endpoint = endpoint.ok_or_else(endpoint_not_found)?;
    check_endpoint_key(&endpoint, caller)?;
    if endpoint.token_version != claims.tv {
        return Err(tokens::invalid());
    }
    let count = match throttle::reserve(app, &claims.room, &claims.ep, counted).await? {
        Reserved::Attempt { count } => count,
        Reserved::Locked { retry_after, newly } => {
            if newly {
                throttle::tell_of_lock(app, &claims.room, room.as_ref(), &claims.ep).await;
            }
            return Err(throttle::locked(retry_after));
        }
    };
    // A room that does not exist or has no secret answers as a wrong code does.
    let accepted = match (&room, &secret) {
        (Some(_), Some(secret)) => match_code(app, &claims.room, secret, &code).await?,
        _ => Err(wrong_code()),
    };
    if let Err(wrong) = accepted {
        return Err(throttle::after_wrong_code(app, &claims.room, room.as_ref(), &claims.ep, count, wrong).await);
    }
    let room = room.ok_or_else(wrong_code)?;
    throttle::reset(app, &claims.room, &claims.ep).await?;
    let appliances =
        futures::future::try_join_all(endpoint.appliances.iter().map(|name| get_appliance(app, name))).await?;
    let token = tokens::sign(
        app,
        Kind::ApplianceAccess,
        &claims.room,
        &claims.ep,
        endpoint.token_version,
        None,
        tokens::ACCESS_TTL_SECS,
    )?;
    Ok(VerifyReply {
        token,
        balance: room.balance,
        appliances: appliances
            .into_iter()
            .flatten()
            .map(|a| ApplianceOffer { name: a.name, value: a.price_per_unit })
            .collect(),
    })
}

// ---------------------------------------------------------------------- start

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct StartBody {
    token: String,
    appliance_name: String,
    units: i64,
    price: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StartReply {
    pub newbalance: i64,
    pub token: String,
}

fn positive(field: &'static str, value: i64, max: i64) -> Result<()> {
    if value <= 0 {
        return Err(ApiError::invalid_field(field, "not_positive", format!("{field} must be positive.")));
    }
    if value > max {
        return Err(ApiError::invalid_field(field, "too_large", format!("{field} must be at most {max}.")));
    }
    Ok(())
}

fn run_item(run: &Run) -> Result<Item> {
    let mut item = store::to_item(run)?;
    let key = keys::run(&run.run_id);
    item.insert(store::TABLE.pk.to_string(), s(key.pk));
    item.insert(store::TABLE.sk.to_string(), s(key.sk));
    item.insert("type".into(), s("run"));
    item.insert("GSI1PK".into(), s(keys::room_runs_gsi1pk(&run.room)));
    item.insert("GSI1SK".into(), s(keys::run_sk(run.started_at, &run.run_id)));
    item.insert("GSI2PK".into(), s(keys::run_status_gsi2pk(run.status.as_str())));
    item.insert("GSI2SK".into(), s(keys::run_sk(run.started_at, &run.run_id)));
    Ok(item)
}

fn appliance_not_found() -> ApiError {
    ApiError::not_found("appliance_not_found", "No appliance has this name.")
}

/// A value within the appliance's cap: 400 `over_appliance_cap` naming the field.
fn within_cap(field: &'static str, value: i64, cap: i64) -> Result<()> {
    if value > cap {
        return Err(ApiError::invalid_field(
            field,
            "over_appliance_cap",
            format!("{field} must be at most {cap} for this appliance."),
        ));
    }
    Ok(())
}

/// `start`: reserves `price × 100` cents and occupies the appliance, in one
/// transaction with the run and the ledger entry; 402 when the balance does
/// not cover it, 409 when the appliance is busy — and then nothing changed.
/// `units` and `price` are capped by the appliance's `max_units` and
/// `max_price`. Over HTTP the endpoint's device key is required.
/// One read round trip (room, endpoint and appliance in parallel) and one
/// transaction; a race on the balance re-reads the room and retries.
pub async fn start(app: &App, body: Json, caller: Caller<'_>) -> Result<StartReply> {
    let body: StartBody = parse(body)?;
    let claims = tokens::verify(app, &body.token, Kind::ApplianceAccess, caller.topic_endpoint())?;
    let appliance = body.appliance_name.trim().to_string();
    if appliance.is_empty() {
        return Err(ApiError::invalid_field("appliance_name", "blank", "appliance_name may not be blank."));
    }
    bounded_text("appliance_name", &appliance, MAX_APPLIANCE_NAME)?;
    positive("units", body.units, MAX_UNITS)?;
    positive("price", body.price, MAX_PRICE)?;
    let cost = body.price.checked_mul(100).ok_or_else(amount_out_of_range)?;

    let (mut room, endpoint, kind) =
        tokio::try_join!(get_room(app, &claims.room), get_endpoint(app, &claims.ep), get_appliance(app, &appliance))?;
    let endpoint = endpoint.ok_or_else(tokens::invalid)?;
    check_endpoint_key(&endpoint, caller)?;
    if endpoint.token_version != claims.tv {
        return Err(tokens::invalid());
    }
    if !endpoint.appliances.contains(&appliance) {
        return Err(match kind {
            None => appliance_not_found(),
            Some(_) => ApiError::invalid_field(
                "appliance_name",
                "appliance_not_served",
                "This endpoint does not serve this appliance.",
            ),
        });
    }
    let kind = kind.ok_or_else(appliance_not_found)?;
    within_cap("units", body.units, kind.max_units)?;
    within_cap("price", body.price, kind.max_price)?;
    for attempt in 0..BALANCE_ATTEMPTS {
        let current = room.take().ok_or_else(room_not_found)?;
        if current.balance < cost {
            return Err(insufficient_funds());
        }
        let now_ms = app.clock.now_millis();
        let now = now_ms.div_euclid(1000);
        let run = Run {
            run_id: new_id(),
            room: current.key.clone(),
            endpoint_id: endpoint.endpoint_id.clone(),
            appliance: appliance.clone(),
            initial_units: body.units,
            initial_price: body.price,
            reserved_cents: cost,
            final_units: None,
            final_price: None,
            refund_cents: None,
            status: RunStatus::Running,
            started_at: now,
            finished_at: None,
            ended_by: None,
        };
        let (balance_writes, entry) =
            balance_change(&current.key, current.balance, -cost, "run_start", &run.run_id, now_ms)?;
        let mut occupancy = keys::occupancy(&endpoint.endpoint_id, &appliance).to_item();
        occupancy.insert("type".into(), s("occupancy"));
        occupancy.insert("run_id".into(), s(&run.run_id));
        occupancy.insert("since".into(), n(now));
        /// Why a start did not commit, most telling first.
        #[derive(Clone, Copy)]
        enum Refused {
            Busy,
            TokenRevoked,
            BalanceMoved,
        }
        let mut tx = Tx::new();
        tx.push(Write::Put { item: run_item(&run)?, cond: Some(Cond::item_absent()) })
            .push_or(Write::Put { item: occupancy, cond: Some(Cond::item_absent()) }, Refused::Busy)
            .push_or(
                Write::Check {
                    key: keys::endpoint(&endpoint.endpoint_id),
                    cond: Cond::eq("token_version", n(claims.tv)),
                },
                Refused::TokenRevoked,
            )
            .extend_or(balance_writes, Refused::BalanceMoved);
        match app.store.commit(tx).await {
            Ok(()) => {
                let token = tokens::sign(
                    app,
                    Kind::ApplianceStart,
                    &run.room,
                    &run.endpoint_id,
                    claims.tv,
                    Some(&run.run_id),
                    app.config.max_run_minutes * 60 + 3600,
                )?;
                return Ok(StartReply { newbalance: entry.balance_after, token });
            }
            Err(TxError::Failed(Refused::Busy)) => {
                return Err(ApiError::conflict("appliance_busy", "This appliance is in use."));
            }
            Err(TxError::Failed(Refused::TokenRevoked)) => return Err(tokens::invalid()),
            Err(
                TxError::Failed(Refused::BalanceMoved)
                | TxError::Store(StoreError::TransactionCanceled { .. } | StoreError::Conflict),
            ) => {
                backoff(attempt).await;
                room = get_room(app, &claims.room).await?;
            }
            Err(TxError::Store(e)) => return Err(e.into()),
        }
    }
    Err(conflict_exhausted())
}

// --------------------------------------------------------------------- finish

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct FinishBody {
    token: String,
    units: i64,
    price: i64,
    #[serde(default)]
    aborted: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FinishReply {
    pub status: RunStatus,
}

/// How a run ends.
struct Ending {
    status: RunStatus,
    final_units: Option<i64>,
    final_price: Option<i64>,
    refund: i64,
    ended_by: &'static str,
    /// The endpoint token version the ending must still match (device endings).
    token_version: Option<i64>,
}

/// Ends a running run in one transaction: the run (only if still running),
/// the occupancy freed, the refund with its ledger entry. Retries when only
/// the balance moved meanwhile.
async fn end_run(app: &App, run: &Run, mut room: Option<Room>, ending: Ending) -> Result<()> {
    for attempt in 0..BALANCE_ATTEMPTS {
        let now_ms = app.clock.now_millis();
        let now = now_ms.div_euclid(1000);
        let mut update = Update::new()
            .set("status", s(ending.status.as_str()))
            .set("GSI2PK", s(keys::run_status_gsi2pk(ending.status.as_str())))
            .set("refund_cents", n(ending.refund))
            .set("finished_at", n(now))
            .set("ended_by", s(ending.ended_by));
        if let Some(units) = ending.final_units {
            update = update.set("final_units", n(units));
        }
        if let Some(price) = ending.final_price {
            update = update.set("final_price", n(price));
        }
        /// Why an ending did not commit, most telling first.
        #[derive(Clone, Copy)]
        enum Refused {
            NotRunning,
            TokenRevoked,
            ForeignOccupancy,
            BalanceMoved,
        }
        let mut tx = Tx::new();
        tx.push_or(
            Write::Update { key: keys::run(&run.run_id), update, cond: Some(Cond::eq("status", s("running"))) },
            Refused::NotRunning,
        );
        if let Some(tv) = ending.token_version {
            tx.push_or(
                Write::Check { key: keys::endpoint(&run.endpoint_id), cond: Cond::eq("token_version", n(tv)) },
                Refused::TokenRevoked,
            );
        }
        tx.push_or(
            Write::Delete {
                key: keys::occupancy(&run.endpoint_id, &run.appliance),
                cond: Some(Cond::eq("run_id", s(&run.run_id))),
            },
            Refused::ForeignOccupancy,
        );
        if ending.refund > 0 {
            let current = room.as_ref().ok_or_else(room_not_found)?;
            let (balance_writes, _) =
                balance_change(&run.room, current.balance, ending.refund, "run_refund", &run.run_id, now_ms)?;
            tx.extend_or(balance_writes, Refused::BalanceMoved);
        }
        match app.store.commit(tx).await {
            Ok(()) => return Ok(()),
            Err(TxError::Failed(Refused::NotRunning)) => return Err(not_running()),
            Err(TxError::Failed(Refused::TokenRevoked)) => return Err(tokens::invalid()),
            // Only the balance moved meanwhile: read it again and retry.
            Err(TxError::Failed(Refused::BalanceMoved) | TxError::Store(StoreError::Conflict)) => {
                backoff(attempt).await;
                room = get_room(app, &run.room).await?;
            }
            Err(TxError::Failed(Refused::ForeignOccupancy)) => {
                return Err(ApiError::internal(ForeignOccupancy { run_id: run.run_id.clone() }));
            }
            Err(TxError::Store(e)) => return Err(e.into()),
        }
    }
    Err(conflict_exhausted())
}

/// `finish`: records the final units and price, refunds `reserved − final × 100`
/// when positive and frees the appliance. It never charges more than the
/// reservation: a final price above it is clamped (recorded as sent, refund 0).
/// A run that is not running is 409 and is never refunded twice. Over HTTP the
/// endpoint's device key is required.
/// One read round trip (run, endpoint and room in parallel) and one transaction.
pub async fn finish(app: &App, body: Json, caller: Caller<'_>) -> Result<FinishReply> {
    let body: FinishBody = parse(body)?;
    let claims = tokens::verify(app, &body.token, Kind::ApplianceStart, caller.topic_endpoint())?;
    for (field, value) in [("units", body.units), ("price", body.price)] {
        if value < 0 {
            return Err(ApiError::invalid_field(field, "negative", format!("{field} may not be negative.")));
        }
    }
    if body.price > MAX_PRICE {
        return Err(ApiError::invalid_field("price", "too_large", format!("price must be at most {MAX_PRICE}.")));
    }
    let run_id = claims.run.clone().ok_or_else(tokens::invalid)?;
    let (run, endpoint, room) =
        tokio::try_join!(get_run(app, &run_id), get_endpoint(app, &claims.ep), get_room(app, &claims.room))?;
    let run = run.ok_or_else(tokens::invalid)?;
    let endpoint = endpoint.ok_or_else(tokens::invalid)?;
    check_endpoint_key(&endpoint, caller)?;
    if endpoint.token_version != claims.tv {
        return Err(tokens::invalid());
    }
    if run.status != RunStatus::Running {
        return Err(not_running());
    }
    let status = if body.aborted { RunStatus::Aborted } else { RunStatus::Finished };
    let ending = Ending {
        status,
        final_units: Some(body.units),
        final_price: Some(body.price),
        // Clamped: at most the reservation is charged (price ≤ MAX_PRICE, so × 100 cannot overflow).
        refund: run.reserved_cents.saturating_sub(body.price.saturating_mul(100)).max(0),
        ended_by: "device",
        token_version: Some(claims.tv),
    };
    end_run(app, &run, room, ending).await?;
    Ok(FinishReply { status })
}

/// Aborts a running run with a full refund of its reservation and tells the
/// endpoint (`{command: "abort", run_id}` on `appliance/{endpoint_id}/command`).
pub async fn abort(app: &App, run: &Run, by: &'static str) -> Result<()> {
    if run.status != RunStatus::Running {
        return Err(not_running());
    }
    let ending = Ending {
        status: RunStatus::Aborted,
        final_units: None,
        final_price: None,
        refund: run.reserved_cents,
        ended_by: by,
        token_version: None,
    };
    let room = get_room(app, &run.room).await?;
    end_run(app, run, room, ending).await?;
    let command = serde_json::json!({"command": "abort", "run_id": run.run_id});
    let topic = format!("appliance/{}/command", run.endpoint_id);
    if let Err(e) = app.devices.publish(&topic, command.to_string().as_bytes()).await {
        // The run is aborted and refunded either way; the device learns it when its finish is refused.
        tracing::warn!(run_id = %run.run_id, error = %e, "abort command not published");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_auth_code_sent_as_a_number_gets_its_leading_zeros_back() {
        assert_eq!(auth_code(&serde_json::json!(12345)).unwrap(), "012345");
        assert_eq!(auth_code(&serde_json::json!(7)).unwrap(), "000007");
        assert_eq!(auth_code(&serde_json::json!("012345")).unwrap(), "012345");
        for bad in
            [serde_json::json!(1234567), serde_json::json!("12a456"), serde_json::json!(-5), serde_json::json!(1.5)]
        {
            assert!(auth_code(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn room_keys_and_endpoint_ids_come_as_numbers_or_strings() {
        assert_eq!(typed_id_of::<RoomKey>("room_num", &serde_json::json!(12345)).unwrap().as_str(), "12345");
        assert_eq!(typed_id_of::<RoomKey>("room_num", &serde_json::json!(" A-1 ")).unwrap().as_str(), "A-1");
        let long = serde_json::json!("x".repeat(3000));
        for bad in
            [serde_json::json!(""), serde_json::json!("a b"), serde_json::json!(null), serde_json::json!(-1), long]
        {
            assert!(typed_id_of::<RoomKey>("room_num", &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_balance_change_that_would_overflow_is_out_of_range_not_a_wrap() {
        let err = balance_change("r", i64::MAX - 5, 10, "admin_credit", "t", 0).unwrap_err();
        assert_eq!((err.code.as_ref(), err.field.as_deref()), ("amount_out_of_range", Some("amount")));
        let err = balance_change("r", i64::MIN + 5, -10, "admin_credit", "t", 0).unwrap_err();
        assert_eq!(err.code, "amount_out_of_range");
        assert_eq!(balance_change("r", 5, -5, "run_start", "t", 0).unwrap().1.balance_after, 0);
    }

    #[test]
    fn an_endpoint_key_is_checked_against_its_hash_unless_the_endpoint_is_legacy_keyless() {
        let mut endpoint = Endpoint {
            endpoint_id: "e1".into(),
            name: "n".into(),
            appliances: vec![],
            token_version: 1,
            last_seen: None,
            created_at: 0,
            key_hash: Some(hash_endpoint_key("right")),
            legacy_keyless: false,
        };
        let http = |key| Caller::Http { endpoint_key: key };
        assert!(check_endpoint_key(&endpoint, http(Some("right"))).is_ok());
        assert_eq!(check_endpoint_key(&endpoint, http(Some("wrong"))).unwrap_err().code, "endpoint_key_invalid");
        assert_eq!(check_endpoint_key(&endpoint, http(None)).unwrap_err().code, "endpoint_key_required");
        assert!(check_endpoint_key(&endpoint, Caller::Mqtt { endpoint_id: "e1" }).is_ok());
        endpoint.key_hash = None;
        assert_eq!(check_endpoint_key(&endpoint, http(Some("right"))).unwrap_err().code, "endpoint_key_invalid");
        endpoint.legacy_keyless = true;
        assert!(check_endpoint_key(&endpoint, http(None)).is_ok());
    }
}
