//! Provider resolution: presets, discovery, overrides, the catalog, and
//! authorization URLs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

mod common;

use authgate_core::pkce::s256_challenge;
use authgate_core::provider_error::ProviderErrorKind;
use authgate_oauth::{
    Catalog, CatalogError, Preset, Provider, ProviderKind, ProviderSettings,
    TokenEndpointAuthMethod,
};
use common::{FakeProvider, http, resolve};
use std::collections::HashMap;
use url::Url;

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn discovery_resolves_endpoints_of_any_oidc_issuer() {
    let fake = FakeProvider::start().await;
    let p = resolve(fake.oidc_settings("op")).await;
    assert_eq!(p.kind(), ProviderKind::Oidc);
    assert_eq!(p.issuer(), Some(fake.base().as_str()));
    let e = p.endpoints();
    assert_eq!(e.authorization, fake.url("/authorize"));
    assert_eq!(e.token, fake.url("/token"));
    assert_eq!(e.userinfo, Some(fake.url("/userinfo")));
    assert_eq!(e.jwks_uri, Some(fake.url("/jwks")));
    assert_eq!(e.revocation, Some(fake.url("/revoke")));
    assert!(p.supports_pkce());
    assert_eq!(
        p.token_endpoint_auth_method(),
        TokenEndpointAuthMethod::ClientSecretBasic
    );
    assert_eq!(p.scopes(), ["openid", "email", "profile"]);
    assert_eq!(p.name(), "op");
}

#[tokio::test]
async fn discovery_rejects_an_issuer_mismatch() {
    let fake = FakeProvider::start().await;
    *fake.state.issuer.lock().unwrap() = "https://evil.example".into();
    let err = Provider::resolve(fake.oidc_settings("op"), &http())
        .await
        .unwrap_err();
    match err {
        CatalogError::IssuerMismatch {
            provider, found, ..
        } => {
            assert_eq!(provider, "op");
            assert_eq!(found, "https://evil.example");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn discovery_failure_keeps_the_classified_provider_error() {
    let fake = FakeProvider::start().await;
    let mut s = fake.oidc_settings("op");
    s.issuer = Some(fake.url("/nothing-here"));
    match Provider::resolve(s, &http()).await.unwrap_err() {
        CatalogError::Discovery { source, .. } => {
            assert_eq!(source.kind, ProviderErrorKind::Protocol);
            assert_eq!(source.status, Some(404));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn catalog_resolves_several_providers_and_rejects_duplicate_ids() {
    let fake = FakeProvider::start().await;
    let mut gh = ProviderSettings::new("github", "id", "secret");
    gh.preset = Some(Preset::GitHub);
    let catalog = Catalog::resolve(vec![fake.oidc_settings("op"), gh], &http())
        .await
        .unwrap();
    assert_eq!(catalog.len(), 2);
    assert_eq!(catalog.get("op").unwrap().kind(), ProviderKind::Oidc);
    let github = catalog.get("github").unwrap();
    assert_eq!(github.kind(), ProviderKind::OAuth2);
    assert_eq!(github.name(), "GitHub");
    assert_eq!(
        github.endpoints().token.as_str(),
        "https://github.com/login/oauth/access_token"
    );
    assert!(catalog.get("nope").is_none());

    let dup = Catalog::resolve(
        vec![fake.oidc_settings("op"), fake.oidc_settings("op")],
        &http(),
    )
    .await
    .unwrap_err();
    assert!(matches!(dup, CatalogError::DuplicateId(id) if id == "op"));
}

#[tokio::test]
async fn tenant_presets_require_an_issuer_and_reserved_params_are_refused() {
    for preset in [Preset::Keycloak, Preset::Okta, Preset::Auth0] {
        let mut s = ProviderSettings::new("t", "id", "secret");
        s.preset = Some(preset);
        let e = Provider::resolve(s, &http()).await.unwrap_err();
        assert!(matches!(e, CatalogError::MissingIssuer { .. }), "{preset}");
    }
    let mut s = ProviderSettings::new("gh", "id", "secret");
    s.preset = Some(Preset::GitHub);
    s.authorization_params
        .insert("state".into(), "fixed".into());
    assert!(matches!(
        Provider::resolve(s, &http()).await.unwrap_err(),
        CatalogError::ReservedParameter { param, .. } if param == "state"
    ));
    let s = ProviderSettings::new("bare", "id", "secret");
    assert!(matches!(
        Provider::resolve(s, &http()).await.unwrap_err(),
        CatalogError::MissingEndpoints { .. }
    ));
    let s = ProviderSettings::new("bad id!", "id", "secret");
    assert!(matches!(
        Provider::resolve(s, &http()).await.unwrap_err(),
        CatalogError::InvalidId(_)
    ));
}

#[tokio::test]
async fn preset_discovery_honours_the_configured_issuer_and_preset_params() {
    // A Google preset pointed at a local issuer: discovery there, Google's
    // parameters and scopes kept.
    let fake = FakeProvider::start().await;
    let mut s = fake.oidc_settings("google");
    s.preset = Some(Preset::Google);
    let p = resolve(s).await;
    assert_eq!(p.preset(), Some(Preset::Google));
    assert_eq!(p.name(), "Google");
    let challenge = s256_challenge("verifier");
    let url = p.authorization_url(
        "http://127.0.0.1:4180/auth/callback/google",
        "st",
        Some("nn"),
        &challenge,
        None,
    );
    let q = query(&url);
    assert_eq!(q["access_type"], "offline");
    assert!(
        !q.contains_key("prompt"),
        "no consent screen on every sign-in"
    );
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["state"], "st");
    assert_eq!(q["nonce"], "nn");
    assert_eq!(q["code_challenge"], challenge);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "client");
    assert_eq!(
        q["redirect_uri"],
        "http://127.0.0.1:4180/auth/callback/google"
    );
    assert!(
        url.as_str()
            .starts_with(&format!("{}/authorize?", fake.base()))
    );
    // Consent is asked only by a sign-in that must obtain a refresh token.
    assert!(p.can_reconsent());
    let again = p
        .reconsent_url(
            "http://127.0.0.1:4180/auth/callback/google",
            "st",
            Some("nn"),
            &challenge,
        )
        .unwrap();
    let q = query(&again);
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["state"], "st");
}

#[tokio::test]
async fn a_configured_prompt_replaces_the_presets_reconsent() {
    let fake = FakeProvider::start().await;
    let mut s = fake.oidc_settings("google");
    s.preset = Some(Preset::Google);
    s.authorization_params
        .insert("prompt".into(), "consent".into());
    let p = resolve(s).await;
    assert!(!p.can_reconsent(), "every sign-in consents already");
    assert!(p.reconsent_url("http://x/cb", "s", None, "ch").is_none());
    let generic = resolve(fake.oidc_settings("op")).await;
    assert!(!generic.can_reconsent());
}

#[tokio::test]
async fn authorization_url_uses_configured_scopes_params_and_scope_override() {
    let fake = FakeProvider::start().await;
    let mut s = fake.oidc_settings("op");
    s.scopes = vec!["email".into(), "offline_access".into()];
    s.authorization_params
        .insert("prompt".into(), "login".into());
    s.authorization_params
        .insert("login_hint".into(), "a@b.c".into());
    let p = resolve(s).await;
    let q = query(&p.authorization_url("http://x/cb", "s", None, "ch", None));
    // OIDC providers always ask for `openid`.
    assert_eq!(q["scope"], "openid email offline_access");
    assert_eq!(q["prompt"], "login");
    assert_eq!(q["login_hint"], "a@b.c");
    assert!(!q.contains_key("nonce"));
    let scopes = vec!["openid".to_owned(), "custom".to_owned()];
    let q = query(&p.authorization_url("http://x/cb", "s", None, "ch", Some(&scopes)));
    assert_eq!(q["scope"], "openid custom");
}

#[tokio::test]
async fn github_preset_endpoints_are_overridable_and_params_configurable() {
    let fake = FakeProvider::start().await;
    let mut s = ProviderSettings::new("gh", "id", "secret");
    s.preset = Some(Preset::GitHub);
    s.endpoints.authorization = Some(fake.url("/authorize"));
    s.endpoints.token = Some(fake.url("/token"));
    let p = resolve(s).await;
    assert_eq!(p.endpoints().token, fake.url("/token"));
    assert_eq!(
        p.endpoints().userinfo.as_ref().map(Url::as_str),
        Some("https://api.github.com/user")
    );
    assert_eq!(
        p.quirks().revoking_codes,
        ["bad_refresh_token", "bad_verification_code"]
    );
    let q = query(&p.authorization_url("http://x/cb", "s", None, "ch", None));
    assert_eq!(q["scope"], "read:user user:email");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(!q.contains_key("access_type"));
}

#[tokio::test]
async fn github_preset_refuses_an_issuer() {
    let mut s = ProviderSettings::new("gh", "id", "secret");
    s.preset = Some(Preset::GitHub);
    s.issuer = Some(Url::parse("https://github.com").unwrap());
    assert!(matches!(
        Provider::resolve(s, &http()).await.unwrap_err(),
        CatalogError::IssuerNotSupported { .. }
    ));
}

#[tokio::test]
async fn public_client_without_secret_uses_auth_method_none() {
    let fake = FakeProvider::start().await;
    let mut s = fake.oauth2_settings("pub");
    s.client_secret = "".into();
    let p = resolve(s).await;
    assert_eq!(
        p.token_endpoint_auth_method(),
        TokenEndpointAuthMethod::None
    );
}

#[test]
fn providers_and_their_futures_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<Provider>();
    send_sync::<Catalog>();
    #[allow(dead_code)]
    fn futures(p: &Provider) {
        let now = authgate_core::time::UnixTime::from_secs(0);
        let rt = authgate_core::secret::Secret::new("rt");
        send(&p.refresh(&rt, now));
        send(&p.exchange_code("c", "v", "r", now));
        send(&p.revoke(&rt, None));
        send(&p.userinfo(&rt));
        send(&p.verify_id_token("t", None, now));
    }
}

#[tokio::test]
async fn an_authorization_response_must_name_the_providers_issuer() {
    use authgate_oauth::ResponseIssuerError;
    let fake = FakeProvider::start().await;
    let p = resolve(fake.oidc_settings("op")).await;
    let issuer = p.issuer().unwrap().to_owned();
    assert_eq!(p.check_response_issuer(Some(&issuer)), Ok(()));
    for other in [
        "https://evil.example",
        &format!("{issuer}/"),
        &issuer.to_uppercase(),
        "",
    ] {
        assert_eq!(
            p.check_response_issuer(Some(other)),
            Err(ResponseIssuerError::Mismatch),
            "{other:?}"
        );
    }
    // This provider's discovery says every response carries `iss`.
    assert_eq!(
        p.check_response_issuer(None),
        Err(ResponseIssuerError::Missing)
    );
    // Google's alternate issuer is Google's.
    let mut s = fake.oidc_settings("google");
    s.preset = Some(Preset::Google);
    let google = resolve(s).await;
    assert_eq!(
        google.check_response_issuer(Some("accounts.google.com")),
        Ok(())
    );
    assert_eq!(
        google.check_response_issuer(Some("https://evil.example")),
        Err(ResponseIssuerError::Mismatch)
    );
}
