//! Streaming HTTP/1.1 forwarding to one upstream.
//!
//! [`ReverseProxy`] owns a hyper-util legacy [`Client`] (HTTP/1.1, keep-alive pool) and
//! forwards one request at a time with [`ReverseProxy::forward`]:
//!
//! 1. The request target is [normalised](crate::path::normalize) (invalid → 400) and the URI is
//!    rewritten to the upstream origin + the upstream's base path + the normalised path + the
//!    untouched query. A caller that has already normalised the path (the gateway judges
//!    the path before it forwards) passes it to [`ReverseProxy::forward_normalized`], so the
//!    upstream gets exactly the path that was judged, normalised once.
//! 2. Headers are cleaned ([`crate::headers`]): owned identity headers and look-alikes are
//!    stripped, as is any client copy of a header in `extra_headers`; hop-by-hop headers
//!    and `Expect` are removed (the gateway's own server already answered `100 Continue`);
//!    `X-Forwarded-*`, `X-Real-IP` and `X-Request-Id` are set; `Host` is set; finally
//!    `extra_headers` (the caller's identity headers) are added.
//! 3. Bodies stream both ways: the client body is handed to hyper as is and the upstream
//!    body is returned as is; nothing is buffered beyond hyper's own read buffers.
//! 4. A WebSocket upgrade (`Connection: upgrade` + `Upgrade: websocket`) is forwarded with
//!    its upgrade headers; when the upstream answers `101`, both connections are upgraded and
//!    bytes are copied in both directions by a spawned task until either side closes.
//!
//! ## Errors and timeouts
//!
//! Nothing here panics or hangs on an upstream failure; the caller always gets a response:
//!
//! | situation | status |
//! |---|---|
//! | connection refused, reset, closed early, unparsable response | 502 |
//! | TCP connect slower than `connect_timeout` | 504 |
//! | no response headers within `response_timeout` after the request body was sent | 504 |
//! | invalid request path, or the client's own body failed mid-upload | 400 |
//!
//! The `response_timeout` clock starts when the request body has been fully handed to the
//! upstream (immediately for bodiless requests), so a slow 100 MB upload is not cut off; it
//! measures the upstream's thinking time, like nginx's `proxy_read_timeout`. The response body
//! itself is not time-limited (long downloads and streams are fine).
//!
//! Error bodies are a small HTML page or `{"error": …, "error_description": …}` JSON (the
//! caller chooses with [`ClientInfo::error_format`]); they carry `Cache-Control: no-store` and
//! the request id, never upstream details. Each failure is logged at `warn` with the error
//! kind ([`UpstreamErrorKind`]) and the request id.
//!
//! ## `Host`
//!
//! By default the upstream receives its own authority as `Host` (the authority of the upstream
//! URL; [`ProxySettings::preserve_host`] = `false`): a client's `Host` is whatever the client
//! chose to write, and applications build absolute URLs (password-reset links, redirects,
//! cache keys) from it. Set `preserve_host` to `true` to pass the client's `Host` on, for
//! upstreams that serve several virtual hosts. `X-Forwarded-Host` is
//! [`ClientInfo::forwarded_host`] when the caller knows the public host (the gateway sets its
//! `public_url`'s), otherwise the client's host.

use std::error::Error as StdError;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{
    HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version, header,
};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::watch;
use url::Url;

use crate::headers::{
    OwnedHeaders, Scheme, TrustedProxies, X_REQUEST_ID, is_websocket_upgrade, remove_hop_by_hop,
    request_id, set_forwarding_headers, set_request_id, strip_variants_of,
};
use crate::path::{NormalizedPath, normalize};

mod error;
pub use error::{ErrorFormat, error_response};

/// Tuning and policy of a [`ReverseProxy`].
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Limit on establishing the TCP connection to the upstream (→ 504). Default 5 s.
    pub connect_timeout: Duration,
    /// Limit between the end of the request body and the upstream's response headers
    /// (→ 504). Default 60 s.
    pub response_timeout: Duration,
    /// How long an idle pooled upstream connection is kept. Default 90 s.
    pub pool_idle_timeout: Duration,
    /// Maximum idle pooled connections to the upstream. Default 64.
    pub max_idle_per_host: usize,
    /// Send the client's `Host` (`true`) or the upstream's authority (`false`, default).
    pub preserve_host: bool,
    /// Peers whose `X-Forwarded-For` and `X-Request-Id` are believed. Default: none.
    pub trusted_proxies: TrustedProxies,
    /// Headers only the gateway may set. Default: [`OwnedHeaders::default`].
    pub owned_headers: OwnedHeaders,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(60),
            pool_idle_timeout: Duration::from_secs(90),
            max_idle_per_host: 64,
            preserve_host: false,
            trusted_proxies: TrustedProxies::none(),
            owned_headers: OwnedHeaders::default(),
        }
    }
}

/// What the gateway knows about the client connection of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The direct TCP peer.
    pub peer: std::net::SocketAddr,
    /// The scheme the client used to reach the gateway (`X-Forwarded-Proto`).
    pub proto: Scheme,
    /// The host the client asked for (`Host` when preserved, and `X-Forwarded-Host` unless
    /// [`forwarded_host`](Self::forwarded_host) is set); `None` uses the request's `Host`
    /// header or URI authority.
    pub host: Option<HeaderValue>,
    /// The value of `X-Forwarded-Host` — the public host the gateway serves, which a client
    /// cannot choose; `None` uses the client's host.
    pub forwarded_host: Option<HeaderValue>,
    /// How to render errors the proxy generates for this request.
    pub error_format: ErrorFormat,
    /// The request id already assigned to this request (by the gateway's
    /// request-id middleware); `None` derives one with [`request_id`].
    pub request_id: Option<HeaderValue>,
}

impl ClientInfo {
    /// Plain-HTTP client at `peer`, hosts taken from the request, HTML errors.
    pub fn new(peer: std::net::SocketAddr) -> Self {
        ClientInfo {
            peer,
            proto: Scheme::Http,
            host: None,
            forwarded_host: None,
            error_format: ErrorFormat::Html,
            request_id: None,
        }
    }
}

/// A [`ReverseProxy`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// Only `http://` upstreams are supported.
    #[error("upstream {0:?}: only http:// upstreams are supported")]
    UnsupportedScheme(String),
    /// The upstream URL has no host.
    #[error("upstream {0:?} has no host")]
    MissingHost(String),
    /// The upstream URL carries a query, fragment or credentials, which cannot be combined
    /// with request paths.
    #[error("upstream {0:?} must not contain a query, fragment or credentials")]
    UnexpectedUrlParts(String),
}

/// Why forwarding failed, as logged and as mapped to a status by [`Self::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamErrorKind {
    /// The upstream refused the TCP connection (502).
    ConnectRefused,
    /// The TCP connection was not established within `connect_timeout` (504).
    ConnectTimeout,
    /// Another connect failure, e.g. DNS (502).
    Connect,
    /// No response headers within `response_timeout` (504).
    ResponseTimeout,
    /// The upstream closed or reset the connection before a complete response (502).
    Closed,
    /// The upstream sent something that is not a valid HTTP/1 response (502).
    InvalidResponse,
    /// The client's request body failed while being forwarded (400).
    RequestBody,
    /// The upstream answered `101` to a request that was not a WebSocket upgrade the proxy
    /// could complete (502).
    Upgrade,
    /// Anything else (502).
    Other,
}

impl UpstreamErrorKind {
    /// The status the client gets.
    pub fn status(self) -> StatusCode {
        match self {
            UpstreamErrorKind::ConnectTimeout | UpstreamErrorKind::ResponseTimeout => {
                StatusCode::GATEWAY_TIMEOUT
            }
            UpstreamErrorKind::RequestBody => StatusCode::BAD_REQUEST,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// A stable snake_case name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamErrorKind::ConnectRefused => "connect_refused",
            UpstreamErrorKind::ConnectTimeout => "connect_timeout",
            UpstreamErrorKind::Connect => "connect",
            UpstreamErrorKind::ResponseTimeout => "response_timeout",
            UpstreamErrorKind::Closed => "closed",
            UpstreamErrorKind::InvalidResponse => "invalid_response",
            UpstreamErrorKind::RequestBody => "request_body",
            UpstreamErrorKind::Upgrade => "upgrade",
            UpstreamErrorKind::Other => "other",
        }
    }
}

struct Inner {
    client: Client<HttpConnector, Body>,
    upstream: Url,
    /// `http://host:port`
    origin: String,
    /// The upstream URL's path without its trailing slash (`""` for `/`).
    base_path: String,
    upstream_host: HeaderValue,
    settings: ProxySettings,
}

/// A reverse proxy to one `http://` upstream; cheap to clone (shares the connection pool).
#[derive(Clone)]
pub struct ReverseProxy {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ReverseProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReverseProxy")
            .field("upstream", &self.inner.upstream.as_str())
            .field("settings", &self.inner.settings)
            .finish()
    }
}

impl ReverseProxy {
    /// A proxy to `upstream` (e.g. `http://127.0.0.1:3000` or `http://app:8080/base`).
    /// Building needs no runtime; [`forward`](Self::forward) runs on Tokio.
    pub fn new(upstream: Url, settings: ProxySettings) -> Result<Self, ProxyError> {
        if upstream.scheme() != "http" {
            return Err(ProxyError::UnsupportedScheme(upstream.to_string()));
        }
        if upstream.query().is_some()
            || upstream.fragment().is_some()
            || !upstream.username().is_empty()
            || upstream.password().is_some()
        {
            return Err(ProxyError::UnexpectedUrlParts(upstream.to_string()));
        }
        let Some(host) = upstream.host_str().filter(|h| !h.is_empty()) else {
            return Err(ProxyError::MissingHost(upstream.to_string()));
        };
        let authority = match upstream.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let upstream_host = HeaderValue::from_str(&authority)
            .map_err(|_| ProxyError::MissingHost(upstream.to_string()))?;
        let origin = format!("http://{authority}");
        let base_path = upstream.path().trim_end_matches('/').to_owned();

        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(settings.connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(settings.pool_idle_timeout)
            .pool_max_idle_per_host(settings.max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);

        Ok(ReverseProxy {
            inner: Arc::new(Inner {
                client,
                upstream,
                origin,
                base_path,
                upstream_host,
                settings,
            }),
        })
    }

    /// The upstream URL.
    pub fn upstream(&self) -> &Url {
        &self.inner.upstream
    }

    /// The settings in use.
    pub fn settings(&self) -> &ProxySettings {
        &self.inner.settings
    }

    /// Forwards `req` to the upstream and returns its response (or a generated 400/502/504),
    /// as described in the [module documentation](self).
    ///
    /// `extra_headers` are the gateway's identity headers for this request; client copies and
    /// variants of them are removed first, then they are added. For WebSocket pass-through,
    /// `req` must come from a hyper server connection that supports upgrades (e.g.
    /// `axum::serve`); otherwise the upgrade headers are dropped and the request is forwarded
    /// as a plain request.
    pub async fn forward(
        &self,
        req: Request<Body>,
        client: ClientInfo,
        extra_headers: HeaderMap,
    ) -> Response<Body> {
        let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        match normalize(target) {
            Ok(normalized) => {
                self.forward_normalized(req, &normalized, client, extra_headers)
                    .await
            }
            Err(err) => {
                let id = self.request_id_of(&req, &client);
                tracing::debug!(request_id = ?id, error = %err, "rejected request path");
                error_response(StatusCode::BAD_REQUEST, client.error_format, Some(&id))
            }
        }
    }

    fn request_id_of(&self, req: &Request<Body>, client: &ClientInfo) -> HeaderValue {
        client.request_id.clone().unwrap_or_else(|| {
            request_id(
                client.peer.ip(),
                req.headers(),
                &self.inner.settings.trusted_proxies,
            )
        })
    }

    /// [`forward`](Self::forward) for a caller that has already normalised the
    /// request's path (the gateway, which judged exactly this path): the
    /// upstream gets `normalized`, whatever `req`'s URI says.
    pub async fn forward_normalized(
        &self,
        mut req: Request<Body>,
        normalized: &NormalizedPath,
        client: ClientInfo,
        extra_headers: HeaderMap,
    ) -> Response<Body> {
        let settings = &self.inner.settings;
        let format = client.error_format;
        let peer = client.peer.ip();
        let id = self.request_id_of(&req, &client);

        if req.method() == Method::CONNECT {
            return error_response(StatusCode::METHOD_NOT_ALLOWED, format, Some(&id));
        }
        let uri = format!(
            "{}{}{}",
            self.inner.origin,
            self.inner.base_path,
            normalized.path_and_query()
        );
        let Ok(uri) = Uri::try_from(uri) else {
            return error_response(StatusCode::BAD_REQUEST, format, Some(&id));
        };

        let downstream_upgrade = if is_websocket_upgrade(req.headers()) {
            req.extensions_mut().remove::<OnUpgrade>()
        } else {
            None
        };
        let websocket = downstream_upgrade.is_some();

        let (parts, body) = req.into_parts();
        let original_host = parts.headers.get(header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        let client_host = client.host.clone().or(original_host);
        let mut headers = parts.headers;
        settings.owned_headers.strip(&mut headers);
        strip_variants_of(&mut headers, &extra_headers);
        remove_hop_by_hop(&mut headers, websocket);
        headers.remove(header::EXPECT);
        set_forwarding_headers(
            &mut headers,
            peer,
            client.proto,
            client.forwarded_host.as_ref().or(client_host.as_ref()),
            &settings.trusted_proxies,
        );
        set_request_id(&mut headers, id.clone());
        let host = match (&client_host, settings.preserve_host) {
            (Some(h), true) => h.clone(),
            _ => self.inner.upstream_host.clone(),
        };
        headers.insert(header::HOST, host);
        for name in extra_headers.keys() {
            headers.remove(name);
            for value in extra_headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }

        let response_timeout = settings.response_timeout;
        let bodiless = body.is_end_stream();
        let (upstream_body, done_rx) = if bodiless {
            // Nothing to upload: the response clock starts now.
            (body, None)
        } else {
            let (done, done_rx) = watch::channel(false);
            (Body::new(EndSignal { inner: body, done }), Some(done_rx))
        };
        let mut upstream_req = Request::new(upstream_body);
        *upstream_req.method_mut() = parts.method;
        *upstream_req.uri_mut() = uri;
        *upstream_req.version_mut() = Version::HTTP_11;
        *upstream_req.headers_mut() = headers;

        let deadline = async move {
            if let Some(mut done_rx) = done_rx {
                // Err means the body was dropped (sent or abandoned): start the clock either way.
                let _ = done_rx.wait_for(|done| *done).await;
            }
            tokio::time::sleep(response_timeout).await;
        };
        let result = tokio::select! {
            res = self.inner.client.request(upstream_req) => res.map_err(|err| {
                let kind = classify(&err);
                (kind, Some(error_chain(&err)))
            }),
            () = deadline => Err((UpstreamErrorKind::ResponseTimeout, None)),
        };

        let mut response = match result {
            Ok(response) => response,
            Err((kind, detail)) => return self.fail(kind, detail, format, &id),
        };

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(downstream) = downstream_upgrade else {
                return self.fail(UpstreamErrorKind::Upgrade, None, format, &id);
            };
            let upstream = hyper::upgrade::on(&mut response);
            let request_id = id.clone();
            tokio::spawn(async move {
                tunnel(downstream, upstream, request_id).await;
            });
            let (mut parts, _) = response.into_parts();
            remove_hop_by_hop(&mut parts.headers, true);
            parts.extensions = Default::default();
            return Response::from_parts(parts, Body::empty());
        }

        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers, false);
        parts.extensions = Default::default();
        if !parts.headers.contains_key(&X_REQUEST_ID) {
            parts.headers.insert(X_REQUEST_ID, id);
        }
        Response::from_parts(parts, Body::new(body))
    }

    fn fail(
        &self,
        kind: UpstreamErrorKind,
        detail: Option<String>,
        format: ErrorFormat,
        id: &HeaderValue,
    ) -> Response<Body> {
        tracing::warn!(
            request_id = ?id,
            upstream = %self.inner.origin,
            kind = kind.as_str(),
            error = detail.as_deref().unwrap_or(""),
            "upstream request failed"
        );
        error_response(kind.status(), format, Some(id))
    }
}

async fn tunnel(downstream: OnUpgrade, upstream: OnUpgrade, id: HeaderValue) {
    let (downstream, upstream) = match tokio::try_join!(downstream, upstream) {
        Ok(pair) => pair,
        Err(err) => {
            tracing::warn!(request_id = ?id, error = %err, "websocket upgrade failed");
            return;
        }
    };
    let mut downstream = TokioIo::new(downstream);
    let mut upstream = TokioIo::new(upstream);
    match tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await {
        Ok((to_upstream, to_client)) => {
            tracing::debug!(request_id = ?id, to_upstream, to_client, "websocket closed");
        }
        Err(err) => tracing::debug!(request_id = ?id, error = %err, "websocket ended"),
    }
}

fn find_source<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

fn classify(err: &hyper_util::client::legacy::Error) -> UpstreamErrorKind {
    if find_source::<axum::Error>(err).is_some() {
        return UpstreamErrorKind::RequestBody;
    }
    let io_kind = find_source::<io::Error>(err).map(io::Error::kind);
    if err.is_connect() {
        return match io_kind {
            Some(io::ErrorKind::ConnectionRefused) => UpstreamErrorKind::ConnectRefused,
            Some(io::ErrorKind::TimedOut) => UpstreamErrorKind::ConnectTimeout,
            _ => UpstreamErrorKind::Connect,
        };
    }
    if let Some(h) = find_source::<hyper::Error>(err) {
        if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() {
            return UpstreamErrorKind::InvalidResponse;
        }
        if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
            return UpstreamErrorKind::Closed;
        }
    }
    match io_kind {
        Some(
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof,
        ) => UpstreamErrorKind::Closed,
        _ => UpstreamErrorKind::Other,
    }
}

fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        out.push_str(": ");
        out.push_str(&e.to_string());
        current = e.source();
    }
    out
}

/// Wraps the client body and flips `done` once it has been fully read (or failed), so the
/// response timeout can start after the upload rather than before it.
struct EndSignal {
    inner: Body,
    done: watch::Sender<bool>,
}

impl HttpBody for EndSignal {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let finished = match &polled {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            Poll::Pending => false,
        };
        if finished {
            this.done.send_replace(true);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
