//! Request ids and the per-request log context.
//!
//! Every request gets an id: the one a trusted proxy sent in `X-Request-Id`,
//! or a new one. It is set on the request (so the upstream receives it), on
//! the response, and on a tracing span around the whole handling, so every
//! log line of the request carries it. One access-log line per request is
//! written at `debug` level (`AUTHGATE_LOG=debug`).

use crate::state::Gateway;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;
use tracing::Instrument;

/// The request's id, as a request extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

tokio::task_local! {
    /// The id of the request being handled, for code that has no access to
    /// the request (audit events emitted deep in a refresh).
    static CURRENT: HeaderValue;
}

/// The id of the request this task is handling, if any.
pub(crate) fn current() -> Option<String> {
    CURRENT
        .try_with(|id| id.to_str().ok().map(str::to_owned))
        .ok()
        .flatten()
}

/// Assigns the request id, runs the request inside a span carrying it, and
/// writes the access log line.
pub(crate) async fn request_context(
    State(gw): State<Gateway>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let id = match peer {
        Some(peer) => {
            authgate_proxy::request_id(peer.ip(), req.headers(), &gw.inner.settings.trusted_proxies)
        }
        None => authgate_proxy::generate_request_id(),
    };
    authgate_proxy::headers::set_request_id(req.headers_mut(), id.clone());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or(""),
        method = %req.method(),
        path = req.uri().path(),
    );
    let mut response = CURRENT
        .scope(id.clone(), next.run(req).instrument(span.clone()))
        .await;
    response
        .headers_mut()
        .entry(authgate_proxy::headers::X_REQUEST_ID)
        .or_insert(id);
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    });
    response
}
