//! authgate in-process: a tower [`Layer`] and axum extractors, so a Rust
//! service gets the protection the reverse proxy gives, without a proxy.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # fn demo(
//! #     store: Arc<dyn authgate_store::Store>,  // e.g. authgate_store::connect(…)
//! #     cached: Arc<authgate_store::cache::CachedStore>, // a cache over it
//! #     catalog: authgate_oauth::Catalog,       // e.g. Catalog::resolve(…)
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use authgate_core::secret::Secret;
//! use authgate_http::{AccessToken, AuthLayer, Gateway, GatewaySettings, Session};
//! use axum::{Router, routing::get};
//!
//! let gateway = Gateway::builder(GatewaySettings::new("https://app.example/".parse()?))
//!     .secrets([Secret::new(std::env::var("AUTH_SECRET")?)])
//!     .store(store, cached)
//!     .catalog(catalog)
//!     .build()?;
//!
//! async fn me(session: Session) -> String {
//!     format!("hello {}", session.identity().id)
//! }
//! async fn upstream_call(token: AccessToken) -> String {
//!     // `token.expose()` is the provider access token: send it, never log it.
//!     format!("{} bytes", token.expose().len())
//! }
//!
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route_layer(AuthLayer::protected(gateway.clone()))
//!     .merge(
//!         Router::new()
//!             .route("/api/call", get(upstream_call))
//!             .route_layer(AuthLayer::api(gateway.clone())),
//!     )
//!     .nest(&gateway.settings().base_path.clone(), gateway.auth_routes());
//! # Ok(())
//! # }
//! ```
//!
//! [`AuthService`] asks [`Gateway::decide`] about every request — the same
//! decision the proxy and forward-auth make, refreshes included — and then:
//!
//! * **allow**: the session (when signed in) goes into the request's
//!   extensions as an `Arc<CurrentSession>`, the inner service runs, and the
//!   decision's `Set-Cookie`s (a rewritten session cookie after a refresh)
//!   are *appended* to its response, next to the inner service's own;
//! * **sign in** / **deny**: the layer answers itself (302 to the sign-in
//!   page, or a 401/403/503 error) and the inner service is not called.
//!
//! The extractors read what the layer left: [`Session`] (401 JSON
//! `SessionRequired` without one; `Option<Session>` never rejects) and
//! [`AccessToken`] (the account's current provider token: the one the
//! decision already read or refreshed, or else one got through the same
//! token-access path, `tokens.rs` — fresh either way).
//!
//! The files: this one is the layer and its policy, `service.rs` the tower
//! service, `extract.rs` the extractors; the rejection type is
//! [`AuthRejection`](crate::AuthRejection), beside the other errors.

use crate::gate::AllowList;
use crate::state::Gateway;
use authgate_proxy::Access;
use std::sync::Arc;
use tower::Layer;

mod extract;
mod service;

pub use extract::{AccessToken, Session};
pub use service::{AuthFuture, AuthService};

/// Applies authgate's access decision to every request of the wrapped
/// service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    gateway: Gateway,
    policy: Arc<Policy>,
}

#[derive(Debug)]
pub(crate) struct Policy {
    pub(crate) access: Access,
    pub(crate) allow: AllowList,
}

impl AuthLayer {
    /// A layer deciding with `access` and no allow-list.
    pub fn new(gateway: Gateway, access: Access) -> Self {
        Self {
            gateway,
            policy: Arc::new(Policy {
                access,
                allow: AllowList::default(),
            }),
        }
    }

    /// Pages: without a session, browsers are redirected to
    /// `{base}/signin?callbackUrl=<path>` (JSON clients get 401).
    pub fn protected(gateway: Gateway) -> Self {
        Self::new(gateway, Access::Protected)
    }

    /// APIs: without a session, 401 JSON `SessionRequired`, never a redirect.
    pub fn api(gateway: Gateway) -> Self {
        Self::new(gateway, Access::Api)
    }

    /// Open to everyone; the session is available when there is one (it is
    /// not refreshed on public routes, but [`AccessToken`] still is).
    pub fn public(gateway: Gateway) -> Self {
        Self::new(gateway, Access::Public)
    }

    /// Restricts signed-in users to `allow` (403 for the others; ignored on
    /// public routes). Groups and roles are always kept with a session;
    /// of other claims, only those some route rule of the gateway names
    /// (`allow_claims`) are kept, so a claim named only here never matches.
    pub fn allow(self, allow: AllowList) -> Self {
        Self {
            gateway: self.gateway,
            policy: Arc::new(Policy {
                access: self.policy.access,
                allow,
            }),
        }
    }

    /// The access policy.
    pub fn access(&self) -> Access {
        self.policy.access
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService::new(inner, self.gateway.clone(), Arc::clone(&self.policy))
    }
}
