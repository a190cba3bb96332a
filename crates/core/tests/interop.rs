//! Interoperability with the real Auth.js libraries.
//!
//! Every test sends one batch of vectors to `interop/jwt-batch.mjs`, which
//! runs `@auth/core/jwt` (Auth.js v5) and `next-auth/jwt` (v4) under Node, and
//! checks that tokens cross between them and authgate's codec in both
//! directions with the same claims. Encoding is randomized (IV, `jti`, `iat`),
//! so there are no fixed vectors: round trips through the reference code are
//! the test. Needs Node 20+ and `npm ci --prefix interop`; never skipped.

// Test helpers panic on purpose: a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use authgate_core::cookie::chunk::{
    AUTHJS_CHUNK_SIZE, CookieWrite, NEXT_AUTH_V4_CHUNK_SIZE, read_chunks, write_chunks,
};
use authgate_core::cookie::{CookieFormat, SessionClaims, SessionCodec};
use authgate_core::time::UnixTime;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::run_batch;

/// The known-answer secret of REFERENCE.md.
const SECRET: &str = "test-secret-at-least-32-chars-long!!";
/// RFC 7638 thumbprint of the key @auth/core derives from [`SECRET`] with salt
/// `authjs.session-token` (checked by hand against @auth/core 0.41.3).
const KNOWN_KID: &str =
    "855N75YQ5wNYBp80LuzvDcSfbC8yMWap7SFiiuew3w2s_L6nWvH0S7p7YUxhQXk2fr_Xlkc8fxfsX71XAGBCrA";
const OLD_SECRET: &str = "old-secret-that-is-being-rotated-out-0123456789";
const NEW_SECRET: &str = "new-secret-that-now-encrypts-every-token-ABCDEF";

const AUTHJS_COOKIE: &str = "authjs.session-token";
const AUTHJS_SECURE_COOKIE: &str = "__Secure-authjs.session-token";
const V4_COOKIE: &str = "next-auth.session-token";
/// Auth.js's default session lifetime (30 days).
const MAX_AGE: u64 = 30 * 24 * 60 * 60;
/// The four claims [`SessionClaims`] has named fields for.
const PROFILE: [&str; 4] = ["sub", "name", "email", "picture"];
/// The claims the encoders add.
const REGISTERED: [&str; 3] = ["iat", "exp", "jti"];

/// The two library flavours, as `jwt-batch.mjs` and the codec name them.
#[derive(Clone, Copy, Debug)]
enum Lib {
    AuthJs,
    NextAuthV4,
}

impl Lib {
    fn name(self) -> &'static str {
        match self {
            Lib::AuthJs => "authjs",
            Lib::NextAuthV4 => "next-auth-v4",
        }
    }
    fn format(self) -> CookieFormat {
        match self {
            Lib::AuthJs => CookieFormat::AuthJs,
            Lib::NextAuthV4 => CookieFormat::NextAuthV4,
        }
    }
    /// The HKDF salt each library uses for its (non-secure) session cookie:
    /// v5 salts with the cookie name, v4's session routes pass no salt ("").
    fn salt(self) -> &'static str {
        match self {
            Lib::AuthJs => AUTHJS_COOKIE,
            Lib::NextAuthV4 => "",
        }
    }
    fn cookie(self) -> &'static str {
        match self {
            Lib::AuthJs => AUTHJS_COOKIE,
            Lib::NextAuthV4 => V4_COOKIE,
        }
    }
    fn chunk_size(self) -> usize {
        match self {
            Lib::AuthJs => AUTHJS_CHUNK_SIZE,
            Lib::NextAuthV4 => NEXT_AUTH_V4_CHUNK_SIZE,
        }
    }
    /// The protected header the library writes, byte for byte.
    fn header(self) -> String {
        match self {
            Lib::AuthJs => {
                format!(r#"{{"alg":"dir","enc":"A256CBC-HS512","kid":"{KNOWN_KID}"}}"#)
            }
            Lib::NextAuthV4 => r#"{"alg":"dir","enc":"A256GCM"}"#.to_owned(),
        }
    }
}

fn now() -> UnixTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    UnixTime::from_secs(i64::try_from(secs).expect("clock before 2262"))
}

fn codec(lib: Lib, secrets: &[&str]) -> SessionCodec {
    SessionCodec::new(lib.format(), secrets, false)
        .unwrap_or_else(|e| panic!("SessionCodec::new({lib:?}): {e}"))
}

/// A session far over 4 KB: its token must be split into cookie chunks.
fn large_session() -> Value {
    let groups: Vec<String> = (0..140)
        .map(|i| format!("acme-corp/engineering-team-{i:03}"))
        .collect();
    json!({
        "sub": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "name": "Großer Benutzer — 大きなセッション",
        "email": "large.session@example.org",
        "picture": "https://cdn.example.org/avatars/0f8fad5b.png",
        "groups": groups,
        "access_token": "ya29.".to_owned() + &"AbCdEf0123456789_-".repeat(60),
        "id_token_claims": { "amr": ["pwd", "mfa", "hwk"], "acr": "urn:mace:incommon:iap:silver" },
    })
}

/// The claim sets every direction is checked with: profile claims present,
/// absent and null; unicode; nested objects; numbers; booleans; one > 4 KB.
fn claim_sets() -> Vec<Value> {
    vec![
        json!({}),
        json!({ "sub": "1" }),
        json!({
            "sub": "user_2a9f", "name": "Ada Lovelace", "email": "ada@example.com",
            "picture": "https://avatars.example.com/u/1?v=4&s=96"
        }),
        json!({ "sub": "u-zoe", "name": "Zoë Ångström-Øster", "email": "zoë@exämple.de" }),
        json!({ "sub": "u-jp", "name": "山田 太郎", "locale": "ja-JP" }),
        json!({ "sub": "u-emoji", "name": "Ferris 🦀 the 🏳️‍🌈 crab 👩‍👩‍👧‍👦" }),
        json!({ "sub": "u-rtl", "name": "محمد عبد الله", "nickname": "שָׁלוֹם" }),
        json!({ "sub": "u-combining", "name": "e\u{301}\u{301} Z\u{335}a\u{336}l\u{337}g\u{338}o" }),
        json!({
            "sub": "u-escapes", "name": "quote \" backslash \\ slash / tab \t nl \n cr \r",
            "ctl": "\u{1}\u{1f}\u{7f}", "nul": "a\u{0}b", "lineSep": "\u{2028}\u{2029}",
            "html": "</script><script>alert(1)</script>"
        }),
        json!({ "sub": "u-null-profile", "name": null, "email": null, "picture": null }),
        json!({ "email": "no-sub@example.com", "name": "" }),
        json!({ "sub": "u-empty", "name": "", "email": "", "picture": "" }),
        json!({
            "sub": "u-numbers", "zero": 0, "neg": -42, "big": 9_007_199_254_740_991_i64,
            "negBig": -9_007_199_254_740_991_i64, "pi": std::f64::consts::PI, "tiny": 1.5e-7,
            "huge": 1.7976931348623157e308, "half": -0.5
        }),
        json!({ "sub": "u-bools", "admin": true, "banned": false, "nothing": null }),
        json!({
            "sub": "u-nested",
            "authgate": {
                "v": 1, "provider": "github", "accessTokenExpiresAt": 1_764_288_000,
                "scopes": ["openid", "profile", "email"], "refreshError": null,
                "deep": { "a": { "b": { "c": { "d": [1, [2, [3, { "e": "f" }]]] } } } }
            }
        }),
        json!({ "sub": "u-arrays", "roles": ["admin", "editor"], "empty": [], "emptyObj": {},
                "mixed": [1, "two", true, null, { "five": 5 }, [6]] }),
        json!({
            "sub": "google-oauth2|108912345678901234567",
            "name": "Jane Q. Public", "email": "jane+tag@example.co.uk",
            "picture": "https://lh3.googleusercontent.com/a/ACg8ocJ=s96-c",
            "provider": "google", "email_verified": true, "hd": "example.co.uk"
        }),
        json!({ "sub": "u-keys", "weird key ✓": "v", "": "empty key", "with.dot": 1,
                "__proto__x": "not a prototype", "constructor": "plain" }),
        json!({ "sub": "u-long-string", "note": "x".repeat(2000) }),
        json!({ "sub": "u-iss", "iss": "https://authgate.example", "sid": "7b9c0c3e" }),
        json!({
            "sub": "u-access", "accessToken": "gho_16C7e42F292c6912E7710c838347Ae178B4a",
            "refreshToken": "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1ccbF66C46812d",
            "expiresAt": 1_764_288_000, "refreshTokenExpiresAt": 1_779_840_000
        }),
        large_session(),
    ]
}

/// `SessionClaims` with the same content as a JSON claim set.
fn session_claims(c: &Value) -> SessionClaims {
    let obj = c.as_object().expect("claim sets are objects");
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
    SessionClaims {
        sub: text("sub"),
        name: text("name"),
        email: text("email"),
        picture: text("picture"),
        extra: extra_of(c),
        ..SessionClaims::default()
    }
}

/// The claims of `c` that land in `SessionClaims::extra`.
fn extra_of(c: &Value) -> Map<String, Value> {
    c.as_object()
        .expect("claim sets are objects")
        .iter()
        .filter(|(k, _)| !PROFILE.contains(&k.as_str()) && !REGISTERED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// JSON equality where numbers compare by value (JavaScript has one number
/// type: `2.0` comes back as `2`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// A profile claim as a string; JSON null and absence are the same.
fn profile_text<'a>(c: &'a Value, key: &str) -> Option<&'a str> {
    match c.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => panic!("claim {key} is not a string: {other}"),
    }
}

/// Asserts that claims Rust decoded carry the claim set `expected`, plus
/// `iat`/`exp`/`jti` from an encoder that ran at about `now`.
fn assert_rust_claims(what: &str, expected: &Value, got: &SessionClaims, now: UnixTime) {
    assert_eq!(
        got.sub.as_deref(),
        profile_text(expected, "sub"),
        "{what}: sub"
    );
    assert_eq!(
        got.name.as_deref(),
        profile_text(expected, "name"),
        "{what}: name"
    );
    assert_eq!(
        got.email.as_deref(),
        profile_text(expected, "email"),
        "{what}: email"
    );
    assert_eq!(
        got.picture.as_deref(),
        profile_text(expected, "picture"),
        "{what}: picture"
    );
    let want_extra = Value::Object(extra_of(expected));
    let got_extra = Value::Object(got.extra.clone());
    assert!(
        json_eq(&want_extra, &got_extra),
        "{what}: extra claims differ\n  sent: {want_extra}\n  got:  {got_extra}"
    );
    let iat = got.iat.unwrap_or_else(|| panic!("{what}: no iat"));
    let exp = got.exp.unwrap_or_else(|| panic!("{what}: no exp"));
    let jti = got
        .jti
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: no jti"));
    assert!(
        (iat - now.as_secs()).abs() <= 120,
        "{what}: iat {iat} is far from now {}",
        now.as_secs()
    );
    assert_eq!(exp - iat, MAX_AGE as i64, "{what}: exp - iat");
    assert_eq!(jti.len(), 36, "{what}: jti {jti:?} is not a UUID");
}

/// Asserts that claims Node decoded carry the claim set `expected`, plus
/// `iat`/`exp`/`jti`.
fn assert_node_claims(what: &str, expected: &Value, got: &Value, now: UnixTime) {
    let got_obj = got
        .as_object()
        .unwrap_or_else(|| panic!("{what}: Node returned no claims object: {got}"));
    for key in PROFILE {
        assert_eq!(
            profile_text(got, key),
            profile_text(expected, key),
            "{what}: {key}"
        );
    }
    let got_extra: Map<String, Value> = got_obj
        .iter()
        .filter(|(k, _)| !PROFILE.contains(&k.as_str()) && !REGISTERED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let want_extra = Value::Object(extra_of(expected));
    let got_extra = Value::Object(got_extra);
    assert!(
        json_eq(&want_extra, &got_extra),
        "{what}: extra claims differ\n  sent: {want_extra}\n  got:  {got_extra}"
    );
    let iat = got["iat"]
        .as_i64()
        .unwrap_or_else(|| panic!("{what}: no integer iat in {got}"));
    let exp = got["exp"]
        .as_i64()
        .unwrap_or_else(|| panic!("{what}: no integer exp in {got}"));
    let jti = got["jti"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no jti in {got}"));
    assert!(
        (iat - now.as_secs()).abs() <= 120,
        "{what}: iat {iat} is far from now {}",
        now.as_secs()
    );
    assert_eq!(exp - iat, MAX_AGE as i64, "{what}: exp - iat");
    assert_eq!(jti.len(), 36, "{what}: jti {jti:?} is not a UUID");
}

/// The decoded protected header of a compact JWE.
fn header_of(jwe: &str) -> String {
    let b64 = jwe.split('.').next().unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .unwrap_or_else(|e| panic!("header of {jwe}: {e}"));
    String::from_utf8(bytes).expect("header is UTF-8")
}

fn encode_request(lib: Lib, secret: Value, salt: &str, claims: &Value) -> Value {
    json!({
        "op": "encode", "lib": lib.name(), "secret": secret, "salt": salt,
        "maxAge": MAX_AGE, "token": claims,
    })
}

fn decode_request(lib: Lib, secret: Value, salt: &str, token: &str) -> Value {
    json!({ "op": "decode", "lib": lib.name(), "secret": secret, "salt": salt, "token": token })
}

/// The token of a successful `encode` result.
fn ok_token<'a>(what: &str, result: &'a Value) -> &'a str {
    assert_eq!(result["ok"], true, "{what}: Node encode failed: {result}");
    result["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no token in {result}"))
}

/// The claims of a successful `decode` result.
fn ok_claims<'a>(what: &str, result: &'a Value) -> &'a Value {
    assert_eq!(result["ok"], true, "{what}: Node decode failed: {result}");
    &result["claims"]
}

fn rust_encode(codec: &SessionCodec, claims: &Value, now: UnixTime) -> String {
    codec.encode(
        &session_claims(claims),
        now,
        Duration::from_secs(MAX_AGE),
        &mut rand::rngs::OsRng,
    )
}

/// Library tokens for every claim set decode in Rust to the same claims.
fn library_tokens_decode_in_rust(lib: Lib) {
    let cases = claim_sets();
    let requests: Vec<Value> = cases
        .iter()
        .map(|c| encode_request(lib, json!(SECRET), lib.salt(), c))
        .collect();
    let results = run_batch(&requests);
    let codec = codec(lib, &[SECRET]);
    assert_eq!(codec.cookie_name(), lib.cookie());
    let now = now();
    let mut longest = 0;
    for (i, (case, result)) in cases.iter().zip(&results).enumerate() {
        let what = format!("{lib:?} case {i}");
        let token = ok_token(&what, result);
        longest = longest.max(token.len());
        assert_eq!(header_of(token), lib.header(), "{what}: library header");
        let got = codec
            .decode(token, now)
            .unwrap_or_else(|e| panic!("{what}: Rust decode failed: {e:?}\n  token: {token}"));
        assert_rust_claims(&what, case, &got, now);
    }
    assert!(
        longest > lib.chunk_size(),
        "the large session must need chunking: longest token {longest}"
    );
}

/// Rust tokens for every claim set decode with the library to the same claims.
fn rust_tokens_decode_in_library(lib: Lib) {
    let cases = claim_sets();
    let codec = codec(lib, &[SECRET]);
    let now = now();
    let tokens: Vec<String> = cases.iter().map(|c| rust_encode(&codec, c, now)).collect();
    for (i, token) in tokens.iter().enumerate() {
        // Same header bytes as the library: byte-compatible cookies.
        assert_eq!(
            header_of(token),
            lib.header(),
            "{lib:?} case {i}: Rust header"
        );
    }
    assert!(
        tokens.iter().any(|t| t.len() > lib.chunk_size()),
        "the large session must need chunking"
    );
    let requests: Vec<Value> = tokens
        .iter()
        .map(|t| decode_request(lib, json!(SECRET), lib.salt(), t))
        .collect();
    let results = run_batch(&requests);
    for (i, ((case, result), token)) in cases.iter().zip(&results).zip(&tokens).enumerate() {
        let what = format!("{lib:?} case {i} (token {token})");
        assert_node_claims(&what, case, ok_claims(&what, result), now);
    }
}

#[test]
fn authjs_tokens_decode_in_rust_to_the_same_claims() {
    library_tokens_decode_in_rust(Lib::AuthJs);
}

#[test]
fn rust_tokens_decode_in_authjs_to_the_same_claims() {
    rust_tokens_decode_in_library(Lib::AuthJs);
}

#[test]
fn next_auth_v4_tokens_decode_in_rust_to_the_same_claims() {
    library_tokens_decode_in_rust(Lib::NextAuthV4);
}

#[test]
fn rust_tokens_decode_in_next_auth_v4_to_the_same_claims() {
    rust_tokens_decode_in_library(Lib::NextAuthV4);
}

#[test]
fn rotated_secrets_decode_old_tokens_and_encrypt_with_the_new_secret() {
    let claims = json!({ "sub": "rotating-user", "name": "Rotation Röß", "authgate": { "v": 1 } });
    let now = now();
    let rotated = codec(Lib::AuthJs, &[NEW_SECRET, OLD_SECRET]);
    let new_only = codec(Lib::AuthJs, &[NEW_SECRET]);
    let rust_token = rust_encode(&rotated, &claims, now);

    let salt = AUTHJS_COOKIE;
    let results = run_batch(&[
        // 0: a token issued before the rotation.
        encode_request(Lib::AuthJs, json!([OLD_SECRET]), salt, &claims),
        // 1: a token @auth/core issues after the rotation (for the kid).
        encode_request(Lib::AuthJs, json!([NEW_SECRET, OLD_SECRET]), salt, &claims),
        // 2-4: the Rust token, in @auth/core configured three ways.
        decode_request(
            Lib::AuthJs,
            json!([NEW_SECRET, OLD_SECRET]),
            salt,
            &rust_token,
        ),
        decode_request(Lib::AuthJs, json!([NEW_SECRET]), salt, &rust_token),
        decode_request(Lib::AuthJs, json!([OLD_SECRET]), salt, &rust_token),
    ]);

    let old_token = ok_token("token under [old]", &results[0]);
    let got = rotated
        .decode(old_token, now)
        .unwrap_or_else(|e| panic!("[new, old] must decode a token of [old]: {e:?}"));
    assert_rust_claims("[old] token in Rust [new, old]", &claims, &got, now);
    assert!(
        new_only.decode(old_token, now).is_err(),
        "a codec without the old secret must reject the old token"
    );

    let library_new = ok_token("token under [new, old]", &results[1]);
    assert_eq!(
        header_of(&rust_token),
        header_of(library_new),
        "Rust must encrypt with the first secret, with the same kid as @auth/core"
    );

    let what = "Rust [new, old] token in @auth/core";
    assert_node_claims(
        &format!("{what} [new, old]"),
        &claims,
        ok_claims(what, &results[2]),
        now,
    );
    assert_node_claims(
        &format!("{what} [new]"),
        &claims,
        ok_claims(what, &results[3]),
        now,
    );
    assert_eq!(
        results[4]["ok"], false,
        "a Rust [new, old] token must not decode with [old] alone: {}",
        results[4]
    );
}

#[test]
fn secure_cookie_names_change_the_authjs_key_but_not_the_v4_key() {
    let claims = json!({ "sub": "secure-user", "email": "s@example.com" });
    let now = now();
    let secure_v5 = SessionCodec::new(CookieFormat::AuthJs, &[SECRET], true).expect("codec");
    let secure_v4 = SessionCodec::new(CookieFormat::NextAuthV4, &[SECRET], true).expect("codec");
    assert_eq!(secure_v5.cookie_name(), AUTHJS_SECURE_COOKIE);
    assert_eq!(secure_v4.cookie_name(), "__Secure-next-auth.session-token");
    let rust_v5 = rust_encode(&secure_v5, &claims, now);
    let rust_v4 = rust_encode(&secure_v4, &claims, now);

    let results = run_batch(&[
        encode_request(Lib::AuthJs, json!(SECRET), AUTHJS_SECURE_COOKIE, &claims),
        decode_request(Lib::AuthJs, json!(SECRET), AUTHJS_SECURE_COOKIE, &rust_v5),
        decode_request(Lib::AuthJs, json!(SECRET), AUTHJS_COOKIE, &rust_v5),
        // v4 never salts the session token, secure cookie or not.
        encode_request(Lib::NextAuthV4, json!(SECRET), "", &claims),
        decode_request(Lib::NextAuthV4, json!(SECRET), "", &rust_v4),
    ]);

    let library_v5 = ok_token("v5 secure", &results[0]);
    let got = secure_v5
        .decode(library_v5, now)
        .unwrap_or_else(|e| panic!("secure v5 token: {e:?}"));
    assert_rust_claims("secure v5 in Rust", &claims, &got, now);
    assert!(
        codec(Lib::AuthJs, &[SECRET])
            .decode(library_v5, now)
            .is_err(),
        "a token salted with the __Secure- name must not decode with the plain name"
    );
    assert_node_claims(
        "Rust secure v5 in @auth/core",
        &claims,
        ok_claims("Rust secure v5", &results[1]),
        now,
    );
    assert_eq!(
        results[2]["ok"], false,
        "plain salt must fail: {}",
        results[2]
    );

    let library_v4 = ok_token("v4 secure", &results[3]);
    let got = secure_v4
        .decode(library_v4, now)
        .unwrap_or_else(|e| panic!("secure v4 token: {e:?}"));
    assert_rust_claims("secure v4 in Rust", &claims, &got, now);
    assert_node_claims(
        "Rust secure v4 in next-auth",
        &claims,
        ok_claims("Rust secure v4", &results[4]),
        now,
    );
}

/// `(name, value or None when expired)`, sorted by name, for comparing cookie
/// writes regardless of order.
fn normalized(
    writes: impl IntoIterator<Item = (String, String, bool)>,
) -> Vec<(String, Option<String>)> {
    let mut v: Vec<_> = writes
        .into_iter()
        .map(|(name, value, expire)| (name, (!expire).then_some(value)))
        .collect();
    v.sort();
    v
}

fn rust_writes(writes: &[CookieWrite]) -> Vec<(String, Option<String>)> {
    normalized(
        writes
            .iter()
            .map(|w| (w.name.clone(), w.value.clone(), w.expire)),
    )
}

fn library_writes(what: &str, result: &Value) -> Vec<(String, Option<String>)> {
    assert_eq!(result["ok"], true, "{what}: Node chunk failed: {result}");
    let cookies = result["cookies"].as_array().expect("cookies array");
    normalized(cookies.iter().map(|c| {
        (
            c["name"].as_str().expect("name").to_owned(),
            c["value"].as_str().expect("value").to_owned(),
            c["expire"].as_bool().expect("expire"),
        )
    }))
}

fn read_back(name: &str, writes: &[CookieWrite]) -> Option<String> {
    read_chunks(
        name,
        writes
            .iter()
            .filter(|w| !w.expire)
            .map(|w| (w.name.as_str(), w.value.as_str())),
    )
    .unwrap_or_else(|e| panic!("read_chunks of our own writes failed: {e:?}"))
}

#[test]
fn chunked_large_sessions_rejoin_and_decode_in_authjs() {
    let now = now();
    let large = large_session();
    let mut requests = Vec::new();
    let mut expectations = Vec::new();

    for lib in [Lib::AuthJs, Lib::NextAuthV4] {
        let codec = codec(lib, &[SECRET]);
        let name = codec.cookie_name().to_owned();
        let jwe = rust_encode(&codec, &large, now);
        assert!(
            jwe.len() > lib.chunk_size(),
            "{lib:?}: token must need chunks"
        );
        let writes = write_chunks(&name, &jwe, [], lib.chunk_size());
        let set: Vec<&CookieWrite> = writes.iter().filter(|w| !w.expire).collect();
        assert_eq!(
            set.len(),
            jwe.len().div_ceil(lib.chunk_size()),
            "{lib:?}: chunk count"
        );
        for (i, w) in set.iter().enumerate() {
            assert_eq!(w.name, format!("{name}.{i}"), "{lib:?}: chunk name");
            assert!(
                w.value.len() <= lib.chunk_size(),
                "{lib:?}: chunk {i} too big"
            );
        }
        let joined = read_back(&name, &writes);
        assert_eq!(
            joined.as_deref(),
            Some(jwe.as_str()),
            "{lib:?}: re-joined value"
        );

        let cookies: Vec<(String, String)> = set
            .iter()
            .rev() // the library must not depend on cookie order
            .map(|w| (w.name.clone(), w.value.clone()))
            .collect();
        requests.push(decode_request(lib, json!(SECRET), lib.salt(), &jwe));
        requests.push(json!({ "op": "join", "lib": lib.name(), "name": name, "cookies": cookies }));
        requests.push(json!({
            "op": "chunk", "lib": lib.name(), "name": name, "value": jwe, "existing": [],
        }));
        expectations.push((lib, jwe, writes));
    }

    let results = run_batch(&requests);
    for ((lib, jwe, writes), r) in expectations.iter().zip(results.chunks(3)) {
        let what = format!("{lib:?} re-joined Rust token");
        assert_node_claims(&what, &large, ok_claims(&what, &r[0]), now);
        assert_eq!(r[1]["ok"], true, "{lib:?} join: {}", r[1]);
        assert_eq!(
            r[1]["value"].as_str(),
            Some(jwe.as_str()),
            "{lib:?}: the library's SessionStore joins Rust's chunks back to the token"
        );
        assert_eq!(
            rust_writes(writes),
            library_writes(&format!("{lib:?} chunk"), &r[2]),
            "{lib:?}: Rust chunks equal the library's SessionStore chunks"
        );
    }
}

#[test]
fn chunk_writes_match_the_library_session_store_at_the_boundaries() {
    // Values of lengths around the chunk size, written over requests that
    // already carry various session cookies: the cookies set and expired must
    // be the ones the library's SessionStore.chunk produces.
    let mut cases = Vec::new();
    for lib in [Lib::AuthJs, Lib::NextAuthV4] {
        let size = lib.chunk_size();
        let name = lib.cookie();
        let c = |i: usize| format!("{name}.{i}");
        let existing_sets: Vec<Vec<String>> = vec![
            vec![],
            vec![name.to_owned()],
            vec![c(0), c(1)],
            vec![c(0), c(1), c(2), c(3)],
        ];
        for len in [
            1,
            100,
            size - 1,
            size,
            size + 1,
            2 * size,
            2 * size + 1,
            3 * size + 17,
        ] {
            for existing in &existing_sets {
                // Deterministic base64url-alphabet content.
                let value: String = (0..len)
                    .map(|i| {
                        let alphabet =
                            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
                        char::from(alphabet[(i * 7 + len) % alphabet.len()])
                    })
                    .collect();
                cases.push((lib, name, value, existing.clone()));
            }
        }
    }
    let requests: Vec<Value> = cases
        .iter()
        .map(|(lib, name, value, existing)| {
            json!({ "op": "chunk", "lib": lib.name(), "name": name, "value": value, "existing": existing })
        })
        .collect();
    let results = run_batch(&requests);
    for ((lib, name, value, existing), result) in cases.iter().zip(&results) {
        let what = format!("{lib:?} len {} over {existing:?}", value.len());
        let writes = write_chunks(
            name,
            value,
            existing.iter().map(String::as_str),
            lib.chunk_size(),
        );
        assert_eq!(
            rust_writes(&writes),
            library_writes(&what, result),
            "{what}: cookies set/expired differ from the library's"
        );
        assert_eq!(
            read_back(name, &writes).as_deref(),
            Some(value.as_str()),
            "{what}: read back"
        );
    }
}
