//! Dates on the command line: a calendar date (local midnight), an RFC 3339
//! time, Unix milliseconds, or a duration meaning "that long ago".

use chrono::{DateTime, Local, NaiveDate, TimeZone};
use flowkeep_core::config::duration_ms_wide;
use flowkeep_core::FieldError;

/// The time `s` means, in Unix milliseconds. A value of the right form that
/// is not a representable date (`20000000000w` ago, a 30-digit number) is a
/// `range` error; one of no known form a `format` error. No arithmetic here
/// can overflow.
pub fn parse(field: &str, s: &str, now_ms: i64) -> Result<i64, FieldError> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let midnight = d.and_hms_opt(0, 0, 0).expect("midnight exists");
        if let Some(t) = Local.from_local_datetime(&midnight).earliest() {
            return Ok(t.timestamp_millis());
        }
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .ok()
            .filter(|&ms| representable(ms))
            .ok_or_else(|| out_of_range(field, s));
    }
    if let Some(ago) = duration_ms_wide(s) {
        return i64::try_from(ago)
            .ok()
            .and_then(|ago| now_ms.checked_sub(ago))
            .filter(|&ms| representable(ms))
            .ok_or_else(|| out_of_range(field, s));
    }
    Err(FieldError::new(
        field,
        "format",
        format!("\"{}\" is not a date: use 2026-11-01, 2026-11-01T08:00:00Z, Unix milliseconds, or a duration like 7d (ago)", shorten(s)),
    ))
}

/// For clap: an out-of-range date argument is a usage error (exit 2), like
/// any argument clap cannot use. Text that is no date at all is left to
/// `parse`, which reports it in the JSON error shape as before (exit 3).
pub fn in_range(s: &str) -> Result<String, String> {
    match parse("date", s, chrono::Utc::now().timestamp_millis()) {
        Err(e) if e.code == "range" => Err(e.message),
        _ => Ok(s.to_owned()),
    }
}

/// Within what a date can be (about 262,000 years either side of year 0).
fn representable(ms: i64) -> bool {
    DateTime::from_timestamp_millis(ms).is_some()
}

fn out_of_range(field: &str, s: &str) -> FieldError {
    FieldError::new(
        field,
        "range",
        format!(
            "\"{}\" is out of range: not a date within about 262,000 years of 1970",
            shorten(s)
        ),
    )
}

fn shorten(s: &str) -> String {
    let mut short: String = s.chars().take(64).collect();
    if short.len() < s.len() {
        short.push('…');
    }
    short
}

pub fn show(ms: i64) -> String {
    match Local.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            parse("since", "2026-01-01T00:00:00Z", 0).unwrap(),
            1_767_225_600_000
        );
        assert_eq!(
            parse("since", "1767225600000", 0).unwrap(),
            1_767_225_600_000
        );
        assert_eq!(
            parse("since", "7d", 700_000_000).unwrap(),
            700_000_000 - 604_800_000
        );
        assert!(parse("since", "2026-11-01", 0).is_ok());
        let err = parse("before", "last tuesday", 0).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.code.as_str()),
            ("before", "format")
        );
    }

    #[test]
    fn values_that_would_overflow_are_range_errors() {
        let now = 1_767_225_600_000;
        for s in [
            "20000000000w",
            "2000000000w",
            "99999999999999999999999999999999999999d",
            "18446744073709551615",
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999999999999999999",
        ] {
            let err = parse("before", s, now).unwrap_err();
            assert_eq!(
                (err.field.as_str(), err.code.as_str()),
                ("before", "range"),
                "{s}"
            );
            assert!(in_range(s).is_err(), "{s}");
        }
        // Even from the smallest "now", a long duration does not wrap around.
        assert_eq!(
            parse("before", "1000w", i64::MIN).unwrap_err().code,
            "range"
        );
        assert_eq!(parse("before", "5y", now).unwrap_err().code, "format");
        assert_eq!(in_range("someday").unwrap(), "someday");
        assert_eq!(in_range("7d").unwrap(), "7d");
        assert_eq!(parse("before", "-5", now).unwrap(), -5);
        assert_eq!(
            parse("before", "100000w", now).unwrap(),
            now - 100_000 * 604_800_000
        );
    }
}
