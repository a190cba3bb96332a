//! Sign-in: the provider list page, starting the authorization code flow,
//! and the callback that turns a code into a session.
//!
//! Every value the callback trusts comes from a sealed cookie set when the
//! flow started (`state` with the callback URL, the PKCE verifier, the
//! `nonce`), each bound to the provider it was issued for and valid 15
//! minutes. Nothing is stored until every check has passed.

use crate::authjs;
use crate::cookies::{cookie_value, request_cookies};
use crate::error::{HttpError, wants_json};
use crate::pages::{self, ProviderButton};
use crate::redirect::safe_callback;
use crate::session::{AccountRef, Identity, new_claims, read_session, write_jwt};
use crate::settings::SessionStrategy;
use crate::state::{Gateway, Inner};
use authgate_core::cookie::{CHECK_MAX_AGE, CheckKind};
use authgate_core::csrf::{issue_csrf, verified_cookie_token, verify_csrf};
use authgate_core::pkce::{Pkce, random_value};
use authgate_core::provider_error::{ProviderError, ProviderErrorKind};
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use authgate_oauth::{IdTokenError, Provider, ProviderKind};
use authgate_store::{Account, NewAccount, NewUser, ReplaceOutcome, StoreError, User};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
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
}

/// `GET {base}/signin?callbackUrl=…&error=…`: the provider list.
pub(crate) async fn signin_page(
    State(gw): State<Gateway>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let inner = &gw.inner;
    let cookies = request_cookies(&headers);
    let (csrf_token, set_cookie) = csrf_for(inner, &cookies);
    let callback = safe_callback(
        q.get("callbackUrl").map(String::as_str),
        &inner.settings.public_url,
    );
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

/// The CSRF token to show, and a `Set-Cookie` when a new one was minted.
pub(crate) fn csrf_for(
    inner: &Inner,
    cookies: &[(String, String)],
) -> (String, Option<HeaderValue>) {
    let name = crate::csrf_cookie_name(inner);
    if let Some(token) =
        cookie_value(cookies, name).and_then(|v| verified_cookie_token(v, &inner.secrets))
    {
        return (token.to_owned(), None);
    }
    let minted = issue_csrf(inner.signing_secret(), &mut rand::rngs::OsRng);
    let cookie = inner.cookies.set(name, &minted.cookie_value, None);
    (minted.token, Some(cookie))
}

/// Parses a form or JSON body into string fields.
pub(crate) fn form_fields(headers: &HeaderMap, body: &Bytes) -> HashMap<String, String> {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        serde_json::from_slice::<HashMap<String, serde_json::Value>>(body)
            .map(|m| {
                m.into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        serde_urlencoded::from_bytes(body).unwrap_or_default()
    }
}

/// Whether a POST carries a valid double-submit CSRF token (form field
/// `csrfToken`, or the `X-CSRF-Token` header).
pub(crate) fn csrf_ok(
    inner: &Inner,
    headers: &HeaderMap,
    fields: &HashMap<String, String>,
) -> bool {
    let cookies = request_cookies(headers);
    let Some(cookie) = cookie_value(&cookies, crate::csrf_cookie_name(inner)) else {
        return false;
    };
    let submitted = fields
        .get("csrfToken")
        .map(String::as_str)
        .or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()))
        .unwrap_or("");
    verify_csrf(cookie, submitted, &inner.secrets)
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
    Path(provider): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    // Another site may link here, but may not start a flow by itself (it
    // would overwrite a sign-in in progress): a cross-site navigation lands
    // on the sign-in page, where the user presses the button.
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    if cross_site {
        let callback = safe_callback(
            q.get("callbackUrl").map(String::as_str),
            &gw.inner.settings.public_url,
        );
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
    let now = inner.clock.now();
    let rng = &mut rand::rngs::OsRng;
    let state = random_value(rng);
    let pkce = Pkce::generate(rng);
    let nonce = (provider.kind() == ProviderKind::Oidc).then(|| random_value(rng));
    let sealed_state = serde_json::to_string(&StateCookie {
        s: state.clone(),
        cb: safe_callback(callback, &inner.settings.public_url),
    })
    .unwrap_or_default();
    let url = provider.authorization_url(
        &redirect_uri(inner, provider_id),
        &state,
        nonce.as_deref(),
        &pkce.challenge,
        None,
    );
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
    tracing::info!(provider = provider_id, "sign-in started");
    response
}

/// `GET {base}/callback/{provider}`: finish the flow.
pub(crate) async fn callback(
    State(gw): State<Gateway>,
    Path(provider_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let inner = &gw.inner;
    let json = wants_json(&headers);
    let back = inner.settings.auth_url("/signin");
    // A callback whose state does not match leaves the user's real sign-in
    // attempt (its check cookies) alone: a forged callback cannot cancel it.
    let state = match verified_state(inner, &provider_id, &q, &headers) {
        Ok(state) => state,
        Err(error) => return error.render(json, &back),
    };
    match finish(inner, &provider_id, state, &q, &headers).await {
        Ok(response) => response,
        Err(error) => {
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
    q: &HashMap<String, String>,
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
    let returned = q.get("state").map(String::as_str).unwrap_or("");
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
    q: &HashMap<String, String>,
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
    if let Some(error) = q.get("error") {
        tracing::info!(provider = provider_id, error = %error.chars().take(64).collect::<String>(), "provider refused the sign-in");
        return Err(HttpError::forbidden(
            "AccessDenied",
            "The identity provider did not grant access.",
        ));
    }
    let code = q.get("code").filter(|c| !c.is_empty()).ok_or_else(|| {
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
    let profile = profile(
        inner,
        provider,
        &response.tokens,
        &cookies,
        provider_id,
        now,
    )
    .await?;
    let (user, account) = upsert(inner, provider, &profile, response.tokens.clone()).await?;
    let identity = Identity {
        id: user.id.as_str().to_owned(),
        name: user.name.clone(),
        email: user.email.clone(),
        image: user.image.clone(),
    };
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
    let present: Vec<String> = match read_session(inner, &cookies, now).await.ok().flatten() {
        Some(s) => s.cookie_names,
        None => cookies
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| n.starts_with(inner.session_codec.cookie_name()))
            .collect(),
    };
    match inner.settings.strategy {
        SessionStrategy::Jwt => {
            let claims = new_claims(&identity, &account_ref, response.tokens.expires_at);
            write_jwt(inner, &claims, &present, now, h);
        }
        SessionStrategy::Database => {
            let expires = now.saturating_add(inner.settings.max_age);
            let created = inner
                .store
                .create_session(&user.id, Some(&account.id), now, expires)
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
    tracing::info!(provider = provider_id, user = user.id.as_str(), "signed in");
    Ok(response_out)
}

/// Who signed in, from the verified ID token, completed by userinfo.
struct Profile {
    sub: String,
    name: Option<String>,
    email: Option<String>,
    /// The ID token said the address is not verified: userinfo must then
    /// vouch for it explicitly.
    email_unverified: bool,
    picture: Option<String>,
    kind: &'static str,
}

async fn profile(
    inner: &Inner,
    provider: &Provider,
    tokens: &TokenSet,
    cookies: &[(String, String)],
    provider_id: &str,
    now: UnixTime,
) -> Result<Profile, HttpError> {
    let mut profile = match provider.kind() {
        ProviderKind::Oidc => {
            let id_token = tokens.id_token.as_ref().ok_or_else(|| {
                HttpError::new(
                    StatusCode::BAD_GATEWAY,
                    "ProviderError",
                    "The identity provider returned no ID token.",
                )
            })?;
            let nonce_raw = cookie_value(cookies, inner.checks.cookie_name(CheckKind::Nonce))
                .ok_or_else(|| {
                    HttpError::bad_request(
                        "InvalidCheck",
                        "The sign-in attempt expired. Please try again.",
                    )
                })?;
            let nonce = inner
                .checks
                .open(CheckKind::Nonce, provider_id, nonce_raw, now)
                .map_err(|_| {
                    HttpError::bad_request(
                        "InvalidCheck",
                        "The sign-in attempt expired. Please try again.",
                    )
                })?;
            let claims = provider
                .verify_id_token(id_token.expose(), Some(&nonce), now)
                .await
                .map_err(id_token_failure)?;
            // An address the provider says it did not verify is not used:
            // allow-lists and account e-mails must not trust it.
            let verified = claims.email_verified != Some(false);
            Profile {
                sub: claims.sub.clone(),
                name: claims.name.clone(),
                email: claims.email.clone().filter(|_| verified),
                email_unverified: !verified,
                picture: claims.picture.clone(),
                kind: "oidc",
            }
        }
        ProviderKind::OAuth2 => Profile {
            sub: String::new(),
            name: None,
            email: None,
            email_unverified: false,
            picture: None,
            kind: "oauth",
        },
    };
    let needs_userinfo =
        profile.sub.is_empty() || profile.email.is_none() || profile.name.is_none();
    if needs_userinfo && provider.endpoints().userinfo.is_some() {
        match provider.userinfo(&tokens.access_token).await {
            Ok(info) => {
                if profile.sub.is_empty() {
                    profile.sub = info.sub;
                } else if info.sub != profile.sub {
                    return Err(HttpError::new(
                        StatusCode::BAD_GATEWAY,
                        "ProviderError",
                        "The identity provider's user info belongs to another user.",
                    ));
                }
                profile.name = profile.name.or(info.name);
                let vouched = match info.email_verified {
                    Some(v) => v,
                    None => !profile.email_unverified,
                };
                if vouched {
                    profile.email = profile.email.or(info.email);
                }
                profile.picture = profile.picture.or(info.picture);
            }
            Err(e) if profile.sub.is_empty() => return Err(provider_failure(&e, "userinfo")),
            Err(e) => {
                tracing::warn!(error = %e, "userinfo failed; continuing with the ID token's claims")
            }
        }
    }
    if profile.sub.is_empty() {
        return Err(HttpError::new(
            StatusCode::BAD_GATEWAY,
            "ProviderError",
            "The identity provider did not identify the user.",
        ));
    }
    Ok(profile)
}

/// Finds or creates the user and account, storing the sign-in's tokens.
async fn upsert(
    inner: &Inner,
    provider: &Provider,
    profile: &Profile,
    tokens: TokenSet,
) -> Result<(User, Account), HttpError> {
    let store = &inner.store;
    if let Some(account) = store
        .find_account_by_provider(provider.id(), &profile.sub)
        .await
        .map_err(store_failure)?
    {
        // A new sign-in is a new grant: replace whatever is stored.
        for _ in 0..5 {
            let version = store
                .read_tokens(&account.id)
                .await
                .map_err(store_failure)?
                .map_or(0, |v| v.version);
            match store
                .replace_tokens(&account.id, version, &tokens, None)
                .await
                .map_err(store_failure)?
            {
                ReplaceOutcome::Replaced { .. } => {
                    let user = store
                        .find_user(&account.user_id)
                        .await
                        .map_err(store_failure)?
                        .ok_or_else(|| store_failure(StoreError::UserNotFound))?;
                    return Ok((refreshed_profile(inner, user, profile).await, account));
                }
                ReplaceOutcome::LostRace { .. } => continue,
            }
        }
        return Err(HttpError::unavailable(
            "StoreBusy",
            "Please try signing in again.",
            std::time::Duration::from_secs(1),
        ));
    }
    if let Some(email) = &profile.email
        && store
            .find_user_by_email(email)
            .await
            .map_err(store_failure)?
            .is_some()
    {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            "OAuthAccountNotLinked",
            "This e-mail address already belongs to an account that signs in another way.",
        ));
    }
    let user = store
        .create_user(NewUser {
            name: profile.name.clone(),
            email: profile.email.clone(),
            email_verified: None,
            image: profile.picture.clone(),
        })
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists(_) => HttpError::new(
                StatusCode::CONFLICT,
                "OAuthAccountNotLinked",
                "This e-mail address already belongs to another account.",
            ),
            other => store_failure(other),
        })?;
    let account = store
        .link_account(NewAccount {
            user_id: user.id.clone(),
            kind: profile.kind.to_owned(),
            provider: provider.id().to_owned(),
            provider_account_id: profile.sub.clone(),
            tokens,
            session_state: None,
        })
        .await
        .map_err(store_failure)?;
    Ok((user, account))
}

/// Brings a returning user's profile up to date with what the provider said
/// now (an allow-list must judge today's address, not the first sign-in's).
/// A field the provider no longer sends keeps its stored value; an address
/// that another user already has is not taken over.
async fn refreshed_profile(inner: &Inner, user: User, profile: &Profile) -> User {
    let wanted = NewUser {
        name: profile.name.clone().or_else(|| user.name.clone()),
        email: profile.email.clone().or_else(|| user.email.clone()),
        email_verified: user.email_verified,
        image: profile.picture.clone().or_else(|| user.image.clone()),
    };
    if wanted.name == user.name && wanted.email == user.email && wanted.image == user.image {
        return user;
    }
    match inner.store.update_user_profile(&user.id, wanted).await {
        Ok(updated) => updated,
        Err(error) => {
            tracing::warn!(%error, user = user.id.as_str(), "could not update the user's profile; keeping the stored one");
            user
        }
    }
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
            retry_after.unwrap_or(std::time::Duration::from_secs(5)),
        ),
        ProviderErrorKind::Misconfigured | ProviderErrorKind::Protocol => HttpError::new(
            StatusCode::BAD_GATEWAY,
            "ProviderError",
            "The identity provider refused this gateway's request. An administrator needs to check the configuration.",
        ),
    }
}

fn id_token_failure(e: IdTokenError) -> HttpError {
    match e {
        IdTokenError::Jwks(inner) => provider_failure(&inner, "jwks"),
        other => {
            tracing::warn!(error = %other, "ID token rejected");
            HttpError::bad_request(
                "InvalidIdToken",
                "The identity provider's answer could not be verified. Please try again.",
            )
        }
    }
}

pub(crate) fn store_failure(e: StoreError) -> HttpError {
    tracing::warn!(error = %e, "store operation failed");
    HttpError::unavailable(
        "StoreUnavailable",
        "The session store is not reachable right now. Please try again shortly.",
        std::time::Duration::from_secs(2),
    )
}
