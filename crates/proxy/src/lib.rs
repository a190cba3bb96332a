//! # authgate-proxy
//!
//! The request-forwarding core of the authgate gateway. This crate knows nothing about
//! sessions, cookies or tokens: it decides which [`Access`] kind a request's route has,
//! cleans headers, and forwards requests to one upstream application. The gateway crate
//! (`authgate-http`) resolves the session, decides what to do for the route kind, and calls
//! [`ReverseProxy::forward`] with the identity headers to add.
//!
//! ## Modules
//!
//! * [`path`] — [`normalize`] turns a request target into its canonical path (unreserved
//!   percent-escapes decoded, other escapes upper-cased, dot segments resolved, repeated
//!   slashes collapsed) plus the untouched query. Route rules match this path **and** the
//!   upstream receives this same path, so what was authorised is what is served:
//!   `/public/../protected/x` and `/%70rotected/x` both become `/protected/x`. Invalid paths
//!   (`%00`, malformed escapes, raw control characters) are a typed [`PathError`] → 400.
//! * [`rules`] — [`RouteRules`] compiles the `[[routes]]` list (glob patterns with `*` = one
//!   segment and `**` = any number of segments, optional method filters). First match wins;
//!   with no match the access is [`RouteRules::DEFAULT_ACCESS`] = [`Access::Protected`]
//!   (fail closed).
//! * [`headers`] — pure header hygiene: stripping client copies of the identity headers the
//!   gateway owns, including look-alikes an upstream framework would read as the same header
//!   (`x_auth_request_user`, any letter case); hop-by-hop removal; `X-Forwarded-For/-Proto/
//!   -Host`, `X-Real-IP` with [`TrustedProxies`] and [`client_ip`]; `X-Request-Id`.
//! * [`forward`] — [`ReverseProxy`]: hyper-util's legacy client (HTTP/1.1, keep-alive pool),
//!   streaming bodies both ways, WebSocket pass-through, 502/504 with a small HTML or JSON
//!   body on upstream failure, never a hang.
//!
//! ## Typical use
//!
//! ```no_run
//! use authgate_proxy::{
//!     Access, ClientInfo, ProxySettings, ReverseProxy, RouteRule, RouteRules, normalize,
//! };
//! use axum::{body::Body, extract::ConnectInfo, http::{HeaderMap, HeaderValue, Request}};
//! use std::net::SocketAddr;
//!
//! # async fn handler(proxy: ReverseProxy, rules: RouteRules,
//! #   ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request<Body>) -> axum::response::Response {
//! let path = match normalize(req.uri().path_and_query().map_or("/", |pq| pq.as_str())) {
//!     Ok(path) => path,
//!     Err(_) => return authgate_proxy::error_response(
//!         axum::http::StatusCode::BAD_REQUEST, Default::default(), None),
//! };
//! match rules.resolve(req.method(), &path) {
//!     Access::Public | Access::Protected | Access::Api => { /* session checks elided */ }
//! }
//! let mut identity = HeaderMap::new();
//! identity.insert("x-auth-request-user", HeaderValue::from_static("alice"));
//! proxy.forward(req, ClientInfo::new(peer), identity).await
//! # }
//! # let _ = (RouteRule::new("/**", Access::Public), ProxySettings::default());
//! ```

pub mod forward;
pub mod headers;
pub mod path;
pub mod rules;

pub use forward::{
    ClientInfo, ErrorFormat, ProxyError, ProxySettings, ReverseProxy, UpstreamErrorKind,
    error_response,
};
pub use headers::{
    OwnedHeaders, Scheme, TrustedProxies, client_ip, generate_request_id, request_id,
    strip_identity_headers,
};
pub use path::{NormalizedPath, PathError, normalize};
pub use rules::{Access, RouteRule, RouteRules, RuleError, RuleMatch};
