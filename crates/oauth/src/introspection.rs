//! Opaque bearer tokens checked at the provider's RFC 7662 introspection
//! endpoint, for a provider whose `bearer` has `introspect`.
//!
//! The request is authenticated like the token endpoint's
//! (`token_type_hint=access_token`). An answer passes when `active` is
//! `true`, its `token_type` (when given) is `Bearer` or `access_token`, its
//! `token_use` (when given) is `access` or `access_token`, and its claims pass the same checks
//! as a JWT's ([`crate::bearer`]: `iss` when given, `aud` ∩ audiences, `exp`
//! required, `nbf`/`iat`). Answers are cached by the token's SHA-256 (never
//! the token): an active one until its `exp` (so a token revoked at the
//! provider keeps passing until then, at most [`MAX_ACTIVE_CACHE`]), an
//! inactive one for [`INACTIVE_CACHE`]; at most [`MAX_ENTRIES`] entries.

use crate::bearer::{AccessClaims, BearerError, BearerSettings, VerifiedBearer};
use crate::provider::Provider;
use crate::response::fetch_json;
use authgate_core::time::UnixTime;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long an active answer is reused at most (its `exp` may be sooner).
pub const MAX_ACTIVE_CACHE: i64 = 300;
/// How long an inactive answer is reused.
pub const INACTIVE_CACHE: i64 = 30;
/// The most answers kept per provider.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Clone)]
enum Answer {
    Active(Arc<Map<String, Value>>),
    Inactive,
}

/// A provider's cached introspection answers, by token digest.
#[derive(Default)]
pub(crate) struct IntrospectionCache {
    entries: Mutex<HashMap<[u8; 32], (i64, Answer)>>,
}

impl std::fmt::Debug for IntrospectionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionCache").finish_non_exhaustive()
    }
}

impl IntrospectionCache {
    fn get(&self, key: &[u8; 32], now: i64) -> Option<Answer> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(until, _)| *until > now)
            .map(|(_, answer)| answer.clone())
    }

    fn put(&self, key: [u8; 32], until: i64, answer: Answer, now: i64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (until, _)| *until > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (until, answer));
    }
}

impl Provider {
    /// Checks an opaque bearer token at the introspection endpoint (see the
    /// [module docs](crate::introspection)).
    pub(crate) async fn introspect_bearer(
        self: &Arc<Self>,
        token: &str,
        settings: &BearerSettings,
        now: UnixTime,
    ) -> Result<VerifiedBearer, BearerError> {
        let Some(endpoint) = self.endpoints.introspection.clone() else {
            return Err(BearerError::IntrospectionUnavailable);
        };
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now_s = now.as_secs();
        let answer = match self.introspected.get(&key, now_s) {
            Some(answer) => answer,
            None => {
                let request = self.authenticated_post(
                    endpoint,
                    vec![
                        ("token", token.to_owned()),
                        ("token_type_hint", "access_token".to_owned()),
                    ],
                );
                let body = fetch_json(&self.http, &self.id, request)
                    .await
                    .map_err(|_| BearerError::IntrospectionUnavailable)?;
                let Value::Object(map) = body else {
                    return Err(BearerError::IntrospectionUnavailable);
                };
                let answer = if map.get("active") == Some(&Value::Bool(true)) {
                    Answer::Active(Arc::new(map))
                } else {
                    Answer::Inactive
                };
                let until = match &answer {
                    Answer::Active(map) => map
                        .get("exp")
                        .and_then(Value::as_i64)
                        .unwrap_or(now_s)
                        .min(now_s.saturating_add(MAX_ACTIVE_CACHE)),
                    Answer::Inactive => now_s.saturating_add(INACTIVE_CACHE),
                };
                self.introspected.put(key, until, answer.clone(), now_s);
                answer
            }
        };
        let Answer::Active(map) = answer else {
            return Err(BearerError::Inactive);
        };
        let field = |name: &str| map.get(name).and_then(Value::as_str);
        if let Some(kind) = field("token_type")
            && !kind.eq_ignore_ascii_case("bearer")
            && !kind.eq_ignore_ascii_case("access_token")
        {
            return Err(BearerError::WrongType);
        }
        if field("token_use").is_some_and(|u| u != "access" && u != "access_token") {
            return Err(BearerError::WrongType);
        }
        let mut claims = (*map).clone();
        claims.remove("active");
        if !claims.contains_key("iss")
            && let Some(issuer) = &self.issuer
        {
            claims.insert("iss".into(), Value::String(issuer.clone()));
        }
        let claims: AccessClaims = serde_json::from_value(Value::Object(claims))
            .map_err(|_| BearerError::Malformed("introspection answer lacks sub or exp".into()))?;
        self.check_access_claims(claims, settings, now)
    }
}
