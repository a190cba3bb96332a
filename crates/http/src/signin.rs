//! Sign-in: the provider list page, starting the authorization code flow,
//! and the callback that turns a code into a session.
//!
//! Every value the callback trusts comes from a sealed cookie set when the
//! flow started (`state` with the callback URL, the PKCE verifier, the
//! `nonce`), each bound to the provider it was issued for and valid 15
//! minutes. Nothing is stored until every check has passed.

use crate::account;
use crate::audit::AuditEvent;
use crate::authjs;
use crate::cookies::{cookie_value, request_cookies};
use crate::csrf::{csrf_for, csrf_ok, form_fields};
use crate::error::{HttpError, wants_json};
use crate::pages::{self, ProviderButton};
use crate::redirect::safe_callback;
use crate::rejection::AuthRejection;
use crate::session::{AccountRef, Identity, new_claims, session_cookie_names, write_jwt};
use crate::settings::SessionStrategy;
use crate::state::{Gateway, Inner};
use authgate_core::callback::CallbackParams;
use authgate_core::cookie::{CHECK_MAX_AGE, CheckKind};
use authgate_core::pkce::{Pkce, random_value};
use authgate_core::provider_error::{ProviderError, ProviderErrorKind};
use authgate_core::refresh::DEFAULT_RETRY_AFTER;
use authgate_core::time::UnixTime;
use authgate_oauth::{Provider, ProviderKind};
use authgate_store::{NewSession, StoreError};
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// What the `state` cookie seals: the state value and where to go after.
#[derive(Serialize, Deserialize)]
struct StateCookie {
    s: String,
    cb: String,
    /// This attempt already asked the provider for consent again (a
    /// refresh token was missing): never ask twice.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    rc: bool,
}

/// `GET {base}/signin?callbackUrl=…&error=…`: the provider list.
pub(crate) async fn signin_page(
    State(gw): State<Gateway>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let inner = &gw.inner;
    if let Some(moved) = crate::hosts::to_public_host(inner, &uri, &headers) {
        return moved;
    }
    let cookies = request_cookies(&headers);
    let (csrf_token, set_cookie) = csrf_for(inner, &cookies);
    let callback = safe_callback(q.get("callbackUrl").map(String::as_str), &inner.redirect);
    let error = q.get("error").map(|e| describe_signin_error(e));
    let buttons: Vec<ProviderButton> = inner
        .catalog
        .iter()
        .map(|p| ProviderButton {
            id: p.id().to_owned(),
            name: p.name().to_owned(),
        })
        .collect();
    let html = pages::signin_page(
        &inner.settings.base_path,
        &buttons,
        &csrf_token,
        &callback,
        error,
    );
    let mut response = Html(html).into_response();
    if let Some(c) = set_cookie {
        response.headers_mut().append(SET_COOKIE, c);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn describe_signin_error(code: &str) -> &'static str {
    match code {
        "SessionRequired" => "Please sign in to continue.",
        "MissingCSRF" => "The sign-in form expired. Please try again.",
        "RefreshTokenError" => "Your sign-in has expired. Please sign in again.",
        "AccessDenied" => "Access was denied at the identity provider.",
        _ => "Sign-in failed. Please try again.",
    }
}

/// `POST {base}/signin/{provider}`: CSRF-checked start of the flow.
pub(crate) async fn signin_post(
    State(gw): State<Gateway>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = &gw.inner;
    let fields = form_fields(&headers, &body);
    // next-auth/react's `signIn()` posts with `fetch` and wants `{"url": …}`.
    let url_json = authjs::wants_redirect_url(&headers, &fields);
    if !csrf_ok(inner, &headers, &fields) {
        let error = HttpError::forbidden(
            "MissingCSRF",
            "The sign-in form expired or was not sent by this site. Please try again.",
        );
        if url_json {
            return authjs::error_url(inner, &error);
        }
        return error.render(wants_json(&headers), &inner.settings.auth_url("/signin"));
    }
    if url_json && inner.catalog.get(&provider).is_none() {
        return authjs::error_url(inner, &authjs::unknown_provider());
    }
    let response = start(
        inner,
        &provider,
        fields.get("callbackUrl").map(String::as_str),
        &headers,
    );
    if url_json {
        return authjs::redirect_as_url(response, &inner.settings.public_url);
    }
    response
}

/// `GET {base}/signin/{provider}?callbackUrl=…`: start the flow by link.
pub(crate) async fn signin_get(
    State(gw): State<Gateway>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Path(provider): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(moved) = crate::hosts::to_public_host(&gw.inner, &uri, &headers) {
        return moved;
    }
    // Another site may link here, but may not start a flow by itself (it
    // would overwrite a sign-in in progress): a cross-site navigation lands
    // on the sign-in page, where the user presses the button.
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    if cross_site {
        let callback = safe_callback(q.get("callbackUrl").map(String::as_str), &gw.inner.redirect);
        let location = format!(
            "{}/signin?callbackUrl={}",
            gw.inner.settings.base_path,
            url::form_urlencoded::byte_serialize(callback.as_bytes()).collect::<String>()
        );
        let mut response = StatusCode::FOUND.into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(LOCATION, v);
        }
        return response;
    }
    start(
        &gw.inner,
        &provider,
        q.get("callbackUrl").map(String::as_str),
        &headers,
    )
}

fn redirect_uri(inner: &Inner, provider: &str) -> String {
    inner.settings.auth_url(&format!("/callback/{provider}"))
}

fn start(
    inner: &Inner,
    provider_id: &str,
    callback: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let Some(provider) = inner.catalog.get(provider_id) else {
        return HttpError::new(
            StatusCode::NOT_FOUND,
            "UnknownProvider",
            "No such sign-in provider is configured.",
        )
        .render(wants_json(headers), &inner.settings.auth_url("/signin"));
    };
    let callback = safe_callback(callback, &inner.redirect);
    authorize(inner, provider, callback, Consent::AsConfigured)
}

/// Which authorization request a sign-in sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Consent {
    /// The provider's configured parameters.
    AsConfigured,
    /// Plus the preset's re-consent parameters: the user signed in, but the
    /// provider issued no refresh token and none is stored.
    Again,
}

/// Sends the browser to `provider`'s authorization endpoint, with fresh
/// state, PKCE and nonce sealed into check cookies; `callback` is where the
/// sign-in ends (already made safe).
fn authorize(inner: &Inner, provider: &Provider, callback: String, consent: Consent) -> Response {
    let provider_id = provider.id();
    let now = inner.clock.now();
    let rng = &mut rand::rngs::OsRng;
    let state = random_value(rng);
    let pkce = Pkce::generate(rng);
    let nonce = (provider.kind() == ProviderKind::Oidc).then(|| random_value(rng));
    let sealed_state = serde_json::to_string(&StateCookie {
        s: state.clone(),
        cb: callback,
        rc: consent == Consent::Again,
    })
    .unwrap_or_default();
    let redirect = redirect_uri(inner, provider_id);
    let url = match consent {
        Consent::Again => {
            provider.reconsent_url(&redirect, &state, nonce.as_deref(), &pkce.challenge)
        }
        Consent::AsConfigured => None,
    }
    .unwrap_or_else(|| {
        provider.authorization_url(&redirect, &state, nonce.as_deref(), &pkce.challenge, None)
    });
    let mut response = StatusCode::FOUND.into_response();
    let h = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        h.insert(LOCATION, location);
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let mut seal = |kind: CheckKind, value: &str| {
        let sealed = inner.checks.seal(kind, provider_id, value, now, rng);
        h.append(
            SET_COOKIE,
            inner
                .cookies
                .set(inner.checks.cookie_name(kind), &sealed, Some(CHECK_MAX_AGE)),
        );
    };
    seal(CheckKind::State, &sealed_state);
    seal(CheckKind::PkceVerifier, &pkce.verifier);
    if let Some(nonce) = &nonce {
        seal(CheckKind::Nonce, nonce);
    }
    tracing::info!(provider = provider_id, ?consent, "sign-in started");
    response
}

/// `GET {base}/callback/{provider}`: finish the flow.
pub(crate) async fn callback(
    State(gw): State<Gateway>,
    Path(provider_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let inner = &gw.inner;
    let json = wants_json(&headers);
    let back = inner.settings.auth_url("/signin");
    let refused = |error: &HttpError| {
        AuditEvent::SignInRefused {
            provider: &provider_id,
            reason: error.code,
        }
        .emit();
    };
    let q = match CallbackParams::parse(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(error) => {
            tracing::info!(%error, "sign-in callback refused");
            let error = HttpError::bad_request(
                "InvalidCallback",
                "The sign-in response repeats a parameter. Please try again.",
            );
            refused(&error);
            return error.render(json, &back);
        }
    };
    // A callback whose state does not match leaves the user's real sign-in
    // attempt (its check cookies) alone: a forged callback cannot cancel it.
    let state = match verified_state(inner, &provider_id, &q, &headers) {
        Ok(state) => state,
        Err(error) => {
            refused(&error);
            return error.render(json, &back);
        }
    };
    match finish(inner, &provider_id, state, &q, &headers).await {
        Ok(response) => response,
        Err(error) => {
            refused(&error);
            let mut response = error.render(json, &back);
            expire_checks(inner, response.headers_mut());
            response
        }
    }
}

fn expire_checks(inner: &Inner, headers: &mut HeaderMap) {
    for kind in [CheckKind::State, CheckKind::PkceVerifier, CheckKind::Nonce] {
        headers.append(
            SET_COOKIE,
            inner.cookies.expire(inner.checks.cookie_name(kind)),
        );
    }
}

/// Opens a sealed check cookie issued for `provider_id`.
fn open_check(
    inner: &Inner,
    cookies: &[(String, String)],
    kind: CheckKind,
    provider_id: &str,
    now: UnixTime,
) -> Result<String, HttpError> {
    let raw = cookie_value(cookies, inner.checks.cookie_name(kind)).ok_or_else(|| {
        HttpError::bad_request(
            "InvalidCheck",
            "The sign-in attempt expired or was started in another browser. Please try again.",
        )
    })?;
    inner
        .checks
        .open(kind, provider_id, raw, now)
        .map_err(|error| {
            tracing::info!(%error, ?kind, "sign-in check cookie rejected");
            HttpError::bad_request(
                "InvalidCheck",
                "The sign-in attempt expired or is not valid. Please try again.",
            )
        })
}

/// The state cookie of this provider, if the callback's `state` matches it.
fn verified_state(
    inner: &Inner,
    provider_id: &str,
    q: &CallbackParams,
    headers: &HeaderMap,
) -> Result<StateCookie, HttpError> {
    if inner.catalog.get(provider_id).is_none() {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "UnknownProvider",
            "No such sign-in provider is configured.",
        ));
    }
    let cookies = request_cookies(headers);
    let sealed_state = open_check(
        inner,
        &cookies,
        CheckKind::State,
        provider_id,
        inner.clock.now(),
    )?;
    let state: StateCookie = serde_json::from_str(&sealed_state).map_err(|_| {
        HttpError::bad_request(
            "InvalidCheck",
            "The sign-in attempt is not valid. Please try again.",
        )
    })?;
    let returned = q.state.as_deref().unwrap_or("");
    if !bool::from(returned.as_bytes().ct_eq(state.s.as_bytes())) {
        return Err(HttpError::bad_request(
            "InvalidState",
            "The sign-in response does not match the request. Please try again.",
        ));
    }
    Ok(state)
}

async fn finish(
    inner: &Inner,
    provider_id: &str,
    state: StateCookie,
    q: &CallbackParams,
    headers: &HeaderMap,
) -> Result<Response, HttpError> {
    let provider = inner.catalog.get(provider_id).ok_or_else(|| {
        HttpError::new(
            StatusCode::NOT_FOUND,
            "UnknownProvider",
            "No such sign-in provider is configured.",
        )
    })?;
    let now = inner.clock.now();
    let cookies = request_cookies(headers);
    let open = |kind: CheckKind| open_check(inner, &cookies, kind, provider_id, now);
    // RFC 9207: the response must come from this provider (error responses
    // too), before anything in it is believed or the code redeemed.
    if let Err(error) = provider.check_response_issuer(q.iss.as_deref()) {
        tracing::warn!(provider = provider_id, %error, "sign-in response refused");
        return Err(HttpError::bad_request(
            "IssuerMismatch",
            "The sign-in response did not come from the identity provider it was sent to. Please try again.",
        ));
    }
    if let Some(error) = &q.error {
        tracing::info!(provider = provider_id, error = %error.chars().take(64).collect::<String>(), "provider refused the sign-in");
        return Err(HttpError::forbidden(
            "AccessDenied",
            "The identity provider did not grant access.",
        ));
    }
    let code = q.code.as_deref().filter(|c| !c.is_empty()).ok_or_else(|| {
        HttpError::bad_request(
            "MissingCode",
            "The sign-in response has no authorization code.",
        )
    })?;
    let verifier = open(CheckKind::PkceVerifier)?;
    let response = provider
        .exchange_code(code, &verifier, &redirect_uri(inner, provider_id), now)
        .await
        .map_err(|e| provider_failure(&e, "code exchange"))?;
    // Compute a plan from what the provider vouches for, then execute it.
    let answers = account::answers(inner, provider, &response.tokens, &cookies, now).await?;
    let profile = account::profile(provider, &answers)?;
    // Google issues a refresh token at a user's first consent only: a
    // returning user whose stored grant is gone (never stored, or ended by
    // RefreshTokenError) is asked for consent once more.
    if response.tokens.refresh_token.is_none()
        && !state.rc
        && provider.can_reconsent()
        && !account::holds_refresh_token(inner, provider, &profile).await?
    {
        tracing::info!(
            provider = provider_id,
            "no refresh token issued or stored; asking for consent again"
        );
        return Ok(authorize(inner, provider, state.cb, Consent::Again));
    }
    let (user, account, kind) =
        account::sign_in(inner, provider, &profile, response.tokens.clone(), now).await?;
    let identity = Identity::of(&user);
    inner.users.insert(identity.id.clone(), identity.clone());
    let account_ref = AccountRef {
        id: account.id.clone(),
        provider: provider_id.to_owned(),
    };
    let mut response_out = StatusCode::FOUND.into_response();
    let h = response_out.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&state.cb) {
        h.insert(LOCATION, location);
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let present = session_cookie_names(inner, &cookies);
    // Every sign-in gets its own session record (a new generation: signing
    // in again never revives a signed-out copy of an older cookie).
    let new_session = NewSession {
        user_id: user.id.clone(),
        account_id: Some(account.id.clone()),
        now,
        expires: now.saturating_add(inner.settings.max_age),
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        provider_sid: answers.provider_sid.clone(),
        // A JWT session keeps them in its cookie.
        attributes: match inner.settings.strategy {
            SessionStrategy::Database => answers.attributes.clone(),
            SessionStrategy::Jwt => Default::default(),
        },
    };
    match inner.settings.strategy {
        SessionStrategy::Jwt => {
            let record = inner
                .store
                .create_jwt_session(new_session)
                .await
                .map_err(store_failure)?;
            let claims = new_claims(
                &identity,
                &account_ref,
                &record.id,
                response.tokens.expires_at,
                &answers.attributes,
            );
            write_jwt(inner, &claims, &present, now, h);
        }
        SessionStrategy::Database => {
            let created = inner
                .store
                .create_database_session(new_session)
                .await
                .map_err(store_failure)?;
            let writes = authgate_core::cookie::chunk::write_chunks(
                inner.session_codec.cookie_name(),
                created.token.expose(),
                present.iter().map(String::as_str),
                inner.session_codec.format().chunk_size(),
            );
            inner
                .cookies
                .apply(h, &writes, Some(inner.settings.max_age));
        }
    }
    expire_checks(inner, h);
    AuditEvent::SignIn {
        provider: provider_id,
        user: user.id.as_str(),
        kind,
    }
    .emit();
    Ok(response_out)
}

/// Maps a provider failure during sign-in to what the browser sees.
pub(crate) fn provider_failure(e: &ProviderError, during: &str) -> HttpError {
    tracing::warn!(error = %e, during, "provider call failed");
    match e.kind {
        ProviderErrorKind::GrantRevoked => HttpError::bad_request(
            "InvalidGrant",
            "The identity provider rejected the sign-in (the code was used, expired or does not match). Please try again.",
        ),
        ProviderErrorKind::Transient { retry_after } => HttpError::unavailable(
            "ProviderUnavailable",
            "The identity provider is not reachable right now. Please try again shortly.",
            retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
        ),
        ProviderErrorKind::Misconfigured | ProviderErrorKind::Protocol => HttpError::new(
            StatusCode::BAD_GATEWAY,
            "ProviderError",
            "The identity provider refused this gateway's request. An administrator needs to check the configuration.",
        ),
    }
}

pub(crate) fn store_failure(e: StoreError) -> HttpError {
    AuthRejection::store_unavailable(&e).http_error()
}
