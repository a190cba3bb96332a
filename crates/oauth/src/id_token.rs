//! ID-token validation (OIDC Core §3.1.3.7) with a cached, rate-limited JWKS.
//!
//! Order of checks: the compact JWS is parsed; its `alg` must be on
//! [`ALLOWED_ALGORITHMS`] (never `none`, never HMAC — a provider's public
//! keys must not double as shared secrets); the signing key is looked up by
//! `kid` in the provider's JWKS (fetched on first use and cached; an unknown
//! `kid` triggers one refetch, at most once per
//! [`IdTokenSettings::jwks_refetch_interval`], so a flood of forged `kid`s
//! cannot turn authgate into a JWKS hammer); the key's type, curve and
//! declared `alg` must fit the token's `alg`; then the signature; then the
//! claims: `iss`, `aud` (and `azp`), `exp`/`nbf`/`iat` against the *passed*
//! `now` with a leeway, `nonce`, and — for a provider with tenants — that
//! `tid` names an admitted directory ([`crate::tenant`]).
//!
//! The rate limit is measured in the same `now` the caller passes, so this
//! module never reads the clock.

use crate::http::HttpClient;
use crate::provider::{Provider, ProviderKind};
use crate::response::{fetch_json, protocol};
use authgate_core::provider_error::ProviderError;
use authgate_core::time::UnixTime;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The only signature algorithms accepted on ID tokens.
pub const ALLOWED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// ID-token validation knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdTokenSettings {
    /// Clock tolerance for `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Minimum time between two JWKS fetches triggered by unknown `kid`s.
    pub jwks_refetch_interval: Duration,
}

impl Default for IdTokenSettings {
    /// 60 s leeway, at most one unknown-`kid` refetch per 60 s.
    fn default() -> Self {
        Self {
            leeway: Duration::from_secs(60),
            jwks_refetch_interval: Duration::from_secs(60),
        }
    }
}

/// Why an ID token was rejected.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    /// The provider is plain OAuth 2.0 and issues no ID tokens.
    #[error("provider does not issue ID tokens")]
    NotOidc,
    /// Not a compact JWS, undecodable parts, or missing required claims.
    #[error("malformed ID token: {0}")]
    Malformed(String),
    /// The `alg` is not on the allow-list or does not fit the key.
    #[error("ID-token algorithm not allowed: {0}")]
    AlgNotAllowed(String),
    /// No key in the provider's JWKS has this `kid` (even after a refetch,
    /// or a refetch was not allowed yet).
    #[error("no signing key with kid {0:?}")]
    UnknownKid(Option<String>),
    /// The signature does not verify.
    #[error("bad ID-token signature")]
    BadSignature,
    /// `iss` is not the provider's issuer.
    #[error("ID token from issuer {found:?}, expected {expected:?}")]
    WrongIssuer {
        /// The provider's issuer.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// `aud` does not contain our client id.
    #[error("ID token not issued for this client")]
    WrongAudience,
    /// `azp` is present and not our client id, or is missing while `aud` has
    /// several entries.
    #[error("ID token authorized party is not this client")]
    WrongAuthorizedParty,
    /// `exp` (plus leeway) is in the past.
    #[error("ID token expired at {exp}")]
    Expired {
        /// The token's `exp`.
        exp: i64,
    },
    /// `nbf` (minus leeway) is in the future.
    #[error("ID token not valid before {nbf}")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
    },
    /// `iat` (minus leeway) is in the future.
    #[error("ID token issued in the future ({iat})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
    },
    /// A nonce was expected and the token has none or another one.
    #[error("ID-token nonce mismatch")]
    NonceMismatch,
    /// The token's `tid` is missing or names a directory the provider's
    /// `tenant` setting does not admit.
    #[error("ID token from a directory this provider does not admit (tid {found:?})")]
    WrongTenant {
        /// The token's `tid` (at most 64 characters), if any.
        found: Option<String>,
    },
    /// The JWKS could not be fetched or parsed.
    #[error("cannot get the provider's signing keys")]
    Jwks(#[source] ProviderError),
}

/// The validated claims of an ID token.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the provider's stable user id.
    pub sub: String,
    /// Audiences (a single string in the token becomes one entry).
    #[serde(deserialize_with = "string_or_list")]
    pub aud: Vec<String>,
    /// Expiry (epoch seconds).
    #[serde(deserialize_with = "numeric_date")]
    pub exp: i64,
    /// Issued at (epoch seconds).
    #[serde(deserialize_with = "numeric_date")]
    pub iat: i64,
    /// Not before (epoch seconds).
    #[serde(default, deserialize_with = "opt_numeric_date")]
    pub nbf: Option<i64>,
    /// The nonce sent in the authorization request.
    #[serde(default)]
    pub nonce: Option<String>,
    /// Authorized party.
    #[serde(default)]
    pub azp: Option<String>,
    /// When the user authenticated (epoch seconds).
    #[serde(default, deserialize_with = "opt_numeric_date")]
    pub auth_time: Option<i64>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the e-mail address is verified (`true` or `"true"`).
    #[serde(default, deserialize_with = "opt_bool_or_string")]
    pub email_verified: Option<bool>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Profile picture URL.
    #[serde(default)]
    pub picture: Option<String>,
    /// Short user name.
    #[serde(default)]
    pub preferred_username: Option<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_i64()
        .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        .ok_or_else(|| serde::de::Error::custom("not a NumericDate"))
}

fn opt_numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n = Option::<serde_json::Number>::deserialize(d)?;
    Ok(n.and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))))
}

fn opt_bool_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    })
}

/// One usable verification key from the JWKS.
#[derive(Clone)]
struct CachedKey {
    kid: Option<String>,
    alg: Option<Algorithm>,
    family: AlgorithmFamily,
    curve: Option<EllipticCurve>,
    key: DecodingKey,
}

impl CachedKey {
    /// A key from one JWKS entry; `None` for entries that are not public
    /// signature keys (encryption keys, symmetric keys, unknown types).
    fn from_value(value: &Value) -> Option<CachedKey> {
        let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return None;
        }
        let alg = match value.get("alg") {
            // A declared algorithm that is not a signature one (RSA-OAEP):
            // not a signing key.
            Some(Value::String(a)) => Some(a.parse::<Algorithm>().ok()?),
            _ => None,
        };
        let (family, curve) = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => (AlgorithmFamily::Rsa, None),
            AlgorithmParameters::EllipticCurve(p) => (AlgorithmFamily::Ec, Some(p.curve.clone())),
            AlgorithmParameters::OctetKeyPair(p) => (AlgorithmFamily::Ed, Some(p.curve.clone())),
            // Symmetric keys never verify provider tokens.
            _ => return None,
        };
        let key = DecodingKey::from_jwk(&jwk).ok()?;
        Some(CachedKey {
            kid: jwk.common.key_id.clone(),
            alg,
            family,
            curve,
            key,
        })
    }

    fn fits(&self, alg: Algorithm) -> bool {
        if self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        match alg {
            Algorithm::ES256 => self.curve == Some(EllipticCurve::P256),
            Algorithm::ES384 => self.curve == Some(EllipticCurve::P384),
            Algorithm::EdDSA => self.curve == Some(EllipticCurve::Ed25519),
            _ => self.family == alg.family(),
        }
    }
}

#[derive(Default)]
struct JwksState {
    keys: Arc<Vec<CachedKey>>,
    loaded: bool,
    last_fetch: Option<UnixTime>,
}

/// A provider's signing keys, fetched on first use and refetched on unknown
/// `kid`s at most once per interval.
pub(crate) struct JwksCache {
    uri: Option<Url>,
    state: tokio::sync::Mutex<JwksState>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// Which keys of a set fit a token.
enum Selection {
    Keys(Vec<DecodingKey>),
    /// Keys with the `kid` exist but none fits the `alg`.
    AlgMismatch,
    /// No key with the `kid` (or no key at all for a token without one).
    Unknown,
}

fn select(keys: &[CachedKey], kid: Option<&str>, alg: Algorithm) -> Selection {
    let named: Vec<&CachedKey> = keys
        .iter()
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
        .collect();
    if named.is_empty() {
        return Selection::Unknown;
    }
    let fitting: Vec<DecodingKey> = named
        .into_iter()
        .filter(|k| k.fits(alg))
        .map(|k| k.key.clone())
        .collect();
    match (fitting.is_empty(), kid) {
        (false, _) => Selection::Keys(fitting),
        (true, Some(_)) => Selection::AlgMismatch,
        (true, None) => Selection::Unknown,
    }
}

impl JwksCache {
    pub(crate) fn new(uri: Option<Url>) -> Self {
        Self {
            uri,
            state: tokio::sync::Mutex::new(JwksState::default()),
        }
    }

    async fn fetch(
        &self,
        state: &mut JwksState,
        http: &HttpClient,
        provider: &str,
        now: UnixTime,
    ) -> Result<(), IdTokenError> {
        let Some(uri) = self.uri.clone() else {
            return Err(IdTokenError::NotOidc);
        };
        state.last_fetch = Some(now);
        let body = fetch_json(http, provider, http.inner().get(uri))
            .await
            .map_err(IdTokenError::Jwks)?;
        let Some(Value::Array(entries)) = body.get("keys") else {
            return Err(IdTokenError::Jwks(protocol(provider, "JWKS lacks keys")));
        };
        let keys: Vec<CachedKey> = entries.iter().filter_map(CachedKey::from_value).collect();
        tracing::debug!(provider, keys = keys.len(), "fetched JWKS");
        state.keys = Arc::new(keys);
        state.loaded = true;
        Ok(())
    }

    /// The candidate keys for a token, fetching or refetching as allowed.
    async fn keys_for(
        &self,
        http: &HttpClient,
        provider: &str,
        kid: Option<&str>,
        alg: Algorithm,
        now: UnixTime,
        refetch_interval: Duration,
    ) -> Result<Vec<DecodingKey>, IdTokenError> {
        let mut state = self.state.lock().await;
        if !state.loaded {
            self.fetch(&mut state, http, provider, now).await?;
        }
        match select(&state.keys, kid, alg) {
            Selection::Keys(k) => return Ok(k),
            Selection::AlgMismatch => return Err(alg_mismatch(alg)),
            Selection::Unknown => {}
        }
        let may_refetch = match state.last_fetch {
            None => true,
            // A clock that went backwards also allows a refetch.
            Some(last) => now >= last.saturating_add(refetch_interval) || now < last,
        };
        if !may_refetch {
            return Err(IdTokenError::UnknownKid(kid.map(str::to_owned)));
        }
        tracing::debug!(provider, kid, "unknown kid; refetching JWKS");
        self.fetch(&mut state, http, provider, now).await?;
        match select(&state.keys, kid, alg) {
            Selection::Keys(k) => Ok(k),
            Selection::AlgMismatch => Err(alg_mismatch(alg)),
            Selection::Unknown => Err(IdTokenError::UnknownKid(kid.map(str::to_owned))),
        }
    }
}

fn alg_mismatch(alg: Algorithm) -> IdTokenError {
    IdTokenError::AlgNotAllowed(format!("{alg:?} does not fit the signing key"))
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// Reads the protected header: the allowed algorithm and the `kid`.
pub(crate) fn parse_header(token: &str) -> Result<(Algorithm, Option<String>), IdTokenError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() == 5 {
        return Err(IdTokenError::Malformed(
            "encrypted ID tokens are not supported".into(),
        ));
    }
    if parts.len() != 3 {
        return Err(IdTokenError::Malformed("not a compact JWS".into()));
    }
    let header = URL_SAFE_NO_PAD
        .decode(parts[0])
        .map_err(|_| IdTokenError::Malformed("header is not base64url".into()))?;
    let header: RawHeader = serde_json::from_slice(&header)
        .map_err(|_| IdTokenError::Malformed("header is not a JOSE header".into()))?;
    let alg = header
        .alg
        .parse::<Algorithm>()
        .ok()
        .filter(|a| ALLOWED_ALGORITHMS.contains(a))
        .ok_or_else(|| IdTokenError::AlgNotAllowed(header.alg.chars().take(16).collect()))?;
    if header.crit.is_some() {
        // RFC 7515 §4.1.11: critical extensions we do not understand.
        return Err(IdTokenError::Malformed(
            "unsupported critical header".into(),
        ));
    }
    Ok((alg, header.kid))
}

fn signature_error(e: jsonwebtoken::errors::Error) -> IdTokenError {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_)
        | ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_) => IdTokenError::Malformed(e.to_string()),
        ErrorKind::InvalidAlgorithm => IdTokenError::AlgNotAllowed(e.to_string()),
        _ => IdTokenError::BadSignature,
    }
}

impl Provider {
    /// Verifies an ID token from this provider and returns its claims (see
    /// the [module docs](crate::id_token) for the checks). `expected_nonce`
    /// is the nonce sent with the authorization request; pass `None` for
    /// ID tokens from a refresh, which need not carry one.
    pub async fn verify_id_token(
        &self,
        id_token: &str,
        expected_nonce: Option<&str>,
        now: UnixTime,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let Some(issuer) = self.issuer.as_deref() else {
            return Err(IdTokenError::NotOidc);
        };
        let claims: IdTokenClaims = self.verified_payload(id_token, now).await?;
        self.check_claims(&claims, issuer, expected_nonce, now)?;
        Ok(claims)
    }

    /// The payload of a compact JWS signed by one of this provider's keys
    /// (the header's `alg` allowed and fitting the key, the key found by
    /// `kid` in the JWKS as the [module docs](crate::id_token) describe, the
    /// signature valid). No claim is checked: that is the caller's part.
    pub(crate) async fn verified_payload<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<T, IdTokenError> {
        if self.kind != ProviderKind::Oidc || self.issuer.is_none() {
            return Err(IdTokenError::NotOidc);
        }
        let (alg, kid) = parse_header(token)?;
        let keys = self
            .jwks
            .keys_for(
                &self.http,
                &self.id,
                kid.as_deref(),
                alg,
                now,
                self.id_token_settings.jwks_refetch_interval,
            )
            .await?;

        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;

        let mut result = Err(IdTokenError::BadSignature);
        for key in &keys {
            result = jsonwebtoken::decode::<T>(token, key, &validation)
                .map(|data| data.claims)
                .map_err(signature_error);
            if !matches!(result, Err(IdTokenError::BadSignature)) {
                break;
            }
        }
        result
    }

    fn check_claims(
        &self,
        claims: &IdTokenClaims,
        issuer: &str,
        expected_nonce: Option<&str>,
        now: UnixTime,
    ) -> Result<(), IdTokenError> {
        let mut expected_iss = issuer.to_owned();
        if self.quirks.tenant_issuer_template
            && issuer.contains("{tenantid}")
            && let Some(tid) = claims.extra.get("tid").and_then(Value::as_str)
        {
            expected_iss = issuer.replace("{tenantid}", tid);
        }
        if claims.iss != expected_iss && !self.quirks.alternate_issuers.contains(&claims.iss) {
            return Err(IdTokenError::WrongIssuer {
                expected: expected_iss,
                found: claims.iss.clone(),
            });
        }
        if !claims.aud.iter().any(|a| a == &self.client_id) {
            return Err(IdTokenError::WrongAudience);
        }
        match &claims.azp {
            Some(azp) if azp != &self.client_id => return Err(IdTokenError::WrongAuthorizedParty),
            None if claims.aud.len() > 1 => return Err(IdTokenError::WrongAuthorizedParty),
            _ => {}
        }
        let leeway = i64::try_from(self.id_token_settings.leeway.as_secs()).unwrap_or(i64::MAX);
        let now = now.as_secs();
        if now > claims.exp.saturating_add(leeway) {
            return Err(IdTokenError::Expired { exp: claims.exp });
        }
        if let Some(nbf) = claims.nbf
            && now.saturating_add(leeway) < nbf
        {
            return Err(IdTokenError::NotYetValid { nbf });
        }
        if claims.iat > now.saturating_add(leeway) {
            return Err(IdTokenError::IssuedInFuture { iat: claims.iat });
        }
        if let Some(expected) = expected_nonce
            && claims.nonce.as_deref() != Some(expected)
        {
            return Err(IdTokenError::NonceMismatch);
        }
        if let Some(tenant) = &self.tenant {
            let tid = claims.extra.get("tid").and_then(Value::as_str);
            if !tenant.admits(tid) {
                return Err(IdTokenError::WrongTenant {
                    found: tid.map(|t| t.chars().take(64).collect()),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> String {
        format!("{}.e30.sig", URL_SAFE_NO_PAD.encode(json))
    }

    #[test]
    fn none_and_hmac_are_never_allowed() {
        for alg in ["none", "None", "HS256", "HS512", "RSA-OAEP"] {
            let t = header(&format!(r#"{{"alg":"{alg}"}}"#));
            assert!(matches!(
                parse_header(&t),
                Err(IdTokenError::AlgNotAllowed(_))
            ));
        }
        let t = header(r#"{"alg":"ES256","kid":"k"}"#);
        assert_eq!(
            parse_header(&t).unwrap(),
            (Algorithm::ES256, Some("k".into()))
        );
    }

    #[test]
    fn non_jws_shapes_are_malformed() {
        for t in ["", "a.b", "a.b.c.d.e", "!!.e30.x"] {
            assert!(matches!(parse_header(t), Err(IdTokenError::Malformed(_))));
        }
        let t = header(r#"{"alg":"ES256","crit":["exp"]}"#);
        assert!(matches!(parse_header(&t), Err(IdTokenError::Malformed(_))));
    }
}
