//! Admin endpoints of the appliances module (role `admin`): rooms, their TOTP
//! secrets, credits and ledgers; appliances; endpoints; runs.

use ::http::StatusCode;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::App;
use crate::platform::doc::{Body, Op, QueryParam, enum_schema, page_of, schema_of, string};
use crate::platform::function::{Auth, Function, Uses};
use crate::platform::http::auth::principal;
use crate::platform::http::page::{self, Keyset, Page};
use crate::platform::http::{self, ApiError, Request, Response, json_body, json_response, query_param};
use crate::platform::id::{field_id, path_id};
use crate::platform::store::{self, Cond, Index, Item, Query, SkCond, StoreError, Tx, TxError, Update, Write, s};

use super::keys;
use super::model::{
    Appliance, DEFAULT_MAX_PRICE, DEFAULT_MAX_UNITS, Endpoint, EndpointId, LedgerEntry, Room, RoomKey, RoomTotp, Run,
    RunId, RunStatus, TotpThrottle,
};
use super::service::{self, amount_out_of_range, balance_change, get_room, room_not_found, typed_id_of};

const PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;

fn with_key(mut item: Item, key: store::Key, kind: &str) -> Item {
    item.insert(store::TABLE.pk.to_string(), s(key.pk));
    item.insert(store::TABLE.sk.to_string(), s(key.sk));
    item.insert("type".into(), s(kind));
    item
}

// ---------------------------------------------------------------------- rooms

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct NewRoom {
    #[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$", example = "101")]
    key: Json,
    /// A user to tell of the room's bank credits.
    #[serde(default)]
    resident_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RoomView {
    key: String,
    balance: i64,
    resident_id: Option<String>,
    created_at: i64,
}

impl From<Room> for RoomView {
    fn from(r: Room) -> Self {
        RoomView { key: r.key, balance: r.balance, resident_id: r.resident_id, created_at: r.created_at }
    }
}

pub const ADMIN_ROOMS_CREATE: Function =
    Function::http("admin-rooms-create", "POST", "/api/admin/rooms/", "Create a room (admin)", |app, req| {
        Box::pin(create_room(app, req))
    })
    .auth(Auth::ADMIN)
    .doc(|| {
        Op::new()
            .json(schema_of::<NewRoom>)
            .example(json!({"key": "12345"}))
            .reply(201, "The room", schema_of::<RoomView>)
            .errors(&[409])
    })
    .uses(&[Uses::TableWrite]);

/// `POST /api/admin/rooms/` `{key, resident_id?}` → 201 `{key, balance, resident_id}`; 409 when the room
/// exists, 400 when the resident is no user. One get (the resident, when given) and one conditional put.
pub async fn create_room(app: &'static App, req: Request) -> http::Result<Response> {
    let body: NewRoom = json_body(&req)?;
    let key: RoomKey = typed_id_of("key", &body.key)?;
    let key = key.into_string();
    let resident_id = body.resident_id.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    if let Some(resident) = &resident_id {
        let known = resident.len() <= 64 && crate::identity::service::get_user(app, resident).await?.is_some();
        if !known {
            return Err(ApiError::invalid_field("resident_id", "invalid", "No user has this id."));
        }
    }
    let room = Room { key: key.clone(), balance: 0, resident_id, created_at: app.clock.now_secs() };
    let mut item = with_key(store::to_item(&room)?, keys::room(&key), "room");
    item.insert("GSI1PK".into(), s(keys::ROOMS_GSI1PK));
    item.insert("GSI1SK".into(), s(&key));
    match app.store.put(item, Some(Cond::item_absent())).await {
        Ok(()) => Ok(json_response(StatusCode::CREATED, &RoomView::from(room))),
        Err(StoreError::ConditionFailed) => Err(ApiError::conflict("room_exists", "A room with this key exists.")),
        Err(e) => Err(e.into()),
    }
}

pub const ADMIN_ROOMS_LIST: Function =
    Function::http("admin-rooms-list", "GET", "/api/admin/rooms/", "List rooms (admin)", |app, req| {
        Box::pin(list_rooms(app, req))
    })
    .auth(Auth::ADMIN)
    .doc(|| Op::new().page(page_of::<RoomView>))
    .uses(&[Uses::TableRead]);

/// `GET /api/admin/rooms/`: every room by key, paginated. One query page per 1 MB of rooms.
pub async fn list_rooms(app: &'static App, req: Request) -> http::Result<Response> {
    let page = Page::from_query(&req, PAGE_SIZE, MAX_PAGE_SIZE)?;
    let rooms: Vec<Room> = app.store.query_all(Query::partition(keys::ROOMS_GSI1PK).index(Index::Gsi1)).await?;
    page::respond(&req, rooms.into_iter().map(RoomView::from).collect(), page)
}

/// A room's TOTP locked at an endpoint after too many wrong codes (`throttle`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TotpLock {
    endpoint_id: String,
    /// Epoch seconds.
    locked_until: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RoomDetail {
    #[serde(flatten)]
    room: RoomView,
    has_totp: bool,
    last_totp_step: Option<i64>,
    /// The endpoints where the room's TOTP is locked now.
    totp_locks: Vec<TotpLock>,
}

pub const ADMIN_ROOMS_GET: Function = Function::http(
    "admin-rooms-get",
    "GET",
    "/api/admin/rooms/{key}/",
    "A room with its balance (admin)",
    |app, req| Box::pin(get_room_detail(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| Op::new().reply(200, "The room", schema_of::<RoomDetail>))
.uses(&[Uses::TableRead]);

/// `GET /api/admin/rooms/{key}/`. Two gets and a query of the room's throttle items, in parallel.
pub async fn get_room_detail(app: &'static App, req: Request) -> http::Result<Response> {
    let key = path_id::<RoomKey>(&req, "key")?.into_string();
    let throttles = Query::partition(keys::room_pk(&key)).sk(SkCond::BeginsWith(keys::TOTP_THROTTLE_PREFIX.into()));
    let (room, totp, throttles) = tokio::try_join!(
        get_room(app, &key),
        async { Ok(app.store.get(&keys::room_totp(&key)).await?.map(store::from_item::<RoomTotp>).transpose()?) },
        async { Ok::<_, ApiError>(app.store.query_all::<TotpThrottle>(throttles).await?) },
    )?;
    let room = room.ok_or_else(room_not_found)?;
    let now = app.clock.now_secs();
    let totp_locks = throttles
        .into_iter()
        .filter_map(|t| t.locked_until.filter(|until| *until > now).map(|until| (t.endpoint_id, until)))
        .map(|(endpoint_id, locked_until)| TotpLock { endpoint_id, locked_until })
        .collect();
    http::ok(&RoomDetail {
        room: room.into(),
        has_totp: totp.is_some(),
        last_totp_step: totp.and_then(|t| t.last_step),
        totp_locks,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TotpView {
    secret: String,
    otpauth_uri: String,
}

pub const ADMIN_ROOMS_TOTP: Function = Function::http(
    "admin-rooms-totp",
    "POST",
    "/api/admin/rooms/{key}/totp/",
    "A new TOTP secret for a room (admin)",
    |app, req| Box::pin(new_totp(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| {
    Op::new().describe("A new TOTP secret; the old one stops working.").reply(201, "The secret", schema_of::<TotpView>)
})
.uses(&[Uses::TableWrite]);

/// `POST /api/admin/rooms/{key}/totp/` → 201 `{secret, otpauth_uri}`: a new secret; the old one stops working.
/// One transaction (room check, secret put).
pub async fn new_totp(app: &'static App, req: Request) -> http::Result<Response> {
    let key = path_id::<RoomKey>(&req, "key")?.into_string();
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    let secret = match totp_rs::Secret::Raw(bytes.to_vec()).to_encoded() {
        totp_rs::Secret::Encoded(s) => s,
        totp_rs::Secret::Raw(_) => return Err(ApiError::internal(anyhow::anyhow!("base32 encoding failed"))),
    };
    let totp = RoomTotp { secret: secret.clone(), last_step: None, created_at: app.clock.now_secs() };
    let writes = vec![
        Write::Check { key: keys::room(&key), cond: Cond::item_exists() },
        Write::Put { item: with_key(store::to_item(&totp)?, keys::room_totp(&key), "room_totp"), cond: None },
    ];
    match app.store.transact(writes).await {
        Ok(()) => {}
        Err(StoreError::TransactionCanceled { .. }) => return Err(room_not_found()),
        Err(e) => return Err(e.into()),
    }
    let label: String = form_urlencoded::byte_serialize(format!("Premises:room-{key}").as_bytes()).collect();
    let otpauth_uri = format!(
        "otpauth://totp/{label}?secret={secret}&issuer=Premises&algorithm=SHA1&digits={}&period={}",
        service::TOTP_DIGITS,
        service::TOTP_STEP_SECS
    );
    Ok(json_response(StatusCode::CREATED, &TotpView { secret, otpauth_uri }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct CreditBody {
    amount: i64,
    #[serde(default)]
    note: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BalanceView {
    balance: i64,
}

/// Largest admin credit or debit, in cents (10^10 minor units).
pub const MAX_CREDIT_CENTS: u64 = 10_000_000_000;

pub const ADMIN_ROOMS_CREDIT: Function = Function::http(
    "admin-rooms-credit",
    "POST",
    "/api/admin/rooms/{key}/credit/",
    "Credit or debit a room (admin)",
    |app, req| Box::pin(credit(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| {
    Op::new()
        .describe("Cents; a negative amount debits, never below zero.")
        .json(schema_of::<CreditBody>)
        .example(json!({"amount": 50000, "note": "cash top-up"}))
        .reply(200, "The new balance", schema_of::<BalanceView>)
        .errors(&[402, 503])
})
.uses(&[Uses::TableWrite]);

/// `POST /api/admin/rooms/{key}/credit/` `{amount, note}` (cents; negative debits, never below zero) → 200
/// `{balance}`; beyond ±10^10 cents 400 `amount_out_of_range`. One get and one transaction (retried when the
/// balance moved meanwhile).
pub async fn credit(app: &'static App, req: Request) -> http::Result<Response> {
    let key = path_id::<RoomKey>(&req, "key")?.into_string();
    let body: CreditBody = json_body(&req)?;
    let admin = principal(&req)?.user_id.clone();
    if body.amount == 0 {
        return Err(ApiError::invalid_field("amount", "invalid", "amount must be non-zero cents."));
    }
    // unsigned_abs: i64::MIN has no i64 absolute value (schemathesis sends it).
    if body.amount.unsigned_abs() > MAX_CREDIT_CENTS {
        return Err(ApiError::invalid_field("amount", "amount_out_of_range", "amount must be within ±10^10 cents."));
    }
    let note = body.note.trim().chars().take(200).collect::<String>();
    let reference = if note.is_empty() { format!("admin:{admin}") } else { format!("admin:{admin}: {note}") };
    for _ in 0..20 {
        let room = get_room(app, &key).await?.ok_or_else(room_not_found)?;
        if room.balance.checked_add(body.amount).ok_or_else(amount_out_of_range)? < 0 {
            return Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_funds",
                "The balance may not go below zero.",
            ));
        }
        let now = app.clock.now_millis();
        let (writes, entry) = balance_change(&key, room.balance, body.amount, "admin_credit", &reference, now)?;
        match app.store.transact(writes).await {
            Ok(()) => return http::ok(&BalanceView { balance: entry.balance_after }),
            Err(StoreError::TransactionCanceled { .. } | StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy_retry", "Too many concurrent changes to this room."))
}

pub const ADMIN_ROOMS_LEDGER: Function = Function::http(
    "admin-rooms-ledger",
    "GET",
    "/api/admin/rooms/{key}/ledger/",
    "A room's ledger (admin)",
    |app, req| Box::pin(ledger(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| Op::new().store_page(page_of::<super::model::LedgerEntry>))
.uses(&[Uses::TableRead]);

/// `GET /api/admin/rooms/{key}/ledger/`: newest first, paged in the store (`?cursor=`/`?before=` in
/// `next`/`previous`). One get, one query of at most `page_size + 1` entries, and a count query
/// (one request per 1 MB of entries) unless the first page holds them all.
pub async fn ledger(app: &'static App, req: Request) -> http::Result<Response> {
    let key = path_id::<RoomKey>(&req, "key")?.into_string();
    let keyset = Keyset::from_query(&req, PAGE_SIZE, MAX_PAGE_SIZE)?;
    get_room(app, &key).await?.ok_or_else(room_not_found)?;
    let query = Query::partition(keys::room_pk(&key)).sk(SkCond::BeginsWith(keys::LEDGER_PREFIX.into())).descending();
    http::ok(&page::from_store::<LedgerEntry>(&app.store, &req, vec![query], &keyset, None).await?)
}

// ----------------------------------------------------------------- appliances

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct NewAppliance {
    name: String,
    price_per_unit: i64,
    /// Most units one run may ask for (default 1,000; at most 10^9).
    #[serde(default)]
    max_units: Option<i64>,
    /// Most whole currency units one run may reserve (default 1,000; at most 10^6).
    #[serde(default)]
    max_price: Option<i64>,
}

/// An optional cap: positive and at most `max`, else 400 naming the field.
fn cap(field: &'static str, value: Option<i64>, default: i64, max: i64) -> http::Result<i64> {
    match value {
        None => Ok(default),
        Some(v) if v > 0 && v <= max => Ok(v),
        Some(_) => Err(ApiError::invalid_field(field, "invalid", format!("{field} must be between 1 and {max}."))),
    }
}

pub const ADMIN_APPLIANCES_CREATE: Function = Function::http(
    "admin-appliances-create",
    "POST",
    "/api/admin/appliances/",
    "Create an appliance type (admin)",
    |app, req| Box::pin(create_appliance(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| {
    Op::new()
        .json(schema_of::<NewAppliance>)
        .example(json!({"name": "washer", "price_per_unit": 25, "max_units": 1000, "max_price": 1000}))
        .reply(201, "The appliance", schema_of::<super::model::Appliance>)
        .errors(&[409])
})
.uses(&[Uses::TableWrite]);

/// `POST /api/admin/appliances/` `{name, price_per_unit, max_units?, max_price?}` → 201. One conditional put.
pub async fn create_appliance(app: &'static App, req: Request) -> http::Result<Response> {
    let body: NewAppliance = json_body(&req)?;
    let name = body.name.trim().to_string();
    if name.is_empty() || name.len() > service::MAX_APPLIANCE_NAME {
        return Err(ApiError::invalid_field("name", "invalid", "name must be 1 to 64 characters."));
    }
    if body.price_per_unit <= 0 || body.price_per_unit > service::MAX_PRICE {
        return Err(ApiError::invalid_field(
            "price_per_unit",
            "not_positive",
            "price_per_unit must be positive and at most 10^6.",
        ));
    }
    let appliance = Appliance {
        name: name.clone(),
        price_per_unit: body.price_per_unit,
        max_units: cap("max_units", body.max_units, DEFAULT_MAX_UNITS, service::MAX_UNITS)?,
        max_price: cap("max_price", body.max_price, DEFAULT_MAX_PRICE, service::MAX_PRICE)?,
        created_at: app.clock.now_secs(),
    };
    let mut item = with_key(store::to_item(&appliance)?, keys::appliance(&name), "appliance");
    item.insert("GSI1PK".into(), s(keys::APPLIANCES_GSI1PK));
    item.insert("GSI1SK".into(), s(&name));
    match app.store.put(item, Some(Cond::item_absent())).await {
        Ok(()) => Ok(json_response(StatusCode::CREATED, &appliance)),
        Err(StoreError::ConditionFailed) => {
            Err(ApiError::conflict("appliance_exists", "An appliance with this name exists."))
        }
        Err(e) => Err(e.into()),
    }
}

pub const ADMIN_APPLIANCES_LIST: Function = Function::http(
    "admin-appliances-list",
    "GET",
    "/api/admin/appliances/",
    "List appliance types (admin)",
    |app, req| Box::pin(list_appliances(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| Op::new().page(page_of::<super::model::Appliance>))
.uses(&[Uses::TableRead]);

/// `GET /api/admin/appliances/`: by name, paginated.
pub async fn list_appliances(app: &'static App, req: Request) -> http::Result<Response> {
    let page = Page::from_query(&req, PAGE_SIZE, MAX_PAGE_SIZE)?;
    let items: Vec<Appliance> =
        app.store.query_all(Query::partition(keys::APPLIANCES_GSI1PK).index(Index::Gsi1)).await?;
    page::respond(&req, items, page)
}

// ------------------------------------------------------------------ endpoints

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct NewEndpoint {
    #[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$", example = "1")]
    endpoint_id: Json,
    name: String,
    appliances: Vec<String>,
    /// For a terminal that cannot send `X-Endpoint-Key`: its requests pass without it (each one logged).
    #[serde(default)]
    legacy_keyless: bool,
}

/// An endpoint as admins see it (never its key or the key's hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EndpointView {
    endpoint_id: String,
    name: String,
    appliances: Vec<String>,
    token_version: i64,
    last_seen: Option<i64>,
    created_at: i64,
    /// Whether a device key is set (endpoints from before keys have none until one is rotated in).
    has_key: bool,
    legacy_keyless: bool,
}

impl From<Endpoint> for EndpointView {
    fn from(e: Endpoint) -> Self {
        EndpointView {
            endpoint_id: e.endpoint_id,
            name: e.name,
            appliances: e.appliances,
            token_version: e.token_version,
            last_seen: e.last_seen,
            created_at: e.created_at,
            has_key: e.key_hash.is_some(),
            legacy_keyless: e.legacy_keyless,
        }
    }
}

/// The endpoint and its new device key: the only time the key is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EndpointWithKey {
    #[serde(flatten)]
    endpoint: EndpointView,
    /// 256 random bits, URL-safe base64 without padding; the endpoint sends it in `X-Endpoint-Key`.
    endpoint_key: String,
}

/// A new device key: 32 random bytes, URL-safe base64 (43 characters).
fn new_endpoint_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub const ADMIN_ENDPOINTS_CREATE: Function = Function::http(
    "admin-endpoints-create",
    "POST",
    "/api/admin/endpoints/",
    "Create an appliance endpoint (admin)",
    |app, req| Box::pin(create_endpoint(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| {
    Op::new()
        .describe(
            "The reply carries the endpoint's device key `endpoint_key`, shown only here (stored hashed). \
             `legacy_keyless: true` lets a terminal that cannot send `X-Endpoint-Key` work without it.",
        )
        .json(schema_of::<NewEndpoint>)
        .example(json!({"endpoint_id": 1, "name": "Laundry, ground floor", "appliances": ["washer"]}))
        .reply(201, "The endpoint and its device key", schema_of::<EndpointWithKey>)
        .errors(&[409])
})
.uses(&[Uses::TableWrite]);

/// `POST /api/admin/endpoints/` `{endpoint_id, name, appliances: [names], legacy_keyless?}` → 201 with the
/// endpoint and its `endpoint_key` (shown once; stored as its SHA-256). One transaction: the endpoint
/// (absent) and a check that each appliance exists.
pub async fn create_endpoint(app: &'static App, req: Request) -> http::Result<Response> {
    let body: NewEndpoint = json_body(&req)?;
    let endpoint_id: EndpointId = typed_id_of("endpoint_id", &body.endpoint_id)?;
    let endpoint_id = endpoint_id.into_string();
    let mut appliances: Vec<String> = body.appliances.iter().map(|a| a.trim().to_string()).collect();
    appliances.sort();
    appliances.dedup();
    if appliances.len() > 50 || appliances.iter().any(|a| a.is_empty() || a.len() > service::MAX_APPLIANCE_NAME) {
        return Err(ApiError::invalid_field("appliances", "invalid", "appliances must be up to 50 names."));
    }
    let name = body.name.trim().to_string();
    crate::platform::id::bounded_text("name", &name, 200)?;
    let endpoint_key = new_endpoint_key();
    let endpoint = Endpoint {
        endpoint_id: endpoint_id.clone(),
        name,
        appliances: appliances.clone(),
        token_version: 1,
        last_seen: None,
        created_at: app.clock.now_secs(),
        key_hash: Some(service::hash_endpoint_key(&endpoint_key)),
        legacy_keyless: body.legacy_keyless,
    };
    let mut item = with_key(store::to_item(&endpoint)?, keys::endpoint(&endpoint_id), "endpoint");
    item.insert("GSI1PK".into(), s(keys::ENDPOINTS_GSI1PK));
    item.insert("GSI1SK".into(), s(&endpoint_id));
    /// Why the endpoint was not created.
    enum Refused<'a> {
        Exists,
        UnknownAppliance(&'a str),
    }
    let mut tx = Tx::new();
    tx.push_or(Write::Put { item, cond: Some(Cond::item_absent()) }, Refused::Exists);
    for a in &appliances {
        tx.push_or(Write::Check { key: keys::appliance(a), cond: Cond::item_exists() }, Refused::UnknownAppliance(a));
    }
    match app.store.commit_all(tx).await {
        Ok(()) => Ok(json_response(StatusCode::CREATED, &EndpointWithKey { endpoint: endpoint.into(), endpoint_key })),
        Err(TxError::Failed(refused)) if matches!(refused[0], Refused::Exists) => {
            Err(ApiError::conflict("endpoint_exists", "An endpoint with this id exists."))
        }
        Err(TxError::Failed(refused)) => {
            let unknown: Vec<&str> = refused
                .iter()
                .filter_map(|r| match r {
                    Refused::UnknownAppliance(a) => Some(*a),
                    Refused::Exists => None,
                })
                .collect();
            Err(ApiError::invalid_field(
                "appliances",
                "appliance_not_found",
                format!("Unknown appliances: {}.", unknown.join(", ")),
            ))
        }
        Err(TxError::Store(e)) => Err(e.into()),
    }
}

pub const ADMIN_ENDPOINTS_LIST: Function = Function::http(
    "admin-endpoints-list",
    "GET",
    "/api/admin/endpoints/",
    "List appliance endpoints (admin)",
    |app, req| Box::pin(list_endpoints(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| Op::new().page(page_of::<EndpointView>))
.uses(&[Uses::TableRead]);

/// `GET /api/admin/endpoints/`: by id, paginated.
pub async fn list_endpoints(app: &'static App, req: Request) -> http::Result<Response> {
    let page = Page::from_query(&req, PAGE_SIZE, MAX_PAGE_SIZE)?;
    let items: Vec<Endpoint> = app.store.query_all(Query::partition(keys::ENDPOINTS_GSI1PK).index(Index::Gsi1)).await?;
    page::respond(&req, items.into_iter().map(EndpointView::from).collect(), page)
}

pub const ADMIN_ENDPOINTS_REVOKE_TOKENS: Function = Function::http(
    "admin-endpoints-revoke-tokens",
    "POST",
    "/api/admin/endpoints/{endpoint_id}/revoke-tokens/",
    "Invalidate every token of an endpoint (admin)",
    |app, req| Box::pin(revoke_tokens(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| {
    Op::new().describe("Every token issued for the endpoint stops working.").reply(
        200,
        "The endpoint",
        schema_of::<EndpointView>,
    )
})
.uses(&[Uses::TableWrite]);

/// `POST /api/admin/endpoints/{endpoint_id}/revoke-tokens/` → 200 with the endpoint: every token issued for it
/// stops working. One conditional update.
pub async fn revoke_tokens(app: &'static App, req: Request) -> http::Result<Response> {
    let id = path_id::<EndpointId>(&req, "endpoint_id")?;
    match app.store.update(&keys::endpoint(&id), Update::new().add("token_version", 1), Some(Cond::item_exists())).await
    {
        Ok(item) => http::ok(&EndpointView::from(store::from_item::<Endpoint>(item)?)),
        Err(StoreError::ConditionFailed) => Err(service::endpoint_not_found()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct RotateKey {
    /// Also sets (or clears) `legacy_keyless`; unchanged when absent.
    #[serde(default)]
    legacy_keyless: Option<bool>,
}

pub const ADMIN_ENDPOINTS_ROTATE_KEY: Function = Function::http(
    "admin-endpoints-rotate-key",
    "POST",
    "/api/admin/endpoints/{endpoint_id}/rotate-key/",
    "Give an endpoint a new device key (admin)",
    |app, req| Box::pin(rotate_key(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| {
    Op::new()
        .describe(
            "A new device key, shown only here; the old one stops working at once. The body may be empty; \
             `legacy_keyless` sets or clears the flag.",
        )
        .body(Body { required: false, content: vec![("application/json", schema_of::<RotateKey>)], example: None })
        .example(json!({"legacy_keyless": false}))
        .reply(200, "The endpoint and its new device key", schema_of::<EndpointWithKey>)
})
.uses(&[Uses::TableWrite]);

/// `POST /api/admin/endpoints/{endpoint_id}/rotate-key/` `{legacy_keyless?}` (the body may be empty) → 200 with
/// the endpoint and its new `endpoint_key` (shown once); the old key stops working at once. Outstanding tokens
/// stay valid, but every HTTP request also needs the key (revoke-tokens ends them too). One conditional update.
pub async fn rotate_key(app: &'static App, req: Request) -> http::Result<Response> {
    let id = path_id::<EndpointId>(&req, "endpoint_id")?;
    let body: RotateKey =
        if req.body().as_ref().iter().all(u8::is_ascii_whitespace) { RotateKey::default() } else { json_body(&req)? };
    let endpoint_key = new_endpoint_key();
    let mut update = Update::new().set("key_hash", s(service::hash_endpoint_key(&endpoint_key)));
    if let Some(legacy) = body.legacy_keyless {
        update = update.set("legacy_keyless", store::Value::Bool(legacy));
    }
    match app.store.update(&keys::endpoint(&id), update, Some(Cond::item_exists())).await {
        Ok(item) => {
            let endpoint = store::from_item::<Endpoint>(item)?;
            tracing::info!(endpoint_id = %id, "endpoint device key rotated");
            http::ok(&EndpointWithKey { endpoint: endpoint.into(), endpoint_key })
        }
        Err(StoreError::ConditionFailed) => Err(service::endpoint_not_found()),
        Err(e) => Err(e.into()),
    }
}

// ----------------------------------------------------------------------- runs

fn parse_status(value: &str) -> http::Result<RunStatus> {
    serde_json::from_value(Json::String(value.to_string()))
        .map_err(|_| ApiError::invalid_field("status", "invalid_choice", format!("\"{value}\" is not a valid choice.")))
}

/// Runs of one status, oldest first (GSI2).
pub async fn runs_with_status(app: &App, status: RunStatus) -> http::Result<Vec<Run>> {
    Ok(app.store.query_all(Query::partition(keys::run_status_gsi2pk(status.as_str())).index(Index::Gsi2)).await?)
}

pub const ADMIN_RUNS_LIST: Function =
    Function::http("admin-runs-list", "GET", "/api/admin/runs/", "List appliance runs (admin)", |app, req| {
        Box::pin(list_runs(app, req))
    })
    .auth(Auth::ADMIN)
    .doc(|| {
        Op::new()
            .query(&[
                QueryParam { name: "room", description: "Only this room's runs.", schema: string },
                QueryParam {
                    name: "status",
                    description: "Only runs with this status.",
                    schema: enum_schema::<super::model::RunStatus>,
                },
            ])
            .store_page(page_of::<super::model::Run>)
    })
    .uses(&[Uses::TableRead]);

/// `GET /api/admin/runs/?room=&status=`: newest first, paged in the store. A room reads its GSI1
/// partition (filtered by status when one is given); otherwise the status's GSI2 partition, or
/// all three merged. One query per partition of at most `page_size + 1` runs, and count queries
/// unless the first page holds them all.
pub async fn list_runs(app: &'static App, req: Request) -> http::Result<Response> {
    let keyset = Keyset::from_query(&req, PAGE_SIZE, MAX_PAGE_SIZE)?;
    let status = query_param(&req, "status").filter(|s| !s.is_empty()).map(parse_status).transpose()?;
    let room =
        query_param(&req, "room").filter(|s| !s.is_empty()).map(|r| field_id::<RoomKey>("room", r)).transpose()?;
    let by_status =
        |status: RunStatus| Query::partition(keys::run_status_gsi2pk(status.as_str())).index(Index::Gsi2).descending();
    let queries = match (room, status) {
        (Some(room), status) => {
            let query = Query::partition(keys::room_runs_gsi1pk(&room)).index(Index::Gsi1).descending();
            vec![match status {
                Some(status) => query.filter(Cond::eq("status", s(status.as_str()))),
                None => query,
            }]
        }
        (None, Some(status)) => vec![by_status(status)],
        (None, None) => [RunStatus::Running, RunStatus::Finished, RunStatus::Aborted].map(by_status).into(),
    };
    http::ok(&page::from_store::<Run>(&app.store, &req, queries, &keyset, None).await?)
}

pub const ADMIN_RUNS_ABORT: Function = Function::http(
    "admin-runs-abort",
    "POST",
    "/api/admin/runs/{run_id}/abort/",
    "Abort a run with a full refund (admin)",
    |app, req| Box::pin(abort_run(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| {
    Op::new()
        .describe("As the stuck-run job does: a full refund and an abort command to the device.")
        .reply(200, "The run", schema_of::<super::model::Run>)
        .errors(&[409, 503])
})
.uses(&[Uses::TableWrite, Uses::Publish("appliance")]);

/// `POST /api/admin/runs/{run_id}/abort/`: as the stuck-run job does (full refund, abort command). 200 with the run.
pub async fn abort_run(app: &'static App, req: Request) -> http::Result<Response> {
    let id = path_id::<RunId>(&req, "run_id")?.into_string();
    let run =
        service::get_run(app, &id).await?.ok_or_else(|| ApiError::not_found("run_not_found", "No run has this id."))?;
    service::abort(app, &run, "admin").await?;
    let run = service::get_run(app, &id).await?.ok_or_else(|| ApiError::internal(anyhow::anyhow!("run vanished")))?;
    http::ok(&run)
}
