//! Google Workspace groups read with a service account, end to end: the gateway (its
//! TOML configuration, `google_groups`), the development provider playing Google's sign-in,
//! and a stand-in for Google's token endpoint and Admin SDK Directory API speaking Google's
//! documented JSON. The stand-in checks the RFC 7523 assertion's RS256 signature against
//! the service account's public key (generated here), and its `iss`, `sub`, `aud`, `scope`
//! and lifetime; it lists groups two per page.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_devidp::{DevClient, DevIdp, DevIdpConfig};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

const CLIENT_EMAIL: &str = "authgate@test-project.iam.gserviceaccount.com";
const ADMIN: &str = "admin@corp.example";
const SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.group.readonly";

/// Google's token endpoint and Directory API, as far as the gateway uses them.
struct Google {
    url: Url,
    public_key: Vec<u8>,
    /// The service account's JSON key file (what Google issues).
    key_file: String,
    token_requests: AtomicUsize,
    /// No domain-wide delegation: the token endpoint refuses with 403.
    refuse_delegation: AtomicBool,
    /// The Directory API is down (503).
    directory_down: AtomicBool,
    /// Each user's groups (addresses).
    groups: Mutex<HashMap<String, Vec<String>>>,
}

async fn token(
    State(g): State<Arc<Google>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    g.token_requests.fetch_add(1, Ordering::SeqCst);
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[g.url.join("token").unwrap().as_str()]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    let key = jsonwebtoken::DecodingKey::from_rsa_der(&g.public_key);
    let claims = match jsonwebtoken::decode::<Value>(
        form.get("assertion")
            .map(String::as_str)
            .unwrap_or_default(),
        &key,
        &validation,
    ) {
        Ok(data) => data.claims,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_grant", "error_description": e.to_string()})),
            )
                .into_response();
        }
    };
    let lifetime = claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0);
    if claims["sub"] != ADMIN || claims["scope"] != SCOPE || !(1..=3600).contains(&lifetime) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    if g.refuse_delegation.load(Ordering::SeqCst) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({
                "error": "unauthorized_client",
                "error_description": "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."
            })),
        )
            .into_response();
    }
    Json(json!({"access_token": "ya29.stand-in", "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

async fn groups(
    State(g): State<Arc<Google>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer ya29.stand-in") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": 401}})),
        )
            .into_response();
    }
    if g.directory_down.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": {"code": 503}})),
        )
            .into_response();
    }
    let user = query.get("userKey").cloned().unwrap_or_default();
    let all = g
        .groups
        .lock()
        .unwrap()
        .get(&user)
        .cloned()
        .unwrap_or_default();
    let start: usize = query
        .get("pageToken")
        .map(|t| t.parse().unwrap())
        .unwrap_or(0);
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(2)
        .map(|email| json!({"kind": "admin#directory#group", "email": email, "name": email}))
        .collect();
    let mut body = json!({"kind": "admin#directory#groups", "etag": "\"e\""});
    if !page.is_empty() {
        body["groups"] = json!(page);
    }
    if start + 2 < all.len() {
        body["nextPageToken"] = json!((start + 2).to_string());
    }
    Json(body).into_response()
}

impl Google {
    async fn start() -> Arc<Google> {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let key_file = json!({
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": "0123456789abcdef",
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": url.join("token").unwrap().as_str(),
        })
        .to_string();
        let public_key = pair.public_key().as_ref().to_vec();
        let g = Arc::new(Google {
            url,
            public_key,
            key_file,
            token_requests: AtomicUsize::new(0),
            refuse_delegation: AtomicBool::new(false),
            directory_down: AtomicBool::new(false),
            groups: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/token", post(token))
            .route("/admin/directory/v1/groups", get(groups))
            .with_state(Arc::clone(&g));
        // Ends with the test's runtime.
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        g
    }

    fn set_groups(&self, user: &str, groups: &[&str]) {
        self.groups.lock().unwrap().insert(
            user.to_owned(),
            groups.iter().map(|s| (*s).to_owned()).collect(),
        );
    }
}

struct Stack {
    gw: Gateway,
    google: Arc<Google>,
    idp: DevIdp,
    _keys: tempfile::TempDir,
    _upstream: tokio::task::JoinHandle<()>,
}

impl Stack {
    async fn start(access_ttl: Duration) -> Stack {
        let google = Google::start().await;
        let mut config = DevIdpConfig::default()
            .with_client(DevClient::new("test", "test-secret").allow_any_loopback_redirect());
        config.access_token_ttl = access_ttl;
        config.google_offline_access = true;
        let idp = DevIdp::bind("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let keys = tempfile::tempdir().unwrap();
        let key_path = keys.path().join("service-account.json");
        std::fs::write(&key_path, &google.key_file).unwrap();
        let (upstream, task) = echo_upstream().await;
        let reserved = reserve().await;
        let toml = format!(
            r#"
[server]
public_url = "{public}"
upstream = "{upstream}"
[session]
secret = ["test-secret-at-least-32-chars-long!!"]
[refresh]
skew = "10s"
[store]
url = "{{db}}"
[[providers]]
id = "google"
preset = "google"
issuer = "{issuer}"
client_id = "test"
client_secret = "test-secret"
google_groups = {{ service_account_file = "{key}", admin_email = "{ADMIN}", directory_url = "{directory}" }}
[[routes]]
path = "/staff/**"
access = "protected"
allow_groups = ["staff@corp.example"]
[[routes]]
path = "/**"
access = "public"
"#,
            public = reserved.url.as_str().trim_end_matches('/'),
            upstream = upstream.as_str().trim_end_matches('/'),
            issuer = idp.issuer_str(),
            key = key_path.display(),
            directory = google.url.as_str().trim_end_matches('/'),
        );
        Stack {
            gw: start(reserved, &toml).await,
            google,
            idp,
            _keys: keys,
            _upstream: task,
        }
    }

    fn url(&self, path: &str) -> String {
        self.gw.url.join(path).unwrap().to_string()
    }

    /// Signs `name` (address `name@corp.example`) in: the browser and the callback's
    /// status and `Location` or error code.
    async fn sign_in(&self, name: &str) -> (Browser, u16, String) {
        let mut b = Browser::new();
        let r = b
            .get(&self.url("/auth/signin/google?callbackUrl=/home"))
            .await;
        assert_eq!(r.status(), 302, "sign-in start");
        let email = format!("{name}@corp.example");
        let fields = [
            ("username", name),
            ("email", email.as_str()),
            ("hd", "corp.example"),
        ];
        let callback =
            authgate_testkit::login_with_dev_provider_fields(&location(&r), &fields).await;
        let r = b
            .client
            .get(&callback)
            .header(reqwest::header::COOKIE, b.cookie_header())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .unwrap();
        b.absorb(&r);
        let status = r.status().as_u16();
        let outcome = if status == 302 {
            location(&r)
        } else {
            let body: Value = r.json().await.unwrap_or_default();
            body["error"].as_str().unwrap_or_default().to_owned()
        };
        (b, status, outcome)
    }

    async fn signed_in(&self, name: &str) -> Browser {
        let (b, status, outcome) = self.sign_in(name).await;
        assert_eq!((status, outcome.as_str()), (302, "/home"), "{name}");
        b
    }

    async fn status(&self, b: &mut Browser, path: &str) -> u16 {
        b.get(&self.url(path)).await.status().as_u16()
    }

    async fn groups_header(&self, b: &mut Browser) -> Value {
        let seen: Value = b.get(&self.url("/page")).await.json().await.unwrap();
        seen["headers"]["x-auth-request-groups"].clone()
    }
}

#[tokio::test]
async fn workspace_groups_admit_a_member_refuse_a_non_member_across_pages_with_one_token() {
    let s = Stack::start(Duration::from_secs(3600)).await;
    // Five groups: `staff@` is on the third page.
    s.google.set_groups(
        "ann@corp.example",
        &[
            "all@corp.example",
            "eng@corp.example",
            "oncall@corp.example",
            "berlin@corp.example",
            "Staff@corp.example",
        ],
    );
    s.google
        .set_groups("bob@corp.example", &["all@corp.example"]);
    let mut ann = s.signed_in("ann").await;
    assert_eq!(s.status(&mut ann, "/staff/wiki").await, 200);
    assert_eq!(
        s.groups_header(&mut ann).await,
        json!([
            "corp.example,all@corp.example,eng@corp.example,oncall@corp.example,berlin@corp.example,staff@corp.example"
        ])
    );
    let mut bob = s.signed_in("bob").await;
    assert_eq!(s.status(&mut bob, "/staff/wiki").await, 403);
    assert_eq!(
        s.google.token_requests.load(Ordering::SeqCst),
        1,
        "the access token is cached across sign-ins"
    );
}

#[tokio::test]
async fn without_domain_wide_delegation_the_sign_in_continues_without_workspace_groups() {
    let s = Stack::start(Duration::from_secs(3600)).await;
    s.google
        .set_groups("ann@corp.example", &["staff@corp.example"]);
    s.google.refuse_delegation.store(true, Ordering::SeqCst);
    let mut ann = s.signed_in("ann").await;
    assert_eq!(s.status(&mut ann, "/staff/wiki").await, 403);
    assert_eq!(s.groups_header(&mut ann).await, json!(["corp.example"]));
}

#[tokio::test]
async fn a_directory_outage_refuses_the_sign_in_as_provider_unavailable() {
    let s = Stack::start(Duration::from_secs(3600)).await;
    s.google.directory_down.store(true, Ordering::SeqCst);
    let (_, status, outcome) = s.sign_in("ann").await;
    assert_eq!((status, outcome.as_str()), (503, "ProviderUnavailable"));
}

#[tokio::test]
async fn a_refresh_rereads_workspace_groups_and_keeps_them_when_the_directory_fails() {
    // Access tokens live 1 s and the skew is 10 s: every request refreshes.
    let s = Stack::start(Duration::from_secs(1)).await;
    s.google
        .set_groups("ann@corp.example", &["staff@corp.example"]);
    let mut ann = s.signed_in("ann").await;
    assert_eq!(s.status(&mut ann, "/staff/wiki").await, 200);
    // The directory is down at the next refresh: the groups stay.
    s.google.directory_down.store(true, Ordering::SeqCst);
    assert_eq!(s.status(&mut ann, "/staff/wiki").await, 200);
    // Back up, and ann has left the group: the refresh takes it away.
    s.google.directory_down.store(false, Ordering::SeqCst);
    s.google.set_groups("ann@corp.example", &[]);
    assert_eq!(s.status(&mut ann, "/staff/wiki").await, 403);
    let _ = &s.idp;
}

#[test]
fn google_groups_configuration_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_key = dir.path().join("not-a-key.json");
    std::fs::write(&not_a_key, r#"{"type":"authorized_user","client_id":"x"}"#).unwrap();
    let no_email = dir.path().join("no-email.json");
    std::fs::write(
        &no_email,
        r#"{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\nsecret-bits\n-----END PRIVATE KEY-----\n","token_uri":"https://oauth2.googleapis.com/token"}"#,
    )
    .unwrap();
    let config = |preset: &str, file: &std::path::Path| {
        format!(
            r#"
[server]
public_url = "http://127.0.0.1:1"
[session]
secret = ["test-secret-at-least-32-chars-long!!"]
[store]
url = "sqlite::memory:"
[[providers]]
id = "p"
preset = "{preset}"
client_id = "test"
client_secret = "test-secret"
google_groups = {{ service_account_file = "{file}", admin_email = "{ADMIN}" }}
"#,
            file = file.display()
        )
    };
    let error = |toml: String| {
        authgate_config::Config::from_sources(Some(("test.toml", &toml)), std::iter::empty())
            .map(|_| ())
            .expect_err("refused")
            .to_string()
    };
    let missing = error(config("google", &dir.path().join("absent.json")));
    assert!(
        missing.contains("google_groups.service_account_file"),
        "{missing}"
    );
    assert!(missing.contains("absent.json"), "{missing}");
    let wrong = error(config("google", &not_a_key));
    assert!(wrong.contains("not a service account key"), "{wrong}");
    let field = error(config("google", &no_email));
    assert!(field.contains("no client_email"), "{field}");
    assert!(
        !field.contains("secret-bits"),
        "the key never appears: {field}"
    );
    let github = error(config("github", &no_email));
    assert!(
        github.contains("applies only to the google preset"),
        "{github}"
    );
}
