//! ID-token validation against a fake OP's JWKS with in-test keys.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

mod common;

use authgate_core::time::UnixTime;
use authgate_oauth::{IdTokenError, IdTokenSettings, Provider, ProviderSettings};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{FakeProvider, TestKey, resolve};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::time::Duration;

const NOW: i64 = 1_700_000_000;
const REFETCH: u64 = 300;

fn now() -> UnixTime {
    UnixTime::from_secs(NOW)
}

fn at(offset: i64) -> UnixTime {
    UnixTime::from_secs(NOW + offset)
}

fn claims(fake: &FakeProvider) -> Value {
    json!({
        "iss": fake.base(),
        "sub": "user-1",
        "aud": "client",
        "exp": NOW + 300,
        "iat": NOW,
        "nonce": "n-1",
        "email": "u@example.com",
        "email_verified": true,
        "name": "User",
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

async fn setup(keys: &[&TestKey]) -> (FakeProvider, Provider) {
    let fake = FakeProvider::start().await;
    fake.set_jwks(keys);
    let mut s: ProviderSettings = fake.oidc_settings("op");
    s.id_token = IdTokenSettings {
        leeway: Duration::from_secs(60),
        jwks_refetch_interval: Duration::from_secs(REFETCH),
    };
    let p = resolve(s).await;
    (fake, p)
}

#[tokio::test]
async fn valid_token_is_accepted_with_its_claims() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&[&key]).await;
    let token = key.sign(&claims(&fake));
    let c = p.verify_id_token(&token, Some("n-1"), now()).await.unwrap();
    assert_eq!(c.sub, "user-1");
    assert_eq!(c.aud, ["client"]);
    assert_eq!(c.email.as_deref(), Some("u@example.com"));
    assert_eq!(c.email_verified, Some(true));
    assert_eq!(c.name.as_deref(), Some("User"));
    // The JWKS is fetched once and cached.
    p.verify_id_token(&token, Some("n-1"), now()).await.unwrap();
    assert_eq!(fake.jwks_hits(), 1);
}

#[tokio::test]
async fn eddsa_and_rs256_tokens_are_accepted() {
    let ed = TestKey::ed25519("ed");
    let rsa = TestKey::rs256("rsa");
    let (fake, p) = setup(&[&ed, &rsa]).await;
    for key in [&ed, &rsa] {
        let token = key.sign(&claims(&fake));
        p.verify_id_token(&token, None, now()).await.unwrap();
    }
}

#[tokio::test]
async fn wrong_issuer_is_rejected() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&[&key]).await;
    let token = key.sign(&with(claims(&fake), "iss", json!("https://evil.example")));
    let e = p
        .verify_id_token(&token, Some("n-1"), now())
        .await
        .unwrap_err();
    assert!(
        matches!(e, IdTokenError::WrongIssuer { found, .. } if found == "https://evil.example")
    );
}

#[tokio::test]
async fn wrong_audience_is_rejected() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&[&key]).await;
    let token = key.sign(&with(claims(&fake), "aud", json!("someone-else")));
    let e = p
        .verify_id_token(&token, Some("n-1"), now())
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::WrongAudience), "{e:?}");
}

#[tokio::test]
async fn multiple_audiences_need_a_matching_azp() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&[&key]).await;
    let multi = with(claims(&fake), "aud", json!(["client", "other"]));
    let e = p
        .verify_id_token(&key.sign(&multi), None, now())
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::WrongAuthorizedParty), "{e:?}");
    let ok = with(multi.clone(), "azp", json!("client"));
    p.verify_id_token(&key.sign(&ok), None, now())
        .await
        .unwrap();
    let other = with(multi, "azp", json!("other"));
    let e = p
        .verify_id_token(&key.sign(&other), None, now())
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::WrongAuthorizedParty), "{e:?}");
}

#[tokio::test]
async fn expiry_uses_the_passed_now_with_leeway() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&[&key]).await;
    let token = key.sign(&claims(&fake)); // exp = NOW + 300
    p.verify_id_token(&token, None, at(300 + 60)).await.unwrap();
    let e = p
        .verify_id_token(&token, None, at(300 + 61))
        .await
        .unwrap_err();
    assert!(
        matches!(e, IdTokenError::Expired { exp } if exp == NOW + 300),
        "{e:?}"
    );
}

#[tokio::test]
async fn token_issued_in_the_future_is_rejected() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&[&key]).await;
    let token = key.sign(&with(claims(&fake), "iat", json!(NOW + 3600)));
    let e = p.verify_id_token(&token, None, now()).await.unwrap_err();
    assert!(matches!(e, IdTokenError::IssuedInFuture { .. }), "{e:?}");
}

#[tokio::test]
async fn nonce_mismatch_or_absence_is_rejected_when_expected() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&[&key]).await;
    let token = key.sign(&claims(&fake));
    let e = p
        .verify_id_token(&token, Some("other"), now())
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::NonceMismatch), "{e:?}");
    let mut no_nonce = claims(&fake);
    no_nonce.as_object_mut().unwrap().remove("nonce");
    let e = p
        .verify_id_token(&key.sign(&no_nonce), Some("n-1"), now())
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::NonceMismatch), "{e:?}");
    // Not expected (a refresh): not checked.
    p.verify_id_token(&token, None, now()).await.unwrap();
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&[&key]).await;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(&fake).to_string());
    let token = format!("{header}.{payload}.");
    let e = p
        .verify_id_token(&token, Some("n-1"), now())
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::AlgNotAllowed(a) if a == "none"));
    assert_eq!(fake.jwks_hits(), 0);
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&[&key]).await;
    // The classic key-confusion attack: HMAC keyed with public key material.
    let public = key.jwk()["x"].as_str().unwrap().to_owned();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims(&fake),
        &EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    let e = p
        .verify_id_token(&token, Some("n-1"), now())
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::AlgNotAllowed(_)), "{e:?}");
}

#[tokio::test]
async fn token_signed_by_another_key_with_a_known_kid_has_a_bad_signature() {
    let key = TestKey::es256("k1");
    let impostor = TestKey::es256("k1");
    let (fake, p) = setup(&[&key]).await;
    let e = p
        .verify_id_token(&impostor.sign(&claims(&fake)), None, now())
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::BadSignature), "{e:?}");
    // A tampered payload, too.
    let token = key.sign(&claims(&fake));
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(with(claims(&fake), "sub", json!("admin")).to_string());
    let e = p
        .verify_id_token(&parts.join("."), None, now())
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::BadSignature), "{e:?}");
}

#[tokio::test]
async fn alg_that_does_not_fit_the_key_is_rejected() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&[&key]).await;
    // An RS256 token claiming the EC key's kid.
    let rsa = TestKey::rs256("k1");
    let e = p
        .verify_id_token(&rsa.sign(&claims(&fake)), None, now())
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::AlgNotAllowed(_)), "{e:?}");
}

#[tokio::test]
async fn unknown_kid_refetches_once_per_interval() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&[&key]).await;
    p.verify_id_token(&key.sign(&claims(&fake)), None, now())
        .await
        .unwrap();
    assert_eq!(fake.jwks_hits(), 1);

    let stranger = TestKey::es256("k-unknown");
    let c = with(claims(&fake), "exp", json!(NOW + 10_000));
    let token = stranger.sign(&c);
    // Right after the first fetch: no refetch yet.
    let e = p.verify_id_token(&token, None, at(1)).await.unwrap_err();
    assert!(
        matches!(e, IdTokenError::UnknownKid(Some(ref k)) if k == "k-unknown"),
        "{e:?}"
    );
    assert_eq!(fake.jwks_hits(), 1);
    // After the interval: one refetch.
    let later = REFETCH as i64 + 1;
    let e = p
        .verify_id_token(&token, None, at(later))
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::UnknownKid(_)), "{e:?}");
    assert_eq!(fake.jwks_hits(), 2);
    // A second unknown kid within the window: no further request.
    let other = TestKey::es256("k-other").sign(&c);
    let e = p
        .verify_id_token(&other, None, at(later + 5))
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::UnknownKid(_)), "{e:?}");
    assert_eq!(fake.jwks_hits(), 2);
}

#[tokio::test]
async fn key_rotation_is_picked_up_after_refetch() {
    let old = TestKey::es256("2024");
    let (fake, p) = setup(&[&old]).await;
    p.verify_id_token(&old.sign(&claims(&fake)), None, now())
        .await
        .unwrap();

    let new = TestKey::ed25519("2025");
    fake.set_jwks(&[&new]);
    let c = with(claims(&fake), "exp", json!(NOW + 10_000));
    let later = at(REFETCH as i64 + 1);
    let claims = p.verify_id_token(&new.sign(&c), None, later).await.unwrap();
    assert_eq!(claims.sub, "user-1");
    assert_eq!(fake.jwks_hits(), 2);
}

#[tokio::test]
async fn jwks_outage_is_a_transient_jwks_error() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&[&key]).await;
    let token = key.sign(&claims(&fake));
    drop(fake); // the provider goes away before the first verification
    let e = p.verify_id_token(&token, None, now()).await.unwrap_err();
    match e {
        IdTokenError::Jwks(pe) => assert!(pe.kind.is_retryable(), "{pe:?}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn plain_oauth2_providers_issue_no_id_tokens() {
    let fake = FakeProvider::start().await;
    let p = resolve(fake.oauth2_settings("op")).await;
    let e = p.verify_id_token("a.b.c", None, now()).await.unwrap_err();
    assert!(matches!(e, IdTokenError::NotOidc));
}

#[tokio::test]
async fn google_alternate_issuer_is_accepted_only_for_the_preset() {
    let key = TestKey::es256("k1");
    let fake = FakeProvider::start().await;
    fake.set_jwks(&[&key]);
    let mut s = fake.oidc_settings("google");
    s.preset = Some(authgate_oauth::Preset::Google);
    let google = resolve(s).await;
    let token = key.sign(&with(claims(&fake), "iss", json!("accounts.google.com")));
    google.verify_id_token(&token, None, now()).await.unwrap();
    let plain = resolve(fake.oidc_settings("op")).await;
    let e = plain
        .verify_id_token(&token, None, now())
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::WrongIssuer { .. }), "{e:?}");
}

#[tokio::test]
async fn entra_tenant_issuer_template_is_filled_from_tid() {
    let key = TestKey::es256("k1");
    let fake = FakeProvider::start().await;
    fake.set_jwks(&[&key]);
    let base = fake.base();
    *fake.state.issuer.lock().unwrap() = format!("{base}/{{tenantid}}/v2.0");
    let mut s = fake.oidc_settings("entra");
    s.preset = Some(authgate_oauth::Preset::MicrosoftEntraId);
    s.issuer = Some(fake.url("/common/v2.0"));
    s.tenant = Some("common".into());
    let p = resolve(s).await;
    let c = with(
        claims(&fake),
        "iss",
        json!(format!("{base}/tenant-42/v2.0")),
    );
    let ok = with(c.clone(), "tid", json!("tenant-42"));
    p.verify_id_token(&key.sign(&ok), None, now())
        .await
        .unwrap();
    let wrong = with(c, "tid", json!("tenant-7"));
    let e = p
        .verify_id_token(&key.sign(&wrong), None, now())
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::WrongIssuer { .. }), "{e:?}");
}

const TENANT: &str = "0b0c9a4e-5a6f-4a1e-9d3c-2f1e0d9c8b7a";
const OTHER_TENANT: &str = "11111111-2222-3333-4444-555555555555";

#[tokio::test]
async fn entra_common_is_refused_unless_the_tenant_setting_says_so() {
    let fake = FakeProvider::start().await;
    let base = fake.base();
    *fake.state.issuer.lock().unwrap() = format!("{base}/{{tenantid}}/v2.0");
    let mut s = fake.oidc_settings("entra");
    s.preset = Some(authgate_oauth::Preset::MicrosoftEntraId);
    s.issuer = Some(fake.url("/common/v2.0"));
    let e = Provider::resolve(s.clone(), &common::http())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            authgate_oauth::CatalogError::Tenant {
                source: authgate_oauth::TenantError::MultiTenantImplicit(t),
                ..
            } if t == "common"
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("tenant = \"common\""), "{e}");
    // Nothing at all names a directory: refused too, before any network use.
    s.issuer = None;
    let e = Provider::resolve(s, &common::http()).await.unwrap_err();
    assert!(
        matches!(
            e,
            authgate_oauth::CatalogError::Tenant {
                source: authgate_oauth::TenantError::Missing,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn entra_pinned_to_one_tenant_refuses_id_tokens_from_another_tid() {
    let key = TestKey::es256("k1");
    let fake = FakeProvider::start().await;
    fake.set_jwks(&[&key]);
    let issuer = format!("{}/{TENANT}/v2.0", fake.base());
    *fake.state.issuer.lock().unwrap() = issuer.clone();
    let mut s = fake.oidc_settings("entra");
    s.preset = Some(authgate_oauth::Preset::MicrosoftEntraId);
    s.issuer = Some(url::Url::parse(&issuer).unwrap());
    s.tenant = Some(TENANT.to_ascii_uppercase());
    let p = resolve(s).await;
    assert!(p.signin_facts().tenant_pinned);
    let c = with(claims(&fake), "iss", json!(issuer));
    let ok = with(c.clone(), "tid", json!(TENANT));
    p.verify_id_token(&key.sign(&ok), None, now())
        .await
        .unwrap();
    // Same issuer, another directory's tid: refused by the tenant check.
    let other = with(c.clone(), "tid", json!(OTHER_TENANT));
    let e = p
        .verify_id_token(&key.sign(&other), None, now())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, IdTokenError::WrongTenant { found: Some(t) } if t == OTHER_TENANT),
        "{e:?}"
    );
    // No tid at all: refused.
    let e = p
        .verify_id_token(&key.sign(&c), None, now())
        .await
        .unwrap_err();
    assert!(
        matches!(e, IdTokenError::WrongTenant { found: None }),
        "{e:?}"
    );
}

#[tokio::test]
async fn entra_organizations_refuses_personal_accounts() {
    let key = TestKey::es256("k1");
    let fake = FakeProvider::start().await;
    fake.set_jwks(&[&key]);
    let base = fake.base();
    *fake.state.issuer.lock().unwrap() = format!("{base}/{{tenantid}}/v2.0");
    let mut s = fake.oidc_settings("entra");
    s.preset = Some(authgate_oauth::Preset::MicrosoftEntraId);
    s.issuer = Some(fake.url("/organizations/v2.0"));
    s.tenant = Some("organizations".into());
    let p = resolve(s).await;
    assert!(!p.signin_facts().tenant_pinned);
    let consumer = "9188040d-6c67-4c5b-b112-36a304b66dad";
    let token = |tid: &str| {
        let c = with(claims(&fake), "iss", json!(format!("{base}/{tid}/v2.0")));
        key.sign(&with(c, "tid", json!(tid)))
    };
    p.verify_id_token(&token(TENANT), None, now())
        .await
        .unwrap();
    let e = p
        .verify_id_token(&token(consumer), None, now())
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::WrongTenant { .. }), "{e:?}");
}

#[tokio::test]
async fn a_tenant_on_a_provider_without_directories_is_refused() {
    let fake = FakeProvider::start().await;
    let mut s = fake.oidc_settings("op");
    s.tenant = Some(TENANT.into());
    let e = Provider::resolve(s, &common::http()).await.unwrap_err();
    assert!(
        matches!(e, authgate_oauth::CatalogError::TenantNotSupported { .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn google_hd_and_entra_xms_edov_reach_the_sign_in_claims() {
    let key = TestKey::es256("k1");
    let (fake, p) = setup(&[&key]).await;
    let c = with(claims(&fake), "hd", json!("corp.example"));
    let c = with(c, "xms_edov", json!(true));
    let verified = p.verify_id_token(&key.sign(&c), None, now()).await.unwrap();
    let sc = verified.signin_claims();
    assert_eq!(sc.hosted_domain.as_deref(), Some("corp.example"));
    assert_eq!(sc.domain_owner_verified, Some(true));
    assert_eq!(sc.email_verified, Some(true));
    assert_eq!(sc.sub.as_deref(), Some("user-1"));
}
