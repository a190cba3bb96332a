//! The development provider through real HTTP on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::time::Duration;

use authgate_devidp::grants::pkce_s256;
use authgate_devidp::{DevClient, DevIdp, DevIdpConfig, Error};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;
use url::Url;

const CLIENT_ID: &str = "authgate";
const SECRET: &str = "dev-secret";
const REDIRECT: &str = "http://127.0.0.1:4180/auth/callback/dev";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const ALL: &str = "openid email profile offline_access";

fn config() -> DevIdpConfig {
    DevIdpConfig::default()
        .with_client(DevClient::new(CLIENT_ID, SECRET).with_redirect_uri(REDIRECT))
        .with_client(DevClient::new("other", "other-secret").allow_any_loopback_redirect())
        .with_client(DevClient::new("odd client", "p@ss+w%rd:="))
}

async fn start() -> DevIdp {
    DevIdp::bind("127.0.0.1:0".parse().unwrap(), config())
        .await
        .unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn url(idp: &DevIdp, path: &str) -> String {
    format!("{}{path}", idp.issuer_str())
}

/// The value of `attr="…"` that follows `marker` in `html`.
fn attr_after(html: &str, marker: &str) -> String {
    let start = html.find(marker).unwrap() + marker.len();
    let rest = &html[start..];
    rest[..rest.find('"').unwrap()].replace("&amp;", "&")
}

fn query_of(location: &str) -> HashMap<String, String> {
    Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn authorize_url(idp: &DevIdp, scope: &str, nonce: &str) -> String {
    let mut u = Url::parse(&url(idp, "/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", "st-1")
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &pkce_s256(VERIFIER))
        .append_pair("code_challenge_method", "S256");
    u.into()
}

/// GET the login page, submit the form like a browser; returns the redirect's query.
async fn sign_in(idp: &DevIdp, scope: &str, nonce: &str, action: &str) -> HashMap<String, String> {
    sign_in_as(idp, scope, nonce, action, &[]).await
}

/// Like [`sign_in`] as alice, with extra login form fields (identity claims).
async fn sign_in_as(
    idp: &DevIdp,
    scope: &str,
    nonce: &str,
    action: &str,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let c = http();
    let page = c
        .get(authorize_url(idp, scope, nonce))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    let form_action = attr_after(&html, "<form method=\"post\" action=\"");
    let request = attr_after(&html, "name=\"request\" value=\"");
    let mut form = vec![
        ("request", request.as_str()),
        ("username", "alice"),
        ("name", "Alice Liddell"),
        ("email", ""),
        ("action", action),
    ];
    form.retain(|(name, _)| !extra.iter().any(|(e, _)| e == name));
    form.extend_from_slice(extra);
    let res = c.post(form_action).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    query_of(&location)
}

async fn code(idp: &DevIdp, scope: &str) -> String {
    let q = sign_in(idp, scope, "nonce-1", "allow").await;
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], idp.issuer_str());
    q["code"].clone()
}

async fn exchange(idp: &DevIdp, code: &str, verifier: &str) -> (StatusCode, Value) {
    let res = http()
        .post(url(idp, "/token"))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

async fn tokens(idp: &DevIdp, scope: &str) -> Value {
    let code = code(idp, scope).await;
    let (status, body) = exchange(idp, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn refresh_with(c: &reqwest::Client, idp: &DevIdp, rt: &str) -> (StatusCode, Value) {
    let res = c
        .post(url(idp, "/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

async fn refresh(idp: &DevIdp, rt: &str) -> (StatusCode, Value) {
    refresh_with(&http(), idp, rt).await
}

async fn introspect(idp: &DevIdp, token: &str) -> Value {
    let res = http()
        .post(url(idp, "/introspect"))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn active(idp: &DevIdp, token: &str) -> bool {
    introspect(idp, token).await["active"] == Value::Bool(true)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[tokio::test]
async fn discovery_document_lists_endpoints_and_capabilities() {
    let idp = start().await;
    let doc: Value = http()
        .get(url(&idp, "/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = idp.issuer_str();
    assert!(issuer.starts_with("http://127.0.0.1:") && !issuer.ends_with('/'));
    assert_eq!(doc["issuer"], issuer);
    for (key, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
    ] {
        assert_eq!(doc[key], format!("{issuer}{path}"), "{key}");
    }
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    let scopes = doc["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&Value::from("offline_access")));
}

#[tokio::test]
async fn code_flow_with_pkce_issues_tokens_and_an_id_token_signed_by_the_jwks_key() {
    let idp = start().await;
    let body = tokens(&idp, ALL).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 30);
    assert_eq!(body["scope"], ALL);
    assert!(body["refresh_token"].is_string());

    let id_token = s(&body["id_token"]);
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    let jwks: JwkSet = http()
        .get(url(&idp, "/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[idp.issuer_str()]);
    let claims =
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap()
            .claims;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["nonce"], "nonce-1");
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["email"], "alice@example.com");
    assert!(claims["auth_time"].is_u64() && claims["iat"].is_u64());

    // A token signed by another key, or tampered with, does not verify.
    let mut tampered = id_token.to_owned();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    assert!(
        jsonwebtoken::decode::<Value>(&tampered, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .is_err()
    );
    assert_eq!(idp.stats().code_grants, 1);
}

#[tokio::test]
async fn refresh_rotates_on_every_use_and_rejects_the_consumed_token() {
    let idp = start().await;
    let t0 = tokens(&idp, ALL).await;
    let rt0 = s(&t0["refresh_token"]).to_owned();
    let (status, t1) = refresh(&idp, &rt0).await;
    assert_eq!(status, StatusCode::OK, "{t1}");
    let rt1 = s(&t1["refresh_token"]).to_owned();
    assert_ne!(rt0, rt1);
    assert_ne!(t0["access_token"], t1["access_token"]);
    assert!(t1["id_token"].is_string());
    let (status, t2) = refresh(&idp, &rt1).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(s(&t2["refresh_token"]), rt1);
    assert!(!active(&idp, &rt0).await);
    assert!(!active(&idp, &rt1).await);
    assert!(active(&idp, s(&t2["refresh_token"])).await);
    assert_eq!(idp.stats().refresh_grants, 2);
}

#[tokio::test]
async fn reusing_a_consumed_refresh_token_revokes_the_whole_grant() {
    let idp = start().await;
    let t0 = tokens(&idp, ALL).await;
    let rt0 = s(&t0["refresh_token"]).to_owned();
    let (_, t1) = refresh(&idp, &rt0).await;
    let (rt1, at1) = (s(&t1["refresh_token"]), s(&t1["access_token"]));
    assert!(active(&idp, rt1).await && active(&idp, at1).await);

    let (status, err) = refresh(&idp, &rt0).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
    // The newest refresh token and every access token of the grant are dead.
    assert!(!active(&idp, rt1).await);
    assert!(!active(&idp, at1).await);
    assert!(!active(&idp, s(&t0["access_token"])).await);
    let (status, err) = refresh(&idp, rt1).await;
    assert_eq!(
        (status, s(&err["error"])),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let stats = idp.stats();
    assert_eq!((stats.reuse_detections, stats.revocations), (1, 1));
}

#[tokio::test]
async fn replayed_code_is_invalid_grant_and_revokes_the_tokens_it_issued() {
    let idp = start().await;
    let code = code(&idp, ALL).await;
    let (status, t) = exchange(&idp, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = exchange(&idp, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
    assert!(!active(&idp, s(&t["access_token"])).await);
    assert!(!active(&idp, s(&t["refresh_token"])).await);
}

#[tokio::test]
async fn wrong_pkce_verifier_is_invalid_grant() {
    let idp = start().await;
    let code = code(&idp, ALL).await;
    let (status, err) = exchange(&idp, &code, &"x".repeat(43)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
    // The code is used up by the failed attempt.
    let (status, _) = exchange(&idp, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_client_secret_is_401_invalid_client() {
    let idp = start().await;
    let c = http();
    let form = [("grant_type", "refresh_token"), ("refresh_token", "x")];
    let basic = c
        .post(url(&idp, "/token"))
        .basic_auth(CLIENT_ID, Some("wrong"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert!(
        basic.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(basic.headers()["cache-control"], "no-store");
    let body: Value = basic.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    let post = c
        .post(url(&idp, "/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::UNAUTHORIZED);
    let none = c
        .post(url(&idp, "/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let unknown = c
        .post(url(&idp, "/token"))
        .basic_auth("nobody", Some(SECRET))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn client_secret_basic_accepts_form_encoded_and_raw_credentials() {
    let idp = start().await;
    let c = http();
    let status = |auth: String| {
        c.post(url(&idp, "/introspect"))
            .header("authorization", format!("Basic {auth}"))
            .form(&[("token", "x")])
            .send()
    };
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let encoded = b64("odd+client:p%40ss%2Bw%25rd%3A%3D");
    assert_eq!(status(encoded).await.unwrap().status(), StatusCode::OK);
    let raw = b64("odd client:p@ss+w%rd:=");
    assert_eq!(status(raw).await.unwrap().status(), StatusCode::OK);
    let wrong = b64("odd client:p@ss+w%rd:");
    assert_eq!(
        status(wrong).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc6749() {
    let idp = start().await;
    let c = http();
    let send = |form: Vec<(&'static str, &'static str)>| {
        c.post(url(&idp, "/token"))
            .basic_auth(CLIENT_ID, Some(SECRET))
            .form(&form)
            .send()
    };
    let res = send(vec![("grant_type", "password")]).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let res = send(vec![("code", "x")]).await.unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let res = send(vec![("grant_type", "authorization_code")])
        .await
        .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let res = send(vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", "nope"),
    ])
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let res = c
        .post(url(&idp, "/token"))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .json(&serde_json::json!({"grant_type": "refresh_token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn without_offline_access_there_is_no_refresh_token() {
    let idp = start().await;
    let body = tokens(&idp, "openid email").await;
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["scope"], "openid email");
    assert!(body["access_token"].is_string() && body["id_token"].is_string());
}

#[tokio::test]
async fn revocation_and_introspection() {
    let idp = start().await;
    let t = tokens(&idp, ALL).await;
    let (at, rt) = (s(&t["access_token"]), s(&t["refresh_token"]));
    let info = introspect(&idp, at).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["client_id"], CLIENT_ID);
    assert_eq!(info["token_type"], "Bearer");
    assert!(info["exp"].as_u64().unwrap() > info["iat"].as_u64().unwrap());
    assert_eq!(
        introspect(&idp, "unknown-token").await,
        serde_json::json!({"active": false})
    );

    let c = http();
    let revoke = |token: &str, id: &'static str, secret: &'static str| {
        c.post(url(&idp, "/revoke"))
            .basic_auth(id, Some(secret))
            .form(&[
                ("token", token.to_owned()),
                ("token_type_hint", "refresh_token".into()),
            ])
            .send()
    };
    // Unknown tokens: 200. Another client's token: 200 but nothing happens.
    assert_eq!(
        revoke("unknown", CLIENT_ID, SECRET).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        revoke(rt, "other", "other-secret").await.unwrap().status(),
        StatusCode::OK
    );
    assert!(active(&idp, rt).await);
    // The other client cannot see it through introspection either.
    let other: Value = c
        .post(url(&idp, "/introspect"))
        .basic_auth("other", Some("other-secret"))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other["active"], false);
    // Revoking the refresh token revokes the grant, access token included.
    assert_eq!(
        revoke(rt, CLIENT_ID, SECRET).await.unwrap().status(),
        StatusCode::OK
    );
    assert!(!active(&idp, rt).await);
    assert!(!active(&idp, at).await);
    let (status, err) = refresh(&idp, rt).await;
    assert_eq!(
        (status, s(&err["error"])),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert_eq!(idp.stats().revocations, 1);
    // Introspection requires client authentication.
    let res = c
        .post(url(&idp, "/introspect"))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoking_an_access_token_leaves_the_refresh_token_alive() {
    let idp = start().await;
    let t = tokens(&idp, ALL).await;
    let res = http()
        .post(url(&idp, "/revoke"))
        .form(&[
            ("token", s(&t["access_token"])),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!active(&idp, s(&t["access_token"])).await);
    assert!(active(&idp, s(&t["refresh_token"])).await);
}

#[tokio::test]
async fn userinfo_returns_the_signed_in_user() {
    let idp = start().await;
    let t = tokens(&idp, ALL).await;
    let c = http();
    let info: Value = c
        .get(url(&idp, "/userinfo"))
        .bearer_auth(s(&t["access_token"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["name"], "Alice Liddell");
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], true);

    let bad = c
        .get(url(&idp, "/userinfo"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(
        bad.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let missing = c.get(url(&idp, "/userinfo")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);

    // Scope decides the claims.
    let t = tokens(&idp, "openid").await;
    let info: Value = c
        .get(url(&idp, "/userinfo"))
        .bearer_auth(s(&t["access_token"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info, serde_json::json!({"sub": "alice"}));
}

#[tokio::test]
async fn binding_a_non_loopback_address_is_refused() {
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"] {
        let err = DevIdp::bind(addr.parse().unwrap(), config())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotLoopback(_)), "{addr}: {err}");
    }
    // A non-loopback issuer for a mounted router is refused too.
    let mut cfg = config();
    cfg.issuer = Some(Url::parse("http://auth.example.com").unwrap());
    assert!(matches!(
        authgate_devidp::DevIdpState::new(cfg),
        Err(Error::InvalidIssuer(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_with_one_token_let_exactly_one_win_and_end_revoked() {
    let idp = start().await;
    let t = tokens(&idp, ALL).await;
    let rt = s(&t["refresh_token"]).to_owned();
    let c = http();
    let issuer = idp.issuer_str().to_owned();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (c, rt, issuer) = (c.clone(), rt.clone(), issuer.clone());
            tokio::spawn(async move {
                let res = c
                    .post(format!("{issuer}/token"))
                    .basic_auth(CLIENT_ID, Some(SECRET))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", rt.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                (res.status(), res.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        if status == StatusCode::OK {
            winners.push(body);
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(body["error"], "invalid_grant");
        }
    }
    assert_eq!(winners.len(), 1, "exactly one refresh succeeds");
    let winner = &winners[0];
    // The losers' replays revoked the grant: the winner's tokens are dead too.
    assert!(!active(&idp, s(&winner["refresh_token"])).await);
    assert!(!active(&idp, s(&winner["access_token"])).await);
    let stats = idp.stats();
    assert_eq!(stats.refresh_grants, 1);
    assert_eq!(stats.reuse_detections, 199);
    assert_eq!(stats.revocations, 1);
}

#[tokio::test]
async fn denying_access_redirects_with_access_denied_and_state() {
    let idp = start().await;
    let q = sign_in(&idp, ALL, "n", "deny").await;
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-1");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn authorize_validates_client_redirect_and_pkce() {
    let idp = start().await;
    let c = http();
    let base = authorize_url(&idp, ALL, "n");
    let with = |changes: &[(&str, Option<&str>)]| {
        let u = Url::parse(&base).unwrap();
        let mut pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        for (k, v) in changes {
            pairs.retain(|(pk, _)| pk != k);
            if let Some(v) = v {
                pairs.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        let mut u = u.clone();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        u.to_string()
    };
    // Unknown client or unregistered redirect: an error page, never a redirect.
    for changes in [
        vec![("client_id", Some("nobody"))],
        vec![("redirect_uri", Some("http://evil.example/cb"))],
        vec![("redirect_uri", None)],
    ] {
        let res = c.get(with(&changes)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{changes:?}");
        assert!(res.headers().get("location").is_none());
    }
    // Other problems go back to the client with an error and the state.
    for (changes, error) in [
        (
            vec![("code_challenge", None), ("code_challenge_method", None)],
            "invalid_request",
        ),
        (
            vec![("code_challenge_method", Some("plain"))],
            "invalid_request",
        ),
        (
            vec![("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (vec![("prompt", Some("none"))], "login_required"),
    ] {
        let res = c.get(with(&changes)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FOUND, "{changes:?}");
        let q = query_of(res.headers()["location"].to_str().unwrap());
        assert_eq!(q["error"], error, "{changes:?}");
        assert_eq!(q["state"], "st-1");
    }
    // Reflected values are escaped in the login page.
    let res = c
        .get(with(&[("state", Some("<script>x</script>"))]))
        .send()
        .await
        .unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"));
    assert!(!res.text().await.unwrap().contains("<script>"));
    // An expired or unknown pending request is refused.
    let res = c
        .post(url(&idp, "/authorize"))
        .form(&[
            ("request", "forged"),
            ("username", "mallory"),
            ("action", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn any_loopback_redirect_is_accepted_when_the_client_allows_it() {
    let idp = start().await;
    let mut u = Url::parse(&url(&idp, "/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "other")
        .append_pair("redirect_uri", "http://localhost:39999/whatever")
        .append_pair("scope", "openid")
        .append_pair("code_challenge", &pkce_s256(VERIFIER))
        .append_pair("code_challenge_method", "S256");
    let res = http().get(u).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn base_path_is_part_of_the_issuer_and_shutdown_stops_serving() {
    let mut cfg = config();
    cfg.base_path = "/idp".into();
    let idp = DevIdp::bind("127.0.0.1:0".parse().unwrap(), cfg)
        .await
        .unwrap();
    assert!(idp.issuer_str().ends_with("/idp"));
    assert_eq!(idp.issuer().path(), "/idp");
    let doc: Value = http()
        .get(url(&idp, "/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], idp.issuer_str());
    let body = tokens(&idp, ALL).await;
    assert!(body["id_token"].is_string());

    let addr = idp.local_addr();
    idp.shutdown().await;
    let refused = reqwest::Client::new()
        .get(format!("http://{addr}/idp/jwks"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err());
}

/// The ID token's claims, checked against the JWKS but not the issuer.
async fn id_token_claims(idp: &DevIdp, body: &Value) -> Value {
    let id_token = s(&body["id_token"]);
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let jwks: JwkSet = http()
        .get(url(idp, "/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[CLIENT_ID]);
    jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

async fn tokens_as(idp: &DevIdp, extra: &[(&str, &str)]) -> Value {
    let q = sign_in_as(idp, ALL, "nonce-1", "allow", extra).await;
    let (status, body) = exchange(idp, &q["code"], VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn userinfo_of(idp: &DevIdp, body: &Value) -> Value {
    http()
        .get(url(idp, "/userinfo"))
        .bearer_auth(s(&body["access_token"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn identity_claims_chosen_at_login_reach_the_id_token_and_userinfo() {
    let idp = start().await;
    // Defaults: a verified address, no provider extensions.
    let body = tokens_as(&idp, &[]).await;
    let claims = id_token_claims(&idp, &body).await;
    assert_eq!(claims["email_verified"], true);
    for absent in ["hd", "tid", "xms_edov"] {
        assert!(claims.get(absent).is_none(), "{absent}: {claims}");
    }

    let body = tokens_as(
        &idp,
        &[
            ("email", "ceo@corp.example"),
            ("email_verified", "false"),
            ("hd", "corp.example"),
            ("tid", "tenant-1"),
            ("xms_edov", "true"),
        ],
    )
    .await;
    let claims = id_token_claims(&idp, &body).await;
    assert_eq!(claims["email"], "ceo@corp.example");
    assert_eq!(claims["email_verified"], false);
    assert_eq!(claims["hd"], "corp.example");
    assert_eq!(claims["tid"], "tenant-1");
    assert_eq!(claims["xms_edov"], true);
    assert_eq!(claims["iss"], idp.issuer_str(), "no template: one issuer");
    let info = userinfo_of(&idp, &body).await;
    assert_eq!(info["email_verified"], false);
    assert_eq!(info["hd"], "corp.example");

    // `absent` leaves the claim out of both answers, as Entra does.
    let body = tokens_as(&idp, &[("email_verified", "absent")]).await;
    let claims = id_token_claims(&idp, &body).await;
    assert_eq!(claims["email"], "alice@example.com");
    assert!(claims.get("email_verified").is_none(), "{claims}");
    let info = userinfo_of(&idp, &body).await;
    assert!(info.get("email_verified").is_none(), "{info}");

    // A bad value shows the form again with the message.
    let c = http();
    let html = c
        .get(authorize_url(&idp, ALL, "n"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let request = attr_after(&html, "name=\"request\" value=\"");
    let res = c
        .post(url(&idp, "/authorize"))
        .form(&[
            ("request", request.as_str()),
            ("username", "alice"),
            ("email_verified", "perhaps"),
            ("action", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("email_verified must be"));
}

#[tokio::test]
async fn a_tenant_issuer_template_plays_a_multi_tenant_entra_endpoint() {
    let cfg = config()
        .with_base_path("/common/v2.0")
        .with_tenant_issuer_template();
    let idp = DevIdp::bind("127.0.0.1:0".parse().unwrap(), cfg)
        .await
        .unwrap();
    let origin = format!("http://{}", idp.local_addr());
    let doc: Value = http()
        .get(url(&idp, "/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], format!("{origin}/{{tenantid}}/v2.0"));
    assert_eq!(doc["token_endpoint"], format!("{origin}/common/v2.0/token"));
    let body = tokens_as(&idp, &[("tid", "tenant-9")]).await;
    let claims = id_token_claims(&idp, &body).await;
    assert_eq!(claims["iss"], format!("{origin}/tenant-9/v2.0"));
    assert_eq!(claims["tid"], "tenant-9");

    // Without a path there is no tenant to template.
    let mut bad = config().with_tenant_issuer_template();
    bad.issuer = Some(Url::parse("http://127.0.0.1:1").unwrap());
    assert!(matches!(
        authgate_devidp::DevIdpState::new(bad),
        Err(Error::InvalidConfig(_))
    ));
}
