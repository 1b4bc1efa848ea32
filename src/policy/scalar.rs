//! Typed condition values: numbers for `Numeric*`, instants for `Date*`, booleans for `Bool`.
//!
//! - Numbers: an optional `-`/`+`, digits, and an optional `.digits` fraction (what the IAM
//!   reference calls "an integer or decimal value"). Integers compare exactly (as `i128`); when
//!   either side has a fraction both compare as `f64`.
//! - Dates: the W3C profile of ISO 8601 that the IAM reference names (`2026-12-31`,
//!   `2026-12-31T23:59Z`, `2026-12-31T23:59:59Z`, `2026-12-31T23:59:59.5+02:00`), or epoch seconds
//!   (`1767225599`, as in `aws:EpochTime`). A date without a time is midnight UTC; a time without
//!   an offset is taken as UTC.
//! - Booleans: `true` / `false`, case-insensitively.

use std::cmp::Ordering;

/// A parsed number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    /// Parse a decimal number; `None` for anything else (hex, exponents, `NaN`, empty, spaces).
    #[must_use]
    pub fn parse(text: &str) -> Option<Number> {
        let body = text.strip_prefix(['-', '+']).unwrap_or(text);
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return None;
        }
        match frac {
            None => text.parse::<i128>().ok().map(Number::Int).or_else(|| text.parse::<f64>().ok().map(Number::Float)),
            Some(_) => text.parse::<f64>().ok().filter(|f| f.is_finite()).map(Number::Float),
        }
    }

    /// Compare two numbers; `None` never happens for finite values but keeps `f64` honest.
    #[must_use]
    pub fn compare(self, other: Number) -> Option<Ordering> {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    #[allow(clippy::cast_precision_loss, reason = "comparing an integer with a decimal is approximate in IAM too")]
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// Parse an ISO 8601 (W3C profile) date/time or epoch seconds into an instant.
#[must_use]
pub fn parse_date(text: &str) -> Option<jiff::Timestamp> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let epoch_body = t.strip_prefix('-').unwrap_or(t);
    if epoch_body.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = t.parse().ok()?;
        return jiff::Timestamp::from_second(secs).ok();
    }
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    // No offset: a plain date is midnight UTC, a plain date-time is UTC.
    if let Ok(dt) = t.parse::<jiff::civil::DateTime>() {
        return dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp());
    }
    None
}

/// Parse `true` / `false` in any case.
#[must_use]
pub fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(Number::parse("10"), Some(Number::Int(10)));
        assert_eq!(Number::parse("-3"), Some(Number::Int(-3)));
        assert_eq!(Number::parse("+3"), Some(Number::Int(3)));
        assert_eq!(Number::parse("2.5"), Some(Number::Float(2.5)));
        for bad in ["", "-", "1e3", "0x10", " 1", "1.", ".5", "NaN", "inf", "1,000"] {
            assert_eq!(Number::parse(bad), None, "{bad}");
        }
        let big = Number::parse("170141183460469231731687303715884105728").expect("float fallback");
        assert!(matches!(big, Number::Float(_)));
        assert_eq!(
            Number::Int(9_007_199_254_740_993).compare(Number::Int(9_007_199_254_740_992)),
            Some(Ordering::Greater)
        );
        assert_eq!(Number::Int(2).compare(Number::Float(2.5)), Some(Ordering::Less));
    }

    #[test]
    fn dates() {
        let z = parse_date("2026-01-01T00:00:00Z").expect("rfc3339");
        assert_eq!(parse_date("2026-01-01"), Some(z));
        assert_eq!(parse_date("2026-01-01T00:00Z"), Some(z));
        assert_eq!(parse_date("2026-01-01T01:00:00+01:00"), Some(z));
        assert_eq!(parse_date("2026-01-01T00:00:00"), Some(z));
        assert_eq!(parse_date("1767225600"), Some(z));
        assert!(parse_date("2026-01-01T00:00:00.25Z").is_some_and(|t| t > z));
        for bad in ["", "yesterday", "2026-13-01", "2026-02-30T00:00:00Z", "12:00"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_bool("1"), None);
    }
}
