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
//! | `POST /signout` | revokes at the provider (RFC 7009), ends the session, expires every cookie |
//! | `GET /verify` | forward-auth: 200 + identity headers, 401, or a sign-in redirect |
//!
//! [`Gateway::router`] adds the reverse proxy: every other path is matched
//! against the route rules, decided by [`Gateway::decide`] (see [`gate`]),
//! and forwarded with identity headers.
//!
//! The module split: [`session`] reads, refreshes and rewrites sessions;
//! `signin` and `endpoints` are the handlers, `authjs` what Auth.js's
//! client code needs of them (`{"url"}` answers, `update()`); [`cookies`], [`redirect`],
//! [`pages`] and [`error`] are the small pieces they share. No refresh or
//! crypto logic lives here: that is `authgate-refresh` and `authgate-core`.

mod authjs;
mod background;
pub mod cookies;
mod endpoints;
pub mod error;
mod forward;
pub mod gate;
pub mod layer;
pub mod pages;
pub mod redirect;
pub mod request_id;
mod router;
pub mod session;
pub mod settings;
mod signin;
mod state;

pub use authgate_proxy::{
    Access, OwnedHeaders, ProxyError, ProxySettings, ReverseProxy, RouteRule, RouteRules,
    RuleError, TrustedProxies,
};
pub use gate::{AllowList, Decision, Verdict};
pub use layer::{AccessToken, AuthLayer, AuthRejection, AuthService, Session};
pub use settings::{GatewaySettings, RefreshMode, SessionStrategy};
pub use state::{Gateway, GatewayParts, Routes};

/// The CSRF cookie's name for this gateway.
pub(crate) fn csrf_cookie_name(inner: &state::Inner) -> &'static str {
    authgate_core::csrf::csrf_cookie_name(inner.settings.secure_cookies)
}
