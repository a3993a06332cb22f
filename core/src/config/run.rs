use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
}

impl RunSpec {
    /// Longest allowed timeout: one day.
    pub const MAX_TIMEOUT_S: u64 = 86_400;
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
        let mut errors = Vec::new();
        if let Some(age) = &self.max_age {
            if self.max_age_ms().is_none_or(|ms| ms == 0) {
                errors.push(crate::FieldError::new(
                    format!("{prefix}.max_age"),
                    "duration",
                    format!("\"{age}\" is not a duration like 30d, 12h or 1w"),
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
}
