//! Bearer tokens for API clients: a JWT access token (RFC 9068, or any
//! JWT a provider issues for a resource) verified against the issuing
//! provider's JWKS — the same cache, the same `kid` refetch limit and the
//! same algorithm rules as ID tokens ([`crate::id_token`]).
//!
//! Order of checks ([`Catalog::verify_bearer`]): the compact JWS's header
//! (`alg` never `none` nor HMAC, no `crit`, `typ` absent, `JWT` or
//! `at+jwt`); the *unverified* payload's `iss` picks the provider among those
//! with [`BearerSettings`] (an `iss` naming none is refused before any key is
//! fetched); the `alg` must be on that provider's bearer allow-list; the key
//! is found by `kid` in that provider's JWKS and must fit the `alg`; the
//! signature; then the claims: `iss` again (now verified), `aud` intersecting
//! the configured audiences, `exp` required and in the future, `nbf` and
//! `iat` not in the future — all with the provider's ID-token leeway.
//!
//! Verifying never refreshes, stores or creates anything: the caller gets
//! the claims and the provider they came from.

use crate::catalog::Catalog;
use crate::id_token::{ALLOWED_ALGORITHMS, IdTokenClaims, IdTokenError, parse_header};
use crate::provider::Provider;
use authgate_core::attributes::{AttributeError, Attributes, ClaimPath};
use authgate_core::time::UnixTime;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// A provider's `bearer` setting: which audiences and algorithms its access
/// tokens may carry to be accepted as bearer tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerSettings {
    /// Accepted `aud` values (a token passes when one of its audiences is
    /// listed). Never empty.
    pub audiences: Vec<String>,
    /// Accepted signature algorithms; empty means every ID-token algorithm
    /// ([`ALLOWED_ALGORITHMS`]). Never `none`, never HMAC.
    pub algorithms: Vec<Algorithm>,
    /// Opaque (non-JWT) tokens are checked at the provider's RFC 7662
    /// introspection endpoint (at most one provider may: an opaque token
    /// names no issuer).
    pub introspect: bool,
}

impl BearerSettings {
    /// Whether `alg` is accepted.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        ALLOWED_ALGORITHMS.contains(&alg)
            && (self.algorithms.is_empty() || self.algorithms.contains(&alg))
    }
}

/// Parses a configured algorithm name: only the ID-token algorithms
/// ([`ALLOWED_ALGORITHMS`]) are accepted; `none` and `HS*` are refused with
/// a reason.
pub fn parse_bearer_algorithm(name: &str) -> Result<Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err("\"none\" is never accepted: an unsigned token proves nothing".into());
    }
    if name.to_ascii_uppercase().starts_with("HS") {
        return Err(format!(
            "{name:?} is never accepted: HMAC would need a secret shared with the provider, and a public key must never serve as one"
        ));
    }
    name.parse::<Algorithm>()
        .ok()
        .filter(|a| ALLOWED_ALGORITHMS.contains(a))
        .ok_or_else(|| {
            format!("unknown algorithm {name:?} (one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)")
        })
}

/// Why a bearer token was refused. [`BearerError::reason`] is the audit
/// vocabulary; the messages never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// Not a compact JWS, undecodable, a `crit` header, missing `iss`,
    /// `sub` or `exp`.
    #[error("malformed bearer token: {0}")]
    Malformed(String),
    /// `typ` is neither `JWT` nor `at+jwt`.
    #[error("bearer token type not accepted")]
    WrongType,
    /// `alg` is `none`, HMAC, not on the provider's list, or does not fit
    /// the key.
    #[error("bearer token algorithm not accepted")]
    Algorithm,
    /// `iss` names no provider that accepts bearer tokens.
    #[error("bearer token from an unknown issuer")]
    UnknownIssuer,
    /// No key of the issuer's JWKS has the token's `kid`.
    #[error("no signing key of the issuer matches the bearer token")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad bearer token signature")]
    Signature,
    /// No audience of the token is accepted.
    #[error("bearer token not issued for this API")]
    Audience,
    /// `exp` (plus leeway) is past.
    #[error("bearer token expired")]
    Expired,
    /// `nbf` or `iat` (minus leeway) is in the future.
    #[error("bearer token not valid yet")]
    NotYetValid,
    /// The issuer's keys could not be fetched.
    #[error("cannot get the issuer's signing keys")]
    KeysUnavailable,
    /// The introspection endpoint says the token is not active.
    #[error("bearer token not active")]
    Inactive,
    /// The introspection endpoint could not be asked.
    #[error("cannot introspect the bearer token")]
    IntrospectionUnavailable,
}

impl BearerError {
    /// The `reason` of a `bearer_refused` audit event: `malformed`, `type`,
    /// `algorithm`, `unknown_issuer`, `unknown_key`, `signature`,
    /// `audience`, `expired`, `not_yet_valid`, `keys_unavailable`.
    pub fn reason(&self) -> &'static str {
        match self {
            BearerError::Malformed(_) => "malformed",
            BearerError::WrongType => "type",
            BearerError::Algorithm => "algorithm",
            BearerError::UnknownIssuer => "unknown_issuer",
            BearerError::UnknownKey => "unknown_key",
            BearerError::Signature => "signature",
            BearerError::Audience => "audience",
            BearerError::Expired => "expired",
            BearerError::NotYetValid => "not_yet_valid",
            BearerError::KeysUnavailable => "keys_unavailable",
            BearerError::Inactive => "inactive",
            BearerError::IntrospectionUnavailable => "introspection_unavailable",
        }
    }
}

impl From<IdTokenError> for BearerError {
    fn from(e: IdTokenError) -> Self {
        match e {
            IdTokenError::AlgNotAllowed(_) => BearerError::Algorithm,
            IdTokenError::UnknownKid(_) => BearerError::UnknownKey,
            IdTokenError::BadSignature => BearerError::Signature,
            IdTokenError::Jwks(_) | IdTokenError::NotOidc => BearerError::KeysUnavailable,
            other => BearerError::Malformed(other.to_string()),
        }
    }
}

/// The claims of an access token as read for identity and rules.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AccessClaims {
    iss: String,
    sub: String,
    #[serde(default)]
    aud: Option<Value>,
    exp: serde_json::Number,
    #[serde(default)]
    nbf: Option<serde_json::Number>,
    #[serde(default)]
    iat: Option<serde_json::Number>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn seconds(n: &serde_json::Number) -> Option<i64> {
    n.as_i64()
        .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// A verified bearer token.
#[derive(Debug, Clone)]
pub struct VerifiedBearer {
    /// The provider that issued it.
    pub provider: Arc<Provider>,
    /// The token's `sub`.
    pub subject: String,
    /// The token's `name`, if any.
    pub name: Option<String>,
    /// `exp` (epoch seconds).
    pub expires_at: UnixTime,
    claims: IdTokenClaims,
}

impl VerifiedBearer {
    /// The groups, roles, preferred user name and rule claims the token's
    /// claims carry, read through the provider's group sources (as an ID
    /// token's are; no userinfo, no GitHub organisations).
    pub fn attributes(&self, rule_claims: &[ClaimPath]) -> Result<Attributes, AttributeError> {
        self.provider
            .read_attributes(Some(&self.claims), None, rule_claims)
    }
}

#[derive(Deserialize)]
struct TypHeader {
    #[serde(default)]
    typ: Option<String>,
}

fn unverified_iss(token: &str) -> Result<String, BearerError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload)) = (parts.next(), parts.next()) else {
        return Err(BearerError::Malformed("not a compact JWS".into()));
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| BearerError::Malformed("header is not base64url".into()))?;
    let typ: TypHeader = serde_json::from_slice(&header)
        .map_err(|_| BearerError::Malformed("header is not a JOSE header".into()))?;
    if let Some(typ) = typ.typ {
        let t = typ.to_ascii_lowercase();
        let t = t.strip_prefix("application/").unwrap_or(&t);
        if t != "jwt" && t != "at+jwt" {
            return Err(BearerError::WrongType);
        }
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| BearerError::Malformed("payload is not base64url".into()))?;
    let payload: Value = serde_json::from_slice(&payload)
        .map_err(|_| BearerError::Malformed("payload is not JSON".into()))?;
    payload
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| BearerError::Malformed("no iss".into()))
}

/// A refused bearer token: why, and the provider its `iss` named (once
/// known).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct BearerRefusal {
    /// The provider whose token it claimed to be, when its `iss` named one.
    pub provider: Option<String>,
    /// Why it was refused.
    #[source]
    pub error: BearerError,
}

impl From<BearerError> for BearerRefusal {
    fn from(error: BearerError) -> Self {
        BearerRefusal {
            provider: None,
            error,
        }
    }
}

impl Catalog {
    /// Whether any provider accepts bearer tokens.
    pub fn accepts_bearer(&self) -> bool {
        self.iter().any(|p| p.bearer.is_some())
    }

    /// Verifies a bearer token (see the [module docs](crate::bearer)).
    pub async fn verify_bearer(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<VerifiedBearer, BearerRefusal> {
        if token.split('.').count() != 3
            && let Some(provider) = self
                .iter()
                .find(|p| p.bearer.as_ref().is_some_and(|b| b.introspect))
            && let Some(settings) = &provider.bearer
        {
            return provider
                .introspect_bearer(token, settings, now)
                .await
                .map_err(|error| BearerRefusal {
                    provider: Some(provider.id.clone()),
                    error,
                });
        }
        let (alg, _kid) = parse_header(token).map_err(|e| match e {
            IdTokenError::AlgNotAllowed(_) => BearerError::Algorithm,
            other => BearerError::Malformed(other.to_string()),
        })?;
        let iss = unverified_iss(token)?;
        let provider = self
            .iter()
            .find(|p| p.bearer.is_some() && p.issuer.as_deref() == Some(iss.as_str()))
            .ok_or(BearerError::UnknownIssuer)?;
        let Some(settings) = &provider.bearer else {
            return Err(BearerError::UnknownIssuer.into());
        };
        provider
            .check_bearer(token, settings, alg, now)
            .await
            .map_err(|error| BearerRefusal {
                provider: Some(provider.id.clone()),
                error,
            })
    }
}

impl Provider {
    async fn check_bearer(
        self: &Arc<Self>,
        token: &str,
        settings: &BearerSettings,
        alg: Algorithm,
        now: UnixTime,
    ) -> Result<VerifiedBearer, BearerError> {
        let provider = self;
        if !settings.accepts(alg) {
            return Err(BearerError::Algorithm);
        }
        let claims: AccessClaims = provider.verified_payload(token, now).await?;
        self.check_access_claims(claims, settings, now)
    }

    /// The checks every bearer token's claims pass, signed or introspected.
    pub(crate) fn check_access_claims(
        self: &Arc<Self>,
        claims: AccessClaims,
        settings: &BearerSettings,
        now: UnixTime,
    ) -> Result<VerifiedBearer, BearerError> {
        let provider = self;
        if Some(claims.iss.as_str()) != provider.issuer.as_deref() {
            return Err(BearerError::UnknownIssuer);
        }
        let audiences: Vec<String> = match &claims.aud {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        if !audiences.iter().any(|a| settings.audiences.contains(a)) {
            return Err(BearerError::Audience);
        }
        let leeway = i64::try_from(provider.id_token_settings.leeway.as_secs()).unwrap_or(i64::MAX);
        let now_s = now.as_secs();
        let exp = seconds(&claims.exp).ok_or_else(|| BearerError::Malformed("exp".into()))?;
        if now_s > exp.saturating_add(leeway) {
            return Err(BearerError::Expired);
        }
        let future = |n: &Option<serde_json::Number>| {
            n.as_ref()
                .and_then(seconds)
                .is_some_and(|t| t > now_s.saturating_add(leeway))
        };
        if future(&claims.nbf) || future(&claims.iat) {
            return Err(BearerError::NotYetValid);
        }
        if claims.sub.is_empty() {
            return Err(BearerError::Malformed("empty sub".into()));
        }
        let id_claims = IdTokenClaims {
            iss: claims.iss.clone(),
            sub: claims.sub.clone(),
            aud: audiences,
            exp,
            iat: claims.iat.as_ref().and_then(seconds).unwrap_or(exp),
            nbf: claims.nbf.as_ref().and_then(seconds),
            nonce: None,
            azp: None,
            auth_time: None,
            email: None,
            email_verified: None,
            name: claims.name.clone(),
            picture: None,
            preferred_username: claims.preferred_username.clone(),
            extra: claims.extra,
        };
        Ok(VerifiedBearer {
            provider: Arc::clone(provider),
            subject: claims.sub,
            name: claims.name,
            expires_at: UnixTime::from_secs(exp),
            claims: id_claims,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_algorithms_never_include_none_or_hmac() {
        for bad in ["none", "NONE", "HS256", "hs512", "RSA-OAEP", "ES512x"] {
            assert!(parse_bearer_algorithm(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_bearer_algorithm("ES256"), Ok(Algorithm::ES256));
        let s = BearerSettings {
            audiences: vec!["a".into()],
            algorithms: vec![Algorithm::RS256],
            introspect: false,
        };
        assert!(s.accepts(Algorithm::RS256));
        assert!(!s.accepts(Algorithm::ES256));
        assert!(!s.accepts(Algorithm::HS256));
    }

    #[test]
    fn other_token_types_are_refused() {
        let t = |h: &str, p: &str| {
            format!(
                "{}.{}.sig",
                URL_SAFE_NO_PAD.encode(h),
                URL_SAFE_NO_PAD.encode(p)
            )
        };
        assert!(matches!(
            unverified_iss(&t(
                r#"{"alg":"ES256","typ":"logout+jwt"}"#,
                r#"{"iss":"x"}"#
            )),
            Err(BearerError::WrongType)
        ));
        assert_eq!(
            unverified_iss(&t(r#"{"alg":"ES256","typ":"at+jwt"}"#, r#"{"iss":"x"}"#)).unwrap(),
            "x"
        );
        assert!(matches!(
            unverified_iss(&t(r#"{"alg":"ES256"}"#, r#"{}"#)),
            Err(BearerError::Malformed(_))
        ));
    }
}
