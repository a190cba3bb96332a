//! Decode + validate of a realistic ~900-byte Auth.js v5 session token.
//!
//! Run: `cargo bench -p authgate-core --bench cookie_decode`. The token it
//! measures is printed so `interop/bench-decode.mjs` can time `@auth/core`'s
//! `decode` on the very same bytes (see BENCHMARKS.md).

#![allow(clippy::expect_used)]

use authgate_core::cookie::{CookieFormat, SessionClaims, SessionCodec};
use authgate_core::time::UnixTime;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::OsRng;
use serde_json::json;
use std::hint::black_box;
use std::time::Duration;

const SECRET: &str = "test-secret-at-least-32-chars-long!!";

/// Claims like a real session: identity plus authgate's own fields.
fn realistic_claims() -> SessionClaims {
    let extra = json!({
        "authgate": {
            "sid": "9f1c2d7e-5b8a-4c3f-9e21-7a6b5c4d3e2f",
            "provider": "google",
            "providerAccountId": "109876543210987654321",
            "accessTokenExpiresAt": 1_900_003_600,
            "scope": "openid email profile",
        }
    });
    SessionClaims {
        sub: Some("3c9d1f2a-8b7e-4d6c-a5f4-e3d2c1b0a998".into()),
        name: Some("Ada Lovelace-Byron".into()),
        email: Some("ada.lovelace@analytical-engine.example".into()),
        picture: Some(
            "https://lh3.googleusercontent.com/a/ACg8ocJ2x7Yh-Q9Lz4mFz0sample-avatar=s96-c".into(),
        ),
        extra: extra.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let codec = SessionCodec::new(CookieFormat::AuthJs, &[SECRET], false).expect("valid secret");
    let now = UnixTime::from_secs(1_900_000_000);
    let token = codec.encode(
        &realistic_claims(),
        now,
        Duration::from_secs(30 * 86400),
        &mut OsRng,
    );
    eprintln!("token ({} bytes): {token}", token.len());
    assert!(codec.decode(&token, now).is_ok());

    let mut group = c.benchmark_group("session_cookie");
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("decode_validate_v5_{}B", token.len()), |b| {
        b.iter(|| codec.decode(black_box(&token), black_box(now)))
    });
    group.bench_function("encode_v5", |b| {
        let claims = realistic_claims();
        b.iter(|| {
            codec.encode(
                black_box(&claims),
                now,
                Duration::from_secs(86400),
                &mut OsRng,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
