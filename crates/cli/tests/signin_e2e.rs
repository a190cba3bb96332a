//! End-to-end sign-in through the real HTTP interface against the real
//! `oidc-provider` npm peer and against the built-in development provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_testkit::{OidcProviderPeer, PeerClient, PeerOptions};
use common::*;

async fn peer_for(gw: &url::Url) -> OidcProviderPeer {
    let redirect = format!("{}auth/callback/op", gw);
    OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential("test", "test-secret", &redirect)],
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_user_signs_in_at_oidc_provider_sees_the_session_and_signs_out_with_revocation() {
    let reserved = reserve().await;
    let peer = peer_for(&reserved.url).await;
    let toml = config_toml(
        &reserved.url,
        peer.issuer().as_str().trim_end_matches('/'),
        "{db}",
        "",
        "inline",
    );
    let gw = start(reserved, &toml).await;

    let (mut browser, target) = sign_in_with_peer(&gw.url, "alice", "/protected/page?x=1").await;
    assert_eq!(target, "/protected/page?x=1");
    assert!(browser.cookies.contains_key("authjs.session-token"));
    assert!(
        !browser.cookies.contains_key("authjs.state"),
        "check cookies are cleared"
    );

    let r = browser
        .get(gw.url.join("/auth/session").unwrap().as_str())
        .await;
    assert_eq!(r.status(), 200);
    let session: serde_json::Value = r.json().await.unwrap();
    assert_eq!(session["user"]["email"], "alice@example.test");
    assert_eq!(session["user"]["name"], "Alice");
    assert!(session["accessTokenExpiresAt"].as_i64().unwrap() > 0);
    assert!(session["error"].is_null());
    assert!(
        !session.to_string().contains("refresh"),
        "session JSON never carries tokens"
    );

    // The tokens are stored, encrypted: the raw SQLite file never holds them.
    let account = gw
        .store
        .find_account_by_provider("op", "alice")
        .await
        .unwrap()
        .expect("account linked");
    let tokens = gw
        .store
        .read_tokens(&account.id)
        .await
        .unwrap()
        .unwrap()
        .tokens
        .unwrap();
    let refresh_token = tokens
        .refresh_token
        .clone()
        .expect("offline_access gives a refresh token");
    assert!(peer.is_active("test", refresh_token.expose()).await);
    let raw = std::fs::read(gw.db_dir.path().join("authgate.db")).unwrap();
    let wal = std::fs::read(gw.db_dir.path().join("authgate.db-wal")).unwrap_or_default();
    for needle in [tokens.access_token.expose(), refresh_token.expose()] {
        assert!(!contains(&raw, needle.as_bytes()) && !contains(&wal, needle.as_bytes()));
    }

    // Sign-out: CSRF-checked, revokes at the provider, clears every cookie.
    let csrf = browser.csrf(&gw.url).await;
    let r = browser
        .post_form(
            gw.url.join("/auth/signout").unwrap().as_str(),
            &[("csrfToken", &csrf), ("callbackUrl", "/bye")],
        )
        .await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/bye");
    assert!(
        !browser
            .cookies
            .keys()
            .any(|k| k.starts_with("authjs.session-token"))
    );
    assert!(
        !peer.is_active("test", refresh_token.expose()).await,
        "revoked at the provider"
    );
    let r = browser
        .get(gw.url.join("/auth/session").unwrap().as_str())
        .await;
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::Value::Null
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_user_signs_in_with_the_built_in_development_provider() {
    let reserved = reserve().await;
    let redirect = format!("{}auth/callback/op", reserved.url);
    let idp = authgate_devidp::DevIdp::bind(
        "127.0.0.1:0".parse().unwrap(),
        authgate_devidp::DevIdpConfig::default().with_client(
            authgate_devidp::DevClient::new("test", "test-secret").with_redirect_uri(redirect),
        ),
    )
    .await
    .unwrap();
    let toml = config_toml(&reserved.url, idp.issuer_str(), "{db}", "", "inline");
    let gw = start(reserved, &toml).await;

    let mut b = Browser::new();
    let r = b
        .get(&format!("{}auth/signin/op?callbackUrl=/protected/", gw.url))
        .await;
    assert_eq!(r.status(), 302);
    let authorize = location(&r);
    // The provider's login form: any user name.
    let callback = authgate_testkit::login_with_dev_provider(&authorize, "bob", None).await;
    let r = b.get(&callback).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    assert_eq!(location(&r), "/protected/");
    let session: serde_json::Value = b
        .get(gw.url.join("/auth/session").unwrap().as_str())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(session["user"]["email"], "bob@example.com");
    assert_eq!(idp.stats().code_grants, 1);
}

#[tokio::test]
async fn a_returning_user_gets_the_profile_the_provider_sends_now() {
    let reserved = reserve().await;
    let redirect = format!("{}auth/callback/op", reserved.url);
    let idp = authgate_devidp::DevIdp::bind(
        "127.0.0.1:0".parse().unwrap(),
        authgate_devidp::DevIdpConfig::default().with_client(
            authgate_devidp::DevClient::new("test", "test-secret").with_redirect_uri(redirect),
        ),
    )
    .await
    .unwrap();
    let toml = config_toml(&reserved.url, idp.issuer_str(), "{db}", "", "inline");
    let gw = start(reserved, &toml).await;
    for name in ["Zoe First", "Zoe Renamed"] {
        let mut b = Browser::new();
        let r = b.get(&format!("{}auth/signin/op", gw.url)).await;
        let callback =
            authgate_testkit::login_with_dev_provider(&location(&r), "zoe", Some(name)).await;
        let r = b.get(&callback).await;
        assert_eq!(r.status(), 302);
        let session: serde_json::Value = b
            .get(gw.url.join("/auth/session").unwrap().as_str())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(session["user"]["name"], name);
    }
}
