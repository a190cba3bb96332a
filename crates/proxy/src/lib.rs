//! # authgate-proxy
//!
//! The request-forwarding core of the authgate gateway. This crate knows nothing about
//! sessions, cookies or tokens: it judges which [`Access`] kind and which allow-lists a
//! request's path carries, cleans headers, and forwards requests to one upstream application.
//! The gateway crate (`authgate-http`) resolves the session, decides what to do for the
//! [`Judgement`], and calls [`ReverseProxy::forward`] with the identity headers to add.
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
//!   segment and `**` = any number of segments, optional method filters, an [`AllowList`]
//!   each). First match wins; with no match the access is [`RouteRules::DEFAULT_ACCESS`] =
//!   [`Access::Protected`] (fail closed).
//! * [`readings`] — the lenient readings of a path: letter case, `;` parameters, escaped
//!   delimiters, double decoding, trailing dots and spaces, dot segments kept or resolved.
//! * [`judge`] — [`RouteRules::judge`], the one call per request: the strictest answer over
//!   every reading (a session if any reading needs one, every reading's allow-list), or
//!   [`AmbiguousPath`] → 400 when a reading is not a valid path.
//! * [`original`] — [`original_request`]: the request a forward-auth call asks about
//!   (`X-Original-URI`/`-Method` or `X-Forwarded-Uri`/`-Method`; two different or repeated
//!   values are refused).
//! * [`allow`] — [`AllowList`] (e-mails, domains, groups, roles, claim values; any of within a
//!   kind, all of across kinds), [`Permits`] and the [`Subject`] it judges.
//! * [`headers`] — pure header hygiene: stripping client copies of the identity headers the
//!   gateway owns, including look-alikes an upstream framework would read as the same header
//!   (`x_auth_request_user`, any letter case); hop-by-hop removal; `X-Forwarded-For/-Proto/
//!   -Host`, `X-Real-IP` with [`TrustedProxies`] and [`client_ip`]; `X-Request-Id`; taking
//!   chosen cookies out of `Cookie` ([`remove_cookies`]).
//! * [`forward`] — [`ReverseProxy`]: hyper-util's legacy client (HTTP/1.1, keep-alive pool),
//!   streaming bodies both ways, WebSocket pass-through, 502/504 with a small HTML or JSON
//!   body on upstream failure, never a hang.
//!
//! ## Typical use
//!
//! ```no_run
//! use authgate_proxy::{
//!     Access, ClientInfo, Permits, ProxySettings, ReverseProxy, RouteRule, RouteRules, Subject,
//!     normalize,
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
//! let Ok(judgement) = rules.judge(req.method(), &path) else {
//!     return authgate_proxy::error_response(
//!         axum::http::StatusCode::BAD_REQUEST, Default::default(), None);
//! };
//! let email: Option<&str> = None; // from the session, elided
//! if judgement.requires_session() && !judgement.permits(&Subject::with_email(email)) {
//!     return authgate_proxy::error_response(
//!         axum::http::StatusCode::FORBIDDEN, Default::default(), None);
//! }
//! let mut identity = HeaderMap::new();
//! identity.insert("x-auth-request-user", HeaderValue::from_static("alice"));
//! proxy.forward(req, ClientInfo::new(peer), identity).await
//! # }
//! # let _ = (RouteRule::new("/**", Access::Public), ProxySettings::default());
//! ```

pub mod allow;
pub mod forward;
pub mod headers;
pub mod judge;
pub mod original;
pub mod path;
pub mod readings;
pub mod rules;

pub use allow::{AllowList, ClaimRule, Permits, Subject};
pub use forward::{
    ClientInfo, ErrorFormat, ProxyError, ProxySettings, ReverseProxy, UpstreamErrorKind,
    error_response,
};
pub use headers::{
    OwnedHeaders, Scheme, TrustedProxies, client_ip, generate_request_id, remove_cookies,
    request_id, strip_identity_headers,
};
pub use judge::Judgement;
pub use original::{OriginalRequest, OriginalRequestError, original_request};
pub use path::{NormalizedPath, PathError, normalize};
pub use readings::{AmbiguousPath, ReadingStep};
pub use rules::{Access, RouteRule, RouteRules, RuleError};
