//! A table of hostile session cookies, each pinned to its specific error.

use super::*;
use crate::time::UnixTime;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::rngs::OsRng;
use std::time::Duration;

const SECRET: &str = "test-secret-at-least-32-chars-long!!";
const OTHER: &str = "another-secret-that-is-also-32-bytes-long";
const NOW: i64 = 1_800_000_000;

fn codec() -> SessionCodec {
    SessionCodec::new(CookieFormat::AuthJs, &[SECRET], false).unwrap()
}

fn v4() -> SessionCodec {
    SessionCodec::new(CookieFormat::NextAuthV4, &[SECRET], false).unwrap()
}

fn now() -> UnixTime {
    UnixTime::from_secs(NOW)
}

fn valid() -> String {
    let claims = SessionClaims {
        sub: Some("user-1".into()),
        ..Default::default()
    };
    codec().encode(&claims, now(), Duration::from_secs(3600), &mut OsRng)
}

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// Replaces segment `i` of a compact JWE.
fn with_segment(token: &str, i: usize, value: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[i] = value.to_owned();
    parts.join(".")
}

/// Flips one bit of the decoded segment `i`.
fn flip(token: &str, i: usize) -> String {
    let seg = token.split('.').nth(i).unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(seg).unwrap();
    bytes[0] ^= 1;
    with_segment(token, i, &URL_SAFE_NO_PAD.encode(bytes))
}

fn kid() -> String {
    codec().jwe_keys().kids(0).0
}

fn cbc_header() -> String {
    format!(r#"{{"alg":"dir","enc":"A256CBC-HS512","kid":"{}"}}"#, kid())
}

/// A token correctly encrypted under our key with an arbitrary payload.
fn sealed_payload(payload: &str) -> String {
    codec()
        .jwe_keys()
        .encrypt_raw(0, &cbc_header(), false, payload.as_bytes())
}

fn exp_in(secs: i64) -> String {
    format!(r#"{{"sub":"u","exp":{}}}"#, NOW + secs)
}

#[test]
fn every_hostile_cookie_fails_with_its_own_error() {
    let good = valid();
    let other_codec = SessionCodec::new(CookieFormat::AuthJs, &[OTHER], false).unwrap();
    let from_other_secret = other_codec.encode(
        &SessionClaims::default(),
        now(),
        Duration::from_secs(60),
        &mut OsRng,
    );
    let gcm_kid = codec().jwe_keys().kids(0).1;
    let gcm_header = format!(r#"{{"alg":"dir","enc":"A256GCM","kid":"{gcm_kid}"}}"#);
    let gcm_token = codec()
        .jwe_keys()
        .encrypt_raw(0, &gcm_header, true, exp_in(60).as_bytes());
    let deep = format!(
        r#"{{"exp":{},"x":{}{}}}"#,
        NOW + 60,
        "[".repeat(200),
        "]".repeat(200)
    );

    let cases: Vec<(&str, String, CookieError)> = vec![
        ("empty", String::new(), CookieError::Empty),
        (
            "oversized",
            "a".repeat(MAX_TOKEN_LEN + 1),
            CookieError::Oversized {
                len: MAX_TOKEN_LEN + 1,
                max: MAX_TOKEN_LEN,
            },
        ),
        (
            "four segments",
            "a.b.c.d".into(),
            CookieError::WrongSegmentCount { found: 4 },
        ),
        (
            "six segments",
            "a.b.c.d.e.f".into(),
            CookieError::WrongSegmentCount { found: 6 },
        ),
        (
            "a JWS, not a JWE",
            "a.b.c".into(),
            CookieError::WrongSegmentCount { found: 3 },
        ),
        (
            "header not base64",
            with_segment(&good, 0, "!!!"),
            CookieError::BadBase64(JwePart::Header),
        ),
        (
            "header padded",
            with_segment(&good, 0, "e30="),
            CookieError::BadBase64(JwePart::Header),
        ),
        (
            "header not JSON",
            with_segment(&good, 0, &b64("not json")),
            CookieError::BadHeader,
        ),
        (
            "header a JSON array",
            with_segment(&good, 0, &b64("[]")),
            CookieError::BadHeader,
        ),
        (
            "header without enc",
            with_segment(&good, 0, &b64(r#"{"alg":"dir"}"#)),
            CookieError::BadHeader,
        ),
        (
            "header with duplicate alg",
            with_segment(
                &good,
                0,
                &b64(r#"{"alg":"dir","alg":"dir","enc":"A256GCM"}"#),
            ),
            CookieError::BadHeader,
        ),
        (
            "oversized header",
            with_segment(&good, 0, &"A".repeat(2000)),
            CookieError::Oversized {
                len: 2000,
                max: 1024,
            },
        ),
        (
            "alg none",
            with_segment(&good, 0, &b64(r#"{"alg":"none","enc":"A256CBC-HS512"}"#)),
            CookieError::UnsupportedAlg("none".into()),
        ),
        (
            "alg RSA-OAEP",
            with_segment(&good, 0, &b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#)),
            CookieError::UnsupportedAlg("RSA-OAEP".into()),
        ),
        (
            "enc A128GCM",
            with_segment(&good, 0, &b64(r#"{"alg":"dir","enc":"A128GCM"}"#)),
            CookieError::UnsupportedEnc("A128GCM".into()),
        ),
        (
            "enc A128CBC-HS256",
            with_segment(&good, 0, &b64(r#"{"alg":"dir","enc":"A128CBC-HS256"}"#)),
            CookieError::UnsupportedEnc("A128CBC-HS256".into()),
        ),
        (
            "compressed payload",
            with_segment(
                &good,
                0,
                &b64(r#"{"alg":"dir","enc":"A256GCM","zip":"DEF"}"#),
            ),
            CookieError::UnsupportedHeaderParameter("zip"),
        ),
        (
            "critical extension",
            with_segment(
                &good,
                0,
                &b64(r#"{"alg":"dir","enc":"A256GCM","crit":["exp"]}"#),
            ),
            CookieError::UnsupportedHeaderParameter("crit"),
        ),
        (
            "encrypted key present",
            with_segment(&good, 1, "AAAA"),
            CookieError::UnexpectedEncryptedKey,
        ),
        (
            "iv not base64",
            with_segment(&good, 2, "*"),
            CookieError::BadBase64(JwePart::Iv),
        ),
        (
            "iv too short",
            with_segment(&good, 2, &URL_SAFE_NO_PAD.encode([0u8; 12])),
            CookieError::BadLength {
                part: JwePart::Iv,
                len: 12,
                expected: 16,
            },
        ),
        (
            "tag truncated to 16 bytes",
            with_segment(&good, 4, &URL_SAFE_NO_PAD.encode([0u8; 16])),
            CookieError::BadLength {
                part: JwePart::Tag,
                len: 16,
                expected: 32,
            },
        ),
        (
            "tag empty",
            with_segment(&good, 4, ""),
            CookieError::BadLength {
                part: JwePart::Tag,
                len: 0,
                expected: 32,
            },
        ),
        (
            "ciphertext not base64",
            with_segment(&good, 3, "%%"),
            CookieError::BadBase64(JwePart::Ciphertext),
        ),
        (
            "ciphertext not whole blocks",
            with_segment(&good, 3, &URL_SAFE_NO_PAD.encode([0u8; 17])),
            CookieError::BadLength {
                part: JwePart::Ciphertext,
                len: 17,
                expected: 16,
            },
        ),
        (
            "ciphertext empty",
            with_segment(&good, 3, ""),
            CookieError::BadLength {
                part: JwePart::Ciphertext,
                len: 0,
                expected: 16,
            },
        ),
        (
            "ciphertext bit flipped",
            flip(&good, 3),
            CookieError::Tampered,
        ),
        ("tag bit flipped", flip(&good, 4), CookieError::Tampered),
        ("iv bit flipped", flip(&good, 2), CookieError::Tampered),
        (
            "header re-encoded (AAD changed)",
            with_segment(&good, 0, &b64(&cbc_header().replace('{', "{ "))),
            CookieError::Tampered,
        ),
        (
            "segments swapped",
            {
                let p: Vec<&str> = good.split('.').collect();
                [p[0], p[1], p[2], p[4], p[3]].join(".")
            },
            CookieError::BadLength {
                part: JwePart::Tag,
                len: URL_SAFE_NO_PAD
                    .decode(good.split('.').nth(3).unwrap())
                    .unwrap()
                    .len(),
                expected: 32,
            },
        ),
        (
            "kid of no configured secret",
            with_segment(
                &good,
                0,
                &b64(r#"{"alg":"dir","enc":"A256CBC-HS512","kid":"nope"}"#),
            ),
            CookieError::UnknownKid,
        ),
        (
            "token from another secret",
            from_other_secret.clone(),
            CookieError::UnknownKid,
        ),
        (
            "no kid, another secret",
            other_codec.jwe_keys().encrypt_raw(
                0,
                r#"{"alg":"dir","enc":"A256CBC-HS512"}"#,
                false,
                exp_in(60).as_bytes(),
            ),
            CookieError::WrongKey,
        ),
        (
            "gcm tag flipped",
            flip(&gcm_token, 4),
            CookieError::Tampered,
        ),
        (
            "payload not JSON",
            sealed_payload("hello"),
            CookieError::BadPayload("not JSON"),
        ),
        (
            "payload JSON with invalid UTF-8 in a string",
            codec().jwe_keys().encrypt_raw(
                0,
                &cbc_header(),
                false,
                &[
                    br#"{"sub":""#.as_slice(),
                    b"\xff\xfe",
                    br#"","exp":4102444800}"#,
                ]
                .concat(),
            ),
            CookieError::BadPayload("not JSON"),
        ),
        (
            "payload truncated JSON",
            sealed_payload(r#"{"exp":1"#),
            CookieError::BadPayload("not JSON"),
        ),
        (
            "payload a JSON array",
            sealed_payload("[1,2]"),
            CookieError::BadPayload("a claim has the wrong type"),
        ),
        (
            "exp a string",
            sealed_payload(r#"{"exp":"tomorrow"}"#),
            CookieError::BadPayload("a claim has the wrong type"),
        ),
        (
            "sub a number",
            sealed_payload(&format!(r#"{{"sub":1,"exp":{}}}"#, NOW + 60)),
            CookieError::BadPayload("a claim has the wrong type"),
        ),
        (
            "deeply nested claim",
            sealed_payload(&deep),
            CookieError::BadPayload("not JSON"),
        ),
        (
            "no exp",
            sealed_payload(r#"{"sub":"u"}"#),
            CookieError::MissingExpiry,
        ),
        (
            "expired",
            sealed_payload(&exp_in(-16)),
            CookieError::Expired {
                exp: NOW - 16,
                now: NOW,
            },
        ),
        (
            "expired exactly at the tolerance",
            sealed_payload(&exp_in(-15)),
            CookieError::Expired {
                exp: NOW - 15,
                now: NOW,
            },
        ),
        (
            "not yet valid",
            sealed_payload(&format!(r#"{{"exp":{},"nbf":{}}}"#, NOW + 100, NOW + 16)),
            CookieError::NotYetValid {
                nbf: NOW + 16,
                now: NOW,
            },
        ),
    ];
    assert!(cases.len() >= 30, "the table must keep at least 30 cases");
    for (what, token, expected) in cases {
        assert_eq!(codec().decode(&token, now()), Err(expected), "case: {what}");
    }
}

#[test]
fn next_auth_v4_rejects_what_v5_writes_and_headers_it_never_writes() {
    let good = valid();
    assert_eq!(
        v4().decode(&good, now()),
        Err(CookieError::UnsupportedEnc("A256CBC-HS512".into()))
    );
    let with_kid = v4().jwe_keys().encrypt_raw(
        0,
        r#"{"alg":"dir","enc":"A256GCM","kid":"x"}"#,
        true,
        exp_in(60).as_bytes(),
    );
    assert_eq!(
        v4().decode(&with_kid, now()),
        Err(CookieError::UnsupportedHeaderParameter("kid"))
    );
    let other = SessionCodec::new(CookieFormat::NextAuthV4, &[OTHER], false).unwrap();
    let foreign = other.encode(
        &SessionClaims::default(),
        now(),
        Duration::from_secs(60),
        &mut OsRng,
    );
    assert_eq!(v4().decode(&foreign, now()), Err(CookieError::WrongKey));
}

#[test]
fn within_the_clock_tolerance_an_expired_token_still_decodes() {
    assert!(codec().decode(&sealed_payload(&exp_in(-14)), now()).is_ok());
    let nbf = format!(r#"{{"exp":{},"nbf":{}}}"#, NOW + 100, NOW + 15);
    assert!(codec().decode(&sealed_payload(&nbf), now()).is_ok());
}

#[test]
fn an_auth_js_gcm_token_with_the_gcm_kid_decodes() {
    let kid = codec().jwe_keys().kids(0).1;
    let header = format!(r#"{{"alg":"dir","enc":"A256GCM","kid":"{kid}"}}"#);
    let token = codec()
        .jwe_keys()
        .encrypt_raw(0, &header, true, exp_in(60).as_bytes());
    assert_eq!(
        codec().decode(&token, now()).unwrap().sub.as_deref(),
        Some("u")
    );
}

#[test]
fn rotation_decodes_old_tokens_by_kid_and_encrypts_with_the_first_secret() {
    let old = SessionCodec::new(CookieFormat::AuthJs, &[OTHER], false).unwrap();
    let rotated = SessionCodec::new(CookieFormat::AuthJs, &[SECRET, OTHER], false).unwrap();
    let claims = SessionClaims {
        sub: Some("u".into()),
        ..Default::default()
    };
    let old_token = old.encode(&claims, now(), Duration::from_secs(60), &mut OsRng);
    assert_eq!(
        rotated.decode(&old_token, now()).unwrap().sub.as_deref(),
        Some("u")
    );
    let new_token = rotated.encode(&claims, now(), Duration::from_secs(60), &mut OsRng);
    assert!(codec().decode(&new_token, now()).is_ok());
    assert_eq!(old.decode(&new_token, now()), Err(CookieError::UnknownKid));
}

#[test]
fn a_token_without_kid_is_tried_with_the_first_secret_only() {
    let rotated = SessionCodec::new(CookieFormat::AuthJs, &[SECRET, OTHER], false).unwrap();
    let old = SessionCodec::new(CookieFormat::AuthJs, &[OTHER], false).unwrap();
    let no_kid_old = old.jwe_keys().encrypt_raw(
        0,
        r#"{"alg":"dir","enc":"A256CBC-HS512"}"#,
        false,
        exp_in(60).as_bytes(),
    );
    assert_eq!(
        rotated.decode(&no_kid_old, now()),
        Err(CookieError::WrongKey)
    );
    let no_kid_new = codec().jwe_keys().encrypt_raw(
        0,
        r#"{"alg":"dir","enc":"A256CBC-HS512"}"#,
        false,
        exp_in(60).as_bytes(),
    );
    assert!(rotated.decode(&no_kid_new, now()).is_ok());
}

#[test]
fn secure_cookies_use_the_prefixed_name_as_salt() {
    let secure = SessionCodec::new(CookieFormat::AuthJs, &[SECRET], true).unwrap();
    assert_eq!(secure.cookie_name(), "__Secure-authjs.session-token");
    let token = secure.encode(
        &SessionClaims::default(),
        now(),
        Duration::from_secs(60),
        &mut OsRng,
    );
    assert_eq!(codec().decode(&token, now()), Err(CookieError::UnknownKid));
    assert!(secure.decode(&token, now()).is_ok());
}

#[test]
fn numeric_claims_survive_re_encoding_unchanged() {
    // Found by fuzzing (fuzz/regressions/session_cookie/float-claim-drift):
    // a number too large for an integer was read one ulp off, so every
    // rewrite of the cookie changed it. JavaScript reads the correctly
    // rounded value, as Rust's own literal parser does.
    let payload = format!(
        r#"{{"exp":{},"authgate":{{"acc":1900000000000000000003100,"prv":"op"}},"ratio":0.30000000000000004,"tiny":5e-324}}"#,
        NOW + 60
    );
    let claims = codec().decode(&sealed_payload(&payload), now()).unwrap();
    assert_eq!(
        claims.extra["authgate"]["acc"].as_f64(),
        Some(1900000000000000000003100.0)
    );
    assert_eq!(claims.extra["ratio"].as_f64(), Some(0.1 + 0.2));
    let again = codec().encode(&claims, now(), Duration::from_secs(3600), &mut OsRng);
    let back = codec().decode(&again, now()).unwrap();
    assert_eq!(back.extra, claims.extra);
}
