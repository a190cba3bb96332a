//! The crypto back-ends on offer for A256CBC-HS512, and the other stages of a
//! session cookie decode, on the inputs of a realistic ~900-byte Auth.js v5
//! token (issue #13).
//!
//! Run: `cargo bench -p authgate-core --bench cookie_crypto`. Every variant
//! works on the same bytes: the token `SessionCodec::encode` makes from the
//! claims of `cookie_decode.rs`, its key derived here as Auth.js derives it.
//! Back-ends: RustCrypto (`hmac` + `sha2`, `aes` + `cbc`, as `jwe.rs` uses
//! them) and `aws-lc-rs` (already in the tree through rustls).
//! The stages (base64, claims JSON, the whole decode) say where the rest of
//! the time goes. On a busy machine run it as
//! `COOKIE_CRYPTO_INTERLEAVED=400 cargo bench -p authgate-core --bench cookie_crypto`
//! (see [`interleaved`]). Results: BENCHMARKS.md §1b.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, InnerIvInit, KeyInit};
use authgate_core::cookie::{CookieFormat, SessionClaims, SessionCodec};
use authgate_core::time::UnixTime;
use aws_lc_rs::cipher::{AES_256, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group};
use hmac::Mac;
use rand::rngs::OsRng;
use serde_json::json;
use std::hint::black_box;
use std::time::Duration;
use subtle::ConstantTimeEq;

const SECRET: &str = "test-secret-at-least-32-chars-long!!";
const SALT: &str = "authjs.session-token";

type HmacSha512 = hmac::Hmac<sha2::Sha512>;
type CbcDec = cbc::Decryptor<aes::Aes256>;

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

/// HKDF-SHA256 as `@auth/core` derives the A256CBC-HS512 key.
fn derive_rustcrypto(secret: &[u8]) -> [u8; 64] {
    let info = format!("Auth.js Generated Encryption Key ({SALT})");
    let mut okm = [0u8; 64];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(SALT.as_bytes()), secret)
        .expand(info.as_bytes(), &mut okm)
        .unwrap();
    okm
}

/// The same with aws-lc-rs.
fn derive_awslc(secret: &[u8]) -> [u8; 64] {
    use aws_lc_rs::hkdf;
    struct Len64;
    impl hkdf::KeyType for Len64 {
        fn len(&self) -> usize {
            64
        }
    }
    let info = format!("Auth.js Generated Encryption Key ({SALT})");
    let info = [info.as_bytes()];
    let mut okm = [0u8; 64];
    hkdf::Salt::new(hkdf::HKDF_SHA256, SALT.as_bytes())
        .extract(secret)
        .expand(&info, Len64)
        .unwrap()
        .fill(&mut okm)
        .unwrap();
    okm
}

/// The decoded parts of the token.
struct Parts {
    aad: Vec<u8>,
    iv: [u8; 16],
    ciphertext: Vec<u8>,
    tag: [u8; 32],
}

fn split(token: &str) -> Parts {
    let s: Vec<&str> = token.split('.').collect();
    assert_eq!(s.len(), 5);
    Parts {
        aad: s[0].as_bytes().to_vec(),
        iv: URL_SAFE_NO_PAD.decode(s[2]).unwrap().try_into().unwrap(),
        ciphertext: URL_SAFE_NO_PAD.decode(s[3]).unwrap(),
        tag: URL_SAFE_NO_PAD.decode(s[4]).unwrap().try_into().unwrap(),
    }
}

fn al(aad: &[u8]) -> [u8; 8] {
    ((aad.len() as u64) * 8).to_be_bytes()
}

/// RustCrypto: clone the keyed state, absorb, compare the left half in
/// constant time (`verify_truncated_left`), as `jwe.rs` did before #13.
fn mac_rustcrypto(keyed: &HmacSha512, p: &Parts) -> bool {
    let mut mac = keyed.clone();
    mac.update(&p.aad);
    mac.update(&p.iv);
    mac.update(&p.ciphertext);
    mac.update(&al(&p.aad));
    mac.verify_truncated_left(&p.tag).is_ok()
}

/// aws-lc-rs: `hmac::Context` from the cached key, compare with `subtle`.
fn mac_awslc(key: &aws_lc_rs::hmac::Key, p: &Parts) -> bool {
    let mut ctx = aws_lc_rs::hmac::Context::with_key(key);
    ctx.update(&p.aad);
    ctx.update(&p.iv);
    ctx.update(&p.ciphertext);
    ctx.update(&al(&p.aad));
    let tag = ctx.sign();
    bool::from(tag.as_ref()[..32].ct_eq(&p.tag))
}

fn cbc_rustcrypto(cipher: &aes::Aes256, p: &Parts, buf: &mut Vec<u8>) -> usize {
    buf.clear();
    buf.extend_from_slice(&p.ciphertext);
    CbcDec::inner_iv_init(cipher.clone(), (&p.iv).into())
        .decrypt_padded_mut::<Pkcs7>(buf)
        .unwrap()
        .len()
}

fn cbc_awslc(key: &PaddedBlockDecryptingKey, p: &Parts, buf: &mut Vec<u8>) -> usize {
    buf.clear();
    buf.extend_from_slice(&p.ciphertext);
    key.decrypt(buf, DecryptionContext::Iv128(FixedLength::from(p.iv)))
        .unwrap()
        .len()
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
    let p = split(&token);
    let mac_len = p.aad.len() + 16 + p.ciphertext.len() + 8;
    let ct_len = p.ciphertext.len();
    eprintln!(
        "token {} B: HMAC input {mac_len} B, ciphertext {ct_len} B",
        token.len()
    );

    let key = derive_rustcrypto(SECRET.as_bytes());
    assert_eq!(key, derive_awslc(SECRET.as_bytes()));
    let (mac_key, enc_key) = key.split_at(32);
    let rc_mac = <HmacSha512 as Mac>::new_from_slice(mac_key).unwrap();
    let rc_aes = aes::Aes256::new(enc_key.into());
    let lc_mac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA512, mac_key);
    let lc_aes =
        PaddedBlockDecryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, enc_key).unwrap())
            .unwrap();
    assert!(mac_rustcrypto(&rc_mac, &p) && mac_awslc(&lc_mac, &p));
    let mut buf = Vec::with_capacity(ct_len);
    let plain_len = cbc_rustcrypto(&rc_aes, &p, &mut buf);
    let plaintext = buf[..plain_len].to_vec();
    assert_eq!(cbc_awslc(&lc_aes, &p, &mut buf), plain_len);
    assert_eq!(&buf[..plain_len], plaintext.as_slice());

    let mut g = c.benchmark_group(format!("hmac_sha512_{mac_len}B"));
    g.bench_function("rustcrypto", |b| {
        b.iter(|| mac_rustcrypto(black_box(&rc_mac), black_box(&p)))
    });
    g.bench_function("aws_lc_rs", |b| {
        b.iter(|| mac_awslc(black_box(&lc_mac), black_box(&p)))
    });
    g.finish();

    let mut g = c.benchmark_group(format!("aes256cbc_pkcs7_decrypt_{ct_len}B"));
    g.bench_function("rustcrypto", |b| {
        b.iter(|| cbc_rustcrypto(black_box(&rc_aes), black_box(&p), &mut buf))
    });
    g.bench_function("aws_lc_rs", |b| {
        b.iter(|| cbc_awslc(black_box(&lc_aes), black_box(&p), &mut buf))
    });
    g.finish();

    let mut g = c.benchmark_group("a256cbc_hs512_open");
    g.bench_function("rustcrypto", |b| {
        b.iter(|| {
            assert!(mac_rustcrypto(black_box(&rc_mac), black_box(&p)));
            cbc_rustcrypto(&rc_aes, &p, &mut buf)
        })
    });
    g.bench_function("aws_lc_rs", |b| {
        b.iter(|| {
            assert!(mac_awslc(black_box(&lc_mac), black_box(&p)));
            cbc_awslc(&lc_aes, &p, &mut buf)
        })
    });
    g.bench_function("aws_lc_mac_rustcrypto_aes", |b| {
        b.iter(|| {
            assert!(mac_awslc(black_box(&lc_mac), black_box(&p)));
            cbc_rustcrypto(&rc_aes, &p, &mut buf)
        })
    });
    g.finish();

    // Once per codec (keys.rs caches the derived keys), not per decode.
    let mut g = c.benchmark_group("hkdf_sha256_64B_once_per_codec");
    g.bench_function("rustcrypto", |b| {
        b.iter(|| derive_rustcrypto(black_box(SECRET.as_bytes())))
    });
    g.bench_function("aws_lc_rs", |b| {
        b.iter(|| derive_awslc(black_box(SECRET.as_bytes())))
    });
    g.finish();

    let ct_b64 = token.split('.').nth(3).unwrap().to_owned();
    let mut g = c.benchmark_group("decode_stages");
    g.bench_function(format!("base64_ciphertext_{}B", ct_b64.len()), |b| {
        b.iter(|| URL_SAFE_NO_PAD.decode(black_box(&ct_b64)).unwrap())
    });
    g.bench_function(format!("claims_json_{}B", plaintext.len()), |b| {
        b.iter(|| serde_json::from_slice::<SessionClaims>(black_box(&plaintext)).unwrap())
    });
    g.bench_function(format!("session_codec_decode_{}B", token.len()), |b| {
        b.iter(|| codec.decode(black_box(&token), black_box(now)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}

/// `COOKIE_CRYPTO_INTERLEAVED=<rounds>`: instead of criterion, time batches
/// of each variant in turn, round after round, and print per variant the
/// lower decile, median and spread of the per-call time over the rounds. On
/// a shared machine a batch that was preempted lands in the upper tail, and
/// alternating the variants every few milliseconds exposes them to the same
/// load, so the ratios between variants stay meaningful.
fn interleaved(rounds: usize) {
    let codec = SessionCodec::new(CookieFormat::AuthJs, &[SECRET], false).expect("valid secret");
    let now = UnixTime::from_secs(1_900_000_000);
    let token = codec.encode(
        &realistic_claims(),
        now,
        Duration::from_secs(30 * 86400),
        &mut OsRng,
    );
    let p = split(&token);
    let key = derive_rustcrypto(SECRET.as_bytes());
    let (mac_key, enc_key) = key.split_at(32);
    let rc_mac = <HmacSha512 as Mac>::new_from_slice(mac_key).unwrap();
    let rc_aes = aes::Aes256::new(enc_key.into());
    let lc_mac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA512, mac_key);
    let lc_aes =
        PaddedBlockDecryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, enc_key).unwrap())
            .unwrap();
    let mut buf = Vec::with_capacity(p.ciphertext.len());
    let plain_len = cbc_rustcrypto(&rc_aes, &p, &mut buf);
    let plaintext = buf[..plain_len].to_vec();
    let ct_b64 = token.split('.').nth(3).unwrap().to_owned();

    type Variant<'a> = (&'static str, Box<dyn FnMut() + 'a>);
    let mut buf2 = Vec::with_capacity(p.ciphertext.len());
    let mut buf3 = Vec::with_capacity(p.ciphertext.len());
    let mut buf4 = Vec::with_capacity(p.ciphertext.len());
    let mut buf5 = Vec::with_capacity(p.ciphertext.len());
    let mut variants: Vec<Variant<'_>> = vec![
        (
            "hmac_sha512/rustcrypto",
            Box::new(|| assert!(mac_rustcrypto(black_box(&rc_mac), black_box(&p)))),
        ),
        (
            "hmac_sha512/aws_lc_rs",
            Box::new(|| assert!(mac_awslc(black_box(&lc_mac), black_box(&p)))),
        ),
        (
            "aes256cbc_decrypt/rustcrypto",
            Box::new(|| {
                black_box(cbc_rustcrypto(black_box(&rc_aes), black_box(&p), &mut buf));
            }),
        ),
        (
            "aes256cbc_decrypt/aws_lc_rs",
            Box::new(|| {
                black_box(cbc_awslc(black_box(&lc_aes), black_box(&p), &mut buf2));
            }),
        ),
        (
            "open/rustcrypto",
            Box::new(|| {
                assert!(mac_rustcrypto(black_box(&rc_mac), black_box(&p)));
                black_box(cbc_rustcrypto(&rc_aes, &p, &mut buf3));
            }),
        ),
        (
            "open/aws_lc_rs",
            Box::new(|| {
                assert!(mac_awslc(black_box(&lc_mac), black_box(&p)));
                black_box(cbc_awslc(&lc_aes, &p, &mut buf4));
            }),
        ),
        (
            "open/aws_lc_mac+rustcrypto_aes",
            Box::new(|| {
                assert!(mac_awslc(black_box(&lc_mac), black_box(&p)));
                black_box(cbc_rustcrypto(&rc_aes, &p, &mut buf5));
            }),
        ),
        (
            "stage/base64_ciphertext",
            Box::new(|| {
                black_box(URL_SAFE_NO_PAD.decode(black_box(&ct_b64)).unwrap());
            }),
        ),
        (
            "stage/claims_json",
            Box::new(|| {
                black_box(serde_json::from_slice::<SessionClaims>(black_box(&plaintext)).unwrap());
            }),
        ),
        (
            "stage/claims_json_utf8_then_str",
            Box::new(|| {
                let text = std::str::from_utf8(black_box(&plaintext)).unwrap();
                black_box(serde_json::from_str::<SessionClaims>(text).unwrap());
            }),
        ),
        (
            "session_codec_decode",
            Box::new(|| {
                black_box(codec.decode(black_box(&token), black_box(now)).unwrap());
            }),
        ),
    ];
    const BATCH: u32 = 500;
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); variants.len()];
    for (_, f) in &mut variants {
        for _ in 0..BATCH {
            f();
        }
    }
    for _ in 0..rounds {
        for (i, (_, f)) in variants.iter_mut().enumerate() {
            let start = std::time::Instant::now();
            for _ in 0..BATCH {
                f();
            }
            samples[i].push(start.elapsed().as_nanos() as f64 / f64::from(BATCH));
        }
    }
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        "variant (ns/call)", "p10", "median", "p90", "min"
    );
    for ((name, _), mut s) in variants.iter().zip(samples) {
        s.sort_by(f64::total_cmp);
        let q = |f: f64| s[((s.len() - 1) as f64 * f) as usize];
        println!(
            "{name:<34} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
            q(0.1),
            q(0.5),
            q(0.9),
            s[0]
        );
    }
}

fn main() {
    if let Some(rounds) = std::env::var("COOKIE_CRYPTO_INTERLEAVED")
        .ok()
        .and_then(|r| r.parse().ok())
    {
        interleaved(rounds);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
