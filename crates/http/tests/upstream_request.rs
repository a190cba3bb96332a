//! What the upstream receives through the reverse proxy, over real HTTP: no
//! gateway cookies unless opted in, its own `Host` unless `preserve_host`,
//! the public host in `X-Forwarded-Host`; a `GET` rule guarding `HEAD`; and a
//! hostile `Host` / `X-Forwarded-Host` never in a `Location` or callback URL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_http::{Access, AllowList, RouteRule, RouteRules};
use axum::http::Method;
use common::{Browser, Harness, Options, SESSION_COOKIE, json, location, sign_in, start};
use reqwest::header::COOKIE;

/// The public authority (`127.0.0.1:port`) of a test gateway.
fn public_host(h: &Harness) -> String {
    format!(
        "{}:{}",
        h.url.host_str().unwrap(),
        h.url.port_or_known_default().unwrap()
    )
}

fn cookies(echoed: &serde_json::Value) -> Vec<&str> {
    echoed["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_gateways_cookies_never_reach_the_upstream_and_every_other_cookie_does() {
    let h = start(Options {
        upstream: true,
        ..Options::default()
    })
    .await;
    let mut b = sign_in(&h, "ann").await;
    let session = b.cookies[SESSION_COOKIE].clone();
    // The jar's session cookie, then a second Cookie header (as HTTP/2
    // clients send) mixing the gateway's names with the application's.
    let theirs = "theme=dark; authjs.csrf-token=abc%7Cdef; __Secure-authjs.session-token.0=x; \
        __Secure-authjs.session-token.1=y; authjs.state=s; authjs.pkce.code_verifier=v; \
        authjs.nonce=n; authjs.callback-url=%2F; lang=\"en\"; authjs.session-tokens=keep";
    for path in ["/protected/page", "/public/page", "/api/v1"] {
        let r = b.get_with(path, &[("cookie", theirs)]).await;
        assert_eq!(r.status(), 200, "{path}: the session was read first");
        let echoed = json(r).await;
        assert!(echoed["user"].is_string(), "{path}: {echoed}");
        assert_eq!(
            cookies(&echoed),
            ["theme=dark; lang=\"en\"; authjs.session-tokens=keep"],
            "{path}"
        );
        assert!(!echoed.to_string().contains(&session));
    }
    // Only the gateway's cookies: no Cookie header at all.
    let r = b.get("/protected/page").await;
    assert!(cookies(&json(r).await).is_empty());
    // Anonymous requests too (a stale or foreign session cookie is still ours).
    let mut anonymous = Browser::new(&h);
    let r = anonymous
        .get_with(
            "/public/page",
            &[(
                "cookie",
                "authjs.session-token.0=garbage; a=1; authjs.session-token.1=more",
            )],
        )
        .await;
    assert_eq!(cookies(&json(r).await), ["a=1"]);
}

#[tokio::test]
async fn pass_auth_cookies_lets_an_upstream_that_reads_the_session_have_them() {
    let h = start(Options {
        upstream: true,
        pass_auth_cookies: true,
        ..Options::default()
    })
    .await;
    let mut b = sign_in(&h, "ann").await;
    let session = b.cookies[SESSION_COOKIE].clone();
    let r = b.get_with("/protected/page", &[("cookie", "a=1")]).await;
    let echoed = json(r).await;
    let seen = cookies(&echoed).join("; ");
    assert!(
        seen.contains(&format!("{SESSION_COOKIE}={session}")),
        "{echoed}"
    );
    assert!(seen.contains("a=1"), "{echoed}");
}

#[tokio::test]
async fn the_upstream_gets_its_own_host_and_the_public_host_whatever_the_client_writes() {
    let hostile = [
        ("host", "evil.example"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
    ];
    let h = start(Options {
        upstream: true,
        ..Options::default()
    })
    .await;
    let mut b = Browser::new(&h);
    let r = b.get_with("/public/page", &hostile).await;
    let echoed = json(r).await;
    let upstream_host = echoed["host"].as_str().unwrap();
    assert!(upstream_host.starts_with("127.0.0.1:"), "{echoed}");
    assert_ne!(
        upstream_host,
        public_host(&h),
        "the upstream's own authority"
    );
    assert_eq!(echoed["forwarded_host"], public_host(&h), "{echoed}");
    assert_eq!(echoed["forwarded_proto"], "http", "{echoed}");

    // preserve_host: the client's Host goes on; X-Forwarded-Host stays public.
    let h = start(Options {
        upstream: true,
        preserve_host: true,
        ..Options::default()
    })
    .await;
    let mut b = Browser::new(&h);
    let r = b.get_with("/public/page", &hostile).await;
    let echoed = json(r).await;
    assert_eq!(echoed["host"], "evil.example", "{echoed}");
    assert_eq!(echoed["forwarded_host"], public_host(&h), "{echoed}");
}

#[tokio::test]
async fn a_hostile_host_never_appears_in_a_location_or_callback_url() {
    let h = start(Options {
        upstream: true,
        ..Options::default()
    })
    .await;
    let hostile = [
        ("host", "evil.example"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "host=evil.example;proto=https"),
        ("x-original-host", "evil.example"),
    ];
    let clean = |what: &str, text: &str| {
        assert!(!text.contains("evil"), "{what}: {text}");
    };
    let mut b = Browser::new(&h);
    // The proxy's sign-in redirect.
    let r = b
        .get_with(
            "/protected/page",
            &[&hostile[..], &[("accept", "text/html")]].concat(),
        )
        .await;
    assert_eq!(r.status(), 302);
    clean("proxy redirect", &location(&r));
    // Forward-auth's absolute sign-in URL is built on public_url.
    for uri in ["x-original-uri", "x-forwarded-uri"] {
        let r = b
            .get_with(
                "/auth/verify",
                &[&hostile[..], &[(uri, "/protected/page")]].concat(),
            )
            .await;
        let l = location(&r);
        assert!(l.starts_with(h.url.as_str().trim_end_matches('/')), "{l}");
        clean("verify redirect", &l);
    }
    // The sign-in page, and the authorization request's redirect_uri.
    let page = b
        .get_with("/auth/signin", &hostile)
        .await
        .text()
        .await
        .unwrap();
    clean("sign-in page", &page);
    let r = b
        .get_with("/auth/signin/dev?callbackUrl=%2Fdone", &hostile)
        .await;
    assert_eq!(r.status(), 302);
    let authorize = location(&r);
    clean("authorization request", &authorize);
    let redirect_uri = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert_eq!(redirect_uri, format!("{}auth/callback/dev", h.url));
    // A whole sign-in with the hostile headers on every gateway request and
    // a callbackUrl on the hostile host: the browser comes back to `/`.
    let mut b = Browser::new(&h);
    let r = b
        .get_with(
            "/auth/signin/dev?callbackUrl=http%3A%2F%2Fevil.example%2Fx",
            &hostile,
        )
        .await;
    assert_eq!(r.status(), 302);
    let authorize = location(&r);
    clean("authorization request", &authorize);
    let callback = login_at_provider(&b, &authorize, "ann").await;
    clean("provider callback", &callback);
    let r = b.get_with(&callback, &hostile).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    assert_eq!(location(&r), "/");
    assert!(b.cookies.contains_key(SESSION_COOKIE));
    let session = json(b.get_with("/auth/session", &hostile).await).await;
    clean("session", &session.to_string());
}

/// The development provider's login form, as a browser fills it in: the
/// gateway callback URL the provider redirects to.
async fn login_at_provider(b: &Browser, authorize: &str, user: &str) -> String {
    let page = b
        .client
        .get(authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let request_id = page
        .split("name=\"request\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let r = b
        .client
        .post(authorize.split('?').next().unwrap())
        .form(&[
            ("request", request_id.as_str()),
            ("username", user),
            ("action", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    r.headers()["location"].to_str().unwrap().to_owned()
}

fn admin_rules() -> RouteRules {
    RouteRules::new(vec![
        RouteRule::new("/admin/**", Access::Protected)
            .with_methods([Method::GET])
            .with_allow(AllowList {
                emails: vec!["root@example.test".into()],
                ..AllowList::default()
            }),
        RouteRule::new("/**", Access::Public),
    ])
    .unwrap()
}

#[tokio::test]
async fn a_rule_for_get_guards_head_through_the_proxy_and_forward_auth() {
    let h = start(Options {
        upstream: true,
        routes: Some(admin_rules()),
        ..Options::default()
    })
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let head = |cookie: String| {
        client
            .head(h.url.join("/admin/users").unwrap())
            .header(COOKIE, cookie)
            .header("accept", "text/html")
            .send()
    };
    // Anonymous: a sign-in redirect, not the upstream's answer.
    let r = head(String::new()).await.unwrap();
    assert_eq!(r.status(), 302);
    assert!(location_of(&r).contains("/auth/signin"));
    // Signed in, outside the allow-list: refused.
    let b = sign_in(&h, "ann").await;
    let r = head(b.cookie_header()).await.unwrap();
    assert_eq!(r.status(), 403);
    // Other methods are not covered by the GET rule.
    let r = client
        .post(h.url.join("/admin/users").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Forward-auth judges X-Forwarded-Method / X-Original-Method the same way.
    let mut anonymous = Browser::new(&h);
    for (uri, method) in [
        ("x-forwarded-uri", "x-forwarded-method"),
        ("x-original-uri", "x-original-method"),
    ] {
        let r = anonymous
            .get_with("/auth/verify", &[(uri, "/admin/users"), (method, "HEAD")])
            .await;
        assert!(
            r.status() == 302 || r.status() == 401,
            "{uri}: {}",
            r.status()
        );
    }
    let mut b = b;
    let r = b
        .get_with(
            "/auth/verify",
            &[
                ("x-forwarded-uri", "/admin/users"),
                ("x-forwarded-method", "HEAD"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
}

fn location_of(r: &reqwest::Response) -> String {
    r.headers()
        .get(reqwest::header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}
