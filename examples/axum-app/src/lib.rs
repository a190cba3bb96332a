//! An axum service protected by authgate in-process: no proxy in front, the
//! same sign-in, sessions and rotation-safe refresh.
//!
//! | route | protection | what it shows |
//! |---|---|---|
//! | `GET /` | [`AuthLayer::public`] | a page; who is signed in, if anyone ([`Option<Session>`]) |
//! | `GET /me` | [`AuthLayer::protected`] | the [`Session`] as JSON (no session: 302 to sign-in) |
//! | `GET /api/token-info` | [`AuthLayer::api`] | the [`AccessToken`]'s length and expiry, never the token (no session: 401 JSON) |
//! | `/auth/*` | — | authgate's endpoints ([`Gateway::auth_routes`]) |
//!
//! [`build_app`] wires a [`Gateway`] the way a real service would: SQLite
//! store (here in a temporary directory) behind the in-process cache, the
//! provider catalog, the refresh service. The provider is authgate's
//! built-in development OpenID provider, so it runs with no setup.

use authgate_core::cookie::CookieFormat;
use authgate_core::token::ExpiryPolicy;
use authgate_devidp::{DevClient, DevIdp, DevIdpConfig};
use authgate_http::{
    AccessToken, AuthLayer, Gateway, GatewayParts, GatewaySettings, RouteRules, Routes, Session,
};
use authgate_oauth::{Catalog, HttpClient, HttpSettings, ProviderSettings};
use authgate_refresh::{
    BreakerSettings, CatalogRefresher, PollingSignal, RefreshDeps, RefreshService, RefreshSettings,
    SystemClock,
};
use authgate_store::KeyRing;
use authgate_store::cache::{CacheOptions, CachedStore, open_cache};
use axum::http::HeaderMap;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::response::{Html, IntoResponse, Json};
use axum::routing::get;
use axum::{BoxError, Router};
use rand::RngCore as _;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The provider id (`/auth/signin/dev`, `/auth/callback/dev`).
pub const PROVIDER_ID: &str = "dev";

/// The cookie `/me` sets itself, to show that the layer's cookies and the
/// app's live side by side.
pub const VISITS_COOKIE: &str = "example_visits";

/// What can be tuned; [`Options::default`] is what `main` uses.
#[derive(Debug, Clone)]
pub struct Options {
    /// Access-token lifetime at the development provider.
    pub access_token_ttl: Duration,
    /// A token counts as stale this long before it expires.
    pub skew: Duration,
}

impl Default for Options {
    /// 60 s tokens refreshed 10 s early: a refresh every ~50 s of activity.
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(60),
            skew: Duration::from_secs(10),
        }
    }
}

/// What the app needs kept alive beside its router.
pub struct Example {
    /// The gateway the layers and `/auth/*` share.
    pub gateway: Gateway,
    /// The development provider (dropping it stops it).
    pub idp: DevIdp,
    /// Where the app is served.
    pub public_url: Url,
    data_dir: tempfile::TempDir,
}

impl Example {
    /// The temporary directory holding the SQLite database.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }
}

/// Builds the app to be served at `public_url` (e.g. `http://127.0.0.1:3000/`):
/// starts the development provider on a loopback port, opens SQLite in a
/// temporary directory and assembles the gateway.
pub async fn build_app(public_url: Url, options: Options) -> Result<(Router, Example), BoxError> {
    let settings = GatewaySettings {
        policy: ExpiryPolicy { skew: options.skew },
        ..GatewaySettings::new(public_url.clone())
    };

    // The identity provider, with this app as its one client.
    let mut client_secret = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut client_secret);
    let client_secret = hex(&client_secret);
    let redirect_uri = settings.auth_url(&format!("/callback/{PROVIDER_ID}"));
    let idp = DevIdp::bind(
        ([127, 0, 0, 1], 0).into(),
        DevIdpConfig {
            access_token_ttl: options.access_token_ttl,
            ..DevIdpConfig::default()
        }
        .with_client(
            DevClient::new("authgate-example", client_secret.clone())
                .with_redirect_uri(redirect_uri),
        ),
    )
    .await?;

    // Session secret: random per run (sessions end with the process, like
    // the temporary database). A real service reads it from its config.
    let mut secret = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let secrets = vec![secret];

    // The store is the source of truth for tokens (encrypted at rest); the
    // gateway reads it through an in-process cache.
    let data_dir = tempfile::tempdir()?;
    let keys = KeyRing::from_secrets(&secrets)?;
    let url = format!("sqlite://{}", data_dir.path().join("example.db").display());
    let store = authgate_store::connect(&url, keys.clone()).await?;
    store.migrate().await?;
    let cached = Arc::new(CachedStore::new(
        Arc::clone(&store),
        open_cache("memory://", &CacheOptions::default()).await?,
        keys,
    ));

    let http = HttpClient::new(&HttpSettings::default())?;
    let mut provider =
        ProviderSettings::new(PROVIDER_ID, "authgate-example", client_secret.as_str());
    provider.name = Some("Development provider".to_owned());
    provider.issuer = Some(idp.issuer());
    provider.scopes = ["openid", "email", "profile", "offline_access"]
        .map(str::to_owned)
        .to_vec();
    let catalog = Catalog::resolve(vec![provider], &http).await?;

    let refresh = RefreshService::new(
        RefreshDeps {
            store: Arc::clone(&store),
            token_cache: Arc::clone(&cached) as _,
            refresher: Arc::new(CatalogRefresher::new(catalog.clone())),
            signal: Arc::new(PollingSignal::new(Duration::from_millis(100))),
            clock: Arc::new(SystemClock),
        },
        RefreshSettings {
            policy: settings.policy,
            ..RefreshSettings::default()
        },
        BreakerSettings::default(),
        format!("authgate-example:{}", std::process::id()),
    );

    let gateway = Gateway::new(GatewayParts {
        settings,
        secrets,
        cookie_format: CookieFormat::AuthJs,
        store: cached,
        catalog,
        refresh,
        clock: Arc::new(SystemClock),
        // Route rules are for the reverse proxy; here the layers decide.
        routes: Routes {
            rules: RouteRules::new(Vec::new())?,
            allow: Vec::new(),
        },
        upstream: None,
    })?;

    let router = router(&gateway);
    Ok((
        router,
        Example {
            gateway,
            idp,
            public_url,
            data_dir,
        },
    ))
}

/// The app's routes, each behind the layer its protection needs, and the
/// `/auth/*` endpoints under the gateway's base path.
pub fn router(gateway: &Gateway) -> Router {
    let public = Router::new()
        .route("/", get(home))
        .route_layer(AuthLayer::public(gateway.clone()));
    let pages = Router::new()
        .route("/me", get(me))
        .route_layer(AuthLayer::protected(gateway.clone()));
    let api = Router::new()
        .route("/api/token-info", get(token_info))
        .route_layer(AuthLayer::api(gateway.clone()));
    Router::new()
        .merge(public)
        .merge(pages)
        .merge(api)
        .nest(&gateway.settings().base_path, gateway.auth_routes())
}

/// `GET /`: open to everyone.
async fn home(session: Option<Session>) -> Html<String> {
    let body = match session {
        Some(s) => {
            let who = s
                .identity()
                .name
                .clone()
                .or_else(|| s.identity().email.clone())
                .unwrap_or_else(|| s.identity().id.clone());
            format!(
                "<p>Signed in as <strong>{}</strong>.</p>\
                 <ul><li><a href=\"/me\">/me</a> — your session</li>\
                 <li><a href=\"/api/token-info\">/api/token-info</a> — your access token, described</li></ul>\
                 <form method=\"post\" action=\"/auth/signout\">\
                 <input type=\"hidden\" name=\"csrfToken\" id=\"csrf\">\
                 <input type=\"hidden\" name=\"callbackUrl\" value=\"/\">\
                 <button>Sign out</button></form>\
                 <script>fetch('/auth/csrf').then(r => r.json())\
                 .then(j => document.getElementById('csrf').value = j.csrfToken)</script>",
                escape(&who)
            )
        }
        None => "<p>Not signed in.</p>\
                 <p><a href=\"/me\">/me</a> asks you to sign in; \
                 <a href=\"/api/token-info\">/api/token-info</a> answers 401.</p>\
                 <p><a href=\"/auth/signin?callbackUrl=%2Fme\">Sign in</a></p>"
            .to_owned(),
    };
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <title>authgate axum example</title></head>\
         <body><h1>authgate axum example</h1>{body}</body></html>"
    ))
}

/// `GET /me`: the session (protected: no session, no handler call). Also
/// sets the app's own cookie, a visit counter.
async fn me(session: Session, headers: HeaderMap) -> impl IntoResponse {
    let visits = cookie(&headers, VISITS_COOKIE)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    let set_cookie = format!("{VISITS_COOKIE}={visits}; Path=/; HttpOnly; SameSite=Lax");
    (
        [(SET_COOKIE, set_cookie)],
        Json(json!({
            "user": session.identity(),
            "provider": session.provider(),
            "accessTokenExpiresAt": session.access_token_expires_at(),
            "expires": session.expires(),
            "visits": visits,
        })),
    )
}

/// `GET /api/token-info`: what the current access token looks like, without
/// showing it.
async fn token_info(session: Session, token: AccessToken) -> Json<serde_json::Value> {
    let expires_in = token.expires_at().map(|at| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        at.as_secs() - i64::try_from(now).unwrap_or(i64::MAX)
    });
    Json(json!({
        "provider": session.provider(),
        "tokenLength": token.expose().len(),
        "tokenType": token.token_type(),
        "scope": token.scope(),
        "expiresAt": token.expires_at(),
        "expiresIn": expires_in,
    }))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(n, v)| (n == name).then_some(v))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
