//! What a provider says about who signed in, in the terms of the core's
//! sign-in decision ([`authgate_core::signin`]): the claims of an ID token or
//! a userinfo answer, and a provider's list of the user's addresses.
//!
//! Provider extensions read here: Google's `hd` (the Workspace domain) and
//! Entra ID's `xms_edov` (email domain owner verified, an optional claim).
//! Flags are accepted as JSON booleans, `"true"` / `"false"`, and `1` / `0`
//! (or `"1"` / `"0"`); anything else counts as absent.

use crate::id_token::IdTokenClaims;
use crate::provider::Provider;
use crate::response::{check, misconfigured, protocol, status_error};
use crate::userinfo::UserInfo;
use authgate_core::provider_error::ProviderError;
use authgate_core::secret::Secret;
use authgate_core::signin::{Claims, ListedAddress};
use reqwest::header::ACCEPT;
use serde_json::{Map, Value};

/// The most addresses read from one address list.
pub const MAX_LISTED_ADDRESSES: usize = 100;

/// A boolean claim in any of the spellings providers use.
pub(crate) fn claim_flag(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

impl IdTokenClaims {
    /// The claims the sign-in decision reads.
    pub fn signin_claims(&self) -> Claims {
        Claims {
            sub: Some(self.sub.clone()),
            name: self.name.clone(),
            picture: self.picture.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified,
            hosted_domain: text(&self.extra, "hd"),
            domain_owner_verified: claim_flag(self.extra.get("xms_edov")),
        }
    }
}

impl UserInfo {
    /// The claims the sign-in decision reads.
    pub fn signin_claims(&self) -> Claims {
        Claims {
            sub: Some(self.sub.clone()),
            name: self.name.clone(),
            picture: self.picture.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified,
            hosted_domain: text(&self.claims, "hd"),
            domain_owner_verified: claim_flag(self.claims.get("xms_edov")),
        }
    }
}

/// Reads an address list (`[{"email", "primary", "verified", …}, …]`);
/// entries without an e-mail string are skipped, missing flags are `false`,
/// and at most [`MAX_LISTED_ADDRESSES`] entries are read. `None` when the
/// body is not a JSON array.
pub fn parse_address_list(body: &[u8]) -> Option<Vec<ListedAddress>> {
    let Ok(Value::Array(entries)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    Some(
        entries
            .iter()
            .filter_map(|entry| {
                let email = entry.get("email")?.as_str()?.to_owned();
                Some(ListedAddress {
                    email,
                    primary: claim_flag(entry.get("primary")) == Some(true),
                    verified: claim_flag(entry.get("verified")) == Some(true),
                })
            })
            .take(MAX_LISTED_ADDRESSES)
            .collect(),
    )
}

impl Provider {
    /// Fetches the user's addresses with their verification from the
    /// provider's address list (GitHub's `GET /user/emails`; it needs the
    /// `user:email` scope). A provider without one yields `Misconfigured`;
    /// an answer that is not a JSON array, `Protocol`.
    pub async fn addresses(
        &self,
        access_token: &Secret,
    ) -> Result<Vec<ListedAddress>, ProviderError> {
        let Some(endpoint) = self.endpoints.emails.clone() else {
            return Err(misconfigured(&self.id, "provider has no address list"));
        };
        let request = self
            .http
            .inner()
            .get(endpoint)
            .header(ACCEPT, "application/json")
            .bearer_auth(access_token.expose());
        let raw = self.http.send(&self.id, request).await?;
        if !raw.is_success() {
            // An OAuth error object or a bare status, classified as usual.
            return Err(check(&self.id, &raw, &[])
                .err()
                .unwrap_or_else(|| status_error(&self.id, &raw)));
        }
        parse_address_list(&raw.body).ok_or_else(|| {
            protocol(&self.id, "address list is not a JSON array").with_status(raw.status)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_are_read_in_every_spelling_providers_use() {
        for (value, expected) in [
            (json!(true), Some(true)),
            (json!(false), Some(false)),
            (json!("true"), Some(true)),
            (json!("false"), Some(false)),
            (json!(1), Some(true)),
            (json!("1"), Some(true)),
            (json!(0), Some(false)),
            (json!("yes"), None),
            (json!(2), None),
            (json!(null), None),
            (json!({"v": true}), None),
        ] {
            assert_eq!(claim_flag(Some(&value)), expected, "{value}");
        }
        assert_eq!(claim_flag(None), None);
    }

    #[test]
    fn github_address_lists_are_read_leniently_and_bounded() {
        let body = json!([
            {"email": "octo@github.example", "primary": true, "verified": true, "visibility": "private"},
            {"email": "old@corp.example", "primary": false, "verified": false, "visibility": null},
            {"primary": true, "verified": true},
            {"email": 42},
            "not an object",
        ]);
        let list = parse_address_list(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            list,
            vec![
                ListedAddress {
                    email: "octo@github.example".into(),
                    primary: true,
                    verified: true
                },
                ListedAddress {
                    email: "old@corp.example".into(),
                    primary: false,
                    verified: false
                },
            ]
        );
        assert_eq!(parse_address_list(b"{\"message\":\"Not Found\"}"), None);
        assert_eq!(parse_address_list(b"<html>"), None);
        let many: Vec<Value> = (0..500)
            .map(|i| json!({"email": format!("a{i}@b.example")}))
            .collect();
        let long = parse_address_list(Value::Array(many).to_string().as_bytes()).unwrap();
        assert_eq!(long.len(), MAX_LISTED_ADDRESSES);
    }

    #[test]
    fn provider_extensions_reach_the_sign_in_claims() {
        let Value::Object(map) = json!({"sub": "1", "email": "a@corp.example",
            "email_verified": "true", "hd": "corp.example", "xms_edov": 1})
        else {
            unreachable!()
        };
        let claims = UserInfo::from_claims(map).unwrap().signin_claims();
        assert_eq!(claims.hosted_domain.as_deref(), Some("corp.example"));
        assert_eq!(claims.domain_owner_verified, Some(true));
        assert_eq!(claims.email_verified, Some(true));
    }
}
