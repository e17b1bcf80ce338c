//! RFID tags (Arthexis, seed 002): a tag of 8 hex digits belongs to a user and
//! logs them in at `/accounts/rfid-login/` unless it is blacklisted. Admins
//! assign, unassign, blacklist and unblacklist tags. A tag may be blacklisted
//! before anyone owns it.

use ::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::App;
use crate::platform::http::{self, ApiError, Request, Response, json_body, json_response, path_param};
use crate::platform::store::{self, Cond, StoreError, Update, Write, n, s};

use super::keys;
use super::service;
use super::types::UserView;

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

/// `POST /accounts/rfid-login/` `{"rfid"}`: the tag owner's details; 401 for unknown or blacklisted tags,
/// 400 for a malformed one. Two round trips (tag, user).
pub async fn login(app: &'static App, req: Request) -> http::Result<Response> {
    let body: RfidBody = json_body(&req)?;
    let tag = normalize(&body.rfid)?;
    let Some(Tag { user_id: Some(user_id), blacklisted: false, .. }) = get_tag(app, &tag).await? else {
        return Err(rejected());
    };
    let user = service::get_user(app, &user_id).await?.filter(|u| u.is_active).ok_or_else(rejected)?;
    http::ok(&UserView::from(&user))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct AssignBody {
    #[schema(pattern = "^[0-9A-Fa-f]{8}$", example = "A1B2C3D4")]
    rfid: String,
    user_id: String,
}

/// `POST /api/admin/rfid/` `{"rfid", "user_id"}`: 201 with the tag. The user must exist; a tag another user owns
/// is 409 `rfid_taken`. One transaction.
pub async fn assign(app: &'static App, req: Request) -> http::Result<Response> {
    let body: AssignBody = json_body(&req)?;
    let tag = normalize(&body.rfid)?;
    let user_id = body.user_id.trim().to_string();
    let now = app.clock.now_secs();
    let mut update = Update::new()
        .set("type", s("rfid"))
        .set("rfid", s(&tag))
        .set("user_id", s(&user_id))
        .set("updated_at", n(now))
        .set_if_not_exists("blacklisted", store::Value::Bool(false));
    update = update.set_if_not_exists("created_at", n(now));
    let writes = vec![
        Write::Update {
            key: keys::rfid(&tag),
            update,
            cond: Some(Cond::not_exists("user_id").or(Cond::eq("user_id", s(&user_id)))),
        },
        Write::Check { key: keys::user(&user_id), cond: Cond::item_exists() },
    ];
    match app.store.transact(writes).await {
        Ok(()) => {}
        Err(StoreError::TransactionCanceled { failed }) if failed.contains(&1) => {
            return Err(ApiError::invalid_field("user_id", "user_not_found", "No user has this id."));
        }
        Err(StoreError::TransactionCanceled { .. } | StoreError::Conflict) => {
            return Err(ApiError::conflict("rfid_taken", "This RFID tag belongs to another user."));
        }
        Err(e) => return Err(e.into()),
    }
    let tag = get_tag(app, &tag).await?.ok_or_else(|| ApiError::internal(anyhow::anyhow!("tag vanished")))?;
    Ok(json_response(StatusCode::CREATED, &tag))
}

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

/// `POST /api/admin/rfid/{rfid}/blacklist/`: the tag stops logging anyone in. One round trip.
pub async fn blacklist(app: &'static App, req: Request) -> http::Result<Response> {
    set_blacklisted(app, req, true).await
}

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
