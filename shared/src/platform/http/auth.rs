//! Bearer-token hooks. The platform only extracts the token and enforces the
//! route's requirement; verifying tokens belongs to the identity module,
//! which installs its [`TokenVerifier`] in the [`App`](crate::App).

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{ApiError, Request};
use crate::App;

/// What a user may do. Seeds 001 and 003 name these roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Staff,
    Member,
    Worker,
    Contractor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::Member => "member",
            Role::Worker => "worker",
            Role::Contractor => "contractor",
        }
    }
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub role: String,
    /// The user's token generation when the token was issued (`None` in tokens from before it
    /// was carried); a fresh check refuses a token of an older generation.
    pub generation: Option<i64>,
}

/// Verifies an access token (the part after `Bearer `).
pub trait TokenVerifier: Send + Sync {
    /// The signature, type and expiry: no store round trip.
    fn verify(&self, token: &str) -> Result<Principal, ApiError>;

    /// The principal as the store says it is now (one read): 401 when the user is gone,
    /// inactive or the token's generation is outdated; the role is the stored one.
    fn current<'a>(&'a self, app: &'a App, principal: Principal) -> BoxFuture<'a, Result<Principal, ApiError>>;
}

/// The verifier until the identity module installs one: no token is valid.
pub struct RejectAll;

impl TokenVerifier for RejectAll {
    fn verify(&self, _token: &str) -> Result<Principal, ApiError> {
        Err(ApiError::unauthorized("token_not_valid", "Given token not valid for any token type"))
    }

    fn current<'a>(&'a self, _app: &'a App, _principal: Principal) -> BoxFuture<'a, Result<Principal, ApiError>> {
        Box::pin(async { Err(ApiError::unauthorized("token_not_valid", "Given token not valid for any token type")) })
    }
}

/// The bearer token of the `Authorization` header, if any.
pub fn bearer_token(req: &Request) -> Option<&str> {
    let value = req.headers().get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// The principal the pipeline attached to an authenticated request.
pub fn principal(req: &Request) -> Result<&Principal, ApiError> {
    req.extensions()
        .get::<Principal>()
        .ok_or_else(|| ApiError::unauthorized("not_authenticated", "Authentication credentials were not provided."))
}
