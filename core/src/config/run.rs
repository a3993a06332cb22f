use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::validation::custom_rules::duration_ms_wide;

/// How a workflow runs: the command, its working directory, extra environment
/// and a timeout. Validated with the rest of the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
    /// Names of flowkeep's own environment variables passed to the job (when
    /// set). Everything else of flowkeep's environment is withheld, apart
    /// from a small fixed base (`PATH`, `HOME`, locale, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inherit_env: Vec<String>,
    /// When it runs on its own (`flowkeep agent`); part of the run spec, so
    /// a schedule from another device waits for approval here like a command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::schedule::Schedule>,
}

impl RunSpec {
    /// Longest allowed timeout: one day.
    pub const MAX_TIMEOUT_S: u64 = 86_400;
    /// Most names in `inherit_env`.
    pub const MAX_INHERIT_ENV: usize = 64;
    /// Prefix of flowkeep's own variables (the sync token among them): never
    /// passed on, whatever the spec asks.
    pub const RESERVED_ENV_PREFIX: &'static str = "FLOWKEEP_";

    /// Problems with `inherit_env`: names must be plain variable names
    /// (a letter or `_`, then letters, digits or `_`; at most 128), none of
    /// flowkeep's own `FLOWKEEP_*`, no repeats, at most `MAX_INHERIT_ENV`.
    pub fn check_inherit_env(&self) -> Vec<crate::FieldError> {
        let mut errors = Vec::new();
        if self.inherit_env.len() > Self::MAX_INHERIT_ENV {
            errors.push(crate::FieldError::new(
                "run.inherit_env",
                "max_items",
                format!(
                    "at most {} names are allowed, got {}",
                    Self::MAX_INHERIT_ENV,
                    self.inherit_env.len()
                ),
            ));
            return errors;
        }
        let mut seen = std::collections::HashSet::new();
        for (i, name) in self.inherit_env.iter().enumerate() {
            let path = format!("run.inherit_env[{i}]");
            if !is_env_name(name) {
                errors.push(crate::FieldError::new(
                    path,
                    "format",
                    format!(
                        "\"{}\" is not an environment variable name: a letter or _, then letters, digits or _ (at most 128)",
                        name.chars().take(64).collect::<String>()
                    ),
                ));
            } else if Self::is_reserved_env(name) {
                errors.push(crate::FieldError::new(
                    path,
                    "reserved",
                    format!("{name}: flowkeep never passes its own FLOWKEEP_* variables to a job; set a value in run.env instead"),
                ));
            } else if !seen.insert(name.as_str()) {
                errors.push(crate::FieldError::new(
                    path,
                    "duplicate",
                    format!("{name} is listed more than once"),
                ));
            }
        }
        errors
    }

    /// Whether `name` is one of flowkeep's own variables (any case).
    pub fn is_reserved_env(name: &str) -> bool {
        name.len() >= Self::RESERVED_ENV_PREFIX.len()
            && name.as_bytes()[..Self::RESERVED_ENV_PREFIX.len()]
                .eq_ignore_ascii_case(Self::RESERVED_ENV_PREFIX.as_bytes())
    }
}

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && name.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// How many finished runs of a workflow to keep. Either limit may be absent;
/// both apply when both are set. Durations are written like `30d` or `12h`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u64>,
}

impl RetentionPolicy {
    /// Most runs a count limit may keep: far above what one device holds,
    /// and well inside SQLite's 64-bit integers.
    pub const MAX_COUNT: u64 = 1_000_000_000;
    /// Longest `max_age`: 1000 years, so "now minus the age" is always a
    /// representable time.
    pub const MAX_AGE_MS: u64 = 1000 * 365 * 86_400_000;

    pub fn is_empty(&self) -> bool {
        self.max_age.is_none() && self.max_count.is_none()
    }

    /// Milliseconds of `max_age`, if set and well formed.
    pub fn max_age_ms(&self) -> Option<u64> {
        self.max_age
            .as_deref()
            .and_then(crate::validation::custom_rules::parse_duration_ms)
    }

    /// Problems with the policy, with `prefix` as the field path.
    pub fn check(&self, prefix: &str) -> Vec<crate::FieldError> {
        let mut errors = self.check_range(prefix);
        if let Some(age) = &self.max_age {
            if duration_ms_wide(age) == Some(0) {
                errors.push(crate::FieldError::new(
                    format!("{prefix}.max_age"),
                    "range",
                    "must be longer than 0 (remove the limit instead of keeping nothing)",
                ));
            } else if duration_ms_wide(age).is_none() {
                errors.push(crate::FieldError::new(
                    format!("{prefix}.max_age"),
                    "duration",
                    format!(
                        "\"{}\" is not a duration like 30d, 12h or 1w",
                        age.chars().take(64).collect::<String>()
                    ),
                ));
            }
        }
        if self.max_count == Some(0) {
            errors.push(crate::FieldError::new(
                format!("{prefix}.max_count"),
                "range",
                "must be at least 1 (remove the limit instead of keeping nothing)",
            ));
        }
        errors
    }

    /// Limits too large to mean anything (they would overflow the time and
    /// count arithmetic of retention): part of `check`, and on their own a
    /// sign of a malformed input rather than a policy choice.
    pub fn check_range(&self, prefix: &str) -> Vec<crate::FieldError> {
        let mut errors = Vec::new();
        let age = self.max_age.as_deref().and_then(duration_ms_wide);
        if age.is_some_and(|ms| ms > u128::from(Self::MAX_AGE_MS)) {
            errors.push(crate::FieldError::new(
                format!("{prefix}.max_age"),
                "range",
                "must be at most 365000d (about 1000 years)",
            ));
        }
        if self.max_count.is_some_and(|n| n > Self::MAX_COUNT) {
            errors.push(crate::FieldError::new(
                format!("{prefix}.max_count"),
                "range",
                format!("must be at most {}", Self::MAX_COUNT),
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(errors: &[crate::FieldError]) -> Vec<(String, String)> {
        errors
            .iter()
            .map(|e| (e.field.clone(), e.code.clone()))
            .collect()
    }

    #[test]
    fn retention_limits_that_would_overflow_are_range_errors() {
        let p = |age: Option<&str>, count: Option<u64>| RetentionPolicy {
            max_age: age.map(str::to_owned),
            max_count: count,
        };
        assert!(p(Some("30d"), Some(100)).check("r").is_empty());
        assert!(p(Some("365000d"), Some(RetentionPolicy::MAX_COUNT))
            .check("r")
            .is_empty());
        for (policy, want) in [
            (p(None, Some(u64::MAX)), ("r.max_count", "range")),
            (
                p(None, Some(RetentionPolicy::MAX_COUNT + 1)),
                ("r.max_count", "range"),
            ),
            (p(None, Some(0)), ("r.max_count", "range")),
            (p(Some("20000000000w"), None), ("r.max_age", "range")),
            (
                p(Some("99999999999999999999999999999999999999999d"), None),
                ("r.max_age", "range"),
            ),
            (p(Some("52143w"), None), ("r.max_age", "range")),
            (p(Some("soon"), None), ("r.max_age", "duration")),
            (p(Some("0d"), None), ("r.max_age", "range")),
        ] {
            assert_eq!(
                codes(&policy.check("r")),
                [(want.0.to_owned(), want.1.to_owned())],
                "{policy:?}"
            );
        }
        assert!(p(Some("soon"), Some(0)).check_range("r").is_empty());
        assert_eq!(
            codes(&p(Some("99999999999w"), Some(u64::MAX)).check_range("r")).len(),
            2
        );
    }

    #[test]
    fn inherit_env_names_are_checked() {
        let spec = |names: &[&str]| RunSpec {
            command: vec!["true".into()],
            cwd: None,
            env: Default::default(),
            timeout_s: None,
            inherit_env: names.iter().map(|n| n.to_string()).collect(),
            schedule: None,
        };
        assert!(spec(&["AWS_PROFILE", "_X", "lower_ok1"])
            .check_inherit_env()
            .is_empty());
        for (names, want) in [
            (vec!["FLOWKEEP_SYNC_TOKEN"], "reserved"),
            (vec!["flowkeep_data_dir"], "reserved"),
            (vec!["1ABC"], "format"),
            (vec![""], "format"),
            (vec!["A=B"], "format"),
            (vec!["A B"], "format"),
            (vec!["ÜBER"], "format"),
            (vec!["A", "A"], "duplicate"),
        ] {
            let errors = spec(&names).check_inherit_env();
            assert_eq!(errors.len(), 1, "{names:?}: {errors:?}");
            assert_eq!(errors[0].code, want, "{names:?}");
            assert!(
                errors[0].field.starts_with("run.inherit_env["),
                "{errors:?}"
            );
        }
        let long = "A".repeat(129);
        assert_eq!(spec(&[&long]).check_inherit_env()[0].code, "format");
        let many: Vec<String> = (0..=RunSpec::MAX_INHERIT_ENV)
            .map(|i| format!("V{i}"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            codes(&spec(&many).check_inherit_env()),
            [("run.inherit_env".to_owned(), "max_items".to_owned())]
        );
    }

    #[test]
    fn inherit_env_round_trips_and_is_left_out_when_empty() {
        let with: RunSpec = serde_json::from_value(serde_json::json!(
            {"command": ["x"], "inherit_env": ["AWS_PROFILE"]}
        ))
        .unwrap();
        assert_eq!(with.inherit_env, ["AWS_PROFILE"]);
        let text = serde_json::to_string(&with).unwrap();
        assert_eq!(serde_json::from_str::<RunSpec>(&text).unwrap(), with);
        let without: RunSpec =
            serde_json::from_value(serde_json::json!({"command": ["x"]})).unwrap();
        assert!(!serde_json::to_string(&without)
            .unwrap()
            .contains("inherit_env"));
    }
}
