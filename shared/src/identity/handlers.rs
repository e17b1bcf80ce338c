//! SmartLock's account endpoints (seed 003): parse, call the service, shape the answer.

use ::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::App;
use crate::platform::doc::{Op, schema_of};
use crate::platform::function::{Auth, Function, Uses};
use crate::platform::http::{self, ApiError, Request, Response, auth, json_body, json_response};

use super::otp::{self, OtpRequestId};
use super::service::{self, IdentityError, NewUser, ProfileChanges};
use super::tokens::{self, Tokens};
use super::types::{Role, TokenPair, UserView};

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Invalid { field, code, message } => ApiError::invalid_field(field, code, message),
            IdentityError::EmailTaken => {
                ApiError::invalid_field("email", "unique", "A user with this email already exists.")
            }
            IdentityError::PhoneTaken => {
                ApiError::invalid_field("phone_number", "unique", "A user with this phone number already exists.")
            }
            IdentityError::BadCredentials => {
                ApiError::unauthorized("authentication_failed", "No active account found with the given credentials")
            }
            IdentityError::TooManyAttempts { retry_after_secs } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!("Too many failed logins. Expected available in {retry_after_secs} seconds."),
            ),
            IdentityError::TooManyRegistrations { retry_after_secs } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "registration_throttled",
                format!("Too many registrations from this address. Expected available in {retry_after_secs} seconds."),
            ),
            IdentityError::TooManyOtpRequests { retry_after_secs } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "otp_rate_limited",
                format!("Too many OTP requests for this phone. Expected available in {retry_after_secs} seconds."),
            ),
            IdentityError::OtpRefused { code, message } => ApiError::invalid_field("otp", code, message),
            IdentityError::TokenInvalid => ApiError::unauthorized("token_not_valid", "Token is invalid or expired"),
            IdentityError::UserNotFound => ApiError::unauthorized("user_not_found", "User not found"),
            IdentityError::NoSuchUser => ApiError::not_found("not_found", "No user has this id."),
            IdentityError::Store(e) => e.into(),
            IdentityError::Internal(e) => ApiError::internal(e),
        }
    }
}

/// The response of a failed login in the given error shape, with
/// `Retry-After` when the attempt was throttled.
pub(super) fn refused_login(e: IdentityError, shape: fn(ApiError) -> ApiError) -> Response {
    let retry_after = match &e {
        IdentityError::TooManyAttempts { retry_after_secs }
        | IdentityError::TooManyRegistrations { retry_after_secs }
        | IdentityError::TooManyOtpRequests { retry_after_secs } => Some(*retry_after_secs),
        _ => None,
    };
    let mut response = shape(e.into()).into_response();
    if let Some(secs) = retry_after {
        response.headers_mut().insert(::http::header::RETRY_AFTER, ::http::HeaderValue::from(secs));
    }
    response
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterBody {
    pub email: String,
    pub password: String,
    pub password_confirm: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub phone_number: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub user: UserView,
    pub tokens: TokenPair,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'static str>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Message {
    message: &'static str,
}

pub const AUTH_REGISTER: Function =
    Function::http("auth-register", "POST", "/api/v1/auth/register/", "Register a user (SmartLock)", |app, req| {
        Box::pin(register(app, req))
    })
    .doc(|| {
        Op::new()
            .describe(
                "The phone number is contact data (unique among profiles) until an OTP sent to it is verified. \
                 At most 30 registrations a minute from one address (then 429 with `Retry-After`).",
            )
            .json(schema_of::<RegisterBody>)
            .example(
                json!({"email": "user@example.com", "password": "SecurePass123!", "password_confirm": "SecurePass123!",
                "first_name": "John", "last_name": "Doe", "phone_number": "+1234567890"}),
            )
            .reply(201, "The new user and a token pair", schema_of::<Session>)
            .errors(&[429])
    })
    .uses(&[Uses::TableWrite]);

/// `POST /api/v1/auth/register/`: 201 with the user and a token pair; 429 with `Retry-After` past
/// [`service::MAX_REGISTRATIONS_PER_IP`] a minute from one address. The phone number is contact data
/// until proven with an OTP. Two round trips.
pub async fn register(app: &'static App, req: Request) -> http::Result<Response> {
    let body: RegisterBody = json_body(&req)?;
    let registered = service::register(
        app,
        NewUser {
            email: body.email,
            password: body.password,
            password_confirm: body.password_confirm,
            first_name: body.first_name,
            last_name: body.last_name,
            phone: body.phone_number.filter(|p| !p.trim().is_empty()),
            role: Role::Member,
        },
        http::source_ip(&req).as_deref(),
    )
    .await;
    let user = match registered {
        Ok(user) => user,
        Err(e) => return Ok(refused_login(e, |e| e)),
    };
    let tokens = service::start_session(app, &user)?;
    Ok(json_response(
        StatusCode::CREATED,
        &Session { user: UserView::from(&user), tokens, message: Some("User registered successfully") },
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

pub const AUTH_LOGIN: Function = Function::http(
    "auth-login",
    "POST",
    "/api/v1/auth/login/",
    "Log in with email and password (SmartLock)",
    |app, req| Box::pin(login(app, req)),
)
.doc(|| {
    Op::new()
        .json(schema_of::<LoginBody>)
        .example(json!({"email": "user@example.com", "password": "SecurePass123!"}))
        .reply(200, "The user and a new token pair", schema_of::<Session>)
        .errors(&[401, 429])
})
.uses(&[Uses::TableWrite]);

/// `POST /api/v1/auth/login/`: the user and a new token pair; 401 on wrong credentials. Three round trips.
pub async fn login(app: &'static App, req: Request) -> http::Result<Response> {
    let body: LoginBody = json_body(&req)?;
    let user = match service::login(app, &body.email, &body.password, http::source_ip(&req).as_deref()).await {
        Ok(user) => user,
        Err(e) => return Ok(refused_login(e, |e| e)),
    };
    let tokens = service::start_session(app, &user)?;
    http::ok(&Session { user: UserView::from(&user), tokens, message: None })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RefreshBody {
    pub refresh: String,
}

pub const AUTH_LOGOUT: Function = Function::http(
    "auth-logout",
    "POST",
    "/api/v1/auth/logout/",
    "Revoke a refresh token's session (SmartLock)",
    |app, req| Box::pin(logout(app, req)),
)
.doc(|| Op::new().json(schema_of::<RefreshBody>).reply(200, "Logged out", schema_of::<Message>).errors(&[401]))
.uses(&[Uses::TableWrite]);

/// `POST /api/v1/auth/logout/`: revokes the refresh token's session. One round trip.
pub async fn logout(app: &'static App, req: Request) -> http::Result<Response> {
    let body: RefreshBody = json_body(&req)?;
    service::logout(app, &body.refresh).await?;
    http::ok(&Message { message: "Successfully logged out" })
}

pub const AUTH_TOKEN_REFRESH: Function = Function::http(
    "auth-token-refresh",
    "POST",
    "/api/v1/auth/token/refresh/",
    "Rotate a refresh token (SmartLock)",
    |app, req| Box::pin(refresh(app, req)),
)
.doc(|| {
    Op::new()
        .describe("The refresh token is used up; the answer carries its successor.")
        .json(schema_of::<RefreshBody>)
        .reply(200, "A new access and refresh token", schema_of::<super::types::TokenPair>)
        .errors(&[401])
})
.uses(&[Uses::TableWrite]);

/// `POST /api/v1/auth/token/refresh/`: a new access and refresh token; the old refresh token is used up.
pub async fn refresh(app: &'static App, req: Request) -> http::Result<Response> {
    let body: RefreshBody = json_body(&req)?;
    let (_, tokens) = service::refresh(app, &body.refresh).await?;
    http::ok(&tokens)
}

pub const USERS_PROFILE_GET: Function = Function::http(
    "users-profile-get",
    "GET",
    "/api/v1/users/profile/",
    "The caller's profile (SmartLock)",
    |app, req| Box::pin(profile_get(app, req)),
)
.auth(Auth::USER)
.doc(|| Op::new().reply(200, "The caller", schema_of::<super::types::UserView>))
.uses(&[Uses::TableRead]);

/// `GET /api/v1/users/profile/`: the caller. One round trip.
pub async fn profile_get(app: &'static App, req: Request) -> http::Result<Response> {
    let principal = auth::principal(&req)?;
    let user = service::get_user(app, &principal.user_id).await?.ok_or(IdentityError::UserNotFound)?;
    http::ok(&UserView::from(&user))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ProfileBody {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub telegram_chat_id: Option<String>,
}

pub const USERS_PROFILE_PUT: Function = Function::http(
    "users-profile-put",
    "PUT",
    "/api/v1/users/profile/",
    "Update the caller's profile (SmartLock)",
    |app, req| Box::pin(profile_put(app, req)),
)
.auth(Auth::FRESH_USER)
.doc(|| {
    Op::new()
        .describe(
            "Changes names, phone number and Telegram chat id; the email stays. A new phone number is contact \
             data (unique among profiles) until proven with an OTP (`verify-otp` with this bearer token).",
        )
        .json(schema_of::<ProfileBody>)
        .example(json!({"first_name": "John", "last_name": "Doe", "phone_number": "+1234567890"}))
        .reply(200, "The updated caller", schema_of::<super::types::UserView>)
})
.uses(&[Uses::TableWrite]);

/// `PUT /api/v1/users/profile/`: changes names, phone number, Telegram chat id. Email stays. A new
/// phone number is contact data (unique among profiles) until proven with an OTP.
pub async fn profile_put(app: &'static App, req: Request) -> http::Result<Response> {
    let principal = auth::principal(&req)?;
    let body: ProfileBody = json_body(&req)?;
    let user = service::update_profile(
        app,
        &principal.user_id,
        ProfileChanges {
            first_name: body.first_name,
            last_name: body.last_name,
            phone: body.phone_number,
            telegram_chat_id: body.telegram_chat_id,
        },
    )
    .await?;
    http::ok(&UserView::from(&user))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChangePasswordBody {
    pub old_password: String,
    pub new_password: String,
    pub new_password_confirm: String,
}

pub const USERS_CHANGE_PASSWORD: Function = Function::http(
    "users-change-password",
    "POST",
    "/api/v1/users/change-password/",
    "Change the caller's password (SmartLock)",
    |app, req| Box::pin(change_password(app, req)),
)
.auth(Auth::FRESH_USER)
.doc(|| {
    Op::new().describe("Every refresh token issued before stops working.").json(schema_of::<ChangePasswordBody>).reply(
        200,
        "Changed",
        schema_of::<Message>,
    )
})
.uses(&[Uses::TableWrite]);

/// `POST /api/v1/users/change-password/`: every refresh token issued before stops working.
pub async fn change_password(app: &'static App, req: Request) -> http::Result<Response> {
    let principal = auth::principal(&req)?;
    let body: ChangePasswordBody = json_body(&req)?;
    service::change_password(
        app,
        &principal.user_id,
        &body.old_password,
        &body.new_password,
        &body.new_password_confirm,
    )
    .await?;
    http::ok(&Message { message: "Password changed successfully" })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RequestOtpBody {
    pub phone: String,
    #[serde(default)]
    pub role: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OtpRequested {
    request_id: String,
    ttl: i64,
    message: String,
    /// The code itself, in dev mode only.
    #[serde(skip_serializing_if = "Option::is_none")]
    dev_otp: Option<String>,
}

pub const AUTH_REQUEST_OTP: Function = Function::http(
    "auth-request-otp",
    "POST",
    "/api/v1/auth/request-otp/",
    "Request a login code by SMS (HunarMitra)",
    |app, req| Box::pin(request_otp(app, req)),
)
.doc(|| {
    Op::new()
        .describe("Sends a login code by SMS. `dev_otp` carries the code in dev mode only.")
        .json(schema_of::<RequestOtpBody>)
        .example(json!({"phone": "+919876543210", "role": "worker"}))
        .reply(200, "The code was sent", schema_of::<OtpRequested>)
        .reply_example(json!({"request_id": "0190c3e5-7d2a-7c4e-9f51-2b8c1d6a4e10", "ttl": 300,
                "message": "OTP sent to +919876543210", "dev_otp": "123456"}))
        .errors(&[429])
})
.uses(&[Uses::TableWrite, Uses::Send(&crate::notifications::QUEUE)]);

/// `POST /api/v1/auth/request-otp/` (seed 004): sends a code by SMS; 429 with `Retry-After` when the phone asked
/// too often. One transaction and one queue send.
pub async fn request_otp(app: &'static App, req: Request) -> http::Result<Response> {
    let body: RequestOtpBody = json_body(&req)?;
    let role = match body.role.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        None => Role::Member,
        Some(r) => serde_json::from_value(serde_json::Value::String(r.to_string())).map_err(|_| {
            let shown: String = r.chars().take(32).collect();
            ApiError::invalid_field("role", "invalid_choice", format!("\"{shown}\" is not a valid choice."))
        })?,
    };
    let requested = match otp::request(app, &body.phone, role).await {
        Ok(requested) => requested,
        Err(e) => return Ok(refused_login(e, |e| e)),
    };
    let dev = app.config.env == crate::platform::config::Env::Dev;
    http::ok(&OtpRequested {
        request_id: requested.request_id,
        ttl: requested.ttl_secs,
        message: format!("OTP sent to {}", requested.phone),
        dev_otp: dev.then_some(requested.code),
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct VerifyOtpBody {
    #[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$", example = "0190c3e5-7d2a-7c4e-9f51-2b8c1d6a4e10")]
    pub request_id: OtpRequestId,
    pub otp: serde_json::Value,
}

/// The user as HunarMitra shows it: the common view plus `phone`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PhoneUserView {
    #[serde(flatten)]
    view: UserView,
    phone: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OtpSession {
    access: String,
    refresh: String,
    user: PhoneUserView,
    is_new_user: bool,
}

pub const AUTH_VERIFY_OTP: Function = Function::http(
    "auth-verify-otp",
    "POST",
    "/api/v1/auth/verify-otp/",
    "Log in with a phone and its code (HunarMitra)",
    |app, req| Box::pin(verify_otp(app, req)),
)
.doc(|| {
    Op::new()
        .describe(
            "Tokens for the user that proved the phone, created on its first login (a profile that only showed \
             the number unproven loses it). With `Authorization: Bearer <access>`, the code proves the caller's \
             own profile number instead, which becomes their login identity (400 `phone_not_in_profile` for \
             another number). The code may be a string or a number.",
        )
        .json(schema_of::<VerifyOtpBody>)
        .example(json!({"request_id": "0190c3e5-7d2a-7c4e-9f51-2b8c1d6a4e10", "otp": "123456"}))
        .reply(200, "The user and a token pair", schema_of::<OtpSession>)
        .errors(&[401, 429])
})
.uses(&[Uses::TableWrite]);

/// `POST /api/v1/auth/verify-otp/` (seed 004): tokens for the user that proved the phone, created
/// on first login. With `Authorization: Bearer <access>` the code proves the caller's own profile
/// number instead (see [`otp::verify`]); an invalid token is 401.
pub async fn verify_otp(app: &'static App, req: Request) -> http::Result<Response> {
    let caller = match auth::bearer_token(&req) {
        None => None,
        Some(token) => {
            let claims = Tokens::from_config(&app.config)
                .verify(token, tokens::ACCESS, app.clock.now_secs())
                .map_err(IdentityError::from)?;
            Some(otp::Caller { user_id: claims.sub, generation: claims.generation })
        }
    };
    let body: VerifyOtpBody = json_body(&req)?;
    // Clients send the code as a string or as a number, which loses leading zeros: 1234 is 001234.
    let code = match &body.otp {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) if n.is_u64() => {
            format!("{:0>width$}", n.as_u64().unwrap_or_default(), width = app.config.otp_length as usize)
        }
        _ => return Err(ApiError::invalid_field("otp", "invalid", "The OTP must be a string of digits.")),
    };
    let verified = otp::verify(app, &body.request_id, &code, caller).await?;
    http::ok(&OtpSession {
        access: verified.tokens.access,
        refresh: verified.tokens.refresh,
        user: PhoneUserView { phone: verified.user.phone.clone(), view: UserView::from(&verified.user) },
        is_new_user: verified.is_new_user,
    })
}
