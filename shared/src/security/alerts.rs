//! Security alerts (the seed's SecurityAlert): raised by the locks module,
//! listed and resolved by their owners (admins see every alert).
//!
//! `GET /api/v1/security/alerts/`, `GET /api/v1/security/alerts/unresolved/`,
//! `POST /api/v1/security/alerts/{id}/resolve/` `{notes}`.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::App;
use crate::identity::service::get_user;
use crate::notifications::{self, Channel, Notification, Recipient};
use crate::platform::clock::{UtcDateTime, new_id};
use crate::platform::doc::{Body, Op, page_of, schema_of};
use crate::platform::function::{Auth, Function, Uses};
use crate::platform::http::auth::principal;
use crate::platform::http::page::{self, Keyset};
use crate::platform::http::{self, ApiError, Request, Response, json_body};
use crate::platform::id::{bounded_text, path_id};
use crate::platform::store::{self, Cond, Index, Item, Query, StoreError, Update, Write, n, s};

const PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;
/// Longest resolution note kept.
pub const MAX_NOTES_CHARS: usize = 2000;

crate::bounded_id!(
    /// An alert's id (a UUIDv7).
    pub AlertId, max = 64
);

/// An alert: `ALERT#<id>` / `ALERT`; GSI1 `ALERTS#<owner>` / `<created ms>#<id>` (the owner's),
/// GSI2 `ALERTS` / the same (every alert, for admins).
fn key(id: &str) -> store::Key {
    store::Key::new(format!("ALERT#{id}"), "ALERT")
}

fn owner_gsi1pk(owner: &str) -> String {
    format!("ALERTS#{owner}")
}

const ALL_GSI2PK: &str = "ALERTS";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertType {
    LowBattery,
    DeviceJammed,
    Offline,
}

impl AlertType {
    fn severity(self) -> &'static str {
        match self {
            AlertType::LowBattery => "medium",
            AlertType::DeviceJammed => "high",
            AlertType::Offline => "low",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            AlertType::LowBattery => "low_battery",
            AlertType::DeviceJammed => "device_jammed",
            AlertType::Offline => "offline",
        }
    }
}

/// The alert as stored. Times are epoch seconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub owner_id: String,
    pub device_id: String,
    pub device_name: String,
    pub alert_type: AlertType,
    pub severity: String,
    pub description: String,
    pub is_resolved: bool,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// The device an alert is about.
pub struct AlertDevice<'a> {
    pub device_id: &'a str,
    pub name: &'a str,
    pub owner_id: &'a str,
}

/// Records an alert and tells the owner: [`prepare`], one put, then [`announce`].
pub async fn raise(
    app: &App,
    device: AlertDevice<'_>,
    alert_type: AlertType,
    description: String,
) -> anyhow::Result<Alert> {
    let (alert, item) = new_alert(app, device, alert_type, description)?;
    app.store.put(item, Some(Cond::item_absent())).await?;
    announce(app, &alert).await?;
    Ok(alert)
}

/// A new alert and the write that records it, for the caller to put in the same transaction as
/// the state change that raised it (so a status the owner can see never lacks its alert).
pub fn prepare(
    app: &App,
    device: AlertDevice<'_>,
    alert_type: AlertType,
    description: String,
) -> Result<(Alert, Write), StoreError> {
    let (alert, item) = new_alert(app, device, alert_type, description)?;
    Ok((alert, Write::Put { item, cond: Some(Cond::item_absent()) }))
}

fn new_alert(
    app: &App,
    device: AlertDevice<'_>,
    alert_type: AlertType,
    description: String,
) -> Result<(Alert, Item), StoreError> {
    let alert = Alert {
        id: new_id(),
        owner_id: device.owner_id.to_string(),
        device_id: device.device_id.to_string(),
        device_name: device.name.to_string(),
        alert_type,
        severity: alert_type.severity().to_string(),
        description,
        is_resolved: false,
        created_at: app.clock.now_secs(),
        resolved_at: None,
        resolved_by: None,
        notes: None,
    };
    let item = alert_item(&alert, app.clock.now_millis())?;
    Ok((alert, item))
}

/// Tells the owner of a recorded alert (inbox and email; the alert id is the notification id, so
/// a redelivered notification reaches them once). One queue send.
pub async fn announce(app: &App, alert: &Alert) -> anyhow::Result<()> {
    let notification = Notification {
        id: alert.id.clone(),
        recipient: Recipient::User(alert.owner_id.clone()),
        kind: alert.alert_type.as_str().to_string(),
        title: format!("{}: {}", alert.device_name, alert.alert_type.as_str().replace('_', " ")),
        body: alert.description.clone(),
        data: json!({"alert_id": alert.id, "device_id": alert.device_id, "severity": alert.severity}),
        channels: vec![Channel::Inbox, Channel::Email],
        sealed_secret: None,
    };
    notifications::enqueue(app, &notification).await?;
    tracing::info!(alert = %alert.id, device_id = %alert.device_id, alert_type = alert.alert_type.as_str(), "security alert raised");
    Ok(())
}

fn alert_item(alert: &Alert, created_millis: i64) -> Result<Item, StoreError> {
    let mut item = store::to_item(alert)?;
    let k = key(&alert.id);
    let sk = format!("{created_millis:013}#{}", alert.id);
    item.insert(store::TABLE.pk.into(), s(k.pk));
    item.insert(store::TABLE.sk.into(), s(k.sk));
    item.insert("type".into(), s("security_alert"));
    item.insert("GSI1PK".into(), s(owner_gsi1pk(&alert.owner_id)));
    item.insert("GSI1SK".into(), s(sk.clone()));
    item.insert("GSI2PK".into(), s(ALL_GSI2PK));
    item.insert("GSI2SK".into(), s(sk));
    Ok(item)
}

fn iso(secs: i64) -> String {
    UtcDateTime::from_epoch_secs(secs).rfc3339()
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeviceRef {
    id: String,
    name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AlertView {
    id: String,
    device: DeviceRef,
    alert_type: AlertType,
    severity: String,
    description: String,
    is_resolved: bool,
    created_at: String,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
    notes: Option<String>,
}

impl From<Alert> for AlertView {
    fn from(a: Alert) -> Self {
        AlertView {
            id: a.id,
            device: DeviceRef { id: a.device_id, name: a.device_name },
            alert_type: a.alert_type,
            severity: a.severity,
            description: a.description,
            is_resolved: a.is_resolved,
            created_at: iso(a.created_at),
            resolved_at: a.resolved_at.map(iso),
            resolved_by: a.resolved_by,
            notes: a.notes,
        }
    }
}

/// The caller's alerts (every alert for an admin), newest first: one index partition.
fn visible(req: &Request) -> http::Result<Query> {
    let caller = principal(req)?;
    let query = if caller.role == "admin" {
        Query::partition(ALL_GSI2PK).index(Index::Gsi2)
    } else {
        Query::partition(owner_gsi1pk(&caller.user_id)).index(Index::Gsi1)
    };
    Ok(query.descending())
}

/// One page of `query`'s alerts, paged in the store: `{count, next, previous, results}`.
async fn respond(app: &App, req: &Request, query: Query) -> http::Result<Response> {
    let keyset = Keyset::from_query(req, PAGE_SIZE, MAX_PAGE_SIZE)?;
    let alerts = page::from_store::<Alert>(&app.store, req, vec![query], &keyset, None).await?;
    http::ok(&alerts.map(AlertView::from))
}

pub const SECURITY_ALERTS_LIST: Function = Function::http(
    "security-alerts-list",
    "GET",
    "/api/v1/security/alerts/",
    "The caller's security alerts (SmartLock)",
    |app, req| Box::pin(list(app, req)),
)
.auth(Auth::USER)
.doc(|| Op::new().store_page(page_of::<AlertView>))
.uses(&[Uses::TableRead]);

/// `GET /api/v1/security/alerts/`: paged in the store. One index query of at most `page_size + 1`
/// alerts, and a count query unless the first page holds them all.
pub async fn list(app: &'static App, req: Request) -> http::Result<Response> {
    let query = visible(&req)?;
    respond(app, &req, query).await
}

pub const SECURITY_ALERTS_UNRESOLVED: Function = Function::http(
    "security-alerts-unresolved",
    "GET",
    "/api/v1/security/alerts/unresolved/",
    "The caller's unresolved security alerts (SmartLock)",
    |app, req| Box::pin(unresolved(app, req)),
)
.auth(Auth::USER)
.doc(|| Op::new().store_page(page_of::<AlertView>))
.uses(&[Uses::TableRead]);

/// `GET /api/v1/security/alerts/unresolved/`: the unresolved ones, paged in the store (the index
/// query filtered on `is_resolved`, so resolved alerts are read and skipped there).
pub async fn unresolved(app: &'static App, req: Request) -> http::Result<Response> {
    let query = visible(&req)?.filter(Cond::eq("is_resolved", store::Value::Bool(false)));
    respond(app, &req, query).await
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct ResolveBody {
    #[serde(default)]
    notes: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Resolved {
    id: String,
    status: &'static str,
    resolved_by: String,
    resolved_at: String,
}

fn not_found() -> ApiError {
    ApiError::not_found("alert_not_found", "No such alert.")
}

pub const SECURITY_ALERTS_RESOLVE: Function = Function::http(
    "security-alerts-resolve",
    "POST",
    "/api/v1/security/alerts/{id}/resolve/",
    "Resolve a security alert (SmartLock)",
    |app, req| Box::pin(resolve(app, req)),
)
.auth(Auth::USER)
.doc(|| {
    Op::new()
        .body(Body {
            required: false,
            content: vec![("application/json", schema_of::<ResolveBody>)],
            example: Some(json!({"notes": "False alarm - user forgot PIN"})),
        })
        .reply(200, "Resolved", schema_of::<Resolved>)
        .errors(&[409])
})
.uses(&[Uses::TableWrite]);

/// `POST /api/v1/security/alerts/{id}/resolve/` `{notes}` → 200 `{id, status: "resolved", resolved_by,
/// resolved_at}`; someone else's alert is 404, a resolved one 409. Two gets (alert, resolver) and one
/// conditional update.
pub async fn resolve(app: &'static App, req: Request) -> http::Result<Response> {
    let id = path_id::<AlertId>(&req, "id")?.into_string();
    let body: ResolveBody =
        if req.body().as_ref().iter().all(u8::is_ascii_whitespace) { ResolveBody::default() } else { json_body(&req)? };
    let notes = body.notes.trim().to_string();
    bounded_text("notes", &notes, MAX_NOTES_CHARS)?;
    let caller = principal(&req)?.clone();
    let (alert, user) = tokio::try_join!(async { app.store.get(&key(&id)).await.map_err(ApiError::from) }, async {
        get_user(app, &caller.user_id).await.map_err(ApiError::from)
    },)?;
    let alert: Alert = alert.map(store::from_item).transpose()?.ok_or_else(not_found)?;
    if alert.owner_id != caller.user_id && caller.role != "admin" {
        return Err(not_found());
    }
    let resolver = user
        .map(|u| format!("{} {}", u.first_name, u.last_name).trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| caller.user_id.clone());
    let now = app.clock.now_secs();
    let update = Update::new()
        .set("is_resolved", store::Value::Bool(true))
        .set("resolved_at", n(now))
        .set("resolved_by", s(resolver.clone()))
        .set("notes", s(notes));
    match app.store.update(&key(&id), update, Some(Cond::eq("is_resolved", store::Value::Bool(false)))).await {
        Ok(_) => http::ok(&Resolved { id, status: "resolved", resolved_by: resolver, resolved_at: iso(now) }),
        Err(StoreError::ConditionFailed) => {
            Err(ApiError::conflict("alert_already_resolved", "This alert is resolved already."))
        }
        Err(e) => Err(e.into()),
    }
}
