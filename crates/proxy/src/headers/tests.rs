use super::*;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let value = HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}"));
        h.append(name, value);
    }
    h
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn trusted(list: &[&str]) -> TrustedProxies {
    TrustedProxies::parse(list).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn strips_identity_headers_and_variants() {
    let mut h = map(&[
        ("X-Auth-Request-User", "admin"),
        ("x_auth_request_user", "admin"),
        ("X-AUTH-REQUEST-USER", "admin2"),
        ("x-auth-request-email", "a@b"),
        ("x-auth_request-name", "n"),
        ("x.auth.request.groups", "g"),
        ("x-forwarded-access-token", "t"),
        ("authorization", "Basic x"),
        ("x-auth-request-userx", "keep"),
        ("accept", "*/*"),
    ]);
    let removed = strip_identity_headers(&mut h);
    assert_eq!(removed, 6);
    let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["accept", "authorization", "x-auth-request-userx"]);

    let owned = OwnedHeaders::default().with("Authorization");
    assert!(owned.is_owned("AUTHORIZATION"));
    owned.strip(&mut h);
    assert!(h.get("authorization").is_none());

    let custom = OwnedHeaders::new(["X-User"]);
    let mut h = map(&[("x_user", "a"), ("x-auth-request-user", "b")]);
    assert_eq!(custom.strip(&mut h), 1);
    assert!(h.contains_key("x-auth-request-user"));
    assert_eq!(custom.names().collect::<Vec<_>>(), ["x-user"]);
}

#[test]
fn hop_by_hop() {
    let mut h = map(&[
        ("connection", "close, X-Secret-Hop"),
        ("connection", "host"),
        ("x-secret-hop", "1"),
        ("keep-alive", "timeout=5"),
        ("proxy-authorization", "Basic x"),
        ("proxy-connection", "keep-alive"),
        ("te", "trailers"),
        ("trailer", "x-t"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
        ("host", "example.com"),
        ("x-keep", "1"),
    ]);
    remove_hop_by_hop(&mut h, false);
    let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["host", "x-keep"]);
}

#[test]
fn websocket_upgrade_is_kept_when_asked() {
    let mut h = map(&[
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-key", "k"),
    ]);
    assert!(is_websocket_upgrade(&h));
    remove_hop_by_hop(&mut h, true);
    assert_eq!(
        h.get("connection").map(|v| v.as_bytes()),
        Some(&b"upgrade"[..])
    );
    assert_eq!(
        h.get("upgrade").map(|v| v.as_bytes()),
        Some(&b"WebSocket"[..])
    );
    assert!(h.contains_key("sec-websocket-key"));
    assert!(!is_websocket_upgrade(&map(&[("upgrade", "websocket")])));
    assert!(!is_websocket_upgrade(&map(&[
        ("connection", "upgrade"),
        ("upgrade", "h2c")
    ])));
}

#[test]
fn client_ip_walks_from_the_right() {
    let t = trusted(&["10.0.0.0/8", "127.0.0.1"]);
    let h = map(&[
        ("x-forwarded-for", "6.6.6.6, 1.2.3.4"),
        ("x-forwarded-for", "10.1.1.1"),
    ]);
    assert_eq!(client_ip(ip("127.0.0.1"), &h, &t), ip("1.2.3.4"));
    assert_eq!(client_ip(ip("9.9.9.9"), &h, &t), ip("9.9.9.9"));
    assert_eq!(client_ip(ip("::ffff:127.0.0.1"), &h, &t), ip("1.2.3.4"));
    let all_trusted = map(&[("x-forwarded-for", "10.0.0.1, 10.0.0.2")]);
    assert_eq!(client_ip(ip("127.0.0.1"), &all_trusted, &t), ip("10.0.0.1"));
    let garbage = map(&[("x-forwarded-for", "1.1.1.1, nonsense, 10.0.0.3")]);
    assert_eq!(client_ip(ip("127.0.0.1"), &garbage, &t), ip("10.0.0.3"));
    let with_port = map(&[("x-forwarded-for", "[2001:db8::1]:443, 5.5.5.5:80")]);
    assert_eq!(client_ip(ip("127.0.0.1"), &with_port, &t), ip("5.5.5.5"));
    assert_eq!(
        client_ip(ip("127.0.0.1"), &HeaderMap::new(), &t),
        ip("127.0.0.1")
    );
}

#[test]
fn forwarding_headers_from_untrusted_peer_are_replaced() {
    let mut h = map(&[
        ("x-forwarded-for", "6.6.6.6"),
        ("x_forwarded_for", "7.7.7.7"),
        ("x-real-ip", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=6.6.6.6"),
        ("x-forwarded-port", "443"),
    ]);
    let host = HeaderValue::from_static("app.example");
    set_forwarding_headers(
        &mut h,
        ip("192.0.2.1"),
        Scheme::Http,
        Some(&host),
        &TrustedProxies::none(),
    );
    assert_eq!(
        h.get("x-forwarded-for").map(|v| v.as_bytes()),
        Some(&b"192.0.2.1"[..])
    );
    assert_eq!(
        h.get("x-real-ip").map(|v| v.as_bytes()),
        Some(&b"192.0.2.1"[..])
    );
    assert_eq!(
        h.get("x-forwarded-proto").map(|v| v.as_bytes()),
        Some(&b"http"[..])
    );
    assert_eq!(
        h.get("x-forwarded-host").map(|v| v.as_bytes()),
        Some(&b"app.example"[..])
    );
    assert!(!h.contains_key("x_forwarded_for"));
    assert!(!h.contains_key("forwarded"));
    assert!(!h.contains_key("x-forwarded-port"));
    assert_eq!(h.len(), 4);
}

#[test]
fn forwarding_headers_from_trusted_peer_are_appended() {
    let mut h = map(&[
        ("x-forwarded-for", "6.6.6.6, 1.2.3.4"),
        ("x_forwarded_for", "7.7.7.7"),
        ("forwarded", "for=1.2.3.4"),
        ("x_forwarded_port", "1"),
    ]);
    set_forwarding_headers(
        &mut h,
        ip("127.0.0.1"),
        Scheme::Https,
        None,
        &trusted(&["127.0.0.0/8"]),
    );
    assert_eq!(
        h.get("x-forwarded-for").map(|v| v.as_bytes()),
        Some(&b"6.6.6.6, 1.2.3.4, 127.0.0.1"[..])
    );
    assert_eq!(
        h.get("x-real-ip").map(|v| v.as_bytes()),
        Some(&b"1.2.3.4"[..])
    );
    assert_eq!(
        h.get("x-forwarded-proto").map(|v| v.as_bytes()),
        Some(&b"https"[..])
    );
    assert!(h.contains_key("forwarded"));
    assert!(!h.contains_key("x_forwarded_port"));
    assert!(!h.contains_key("x_forwarded_for"));
}

#[test]
fn request_ids() {
    let t = trusted(&["127.0.0.1"]);
    let h = map(&[("x-request-id", "abc-123")]);
    assert_eq!(request_id(ip("127.0.0.1"), &h, &t), "abc-123");
    assert_ne!(request_id(ip("192.0.2.1"), &h, &t), "abc-123");
    let bad = map(&[("x-request-id", "a b")]);
    assert_ne!(request_id(ip("127.0.0.1"), &bad, &t), "a b");
    let twice = map(&[("x-request-id", "a"), ("x-request-id", "b")]);
    let id = request_id(ip("127.0.0.1"), &twice, &t);
    assert!(id != "a" && id != "b");
    let generated = generate_request_id();
    assert_eq!(generated.len(), 36);
    assert!(is_valid_request_id(&generated));
    assert_ne!(generate_request_id(), generated);
    assert!(!is_valid_request_id(&HeaderValue::from_static("")));

    let mut h = map(&[("x_request_id", "forged"), ("x-request-id", "forged")]);
    set_request_id(&mut h, HeaderValue::from_static("mine"));
    assert_eq!(h.len(), 1);
    assert_eq!(
        h.get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"mine"[..])
    );
}

fn cookie_lines(h: &HeaderMap) -> Vec<Vec<u8>> {
    h.get_all(header::COOKIE)
        .iter()
        .map(|v| v.as_bytes().to_vec())
        .collect()
}

fn is_session(name: &[u8]) -> bool {
    name == b"sid" || name.starts_with(b"sid.")
}

#[test]
fn remove_cookies_takes_out_only_the_chosen_names_and_keeps_the_rest_byte_for_byte() {
    let mut h = map(&[(
        "cookie",
        "theme=dark;sid.0=AAA; lang=\"en-GB\";  sid.1=BBB ;x=a=b; sidx=keep",
    )]);
    assert_eq!(remove_cookies(&mut h, is_session), 2);
    assert_eq!(
        cookie_lines(&h),
        [b"theme=dark; lang=\"en-GB\"; x=a=b; sidx=keep".to_vec()]
    );

    // Only chosen cookies: the header goes.
    let mut h = map(&[("cookie", "sid=1"), ("cookie", "sid.0=2; sid.1=3")]);
    assert_eq!(remove_cookies(&mut h, is_session), 3);
    assert!(h.get(header::COOKIE).is_none());

    // Several headers (HTTP/2): one header, every other cookie kept in order.
    let mut h = map(&[
        ("cookie", "a=1"),
        ("cookie", "sid=x"),
        ("cookie", "b=2; c=3"),
    ]);
    assert_eq!(remove_cookies(&mut h, is_session), 1);
    assert_eq!(cookie_lines(&h), [b"a=1; b=2; c=3".to_vec()]);
    let mut h = map(&[("cookie", "a=1"), ("cookie", "b=2")]);
    assert_eq!(remove_cookies(&mut h, is_session), 0);
    assert_eq!(cookie_lines(&h), [b"a=1; b=2".to_vec()]);

    // Nothing chosen in a single header: untouched, odd spacing included.
    let mut h = map(&[("cookie", " a=1;;b=2 ;")]);
    assert_eq!(remove_cookies(&mut h, is_session), 0);
    assert_eq!(cookie_lines(&h), [b" a=1;;b=2 ;".to_vec()]);

    // Names are case-sensitive; a nameless cookie is judged by its whole text.
    let mut h = map(&[("cookie", "SID=1; sid; Sid.0=2")]);
    assert_eq!(remove_cookies(&mut h, is_session), 1);
    assert_eq!(cookie_lines(&h), [b"SID=1; Sid.0=2".to_vec()]);

    // Bytes that are not UTF-8 pass through.
    let mut h = HeaderMap::new();
    h.insert(
        header::COOKIE,
        HeaderValue::from_bytes(b"v=\xe9t\xe9; sid=1").unwrap_or_else(|e| panic!("{e}")),
    );
    assert_eq!(remove_cookies(&mut h, is_session), 1);
    assert_eq!(cookie_lines(&h), [b"v=\xe9t\xe9".to_vec()]);

    // No Cookie header at all.
    let mut h = map(&[("accept", "*/*")]);
    assert_eq!(remove_cookies(&mut h, is_session), 0);
    assert_eq!(h.len(), 1);
}

mod cookie_properties {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("sid".to_owned()),
            (0u8..12).prop_map(|i| format!("sid.{i}")),
            "[A-Za-z0-9_.-]{1,8}",
        ]
    }

    /// Cookie values: cookie-octets (RFC 6265 §4.1.1), possibly quoted.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[!#-+\\--:<-\\[\\]-~]{0,12}",
            "[!#-+\\--:<-\\[\\]-~]{0,12}".prop_map(|v| format!("\"{v}\"")),
        ]
    }

    proptest! {
        #[test]
        fn every_other_cookie_survives_in_order_and_no_chosen_one_does(
            headers in prop::collection::vec(
                prop::collection::vec((name(), value(), "[ ]{0,2}"), 1..6),
                1..4,
            ),
        ) {
            let mut h = HeaderMap::new();
            let mut expected = Vec::new();
            for pairs in &headers {
                let text: Vec<String> = pairs.iter().map(|(n, v, pad)| format!("{pad}{n}={v}")).collect();
                for (n, v, _) in pairs {
                    if !is_session(n.as_bytes()) {
                        expected.push(format!("{n}={v}"));
                    }
                }
                let value = HeaderValue::from_str(&text.join(";"))
                    .unwrap_or_else(|e| panic!("{e}"));
                h.append(header::COOKIE, value);
            }
            let before = cookie_lines(&h);
            let removed = remove_cookies(&mut h, is_session);
            let total: usize = headers.iter().map(Vec::len).sum();
            prop_assert_eq!(removed, total - expected.len());
            let after = cookie_lines(&h);
            if removed == 0 && headers.len() == 1 {
                prop_assert_eq!(after, before);
            } else if expected.is_empty() {
                prop_assert!(after.is_empty());
            } else {
                prop_assert_eq!(after, vec![expected.join("; ").into_bytes()]);
            }
        }
    }
}

mod canonical_name_properties {
    use super::super::{has_canonical_name, same_canonical_name};
    use super::*;
    use proptest::prelude::*;

    /// Header-like names, look-alikes and arbitrary text (non-ASCII included).
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9_.-]{0,24}",
            "x[-_.]auth[-_.]request[-_.]user",
            "\\PC{0,12}",
        ]
    }

    proptest! {
        /// The allocation-free comparisons agree with comparing the built
        /// canonical names, for any pair of strings.
        #[test]
        fn comparisons_agree_with_building_the_canonical_names(a in text(), b in text()) {
            let expected = canonical_header_name(&a) == canonical_header_name(&b);
            prop_assert_eq!(same_canonical_name(&a, &b), expected);
            prop_assert_eq!(has_canonical_name(&a, &canonical_header_name(&b)), expected);
        }
    }
}
