//! The verified-address and account-linking rules, one table each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

use super::*;

const GOOGLE: Vouching = Vouching::HostedDomain {
    provider_domains: &["gmail.com", "googlemail.com"],
};
const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
const EARLIER: UnixTime = UnixTime::from_secs(1_600_000_000);

fn claims(email: Option<&str>, verified: Option<bool>) -> Claims {
    Claims {
        sub: Some("u1".into()),
        name: Some("Una".into()),
        email: email.map(str::to_owned),
        email_verified: verified,
        ..Claims::default()
    }
}

fn with_hd(mut c: Claims, hd: &str) -> Claims {
    c.hosted_domain = Some(hd.to_owned());
    c
}

fn with_edov(mut c: Claims, edov: bool) -> Claims {
    c.domain_owner_verified = Some(edov);
    c
}

fn facts(vouching: Vouching) -> ProviderFacts {
    ProviderFacts::new(vouching)
}

fn pinned(vouching: Vouching) -> ProviderFacts {
    ProviderFacts {
        tenant_pinned: true,
        ..ProviderFacts::new(vouching)
    }
}

fn listed(email: &str, primary: bool, verified: bool) -> ListedAddress {
    ListedAddress {
        email: email.to_owned(),
        primary,
        verified,
    }
}

fn verified(a: &str) -> Address {
    Address::Verified(a.to_owned())
}

#[test]
fn an_address_is_verified_only_when_the_provider_vouches_for_it() {
    use Address::{Absent, Unverified};
    let ceo = "ceo@corp.example";
    // (case, provider facts, ID token, userinfo, address list, expected)
    let cases: Vec<(
        &str,
        ProviderFacts,
        Option<Claims>,
        Option<Claims>,
        Option<Vec<ListedAddress>>,
        Address,
    )> = vec![
        (
            "oidc: email_verified true",
            facts(Vouching::EmailVerifiedClaim),
            Some(claims(Some(ceo), Some(true))),
            None,
            None,
            verified(ceo),
        ),
        (
            "oidc: email_verified absent is unverified (OIDC Core 5.1)",
            facts(Vouching::EmailVerifiedClaim),
            Some(claims(Some(ceo), None)),
            None,
            None,
            Unverified,
        ),
        (
            "oidc: email_verified false",
            facts(Vouching::EmailVerifiedClaim),
            Some(claims(Some(ceo), Some(false))),
            None,
            None,
            Unverified,
        ),
        (
            "oidc: userinfo vouches for the ID token's address",
            facts(Vouching::EmailVerifiedClaim),
            Some(claims(Some(ceo), None)),
            Some(claims(Some(ceo), Some(true))),
            None,
            verified(ceo),
        ),
        (
            "oidc: an explicit false in any answer carrying the address wins",
            facts(Vouching::EmailVerifiedClaim),
            Some(claims(Some(ceo), Some(false))),
            Some(claims(Some(ceo), Some(true))),
            None,
            Unverified,
        ),
        (
            "oidc: a verification of another address does not carry over",
            facts(Vouching::EmailVerifiedClaim),
            Some(claims(Some(ceo), None)),
            Some(claims(Some("me@corp.example"), Some(true))),
            None,
            Unverified,
        ),
        (
            "oidc: userinfo supplies a verified address the ID token lacks",
            facts(Vouching::EmailVerifiedClaim),
            Some(claims(None, None)),
            Some(claims(Some(ceo), Some(true))),
            None,
            verified(ceo),
        ),
        (
            "oidc: no address at all",
            facts(Vouching::EmailVerifiedClaim),
            Some(claims(None, Some(true))),
            None,
            None,
            Absent,
        ),
        (
            "oidc: a malformed address is never verified",
            facts(Vouching::EmailVerifiedClaim),
            Some(claims(Some("ceo@"), Some(true))),
            None,
            None,
            Unverified,
        ),
        (
            "oidc: an address with a line break is never verified",
            facts(Vouching::EmailVerifiedClaim),
            Some(claims(Some("a@b.example\r\nX-Evil: 1"), Some(true))),
            None,
            None,
            Unverified,
        ),
        (
            "google: gmail address verified",
            facts(GOOGLE),
            Some(claims(Some("una@gmail.com"), Some(true))),
            None,
            None,
            verified("una@gmail.com"),
        ),
        (
            "google: workspace address with matching hd",
            facts(GOOGLE),
            Some(with_hd(claims(Some(ceo), Some(true)), "corp.example")),
            None,
            None,
            verified(ceo),
        ),
        (
            "google: hd compares without letter case",
            facts(GOOGLE),
            Some(with_hd(claims(Some(ceo), Some(true)), "CORP.example")),
            None,
            None,
            verified(ceo),
        ),
        (
            "google: consumer account with a workspace-domain address (no hd)",
            facts(GOOGLE),
            Some(claims(Some(ceo), Some(true))),
            None,
            None,
            Unverified,
        ),
        (
            "google: hd of another organisation",
            facts(GOOGLE),
            Some(with_hd(claims(Some(ceo), Some(true)), "other.example")),
            None,
            None,
            Unverified,
        ),
        (
            "google: hd without email_verified",
            facts(GOOGLE),
            Some(with_hd(claims(Some(ceo), None), "corp.example")),
            None,
            None,
            Unverified,
        ),
        (
            "google: gmail address not verified",
            facts(GOOGLE),
            Some(claims(Some("una@gmail.com"), Some(false))),
            None,
            None,
            Unverified,
        ),
        (
            "entra common: no xms_edov is unverified, even with email_verified",
            facts(Vouching::DomainOwner),
            Some(claims(Some(ceo), Some(true))),
            None,
            None,
            Unverified,
        ),
        (
            "entra common: xms_edov true",
            facts(Vouching::DomainOwner),
            Some(with_edov(claims(Some(ceo), None), true)),
            None,
            None,
            verified(ceo),
        ),
        (
            "entra pinned tenant: the directory vouches",
            pinned(Vouching::DomainOwner),
            Some(claims(Some(ceo), None)),
            None,
            None,
            verified(ceo),
        ),
        (
            "entra pinned tenant: xms_edov false still wins",
            pinned(Vouching::DomainOwner),
            Some(with_edov(claims(Some(ceo), None), false)),
            None,
            None,
            Unverified,
        ),
        (
            "github: primary verified address from the list",
            facts(Vouching::AddressList),
            None,
            Some(claims(None, None)),
            Some(vec![
                listed("old@corp.example", false, true),
                listed(ceo, true, true),
            ]),
            verified(ceo),
        ),
        (
            "github: primary address not verified",
            facts(Vouching::AddressList),
            None,
            Some(claims(Some(ceo), None)),
            Some(vec![
                listed(ceo, true, false),
                listed("x@y.example", false, true),
            ]),
            Unverified,
        ),
        (
            "github: the public profile address alone is never trusted",
            facts(Vouching::AddressList),
            None,
            Some(claims(Some(ceo), Some(true))),
            Some(vec![]),
            Unverified,
        ),
        (
            "github: the list could not be read",
            facts(Vouching::AddressList),
            None,
            Some(claims(Some(ceo), None)),
            None,
            Absent,
        ),
        (
            "github: no addresses at all",
            facts(Vouching::AddressList),
            None,
            Some(claims(None, None)),
            Some(vec![]),
            Absent,
        ),
    ];
    for (case, facts, id_token, userinfo, list, expected) in cases {
        let answers = ProviderAnswers {
            id_token: id_token.as_ref(),
            userinfo: userinfo.as_ref(),
            addresses: list.as_deref(),
        };
        let profile = profile(answers, &facts).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(profile.email, expected, "{case}");
    }
}

#[test]
fn the_subject_comes_from_the_id_token_and_userinfo_must_agree() {
    let f = facts(Vouching::EmailVerifiedClaim);
    let id = claims(None, None);
    let mut other = claims(None, None);
    other.sub = Some("u2".into());
    let nameless = Claims {
        sub: Some(String::new()),
        ..Claims::default()
    };
    let cases: Vec<(
        &str,
        Option<&Claims>,
        Option<&Claims>,
        Result<&str, Refusal>,
    )> = vec![
        ("ID token only", Some(&id), None, Ok("u1")),
        ("userinfo only (OAuth 2.0)", None, Some(&id), Ok("u1")),
        ("both agree", Some(&id), Some(&id), Ok("u1")),
        (
            "userinfo of another user",
            Some(&id),
            Some(&other),
            Err(Refusal::SubjectMismatch),
        ),
        ("nothing", None, None, Err(Refusal::NoSubject)),
        (
            "an empty subject",
            None,
            Some(&nameless),
            Err(Refusal::NoSubject),
        ),
    ];
    for (case, id_token, userinfo, expected) in cases {
        let got = profile(
            ProviderAnswers {
                id_token,
                userinfo,
                addresses: None,
            },
            &f,
        )
        .map(|p| p.sub);
        assert_eq!(got.as_deref().map_err(|e| *e), expected, "{case}");
    }
}

#[test]
fn display_fields_prefer_the_id_token_then_userinfo() {
    let mut id = claims(None, None);
    id.name = None;
    id.picture = Some("https://id/p.png".into());
    let mut info = claims(None, None);
    info.name = Some("From Userinfo".into());
    info.picture = Some("https://info/p.png".into());
    let p = profile(
        ProviderAnswers {
            id_token: Some(&id),
            userinfo: Some(&info),
            addresses: None,
        },
        &facts(Vouching::EmailVerifiedClaim),
    )
    .unwrap();
    assert_eq!(p.name.as_deref(), Some("From Userinfo"));
    assert_eq!(p.picture.as_deref(), Some("https://id/p.png"));
}

#[test]
fn userinfo_is_asked_only_when_the_id_token_is_incomplete() {
    let oidc = facts(Vouching::EmailVerifiedClaim);
    let entra = facts(Vouching::DomainOwner);
    let complete = claims(Some("a@b.example"), Some(true));
    assert!(!needs_userinfo(Some(&complete), &oidc));
    assert!(needs_userinfo(None, &oidc));
    assert!(needs_userinfo(Some(&claims(None, None)), &oidc));
    let unflagged = claims(Some("a@b.example"), None);
    assert!(needs_userinfo(Some(&unflagged), &oidc));
    assert!(!needs_userinfo(Some(&unflagged), &entra));
    assert!(needs_address_list(&facts(Vouching::AddressList)));
    assert!(!needs_address_list(&oidc));
}

// ---------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------

fn user(id: &str, email: Option<&str>, verified_at: Option<UnixTime>) -> StoredUser<String> {
    StoredUser {
        id: id.to_owned(),
        name: Some(format!("{id} name")),
        email: email.map(str::to_owned),
        email_verified: verified_at,
        image: None,
    }
}

fn signed_in(email: Address) -> Profile {
    Profile {
        sub: "sub-1".into(),
        name: Some("New Name".into()),
        picture: None,
        email,
    }
}

fn fields(name: &str, email: Option<&str>, at: Option<UnixTime>) -> ProfileFields {
    ProfileFields {
        name: Some(name.to_owned()),
        email: email.map(str::to_owned),
        email_verified: at,
        image: None,
    }
}

fn released(id: &str) -> Release<String> {
    Release {
        user: id.to_owned(),
        fields: fields(&format!("{id} name"), None, None),
    }
}

#[test]
fn first_sign_ins_create_link_or_refuse() {
    let a = "ann@corp.example";
    let link = ProviderFacts {
        link_by_email: true,
        ..facts(Vouching::EmailVerifiedClaim)
    };
    let plain = facts(Vouching::EmailVerifiedClaim);
    // (case, address, holder, facts, expected)
    let cases: Vec<(
        &str,
        Address,
        Option<StoredUser<String>>,
        ProviderFacts,
        Result<Plan<String>, Refusal>,
    )> = vec![
        (
            "verified, free: created with the address, stamped now",
            verified(a),
            None,
            plain,
            Ok(Plan::Create {
                user: fields("New Name", Some(a), Some(NOW)),
                release: None,
            }),
        ),
        (
            "unverified: created without any address",
            Address::Unverified,
            None,
            plain,
            Ok(Plan::Create {
                user: fields("New Name", None, None),
                release: None,
            }),
        ),
        (
            "absent: created without any address",
            Address::Absent,
            None,
            plain,
            Ok(Plan::Create {
                user: fields("New Name", None, None),
                release: None,
            }),
        ),
        (
            "held by an unverified squatter: released, the owner gets it",
            verified(a),
            Some(user("squatter", Some(a), None)),
            plain,
            Ok(Plan::Create {
                user: fields("New Name", Some(a), Some(NOW)),
                release: Some(released("squatter")),
            }),
        ),
        (
            "held by a verified user, no linking: refused",
            verified(a),
            Some(user("owner", Some(a), Some(EARLIER))),
            plain,
            Err(Refusal::AccountNotLinked),
        ),
        (
            "held by a verified user, linking allowed: linked",
            verified(a),
            Some(user("owner", Some(a), Some(EARLIER))),
            link,
            Ok(Plan::Link {
                user: "owner".into(),
            }),
        ),
        (
            "held by an unverified user, linking allowed: never linked",
            verified(a),
            Some(user("squatter", Some(a), None)),
            link,
            Ok(Plan::Create {
                user: fields("New Name", Some(a), Some(NOW)),
                release: Some(released("squatter")),
            }),
        ),
    ];
    for (case, address, holder, facts, expected) in cases {
        let got = plan(
            &signed_in(address),
            Found {
                returning: None,
                address_holder: holder,
            },
            &facts,
            NOW,
        );
        assert_eq!(got, expected, "{case}");
    }
}

#[test]
fn a_returning_users_profile_follows_what_the_provider_vouches_for_now() {
    let a = "ann@corp.example";
    let b = "ann@new.example";
    let plain = facts(Vouching::EmailVerifiedClaim);
    // (case, stored user, address now, holder of the address, expected update, expected release)
    let cases: Vec<(
        &str,
        StoredUser<String>,
        Address,
        Option<StoredUser<String>>,
        Option<ProfileFields>,
        Option<Release<String>>,
    )> = vec![
        (
            "same verified address: only the name changes",
            user("me", Some(a), Some(EARLIER)),
            verified(a),
            Some(user("me", Some(a), Some(EARLIER))),
            Some(fields("New Name", Some(a), Some(EARLIER))),
            None,
        ),
        (
            "same address in another letter case: the provider's spelling, first verification kept",
            user("me", Some("Ann@Corp.example"), Some(EARLIER)),
            verified(a),
            None,
            Some(fields("New Name", Some(a), Some(EARLIER))),
            None,
        ),
        (
            "a legacy unverified address now verified: stamped",
            user("me", Some(a), None),
            verified(a),
            Some(user("me", Some(a), None)),
            Some(fields("New Name", Some(a), Some(NOW))),
            None,
        ),
        (
            "a new verified address, free: taken",
            user("me", Some(a), Some(EARLIER)),
            verified(b),
            None,
            Some(fields("New Name", Some(b), Some(NOW))),
            None,
        ),
        (
            "a new verified address held by an unverified squatter: released and taken",
            user("me", Some(a), Some(EARLIER)),
            verified(b),
            Some(user("squatter", Some(b), None)),
            Some(fields("New Name", Some(b), Some(NOW))),
            Some(released("squatter")),
        ),
        (
            "a new verified address held by a verified user: not taken, old one dropped",
            user("me", Some(a), Some(EARLIER)),
            verified(b),
            Some(user("other", Some(b), Some(EARLIER))),
            Some(fields("New Name", None, None)),
            None,
        ),
        (
            "the provider sends an address it does not vouch for: the stored one goes",
            user("me", Some(a), Some(EARLIER)),
            Address::Unverified,
            None,
            Some(fields("New Name", None, None)),
            None,
        ),
        (
            "the provider says nothing about addresses: the verified one stays",
            user("me", Some(a), Some(EARLIER)),
            Address::Absent,
            None,
            Some(fields("New Name", Some(a), Some(EARLIER))),
            None,
        ),
        (
            "the provider says nothing, the stored address was never verified: dropped",
            user("me", Some(a), None),
            Address::Absent,
            None,
            Some(fields("New Name", None, None)),
            None,
        ),
    ];
    for (case, stored, address, holder, update, release) in cases {
        let got = plan(
            &signed_in(address),
            Found {
                returning: Some(stored),
                address_holder: holder,
            },
            &plain,
            NOW,
        );
        assert_eq!(
            got,
            Ok(Plan::Returning {
                user: "me".into(),
                update,
                release
            }),
            "{case}"
        );
    }
}

#[test]
fn an_unchanged_returning_user_needs_no_write_and_keeps_fields_the_provider_omits() {
    let a = "ann@corp.example";
    let mut stored = user("me", Some(a), Some(EARLIER));
    stored.name = Some("New Name".into());
    let unchanged = plan(
        &signed_in(verified(a)),
        Found {
            returning: Some(stored.clone()),
            address_holder: Some(stored.clone()),
        },
        &facts(Vouching::EmailVerifiedClaim),
        NOW,
    );
    assert_eq!(
        unchanged,
        Ok(Plan::Returning {
            user: "me".into(),
            update: None,
            release: None
        })
    );
    stored.image = Some("https://old/p.png".into());
    let mut nameless = signed_in(Address::Absent);
    nameless.name = None;
    let kept = plan(
        &nameless,
        Found {
            returning: Some(stored),
            address_holder: None,
        },
        &facts(Vouching::EmailVerifiedClaim),
        NOW,
    );
    assert_eq!(
        kept,
        Ok(Plan::Returning {
            user: "me".into(),
            update: None,
            release: None
        })
    );
}

#[test]
fn refusals_have_stable_labels() {
    for (r, label) in [
        (Refusal::NoSubject, "no_subject"),
        (Refusal::SubjectMismatch, "subject_mismatch"),
        (Refusal::AccountNotLinked, "account_not_linked"),
    ] {
        assert_eq!(r.as_str(), label);
    }
}
