//! Metric names (Prometheus) of the refresh service.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `authgate_refresh_total` | counter | `provider`, `outcome` | finished refresh flights by outcome (`refreshed`, `already_fresh`, `revoked`, `no_refresh_token`, `account_missing`, `unavailable`, `rejected`) |
//! | `authgate_refresh_duration_seconds` | histogram | `provider` | time from the start of a flight to its outcome |
//! | `authgate_refresh_provider_calls_total` | counter | `provider`, `result` | refresh grants sent (`granted`, `grant_revoked`, `transient`, `misconfigured`, `protocol`, `circuit_open`) |
//! | `authgate_refresh_coalesced_total` | counter | `provider` | callers that joined a flight already running in this process |
//! | `authgate_refresh_lock_wait_seconds` | histogram | — | time spent waiting for another instance's lease holder |
//! | `authgate_refresh_lease_renewals_total` | counter | `result` | lease renewals while a provider call, a backoff or a token write runs (`renewed`, `lost`, `error`: the store did not answer, which never counts as renewed) |
//! | `authgate_refresh_grants_ended_total` | counter | `reason`, `result` | grants ended under the lease (`reason`: `sign_out`, `admin`; `result`: `ended`, `ended_not_revoked`, `nothing_to_end`, `unavailable`) |
//! | `authgate_refresh_circuit_state` | gauge | `provider` | 0 closed, 1 half-open, 2 open |
//! | `authgate_refresh_fallback_total` | counter | `reason` | Redis unavailable: the store lease and polling were used instead |

/// Finished flights by outcome.
pub const REFRESH_TOTAL: &str = "authgate_refresh_total";
/// Flight duration.
pub const REFRESH_DURATION: &str = "authgate_refresh_duration_seconds";
/// Provider refresh grants sent.
pub const PROVIDER_CALLS: &str = "authgate_refresh_provider_calls_total";
/// Callers coalesced onto a running flight.
pub const COALESCED: &str = "authgate_refresh_coalesced_total";
/// Time waiting for another instance.
pub const LOCK_WAIT: &str = "authgate_refresh_lock_wait_seconds";
/// Lease renewals.
pub const LEASE_RENEWALS: &str = "authgate_refresh_lease_renewals_total";
/// Grants ended (sign-out).
pub const GRANTS_ENDED: &str = "authgate_refresh_grants_ended_total";
/// Circuit breaker state per provider.
pub const CIRCUIT_STATE: &str = "authgate_refresh_circuit_state";
/// Redis fallbacks.
pub const FALLBACK: &str = "authgate_refresh_fallback_total";
