//! Circle Time's account endpoints (seed 001) in its envelope
//! `{"success": bool, "data": …, "message"?: …}`, failures included.

use serde::Serialize;
use serde_json::json;

use crate::App;
use crate::platform::doc::{Op, envelope_of, schema_of};
use crate::platform::function::{Auth, Function, Uses};
use crate::platform::http::{self, ApiError, Request, Response, auth, json_body};

use super::handlers::{LoginBody, RefreshBody, refused_login};
use super::service::{self, IdentityError};
use super::types::UserView;

#[derive(Debug, Serialize)]
struct Envelope<T> {
    success: bool,
    data: T,
}

/// The same status and code as the SmartLock answer, in Circle Time's envelope.
fn enveloped<E: Into<ApiError>>(e: E) -> ApiError {
    e.into().enveloped()
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct LoginData {
    /// The access token again, for clients that expect one `token` (seed 001).
    token: String,
    access: String,
    refresh: String,
    user: UserView,
}

pub const CIRCLE_AUTH_LOGIN: Function = Function::http(
    "circle-auth-login",
    "POST",
    "/api/auth/login",
    "Log in with email and password (Circle Time)",
    |app, req| Box::pin(login(app, req)),
)
.envelope()
.doc(|| {
    Op::new()
        .json(schema_of::<super::handlers::LoginBody>)
        .example(json!({"email": "user@example.com", "password": "SecurePass123!"}))
        .reply(200, "The user and tokens in Circle Time's envelope", envelope_of::<LoginData>)
        .errors(&[401, 429])
})
.uses(&[Uses::TableWrite]);

/// `POST /api/auth/login`. Three round trips.
pub async fn login(app: &'static App, req: Request) -> http::Result<Response> {
    let body: LoginBody = json_body(&req).map_err(enveloped)?;
    let user = match service::login(app, &body.email, &body.password, http::source_ip(&req).as_deref()).await {
        Ok(user) => user,
        Err(e) => return Ok(refused_login(e, enveloped)),
    };
    let tokens = service::start_session(app, &user).map_err(enveloped)?;
    http::ok(&Envelope {
        success: true,
        data: LoginData {
            token: tokens.access.clone(),
            access: tokens.access,
            refresh: tokens.refresh,
            user: UserView::from(&user),
        },
    })
}

pub const CIRCLE_AUTH_REFRESH: Function = Function::http(
    "circle-auth-refresh",
    "POST",
    "/api/auth/refresh",
    "Rotate a refresh token (Circle Time)",
    |app, req| Box::pin(refresh(app, req)),
)
.envelope()
.doc(|| {
    Op::new()
        .json(schema_of::<super::handlers::RefreshBody>)
        .reply(200, "A new token pair in Circle Time's envelope", envelope_of::<super::types::TokenPair>)
        .errors(&[401])
})
.uses(&[Uses::TableWrite]);

/// `POST /api/auth/refresh`: rotates the refresh token like SmartLock's refresh.
pub async fn refresh(app: &'static App, req: Request) -> http::Result<Response> {
    let body: RefreshBody = json_body(&req).map_err(enveloped)?;
    let (_, tokens) = service::refresh(app, &body.refresh).await.map_err(enveloped)?;
    http::ok(&Envelope { success: true, data: tokens })
}

pub const CIRCLE_AUTH_ME: Function =
    Function::http("circle-auth-me", "GET", "/api/auth/me", "The caller (Circle Time)", |app, req| {
        Box::pin(me(app, req))
    })
    .auth(Auth::USER)
    .envelope()
    .doc(|| Op::new().reply(200, "The caller in Circle Time's envelope", envelope_of::<super::types::UserView>))
    .uses(&[Uses::TableRead]);

/// `GET /api/auth/me`. One round trip.
pub async fn me(app: &'static App, req: Request) -> http::Result<Response> {
    let principal = auth::principal(&req).map_err(enveloped)?;
    let user = service::get_user(app, &principal.user_id)
        .await
        .map_err(enveloped)?
        .ok_or_else(|| enveloped(IdentityError::UserNotFound))?;
    http::ok(&Envelope { success: true, data: UserView::from(&user) })
}
