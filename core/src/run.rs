//! Runs: one run of a workflow and what happened (stored as `execution.*`
//! events in the `executions` table; those stored names never change).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// A scheduled occurrence that did not run (missed, or overlapping a
    /// run still going); the record's `error` says why.
    Skipped,
}

/// Most bytes of a run's `output` as JSON, recorded by `finish_run` or an
/// import. The runner's own output (tails of 64 KiB, the result line) stays
/// far below; a larger result belongs in a file whose path is recorded.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// Exit statuses any platform gives: a signed 32-bit one (a negative
/// status on Windows is an NTSTATUS) or an unsigned 32-bit one.
pub const EXIT_CODES: std::ops::RangeInclusive<i64> = (i32::MIN as i64)..=(u32::MAX as i64);

/// A run's error message as recorded: at most `remote::MAX_ERROR_CHARS`
/// characters (what `FinishRun` and other devices accept), cut with a note.
/// For messages a run's own machinery makes (a program name, the runs a
/// skipped occurrence overlapped), so that recording it never fails.
pub fn clip_error(message: &str) -> String {
    let max = crate::remote::MAX_ERROR_CHARS;
    if message.chars().count() <= max {
        return message.to_owned();
    }
    const CUT: &str = "… (cut)";
    let mut out: String = message.chars().take(max - CUT.chars().count()).collect();
    out.push_str(CUT);
    out
}

/// Problems with how a recorded run ended, its fields under `prefix`
/// (`""` or `runs[3].`).
pub fn check_outcome(
    prefix: &str,
    exit_code: Option<i64>,
    output: Option<&Value>,
) -> Vec<crate::FieldError> {
    let mut errors = Vec::new();
    if exit_code.is_some_and(|c| !EXIT_CODES.contains(&c)) {
        errors.push(crate::FieldError::new(
            format!("{prefix}exit_code"),
            "range",
            format!(
                "an exit status is between {} and {}",
                EXIT_CODES.start(),
                EXIT_CODES.end()
            ),
        ));
    }
    // As deep as a config value may be: the event that records it must
    // read back, and other devices refuse deeper.
    if let Some(Err(m)) = output.map(crate::validation::bounds::depth) {
        errors.push(crate::FieldError::new(
            format!("{prefix}output"),
            "depth",
            m,
        ));
    }
    if let Some(len) = output
        .map(|o| o.to_string().len())
        .filter(|len| *len > MAX_OUTPUT_BYTES)
    {
        errors.push(crate::FieldError::new(
            format!("{prefix}output"),
            "max_length",
            format!(
                "at most {} MiB of JSON, got {len} bytes; keep a large result in a file and record its path",
                MAX_OUTPUT_BYTES >> 20
            ),
        ));
    }
    errors
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
        RunStatus::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled | RunStatus::Skipped
        )
    }

    fn rank(self) -> u8 {
        match self {
            RunStatus::Queued => 0,
            RunStatus::Running => 1,
            _ => 2,
        }
    }

    /// Status only moves forward: queued → running → a terminal status.
    pub fn can_move_to(self, next: RunStatus) -> bool {
        next.rank() > self.rank()
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Run {
    pub id: String,
    pub workflow_id: String,
    pub status: RunStatus,
    /// Free-form JSON the run produced (result, output tails, ...).
    pub output: Option<Value>,
    pub started_at: i64,
    pub completed_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    /// What started it: `cli`, `manual`, `api`, `schedule`, ...
    pub trigger: String,
    /// The device that recorded the run.
    pub device_id: String,
    /// The workflow's revision the run started from (unknown for runs
    /// recorded before runs kept it).
    pub workflow_revision: Option<u64>,
    /// `config_hash` of the effective config it ran with.
    pub config_hash: Option<String>,
    /// For a run started by a schedule (or an occurrence it skipped): the
    /// instant it was scheduled for (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub occurrence: Option<i64>,
}

/// A short, stable name for an effective config (every field's value, the
/// default where none is set): SHA-256 of its JSON with sorted keys, the
/// first 16 hex digits. Two runs with the same hash got the same config.
pub fn config_hash(values: &serde_json::Map<String, Value>) -> String {
    use sha2::{Digest, Sha256};
    let sorted: std::collections::BTreeMap<&String, &Value> = values.iter().collect();
    let text = serde_json::to_string(&sorted).expect("JSON values serialize");
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::RunStatus::*;

    #[test]
    fn an_error_message_is_cut_to_what_a_run_record_holds() {
        let max = crate::remote::MAX_ERROR_CHARS;
        assert_eq!(super::clip_error("exit 3"), "exit 3");
        let exact = "é".repeat(max);
        assert_eq!(super::clip_error(&exact), exact);
        let cut = super::clip_error(&"é".repeat(max + 1));
        assert_eq!(cut.chars().count(), max);
        assert!(cut.ends_with("… (cut)"), "{cut}");
    }

    #[test]
    fn an_output_nested_deeper_than_a_config_value_may_be_is_refused() {
        let nested =
            |levels: usize| (1..levels).fold(serde_json::json!(1), |v, _| serde_json::json!([v]));
        let max = crate::remote::MAX_JSON_DEPTH;
        assert!(super::check_outcome("", Some(0), Some(&nested(max))).is_empty());
        let errors = super::check_outcome("runs[2].", Some(0), Some(&nested(max + 1)));
        assert_eq!(errors.len(), 1);
        assert_eq!(
            (errors[0].field.as_str(), errors[0].code.as_str()),
            ("runs[2].output", "depth")
        );
    }

    #[test]
    fn the_config_hash_follows_the_values_not_their_order() {
        let a: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"a": 1, "b": "x"}"#).unwrap();
        let b: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"b": "x", "a": 1}"#).unwrap();
        let c: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"a": 2, "b": "x"}"#).unwrap();
        assert_eq!(super::config_hash(&a), super::config_hash(&b));
        assert_ne!(super::config_hash(&a), super::config_hash(&c));
        assert_eq!(super::config_hash(&a).len(), 16);
    }

    #[test]
    fn status_only_moves_forward() {
        assert!(Queued.can_move_to(Running));
        assert!(Queued.can_move_to(Cancelled));
        assert!(Running.can_move_to(Succeeded));
        assert!(Running.can_move_to(Failed));
        assert!(!Running.can_move_to(Queued));
        assert!(!Running.can_move_to(Running));
        assert!(!Succeeded.can_move_to(Failed));
        assert!(!Failed.can_move_to(Running));
    }
}
