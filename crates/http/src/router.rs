//! The `/auth/*` routes.

use crate::state::Gateway;
use crate::{endpoints, signin};
use axum::Router;
use axum::routing::{get, post};

impl Gateway {
    /// The authentication endpoints, relative to the base path (nest them
    /// under `settings().base_path`):
    /// `GET /signin`, `GET|POST /signin/{provider}`, `GET /callback/{provider}`,
    /// `GET /session`, `GET /csrf`, `GET /providers`, `POST /refresh`,
    /// `POST /signout`.
    pub fn auth_routes(&self) -> Router {
        Router::new()
            .route("/signin", get(signin::signin_page))
            .route(
                "/signin/{provider}",
                get(signin::signin_get).post(signin::signin_post),
            )
            .route("/callback/{provider}", get(signin::callback))
            .route("/session", get(endpoints::session))
            .route("/csrf", get(endpoints::csrf))
            .route("/providers", get(endpoints::providers))
            .route("/refresh", post(endpoints::refresh))
            .route("/signout", post(endpoints::signout))
            .with_state(self.clone())
    }
}
