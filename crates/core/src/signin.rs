//! The sign-in decision without I/O: who signed in, which e-mail address the
//! provider vouches for, and what the store must do about it.
//!
//! The callback handler fetches (code exchange, ID-token validation, userinfo,
//! a provider's address list, store look-ups) and executes; this module only
//! decides, in two steps:
//!
//! 1. [`profile`] turns the provider's answers ([`ProviderAnswers`]) and its
//!    verification facts ([`ProviderFacts`]) into a [`Profile`]: the subject,
//!    display fields, and an [`Address`] that is [`Address::Verified`] only
//!    when the provider vouches for it (see [`Vouching`]).
//! 2. [`plan`] compares that profile with what the store holds ([`Found`]:
//!    the account already linked for the subject, and the user who holds the
//!    verified address) and returns a [`Plan`] — create a user, link the
//!    account to an existing user, or update a returning user — or a typed
//!    [`Refusal`].
//!
//! The rules, each pinned by a table-driven test in `signin/tests.rs`:
//! - An address is used (stored as the user's unique e-mail, compared with
//!   allow-lists, sent upstream, used to link) only when it is verified.
//!   Anything else is treated as no address at all.
//! - An address held by a user whose address was never verified (recorded
//!   before verification was enforced, or written by another application)
//!   never blocks its verified owner: the plan releases it from that user.
//! - An address held by another user whose address is verified links the new
//!   provider account to that user only when the provider allows linking by
//!   e-mail (`link_by_email`); otherwise the sign-in is refused
//!   ([`Refusal::AccountNotLinked`]).
//! - A returning user's profile follows what the provider sends now: a new
//!   name or picture replaces the stored one, a field the provider no longer
//!   sends keeps its stored value; the address becomes the verified one the
//!   provider sends, is dropped when the provider sends an address it does not
//!   vouch for, and is kept (when it was verified) when the provider says
//!   nothing about addresses.

use crate::time::UnixTime;

#[cfg(test)]
mod tests;

/// The claims of one provider answer: a verified ID token, or a userinfo
/// answer (OIDC Core §5.1 names; provider extensions as noted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// `sub`: the provider's stable user id (`id` for plain OAuth 2.0 APIs).
    pub sub: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `picture`.
    pub picture: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `email_verified`; `None` when absent, which means unverified.
    pub email_verified: Option<bool>,
    /// Google's `hd`: the Workspace domain the account belongs to.
    pub hosted_domain: Option<String>,
    /// Entra ID's `xms_edov`: whether the owner of the address's domain was
    /// verified by the user's tenant.
    pub domain_owner_verified: Option<bool>,
}

/// One entry of a provider's list of the user's addresses (GitHub's
/// `GET /user/emails`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedAddress {
    /// The address.
    pub email: String,
    /// Whether it is the account's primary address.
    pub primary: bool,
    /// Whether the provider verified it.
    pub verified: bool,
}

/// How a provider vouches for an address. Presets choose one; providers
/// without a preset use [`Vouching::EmailVerifiedClaim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vouching {
    /// `email_verified: true` from the answer that carries the address
    /// (OIDC Core §5.1: absent means unverified). An explicit `false` in any
    /// answer carrying the same address wins.
    EmailVerifiedClaim,
    /// Google: `email_verified: true`, and Google is authoritative for the
    /// address — it is in one of `provider_domains` (Gmail), or the `hd` claim
    /// (the user's Workspace organisation) equals the address's domain. A
    /// consumer account registered with someone else's address is verified
    /// only at creation, so its address is not vouched for.
    HostedDomain {
        /// The provider's own mail domains (`gmail.com`, `googlemail.com`).
        provider_domains: &'static [&'static str],
    },
    /// GitHub: the primary address of the provider's address list
    /// ([`ListedAddress`]) when the list marks it verified. The profile's
    /// public `email` is never used on its own.
    AddressList,
    /// Microsoft Entra ID: `xms_edov: true`; or, when the provider is pinned
    /// to one tenant ([`ProviderFacts::tenant_pinned`]), any address that
    /// tenant issues unless `xms_edov` is `false`.
    DomainOwner,
}

/// What the gateway knows about a provider when judging a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderFacts {
    /// How the provider vouches for addresses.
    pub vouching: Vouching,
    /// The provider is pinned to one directory (Entra `tenant` naming one
    /// tenant), whose administrators vouch for the addresses it issues.
    pub tenant_pinned: bool,
    /// A new account whose verified address belongs to a user with a verified
    /// address is linked to that user instead of refused.
    pub link_by_email: bool,
}

impl ProviderFacts {
    /// Facts for a provider that vouches with `vouching`, is not pinned to a
    /// tenant and does not link by e-mail.
    pub fn new(vouching: Vouching) -> Self {
        Self {
            vouching,
            tenant_pinned: false,
            link_by_email: false,
        }
    }
}

/// Everything the provider answered during one sign-in.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProviderAnswers<'a> {
    /// The validated ID token's claims (OIDC providers).
    pub id_token: Option<&'a Claims>,
    /// The userinfo answer, when it was fetched and succeeded.
    pub userinfo: Option<&'a Claims>,
    /// The provider's address list, when it was fetched and succeeded.
    pub addresses: Option<&'a [ListedAddress]>,
}

/// What the provider says about the user's e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// The provider vouches for this address.
    Verified(String),
    /// The provider sent an address it does not vouch for (or a malformed
    /// one). It is never used.
    Unverified,
    /// The provider said nothing about an address.
    Absent,
}

impl Address {
    /// The address, when verified.
    pub fn verified(&self) -> Option<&str> {
        match self {
            Address::Verified(a) => Some(a),
            Address::Unverified | Address::Absent => None,
        }
    }
}

/// Who signed in, as far as the provider vouches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The provider's stable user id.
    pub sub: String,
    /// Display name.
    pub name: Option<String>,
    /// Picture URL.
    pub picture: Option<String>,
    /// The e-mail address and whether the provider vouches for it.
    pub email: Address,
}

/// A user as the store holds it; `Id` is the store's user id type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser<Id> {
    /// The user's id.
    pub id: Id,
    /// Display name.
    pub name: Option<String>,
    /// E-mail address (unique among users).
    pub email: Option<String>,
    /// When the address was recorded as verified; `None`: never vouched for.
    pub email_verified: Option<UnixTime>,
    /// Picture URL.
    pub image: Option<String>,
}

/// What the store holds that matters to this sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<Id> {
    /// The user of the account already linked for this provider and subject.
    pub returning: Option<StoredUser<Id>>,
    /// The user who holds the profile's verified address (exact match), if
    /// any; look it up only for [`Address::Verified`].
    pub address_holder: Option<StoredUser<Id>>,
}

/// A user's profile fields as the store should hold them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileFields {
    /// Display name.
    pub name: Option<String>,
    /// E-mail address; only ever a verified one.
    pub email: Option<String>,
    /// When the address was verified (`Some` exactly when `email` is).
    pub email_verified: Option<UnixTime>,
    /// Picture URL.
    pub image: Option<String>,
}

/// Take an address away from the user who holds it without verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release<Id> {
    /// The user holding the address.
    pub user: Id,
    /// That user's profile without the address.
    pub fields: ProfileFields,
}

/// What the callback must do with the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan<Id> {
    /// A first sign-in: create a user with `user` and link the account to it,
    /// after `release` (if any).
    Create {
        /// The new user's profile.
        user: ProfileFields,
        /// An unverified holder of the address to release first.
        release: Option<Release<Id>>,
    },
    /// A new provider account whose verified address belongs to `user`, whose
    /// address is verified too, and the provider links by e-mail: link it.
    Link {
        /// The existing user.
        user: Id,
    },
    /// A returning account: store the sign-in's tokens, then `release` (if
    /// any), then write `update` (if the profile changed).
    Returning {
        /// The returning user.
        user: Id,
        /// The profile to write, when it differs from the stored one.
        update: Option<ProfileFields>,
        /// An unverified holder of the address to release first.
        release: Option<Release<Id>>,
    },
}

/// Why a sign-in is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No answer identified the user.
    #[error("the provider did not identify the user")]
    NoSubject,
    /// The userinfo answer is about another subject than the ID token.
    #[error("the userinfo answer belongs to another user than the ID token")]
    SubjectMismatch,
    /// The verified address belongs to another user with a verified address,
    /// and the provider does not link by e-mail.
    #[error("the address belongs to another user who signs in another way")]
    AccountNotLinked,
}

impl Refusal {
    /// A stable label for logs and error codes.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NoSubject => "no_subject",
            Refusal::SubjectMismatch => "subject_mismatch",
            Refusal::AccountNotLinked => "account_not_linked",
        }
    }
}

/// Whether the userinfo endpoint should be asked: there is no ID token, or it
/// lacks the subject, the name, the address, or (when the provider vouches
/// with `email_verified`) the address's verification.
pub fn needs_userinfo(id_token: Option<&Claims>, facts: &ProviderFacts) -> bool {
    let verification_in_claim = matches!(
        facts.vouching,
        Vouching::EmailVerifiedClaim | Vouching::HostedDomain { .. }
    );
    id_token.is_none_or(|c| {
        c.sub.is_none()
            || c.name.is_none()
            || c.email.is_none()
            || (verification_in_claim && c.email_verified.is_none())
    })
}

/// Whether the provider's address list must be fetched to judge addresses.
pub fn needs_address_list(facts: &ProviderFacts) -> bool {
    facts.vouching == Vouching::AddressList
}

/// Who signed in: the subject (the ID token's; userinfo must agree), display
/// fields (ID token first, then userinfo), and the address as far as the
/// provider vouches for it.
pub fn profile(answers: ProviderAnswers<'_>, facts: &ProviderFacts) -> Result<Profile, Refusal> {
    let sources: Vec<&Claims> = [answers.id_token, answers.userinfo]
        .into_iter()
        .flatten()
        .collect();
    let sub = match (answers.id_token, answers.userinfo) {
        (Some(id), Some(info)) => match (&id.sub, &info.sub) {
            (Some(a), Some(b)) if a != b => return Err(Refusal::SubjectMismatch),
            (a, b) => a.clone().or_else(|| b.clone()),
        },
        (Some(one), None) | (None, Some(one)) => one.sub.clone(),
        (None, None) => None,
    }
    .filter(|s| !s.is_empty())
    .ok_or(Refusal::NoSubject)?;
    let first = |field: fn(&Claims) -> &Option<String>| {
        sources
            .iter()
            .find_map(|c| field(c).clone().filter(|v| !v.is_empty()))
    };
    Ok(Profile {
        sub,
        name: first(|c| &c.name),
        picture: first(|c| &c.picture),
        email: address(&sources, answers.addresses, facts),
    })
}

/// The address and whether the provider vouches for it.
fn address(sources: &[&Claims], list: Option<&[ListedAddress]>, facts: &ProviderFacts) -> Address {
    if facts.vouching == Vouching::AddressList {
        return listed_address(sources, list);
    }
    let Some(candidate) = sources
        .iter()
        .find_map(|c| c.email.clone().filter(|e| !e.is_empty()))
    else {
        return Address::Absent;
    };
    let Some(domain) = domain_of(&candidate) else {
        return Address::Unverified;
    };
    // Only answers that carry this very address speak for it.
    let carrying: Vec<&Claims> = sources
        .iter()
        .copied()
        .filter(|c| {
            c.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(&candidate))
        })
        .collect();
    let denied =
        |flag: fn(&Claims) -> Option<bool>| carrying.iter().any(|c| flag(c) == Some(false));
    let affirmed =
        |flag: fn(&Claims) -> Option<bool>| carrying.iter().any(|c| flag(c) == Some(true));
    let email_verified = !denied(|c| c.email_verified) && affirmed(|c| c.email_verified);
    let vouched = match facts.vouching {
        Vouching::EmailVerifiedClaim => email_verified,
        Vouching::HostedDomain { provider_domains } => {
            let hosted = sources.iter().find_map(|c| c.hosted_domain.as_deref());
            email_verified
                && (provider_domains
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(domain))
                    || hosted.is_some_and(|hd| hd.eq_ignore_ascii_case(domain)))
        }
        Vouching::DomainOwner => {
            let owner_denied = denied(|c| c.domain_owner_verified);
            !owner_denied && (affirmed(|c| c.domain_owner_verified) || facts.tenant_pinned)
        }
        Vouching::AddressList => false,
    };
    if vouched {
        Address::Verified(candidate)
    } else {
        Address::Unverified
    }
}

/// GitHub's rule: the primary address of the list, when verified.
fn listed_address(sources: &[&Claims], list: Option<&[ListedAddress]>) -> Address {
    let Some(list) = list else {
        // The list could not be read: nothing is known about addresses.
        return Address::Absent;
    };
    match list.iter().find(|a| a.primary) {
        Some(a) if a.verified && domain_of(&a.email).is_some() => {
            Address::Verified(a.email.clone())
        }
        Some(_) => Address::Unverified,
        None if list.is_empty() && sources.iter().all(|c| c.email.is_none()) => Address::Absent,
        None => Address::Unverified,
    }
}

/// The domain of a well-formed address (`local@domain`, printable, at most
/// 254 bytes); `None` for anything else.
fn domain_of(address: &str) -> Option<&str> {
    if address.len() > 254 || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = address.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then_some(domain)
}

/// What to do with the store for `profile`, given what it holds (`found`).
/// `now` stamps newly verified addresses.
pub fn plan<Id: Clone + PartialEq>(
    profile: &Profile,
    found: Found<Id>,
    facts: &ProviderFacts,
    now: UnixTime,
) -> Result<Plan<Id>, Refusal> {
    let Found {
        returning,
        address_holder,
    } = found;
    // The holder is "another user" only when it is not the returning one.
    let holder = address_holder.filter(|h| returning.as_ref().is_none_or(|r| r.id != h.id));
    match returning {
        Some(user) => {
            let (fields, release) = returning_fields(&user, profile, holder, now);
            let update = (fields != fields_of(&user)).then_some(fields);
            Ok(Plan::Returning {
                user: user.id,
                update,
                release,
            })
        }
        None => {
            let Some(address) = profile.email.verified() else {
                return Ok(Plan::Create {
                    user: new_fields(profile, None, now),
                    release: None,
                });
            };
            match holder {
                Some(h) if h.email_verified.is_some() => {
                    if facts.link_by_email {
                        Ok(Plan::Link { user: h.id })
                    } else {
                        Err(Refusal::AccountNotLinked)
                    }
                }
                holder => Ok(Plan::Create {
                    user: new_fields(profile, Some(address), now),
                    release: holder.map(release),
                }),
            }
        }
    }
}

fn new_fields(profile: &Profile, address: Option<&str>, now: UnixTime) -> ProfileFields {
    ProfileFields {
        name: profile.name.clone(),
        email: address.map(str::to_owned),
        email_verified: address.map(|_| now),
        image: profile.picture.clone(),
    }
}

fn fields_of<Id>(user: &StoredUser<Id>) -> ProfileFields {
    ProfileFields {
        name: user.name.clone(),
        email: user.email.clone(),
        email_verified: user.email_verified,
        image: user.image.clone(),
    }
}

fn release<Id>(holder: StoredUser<Id>) -> Release<Id> {
    let mut fields = fields_of(&holder);
    fields.email = None;
    fields.email_verified = None;
    Release {
        user: holder.id,
        fields,
    }
}

/// A returning user's profile after this sign-in, and a holder to release.
fn returning_fields<Id>(
    user: &StoredUser<Id>,
    profile: &Profile,
    holder: Option<StoredUser<Id>>,
    now: UnixTime,
) -> (ProfileFields, Option<Release<Id>>) {
    // The stored address counts only when it was recorded as verified.
    let kept = match (&user.email, user.email_verified) {
        (Some(email), Some(at)) => (Some(email.clone()), Some(at)),
        _ => (None, None),
    };
    let ((email, email_verified), released) = match &profile.email {
        Address::Verified(address) => {
            let same = user
                .email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(address));
            match holder {
                _ if same => (
                    (Some(address.clone()), user.email_verified.or(Some(now))),
                    None,
                ),
                // Another user verifiably holds it: not taken over, and the
                // old address is no longer what the provider says.
                Some(h) if h.email_verified.is_some() => ((None, None), None),
                holder => ((Some(address.clone()), Some(now)), holder.map(release)),
            }
        }
        // The provider no longer vouches for an address.
        Address::Unverified => ((None, None), None),
        Address::Absent => (kept, None),
    };
    let fields = ProfileFields {
        name: profile.name.clone().or_else(|| user.name.clone()),
        email,
        email_verified,
        image: profile.picture.clone().or_else(|| user.image.clone()),
    };
    (fields, released)
}
