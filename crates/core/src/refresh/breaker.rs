//! The per-provider circuit breaker (pure: time is a parameter).

use crate::time::UnixTime;
use std::time::Duration;

/// A per-provider circuit breaker: after `failure_threshold` consecutive
/// transient failures it opens for `open_for`, failing fast; then it lets one
/// probe through (half-open) and closes on its success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitBreaker {
    failure_threshold: u32,
    open_for: Duration,
    state: CircuitState,
}

/// The observable state of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls flow; `failures` consecutive transient failures so far.
    Closed {
        /// Consecutive failures.
        failures: u32,
    },
    /// Calls fail fast until `until`.
    Open {
        /// When a probe may go through.
        until: UnixTime,
    },
    /// One probe is in flight; other calls fail fast.
    HalfOpen,
}

impl CircuitState {
    /// A stable label for metrics: 0 closed, 1 half-open, 2 open.
    pub fn as_gauge(self) -> f64 {
        match self {
            CircuitState::Closed { .. } => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open { .. } => 2.0,
        }
    }
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(failure_threshold: u32, open_for: Duration) -> Self {
        Self {
            failure_threshold: failure_threshold.max(1),
            open_for,
            state: CircuitState::Closed { failures: 0 },
        }
    }

    /// The current state.
    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// Whether a call may go to the provider at `now`. `Err` carries how long
    /// to wait. An open breaker whose time is up lets exactly one probe through.
    pub fn try_acquire(&mut self, now: UnixTime) -> Result<(), Duration> {
        match self.state {
            CircuitState::Closed { .. } => Ok(()),
            CircuitState::Open { until } if now >= until => {
                self.state = CircuitState::HalfOpen;
                Ok(())
            }
            CircuitState::Open { until } => Err(Duration::from_secs(
                u64::try_from(until.as_secs().saturating_sub(now.as_secs()))
                    .unwrap_or(1)
                    .max(1),
            )),
            CircuitState::HalfOpen => Err(Duration::from_secs(1)),
        }
    }

    /// Records the answer of a call that [`Self::try_acquire`] allowed.
    /// Only transient failures count against the provider; a definitive
    /// answer (even `invalid_grant`) proves it is up.
    pub fn record(&mut self, transient_failure: bool, now: UnixTime) {
        self.state = match (self.state, transient_failure) {
            (_, false) => CircuitState::Closed { failures: 0 },
            (CircuitState::HalfOpen, true) => CircuitState::Open {
                until: now.saturating_add(self.open_for),
            },
            (CircuitState::Closed { failures }, true) if failures + 1 >= self.failure_threshold => {
                CircuitState::Open {
                    until: now.saturating_add(self.open_for),
                }
            }
            (CircuitState::Closed { failures }, true) => CircuitState::Closed {
                failures: failures + 1,
            },
            (open @ CircuitState::Open { .. }, true) => open,
        };
    }
}
