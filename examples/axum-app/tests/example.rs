//! The axum example end to end, over real HTTP on loopback: anonymous
//! visitors, sign-in at the development provider, the session and token
//! routes, and a transparent refresh made once for concurrent requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use authgate_example_axum::{Example, Options, VISITS_COOKIE, build_app};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, Response};
use std::collections::BTreeMap;
use std::time::Duration;
use url::Url;

const SESSION_COOKIE: &str = "authjs.session-token";

struct Running {
    url: Url,
    example: Example,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn start(options: Options) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url: Url = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let (router, example) = build_app(url.clone(), options).await.unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Running {
        url,
        example,
        server,
    }
}

/// A client with a cookie jar for the app's origin; redirects are not followed.
struct Browser {
    client: Client,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new() -> Self {
        Self {
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn absorb(&mut self, response: &Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (name, val) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().to_owned(), val.to_owned());
            }
        }
    }

    async fn get(&mut self, url: &str) -> Response {
        let r = self
            .client
            .get(url)
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.absorb(&r);
        r
    }
}

fn location(r: &Response) -> String {
    r.headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on {} {:?}", r.status(), r.headers()))
        .to_str()
        .unwrap()
        .to_owned()
}

fn set_cookie_names(r: &Response) -> Vec<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let text = v.to_str().unwrap();
            text.split_once('=').unwrap().0.to_owned()
        })
        .collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Signs `user` in the way a browser does: `/me` → sign-in → the provider's
/// login form → the app's callback → back to `/me`.
async fn sign_in(app: &Running, user: &str) -> Browser {
    let mut b = Browser::new();
    let r = b.get(app.url.join("/me").unwrap().as_str()).await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/auth/signin?callbackUrl=%2Fme");

    let r = b
        .get(
            app.url
                .join("/auth/signin/dev?callbackUrl=%2Fme")
                .unwrap()
                .as_str(),
        )
        .await;
    assert_eq!(r.status(), 302);
    let authorize = location(&r);
    assert!(authorize.starts_with(app.example.idp.issuer_str()));

    // The provider's login form: any user name.
    let page = b
        .client
        .get(&authorize)
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
        .expect("the login form carries the request id")
        .to_owned();
    let form_action = authorize.split('?').next().unwrap().to_owned();
    let r = b
        .client
        .post(&form_action)
        .form(&[
            ("request", request_id.as_str()),
            ("username", user),
            ("action", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let callback = location(&r);
    assert!(callback.starts_with(app.url.join("/auth/callback/dev").unwrap().as_str()));

    let r = b.get(&callback).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    assert_eq!(location(&r), "/me");
    assert!(b.cookies.contains_key(SESSION_COOKIE));
    b
}

async fn json(r: Response) -> serde_json::Value {
    r.json().await.unwrap()
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_sign_in_or_refused() {
    let app = start(Options::default()).await;
    let mut b = Browser::new();

    let r = b.get(app.url.join("/me").unwrap().as_str()).await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/auth/signin?callbackUrl=%2Fme");

    let r = b
        .get(app.url.join("/api/token-info").unwrap().as_str())
        .await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(json(r).await["error"], "SessionRequired");

    let r = b.get(app.url.as_str()).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Not signed in"));

    // The sign-in page is served by the mounted /auth routes.
    let r = b
        .get(
            app.url
                .join("/auth/signin?callbackUrl=%2Fme")
                .unwrap()
                .as_str(),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Development provider"));
}

#[tokio::test]
async fn a_signed_in_user_sees_the_session_and_a_described_access_token() {
    let app = start(Options::default()).await;
    let mut b = sign_in(&app, "bob").await;

    let r = b.get(app.url.join("/me").unwrap().as_str()).await;
    assert_eq!(r.status(), 200);
    let me = json(r).await;
    assert_eq!(me["user"]["email"], "bob@example.com");
    assert_eq!(me["provider"], "dev");
    assert!(me["accessTokenExpiresAt"].as_i64().unwrap() > now());

    let r = b
        .get(app.url.join("/api/token-info").unwrap().as_str())
        .await;
    assert_eq!(r.status(), 200);
    let info = json(r).await;
    assert!(info["tokenLength"].as_u64().unwrap() > 0);
    assert_eq!(info["provider"], "dev");
    assert!(info["expiresAt"].as_i64().unwrap() > now());
    let keys: Vec<&String> = info.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "expiresAt",
            "expiresIn",
            "provider",
            "scope",
            "tokenLength",
            "tokenType"
        ],
        "the token itself is never shown"
    );

    let r = b.get(app.url.as_str()).await;
    assert!(r.text().await.unwrap().contains("Signed in as"));
    assert_eq!(app.example.idp.stats().code_grants, 1);
    assert_eq!(app.example.idp.stats().refresh_grants, 0);
}

/// Sleeps until an access token expiring at `expires_at` counts as stale.
async fn wait_until_stale(expires_at: i64, skew: Duration) {
    let stale_at = expires_at - skew.as_secs() as i64;
    while now() < stale_at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_for_concurrent_requests_and_app_cookies_survive() {
    let options = Options {
        access_token_ttl: Duration::from_secs(4),
        skew: Duration::from_secs(1),
    };
    let skew = options.skew;
    let app = start(options).await;
    let mut b = sign_in(&app, "carol").await;
    let me = json(b.get(app.url.join("/me").unwrap().as_str()).await).await;
    let first_expiry = me["accessTokenExpiresAt"].as_i64().unwrap();

    // Several requests with the same stale cookie at once: one refresh grant.
    wait_until_stale(first_expiry, skew).await;
    let before = app.example.idp.stats().refresh_grants;
    let cookie = b.cookie_header();
    let url = app.url.join("/api/token-info").unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (client, cookie, url) = (b.client.clone(), cookie.clone(), url.clone());
        tasks.spawn(async move { client.get(url).header(COOKIE, cookie).send().await.unwrap() });
    }
    let mut refreshed_expiries = Vec::new();
    let mut last = None;
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            set_cookie_names(&r).contains(&SESSION_COOKIE.to_owned()),
            "the session cookie is rewritten with the new expiry"
        );
        b.absorb(&r);
        let info = json(r).await;
        assert!(info["tokenLength"].as_u64().unwrap() > 0);
        refreshed_expiries.push(info["expiresAt"].as_i64().unwrap());
        last = Some(info);
    }
    assert_eq!(
        app.example.idp.stats().refresh_grants,
        before + 1,
        "one refresh for all concurrent requests"
    );
    assert_eq!(app.example.idp.stats().reuse_detections, 0);
    let second_expiry = last.unwrap()["expiresAt"].as_i64().unwrap();
    assert!(second_expiry > first_expiry);
    assert!(refreshed_expiries.iter().all(|e| *e == second_expiry));

    // The rewritten cookie now carries the new expiry: no refresh needed.
    let me = json(b.get(app.url.join("/me").unwrap().as_str()).await).await;
    assert_eq!(me["accessTokenExpiresAt"].as_i64().unwrap(), second_expiry);
    assert_eq!(app.example.idp.stats().refresh_grants, before + 1);

    // Next expiry, on a page: the layer's session cookie and the handler's
    // own cookie are both set on the same response.
    wait_until_stale(second_expiry, skew).await;
    let r = b.get(app.url.join("/me").unwrap().as_str()).await;
    assert_eq!(r.status(), 200);
    let names = set_cookie_names(&r);
    assert!(names.contains(&SESSION_COOKIE.to_owned()), "{names:?}");
    assert!(names.contains(&VISITS_COOKIE.to_owned()), "{names:?}");
    let me = json(r).await;
    assert!(me["accessTokenExpiresAt"].as_i64().unwrap() > second_expiry);
    assert_eq!(me["visits"], 3);
    assert_eq!(app.example.idp.stats().refresh_grants, before + 2);
}
