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
}

/// Who signed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Subject identifier (the user name typed into the form).
    pub sub: String,
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
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
        }
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
        let refresh_token = has_scope(&request.scope, "offline_access")
            .then(|| self.issue_refresh(grant_id, now, rng));
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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
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
        }
    }

    fn alice() -> Identity {
        Identity {
            sub: "alice".into(),
            name: Some("Alice".into()),
            email: Some("alice@example.com".into()),
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
}
