//! Named custom rules a field can reference with `"rule": "<name>"`.
//! Adding a rule means adding an entry to `RULES`.

use serde_json::Value;

/// A rule registered in Rust: a name and a check that explains failures.
pub struct CustomRule {
    pub name: &'static str,
    pub check: fn(&Value) -> Result<(), String>,
}

static RULES: &[CustomRule] = &[
    CustomRule {
        name: "cron",
        check: check_cron,
    },
    CustomRule {
        name: "port",
        check: check_port,
    },
    CustomRule {
        name: "duration",
        check: check_duration,
    },
    CustomRule {
        name: "semver",
        check: check_semver,
    },
];

pub fn lookup(name: &str) -> Option<&'static CustomRule> {
    RULES.iter().find(|r| r.name == name)
}

pub fn names() -> Vec<&'static str> {
    RULES.iter().map(|r| r.name).collect()
}

fn check_port(v: &Value) -> Result<(), String> {
    let port = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match port {
        Some(1..=65535) => Ok(()),
        _ => Err(format!(
            "must be a port number between 1 and 65535, got {v}"
        )),
    }
}

fn check_semver(v: &Value) -> Result<(), String> {
    match v.as_str().map(semver::Version::parse) {
        Some(Ok(_)) => Ok(()),
        _ => Err(format!("must be a semantic version like 1.2.3, got {v}")),
    }
}

/// Parses durations such as `500ms`, `30s`, `5m`, `1h30m`, `2d`, `1w`;
/// `None` for what is not one or does not fit in 64 bits.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    duration_ms_wide(s).and_then(|ms| u64::try_from(ms).ok())
}

/// A duration (`30d`, `12h`, `1w2d`) in
/// milliseconds that cannot overflow (saturating at `u128::MAX`), so "too
/// long" can be told from "not a duration" (`None`).
pub fn duration_ms_wide(s: &str) -> Option<u128> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u128 = rest[..digits].parse().unwrap_or(u128::MAX);
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let factor: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.saturating_add(n.saturating_mul(factor));
    }
    Some(total)
}

fn check_duration(v: &Value) -> Result<(), String> {
    match v.as_str().and_then(parse_duration_ms) {
        Some(_) => Ok(()),
        None => Err(format!(
            "must be a duration like 500ms, 30s, 5m, 1h30m or 2d, got {v}"
        )),
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn check_cron(v: &Value) -> Result<(), String> {
    let Some(s) = v.as_str() else {
        return Err(format!("must be a cron expression, got {v}"));
    };
    validate_cron(s).map_err(|why| format!("not a valid cron expression \"{s}\": {why}"))
}

/// Five fields (minute hour day-of-month month day-of-week), an optional
/// leading seconds field, or one of the `@hourly`-style macros.
pub fn validate_cron(s: &str) -> Result<(), String> {
    let s = s.trim();
    if s.starts_with('@') {
        return match s {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => Ok(()),
            _ => Err(format!("unknown macro {s}")),
        };
    }
    let parts: Vec<&str> = s.split_whitespace().collect();
    let specs: &[(&str, u32, u32, &[&str])] = match parts.len() {
        5 => &[
            ("minute", 0, 59, &[]),
            ("hour", 0, 23, &[]),
            ("day of month", 1, 31, &[]),
            ("month", 1, 12, &MONTHS),
            ("day of week", 0, 7, &DAYS),
        ],
        6 => &[
            ("second", 0, 59, &[]),
            ("minute", 0, 59, &[]),
            ("hour", 0, 23, &[]),
            ("day of month", 1, 31, &[]),
            ("month", 1, 12, &MONTHS),
            ("day of week", 0, 7, &DAYS),
        ],
        n => return Err(format!("expected 5 or 6 fields, got {n}")),
    };
    for (part, (name, lo, hi, names)) in parts.iter().zip(specs) {
        validate_cron_field(part, *lo, *hi, names)
            .map_err(|why| format!("{name} field \"{part}\": {why}"))?;
    }
    Ok(())
}

fn validate_cron_field(field: &str, lo: u32, hi: u32, names: &[&str]) -> Result<(), String> {
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(n) if n >= 1 && n <= hi => {}
                _ => return Err(format!("bad step \"{step}\"")),
            }
        }
        if range == "*" || range == "?" {
            continue;
        }
        let value = |t: &str| -> Result<u32, String> {
            let offset = if names.len() == 12 { 1 } else { 0 };
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(t)) {
                return Ok(i as u32 + offset);
            }
            match t.parse::<u32>() {
                Ok(n) if (lo..=hi).contains(&n) => Ok(n),
                _ => Err(format!("\"{t}\" is not between {lo} and {hi}")),
            }
        };
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (value(a)?, value(b)?);
                if a > b {
                    return Err(format!("range {a}-{b} is backwards"));
                }
            }
            None => {
                value(range)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(rule: &str, v: Value) -> Result<(), String> {
        (lookup(rule).expect(rule).check)(&v)
    }

    #[test]
    fn cron_accepts_common_expressions() {
        for ok in [
            "*/5 * * * *",
            "0 3 * * mon-fri",
            "0 0 1,15 * *",
            "30 2 * jan,jul 0",
            "0 */10 * * * *",
            "@daily",
        ] {
            assert_eq!(check("cron", json!(ok)), Ok(()), "{ok}");
        }
    }

    #[test]
    fn cron_rejects_with_the_reason() {
        let cases = [
            ("* * * *", "expected 5 or 6 fields"),
            ("60 * * * *", "minute field"),
            ("* 24 * * *", "hour field"),
            ("* * 0 * *", "day of month field"),
            ("* * * 13 *", "month field"),
            ("*/0 * * * *", "bad step"),
            ("5-1 * * * *", "backwards"),
            ("@sometimes", "unknown macro"),
        ];
        for (bad, why) in cases {
            let err = check("cron", json!(bad)).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(check("cron", json!(5)).is_err());
    }

    #[test]
    fn port_bounds() {
        assert_eq!(check("port", json!(8080)), Ok(()));
        assert_eq!(check("port", json!("443")), Ok(()));
        assert_eq!(check("port", json!(65535)), Ok(()));
        for bad in [
            json!(0),
            json!(65536),
            json!(-1),
            json!(80.5),
            json!("http"),
            json!(true),
        ] {
            let err = check("port", bad.clone()).expect_err("bad port");
            assert!(err.contains("between 1 and 65535"), "{bad}: {err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("2d"), Some(172_800_000));
        for bad in ["", "10", "5 minutes", "1x", "h1", "99999999999999999999s"] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
        assert!(check("duration", json!("30s")).is_ok());
        assert!(check("duration", json!("soon"))
            .unwrap_err()
            .contains("duration like"));
    }

    #[test]
    fn semver_rule() {
        assert!(check("semver", json!("1.0.0")).is_ok());
        assert!(check("semver", json!("v1"))
            .unwrap_err()
            .contains("semantic version"));
    }

    #[test]
    fn unknown_rule_is_none() {
        assert!(lookup("palindrome").is_none());
        assert_eq!(names(), vec!["cron", "port", "duration", "semver"]);
    }
}
