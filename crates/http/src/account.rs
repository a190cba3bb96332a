//! The account side of a sign-in callback: I/O around the core's pure
//! decision ([`authgate_core::signin`]).
//!
//! 1. [`answers`] fetches what the provider says: the validated ID token,
//!    userinfo when the ID token is incomplete, and the provider's address
//!    list when it vouches through one (GitHub's `GET /user/emails`).
//! 2. The core turns that into a [`Profile`] whose address is verified only
//!    when the provider vouches for it.
//! 3. [`sign_in`] looks up what the store holds, asks the core for a
//!    [`Plan`], and executes it: create, link, or update a returning user
//!    (releasing an address from a user who holds it unverified).
//!
//! The invariant "an identity is only what the provider vouches for" is
//! decided in `core::signin` and enforced here by storing only the plan's
//! fields: a user's e-mail is only ever an address some provider verified
//! (with `email_verified` set). [`Identity::of`](crate::session::Identity::of),
//! the only way a stored user becomes a session identity, drops any other.

use crate::audit::SignInKind;
use crate::error::HttpError;
use crate::signin::{provider_failure, store_failure};
use crate::state::Inner;
use authgate_core::attributes::Attributes;
use authgate_core::cookie::CheckKind;
use authgate_core::signin::{
    self, Claims, Found, ListedAddress, Plan, Profile, ProfileFields, ProviderAnswers, Refusal,
    Release, StoredUser,
};
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use authgate_oauth::id_token::IdTokenClaims;
use authgate_oauth::{IdTokenError, Provider, ProviderKind};
use authgate_store::{Account, NewAccount, NewUser, ReplaceOutcome, StoreError, User, UserId};
use axum::http::StatusCode;

/// What the provider said during one sign-in.
pub(crate) struct Answers {
    id_token: Option<Claims>,
    /// The provider's session id: the ID token's `sid` claim, if any
    /// (recorded with the session for back-channel logout by `sid`).
    pub(crate) provider_sid: Option<String>,
    userinfo: Option<Claims>,
    addresses: Option<Vec<ListedAddress>>,
    /// The groups, roles and rule claims the provider's answers say.
    pub(crate) attributes: Attributes,
}

impl Answers {
    fn borrowed(&self) -> ProviderAnswers<'_> {
        ProviderAnswers {
            id_token: self.id_token.as_ref(),
            userinfo: self.userinfo.as_ref(),
            addresses: self.addresses.as_deref(),
        }
    }
}

/// Fetches what the provider says about the user (the ID token is checked
/// against the sealed nonce cookie among `cookies`).
pub(crate) async fn answers(
    inner: &Inner,
    provider: &Provider,
    tokens: &TokenSet,
    cookies: &[(String, String)],
    now: UnixTime,
) -> Result<Answers, HttpError> {
    let facts = provider.signin_facts();
    let (id_token_raw, provider_sid) = match provider.kind() {
        ProviderKind::Oidc => {
            let (claims, sid) = id_token_claims(inner, provider, tokens, cookies, now).await?;
            (Some(claims), sid)
        }
        ProviderKind::OAuth2 => (None, None),
    };
    let id_token = id_token_raw.as_ref().map(IdTokenClaims::signin_claims);
    let mut userinfo_raw = None;
    let userinfo = if (signin::needs_userinfo(id_token.as_ref(), &facts)
        || provider.groups_need_userinfo())
        && provider.endpoints().userinfo.is_some()
    {
        match provider.userinfo(&tokens.access_token).await {
            Ok(info) => {
                let claims = info.signin_claims();
                userinfo_raw = Some(info);
                Some(claims)
            }
            Err(e) if id_token.is_none() => return Err(provider_failure(&e, "userinfo")),
            Err(e) => {
                tracing::warn!(error = %e, "userinfo failed; continuing with the ID token's claims");
                None
            }
        }
    } else {
        None
    };
    let addresses = if signin::needs_address_list(&facts) && provider.endpoints().emails.is_some() {
        match provider.addresses(&tokens.access_token).await {
            Ok(list) => Some(list),
            // A passing failure must not sign the user in without an address.
            Err(e) if e.kind.is_retryable() => return Err(provider_failure(&e, "address list")),
            Err(e) => {
                tracing::warn!(error = %e, "the provider's address list is not readable (is the user:email scope granted?); no address is used");
                None
            }
        }
    } else {
        None
    };
    let mut attributes = provider
        .read_attributes(
            id_token_raw.as_ref(),
            userinfo_raw.as_ref(),
            &inner.rule_claims,
        )
        .map_err(|error| {
            tracing::warn!(provider = provider.id(), %error, "sign-in refused");
            HttpError::forbidden(
                "GroupsOverage",
                "The identity provider did not list your groups in the sign-in answer (you are in too many groups), so this gateway cannot check them. Ask an administrator to limit the groups sent to this application.",
            )
        })?;
    if provider.lists_organisations() {
        match provider.organisations(&tokens.access_token).await {
            Ok(groups) => attributes.add_groups(groups),
            Err(e) if e.kind.is_retryable() => {
                return Err(provider_failure(&e, "organisations"));
            }
            Err(e) => {
                tracing::warn!(error = %e, "the user's organisations and teams are not readable (is the read:org scope granted?); no groups are used");
            }
        }
    }
    if provider.lists_workspace_groups() {
        match verified_email(id_token_raw.as_ref(), userinfo_raw.as_ref()) {
            None => {
                tracing::warn!(
                    provider = provider.id(),
                    "no verified address to look Workspace groups up by; no Workspace groups are used"
                );
            }
            Some(email) => match provider.workspace_groups(email, now).await {
                Ok(groups) => attributes.add_groups(groups),
                Err(e) if e.kind.is_retryable() => {
                    return Err(provider_failure(&e, "Workspace groups"));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the user's Workspace groups are not readable (is domain-wide delegation granted to the service account?); no Workspace groups are used");
                }
            },
        }
    }
    Ok(Answers {
        id_token,
        provider_sid,
        userinfo,
        addresses,
        attributes,
    })
}

/// The groups, roles and rule claims after a refresh, from the refresh's
/// tokens: its new ID token (verified; no nonce), userinfo when the
/// provider lists groups there or (when route rules use groups, roles or
/// claims) sent no new ID token, GitHub's organisations and Google
/// Workspace groups. `None` when nothing could be read (the session keeps
/// what it had); a groups claim moved out of the token gives empty
/// attributes (rules on them then admit nobody).
pub(crate) async fn refreshed_attributes(
    inner: &Inner,
    provider: &Provider,
    tokens: &TokenSet,
    now: UnixTime,
) -> Option<Attributes> {
    let id_token = match (&tokens.id_token, provider.kind()) {
        (Some(raw), ProviderKind::Oidc) => {
            match provider.verify_id_token(raw.expose(), None, now).await {
                Ok(claims) => Some(claims),
                Err(error) => {
                    tracing::debug!(provider = provider.id(), %error, "refreshed ID token not used for groups");
                    None
                }
            }
        }
        _ => None,
    };
    let wants_userinfo = provider.groups_need_userinfo()
        || (id_token.is_none()
            && inner.rules_use_attributes
            && provider.kind() == ProviderKind::Oidc
            && provider.endpoints().userinfo.is_some());
    let userinfo = if wants_userinfo {
        match provider.userinfo(&tokens.access_token).await {
            Ok(info) => Some(info),
            Err(error) => {
                tracing::warn!(provider = provider.id(), %error, "userinfo after refresh failed; groups kept");
                None
            }
        }
    } else {
        None
    };
    let organisations = if provider.lists_organisations() {
        match provider.organisations(&tokens.access_token).await {
            Ok(groups) => Some(groups),
            Err(error) => {
                tracing::warn!(provider = provider.id(), %error, "organisations after refresh unreadable; groups kept");
                return None;
            }
        }
    } else {
        None
    };
    let workspace = if provider.lists_workspace_groups() {
        let Some(email) = verified_email(id_token.as_ref(), userinfo.as_ref()) else {
            tracing::debug!(
                provider = provider.id(),
                "no verified address after refresh; groups kept"
            );
            return None;
        };
        match provider.workspace_groups(email, now).await {
            Ok(groups) => Some(groups),
            Err(error) => {
                tracing::warn!(provider = provider.id(), %error, "Workspace groups after refresh unreadable; groups kept");
                return None;
            }
        }
    } else {
        None
    };
    if id_token.is_none() && userinfo.is_none() && organisations.is_none() {
        return None;
    }
    let mut attributes = provider
        .read_attributes(id_token.as_ref(), userinfo.as_ref(), &inner.rule_claims)
        .unwrap_or_else(|error| {
            tracing::warn!(provider = provider.id(), %error, "groups after refresh not listed; none kept");
            Attributes::default()
        });
    if let Some(groups) = organisations {
        attributes.add_groups(groups);
    }
    if let Some(groups) = workspace {
        attributes.add_groups(groups);
    }
    Some(attributes)
}

/// The user's verified address, from the ID token or else userinfo (the key
/// Workspace groups are looked up by).
fn verified_email<'a>(
    id_token: Option<&'a IdTokenClaims>,
    userinfo: Option<&'a authgate_oauth::UserInfo>,
) -> Option<&'a str> {
    id_token
        .filter(|c| c.email_verified == Some(true))
        .and_then(|c| c.email.as_deref())
        .or_else(|| {
            userinfo
                .filter(|u| u.email_verified == Some(true))
                .and_then(|u| u.email.as_deref())
        })
        .filter(|e| !e.is_empty())
}

async fn id_token_claims(
    inner: &Inner,
    provider: &Provider,
    tokens: &TokenSet,
    cookies: &[(String, String)],
    now: UnixTime,
) -> Result<(IdTokenClaims, Option<String>), HttpError> {
    let id_token = tokens.id_token.as_ref().ok_or_else(|| {
        HttpError::new(
            StatusCode::BAD_GATEWAY,
            "ProviderError",
            "The identity provider returned no ID token.",
        )
    })?;
    let expired = || {
        HttpError::bad_request(
            "InvalidCheck",
            "The sign-in attempt expired. Please try again.",
        )
    };
    let nonce_raw =
        crate::cookies::cookie_value(cookies, inner.checks.cookie_name(CheckKind::Nonce))
            .ok_or_else(expired)?;
    let nonce = inner
        .checks
        .open(CheckKind::Nonce, provider.id(), nonce_raw, now)
        .map_err(|_| expired())?;
    let claims = provider
        .verify_id_token(id_token.expose(), Some(&nonce), now)
        .await
        .map_err(id_token_failure)?;
    let sid = claims
        .extra
        .get("sid")
        .and_then(serde_json::Value::as_str)
        .filter(|sid| !sid.is_empty() && sid.len() <= MAX_PROVIDER_SID_BYTES)
        .map(str::to_owned);
    Ok((claims, sid))
}

/// The longest provider session id recorded (providers use short opaque
/// ids; a longer one is not stored, and back-channel logout by `sid` cannot
/// name that session, while logout by `sub` still can).
const MAX_PROVIDER_SID_BYTES: usize = 255;

fn id_token_failure(e: IdTokenError) -> HttpError {
    match e {
        IdTokenError::Jwks(inner) => provider_failure(&inner, "jwks"),
        other => {
            tracing::warn!(error = %other, "ID token rejected");
            HttpError::bad_request(
                "InvalidIdToken",
                "The identity provider's answer could not be verified. Please try again.",
            )
        }
    }
}

/// Who signed in, as far as the provider vouches.
pub(crate) fn profile(provider: &Provider, answers: &Answers) -> Result<Profile, HttpError> {
    let profile = signin::profile(answers.borrowed(), &provider.signin_facts()).map_err(refused)?;
    if matches!(profile.email, signin::Address::Unverified) {
        tracing::info!(
            provider = provider.id(),
            "the provider does not vouch for the user's e-mail address; it is not used"
        );
    }
    Ok(profile)
}

/// Finds or creates the user and account for `profile` as the core plans it,
/// and stores the sign-in's tokens; says whether the user was new, returning
/// or linked.
pub(crate) async fn sign_in(
    inner: &Inner,
    provider: &Provider,
    profile: &Profile,
    tokens: TokenSet,
    now: UnixTime,
) -> Result<(User, Account, SignInKind), HttpError> {
    let store = &inner.store;
    let returning = match store
        .find_account_by_provider(provider.id(), &profile.sub)
        .await
        .map_err(store_failure)?
    {
        Some(account) => {
            let user = store
                .find_user(&account.user_id)
                .await
                .map_err(store_failure)?
                .ok_or_else(|| store_failure(StoreError::UserNotFound))?;
            Some((account, user))
        }
        None => None,
    };
    let holder = match profile.email.verified() {
        Some(address) => store
            .find_user_by_email(address)
            .await
            .map_err(store_failure)?,
        None => None,
    };
    let found = Found {
        returning: returning.as_ref().map(|(_, u)| stored(u)),
        address_holder: holder.as_ref().map(stored),
    };
    let plan = signin::plan(profile, found, &provider.signin_facts(), now).map_err(refused)?;
    match (plan, returning) {
        (
            Plan::Returning {
                update, release, ..
            },
            Some((account, user)),
        ) => {
            replace_tokens(inner, &account, &tokens).await?;
            release_address(inner, release).await?;
            let user = match update {
                Some(fields) => updated(inner, user, fields).await,
                None => user,
            };
            Ok((user, account, SignInKind::Returning))
        }
        // The planner returns `Returning` exactly when an account was found.
        (Plan::Returning { .. }, None) => Err(store_failure(StoreError::UserNotFound)),
        (Plan::Link { user: id }, _) => {
            let Some(user) = holder.filter(|h| h.id == id) else {
                return Err(store_failure(StoreError::UserNotFound));
            };
            tracing::info!(
                provider = provider.id(),
                user = user.id.as_str(),
                "linked a new account to the user with the same verified address"
            );
            let account = link(inner, provider, profile, &user, tokens).await?;
            Ok((user, account, SignInKind::Linked))
        }
        (Plan::Create { user, release }, _) => {
            release_address(inner, release).await?;
            let user = store
                .create_user(new_user(user))
                .await
                .map_err(|e| match e {
                    StoreError::AlreadyExists(_) => HttpError::new(
                        StatusCode::CONFLICT,
                        "OAuthAccountNotLinked",
                        "This e-mail address already belongs to another account.",
                    ),
                    other => store_failure(other),
                })?;
            let account = link(inner, provider, profile, &user, tokens).await?;
            Ok((user, account, SignInKind::New))
        }
    }
}

fn refused(refusal: Refusal) -> HttpError {
    tracing::info!(reason = refusal.as_str(), "sign-in refused");
    match refusal {
        Refusal::NoSubject => HttpError::new(
            StatusCode::BAD_GATEWAY,
            "ProviderError",
            "The identity provider did not identify the user.",
        ),
        Refusal::SubjectMismatch => HttpError::new(
            StatusCode::BAD_GATEWAY,
            "ProviderError",
            "The identity provider's user info belongs to another user.",
        ),
        Refusal::AccountNotLinked => HttpError::new(
            StatusCode::CONFLICT,
            "OAuthAccountNotLinked",
            "This e-mail address already belongs to an account that signs in another way.",
        ),
    }
}

fn stored(user: &User) -> StoredUser<UserId> {
    StoredUser {
        id: user.id.clone(),
        name: user.name.clone(),
        email: user.email.clone(),
        email_verified: user.email_verified,
        image: user.image.clone(),
    }
}

fn new_user(fields: ProfileFields) -> NewUser {
    NewUser {
        name: fields.name,
        email: fields.email,
        email_verified: fields.email_verified,
        image: fields.image,
    }
}

/// Whether the account `profile` signs in to holds a refresh token (a grant
/// the gateway can keep fresh). No account yet: none.
pub(crate) async fn holds_refresh_token(
    inner: &Inner,
    provider: &Provider,
    profile: &Profile,
) -> Result<bool, HttpError> {
    let store = &inner.store;
    let Some(account) = store
        .find_account_by_provider(provider.id(), &profile.sub)
        .await
        .map_err(store_failure)?
    else {
        return Ok(false);
    };
    let stored = store
        .read_tokens(&account.id)
        .await
        .map_err(store_failure)?;
    Ok(stored
        .and_then(|v| v.tokens)
        .is_some_and(|t| t.refresh_token.is_some()))
}

/// A new sign-in replaces whatever tokens are stored — except that a sign-in
/// answered without a refresh token (Google's, after the first consent)
/// keeps the stored one: the provider did not end that grant.
async fn replace_tokens(
    inner: &Inner,
    account: &Account,
    tokens: &TokenSet,
) -> Result<(), HttpError> {
    let store = &inner.store;
    for _ in 0..5 {
        let stored = store
            .read_tokens(&account.id)
            .await
            .map_err(store_failure)?;
        let version = stored.as_ref().map_or(0, |v| v.version);
        let kept = stored.and_then(|v| v.tokens).and_then(|t| t.refresh_token);
        let merged = TokenSet {
            refresh_token: tokens.refresh_token.clone().or(kept),
            ..tokens.clone()
        };
        match store
            .replace_tokens(&account.id, version, &merged, None)
            .await
            .map_err(store_failure)?
        {
            ReplaceOutcome::Replaced { .. } => return Ok(()),
            ReplaceOutcome::LostRace { .. } => continue,
        }
    }
    Err(HttpError::unavailable(
        "StoreBusy",
        "Please try signing in again.",
        std::time::Duration::from_secs(1),
    ))
}

/// Takes an address away from a user who holds it without verification, so
/// that its verified owner can have it.
async fn release_address(inner: &Inner, release: Option<Release<UserId>>) -> Result<(), HttpError> {
    let Some(Release { user, fields }) = release else {
        return Ok(());
    };
    inner
        .store
        .update_user_profile(&user, new_user(fields))
        .await
        .map_err(store_failure)?;
    inner.users.invalidate(user.as_str());
    tracing::info!(
        user = user.as_str(),
        "released an unverified e-mail address to its verified owner"
    );
    Ok(())
}

/// Writes a returning user's new profile; on failure (another user took the
/// address meanwhile, a store error) the stored profile stays.
async fn updated(inner: &Inner, user: User, fields: ProfileFields) -> User {
    match inner
        .store
        .update_user_profile(&user.id, new_user(fields))
        .await
    {
        Ok(updated) => updated,
        Err(error) => {
            tracing::warn!(%error, user = user.id.as_str(), "could not update the user's profile; keeping the stored one");
            user
        }
    }
}

async fn link(
    inner: &Inner,
    provider: &Provider,
    profile: &Profile,
    user: &User,
    tokens: TokenSet,
) -> Result<Account, HttpError> {
    inner
        .store
        .link_account(new_account(provider, profile, user, tokens))
        .await
        .map_err(store_failure)
}

fn new_account(
    provider: &Provider,
    profile: &Profile,
    user: &User,
    tokens: TokenSet,
) -> NewAccount {
    let kind = match provider.kind() {
        ProviderKind::Oidc => "oidc",
        ProviderKind::OAuth2 => "oauth",
    };
    NewAccount {
        user_id: user.id.clone(),
        kind: kind.to_owned(),
        provider: provider.id().to_owned(),
        provider_account_id: profile.sub.clone(),
        tokens,
        session_state: None,
    }
}

/// Creates the user and account for an adopted guide cookie whose provider
/// account is not in the store yet, as the core plans a first sign-in (the
/// cookie's e-mail is unverified, so it is never stored and never links),
/// storing the cookie's tokens with the account — the one write of them.
/// `Ok(None)` when the planner refuses; [`StoreError::AlreadyExists`] when
/// another instance linked the account first (its tokens stand; this
/// attempt's user row stays behind without an account).
pub(crate) async fn adopt_account(
    inner: &Inner,
    provider: &Provider,
    profile: &Profile,
    tokens: TokenSet,
    now: UnixTime,
) -> Result<Option<Account>, StoreError> {
    let found: Found<UserId> = Found {
        returning: None,
        address_holder: None,
    };
    let plan = match signin::plan(profile, found, &provider.signin_facts(), now) {
        Ok(plan) => plan,
        Err(refusal) => {
            tracing::info!(reason = refusal.as_str(), "guide cookie not adopted");
            return Ok(None);
        }
    };
    let Plan::Create {
        user,
        release: None,
    } = plan
    else {
        // Without a stored account or a verified address the planner can
        // only create; anything else is not an adoption.
        return Ok(None);
    };
    let user = inner.store.create_user(new_user(user)).await?;
    inner
        .store
        .link_account(new_account(provider, profile, &user, tokens))
        .await
        .map(Some)
}
