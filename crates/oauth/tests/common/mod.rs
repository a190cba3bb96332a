//! Local fakes for the integration tests: a scriptable OAuth/OIDC provider
//! on `127.0.0.1:0`, raw TCP misbehaviour, and in-test signing keys.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use authgate_oauth::{HttpClient, HttpSettings, Provider, ProviderSettings};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Response};
use axum::routing::{get, post};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

/// A spawned server; aborted when dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    pub fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{}", self.addr, path)).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(router: Router) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Server { addr, task }
}

/// A canned answer.
#[derive(Clone, Debug)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Scripted {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }
    pub fn raw(status: u16, content_type: &str, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub route: &'static str,
    pub headers: HeaderMap,
    pub body: String,
}

impl Recorded {
    pub fn form(&self) -> HashMap<String, String> {
        serde_urlencoded::from_str(&self.body).unwrap()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

#[derive(Default)]
pub struct FakeState {
    pub scripts: Mutex<HashMap<&'static str, Scripted>>,
    pub requests: Mutex<Vec<Recorded>>,
    pub jwks: Mutex<Value>,
    pub jwks_hits: AtomicUsize,
    pub issuer: Mutex<String>,
    pub base: Mutex<String>,
}

/// A fake provider: discovery, JWKS, token, revocation, userinfo, and a
/// `/elsewhere` target for redirect tests.
pub struct FakeProvider {
    pub server: Server,
    pub state: Arc<FakeState>,
}

async fn respond(
    state: Arc<FakeState>,
    route: &'static str,
    headers: HeaderMap,
    body: String,
) -> Response<Body> {
    state.requests.lock().unwrap().push(Recorded {
        route,
        headers,
        body,
    });
    let script = state.scripts.lock().unwrap().get(route).cloned();
    let script = script.unwrap_or_else(|| Scripted::json(404, json!({"error": "not_scripted"})));
    if !script.delay.is_zero() {
        tokio::time::sleep(script.delay).await;
    }
    let mut response = Response::builder().status(script.status);
    for (k, v) in &script.headers {
        response = response.header(k, v);
    }
    response.body(Body::from(script.body)).unwrap()
}

impl FakeProvider {
    pub async fn start() -> FakeProvider {
        let state = Arc::new(FakeState::default());
        *state.jwks.lock().unwrap() = json!({"keys": []});
        let s = state.clone();
        let discovery = move || {
            let s = s.clone();
            async move {
                let base = s.base.lock().unwrap().clone();
                let issuer = s.issuer.lock().unwrap().clone();
                axum::Json(json!({
                    "issuer": issuer,
                    "authorization_endpoint": format!("{base}/authorize"),
                    "token_endpoint": format!("{base}/token"),
                    "userinfo_endpoint": format!("{base}/userinfo"),
                    "jwks_uri": format!("{base}/jwks"),
                    "revocation_endpoint": format!("{base}/revoke"),
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["ES256", "RS256", "EdDSA"],
                    "code_challenge_methods_supported": ["S256"],
                    "authorization_response_iss_parameter_supported": true,
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                }))
            }
        };
        let s = state.clone();
        let jwks = move || {
            let s = s.clone();
            async move {
                s.jwks_hits.fetch_add(1, Ordering::SeqCst);
                axum::Json(s.jwks.lock().unwrap().clone())
            }
        };
        let route = |name: &'static str| {
            let s = state.clone();
            move |headers: HeaderMap, body: String| respond(s.clone(), name, headers, body)
        };
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery.clone()))
            // Tenant issuer paths (Microsoft's `common`, or one tenant id).
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/jwks", get(jwks))
            .route("/token", post(route("token")))
            .route("/revoke", post(route("revoke")))
            .route("/userinfo", get(route("userinfo")))
            .route("/userinfo/emails", get(route("emails")))
            .route(
                "/elsewhere",
                post(route("elsewhere")).get(route("elsewhere")),
            );
        let server = serve(router).await;
        let base = format!("http://{}", server.addr);
        *state.base.lock().unwrap() = base.clone();
        *state.issuer.lock().unwrap() = base;
        FakeProvider { server, state }
    }

    pub fn base(&self) -> String {
        self.state.base.lock().unwrap().clone()
    }
    pub fn issuer(&self) -> Url {
        Url::parse(&self.base()).unwrap()
    }
    pub fn url(&self, path: &str) -> Url {
        self.server.url(path)
    }
    pub fn script(&self, route: &'static str, s: Scripted) {
        self.state.scripts.lock().unwrap().insert(route, s);
    }
    pub fn set_jwks(&self, keys: &[&TestKey]) {
        *self.state.jwks.lock().unwrap() =
            json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
    }
    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }
    pub fn requests(&self, route: &str) -> Vec<Recorded> {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.route == route)
            .cloned()
            .collect()
    }
    pub fn last(&self, route: &str) -> Recorded {
        self.requests(route).pop().expect("no request recorded")
    }

    /// Settings for a plain OAuth 2.0 provider pointing at this fake.
    pub fn oauth2_settings(&self, id: &str) -> ProviderSettings {
        let mut s = ProviderSettings::new(id, "client", "s3cret/+=");
        s.endpoints.authorization = Some(self.url("/authorize"));
        s.endpoints.token = Some(self.url("/token"));
        s.endpoints.revocation = Some(self.url("/revoke"));
        s.endpoints.userinfo = Some(self.url("/userinfo"));
        s
    }

    /// Settings for an OIDC provider discovered at this fake.
    pub fn oidc_settings(&self, id: &str) -> ProviderSettings {
        let mut s = ProviderSettings::new(id, "client", "s3cret");
        s.issuer = Some(self.issuer());
        s
    }
}

pub fn http() -> HttpClient {
    HttpClient::new(&HttpSettings {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        ..HttpSettings::default()
    })
    .unwrap()
}

pub async fn resolve(settings: ProviderSettings) -> Provider {
    Provider::resolve(settings, &http()).await.unwrap()
}

/// A server that accepts a connection, reads the request, then writes the
/// start of a response promising more body than it sends, and hangs up.
pub async fn resetting_server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"access_")
                .await;
            let _ = sock.flush().await;
            drop(sock);
        }
    });
    Server { addr, task }
}

/// An address nobody listens on.
pub async fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A signing key generated in-test, with its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
}

impl TestKey {
    pub fn es256(kid: &str) -> TestKey {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let der = kp.to_pkcs8v1().unwrap();
        TestKey {
            kid: kid.into(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(der.as_ref()),
        }
    }

    pub fn ed25519(kid: &str) -> TestKey {
        use aws_lc_rs::signature::Ed25519KeyPair;
        let der = Ed25519KeyPair::generate().unwrap().to_pkcs8v1().unwrap();
        TestKey {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(der.as_ref()),
        }
    }

    pub fn rs256(kid: &str) -> TestKey {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rsa::{KeyPair, KeySize};
        let kp = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = kp.as_der().unwrap();
        let pkcs8 = pkcs8.as_ref();
        // PKCS#8 wraps the PKCS#1 RSAPrivateKey in an OCTET STRING after a
        // fixed 22-byte prefix: 04 82 <len> <pkcs1>.
        assert_eq!(&pkcs8[22..24], &[0x04, 0x82]);
        TestKey {
            kid: kid.into(),
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(&pkcs8[26..]),
        }
    }

    pub fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        serde_json::to_value(jwk).unwrap()
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}
