//! The SmartLock device endpoints (seed 003, `/api/v1/devices/`): owners see
//! their own locks (anyone else's is 404), admins see all.

use ::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::App;
use crate::identity::service::get_user;
use crate::platform::devices::Credentials;
use crate::platform::doc::{Body, Op, numbered_page_of, page_of, schema_of};
use crate::platform::function::{Auth, Function, Uses};
use crate::platform::http::auth::{Principal, principal};
use crate::platform::http::page::{self, Keyset, Page};
use crate::platform::http::{
    self, ApiError, Request, Response, json_body, json_response, no_content, path_param, source_ip,
};
use crate::platform::store::{self, Cond, Index, Query, SkCond, StoreError, Update, n, s};

use super::keys;
use super::model::{AccessLogEntry, Action, BatteryReading, Lock, LockSettings};
use super::service::{self, NewLock, iso, valid_device_id, visible_lock};

const PAGE_SIZE: usize = 20;
/// Longest firmware URL sent to a lock.
const MAX_FIRMWARE_URL_LEN: usize = 2048;
const MAX_PAGE_SIZE: usize = 100;
/// Battery readings shown by `battery/`.
const BATTERY_HISTORY: u32 = 100;

fn caller(req: &Request) -> http::Result<Principal> {
    Ok(principal(req)?.clone())
}

fn empty(req: &Request) -> bool {
    req.body().as_ref().iter().all(u8::is_ascii_whitespace)
}

fn status_display(status: &str) -> String {
    let mut c = status.chars();
    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
}

// --------------------------------------------------------------------- views

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Summary {
    id: String,
    name: String,
    device_id: String,
    location: String,
    is_online: bool,
    battery_level: i64,
    lock_status: String,
    firmware_version: String,
    last_activity: Option<String>,
    created_at: String,
}

impl From<&Lock> for Summary {
    fn from(l: &Lock) -> Self {
        Summary {
            id: l.device_id.clone(),
            name: l.name.clone(),
            device_id: l.device_id.clone(),
            location: l.location.clone(),
            is_online: l.is_online,
            battery_level: l.battery_level,
            lock_status: l.lock_status.clone(),
            firmware_version: l.firmware_version.clone(),
            last_activity: l.last_activity.map(iso),
            created_at: iso(l.created_at),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Owner {
    id: String,
    email: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Detail {
    id: String,
    name: String,
    device_id: String,
    owner: Owner,
    owner_name: String,
    location: String,
    is_online: bool,
    battery_level: i64,
    lock_status: String,
    status_display: String,
    signal_strength: Option<i64>,
    firmware_version: String,
    settings: LockSettings,
    last_seen: Option<String>,
    last_activity: Option<String>,
    created_at: String,
    updated_at: String,
    /// Only in the answer to create and rotate-keys: the device's credentials, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    credentials: Option<Credentials>,
}

/// The detail view: the lock and its owner (one more get).
async fn detail(app: &App, lock: &Lock, credentials: Option<Credentials>) -> http::Result<Detail> {
    let owner = get_user(app, &lock.owner_id).await?;
    let owner_name =
        owner.as_ref().map(|u| format!("{} {}", u.first_name, u.last_name).trim().to_string()).unwrap_or_default();
    Ok(Detail {
        id: lock.device_id.clone(),
        name: lock.name.clone(),
        device_id: lock.device_id.clone(),
        owner: Owner { id: lock.owner_id.clone(), email: owner.and_then(|u| u.email) },
        owner_name,
        location: lock.location.clone(),
        is_online: lock.is_online,
        battery_level: lock.battery_level,
        lock_status: lock.lock_status.clone(),
        status_display: status_display(&lock.lock_status),
        signal_strength: lock.signal_strength,
        firmware_version: lock.firmware_version.clone(),
        settings: lock.settings.clone(),
        last_seen: lock.last_seen.map(iso),
        last_activity: lock.last_activity.map(iso),
        created_at: iso(lock.created_at),
        updated_at: iso(lock.updated_at),
        credentials,
    })
}

// ------------------------------------------------------------------ registry

/// An entry of the directory of every lock (`keys::directory`): its sort key is the device id.
#[derive(Debug, Deserialize)]
struct DirectoryEntry {
    #[serde(rename = "SK")]
    device_id: String,
}

pub const DEVICES_LIST: Function =
    Function::http("devices-list", "GET", "/api/v1/devices/", "The caller's locks (SmartLock)", |app, req| {
        Box::pin(list(app, req))
    })
    .auth(Auth::USER)
    .doc(|| {
        Op::new()
            .describe("The caller's locks (every lock for an admin), newest first.")
            .page(numbered_page_of::<Summary>)
    })
    .uses(&[Uses::TableRead]);

/// `GET /api/v1/devices/`: the caller's locks (every lock for an admin), newest first, in the seed's
/// page `{count, next, previous, total_pages, current_page, results}`. Owner: one GSI1 query; admin:
/// the directory query, then the locks in parallel.
pub async fn list(app: &'static App, req: Request) -> http::Result<Response> {
    let page = Page::from_query(&req, PAGE_SIZE, MAX_PAGE_SIZE)?;
    let caller = caller(&req)?;
    let mut locks: Vec<Lock> = if caller.role == "admin" {
        let directory: Vec<DirectoryEntry> = app.store.query_all(Query::partition(keys::DIRECTORY_PK)).await?;
        let locks =
            futures::future::try_join_all(directory.iter().map(|d| service::get_lock(app, &d.device_id))).await?;
        locks.into_iter().flatten().collect()
    } else {
        app.store.query_all(Query::partition(keys::owner_locks_gsi1pk(&caller.user_id)).index(Index::Gsi1)).await?
    };
    locks.sort_by(|a, b| (b.created_at, &b.device_id).cmp(&(a.created_at, &a.device_id)));
    page::respond_numbered(&req, locks.iter().map(Summary::from).collect(), page)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct NewLockBody {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[schema(pattern = "^[A-Za-z0-9]{12,20}$", example = "DEF789GHI012")]
    device_id: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    firmware_version: String,
}

fn check_text(field: &'static str, value: &str, max: usize, required: bool) -> http::Result<String> {
    let value = value.trim();
    if (required && value.is_empty()) || value.chars().count() > max {
        let what = if required {
            format!("{field} is required, at most {max} characters.")
        } else {
            format!("{field} is at most {max} characters.")
        };
        return Err(ApiError::invalid_field(field, "invalid", what));
    }
    Ok(value.to_string())
}

pub const DEVICES_CREATE: Function = Function::http(
    "devices-create",
    "POST",
    "/api/v1/devices/",
    "Register a lock and provision its credentials (SmartLock)",
    |app, req| Box::pin(create(app, req)),
)
.auth(Auth::FRESH_USER)
.doc(|| {
    Op::new()
        .describe("Registers a lock and provisions its thing; the credentials are in this answer only.")
        .json(schema_of::<NewLockBody>)
        .example(json!({"name": "Back Door", "device_id": "DEF789GHI012", "location": "Home - Back Entrance"}))
        .reply(201, "The lock with its credentials", schema_of::<Detail>)
        .errors(&[503])
})
.uses(&[Uses::TableWrite, Uses::Provision]);

/// `POST /api/v1/devices/` `{name, device_id, location?, firmware_version?}` → 201 with the lock and,
/// once, its `credentials`. `device_id` is 12–20 letters/digits and unique, else 400.
pub async fn create(app: &'static App, req: Request) -> http::Result<Response> {
    let body: NewLockBody = json_body(&req)?;
    let caller = caller(&req)?;
    let device_id = body.device_id.trim().to_string();
    if !valid_device_id(&device_id) {
        return Err(ApiError::invalid_field("device_id", "invalid", "device_id must be 12 to 20 letters or digits."));
    }
    let new = NewLock {
        device_id,
        name: check_text("name", &body.name, 200, true)?,
        location: check_text("location", &body.location, 500, false)?,
        firmware_version: check_text("firmware_version", &body.firmware_version, 32, false)?,
    };
    let (lock, credentials) = service::register(app, &caller.user_id, new).await?;
    Ok(json_response(StatusCode::CREATED, &detail(app, &lock, Some(credentials)).await?))
}

pub const DEVICES_GET: Function = Function::http(
    "devices-get",
    "GET",
    "/api/v1/devices/{id}/",
    "A lock with its settings (SmartLock)",
    |app, req| Box::pin(retrieve(app, req)),
)
.auth(Auth::USER)
.doc(|| Op::new().reply(200, "The lock", schema_of::<Detail>))
.uses(&[Uses::TableRead]);

/// `GET /api/v1/devices/{id}/`: the lock with `settings`, `owner_name`, `status_display`, `last_activity`.
/// Two gets (lock, owner).
pub async fn retrieve(app: &'static App, req: Request) -> http::Result<Response> {
    let lock = visible_lock(app, &caller(&req)?, path_param(&req, "id")?).await?;
    http::ok(&detail(app, &lock, None).await?)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
/// Read-only fields clients echo back are accepted and ignored.
pub(crate) struct LockChanges {
    name: Option<String>,
    location: Option<String>,
    firmware_version: Option<String>,
}

pub const DEVICES_UPDATE: Function = Function::http(
    "devices-update",
    "PUT",
    "/api/v1/devices/{id}/",
    "Rename or move a lock (SmartLock)",
    |app, req| Box::pin(update(app, req)),
)
.auth(Auth::FRESH_USER)
.doc(|| {
    Op::new()
        .json(schema_of::<LockChanges>)
        .example(json!({"name": "Front Door", "location": "Home - Main Entrance"}))
        .reply(200, "The lock", schema_of::<Detail>)
})
.uses(&[Uses::TableWrite]);

pub const DEVICES_PATCH: Function = Function::http(
    "devices-patch",
    "PATCH",
    "/api/v1/devices/{id}/",
    "Change some of a lock's fields (SmartLock)",
    |app, req| Box::pin(update(app, req)),
)
.auth(Auth::FRESH_USER)
.doc(|| {
    Op::new().json(schema_of::<LockChanges>).example(json!({"name": "Front Door"})).reply(
        200,
        "The lock",
        schema_of::<Detail>,
    )
})
.uses(&[Uses::TableWrite]);

/// `PUT`/`PATCH /api/v1/devices/{id}/` `{name?, location?, firmware_version?}` → 200 the lock. One get,
/// one conditional update.
pub async fn update(app: &'static App, req: Request) -> http::Result<Response> {
    let lock = visible_lock(app, &caller(&req)?, path_param(&req, "id")?).await?;
    let body: LockChanges = json_body(&req)?;
    let mut update = Update::new().set("updated_at", n(app.clock.now_secs()));
    if let Some(name) = &body.name {
        update = update.set("name", s(check_text("name", name, 200, true)?));
    }
    if let Some(location) = &body.location {
        update = update.set("location", s(check_text("location", location, 500, false)?));
    }
    if let Some(version) = &body.firmware_version {
        update = update.set("firmware_version", s(check_text("firmware_version", version, 32, false)?));
    }
    let item = app
        .store
        .update(&keys::lock(&lock.device_id), update, Some(Cond::item_exists()))
        .await
        .map_err(|e| if e.is_condition_failed() { service::not_found() } else { e.into() })?;
    let lock: Lock = store::from_item(item)?;
    http::ok(&detail(app, &lock, None).await?)
}

pub const DEVICES_DELETE: Function = Function::http(
    "devices-delete",
    "DELETE",
    "/api/v1/devices/{id}/",
    "Unlock a lock one last time and remove it (SmartLock)",
    |app, req| Box::pin(delete(app, req)),
)
.auth(Auth::FRESH_USER)
.doc(|| {
    Op::new()
        .describe("Publishes a final unlock command, revokes the lock's credentials and removes it.")
        .empty(204, "Removed")
        .errors(&[503])
})
.uses(&[Uses::TableWrite, Uses::Publish("smartlock"), Uses::Provision]);

/// `DELETE /api/v1/devices/{id}/` → 204, after the final unlock command was published.
pub async fn delete(app: &'static App, req: Request) -> http::Result<Response> {
    let lock = visible_lock(app, &caller(&req)?, path_param(&req, "id")?).await?;
    service::remove(app, &lock).await?;
    Ok(no_content())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Rotated {
    device_id: String,
    credentials: Credentials,
}

pub const DEVICES_ROTATE_KEYS: Function = Function::http(
    "devices-rotate-keys",
    "POST",
    "/api/v1/devices/{id}/rotate-keys/",
    "New device credentials; the old ones stop working (SmartLock)",
    |app, req| Box::pin(rotate_keys(app, req)),
)
.auth(Auth::FRESH_USER)
.doc(|| Op::new().reply(200, "New credentials; the old ones stop working", schema_of::<Rotated>).errors(&[503]))
.uses(&[Uses::TableWrite, Uses::Provision]);

/// `POST /api/v1/devices/{id}/rotate-keys/` → 200 `{device_id, credentials}`: new credentials; the old
/// ones stop working.
pub async fn rotate_keys(app: &'static App, req: Request) -> http::Result<Response> {
    let lock = visible_lock(app, &caller(&req)?, path_param(&req, "id")?).await?;
    let credentials = app.devices.provision(&lock.device_id).await.map_err(|e| {
        let mut err =
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "device_gateway_unavailable", "Provisioning failed; retry.");
        err.source = Some(e.into());
        err
    })?;
    http::ok(&Rotated { device_id: lock.device_id, credentials })
}

// ------------------------------------------------------------------ commands

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct CommandBody {
    #[serde(default)]
    pin_code: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CommandSent {
    status: String,
    device_id: String,
    timestamp: String,
    request_id: String,
    device_online: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'static str>,
}

async fn command(app: &'static App, req: Request, action: Action) -> http::Result<Response> {
    let caller = caller(&req)?;
    let lock = visible_lock(app, &caller, path_param(&req, "id")?).await?;
    let body: CommandBody = if empty(&req) { CommandBody::default() } else { json_body(&req)? };
    let pin = body.pin_code.map(|p| p.trim().to_string()).filter(|p| !p.is_empty());
    if let Some(pin) = &pin
        && !((4..=8).contains(&pin.len()) && pin.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(ApiError::invalid_field("pin_code", "invalid", "pin_code must be 4 to 8 digits."));
    }
    let user = get_user(app, &caller.user_id).await?;
    let name = user
        .map(|u| format!("{} {}", u.first_name, u.last_name).trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| caller.user_id.clone());
    let sent = service::send_command(app, &lock, action, pin, (&caller.user_id, name), source_ip(&req)).await?;
    http::ok(&CommandSent {
        status: format!("{} command sent", action.as_str()),
        device_id: lock.device_id,
        timestamp: iso(sent.timestamp),
        request_id: sent.request_id,
        device_online: sent.online,
        detail: (!sent.online).then_some("The device is offline; the command was sent and applies when it reconnects."),
    })
}

pub const DEVICES_LOCK: Function = Function::http(
    "devices-lock",
    "POST",
    "/api/v1/devices/{id}/lock/",
    "Send a lock command (SmartLock)",
    |app, req| Box::pin(lock(app, req)),
)
.auth(Auth::FRESH_USER)
.doc(lock_command_doc)
.uses(&[Uses::TableWrite, Uses::Publish("smartlock"), Uses::Shadow]);

/// `POST /api/v1/devices/{id}/lock/` `{pin_code?}` → 200 `{status: "lock command sent", device_id, timestamp,
/// request_id, device_online}`. Two gets (lock, caller), one transaction, one publish, one shadow update.
pub async fn lock(app: &'static App, req: Request) -> http::Result<Response> {
    command(app, req, Action::Lock).await
}

pub const DEVICES_UNLOCK: Function = Function::http(
    "devices-unlock",
    "POST",
    "/api/v1/devices/{id}/unlock/",
    "Send an unlock command (SmartLock)",
    |app, req| Box::pin(unlock(app, req)),
)
.auth(Auth::FRESH_USER)
.doc(lock_command_doc)
.uses(&[Uses::TableWrite, Uses::Publish("smartlock"), Uses::Shadow]);

/// `POST /api/v1/devices/{id}/unlock/`, as lock.
pub async fn unlock(app: &'static App, req: Request) -> http::Result<Response> {
    command(app, req, Action::Unlock).await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Status {
    device_id: String,
    is_online: bool,
    battery_level: i64,
    lock_status: String,
    last_seen: Option<String>,
    signal_strength: Option<i64>,
}

pub const DEVICES_STATUS: Function = Function::http(
    "devices-status",
    "GET",
    "/api/v1/devices/{id}/status/",
    "A lock's live status (SmartLock)",
    |app, req| Box::pin(status(app, req)),
)
.auth(Auth::USER)
.doc(|| Op::new().reply(200, "The lock's live status", schema_of::<Status>))
.uses(&[Uses::TableRead]);

/// `GET /api/v1/devices/{id}/status/`. One get.
pub async fn status(app: &'static App, req: Request) -> http::Result<Response> {
    let l = visible_lock(app, &caller(&req)?, path_param(&req, "id")?).await?;
    http::ok(&Status {
        device_id: l.device_id,
        is_online: l.is_online,
        battery_level: l.battery_level,
        lock_status: l.lock_status,
        last_seen: l.last_seen.map(iso),
        signal_strength: l.signal_strength,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Reading {
    level: i64,
    timestamp: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Battery {
    device_id: String,
    battery_level: i64,
    is_low: bool,
    history: Vec<Reading>,
}

pub const DEVICES_BATTERY: Function = Function::http(
    "devices-battery",
    "GET",
    "/api/v1/devices/{id}/battery/",
    "A lock's battery level and history (SmartLock)",
    |app, req| Box::pin(battery(app, req)),
)
.auth(Auth::USER)
.doc(|| Op::new().reply(200, "Battery level and the latest readings", schema_of::<Battery>))
.uses(&[Uses::TableRead]);

/// `GET /api/v1/devices/{id}/battery/`: the level and the last 100 readings, newest first. One get, one query.
pub async fn battery(app: &'static App, req: Request) -> http::Result<Response> {
    let l = visible_lock(app, &caller(&req)?, path_param(&req, "id")?).await?;
    let query = Query::partition(keys::lock_pk(&l.device_id))
        .sk(SkCond::BeginsWith(keys::BATTERY_PREFIX.into()))
        .descending()
        .limit(BATTERY_HISTORY);
    let page = app.store.query(query).await?;
    let history = page
        .items
        .into_iter()
        .map(store::from_item::<BatteryReading>)
        .collect::<Result<Vec<_>, StoreError>>()?
        .into_iter()
        .map(|r| Reading { level: r.level, timestamp: iso(r.at) })
        .collect();
    http::ok(&Battery { device_id: l.device_id, battery_level: l.battery_level, is_low: l.battery_low, history })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct LogView {
    id: String,
    device: String,
    user: String,
    access_method: String,
    action: Action,
    status: String,
    success: Option<bool>,
    failure_reason: Option<String>,
    timestamp: String,
    completed_at: Option<String>,
    ip_address: Option<String>,
}

pub const DEVICES_LOGS: Function = Function::http(
    "devices-logs",
    "GET",
    "/api/v1/devices/{id}/logs/",
    "A lock's access log (SmartLock)",
    |app, req| Box::pin(logs(app, req)),
)
.auth(Auth::USER)
.doc(|| Op::new().store_page(page_of::<LogView>))
.uses(&[Uses::TableRead]);

/// `GET /api/v1/devices/{id}/logs/`: the lock's access log, newest first, paged in the store:
/// `{count, next, previous, results}` with `count` the lock's `log_count` and `next`/`previous`
/// carrying cursors (`?page=N` alone works for the first 1,000 entries). One get, one query of at
/// most `page_size + 1` entries (of `N × page_size + 1` for `?page=N`).
pub async fn logs(app: &'static App, req: Request) -> http::Result<Response> {
    let keyset = Keyset::from_query(&req, PAGE_SIZE, MAX_PAGE_SIZE)?;
    let l = visible_lock(app, &caller(&req)?, path_param(&req, "id")?).await?;
    let query =
        Query::partition(keys::lock_pk(&l.device_id)).sk(SkCond::BeginsWith(keys::LOG_PREFIX.into())).descending();
    let count = usize::try_from(l.log_count).unwrap_or_default();
    let entries: page::Paginated<AccessLogEntry> =
        page::from_store(&app.store, &req, vec![query], &keyset, Some(count)).await?;
    http::ok(&entries.map(|e| LogView {
        id: e.request_id,
        device: e.device_id,
        user: e.user,
        access_method: e.access_method,
        action: e.action,
        status: e.status,
        success: e.success,
        failure_reason: e.failure_reason,
        timestamp: iso(e.timestamp_millis.div_euclid(1000)),
        completed_at: e.completed_at.map(iso),
        ip_address: e.ip_address,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SettingsView {
    id: String,
    device: String,
    #[serde(flatten)]
    settings: LockSettings,
}

pub const DEVICES_SETTINGS_GET: Function = Function::http(
    "devices-settings-get",
    "GET",
    "/api/v1/devices/{id}/settings/",
    "A lock's settings (SmartLock)",
    |app, req| Box::pin(settings_get(app, req)),
)
.auth(Auth::USER)
.doc(|| Op::new().reply(200, "The settings", schema_of::<SettingsView>))
.uses(&[Uses::TableRead]);

/// `GET /api/v1/devices/{id}/settings/`. One get.
pub async fn settings_get(app: &'static App, req: Request) -> http::Result<Response> {
    let l = visible_lock(app, &caller(&req)?, path_param(&req, "id")?).await?;
    http::ok(&SettingsView { id: l.device_id.clone(), device: l.device_id, settings: l.settings })
}

/// Read-only fields clients echo back (`id`, `device`) are accepted and ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct SettingsChanges {
    auto_lock_enabled: Option<bool>,
    auto_lock_delay: Option<i64>,
    silent_mode: Option<bool>,
    led_enabled: Option<bool>,
    notifications_enabled: Option<bool>,
}

pub const DEVICES_SETTINGS_PUT: Function = Function::http(
    "devices-settings-put",
    "PUT",
    "/api/v1/devices/{id}/settings/",
    "Change a lock's settings (SmartLock)",
    |app, req| Box::pin(settings_put(app, req)),
)
.auth(Auth::FRESH_USER)
.doc(|| {
    Op::new()
        .json(schema_of::<SettingsChanges>)
        .example(json!({"auto_lock_enabled": true, "auto_lock_delay": 60, "notifications_enabled": false}))
        .reply(200, "The settings", schema_of::<SettingsView>)
})
.uses(&[Uses::TableWrite]);

/// `PUT /api/v1/devices/{id}/settings/` (any subset) → 200 the settings. One get, one conditional update.
pub async fn settings_put(app: &'static App, req: Request) -> http::Result<Response> {
    let l = visible_lock(app, &caller(&req)?, path_param(&req, "id")?).await?;
    let c: SettingsChanges = json_body(&req)?;
    let mut settings = l.settings.clone();
    if let Some(delay) = c.auto_lock_delay {
        if !(5..=3600).contains(&delay) {
            return Err(ApiError::invalid_field("auto_lock_delay", "invalid", "auto_lock_delay is 5 to 3600 seconds."));
        }
        settings.auto_lock_delay = delay;
    }
    settings.auto_lock_enabled = c.auto_lock_enabled.unwrap_or(settings.auto_lock_enabled);
    settings.silent_mode = c.silent_mode.unwrap_or(settings.silent_mode);
    settings.led_enabled = c.led_enabled.unwrap_or(settings.led_enabled);
    settings.notifications_enabled = c.notifications_enabled.unwrap_or(settings.notifications_enabled);
    let value = serde_dynamo::to_attribute_value(&settings).map_err(ApiError::internal)?;
    let update = Update::new().set("settings", value).set("updated_at", n(app.clock.now_secs()));
    app.store
        .update(&keys::lock(&l.device_id), update, Some(Cond::item_exists()))
        .await
        .map_err(|e| if e.is_condition_failed() { service::not_found() } else { e.into() })?;
    http::ok(&SettingsView { id: l.device_id.clone(), device: l.device_id, settings })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct FirmwareBody {
    firmware_url: String,
    version: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FirmwareSent {
    status: &'static str,
    device_id: String,
    version: String,
    request_id: String,
    timestamp: String,
}

pub const DEVICES_FIRMWARE: Function = Function::http(
    "devices-firmware",
    "POST",
    "/api/v1/devices/{id}/firmware/",
    "Send a firmware update to a lock (SmartLock)",
    |app, req| Box::pin(firmware(app, req)),
)
.auth(Auth::FRESH_USER)
.doc(|| {
    Op::new()
        .json(schema_of::<FirmwareBody>)
        .example(json!({"firmware_url": "https://fw.example.com/lock-1.3.0.bin", "version": "1.3.0"}))
        .reply(200, "Sent on the lock's ota topic", schema_of::<FirmwareSent>)
        .errors(&[503])
})
.uses(&[Uses::TableWrite, Uses::Publish("smartlock")]);

/// `POST /api/v1/devices/{id}/firmware/` `{firmware_url, version}` → 200; publishes
/// `{firmware_url, version, request_id, timestamp}` on `smartlock/{device_id}/ota`. One get, one publish.
pub async fn firmware(app: &'static App, req: Request) -> http::Result<Response> {
    let l = visible_lock(app, &caller(&req)?, path_param(&req, "id")?).await?;
    let body: FirmwareBody = json_body(&req)?;
    let url = body.firmware_url.trim();
    // A lock installs what it downloads: only over TLS, from a named host.
    let host = url.strip_prefix("https://").map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    if host.is_none_or(|h| h.is_empty() || h.starts_with(':') || h.contains('@'))
        || url.len() > MAX_FIRMWARE_URL_LEN
        || url.contains(|c: char| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::invalid_field(
            "firmware_url",
            "invalid",
            format!("firmware_url must be an https:// URL with a host, at most {MAX_FIRMWARE_URL_LEN} characters."),
        ));
    }
    let version = check_text("version", &body.version, 32, true)?;
    let now = app.clock.now_secs();
    let request_id = uuid::Uuid::new_v4().to_string();
    let message = json!({"firmware_url": url, "version": version, "request_id": request_id, "timestamp": iso(now)});
    app.devices.publish(&format!("smartlock/{}/ota", l.device_id), message.to_string().as_bytes()).await.map_err(
        |e| {
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "device_gateway_unavailable",
                "The update was not sent; retry.",
            );
            err.source = Some(e.into());
            err
        },
    )?;
    http::ok(&FirmwareSent {
        status: "firmware update sent",
        device_id: l.device_id,
        version,
        request_id,
        timestamp: iso(now),
    })
}

fn lock_command_doc() -> Op {
    Op::new()
        .describe("Publishes the command on the lock's command topic; the lock's response completes its log entry.")
        .body(Body {
            required: false,
            content: vec![("application/json", schema_of::<CommandBody>)],
            example: Some(json!({"pin_code": "123456"})),
        })
        .reply(200, "The command was sent", schema_of::<CommandSent>)
        .errors(&[503])
}
