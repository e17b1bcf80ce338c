//! Seed 000's endpoints over HTTP. The same operations answer MQTT requests (`mqtt`).
//!
//! Each request must carry the endpoint's device key in `X-Endpoint-Key`
//! (unless the endpoint is `legacy_keyless`); a throttled verify is 429 with `Retry-After`.

use ::http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::Value as Json;

use crate::App;
use crate::platform::http::{self, ApiError, Request, Response, json_body, json_response};

use super::service::{self, Caller};

fn reply<T: Serialize>(status: StatusCode, result: service::Result<T>) -> http::Result<Response> {
    match result {
        Ok(body) => Ok(json_response(status, &body)),
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {
            let retry_after = e.body.as_ref().and_then(|b| b["retry_after"].as_i64());
            let mut response = e.into_response();
            if let Some(secs) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Ok(response)
        }
        Err(e) => Err(e),
    }
}

/// The device key the request carries (a header that is not text counts as a wrong key).
fn caller(req: &Request) -> Caller<'_> {
    let endpoint_key = req.headers().get(service::ENDPOINT_KEY_HEADER).map(|v| v.to_str().unwrap_or(""));
    Caller::Http { endpoint_key }
}

/// `POST /api/auth/challenge/` `{room_num, endpoint_id}` → `{token}` (60 s).
pub async fn challenge(app: &'static App, req: Request) -> http::Result<Response> {
    let body: Json = json_body(&req)?;
    reply(StatusCode::OK, service::challenge(app, body, caller(&req)).await)
}

/// `POST /api/auth/verify/` `{token, auth_code}` → `{token, balance, appliances}`.
pub async fn verify(app: &'static App, req: Request) -> http::Result<Response> {
    let body: Json = json_body(&req)?;
    reply(StatusCode::OK, service::verify(app, body, caller(&req)).await)
}

/// `POST /api/appliance/start/` `{token, appliance_name, units, price}` → 201 `{newbalance, token}`.
pub async fn start(app: &'static App, req: Request) -> http::Result<Response> {
    let body: Json = json_body(&req)?;
    reply(StatusCode::CREATED, service::start(app, body, caller(&req)).await)
}

/// `POST /api/appliance/finish/` `{token, units, price, aborted}` → `{status}`.
pub async fn finish(app: &'static App, req: Request) -> http::Result<Response> {
    let body: Json = json_body(&req)?;
    reply(StatusCode::OK, service::finish(app, body, caller(&req)).await)
}

/// The status and body HTTP would answer for an operation's result.
pub fn status_and_body<T: Serialize>(ok: StatusCode, result: service::Result<T>) -> (StatusCode, Json) {
    match result.and_then(|body| serde_json::to_value(body).map_err(ApiError::internal)) {
        Ok(body) => (ok, body),
        Err(e) => e.into_parts(),
    }
}
