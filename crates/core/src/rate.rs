//! Rate limits: a [`Rate`] as configured (`"600/min"`) and the
//! [`RateLimiter`] that enforces it.
//!
//! The limiter is a token bucket of `count` tokens refilled at `count` per
//! `per`, written as GCRA (the generic cell rate algorithm: one "theoretical
//! arrival time" instead of a token count and a refill timestamp). A client
//! may burst up to `count` calls, then one per `per / count`. Time is a
//! parameter — a monotonic offset from any fixed origin — so the limiter
//! never reads a clock.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

/// `count` calls per `per` (`"600/min"`, `"10/s"`, `"5000/h"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Calls allowed per period, and the largest burst.
    pub count: NonZeroU32,
    /// The period.
    pub per: Period,
}

/// The period of a [`Rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// `s`
    Second,
    /// `min`
    Minute,
    /// `h`
    Hour,
}

impl Period {
    /// Its length.
    pub fn duration(self) -> Duration {
        Duration::from_secs(match self {
            Period::Second => 1,
            Period::Minute => 60,
            Period::Hour => 3600,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Period::Second => "s",
            Period::Minute => "min",
            Period::Hour => "h",
        }
    }
}

/// Why a rate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rate {input:?}: expected a positive count per s, min or h, e.g. \"600/min\"")]
pub struct RateError {
    input: String,
}

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = || RateError {
            input: text.chars().take(40).collect(),
        };
        let (count, unit) = text.split_once('/').ok_or_else(fail)?;
        let count = count.trim();
        if !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail());
        }
        let count: NonZeroU32 = count.parse().map_err(|_| fail())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Period::Second,
            "m" | "min" | "minute" => Period::Minute,
            "h" | "hour" => Period::Hour,
            _ => return Err(fail()),
        };
        Ok(Rate { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.per.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Enforces a [`Rate`]: [`RateLimiter::check`] admits a call or says when
/// the next one will be admitted.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    /// Time between two calls at the sustained rate.
    interval: Duration,
    /// How far ahead of `now` the theoretical arrival time may run: the
    /// burst, less the call being admitted.
    tolerance: Duration,
    /// When the bucket will be full again (the theoretical arrival time).
    full_at: Duration,
}

impl RateLimiter {
    /// A limiter for `rate`, with a full bucket.
    pub fn new(rate: Rate) -> Self {
        let period = rate.per.duration();
        let interval = period / rate.count.get();
        Self {
            interval,
            tolerance: period.saturating_sub(interval),
            full_at: Duration::ZERO,
        }
    }

    /// Admits one call at `now` (a monotonic offset from the origin every
    /// call of this limiter uses), or refuses it with how long until a call
    /// would be admitted.
    pub fn check(&mut self, now: Duration) -> Result<(), Duration> {
        let start = self.full_at.max(now);
        let ahead = start - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        self.full_at = start + self.interval;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rate(text: &str) -> Rate {
        text.parse().unwrap()
    }

    #[test]
    fn rates_parse_in_every_unit_and_print_back() {
        assert_eq!(rate("600/min").to_string(), "600/min");
        assert_eq!(rate(" 10 / s ").to_string(), "10/s");
        assert_eq!(rate("5000/hour").to_string(), "5000/h");
        assert_eq!(rate("1/m").per, Period::Minute);
        for bad in [
            "",
            "600",
            "0/min",
            "-1/min",
            "+5/min",
            "10/day",
            "1.5/s",
            "x/s",
            "99999999999/s",
        ] {
            let error = bad.parse::<Rate>().unwrap_err();
            assert!(
                error.to_string().contains("e.g. \"600/min\""),
                "{bad:?}: {error}"
            );
        }
    }

    #[test]
    fn a_full_bucket_admits_a_burst_of_count_then_one_call_per_interval() {
        let mut limiter = RateLimiter::new(rate("3/min"));
        let t = Duration::from_secs(100);
        for _ in 0..3 {
            assert_eq!(limiter.check(t), Ok(()));
        }
        assert_eq!(limiter.check(t), Err(Duration::from_secs(20)));
        assert_eq!(
            limiter.check(t + Duration::from_secs(5)),
            Err(Duration::from_secs(15))
        );
        assert_eq!(limiter.check(t + Duration::from_secs(20)), Ok(()));
        assert!(limiter.check(t + Duration::from_secs(20)).is_err());
        // A quiet minute refills the whole bucket, and no more.
        let later = t + Duration::from_secs(200);
        for _ in 0..3 {
            assert_eq!(limiter.check(later), Ok(()));
        }
        assert!(limiter.check(later).is_err());
    }

    proptest! {
        #[test]
        fn no_window_of_one_period_admits_more_than_a_burst_and_its_refill(
            count in 1u32..20,
            gaps in proptest::collection::vec(0u64..5_000, 1..200),
        ) {
            let r = Rate { count: NonZeroU32::new(count).unwrap(), per: Period::Second };
            let mut limiter = RateLimiter::new(r);
            let mut now = Duration::ZERO;
            let mut admitted = Vec::new();
            for gap in gaps {
                now += Duration::from_millis(gap / 10);
                match limiter.check(now) {
                    Ok(()) => admitted.push(now),
                    Err(wait) => prop_assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1)),
                }
            }
            // Within any one second: at most `count` (the burst) plus what
            // refills during that second (`count` more, at most).
            for (i, &start) in admitted.iter().enumerate() {
                let within = admitted[i..].iter().take_while(|&&t| t < start + Duration::from_secs(1)).count();
                prop_assert!(within <= 2 * count as usize, "{within} > 2×{count}");
            }
        }

        #[test]
        fn arbitrary_text_never_panics_the_rate_parser(text in ".{0,40}") {
            let _ = text.parse::<Rate>();
        }
    }
}
