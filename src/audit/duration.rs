//! Durations as people write them for `--grace`: `30m`, `2h`, `1d`, `1h30m`, `90s`, `1w`, ISO 8601
//! `PT2H`, or `0`. Parsed by jiff's `Span` parser (its "friendly" and ISO 8601 formats), with days
//! and weeks taken as 24 hours and 7 days (a grace period is elapsed time, not a calendar span).

use jiff::{SignedDuration, Span, SpanRelativeTo};

/// A duration that cannot be used as a grace period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("\"{input}\" is not a duration (e.g. 30m, 2h, 1d, 1h30m): {reason}")]
    Syntax { input: String, reason: String },
    #[error("\"{0}\" is negative; a grace period is 0 or more")]
    Negative(String),
    #[error("\"{0}\" uses months or years, whose length varies; use days or weeks")]
    Calendar(String),
}

/// Parse a non-negative duration (see the module documentation).
///
/// # Errors
///
/// [`DurationError`] naming the input.
pub fn parse_duration(text: &str) -> Result<SignedDuration, DurationError> {
    let input: String = text.trim().chars().take(80).collect();
    if input == "0" {
        return Ok(SignedDuration::ZERO);
    }
    let span: Span = input
        .parse()
        .map_err(|e: jiff::Error| DurationError::Syntax { input: input.clone(), reason: e.to_string() })?;
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err(DurationError::Calendar(input));
    }
    let d = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|e| DurationError::Syntax { input: input.clone(), reason: e.to_string() })?;
    if d.is_negative() {
        return Err(DurationError::Negative(input));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_durations() {
        for (text, secs) in [
            ("30m", 1800),
            ("2h", 7200),
            ("1d", 86_400),
            ("1h30m", 5400),
            ("90s", 90),
            ("1w", 604_800),
            ("PT2H", 7200),
            ("0", 0),
            (" 2h ", 7200),
        ] {
            assert_eq!(parse_duration(text), Ok(SignedDuration::from_secs(secs)), "{text}");
        }
        assert!(matches!(parse_duration("-1h"), Err(DurationError::Negative(_))));
        assert!(matches!(parse_duration("1h ago"), Err(DurationError::Negative(_))));
        assert!(matches!(parse_duration("1mo"), Err(DurationError::Calendar(_))));
        assert!(matches!(parse_duration("soon"), Err(DurationError::Syntax { .. })));
        assert!(matches!(parse_duration(""), Err(DurationError::Syntax { .. })));
    }
}
