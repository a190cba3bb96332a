//! Forward-auth (`GET /auth/verify`) and the reverse proxy, through real
//! HTTP: identity headers, sign-in answers, the I/O-free fast path, and one
//! token access per request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Browser, Options, json, loopback, sign_in, start, start_sharing};

#[tokio::test]
async fn verify_needs_the_original_request_and_refuses_ambiguous_ones() {
    let h = start(Options::default()).await;
    let mut b = Browser::new(&h);
    let r = b.get("/auth/verify").await;
    assert_eq!(r.status(), 400);
    let r = b
        .get_with(
            "/auth/verify",
            &[
                ("x-original-uri", "/public/x"),
                ("x-forwarded-uri", "/protected/x"),
                ("accept", "application/json"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "AmbiguousOriginalRequest");
    // One header twice: which copy a proxy added is unknowable.
    let r = b
        .get_with(
            "/auth/verify",
            &[
                ("x-original-uri", "/public/x"),
                ("x-original-uri", "/protected/x"),
                ("accept", "application/json"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "AmbiguousOriginalRequest");
}

#[tokio::test]
async fn verify_answers_each_caller_in_its_dialect() {
    let h = start(Options::default()).await;
    let mut anonymous = Browser::new(&h);
    // Traefik / Caddy: a redirect to sign in.
    let r = anonymous
        .get_with("/auth/verify", &[("x-forwarded-uri", "/protected/page")])
        .await;
    assert_eq!(r.status(), 302);
    assert!(common::location(&r).contains("/auth/signin?callbackUrl=%2Fprotected%2Fpage"));
    // nginx: 401 with the sign-in URL in Location.
    let r = anonymous
        .get_with("/auth/verify", &[("x-original-uri", "/protected/page")])
        .await;
    assert_eq!(r.status(), 401);
    assert!(common::location(&r).starts_with(h.url.as_str().trim_end_matches('/')));
    // An API route: 401 JSON.
    let r = anonymous
        .get_with("/auth/verify", &[("x-original-uri", "/api/v1")])
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"], "SessionRequired");

    let mut b = sign_in(&h, "ann").await;
    let r = b
        .get_with("/auth/verify", &[("x-original-uri", "/protected/page")])
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-auth-request-user"));
    assert!(!r.headers().contains_key("x-forwarded-access-token"));
}

#[tokio::test]
async fn a_fresh_jwt_cookie_is_decided_without_touching_the_store() {
    // Sign in at one gateway, then present the cookie to a second one with
    // the same secrets whose store has no tables: any store read would fail.
    let working = start(Options::default()).await;
    let mut b = sign_in(&working, "ann").await;
    let broken = start_sharing(
        Options {
            broken_store: true,
            ..Options::default()
        },
        None,
        Some(std::sync::Arc::clone(&working.idp)),
    )
    .await;
    b.base = broken.url.clone();
    let r = b
        .get_with("/auth/verify", &[("x-original-uri", "/protected/page")])
        .await;
    assert_eq!(r.status(), 200, "no I/O on the fast path");
    assert!(r.headers().contains_key("x-auth-request-user"));
}

#[tokio::test]
async fn forwarding_the_token_reads_it_once_and_a_stale_one_is_refreshed_once() {
    let h = start(Options {
        pass_access_token: true,
        upstream: true,
        // The verify call below comes from a trusted proxy (loopback).
        trusted_proxies: loopback(),
        ..Options::default().always_stale()
    })
    .await;
    let mut b = sign_in(&h, "ann").await;
    for _ in 0..2 {
        let grants = h.idp.stats().refresh_grants;
        let r = b.get("/protected/page").await;
        assert_eq!(r.status(), 200);
        let echoed = json(r).await;
        assert!(echoed["token"].is_string(), "{echoed}");
        assert!(echoed["user"].is_string());
        assert_eq!(
            h.idp.stats().refresh_grants,
            grants + 1,
            "one refresh per request, shared by the decision and the proxy"
        );
    }

    let grants = h.idp.stats().refresh_grants;
    let r = b
        .get_with("/auth/verify", &[("x-original-uri", "/api/v1")])
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-forwarded-access-token"));
    assert_eq!(h.idp.stats().refresh_grants, grants + 1);
}

#[tokio::test]
async fn the_proxy_strips_client_identity_headers_and_passes_public_routes() {
    let h = start(Options {
        upstream: true,
        ..Options::default()
    })
    .await;
    let mut anonymous = Browser::new(&h);
    let r = anonymous
        .get_with("/public/x", &[("x-auth-request-user", "mallory")])
        .await;
    assert_eq!(r.status(), 200);
    let echoed = json(r).await;
    assert_eq!(echoed["path"], "/public/x");
    assert!(echoed["user"].is_null(), "{echoed}");
    let r = anonymous
        .get_with("/protected/x", &[("accept", "text/html")])
        .await;
    assert_eq!(r.status(), 302);
}

/// Headers a browser adds to every request to an https or loopback origin; a
/// script's `fetch('/auth/verify')` carries them and cannot remove them.
const SCRIPT_FETCH: [(&str, &str); 3] = [
    ("sec-fetch-site", "same-origin"),
    ("sec-fetch-mode", "cors"),
    ("sec-fetch-dest", "empty"),
];

#[tokio::test]
async fn verify_hands_tokens_only_to_a_trusted_proxy_and_never_to_a_browser() {
    let h = start(Options {
        pass_access_token: true,
        pass_authorization_header: true,
        trusted_proxies: loopback(),
        ..Options::default()
    })
    .await;
    let mut b = sign_in(&h, "ann").await;
    let proxy = [("x-original-uri", "/protected/page")];

    // A trusted proxy's subrequest (no browser metadata): the tokens.
    let r = b.get_with("/auth/verify", &proxy).await;
    assert_eq!(r.status(), 200);
    let token = r.headers()["x-forwarded-access-token"].to_str().unwrap();
    assert_eq!(
        r.headers()["authorization"].to_str().unwrap(),
        format!("Bearer {token}")
    );

    // Only the exact path is forward-auth: a proxy rule that keeps the
    // public off `/auth/verify` covers every spelling that reaches it.
    for spelling in [
        "/auth//verify",
        "/auth/verify/",
        "/auth/%76erify",
        "/auth/Verify",
        "/auth/verify;x=1",
        "/AUTH/verify",
    ] {
        let r = b.get_with(spelling, &proxy).await;
        assert!(
            !r.headers().contains_key("x-forwarded-access-token"),
            "{spelling}: {}",
            r.status()
        );
        assert_ne!(r.status(), 200, "{spelling}");
    }

    // The same call carrying any browser metadata: identity only.
    let browser: [&[(&str, &str)]; 5] = [
        &SCRIPT_FETCH,
        &[("sec-fetch-mode", "navigate")],
        &[("sec-fetch-site", "none")],
        &[("sec-fetch-dest", "document")],
        &[("origin", "http://127.0.0.1")],
    ];
    for metadata in browser {
        let mut headers = proxy.to_vec();
        headers.extend_from_slice(metadata);
        let r = b.get_with("/auth/verify", &headers).await;
        assert_eq!(r.status(), 200, "{metadata:?}");
        assert!(
            r.headers().contains_key("x-auth-request-user"),
            "{metadata:?}"
        );
        assert!(
            !r.headers().contains_key("x-forwarded-access-token")
                && !r.headers().contains_key("authorization"),
            "{metadata:?}: {:?}",
            r.headers()
        );
    }
}

#[tokio::test]
async fn verify_gives_an_untrusted_caller_no_token_and_refreshes_nothing_for_it() {
    // Tokens stale as soon as issued: handing one out would refresh it.
    let h = start(Options {
        pass_access_token: true,
        ..Options::default().always_stale()
    })
    .await;
    let mut b = sign_in(&h, "ann").await;
    let grants = h.idp.stats().refresh_grants;
    for _ in 0..3 {
        // A public route needs no refresh for the decision itself.
        let r = b
            .get_with("/auth/verify", &[("x-forwarded-uri", "/public/page")])
            .await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("x-auth-request-user"));
        assert!(!r.headers().contains_key("x-forwarded-access-token"));
    }
    assert_eq!(
        h.idp.stats().refresh_grants,
        grants,
        "no refresh to hand a token to an untrusted caller"
    );
    // A route that needs a session: the decision may refresh, the token still
    // does not leave.
    let r = b
        .get_with("/auth/verify", &[("x-forwarded-uri", "/api/v1")])
        .await;
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key("x-forwarded-access-token"));
}
