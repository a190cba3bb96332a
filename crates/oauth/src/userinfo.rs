//! The userinfo endpoint: the signed-in user's profile.

use crate::provider::Provider;
use crate::response::{check, misconfigured, protocol};
use authgate_core::provider_error::ProviderError;
use authgate_core::secret::Secret;
use reqwest::header::ACCEPT;
use serde_json::{Map, Value};

/// A user's profile from the userinfo endpoint, normalised across providers.
///
/// OIDC providers answer with standard claims; plain OAuth 2.0 APIs use
/// their own names, so each field falls back to the usual alternatives:
/// `sub` ← `sub` | `id` (a number becomes its decimal string), `name` ←
/// `name` | `login`, `preferred_username` ← `preferred_username` | `login` |
/// `username`, `picture` ← `picture` | `avatar_url`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserInfo {
    /// The provider's stable user identifier.
    pub sub: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Whether the provider verified the e-mail address.
    pub email_verified: Option<bool>,
    /// Display name.
    pub name: Option<String>,
    /// Short user name / login.
    pub preferred_username: Option<String>,
    /// Profile picture URL.
    pub picture: Option<String>,
    /// Every claim the provider returned.
    pub claims: Map<String, Value>,
}

impl UserInfo {
    /// Normalises a userinfo JSON object; `None` when it has no subject.
    pub fn from_claims(claims: Map<String, Value>) -> Option<UserInfo> {
        let text = |names: &[&str]| {
            names.iter().find_map(|n| match claims.get(*n) {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                _ => None,
            })
        };
        let sub = ["sub", "id"].iter().find_map(|n| match claims.get(*n) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })?;
        let email_verified = crate::identity::claim_flag(claims.get("email_verified"));
        Some(UserInfo {
            sub,
            email: text(&["email"]),
            email_verified,
            name: text(&["name", "login"]),
            preferred_username: text(&["preferred_username", "login", "username"]),
            picture: text(&["picture", "avatar_url"]),
            claims,
        })
    }
}

impl Provider {
    /// Fetches the user's profile with an access token. A provider without a
    /// userinfo endpoint yields a `Misconfigured` error; an answer without a
    /// subject (or not JSON, e.g. a signed JWT) a `Protocol` error.
    ///
    /// The caller must check that `sub` equals the ID token's `sub` when it
    /// has both (OIDC Core §5.3.2).
    pub async fn userinfo(&self, access_token: &Secret) -> Result<UserInfo, ProviderError> {
        let Some(endpoint) = self.endpoints.userinfo.clone() else {
            return Err(misconfigured(&self.id, "provider has no userinfo endpoint"));
        };
        let request = self
            .http
            .inner()
            .get(endpoint)
            .header(ACCEPT, "application/json")
            .bearer_auth(access_token.expose());
        let raw = self.http.send(&self.id, request).await?;
        let body = check(&self.id, &raw, &[])?;
        UserInfo::from_claims(body).ok_or_else(|| protocol(&self.id, "userinfo lacks a subject"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn github_style_profiles_are_normalised() {
        let Value::Object(claims) = json!({"id": 42, "login": "octo", "name": null,
            "avatar_url": "https://a/x.png", "email": "o@example.com"})
        else {
            unreachable!()
        };
        let u = UserInfo::from_claims(claims).unwrap();
        assert_eq!(u.sub, "42");
        assert_eq!(u.name.as_deref(), Some("octo"));
        assert_eq!(u.picture.as_deref(), Some("https://a/x.png"));
        assert_eq!(u.email.as_deref(), Some("o@example.com"));
    }

    #[test]
    fn a_profile_without_subject_is_rejected() {
        assert!(UserInfo::from_claims(Map::new()).is_none());
    }
}
