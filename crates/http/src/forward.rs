//! The two ways requests reach the access decision from outside: the reverse
//! proxy (every path outside `/auth`) and forward-auth (`GET /auth/verify`,
//! for nginx `auth_request`, Traefik ForwardAuth and Caddy `forward_auth`).

use crate::error::{HttpError, wants_json};
use crate::gate::{TokenRelease, Verdict, identity_headers};
use crate::rejection::AuthRejection;
use crate::release::forward_auth_release;
use crate::state::Gateway;
use authgate_proxy::{
    AmbiguousPath, ClientInfo, ErrorFormat, OriginalRequest, OriginalRequestError, Scheme,
    normalize, original_request, remove_cookies,
};
use axum::Extension;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::time::Instant;

fn record(inner: &crate::state::Inner, access: &'static str, status: StatusCode, started: Instant) {
    inner.request_metrics.record(access, status, started);
}

/// Appends every header of `from` to `to` (keeps `to`'s own `Set-Cookie`s).
pub(crate) fn append_all(to: &mut HeaderMap, from: &HeaderMap) {
    for (name, value) in from {
        to.append(name.clone(), value.clone());
    }
}

/// Every request outside `/auth`: decide, then proxy to the upstream with
/// identity headers (client copies stripped) and without the gateway's own
/// cookies (unless `pass_auth_cookies`), or redirect/refuse.
pub(crate) async fn proxy(
    State(gw): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    let started = Instant::now();
    let inner = &gw.inner;
    let json = || wants_json(req.headers());
    // Where error pages send the user: built only for an error page.
    let back = || inner.settings.auth_url("/signin");
    if inner.upstream.is_none() && inner.hosts.is_empty() {
        return HttpError::new(StatusCode::NOT_FOUND, "NotFound", "Nothing is served here.")
            .render(json(), &back());
    }
    let raw = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let path = match normalize(raw) {
        Ok(p) => p,
        Err(error) => {
            tracing::info!(%error, "rejected request path");
            return HttpError::bad_request("InvalidPath", "The request path is not valid.")
                .render(json(), &back());
        }
    };
    let target = match Target::of(inner, &req, &path) {
        Some(target) => target,
        None => {
            let response = unknown_host(json(), &back());
            record(inner, "unknown_host", response.status(), started);
            return response;
        }
    };
    let judgement = match target.routes.judge(req.method(), &path) {
        Ok(judgement) => judgement,
        Err(error) => return ambiguous_path(&error, json(), &back()),
    };
    let access = judgement.access();
    let request_id = req
        .extensions()
        .get::<crate::request_id::RequestId>()
        .cloned();
    let mut decision = gw
        .decide(
            req.method(),
            access,
            &judgement,
            req.headers(),
            &target.return_to(inner, &path.path_and_query()),
            TokenRelease::AsConfigured,
        )
        .await;
    if let (Verdict::SignIn(location), Some(_)) = (&mut decision.verdict, target.host) {
        // Sign-in happens on `public_url`, whose host the check cookies and
        // the provider's callback belong to, whatever host asked.
        *location = format!(
            "{}{location}",
            inner.settings.public_url.as_str().trim_end_matches('/')
        );
    }
    let response = match decision.verdict {
        Verdict::Allow(session) => {
            if !target.pass_auth_cookies {
                remove_cookies(req.headers_mut(), |name| inner.own_cookies.contains(name));
            }
            let mut identity = match &session {
                Some(s) => identity_headers(&inner.settings, s),
                None => HeaderMap::new(),
            };
            if let Some(host) = target.host {
                for name in &host.withheld {
                    identity.remove(name);
                }
            }
            let client = ClientInfo {
                proto: inner.public_origin.scheme,
                error_format: if decision.json {
                    ErrorFormat::Json
                } else {
                    ErrorFormat::Html
                },
                request_id: request_id.map(|r| r.0),
                // The host the browser used: `public_url`'s, or the
                // configured host of the upstream it chose.
                forwarded_host: match target.host {
                    Some(host) => HeaderValue::from_str(&host.authority).ok(),
                    None => inner.public_origin.host.clone(),
                },
                ..ClientInfo::new(peer)
            };
            // The upstream gets the path that was judged.
            let mut response = target
                .proxy
                .forward_normalized(req, &path, client, identity)
                .await;
            append_all(response.headers_mut(), &decision.cookies);
            response
        }
        _ => decision.into_response(&back()),
    };
    record(inner, access.as_str(), response.status(), started);
    response
}

/// Where a proxied request goes: the one upstream, or the one its host chose.
struct Target<'a> {
    proxy: &'a authgate_proxy::ReverseProxy,
    routes: &'a authgate_proxy::RouteRules,
    pass_auth_cookies: bool,
    /// The host-matched upstream, when upstreams are chosen by host.
    host: Option<&'a crate::hosts::HostRoute>,
}

impl<'a> Target<'a> {
    /// `None`: upstreams are chosen by host and this request's matches none.
    fn of(
        inner: &'a crate::state::Inner,
        req: &Request,
        path: &authgate_proxy::NormalizedPath,
    ) -> Option<Self> {
        if let Some(proxy) = &inner.upstream {
            return Some(Target {
                proxy,
                routes: &inner.routes,
                pass_auth_cookies: inner.settings.pass_auth_cookies,
                host: None,
            });
        }
        let host = inner.hosts.choose(req.uri(), req.headers(), path.path())?;
        Some(Target {
            proxy: &host.proxy,
            routes: host.routes.as_ref().unwrap_or(&inner.routes),
            pass_auth_cookies: host.pass_auth_cookies,
            host: Some(host),
        })
    }

    /// The `callbackUrl` of a sign-in from this request.
    fn return_to(&self, inner: &crate::state::Inner, path_and_query: &str) -> String {
        match self.host {
            Some(host) => host.return_to(&inner.redirect, path_and_query),
            None => path_and_query.to_owned(),
        }
    }
}

/// For forward-auth: the origin the browser used, as a trusted proxy
/// (the TCP peer in `trusted_proxies`) reports it in `X-Forwarded-Host` and
/// `X-Forwarded-Proto` (one value each), when it is a permitted `callbackUrl`
/// origin other than `public_url`'s — so a sign-in returns to that host.
/// Anyone else's headers, or another origin: `None` (the path alone, on
/// `public_url`).
fn forwarded_origin(
    inner: &crate::state::Inner,
    peer: Option<std::net::IpAddr>,
    headers: &HeaderMap,
) -> Option<String> {
    if !peer.is_some_and(|ip| inner.settings.trusted_proxies.contains(ip)) {
        return None;
    }
    let single = |name: &str| {
        let mut values = headers.get_all(name).iter();
        let value = values.next()?.to_str().ok()?;
        values.next().is_none().then_some(value)
    };
    let host = single("x-forwarded-host")?;
    let proto = match single("x-forwarded-proto") {
        Some(proto) => proto,
        None if headers.contains_key("x-forwarded-proto") => return None,
        None => inner.settings.public_url.scheme(),
    };
    if !matches!(proto, "http" | "https") || host.contains(['/', '\\', '@', '?', '#', ',']) {
        return None;
    }
    let origin = url::Url::parse(&format!("{proto}://{host}/"))
        .ok()?
        .origin();
    (inner.redirect.permits(&origin) && origin != inner.settings.public_url.origin())
        .then(|| origin.ascii_serialization())
}

/// 421 for a request whose host no upstream serves.
fn unknown_host(json: bool, back: &str) -> Response {
    tracing::info!("refused a request for a host no upstream serves");
    HttpError::new(
        StatusCode::MISDIRECTED_REQUEST,
        "UnknownHost",
        "No application is served at this host.",
    )
    .render(json, back)
}

/// What the upstream is told about the origin the browser used for
/// `public_url`, worked out once: the scheme (`X-Forwarded-Proto`) and the
/// authority (`X-Forwarded-Host`, instead of whatever `Host` the client wrote).
#[derive(Debug, Clone)]
pub(crate) struct PublicOrigin {
    pub scheme: Scheme,
    pub host: Option<HeaderValue>,
}

impl PublicOrigin {
    pub fn of(public_url: &url::Url) -> Self {
        let host = public_url.host_str().and_then(|host| {
            let authority = match public_url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            };
            HeaderValue::from_str(&authority).ok()
        });
        PublicOrigin {
            scheme: if public_url.scheme() == "https" {
                Scheme::Https
            } else {
                Scheme::Http
            },
            host,
        }
    }
}

/// 400 for a path some lenient reading of which cannot be judged (see
/// `authgate_proxy::readings`). The log line names the reason, never the path.
fn ambiguous_path(error: &AmbiguousPath, json: bool, back: &str) -> Response {
    tracing::info!(%error, "refused an ambiguous request path");
    HttpError::bad_request(
        "AmbiguousPath",
        "Servers read this request path in more than one way; send it without encoded separators, NUL or double encoding.",
    )
    .render(json, back)
}

/// `GET {base}/verify`: forward-auth. 200 with identity headers, 401/403/503
/// with a JSON or HTML body, and for browsers without a session a redirect
/// target: a 302 (Traefik, Caddy), or — when the caller is nginx
/// (`X-Original-URI`), which only understands 2xx/401/403 — a 401 carrying
/// the sign-in URL in `Location`. Provider tokens are added only for a
/// trusted proxy ([`forward_auth_release`]).
pub(crate) async fn verify(
    State(gw): State<Gateway>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let inner = &gw.inner;
    let json = wants_json(&headers);
    let back = inner.settings.auth_url("/signin");
    // nginx sets X-Original-*, Traefik and Caddy set X-Forwarded-*, and each
    // passes the client's copies of the other pair through: two different
    // values are refused (`authgate_proxy::original`), and so is a request
    // without any.
    let OriginalRequest {
        method,
        path,
        nginx,
    } = match original_request(&headers) {
        Ok(original) => original,
        Err(error) => {
            let (code, message) = match error {
                OriginalRequestError::Missing => (
                    "MissingOriginalRequest",
                    "Forward-auth needs X-Original-URI (nginx) or X-Forwarded-Uri (Traefik, Caddy).",
                ),
                OriginalRequestError::Ambiguous => (
                    "AmbiguousOriginalRequest",
                    "X-Original-* and X-Forwarded-* name different requests.",
                ),
                OriginalRequestError::InvalidMethod => {
                    ("InvalidMethod", "The original request method is not valid.")
                }
                OriginalRequestError::InvalidPath(_) => {
                    ("InvalidPath", "The original request path is not valid.")
                }
            };
            return HttpError::bad_request(code, message).render(json, &back);
        }
    };
    let judgement = match inner.routes.judge(&method, &path) {
        Ok(judgement) => judgement,
        Err(error) => return ambiguous_path(&error, json, &back),
    };
    let peer = connection.map(|Extension(ConnectInfo(addr))| addr.ip());
    let return_to = match forwarded_origin(&gw.inner, peer, &headers) {
        Some(origin) => format!("{origin}{}", path.path_and_query()),
        None => path.path_and_query(),
    };
    let release = match forward_auth_release(&inner.settings.trusted_proxies, peer, &headers) {
        Ok(release) => release,
        Err(reason) => {
            if inner.settings.forwards_tokens() {
                tracing::info!(%reason, "forward-auth: provider tokens withheld");
            }
            TokenRelease::Withheld
        }
    };
    let decision = gw
        .decide(
            &method,
            judgement.access(),
            &judgement,
            &headers,
            &return_to,
            release,
        )
        .await;
    let response = match decision.verdict {
        Verdict::Allow(session) => {
            let mut response = StatusCode::OK.into_response();
            if let Some(s) = &session {
                append_all(
                    response.headers_mut(),
                    &identity_headers(&inner.settings, s),
                );
            }
            append_all(response.headers_mut(), &decision.cookies);
            response
        }
        Verdict::SignIn(location) => {
            let absolute = format!(
                "{}{}",
                inner.settings.public_url.as_str().trim_end_matches('/'),
                location
            );
            let mut response = if nginx {
                AuthRejection::SessionRequired
                    .http_error()
                    .render(json, &back)
            } else {
                let mut r = StatusCode::FOUND.into_response();
                r.headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            };
            if let Ok(v) = HeaderValue::from_str(&absolute) {
                response.headers_mut().insert(LOCATION, v);
            }
            for value in decision.cookies.get_all(SET_COOKIE) {
                response.headers_mut().append(SET_COOKIE, value.clone());
            }
            response
        }
        Verdict::Deny(_) => decision.into_response(&back),
    };
    record(inner, "verify", response.status(), started);
    response
}
