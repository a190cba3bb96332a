//! Bearer tokens for API clients, through the real HTTP interface: a JWT
//! access token minted by the development provider with its published key
//! passes `api` routes with its identity and groups; every forged,
//! misdirected or stale token is a `401 invalid_token` — never a cookie,
//! never a refresh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_devidp::{DevIdp, DevIdpConfig};
use authgate_http::{Access, AllowList, RouteRule, RouteRules};
use authgate_oauth::BearerSettings;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{
    Browser, Harness, Options, captured_logs, json, revoke_at_provider, sign_in, stored_tokens,
    user_id,
};
use reqwest::header::{SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

fn all_logs() -> String {
    String::from_utf8(captured_logs().lock().unwrap().clone()).unwrap()
}

/// The audit events of the request answered by `response`.
fn events_of(response: &reqwest::Response) -> Vec<Value> {
    let request_id = response.headers()["x-request-id"].to_str().unwrap();
    all_logs()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "authgate::audit")
        .filter(|line| line["fields"]["request_id"] == request_id)
        .map(|line| line["fields"].clone())
        .collect()
}

const AUDIENCE: &str = "https://api.example.test";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn routes() -> RouteRules {
    RouteRules::new(vec![
        RouteRule::new("/api/staff/**", Access::Api).with_allow(AllowList {
            groups: vec!["staff".into()],
            ..AllowList::default()
        }),
        RouteRule::new("/api/**", Access::Api),
        RouteRule::new("/protected/hooks/**", Access::Protected).with_bearer(true),
        RouteRule::new("/protected/**", Access::Protected),
        RouteRule::new("/**", Access::Public),
    ])
    .unwrap()
}

async fn start() -> Harness {
    common::start(Options {
        upstream: true,
        routes: Some(routes()),
        bearer: Some(BearerSettings {
            // The development provider's introspection names the client as `aud`.
            audiences: vec![AUDIENCE.into(), "http-tests".into()],
            algorithms: Vec::new(),
            introspect: true,
        }),
        ..Options::default()
    })
    .await
}

/// Claims of a token the gateway accepts, issued by `h`'s provider.
fn claims(h: &Harness) -> Value {
    json!({
        "iss": h.idp.issuer_str(),
        "sub": "svc-42",
        "aud": [AUDIENCE, "https://other.example.test"],
        "exp": now() + 300,
        "iat": now(),
        "nbf": now(),
        "client_id": "cli",
        "preferred_username": "deploy-bot",
        "groups": ["staff", "ops"],
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn parts(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

async fn call(h: &Harness, path: &str, token: &str) -> reqwest::Response {
    let mut b = Browser::new(h);
    b.get_with(path, &[("authorization", &format!("Bearer {token}"))])
        .await
}

/// A refusal: 401, `invalid_token` in the challenge, the token nowhere in
/// the answer, no cookie.
async fn assert_refused(h: &Harness, token: &str, reason: &str) {
    let why = reason;
    let r = call(h, "/api/data", token).await;
    assert_eq!(r.status(), 401, "{why}");
    let events = events_of(&r);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["message"], "bearer_refused");
    assert_eq!(events[0]["reason"], reason);
    assert_eq!(events[0]["path"], "/api/data");
    assert!(!all_logs().contains(token), "token logged");
    assert!(r.headers().get(SET_COOKIE).is_none(), "{why}");
    let challenge = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""),
        "{why}: {challenge}"
    );
    let body = r.text().await.unwrap();
    let signature = token.rsplit('.').next().unwrap();
    for text in [&challenge, &body] {
        assert!(!text.contains(token), "{why}: token echoed");
        assert!(
            signature.len() < 8 || !text.contains(signature),
            "{why}: signature echoed"
        );
    }
}

#[tokio::test]
async fn a_valid_token_passes_api_routes_with_its_identity_and_no_cookie() {
    captured_logs();
    let h = start().await;
    let token = h.idp.mint_access_jwt(&claims(&h)).unwrap();
    let before = h.idp.stats();

    let r = call(&h, "/api/data", &token).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get(SET_COOKIE).is_none());
    let seen = json(r).await;
    assert_eq!(seen["user"], "svc-42");
    assert_eq!(seen["email"], Value::Null, "no address from bearer tokens");
    assert_eq!(seen["preferred_username"], "deploy-bot");
    assert_eq!(seen["groups"], "staff,ops");
    assert_eq!(
        seen["authorization"],
        format!("Bearer {token}"),
        "the client's own credential goes upstream unchanged"
    );

    // The allow_groups rule: passes with `staff`, refuses without.
    let r = call(&h, "/api/staff/report", &token).await;
    assert_eq!(r.status(), 200);
    let outsider = h
        .idp
        .mint_access_jwt(&with(claims(&h), "groups", json!(["ops"])))
        .unwrap();
    let r = call(&h, "/api/staff/report", &outsider).await;
    assert_eq!(r.status(), 403);
    let events = events_of(&r);
    assert_eq!(events[0]["message"], "access_denied");
    assert_eq!(events[0]["user"], "svc-42");
    assert!(r.headers().get(SET_COOKIE).is_none());

    // `typ: JWT` (many providers' access tokens) and a single-string `aud` pass too.
    let plain = h
        .idp
        .mint_jwt(&with(claims(&h), "aud", json!(AUDIENCE)), "JWT")
        .unwrap();
    let r = call(&h, "/api/data", &plain).await;
    assert_eq!(r.status(), 200);
    // An ID token's `typ` would not.
    let other_type = h.idp.mint_jwt(&claims(&h), "id_token+jwt").unwrap();
    assert_eq!(call(&h, "/api/data", &other_type).await.status(), 401);

    // Nothing at the provider: no refresh, no code exchange.
    assert_eq!(h.idp.stats(), before);
    // No session was created.
    let r = call(&h, "/auth/session", &token).await;
    let session = r.text().await.unwrap();
    assert!(session == "null" || session == "{}", "{session}");
}

#[tokio::test]
async fn hostile_tokens_are_invalid_token() {
    captured_logs();
    let h = start().await;
    let good = h.idp.mint_access_jwt(&claims(&h)).unwrap();
    let p = parts(&good);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&p[0]).unwrap()).unwrap();

    // alg: none, with and without a signature part.
    let none = b64(&json!({"alg": "none", "typ": "at+jwt"}));
    assert_refused(&h, &format!("{none}.{}.", p[1]), "algorithm").await;
    assert_refused(&h, &format!("{none}.{}.{}", p[1], p[2]), "algorithm").await;

    // HS256 with the provider's public key (as published) as the HMAC secret.
    let jwks: Value = reqwest::get(h.idp.issuer().join("jwks").unwrap().as_str())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = &jwks["keys"][0];
    for secret in [
        serde_json::to_vec(jwk).unwrap(),
        URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap(),
    ] {
        let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        hs.kid = header["kid"].as_str().map(str::to_owned);
        let forged = jsonwebtoken::encode(
            &hs,
            &claims(&h),
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        assert_refused(&h, &forged, "algorithm").await;
    }

    // Another issuer (a provider the gateway does not know).
    let other = DevIdp::bind(([127, 0, 0, 1], 0).into(), DevIdpConfig::default())
        .await
        .unwrap();
    let foreign = other
        .mint_access_jwt(&with(claims(&h), "iss", json!(other.issuer_str())))
        .unwrap();
    assert_refused(&h, &foreign, "unknown_issuer").await;
    // The right `iss`, signed by the other provider's key (its `kid`).
    let elsewhere = other.mint_access_jwt(&claims(&h)).unwrap();
    assert_refused(&h, &elsewhere, "unknown_key").await;

    // Another audience.
    let t = h
        .idp
        .mint_access_jwt(&with(
            claims(&h),
            "aud",
            json!("https://other.example.test"),
        ))
        .unwrap();
    assert_refused(&h, &t, "audience").await;
    let t = h
        .idp
        .mint_access_jwt(&{
            let mut c = claims(&h);
            c.as_object_mut().unwrap().remove("aud");
            c
        })
        .unwrap();
    assert_refused(&h, &t, "audience").await;

    // Expired; not yet valid; issued in the future; no exp.
    let t = h
        .idp
        .mint_access_jwt(&with(claims(&h), "exp", json!(now() - 600)))
        .unwrap();
    assert_refused(&h, &t, "expired").await;
    let t = h
        .idp
        .mint_access_jwt(&with(claims(&h), "nbf", json!(now() + 3600)))
        .unwrap();
    assert_refused(&h, &t, "not_yet_valid").await;
    let t = h
        .idp
        .mint_access_jwt(&with(claims(&h), "iat", json!(now() + 3600)))
        .unwrap();
    assert_refused(&h, &t, "not_yet_valid").await;
    let t = h
        .idp
        .mint_access_jwt(&{
            let mut c = claims(&h);
            c.as_object_mut().unwrap().remove("exp");
            c
        })
        .unwrap();
    assert_refused(&h, &t, "malformed").await;

    // A kid that names no key.
    let renamed = b64(&with(header.clone(), "kid", json!("no-such-key")));
    assert_refused(&h, &format!("{renamed}.{}.{}", p[1], p[2]), "unknown_key").await;

    // A tampered payload (the signature of the original).
    let tampered = b64(&with(claims(&h), "sub", json!("admin")));
    assert_refused(&h, &format!("{}.{tampered}.{}", p[0], p[2]), "signature").await;

    // Another token type (an ID token's or logout token's `typ`).
    let logout = b64(&with(header.clone(), "typ", json!("logout+jwt")));
    assert_refused(&h, &format!("{logout}.{}.{}", p[1], p[2]), "type").await;

    // Garbage and an empty credential.
    assert_refused(&h, "a.b.c", "malformed").await;
    assert_refused(&h, "not-a-jwt", "inactive").await;
    let mut b = Browser::new(&h);
    let r = b
        .get_with("/api/data", &[("authorization", "Bearer ")])
        .await;
    assert_eq!(r.status(), 401);
    // No credential at all: the session error, with a bare Bearer challenge.
    let r = b.get("/api/data").await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()[WWW_AUTHENTICATE], "Bearer");
    assert_eq!(json(r).await["error"], "SessionRequired");

    // The good token still passes after all that.
    assert_eq!(call(&h, "/api/data", &good).await.status(), 200);
    other.shutdown().await;
}

#[tokio::test]
async fn on_api_routes_the_bearer_token_wins_over_a_session_cookie() {
    let h = start().await;
    let mut b = sign_in(&h, "ann").await;
    assert_eq!(b.get("/api/data").await.status(), 200);

    // A bad token with a good cookie: refused.
    let expired = h
        .idp
        .mint_access_jwt(&with(claims(&h), "exp", json!(now() - 600)))
        .unwrap();
    let r = b
        .get_with(
            "/api/data",
            &[("authorization", &format!("Bearer {expired}"))],
        )
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get(SET_COOKIE).is_none());

    // A good token with a good cookie: the token's subject.
    let token = h.idp.mint_access_jwt(&claims(&h)).unwrap();
    let r = b
        .get_with(
            "/api/data",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert_eq!(json(r).await["user"], "svc-42");

    // Another scheme is the application's business: the cookie decides.
    let r = b
        .get_with("/api/data", &[("authorization", "Basic YTpi")])
        .await;
    assert_eq!(r.status(), 200);
    assert_ne!(json(r).await["user"], "svc-42");
}

#[tokio::test]
async fn bearer_tokens_are_ignored_on_protected_routes_without_opt_in() {
    let h = start().await;
    let token = h.idp.mint_access_jwt(&claims(&h)).unwrap();
    let r = call(&h, "/protected/page", &token).await;
    assert_eq!(r.status(), 302, "a protected page still asks to sign in");
    assert!(
        r.headers().get(SET_COOKIE).is_none() || {
            // Only the sign-in flow's own cookies, never a session.
            r.headers()
                .get_all(SET_COOKIE)
                .iter()
                .all(|v| !v.to_str().unwrap().starts_with(common::SESSION_COOKIE))
        }
    );
}

#[tokio::test]
async fn a_protected_route_with_bearer_true_accepts_tokens_and_still_signs_browsers_in() {
    captured_logs();
    let h = start().await;
    let token = h.idp.mint_access_jwt(&claims(&h)).unwrap();
    let r = call(&h, "/protected/hooks/deploy", &token).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert_eq!(json(r).await["user"], "svc-42");

    let expired = h
        .idp
        .mint_access_jwt(&with(claims(&h), "exp", json!(now() - 600)))
        .unwrap();
    let r = call(&h, "/protected/hooks/deploy", &expired).await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );

    let mut b = Browser::new(&h);
    let r = b.get("/protected/hooks/deploy").await;
    assert_eq!(r.status(), 302, "without a token: the sign-in redirect");
}

#[tokio::test]
async fn forward_auth_answers_bearer_requests_with_their_identity() {
    captured_logs();
    let h = start().await;
    let token = h.idp.mint_access_jwt(&claims(&h)).unwrap();
    let bearer = format!("Bearer {token}");
    let mut b = Browser::new(&h);
    let r = b
        .get_with(
            "/auth/verify",
            &[("x-original-uri", "/api/data"), ("authorization", &bearer)],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert_eq!(r.headers()["x-auth-request-user"], "svc-42");
    assert_eq!(r.headers()["x-auth-request-groups"], "staff,ops");

    let r = b
        .get_with(
            "/auth/verify",
            &[
                ("x-original-uri", "/api/staff/x"),
                ("authorization", &format!("Bearer {token}x")),
            ],
        )
        .await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_their_answers_cached() {
    captured_logs();
    let h = start().await;
    let mut b = sign_in(&h, "ann").await;
    let id = user_id(&mut b).await;
    let tokens = stored_tokens(&h, &id).await.unwrap();
    let access = tokens.access_token.expose().to_owned();
    assert_eq!(
        access.split('.').count(),
        1,
        "the provider's tokens are opaque"
    );

    let r = call(&h, "/api/data", &access).await;
    assert_eq!(r.status(), 200, "{:?}", events_of(&r));
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert_eq!(json(r).await["user"], "ann");

    // A refresh token is not an access token.
    let refresh = tokens.refresh_token.as_ref().unwrap().expose().to_owned();
    assert_refused(&h, &refresh, "type").await;

    // Revoked at the provider: the cached answer holds until its `exp`
    // (documented); an unknown token is inactive.
    revoke_at_provider(&h, &access).await;
    assert_eq!(call(&h, "/api/data", &access).await.status(), 200);
    assert_refused(&h, "0123456789abcdef0123456789abcdef", "inactive").await;
}
