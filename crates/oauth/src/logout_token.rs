//! Logout Token validation (OpenID Connect Back-Channel Logout 1.0 §2.6).
//!
//! A provider that ends a user's session there `POST`s a Logout Token to the
//! relying party. It is a JWT like an ID token, and checked the same way up
//! to the signature ([`Provider::verified_payload`]: allowed `alg`, key by
//! `kid` from the provider's cached JWKS, signature). Then its own rules, in
//! this order: `typ` absent, `JWT` or `logout+jwt`; `iss` is the provider's
//! issuer; `aud` contains our client id; `iat` present, not in the future
//! beyond the leeway and not older than [`MAX_LOGOUT_TOKEN_AGE`]; `exp`, if
//! present, not past (plus leeway); `jti` present; `events` holds the
//! member [`BACKCHANNEL_LOGOUT_EVENT`] whose value is a JSON object; no
//! `nonce` (so an ID token is never taken for a Logout Token); `sub` or
//! `sid` present.
//!
//! Replays (`jti` seen before) are the caller's check: it keeps the `jti`s
//! it accepted until [`LogoutClaims::accepted_until`], after which this
//! module refuses the token as too old anyway.

use crate::id_token::IdTokenError;
use crate::provider::Provider;
use authgate_core::time::UnixTime;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use std::time::Duration;

/// The `events` member that makes a JWT a Logout Token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How old (by `iat`) a Logout Token may be, plus the provider's leeway.
/// Providers send it at once (`oidc-provider` gives it a two-minute `exp`).
pub const MAX_LOGOUT_TOKEN_AGE: Duration = Duration::from_secs(300);

/// What a valid Logout Token says: whose sessions end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutClaims {
    /// The user at the provider (`sub`), if named.
    pub sub: Option<String>,
    /// The provider's session (`sid`), if named.
    pub sid: Option<String>,
    /// The token's unique id (`jti`), for replay detection.
    pub jti: String,
    /// Until when (epoch seconds) this token would still be accepted: how
    /// long its `jti` must be remembered.
    pub accepted_until: UnixTime,
}

/// Why a Logout Token was refused. [`LogoutTokenError::check`] names the
/// failed check for logs; no variant carries the token.
#[derive(Debug, thiserror::Error)]
pub enum LogoutTokenError {
    /// Header, key or signature (the ID-token machinery's failure).
    #[error("logout token signature: {0}")]
    Jws(#[source] IdTokenError),
    /// The payload is not a JSON object.
    #[error("logout token payload is not a JSON object")]
    Malformed,
    /// The header's `typ` is neither `JWT` nor `logout+jwt`.
    #[error("logout token has typ {0:?}")]
    WrongType(String),
    /// `iss` is missing or not the provider's issuer.
    #[error("logout token from issuer {found:?}, expected {expected:?}")]
    WrongIssuer {
        /// The provider's issuer.
        expected: String,
        /// The token's `iss` (at most 64 characters), if any.
        found: Option<String>,
    },
    /// `aud` does not contain our client id.
    #[error("logout token not issued for this client")]
    WrongAudience,
    /// `iat` is missing or not a number.
    #[error("logout token has no iat")]
    MissingIssuedAt,
    /// `iat` (minus leeway) is in the future.
    #[error("logout token issued in the future ({iat})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
    },
    /// `iat` is older than [`MAX_LOGOUT_TOKEN_AGE`] plus leeway.
    #[error("logout token too old (iat {iat})")]
    TooOld {
        /// The token's `iat`.
        iat: i64,
    },
    /// `exp` is present and (plus leeway) past, or not a number.
    #[error("logout token expired or with an invalid exp")]
    Expired,
    /// `jti` is missing or empty.
    #[error("logout token has no jti")]
    MissingJti,
    /// `events` lacks the back-channel logout member (an object).
    #[error("logout token has no back-channel logout event")]
    MissingEvent,
    /// A `nonce` is present (forbidden in Logout Tokens).
    #[error("logout token carries a nonce")]
    NonceForbidden,
    /// Neither `sub` nor `sid` (as non-empty strings).
    #[error("logout token names neither sub nor sid")]
    NoSubject,
}

impl LogoutTokenError {
    /// A short stable name of the failed check, for logs and metric labels.
    pub fn check(&self) -> &'static str {
        match self {
            Self::Jws(IdTokenError::Jwks(_)) => "jwks",
            Self::Jws(_) => "signature",
            Self::Malformed => "payload",
            Self::WrongType(_) => "typ",
            Self::WrongIssuer { .. } => "iss",
            Self::WrongAudience => "aud",
            Self::MissingIssuedAt | Self::IssuedInFuture { .. } | Self::TooOld { .. } => "iat",
            Self::Expired => "exp",
            Self::MissingJti => "jti",
            Self::MissingEvent => "events",
            Self::NonceForbidden => "nonce",
            Self::NoSubject => "sub_or_sid",
        }
    }

    /// Whether the provider's keys could not be fetched (not the token's
    /// fault: worth a retry by the provider).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Jws(IdTokenError::Jwks(_)))
    }
}

fn non_empty_string(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn numeric(claims: &Map<String, Value>, name: &str) -> Option<Option<i64>> {
    match claims.get(name) {
        None => Some(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some),
    }
}

/// The header's `typ`, if any (the header was already parsed once by the
/// signature check, so it is valid base64url JSON here).
fn header_type(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    header.get("typ").and_then(Value::as_str).map(str::to_owned)
}

impl Provider {
    /// Verifies a Logout Token from this provider and returns whom it logs
    /// out (see the [module docs](crate::logout_token) for the checks).
    pub async fn verify_logout_token(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<LogoutClaims, LogoutTokenError> {
        let claims: Value = self
            .verified_payload(token, now)
            .await
            .map_err(LogoutTokenError::Jws)?;
        let Value::Object(claims) = claims else {
            return Err(LogoutTokenError::Malformed);
        };
        if let Some(typ) = header_type(token) {
            let t = typ.to_ascii_lowercase();
            let t = t.strip_prefix("application/").unwrap_or(&t);
            if t != "jwt" && t != "logout+jwt" {
                return Err(LogoutTokenError::WrongType(typ.chars().take(32).collect()));
            }
        }
        self.check_logout_claims(&claims, now)
    }

    fn check_logout_claims(
        &self,
        claims: &Map<String, Value>,
        now: UnixTime,
    ) -> Result<LogoutClaims, LogoutTokenError> {
        let expected = self.issuer.clone().unwrap_or_default();
        let iss = claims.get("iss").and_then(Value::as_str);
        if iss != Some(expected.as_str())
            && !iss.is_some_and(|i| self.quirks.alternate_issuers.iter().any(|a| a == i))
        {
            return Err(LogoutTokenError::WrongIssuer {
                expected,
                found: iss.map(|i| i.chars().take(64).collect()),
            });
        }
        let for_us = match claims.get("aud") {
            Some(Value::String(aud)) => aud == &self.client_id,
            Some(Value::Array(auds)) => auds
                .iter()
                .any(|a| a.as_str() == Some(self.client_id.as_str())),
            _ => false,
        };
        if !for_us {
            return Err(LogoutTokenError::WrongAudience);
        }
        let leeway = i64::try_from(self.id_token_settings.leeway.as_secs()).unwrap_or(i64::MAX);
        let max_age = i64::try_from(MAX_LOGOUT_TOKEN_AGE.as_secs()).unwrap_or(i64::MAX);
        let now = now.as_secs();
        let iat = numeric(claims, "iat")
            .flatten()
            .ok_or(LogoutTokenError::MissingIssuedAt)?;
        if iat > now.saturating_add(leeway) {
            return Err(LogoutTokenError::IssuedInFuture { iat });
        }
        let accepted_until = iat.saturating_add(max_age).saturating_add(leeway);
        if now > accepted_until {
            return Err(LogoutTokenError::TooOld { iat });
        }
        match numeric(claims, "exp") {
            None => return Err(LogoutTokenError::Expired),
            Some(Some(exp)) if now > exp.saturating_add(leeway) => {
                return Err(LogoutTokenError::Expired);
            }
            Some(_) => {}
        }
        let jti = non_empty_string(claims, "jti").ok_or(LogoutTokenError::MissingJti)?;
        let event = claims
            .get("events")
            .and_then(Value::as_object)
            .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT));
        if !matches!(event, Some(Value::Object(_))) {
            return Err(LogoutTokenError::MissingEvent);
        }
        if claims.contains_key("nonce") {
            return Err(LogoutTokenError::NonceForbidden);
        }
        let sub = non_empty_string(claims, "sub");
        let sid = non_empty_string(claims, "sid");
        if sub.is_none() && sid.is_none() {
            return Err(LogoutTokenError::NoSubject);
        }
        Ok(LogoutClaims {
            sub,
            sid,
            jti,
            accepted_until: UnixTime::from_secs(accepted_until),
        })
    }
}
