//! Admin endpoints on users (role `admin`).

use serde::{Deserialize, Serialize};

use crate::App;
use crate::platform::http::{self, ApiError, Request, Response, json_body, path_param, query_param};

use super::service::{self, AdminChanges};
use super::types::{Role, UserView};

/// Users per page of the listing.
pub const PAGE_SIZE: usize = 20;

const LIST_PATH: &str = "/api/admin/users/";

#[derive(Debug, Serialize)]
struct Paginated<T> {
    count: usize,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<T>,
}

fn parse_role(field: &'static str, value: &str) -> http::Result<Role> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|_| ApiError::invalid_field(field, "invalid_choice", format!("\"{value}\" is not a valid choice.")))
}

/// The listing URL of `page`, keeping the filters.
fn page_url(page: usize, search: Option<&str>, role: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("page", &page.to_string());
    if let Some(search) = search {
        query.append_pair("search", search);
    }
    if let Some(role) = role {
        query.append_pair("role", role);
    }
    format!("{LIST_PATH}?{}", query.finish())
}

/// `GET /api/admin/users/?search=&role=&page=`: `{count, next, previous, results}`, 20 a page.
pub async fn list_users(app: &'static App, req: Request) -> http::Result<Response> {
    let search = query_param(&req, "search").filter(|s| !s.is_empty());
    let role_text = query_param(&req, "role").filter(|s| !s.is_empty());
    let role = role_text.map(|r| parse_role("role", r)).transpose()?;
    let page = match query_param(&req, "page") {
        None => 1,
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| ApiError::invalid_field("page", "invalid_page", "Invalid page."))?,
    };
    let users = service::search_users(app, search, role).await?;
    let count = users.len();
    let start = (page - 1) * PAGE_SIZE;
    if start >= count && page > 1 {
        return Err(ApiError::not_found("not_found", "Invalid page."));
    }
    let results: Vec<UserView> = users.iter().skip(start).take(PAGE_SIZE).map(UserView::from).collect();
    http::ok(&Paginated {
        count,
        next: (start + PAGE_SIZE < count).then(|| page_url(page + 1, search, role_text)),
        previous: (page > 1).then(|| page_url(page - 1, search, role_text)),
        results,
    })
}

#[derive(Debug, Deserialize)]
pub struct AdminPatchBody {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// `PATCH /api/admin/users/{id}/`: change `role` and/or `is_active`. One round trip.
pub async fn update_user(app: &'static App, req: Request) -> http::Result<Response> {
    let id = path_param(&req, "id")?.to_string();
    let body: AdminPatchBody = json_body(&req)?;
    let role = body.role.as_deref().map(|r| parse_role("role", r)).transpose()?;
    let user = service::admin_update(app, &id, AdminChanges { role, is_active: body.is_active }).await?;
    http::ok(&UserView::from(&user))
}
