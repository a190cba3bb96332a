//! `authgate demo`: the whole product on one machine, with no configuration
//! and no network.
//!
//! It starts three things on loopback:
//! - the built-in development OpenID provider (any user name signs in;
//!   access tokens live 30 seconds and refresh tokens rotate strictly),
//! - a sample upstream application that shows who is signed in, the identity
//!   headers it received, and a live view of the session: the access token's
//!   remaining lifetime counting down and every refresh as it happens,
//! - the gateway in front of it, with SQLite in a temporary directory and
//!   the in-process cache.

use crate::app::{App, Migrations};
use authgate_config::Config;
use authgate_core::client_secret::SecretHash;
use authgate_devidp::{DevClient, DevIdp, DevIdpConfig};
use authgate_http::pages::escape;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The development provider could not start.
    #[error("development provider: {0}")]
    Provider(#[from] authgate_devidp::Error),
    /// The generated configuration was refused (a bug: please report it).
    #[error("demo configuration: {0}")]
    Config(#[from] authgate_config::ConfigError),
    /// The gateway could not be assembled.
    #[error("{0}")]
    App(#[from] crate::app::AppError),
    /// The temporary directory could not be created.
    #[error("temporary directory: {0}")]
    TempDir(std::io::Error),
    /// The demo only runs on loopback.
    #[error("the demo listens on loopback only; {0} is not a loopback address")]
    NotLoopback(SocketAddr),
}

/// `authgate demo --nextjs`: the gateway in front of a Next.js app (such as
/// `examples/nextjs`) instead of the sample app, the way a Next.js app uses
/// it: endpoints at `/api/auth` (where `next-auth/react` looks), the access
/// token passed upstream, `/api/**` answered as an API, `/protected/**`
/// behind sign-in.
#[derive(Debug, Clone)]
pub struct NextjsDemo {
    /// Where the Next.js app listens (`http://127.0.0.1:3000`).
    pub app: String,
    /// Where the development provider listens (`127.0.0.1:4000`, the
    /// example's default `OIDC_ISSUER`).
    pub provider_listen: SocketAddr,
    /// The session secret, shared with the app's `AUTH_SECRET` (random when absent).
    pub secret: Option<String>,
    /// `--beside`: the app serves itself and rewrites only `/api/auth/*` to
    /// the gateway (no upstream; the public URL is the app's), and its server
    /// asks `POST /api/auth/token` as the service client `next-server`.
    pub beside: bool,
}

/// The service client id the beside demo gives the app's server.
const BESIDE_CLIENT_ID: &str = "next-server";

/// A running demo.
pub struct Demo {
    /// The URL to open.
    pub url: String,
    /// With `--nextjs`: the environment the Next.js app needs at `next start`
    /// (`AUTH_SECRET`, `OIDC_ISSUER`; beside it, also `AUTHGATE_*`).
    pub app_env: Vec<(&'static str, String)>,
    /// With `--nextjs --beside`: the environment `next build` needs
    /// (`AUTHGATE_URL`, for the rewrite, and `NEXT_DIST_DIR`).
    pub app_build_env: Vec<(&'static str, String)>,
    app: App,
    listener: TcpListener,
    _idp: DevIdp,
    _upstream: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Demo {
    /// Starts the provider and the sample upstream and builds the gateway for
    /// `listen` (port 0 picks a free one).
    pub async fn start(listen: SocketAddr) -> Result<Demo, DemoError> {
        Self::start_with(listen, None).await
    }

    /// Starts the provider and builds the gateway for `listen` in front of a
    /// Next.js app (see [`NextjsDemo`]).
    pub async fn start_nextjs(listen: SocketAddr, nextjs: NextjsDemo) -> Result<Demo, DemoError> {
        Self::start_with(listen, Some(nextjs)).await
    }

    async fn start_with(listen: SocketAddr, nextjs: Option<NextjsDemo>) -> Result<Demo, DemoError> {
        if !listen.ip().is_loopback() {
            return Err(DemoError::NotLoopback(listen));
        }
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| DemoError::Listen {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| DemoError::Listen {
            addr: listen,
            source,
        })?;
        let gateway = format!("http://{addr}");
        // Beside the app, the browser sees only the app's origin. Next.js
        // names a loopback address `localhost` in its middleware's
        // redirects, and cookies are per host name: use that name too.
        let public = match &nextjs {
            Some(n) if n.beside => {
                n.app
                    .trim_end_matches('/')
                    .replacen("://127.0.0.1:", "://localhost:", 1)
            }
            _ => gateway.clone(),
        };
        let client_secret = random_secret();
        let (idp_listen, provider_id, callback_base) = match &nextjs {
            Some(n) => (n.provider_listen, "op", "/api/auth"),
            None => (SocketAddr::from(([127, 0, 0, 1], 0)), "devidp", "/auth"),
        };
        if !idp_listen.ip().is_loopback() {
            return Err(DemoError::NotLoopback(idp_listen));
        }
        let idp = DevIdp::bind(
            idp_listen,
            DevIdpConfig {
                access_token_ttl: Duration::from_secs(30),
                ..DevIdpConfig::default()
            }
            .with_client(
                DevClient::new("authgate-demo", client_secret.clone())
                    .with_redirect_uri(format!("{public}{callback_base}/callback/{provider_id}")),
            ),
        )
        .await?;
        let dir = tempfile::tempdir().map_err(DemoError::TempDir)?;
        let db = dir.path().join("authgate-demo.db");
        if let Some(nextjs) = nextjs {
            let secret = nextjs.secret.unwrap_or_else(random_secret);
            let server_secret = nextjs.beside.then(random_secret);
            let server_secret_hash = server_secret.as_ref().map(|server_secret| {
                SecretHash::new(server_secret.as_bytes(), &mut rand::rngs::OsRng).to_string()
            });
            let toml = nextjs_toml(&NextjsToml {
                addr,
                public: &public,
                app: nextjs.app.trim_end_matches('/'),
                secret: &secret,
                db: &db,
                issuer: idp.issuer_str(),
                client_secret: &client_secret,
                beside_secret_hash: server_secret_hash.as_deref(),
            });
            let config =
                Config::from_sources(Some(("authgate demo --nextjs", &toml)), std::iter::empty())?;
            let app = App::build(&config, Migrations::Apply).await?;
            let mut app_env = vec![
                ("AUTH_SECRET", secret),
                ("OIDC_ISSUER", idp.issuer_str().to_owned()),
            ];
            let mut app_build_env = Vec::new();
            if let Some(server_secret) = server_secret {
                app_env.extend([
                    ("NEXT_DIST_DIR", ".next-beside".to_owned()),
                    ("AUTHGATE_URL", gateway.clone()),
                    ("AUTHGATE_CLIENT_ID", BESIDE_CLIENT_ID.to_owned()),
                    ("AUTHGATE_CLIENT_SECRET", server_secret),
                ]);
                app_build_env.extend([
                    ("NEXT_DIST_DIR", ".next-beside".to_owned()),
                    ("AUTHGATE_URL", gateway.clone()),
                ]);
            }
            return Ok(Demo {
                url: format!("{public}/"),
                app_env,
                app_build_env,
                app,
                listener,
                _idp: idp,
                _upstream: None,
                _dir: dir,
            });
        }
        let upstream_listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|source| DemoError::Listen {
                addr: listen,
                source,
            })?;
        let upstream_addr = upstream_listener
            .local_addr()
            .map_err(|source| DemoError::Listen {
                addr: listen,
                source,
            })?;
        let sample = sample_app(idp.state());
        let upstream = tokio::spawn(async move {
            let _ = axum::serve(upstream_listener, sample).await;
        });
        let toml = format!(
            r#"
[server]
listen = "{addr}"
public_url = "{public}"
upstream = "http://{upstream_addr}"

[session]
secret = ["{secret}"]

[refresh]
mode = "inline"
skew = "5s"

[store]
url = "sqlite://{db}"

[cache]
url = "memory://"

[[providers]]
id = "devidp"
name = "the development provider"
issuer = "{issuer}"
client_id = "authgate-demo"
client_secret = "{client_secret}"
scopes = ["openid", "email", "profile", "offline_access"]

[[routes]]
path = "/**"
access = "protected"
"#,
            secret = random_secret(),
            db = db.display(),
            issuer = idp.issuer_str(),
        );
        let config = Config::from_sources(Some(("authgate demo", &toml)), std::iter::empty())?;
        let app = App::build(&config, Migrations::Apply).await?;
        Ok(Demo {
            url: format!("{public}/"),
            app_env: Vec::new(),
            app_build_env: Vec::new(),
            app,
            listener,
            _idp: idp,
            _upstream: Some(upstream),
            _dir: dir,
        })
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Demo {
            app,
            listener,
            _idp,
            _upstream,
            _dir,
            ..
        } = self;
        let result = app.serve(listener, shutdown).await;
        drop(_idp);
        if let Some(upstream) = _upstream {
            upstream.abort();
        }
        drop(_dir);
        result
    }
}

/// What the `--nextjs` configuration is made of.
struct NextjsToml<'a> {
    addr: SocketAddr,
    public: &'a str,
    app: &'a str,
    secret: &'a str,
    db: &'a std::path::Path,
    issuer: &'a str,
    client_secret: &'a str,
    /// Beside the app: the app server's service-client secret hash.
    beside_secret_hash: Option<&'a str>,
}

/// The README's Next.js configuration with the demo's addresses: in front of
/// the app, or (with a service client) beside it.
fn nextjs_toml(c: &NextjsToml<'_>) -> String {
    if let Some(secret_hash) = c.beside_secret_hash {
        return nextjs_beside_toml(c, secret_hash);
    }
    format!(
        r#"
[server]
listen = "{addr}"
public_url = "{public}"
upstream = "{app}"
base_path = "/api/auth"
pass_access_token = true
pass_auth_cookies = true

[session]
secret = ["{secret}"]

[refresh]
mode = "inline"
skew = "5s"

[store]
url = "sqlite://{db}"

[cache]
url = "memory://"

[[providers]]
id = "op"
name = "the development provider"
issuer = "{issuer}"
client_id = "authgate-demo"
client_secret = "{client_secret}"
scopes = ["openid", "email", "profile", "offline_access"]

[[routes]]
path = "/api/**"
access = "api"

[[routes]]
path = "/protected/**"
access = "protected"

[[routes]]
path = "/**"
access = "public"
"#,
        addr = c.addr,
        public = c.public,
        app = c.app,
        secret = c.secret,
        db = c.db.display(),
        issuer = c.issuer,
        client_secret = c.client_secret,
    )
}

/// The README's "beside the app" configuration: no upstream (authgate answers
/// only `/api/auth/*`, which the app rewrites to it), the app's origin as the
/// public URL, the app server as a service client.
fn nextjs_beside_toml(c: &NextjsToml<'_>, secret_hash: &str) -> String {
    format!(
        r#"
[server]
listen = "{addr}"
public_url = "{public}"
base_path = "/api/auth"

[session]
secret = ["{secret}"]

[refresh]
mode = "inline"
skew = "5s"

[store]
url = "sqlite://{db}"

[cache]
url = "memory://"

[[providers]]
id = "op"
name = "the development provider"
issuer = "{issuer}"
client_id = "authgate-demo"
client_secret = "{client_secret}"
scopes = ["openid", "email", "profile", "offline_access"]

[[service_clients]]
id = "{BESIDE_CLIENT_ID}"
secret_hash = "{secret_hash}"
allow = ["token"]
"#,
        addr = c.addr,
        public = c.public,
        secret = c.secret,
        db = c.db.display(),
        issuer = c.issuer,
        client_secret = c.client_secret,
    )
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The sample upstream: the page, and the provider's counters as JSON.
fn sample_app(idp: Arc<authgate_devidp::DevIdpState>) -> Router {
    Router::new()
        .route("/demo/provider-stats", get(provider_stats))
        .fallback(page)
        .with_state(idp)
}

async fn provider_stats(State(idp): State<Arc<authgate_devidp::DevIdpState>>) -> Response {
    let s = idp.stats();
    Json(serde_json::json!({
        "refreshGrants": s.refresh_grants,
        "codeGrants": s.code_grants,
        "reuseDetections": s.reuse_detections,
        "revocations": s.revocations,
    }))
    .into_response()
}

async fn page(req: Request) -> Html<String> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("(none)")
            .to_owned()
    };
    let rows: String = [
        "x-auth-request-user",
        "x-auth-request-email",
        "x-auth-request-name",
        "x-forwarded-for",
        "x-request-id",
    ]
    .iter()
    .map(|h| {
        format!(
            "<tr><th scope=\"row\"><code>{h}</code></th><td><code>{}</code></td></tr>",
            escape(&header(h))
        )
    })
    .collect();
    let name = header("x-auth-request-name");
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>authgate demo</title>
<style>
:root{{color-scheme:light dark;--fg:#1a1a1a;--bg:#f6f7f9;--card:#fff;--accent:#1d4ed8;--muted:#555;--ok:#15803d}}
@media (prefers-color-scheme:dark){{:root{{--fg:#eee;--bg:#111418;--card:#1b1f24;--accent:#8ab4ff;--muted:#aaa;--ok:#4ade80}}}}
body{{margin:0;font:16px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}}
main{{max-width:46rem;margin:2rem auto;padding:0 1rem}}
section{{background:var(--card);border-radius:12px;padding:1.25rem 1.5rem;margin:1rem 0;box-shadow:0 2px 12px #0002}}
h1{{font-size:1.5rem}}h2{{font-size:1.1rem;margin-top:0}}th{{text-align:left;padding-right:1rem}}
#countdown{{font-size:2.5rem;font-variant-numeric:tabular-nums}}.muted{{color:var(--muted)}}
ol{{padding-left:1.2rem}}li.new{{color:var(--ok)}}button{{font:inherit;padding:.5rem 1rem;border-radius:8px;border:1px solid var(--accent);background:transparent;color:var(--accent);cursor:pointer}}
</style></head><body><main>
<h1>Hello, {name}</h1>
<p class="muted">This page is the sample upstream application. authgate signed you in with the
development provider, and passes who you are in the headers below.</p>
<section aria-labelledby="h-headers"><h2 id="h-headers">Identity headers this app received</h2>
<table>{rows}</table></section>
<section aria-labelledby="h-token"><h2 id="h-token">Access token</h2>
<p>Expires in <span id="countdown" aria-live="polite">…</span> s
<span class="muted">(tokens live 30 s; authgate refreshes them 5 s early, when this page asks for the session)</span></p>
<p>Refresh grants served by the provider: <strong id="grants">…</strong>
· reuse detections: <strong id="reuse">…</strong></p>
<h3>Refreshes seen by this page</h3><ol id="log"><li class="muted">none yet — wait for the countdown</li></ol>
</section>
<section><form id="signout" method="post" action="/auth/signout">
<input type="hidden" name="csrfToken" id="csrf"><input type="hidden" name="callbackUrl" value="/">
<button type="submit">Sign out (revokes the grant at the provider)</button></form></section>
</main>
<script>
let expiry = null, seen = 0;
const log = document.getElementById('log');
async function poll() {{
  try {{
    const s = await (await fetch('/auth/session', {{headers: {{accept: 'application/json'}}}})).json();
    if (s && s.accessTokenExpiresAt) {{
      if (expiry !== null && s.accessTokenExpiresAt !== expiry) {{
        if (seen === 0) log.innerHTML = '';
        seen++;
        const li = document.createElement('li');
        li.className = 'new';
        li.textContent = new Date().toLocaleTimeString() + ': refreshed; new expiry ' +
          new Date(s.accessTokenExpiresAt * 1000).toLocaleTimeString();
        log.prepend(li);
      }}
      expiry = s.accessTokenExpiresAt;
    }}
    if (s && s.error) document.getElementById('countdown').textContent = s.error;
    const p = await (await fetch('/demo/provider-stats')).json();
    document.getElementById('grants').textContent = p.refreshGrants;
    document.getElementById('reuse').textContent = p.reuseDetections;
  }} catch (e) {{ /* the next tick tries again */ }}
}}
function tick() {{
  if (expiry !== null) document.getElementById('countdown').textContent =
    Math.max(0, Math.round(expiry - Date.now() / 1000));
}}
fetch('/auth/csrf').then(r => r.json()).then(c => document.getElementById('csrf').value = c.csrfToken);
poll(); setInterval(poll, 1000); setInterval(tick, 250);
</script></body></html>"#,
        name = escape(&name),
    ))
}
