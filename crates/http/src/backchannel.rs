//! `POST {base}/backchannel-logout/{provider}`: OpenID Connect Back-Channel
//! Logout 1.0. The provider posts a Logout Token (form field
//! `logout_token`) when a user's session there ends; the gateway ends the
//! matching sessions.
//!
//! 1. The token is verified by [`Provider::verify_logout_token`] (signature
//!    by the provider's JWKS, `iss`, `aud`, `iat`, `exp`, `jti`, `events`,
//!    no `nonce`, `sub` or `sid`); a refusal is `400
//!    {"error":"invalid_request"}` and a log line naming the failed check,
//!    never the token.
//! 2. Its `jti` must not have been seen in this process while the token is
//!    acceptable ([`SeenLogoutTokens`]); a replay at another instance only
//!    repeats a logout that already happened.
//! 3. With `sid`: the sessions whose sign-in recorded that provider session
//!    id end (`SessionStore::revoke_provider_sessions`); the account's grant
//!    stays (other sessions of the account may use it). With `sub` only:
//!    every session signed in with that account ends
//!    (`revoke_account_sessions`) and so does the grant
//!    (`RefreshService::end_grant`, the same path as sign-out).
//!
//! Revocation goes through the store the gateway was built with; with
//! `CachedStore` a database session is refused at its next request, and a
//! JWT session at its next store check — or at its next request with
//! `revocation_check = "request"` (the revocation set is filled there).

use crate::audit::{AuditEvent, SignOutVia};
use crate::state::{Gateway, Inner};
use authgate_core::time::UnixTime;
use authgate_oauth::{LogoutClaims, Provider};
use authgate_refresh::EndReason;
use authgate_store::StoreError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;

/// Above this many remembered `jti`s, expired ones are dropped on insert.
const PRUNE_ABOVE: usize = 1024;

/// The `jti`s of accepted Logout Tokens, each kept until the token would
/// no longer be accepted anyway (then its age refuses it).
#[derive(Debug, Default)]
pub(crate) struct SeenLogoutTokens {
    seen: Mutex<HashMap<String, UnixTime>>,
}

impl SeenLogoutTokens {
    /// Records `jti` of `provider` until `until`; `false` when it was
    /// already recorded and still within its time (a replay).
    fn first_use(&self, provider: &str, jti: &str, until: UnixTime, now: UnixTime) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() > PRUNE_ABOVE {
            seen.retain(|_, kept_until| *kept_until >= now);
        }
        let key = format!("{provider}\n{jti}");
        match seen.get(&key) {
            Some(kept_until) if *kept_until >= now => false,
            _ => {
                seen.insert(key, until);
                true
            }
        }
    }

    /// Forgets `jti` (the logout failed: the provider may send it again).
    fn forget(&self, provider: &str, jti: &str) {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.remove(&format!("{provider}\n{jti}"));
    }
}

fn answer(status: StatusCode, body: Option<serde_json::Value>) -> Response {
    let mut response = match body {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    };
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn invalid_request(description: &str) -> Response {
    answer(
        StatusCode::BAD_REQUEST,
        Some(json!({ "error": "invalid_request", "error_description": description })),
    )
}

/// `POST {base}/backchannel-logout/{provider}` (form body `logout_token`).
pub(crate) async fn backchannel_logout(
    State(gw): State<Gateway>,
    Path(provider_id): Path<String>,
    body: Bytes,
) -> Response {
    let inner = &gw.inner;
    let Some(provider) = inner.catalog.get(&provider_id) else {
        tracing::info!("back-channel logout for an unknown provider refused");
        return answer(
            StatusCode::NOT_FOUND,
            Some(json!({ "error": "invalid_request", "error_description": "unknown provider" })),
        );
    };
    let mut tokens = url::form_urlencoded::parse(&body).filter(|(k, _)| k == "logout_token");
    let token = match (tokens.next(), tokens.next()) {
        (Some((_, token)), None) if !token.is_empty() => token,
        _ => {
            tracing::info!(
                provider = provider.id(),
                check = "logout_token",
                "back-channel logout refused: not exactly one logout_token"
            );
            return invalid_request("send exactly one logout_token");
        }
    };
    let now = inner.clock.now();
    let claims = match provider.verify_logout_token(&token, now).await {
        Ok(claims) => claims,
        Err(error) => {
            tracing::warn!(
                provider = provider.id(),
                check = error.check(),
                %error,
                "back-channel logout refused: the logout token failed a check"
            );
            return invalid_request("the logout token is not valid");
        }
    };
    if !inner
        .seen_logout_tokens
        .first_use(provider.id(), &claims.jti, claims.accepted_until, now)
    {
        tracing::warn!(
            provider = provider.id(),
            check = "jti",
            "back-channel logout refused: the logout token was replayed"
        );
        return invalid_request("the logout token was already used");
    }
    match end_sessions(inner, provider, &claims, now).await {
        Ok(ended) => {
            tracing::info!(
                provider = provider.id(),
                by = if claims.sid.is_some() { "sid" } else { "sub" },
                sessions = ended,
                "back-channel logout: sessions ended"
            );
            AuditEvent::SignOut {
                via: SignOutVia::Backchannel,
                user: None,
                provider: Some(provider.id()),
                sessions: u64::try_from(ended).ok(),
            }
            .emit();
            answer(StatusCode::OK, None)
        }
        Err(error) => {
            inner.seen_logout_tokens.forget(provider.id(), &claims.jti);
            tracing::warn!(provider = provider.id(), %error, "back-channel logout failed: the store is unavailable");
            // The spec's answer for "the logout failed"; the provider may
            // send the token again.
            answer(
                StatusCode::BAD_REQUEST,
                Some(json!({
                    "error": "temporarily_unavailable",
                    "error_description": "the sessions could not be ended; try again",
                })),
            )
        }
    }
}

/// Ends what the token names; returns how many sessions ended.
async fn end_sessions(
    inner: &Inner,
    provider: &Provider,
    claims: &LogoutClaims,
    now: UnixTime,
) -> Result<usize, StoreError> {
    if let Some(sid) = &claims.sid {
        let ended = inner
            .store
            .revoke_provider_sessions(provider.id(), sid, now)
            .await?;
        return Ok(ended.len());
    }
    let Some(sub) = &claims.sub else {
        return Ok(0);
    };
    let Some(account) = inner
        .store
        .find_account_by_provider(provider.id(), sub)
        .await?
    else {
        return Ok(0);
    };
    let ended = inner
        .store
        .revoke_account_sessions(&account.id, now)
        .await?;
    inner.active.forget(&account.id);
    let end = inner
        .refresh
        .end_grant(&account.id, provider.id(), EndReason::ProviderLogout)
        .await;
    tracing::debug!(?end, "back-channel logout ended the grant");
    Ok(ended.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_accepted_once_while_its_token_is_acceptable() {
        let seen = SeenLogoutTokens::default();
        let t = UnixTime::from_secs;
        assert!(seen.first_use("op", "j1", t(500), t(100)));
        assert!(!seen.first_use("op", "j1", t(500), t(200)));
        assert!(
            seen.first_use("other", "j1", t(500), t(200)),
            "per provider"
        );
        assert!(seen.first_use("op", "j1", t(900), t(501)), "after its time");
        seen.forget("op", "j1");
        assert!(seen.first_use("op", "j1", t(900), t(502)));
    }

    #[test]
    fn expired_jtis_are_pruned() {
        let seen = SeenLogoutTokens::default();
        let t = UnixTime::from_secs;
        for i in 0..=PRUNE_ABOVE {
            assert!(seen.first_use("op", &i.to_string(), t(10), t(0)));
        }
        assert!(seen.first_use("op", "late", t(100), t(50)));
        let kept = seen.seen.lock().unwrap().len();
        assert_eq!(kept, 1);
    }
}
