//! Seed 000's endpoints over HTTP. The same operations answer MQTT requests (`mqtt`).

use ::http::StatusCode;
use serde::Serialize;
use serde_json::Value as Json;

use crate::App;
use crate::platform::http::{self, ApiError, Request, Response, json_body, json_response};

use super::service;

fn reply<T: Serialize>(status: StatusCode, result: service::Result<T>) -> http::Result<Response> {
    result.map(|body| json_response(status, &body))
}

/// `POST /api/auth/challenge/` `{room_num, endpoint_id}` → `{token}` (60 s).
pub async fn challenge(app: &'static App, req: Request) -> http::Result<Response> {
    let body: Json = json_body(&req)?;
    reply(StatusCode::OK, service::challenge(app, body, None).await)
}

/// `POST /api/auth/verify/` `{token, auth_code}` → `{token, balance, appliances}`.
pub async fn verify(app: &'static App, req: Request) -> http::Result<Response> {
    let body: Json = json_body(&req)?;
    reply(StatusCode::OK, service::verify(app, body, None).await)
}

/// `POST /api/appliance/start/` `{token, appliance_name, units, price}` → 201 `{newbalance, token}`.
pub async fn start(app: &'static App, req: Request) -> http::Result<Response> {
    let body: Json = json_body(&req)?;
    reply(StatusCode::CREATED, service::start(app, body, None).await)
}

/// `POST /api/appliance/finish/` `{token, units, price, aborted}` → `{status}`.
pub async fn finish(app: &'static App, req: Request) -> http::Result<Response> {
    let body: Json = json_body(&req)?;
    reply(StatusCode::OK, service::finish(app, body, None).await)
}

/// The status and body HTTP would answer for an operation's result.
pub fn status_and_body<T: Serialize>(ok: StatusCode, result: service::Result<T>) -> (StatusCode, Json) {
    match result.and_then(|body| serde_json::to_value(body).map_err(ApiError::internal)) {
        Ok(body) => (ok, body),
        Err(e) => e.into_parts(),
    }
}
