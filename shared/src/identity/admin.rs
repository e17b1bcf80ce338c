//! Admin endpoints on users (role `admin`).

use serde::Deserialize;
use serde_json::json;

use crate::App;
use crate::platform::http::auth::principal;
use crate::platform::http::page::{self, Keyset, Page};
use crate::platform::http::{self, ApiError, Request, Response, json_body, path_param, query_param};

use crate::platform::doc::{Op, QueryParam, enum_schema, page_of, schema_of, string};
use crate::platform::function::{Auth, Function, Uses};
use crate::platform::store::{Cond, Index, Query, s};

use super::keys;
use super::service::{self, AdminChanges};
use super::types::{Role, User, UserView};

/// Users per page of the listing (`?page_size=` up to 100).
pub const PAGE_SIZE: usize = 20;

fn parse_role(field: &'static str, value: &str) -> http::Result<Role> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|_| ApiError::invalid_field(field, "invalid_choice", format!("\"{value}\" is not a valid choice.")))
}

pub const ADMIN_USERS_LIST: Function =
    Function::http("admin-users-list", "GET", "/api/admin/users/", "List and search users (admin)", |app, req| {
        Box::pin(list_users(app, req))
    })
    .auth(Auth::ADMIN)
    .doc(|| {
        Op::new()
            .query(&[
                QueryParam { name: "search", description: "Part of the email, phone or name.", schema: string },
                QueryParam {
                    name: "role",
                    description: "Only users with this role.",
                    schema: enum_schema::<super::types::Role>,
                },
            ])
            .store_page(page_of::<super::types::UserView>)
    })
    .uses(&[Uses::TableRead]);

/// `GET /api/admin/users/?search=&role=&page=`: `{count, next, previous, results}`, 20 a page,
/// oldest first. Without `search`, paged in the store (the role a filter there: one GSI1 query of
/// `page_size + 1` users, asked again until the page is full, and a count query unless the first
/// page holds them all). A search matches part of any of four fields, whatever the case, which no
/// store query can say: it reads the partition and pages in memory.
pub async fn list_users(app: &'static App, req: Request) -> http::Result<Response> {
    let search = query_param(&req, "search").filter(|s| !s.trim().is_empty());
    let role = query_param(&req, "role").filter(|s| !s.is_empty()).map(|r| parse_role("role", r)).transpose()?;
    if search.is_some() {
        let page = Page::from_query(&req, PAGE_SIZE, 100)?;
        let users = service::search_users(app, search, role).await?;
        return page::respond(&req, users.iter().map(UserView::from).collect(), page);
    }
    let keyset = Keyset::from_query(&req, PAGE_SIZE, 100)?;
    let query = Query::partition(keys::USERS_GSI1PK).index(Index::Gsi1);
    let query = match role {
        Some(role) => query.filter(Cond::eq("role", s(role.as_str()))),
        None => query,
    };
    let users = page::from_store::<User>(&app.store, &req, vec![query], &keyset, None).await?;
    http::ok(&users.map(|u| UserView::from(&u)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AdminPatchBody {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

pub const ADMIN_USERS_UPDATE: Function = Function::http(
    "admin-users-update",
    "PATCH",
    "/api/admin/users/{id}/",
    "Change a user's role or deactivate them (admin)",
    |app, req| Box::pin(update_user(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| {
    Op::new().json(schema_of::<AdminPatchBody>).example(json!({"role": "staff", "is_active": true})).reply(
        200,
        "The updated user",
        schema_of::<super::types::UserView>,
    )
})
.uses(&[Uses::TableWrite]);

/// `PATCH /api/admin/users/{id}/`: change `role` and/or `is_active`. One round trip (after the
/// pipeline's read of the caller). Nobody changes their own role or active flag: an admin whose
/// token outlived a demotion could otherwise promote themselves back.
pub async fn update_user(app: &'static App, req: Request) -> http::Result<Response> {
    let id = path_param(&req, "id")?.to_string();
    let body: AdminPatchBody = json_body(&req)?;
    if id == principal(&req)?.user_id && (body.role.is_some() || body.is_active.is_some()) {
        return Err(ApiError::forbidden("own_access", "Nobody may change their own role or active flag."));
    }
    let role = body.role.as_deref().map(|r| parse_role("role", r)).transpose()?;
    let user = service::admin_update(app, &id, AdminChanges { role, is_active: body.is_active }).await?;
    http::ok(&UserView::from(&user))
}
