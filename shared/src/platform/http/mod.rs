//! HTTP plumbing shared by every HTTP function: the error type and its
//! response shape, JSON bodies, path and query parameters, and the request
//! pipeline ([`dispatch`]) that applies the body limit, CORS, the route's
//! auth requirement and the security headers around each handler.

pub mod auth;
pub mod page;
pub mod router;

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures::FutureExt;
use http::{HeaderValue, Method, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::App;
use crate::platform::function::{Auth, ErrorShape, Function, Route};
use crate::platform::store::StoreError;

pub use auth::Principal;

/// The request as `lambda_http` delivers it.
pub type Request = lambda_http::Request;
pub type Response = http::Response<Body>;
pub type Result<T = Response, E = ApiError> = std::result::Result<T, E>;

/// An error a handler returns: a status, a stable machine `code`, a human
/// message and, for bad input, the field at fault. Rendered DRF-style as
/// `{"detail": …, "code": …, "field": …}` unless `body` overrides the shape
/// (seeds with their own envelope).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    pub field: Option<String>,
    pub body: Option<serde_json::Value>,
    /// The cause of a 5xx; logged, never sent.
    pub source: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ApiError { status, code: code.into(), message: message.into(), field: None, body: None, source: None }
    }
    pub fn bad_request(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// 400 naming the field at fault.
    pub fn invalid_field(
        field: impl Into<String>,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        let mut e = Self::bad_request(code, message);
        e.field = Some(field.into());
        e
    }
    pub fn unauthorized(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn forbidden(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }
    pub fn not_found(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn conflict(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    /// A 500 whose cause is logged with its chain and hidden from the client.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal server error.");
        e.source = Some(source.into());
        e
    }
    /// The same status and code in Circle Time's envelope `{"success": false, "message", "code", "field"?}`.
    pub fn enveloped(self) -> Self {
        let mut body = serde_json::json!({"success": false, "message": self.message, "code": self.code});
        if let Some(field) = &self.field {
            body["field"] = serde_json::Value::String(field.clone());
        }
        self.with_body(body)
    }

    /// Replaces the default body with a seed-specific one (same status and code).
    pub fn with_body(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn into_response(self) -> Response {
        let (status, body) = self.into_parts();
        json_response(status, &body)
    }

    /// The status and JSON body the response carries (transports other than HTTP answer the same). Logs a 5xx's cause.
    pub fn into_parts(self) -> (StatusCode, serde_json::Value) {
        if let Some(source) = &self.source {
            tracing::error!(code = %self.code, error = %format!("{source:#}"), "request failed");
        }
        let body = self.body.unwrap_or_else(|| {
            let mut body = serde_json::json!({"detail": self.message, "code": self.code});
            if let Some(field) = self.field {
                body["field"] = serde_json::Value::String(field);
            }
            body
        });
        (self.status, body)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

/// The cause of a 5xx is the error's source, so `{:#}` and error reporters print the whole chain.
impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadCursor => ApiError::bad_request("invalid_cursor", "The pagination cursor is not valid."),
            other => ApiError::internal(other),
        }
    }
}

/// A JSON response.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => http::Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::Binary(bytes))
            .unwrap_or_else(|_| plain_500()),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// 200 with a JSON body.
pub fn ok<T: Serialize + ?Sized>(value: &T) -> Result {
    Ok(json_response(StatusCode::OK, value))
}

/// 204 without a body.
pub fn no_content() -> Response {
    let mut r = http::Response::new(Body::Empty);
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

fn plain_500() -> Response {
    let mut r = http::Response::new(Body::Text("Internal server error.".into()));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r
}

/// Parses the JSON body into `T`; 400 naming the field on failure.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("empty_body", "A JSON body is required."));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::bad_request("malformed_json", format!("The body is not valid JSON: {inner}"));
        }
        // serde reports a missing field at its parent; name the field itself.
        let message = inner.to_string();
        let field = match message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
            Some(missing) if path == "." => missing.to_string(),
            Some(missing) => format!("{path}.{missing}"),
            None => path,
        };
        let text = message.split(" at line ").next().unwrap_or(&message).to_string();
        let code = if text.starts_with("missing field") { "required" } else { "invalid" };
        ApiError::invalid_field(field, code, text)
    })
}

/// A path parameter the route declares (`{name}`). One longer than any id
/// ([`MAX_ID_LEN`](crate::platform::id::MAX_ID_LEN)) or with a control character is 404: no
/// item has such a key, and the store must never be asked for one.
pub fn path_param<'r>(req: &'r Request, name: &str) -> Result<&'r str> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .filter(|v| v.len() <= crate::platform::id::MAX_ID_LEN && !v.chars().any(char::is_control))
        .ok_or_else(|| ApiError::not_found("not_found", "Not found."))
}

/// A query-string parameter, if present.
pub fn query_param<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.query_string_parameters_ref().and_then(|q| q.first(name))
}

/// The API Gateway request id (or the Lambda invocation id).
pub fn request_id(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone().unwrap_or_default(),
        _ => req.lambda_context_ref().map(|c| c.request_id.clone()).unwrap_or_default(),
    }
}

/// The client's address as API Gateway saw it (`requestContext.http.sourceIp`).
pub fn source_ip(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone().filter(|ip| !ip.is_empty()),
        _ => None,
    }
}

/// Runs one HTTP function on one request: the same pipeline under Lambda and locally.
pub async fn dispatch(app: &'static App, function: &'static Function, req: Request) -> Response {
    let Some(route) = function.route() else {
        return ApiError::internal(anyhow::anyhow!("function {} has no HTTP trigger", function.name)).into_response();
    };
    let handler = route.handler;
    let started = Instant::now();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id(&req),
        function = function.name,
        method = %req.method(),
        path = %req.uri().path(),
    );
    async move {
        let origin = req.headers().get(header::ORIGIN).cloned();
        let mut response = if req.method() == Method::OPTIONS {
            preflight()
        } else {
            match admit(app, route, req).await {
                Err(e) => {
                    let e = match route.errors {
                        ErrorShape::Detail => e,
                        ErrorShape::Envelope => e.enveloped(),
                    };
                    let mut response = e.into_response();
                    if response.status() == StatusCode::UNAUTHORIZED && matches!(route.auth, Auth::Bearer { .. }) {
                        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                    }
                    response
                }
                Ok(req) => match AssertUnwindSafe(handler(app, req)).catch_unwind().await {
                    Ok(Ok(r)) => r,
                    Ok(Err(e)) => e.into_response(),
                    Err(_) => ApiError::internal(anyhow::anyhow!("handler panicked")).into_response(),
                },
            }
        };
        decorate(&app.config.cors_origin, origin, &mut response);
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "handled"
        );
        response
    }
    .instrument(span)
    .await
}

/// Checks what must hold before the handler runs: body size and authentication (for a fresh
/// route, against the stored user).
async fn admit(app: &'static App, route: &Route, mut req: Request) -> Result<Request> {
    if req.body().len() > app.config.max_body_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The body exceeds {} bytes.", app.config.max_body_bytes),
        ));
    }
    match route.auth {
        Auth::Public | Auth::Device => {}
        Auth::Bearer { roles, fresh } => {
            let token = auth::bearer_token(&req).ok_or_else(|| {
                ApiError::unauthorized("not_authenticated", "Authentication credentials were not provided.")
            })?;
            let mut principal = app.auth.verify(token)?;
            if fresh || !roles.is_empty() {
                principal = app.auth.current(app, principal).await?;
            }
            if !roles.is_empty() && !roles.iter().any(|r| r.as_str() == principal.role) {
                return Err(ApiError::forbidden(
                    "permission_denied",
                    "You do not have permission to perform this action.",
                ));
            }
            req.extensions_mut().insert(principal);
        }
    }
    Ok(req)
}

/// The answer to a CORS preflight (`OPTIONS`) request.
pub fn preflight() -> Response {
    let mut r = http::Response::new(Body::Empty);
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, x-endpoint-key"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    r
}

/// CORS and security headers on every response (also the local stack's own 404/405).
pub fn decorate(cors_origin: &str, origin: Option<HeaderValue>, response: &mut Response) {
    let h = response.headers_mut();
    let allow = if cors_origin == "*" {
        Some(HeaderValue::from_static("*"))
    } else {
        origin.filter(|o| cors_origin.split(',').any(|allowed| allowed.trim().as_bytes() == o.as_bytes()))
    };
    if let Some(allow) = allow {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        if cors_origin != "*" {
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}
