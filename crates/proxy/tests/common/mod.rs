//! Shared helpers for the proxy integration tests: tiny upstreams, a proxy server and a raw
//! HTTP/1.1 client. Everything listens on 127.0.0.1 with an OS-assigned port.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use authgate_proxy::{ClientInfo, ErrorFormat, ProxySettings, ReverseProxy};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves `router` on 127.0.0.1:0 (with `ConnectInfo<SocketAddr>`); returns the address.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// An upstream that answers every request with `METHOD TARGET` and then one `name: value`
/// line per received header, and records the peer of every request.
pub async fn echo_upstream() -> (SocketAddr, Arc<Mutex<Vec<SocketAddr>>>) {
    let peers = Arc::new(Mutex::new(Vec::new()));
    let recorded = peers.clone();
    let router = Router::new().fallback(
        move |ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request| {
            let recorded = recorded.clone();
            async move {
                recorded.lock().unwrap().push(peer);
                let mut out = format!("{} {}\n", req.method(), req.uri());
                for (name, value) in req.headers() {
                    out.push_str(&format!("{}: {}\n", name, value.to_str().unwrap_or("?")));
                }
                out
            }
        },
    );
    (serve(router).await, peers)
}

/// Distinct peers an upstream saw (= distinct upstream connections).
pub fn distinct(peers: &Arc<Mutex<Vec<SocketAddr>>>) -> usize {
    peers.lock().unwrap().iter().collect::<HashSet<_>>().len()
}

#[derive(Clone)]
struct ProxyState {
    proxy: ReverseProxy,
    extra: HeaderMap,
}

async fn proxy_handler(
    State(state): State<ProxyState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response {
    let mut client = ClientInfo::new(peer);
    client.error_format = ErrorFormat::from_accept(req.headers());
    state.proxy.forward(req, client, state.extra.clone()).await
}

/// Starts a gateway-like server that forwards everything to `upstream` with `extra`
/// identity headers; returns its address.
pub async fn proxy_to(upstream: &str, settings: ProxySettings, extra: HeaderMap) -> SocketAddr {
    let proxy = ReverseProxy::new(upstream.parse().unwrap(), settings).unwrap();
    let router = Router::new()
        .fallback(proxy_handler)
        .with_state(ProxyState { proxy, extra });
    serve(router).await
}

/// A parsed HTTP/1.1 response read by [`raw`].
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawResponse {
    /// The value of the first response header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    /// Body lines (for the echo upstream: request line, then headers).
    pub fn lines(&self) -> Vec<&str> {
        self.body.lines().collect()
    }
}

/// Sends `request` verbatim (it must ask for `Connection: close`) and reads the whole
/// response.
pub async fn raw(addr: SocketAddr, request: &str) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut response = RawResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    };
    if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        response.body = dechunk(body);
    }
    response
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// `GET target` with extra raw header lines, `Connection: close`.
pub fn get(target: &str, header_lines: &[&str]) -> String {
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: app.example\r\n");
    for line in header_lines {
        req.push_str(line);
        req.push_str("\r\n");
    }
    req.push_str("Connection: close\r\n\r\n");
    req
}
