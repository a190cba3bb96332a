//! Code exchange, refresh, revocation and userinfo against local fakes, and
//! the normalisation of every kind of failure into the core taxonomy.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

mod common;

use authgate_core::provider_error::{ProviderError, ProviderErrorKind};
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_oauth::{
    HttpClient, HttpSettings, Preset, Provider, ProviderSettings, TokenEndpointAuthMethod,
    TokenTypeHint, USER_AGENT,
};
use base64::Engine as _;
use common::{FakeProvider, Scripted, refused_addr, resetting_server, resolve};
use serde_json::json;
use std::time::Duration;
use url::Url;

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

fn transient(retry_after: Option<u64>) -> ProviderErrorKind {
    ProviderErrorKind::Transient {
        retry_after: retry_after.map(Duration::from_secs),
    }
}

async fn refresh_err(settings: ProviderSettings) -> ProviderError {
    let p = resolve(settings).await;
    p.refresh(&Secret::new("rt-1"), NOW).await.unwrap_err()
}

async fn refresh_with(script: Scripted) -> ProviderError {
    let fake = FakeProvider::start().await;
    fake.script("token", script);
    let settings = fake.oauth2_settings("op");
    refresh_err(settings).await
}

#[tokio::test]
async fn code_exchange_with_basic_auth_sends_code_verifier_and_computes_expiry() {
    let fake = FakeProvider::start().await;
    fake.script(
        "token",
        Scripted::json(
            200,
            json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600,
                   "refresh_token": "rt-1", "id_token": "x.y.z", "scope": "openid email"}),
        ),
    );
    let p = resolve(fake.oauth2_settings("op")).await;
    assert_eq!(
        p.token_endpoint_auth_method(),
        TokenEndpointAuthMethod::ClientSecretBasic
    );
    let r = p
        .exchange_code("code-1", "verifier-1", "http://127.0.0.1/cb", NOW)
        .await
        .unwrap();
    assert_eq!(r.tokens.access_token.expose(), "at-1");
    assert_eq!(
        r.tokens.refresh_token.as_ref().map(Secret::expose),
        Some("rt-1")
    );
    assert_eq!(
        r.tokens.expires_at,
        Some(UnixTime::from_secs(NOW.as_secs() + 3600))
    );
    assert_eq!(
        r.tokens.id_token.as_ref().map(Secret::expose),
        Some("x.y.z")
    );
    assert_eq!(r.tokens.scope.as_deref(), Some("openid email"));

    let req = fake.last("token");
    let form = req.form();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "code-1");
    assert_eq!(form["code_verifier"], "verifier-1");
    assert_eq!(form["redirect_uri"], "http://127.0.0.1/cb");
    assert!(!form.contains_key("client_secret"));
    // RFC 6749 §2.3.1: id and secret are form-urlencoded inside Basic.
    let expected = base64::engine::general_purpose::STANDARD.encode("client:s3cret%2F%2B%3D");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Basic {expected}"))
    );
    assert_eq!(req.header("accept").as_deref(), Some("application/json"));
    assert_eq!(req.header("user-agent").as_deref(), Some(USER_AGENT));
    assert!(USER_AGENT.starts_with("authgate/"));
}

#[tokio::test]
async fn refresh_with_post_auth_sends_credentials_in_the_body() {
    let fake = FakeProvider::start().await;
    fake.script(
        "token",
        Scripted::json(
            200,
            json!({"access_token": "at-2", "expires_in": 60, "refresh_token": "rt-2"}),
        ),
    );
    let mut s = fake.oauth2_settings("op");
    s.token_endpoint_auth_method = Some(TokenEndpointAuthMethod::ClientSecretPost);
    let p = resolve(s).await;
    let t = p.refresh(&Secret::new("rt-1"), NOW).await.unwrap();
    assert_eq!(t.access_token.expose(), "at-2");
    assert_eq!(t.refresh_token.as_ref().map(Secret::expose), Some("rt-2"));
    assert_eq!(t.expires_at, Some(UnixTime::from_secs(NOW.as_secs() + 60)));

    let req = fake.last("token");
    let form = req.form();
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], "rt-1");
    assert_eq!(form["client_id"], "client");
    assert_eq!(form["client_secret"], "s3cret/+=");
    assert_eq!(req.header("authorization"), None);
}

#[tokio::test]
async fn refresh_response_without_refresh_token_yields_none() {
    let fake = FakeProvider::start().await;
    fake.script(
        "token",
        Scripted::json(
            200,
            json!({"access_token": "at-2", "expires_in": 3599, "token_type": "Bearer"}),
        ),
    );
    let p = resolve(fake.oauth2_settings("op")).await;
    let t = p.refresh(&Secret::new("rt-1"), NOW).await.unwrap();
    assert!(t.refresh_token.is_none());
}

#[tokio::test]
async fn form_encoded_token_response_is_parsed() {
    let fake = FakeProvider::start().await;
    fake.script(
        "token",
        Scripted::raw(
            200,
            "application/x-www-form-urlencoded; charset=utf-8",
            "access_token=gho_abc&expires_in=28800&refresh_token=ghr_def&refresh_token_expires_in=15897600&scope=&token_type=bearer",
        ),
    );
    let p = resolve(fake.oauth2_settings("op")).await;
    let r = p
        .exchange_code("c", "v", "http://127.0.0.1/cb", NOW)
        .await
        .unwrap();
    assert_eq!(r.tokens.access_token.expose(), "gho_abc");
    assert_eq!(
        r.tokens.expires_at,
        Some(UnixTime::from_secs(NOW.as_secs() + 28800))
    );
    assert_eq!(
        r.refresh_token_expires_at,
        Some(UnixTime::from_secs(NOW.as_secs() + 15_897_600))
    );
    assert_eq!(r.tokens.scope, None);
}

fn github_settings(fake: &FakeProvider) -> ProviderSettings {
    let mut s = ProviderSettings::new("gh", "client", "secret");
    s.preset = Some(Preset::GitHub);
    s.endpoints.authorization = Some(fake.url("/authorize"));
    s.endpoints.token = Some(fake.url("/token"));
    s.endpoints.userinfo = Some(fake.url("/userinfo"));
    s
}

#[tokio::test]
async fn github_http_200_bad_refresh_token_ends_the_grant() {
    let fake = FakeProvider::start().await;
    fake.script(
        "token",
        Scripted::json(
            200,
            json!({"error": "bad_refresh_token",
            "error_description": "The refresh token passed is incorrect or expired."}),
        ),
    );
    let e = refresh_err(github_settings(&fake)).await;
    assert_eq!(e.kind, ProviderErrorKind::GrantRevoked);
    assert_eq!(e.status, Some(200));
    assert_eq!(e.code.as_deref(), Some("bad_refresh_token"));
    assert_eq!(e.provider, "gh");
    // Preset data, not a name check: the same code from a generic provider is not revoking.
    let generic = fake.oauth2_settings("generic");
    assert_eq!(refresh_err(generic).await.kind, ProviderErrorKind::Protocol);
}

#[tokio::test]
async fn github_bad_verification_code_on_exchange_is_grant_revoked() {
    let fake = FakeProvider::start().await;
    fake.script(
        "token",
        Scripted::json(200, json!({"error": "bad_verification_code"})),
    );
    let p = resolve(github_settings(&fake)).await;
    let e = p
        .exchange_code("c", "v", "http://127.0.0.1/cb", NOW)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::GrantRevoked);
}

#[tokio::test]
async fn github_incorrect_client_credentials_is_misconfigured() {
    let fake = FakeProvider::start().await;
    fake.script(
        "token",
        Scripted::json(200, json!({"error": "incorrect_client_credentials"})),
    );
    let e = refresh_err(github_settings(&fake)).await;
    assert_eq!(e.kind, ProviderErrorKind::Misconfigured);
}

#[tokio::test]
async fn github_form_encoded_error_with_http_200_is_classified() {
    let fake = FakeProvider::start().await;
    fake.script(
        "token",
        Scripted::raw(
            200,
            "application/x-www-form-urlencoded",
            "error=bad_refresh_token&error_description=expired",
        ),
    );
    let e = refresh_err(github_settings(&fake)).await;
    assert_eq!(e.kind, ProviderErrorKind::GrantRevoked);
    assert_eq!(e.description.as_deref(), Some("expired"));
}

#[tokio::test]
async fn github_preset_sends_client_secret_post_and_accept_json() {
    let fake = FakeProvider::start().await;
    fake.script("token", Scripted::json(200, json!({"access_token": "gho"})));
    let p = resolve(github_settings(&fake)).await;
    p.refresh(&Secret::new("rt"), NOW).await.unwrap();
    let req = fake.last("token");
    assert_eq!(req.form()["client_secret"], "secret");
    assert_eq!(req.header("accept").as_deref(), Some("application/json"));
}

#[tokio::test]
async fn auth0_style_403_invalid_grant_ends_the_grant() {
    let fake = FakeProvider::start().await;
    fake.script(
        "token",
        Scripted::json(403, json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."})),
    );
    let mut s = fake.oidc_settings("auth0");
    s.preset = Some(Preset::Auth0);
    let e = refresh_err(s).await;
    assert_eq!(e.kind, ProviderErrorKind::GrantRevoked);
    assert_eq!(e.status, Some(403));
}

#[tokio::test]
async fn http_400_invalid_grant_ends_the_grant() {
    let e = refresh_with(Scripted::json(400, json!({"error": "invalid_grant"}))).await;
    assert_eq!(e.kind, ProviderErrorKind::GrantRevoked);
}

#[tokio::test]
async fn invalid_client_is_misconfigured() {
    let e = refresh_with(Scripted::json(401, json!({"error": "invalid_client"}))).await;
    assert_eq!(e.kind, ProviderErrorKind::Misconfigured);
}

#[tokio::test]
async fn server_errors_are_transient() {
    for status in [500, 502, 503] {
        let e = refresh_with(Scripted::raw(status, "text/html", "<h1>down</h1>")).await;
        assert_eq!(e.kind, transient(None), "status {status}");
        assert_eq!(e.status, Some(status));
    }
}

#[tokio::test]
async fn too_many_requests_is_transient_with_retry_after() {
    let e = refresh_with(Scripted::raw(429, "text/plain", "slow down").header("retry-after", "7"))
        .await;
    assert_eq!(e.kind, transient(Some(7)));
}

#[tokio::test]
async fn temporarily_unavailable_is_transient() {
    let e = refresh_with(
        Scripted::json(400, json!({"error": "temporarily_unavailable"})).header("retry-after", "3"),
    )
    .await;
    assert_eq!(e.kind, transient(Some(3)));
}

#[tokio::test]
async fn success_without_access_token_is_a_protocol_error() {
    let e = refresh_with(Scripted::json(200, json!({"token_type": "Bearer"}))).await;
    assert_eq!(e.kind, ProviderErrorKind::Protocol);
}

#[tokio::test]
async fn html_or_garbage_body_is_a_protocol_error() {
    for body in [
        "<html><body>Sign in</body></html>",
        "\u{0}\u{1}garbage",
        "[1,2,3]",
    ] {
        let e = refresh_with(Scripted::raw(200, "text/html", body)).await;
        assert_eq!(e.kind, ProviderErrorKind::Protocol, "{body:?}");
    }
}

#[tokio::test]
async fn redirect_from_token_endpoint_is_not_followed() {
    let fake = FakeProvider::start().await;
    let elsewhere = fake.url("/elsewhere").to_string();
    fake.script(
        "token",
        Scripted::raw(302, "text/plain", "").header("location", &elsewhere),
    );
    fake.script(
        "elsewhere",
        Scripted::json(200, json!({"access_token": "stolen"})),
    );
    let e = refresh_err(fake.oauth2_settings("op")).await;
    assert_eq!(e.kind, ProviderErrorKind::Protocol);
    assert_eq!(e.status, Some(302));
    assert!(fake.requests("elsewhere").is_empty());
}

fn settings_at(token: Url) -> ProviderSettings {
    let mut s = ProviderSettings::new("op", "client", "secret");
    s.endpoints.authorization = Some(Url::parse("http://127.0.0.1/authorize").unwrap());
    s.endpoints.token = Some(token);
    s
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let addr = refused_addr().await;
    let p = resolve(settings_at(
        Url::parse(&format!("http://{addr}/token")).unwrap(),
    ))
    .await;
    let e = p.refresh(&Secret::new("rt"), NOW).await.unwrap_err();
    assert_eq!(e.kind, transient(None));
}

#[tokio::test]
async fn connection_reset_mid_response_is_transient() {
    let server = resetting_server().await;
    let p = resolve(settings_at(server.url("/token"))).await;
    let e = p.refresh(&Secret::new("rt"), NOW).await.unwrap_err();
    assert_eq!(e.kind, transient(None));
}

#[tokio::test]
async fn slow_provider_times_out_as_transient() {
    let fake = FakeProvider::start().await;
    fake.script(
        "token",
        Scripted::json(200, json!({"access_token": "late"})).delayed(Duration::from_secs(5)),
    );
    let http = HttpClient::new(&HttpSettings {
        connect_timeout: Duration::from_millis(300),
        timeout: Duration::from_millis(300),
        ..HttpSettings::default()
    })
    .unwrap();
    let p = Provider::resolve(fake.oauth2_settings("op"), &http)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let e = p.refresh(&Secret::new("rt"), NOW).await.unwrap_err();
    assert_eq!(e.kind, transient(None));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn errors_never_carry_the_refresh_token() {
    let e = refresh_with(Scripted::json(
        400,
        json!({"error": "invalid_grant",
        "error_description": "bad"}),
    ))
    .await;
    assert!(!format!("{e} {e:?}").contains("rt-1"));
}

#[tokio::test]
async fn revocation_200_is_success_and_sends_the_hint() {
    let fake = FakeProvider::start().await;
    fake.script("revoke", Scripted::raw(200, "text/plain", ""));
    let p = resolve(fake.oauth2_settings("op")).await;
    assert!(p.supports_revocation());
    p.revoke(&Secret::new("rt-9"), Some(TokenTypeHint::RefreshToken))
        .await
        .unwrap();
    let form = fake.last("revoke").form();
    assert_eq!(form["token"], "rt-9");
    assert_eq!(form["token_type_hint"], "refresh_token");
}

#[tokio::test]
async fn revocation_503_is_transient() {
    let fake = FakeProvider::start().await;
    fake.script(
        "revoke",
        Scripted::raw(503, "text/plain", "busy").header("retry-after", "2"),
    );
    let p = resolve(fake.oauth2_settings("op")).await;
    let e = p.revoke(&Secret::new("rt"), None).await.unwrap_err();
    assert_eq!(e.kind, transient(Some(2)));
}

#[tokio::test]
async fn revocation_without_endpoint_is_misconfigured() {
    let fake = FakeProvider::start().await;
    let p = resolve(github_settings(&fake)).await;
    assert!(!p.supports_revocation());
    let e = p.revoke(&Secret::new("rt"), None).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Misconfigured);
}

#[tokio::test]
async fn userinfo_sends_bearer_and_normalises_claims() {
    let fake = FakeProvider::start().await;
    fake.script(
        "userinfo",
        Scripted::json(
            200,
            json!({"sub": "u1", "email": "u1@example.com", "email_verified": true,
            "name": "User One", "picture": "https://example.com/u1.png"}),
        ),
    );
    let p = resolve(fake.oauth2_settings("op")).await;
    let u = p.userinfo(&Secret::new("at-1")).await.unwrap();
    assert_eq!(u.sub, "u1");
    assert_eq!(u.email.as_deref(), Some("u1@example.com"));
    assert_eq!(u.email_verified, Some(true));
    assert_eq!(u.name.as_deref(), Some("User One"));
    assert_eq!(u.picture.as_deref(), Some("https://example.com/u1.png"));
    assert_eq!(
        fake.last("userinfo").header("authorization").as_deref(),
        Some("Bearer at-1")
    );
}

#[tokio::test]
async fn userinfo_github_profile_and_errors() {
    let fake = FakeProvider::start().await;
    fake.script(
        "userinfo",
        Scripted::json(
            200,
            json!({"id": 583231, "login": "octocat", "name": null,
            "avatar_url": "https://avatars.example/u/583231"}),
        ),
    );
    let p = resolve(github_settings(&fake)).await;
    let u = p.userinfo(&Secret::new("gho")).await.unwrap();
    assert_eq!(u.sub, "583231");
    assert_eq!(u.name.as_deref(), Some("octocat"));

    fake.script("userinfo", Scripted::raw(503, "text/plain", "down"));
    assert!(
        p.userinfo(&Secret::new("gho"))
            .await
            .unwrap_err()
            .kind
            .is_retryable()
    );
    fake.script(
        "userinfo",
        Scripted::json(200, json!({"email": "x@example.com"})),
    );
    assert_eq!(
        p.userinfo(&Secret::new("gho")).await.unwrap_err().kind,
        ProviderErrorKind::Protocol
    );
}

#[tokio::test]
async fn github_addresses_are_read_from_the_list_under_the_userinfo_endpoint() {
    let fake = FakeProvider::start().await;
    fake.script(
        "emails",
        Scripted::json(
            200,
            json!([
                {"email": "octo@users.noreply.example", "primary": false, "verified": true, "visibility": null},
                {"email": "octo@corp.example", "primary": true, "verified": true, "visibility": "private"},
            ]),
        ),
    );
    let p = resolve(github_settings(&fake)).await;
    assert_eq!(
        p.endpoints().emails.as_ref().map(Url::as_str),
        Some(fake.url("/userinfo/emails").as_str()),
        "the list moves with an overridden userinfo endpoint"
    );
    let list = p.addresses(&Secret::new("gho-1")).await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(list[1].primary && list[1].verified);
    assert_eq!(
        fake.last("emails").header("authorization").as_deref(),
        Some("Bearer gho-1")
    );
    assert_eq!(
        p.signin_facts().vouching,
        authgate_core::signin::Vouching::AddressList
    );

    // Without the user:email scope GitHub answers 404; outages are transient.
    fake.script(
        "emails",
        Scripted::json(404, json!({"message": "Not Found"})),
    );
    let e = p.addresses(&Secret::new("gho-1")).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Protocol);
    fake.script("emails", Scripted::raw(503, "text/plain", "down"));
    assert!(
        p.addresses(&Secret::new("gho-1"))
            .await
            .unwrap_err()
            .kind
            .is_retryable()
    );
    fake.script(
        "emails",
        Scripted::json(200, json!({"email": "x@y.example"})),
    );
    assert_eq!(
        p.addresses(&Secret::new("gho-1")).await.unwrap_err().kind,
        ProviderErrorKind::Protocol
    );
}

#[tokio::test]
async fn providers_without_an_address_list_refuse_to_fetch_one() {
    let fake = FakeProvider::start().await;
    let p = resolve(fake.oauth2_settings("op")).await;
    assert!(p.endpoints().emails.is_none());
    let e = p.addresses(&Secret::new("at")).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Misconfigured);
}
