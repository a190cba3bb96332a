#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use serde_json::json;

fn claims(extra: serde_json::Value) -> SessionClaims {
    let mut c = SessionClaims {
        sub: Some("alice".to_owned()),
        name: Some("Alice".to_owned()),
        email: Some("alice@example.com".to_owned()),
        picture: None,
        ..Default::default()
    };
    if let serde_json::Value::Object(map) = extra {
        c.extra = map;
    }
    c
}

fn guide() -> SessionClaims {
    claims(json!({
        "access_token": "at-1",
        "expires_at": 1_700_000_300,
        "refresh_token": "rt-1",
    }))
}

#[test]
fn a_guide_cookie_with_a_refresh_token_is_adoptable() {
    let Guide::Adopt(grant) = classify(&guide()) else {
        panic!("not adoptable");
    };
    assert_eq!(grant.profile.sub, "alice");
    assert_eq!(grant.profile.name.as_deref(), Some("Alice"));
    assert_eq!(grant.tokens.access_token.expose(), "at-1");
    assert_eq!(
        grant.tokens.refresh_token.as_ref().map(Secret::expose),
        Some("rt-1")
    );
    assert_eq!(
        grant.tokens.expires_at,
        Some(UnixTime::from_secs(1_700_000_300))
    );
}

#[test]
fn the_cookie_email_is_never_verified() {
    let Guide::Adopt(grant) = classify(&guide()) else {
        panic!("not adoptable");
    };
    assert_eq!(grant.profile.email, Address::Unverified);
    assert_eq!(grant.profile.email.verified(), None);
    let mut no_email = guide();
    no_email.email = None;
    let Guide::Adopt(grant) = classify(&no_email) else {
        panic!("not adoptable");
    };
    assert_eq!(grant.profile.email, Address::Absent);
}

#[test]
fn a_guide_cookie_with_an_error_is_an_ended_grant() {
    let mut c = guide();
    c.extra
        .insert("error".to_owned(), json!("RefreshTokenError"));
    assert_eq!(classify(&c), Guide::GrantEnded);
}

#[test]
fn a_guide_cookie_without_refresh_token_or_sub_has_nothing_to_adopt() {
    let c = claims(json!({ "access_token": "at-1", "expires_at": 1 }));
    assert_eq!(classify(&c), Guide::NothingToAdopt);
    let c = claims(json!({ "access_token": "at-1", "refresh_token": "" }));
    assert_eq!(classify(&c), Guide::NothingToAdopt);
    let mut c = guide();
    c.sub = None;
    assert_eq!(classify(&c), Guide::NothingToAdopt);
}

#[test]
fn plain_and_gateway_cookies_are_not_guide_cookies() {
    assert_eq!(classify(&claims(json!({}))), Guide::NotGuide);
    let mut ours = guide();
    ours.extra
        .insert("authgate".to_owned(), json!({"sid": "x"}));
    assert_eq!(classify(&ours), Guide::NotGuide);
}

#[test]
fn a_missing_expiry_counts_as_expired() {
    let c = claims(json!({ "access_token": "at-1", "refresh_token": "rt-1" }));
    let Guide::Adopt(grant) = classify(&c) else {
        panic!("not adoptable");
    };
    assert_eq!(grant.tokens.expires_at, Some(UnixTime::from_secs(0)));
}

#[test]
fn scrub_removes_every_token_claim_and_keeps_the_rest() {
    let mut c = guide();
    c.extra.insert("id_token".to_owned(), json!("idt"));
    c.extra.insert("theme".to_owned(), json!("dark"));
    assert!(scrub(&mut c));
    for key in TOKEN_CLAIMS {
        assert!(!c.extra.contains_key(key), "{key} kept");
    }
    assert_eq!(c.extra.get("theme"), Some(&json!("dark")));
    assert!(!scrub(&mut c));
}

#[test]
fn record_ids_are_stable_per_token_and_differ_otherwise() {
    let key = AdoptionKey::new(b"test-secret-at-least-32-chars-long!!");
    let rt = Secret::new("rt-1");
    let id = key.record_id("op", &rt);
    assert_eq!(id, key.record_id("op", &rt));
    assert_eq!(id.len(), 43, "256 bits, base64url");
    assert!(!id.contains("rt-1"));
    assert_ne!(id, key.record_id("op", &Secret::new("rt-2")));
    assert_ne!(id, key.record_id("other", &rt));
    let other = AdoptionKey::new(b"another-secret-at-least-32-chars-long");
    assert_ne!(id, other.record_id("op", &rt));
}

#[test]
fn the_key_never_prints() {
    let key = AdoptionKey::new(b"test-secret-at-least-32-chars-long!!");
    assert_eq!(format!("{key:?}"), "AdoptionKey(..)");
}
