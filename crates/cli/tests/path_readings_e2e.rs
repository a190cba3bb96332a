//! An allow-list holds for every way an upstream may read the path.
//!
//! A `/admin/**` rule admits only `alice@example.com`. Mallory, signed in with the
//! development provider but not on the list, tries more than forty spellings of
//! `/admin/users` — letter case, `;` parameters, `%3B`, double encoding, trailing dots and
//! spaces, backslashes, NUL, encoded slashes, dot segments, overlong and non-ASCII letters —
//! through the reverse proxy (raw request targets on a TCP socket, to a real upstream that
//! records the path it receives) and through `GET /auth/verify` (in `X-Original-URI` and in
//! `X-Forwarded-Uri`), with a public `/**` catch-all and without one. Alice is the control.
//!
//! The oracle is independent of the gateway's code: [`lenient_readings`] models servers as
//! short pipelines of decoding, parameter stripping, trimming and dot resolution followed by
//! a case-sensitive or case-insensitive match. Every answer to Mallory must be a refusal
//! (400), a denial (401, 403, a redirect to sign in), or a pass whose path (the one the
//! upstream received; for forward-auth, the spelling itself, which the proxy in front
//! forwards as is) has no reading under `/admin`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

/// How the gateway is expected to treat a spelling (the documented choices; the oracle
/// checks safety independently of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Judged as the allow-listed `/admin/**`: Mallory 403, Alice passes.
    Admin,
    /// Refused with 400 for everyone.
    Refused,
    /// Not an admin path: everyone signed in passes.
    Open,
}

use Expect::*;

const SPELLINGS: &[(&str, Expect)] = &[
    // letter case (IIS, ASP.NET, Express by default)
    ("/ADMIN/users", Admin),
    ("/Admin/users", Admin),
    ("/aDmIn/users", Admin),
    ("/ADMIN", Admin),
    ("/ADMIN/", Admin),
    // `;` path parameters (Tomcat, Jetty, Spring)
    ("/admin;x=1/users", Admin),
    ("/admin;/users", Admin),
    ("/ADMIN;jsessionid=ABC/users", Admin),
    ("/public/..;/admin/users", Admin),
    ("/x;y/..;/Admin/users", Admin),
    // `%3B` (decoded, then stripped)
    ("/admin%3Bx/users", Admin),
    ("/admin%3bx=1/users", Admin),
    ("/ADMIN%3B/users", Admin),
    ("/public/..%3B/admin/users", Admin),
    // double encoding
    ("/%2561dmin/users", Admin),
    ("/%2541DMIN/users", Admin),
    ("/adm%2569n/users", Admin),
    ("/%252561dmin/users", Admin),
    ("/admin%253Bx/users", Admin),
    ("/public/%252e%252e/admin/users", Admin),
    ("/admin%252fusers", Refused),
    ("/public%252f..%252fadmin/users", Refused),
    // trailing dots and spaces (Windows, IIS)
    ("/admin./users", Admin),
    ("/admin../users", Admin),
    ("/admin%20/users", Admin),
    ("/admin.%20./users", Admin),
    ("/admin%2e/users", Admin),
    ("/ADMIN%2520/users", Admin),
    ("/x/..%20/admin/users", Admin),
    // backslashes (IIS)
    ("/admin\\users", Refused),
    ("/admin%5cusers", Refused),
    ("/admin%5Cusers", Refused),
    ("/public%5c..%5cadmin/users", Refused),
    ("/admin%255cusers", Refused),
    // NUL
    ("/admin%00/users", Refused),
    ("/admin/users%00.html", Refused),
    ("/admin%2500/users", Refused),
    // encoded slashes
    ("/admin%2fusers", Refused),
    ("/admin%2Fusers", Refused),
    ("/%2fadmin/users", Refused),
    ("/public/..%2fadmin/users", Refused),
    // dot segments and repeated slashes
    ("/public/../admin/users", Admin),
    ("/public/%2e%2e/admin/users", Admin),
    ("//admin/users", Admin),
    ("/./admin/users", Admin),
    ("/admin/../public", Admin),
    // overlong UTF-8 and non-ASCII letters that fold to ASCII
    ("/public/%C0%AE%C0%AE/admin/users", Refused),
    ("/adm%C4%B1n/users", Admin),
    ("/ADM%C4%B0N/users", Admin),
    // controls
    ("/admin/users", Admin),
    ("/public/page", Open),
    ("/administrator/x", Open),
    ("/PUBLIC/Page;v=1", Open),
    ("/files/50%25", Open),
];

// ---------------------------------------------------------------------------------------
// The oracle: lenient readings, modelled independently of the gateway.

#[derive(Debug, Clone, Copy)]
enum Op {
    Decode,
    StripParameters,
    TrimSpaces,
    TrimDotsAndSpaces,
    ResolveDots,
}

const OPS: [Op; 5] = [
    Op::Decode,
    Op::StripParameters,
    Op::TrimSpaces,
    Op::TrimDotsAndSpaces,
    Op::ResolveDots,
];

/// A reading in which decoding produced a separator or a control character: servers split
/// or truncate it in ways that cannot be known, so it counts as reaching anything.
struct Dangerous;

/// Percent-decodes, and reads overlong two-byte UTF-8 (`%C0%AE`) as the ASCII character it
/// spells, as old decoders did.
fn percent_decode(segment: &[u8]) -> Vec<u8> {
    let bytes = percent_decode_bytes(segment);
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (lead @ (0xC0 | 0xC1), Some(&next)) if next & 0xC0 == 0x80 => {
                out.push(((lead & 0x1F) << 6) | (next & 0x3F));
                i += 2;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn percent_decode_bytes(segment: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::new();
    let mut i = 0;
    while i < segment.len() {
        match (
            segment[i],
            segment.get(i + 1).copied().and_then(hex),
            segment.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi * 16 + lo);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn step(op: Op, segments: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, Dangerous> {
    Ok(match op {
        Op::Decode => {
            let decoded: Vec<Vec<u8>> = segments.iter().map(|s| percent_decode(s)).collect();
            if decoded
                .iter()
                .flatten()
                .any(|b| matches!(b, b'/' | b'\\' | 0..=0x1f | 0x7f))
            {
                return Err(Dangerous);
            }
            decoded
        }
        Op::StripParameters => segments
            .into_iter()
            .map(|s| s.split(|b| *b == b';').next().unwrap_or(&[]).to_vec())
            .collect(),
        Op::TrimSpaces | Op::TrimDotsAndSpaces => segments
            .into_iter()
            .map(|mut s| {
                while s != b"." && s != b".." {
                    if s.ends_with(b" ") {
                        s.pop();
                    } else if s.ends_with(b"%20") {
                        s.truncate(s.len() - 3);
                    } else if matches!(op, Op::TrimDotsAndSpaces) && s.ends_with(b".") {
                        s.pop();
                    } else {
                        break;
                    }
                }
                s
            })
            .collect(),
        Op::ResolveDots => {
            let mut out: Vec<Vec<u8>> = Vec::new();
            for s in segments {
                match s.as_slice() {
                    b"" | b"." => {}
                    b".." => {
                        out.pop();
                    }
                    _ => out.push(s),
                }
            }
            out
        }
    })
}

/// The first segment of every reading a modelled server could take of `path` (pipelines of
/// up to three operations), or `Err` when one of them is dangerous.
fn lenient_readings(path: &str) -> Result<Vec<String>, Dangerous> {
    if path.contains('\\') {
        return Err(Dangerous);
    }
    let start: Vec<Vec<u8>> = path
        .split('?')
        .next()
        .unwrap_or("")
        .split('/')
        .skip(1)
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let mut frontier = vec![start];
    let mut firsts = Vec::new();
    for depth in 0..=3 {
        let mut next = Vec::new();
        for segments in &frontier {
            firsts.push(
                segments
                    .first()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .unwrap_or_default(),
            );
            if depth < 3 {
                for op in OPS {
                    next.push(step(op, segments.clone())?);
                }
            }
        }
        frontier = next;
    }
    Ok(firsts)
}

/// Java's `equalsIgnoreCase` on characters: equal, or equal upper case, or equal lower case
/// of the upper case (simple, one-character mappings: `İ` lowers to `i`).
fn same_ignoring_case(a: &str, b: &str) -> bool {
    let upper = |c: char| c.to_uppercase().next().unwrap_or(c);
    let lower = |c: char| c.to_lowercase().next().unwrap_or(c);
    a.chars().count() == b.chars().count()
        && a.chars()
            .zip(b.chars())
            .all(|(x, y)| x == y || upper(x) == upper(y) || lower(upper(x)) == lower(upper(y)))
}

/// Whether some server could serve `path` under `/admin`.
fn some_reading_reaches_admin(path: &str) -> bool {
    match lenient_readings(path) {
        Err(Dangerous) => true,
        Ok(firsts) => firsts.iter().any(|f| same_ignoring_case(f, "admin")),
    }
}

#[test]
fn the_oracle_sees_the_known_bypasses() {
    for (spelling, expect) in SPELLINGS {
        if *expect != Open {
            assert!(some_reading_reaches_admin(spelling), "{spelling}");
        }
    }
    assert!(!some_reading_reaches_admin("/public/page"));
    assert!(!some_reading_reaches_admin("/administrator/x"));
}

// ---------------------------------------------------------------------------------------
// The stack: the development provider, a recording upstream, the gateway.

/// An upstream application that records every path it receives.
struct Upstream {
    url: Url,
    seen: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    async fn start() -> Self {
        use axum::extract::Request;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let app = axum::Router::new().fallback(move |req: Request| {
            let record = Arc::clone(&record);
            async move {
                let path = req
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned();
                record.lock().unwrap().push(path);
                "upstream"
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            seen,
            _task: task,
        }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

struct Stack {
    gw: Gateway,
    _idp: authgate_devidp::DevIdp,
    upstream: Upstream,
}

async fn stack(catch_all: bool) -> Stack {
    let reserved = reserve().await;
    let redirect = format!("{}auth/callback/op", reserved.url);
    let idp = authgate_devidp::DevIdp::bind(
        "127.0.0.1:0".parse().unwrap(),
        authgate_devidp::DevIdpConfig::default().with_client(
            authgate_devidp::DevClient::new("test", "test-secret").with_redirect_uri(redirect),
        ),
    )
    .await
    .unwrap();
    let upstream = Upstream::start().await;
    let catch_all = if catch_all {
        "[[routes]]\npath = \"/**\"\naccess = \"public\"\n"
    } else {
        ""
    };
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{public}"
upstream = "{upstream}"

[session]
secret = ["test-secret-at-least-32-chars-long!!"]

[refresh]
mode = "inline"

[store]
url = "{{db}}"

[cache]
url = "memory://"

[[providers]]
id = "op"
name = "Development provider"
issuer = "{issuer}"
client_id = "test"
client_secret = "test-secret"
scopes = ["openid", "email", "profile", "offline_access"]

[[routes]]
path = "/admin/**"
access = "protected"
allow_emails = ["alice@example.com"]

[[routes]]
path = "/api/**"
access = "api"

{catch_all}"#,
        public = reserved.url.as_str().trim_end_matches('/'),
        upstream = upstream.url.as_str().trim_end_matches('/'),
        issuer = idp.issuer_str(),
    );
    Stack {
        gw: start(reserved, &toml).await,
        _idp: idp,
        upstream,
    }
}

/// A browser signed in as `user` (`user@example.com`) at the development provider.
async fn sign_in(gw: &Url, user: &str) -> Browser {
    let mut b = Browser::new();
    let r = b.get(&format!("{gw}auth/signin/op?callbackUrl=/")).await;
    assert_eq!(r.status(), 302, "sign-in starts");
    let callback = authgate_testkit::login_with_dev_provider(&location(&r), user, None).await;
    let r = b.get(&callback).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    let session: serde_json::Value = b
        .get(gw.join("/auth/session").unwrap().as_str())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(session["user"]["email"], format!("{user}@example.com"));
    b
}

/// `GET target` written byte for byte on a socket (an HTTP client would clean the target
/// up); returns the status and the `Location` header.
async fn raw_get(gw: &Url, target: &str, cookie: &str) -> (u16, Option<String>) {
    let addr = format!(
        "{}:{}",
        gw.host_str().unwrap(),
        gw.port_or_known_default().unwrap()
    );
    let mut socket = TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{target}: no status line in {text:?}"));
    let location = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("location")
            .then(|| value.trim().to_owned())
    });
    (status, location)
}

/// `GET /auth/verify` with the original URI in `header`.
async fn verify(gw: &Url, header: &str, target: &str, cookie: &str) -> (u16, Option<String>) {
    let r = Browser::new()
        .client
        .get(gw.join("/auth/verify").unwrap())
        .header(header, target)
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    let location = r
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), location)
}

/// The channels a spelling is tried through.
#[derive(Debug, Clone, Copy)]
enum Channel {
    Proxy,
    VerifyOriginalUri,
    VerifyForwardedUri,
}

/// One answer, checked against the oracle (`outsider`) and against the expectation.
fn check(
    channel: Channel,
    spelling: &str,
    expect: Expect,
    outsider: bool,
    (status, location): (u16, Option<String>),
    upstream_saw: Vec<String>,
) {
    let what = format!(
        "{channel:?} {spelling} for {}",
        if outsider { "mallory" } else { "alice" }
    );
    let forwarded = match channel {
        Channel::Proxy => {
            if status == 200 {
                assert_eq!(
                    upstream_saw.len(),
                    1,
                    "{what}: the upstream saw {upstream_saw:?}"
                );
            } else {
                assert!(
                    upstream_saw.is_empty(),
                    "{what}: {status}, yet the upstream saw {upstream_saw:?}"
                );
            }
            upstream_saw.first().cloned()
        }
        _ => Some(spelling.to_owned()),
    };
    // The oracle: the outsider is refused, denied, or passes to a path no reading of which
    // is under /admin.
    if outsider {
        match status {
            400 | 401 | 403 => {}
            302 => assert!(
                location
                    .as_deref()
                    .is_some_and(|l| l.contains("/auth/signin")),
                "{what}: 302 to {location:?}"
            ),
            200 => {
                let path = forwarded.unwrap_or_default();
                assert!(
                    !some_reading_reaches_admin(&path),
                    "{what}: passed to {path}, which some server reads under /admin"
                );
            }
            other => panic!("{what}: unexpected status {other}"),
        }
    }
    let expected = match (expect, outsider) {
        (Admin, true) => 403,
        (Admin, false) | (Open, _) => 200,
        (Refused, _) => 400,
    };
    assert_eq!(status, expected, "{what}");
}

async fn every_spelling_is_judged_for_every_reading(catch_all: bool) {
    let s = stack(catch_all).await;
    let gw = s.gw.url.clone();
    let mallory = sign_in(&gw, "mallory").await.cookie_header();
    let alice = sign_in(&gw, "alice").await.cookie_header();
    assert!(SPELLINGS.len() >= 40);
    for (spelling, expect) in SPELLINGS {
        for (cookie, outsider) in [(&mallory, true), (&alice, false)] {
            s.upstream.take();
            let answer = raw_get(&gw, spelling, cookie).await;
            check(
                Channel::Proxy,
                spelling,
                *expect,
                outsider,
                answer,
                s.upstream.take(),
            );
            for (channel, header) in [
                (Channel::VerifyOriginalUri, "x-original-uri"),
                (Channel::VerifyForwardedUri, "x-forwarded-uri"),
            ] {
                let answer = verify(&gw, header, spelling, cookie).await;
                check(
                    channel,
                    spelling,
                    *expect,
                    outsider,
                    answer,
                    s.upstream.take(),
                );
            }
        }
    }
}

#[tokio::test]
async fn an_allow_list_holds_for_every_reading_with_a_public_catch_all() {
    every_spelling_is_judged_for_every_reading(true).await;
}

#[tokio::test]
async fn an_allow_list_holds_for_every_reading_without_a_catch_all() {
    every_spelling_is_judged_for_every_reading(false).await;
}
