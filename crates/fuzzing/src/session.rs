//! `session_cookie`: the chunk joiner and the session token decoder.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use authgate_core::cookie::chunk::{read_chunks, write_chunks};
use authgate_core::cookie::{CookieFormat, MAX_TOKEN_LEN, SessionClaims, SessionCodec};
use authgate_core::time::UnixTime;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::Sha256;
use std::time::Duration;

/// The session secret of every seed token.
pub const SECRET: &str = "fuzzing-secret-at-least-32-bytes-long!!";
/// The time tokens are decoded at (seed tokens are valid then).
pub const NOW: UnixTime = UnixTime::from_secs(1_900_000_000);
/// The most cookies the gateway reads from a request (`http::cookies`).
const MAX_COOKIES: usize = 128;

/// `session_cookie`: the first byte chooses the format (even: Auth.js v5,
/// odd: next-auth v4) and the mode (`'0'`/`'1'`: the rest is a `Cookie`
/// header; `'2'`/`'3'`: the rest is a token's JSON payload, encrypted here
/// with A256GCM under [`SECRET`] so that the claims parser and time checks
/// are reached).
///
/// Properties: nothing panics; a session cookie read from a header is
/// written back by `write_chunks` into cookies that `read_chunks` joins to
/// the same token (when it is not empty and fits in `MAX_CHUNKS` chunks);
/// every token that decodes re-encodes into a token that decodes to the
/// same claims.
pub fn session_cookie(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let format = if selector % 2 == 0 {
        CookieFormat::AuthJs
    } else {
        CookieFormat::NextAuthV4
    };
    let Ok(codec) = SessionCodec::new(format, &[SECRET], false) else {
        panic!("the fuzzing secret is refused");
    };
    if selector % 4 < 2 {
        if let Ok(header) = std::str::from_utf8(rest) {
            cookie_header(&codec, header);
        }
    } else {
        let token = gcm_token(format, codec.cookie_name(), rest);
        decoded(&codec, &token);
    }
}

/// Reads the session cookie from a `Cookie` header as the gateway does.
fn cookie_header(codec: &SessionCodec, header: &str) {
    let cookies: Vec<(String, String)> = cookie::Cookie::split_parse(header)
        .filter_map(Result::ok)
        .take(MAX_COOKIES)
        .map(|c| (c.name().to_owned(), c.value().to_owned()))
        .collect();
    let name = codec.cookie_name();
    let pairs = cookies.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    let Ok(Some(token)) = read_chunks(name, pairs) else {
        return;
    };
    assert!(token.len() <= MAX_TOKEN_LEN);
    let size = codec.format().chunk_size();
    // An empty value is how `write_chunks` deletes a cookie, so it cannot round-trip.
    if !token.is_empty() && token.len() <= size * authgate_core::cookie::chunk::MAX_CHUNKS {
        let present = cookies.iter().map(|(n, _)| n.as_str());
        let writes = write_chunks(name, &token, present, size);
        let stored = writes
            .iter()
            .filter(|w| !w.expire)
            .map(|w| (w.name.as_str(), w.value.as_str()));
        assert!(writes.iter().all(|w| w.value.len() <= size));
        match read_chunks(name, stored) {
            Ok(Some(again)) => assert_eq!(again, token, "chunks do not join back"),
            other => panic!("written chunks do not read back: {other:?}"),
        }
    }
    decoded(codec, &token);
}

/// Decodes `token`; when it decodes, re-encodes its claims and checks they
/// come back.
fn decoded(codec: &SessionCodec, token: &str) {
    let Ok(claims) = codec.decode(token, NOW) else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(token.len() as u64);
    let max_age = Duration::from_secs(3600);
    let again = codec.encode(&claims, NOW, max_age, &mut rng);
    let back = codec.decode(&again, NOW);
    let expected = SessionClaims {
        iat: Some(NOW.as_secs()),
        exp: Some(NOW.saturating_add(max_age).as_secs()),
        jti: back.as_ref().ok().and_then(|c| c.jti.clone()),
        ..claims
    };
    assert_eq!(back, Ok(expected), "claims do not survive re-encoding");
}

/// A compact JWE (`dir`, A256GCM, no `kid`) of `payload` under [`SECRET`],
/// as next-auth v4 writes it and Auth.js v5 still reads it.
pub fn gcm_token(format: CookieFormat, cookie_name: &str, payload: &[u8]) -> String {
    let (salt, info) = match format {
        CookieFormat::AuthJs => (
            cookie_name,
            format!("Auth.js Generated Encryption Key ({cookie_name})"),
        ),
        CookieFormat::NextAuthV4 => ("", "NextAuth.js Generated Encryption Key".to_owned()),
    };
    let mut key = [0u8; 32];
    let hkdf = Hkdf::<Sha256>::new(Some(salt.as_bytes()), SECRET.as_bytes());
    if hkdf.expand(info.as_bytes(), &mut key).is_err() {
        panic!("HKDF refuses 32 bytes");
    }
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"dir","enc":"A256GCM"}"#);
    let iv = [7u8; 12];
    let mut ciphertext = payload.to_vec();
    let Ok(cipher) = Aes256Gcm::new_from_slice(&key) else {
        panic!("a 32-byte key is refused");
    };
    let Ok(tag) = cipher.encrypt_in_place_detached(
        Nonce::from_slice(&iv),
        header.as_bytes(),
        &mut ciphertext,
    ) else {
        panic!("AES-GCM refuses a short payload");
    };
    format!(
        "{header}..{}.{}.{}",
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(&ciphertext),
        URL_SAFE_NO_PAD.encode(tag)
    )
}
