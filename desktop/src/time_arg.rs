//! Dates on the command line: a calendar date (local midnight), an RFC 3339
//! time, Unix milliseconds, or a duration meaning "that long ago".

use chrono::{DateTime, Local, NaiveDate, TimeZone};
use flowkeep_core::validation::custom_rules::parse_duration_ms;

pub fn parse(field: &str, s: &str, now_ms: i64) -> Result<i64, flowkeep_core::FieldError> {
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
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Some(ago) = parse_duration_ms(s) {
        return Ok(now_ms - ago as i64);
    }
    Err(flowkeep_core::FieldError::new(
        field,
        "format",
        format!("\"{s}\" is not a date: use 2026-11-01, 2026-11-01T08:00:00Z, Unix milliseconds, or a duration like 7d (ago)"),
    ))
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
}
