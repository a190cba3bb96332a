//! The `/auth/*` routes.

use crate::state::Gateway;
use crate::{admin, authjs, backchannel, endpoints, forward, signin, token_endpoint};
use axum::Router;
use axum::routing::{delete, get, post};

impl Gateway {
    /// The authentication endpoints, relative to the base path (nest them
    /// under `settings().base_path`):
    /// `GET /signin`, `GET|POST /signin/{provider}`, `GET /callback/{provider}`,
    /// `GET|POST /session`, `GET /csrf`, `GET /providers`, `POST /refresh`,
    /// `POST /signout`, `POST /backchannel-logout/{provider}` (OpenID Connect
    /// Back-Channel Logout), `GET /verify` (forward-auth), `POST /token`
    /// (service clients). Serve them with
    /// `into_make_service_with_connect_info::<SocketAddr>()`: without the
    /// peer address, `/verify` cannot recognise a trusted proxy and never
    /// adds provider tokens.
    pub fn auth_routes(&self) -> Router {
        self.auth_router().with_state(self.clone())
    }

    fn auth_router(&self) -> Router<Gateway> {
        Router::new()
            .route("/signin", get(signin::signin_page))
            .route(
                "/signin/{provider}",
                get(signin::signin_get).post(signin::signin_post),
            )
            .route("/callback/{provider}", get(signin::callback))
            .route(
                "/session",
                get(endpoints::session).post(authjs::update_session),
            )
            .route("/csrf", get(endpoints::csrf))
            .route("/providers", get(endpoints::providers))
            .route("/refresh", post(endpoints::refresh))
            .route("/signout", post(endpoints::signout))
            .route(
                "/backchannel-logout/{provider}",
                post(backchannel::backchannel_logout),
            )
            .route("/verify", get(forward::verify))
            .route("/token", post(token_endpoint::token))
            .route(
                "/admin/sessions",
                get(admin::list).delete(admin::revoke_user),
            )
            .route("/admin/sessions/{id}", delete(admin::revoke_one))
    }
}

impl Gateway {
    /// The whole gateway application: the authentication endpoints under
    /// the base path, and every other path through the access decision to
    /// the upstream (404 when there is none: forward-auth only). Serve it
    /// with `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn router(&self) -> Router {
        Router::new()
            .nest(&self.inner.settings.base_path, self.auth_router())
            .fallback(forward::proxy)
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                crate::request_id::request_context,
            ))
            .with_state(self.clone())
    }
}
