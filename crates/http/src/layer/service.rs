//! The tower service the [`AuthLayer`](super::AuthLayer) wraps around an
//! inner service: decide, then call the inner service or answer itself.

use super::Policy;
use crate::forward::append_all;
use crate::gate::{TokenRelease, Verdict};
use crate::session::CurrentSession;
use crate::state::Gateway;
use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::OriginalUri;
use axum::http::Request;
use axum::response::Response;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::Service;

/// The service [`AuthLayer`] wraps around `S`.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    gateway: Gateway,
    policy: Arc<Policy>,
}

impl<S> AuthService<S> {
    pub(super) fn new(inner: S, gateway: Gateway, policy: Arc<Policy>) -> Self {
        Self {
            inner,
            gateway,
            policy,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// What [`AuthService`] gives the gateway to the extractors.
#[derive(Clone)]
pub(super) struct LayerContext {
    pub(super) gateway: Gateway,
}

/// The response future of [`AuthService`].
pub type AuthFuture<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send + 'static>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = AuthFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // `self.inner` is the instance `poll_ready` drove to readiness: take
        // it for this request and leave a fresh clone for the next one.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let gateway = self.gateway.clone();
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            // Behind `Router::nest` the URI lost its prefix; sign-in must
            // come back to the address the browser asked for.
            let uri = request
                .extensions()
                .get::<OriginalUri>()
                .map_or(request.uri(), |o| &o.0);
            let return_to = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
            let decision = gateway
                .decide(
                    request.method(),
                    policy.access,
                    &policy.allow,
                    request.headers(),
                    &return_to,
                    // In process: the wrapped service is the upstream.
                    TokenRelease::AsConfigured,
                )
                .await;
            match decision.verdict {
                Verdict::Allow(session) => {
                    let extensions = request.extensions_mut();
                    match session {
                        Some(s) => {
                            extensions.insert(Arc::<CurrentSession>::from(s));
                        }
                        None => {
                            extensions.remove::<Arc<CurrentSession>>();
                        }
                    }
                    extensions.insert(LayerContext {
                        gateway: gateway.clone(),
                    });
                    let mut response = inner.call(request).await?.map(Body::new);
                    append_all(response.headers_mut(), &decision.cookies);
                    Ok(response)
                }
                Verdict::SignIn(_) | Verdict::Deny(_) => {
                    let back = gateway.settings().auth_url("/signin");
                    Ok(decision.into_response(&back))
                }
            }
        })
    }
}
