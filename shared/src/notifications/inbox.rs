//! The in-app inbox (seed 004 style): users see only their own notifications.
//! Unread items carry GSI1 keys `UNREAD#<user>`, removed when read, so the
//! unread list and count read only unread items.

use serde::{Deserialize, Serialize};

use crate::App;
use crate::platform::config::Env;
use crate::platform::doc::{Op, QueryParam, boolean_text, page_of, schema_of};
use crate::platform::function::{Auth, Function, Uses};
use crate::platform::http::auth::principal;
use crate::platform::http::page::{self, Keyset};
use crate::platform::http::{self, ApiError, Request, Response, query_param};
use crate::platform::id::path_id;
use crate::platform::store::{self, Cond, Index, Item, Query, SkCond, StoreError, Update, Write, s};

use super::{Notification, keys};

crate::bounded_id!(
    /// A notification's id (a UUIDv7; producers' ids are at most 100 characters).
    pub NotificationId, max = 100
);

/// An inbox item as stored and shown.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InboxItem {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub data: serde_json::Value,
    pub is_read: bool,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<i64>,
}

/// The stored inbox item of a notification for a user, unread.
pub fn item(user_id: &str, n: &Notification, now: i64) -> store::Result<Item> {
    let inbox = InboxItem {
        id: n.id.clone(),
        kind: n.kind.clone(),
        title: n.title.clone(),
        // A sealed secret never reaches the inbox: its place is marked.
        body: super::sealed::redacted(n),
        data: n.data.clone(),
        is_read: false,
        created_at: now,
        read_at: None,
    };
    let mut item = store::to_item(&inbox)?;
    let key = keys::inbox(user_id, &n.id);
    item.insert(store::TABLE.pk.to_string(), s(key.pk));
    item.insert(store::TABLE.sk.to_string(), s(&key.sk));
    item.insert("type".into(), s("inbox_item"));
    item.insert("GSI1PK".into(), s(keys::unread_gsi1pk(user_id)));
    item.insert("GSI1SK".into(), s(key.sk));
    Ok(item)
}

fn unread_query(user_id: &str) -> Query {
    Query::partition(keys::unread_gsi1pk(user_id)).index(Index::Gsi1).descending()
}

pub const NOTIFICATIONS_LIST: Function = Function::http(
    "notifications-list",
    "GET",
    "/api/v1/notifications/",
    "The caller's notifications, newest first",
    |app, req| Box::pin(list(app, req)),
)
.auth(Auth::USER)
.doc(|| {
    Op::new()
        .query(&[QueryParam { name: "unread", description: "Only unread notifications.", schema: boolean_text }])
        .store_page(page_of::<InboxItem>)
})
.uses(&[Uses::TableRead]);

/// `GET /api/v1/notifications/?unread=true&page=&page_size=`: newest first, paged in the store
/// (`?cursor=`/`?before=` in `next`/`previous`). One query of at most `page_size + 1` items, and a
/// count query unless the first page holds them all.
pub async fn list(app: &'static App, req: Request) -> http::Result<Response> {
    let user = principal(&req)?.user_id.clone();
    let keyset = Keyset::from_query(&req, 20, 100)?;
    let unread = match query_param(&req, "unread") {
        None | Some("") | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(ApiError::invalid_field("unread", "invalid", "unread must be true or false.")),
    };
    let query = if unread {
        unread_query(&user)
    } else {
        Query::partition(keys::inbox_pk(&user)).sk(SkCond::BeginsWith(keys::INBOX_PREFIX.into())).descending()
    };
    http::ok(&page::from_store::<InboxItem>(&app.store, &req, vec![query], &keyset, None).await?)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Count {
    count: usize,
}

pub const NOTIFICATIONS_UNREAD_COUNT: Function = Function::http(
    "notifications-unread-count",
    "GET",
    "/api/v1/notifications/unread-count/",
    "How many of the caller's notifications are unread",
    |app, req| Box::pin(unread_count(app, req)),
)
.auth(Auth::USER)
.doc(|| Op::new().reply(200, "Unread notifications", schema_of::<Count>))
.uses(&[Uses::TableRead]);

/// `GET /api/v1/notifications/unread-count/` → `{count}`. One count query of the unread index
/// (one request per 1 MB of unread items; none is returned).
pub async fn unread_count(app: &'static App, req: Request) -> http::Result<Response> {
    let user = principal(&req)?.user_id.clone();
    http::ok(&Count { count: app.store.count(unread_query(&user)).await? })
}

fn mark_read(now: i64) -> Update {
    Update::new()
        .set("is_read", store::Value::Bool(true))
        .set_if_not_exists("read_at", store::n(now))
        .remove("GSI1PK")
        .remove("GSI1SK")
}

pub const NOTIFICATIONS_READ: Function = Function::http(
    "notifications-read",
    "POST",
    "/api/v1/notifications/{id}/read/",
    "Mark one notification read",
    |app, req| Box::pin(read(app, req)),
)
.auth(Auth::USER)
.doc(|| Op::new().reply(200, "The notification, read", schema_of::<InboxItem>))
.uses(&[Uses::TableWrite]);

/// `POST /api/v1/notifications/{id}/read/`: the item, read. Another user's id is 404. One conditional update.
pub async fn read(app: &'static App, req: Request) -> http::Result<Response> {
    let user = principal(&req)?.user_id.clone();
    let id = path_id::<NotificationId>(&req, "id")?;
    let now = app.clock.now_secs();
    match app.store.update(&keys::inbox(&user, &id), mark_read(now), Some(Cond::item_exists())).await {
        Ok(item) => http::ok(&store::from_item::<InboxItem>(item)?),
        Err(StoreError::ConditionFailed) => Err(ApiError::not_found("notification_not_found", "No such notification.")),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Marked {
    marked: usize,
}

pub const NOTIFICATIONS_READ_ALL: Function = Function::http(
    "notifications-read-all",
    "POST",
    "/api/v1/notifications/read-all/",
    "Mark every notification read",
    |app, req| Box::pin(read_all(app, req)),
)
.auth(Auth::USER)
.doc(|| Op::new().reply(200, "How many were marked read", schema_of::<Marked>))
.uses(&[Uses::TableWrite]);

/// `POST /api/v1/notifications/read-all/` → `{marked}`. The unread query, then transactions of up to 100 updates.
pub async fn read_all(app: &'static App, req: Request) -> http::Result<Response> {
    let user = principal(&req)?.user_id.clone();
    let unread = app.store.query_all::<InboxItem>(unread_query(&user)).await?;
    let now = app.clock.now_secs();
    for chunk in unread.chunks(100) {
        let writes = chunk
            .iter()
            .map(|i| Write::Update {
                key: keys::inbox(&user, &i.id),
                update: mark_read(now),
                cond: Some(Cond::item_exists()),
            })
            .collect();
        match app.store.transact(writes).await {
            // An item deleted or read meanwhile: mark the rest one by one.
            Ok(()) => {}
            Err(StoreError::TransactionCanceled { .. } | StoreError::Conflict) => {
                for i in chunk {
                    let _ =
                        app.store.update(&keys::inbox(&user, &i.id), mark_read(now), Some(Cond::item_exists())).await;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    http::ok(&Marked { marked: unread.len() })
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct OutboxEntry {
    channel: String,
    to: String,
    title: String,
    body: String,
    kind: String,
    created_at: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Outbox {
    results: Vec<OutboxEntry>,
}

pub const DEV_OUTBOX: Function = Function::http(
    "dev-outbox",
    "GET",
    "/api/dev/outbox/",
    "What the log providers sent (dev mode only)",
    |app, req| Box::pin(outbox(app, req)),
)
.doc(|| {
    Op::new()
        .describe("What the log providers sent (email, SMS, Telegram), newest first; dev mode only, else 404.")
        .reply(200, "The outbox", schema_of::<Outbox>)
        .errors(&[404])
})
.uses(&[Uses::TableRead]);

/// `GET /api/dev/outbox/` (dev mode only; 404 otherwise): what the `log` providers sent, newest first.
pub async fn outbox(app: &'static App, _req: Request) -> http::Result<Response> {
    if app.config.env != Env::Dev {
        return Err(ApiError::not_found("not_found", "Not found."));
    }
    let mut results = Vec::new();
    let mut cursor = None;
    loop {
        let page = app.store.query(Query::partition(keys::OUTBOX_PK).descending().after(cursor)).await?;
        for item in page.items {
            results.push(store::from_item::<OutboxEntry>(item)?);
        }
        cursor = page.cursor;
        if cursor.is_none() || results.len() >= 500 {
            break;
        }
    }
    http::ok(&Outbox { results })
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct DeliveryView {
    #[serde(default)]
    channel: String,
    status: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    attempts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_at: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Deliveries {
    id: String,
    deliveries: Vec<DeliveryView>,
}

pub const ADMIN_NOTIFICATIONS_GET: Function = Function::http(
    "admin-notifications-get",
    "GET",
    "/api/admin/notifications/{id}/",
    "What became of each channel of a notification (admin)",
    |app, req| Box::pin(deliveries(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| Op::new().reply(200, "Per-channel delivery records", schema_of::<Deliveries>))
.uses(&[Uses::TableRead]);

/// `GET /api/admin/notifications/{id}/` (admin): what became of each channel of a notification. One query.
pub async fn deliveries(app: &'static App, req: Request) -> http::Result<Response> {
    let id = path_id::<NotificationId>(&req, "id")?.into_string();
    let prefix = keys::delivery(&id, "");
    let page = app.store.query(Query::partition(prefix.pk).sk(SkCond::BeginsWith(prefix.sk))).await?;
    let mut deliveries = Vec::new();
    for item in page.items {
        let channel = match item.get(store::TABLE.sk) {
            Some(store::Value::S(sk)) => sk.trim_start_matches("DELIVERY#").to_string(),
            _ => String::new(),
        };
        let mut view: DeliveryView = store::from_item(item)?;
        view.channel = channel;
        deliveries.push(view);
    }
    if deliveries.is_empty() {
        return Err(ApiError::not_found("notification_not_found", "No deliveries of this notification."));
    }
    http::ok(&Deliveries { id, deliveries })
}
