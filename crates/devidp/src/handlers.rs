//! The HTTP handlers: discovery, JWKS, the authorization endpoint with its login form, the
//! token endpoint, userinfo, revocation, introspection and logout.
//!
//! Every token rule lives in [`crate::grants`]; handlers read the clock, take the lock for
//! one call (never across an `.await`), and render the outcome.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, LOCATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use url::Url;

use crate::error::{OAuthError, no_store};
use crate::grants::{AuthorizationRequest, GrantError, Revoked, valid_pkce_value};
use crate::login::{LoginForm, identity_from};
use crate::page::{self, LoginPage, error_page, html};
use crate::params::{form_params, parse_params, required, split_scope};
use crate::state::{DevIdpState, SUPPORTED_SCOPES, bump, unix_now};

/// Longest accepted `state` / `nonce`.
const MAX_PARAM_LEN: usize = 2048;

/// Build the provider's router (paths relative to the issuer). Nest it under the issuer's
/// path when the issuer has one.
pub fn router(state: Arc<DevIdpState>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize_get).post(authorize_post))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo).post(userinfo))
        .route("/revoke", post(revoke))
        .route("/introspect", post(introspect))
        .route("/logout", get(logout))
        .with_state(state)
}

type St = State<Arc<DevIdpState>>;

async fn discovery(State(st): St) -> Response {
    axum::Json(st.discovery.clone()).into_response()
}

async fn jwks(State(st): St) -> Response {
    axum::Json(st.key.jwks()).into_response()
}

/// 302 to `redirect_uri` with extra query parameters.
fn redirect_with(redirect_uri: &str, params: &[(&str, Option<&str>)]) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect",
            "invalid redirect_uri",
        );
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
    }
    match HeaderValue::from_str(url.as_str()) {
        Ok(location) => (
            StatusCode::FOUND,
            [
                (LOCATION, location),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect",
            "invalid redirect_uri",
        ),
    }
}

async fn authorize_get(State(st): St, RawQuery(query): RawQuery) -> Response {
    let params = match parse_params(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, "Invalid request", why),
    };
    // Until client_id and redirect_uri are verified, errors are shown, never redirected
    // (RFC 6749 §4.1.2.1).
    let Some(client) = params.get("client_id").and_then(|id| st.client(id)) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Unknown client",
            "The client_id is missing or not registered with this provider.",
        );
    };
    let Some(redirect_uri) = params
        .get("redirect_uri")
        .filter(|uri| client.redirect_allowed(uri))
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect_uri",
            "The redirect_uri is missing or not registered for this client.",
        );
    };
    let state = params.get("state").map(String::as_str);
    let issuer = st.issuer_str.as_str();
    let fail = |error: &str, description: &str| {
        redirect_with(
            redirect_uri,
            &[
                ("error", Some(error)),
                ("error_description", Some(description)),
                ("state", state),
                ("iss", Some(issuer)),
            ],
        )
    };

    match params.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => return fail("invalid_request", "response_type is required"),
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            );
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return fail("invalid_request", "only response_mode=query is supported");
    }
    if params.contains_key("request") {
        return fail("request_not_supported", "request objects are not supported");
    }
    if params.contains_key("request_uri") {
        return fail("request_uri_not_supported", "request_uri is not supported");
    }
    if state.is_some_and(|s| s.len() > MAX_PARAM_LEN)
        || params.get("nonce").is_some_and(|n| n.len() > MAX_PARAM_LEN)
    {
        return fail("invalid_request", "state or nonce is too long");
    }
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method").map(String::as_str),
    ) {
        (Some(challenge), Some("S256")) => {
            if challenge.len() != 43 || !valid_pkce_value(challenge) {
                return fail("invalid_request", "malformed code_challenge");
            }
            Some(challenge.clone())
        }
        (Some(_), _) => return fail("invalid_request", "code_challenge_method must be S256"),
        (None, Some(_)) => return fail("invalid_request", "code_challenge is missing"),
        (None, None) if st.config.require_pkce => {
            return fail(
                "invalid_request",
                "PKCE (code_challenge with S256) is required",
            );
        }
        (None, None) => None,
    };
    if params
        .get("prompt")
        .is_some_and(|p| p.split(' ').any(|v| v == "none"))
    {
        // There are no provider sessions: every sign-in needs the form.
        return fail("login_required", "the user must sign in");
    }
    let scope: Vec<String> = split_scope(params.get("scope").map_or("openid", String::as_str))
        .into_iter()
        .filter(|s| SUPPORTED_SCOPES.contains(&s.as_str()))
        .collect();
    if scope.is_empty() {
        return fail("invalid_scope", "none of the requested scopes is supported");
    }
    let offline = scope.iter().any(|s| s == "offline_access")
        || (st.config.google_offline_access
            && params.get("access_type").is_some_and(|v| v == "offline"));
    let request = AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        scope,
        state: state.map(str::to_owned),
        nonce: params.get("nonce").cloned(),
        code_challenge,
        offline,
        prompt_consent: params
            .get("prompt")
            .is_some_and(|p| p.split(' ').any(|v| v == "consent")),
    };
    let id = {
        let mut rng = rand::thread_rng();
        st.lock()
            .begin_authorization(request.clone(), unix_now(), &mut rng)
    };
    login_page(&st, &id, &request, None, &LoginForm::default())
}

fn login_page(
    st: &DevIdpState,
    request_id: &str,
    request: &AuthorizationRequest,
    error: Option<&str>,
    form: &LoginForm,
) -> Response {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let action = st.endpoint("/authorize");
    html(
        status,
        page::login(&LoginPage {
            action: &action,
            request_id,
            client_id: &request.client_id,
            redirect_uri: &request.redirect_uri,
            scope: &request.scope,
            error,
            form,
        }),
    )
}

async fn authorize_post(State(st): St, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else {
        return error_page(StatusCode::BAD_REQUEST, "Invalid request", "malformed form");
    };
    let now = unix_now();
    let expired = || {
        error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in request is unknown or has expired. Go back to the application and start again.",
        )
    };
    let issuer = st.issuer_str.as_str();
    if form.action == "deny" {
        let Ok(request) = st.lock().deny_authorization(&form.request, now) else {
            return expired();
        };
        return redirect_with(
            &request.redirect_uri,
            &[
                ("error", Some("access_denied")),
                ("error_description", Some("the user denied access")),
                ("state", request.state.as_deref()),
                ("iss", Some(issuer)),
            ],
        );
    }
    let identity = match identity_from(&form) {
        Ok(identity) => identity,
        Err(message) => {
            let pending = st.lock().pending_request(&form.request, now).cloned();
            return match pending {
                Some(request) => login_page(&st, &form.request, &request, Some(message), &form),
                None => expired(),
            };
        }
    };
    let completed = {
        let mut rng = rand::thread_rng();
        st.lock()
            .complete_authorization(&form.request, identity, now, &mut rng)
    };
    let Ok((request, code)) = completed else {
        return expired();
    };
    redirect_with(
        &request.redirect_uri,
        &[
            ("code", Some(&code)),
            ("state", request.state.as_deref()),
            ("iss", Some(issuer)),
        ],
    )
}

// ---- token endpoint ---------------------------------------------------------------------

async fn token(State(st): St, headers: HeaderMap, body: Bytes) -> Result<Response, OAuthError> {
    let params = form_params(&headers, &body)?;
    let client = st.authenticate(&headers, &params)?;
    let now = unix_now();
    let issued = match params.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = required(&params, "code")?;
            let redirect_uri = required(&params, "redirect_uri")?;
            let verifier = params.get("code_verifier").map(String::as_str);
            let result = {
                let mut rng = rand::thread_rng();
                st.lock().exchange_code(
                    &client.client_id,
                    code,
                    redirect_uri,
                    verifier,
                    now,
                    &mut rng,
                )
            };
            match result {
                Ok(issued) => {
                    bump(&st.counters.code_grants);
                    issued
                }
                Err(error) => {
                    if let GrantError::CodeReplay { grant_revoked } = error {
                        tracing::warn!(client_id = %client.client_id, grant_revoked, "authorization code replayed");
                        if grant_revoked {
                            bump(&st.counters.revocations);
                        }
                    }
                    return Err(OAuthError::grant(&error));
                }
            }
        }
        Some("refresh_token") => {
            let refresh_token = required(&params, "refresh_token")?;
            let scope = params.get("scope").map(|s| split_scope(s));
            let result = {
                let mut rng = rand::thread_rng();
                st.lock().refresh(
                    &client.client_id,
                    refresh_token,
                    scope.as_deref(),
                    now,
                    &mut rng,
                )
            };
            match result {
                Ok(issued) => {
                    bump(&st.counters.refresh_grants);
                    issued
                }
                Err(error) => {
                    if let GrantError::RefreshReuse { grant_revoked } = error {
                        bump(&st.counters.reuse_detections);
                        if grant_revoked {
                            bump(&st.counters.revocations);
                            tracing::warn!(client_id = %client.client_id, "refresh token reused; grant revoked");
                        }
                    }
                    return Err(OAuthError::grant(&error));
                }
            }
        }
        Some(_) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "supported: authorization_code, refresh_token",
            ));
        }
        None => return Err(OAuthError::invalid_request("grant_type is required")),
    };
    let id_token = st.id_token(&issued, now)?;
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope.join(" "),
    });
    if let Some(rt) = &issued.refresh_token {
        body["refresh_token"] = json!(rt);
    }
    if let Some(id_token) = id_token {
        body["id_token"] = json!(id_token);
    }
    Ok((StatusCode::OK, no_store(), axum::Json(body)).into_response())
}

// ---- userinfo, revocation, introspection, logout ---------------------------------------

async fn userinfo(State(st): St, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let unauthorized = |challenge: &'static str, body: serde_json::Value| {
        (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, challenge), (CACHE_CONTROL, "no-store")],
            axum::Json(body),
        )
            .into_response()
    };
    let Some(token) = bearer else {
        return unauthorized(
            "Bearer realm=\"authgate-devidp\"",
            json!({"error": "invalid_request", "error_description": "Bearer access token required"}),
        );
    };
    let Some((identity, scope)) = st.lock().userinfo(token, unix_now()) else {
        return unauthorized(
            "Bearer realm=\"authgate-devidp\", error=\"invalid_token\"",
            json!({"error": "invalid_token", "error_description": "access token is invalid, expired or revoked"}),
        );
    };
    let has = |s: &str| scope.iter().any(|g| g == s);
    let mut body = json!({ "sub": identity.sub });
    if has("profile") {
        body["name"] = json!(identity.name);
        body["preferred_username"] = json!(identity.sub);
    }
    if has("email") && identity.email.is_some() {
        body["email"] = json!(identity.email);
        if let Some(verified) = identity.email_verified {
            body["email_verified"] = json!(verified);
        }
    }
    if let Some(hd) = &identity.hosted_domain {
        body["hd"] = json!(hd);
    }
    if !identity.groups.is_empty() {
        body["groups"] = json!(identity.groups);
    }
    if !identity.roles.is_empty() {
        body["roles"] = json!(identity.roles);
        body["realm_access"] = json!({ "roles": identity.roles });
    }
    (no_store(), axum::Json(body)).into_response()
}

async fn revoke(State(st): St, headers: HeaderMap, body: Bytes) -> Result<Response, OAuthError> {
    let params = form_params(&headers, &body)?;
    let client = st.authenticate(&headers, &params)?;
    let token = required(&params, "token")?;
    // token_type_hint is optional and only a hint: every kind is looked up.
    let outcome = st.lock().revoke(&client.client_id, token, unix_now());
    if outcome != Revoked::Nothing {
        bump(&st.counters.revocations);
        tracing::info!(client_id = %client.client_id, ?outcome, "token revoked");
    }
    Ok((StatusCode::OK, no_store()).into_response())
}

async fn introspect(
    State(st): St,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = form_params(&headers, &body)?;
    let client = st.authenticate(&headers, &params)?;
    let token = required(&params, "token")?;
    let info = st
        .lock()
        .introspect(token, unix_now())
        .filter(|info| info.client_id == client.client_id);
    let body = match info {
        None => json!({ "active": false }),
        Some(info) => {
            let mut body = json!({
                "active": true,
                "client_id": info.client_id,
                "sub": info.sub,
                "scope": info.scope.join(" "),
                "iat": info.iat,
                "exp": info.exp,
                "iss": st.issuer_str,
                "aud": info.client_id,
                "token_use": info.kind.as_str(),
            });
            if info.kind == crate::grants::TokenKind::Access {
                body["token_type"] = json!("Bearer");
            }
            body
        }
    };
    Ok((no_store(), axum::Json(body)).into_response())
}

/// RP-initiated logout. The provider keeps no browser sessions, so this only confirms and,
/// when `client_id` and a registered `post_logout_redirect_uri` are given, redirects back.
async fn logout(State(st): St, RawQuery(query): RawQuery) -> Response {
    let params = parse_params(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let target = params
        .get("client_id")
        .and_then(|id| st.client(id))
        .zip(params.get("post_logout_redirect_uri"))
        .filter(|(client, uri)| client.redirect_allowed(uri))
        .map(|(_, uri)| uri.clone());
    match target {
        Some(uri) => redirect_with(&uri, &[("state", params.get("state").map(String::as_str))]),
        None => html(
            StatusCode::OK,
            page::error(
                "Signed out",
                "You are signed out of the development provider.",
            ),
        ),
    }
}
