//! The token endpoint (code exchange, refresh grant) and RFC 7009 revocation.

use crate::provider::{Provider, TokenEndpointAuthMethod};
use crate::response::{check, misconfigured, oauth_error, parse_body, protocol, status_error};
use authgate_core::provider_error::ProviderError;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use reqwest::header::ACCEPT;
use serde_json::{Map, Value};
use std::time::Duration;

/// The answer to a successful code exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    /// The tokens, with `expires_at = now + expires_in`.
    pub tokens: TokenSet,
    /// When the refresh token expires, if the provider said
    /// (`refresh_token_expires_in`, as GitHub does).
    pub refresh_token_expires_at: Option<UnixTime>,
}

/// RFC 7009 `token_type_hint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeHint {
    /// The token is a refresh token.
    RefreshToken,
    /// The token is an access token.
    AccessToken,
}

impl TokenTypeHint {
    /// The hint's wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RefreshToken => "refresh_token",
            Self::AccessToken => "access_token",
        }
    }
}

impl Provider {
    /// Exchanges an authorization code for tokens (RFC 6749 §4.1.3), sending
    /// the PKCE verifier when the provider supports PKCE.
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
        now: UnixTime,
    ) -> Result<TokenResponse, ProviderError> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
        ];
        if self.supports_pkce {
            form.push(("code_verifier", pkce_verifier.to_owned()));
        }
        let body = self.token_request(form, "authorization_code").await?;
        parse_token_response(&self.id, &body, now)
    }

    /// Runs the refresh grant (RFC 6749 §6). `refresh_token` in the result is
    /// `None` when the provider did not rotate it; the caller keeps the old
    /// one with [`TokenSet::merge_refreshed`].
    pub async fn refresh(
        &self,
        refresh_token: &Secret,
        now: UnixTime,
    ) -> Result<TokenSet, ProviderError> {
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.expose().to_owned()),
        ];
        let body = self.token_request(form, "refresh_token").await?;
        parse_token_response(&self.id, &body, now).map(|r| r.tokens)
    }

    /// Revokes a token (RFC 7009). Any 2xx is success (also for tokens the
    /// provider does not know); a 503 is transient, and then the token must be
    /// assumed alive. A provider without a revocation endpoint yields a
    /// `Misconfigured` error; check [`Provider::supports_revocation`] first.
    pub async fn revoke(
        &self,
        token: &Secret,
        hint: Option<TokenTypeHint>,
    ) -> Result<(), ProviderError> {
        let Some(endpoint) = self.endpoints.revocation.clone() else {
            return Err(misconfigured(
                &self.id,
                "provider has no revocation endpoint",
            ));
        };
        let mut form = vec![("token", token.expose().to_owned())];
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint.as_str().to_owned()));
        }
        let request = self.authenticated_post(endpoint, form);
        let raw = self.http.send(&self.id, request).await?;
        if let Some(map) = parse_body(&raw)
            && let Some(error) = oauth_error(&self.id, &raw, &map, &self.revoking_codes())
        {
            tracing::debug!(provider = %self.id, status = raw.status, code = ?error.code, "revocation refused");
            return Err(error);
        }
        if !raw.is_success() {
            return Err(status_error(&self.id, &raw));
        }
        tracing::debug!(provider = %self.id, "token revoked");
        Ok(())
    }

    /// POSTs `form` (plus client authentication) to the token endpoint and
    /// returns the parsed body of a successful answer.
    async fn token_request(
        &self,
        form: Vec<(&'static str, String)>,
        grant: &'static str,
    ) -> Result<Map<String, Value>, ProviderError> {
        let request = self.authenticated_post(self.endpoints.token.clone(), form);
        let raw = self.http.send(&self.id, request).await.inspect_err(|e| {
            tracing::debug!(provider = %self.id, grant, kind = e.kind.as_str(), "token request failed in transit");
        })?;
        check(&self.id, &raw, &self.revoking_codes()).inspect_err(|e| {
            tracing::debug!(
                provider = %self.id,
                grant,
                status = raw.status,
                code = ?e.code,
                kind = e.kind.as_str(),
                "token endpoint refused"
            );
        })
    }

    /// A POST with `Accept: application/json` and client authentication.
    pub(crate) fn authenticated_post(
        &self,
        endpoint: url::Url,
        mut form: Vec<(&'static str, String)>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .inner()
            .post(endpoint)
            .header(ACCEPT, "application/json");
        match self.auth_method {
            TokenEndpointAuthMethod::ClientSecretBasic => {
                // RFC 6749 §2.3.1: both parts form-urlencoded before Base64.
                request = request.basic_auth(
                    form_encode(&self.client_id),
                    Some(form_encode(self.client_secret.expose())),
                );
            }
            TokenEndpointAuthMethod::ClientSecretPost => {
                form.push(("client_id", self.client_id.clone()));
                form.push(("client_secret", self.client_secret.expose().to_owned()));
            }
            TokenEndpointAuthMethod::None => {
                form.push(("client_id", self.client_id.clone()));
            }
        }
        request.form(&form)
    }
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A non-empty string field.
fn string_field(body: &Map<String, Value>, name: &str) -> Option<String> {
    match body.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A lifetime in seconds: a number, or a numeric string (some providers send
/// `expires_in` as `"3600"`).
fn seconds_field(body: &Map<String, Value>, name: &str) -> Option<u64> {
    match body.get(name)? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Builds a token set from a successful token endpoint body. A body without
/// an `access_token` is a protocol error.
pub(crate) fn parse_token_response(
    provider: &str,
    body: &Map<String, Value>,
    now: UnixTime,
) -> Result<TokenResponse, ProviderError> {
    let access_token = string_field(body, "access_token")
        .ok_or_else(|| protocol(provider, "token response lacks access_token"))?;
    let at = |secs: u64| now.saturating_add(Duration::from_secs(secs));
    let tokens = TokenSet {
        access_token: Secret::new(access_token),
        refresh_token: string_field(body, "refresh_token").map(Secret::new),
        expires_at: seconds_field(body, "expires_in").map(at),
        token_type: string_field(body, "token_type"),
        scope: string_field(body, "scope"),
        id_token: string_field(body, "id_token").map(Secret::new),
    };
    Ok(TokenResponse {
        tokens,
        refresh_token_expires_at: seconds_field(body, "refresh_token_expires_in").map(at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn expires_in_becomes_an_absolute_time_from_the_passed_now() {
        let body = map(json!({"access_token": "a", "expires_in": 3599, "token_type": "Bearer"}));
        let r = parse_token_response("p", &body, UnixTime::from_secs(1000)).unwrap();
        assert_eq!(r.tokens.expires_at, Some(UnixTime::from_secs(4599)));
        assert!(r.tokens.refresh_token.is_none());
    }

    #[test]
    fn string_lifetimes_are_accepted() {
        let body = map(json!({"access_token": "a", "expires_in": "60",
            "refresh_token": "r", "refresh_token_expires_in": "100"}));
        let r = parse_token_response("p", &body, UnixTime::from_secs(0)).unwrap();
        assert_eq!(r.tokens.expires_at, Some(UnixTime::from_secs(60)));
        assert_eq!(r.refresh_token_expires_at, Some(UnixTime::from_secs(100)));
    }

    #[test]
    fn missing_or_empty_access_token_is_a_protocol_error() {
        for body in [json!({"token_type": "Bearer"}), json!({"access_token": ""})] {
            let e = parse_token_response("p", &map(body), UnixTime::from_secs(0)).unwrap_err();
            assert_eq!(
                e.kind,
                authgate_core::provider_error::ProviderErrorKind::Protocol
            );
        }
    }
}
