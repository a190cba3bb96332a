//! Durations written as strings with a unit: `"90s"`, `"15m"`, `"24h"`, `"30d"`,
//! `"500ms"`, `"1w"`, or combinations such as `"1h30m"`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

const EXAMPLES: &str = r#"expected e.g. "90s", "15m", "30d""#;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    input: String,
    reason: String,
}

/// Parses a duration such as `"90s"`, `"15m"`, `"24h"`, `"30d"`, `"500ms"`, `"1h30m"`.
///
/// Units: `ms`, `s`, `m`, `h`, `d`, `w`. A number without a unit is rejected.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let fail = |reason: String| DurationError {
        input: input.to_owned(),
        reason,
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(fail(format!("empty; {EXAMPLES}")));
    }
    if text.chars().all(|c| c.is_ascii_digit()) {
        return Err(fail(format!(
            "a unit is required, e.g. \"{text}s\" (units: ms, s, m, h, d, w)"
        )));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(fail(EXAMPLES.to_owned()));
        }
        let (number, after) = rest.split_at(digits);
        let after = after.trim_start();
        let unit_len = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let (unit, after) = after.split_at(unit_len);
        let per_unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => {
                return Err(fail(format!(
                    "a unit is required after {number} (units: ms, s, m, h, d, w)"
                )));
            }
            _ => {
                return Err(fail(format!(
                    "unknown unit {unit:?}; {EXAMPLES} (units: ms, s, m, h, d, w)"
                )));
            }
        };
        let too_large = || fail("too large".to_owned());
        let number: u64 = number.parse().map_err(|_| too_large())?;
        let ms = number.checked_mul(per_unit_ms).ok_or_else(too_large)?;
        total = total
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(too_large)?;
        rest = after.trim_start();
    }
    Ok(total)
}

/// Formats a duration in the same notation, using the largest unit that divides it
/// (`30d`, `24h`, `90s`, `1500ms`).
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// Serde `deserialize_with` helper for [`Duration`] fields written as strings.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    struct DurationVisitor;
    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(r#"a duration string such as "90s", "15m", "30d""#)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "invalid duration {v}: a unit is required, write it as a string such as \"{v}s\""
            )))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "invalid duration {v}: write it as a string with a unit such as \"90s\" or \"500ms\""
            )))
        }
    }
    deserializer.deserialize_str(DurationVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration(" 1h 30m "), Ok(Duration::from_secs(5_400)));
    }

    #[test]
    fn rejects_numbers_without_unit_and_unknown_units() {
        let e = parse_duration("90").unwrap_err().to_string();
        assert!(e.contains("a unit is required"), "{e}");
        let e = parse_duration("15 parsecs").unwrap_err().to_string();
        assert!(
            e.starts_with(r#"invalid duration "15 parsecs": unknown unit "parsecs"; expected e.g. "90s", "15m", "30d""#),
            "{e}"
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn formats_with_largest_exact_unit() {
        assert_eq!(format_duration(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format_duration(Duration::from_secs(86_400)), "1d");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(60)), "1m");
        assert_eq!(format_duration(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
