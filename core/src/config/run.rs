use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a workflow runs: the command, its working directory, extra environment
/// and a timeout. Validated with the rest of the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
