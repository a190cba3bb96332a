//! Pure grant logic: authorization requests, codes, grants, access and refresh tokens.
//!
//! Nothing here reads the clock, does I/O or knows HTTP. Time is always the `now`
//! parameter (Unix seconds) and randomness comes from the caller's RNG, so every rule
//! (single-use codes, strict refresh rotation, reuse detection, expiry, revocation) is
//! unit-tested without sleeping.
//!
//! Tokens, codes and pending-request ids are random 256-bit values; only their SHA-256
//! hashes are stored.
//!
//! Rotation is strict, with no grace period: every refresh consumes the presented refresh
//! token; presenting a consumed one revokes the whole grant (every access and refresh token
//! issued from it), as `oidc-provider` does (RFC 9700 §4.14.2).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Seconds since the Unix epoch.
pub type UnixTime = u64;

/// SHA-256 of a token; the only form in which tokens are stored.
type TokenHash = [u8; 32];

/// Identifier of a grant (one successful authorization of one user for one client).
pub type GrantId = u64;

fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// A new random token: 32 random bytes, base64url without padding (43 characters).
pub fn random_token(rng: &mut impl RngCore) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Lifetimes, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// Access tokens.
    pub access_token: u64,
    /// Refresh tokens (each rotated token gets a fresh lifetime).
    pub refresh_token: u64,
    /// Authorization codes.
    pub code: u64,
    /// A pending authorization request waiting for the login form.
    pub login: u64,
}

/// A validated authorization request, kept while the user fills in the login form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The client that asked.
    pub client_id: String,
    /// The redirect URI, already checked against the client's registration.
    pub redirect_uri: String,
    /// Granted scopes (unknown ones already dropped).
    pub scope: Vec<String>,
    /// Opaque client state, echoed back.
    pub state: Option<String>,
    /// OIDC nonce, echoed in the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 code challenge, when one was sent.
    pub code_challenge: Option<String>,
    /// The client asked for a refresh token (the `offline_access` scope, or
    /// Google's `access_type=offline` when the provider plays Google).
    pub offline: bool,
    /// The request said `prompt=consent`.
    pub prompt_consent: bool,
}

/// Who signed in, and the identity claims the provider states about them (the login
/// form sets each one, so tests can play the cases a real provider produces).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Subject identifier (the user name typed into the form).
    pub sub: String,
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// `email_verified` as stated with the address: `Some(true)`, `Some(false)`, or
    /// `None` to leave the claim out.
    pub email_verified: Option<bool>,
    /// Google-style `hd` (hosted domain) claim.
    pub hosted_domain: Option<String>,
    /// Entra-style `tid` (tenant id) claim; with
    /// [`DevIdpConfig::tenant_issuer_template`](crate::DevIdpConfig::tenant_issuer_template)
    /// it also fills the issuer's tenant segment.
    pub tenant_id: Option<String>,
    /// Entra-style `xms_edov` (email domain owner verified) claim.
    pub domain_owner_verified: Option<bool>,
    /// The user's groups: the `groups` claim (ID token and userinfo), left out when empty.
    pub groups: Vec<String>,
    /// The user's roles: the `roles` claim and Keycloak's `realm_access.roles`, left out
    /// when empty.
    pub roles: Vec<String>,
    /// Plays Microsoft Entra's groups overage: the ID token carries no `groups` but
    /// distributed-claim pointers (`_claim_names`, `_claim_sources`) to Microsoft Graph.
    pub groups_overage: bool,
}

/// Tokens issued by a code exchange or a refresh.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The grant these tokens belong to.
    pub grant: GrantId,
    /// Opaque access token.
    pub access_token: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
    /// New refresh token (only when the grant has `offline_access`).
    pub refresh_token: Option<String>,
    /// Scopes of the access token.
    pub scope: Vec<String>,
    /// The grant's scopes (decide what the ID token carries).
    pub grant_scope: Vec<String>,
    /// The client.
    pub client_id: String,
    /// The user.
    pub identity: Identity,
    /// When the user signed in.
    pub auth_time: UnixTime,
    /// The authorization request's nonce (code exchange only).
    pub nonce: Option<String>,
}

/// Why a grant operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// Unknown, expired, revoked, mismatched: `invalid_grant`.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// A consumed refresh token was presented again; the grant is now revoked.
    #[error("refresh token reuse detected")]
    RefreshReuse {
        /// True when this call revoked the grant (false: it already was revoked).
        grant_revoked: bool,
    },
    /// A redeemed authorization code was presented again; its grant is now revoked.
    #[error("authorization code replay detected")]
    CodeReplay {
        /// True when this call revoked the grant.
        grant_revoked: bool,
    },
    /// The requested scope exceeds the grant.
    #[error("invalid_scope")]
    InvalidScope,
    /// The pending authorization request is unknown or expired.
    #[error("unknown or expired authorization request")]
    UnknownRequest,
}

impl GrantError {
    /// The RFC 6749 §5.2 error code.
    pub fn oauth_error(&self) -> &'static str {
        match self {
            Self::InvalidScope => "invalid_scope",
            Self::UnknownRequest => "invalid_request",
            _ => "invalid_grant",
        }
    }

    /// A human-readable description (never contains a token).
    pub fn description(&self) -> &'static str {
        match self {
            Self::InvalidGrant(why) => why,
            Self::RefreshReuse { .. } => "refresh token already used; the grant has been revoked",
            Self::CodeReplay { .. } => {
                "authorization code already used; tokens issued from it have been revoked"
            }
            Self::InvalidScope => "requested scope exceeds the granted scope",
            Self::UnknownRequest => "unknown or expired authorization request",
        }
    }
}

/// Which kind of token was introspected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// An access token.
    Access,
    /// A refresh token.
    Refresh,
}

impl TokenKind {
    /// RFC 7009 / RFC 7662 token type hint name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access_token",
            Self::Refresh => "refresh_token",
        }
    }
}

/// What introspection reports about an active token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Introspection {
    /// Access or refresh token.
    pub kind: TokenKind,
    /// Client it was issued to.
    pub client_id: String,
    /// Subject.
    pub sub: String,
    /// Scopes.
    pub scope: Vec<String>,
    /// Issued at.
    pub iat: UnixTime,
    /// Expires at.
    pub exp: UnixTime,
}

/// What a revocation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// Unknown token, another client's token, or already revoked: nothing changed.
    Nothing,
    /// One access token was revoked.
    AccessToken,
    /// A refresh token was presented: its whole grant was revoked.
    Grant,
}

struct Pending {
    request: AuthorizationRequest,
    expires_at: UnixTime,
}

struct Code {
    request: AuthorizationRequest,
    identity: Identity,
    auth_time: UnixTime,
    expires_at: UnixTime,
    /// `Some` once presented at the token endpoint; the inner value is the grant it created.
    redeemed: Option<Option<GrantId>>,
}

struct Grant {
    client_id: String,
    identity: Identity,
    scope: Vec<String>,
    auth_time: UnixTime,
    revoked: bool,
}

struct AccessToken {
    grant: GrantId,
    scope: Vec<String>,
    issued_at: UnixTime,
    expires_at: UnixTime,
    revoked: bool,
}

struct RefreshToken {
    grant: GrantId,
    issued_at: UnixTime,
    expires_at: UnixTime,
    consumed: bool,
}

/// How often expired entries are swept (seconds).
const PURGE_INTERVAL: u64 = 60;

/// All grant state of the provider. Callers hold it behind a mutex.
pub struct Grants {
    lifetimes: Lifetimes,
    pending: HashMap<TokenHash, Pending>,
    codes: HashMap<TokenHash, Code>,
    grants: HashMap<GrantId, Grant>,
    access: HashMap<TokenHash, AccessToken>,
    refresh: HashMap<TokenHash, RefreshToken>,
    next_grant: GrantId,
    last_purge: UnixTime,
    /// Google's rule: a refresh token only at a user's first consent to a
    /// client, or when the request says `prompt=consent`.
    refresh_on_consent_only: bool,
    /// `(client_id, sub)` pairs that consented.
    consented: std::collections::HashSet<(String, String)>,
}

fn has_scope(scope: &[String], wanted: &str) -> bool {
    scope.iter().any(|s| s == wanted)
}

/// PKCE S256: base64url(SHA-256(verifier)) compared with the challenge.
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636 §4.1: 43..=128 characters from the unreserved set.
pub fn valid_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

impl Grants {
    /// Empty state with the given lifetimes.
    pub fn new(lifetimes: Lifetimes) -> Self {
        Self {
            lifetimes,
            pending: HashMap::new(),
            codes: HashMap::new(),
            grants: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            next_grant: 1,
            last_purge: 0,
            refresh_on_consent_only: false,
            consented: std::collections::HashSet::new(),
        }
    }

    /// Issues refresh tokens as Google does: only at a user's first consent
    /// to a client, or when the authorization request said `prompt=consent`.
    #[must_use]
    pub fn refresh_on_consent_only(mut self, on: bool) -> Self {
        self.refresh_on_consent_only = on;
        self
    }

    /// The configured lifetimes.
    pub fn lifetimes(&self) -> Lifetimes {
        self.lifetimes
    }

    /// Store a validated authorization request; returns the id that the login form posts back.
    pub fn begin_authorization(
        &mut self,
        request: AuthorizationRequest,
        now: UnixTime,
        rng: &mut impl RngCore,
    ) -> String {
        self.maybe_purge(now);
        let id = random_token(rng);
        self.pending.insert(
            hash(&id),
            Pending {
                request,
                expires_at: now.saturating_add(self.lifetimes.login),
            },
        );
        id
    }

    /// Look at a pending request without consuming it.
    pub fn pending_request(&self, id: &str, now: UnixTime) -> Option<&AuthorizationRequest> {
        self.pending
            .get(&hash(id))
            .filter(|p| now < p.expires_at)
            .map(|p| &p.request)
    }

    /// The user signed in: consume the pending request and issue a single-use code.
    pub fn complete_authorization(
        &mut self,
        id: &str,
        identity: Identity,
        now: UnixTime,
        rng: &mut impl RngCore,
    ) -> Result<(AuthorizationRequest, String), GrantError> {
        let pending = self.take_pending(id, now)?;
        let code = random_token(rng);
        self.codes.insert(
            hash(&code),
            Code {
                request: pending.clone(),
                identity,
                auth_time: now,
                expires_at: now.saturating_add(self.lifetimes.code),
                redeemed: None,
            },
        );
        Ok((pending, code))
    }

    /// The user refused: consume the pending request.
    pub fn deny_authorization(
        &mut self,
        id: &str,
        now: UnixTime,
    ) -> Result<AuthorizationRequest, GrantError> {
        self.take_pending(id, now)
    }

    fn take_pending(
        &mut self,
        id: &str,
        now: UnixTime,
    ) -> Result<AuthorizationRequest, GrantError> {
        match self.pending.remove(&hash(id)) {
            Some(p) if now < p.expires_at => Ok(p.request),
            _ => Err(GrantError::UnknownRequest),
        }
    }

    /// Exchange an authorization code (single use, PKCE, redirect URI match).
    ///
    /// A code presented a second time fails and revokes the grant created from it.
    pub fn exchange_code(
        &mut self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
        now: UnixTime,
        rng: &mut impl RngCore,
    ) -> Result<Issued, GrantError> {
        self.maybe_purge(now);
        let entry = self
            .codes
            .get_mut(&hash(code))
            .ok_or(GrantError::InvalidGrant("unknown authorization code"))?;
        if entry.request.client_id != client_id {
            return Err(GrantError::InvalidGrant(
                "authorization code was issued to another client",
            ));
        }
        if let Some(created) = entry.redeemed {
            let grant_revoked = created.is_some_and(|g| self.revoke_grant(g));
            return Err(GrantError::CodeReplay { grant_revoked });
        }
        // Any presentation by its client uses the code up, success or not.
        entry.redeemed = Some(None);
        if now >= entry.expires_at {
            return Err(GrantError::InvalidGrant("authorization code expired"));
        }
        if entry.request.redirect_uri != redirect_uri {
            return Err(GrantError::InvalidGrant("redirect_uri does not match"));
        }
        match (&entry.request.code_challenge, code_verifier) {
            (Some(challenge), Some(verifier)) => {
                if !valid_pkce_value(verifier) || pkce_s256(verifier) != *challenge {
                    return Err(GrantError::InvalidGrant("PKCE verification failed"));
                }
            }
            (Some(_), None) => return Err(GrantError::InvalidGrant("code_verifier required")),
            (None, Some(_)) => {
                return Err(GrantError::InvalidGrant(
                    "code_verifier sent but no code_challenge was used",
                ));
            }
            (None, None) => {}
        }
        let request = entry.request.clone();
        let identity = entry.identity.clone();
        let auth_time = entry.auth_time;

        let grant_id = self.next_grant;
        self.next_grant += 1;
        if let Some(entry) = self.codes.get_mut(&hash(code)) {
            entry.redeemed = Some(Some(grant_id));
        }
        self.grants.insert(
            grant_id,
            Grant {
                client_id: request.client_id.clone(),
                identity: identity.clone(),
                scope: request.scope.clone(),
                auth_time,
                revoked: false,
            },
        );
        let access_token = self.issue_access(grant_id, request.scope.clone(), now, rng);
        let first_consent = self
            .consented
            .insert((request.client_id.clone(), identity.sub.clone()));
        let refresh = request.offline
            && (!self.refresh_on_consent_only || first_consent || request.prompt_consent);
        let refresh_token = refresh.then(|| self.issue_refresh(grant_id, now, rng));
        Ok(Issued {
            grant: grant_id,
            access_token,
            expires_in: self.lifetimes.access_token,
            refresh_token,
            scope: request.scope.clone(),
            grant_scope: request.scope,
            client_id: request.client_id,
            identity,
            auth_time,
            nonce: request.nonce,
        })
    }

    /// Refresh grant with strict rotation.
    ///
    /// The presented token is consumed and a new refresh token is issued. A consumed token
    /// presented again revokes the whole grant. `requested_scope` may narrow the access
    /// token's scope, never widen it.
    pub fn refresh(
        &mut self,
        client_id: &str,
        refresh_token: &str,
        requested_scope: Option<&[String]>,
        now: UnixTime,
        rng: &mut impl RngCore,
    ) -> Result<Issued, GrantError> {
        self.maybe_purge(now);
        let entry = self
            .refresh
            .get_mut(&hash(refresh_token))
            .ok_or(GrantError::InvalidGrant("unknown refresh token"))?;
        let grant_id = entry.grant;
        let Some(grant) = self.grants.get(&grant_id) else {
            return Err(GrantError::InvalidGrant("refresh token has been revoked"));
        };
        if grant.client_id != client_id {
            return Err(GrantError::InvalidGrant(
                "refresh token was issued to another client",
            ));
        }
        if entry.consumed {
            let grant_revoked = self.revoke_grant(grant_id);
            return Err(GrantError::RefreshReuse { grant_revoked });
        }
        if grant.revoked {
            return Err(GrantError::InvalidGrant("refresh token has been revoked"));
        }
        if now >= entry.expires_at {
            return Err(GrantError::InvalidGrant("refresh token expired"));
        }
        let scope = match requested_scope {
            Some(requested) if !requested.is_empty() => {
                if !requested.iter().all(|s| has_scope(&grant.scope, s)) {
                    return Err(GrantError::InvalidScope);
                }
                requested.to_vec()
            }
            _ => grant.scope.clone(),
        };
        entry.consumed = true;
        let grant_scope = grant.scope.clone();
        let identity = grant.identity.clone();
        let auth_time = grant.auth_time;
        let access_token = self.issue_access(grant_id, scope.clone(), now, rng);
        let new_refresh = self.issue_refresh(grant_id, now, rng);
        Ok(Issued {
            grant: grant_id,
            access_token,
            expires_in: self.lifetimes.access_token,
            refresh_token: Some(new_refresh),
            scope,
            grant_scope,
            client_id: client_id.to_owned(),
            identity,
            auth_time,
            nonce: None,
        })
    }

    /// Changes `sub`'s groups and roles in every grant (a directory change): tokens issued
    /// from now on, refreshes included, carry the new ones. Returns how many grants changed.
    pub fn set_membership(&mut self, sub: &str, groups: Vec<String>, roles: Vec<String>) -> usize {
        let mut changed = 0;
        for grant in self.grants.values_mut() {
            if grant.identity.sub == sub {
                grant.identity.groups.clone_from(&groups);
                grant.identity.roles.clone_from(&roles);
                changed += 1;
            }
        }
        changed
    }

    /// RFC 7009 revocation by `client_id`. A refresh token (live or consumed) revokes its
    /// whole grant; an access token revokes only itself.
    pub fn revoke(&mut self, client_id: &str, token: &str, now: UnixTime) -> Revoked {
        self.maybe_purge(now);
        let h = hash(token);
        if let Some(grant_id) = self.refresh.get(&h).map(|r| r.grant) {
            if self.grant_client(grant_id) == Some(client_id) && self.revoke_grant(grant_id) {
                return Revoked::Grant;
            }
            return Revoked::Nothing;
        }
        if let Some(grant_id) = self.access.get(&h).map(|a| a.grant)
            && self.grant_client(grant_id) == Some(client_id)
            && let Some(at) = self.access.get_mut(&h)
            && !at.revoked
        {
            at.revoked = true;
            return Revoked::AccessToken;
        }
        Revoked::Nothing
    }

    fn grant_client(&self, grant: GrantId) -> Option<&str> {
        self.grants.get(&grant).map(|g| g.client_id.as_str())
    }

    /// Revoke a grant (all its access and refresh tokens). True if it was active.
    pub fn revoke_grant(&mut self, grant: GrantId) -> bool {
        match self.grants.get_mut(&grant) {
            Some(g) if !g.revoked => {
                g.revoked = true;
                true
            }
            _ => false,
        }
    }

    /// Whether a grant is active (exists and not revoked).
    pub fn grant_active(&self, grant: GrantId) -> bool {
        self.grants.get(&grant).is_some_and(|g| !g.revoked)
    }

    fn active_grant(&self, grant: GrantId) -> Option<&Grant> {
        self.grants.get(&grant).filter(|g| !g.revoked)
    }

    /// RFC 7662: `None` when the token is unknown, expired, consumed or revoked.
    pub fn introspect(&self, token: &str, now: UnixTime) -> Option<Introspection> {
        let h = hash(token);
        if let Some(at) = self.access.get(&h) {
            let grant = self.active_grant(at.grant)?;
            if at.revoked || now >= at.expires_at {
                return None;
            }
            return Some(Introspection {
                kind: TokenKind::Access,
                client_id: grant.client_id.clone(),
                sub: grant.identity.sub.clone(),
                scope: at.scope.clone(),
                iat: at.issued_at,
                exp: at.expires_at,
            });
        }
        let rt = self.refresh.get(&h)?;
        let grant = self.active_grant(rt.grant)?;
        if rt.consumed || now >= rt.expires_at {
            return None;
        }
        Some(Introspection {
            kind: TokenKind::Refresh,
            client_id: grant.client_id.clone(),
            sub: grant.identity.sub.clone(),
            scope: grant.scope.clone(),
            iat: rt.issued_at,
            exp: rt.expires_at,
        })
    }

    /// The identity and scopes behind an active access token.
    pub fn userinfo(&self, access_token: &str, now: UnixTime) -> Option<(Identity, Vec<String>)> {
        let at = self.access.get(&hash(access_token))?;
        let grant = self.active_grant(at.grant)?;
        if at.revoked || now >= at.expires_at {
            return None;
        }
        Some((grant.identity.clone(), at.scope.clone()))
    }

    fn issue_access(
        &mut self,
        grant: GrantId,
        scope: Vec<String>,
        now: UnixTime,
        rng: &mut impl RngCore,
    ) -> String {
        let token = random_token(rng);
        self.access.insert(
            hash(&token),
            AccessToken {
                grant,
                scope,
                issued_at: now,
                expires_at: now.saturating_add(self.lifetimes.access_token),
                revoked: false,
            },
        );
        token
    }

    fn issue_refresh(&mut self, grant: GrantId, now: UnixTime, rng: &mut impl RngCore) -> String {
        let token = random_token(rng);
        self.refresh.insert(
            hash(&token),
            RefreshToken {
                grant,
                issued_at: now,
                expires_at: now.saturating_add(self.lifetimes.refresh_token),
                consumed: false,
            },
        );
        token
    }

    fn maybe_purge(&mut self, now: UnixTime) {
        if now >= self.last_purge.saturating_add(PURGE_INTERVAL) {
            self.purge(now);
        }
    }

    /// Drop everything that has expired, and grants no token refers to any more.
    ///
    /// Consumed refresh tokens are kept until they expire so that reuse is still detected.
    pub fn purge(&mut self, now: UnixTime) {
        self.last_purge = now;
        self.pending.retain(|_, p| now < p.expires_at);
        self.codes.retain(|_, c| now < c.expires_at);
        self.access.retain(|_, a| now < a.expires_at);
        self.refresh.retain(|_, r| now < r.expires_at);
        let mut live: std::collections::HashSet<GrantId> = std::collections::HashSet::new();
        live.extend(self.access.values().map(|a| a.grant));
        live.extend(self.refresh.values().map(|r| r.grant));
        live.extend(self.codes.values().filter_map(|c| c.redeemed.flatten()));
        self.grants.retain(|id, _| live.contains(id));
    }

    /// Number of stored grants (for tests and diagnostics).
    pub fn grant_count(&self) -> usize {
        self.grants.len()
    }
}

#[cfg(test)]
mod tests;
