//! Command inputs: what each interface (CLI, HTTP API, Tauri) sends to the
//! service. Shape rules are declared with `validator`; `Input::check`
//! normalizes, validates and reports every problem as a `FieldError`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use validator::{Validate, ValidationError, ValidationErrors, ValidationErrorsKind};

use crate::error::{Error, FieldError};
use crate::run::{Run, RunStatus};
use crate::workflow::FieldChange;

/// A command input: normalize (trim), then validate its shape.
pub trait Input: Validate {
    fn normalize(&mut self) {}

    fn check(&mut self) -> Result<(), Error> {
        self.normalize();
        self.validate()
            .map_err(|e| Error::Invalid(field_errors(&e)))
    }
}

pub const MAX_PAGE: u32 = 500;
pub const DEFAULT_PAGE: u32 = 50;

#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkflow {
    #[validate(length(min = 1, max = 200), custom(function = "one_line"))]
    pub name: String,
    #[serde(default)]
    #[validate(length(max = 10000), custom(function = "text_block"))]
    pub description: Option<String>,
    #[serde(default)]
    #[validate(custom(function = "semver_version"))]
    pub version: Option<String>,
    #[serde(default)]
    #[validate(length(max = 20), custom(function = "tag_list"))]
    #[ts(as = "Option<Vec<String>>", optional)]
    pub tags: Vec<String>,
    /// The config document; `{"fields": [], "values": {}}` when absent.
    #[serde(default)]
    pub config: Option<Value>,
}

impl Input for CreateWorkflow {
    fn normalize(&mut self) {
        self.name = self.name.trim().to_owned();
        normalize_tags(&mut self.tags);
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkflow {
    #[validate(length(min = 1))]
    pub id: String,
    /// Fail with a conflict unless the workflow is still at this revision.
    #[serde(default)]
    pub expected_revision: Option<u64>,
    #[serde(default)]
    #[validate(length(min = 1, max = 200), custom(function = "one_line"))]
    pub name: Option<String>,
    #[serde(default)]
    #[validate(length(max = 10000), custom(function = "text_block"))]
    pub description: Option<String>,
    #[serde(default)]
    #[validate(custom(function = "semver_version"))]
    pub version: Option<String>,
    #[serde(default)]
    #[validate(length(max = 20), custom(function = "tag_list"))]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub config: Option<Value>,
}

impl Input for UpdateWorkflow {
    fn normalize(&mut self) {
        if let Some(n) = &mut self.name {
            *n = n.trim().to_owned();
        }
        if let Some(t) = &mut self.tags {
            normalize_tags(t);
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct WorkflowId {
    #[validate(length(min = 1))]
    pub id: String,
}
impl Input for WorkflowId {}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct DeleteWorkflow {
    #[validate(length(min = 1))]
    pub id: String,
    #[serde(default)]
    pub expected_revision: Option<u64>,
}
impl Input for DeleteWorkflow {}

/// A workflow as it was at `at`: a revision (`12`), an instant (RFC 3339,
/// `2026-12-03T10:00:00Z`) or the version a run used (`run:<RUN_ID>`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct WorkflowAt {
    #[validate(length(min = 1))]
    pub id: String,
    #[validate(length(min = 1, max = 100))]
    pub at: String,
}
impl Input for WorkflowAt {}

/// What differs between two versions of a workflow (`from`, `to` as in
/// `WorkflowAt::at`; `to` defaults to now).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct DiffWorkflow {
    #[validate(length(min = 1))]
    pub id: String,
    #[validate(length(min = 1, max = 100))]
    pub from: String,
    #[serde(default)]
    #[validate(length(min = 1, max = 100))]
    pub to: Option<String>,
}
impl Input for DiffWorkflow {}

/// One end of a diff: the revision it resolved to and when that was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct VersionRef {
    pub revision: u64,
    pub recorded_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct WorkflowDiff {
    pub id: String,
    pub from: VersionRef,
    pub to: VersionRef,
    /// Field by field, old (at `from`) → new (at `to`).
    pub changes: Vec<FieldChange>,
}

/// Sets a workflow back to what it was at `to` (as in `WorkflowAt::at`), as
/// one new `workflow.restored` event; a deleted workflow comes back too.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct RestoreWorkflow {
    #[validate(length(min = 1))]
    pub id: String,
    #[validate(length(min = 1, max = 100))]
    pub to: String,
    #[serde(default)]
    pub expected_revision: Option<u64>,
}
impl Input for RestoreWorkflow {}

/// Brings a deleted workflow back as it was before it was deleted, with its
/// history and runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct UndeleteWorkflow {
    #[validate(length(min = 1))]
    pub id: String,
    #[serde(default)]
    pub expected_revision: Option<u64>,
}
impl Input for UndeleteWorkflow {}

/// Approves, on this device, the run spec and retention policy a workflow
/// has now. With `expected_revision`, approves only if nothing changed
/// since the caller showed it to the user.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct ApproveWorkflow {
    #[validate(length(min = 1))]
    pub id: String,
    #[serde(default)]
    pub expected_revision: Option<u64>,
}
impl Input for ApproveWorkflow {}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct DuplicateWorkflow {
    #[validate(length(min = 1))]
    pub id: String,
    /// Name of the copy; "<name> (copy)" when absent.
    #[serde(default)]
    #[validate(length(min = 1, max = 200), custom(function = "one_line"))]
    pub name: Option<String>,
}
impl Input for DuplicateWorkflow {
    fn normalize(&mut self) {
        if let Some(n) = &mut self.name {
            *n = n.trim().to_owned();
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowSort {
    #[default]
    Name,
    Created,
    Updated,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct ListWorkflows {
    /// Matches name or description, case-insensitively.
    #[serde(default)]
    #[validate(length(max = 200))]
    pub search: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    #[ts(as = "Option<WorkflowSort>", optional)]
    pub sort: WorkflowSort,
    #[serde(default)]
    #[ts(as = "Option<bool>", optional)]
    pub desc: bool,
    #[serde(default)]
    #[validate(range(min = 1, max = 500))]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// List deleted workflows instead of live ones (to undelete one).
    #[serde(default)]
    #[ts(as = "Option<bool>", optional)]
    pub deleted: bool,
}
impl Input for ListWorkflows {
    fn normalize(&mut self) {
        if matches!(&self.search, Some(s) if s.trim().is_empty()) {
            self.search = None;
        }
    }
}

/// How many live workflows a search and tag match (the list's filters).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct CountWorkflows {
    #[serde(default)]
    #[validate(length(max = 200))]
    pub search: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
}
impl Input for CountWorkflows {
    fn normalize(&mut self) {
        if matches!(&self.search, Some(s) if s.trim().is_empty()) {
            self.search = None;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct WorkflowCount {
    pub count: u64,
}

/// The tags in use, for a filter that suggests them as you type.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct ListTags {
    /// Only tags that start with this.
    #[serde(default)]
    #[validate(length(max = 64))]
    pub prefix: Option<String>,
    #[serde(default)]
    #[validate(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}
impl Input for ListTags {}

/// The names of many workflows at once, for views that list runs of many
/// workflows (a run carries only its workflow's id).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct WorkflowNamesInput {
    #[validate(length(max = 500))]
    pub ids: Vec<String>,
}
impl Input for WorkflowNamesInput {}

/// A workflow's name; `None` for one that is deleted or unknown here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct WorkflowName {
    pub id: String,
    pub name: Option<String>,
}

/// A tag and how many live workflows carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct TagCount {
    pub tag: String,
    pub workflows: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ts_rs::TS)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct GetConfig {
    #[validate(length(min = 1))]
    pub workflow_id: String,
}
impl Input for GetConfig {}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    #[validate(length(min = 1))]
    pub workflow_id: String,
    pub config: Value,
    #[serde(default)]
    pub expected_revision: Option<u64>,
}
impl Input for UpdateConfig {}

/// Set one value. A string is converted to the field's type first, so the
/// CLI can pass what the user typed (`retries 5`, `enabled true`); `null`
/// removes the value (the field's default applies again).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct SetConfigValue {
    #[validate(length(min = 1))]
    pub workflow_id: String,
    #[validate(length(min = 1))]
    pub key: String,
    pub value: Value,
    #[serde(default)]
    pub expected_revision: Option<u64>,
}
impl Input for SetConfigValue {}

/// Validate a workflow's stored config, or a proposed one against nothing else.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct ValidateConfig {
    #[validate(length(min = 1))]
    pub workflow_id: String,
    #[serde(default)]
    pub config: Option<Value>,
}
impl Input for ValidateConfig {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ValidationReport {
    pub valid: bool,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct RunFilter {
    #[serde(default)]
    pub workflow_id: Option<String>,
    #[serde(default)]
    pub status: Option<RunStatus>,
    /// Started at or after (Unix ms).
    #[serde(default)]
    pub since: Option<i64>,
    /// Started before (Unix ms).
    #[serde(default)]
    pub until: Option<i64>,
}

impl Input for RunFilter {}

impl RunFilter {
    /// The time a prune cuts at: a prune takes the filter a list takes, and
    /// must say up to when (`until`), so it never deletes every run by a
    /// missing argument.
    pub fn prune_until(&self) -> Result<i64, Error> {
        self.until.ok_or_else(|| {
            Error::Invalid(vec![crate::FieldError::new(
                "until",
                "required",
                "a prune deletes finished runs that started before a time; give until",
            )])
        })
    }
}

/// How many runs a filter matches (shown before a bulk delete).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct RunCount {
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct ListRuns {
    #[serde(flatten)]
    #[validate(nested)]
    pub filter: RunFilter,
    #[serde(default)]
    #[validate(range(min = 1, max = 500))]
    pub limit: Option<u32>,
    #[serde(default)]
    pub cursor: Option<String>,
}
impl Input for ListRuns {}

/// Runs a workflow's command from the UI; answers once the run has started.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct RunWorkflow {
    #[validate(length(min = 1))]
    pub workflow_id: String,
    /// Config values for this run only, as text (converted to each field's type).
    #[serde(default)]
    #[ts(as = "Option<std::collections::BTreeMap<String, String>>", optional)]
    pub set: std::collections::BTreeMap<String, String>,
}
impl Input for RunWorkflow {}

/// The answer to a cancel: the run will be recorded `cancelled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct RunCancelled {
    pub id: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct RunId {
    #[validate(length(min = 1))]
    pub id: String,
}
impl Input for RunId {}

/// A piece of a run's output log, from byte `from` (`get_run_output`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct GetRunOutput {
    #[validate(length(min = 1))]
    pub id: String,
    /// Where to start (bytes into the log; 0 when left out).
    #[serde(default)]
    pub from: Option<u64>,
    /// At most this many bytes (64 KiB when left out).
    #[serde(default)]
    #[validate(range(min = 1, max = 1048576))]
    pub limit: Option<u32>,
}
impl Input for GetRunOutput {}

/// What `get_run_output` read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct RunOutput {
    /// The text read (invalid UTF-8 replaced; a character split by the end
    /// of the piece is left for the next one).
    pub text: String,
    /// Where `text` starts: `from`, or earlier when the log was cut.
    pub from: u64,
    /// Where the next piece starts.
    pub next: u64,
    /// The log's size when read.
    pub size: u64,
    /// The output grew past what the log keeps: its middle was cut, and the
    /// log goes on from `from` (the rest of it comes when the run ends).
    pub cut: bool,
    /// The run has ended and nothing follows `next`.
    pub finished: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    #[validate(length(min = 1))]
    pub workflow_id: String,
    /// `running` (default) or `queued`.
    #[serde(default)]
    pub status: Option<RunStatus>,
    #[serde(default)]
    #[validate(length(min = 1, max = 50))]
    pub trigger: Option<String>,
}
impl Input for StartRun {}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct FinishRun {
    #[validate(length(min = 1))]
    pub id: String,
    pub status: RunStatus,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub output: Option<Value>,
    #[serde(default)]
    #[validate(length(max = 10000))]
    pub error: Option<String>,
}
impl Input for FinishRun {}

/// A finished run recorded after the fact (imported from elsewhere).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct ImportedRun {
    #[validate(length(min = 1))]
    pub workflow_id: String,
    pub status: RunStatus,
    pub started_at: i64,
    pub completed_at: i64,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub output: Option<Value>,
    #[serde(default)]
    #[validate(length(max = 10000))]
    pub error: Option<String>,
    #[serde(default)]
    #[validate(length(min = 1, max = 50))]
    pub trigger: Option<String>,
}

/// Many finished runs in one transaction: all are recorded, or none.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct ImportRuns {
    /// `executions` is read too: the name before runs were called runs.
    #[serde(alias = "executions")]
    #[validate(length(min = 1, max = 100000), nested)]
    pub runs: Vec<ImportedRun>,
}
impl Input for ImportRuns {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ImportReport {
    pub imported: u64,
}

/// The workspace settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Settings {
    /// Applies to every workflow without a policy of its own.
    #[serde(default)]
    pub retention: crate::config::RetentionPolicy,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct GetSettings {}

/// Input of `sync_status` (none).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct GetSyncStatus {}
impl Input for GetSettings {}
impl Input for GetSyncStatus {}

/// Sets the retention policy of one workflow, or the global one when
/// `workflow_id` is absent. An empty policy removes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct SetRetention {
    #[serde(default)]
    pub workflow_id: Option<String>,
    #[serde(default)]
    #[ts(as = "Option<crate::config::RetentionPolicy>", optional)]
    pub policy: crate::config::RetentionPolicy,
}
impl Input for SetRetention {}

/// Applies retention policies now: to one workflow, or to all.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct ApplyRetention {
    #[serde(default)]
    pub workflow_id: Option<String>,
}
impl Input for ApplyRetention {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct PruneReport {
    pub deleted: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Json,
    Ndjson,
    Csv,
}

impl ExportFormat {
    /// The usual file extension of the format.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Csv => "csv",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct WorkflowHistory {
    #[validate(length(min = 1))]
    pub workflow_id: String,
}
impl Input for WorkflowHistory {}

/// One entry of a workflow's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct HistoryEntry {
    pub seq: i64,
    pub event_id: String,
    pub kind: String,
    pub revision: u64,
    pub actor: String,
    /// The device that made the change; for a change from another device,
    /// the one its message claims.
    pub device_id: String,
    /// For a change from another device: the device the sync server
    /// authenticated when it received it, when the server said. The same
    /// as `device_id` unless the change was relayed or its claim is false.
    #[serde(default)]
    pub uploaded_by: Option<String>,
    pub origin: String,
    pub recorded_at: i64,
    pub changes: Vec<FieldChange>,
    /// For merges: fields edited concurrently elsewhere, every value (the
    /// one in effect first), so both edits show even where one lost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<crate::workflow::FieldConflict>,
}

/// A workflow's config document with the revision it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ConfigOut {
    pub workflow_id: String,
    pub revision: u64,
    #[serde(flatten)]
    pub config: crate::config::ConfigDocument,
}

/// The answer to a delete: what was deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}

/// The output of `start_run` and `finish_run`.
pub type RunOut = Run;

fn normalize_tags(tags: &mut Vec<String>) {
    for t in tags.iter_mut() {
        *t = t.trim().to_owned();
    }
    tags.sort();
    tags.dedup();
}

/// Longest version text: semver sets none, and without one a version of
/// megabytes was kept here and then refused by the sync server.
const MAX_VERSION_CHARS: usize = 256;

fn semver_version(v: &str) -> Result<(), ValidationError> {
    if v.chars().count() > MAX_VERSION_CHARS {
        let mut e = ValidationError::new("length");
        e.message = Some(format!("at most {MAX_VERSION_CHARS} characters").into());
        return Err(e);
    }
    semver::Version::parse(v).map(|_| ()).map_err(|_| {
        let mut e = ValidationError::new("format");
        e.message = Some("must be a semantic version like 1.2.3".into());
        e
    })
}

/// A name a person reads on one line: no control character (a line break,
/// a terminal escape sequence). Another device's names pass this too.
fn one_line(v: &str) -> Result<(), ValidationError> {
    printable(
        v,
        |_| false,
        "must be one line of text without control characters",
    )
}

/// Text a person reads over several lines: line breaks and tabs, and no
/// other control character.
fn text_block(v: &str) -> Result<(), ValidationError> {
    printable(
        v,
        |c| matches!(c, '\n' | '\r' | '\t'),
        "must be text without control characters other than line breaks and tabs",
    )
}

fn printable(
    v: &str,
    allowed: impl Fn(char) -> bool,
    rule: &'static str,
) -> Result<(), ValidationError> {
    match v.chars().find(|&c| c.is_control() && !allowed(c)) {
        None => Ok(()),
        Some(c) => {
            let mut e = ValidationError::new("format");
            e.message = Some(format!("{rule} (found {})", c.escape_unicode()).into());
            Err(e)
        }
    }
}

fn tag_list(tags: &[String]) -> Result<(), ValidationError> {
    for t in tags {
        let ok = !t.is_empty()
            && t.chars().count() <= 50
            && t.chars()
                .all(|c| c.is_alphanumeric() || "-_.:/".contains(c));
        if !ok {
            let mut e = ValidationError::new("format");
            let shown = crate::remote::clip(t, 60);
            e.message =
                Some(format!("tag \"{shown}\": 1 to 50 letters, digits or - _ . : /").into());
            return Err(e);
        }
    }
    Ok(())
}

/// Flattens `validator`'s nested errors into sorted `FieldError`s with
/// messages a person can act on.
pub fn field_errors(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    collect(errors, "", &mut out);
    out.sort_by(|a, b| a.field.cmp(&b.field).then(a.code.cmp(&b.code)));
    out
}

fn collect(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for e in list {
                    out.push(FieldError::new(&path, &e.code, message(e)));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (i, inner) in items {
                    collect(inner, &format!("{path}[{i}]"), out);
                }
            }
        }
    }
}

fn message(e: &ValidationError) -> String {
    if let Some(m) = &e.message {
        return m.to_string();
    }
    let p = |k: &str| e.params.get(k).map(|v| v.to_string());
    // `length` is checked on text and on lists (the value is among the
    // params): characters for one, items for the other.
    let value = e.params.get("value");
    let items = value.is_some_and(|v| v.is_array());
    let blank = value.is_some_and(|v| v.as_str().is_some_and(|s| s.trim().is_empty()));
    let unit = if items { "items" } else { "characters" };
    match (e.code.as_ref(), p("min"), p("max")) {
        ("length", Some(min), Some(max)) if min == "1" && blank => {
            format!("must not be blank (1 to {max} characters)")
        }
        ("length", Some(min), Some(max)) if min == "1" && items => {
            format!("must hold 1 to {max} items")
        }
        ("length", Some(min), Some(max)) if min == "1" => {
            format!("must be 1 to {max} characters long")
        }
        ("length", Some(min), Some(max)) => format!("must be {min} to {max} {unit} long"),
        ("length", Some(min), None) if min == "1" => "must not be empty".to_owned(),
        ("length", Some(min), None) => format!("must be at least {min} {unit} long"),
        ("length", None, Some(max)) if items => format!("must hold at most {max} items"),
        ("length", None, Some(max)) => format!("must be at most {max} characters long"),
        ("range", Some(min), Some(max)) => format!("must be between {min} and {max}"),
        (code, _, _) => format!("breaks the {code} rule"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_then_checked() {
        let mut c = CreateWorkflow {
            name: "   ".into(),
            ..Default::default()
        };
        let Err(Error::Invalid(errs)) = c.check() else {
            panic!("blank name accepted")
        };
        assert_eq!(
            errs,
            vec![FieldError::new(
                "name",
                "length",
                "must not be blank (1 to 200 characters)"
            )]
        );

        let mut c = CreateWorkflow {
            name: "  ok ".into(),
            ..Default::default()
        };
        c.check().unwrap();
        assert_eq!(c.name, "ok");
    }

    #[test]
    fn a_version_is_semver_and_at_most_256_characters() {
        let version = |v: String| {
            let mut c = CreateWorkflow {
                name: "w".into(),
                version: Some(v),
                ..Default::default()
            };
            match c.check() {
                Ok(()) => vec![],
                Err(Error::Invalid(errs)) => errs.into_iter().map(|e| e.code).collect(),
            }
        };
        let long = |n: usize| format!("1.0.0-{}", "a".repeat(n - 6));
        assert!(version(long(MAX_VERSION_CHARS)).is_empty());
        assert_eq!(version(long(MAX_VERSION_CHARS + 1)), ["length"]);
        assert_eq!(version("one".into()), ["format"]);
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut c = CreateWorkflow {
            name: "x".repeat(201),
            description: Some("d".repeat(10_001)),
            version: Some("one".into()),
            tags: vec!["has space".into()],
            config: None,
        };
        let Err(Error::Invalid(errs)) = c.check() else {
            panic!("accepted")
        };
        let fields: Vec<(&str, &str)> = errs
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("description", "length"),
                ("name", "length"),
                ("tags", "format"),
                ("version", "format")
            ]
        );
        assert!(errs[2].message.contains("has space"));
        assert_eq!(errs[3].message, "must be a semantic version like 1.2.3");
        assert_eq!(errs[0].message, "must be at most 10000 characters long");
    }

    #[test]
    fn a_list_too_long_counts_items_not_characters() {
        let mut i = ImportRuns { runs: vec![] };
        let Err(Error::Invalid(errs)) = i.check() else {
            panic!("an empty import accepted")
        };
        assert_eq!(errs[0].field, "runs");
        assert_eq!(errs[0].message, "must hold 1 to 100000 items");
    }

    #[test]
    fn names_are_one_line_and_descriptions_keep_only_line_breaks_and_tabs() {
        let mut c = CreateWorkflow {
            name: "nightly\u{1b}[2J".into(),
            description: Some("first\r\n\tsecond\u{7}".into()),
            ..Default::default()
        };
        let Err(Error::Invalid(errs)) = c.check() else {
            panic!("accepted")
        };
        let got: Vec<(&str, &str, &str)> = errs
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "description",
                    "format",
                    "must be text without control characters other than line breaks and tabs (found \\u{7})"
                ),
                (
                    "name",
                    "format",
                    "must be one line of text without control characters (found \\u{1b})"
                )
            ]
        );

        let mut c = CreateWorkflow {
            name: "nightly — ünïcode ✓".into(),
            description: Some("first\r\n\tsecond".into()),
            ..Default::default()
        };
        c.check().unwrap();
        let mut u = UpdateWorkflow {
            id: "w".into(),
            name: Some("a\nb".into()),
            ..Default::default()
        };
        assert!(u.check().is_err());
        let mut d = DuplicateWorkflow {
            id: "w".into(),
            name: Some("copy\u{9b}".into()),
        };
        assert!(d.check().is_err());
    }

    #[test]
    fn tags_are_trimmed_sorted_and_deduplicated() {
        let mut c = CreateWorkflow {
            name: "n".into(),
            tags: vec![" b".into(), "a".into(), "b".into()],
            ..Default::default()
        };
        c.check().unwrap();
        assert_eq!(c.tags, ["a", "b"]);
    }

    #[test]
    fn page_limits_are_ranged() {
        let mut l = ListWorkflows {
            limit: Some(0),
            ..Default::default()
        };
        let Err(Error::Invalid(errs)) = l.check() else {
            panic!()
        };
        assert_eq!(errs[0].field, "limit");
        assert_eq!(errs[0].message, "must be between 1 and 500");
        let mut g = ListRuns {
            limit: Some(501),
            ..Default::default()
        };
        assert!(g.check().is_err());
    }
}

/// Lists the schedules of live workflows (`flowkeep schedule list`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct ListSchedules {
    /// Only this workflow's.
    #[serde(default)]
    pub workflow_id: Option<String>,
}
impl Input for ListSchedules {}

/// A schedule as `schedule list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ScheduleRow {
    pub workflow_id: String,
    pub name: String,
    pub schedule: crate::schedule::Schedule,
    /// `every 2s`, `cron 0 3 * * * (Europe/Berlin)`.
    pub describe: String,
    /// The device that runs it (`None`: no device; nobody runs it).
    pub owner: Option<String>,
    /// Whether that is this device.
    pub owned_here: bool,
    /// `runs here`, `paused`, `waiting for approval`, `runs on <device>`,
    /// `no owner`: what happens to it on this device.
    pub state: String,
    /// When the next occurrence falls (Unix ms).
    pub next_run: Option<i64>,
    /// The latest recorded occurrence (run or skipped) and how it ended.
    pub last_run: Option<ScheduledRun>,
    pub missed: crate::schedule::Missed,
    pub overlap: crate::schedule::Overlap,
    /// Since when the schedule is in effect as it is (Unix ms).
    pub since: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ScheduledRun {
    pub run_id: String,
    pub occurrence: i64,
    pub status: crate::run::RunStatus,
}

/// Makes a device the one that runs a workflow's schedule: this device
/// unless `device_id` names another. An ordinary, audited config change.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct OwnSchedule {
    #[validate(length(min = 1))]
    pub workflow_id: String,
    #[serde(default)]
    #[validate(length(min = 1, max = 128))]
    pub device_id: Option<String>,
    #[serde(default)]
    pub expected_revision: Option<u64>,
}
impl Input for OwnSchedule {}

/// The next occurrences of a schedule as written (for an editor), from
/// `from` (Unix ms; now when absent).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct PreviewSchedule {
    #[ts(type = "unknown")]
    pub schedule: Value,
    #[serde(default)]
    #[validate(range(min = 1, max = 100))]
    pub count: Option<u32>,
    /// From 1970 to the end of year 9999.
    #[serde(default)]
    #[validate(range(min = 0, max = 253_402_300_799_999i64))]
    pub from: Option<i64>,
}
impl Input for PreviewSchedule {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct SchedulePreview {
    /// Occurrences as Unix ms, in order.
    pub times: Vec<i64>,
    /// `every 2s`, `cron 0 3 * * * (Europe/Berlin)`.
    pub describe: String,
}

/// Writes workflows as files, one `<slug>.flowkeep.yaml` each, into `dir`
/// (created if missing). Without filters, every live workflow.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct ExportWorkflows {
    #[validate(length(min = 1, max = 4096))]
    pub dir: String,
    /// Only workflows whose name or description contains this.
    #[serde(default)]
    #[validate(length(max = 200))]
    pub search: Option<String>,
    /// Only workflows with this tag.
    #[serde(default)]
    #[validate(length(max = 50))]
    pub tag: Option<String>,
    /// Only these workflows.
    #[serde(default)]
    #[validate(length(max = 100000))]
    #[ts(as = "Option<Vec<String>>", optional)]
    pub ids: Vec<String>,
}
impl Input for ExportWorkflows {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ExportedWorkflows {
    pub dir: String,
    /// One per workflow, in the order written.
    pub files: Vec<ExportedFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ExportedFile {
    pub workflow_id: String,
    pub file: String,
}

/// How an import finds the workflow a file stands for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum MatchBy {
    /// By the file's `id` (a file without one creates a new workflow).
    #[default]
    Id,
    /// By the workflow's exact name.
    Name,
}

/// Creates or updates workflows from files: every `*.flowkeep.yaml` in
/// `dir`, or the given `files`. Everything is read and validated first; an
/// invalid file changes nothing at all.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct ImportWorkflows {
    #[serde(default)]
    #[validate(length(min = 1, max = 4096))]
    pub dir: Option<String>,
    #[serde(default)]
    #[validate(length(max = 100000))]
    #[ts(as = "Option<Vec<String>>", optional)]
    pub files: Vec<String>,
    #[serde(default, rename = "match")]
    #[ts(as = "Option<MatchBy>", optional)]
    pub match_by: MatchBy,
    /// Who wins a field changed both in the file and here since the last
    /// export or import; without it such a field stops that workflow.
    #[serde(default)]
    pub prefer: Option<crate::files::Prefer>,
    /// Only say what would happen.
    #[serde(default)]
    #[ts(as = "Option<bool>", optional)]
    pub dry_run: bool,
}
impl Input for ImportWorkflows {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum ImportAction {
    Create,
    Update,
    Unchanged,
    /// Changed on both sides: not imported.
    Conflict,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ImportItem {
    pub file: String,
    pub workflow_id: String,
    pub name: String,
    pub action: ImportAction,
    /// What the import writes (or would), field by field: old → new.
    pub changes: Vec<FieldChange>,
    pub conflicts: Vec<crate::files::MergeConflict>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct WorkflowImport {
    pub items: Vec<ImportItem>,
    /// False for a dry run.
    pub applied: bool,
    /// Of the created, those whose file has no `id` (matched by id):
    /// importing such a file again creates another workflow.
    #[serde(default)]
    pub created_without_id: u32,
}

/// A workflow's config values with its secrets opened (the one answer that
/// is not masked).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct RevealConfig {
    #[validate(length(min = 1))]
    pub workflow_id: String,
}
impl Input for RevealConfig {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct RevealedConfig {
    pub workflow_id: String,
    pub revision: u64,
    #[ts(type = "Record<string, unknown>")]
    pub values: serde_json::Map<String, Value>,
    /// Secrets this device cannot open (their value is null above), and why.
    pub unavailable: Vec<FieldError>,
}

/// Seals every secret again under a new key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct RotateSecrets {}
impl Input for RotateSecrets {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct SecretsRotated {
    pub key_id: String,
    pub previous_key_id: Option<String>,
    pub workflows: u64,
    pub values: u64,
}

/// Without `key`: this workspace's key, to give a new device. With `key`:
/// adds that key (from the device that made it) and seals with it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ts_rs::TS)]
#[ts(optional_fields)]
#[serde(deny_unknown_fields)]
pub struct SecretKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 100))]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Where this device keeps its keys: "the OS keychain" or a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_in: Option<String>,
}
impl Input for SecretKey {}
