//! Events as stored in the log. Each payload type is versioned: a stored
//! `(kind, schema_version)` pair always decodes to the same meaning. To change
//! a payload, add a `…V2` type and a new decode arm; never edit a V1.

use serde::{Deserialize, Serialize};

use crate::run::RunStatus;
pub use crate::workflow::FieldConflict;
use crate::workflow::{FieldChange, WorkflowSpec};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowCreatedV1 {
    pub spec: WorkflowSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicated_from: Option<String>,
}

/// Field-level changes; used by `workflow.updated` and `config.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowChangedV1 {
    pub changes: Vec<FieldChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowDeletedV1 {
    /// The name at deletion, so the audit trail reads without a lookup.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStartedV1 {
    pub workflow_id: String,
    pub status: RunStatus,
    pub started_at: i64,
    pub trigger: String,
    /// The workflow's revision the run started from (absent in runs
    /// recorded before runs knew it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_revision: Option<u64>,
    /// A hash of the effective config it ran with (`run::config_hash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// The scheduled instant (Unix ms) of a run a schedule started or
    /// skipped; absent for other runs and in runs recorded before schedules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrence: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFinishedV1 {
    pub status: RunStatus,
    pub completed_at: i64,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub output: Option<serde_json::Value>,
    #[serde(default)]
    pub error: Option<String>,
}

/// A run that had already finished when it was recorded (an import): one
/// event instead of a start and a finish that never happened live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecordedV1 {
    pub workflow_id: String,
    pub status: RunStatus,
    pub started_at: i64,
    pub completed_at: i64,
    pub trigger: String,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub output: Option<serde_json::Value>,
    #[serde(default)]
    pub error: Option<String>,
    /// The workflow's revision the run started from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_revision: Option<u64>,
    /// `run::config_hash` of the config it ran with, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// The scheduled instant (Unix ms) of a run a schedule started or
    /// skipped; absent for other runs and in runs recorded before schedules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrence: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDeletedV1 {
    pub workflow_id: String,
}

/// A bulk delete of finished runs, recorded as its filter: replaying it in
/// log order deletes exactly the rows it deleted live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunsPrunedV1 {
    #[serde(default)]
    pub workflow_id: Option<String>,
    #[serde(default)]
    pub status: Option<RunStatus>,
    /// Runs that started at or after this time (Unix ms), if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// Runs that started before this time (Unix ms) are deleted.
    pub before: i64,
    pub deleted: u64,
    /// Why: `manual`, or `retention` when a policy asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Who made a change that arrived from another device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteAuthor {
    pub actor: String,
    /// The device the change's message claims.
    pub device_id: String,
    /// The device whose authenticated connection brought the change to the
    /// sync server, when the server said (absent in merges recorded before
    /// servers kept it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_by: Option<String>,
}

/// Changes to a workflow that arrived through sync, merged by Automerge,
/// as field-level old → new values against what this device had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteMergedV1 {
    pub changes: Vec<FieldChange>,
    /// Set when the workflow is new on this device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    /// `true`/`false` when the merge deleted or restored the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
    #[serde(default)]
    pub authors: Vec<RemoteAuthor>,
    /// The document heads this merge reflects (hex change hashes).
    #[serde(default)]
    pub heads: Vec<String>,
    /// Fields edited concurrently on several devices: every value, the
    /// winner (the one projected) first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<FieldConflict>,
}

/// A workflow set back to what it was at an earlier revision (and brought
/// back if it was deleted): an ordinary change, audited and synced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRestoredV1 {
    /// The revision whose version it restores.
    pub from_revision: u64,
    /// What it changed, old → new.
    pub changes: Vec<FieldChange>,
    /// It was deleted and is not any more.
    #[serde(default)]
    pub undeleted: bool,
}

/// Workspace settings changed (the global retention policy, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsUpdatedV1 {
    pub changes: Vec<FieldChange>,
}

/// This device approved a workflow's run spec and retention policy (the
/// parts that decide what runs or gets deleted here): the values approved.
/// Approval is local to a device and never synced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowApprovedV1 {
    #[serde(default)]
    pub run: Option<crate::config::RunSpec>,
    #[serde(default)]
    pub retention: Option<crate::config::RetentionPolicy>,
}

/// Something that arrived by sync failed the checks a local command gets
/// and was not merged: which document, from which device, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteRejectedV1 {
    /// The Automerge document id (or the execution-log key) it came in.
    pub document: String,
    /// `workflow`, `root` or `run`.
    pub what: String,
    /// The workflow or run id it claimed, when there was a usable one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The device that wrote it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    pub reason: String,
    /// The document heads that were rejected (hex change hashes).
    #[serde(default)]
    pub heads: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    WorkflowCreated(WorkflowCreatedV1),
    WorkflowUpdated(WorkflowChangedV1),
    ConfigUpdated(WorkflowChangedV1),
    WorkflowDeleted(WorkflowDeletedV1),
    RunStarted(RunStartedV1),
    RunFinished(RunFinishedV1),
    RunRecorded(RunRecordedV1),
    RunDeleted(RunDeletedV1),
    RunsPruned(RunsPrunedV1),
    SettingsUpdated(SettingsUpdatedV1),
    RemoteMerged(RemoteMergedV1),
    WorkflowApproved(WorkflowApprovedV1),
    RemoteRejected(RemoteRejectedV1),
    WorkflowRestored(WorkflowRestoredV1),
}

#[derive(Debug, thiserror::Error)]
#[error("cannot decode event {kind} v{version}: {reason}")]
pub struct DecodeError {
    pub kind: String,
    pub version: u32,
    pub reason: String,
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Event::WorkflowCreated(_) => "workflow.created",
            Event::WorkflowUpdated(_) => "workflow.updated",
            Event::ConfigUpdated(_) => "config.updated",
            Event::WorkflowDeleted(_) => "workflow.deleted",
            Event::RunStarted(_) => "execution.started",
            Event::RunFinished(_) => "execution.finished",
            Event::RunRecorded(_) => "execution.recorded",
            Event::RunDeleted(_) => "execution.deleted",
            Event::RunsPruned(_) => "executions.pruned",
            Event::SettingsUpdated(_) => "settings.updated",
            Event::RemoteMerged(_) => "remote.merged",
            Event::WorkflowApproved(_) => "workflow.approved",
            Event::RemoteRejected(_) => "remote.rejected",
            Event::WorkflowRestored(_) => "workflow.restored",
        }
    }

    /// The payload version written for new events of this kind.
    pub fn schema_version(&self) -> u32 {
        1
    }

    pub fn payload_json(&self) -> String {
        let r = match self {
            Event::WorkflowCreated(p) => serde_json::to_string(p),
            Event::WorkflowUpdated(p) | Event::ConfigUpdated(p) => serde_json::to_string(p),
            Event::WorkflowDeleted(p) => serde_json::to_string(p),
            Event::RunStarted(p) => serde_json::to_string(p),
            Event::RunFinished(p) => serde_json::to_string(p),
            Event::RunRecorded(p) => serde_json::to_string(p),
            Event::RunDeleted(p) => serde_json::to_string(p),
            Event::RunsPruned(p) => serde_json::to_string(p),
            Event::SettingsUpdated(p) => serde_json::to_string(p),
            Event::RemoteMerged(p) => serde_json::to_string(p),
            Event::WorkflowApproved(p) => serde_json::to_string(p),
            Event::RemoteRejected(p) => serde_json::to_string(p),
            Event::WorkflowRestored(p) => serde_json::to_string(p),
        };
        r.expect("event payloads serialize")
    }

    pub fn decode(kind: &str, version: u32, payload: &str) -> Result<Event, DecodeError> {
        let err = |reason: String| DecodeError {
            kind: kind.to_owned(),
            version,
            reason,
        };
        fn p<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
            serde_json::from_str(s).map_err(|e| e.to_string())
        }
        let event = match (kind, version) {
            ("workflow.created", 1) => Event::WorkflowCreated(p(payload).map_err(err)?),
            ("workflow.updated", 1) => Event::WorkflowUpdated(p(payload).map_err(err)?),
            ("config.updated", 1) => Event::ConfigUpdated(p(payload).map_err(err)?),
            ("workflow.deleted", 1) => Event::WorkflowDeleted(p(payload).map_err(err)?),
            ("execution.started", 1) => Event::RunStarted(p(payload).map_err(err)?),
            ("execution.finished", 1) => Event::RunFinished(p(payload).map_err(err)?),
            ("execution.recorded", 1) => Event::RunRecorded(p(payload).map_err(err)?),
            ("execution.deleted", 1) => Event::RunDeleted(p(payload).map_err(err)?),
            ("executions.pruned", 1) => Event::RunsPruned(p(payload).map_err(err)?),
            ("settings.updated", 1) => Event::SettingsUpdated(p(payload).map_err(err)?),
            ("remote.merged", 1) => Event::RemoteMerged(p(payload).map_err(err)?),
            ("workflow.approved", 1) => Event::WorkflowApproved(p(payload).map_err(err)?),
            ("remote.rejected", 1) => Event::RemoteRejected(p(payload).map_err(err)?),
            ("workflow.restored", 1) => Event::WorkflowRestored(p(payload).map_err(err)?),
            _ => return Err(err("unknown kind or version".into())),
        };
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v1_payloads_stored_today_still_decode() {
        // Frozen examples of stored payloads: if one stops decoding, a V1 type
        // was edited instead of adding a V2.
        let stored = [
            (
                "workflow.created",
                r#"{"spec":{"name":"a","description":"","version":"1.0.0","tags":[],"config":{"fields":[],"values":{}}}}"#,
            ),
            (
                "workflow.updated",
                r#"{"changes":[{"field":"name","old":"a","new":"b"}]}"#,
            ),
            (
                "config.updated",
                r#"{"changes":[{"field":"config.values.n","old":null,"new":3}]}"#,
            ),
            ("workflow.deleted", r#"{"name":"b"}"#),
            (
                "execution.started",
                r#"{"workflow_id":"w","status":"running","started_at":1,"trigger":"cli"}"#,
            ),
            (
                "execution.finished",
                r#"{"status":"failed","completed_at":2,"exit_code":7,"output":null,"error":"boom"}"#,
            ),
            (
                "execution.recorded",
                r#"{"workflow_id":"w","status":"succeeded","started_at":1,"completed_at":3,"trigger":"import","exit_code":0,"output":{"rows":2},"error":null}"#,
            ),
            ("execution.deleted", r#"{"workflow_id":"w"}"#),
            (
                "workflow.restored",
                r#"{"from_revision":2,"changes":[{"field":"name","old":"b","new":"a"}],"undeleted":true}"#,
            ),
            (
                "executions.pruned",
                r#"{"workflow_id":null,"status":null,"before":5,"deleted":2}"#,
            ),
        ];
        for (kind, payload) in stored {
            let e = Event::decode(kind, 1, payload).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(e.kind(), kind);
            let again: serde_json::Value = serde_json::from_str(&e.payload_json()).unwrap();
            let original: serde_json::Value = serde_json::from_str(payload).unwrap();
            assert_eq!(again, original, "{kind} round trip");
        }
    }

    #[test]
    fn unknown_versions_are_errors_not_guesses() {
        let e = Event::decode("workflow.deleted", 2, r#"{"name":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("workflow.deleted v2"));
        assert!(Event::decode("workflow.renamed", 1, "{}").is_err());
        assert!(Event::decode("workflow.deleted", 1, &json!({"nom": 1}).to_string()).is_err());
    }
}
