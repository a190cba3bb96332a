//! The `oidc-provider` npm package as a peer process (`interop/oidc-provider.mjs`).

use crate::env::{ensure_node_modules, interop_dir};
use crate::login::{Pkce, login_with_dev_interactions, random_token};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use url::Url;

/// A client registered at the peer.
#[derive(Debug, Clone, Serialize)]
pub struct PeerClient {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret` (`None` for public clients with `token_endpoint_auth_method = "none"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Registered redirect URIs (exact match).
    pub redirect_uris: Vec<String>,
    /// `client_secret_basic` (default), `client_secret_post` or `none`.
    pub token_endpoint_auth_method: String,
    /// Registered `post_logout_redirect_uris` for RP-initiated logout.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Where the peer posts Logout Tokens (needs
    /// [`PeerOptions::backchannel_logout`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// Whether Logout Tokens (and ID tokens) carry the session's `sid`;
    /// the peer's default with a `backchannel_logout_uri` is `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_required: Option<bool>,
}

impl PeerClient {
    /// A confidential client using `client_secret_basic` with one redirect URI.
    pub fn confidential(client_id: &str, client_secret: &str, redirect_uri: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: Some(client_secret.to_owned()),
            redirect_uris: vec![redirect_uri.to_owned()],
            token_endpoint_auth_method: "client_secret_basic".to_owned(),
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
            backchannel_logout_session_required: None,
        }
    }
}

/// How to start the peer. `Default` gives strict rotation, 60 s access tokens, no clients.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// Registered clients.
    pub clients: Vec<PeerClient>,
    /// Access-token lifetime (`expires_in`), seconds. Changeable later with
    /// [`OidcProviderPeer::set_access_token_ttl`].
    pub access_token_ttl_secs: u64,
    /// Refresh-token lifetime, seconds.
    pub refresh_token_ttl_secs: u64,
    /// ID-token lifetime, seconds.
    pub id_token_ttl_secs: u64,
    /// Strict rotation: every refresh returns a new refresh token; replaying a consumed one
    /// returns `invalid_grant` and revokes the whole grant. Default `true`.
    pub rotate_refresh_token: bool,
    /// Reuse detection: a replayed (consumed) refresh token revokes the whole grant. Default
    /// `true`. `false` models providers without it: a consumed refresh token is forgotten at once,
    /// so replaying it is `invalid_grant` without revoking the grant, and revoking it (RFC 7009)
    /// is a no-op that leaves the newer refresh token alive.
    pub reuse_detection: bool,
    /// `true`: ID tokens carry only `sub` (email/name via userinfo), as the spec prefers when an
    /// access token is issued. Default `false`: ID tokens also carry `email`, `name`.
    pub conform_id_token_claims: bool,
    /// Enable RP-initiated logout (`/session/end`). Default `true`.
    pub rp_initiated_logout: bool,
    /// Enable OpenID Connect Back-Channel Logout: ending a session at
    /// `/session/end` posts a Logout Token to the clients'
    /// `backchannel_logout_uri`. Default `false`.
    pub backchannel_logout: bool,
    /// Delay every `refresh_token` grant by this many milliseconds (see
    /// [`OidcProviderPeer::set_refresh_delay`]).
    pub delay_refresh_ms: u64,
    /// Listen port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
    /// How long to wait for the peer to listen before panicking.
    pub startup_timeout: Duration,
}

impl Default for PeerOptions {
    fn default() -> Self {
        Self {
            clients: Vec::new(),
            access_token_ttl_secs: 60,
            refresh_token_ttl_secs: 86_400,
            id_token_ttl_secs: 3_600,
            rotate_refresh_token: true,
            reuse_detection: true,
            conform_id_token_claims: false,
            rp_initiated_logout: true,
            backchannel_logout: false,
            delay_refresh_ms: 0,
            port: None,
            startup_timeout: Duration::from_secs(20),
        }
    }
}

/// Counters served by the peer at `GET /__stats`, counted from `oidc-provider`'s events.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct PeerStats {
    /// Successful `authorization_code` grants.
    pub code_grants: u64,
    /// Successful `refresh_token` grants.
    pub refresh_grants: u64,
    /// Successful grants of other types.
    pub other_grants: u64,
    /// Failed `authorization_code` grants by OAuth error code.
    pub code_errors: BTreeMap<String, u64>,
    /// Failed `refresh_token` grants by OAuth error code (e.g. `invalid_grant`).
    pub refresh_errors: BTreeMap<String, u64>,
    /// Failed grants of other (or unknown) types by error code.
    pub other_errors: BTreeMap<String, u64>,
    /// Successful refresh grants per account (`sub`).
    pub refresh_grants_by_account: BTreeMap<String, u64>,
    /// Grants revoked as a whole (refresh-token reuse, revocation of a refresh token, …).
    pub grants_revoked: u64,
    /// Successful calls to the revocation endpoint.
    pub revocations: u64,
    /// Successful calls to the introspection endpoint.
    pub introspections: u64,
    /// Successful userinfo requests.
    pub userinfo_requests: u64,
    /// Logout Tokens the peer delivered (answered 200) to a client.
    pub backchannel_logouts: u64,
    /// Logout Tokens a client refused or that could not be delivered.
    pub backchannel_errors: u64,
    /// Sessions ended at `/session/end` (RP-initiated or not).
    pub end_sessions: u64,
    /// Refresh grants being processed right now.
    pub refresh_in_flight: u64,
    /// Most refresh grants processed at once since start or reset.
    pub max_refresh_in_flight: u64,
    /// The current injected refresh delay.
    pub delay_refresh_ms: u64,
}

impl PeerStats {
    /// Failed refresh grants with this OAuth error code.
    pub fn refresh_errors(&self, code: &str) -> u64 {
        self.refresh_errors.get(code).copied().unwrap_or(0)
    }
}

/// A successful token-endpoint response.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// `access_token`.
    pub access_token: String,
    /// `refresh_token`, when issued (needs `offline_access`, hence `prompt=consent`).
    pub refresh_token: Option<String>,
    /// `id_token`, when `openid` was granted.
    pub id_token: Option<String>,
    /// `expires_in`, seconds.
    pub expires_in: Option<u64>,
    /// `token_type` (`Bearer`).
    pub token_type: String,
    /// Granted `scope`.
    pub scope: Option<String>,
}

/// An error response from one of the peer's endpoints: HTTP status and JSON body.
#[derive(Debug, Clone)]
pub struct PeerError {
    /// HTTP status.
    pub status: StatusCode,
    /// Response body (`{"error": …, "error_description": …}` for OAuth errors).
    pub body: serde_json::Value,
}

impl PeerError {
    /// The OAuth `error` code, if any.
    pub fn error(&self) -> Option<&str> {
        self.body.get("error").and_then(|e| e.as_str())
    }
}

/// A running `oidc-provider` (npm, 9.x) on 127.0.0.1, started from `interop/oidc-provider.mjs`.
///
/// Strict refresh-token rotation, PKCE S256 required, dev interactions (see
/// [`login_with_dev_interactions`]), revocation, introspection (also of refresh tokens),
/// userinfo with `email`/`profile` claims (`sub` = login, `email` = `<login>@example.test`).
/// The process is killed on drop, and also exits by itself when its stdin closes.
/// Start one per test (about 0.5 s); it belongs to the Tokio runtime that started it.
pub struct OidcProviderPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
    issuer: Url,
    clients: Vec<PeerClient>,
    http: Client,
    log: Arc<Mutex<String>>,
}

fn drain<R: AsyncRead + Unpin + Send + 'static>(reader: R, log: Arc<Mutex<String>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl OidcProviderPeer {
    /// Starts the peer and waits until it listens. Panics (with the peer's stderr) when
    /// `interop/node_modules` is missing, `node` cannot start, or the startup times out.
    pub async fn start(options: PeerOptions) -> Self {
        ensure_node_modules();
        let config = serde_json::json!({
            "port": options.port.unwrap_or(0),
            "clients": options.clients,
            "accessTokenTtl": options.access_token_ttl_secs,
            "refreshTokenTtl": options.refresh_token_ttl_secs,
            "idTokenTtl": options.id_token_ttl_secs,
            "rotateRefreshToken": options.rotate_refresh_token,
            "reuseDetection": options.reuse_detection,
            "conformIdTokenClaims": options.conform_id_token_claims,
            "rpInitiatedLogout": options.rp_initiated_logout,
            "backchannelLogout": options.backchannel_logout,
            "delayRefreshMs": options.delay_refresh_ms,
        });
        let mut child = Command::new("node")
            .arg("oidc-provider.mjs")
            .arg(config.to_string())
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `node interop/oidc-provider.mjs`: {e}"));
        let pid = child.id().expect("the peer has a pid");
        let stdin = child.stdin.take();
        let log = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().expect("piped stderr"), log.clone());
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();

        let announced = tokio::time::timeout(options.startup_timeout, async {
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(issuer) = v.get("issuer").and_then(|i| i.as_str())
                {
                    return Some(issuer.to_owned());
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
            None
        })
        .await;

        let issuer = match announced {
            Ok(Some(issuer)) => issuer,
            other => {
                let why = match other {
                    Err(_) => format!("did not listen within {:?}", options.startup_timeout),
                    _ => format!("exited early ({:?})", child.try_wait()),
                };
                let _ = child.start_kill();
                // Give the stderr reader a moment to collect the last words.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "oidc-provider peer {why}; its output:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        drain(stdout.into_inner(), log.clone());

        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("build the peer HTTP client");
        Self {
            child,
            stdin,
            pid,
            issuer: Url::parse(&issuer).expect("the peer announces a valid issuer URL"),
            clients: options.clients,
            http,
            log,
        }
    }

    /// The issuer, `http://127.0.0.1:PORT` (discovery at `/.well-known/openid-configuration`).
    pub fn issuer(&self) -> Url {
        self.issuer.clone()
    }

    /// The peer's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What the peer wrote to stderr (and stray stdout lines) so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> Url {
        self.issuer.join(path).expect("valid peer path")
    }

    /// The authorization endpoint (`/auth`).
    pub fn authorization_endpoint(&self) -> Url {
        self.url("/auth")
    }

    /// The token endpoint (`/token`).
    pub fn token_endpoint(&self) -> Url {
        self.url("/token")
    }

    /// The introspection endpoint (`/token/introspection`).
    pub fn introspection_endpoint(&self) -> Url {
        self.url("/token/introspection")
    }

    /// The revocation endpoint (`/token/revocation`).
    pub fn revocation_endpoint(&self) -> Url {
        self.url("/token/revocation")
    }

    /// The userinfo endpoint (`/me`).
    pub fn userinfo_endpoint(&self) -> Url {
        self.url("/me")
    }

    /// The registered client with this id (panics when unknown).
    pub fn client(&self, client_id: &str) -> &PeerClient {
        self.clients
            .iter()
            .find(|c| c.client_id == client_id)
            .unwrap_or_else(|| panic!("no client {client_id:?} registered at the peer"))
    }

    /// Current counters (`GET /__stats`).
    pub async fn stats(&self) -> PeerStats {
        self.get_json("/__stats").await
    }

    /// Zeroes the counters (`POST /__stats/reset`).
    pub async fn reset_stats(&self) {
        self.post_json("/__stats/reset", serde_json::json!({}))
            .await;
    }

    /// Delays every following `refresh_token` grant by `ms` milliseconds before it is processed
    /// (0 turns the delay off).
    pub async fn set_refresh_delay(&self, ms: u64) {
        self.post_json("/__config", serde_json::json!({ "delayRefreshMs": ms }))
            .await;
    }

    /// Sets the lifetime of access tokens issued from now on.
    pub async fn set_access_token_ttl(&self, secs: u64) {
        self.post_json("/__config", serde_json::json!({ "accessTokenTtl": secs }))
            .await;
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} at the peer: {e}"));
        assert!(response.status().is_success(), "GET {path}: {response:?}");
        response.json().await.expect("JSON from the peer")
    }

    async fn post_json(&self, path: &str, body: serde_json::Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path} at the peer: {e}"));
        assert!(response.status().is_success(), "POST {path}: {response:?}");
    }

    /// Adds the client's authentication (basic, post or none) to a form request.
    fn authenticated(
        &self,
        request: RequestBuilder,
        client_id: &str,
        mut form: Vec<(&'static str, String)>,
    ) -> RequestBuilder {
        let client = self.client(client_id);
        let secret = client.client_secret.clone().unwrap_or_default();
        match client.token_endpoint_auth_method.as_str() {
            "client_secret_basic" => {
                return request
                    .basic_auth(form_encode(client_id), Some(form_encode(&secret)))
                    .form(&form);
            }
            "client_secret_post" => {
                form.push(("client_id", client_id.to_owned()));
                form.push(("client_secret", secret));
            }
            _ => form.push(("client_id", client_id.to_owned())),
        }
        request.form(&form)
    }

    async fn token_request(
        &self,
        client_id: &str,
        form: Vec<(&'static str, String)>,
    ) -> Result<TokenResponse, PeerError> {
        let request = self.authenticated(self.http.post(self.token_endpoint()), client_id, form);
        let response = request.send().await.expect("token request to the peer");
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("JSON from the token endpoint");
        if status.is_success() {
            Ok(serde_json::from_value(body).expect("a token response"))
        } else {
            Err(PeerError { status, body })
        }
    }

    /// An authorization URL for `client_id` with PKCE S256, `prompt=consent` (needed for
    /// `offline_access`), `response_type=code` and the client's first redirect URI.
    pub fn authorization_url(
        &self,
        client_id: &str,
        scope: &str,
        state: &str,
        nonce: &str,
        pkce: &Pkce,
    ) -> Url {
        let client = self.client(client_id);
        let mut url = self.authorization_endpoint();
        url.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &client.redirect_uris[0])
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("prompt", "consent")
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        url
    }

    /// Exchanges an authorization code (redeemed with the client's first redirect URI).
    pub async fn exchange_code(
        &self,
        client_id: &str,
        code: &str,
        code_verifier: &str,
    ) -> Result<TokenResponse, PeerError> {
        let redirect_uri = self.client(client_id).redirect_uris[0].clone();
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier.to_owned()),
        ];
        self.token_request(client_id, form).await
    }

    /// Signs `login` in directly (authorization URL → dev interactions → code exchange), with
    /// scope `openid email profile offline_access`: a fresh grant with a refresh token, e.g. to
    /// seed many accounts without going through the gateway.
    pub async fn obtain_tokens(&self, client_id: &str, login: &str) -> TokenResponse {
        let pkce = Pkce::new();
        let state = random_token(16);
        let url = self.authorization_url(
            client_id,
            "openid email profile offline_access",
            &state,
            &random_token(16),
            &pkce,
        );
        let callback = login_with_dev_interactions(&url, login).await;
        let params: BTreeMap<String, String> = callback.query_pairs().into_owned().collect();
        assert_eq!(params.get("state"), Some(&state), "callback {callback}");
        let code = params
            .get("code")
            .unwrap_or_else(|| panic!("no code in the callback {callback}"));
        self.exchange_code(client_id, code, &pkce.verifier)
            .await
            .unwrap_or_else(|e| panic!("code exchange failed: {e:?}"))
    }

    /// A `refresh_token` grant.
    pub async fn refresh(
        &self,
        client_id: &str,
        refresh_token: &str,
    ) -> Result<TokenResponse, PeerError> {
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.to_owned()),
        ];
        self.token_request(client_id, form).await
    }

    /// Introspects any token (access or refresh) as `client_id`; the JSON response.
    pub async fn introspect(&self, client_id: &str, token: &str) -> serde_json::Value {
        let request = self.authenticated(
            self.http.post(self.introspection_endpoint()),
            client_id,
            vec![("token", token.to_owned())],
        );
        let response = request.send().await.expect("introspection request");
        assert!(
            response.status().is_success(),
            "introspection: {response:?}"
        );
        response.json().await.expect("introspection JSON")
    }

    /// Whether the provider still considers `token` active.
    pub async fn is_active(&self, client_id: &str, token: &str) -> bool {
        self.introspect(client_id, token).await["active"] == serde_json::Value::Bool(true)
    }

    /// Revokes a token (RFC 7009) as `client_id`; the HTTP status.
    pub async fn revoke(&self, client_id: &str, token: &str, hint: Option<&str>) -> StatusCode {
        let mut form = vec![("token", token.to_owned())];
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint.to_owned()));
        }
        let request =
            self.authenticated(self.http.post(self.revocation_endpoint()), client_id, form);
        request.send().await.expect("revocation request").status()
    }

    /// Userinfo for an access token: the JSON claims, or the error.
    pub async fn userinfo(&self, access_token: &str) -> Result<serde_json::Value, PeerError> {
        let response = self
            .http
            .get(self.userinfo_endpoint())
            .bearer_auth(access_token)
            .send()
            .await
            .expect("userinfo request");
        let status = response.status();
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            Err(PeerError { status, body })
        }
    }

    /// Stops the peer gracefully (closes its stdin, waits up to 5 s, then kills it).
    pub async fn stop(mut self) {
        self.stdin.take();
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

impl Drop for OidcProviderPeer {
    fn drop(&mut self) {
        self.stdin.take();
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = self.child.start_kill();
        // Reap it now so that the process is gone when `drop` returns.
        for _ in 0..200 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
