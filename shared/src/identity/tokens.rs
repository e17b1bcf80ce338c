//! JWTs (HS256): access tokens verified statelessly, refresh tokens whose
//! rotation and revocation the [`service`](super::service) tracks in the store.
//!
//! Keys come from `PREMISES_JWT_KEYS`: the first signs (its `kid` goes in the
//! header), every key verifies, so a key can be rotated in without logging anyone out.

use std::collections::HashSet;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use futures::future::BoxFuture;

use crate::App;
use crate::platform::clock::Clock;
use crate::platform::config::Config;
use crate::platform::http::ApiError;
use crate::platform::http::auth::{Principal, TokenVerifier};

pub const ACCESS: &str = "access";
pub const REFRESH: &str = "refresh";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub jti: String,
    pub sub: String,
    pub role: String,
    /// `access` or `refresh`.
    pub typ: String,
    pub exp: i64,
    pub iat: i64,
    /// Refresh tokens: the family (login session) the token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
    /// Refresh tokens: the user's token generation when issued (a password change bumps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token not valid")]
    Invalid,
    #[error("token expired")]
    Expired,
    #[error("signing failed: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// The keys and lifetimes of `PREMISES_JWT_*`.
pub struct Tokens {
    keys: Vec<SigningKey>,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
}

impl Tokens {
    pub fn from_config(config: &Config) -> Self {
        let keys = config
            .jwt_keys
            .iter()
            .map(|k| SigningKey {
                kid: k.kid.clone(),
                encoding: EncodingKey::from_secret(k.secret.as_bytes()),
                decoding: DecodingKey::from_secret(k.secret.as_bytes()),
            })
            .collect();
        Tokens { keys, access_ttl_secs: config.jwt_access_ttl_secs, refresh_ttl_secs: config.jwt_refresh_ttl_secs }
    }

    /// Signs with the first key.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        self.sign_claims(claims)
    }

    /// Signs any claims with the first key (other modules' tokens share the keys).
    pub fn sign_claims<C: Serialize>(&self, claims: &C) -> Result<String, TokenError> {
        let key = self.keys.first().ok_or(TokenError::Invalid)?;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// Checks the signature (by `kid`) and decodes the claims; type and expiry are the caller's to check.
    pub fn decode_claims<C: DeserializeOwned>(&self, token: &str) -> Result<C, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or(TokenError::Invalid)?;
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the injectable clock by the caller.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        Ok(jsonwebtoken::decode::<C>(token, &key.decoding, &validation).map_err(|_| TokenError::Invalid)?.claims)
    }

    /// Verifies signature (by `kid`), type and expiry at `now_secs`.
    pub fn verify(&self, token: &str, typ: &str, now_secs: i64) -> Result<Claims, TokenError> {
        let claims: Claims = self.decode_claims(token)?;
        if claims.typ != typ {
            return Err(TokenError::Invalid);
        }
        if claims.exp <= now_secs {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// The platform's bearer check: a valid, unexpired access token (no store round trip), and for
/// fresh routes the stored user (one GetItem).
pub struct JwtVerifier {
    tokens: Tokens,
    clock: Clock,
}

impl JwtVerifier {
    pub fn new(config: &Config, clock: Clock) -> Self {
        JwtVerifier { tokens: Tokens::from_config(config), clock }
    }
}

impl TokenVerifier for JwtVerifier {
    fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let claims = self
            .tokens
            .verify(token, ACCESS, self.clock.now_secs())
            .map_err(|_| ApiError::unauthorized("token_not_valid", "Given token not valid for any token type"))?;
        Ok(Principal { user_id: claims.sub, role: claims.role, generation: claims.generation })
    }

    fn current<'a>(&'a self, app: &'a App, principal: Principal) -> BoxFuture<'a, Result<Principal, ApiError>> {
        Box::pin(async move {
            let user = super::service::get_user(app, &principal.user_id).await.map_err(ApiError::from)?;
            let Some(user) = user else { return Err(stale()) };
            if !user.is_active {
                return Err(ApiError::unauthorized("user_inactive", "User is inactive."));
            }
            // Tokens from before a password change (which bumps the generation) stop here.
            if principal.generation.is_some_and(|g| g != user.token_generation) {
                return Err(stale());
            }
            Ok(Principal { role: user.role.as_str().to_string(), ..principal })
        })
    }
}

fn stale() -> ApiError {
    ApiError::unauthorized("token_not_valid", "Given token not valid for any token type")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(keys: &str) -> Config {
        Config::from_vars([("PREMISES_JWT_KEYS".to_string(), keys.to_string())]).unwrap()
    }

    fn claims(typ: &str, exp: i64) -> Claims {
        Claims {
            jti: "j".into(),
            sub: "u".into(),
            role: "member".into(),
            typ: typ.into(),
            exp,
            iat: 0,
            fam: None,
            generation: None,
        }
    }

    const OLD: &str = "old:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const NEW: &str = "new:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn a_token_signed_with_a_retired_signing_key_still_verifies_after_rotation() {
        let before = Tokens::from_config(&config(OLD));
        let token = before.sign(&claims(ACCESS, 100)).unwrap();
        let after = Tokens::from_config(&config(&format!("{NEW},{OLD}")));
        assert_eq!(after.verify(&token, ACCESS, 50).unwrap().sub, "u");
        let only_new = Tokens::from_config(&config(NEW));
        assert!(matches!(only_new.verify(&token, ACCESS, 50), Err(TokenError::Invalid)));
    }

    #[test]
    fn expired_wrong_type_and_tampered_tokens_are_rejected() {
        let t = Tokens::from_config(&config(OLD));
        let token = t.sign(&claims(REFRESH, 100)).unwrap();
        assert!(matches!(t.verify(&token, REFRESH, 100), Err(TokenError::Expired)));
        assert!(matches!(t.verify(&token, ACCESS, 50), Err(TokenError::Invalid)));
        let mut tampered = token.clone();
        tampered.push('x');
        assert!(matches!(t.verify(&tampered, REFRESH, 50), Err(TokenError::Invalid)));
        assert!(t.verify(&token, REFRESH, 50).is_ok());
    }
}
