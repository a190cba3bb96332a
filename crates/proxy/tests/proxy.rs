//! End-to-end behaviour of `ReverseProxy` over real sockets on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use authgate_proxy::{ProxySettings, TrustedProxies};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use common::{distinct, echo_upstream, get, proxy_to, raw};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn identity() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-auth-request-user", HeaderValue::from_static("alice"));
    h.insert(
        "x-auth-request-email",
        HeaderValue::from_static("alice@example.com"),
    );
    h
}

fn header_lines<'a>(lines: &[&'a str], name: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
        })
        .copied()
        .collect()
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let (upstream, _) = echo_upstream().await;
    let proxy = proxy_to(
        &format!("http://{upstream}"),
        ProxySettings::default(),
        identity(),
    )
    .await;
    let spoofs = [
        "X-Auth-Request-User: admin",
        "x_auth_request_user: admin",
        "X-AUTH-REQUEST-USER: admin",
        "X-Auth-Request-User: admin2",
        "X_Auth_Request_Email: admin@example.com",
        "x-auth-request-email: admin@example.com",
        "X-Auth-Request-Name: Admin",
        "x.auth.request.groups: admins",
        "X-Auth-Request-Groups: admins",
        "X-Forwarded-Access-Token: forged",
        "x_forwarded_access_token: forged",
    ];
    let res = raw(proxy, &get("/protected/x", &spoofs)).await;
    assert_eq!(res.status, 200, "{res:?}");
    let lines = res.lines();
    assert!(!res.body.contains("admin"), "{}", res.body);
    assert!(!res.body.contains("forged"), "{}", res.body);
    assert_eq!(
        header_lines(&lines, "x-auth-request-user"),
        ["x-auth-request-user: alice"]
    );
    assert_eq!(
        header_lines(&lines, "x-auth-request-email"),
        ["x-auth-request-email: alice@example.com"]
    );
    for line in &lines[1..] {
        let name = line.split_once(':').map(|(n, _)| n).unwrap_or("");
        assert!(
            !name.contains('_') && !name.contains('.'),
            "variant reached upstream: {line}"
        );
    }

    // Anonymous request on a public route: the gateway adds nothing, the client's copies
    // are still removed.
    let anonymous = proxy_to(
        &format!("http://{upstream}"),
        ProxySettings::default(),
        HeaderMap::new(),
    )
    .await;
    let res = raw(anonymous, &get("/", &spoofs)).await;
    assert_eq!(res.status, 200);
    assert!(
        !res.body.to_ascii_lowercase().contains("x-auth-request"),
        "{}",
        res.body
    );
    assert!(
        !res.body.contains("admin") && !res.body.contains("forged"),
        "{}",
        res.body
    );
}

#[tokio::test]
async fn authorization_is_stripped_only_when_owned() {
    let (upstream, _) = echo_upstream().await;
    let url = format!("http://{upstream}");
    let passthrough = proxy_to(&url, ProxySettings::default(), HeaderMap::new()).await;
    let res = raw(passthrough, &get("/", &["Authorization: Bearer client"])).await;
    assert!(
        res.body.contains("authorization: Bearer client"),
        "{}",
        res.body
    );

    let settings = ProxySettings {
        owned_headers: authgate_proxy::OwnedHeaders::default().with("authorization"),
        ..ProxySettings::default()
    };
    let mut bearer = HeaderMap::new();
    bearer.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer gateway"),
    );
    let owned = proxy_to(&url, settings, bearer).await;
    let res = raw(
        owned,
        &get("/", &["Authorization: Bearer client", "authorization_: x"]),
    )
    .await;
    let lines = res.lines();
    assert_eq!(
        header_lines(&lines, "authorization"),
        ["authorization: Bearer gateway"]
    );
    assert!(!res.body.contains("client"), "{}", res.body);
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed() {
    let (upstream, _) = echo_upstream().await;
    let proxy = proxy_to(
        &format!("http://{upstream}"),
        ProxySettings::default(),
        HeaderMap::new(),
    )
    .await;
    let res = raw(
        proxy,
        &get(
            "/",
            &[
                "Connection: X-Secret-Hop",
                "X-Secret-Hop: 1",
                "Keep-Alive: timeout=5",
                "Proxy-Authorization: Basic eDp5",
                "Proxy-Connection: keep-alive",
                "TE: trailers",
                "Trailer: X-Checksum",
                "Upgrade: h2c",
                "X-End-To-End: kept",
            ],
        ),
    )
    .await;
    assert_eq!(res.status, 200);
    let body = res.body.to_ascii_lowercase();
    for gone in [
        "x-secret-hop",
        "keep-alive:",
        "proxy-",
        "te:",
        "trailer:",
        "upgrade:",
        "connection:",
    ] {
        assert!(
            !body.lines().any(|l| l.starts_with(gone)),
            "{gone} reached upstream:\n{body}"
        );
    }
    assert!(body.contains("x-end-to-end: kept"));
    // Hop-by-hop headers of the upstream response are not passed to the client either.
    assert!(res.header("keep-alive").is_none());
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_client_are_replaced() {
    let (upstream, _) = echo_upstream().await;
    let proxy = proxy_to(
        &format!("http://{upstream}"),
        ProxySettings::default(),
        HeaderMap::new(),
    )
    .await;
    let res = raw(
        proxy,
        &get(
            "/",
            &[
                "X-Forwarded-For: 6.6.6.6",
                "x_forwarded_for: 7.7.7.7",
                "X-Real-IP: 6.6.6.6",
                "X-Forwarded-Proto: https",
                "X-Forwarded-Host: evil.example",
                "Forwarded: for=6.6.6.6",
                "X-Request-Id: forged-id",
            ],
        ),
    )
    .await;
    let lines = res.lines();
    assert_eq!(
        header_lines(&lines, "x-forwarded-for"),
        ["x-forwarded-for: 127.0.0.1"]
    );
    assert_eq!(header_lines(&lines, "x-real-ip"), ["x-real-ip: 127.0.0.1"]);
    assert_eq!(
        header_lines(&lines, "x-forwarded-proto"),
        ["x-forwarded-proto: http"]
    );
    assert_eq!(
        header_lines(&lines, "x-forwarded-host"),
        ["x-forwarded-host: app.example"]
    );
    assert!(header_lines(&lines, "forwarded").is_empty());
    assert!(!res.body.contains("6.6.6.6") && !res.body.contains("7.7.7.7"));
    // A fresh request id replaces the client's and is echoed to the client.
    let id = header_lines(&lines, "x-request-id");
    assert_eq!(id.len(), 1);
    assert!(!id[0].contains("forged"));
    assert_eq!(
        res.header("x-request-id").as_deref(),
        id[0].strip_prefix("x-request-id: ")
    );
}

#[tokio::test]
async fn forwarding_headers_from_a_trusted_proxy_are_extended() {
    let (upstream, _) = echo_upstream().await;
    let settings = ProxySettings {
        trusted_proxies: TrustedProxies::parse(["127.0.0.0/8"]).unwrap(),
        ..ProxySettings::default()
    };
    let proxy = proxy_to(&format!("http://{upstream}"), settings, HeaderMap::new()).await;
    let res = raw(
        proxy,
        &get(
            "/",
            &[
                "X-Forwarded-For: 6.6.6.6, 203.0.113.9",
                "X-Request-Id: edge-42",
            ],
        ),
    )
    .await;
    let lines = res.lines();
    assert_eq!(
        header_lines(&lines, "x-forwarded-for"),
        ["x-forwarded-for: 6.6.6.6, 203.0.113.9, 127.0.0.1"]
    );
    assert_eq!(
        header_lines(&lines, "x-real-ip"),
        ["x-real-ip: 203.0.113.9"]
    );
    assert_eq!(
        header_lines(&lines, "x-request-id"),
        ["x-request-id: edge-42"]
    );
}

#[tokio::test]
async fn the_upstream_receives_the_normalised_path_and_the_query() {
    let (upstream, _) = echo_upstream().await;
    let proxy = proxy_to(
        &format!("http://{upstream}"),
        ProxySettings::default(),
        HeaderMap::new(),
    )
    .await;
    for (sent, seen) in [
        ("/public/../protected/x", "GET /protected/x"),
        ("//protected//x", "GET /protected/x"),
        ("/%70rotected/x", "GET /protected/x"),
        ("/a/%2e%2e/protected/./x/", "GET /protected/x/"),
        ("/..", "GET /"),
        ("/p/../q?b=%2e%2e/..&a=1&a=2", "GET /q?b=%2e%2e/..&a=1&a=2"),
    ] {
        let res = raw(proxy, &get(sent, &[])).await;
        assert_eq!(res.status, 200, "{sent}");
        assert_eq!(res.lines()[0], seen, "{sent}");
    }
    let res = raw(proxy, &get("/a%00b", &[])).await;
    assert_eq!(res.status, 400);
    for separator in ["/files/a%2fb", "/files/a%5Cb"] {
        let res = raw(proxy, &get(separator, &[])).await;
        assert_eq!(
            res.status, 400,
            "{separator}: an encoded separator is refused"
        );
    }
    let res = raw(proxy, &get("/a%zz", &["Accept: application/json"])).await;
    assert_eq!(res.status, 400);
    assert!(
        res.body.contains("\"error\":\"invalid_request\""),
        "{}",
        res.body
    );
}

#[tokio::test]
async fn upstream_base_path_and_host_policy() {
    let (upstream, _) = echo_upstream().await;
    // Default: the upstream's own authority, never the client's Host.
    assert!(!ProxySettings::default().preserve_host);
    let rewriting = proxy_to(
        &format!("http://{upstream}/base/"),
        ProxySettings::default(),
        HeaderMap::new(),
    )
    .await;
    let res = raw(rewriting, &get("/x?y", &[])).await;
    let lines = res.lines();
    assert_eq!(lines[0], "GET /base/x?y");
    assert_eq!(
        header_lines(&lines, "host"),
        [format!("host: {upstream}").as_str()]
    );
    assert_eq!(
        header_lines(&lines, "x-forwarded-host"),
        ["x-forwarded-host: app.example"]
    );

    let settings = ProxySettings {
        preserve_host: true,
        ..ProxySettings::default()
    };
    let preserving = proxy_to(&format!("http://{upstream}"), settings, HeaderMap::new()).await;
    let res = raw(preserving, &get("/", &[])).await;
    assert_eq!(header_lines(&res.lines(), "host"), ["host: app.example"]);
}

fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn upstream_down_gives_502_quickly() {
    let down = closed_port();
    let proxy = proxy_to(
        &format!("http://{down}"),
        ProxySettings::default(),
        HeaderMap::new(),
    )
    .await;
    let started = Instant::now();
    let res = raw(proxy, &get("/", &[])).await;
    assert_eq!(res.status, 502);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(res.header("content-type").unwrap().starts_with("text/html"));
    assert!(res.body.contains("502 Bad Gateway"));
    assert!(res.header("x-request-id").is_some());

    let res = raw(proxy, &get("/", &["Accept: application/json"])).await;
    assert_eq!(res.status, 502);
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(
        res.body.starts_with("{\"error\":\"bad_gateway\""),
        "{}",
        res.body
    );
}

#[tokio::test]
async fn upstream_closing_the_connection_gives_502() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            // Garbage instead of an HTTP response, then close.
            let _ = stream.write_all(b"SSH-2.0-nope\r\n\r\n").await;
        }
    });
    let proxy = proxy_to(
        &format!("http://{addr}"),
        ProxySettings::default(),
        HeaderMap::new(),
    )
    .await;
    let started = Instant::now();
    let res = raw(proxy, &get("/", &[])).await;
    assert_eq!(res.status, 502);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn slow_upstream_gives_504_after_the_response_timeout() {
    let router = Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        "too late"
    });
    let upstream = common::serve(router).await;
    let timeout = Duration::from_millis(400);
    let settings = ProxySettings {
        response_timeout: timeout,
        ..ProxySettings::default()
    };
    let proxy = proxy_to(&format!("http://{upstream}"), settings, HeaderMap::new()).await;
    let started = Instant::now();
    let res = raw(proxy, &get("/", &["Accept: application/json"])).await;
    let elapsed = started.elapsed();
    assert_eq!(res.status, 504);
    assert!(res.body.contains("gateway_timeout"));
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(elapsed < timeout + Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection() {
    let (upstream, peers) = echo_upstream().await;
    let proxy = proxy_to(
        &format!("http://{upstream}"),
        ProxySettings::default(),
        HeaderMap::new(),
    )
    .await;
    for i in 0..8 {
        let res = raw(proxy, &get(&format!("/n/{i}"), &[])).await;
        assert_eq!(res.status, 200);
    }
    assert_eq!(peers.lock().unwrap().len(), 8);
    assert_eq!(distinct(&peers), 1);
}

/// An upstream that accepts any WebSocket-style upgrade and echoes raw bytes.
async fn echo_upgrade_upstream() -> SocketAddr {
    let router = Router::new().fallback(|mut req: Request| async move {
        let on_upgrade = hyper::upgrade::on(&mut req);
        assert_eq!(
            req.headers().get(header::UPGRADE).map(|v| v.as_bytes()),
            Some(&b"websocket"[..])
        );
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let mut io = TokioIo::new(upgraded);
            let mut buf = [0u8; 4096];
            loop {
                match io.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if io.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            .body(axum::body::Body::empty())
            .unwrap()
    });
    common::serve(router).await
}

#[tokio::test]
async fn websocket_upgrade_is_passed_through() {
    let upstream = echo_upgrade_upstream().await;
    let proxy = proxy_to(
        &format!("http://{upstream}"),
        ProxySettings::default(),
        HeaderMap::new(),
    )
    .await;
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\n\
              Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "connection closed during handshake");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(head.contains("sec-websocket-accept: "), "{head}");

    // A masked text frame "hello" and some arbitrary bytes, echoed back verbatim.
    let frame = [
        0x81u8,
        0x85,
        1,
        2,
        3,
        4,
        b'h' ^ 1,
        b'e' ^ 2,
        b'l' ^ 3,
        b'l' ^ 4,
        b'o' ^ 1,
    ];
    for message in [&frame[..], b"second message"] {
        stream.write_all(message).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echoed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(echoed, message);
    }
}

#[tokio::test]
async fn response_timeout_starts_after_the_upload() {
    use futures_util::StreamExt;
    let router = Router::new().fallback(|body: axum::body::Body| async move {
        let mut stream = body.into_data_stream();
        let mut total = 0usize;
        while let Some(chunk) = stream.next().await {
            total += chunk.unwrap().len();
        }
        total.to_string()
    });
    let upstream = common::serve(router).await;
    let settings = ProxySettings {
        response_timeout: Duration::from_millis(300),
        ..ProxySettings::default()
    };
    let proxy = proxy_to(&format!("http://{upstream}"), settings, HeaderMap::new()).await;
    // Five chunks 150 ms apart: the upload takes longer than the response timeout.
    let slow = futures_util::stream::iter(0..5).then(|_| async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        Ok::<_, std::convert::Infallible>(axum::body::Bytes::from_static(b"0123456789"))
    });
    let client: hyper_util::client::legacy::Client<_, axum::body::Body> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let req = axum::http::Request::post(format!("http://{proxy}/upload"))
        .body(axum::body::Body::from_stream(slow))
        .unwrap();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body, "50");
}
