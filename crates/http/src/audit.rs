//! Audit events: one structured log line and one counter increment per
//! security-relevant decision.
//!
//! Every event is logged at `info` with target [`AUDIT_TARGET`]
//! (`authgate::audit`), the event's name as the message, its fields, and the
//! request id; with `--log-format json` each is one JSON object per line.
//! The counter is [`AUDIT_EVENTS_TOTAL`] with the labels `event` and
//! `outcome` (a small fixed vocabulary; never a user, path or token).
//!
//! The names and fields are a stable interface (the README's "Audit events"
//! lists them): fields are added, never renamed or removed. No event carries
//! token material: only ids (user, session, provider, client), reasons from a
//! fixed vocabulary, and the request's method and judged path.
//!
//! The token endpoint (`token_endpoint`) and the admin API (`admin_sessions`)
//! write their own audit lines with the same target (see their modules).

use crate::request_id;
use crate::token_endpoint::AUDIT_TARGET;

/// The audit events counter: `authgate_audit_events_total{event, outcome}`.
pub const AUDIT_EVENTS_TOTAL: &str = "authgate_audit_events_total";

/// How a successful sign-in related to the store's users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInKind {
    /// A new user (and account) was created.
    New,
    /// The provider account was known: its user signed in again.
    Returning,
    /// A new provider account was linked to the user holding the same
    /// verified address.
    Linked,
}

impl SignInKind {
    /// The label used in events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SignInKind::New => "new",
            SignInKind::Returning => "returning",
            SignInKind::Linked => "linked",
        }
    }
}

/// What ended a session (the `signout` event's `via`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignOutVia {
    /// The user, at `{base}/signout`.
    User,
    /// The provider, by an OpenID Connect back-channel logout token.
    Backchannel,
}

impl SignOutVia {
    fn as_str(self) -> &'static str {
        match self {
            SignOutVia::User => "user",
            SignOutVia::Backchannel => "backchannel",
        }
    }
}

/// One audit event.
#[derive(Debug)]
pub(crate) enum AuditEvent<'a> {
    /// `signin`: a user signed in.
    SignIn {
        provider: &'a str,
        user: &'a str,
        kind: SignInKind,
    },
    /// `signin_refused`: a sign-in callback was refused; `reason` is the
    /// error code the browser was shown (`InvalidState`, `IssuerMismatch`,
    /// `AccessDenied`, `OAuthAccountNotLinked`, …).
    SignInRefused { provider: &'a str, reason: &'a str },
    /// `signout`: sessions were ended. `user` is known for a user's own
    /// sign-out; a back-channel logout names the provider and how many
    /// sessions it ended.
    SignOut {
        via: SignOutVia,
        user: Option<&'a str>,
        provider: Option<&'a str>,
        sessions: Option<u64>,
    },
    /// `session_ended`: the provider revoked the grant (`RefreshTokenError`):
    /// the user must sign in again.
    SessionEnded { user: &'a str, provider: &'a str },
    /// `access_denied`: a signed-in user was refused by a route's allow-lists.
    AccessDenied {
        user: &'a str,
        rule: &'a str,
        method: &'a str,
        path: &'a str,
    },
    /// `bearer_refused`: an API client's bearer token was refused; `reason`
    /// is one of [`authgate_oauth::BearerError::reason`]'s words (or
    /// `credentials` for an unreadable `Authorization` header,
    /// `groups_overage` when its groups were moved out of the token).
    /// `provider` is known once the token's issuer named one.
    BearerRefused {
        provider: Option<&'a str>,
        reason: &'a str,
        method: &'a str,
        path: &'a str,
    },
}

impl AuditEvent<'_> {
    /// The event's stable name.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            AuditEvent::SignIn { .. } => "signin",
            AuditEvent::SignInRefused { .. } => "signin_refused",
            AuditEvent::SignOut { .. } => "signout",
            AuditEvent::SessionEnded { .. } => "session_ended",
            AuditEvent::AccessDenied { .. } => "access_denied",
            AuditEvent::BearerRefused { .. } => "bearer_refused",
        }
    }

    /// The counter's `outcome` label: a fixed vocabulary per event.
    fn outcome(&self) -> &'static str {
        match self {
            AuditEvent::SignIn { kind, .. } => kind.as_str(),
            AuditEvent::SignInRefused { .. } => "refused",
            AuditEvent::SignOut { via, .. } => via.as_str(),
            AuditEvent::SessionEnded { .. } => "grant_revoked",
            AuditEvent::AccessDenied { .. } => "denied",
            AuditEvent::BearerRefused { .. } => "refused",
        }
    }

    /// Logs the event with the current request's id and counts it.
    pub(crate) fn emit(&self) {
        let request_id = request_id::current();
        let request_id = request_id.as_deref();
        let event = self.name();
        metrics::counter!(AUDIT_EVENTS_TOTAL, "event" => event, "outcome" => self.outcome())
            .increment(1);
        match *self {
            AuditEvent::SignIn {
                provider,
                user,
                kind,
            } => tracing::info!(
                target: AUDIT_TARGET,
                provider,
                user,
                kind = kind.as_str(),
                request_id,
                "signin"
            ),
            AuditEvent::SignInRefused { provider, reason } => tracing::info!(
                target: AUDIT_TARGET,
                provider,
                reason,
                request_id,
                "signin_refused"
            ),
            AuditEvent::SignOut {
                via,
                user,
                provider,
                sessions,
            } => tracing::info!(
                target: AUDIT_TARGET,
                via = via.as_str(),
                user,
                provider,
                sessions,
                request_id,
                "signout"
            ),
            AuditEvent::SessionEnded { user, provider } => tracing::info!(
                target: AUDIT_TARGET,
                user,
                provider,
                reason = "RefreshTokenError",
                request_id,
                "session_ended"
            ),
            AuditEvent::AccessDenied {
                user,
                rule,
                method,
                path,
            } => tracing::info!(
                target: AUDIT_TARGET,
                user,
                rule,
                method,
                path,
                request_id,
                "access_denied"
            ),
            AuditEvent::BearerRefused {
                provider,
                reason,
                method,
                path,
            } => tracing::info!(
                target: AUDIT_TARGET,
                provider,
                reason,
                method,
                path,
                request_id,
                "bearer_refused"
            ),
        }
    }
}
