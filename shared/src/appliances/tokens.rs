//! The appliance flow's tokens: challenge (60 s) → access (5 min) → start
//! (bound to one run). Each names its room and endpoint and carries the
//! endpoint's `token_version`; they are signed with the JWT keys of
//! `PREMISES_JWT_KEYS` but can never pass for a user's token (other claims).

use serde::{Deserialize, Serialize};

use crate::App;
use crate::identity::tokens::Tokens;
use crate::platform::http::ApiError;

pub const CHALLENGE_TTL_SECS: i64 = 60;
pub const ACCESS_TTL_SECS: i64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ApplianceChallenge,
    ApplianceAccess,
    ApplianceStart,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApplianceClaims {
    pub kind: Kind,
    pub room: String,
    /// The endpoint id.
    pub ep: String,
    /// The endpoint's token_version when issued.
    pub tv: i64,
    /// Start tokens: the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    pub iat: i64,
    pub exp: i64,
}

pub fn invalid() -> ApiError {
    ApiError::unauthorized("token_invalid", "The token is invalid, expired, revoked or of the wrong kind.")
}

/// Signs a token of `kind` valid for `ttl_secs`.
pub fn sign(
    app: &App,
    kind: Kind,
    room: &str,
    endpoint: &str,
    tv: i64,
    run: Option<&str>,
    ttl_secs: i64,
) -> Result<String, ApiError> {
    let now = app.clock.now_secs();
    let claims = ApplianceClaims {
        kind,
        room: room.to_string(),
        ep: endpoint.to_string(),
        tv,
        run: run.map(str::to_string),
        iat: now,
        exp: now + ttl_secs,
    };
    Tokens::from_config(&app.config).sign_claims(&claims).map_err(ApiError::internal)
}

/// The claims of a valid, unexpired token of `kind`; 401 `token_invalid` otherwise.
/// `endpoint`: the endpoint the request arrived from (MQTT), which the token must name.
pub fn verify(app: &App, token: &str, kind: Kind, endpoint: Option<&str>) -> Result<ApplianceClaims, ApiError> {
    let claims: ApplianceClaims = Tokens::from_config(&app.config).decode_claims(token).map_err(|_| invalid())?;
    if claims.kind != kind || claims.exp <= app.clock.now_secs() || endpoint.is_some_and(|e| e != claims.ep) {
        return Err(invalid());
    }
    Ok(claims)
}
