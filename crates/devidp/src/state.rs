//! The provider's shared state: configuration, signing key, grants, counters, client
//! authentication and ID-token assembly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use url::Url;

use crate::error::OAuthError;
use crate::grants::{Grants, Issued, Lifetimes};
use crate::keys::SigningKey;
use crate::params::{Params, decode_basic};
use crate::{DevClient, DevIdpConfig, Error, Stats, is_loopback_url};

/// Scopes the provider knows; others are dropped from authorization requests.
pub(crate) const SUPPORTED_SCOPES: [&str; 4] = ["openid", "email", "profile", "offline_access"];

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) refresh_grants: AtomicU64,
    pub(crate) code_grants: AtomicU64,
    pub(crate) reuse_detections: AtomicU64,
    pub(crate) revocations: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Shared provider state: configuration, signing key, grants and counters.
pub struct DevIdpState {
    pub(crate) config: DevIdpConfig,
    issuer: Url,
    pub(crate) issuer_str: String,
    /// In multi-tenant mode, where the tenant goes into the issuer.
    tenant_template: Option<TenantTemplate>,
    pub(crate) key: SigningKey,
    grants: Mutex<Grants>,
    pub(crate) counters: Counters,
    pub(crate) discovery: serde_json::Value,
}

fn secs(d: std::time::Duration) -> u64 {
    d.as_secs()
}

impl DevIdpState {
    /// Validate the configuration (the issuer must be set and on a loopback host), generate
    /// a signing key and start with no grants.
    pub fn new(config: DevIdpConfig) -> Result<Arc<Self>, Error> {
        let issuer = config
            .issuer
            .clone()
            .ok_or_else(|| Error::InvalidIssuer("not set".into()))?;
        if !matches!(issuer.scheme(), "http" | "https")
            || !is_loopback_url(&issuer)
            || issuer.query().is_some()
            || issuer.fragment().is_some()
        {
            return Err(Error::InvalidIssuer(format!(
                "{issuer} (must be http(s) on a loopback host, without query or fragment)"
            )));
        }
        let mut ids = std::collections::HashSet::new();
        for client in &config.clients {
            if client.client_id.is_empty() || client.client_secret.is_empty() {
                return Err(Error::InvalidConfig(
                    "client_id and client_secret must not be empty".into(),
                ));
            }
            if !ids.insert(client.client_id.as_str()) {
                return Err(Error::InvalidConfig(format!(
                    "duplicate client_id {:?}",
                    client.client_id
                )));
            }
        }
        let lifetimes = Lifetimes {
            access_token: secs(config.access_token_ttl),
            refresh_token: secs(config.refresh_token_ttl),
            code: secs(config.code_ttl),
            login: secs(config.login_ttl),
        };
        if lifetimes.access_token == 0
            || lifetimes.refresh_token == 0
            || lifetimes.code == 0
            || lifetimes.login == 0
            || secs(config.id_token_ttl) == 0
        {
            return Err(Error::InvalidConfig(
                "token lifetimes must be at least one second".into(),
            ));
        }
        let issuer_str = issuer.as_str().trim_end_matches('/').to_owned();
        let tenant_template = if config.tenant_issuer_template {
            Some(TenantTemplate::of(&issuer_str).ok_or_else(|| {
                Error::InvalidConfig(
                    "tenant_issuer_template needs an issuer with a path, e.g. /common/v2.0".into(),
                )
            })?)
        } else {
            None
        };
        let published_issuer = tenant_template
            .as_ref()
            .map_or_else(|| issuer_str.clone(), |t| t.fill("{tenantid}"));
        let endpoint = |path: &str| format!("{issuer_str}{path}");
        let discovery = json!({
            "issuer": published_issuer,
            "authorization_endpoint": endpoint("/authorize"),
            "token_endpoint": endpoint("/token"),
            "userinfo_endpoint": endpoint("/userinfo"),
            "jwks_uri": endpoint("/jwks"),
            "revocation_endpoint": endpoint("/revoke"),
            "introspection_endpoint": endpoint("/introspect"),
            "end_session_endpoint": endpoint("/logout"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "scopes_supported": SUPPORTED_SCOPES,
            "claims_supported": [
                "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash",
                "name", "preferred_username", "email", "email_verified", "hd", "tid", "xms_edov"
            ],
            "prompt_values_supported": ["none", "login", "consent"],
            "authorization_response_iss_parameter_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "claims_parameter_supported": false,
        });
        Ok(Arc::new(Self {
            grants: Mutex::new(
                Grants::new(lifetimes).refresh_on_consent_only(config.google_offline_access),
            ),
            key: SigningKey::generate()?,
            counters: Counters::default(),
            issuer,
            issuer_str,
            tenant_template,
            discovery,
            config,
        }))
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &Url {
        &self.issuer
    }

    /// The issuer as published (no trailing slash).
    pub fn issuer_str(&self) -> &str {
        &self.issuer_str
    }

    /// Snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            refresh_grants: c.refresh_grants.load(Ordering::Relaxed),
            code_grants: c.code_grants.load(Ordering::Relaxed),
            reuse_detections: c.reuse_detections.load(Ordering::Relaxed),
            revocations: c.revocations.load(Ordering::Relaxed),
        }
    }

    /// Changes `sub`'s groups and roles in every live grant, as a directory change would:
    /// tokens issued from now on (refreshes included) carry the new ones. Returns how many
    /// grants changed.
    pub fn set_membership(&self, sub: &str, groups: &[&str], roles: &[&str]) -> usize {
        let own = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        self.lock().set_membership(sub, own(groups), own(roles))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Grants> {
        self.grants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn client(&self, client_id: &str) -> Option<&DevClient> {
        self.config
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
    }

    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer_str)
    }

    /// Client authentication: `client_secret_basic` or `client_secret_post`, not both.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        params: &Params,
    ) -> Result<&DevClient, OAuthError> {
        let basic = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
            });
        // Candidate (id, secret) pairs: Basic credentials are form-encoded per RFC 6749
        // §2.3.1, but many clients send them raw, so both readings are tried.
        let candidates: Vec<(String, String)> = match (basic, params.get("client_secret")) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not several",
                ));
            }
            (Some(encoded), None) => {
                let candidates = decode_basic(encoded);
                if candidates.is_empty() {
                    return Err(OAuthError::invalid_client(
                        "malformed Basic authorization header",
                    ));
                }
                if params
                    .get("client_id")
                    .is_some_and(|p| !candidates.iter().any(|(id, _)| id == p))
                {
                    return Err(OAuthError::invalid_request(
                        "client_id does not match the Authorization header",
                    ));
                }
                candidates
            }
            (None, Some(secret)) => {
                let id = params
                    .get("client_id")
                    .ok_or_else(|| OAuthError::invalid_client("client_id is required"))?;
                vec![(id.clone(), secret.clone())]
            }
            (None, None) => {
                return Err(OAuthError::invalid_client("client authentication required"));
            }
        };
        candidates
            .iter()
            .find_map(|(id, secret)| {
                self.client(id)
                    .filter(|client| secret_eq(secret.as_bytes(), client.client_secret.as_bytes()))
            })
            .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))
    }

    /// Sign an ID token for issued tokens when the grant has `openid`.
    pub(crate) fn id_token(&self, issued: &Issued, now: u64) -> Result<Option<String>, OAuthError> {
        if !issued.grant_scope.iter().any(|s| s == "openid") {
            return Ok(None);
        }
        let has = |s: &str| issued.grant_scope.iter().any(|g| g == s);
        let digest = Sha256::digest(issued.access_token.as_bytes());
        let at_hash = URL_SAFE_NO_PAD.encode(&digest[..16]);
        let profile = has("profile");
        let identity = &issued.identity;
        let email = has("email").then_some(identity.email.as_deref()).flatten();
        let iss = match (&self.tenant_template, &identity.tenant_id) {
            (Some(template), Some(tid)) => template.fill(tid),
            _ => self.issuer_str.clone(),
        };
        let claims = IdTokenClaims {
            iss: &iss,
            sub: &issued.identity.sub,
            aud: &issued.client_id,
            azp: &issued.client_id,
            exp: now.saturating_add(secs(self.config.id_token_ttl)),
            iat: now,
            auth_time: issued.auth_time,
            nonce: issued.nonce.as_deref(),
            at_hash,
            name: profile.then_some(issued.identity.name.as_deref()).flatten(),
            preferred_username: profile.then_some(issued.identity.sub.as_str()),
            email,
            email_verified: email.and(identity.email_verified),
            hd: identity.hosted_domain.as_deref(),
            tid: identity.tenant_id.as_deref(),
            // Like Entra: only with an address.
            xms_edov: email.and(identity.domain_owner_verified),
            groups: if identity.groups_overage {
                &[]
            } else {
                &identity.groups
            },
            claim_names: identity
                .groups_overage
                .then(|| serde_json::json!({"groups": "src1"})),
            claim_sources: identity.groups_overage.then(|| {
                serde_json::json!({"src1": {"endpoint": format!(
                    "https://graph.microsoft.com/v1.0/users/{}/getMemberObjects",
                    identity.sub
                )}})
            }),
            roles: &identity.roles,
            realm_access: (!identity.roles.is_empty()).then_some(RealmAccess {
                roles: &identity.roles,
            }),
        };
        self.key
            .sign(&claims)
            .map(Some)
            .map_err(|_| OAuthError::server_error("could not sign the ID token"))
    }
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: u64,
    iat: u64,
    auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hd: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    xms_edov: Option<bool>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    roles: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    realm_access: Option<RealmAccess<'a>>,
    #[serde(rename = "_claim_names", skip_serializing_if = "Option::is_none")]
    claim_names: Option<serde_json::Value>,
    #[serde(rename = "_claim_sources", skip_serializing_if = "Option::is_none")]
    claim_sources: Option<serde_json::Value>,
}

/// Keycloak's nested realm roles claim.
#[derive(Serialize)]
struct RealmAccess<'a> {
    roles: &'a [String],
}

/// A multi-tenant issuer: the issuer with its first path segment (the tenant) cut out.
#[derive(Debug, Clone)]
struct TenantTemplate {
    /// Everything before the tenant segment, including the slash.
    before: String,
    /// Everything after it (e.g. `/v2.0`).
    after: String,
}

impl TenantTemplate {
    /// Splits `http://host:port/tenant/rest` around `tenant`; `None` without a path.
    fn of(issuer: &str) -> Option<Self> {
        let path_start = issuer.find("://").map(|i| i + 3)?;
        let slash = path_start + issuer[path_start..].find('/')?;
        let rest = &issuer[slash + 1..];
        let end = rest.find('/').unwrap_or(rest.len());
        (end > 0).then(|| TenantTemplate {
            before: issuer[..=slash].to_owned(),
            after: rest[end..].to_owned(),
        })
    }

    /// The issuer of `tenant`.
    fn fill(&self, tenant: &str) -> String {
        format!("{}{tenant}{}", self.before, self.after)
    }
}

/// Compare secrets without an early exit on the first differing byte.
fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    let (ha, hb) = (Sha256::digest(a), Sha256::digest(b));
    ha.iter()
        .zip(hb.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_template_replaces_the_first_path_segment() {
        let t = TenantTemplate::of("http://127.0.0.1:9/common/v2.0").unwrap();
        assert_eq!(t.fill("{tenantid}"), "http://127.0.0.1:9/{tenantid}/v2.0");
        assert_eq!(t.fill("abc-1"), "http://127.0.0.1:9/abc-1/v2.0");
        let t = TenantTemplate::of("http://127.0.0.1:9/common").unwrap();
        assert_eq!(t.fill("x"), "http://127.0.0.1:9/x");
        assert!(TenantTemplate::of("http://127.0.0.1:9").is_none());
    }
}
