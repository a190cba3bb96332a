//! A gateway built with `Gateway::builder` over a real SQLite store and the
//! development provider (`authgate-devidp`), served over loopback HTTP, and
//! a browser-like client that signs in through the provider's login form.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use authgate_core::secret::Secret;
use authgate_core::token::ExpiryPolicy;
use authgate_core::token::TokenSet;
use authgate_devidp::{DevClient, DevIdp, DevIdpConfig};
use authgate_http::{
    Access, Gateway, GatewaySettings, ProxySettings, RefreshMode, RevocationCheck, RouteRule,
    RouteRules, SessionStrategy, TrustedProxies,
};
use authgate_oauth::{Catalog, HttpClient, HttpSettings, ProviderSettings};
use authgate_store::cache::{CacheOptions, CachedStore, open_cache, open_revocation_set};
use authgate_store::{KeyRing, Store, UserId};
use axum::Router;
use axum::extract::Request;
use axum::routing::any;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, Response};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use url::Url;

/// The session secret every test gateway uses.
pub const SECRET: &str = "http-tests-secret-at-least-32-chars!!";
/// The provider id.
pub const PROVIDER: &str = "dev";
/// The session cookie (Auth.js v5, http).
pub const SESSION_COOKIE: &str = "authjs.session-token";

/// What to vary.
#[derive(Clone)]
pub struct Options {
    pub strategy: SessionStrategy,
    pub refresh_mode: RefreshMode,
    /// Access-token lifetime at the provider.
    pub token_ttl: Duration,
    /// Skew: a token that lives no longer than this is stale when issued,
    /// so every protected request refreshes it (no sleeping needed).
    pub skew: Duration,
    pub pass_access_token: bool,
    pub pass_authorization_header: bool,
    /// Keep the gateway's own cookies in requests to the upstream.
    pub pass_auth_cookies: bool,
    /// Send the client's `Host` upstream.
    pub preserve_host: bool,
    /// Proxies trusted for forwarding headers and forward-auth tokens.
    pub trusted_proxies: TrustedProxies,
    /// Route rules (default: [`routes`]).
    pub routes: Option<RouteRules>,
    /// Serve an echo upstream behind the reverse proxy.
    pub upstream: bool,
    /// Leave the store without tables: every store read fails.
    pub broken_store: bool,
    /// Servers and jobs that may call `POST /auth/token`.
    pub service_clients: Vec<authgate_http::ServiceClient>,
    /// When JWT sessions are checked for revocation.
    pub revocation_check: RevocationCheck,
    /// The provider is configured with the Google preset, and the
    /// development provider plays Google's offline access (a refresh token
    /// at first consent only, or with `prompt=consent`).
    pub google: bool,
    /// Adopt guide-style Auth.js cookies as sessions of this provider.
    pub adopt_guide_cookies: Option<String>,
    /// The provider accepts its JWT access tokens as bearer tokens.
    pub bearer: Option<authgate_oauth::BearerSettings>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            strategy: SessionStrategy::Jwt,
            refresh_mode: RefreshMode::Inline,
            token_ttl: Duration::from_secs(300),
            skew: Duration::from_secs(5),
            pass_access_token: false,
            pass_authorization_header: false,
            pass_auth_cookies: false,
            preserve_host: false,
            trusted_proxies: TrustedProxies::none(),
            routes: None,
            upstream: false,
            broken_store: false,
            service_clients: Vec::new(),
            revocation_check: RevocationCheck::Refresh,
            google: false,
            adopt_guide_cookies: None,
            bearer: None,
        }
    }
}

impl Options {
    /// Tokens that are stale as soon as they are issued.
    pub fn always_stale(self) -> Self {
        Self {
            token_ttl: Duration::from_secs(30),
            skew: Duration::from_secs(60),
            ..self
        }
    }
}

/// A running gateway.
pub struct Harness {
    pub url: Url,
    pub gateway: Gateway,
    pub idp: Arc<DevIdp>,
    /// The uncached store.
    pub store: Arc<dyn Store>,
    server: tokio::task::JoinHandle<()>,
    upstream: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(u) = &self.upstream {
            u.abort();
        }
    }
}

/// The route rules of the reverse-proxy tests.
pub fn routes() -> RouteRules {
    RouteRules::new(vec![
        RouteRule::new("/api/**", Access::Api),
        RouteRule::new("/protected/**", Access::Protected),
        RouteRule::new("/**", Access::Public),
    ])
    .unwrap()
}

/// Trusts loopback: the test client and the gateway are both on 127.0.0.1.
pub fn loopback() -> TrustedProxies {
    TrustedProxies::parse(["127.0.0.1"]).unwrap()
}

/// An upstream that answers every request with the identity headers, the
/// `Host`, the forwarding headers and the `Cookie` headers it got, as JSON.
async fn echo_upstream() -> (Url, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url: Url = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let app = Router::new().fallback(any(|request: Request| async move {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let cookies: Vec<String> = request
            .headers()
            .get_all("cookie")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        axum::Json(serde_json::json!({
            "method": request.method().as_str(),
            "path": request.uri().path(),
            "user": header("x-auth-request-user"),
            "email": header("x-auth-request-email"),
            "token": header("x-forwarded-access-token"),
            "authorization": header("authorization"),
            "groups": header("x-auth-request-groups"),
            "preferred_username": header("x-auth-request-preferred-username"),
            "name": header("x-auth-request-name"),
            "host": header("host"),
            "forwarded_host": header("x-forwarded-host"),
            "forwarded_proto": header("x-forwarded-proto"),
            "cookies": cookies,
        }))
    }));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}

/// Builds and serves a gateway: `app` (given the gateway) is served in front
/// of it when set, else `Gateway::router`.
pub async fn start_with(options: Options, app: Option<fn(&Gateway) -> Router>) -> Harness {
    start_sharing(options, app, None).await
}

/// Like [`start_with`], reusing a running provider (two gateways, one idp).
pub async fn start_sharing(
    options: Options,
    app: Option<fn(&Gateway) -> Router>,
    idp: Option<Arc<DevIdp>>,
) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url: Url = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let mut settings = GatewaySettings::new(url.clone());
    settings.strategy = options.strategy;
    settings.refresh_mode = options.refresh_mode;
    settings.policy = ExpiryPolicy { skew: options.skew };
    settings.pass_access_token = options.pass_access_token;
    settings.pass_authorization_header = options.pass_authorization_header;
    settings.pass_auth_cookies = options.pass_auth_cookies;
    settings.trusted_proxies = options.trusted_proxies.clone();
    settings.revocation_check = options.revocation_check;
    settings.adopt_guide_cookies = options.adopt_guide_cookies.clone();
    let idp = match idp {
        Some(idp) => idp,
        None => Arc::new(
            DevIdp::bind(
                ([127, 0, 0, 1], 0).into(),
                DevIdpConfig {
                    access_token_ttl: options.token_ttl,
                    google_offline_access: options.google,
                    ..DevIdpConfig::default()
                }
                .with_client(
                    DevClient::new("http-tests", "http-tests-client-secret")
                        .allow_any_loopback_redirect(),
                ),
            )
            .await
            .unwrap(),
        ),
    };
    let mut provider = ProviderSettings::new(PROVIDER, "http-tests", "http-tests-client-secret");
    provider.issuer = Some(idp.issuer());
    if options.google {
        provider.preset = Some(authgate_oauth::Preset::Google);
    } else {
        provider.scopes = ["openid", "email", "profile", "offline_access"]
            .map(str::to_owned)
            .to_vec();
    }
    provider.bearer = options.bearer.clone();
    let http = HttpClient::new(&HttpSettings::default()).unwrap();
    let catalog = Catalog::resolve(vec![provider], &http).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let keys = KeyRing::from_secrets(&[SECRET]).unwrap();
    let db = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let store = authgate_store::connect(&db, keys.clone()).await.unwrap();
    if !options.broken_store {
        store.migrate().await.unwrap();
    }
    let cache = open_cache("memory://", &CacheOptions::default())
        .await
        .unwrap();
    let revocations =
        open_revocation_set("memory://", &CacheOptions::default(), settings.max_age).unwrap();
    let cached = Arc::new(
        CachedStore::new(Arc::clone(&store), cache, keys)
            .with_revocations(Arc::clone(&revocations)),
    );
    let mut builder = Gateway::builder(settings)
        .secrets([Secret::new(SECRET)])
        .store(Arc::clone(&store), cached)
        .revocations(revocations)
        .catalog(catalog)
        .routes(options.routes.clone().unwrap_or_else(routes))
        .service_clients(options.service_clients.clone());
    let mut upstream = None;
    if options.upstream {
        let (upstream_url, task) = echo_upstream().await;
        let proxy = ProxySettings {
            preserve_host: options.preserve_host,
            ..ProxySettings::default()
        };
        builder = builder.upstream(upstream_url, proxy);
        upstream = Some(task);
    }
    let gateway = builder.build().unwrap();
    let router = match app {
        Some(app) => app(&gateway),
        None => gateway.router(),
    };
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Harness {
        url,
        gateway,
        idp,
        store,
        server,
        upstream,
        _dir: dir,
    }
}

/// Builds and serves a gateway with `Gateway::router`.
pub async fn start(options: Options) -> Harness {
    start_with(options, None).await
}

/// A client with a cookie jar for the gateway's origin; redirects are not followed.
pub struct Browser {
    pub client: Client,
    pub cookies: BTreeMap<String, String>,
    pub base: Url,
}

impl Browser {
    pub fn new(h: &Harness) -> Self {
        Self {
            client: Client::builder()
                .user_agent("authgate-http-tests")
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            base: h.url.clone(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn absorb(&mut self, response: &Response) {
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

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            self.base.join(path).unwrap().to_string()
        }
    }

    /// `GET path` with the jar's cookies and `headers`.
    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = self
            .client
            .get(self.url(path))
            .header(COOKIE, self.cookie_header());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let r = request.send().await.unwrap();
        self.absorb(&r);
        r
    }

    pub async fn get(&mut self, path: &str) -> Response {
        self.get_with(path, &[]).await
    }

    /// `POST path` with a form body and `headers`.
    pub async fn post_form(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .client
            .post(self.url(path))
            .header(COOKIE, self.cookie_header())
            .form(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let r = request.send().await.unwrap();
        self.absorb(&r);
        r
    }

    /// A CSRF token (and its cookie, kept in the jar).
    pub async fn csrf(&mut self) -> String {
        let body: serde_json::Value = self.get("/auth/csrf").await.json().await.unwrap();
        body["csrfToken"].as_str().unwrap().to_owned()
    }
}

pub fn location(r: &Response) -> String {
    r.headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on {} {:?}", r.status(), r.headers()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Signs `user` in the way a browser does: the gateway's sign-in link → the
/// provider's login form → the gateway's callback.
pub async fn sign_in(h: &Harness, user: &str) -> Browser {
    let mut b = Browser::new(h);
    sign_in_as(h, &mut b, user).await;
    b
}

/// Signs `user` in with browser `b`.
pub async fn sign_in_as(h: &Harness, b: &mut Browser, user: &str) {
    let r = b.get("/auth/signin/dev?callbackUrl=%2Fdone").await;
    assert_eq!(r.status(), 302);
    let r = log_in_at_provider(h, b, &location(&r), user).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    assert_eq!(location(&r), "/done");
    assert!(b.cookies.contains_key(SESSION_COOKIE));
}

/// Follows `authorize` (the provider's authorization URL) through its login
/// form as `user`, and returns the gateway's answer to the callback.
pub async fn log_in_at_provider(
    h: &Harness,
    b: &mut Browser,
    authorize: &str,
    user: &str,
) -> Response {
    let callback = log_in_at_provider_until_callback(h, b, authorize, user).await;
    b.get(&callback).await
}

/// Like [`log_in_at_provider`], but stops at the callback URL the provider
/// sends the browser to.
pub async fn log_in_at_provider_until_callback(
    h: &Harness,
    b: &mut Browser,
    authorize: &str,
    user: &str,
) -> String {
    assert!(authorize.starts_with(h.idp.issuer_str()));
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
    location(&r)
}

pub async fn json(r: Response) -> serde_json::Value {
    r.json().await.unwrap()
}

/// The signed-in user's id (from `/auth/session`).
pub async fn user_id(b: &mut Browser) -> String {
    let session = json(b.get("/auth/session").await).await;
    session["user"]["id"].as_str().unwrap().to_owned()
}

/// The user's tokens as the store holds them now (`None` once revoked).
pub async fn stored_tokens(h: &Harness, user: &str) -> Option<TokenSet> {
    let accounts = h
        .store
        .list_accounts_for_user(&UserId::new(user))
        .await
        .unwrap();
    let account = accounts.iter().find(|a| a.provider == PROVIDER).unwrap();
    h.store
        .read_tokens(&account.id)
        .await
        .unwrap()
        .and_then(|v| v.tokens)
}

/// Revokes `token` at the provider (RFC 7009), behind the gateway's back.
pub async fn revoke_at_provider(h: &Harness, token: &str) {
    let discovery: serde_json::Value = reqwest::get(
        h.idp
            .issuer()
            .join(".well-known/openid-configuration")
            .unwrap(),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let endpoint = discovery["revocation_endpoint"].as_str().unwrap();
    let r = reqwest::Client::new()
        .post(endpoint)
        .form(&[
            ("token", token),
            ("client_id", "http-tests"),
            ("client_secret", "http-tests-client-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Every log line of this test binary, as JSON, from every thread.
pub fn captured_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || Capture(logs))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        logs
    })
}

struct Capture(&'static Mutex<Vec<u8>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
