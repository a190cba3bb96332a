//! Time as a value, and the clock the edges read it from.
//!
//! The core never reads the clock: every function that needs "now" takes a
//! [`UnixTime`] argument. The edges (HTTP handlers, the refresh service) read
//! a [`Clock`] once per request and pass the time in, which keeps the core
//! deterministic and lets tests drive time without sleeping. [`Clock`] lives
//! here so that every edge shares one definition; nothing in this crate calls
//! [`Clock::now`].

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time (the edges read it; the core never does).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in whole seconds since the epoch.
    fn now(&self) -> UnixTime;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        UnixTime::from_secs(secs)
    }
}

/// A point in time as whole seconds since the Unix epoch (the unit JWT
/// `exp`/`iat` claims and Auth.js's `expires_at` column use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(i64);

impl UnixTime {
    /// The instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> i64 {
        self.0
    }

    /// This instant moved `d` later, saturating instead of overflowing.
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_secs(d)))
    }

    /// This instant moved `d` earlier, saturating instead of overflowing.
    pub fn saturating_sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(duration_secs(d)))
    }
}

fn duration_secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_at_the_ends_of_time() {
        let t = UnixTime::from_secs(i64::MAX - 1);
        assert_eq!(
            t.saturating_add(Duration::from_secs(10)).as_secs(),
            i64::MAX
        );
        let t = UnixTime::from_secs(i64::MIN + 1);
        assert_eq!(
            t.saturating_sub(Duration::from_secs(10)).as_secs(),
            i64::MIN
        );
        assert_eq!(
            UnixTime::from_secs(5)
                .saturating_add(Duration::MAX)
                .as_secs(),
            i64::MAX
        );
    }
}
