//! RFID tags (Arthexis, seed 002): a tag of 8 hex digits belongs to a user and
//! logs them in at `/accounts/rfid-login/` unless it is blacklisted. Admins
//! assign, unassign, blacklist and unblacklist tags. A tag may be blacklisted
//! before anyone owns it.
//!
//! The login is public, so each source IP may present at most
//! [`MAX_FAILURES_PER_IP`] unknown or refused tags a minute (a slot is reserved
//! before the lookup and given back when the tag logs someone in); the
//! attempt that fills the counter warns in the log and tells every admin in
//! their inbox. The answer names the user and nothing else.

use ::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::App;
use crate::notifications::{self, Channel, Notification, Recipient};
use crate::platform::clock::new_id;
use crate::platform::doc::{Op, schema_of};
use crate::platform::function::{Auth, Function, Uses};
use crate::platform::http::{self, ApiError, Request, Response, json_body, json_response, path_param};
use crate::platform::store::{self, Cond, StoreError, Update, n, s};

use super::keys;
use super::service;
use super::types::{Role, UserId};

/// Unknown, unassigned, blacklisted or inactive-owner tags one source IP may present per minute;
/// the next attempt (any tag) is 429 until the minute ends.
pub const MAX_FAILURES_PER_IP: i64 = 20;

/// The tag item (`keys::rfid`).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tag {
    pub rfid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default)]
    pub blacklisted: bool,
    pub updated_at: i64,
}

/// The tag uppercased, or 400 when it is not exactly 8 hex digits.
pub fn normalize(tag: &str) -> http::Result<String> {
    let tag = tag.trim();
    if tag.len() == 8 && tag.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(tag.to_ascii_uppercase())
    } else {
        Err(ApiError::invalid_field("rfid", "invalid_rfid", "An RFID tag is exactly 8 hexadecimal digits."))
    }
}

async fn get_tag(app: &App, tag: &str) -> http::Result<Option<Tag>> {
    match app.store.get(&keys::rfid(tag)).await? {
        Some(item) => Ok(Some(store::from_item(item)?)),
        None => Ok(None),
    }
}

fn rejected() -> ApiError {
    ApiError::unauthorized("invalid_rfid", "Unknown or blocked RFID tag.")
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct RfidBody {
    #[schema(pattern = "^[0-9A-Fa-f]{8}$", example = "A1B2C3D4")]
    rfid: String,
}

/// What a reader needs to know of a tag's owner: that the tag logs someone in, who (the id), and a
/// name to greet them with. Never the email, phone or role.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RfidLogin {
    authenticated: bool,
    id: String,
    name: String,
}

pub const RFID_LOGIN: Function =
    Function::http("rfid-login", "POST", "/accounts/rfid-login/", "The user of an RFID tag (Arthexis)", |app, req| {
        Box::pin(login(app, req))
    })
    .doc(|| {
        Op::new()
            .json(schema_of::<RfidBody>)
            .example(json!({"rfid": "A1B2C3D4"}))
            .describe("At most 20 refused tags a minute from one address (then 429 with `Retry-After`, any tag).")
            .reply(200, "Who the tag logs in", schema_of::<RfidLogin>)
            .errors(&[401, 429])
    })
    .uses(&[Uses::TableRead]);

/// `POST /accounts/rfid-login/` `{"rfid"}`: `{authenticated, id, name}` of the tag's owner; 401 for unknown or
/// blacklisted tags, 400 for a malformed one, 429 with `Retry-After` once the source IP presented
/// [`MAX_FAILURES_PER_IP`] refused tags this minute. Round trips: one counter update, two gets (tag, user), and
/// one counter update on success.
pub async fn login(app: &'static App, req: Request) -> http::Result<Response> {
    let body: RfidBody = json_body(&req)?;
    let tag = normalize(&body.rfid)?;
    let now = app.clock.now_secs();
    let ip = http::source_ip(&req);
    let counter = ip.as_deref().map(|ip| keys::rfid_failures_ip(ip, now.div_euclid(60)));
    let mut failures = 0;
    if let Some(key) = &counter {
        match service::reserve(app, key, MAX_FAILURES_PER_IP, "rfid_failures").await? {
            Some(count) => failures = count,
            None => return Ok(throttled(service::retry_after_minute(now))),
        }
    }
    let owner = match get_tag(app, &tag).await? {
        Some(Tag { user_id: Some(user_id), blacklisted: false, .. }) => {
            service::get_user(app, &user_id).await?.filter(|u| u.is_active)
        }
        _ => None,
    };
    let Some(user) = owner else {
        if failures == MAX_FAILURES_PER_IP {
            alert_burst(app, ip.as_deref().unwrap_or("?"), failures).await;
        }
        return Err(rejected());
    };
    if let Some(key) = &counter {
        service::release(app, key).await?;
    }
    let name = format!("{} {}", user.first_name, user.last_name).trim().to_string();
    http::ok(&RfidLogin { authenticated: true, id: user.id, name })
}

fn throttled(retry_after_secs: i64) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "throttled",
        format!("Too many unknown RFID tags from this address. Expected available in {retry_after_secs} seconds."),
    )
    .into_response();
    response.headers_mut().insert(::http::header::RETRY_AFTER, ::http::HeaderValue::from(retry_after_secs));
    response
}

/// Tells of a burst of refused tags: a warning in the log and a notification in every active admin's
/// inbox. Reads the user list once (at most once per source IP and minute); a failure to tell is logged,
/// never the caller's problem.
async fn alert_burst(app: &App, ip: &str, failures: i64) {
    tracing::warn!(source_ip = %ip, failures, "RFID login: a burst of unknown or refused tags; throttling the address");
    let admins = match service::search_users(app, None, Some(Role::Admin)).await {
        Ok(admins) => admins,
        Err(e) => {
            tracing::error!(error = %e, "RFID login burst: could not list the admins to tell");
            return;
        }
    };
    for admin in admins.into_iter().filter(|a| a.is_active) {
        let notification = Notification {
            id: new_id(),
            recipient: Recipient::User(admin.id),
            kind: "rfid_login_failures".into(),
            title: "RFID login: unknown tags".into(),
            body: format!(
                "{failures} unknown or refused RFID tags came from {ip} within a minute; \
                 further attempts from that address are refused until the minute ends."
            ),
            data: json!({"source_ip": ip, "failures": failures}),
            channels: vec![Channel::Inbox],
            sealed_secret: None,
        };
        if let Err(e) = notifications::enqueue(app, &notification).await {
            tracing::error!(error = %e, "RFID login burst: could not tell an admin");
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct AssignBody {
    #[schema(pattern = "^[0-9A-Fa-f]{8}$", example = "A1B2C3D4")]
    rfid: String,
    #[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    user_id: UserId,
}

pub const ADMIN_RFID_ASSIGN: Function = Function::http(
    "admin-rfid-assign",
    "POST",
    "/api/admin/rfid/",
    "Assign an RFID tag to a user (admin)",
    |app, req| Box::pin(assign(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| Op::new().json(schema_of::<AssignBody>).reply(201, "The tag", schema_of::<Tag>).errors(&[409]))
.uses(&[Uses::TableWrite]);

/// `POST /api/admin/rfid/` `{"rfid", "user_id"}`: 201 with the tag as written. The user must exist; a tag
/// another user owns is 409 `rfid_taken`. Two round trips (the user, then one conditional update that
/// returns the tag, so a concurrent unassign can never make this answer fail).
pub async fn assign(app: &'static App, req: Request) -> http::Result<Response> {
    let body: AssignBody = json_body(&req)?;
    let tag = normalize(&body.rfid)?;
    let user_id = body.user_id.as_str();
    // Users are never deleted, so one that exists now still exists when the tag is written.
    if app.store.get(&keys::user(user_id)).await?.is_none() {
        return Err(ApiError::invalid_field("user_id", "user_not_found", "No user has this id."));
    }
    let now = app.clock.now_secs();
    let update = Update::new()
        .set("type", s("rfid"))
        .set("rfid", s(&tag))
        .set("user_id", s(user_id))
        .set("updated_at", n(now))
        .set_if_not_exists("blacklisted", store::Value::Bool(false))
        .set_if_not_exists("created_at", n(now));
    let free_or_theirs = Cond::not_exists("user_id").or(Cond::eq("user_id", s(user_id)));
    match app.store.update(&keys::rfid(&tag), update, Some(free_or_theirs)).await {
        Ok(item) => Ok(json_response(StatusCode::CREATED, &store::from_item::<Tag>(item)?)),
        Err(StoreError::ConditionFailed) => {
            Err(ApiError::conflict("rfid_taken", "This RFID tag belongs to another user."))
        }
        Err(e) => Err(e.into()),
    }
}

pub const ADMIN_RFID_UNASSIGN: Function = Function::http(
    "admin-rfid-unassign",
    "DELETE",
    "/api/admin/rfid/{rfid}/",
    "Forget an RFID tag (admin)",
    |app, req| Box::pin(unassign(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| {
    Op::new().describe("A blacklisted tag stays blacklisted.").empty(204, "The tag belongs to nobody").errors(&[400])
})
.uses(&[Uses::TableWrite]);

/// `DELETE /api/admin/rfid/{rfid}/`: 204; the tag belongs to nobody (404 if it belongs to nobody
/// already). A tag in good standing is forgotten; a blacklisted one stays blacklisted, so assigning
/// it again does not let it in. One round trip (two for a blacklisted tag).
pub async fn unassign(app: &'static App, req: Request) -> http::Result<Response> {
    let tag = normalize(path_param(&req, "rfid")?)?;
    let key = keys::rfid(&tag);
    let in_good_standing = Cond::exists("user_id").and(Cond::eq("blacklisted", store::Value::Bool(false)));
    match app.store.delete(&key, Some(in_good_standing)).await {
        Ok(_) => return Ok(http::no_content()),
        Err(StoreError::ConditionFailed) => {}
        Err(e) => return Err(e.into()),
    }
    let update = Update::new().remove("user_id").set("updated_at", n(app.clock.now_secs()));
    match app.store.update(&key, update, Some(Cond::exists("user_id"))).await {
        Ok(_) => Ok(http::no_content()),
        Err(StoreError::ConditionFailed) => Err(ApiError::not_found("rfid_not_found", "No such RFID tag.")),
        Err(e) => Err(e.into()),
    }
}

async fn set_blacklisted(app: &'static App, req: Request, blacklisted: bool) -> http::Result<Response> {
    let tag = normalize(path_param(&req, "rfid")?)?;
    let now = app.clock.now_secs();
    let update = Update::new()
        .set("type", s("rfid"))
        .set("rfid", s(&tag))
        .set("blacklisted", store::Value::Bool(blacklisted))
        .set("updated_at", n(now))
        .set_if_not_exists("created_at", n(now));
    // Unblacklisting an unknown tag is a 404; blacklisting one records it, so it is refused when assigned later.
    let cond = if blacklisted { None } else { Some(Cond::item_exists()) };
    match app.store.update(&keys::rfid(&tag), update, cond).await {
        Ok(item) => http::ok(&store::from_item::<Tag>(item)?),
        Err(StoreError::ConditionFailed) => Err(ApiError::not_found("rfid_not_found", "No such RFID tag.")),
        Err(e) => Err(e.into()),
    }
}

pub const ADMIN_RFID_BLACKLIST: Function = Function::http(
    "admin-rfid-blacklist",
    "POST",
    "/api/admin/rfid/{rfid}/blacklist/",
    "Block an RFID tag (admin)",
    |app, req| Box::pin(blacklist(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| Op::new().reply(200, "The tag, blacklisted", schema_of::<Tag>).errors(&[400]))
.uses(&[Uses::TableWrite]);

/// `POST /api/admin/rfid/{rfid}/blacklist/`: the tag stops logging anyone in. One round trip.
pub async fn blacklist(app: &'static App, req: Request) -> http::Result<Response> {
    set_blacklisted(app, req, true).await
}

pub const ADMIN_RFID_UNBLACKLIST: Function = Function::http(
    "admin-rfid-unblacklist",
    "POST",
    "/api/admin/rfid/{rfid}/unblacklist/",
    "Unblock an RFID tag (admin)",
    |app, req| Box::pin(unblacklist(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| Op::new().reply(200, "The tag, usable again", schema_of::<Tag>).errors(&[400]))
.uses(&[Uses::TableWrite]);

/// `POST /api/admin/rfid/{rfid}/unblacklist/`: the tag works again. One round trip.
pub async fn unblacklist(app: &'static App, req: Request) -> http::Result<Response> {
    set_blacklisted(app, req, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_eight_hex_digits_any_case() {
        assert_eq!(normalize("a1b2c3d4").unwrap(), "A1B2C3D4");
        assert_eq!(normalize(" A1B2C3D4 ").unwrap(), "A1B2C3D4");
        for bad in ["a1b2c3d", "a1b2c3d45", "g1b2c3d4", "", "a1b2 3d4"] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
    }
}
