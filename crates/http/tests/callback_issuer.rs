//! RFC 9207 at the callback: an authorization response naming another
//! issuer is refused before its code is redeemed (the mix-up defence); one
//! naming this provider's issuer proceeds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Browser, Options, json, location, start};

/// Starts a sign-in and returns the `state` the provider would echo.
async fn started(b: &mut Browser) -> String {
    let r = b.get("/auth/signin/dev?callbackUrl=%2Fdone").await;
    assert_eq!(r.status(), 302);
    url::Url::parse(&location(&r))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn a_response_from_another_issuer_is_refused_before_the_code_is_redeemed() {
    let h = start(Options::default()).await;
    let mut b = Browser::new(&h);
    let codes = h.idp.stats().code_grants;
    let issuer = h.idp.issuer_str().to_owned();
    for iss in [
        "https://evil.example",
        "http://127.0.0.1:1",
        "",
        &format!("{issuer}/"),
        &format!(" {issuer}"),
    ] {
        let state = started(&mut b).await;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", "a-code-from-elsewhere")
            .append_pair("state", &state)
            .append_pair("iss", iss)
            .finish();
        let r = b
            .get_with(
                &format!("/auth/callback/dev?{query}"),
                &[("accept", "application/json")],
            )
            .await;
        assert_eq!(r.status(), 400, "{iss:?}");
        assert_eq!(json(r).await["error"], "IssuerMismatch", "{iss:?}");
    }
    assert_eq!(h.idp.stats().code_grants, codes, "no code was redeemed");
    // An error response is checked too.
    let state = started(&mut b).await;
    let r = b
        .get_with(
            &format!("/auth/callback/dev?error=access_denied&state={state}&iss=https%3A%2F%2Fevil.example"),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "IssuerMismatch");
}

#[tokio::test]
async fn a_response_naming_this_providers_issuer_signs_in() {
    let h = start(Options::default()).await;
    let mut b = Browser::new(&h);
    let r = b.get("/auth/signin/dev?callbackUrl=%2Fdone").await;
    let authorize = location(&r);
    // The development provider names itself in its responses, as RFC 9207
    // providers do.
    let callback = common::log_in_at_provider_until_callback(&h, &mut b, &authorize, "ann").await;
    let iss = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "iss")
        .map(|(_, v)| v.into_owned());
    assert_eq!(iss.as_deref(), Some(h.idp.issuer_str()));
    let r = b.get(&callback).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    assert_eq!(location(&r), "/done");
}
