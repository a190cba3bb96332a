//! Property tests for the cookie codec: round-trips for arbitrary claims and
//! values, and no panic (and no false acceptance) on arbitrary input.

use authgate_core::cookie::chunk::{AUTHJS_CHUNK_SIZE, read_chunks, write_chunks};
use authgate_core::cookie::{CookieFormat, SessionClaims, SessionCodec};
use authgate_core::time::UnixTime;
use proptest::prelude::*;
use rand::rngs::OsRng;
use serde_json::{Map, Value};
use std::time::Duration;

const SECRETS: [&str; 2] = [
    "test-secret-at-least-32-chars-long!!",
    "an-older-secret-still-accepted-for-now",
];

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn claims() -> impl Strategy<Value = SessionClaims> {
    (
        proptest::option::of("\\PC{0,64}"),
        proptest::option::of("\\PC{0,64}"),
        proptest::option::of("[a-z0-9.]{1,20}@[a-z]{1,10}\\.[a-z]{2,4}"),
        proptest::option::of("https://[a-z]{1,20}\\.example/[a-z0-9/]{0,40}"),
        prop::collection::btree_map("x_[a-z_]{1,12}", json_value(), 0..6),
    )
        .prop_map(|(sub, name, email, picture, extra)| SessionClaims {
            sub,
            name,
            email,
            picture,
            extra: extra.into_iter().collect::<Map<String, Value>>(),
            ..Default::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_then_decode_returns_the_same_claims(
        claims in claims(),
        now in 0i64..4_000_000_000,
        max_age in 1u64..(400 * 24 * 3600),
        v4 in any::<bool>(),
        secure in any::<bool>(),
    ) {
        let format = if v4 { CookieFormat::NextAuthV4 } else { CookieFormat::AuthJs };
        let codec = SessionCodec::new(format, &SECRETS, secure).unwrap();
        let token = codec.encode(&claims, UnixTime::from_secs(now), Duration::from_secs(max_age), &mut OsRng);
        let decoded = codec.decode(&token, UnixTime::from_secs(now)).unwrap();
        prop_assert_eq!(decoded.iat, Some(now));
        prop_assert_eq!(decoded.exp, Some(now + max_age as i64));
        prop_assert!(decoded.jti.is_some());
        let expected = SessionClaims { iat: decoded.iat, exp: decoded.exp, jti: decoded.jti.clone(), ..claims };
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn chunks_split_then_join_to_the_original_value(
        value in prop_oneof!["[A-Za-z0-9_.-]{0,20000}", "\\PC{0,6000}"],
        old_chunks in 0usize..6,
    ) {
        let name = "authjs.session-token";
        let present: Vec<String> = (0..old_chunks).map(|i| format!("{name}.{i}")).chain([name.to_owned()]).collect();
        let writes = write_chunks(name, &value, present.iter().map(String::as_str), AUTHJS_CHUNK_SIZE);
        for w in &writes {
            prop_assert!(w.value.len() <= AUTHJS_CHUNK_SIZE);
        }
        // Every old piece is either overwritten or expired.
        for p in &present {
            prop_assert!(writes.iter().any(|w| &w.name == p), "{} neither written nor expired", p);
        }
        let live = writes.iter().filter(|w| !w.expire).map(|w| (w.name.as_str(), w.value.as_str()));
        let joined = read_chunks(name, live).unwrap();
        if value.is_empty() {
            prop_assert_eq!(joined, None);
        } else {
            prop_assert_eq!(joined, Some(value));
        }
    }

    #[test]
    fn decoding_arbitrary_input_never_panics(token in "\\PC{0,300}|[A-Za-z0-9_.-]{0,600}") {
        let codec = SessionCodec::new(CookieFormat::AuthJs, &SECRETS, false).unwrap();
        prop_assert!(codec.decode(&token, UnixTime::from_secs(0)).is_err());
    }

    #[test]
    fn changing_any_character_of_a_token_is_detected(index in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_-]") {
        let codec = SessionCodec::new(CookieFormat::AuthJs, &SECRETS, false).unwrap();
        let claims = SessionClaims { sub: Some("user".into()), ..Default::default() };
        let now = UnixTime::from_secs(1_800_000_000);
        let token = codec.encode(&claims, now, Duration::from_secs(60), &mut OsRng);
        let i = index.index(token.len());
        let mut mutated = token.clone();
        mutated.replace_range(i..i + 1, &replacement);
        prop_assume!(mutated != token);
        // Base64url's last character can carry unused bits; canonical decoding
        // rejects those, so every real change is an error.
        prop_assert!(codec.decode(&mutated, now).is_err());
    }
}
