//! End-to-end test support: a gateway on an ephemeral port built from a TOML
//! configuration through the same `App::build` the binary uses, and a tiny
//! browser (no redirects followed, a cookie jar).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use authgate::app::{App, Listeners, Migrations};
use authgate_config::Config;
use authgate_store::Store;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, Response};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use url::Url;

pub mod nextjs;

/// A running gateway.
pub struct Gateway {
    pub url: Url,
    /// The `server.metrics_listen` listener's URL, when the config sets it.
    pub metrics_url: Option<Url>,
    pub store: Arc<dyn Store>,
    pub db_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A listener bound now, so the public URL is known before the provider
/// registers the redirect URI.
pub struct Reserved {
    pub listener: TcpListener,
    pub url: Url,
}

pub async fn reserve() -> Reserved {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    Reserved {
        listener,
        url: Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
    }
}

/// The canonical configuration with this test's addresses.
pub fn config_toml(
    public: &Url,
    issuer: &str,
    store_url: &str,
    extra_session: &str,
    refresh_mode: &str,
) -> String {
    let public = public.as_str().trim_end_matches('/');
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{public}"
upstream = "http://127.0.0.1:9"

[session]
secret = ["test-secret-at-least-32-chars-long!!"]
max_age = "30d"
{extra_session}

[refresh]
mode = "{refresh_mode}"
skew = "2s"
# Generous, as in production: a refresh call cut short by its timeout may
# have consumed the refresh token at the provider (see README, Refresh), and
# a loaded 2-core CI machine makes oidc-provider slow in storms.
timeout = "30s"

[store]
url = "{store_url}"

[cache]
url = "memory://"

[[providers]]
id = "op"
name = "Local OP"
issuer = "{issuer}"
client_id = "test"
client_secret = "test-secret"
scopes = ["openid", "email", "profile", "offline_access"]
authorization_params = {{ prompt = "consent" }}

[[routes]]
path = "/api/**"
access = "api"

[[routes]]
path = "/protected/**"
access = "protected"

[[routes]]
path = "/**"
access = "public"
"#
    )
}

/// Starts a gateway on `reserved` with `toml` (its `store.url` may use
/// `{db}` for a fresh SQLite file).
pub async fn start(reserved: Reserved, toml: &str) -> Gateway {
    let db_dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", db_dir.path().join("authgate.db").display());
    let toml = toml.replace("{db}", &db);
    let config = Config::from_sources(Some(("test.toml", &toml)), std::iter::empty()).unwrap();
    let app = App::build(&config, Migrations::Apply).await.unwrap();
    let store = Arc::clone(app.store());
    let metrics = match config.server.metrics_listen {
        Some(_) => Some(TcpListener::bind("127.0.0.1:0").await.unwrap()),
        None => None,
    };
    let metrics_url = metrics
        .as_ref()
        .map(|l| Url::parse(&format!("http://{}", l.local_addr().unwrap())).unwrap());
    let (tx, rx) = oneshot::channel();
    let listeners = Listeners {
        main: reserved.listener,
        metrics,
    };
    let task = tokio::spawn(async move {
        let _ = app
            .serve(listeners, async {
                let _ = rx.await;
            })
            .await;
    });
    Gateway {
        url: reserved.url,
        metrics_url,
        store,
        db_dir,
        stop: Some(tx),
        task: Some(task),
    }
}

/// A browser: follows no redirects, keeps cookies.
pub struct Browser {
    pub client: Client,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new() -> Self {
        Self {
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
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

    pub async fn get(&mut self, url: &str) -> Response {
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

    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Response {
        let r = self
            .client
            .post(url)
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.absorb(&r);
        r
    }

    pub async fn csrf(&mut self, gw: &Url) -> String {
        let r = self.get(gw.join("/auth/csrf").unwrap().as_str()).await;
        let v: serde_json::Value = r.json().await.unwrap();
        v["csrfToken"].as_str().unwrap().to_owned()
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

/// Signs in at the oidc-provider peer through the gateway and returns the
/// browser, now holding the session cookie, and the final redirect target.
pub async fn sign_in_with_peer(gw: &Url, login: &str, callback_url: &str) -> (Browser, String) {
    let mut b = Browser::new();
    let start = format!(
        "{}auth/signin/op?callbackUrl={}",
        gw,
        urlencode(callback_url)
    );
    let r = b.get(&start).await;
    assert_eq!(r.status(), 302, "signin start");
    let authorize = Url::parse(&location(&r)).unwrap();
    let callback = authgate_testkit::login_with_dev_interactions(&authorize, login).await;
    let r = b.get(callback.as_str()).await;
    assert_eq!(
        r.status(),
        302,
        "callback: {}",
        r.text().await.unwrap_or_default()
    );
    let target = location(&r);
    (b, target)
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A small upstream application: answers every request with JSON of the path
/// it saw and the headers it received.
pub async fn echo_upstream() -> (Url, tokio::task::JoinHandle<()>) {
    use axum::extract::Request;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let app = axum::Router::new().fallback(|req: Request| async move {
        let headers: BTreeMap<String, Vec<String>> =
            req.headers().iter().fold(BTreeMap::new(), |mut m, (k, v)| {
                m.entry(k.as_str().to_owned())
                    .or_default()
                    .push(v.to_str().unwrap_or("").to_owned());
                m
            });
        axum::Json(serde_json::json!({
            "path": req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/"),
            "headers": headers,
        }))
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

/// Runs one batch through `interop/jwt-batch.mjs` (the real `@auth/core`
/// and `next-auth/jwt`): a JSON array of requests in, an array of results out.
pub async fn authjs_batch(requests: serde_json::Value) -> Vec<serde_json::Value> {
    use tokio::io::AsyncWriteExt;
    authgate_testkit::ensure_node_modules();
    let dir = authgate_testkit::interop_dir();
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("jwt-batch.mjs"))
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(requests.to_string().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A gateway in front of [`echo_upstream`], signing in at its own
/// `oidc-provider` peer (client `test`), built from the canonical-style
/// configuration with the given access-token lifetime, skew, refresh mode and
/// extra `[session]` lines.
pub struct Stack {
    pub gw: Gateway,
    pub peer: authgate_testkit::OidcProviderPeer,
    _upstream: tokio::task::JoinHandle<()>,
}

impl Stack {
    pub async fn start(access_ttl: u64, skew: &str, mode: &str, session_extra: &str) -> Stack {
        use authgate_testkit::{OidcProviderPeer, PeerClient, PeerOptions};
        let reserved = reserve().await;
        let redirect = format!("{}auth/callback/op", reserved.url);
        let peer = OidcProviderPeer::start(PeerOptions {
            clients: vec![PeerClient::confidential("test", "test-secret", &redirect)],
            access_token_ttl_secs: access_ttl,
            ..Default::default()
        })
        .await;
        let (upstream, task) = echo_upstream().await;
        let toml = config_toml(
            &reserved.url,
            peer.issuer().as_str().trim_end_matches('/'),
            "{db}",
            session_extra,
            mode,
        )
        .replace(
            "http://127.0.0.1:9",
            upstream.as_str().trim_end_matches('/'),
        )
        .replace("skew = \"2s\"", &format!("skew = \"{skew}\""));
        Stack {
            gw: start(reserved, &toml).await,
            peer,
            _upstream: task,
        }
    }

    /// The gateway's origin without a trailing slash.
    pub fn base(&self) -> String {
        self.gw.url.as_str().trim_end_matches('/').to_owned()
    }
}
