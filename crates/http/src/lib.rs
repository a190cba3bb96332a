//! authgate's HTTP edge.
//!
//! [`Gateway`] holds everything a request needs (codecs, store, providers,
//! refresh service) and serves the authentication endpoints
//! ([`Gateway::auth_routes`], mirroring Auth.js's REST API under a base path):
//!
//! | route | what it does |
//! |---|---|
//! | `GET /signin` | the sign-in page (one button per provider, CSRF-protected forms) |
//! | `GET\|POST /signin/{provider}` | starts the authorization code flow (POST checks CSRF) |
//! | `GET /callback/{provider}` | verifies state, PKCE, nonce and the ID token; stores the account; sets the session |
//! | `GET /session` | the session JSON (`user`, `expires`, `accessTokenExpiresAt`, `error`) |
//! | `POST /session` | the same, CSRF-checked (`next-auth/react`'s `update()`) |
//! | `POST /refresh` | refreshes now (lazy mode) |
//! | `GET /csrf`, `GET /providers` | Auth.js's helpers |
//! | `POST /signout` | revokes the session record, then the grant at the provider (RFC 7009); expires every cookie |
//! | `GET /verify` | forward-auth: 200 + identity headers (provider tokens only for a trusted proxy, see [`TokenRelease`]), 401, or a sign-in redirect |
//! | `POST /token` | a fresh provider access token for a [`ServiceClient`] (never a browser) |
//! | `GET\|DELETE /admin/sessions`, `DELETE /admin/sessions/{id}` | list and revoke a user's sessions, for a [`ServiceClient`] allowed `sessions` |
//!
//! [`Gateway::router`] adds the reverse proxy: every other path is judged by
//! the route rules over every lenient reading ([`RouteRules::judge`]; an
//! ambiguous spelling is refused with 400), decided by [`Gateway::decide`]
//! (see [`gate`]), and forwarded with identity headers.
//!
//! A gateway is assembled with [`Gateway::builder`] (see [`GatewayBuilder`]).
//!
//! The module split: [`session`] reads and rewrites sessions; `tokens` is
//! the one token-access path (fresh tokens for the decision, the proxy,
//! forward-auth and the layer); [`gate`] is the access decision, and
//! `release` says who may receive provider tokens ([`TokenRelease`]);
//! `signin`, `endpoints`, `forward`, `token_endpoint` and `admin` are the handlers,
//! `authjs` what Auth.js's client code needs of them (`{"url"}` answers,
//! `update()`); [`service_client`] admits servers and jobs (credentials, no
//! browsers, rate limit) to the service endpoints; [`layer`] is the
//! tower layer and its extractors; `csrf`, [`cookies`], [`redirect`],
//! [`pages`], [`error`] and [`AuthRejection`] (the one set of refusals) are
//! the small pieces they share. No refresh or crypto logic lives here: that
//! is `authgate-refresh` and `authgate-core`.

mod account;
mod admin;
mod adopt;
mod audit;
mod authjs;
mod backchannel;
mod bearer;
mod builder;
pub mod cookies;
mod csrf;
mod endpoints;
pub mod error;
mod forward;
pub mod gate;
pub mod hosts;
pub mod layer;
pub mod pages;
pub mod redirect;
mod rejection;
mod release;
pub mod request_id;
mod request_metrics;
mod router;
pub mod service_client;
pub mod session;
pub mod settings;
mod signin;
mod state;
mod token_endpoint;
mod tokens;

pub use audit::AUDIT_EVENTS_TOTAL;
pub use authgate_proxy::{
    Access, AllowList, AmbiguousPath, ClaimRule, Judgement, OwnedHeaders, Permits, ProxyError,
    ProxySettings, ReverseProxy, RouteRule, RouteRules, RuleError, Subject, TrustedProxies,
};
pub use builder::{BuildError, DEFAULT_SIGNAL_POLL, GatewayBuilder};
pub use gate::{Decision, TokenRelease, Verdict};
pub use hosts::HostUpstream;
pub use layer::{AccessToken, AuthLayer, AuthService, Session};
pub use rejection::{AuthRejection, REFRESH_TOKEN_ERROR};
pub use service_client::{ServiceClient, ServiceClientError, ServicePermission};
pub use settings::{GatewaySettings, RefreshMode, RevocationCheck, SessionStrategy};
pub use state::Gateway;
pub use token_endpoint::{AUDIT_TARGET, TOKEN_REQUESTS_TOTAL};
