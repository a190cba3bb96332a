//! The grant rules, pinned without a clock or network: time is a number, randomness seeded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn lifetimes() -> Lifetimes {
    Lifetimes {
        access_token: 30,
        refresh_token: 3600,
        code: 60,
        login: 600,
    }
}

fn request(scope: &[&str]) -> AuthorizationRequest {
    AuthorizationRequest {
        client_id: "app".into(),
        redirect_uri: "http://127.0.0.1:4180/auth/callback/dev".into(),
        scope: scope.iter().map(|s| (*s).to_owned()).collect(),
        state: Some("st".into()),
        nonce: Some("n-1".into()),
        code_challenge: Some(pkce_s256(VERIFIER)),
        offline: scope.contains(&"offline_access"),
        prompt_consent: false,
    }
}

fn alice() -> Identity {
    Identity {
        sub: "alice".into(),
        name: Some("Alice".into()),
        email: Some("alice@example.com".into()),
        email_verified: Some(true),
        ..Identity::default()
    }
}

/// Sign in at `now` and exchange the code; returns the issued tokens.
fn signed_in(g: &mut Grants, rng: &mut StdRng, scope: &[&str], now: UnixTime) -> Issued {
    let id = g.begin_authorization(request(scope), now, rng);
    let (_, code) = g.complete_authorization(&id, alice(), now, rng).unwrap();
    g.exchange_code(
        "app",
        &code,
        "http://127.0.0.1:4180/auth/callback/dev",
        Some(VERIFIER),
        now,
        rng,
    )
    .unwrap()
}

fn setup() -> (Grants, StdRng) {
    (Grants::new(lifetimes()), StdRng::seed_from_u64(7))
}

const ALL: &[&str] = &["openid", "email", "profile", "offline_access"];

#[test]
fn pkce_s256_matches_rfc7636_appendix_b() {
    assert_eq!(
        pkce_s256(VERIFIER),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    assert!(valid_pkce_value(VERIFIER));
    assert!(!valid_pkce_value("short"));
    assert!(!valid_pkce_value(&"a b".repeat(20)));
}

#[test]
fn code_exchange_issues_tokens_and_refresh_only_with_offline_access() {
    let (mut g, mut rng) = setup();
    let with = signed_in(&mut g, &mut rng, ALL, 1000);
    assert!(with.refresh_token.is_some());
    assert_eq!(with.nonce.as_deref(), Some("n-1"));
    assert_eq!(with.expires_in, 30);
    assert_eq!(with.auth_time, 1000);
    let without = signed_in(&mut g, &mut rng, &["openid", "email"], 1000);
    assert!(without.refresh_token.is_none());
    assert!(g.introspect(&without.access_token, 1000).is_some());
}

#[test]
fn access_token_expires_after_its_lifetime() {
    let (mut g, mut rng) = setup();
    let t = signed_in(&mut g, &mut rng, ALL, 1000);
    let info = g.introspect(&t.access_token, 1029).unwrap();
    assert_eq!(info.kind, TokenKind::Access);
    assert_eq!((info.iat, info.exp), (1000, 1030));
    assert!(g.introspect(&t.access_token, 1030).is_none());
    assert!(g.userinfo(&t.access_token, 1029).is_some());
    assert!(g.userinfo(&t.access_token, 1030).is_none());
}

#[test]
fn expired_refresh_token_is_invalid_grant_without_revoking() {
    let short = Lifetimes {
        refresh_token: 40,
        ..lifetimes()
    };
    let (mut g, mut rng) = (Grants::new(short), StdRng::seed_from_u64(1));
    let t = signed_in(&mut g, &mut rng, ALL, 1000);
    let rt = t.refresh_token.unwrap();
    assert!(g.introspect(&rt, 1039).is_some());
    assert!(g.introspect(&rt, 1040).is_none());
    let err = g.refresh("app", &rt, None, 1040, &mut rng).unwrap_err();
    assert_eq!(err, GrantError::InvalidGrant("refresh token expired"));
    assert!(g.grant_active(t.grant), "expiry is not reuse");
    // Long after expiry the sweep has dropped it: still invalid_grant.
    let err = g.refresh("app", &rt, None, 9000, &mut rng).unwrap_err();
    assert_eq!(err.oauth_error(), "invalid_grant");
    // One second earlier it would still have worked.
    let (mut g, mut rng) = (Grants::new(short), StdRng::seed_from_u64(1));
    let t = signed_in(&mut g, &mut rng, ALL, 1000);
    assert!(
        g.refresh("app", &t.refresh_token.unwrap(), None, 1039, &mut rng)
            .is_ok()
    );
}

#[test]
fn rotation_gives_fresh_lifetime_to_each_new_refresh_token() {
    let (mut g, mut rng) = setup();
    let t = signed_in(&mut g, &mut rng, ALL, 1000);
    let r1 = g
        .refresh("app", &t.refresh_token.unwrap(), None, 4000, &mut rng)
        .unwrap();
    let rt1 = r1.refresh_token.unwrap();
    assert_eq!(g.introspect(&rt1, 4000).unwrap().exp, 7600);
    assert!(g.refresh("app", &rt1, None, 7599, &mut rng).is_ok());
}

#[test]
fn refresh_rotates_and_consumed_token_is_rejected() {
    let (mut g, mut rng) = setup();
    let t = signed_in(&mut g, &mut rng, ALL, 1000);
    let rt0 = t.refresh_token.unwrap();
    let r1 = g.refresh("app", &rt0, None, 1010, &mut rng).unwrap();
    let rt1 = r1.refresh_token.clone().unwrap();
    assert_ne!(rt0, rt1);
    assert_ne!(t.access_token, r1.access_token);
    assert!(
        g.introspect(&rt0, 1010).is_none(),
        "consumed token inactive"
    );
    assert!(g.introspect(&rt1, 1010).is_some());
    let r2 = g.refresh("app", &rt1, None, 1020, &mut rng).unwrap();
    assert_eq!(
        r2.scope,
        ALL.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
}

#[test]
fn reusing_a_consumed_refresh_token_revokes_the_whole_grant() {
    let (mut g, mut rng) = setup();
    let t = signed_in(&mut g, &mut rng, ALL, 1000);
    let rt0 = t.refresh_token.unwrap();
    let r1 = g.refresh("app", &rt0, None, 1010, &mut rng).unwrap();
    let err = g.refresh("app", &rt0, None, 1011, &mut rng).unwrap_err();
    assert_eq!(
        err,
        GrantError::RefreshReuse {
            grant_revoked: true
        }
    );
    assert!(!g.grant_active(t.grant));
    assert!(g.introspect(&r1.access_token, 1011).is_none());
    assert!(
        g.introspect(r1.refresh_token.as_ref().unwrap(), 1011)
            .is_none()
    );
    assert!(g.introspect(&t.access_token, 1011).is_none());
    let err = g
        .refresh(
            "app",
            r1.refresh_token.as_ref().unwrap(),
            None,
            1012,
            &mut rng,
        )
        .unwrap_err();
    assert_eq!(err.oauth_error(), "invalid_grant");
    // A second replay is still detected but revokes nothing new.
    let err = g.refresh("app", &rt0, None, 1013, &mut rng).unwrap_err();
    assert_eq!(
        err,
        GrantError::RefreshReuse {
            grant_revoked: false
        }
    );
}

#[test]
fn refresh_by_another_client_is_rejected_and_does_not_consume() {
    let (mut g, mut rng) = setup();
    let t = signed_in(&mut g, &mut rng, ALL, 1000);
    let rt = t.refresh_token.unwrap();
    assert!(matches!(
        g.refresh("other", &rt, None, 1001, &mut rng),
        Err(GrantError::InvalidGrant(_))
    ));
    assert!(g.refresh("app", &rt, None, 1002, &mut rng).is_ok());
}

#[test]
fn refresh_can_narrow_but_not_widen_scope() {
    let (mut g, mut rng) = setup();
    let t = signed_in(&mut g, &mut rng, &["openid", "offline_access"], 1000);
    let rt = t.refresh_token.unwrap();
    let wide = vec!["openid".to_owned(), "email".to_owned()];
    assert_eq!(
        g.refresh("app", &rt, Some(&wide), 1001, &mut rng)
            .unwrap_err(),
        GrantError::InvalidScope
    );
    let narrow = vec!["openid".to_owned()];
    let r = g
        .refresh("app", &rt, Some(&narrow), 1002, &mut rng)
        .unwrap();
    assert_eq!(r.scope, narrow);
}

#[test]
fn code_is_single_use_and_replay_revokes_its_tokens() {
    let (mut g, mut rng) = setup();
    let id = g.begin_authorization(request(ALL), 1000, &mut rng);
    let (_, code) = g
        .complete_authorization(&id, alice(), 1000, &mut rng)
        .unwrap();
    let uri = "http://127.0.0.1:4180/auth/callback/dev";
    let t = g
        .exchange_code("app", &code, uri, Some(VERIFIER), 1001, &mut rng)
        .unwrap();
    let err = g
        .exchange_code("app", &code, uri, Some(VERIFIER), 1002, &mut rng)
        .unwrap_err();
    assert_eq!(
        err,
        GrantError::CodeReplay {
            grant_revoked: true
        }
    );
    assert!(g.introspect(&t.access_token, 1002).is_none());
    assert!(
        g.introspect(t.refresh_token.as_ref().unwrap(), 1002)
            .is_none()
    );
}

#[test]
fn code_expires_and_checks_pkce_and_redirect_uri() {
    let uri = "http://127.0.0.1:4180/auth/callback/dev";
    let cases: [(&str, Option<&str>, UnixTime); 4] = [
        (uri, Some(VERIFIER), 1060), // expired
        (
            uri,
            Some("wrong-verifier-wrong-verifier-wrong-verifier"),
            1001,
        ), // PKCE
        (uri, None, 1001),           // missing verifier
        ("http://127.0.0.1:4180/other", Some(VERIFIER), 1001), // redirect_uri
    ];
    for (redirect, verifier, at) in cases {
        let (mut g, mut rng) = setup();
        let id = g.begin_authorization(request(ALL), 1000, &mut rng);
        let (_, code) = g
            .complete_authorization(&id, alice(), 1000, &mut rng)
            .unwrap();
        let err = g
            .exchange_code("app", &code, redirect, verifier, at, &mut rng)
            .unwrap_err();
        assert!(matches!(err, GrantError::InvalidGrant(_)), "{err:?}");
        // The failed attempt used the code up.
        assert!(
            g.exchange_code("app", &code, uri, Some(VERIFIER), 1001, &mut rng)
                .is_err()
        );
    }
    // One second before expiry works.
    let (mut g, mut rng) = setup();
    let id = g.begin_authorization(request(ALL), 1000, &mut rng);
    let (_, code) = g
        .complete_authorization(&id, alice(), 1000, &mut rng)
        .unwrap();
    assert!(
        g.exchange_code("app", &code, uri, Some(VERIFIER), 1059, &mut rng)
            .is_ok()
    );
}

#[test]
fn pending_request_expires_and_is_single_use() {
    let (mut g, mut rng) = setup();
    let id = g.begin_authorization(request(ALL), 1000, &mut rng);
    assert!(g.pending_request(&id, 1599).is_some());
    assert!(g.pending_request(&id, 1600).is_none());
    assert_eq!(
        g.complete_authorization(&id, alice(), 1600, &mut rng)
            .unwrap_err(),
        GrantError::UnknownRequest
    );
    let id = g.begin_authorization(request(ALL), 1000, &mut rng);
    assert!(g.deny_authorization(&id, 1001).is_ok());
    assert!(
        g.complete_authorization(&id, alice(), 1001, &mut rng)
            .is_err()
    );
}

#[test]
fn revoking_refresh_token_revokes_grant_and_access_token_only_itself() {
    let (mut g, mut rng) = setup();
    let t = signed_in(&mut g, &mut rng, ALL, 1000);
    let r = g
        .refresh(
            "app",
            t.refresh_token.as_ref().unwrap(),
            None,
            1001,
            &mut rng,
        )
        .unwrap();
    assert_eq!(g.revoke("app", &r.access_token, 1002), Revoked::AccessToken);
    assert!(g.introspect(&r.access_token, 1002).is_none());
    assert!(g.introspect(&t.access_token, 1002).is_some());
    assert_eq!(g.revoke("app", &r.access_token, 1002), Revoked::Nothing);
    // Another client cannot revoke it.
    let rt = r.refresh_token.unwrap();
    assert_eq!(g.revoke("other", &rt, 1003), Revoked::Nothing);
    assert_eq!(g.revoke("app", &rt, 1003), Revoked::Grant);
    assert!(g.introspect(&t.access_token, 1003).is_none());
    assert_eq!(g.revoke("app", "unknown", 1003), Revoked::Nothing);
}

#[test]
fn purge_keeps_consumed_refresh_tokens_until_expiry() {
    let (mut g, mut rng) = setup();
    let t = signed_in(&mut g, &mut rng, ALL, 1000);
    let rt0 = t.refresh_token.unwrap();
    g.refresh("app", &rt0, None, 1010, &mut rng).unwrap();
    g.purge(2000); // access tokens gone, refresh tokens alive
    assert_eq!(g.grant_count(), 1);
    assert_eq!(
        g.refresh("app", &rt0, None, 2001, &mut rng).unwrap_err(),
        GrantError::RefreshReuse {
            grant_revoked: true
        }
    );
    g.purge(1010 + 3600);
    assert_eq!(g.grant_count(), 0);
}
