//! Forward-auth: real nginx (`auth_request`) in front of authgate and an
//! upstream, configured with the nginx block of `docs/forward-auth.md`
//! verbatim (only its addresses replaced), against the real `oidc-provider`
//! peer; and `GET /auth/verify` asked directly the way Traefik and Caddy ask.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_testkit::{Nginx, OidcProviderPeer, PeerClient, PeerOptions, free_port};
use common::*;
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, SET_COOKIE};
use serde_json::Value;
use std::time::Duration;

/// The documented authgate address, application address and `listen` line,
/// replaced by this test's.
const DOC_AUTHGATE: &str = "127.0.0.1:4180";
const DOC_APP: &str = "127.0.0.1:8080";
const DOC_LISTEN: &str = "listen 80;";

/// The first ```` ```nginx ```` block of `docs/forward-auth.md`.
fn documented_nginx_config() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/forward-auth.md");
    let doc = std::fs::read_to_string(path).expect("docs/forward-auth.md");
    let start = doc
        .find("```nginx\n")
        .expect("docs/forward-auth.md has an ```nginx block")
        + "```nginx\n".len();
    let len = doc[start..].find("```").expect("the ```nginx block ends");
    doc[start..start + len].to_owned()
}

/// nginx in front of authgate (forward-auth only: no `upstream`) and an echo
/// application, all on loopback.
struct Stack {
    nginx: Nginx,
    /// The nginx origin, which is also authgate's `public_url`.
    origin: String,
    gw: Gateway,
    peer: OidcProviderPeer,
    _upstream: tokio::task::JoinHandle<()>,
}

/// The stack, with `server_extra` lines added to authgate's `[server]`.
async fn stack(access_ttl: u64, skew: &str, server_extra: &str) -> Option<Stack> {
    if !Nginx::require_installed() {
        return None;
    }
    let reserved = reserve().await;
    let gw_addr = reserved.url.as_str().trim_end_matches('/')["http://".len()..].to_owned();
    let (upstream, task) = echo_upstream().await;
    let app_addr = upstream.as_str().trim_end_matches('/')["http://".len()..].to_owned();

    let port = free_port();
    let documented = documented_nginx_config();
    for placeholder in [DOC_AUTHGATE, DOC_APP, DOC_LISTEN] {
        assert!(
            documented.contains(placeholder),
            "the documented nginx config no longer contains `{placeholder}`; update this test"
        );
    }
    let config = documented
        .replace(DOC_AUTHGATE, &gw_addr)
        .replace(DOC_APP, &app_addr)
        .replace(DOC_LISTEN, &format!("listen 127.0.0.1:{port};"));
    let nginx = tokio::task::spawn_blocking(move || Nginx::start(port, &config))
        .await
        .unwrap();
    let origin = nginx.origin();
    let public = url::Url::parse(&origin).unwrap();

    let peer = OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential(
            "test",
            "test-secret",
            &format!("{origin}/auth/callback/op"),
        )],
        access_token_ttl_secs: access_ttl,
        ..Default::default()
    })
    .await;
    let toml = config_toml(
        &public,
        peer.issuer().as_str().trim_end_matches('/'),
        "{db}",
        "",
        "inline",
    )
    .replace("upstream = \"http://127.0.0.1:9\"\n", server_extra)
    .replace("skew = \"2s\"", &format!("skew = \"{skew}\""));
    assert!(!toml.contains("upstream ="), "forward-auth only");
    let gw = start(reserved, &toml).await;
    Some(Stack {
        nginx,
        origin,
        gw,
        peer,
        _upstream: task,
    })
}

/// GET through nginx with the browser's cookies and `extra` headers; the
/// status, the response headers and the body as JSON (`Null` when not JSON).
async fn get(
    b: &mut Browser,
    url: &str,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = b.client.get(url).header(COOKIE, b.cookie_header());
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    b.absorb(&r);
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn seen<'a>(view: &'a Value, name: &str) -> Vec<&'a str> {
    view["headers"][name]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn location_of(headers: &reqwest::header::HeaderMap) -> &str {
    headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Signs in through nginx: the sign-in start, the provider's callback and the
/// final redirect all go to the nginx origin.
async fn sign_in_through_nginx(s: &Stack, login: &str, callback_url: &str) -> Browser {
    let mut b = Browser::new();
    let r = b
        .get(&format!(
            "{}/auth/signin/op?callbackUrl={}",
            s.origin,
            urlencode(callback_url)
        ))
        .await;
    assert_eq!(r.status(), 302, "sign-in start through nginx");
    let authorize = url::Url::parse(&location(&r)).unwrap();
    let callback = authgate_testkit::login_with_dev_interactions(&authorize, login).await;
    assert!(
        callback
            .as_str()
            .starts_with(&format!("{}/auth/callback/op?", s.origin)),
        "the provider returns to the nginx origin: {callback}"
    );
    let r = b.get(callback.as_str()).await;
    assert_eq!(r.status(), 302, "callback through nginx");
    let target = location(&r);
    assert!(
        target == callback_url || target == format!("{}{callback_url}", s.origin),
        "back to {callback_url}, not {target}"
    );
    assert!(
        b.cookies.keys().any(|k| k.contains("session-token")),
        "session cookie set through nginx: {:?}",
        b.cookies.keys()
    );
    b
}

const IDENTITY: [&str; 6] = [
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-name",
    "x-auth-request-preferred-username",
    "x-auth-request-groups",
    "x-forwarded-access-token",
];

#[tokio::test]
async fn nginx_auth_request_protects_the_upstream_with_the_documented_config() {
    let Some(s) = stack(3600, "2s", "").await else {
        return;
    };
    let o = s.origin.clone();
    let mut anon = Browser::new();
    let html = [(
        "accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    )];

    // Protected, anonymous browser: 302 to sign-in on the nginx origin, with
    // the original URI encoded as callbackUrl.
    let (status, headers, _) = get(&mut anon, &format!("{o}/protected/x?y=1"), &html).await;
    assert_eq!(status, 302, "{}", s.nginx.log());
    assert_eq!(
        location_of(&headers),
        format!("{o}/auth/signin?callbackUrl=%2Fprotected%2Fx%3Fy%3D1")
    );
    // A path nginx and authgate both decode to /protected/x is protected too.
    let (status, _, _) = get(&mut anon, &format!("{o}/%70rotected/x"), &html).await;
    assert_eq!(status, 302, "/%70rotected/x must be protected");

    // API, anonymous: 401 with authgate's JSON body, whatever the Accept.
    for accept in [&[][..], &html[..], &[("accept", "application/json")][..]] {
        let (status, headers, body) = get(&mut anon, &format!("{o}/api/x"), accept).await;
        assert_eq!(status, 401, "{accept:?}: {body}");
        assert!(
            headers[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{headers:?}"
        );
        assert_eq!(body["error"], "SessionRequired", "{body}");
        assert!(headers.get("location").is_none());
    }
    // Other methods: nginx's subrequest is a GET, and so is the replay that
    // fetches authgate's JSON answer.
    let r = anon
        .client
        .post(format!("{o}/api/x"))
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "SessionRequired", "{body}");
    // A client-sent X-Forwarded-Uri does not change what authgate judges.
    let (status, _, _) = get(
        &mut anon,
        &format!("{o}/protected/x"),
        &[
            ("accept", html[0].1),
            ("X-Forwarded-Uri", "/public/x"),
            ("X-Original-URI", "/public/x"),
        ],
    )
    .await;
    assert_eq!(status, 302, "{}", s.nginx.access_log());
    // A protected page asked for by a JSON client: 401 JSON, no redirect.
    let (status, _, body) = get(
        &mut anon,
        &format!("{o}/protected/x"),
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("SessionRequired"))
    );

    // Public, anonymous, with spoofed identity headers: reaches the upstream
    // with no identity at all.
    let spoof = [
        ("X-Auth-Request-User", "admin"),
        ("x-auth-request-email", "admin@evil.example"),
        ("X-AUTH-REQUEST-NAME", "Admin"),
        ("X_Auth_Request_User", "admin"),
        ("X-Forwarded-Access-Token", "forged"),
        ("X-Auth-Request-Groups", "admins"),
        ("X-Auth-Request-Preferred-Username", "root"),
    ];
    let (status, _, view) = get(&mut anon, &format!("{o}/public/page?q=1"), &spoof).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["path"], "/public/page?q=1");
    for name in IDENTITY.iter().chain(&["x_auth_request_user"]) {
        assert!(seen(&view, name).is_empty(), "{name} leaked: {view}");
    }

    // authgate has no upstream: the application is reachable only through nginx.
    let direct = anon
        .client
        .get(format!("{}protected/x", s.gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 404);

    // Sign in through nginx, then the protected page reaches the upstream
    // with the identity, and spoofed copies never do.
    let mut b = sign_in_through_nginx(&s, "carol", "/protected/x").await;
    let (status, headers, view) = get(&mut b, &format!("{o}/protected/x"), &spoof).await;
    assert_eq!(status, 200, "{view}\n{}", s.nginx.log());
    assert_eq!(view["path"], "/protected/x");
    assert_eq!(seen(&view, "x-auth-request-email"), ["carol@example.test"]);
    assert_eq!(seen(&view, "x-auth-request-name"), ["Carol"]);
    assert_eq!(
        seen(&view, "x-auth-request-groups"),
        ["everyone,carol-team"]
    );
    assert_eq!(seen(&view, "x-auth-request-preferred-username"), ["carol"]);
    let user = seen(&view, "x-auth-request-user");
    assert_eq!(user.len(), 1, "exactly one copy: {view}");
    assert_ne!(user, ["admin"]);
    assert!(!user[0].is_empty());
    assert!(seen(&view, "x_auth_request_user").is_empty(), "{view}");
    assert!(seen(&view, "x-forwarded-access-token").is_empty(), "{view}");
    assert!(
        headers.get(SET_COOKIE).is_none(),
        "a fresh session is not rewritten: {headers:?}"
    );

    // The same user on an API route (also with a body) and a public route.
    let (status, _, view) = get(&mut b, &format!("{o}/api/x"), &spoof).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(seen(&view, "x-auth-request-email"), ["carol@example.test"]);
    assert_eq!(seen(&view, "x-auth-request-user"), user);
    let r = b
        .client
        .post(format!("{o}/api/x"))
        .header(COOKIE, b.cookie_header())
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let view: Value = r.json().await.unwrap();
    assert_eq!(seen(&view, "x-auth-request-email"), ["carol@example.test"]);
    let (status, _, view) = get(&mut b, &format!("{o}/public/page"), &spoof).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(seen(&view, "x-auth-request-email"), ["carol@example.test"]);
    assert_eq!(seen(&view, "x-auth-request-user"), user);

    // authgate's own endpoints answer on the nginx origin.
    let (status, _, session) = get(&mut b, &format!("{o}/auth/session"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(session["user"]["email"], "carol@example.test", "{session}");

    // The forward-auth subrequest location is internal, and the public
    // /auth/verify is not routed to authgate.
    let (status, _, _) = get(&mut anon, &format!("{o}/_authgate/verify"), &[]).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(
        &mut b,
        &format!("{o}/auth/verify"),
        &[("X-Original-URI", "/protected/x")],
    )
    .await;
    assert_eq!(status, 404);
}

/// What a browser sends with a navigation and with a script's `fetch()`.
const NAVIGATION: [(&str, &str); 5] = [
    ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
    ("sec-fetch-site", "none"),
    ("sec-fetch-mode", "navigate"),
    ("sec-fetch-dest", "document"),
    ("sec-fetch-user", "?1"),
];
const SCRIPT_FETCH: [(&str, &str); 4] = [
    ("sec-fetch-site", "same-origin"),
    ("sec-fetch-mode", "cors"),
    ("sec-fetch-dest", "empty"),
    ("origin", "http://127.0.0.1"),
];

/// With `pass_access_token` and nginx trusted, the documented config brings
/// the token to the application for a browser's navigation and fetch (nginx
/// keeps the browser's metadata out of the subrequest), while no answer a
/// browser can obtain — through nginx or straight from authgate — carries it.
#[tokio::test]
async fn nginx_brings_the_token_to_the_application_and_never_to_the_browser() {
    let Some(s) = stack(
        3600,
        "2s",
        "pass_access_token = true\ntrusted_proxies = [\"127.0.0.1\"]\n",
    )
    .await
    else {
        return;
    };
    let o = s.origin.clone();
    let mut b = sign_in_through_nginx(&s, "fay", "/protected/x").await;

    let mut token = String::new();
    for (path, browser) in [
        ("/protected/x", &NAVIGATION[..]),
        ("/api/x", &SCRIPT_FETCH[..]),
        ("/public/page", &NAVIGATION[..]),
    ] {
        let (status, headers, view) = get(&mut b, &format!("{o}{path}"), browser).await;
        assert_eq!(status, 200, "{path}: {view}\n{}", s.nginx.log());
        assert_eq!(seen(&view, "x-auth-request-email"), ["fay@example.test"]);
        let tokens = seen(&view, "x-forwarded-access-token");
        assert_eq!(
            tokens.len(),
            1,
            "{path}: the application gets the token: {view}"
        );
        assert!(!tokens[0].is_empty());
        token = tokens[0].to_owned();
        assert!(
            headers.get("x-forwarded-access-token").is_none(),
            "{path}: {headers:?}"
        );
    }

    // A script's ways to ask for the decision itself.
    let authgate = s.gw.url.as_str().trim_end_matches('/').to_owned();
    let mut attempts: Vec<String> = [
        "/auth/verify",
        "/auth//verify",
        "/auth/./verify",
        "/auth/%76erify",
        "/auth/verify/",
        "/auth/verify?x=1",
        "/_authgate/verify",
    ]
    .iter()
    .map(|p| format!("{o}{p}"))
    .collect();
    // authgate's own listener is loopback, as nginx is: a browser that
    // reached it would be a trusted peer, and still gets no token.
    attempts.push(format!("{authgate}/auth/verify"));
    for url in &attempts {
        for uri in ["X-Original-URI", "X-Forwarded-Uri"] {
            let mut extra = SCRIPT_FETCH.to_vec();
            extra.push((uri, "/api/x"));
            let r = b
                .client
                .get(url)
                .header(COOKIE, b.cookie_header())
                .headers(
                    extra
                        .iter()
                        .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
                        .collect(),
                )
                .send()
                .await
                .unwrap();
            let status = r.status();
            let headers = r.headers().clone();
            let body = r.text().await.unwrap();
            assert!(
                headers.get("x-forwarded-access-token").is_none()
                    && headers.get("authorization").is_none(),
                "{url} ({uri}): {status} {headers:?}"
            );
            assert!(!body.contains(&token), "{url} ({uri}): {status} {body}");
        }
    }
}

#[tokio::test]
async fn nginx_passes_the_cookie_rewritten_by_a_refresh_during_verify_to_the_browser() {
    // Tokens live 15 s and count as stale 14 s early: after a 1.5 s wait the
    // sign-in's token is stale, a refreshed (60 s) one is fresh again.
    let Some(s) = stack(15, "14s", "").await else {
        return;
    };
    let o = s.origin.clone();
    let mut b = sign_in_through_nginx(&s, "dave", "/protected/x").await;
    s.peer.set_access_token_ttl(60).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = b.cookies.clone();

    let (status, headers, view) = get(&mut b, &format!("{o}/protected/x"), &[]).await;
    assert_eq!(status, 200, "{view}\n{}", s.nginx.log());
    assert_eq!(seen(&view, "x-auth-request-email"), ["dave@example.test"]);
    let set_cookie: Vec<&str> = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        set_cookie
            .iter()
            .any(|c| c.starts_with("authjs.session-token=")),
        "the rewritten session cookie reaches the browser through nginx: {headers:?}"
    );
    assert_ne!(b.cookies, before);
    assert_eq!(s.peer.stats().await.refresh_grants, 1);

    // The new cookie carries the new expiry: no second refresh.
    for _ in 0..3 {
        let (status, headers, _) = get(&mut b, &format!("{o}/api/x"), &[]).await;
        assert_eq!(status, 200);
        assert!(headers.get(SET_COOKIE).is_none(), "{headers:?}");
    }
    // A browser that missed the rewritten cookie (docs/forward-auth.md: nginx
    // before 1.23 with a chunked cookie, Caddy) still passes, and the fresh
    // token comes from the store: no second refresh.
    let mut stale = Browser::new();
    stale.cookies = before;
    let (status, _, view) = get(&mut stale, &format!("{o}/protected/x"), &[]).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(seen(&view, "x-auth-request-email"), ["dave@example.test"]);
    let stats = s.peer.stats().await;
    assert_eq!(stats.refresh_grants, 1, "{stats:?}");
    assert_eq!(stats.refresh_errors("invalid_grant"), 0);
}

/// `GET /auth/verify` asked directly, the way Traefik ForwardAuth and Caddy
/// `forward_auth` ask (`X-Forwarded-Uri`, `X-Forwarded-Method`), and the way
/// nginx asks (`X-Original-URI`).
#[tokio::test]
async fn verify_answers_traefik_and_caddy_style_requests() {
    let reserved = reserve().await;
    let redirect = format!("{}auth/callback/op", reserved.url);
    let peer = OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential("test", "test-secret", &redirect)],
        ..Default::default()
    })
    .await;
    let toml = config_toml(
        &reserved.url,
        peer.issuer().as_str().trim_end_matches('/'),
        "{db}",
        "",
        "inline",
    )
    .replace("upstream = \"http://127.0.0.1:9\"\n", "");
    let gw = start(reserved, &toml).await;
    let base = gw.url.as_str().trim_end_matches('/').to_owned();
    let verify = format!("{base}/auth/verify");
    let html = "text/html,application/xhtml+xml,*/*;q=0.8";
    let forwarded = |uri: &'static str| {
        [
            ("X-Forwarded-Uri", uri),
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", "app.example.test"),
        ]
    };
    let mut anon = Browser::new();

    // Browser without a session on a protected route: 302 with an absolute
    // Location on the public URL.
    let mut extra = forwarded("/protected/x?y=1").to_vec();
    extra.push(("accept", html));
    let (status, headers, _) = get(&mut anon, &verify, &extra).await;
    assert_eq!(status, 302);
    assert_eq!(
        location_of(&headers),
        format!("{base}/auth/signin?callbackUrl=%2Fprotected%2Fx%3Fy%3D1")
    );
    // The path is normalised before the routes are matched.
    let mut extra = forwarded("/public/../protected/x").to_vec();
    extra.push(("accept", html));
    let (status, headers, _) = get(&mut anon, &verify, &extra).await;
    assert_eq!(status, 302);
    assert_eq!(
        location_of(&headers),
        format!("{base}/auth/signin?callbackUrl=%2Fprotected%2Fx")
    );

    // nginx style: the same decision as a 401 carrying the Location.
    let (status, headers, _) = get(
        &mut anon,
        &verify,
        &[
            ("X-Original-URI", "/protected/x?y=1"),
            ("X-Original-Method", "GET"),
            ("accept", html),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        location_of(&headers),
        format!("{base}/auth/signin?callbackUrl=%2Fprotected%2Fx%3Fy%3D1")
    );

    // API route, and a JSON client on a protected route: 401 JSON, no redirect.
    for (uri, accept) in [
        ("/api/x", html),
        ("/api/x", "application/json"),
        ("/protected/x", "application/json"),
    ] {
        let r = anon
            .client
            .get(&verify)
            .header("X-Forwarded-Uri", uri)
            .header("X-Forwarded-Method", "GET")
            .header(ACCEPT, accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{uri} {accept}");
        assert!(r.headers().get("location").is_none(), "{uri} {accept}");
        assert!(
            r.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "SessionRequired", "{uri} {accept}: {body}");
    }

    // Public route, anonymous: 200 without identity headers.
    let (status, headers, _) = get(&mut anon, &verify, &forwarded("/public/page")).await;
    assert_eq!(status, 200);
    for name in IDENTITY {
        assert!(headers.get(name).is_none(), "{name}: {headers:?}");
    }

    // Signed in: 200 with the identity headers, on protected, API and public
    // routes; a fresh session is not rewritten.
    let (mut b, _) = sign_in_with_peer(&gw.url, "erin", "/protected/x").await;
    for uri in ["/protected/x?y=1", "/api/x", "/public/page"] {
        let mut extra = forwarded(uri).to_vec();
        extra.push(("accept", html));
        let (status, headers, _) = get(&mut b, &verify, &extra).await;
        assert_eq!(status, 200, "{uri}");
        assert_eq!(
            headers["x-auth-request-email"], "erin@example.test",
            "{uri}"
        );
        assert_eq!(headers["x-auth-request-name"], "Erin", "{uri}");
        assert!(
            !headers["x-auth-request-user"].is_empty(),
            "{uri}: {headers:?}"
        );
        assert!(headers.get("x-forwarded-access-token").is_none(), "{uri}");
        assert!(headers.get(SET_COOKIE).is_none(), "{uri}: {headers:?}");
        assert!(headers.get("location").is_none(), "{uri}");
    }
}

/// Traefik and Caddy pass every client header on to the verify request and
/// set only `X-Forwarded-Uri`/`-Method` themselves; nginx sets only
/// `X-Original-URI`/`-Method` and passes a client's `X-Forwarded-Uri` on. So
/// the header the proxy did *not* set is the client's: when both are present
/// and disagree, verify must not let the request through on either one.
#[tokio::test]
async fn verify_does_not_let_a_client_sent_uri_header_override_the_proxys() {
    let reserved = reserve().await;
    let redirect = format!("{}auth/callback/op", reserved.url);
    let peer = OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential("test", "test-secret", &redirect)],
        ..Default::default()
    })
    .await;
    let toml = config_toml(
        &reserved.url,
        peer.issuer().as_str().trim_end_matches('/'),
        "{db}",
        "",
        "inline",
    )
    .replace("upstream = \"http://127.0.0.1:9\"\n", "");
    let gw = start(reserved, &toml).await;
    let verify = format!("{}auth/verify", gw.url);
    let mut anon = Browser::new();
    let cases: [(&str, [(&str, &str); 4]); 2] = [
        (
            "Traefik/Caddy request to /protected/admin, client added X-Original-URI: /public/x",
            [
                ("X-Forwarded-Uri", "/protected/admin"),
                ("X-Forwarded-Method", "GET"),
                ("X-Original-URI", "/public/x"),
                ("X-Original-Method", "GET"),
            ],
        ),
        (
            "nginx request to /api/admin, client added X-Forwarded-Uri: /public/x",
            [
                ("X-Original-URI", "/api/admin"),
                ("X-Original-Method", "GET"),
                ("X-Forwarded-Uri", "/public/x"),
                ("X-Forwarded-Method", "GET"),
            ],
        ),
    ];
    for (case, headers) in cases {
        let (status, _, body) = get(&mut anon, &verify, &headers).await;
        assert!(
            !(200..300).contains(&status),
            "{case}: verify answered {status} (access granted without a session) {body}"
        );
    }
}
