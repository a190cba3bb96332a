//! A fault-injecting HTTP proxy in front of a provider (DESIGN.md §5: our own fakes are for what
//! peers cannot do on demand — 5xx, resets, timeouts, 429, provider quirks, lost or late
//! responses).
//!
//! [`FaultProxy`] listens on `127.0.0.1:0` and forwards every request to an upstream origin (the
//! `oidc-provider` peer). Requests whose path is the token endpoint's (`/token` by default) are
//! subject to the current [`Fault`], switchable at runtime: a scripted queue
//! ([`FaultProxy::fail_next`], [`FaultProxy::script`]) is consumed first, one entry per token
//! request, then the standing behaviour ([`FaultProxy::set`]) applies. Every other path
//! (discovery, JWKS, …) always passes through; the discovery document's URLs are rewritten to the
//! proxy's origin, so a client resolved *through* the proxy (issuer = [`FaultProxy::url`]) sends
//! its token requests through it too. The simpler way is an explicit token endpoint override set
//! to [`FaultProxy::token_endpoint`].
//!
//! The HTTP/1.1 handling is deliberately minimal (`Content-Length` bodies, keep-alive), which is
//! all an OAuth client and the peer need.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use url::Url;

/// What the proxy does with a token-endpoint request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward to the upstream and relay its answer.
    PassThrough,
    /// Answer with this HTTP status and a plain-text body (no OAuth error): 500, 502, 503, …
    Status(u16),
    /// `429 Too Many Requests` with `Retry-After: N` (seconds).
    TooManyRequests {
        /// The `Retry-After` value in seconds.
        retry_after_secs: u64,
    },
    /// `503` with `{"error":"temporarily_unavailable"}`.
    TemporarilyUnavailable,
    /// Read the request, then close the connection without answering (TCP RST).
    Reset,
    /// Wait this long, then forward.
    Delay(Duration),
    /// Forward (the upstream processes the request: a refresh grant rotates), then hold the
    /// answer back this long before relaying it: the window in which the provider has rotated
    /// the refresh token but the client does not know the new one yet.
    DelayAnswer(Duration),
    /// Read the request and never answer (the connection stays open until the client gives up
    /// or the proxy is dropped).
    Hang,
    /// GitHub's dialect: `HTTP 200` with `{"error":"bad_refresh_token"}`.
    GitHubBadRefreshToken,
    /// Auth0's dialect: `HTTP 403` with `{"error":"invalid_grant"}`.
    Auth0InvalidGrant,
    /// Forward to the upstream (which processes it — a refresh grant DOES rotate), then drop its
    /// answer and reset the connection: the client never learns the new tokens.
    LoseResponse,
}

/// Request counters of a [`FaultProxy`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultProxyStats {
    /// Every request the proxy read (any path).
    pub requests: u64,
    /// Requests to the token endpoint path.
    pub token_requests: u64,
    /// Token requests that reached the upstream (pass-through, delay, lost response).
    pub token_forwarded: u64,
    /// Token requests answered (or dropped) by an injected fault instead of the upstream.
    pub token_faulted: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    token_requests: AtomicU64,
    token_forwarded: AtomicU64,
    token_faulted: AtomicU64,
}

struct Shared {
    upstream: Url,
    upstream_origin: String,
    own_origin: String,
    token_path: String,
    standing: Mutex<Fault>,
    script: Mutex<VecDeque<Fault>>,
    counters: Counters,
    http: reqwest::Client,
}

impl Shared {
    fn next_fault(&self) -> Fault {
        if let Some(f) = self.script.lock().unwrap().pop_front() {
            return f;
        }
        self.standing.lock().unwrap().clone()
    }
}

/// A fault-injecting HTTP proxy on `127.0.0.1:0`; see the module docs. Stops (closing every
/// connection, hung ones included) when dropped. Belongs to the Tokio runtime that started it.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream.as_str())
            .field("token_path", &self.shared.token_path)
            .finish_non_exhaustive()
    }
}

fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

impl FaultProxy {
    /// A proxy in front of `upstream` (an origin such as the peer's issuer) whose token endpoint
    /// is `/token` (`oidc-provider`'s).
    pub async fn start(upstream: Url) -> Self {
        Self::start_with_token_path(upstream, "/token").await
    }

    /// A proxy in front of `upstream` whose faults apply to requests for `token_path`.
    pub async fn start_with_token_path(upstream: Url, token_path: &str) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the fault proxy on 127.0.0.1:0");
        let addr = listener.local_addr().expect("fault proxy address");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("build the fault proxy's upstream client");
        let shared = Arc::new(Shared {
            upstream_origin: origin_of(&upstream),
            own_origin: format!("http://{addr}"),
            upstream,
            token_path: token_path.to_owned(),
            standing: Mutex::new(Fault::PassThrough),
            script: Mutex::new(VecDeque::new()),
            counters: Counters::default(),
            http,
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Self { addr, shared, task }
    }

    /// The proxy's origin, `http://127.0.0.1:PORT/` (usable as an issuer: discovery is rewritten).
    pub fn url(&self) -> Url {
        Url::parse(&format!("{}/", self.shared.own_origin)).expect("proxy URL")
    }

    /// The proxied token endpoint, for `EndpointOverrides::token`.
    pub fn token_endpoint(&self) -> Url {
        self.url()
            .join(&self.shared.token_path)
            .expect("proxy token endpoint")
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the standing behaviour for token requests (applies once the script is used up).
    pub fn set(&self, fault: Fault) {
        *self.shared.standing.lock().unwrap() = fault;
    }

    /// The next `n` token requests get `fault`; the standing behaviour applies afterwards
    /// ("fail the next N requests, then pass" when the standing behaviour is pass-through).
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.script(std::iter::repeat_n(fault, n));
    }

    /// Appends faults to the script, one per following token request.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.script.lock().unwrap().extend(faults);
    }

    /// Back to pass-through with an empty script.
    pub fn clear(&self) {
        self.shared.script.lock().unwrap().clear();
        self.set(Fault::PassThrough);
    }

    /// Scripted faults not used yet.
    pub fn pending_script(&self) -> usize {
        self.shared.script.lock().unwrap().len()
    }

    /// The counters so far.
    pub fn stats(&self) -> FaultProxyStats {
        let c = &self.shared.counters;
        FaultProxyStats {
            requests: c.requests.load(Ordering::SeqCst),
            token_requests: c.token_requests.load(Ordering::SeqCst),
            token_forwarded: c.token_forwarded.load(Ordering::SeqCst),
            token_faulted: c.token_faulted.load(Ordering::SeqCst),
        }
    }

    /// Token requests seen so far.
    pub fn token_requests(&self) -> u64 {
        self.stats().token_requests
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One parsed HTTP/1.1 request.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
}

impl Request {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// Reads one request; `None` on EOF, a broken connection or something unparseable.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?.to_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let version = request_line.next().unwrap_or("HTTP/1.1");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if header("transfer-encoding").is_some() {
        return None; // chunked request bodies are not supported
    }
    let length: usize = header("content-length").map_or(Some(0), |v| v.parse().ok())?;
    let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
        || version == "HTTP/1.0";
    buf.drain(..head_end + 4);
    while buf.len() < length {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: Vec<u8> = buf.drain(..length).collect();
    Some(Request {
        method,
        target,
        headers,
        body,
        close,
    })
}

/// A response to write back.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![
                (
                    "content-type".into(),
                    "application/json; charset=utf-8".into(),
                ),
                ("cache-control".into(), "no-store".into()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

async fn write_response(stream: &mut TcpStream, response: &Response, close: bool) -> bool {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str(&format!("content-length: {}\r\n", response.body.len()));
    if close {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&response.body);
    stream.write_all(&bytes).await.is_ok() && stream.flush().await.is_ok()
}

fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
];

/// Sends the request upstream; a 502 when the upstream cannot be reached.
async fn forward(shared: &Shared, request: &Request) -> Response {
    let url = match shared.upstream.join(&request.target) {
        Ok(u) => u,
        Err(_) => return Response::text(400, "bad request target"),
    };
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or_default();
    let mut builder = shared.http.request(method, url);
    for (name, value) in &request.headers {
        if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        builder = builder.header(name.as_str(), value.as_str());
    }
    let answer = match builder.body(request.body.clone()).send().await {
        Ok(a) => a,
        Err(e) => return Response::text(502, &format!("fault proxy: upstream failed: {e}")),
    };
    let status = answer.status().as_u16();
    let headers: Vec<(String, String)> = answer
        .headers()
        .iter()
        .filter(|(n, _)| {
            !HOP_BY_HOP
                .iter()
                .any(|h| n.as_str().eq_ignore_ascii_case(h))
        })
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let mut body = match answer.bytes().await {
        Ok(b) => b.to_vec(),
        Err(e) => return Response::text(502, &format!("fault proxy: upstream body: {e}")),
    };
    if request
        .path()
        .ends_with("/.well-known/openid-configuration")
        && let Ok(text) = String::from_utf8(body.clone())
    {
        // Point every URL of the document (issuer included) at the proxy.
        body = text
            .replace(&shared.upstream_origin, &shared.own_origin)
            .into_bytes();
    }
    Response {
        status,
        headers,
        body,
    }
}

async fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        let c = &shared.counters;
        c.requests.fetch_add(1, Ordering::SeqCst);
        let is_token = request.path() == shared.token_path;
        let fault = if is_token {
            c.token_requests.fetch_add(1, Ordering::SeqCst);
            shared.next_fault()
        } else {
            Fault::PassThrough
        };
        let forwarded = matches!(
            fault,
            Fault::PassThrough | Fault::Delay(_) | Fault::DelayAnswer(_) | Fault::LoseResponse
        );
        if is_token {
            if forwarded {
                c.token_forwarded.fetch_add(1, Ordering::SeqCst);
            }
            if fault != Fault::PassThrough {
                c.token_faulted.fetch_add(1, Ordering::SeqCst);
            }
        }
        let response = match fault {
            Fault::PassThrough => forward(&shared, &request).await,
            Fault::Delay(d) => {
                tokio::time::sleep(d).await;
                forward(&shared, &request).await
            }
            Fault::DelayAnswer(d) => {
                let answer = forward(&shared, &request).await;
                tokio::time::sleep(d).await;
                answer
            }
            Fault::LoseResponse => {
                let _lost = forward(&shared, &request).await;
                return reset(stream);
            }
            Fault::Reset => return reset(stream),
            Fault::Hang => {
                // Keep the connection open, unanswered, until the client closes it (or the proxy
                // is dropped, which aborts this task).
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            Fault::Status(status) => Response::text(status, "injected failure"),
            Fault::TooManyRequests { retry_after_secs } => {
                let mut r = Response::json(429, r#"{"message":"rate limited by the fault proxy"}"#);
                r.headers
                    .push(("retry-after".into(), retry_after_secs.to_string()));
                r
            }
            Fault::TemporarilyUnavailable => Response::json(
                503,
                r#"{"error":"temporarily_unavailable","error_description":"injected by the fault proxy"}"#,
            ),
            Fault::GitHubBadRefreshToken => Response::json(
                200,
                r#"{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired.","error_uri":"https://docs.github.com"}"#,
            ),
            Fault::Auth0InvalidGrant => Response::json(
                403,
                r#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}"#,
            ),
        };
        if !write_response(&mut stream, &response, request.close).await || request.close {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
