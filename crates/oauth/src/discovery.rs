//! OpenID Connect Discovery 1.0: `{issuer}/.well-known/openid-configuration`.

use crate::http::HttpClient;
use crate::response::{fetch_json, protocol};
use authgate_core::provider_error::ProviderError;
use serde::Deserialize;
use url::Url;

/// The parts of a provider's discovery document authgate uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DiscoveryDocument {
    /// The issuer identifier, exactly as ID tokens carry it in `iss`.
    pub issuer: String,
    /// Authorization endpoint.
    pub authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// UserInfo endpoint.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// The provider's signing keys.
    pub jwks_uri: String,
    /// RFC 7009 revocation endpoint.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// RFC 7662 introspection endpoint.
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    /// RP-initiated logout endpoint.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// Client authentication methods at the token endpoint
    /// (absent means `client_secret_basic` only).
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// PKCE methods (absent: not advertised).
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// ID-token signing algorithms.
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
    /// Every authorization response carries `iss` (RFC 9207).
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}

/// The discovery URL of an issuer: its path with
/// `/.well-known/openid-configuration` appended (OIDC Discovery §4).
pub fn discovery_url(issuer: &Url) -> Result<Url, url::ParseError> {
    let base = issuer.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}/.well-known/openid-configuration"))
}

/// Fetches and parses the discovery document of `issuer`. Does not compare
/// the returned `issuer` with the configured one; the caller does, because
/// presets may allow a tenant placeholder.
pub async fn fetch(
    http: &HttpClient,
    provider: &str,
    issuer: &Url,
) -> Result<DiscoveryDocument, ProviderError> {
    let url = discovery_url(issuer)
        .map_err(|e| protocol(provider, "issuer cannot carry a discovery path").with_source(e))?;
    let value = fetch_json(http, provider, http.inner().get(url)).await?;
    serde_json::from_value(value)
        .map_err(|e| protocol(provider, "invalid discovery document").with_source(e))
}

/// Whether a discovered issuer is the configured one. Both are compared as
/// parsed URLs (so `https://a.example` equals `https://a.example/`). With
/// `tenant_template`, a `{tenantid}` placeholder in the discovered issuer
/// stands for the first path segment of the configured one (Microsoft's
/// `common` endpoint publishes `https://login.microsoftonline.com/{tenantid}/v2.0`).
pub fn issuer_matches(configured: &Url, discovered: &str, tenant_template: bool) -> bool {
    let same = |s: &str| Url::parse(s).is_ok_and(|u| &u == configured);
    if same(discovered) {
        return true;
    }
    if tenant_template
        && discovered.contains("{tenantid}")
        && let Some(tenant) = configured.path_segments().and_then(|mut s| s.next())
    {
        return same(&discovered.replace("{tenantid}", tenant));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_url_keeps_the_issuer_path() {
        let u = |s: &str| discovery_url(&Url::parse(s).unwrap()).unwrap().to_string();
        assert_eq!(
            u("https://accounts.google.com"),
            "https://accounts.google.com/.well-known/openid-configuration"
        );
        assert_eq!(
            u("https://kc.example/realms/main/"),
            "https://kc.example/realms/main/.well-known/openid-configuration"
        );
    }

    #[test]
    fn issuers_compare_as_urls_with_an_optional_tenant_placeholder() {
        let cfg = Url::parse("https://tenant.auth0.com").unwrap();
        assert!(issuer_matches(&cfg, "https://tenant.auth0.com/", false));
        assert!(!issuer_matches(&cfg, "https://evil.example/", false));
        let ms = Url::parse("https://login.microsoftonline.com/common/v2.0").unwrap();
        let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert!(issuer_matches(&ms, template, true));
        assert!(!issuer_matches(&ms, template, false));
    }
}
