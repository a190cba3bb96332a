//! Several applications behind one gateway (issue 15 §2), through the real
//! gateway and the `oidc-provider` peer: two upstreams on two hosts under
//! one parent domain, one sign-in on `public_url`'s host (the one redirect
//! URI registered at the provider) that reaches both, each upstream's own
//! routes and header options, an unknown host refused, hostile
//! `callbackUrl`s refused, and a sign-out that expires the shared cookie.
//!
//! The hosts (`auth.`, `app.`, `admin.`, `evil.example.test`) all resolve to
//! the gateway's loopback port through reqwest's `resolve`, and the test's
//! browser keeps cookies as a browser does: by `Domain`, or host-only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_testkit::{OidcProviderPeer, PeerClient, PeerOptions, login_with_dev_interactions};
use common::{echo_upstream, location, reserve, start, urlencode};
use reqwest::header::{COOKIE, HOST, SET_COOKIE};
use reqwest::{Client, Response};
use serde_json::Value;
use std::net::SocketAddr;
use url::Url;

const DOMAIN: &str = "example.test";

/// A browser's cookie jar, by the rules that matter here: a cookie with
/// `Domain=d` goes to `d` and its subdomains, one without to its host only.
#[derive(Default)]
struct Jar {
    /// (name, domain or host, host-only, value)
    cookies: Vec<(String, String, bool, String)>,
}

impl Jar {
    fn absorb(&mut self, host: &str, response: &Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let c = cookie::Cookie::parse(value.to_str().unwrap().to_owned()).unwrap();
            let (scope, host_only) = match c.domain() {
                Some(d) => (d.trim_start_matches('.').to_ascii_lowercase(), false),
                None => (host.to_owned(), true),
            };
            self.cookies
                .retain(|(n, s, h, _)| !(n == c.name() && *s == scope && *h == host_only));
            let expired = c.max_age().is_some_and(|a| a.is_zero());
            if !expired {
                self.cookies
                    .push((c.name().to_owned(), scope, host_only, c.value().to_owned()));
            }
        }
    }

    fn header_for(&self, host: &str) -> String {
        self.cookies
            .iter()
            .filter(|(_, scope, host_only, _)| {
                if *host_only {
                    scope == host
                } else {
                    host == scope || host.ends_with(&format!(".{scope}"))
                }
            })
            .map(|(n, _, _, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

struct Env {
    port: u16,
    client: Client,
    peer: OidcProviderPeer,
    _gw: common::Gateway,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Env {
    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}.{DOMAIN}:{}{path}", self.port)
    }

    async fn get(&self, jar: &mut Jar, url: &str) -> Response {
        let host = Url::parse(url).unwrap().host_str().unwrap().to_owned();
        let r = self
            .client
            .get(url)
            .header(COOKIE, jar.header_for(&host))
            .send()
            .await
            .unwrap();
        jar.absorb(&host, &r);
        r
    }

    async fn post(&self, jar: &mut Jar, url: &str, form: &[(&str, &str)]) -> Response {
        let host = Url::parse(url).unwrap().host_str().unwrap().to_owned();
        let r = self
            .client
            .post(url)
            .header(COOKIE, jar.header_for(&host))
            .form(form)
            .send()
            .await
            .unwrap();
        jar.absorb(&host, &r);
        r
    }

    async fn csrf(&self, jar: &mut Jar) -> String {
        let r = self.get(jar, &self.url("auth", "/auth/csrf")).await;
        let v: Value = r.json().await.unwrap();
        v["csrfToken"].as_str().unwrap().to_owned()
    }
}

async fn env() -> Env {
    env_with("jwt").await
}

async fn env_with(strategy: &str) -> Env {
    let reserved = reserve().await;
    let port = reserved.url.port().unwrap();
    let public = format!("http://auth.{DOMAIN}:{port}");
    let peer = OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential(
            "test",
            "test-secret",
            &format!("{public}/auth/callback/op"),
        )],
        ..Default::default()
    })
    .await;
    let (app, app_task) = echo_upstream().await;
    let (admin, admin_task) = echo_upstream().await;
    let issuer = peer.issuer();
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{public}"
pass_access_token = true
trusted_proxies = ["127.0.0.1"]
allowed_redirect_hosts = ["other.{DOMAIN}:{port}"]

[session]
strategy = "{strategy}"
secret = ["test-secret-at-least-32-chars-long!!"]
cookie_domain = ".{DOMAIN}"

[store]
url = "{{db}}"

[[providers]]
id = "op"
issuer = "{issuer}"
client_id = "test"
client_secret = "test-secret"
scopes = ["openid", "email", "profile", "offline_access"]
authorization_params = {{ prompt = "consent" }}

[[routes]]
path = "/protected/**"
access = "protected"

[[routes]]
path = "/**"
access = "public"

[[upstreams]]
host = "App.{DOMAIN}:{port}"
url = "{app}"

[[upstreams]]
host = "admin.{DOMAIN}:{port}"
url = "{admin}"
pass_access_token = false

[[upstreams.routes]]
path = "/**"
access = "protected"
"#,
        issuer = issuer.as_str().trim_end_matches('/'),
        app = app.as_str().trim_end_matches('/'),
        admin = admin.as_str().trim_end_matches('/'),
    );
    let gw = start(reserved, &toml).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    for host in ["auth", "app", "admin", "evil", "xadmin"] {
        client = client.resolve(&format!("{host}.{DOMAIN}"), addr);
    }
    Env {
        port,
        client: client.build().unwrap(),
        peer,
        _gw: gw,
        _tasks: vec![app_task, admin_task],
    }
}

fn query_param(location: &str, name: &str) -> String {
    let url = Url::parse("http://x.invalid")
        .unwrap()
        .join(location)
        .unwrap();
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {location}"))
}

#[tokio::test]
async fn one_sign_in_on_the_parent_domain_reaches_both_hosts_with_their_own_routes() {
    one_sign_in_reaches_both_hosts("jwt").await;
}

#[tokio::test]
async fn one_database_session_on_the_parent_domain_reaches_both_hosts() {
    one_sign_in_reaches_both_hosts("database").await;
}

async fn one_sign_in_reaches_both_hosts(strategy: &str) {
    let env = env_with(strategy).await;
    let mut jar = Jar::default();
    let admin_page = env.url("admin", "/dashboard?tab=1");

    // Without a session: the app's top-level routes make `/page` public, the
    // admin upstream's own routes make every path protected.
    let r = env.get(&mut jar, &env.url("app", "/page")).await;
    assert_eq!(r.status(), 200);
    let r = env.get(&mut jar, &admin_page).await;
    assert_eq!(r.status(), 302);
    let signin = location(&r);
    assert!(
        signin.starts_with(&env.url("auth", "/auth/signin?")),
        "sign-in happens on public_url's host: {signin}"
    );
    let callback_url = query_param(&signin, "callbackUrl");
    assert_eq!(callback_url, admin_page);

    // Sign in on the gateway's host; the provider knows one redirect URI.
    let r = env
        .get(
            &mut jar,
            &env.url(
                "auth",
                &format!("/auth/signin/op?callbackUrl={}", urlencode(&callback_url)),
            ),
        )
        .await;
    assert_eq!(r.status(), 302);
    let authorize = Url::parse(&location(&r)).unwrap();
    assert_eq!(
        authorize
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .unwrap()
            .1,
        env.url("auth", "/auth/callback/op")
    );
    let callback = login_with_dev_interactions(&authorize, "alice").await;
    let r = env.get(&mut jar, callback.as_str()).await;
    assert_eq!(r.status(), 302, "{:?}", r.headers());
    let session_cookies: Vec<String> = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.starts_with("authjs.session-token"))
        .collect();
    assert!(!session_cookies.is_empty());
    for c in &session_cookies {
        assert!(c.contains(&format!("Domain={DOMAIN}")), "{c}");
    }
    // ... and back to the host the user came from.
    assert_eq!(location(&r), admin_page);

    // The session reaches both upstreams; each gets its own header options.
    let r = env.get(&mut jar, &admin_page).await;
    assert_eq!(r.status(), 200);
    let admin: Value = r.json().await.unwrap();
    assert_eq!(admin["path"], "/dashboard?tab=1");
    assert!(
        admin["headers"]["x-auth-request-user"].is_array(),
        "{admin}"
    );
    assert!(
        admin["headers"]["x-forwarded-access-token"].is_null(),
        "{admin}"
    );
    assert_eq!(
        admin["headers"]["x-forwarded-host"][0],
        format!("admin.{DOMAIN}:{}", env.port)
    );
    assert!(
        !admin["headers"]["cookie"]
            .to_string()
            .contains("authjs.session-token"),
        "{admin}"
    );
    let r = env.get(&mut jar, &env.url("app", "/protected/x")).await;
    assert_eq!(r.status(), 200);
    let app: Value = r.json().await.unwrap();
    assert!(app["headers"]["x-auth-request-user"].is_array(), "{app}");
    assert!(
        app["headers"]["x-forwarded-access-token"].is_array(),
        "{app}"
    );
    assert_eq!(
        app["headers"]["x-forwarded-host"][0],
        format!("app.{DOMAIN}:{}", env.port)
    );

    // Sign-out on the gateway's host expires the shared cookie with its
    // Domain, and returns to a configured host.
    let csrf = env.csrf(&mut jar).await;
    let back = env.url("app", "/bye");
    let r = env
        .post(
            &mut jar,
            &env.url("auth", "/auth/signout"),
            &[("csrfToken", &csrf), ("callbackUrl", &back)],
        )
        .await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), back);
    let expiries: Vec<String> = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.starts_with("authjs.session-token") && c.contains("Max-Age=0"))
        .collect();
    assert!(
        expiries
            .iter()
            .any(|c| c.contains(&format!("Domain={DOMAIN}"))),
        "{expiries:?}"
    );
    let admin_host = format!("admin.{DOMAIN}");
    assert!(
        !jar.header_for(&admin_host).contains("session-token"),
        "the browser dropped the cookie: {}",
        jar.header_for(&admin_host)
    );
    let r = env.get(&mut jar, &admin_page).await;
    assert_eq!(r.status(), 302);
    drop(env.peer);
}

#[tokio::test]
async fn a_host_no_upstream_serves_is_refused_never_given_to_the_first() {
    let env = env().await;
    let mut jar = Jar::default();
    for url in [
        env.url("evil", "/"),
        env.url("xadmin", "/"),
        format!("http://127.0.0.1:{}/", env.port),
        // The port is part of the configured host.
        format!("http://app.{DOMAIN}:1/"),
    ] {
        let r = if url.contains(":1/") {
            env.client
                .get(format!("http://127.0.0.1:{}/", env.port))
                .header(HOST, format!("app.{DOMAIN}:1"))
                .send()
                .await
                .unwrap()
        } else {
            env.get(&mut jar, &url).await
        };
        assert_eq!(r.status(), 421, "{url}");
    }
    // X-Forwarded-Host does not choose an upstream.
    let r = env
        .client
        .get(format!("http://127.0.0.1:{}/", env.port))
        .header("x-forwarded-host", format!("app.{DOMAIN}:{}", env.port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    // Letter case is not a different host.
    let r = env
        .client
        .get(format!("http://127.0.0.1:{}/page", env.port))
        .header(HOST, format!("APP.EXAMPLE.TEST:{}", env.port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn hostile_callback_urls_through_the_gateway_fall_back_to_the_root() {
    let env = env().await;
    let port = env.port;
    let permitted = [
        (
            format!("http://admin.{DOMAIN}:{port}/x"),
            format!("http://admin.{DOMAIN}:{port}/x"),
        ),
        (
            format!("HTTP://APP.{DOMAIN}:{port}/Y"),
            format!("http://app.{DOMAIN}:{port}/Y"),
        ),
        (
            format!("http://admin%2E{DOMAIN}:{port}/p"),
            format!("http://admin.{DOMAIN}:{port}/p"),
        ),
        (
            format!("http://u:p@admin.{DOMAIN}:{port}/p"),
            format!("http://admin.{DOMAIN}:{port}/p"),
        ),
        (
            format!("http://auth.{DOMAIN}:{port}/own"),
            "/own".to_owned(),
        ),
        ("/relative?a=1".to_owned(), "/relative?a=1".to_owned()),
    ];
    let hostile = [
        format!("http://evil-{DOMAIN}:{port}/"),
        format!("http://{DOMAIN}:{port}/"),
        format!("http://admin.{DOMAIN}.evil.net:{port}/"),
        format!("http://admin.{DOMAIN}:{port}@evil.net/"),
        format!("http://evil.net\\@admin.{DOMAIN}:{port}/"),
        "//evil.net".to_owned(),
        "/\\evil.net".to_owned(),
        "http:evil.net".to_owned(),
        "ht\ttp://evil.net".to_owned(),
        "java\nscript:alert(1)".to_owned(),
        "javascript:alert(1)".to_owned(),
        format!("http://admin.{DOMAIN}%2Eevil.net:{port}/"),
        format!("http://admin.{DOMAIN}.:{port}/"),
        format!("http://\u{430}dmin.{DOMAIN}:{port}/"),
        format!("http://admin.{DOMAIN}:{}/", port.wrapping_add(1)),
        format!("http://admin.{DOMAIN}/"),
        format!("https://admin.{DOMAIN}:{port}/"),
        format!("http://xadmin.{DOMAIN}:{port}/"),
        format!("http://evil.{DOMAIN}:{port}/"),
    ];
    let mut jar = Jar::default();
    let safe = |cb: String| {
        let env = &env;
        async move {
            let r = env
                .client
                .get(env.url(
                    "auth",
                    &format!("/auth/signin/op?callbackUrl={}", urlencode(&cb)),
                ))
                .header("sec-fetch-site", "cross-site")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 302, "{cb:?}");
            query_param(&location(&r), "callbackUrl")
        }
    };
    for (candidate, expected) in permitted {
        assert_eq!(safe(candidate.clone()).await, expected, "{candidate:?}");
    }
    for candidate in &hostile {
        assert_eq!(safe(candidate.clone()).await, "/", "{candidate:?}");
    }
    // The same refusal on sign-out.
    let csrf = env.csrf(&mut jar).await;
    for candidate in &hostile {
        let r = env
            .post(
                &mut jar,
                &env.url("auth", "/auth/signout"),
                &[("csrfToken", &csrf), ("callbackUrl", candidate)],
            )
            .await;
        assert_eq!(r.status(), 302, "{candidate:?}");
        assert_eq!(location(&r), "/", "{candidate:?}");
    }
}

#[tokio::test]
async fn a_sign_in_opened_on_an_upstream_host_moves_to_the_gateway_host() {
    let env = env().await;
    let mut jar = Jar::default();
    let back = urlencode(&env.url("admin", "/x"));
    for path in [
        format!("/auth/signin?callbackUrl={back}"),
        format!("/auth/signin/op?callbackUrl={back}"),
    ] {
        let r = env.get(&mut jar, &env.url("admin", &path)).await;
        assert_eq!(r.status(), 302, "{path}");
        assert_eq!(location(&r), env.url("auth", &path));
        assert!(
            r.headers().get(SET_COOKIE).is_none(),
            "no check cookie on the upstream's host"
        );
    }
    // On the gateway's own host the flow starts.
    let r = env
        .get(
            &mut jar,
            &env.url("auth", &format!("/auth/signin/op?callbackUrl={back}")),
        )
        .await;
    assert_eq!(r.status(), 302);
    assert!(location(&r).starts_with(env.peer.issuer().as_str().trim_end_matches('/')));
}

#[tokio::test]
async fn forward_auth_returns_to_the_host_a_trusted_proxy_names_when_it_is_permitted() {
    let env = env().await;
    let verify = |host: String| {
        let env = &env;
        async move {
            let r = env
                .client
                .get(env.url("auth", "/auth/verify"))
                .header("x-forwarded-method", "GET")
                .header("x-forwarded-uri", "/protected/p?q=1")
                .header("x-forwarded-host", host)
                .header("x-forwarded-proto", "http")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 302);
            let signin = location(&r);
            assert!(
                signin.starts_with(&env.url("auth", "/auth/signin?")),
                "{signin}"
            );
            query_param(&signin, "callbackUrl")
        }
    };
    let port = env.port;
    // A host listed in allowed_redirect_hosts (served by that proxy), and an
    // upstream's host.
    for host in ["other", "admin"] {
        assert_eq!(
            verify(format!("{host}.{DOMAIN}:{port}")).await,
            env.url(host, "/protected/p?q=1")
        );
    }
    for hostile in [
        format!("evil.{DOMAIN}:{port}"),
        format!("other.{DOMAIN}:{}", port.wrapping_add(1)),
        format!("other.{DOMAIN}:{port}@evil.net"),
        format!("evil.net/other.{DOMAIN}:{port}"),
        format!("other.{DOMAIN}:{port}, evil.net"),
    ] {
        assert_eq!(
            verify(hostile.clone()).await,
            "/protected/p?q=1",
            "{hostile}"
        );
    }
}
