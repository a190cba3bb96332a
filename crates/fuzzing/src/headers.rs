//! `forward_auth`: the headers of a forward-auth call and of a proxied request.

use authgate_proxy::headers::{
    X_FORWARDED_FOR, X_FORWARDED_PROTO, X_REAL_IP, canonical_header_name, set_forwarding_headers,
};
use authgate_proxy::{
    OriginalRequestError, OwnedHeaders, Scheme, TrustedProxies, client_ip, normalize,
    original_request, remove_cookies, strip_identity_headers,
};
use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;

/// The direct peers the first byte picks from.
const PEERS: [&str; 6] = [
    "10.0.0.7",
    "203.0.113.9",
    "::1",
    "::ffff:10.0.0.8",
    "2001:db8::5",
    "127.0.0.1",
];

/// `forward_auth`: the first byte picks the direct peer and whether the
/// trusted proxies are `10.0.0.0/8, ::1` or nobody; the rest is a header
/// block, one `name: value` per line (lines that are not a valid header are
/// skipped, as hyper would refuse them).
///
/// Properties: nothing panics. The original request, when read, comes from
/// headers that name it, and its path is in normal form. `client_ip` is the
/// peer unless the peer is trusted, and otherwise the peer or an address
/// from `X-Forwarded-For`. After `set_forwarding_headers`, there is one
/// `X-Forwarded-For` ending with the peer, one `X-Forwarded-Proto` and an
/// `X-Real-IP` that is `client_ip`. After `strip_identity_headers`, no
/// header is an identity header in any spelling. After `remove_cookies`, no
/// cookie it was asked to remove is left and every other one is kept.
pub fn forward_auth(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(peer) = PEERS[usize::from(selector) % PEERS.len()].parse::<IpAddr>() else {
        panic!("a listed peer does not parse");
    };
    let trusted = if selector & 0x80 == 0 {
        TrustedProxies::parse(["10.0.0.0/8", "::1"]).unwrap_or_default()
    } else {
        TrustedProxies::none()
    };
    let headers = header_block(rest);

    match original_request(&headers) {
        Ok(original) => {
            assert!(
                headers.contains_key("x-original-uri") || headers.contains_key("x-forwarded-uri")
            );
            assert_eq!(original.nginx, headers.contains_key("x-original-uri"));
            match normalize(original.path.path()) {
                Ok(again) => assert_eq!(again.path(), original.path.path()),
                Err(e) => panic!("an original path does not normalise: {e}"),
            }
        }
        Err(OriginalRequestError::Missing) => assert!(
            !headers.contains_key("x-original-uri") && !headers.contains_key("x-forwarded-uri")
        ),
        Err(_) => {}
    }

    let client = client_ip(peer, &headers, &trusted);
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        assert_eq!(client, peer);
    } else if client != peer {
        let listed = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|item| forwarded_ip(item) == Some(client));
        assert!(listed, "client {client} is not in X-Forwarded-For");
    }

    let mut forwarded = headers.clone();
    let host = HeaderValue::from_static("app.example.com");
    set_forwarding_headers(&mut forwarded, peer, Scheme::Https, Some(&host), &trusted);
    let xff: Vec<&HeaderValue> = forwarded.get_all(&X_FORWARDED_FOR).iter().collect();
    assert_eq!(xff.len(), 1, "X-Forwarded-For: {xff:?}");
    let last = xff[0]
        .to_str()
        .ok()
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim);
    assert_eq!(last, Some(peer.to_string().as_str()));
    assert_eq!(forwarded.get_all(&X_FORWARDED_PROTO).iter().count(), 1);
    let real_ip = forwarded.get(&X_REAL_IP).and_then(|v| v.to_str().ok());
    assert_eq!(real_ip, Some(client.to_string().as_str()));
    for name in forwarded.keys() {
        let canonical = canonical_header_name(name.as_str());
        if [
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-real-ip",
        ]
        .contains(&canonical.as_str())
        {
            assert_eq!(canonical, name.as_str(), "a variant survives: {name}");
        }
    }

    let mut stripped = headers.clone();
    strip_identity_headers(&mut stripped);
    let owned = OwnedHeaders::default();
    assert!(stripped.keys().all(|name| !owned.is_owned(name.as_str())));

    let mut cookies = headers;
    let doomed = |name: &[u8]| name.starts_with(b"authjs.") || name.starts_with(b"__Secure-");
    let before = cookie_pairs(&cookies);
    remove_cookies(&mut cookies, doomed);
    let after = cookie_pairs(&cookies);
    let expected: Vec<Vec<u8>> = before
        .into_iter()
        .filter(|pair| !doomed(cookie_name(pair)))
        .collect();
    assert_eq!(after, expected, "remove_cookies kept the wrong cookies");
}

/// Parses `name: value` lines into headers, skipping invalid ones.
fn header_block(block: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in block.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value[1..].trim_ascii();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim_ascii()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

/// An `X-Forwarded-For` item as an address (`ip` or `ip:port`).
fn forwarded_ip(item: &str) -> Option<IpAddr> {
    let item = item.trim();
    item.parse::<IpAddr>()
        .ok()
        .or_else(|| item.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// The non-empty, trimmed `name=value` pairs of every `Cookie` header.
fn cookie_pairs(headers: &HeaderMap) -> Vec<Vec<u8>> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .map(<[u8]>::trim_ascii)
        .filter(|pair| !pair.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// A cookie pair's name, as `remove_cookies` reads it.
fn cookie_name(pair: &[u8]) -> &[u8] {
    pair.split(|b| *b == b'=')
        .next()
        .map_or(pair, <[u8]>::trim_ascii)
}
