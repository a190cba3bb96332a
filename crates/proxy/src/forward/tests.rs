use super::*;

#[test]
fn upstream_validation() {
    let url = |s: &str| Url::parse(s).unwrap_or_else(|e| panic!("{e}"));
    let new = |s: &str| ReverseProxy::new(url(s), ProxySettings::default()).map(|_| ());
    assert!(new("http://127.0.0.1:3000").is_ok());
    assert!(new("http://app/base/").is_ok());
    assert!(matches!(
        new("https://app"),
        Err(ProxyError::UnsupportedScheme(_))
    ));
    assert!(matches!(
        new("http://app/?q"),
        Err(ProxyError::UnexpectedUrlParts(_))
    ));
    assert!(matches!(
        new("http://u:p@app/"),
        Err(ProxyError::UnexpectedUrlParts(_))
    ));
}

#[test]
fn error_kinds_map_to_statuses() {
    assert_eq!(
        UpstreamErrorKind::ConnectRefused.status(),
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        UpstreamErrorKind::ResponseTimeout.status(),
        StatusCode::GATEWAY_TIMEOUT
    );
    assert_eq!(
        UpstreamErrorKind::ConnectTimeout.status(),
        StatusCode::GATEWAY_TIMEOUT
    );
    assert_eq!(
        UpstreamErrorKind::RequestBody.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(UpstreamErrorKind::Closed.as_str(), "closed");
}

#[test]
fn error_format_from_accept() {
    let mut h = HeaderMap::new();
    assert_eq!(ErrorFormat::from_accept(&h), ErrorFormat::Html);
    h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    assert_eq!(ErrorFormat::from_accept(&h), ErrorFormat::Json);
    h.insert(
        header::ACCEPT,
        HeaderValue::from_static("text/html,application/json"),
    );
    assert_eq!(ErrorFormat::from_accept(&h), ErrorFormat::Html);
}

#[test]
fn error_bodies() {
    let id = HeaderValue::from_static("rid");
    let r = error_response(StatusCode::BAD_GATEWAY, ErrorFormat::Json, Some(&id));
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        r.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    assert_eq!(r.headers().get(&X_REQUEST_ID), Some(&id));
    let r = error_response(StatusCode::GATEWAY_TIMEOUT, ErrorFormat::Html, None);
    assert_eq!(
        r.headers().get(header::CACHE_CONTROL).map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
}
