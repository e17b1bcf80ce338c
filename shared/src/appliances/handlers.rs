//! Seed 000's endpoints over HTTP. The same operations answer MQTT requests (`mqtt`).
//!
//! Each request must carry the endpoint's device key in `X-Endpoint-Key`
//! (unless the endpoint is `legacy_keyless`); a throttled verify is 429 with `Retry-After`.

use ::http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::App;
use crate::platform::doc::{Op, schema_of};
use crate::platform::function::{Auth, Function, Uses};
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

pub const APPLIANCE_AUTH_CHALLENGE: Function = Function::http(
    "appliance-auth-challenge",
    "POST",
    "/api/auth/challenge/",
    "A challenge token for a room at an endpoint (appliances)",
    |app, req| Box::pin(challenge(app, req)),
)
.auth(Auth::Device)
.doc(|| {
    Op::new()
        .describe(
            "A 60 s challenge token bound to the room and the endpoint. Whether the room exists is not said: \
             any well-formed room key gets a token, and one for a key no room has never verifies.",
        )
        .headers(super::ENDPOINT_KEY)
        .json(schema_of::<super::service::ChallengeBody>)
        .example(json!({"room_num": 12345, "endpoint_id": 1}))
        .reply(200, "The challenge token", schema_of::<super::service::TokenReply>)
        .errors(&[401, 404])
})
.uses(&[Uses::TableRead]);

/// `POST /api/auth/challenge/` `{room_num, endpoint_id}` → `{token}` (60 s).
pub async fn challenge(app: &'static App, req: Request) -> http::Result<Response> {
    let body: Json = json_body(&req)?;
    reply(StatusCode::OK, service::challenge(app, body, caller(&req)).await)
}

pub const APPLIANCE_AUTH_VERIFY: Function = Function::http(
    "appliance-auth-verify",
    "POST",
    "/api/auth/verify/",
    "Verify a room's TOTP code for an access token (appliances)",
    |app, req| Box::pin(verify(app, req)),
)
.auth(Auth::Device)
.doc(|| {
    Op::new()
        .describe(
            "Checks the challenge token and the room's TOTP code. More than 3 codes within 5 minutes for a \
             room at one endpoint lock its TOTP there for 5 minutes: 429 `totp_locked` with `Retry-After` \
             (and `retry_after` in the body), even for the right code; a right code before that resets the \
             count. An unknown room answers as a wrong code does.",
        )
        .headers(super::ENDPOINT_KEY)
        .json(schema_of::<super::service::VerifyBody>)
        .example(json!({"token": "<challenge_jwt>", "auth_code": 123456}))
        .reply(
            200,
            "An access token, the balance and the endpoint's appliances",
            schema_of::<super::service::VerifyReply>,
        )
        .reply_example(
            json!({"token": "<access_jwt>", "balance": 100000, "appliances": [{"name": "washer", "value": 25}]}),
        )
        .errors(&[401, 404, 429, 503])
})
.uses(&[Uses::TableWrite, Uses::Send(&crate::notifications::QUEUE)]);

/// `POST /api/auth/verify/` `{token, auth_code}` → `{token, balance, appliances}`.
pub async fn verify(app: &'static App, req: Request) -> http::Result<Response> {
    let body: Json = json_body(&req)?;
    reply(StatusCode::OK, service::verify(app, body, caller(&req)).await)
}

pub const APPLIANCE_START: Function = Function::http(
    "appliance-start",
    "POST",
    "/api/appliance/start/",
    "Start an appliance run, reserving its price (appliances)",
    |app, req| Box::pin(start(app, req)),
)
.auth(Auth::Device)
.doc(|| {
    Op::new()
        .describe(
            "Reserves `price` × 100 cents from the room. `units` and `price` are capped by the appliance's \
             `max_units` and `max_price` (400 `over_appliance_cap` naming the field).",
        )
        .headers(super::ENDPOINT_KEY)
        .json(schema_of::<super::service::StartBody>)
        .example(json!({"token": "<access_jwt>", "appliance_name": "washer", "units": 300, "price": 20}))
        .reply(201, "The run started", schema_of::<super::service::StartReply>)
        .reply_example(json!({"newbalance": 98000, "token": "<start_jwt>"}))
        .errors(&[401, 402, 404, 409, 503])
})
.uses(&[Uses::TableWrite]);

/// `POST /api/appliance/start/` `{token, appliance_name, units, price}` → 201 `{newbalance, token}`.
pub async fn start(app: &'static App, req: Request) -> http::Result<Response> {
    let body: Json = json_body(&req)?;
    reply(StatusCode::CREATED, service::start(app, body, caller(&req)).await)
}

pub const APPLIANCE_FINISH: Function = Function::http(
    "appliance-finish",
    "POST",
    "/api/appliance/finish/",
    "Finish or abort a run, refunding the difference (appliances)",
    |app, req| Box::pin(finish(app, req)),
)
.auth(Auth::Device)
.doc(|| {
    Op::new()
        .describe(
            "Ends the run; a lower final price is refunded. A higher one is clamped: never more than the \
             reservation is charged.",
        )
        .headers(super::ENDPOINT_KEY)
        .json(schema_of::<super::service::FinishBody>)
        .example(json!({"token": "<start_jwt>", "units": 250, "price": 15, "aborted": false}))
        .reply(200, "The run's status", schema_of::<super::service::FinishReply>)
        .reply_example(json!({"status": "finished"}))
        .errors(&[401, 404, 409, 503])
})
.uses(&[Uses::TableWrite]);

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
