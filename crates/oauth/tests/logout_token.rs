//! Logout Token validation (OpenID Connect Back-Channel Logout 1.0 §2.6)
//! against a fake OP's JWKS with in-test keys: every check, failing alone.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

mod common;

use authgate_core::time::UnixTime;
use authgate_oauth::{
    BACKCHANNEL_LOGOUT_EVENT, CatalogError, IdTokenError, IdTokenSettings, LogoutTokenError,
    Provider, ProviderSettings, SignOut,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{FakeProvider, TestKey, http, resolve};
use jsonwebtoken::Header;
use serde_json::{Value, json};
use std::time::Duration;

const NOW: i64 = 1_700_000_000;

fn now() -> UnixTime {
    UnixTime::from_secs(NOW)
}

fn claims(fake: &FakeProvider) -> Value {
    json!({
        "iss": fake.base(),
        "aud": "client",
        "iat": NOW,
        "exp": NOW + 120,
        "jti": "jti-1",
        "sub": "user-1",
        "sid": "op-session-1",
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

async fn setup(key: &TestKey) -> (FakeProvider, Provider) {
    let fake = FakeProvider::start().await;
    fake.set_jwks(&[key]);
    let mut s: ProviderSettings = fake.oidc_settings("op");
    s.id_token = IdTokenSettings {
        leeway: Duration::from_secs(60),
        jwks_refetch_interval: Duration::from_secs(300),
    };
    let p = resolve(s).await;
    (fake, p)
}

async fn refused(p: &Provider, token: &str) -> LogoutTokenError {
    p.verify_logout_token(token, now())
        .await
        .expect_err("the logout token must be refused")
}

#[tokio::test]
async fn a_valid_logout_token_names_the_user_and_the_provider_session() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&key).await;
    let c = p
        .verify_logout_token(&key.sign(&claims(&fake)), now())
        .await
        .unwrap();
    assert_eq!(c.sub.as_deref(), Some("user-1"));
    assert_eq!(c.sid.as_deref(), Some("op-session-1"));
    assert_eq!(c.jti, "jti-1");
    assert_eq!(c.accepted_until, UnixTime::from_secs(NOW + 300 + 60));

    // sub or sid alone is enough; aud may be a list; typ logout+jwt is fine.
    for claims in [
        without(claims(&fake), "sub"),
        without(claims(&fake), "sid"),
        without(claims(&fake), "exp"),
        with(claims(&fake), "aud", json!(["other", "client"])),
    ] {
        p.verify_logout_token(&key.sign(&claims), now())
            .await
            .unwrap();
    }
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    header.typ = Some("logout+jwt".into());
    let typed = jsonwebtoken::encode(&header, &claims(&fake), &key.encoding).unwrap();
    p.verify_logout_token(&typed, now()).await.unwrap();
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&key).await;
    let impostor = TestKey::es256("k1");
    let e = refused(&p, &impostor.sign(&claims(&fake))).await;
    assert!(
        matches!(e, LogoutTokenError::Jws(IdTokenError::BadSignature)),
        "{e:?}"
    );
    assert_eq!(e.check(), "signature");

    let unknown = TestKey::es256("k2");
    let e = refused(&p, &unknown.sign(&claims(&fake))).await;
    assert!(
        matches!(e, LogoutTokenError::Jws(IdTokenError::UnknownKid(_))),
        "{e:?}"
    );

    // Unsigned and HMAC tokens never pass.
    let payload = URL_SAFE_NO_PAD.encode(claims(&fake).to_string());
    let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
    let e = refused(&p, &none).await;
    assert!(
        matches!(e, LogoutTokenError::Jws(IdTokenError::AlgNotAllowed(_))),
        "{e:?}"
    );
    let hs = jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(&fake),
        &jsonwebtoken::EncodingKey::from_secret(b"s3cret"),
    )
    .unwrap();
    let e = refused(&p, &hs).await;
    assert_eq!(e.check(), "signature", "{e:?}");
}

#[tokio::test]
async fn each_claim_check_refuses_alone() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&key).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "wrong iss",
            with(claims(&fake), "iss", json!("https://evil.example")),
            "iss",
        ),
        ("no iss", without(claims(&fake), "iss"), "iss"),
        (
            "wrong aud",
            with(claims(&fake), "aud", json!("someone-else")),
            "aud",
        ),
        ("no aud", without(claims(&fake), "aud"), "aud"),
        ("no iat", without(claims(&fake), "iat"), "iat"),
        (
            "iat in the future",
            with(claims(&fake), "iat", json!(NOW + 61)),
            "iat",
        ),
        (
            "too old",
            with(
                with(claims(&fake), "iat", json!(NOW - 361)),
                "exp",
                json!(NOW + 100),
            ),
            "iat",
        ),
        (
            "expired",
            with(claims(&fake), "exp", json!(NOW - 61)),
            "exp",
        ),
        (
            "exp not a date",
            with(claims(&fake), "exp", json!("soon")),
            "exp",
        ),
        ("no jti", without(claims(&fake), "jti"), "jti"),
        ("empty jti", with(claims(&fake), "jti", json!("")), "jti"),
        ("no events", without(claims(&fake), "events"), "events"),
        (
            "another event",
            with(
                claims(&fake),
                "events",
                json!({"http://schemas.openid.net/event/other": {}}),
            ),
            "events",
        ),
        (
            "event not an object",
            with(
                claims(&fake),
                "events",
                json!({ BACKCHANNEL_LOGOUT_EVENT: "yes" }),
            ),
            "events",
        ),
        (
            "nonce present",
            with(claims(&fake), "nonce", json!("n")),
            "nonce",
        ),
        (
            "neither sub nor sid",
            without(without(claims(&fake), "sub"), "sid"),
            "sub_or_sid",
        ),
        (
            "empty sub, no sid",
            with(without(claims(&fake), "sid"), "sub", json!("")),
            "sub_or_sid",
        ),
    ];
    for (what, claims, check) in cases {
        let e = refused(&p, &key.sign(&claims)).await;
        assert_eq!(e.check(), check, "{what}: {e:?}");
        assert!(!e.is_unavailable(), "{what}");
    }
}

#[tokio::test]
async fn an_id_token_is_not_a_logout_token() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&key).await;
    let id_token = json!({
        "iss": fake.base(), "aud": "client", "iat": NOW, "exp": NOW + 300,
        "sub": "user-1", "nonce": "n-1", "jti": "x",
    });
    let e = refused(&p, &key.sign(&id_token)).await;
    assert_eq!(e.check(), "events");

    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    header.typ = Some("at+jwt".into());
    let typed = jsonwebtoken::encode(&header, &claims(&fake), &key.encoding).unwrap();
    let e = refused(&p, &typed).await;
    assert_eq!(e.check(), "typ", "{e:?}");
}

#[tokio::test]
async fn an_unreachable_jwks_is_reported_as_unavailable() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&key).await;
    let token = key.sign(&claims(&fake));
    drop(fake);
    let e = refused(&p, &token).await;
    assert!(e.is_unavailable(), "{e:?}");
    assert_eq!(e.check(), "jwks");
}

#[tokio::test]
async fn provider_logout_needs_an_end_session_endpoint_at_resolution() {
    let fake = FakeProvider::start().await;
    let mut s = fake.oidc_settings("op");
    s.signout = SignOut::Provider {
        post_logout_redirect_uri: url::Url::parse("https://app.example/").unwrap(),
    };
    let e = Provider::resolve(s, &http()).await.unwrap_err();
    assert!(
        matches!(&e, CatalogError::NoEndSession { provider } if provider == "op"),
        "{e:?}"
    );
    assert!(e.to_string().contains("end_session_endpoint"), "{e}");

    let local = resolve(fake.oidc_settings("op")).await;
    assert_eq!(local.end_session_url(Some("hint")), None);
}

#[tokio::test]
async fn an_explicit_end_session_endpoint_serves_a_provider_whose_discovery_has_none() {
    let fake = FakeProvider::start().await;
    let mut s = fake.oidc_settings("op");
    s.signout = SignOut::Provider {
        post_logout_redirect_uri: url::Url::parse("https://app.example/").unwrap(),
    };
    s.endpoints.end_session = Some(url::Url::parse("https://idp.example/logout").unwrap());
    let p = Provider::resolve(s, &http()).await.unwrap();
    let url = p.end_session_url(Some("hint")).unwrap();
    assert!(
        url.as_str().starts_with("https://idp.example/logout?"),
        "{url}"
    );
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["id_token_hint"], "hint");
    assert_eq!(q["post_logout_redirect_uri"], "https://app.example/");
}
