//! The one command table. Each entry names a command, its input and output
//! types and the method that handles it (`workflows.create`: the `create` of
//! `svc.workflows()`). The CLI calls commands
//! through `call`, the local HTTP API and Tauri through `dispatch` (by name,
//! with JSON in and out); `COMMANDS` lists them for generated bindings.

use flowkeep_core::commands::*;
use flowkeep_core::run::Run;
use flowkeep_core::versions::WorkflowVersion;
use flowkeep_core::workflow::{Workflow, WorkflowSummary};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::{Error, Result, Service};

/// A command of the table.
pub trait Command {
    const NAME: &'static str;
    type Input: DeserializeOwned + Serialize;
    type Output: Serialize;
    fn run(svc: &Service, input: Self::Input) -> Result<Self::Output>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CommandInfo {
    pub name: &'static str,
    pub input: &'static str,
    pub output: &'static str,
}

/// Runs a command with a typed input.
pub fn call<C: Command>(svc: &Service, input: C::Input) -> Result<C::Output> {
    C::run(svc, input)
}

fn call_json<C: Command>(svc: &Service, input: Value) -> Result<Value> {
    let input: C::Input = serde_json::from_value(input).map_err(|e| {
        Error::InvalidInput(vec![flowkeep_core::FieldError::new(
            "input",
            "invalid_input",
            e.to_string(),
        )])
    })?;
    let out = C::run(svc, input)?;
    Ok(serde_json::to_value(out)?)
}

/// Commands renamed when "execution" became "run" everywhere a person reads
/// it: (former name, name). Scripts that call the HTTP API or `flowkeep call`
/// with a former name keep working; the bindings list only the new names.
pub const FORMER_NAMES: &[(&str, &str)] = &[
    ("get_executions", "list_runs"),
    ("count_executions", "count_runs"),
    ("get_execution", "get_run"),
    ("delete_execution", "delete_run"),
    ("start_execution", "start_run"),
    ("finish_execution", "finish_run"),
    ("import_executions", "import_runs"),
    ("prune_executions", "prune_runs"),
];

macro_rules! command_table {
    ($( $ty:ident = $name:literal ($input:ty) -> $output:ty => $service:ident . $method:ident; )*) => {
        pub mod commands {
            use super::*;
            $(
                #[doc = concat!("`", $name, "`")]
                pub struct $ty;
                impl Command for $ty {
                    const NAME: &'static str = $name;
                    type Input = $input;
                    type Output = $output;
                    fn run(svc: &Service, input: $input) -> Result<$output> {
                        let mut out = svc.$service().$method(input)?;
                        // Sealed secrets never leave as they are stored.
                        crate::secrets::Mask::mask(&mut out);
                        Ok(out)
                    }
                }
            )*
        }

        pub static COMMANDS: &[CommandInfo] = &[
            $( CommandInfo { name: $name, input: stringify!($input), output: stringify!($output) }, )*
        ];

        /// The TypeScript declarations of every command's input and output.
        pub fn typescript_bindings() -> String {
            let mut b = crate::bindings::Bindings::default();
            $( b.command::<$input, $output>($name); )*
            // Not a command's input or output, but every caller sees them.
            b.extra::<flowkeep_core::ErrorBody>();
            b.extra::<ExportFormat>();
            // Long-running: served beside the table (`POST /api/run`, `/api/cancel_run`).
            b.extra::<RunWorkflow>();
            b.extra::<RunCancelled>();
            b.render()
        }

        /// Runs a command by name with a JSON input, for the HTTP API and Tauri.
        /// A name from before runs were called runs still reaches its command.
        pub fn dispatch(svc: &Service, name: &str, input: Value) -> Result<Value> {
            let name = FORMER_NAMES
                .iter()
                .find(|(old, _)| *old == name)
                .map_or(name, |(_, new)| *new);
            match name {
                $( $name => call_json::<commands::$ty>(svc, input), )*
                _ => Err(Error::NotFound { entity: "command", id: name.to_owned() }),
            }
        }
    };
}

command_table! {
    CreateWorkflowCmd = "create_workflow" (CreateWorkflow) -> Workflow => workflows.create;
    UpdateWorkflowCmd = "update_workflow" (UpdateWorkflow) -> Workflow => workflows.update;
    DeleteWorkflowCmd = "delete_workflow" (DeleteWorkflow) -> Deleted => workflows.delete;
    GetWorkflowCmd = "get_workflow" (WorkflowId) -> Workflow => workflows.get;
    ListWorkflowsCmd = "list_workflows" (ListWorkflows) -> Page<WorkflowSummary> => workflows.list;
    ListTagsCmd = "list_tags" (ListTags) -> Vec<TagCount> => workflows.tags;
    WorkflowNamesCmd = "workflow_names" (WorkflowNamesInput) -> Vec<WorkflowName> => workflows.names;
    CountWorkflowsCmd = "count_workflows" (CountWorkflows) -> WorkflowCount => workflows.count;
    DuplicateWorkflowCmd = "duplicate_workflow" (DuplicateWorkflow) -> Workflow => workflows.duplicate;
    ApproveWorkflowCmd = "approve_workflow" (ApproveWorkflow) -> Workflow => workflows.approve;
    GetConfigCmd = "get_config" (GetConfig) -> ConfigOut => configs.get;
    UpdateConfigCmd = "update_config" (UpdateConfig) -> ConfigOut => configs.update;
    SetConfigValueCmd = "set_config_value" (SetConfigValue) -> ConfigOut => configs.set_value;
    ValidateConfigCmd = "validate_config" (ValidateConfig) -> ValidationReport => configs.validate;
    ListRunsCmd = "list_runs" (ListRuns) -> Page<Run> => runs.list;
    CountRunsCmd = "count_runs" (RunFilter) -> RunCount => runs.count;
    GetRunCmd = "get_run" (RunId) -> Run => runs.get;
    DeleteRunCmd = "delete_run" (RunId) -> Deleted => runs.delete;
    GetRunOutputCmd = "get_run_output" (GetRunOutput) -> RunOutput => runs.output;
    StartRunCmd = "start_run" (StartRun) -> Run => runs.start;
    FinishRunCmd = "finish_run" (FinishRun) -> Run => runs.finish;
    ImportRunsCmd = "import_runs" (ImportRuns) -> ImportReport => runs.import;
    PruneRunsCmd = "prune_runs" (RunFilter) -> PruneReport => runs.prune;
    GetSettingsCmd = "get_settings" (GetSettings) -> Settings => settings.get;
    SetRetentionCmd = "set_retention" (SetRetention) -> Settings => settings.set_retention;
    ApplyRetentionCmd = "apply_retention" (ApplyRetention) -> PruneReport => settings.apply_retention;
    WorkflowHistoryCmd = "workflow_history" (WorkflowHistory) -> Vec<HistoryEntry> => workflows.history;
    WorkflowAtCmd = "workflow_at" (WorkflowAt) -> WorkflowVersion => workflows.get_at;
    DiffWorkflowCmd = "diff_workflow" (DiffWorkflow) -> WorkflowDiff => workflows.diff;
    RestoreWorkflowCmd = "restore_workflow" (RestoreWorkflow) -> Workflow => workflows.restore;
    UndeleteWorkflowCmd = "undelete_workflow" (UndeleteWorkflow) -> Workflow => workflows.undelete;
    SyncStatusCmd = "sync_status" (GetSyncStatus) -> crate::SyncStatus => sync.status;
    ListSchedulesCmd = "list_schedules" (ListSchedules) -> Vec<ScheduleRow> => schedules.list;
    OwnScheduleCmd = "own_schedule" (OwnSchedule) -> Workflow => schedules.own;
    PreviewScheduleCmd = "preview_schedule" (PreviewSchedule) -> SchedulePreview => schedules.preview;
    ExportWorkflowsCmd = "export_workflows" (ExportWorkflows) -> ExportedWorkflows => workflows.export_files;
    ImportWorkflowsCmd = "import_workflows" (ImportWorkflows) -> WorkflowImport => workflows.import_files;
    RevealConfigCmd = "reveal_config" (RevealConfig) -> RevealedConfig => configs.reveal;
    RotateSecretsCmd = "rotate_secrets" (RotateSecrets) -> SecretsRotated => configs.rotate_secrets;
    SecretKeyCmd = "secret_key" (SecretKey) -> SecretKey => configs.secret_key;
}

// What each output shows of secrets: values of workflows are masked; the
// rest hold none (a reveal and a key are what they were asked for).
crate::secrets::masked_through_json!(
    Workflow,
    ConfigOut,
    Vec<HistoryEntry>,
    WorkflowVersion,
    WorkflowDiff,
    WorkflowImport,
);
crate::secrets::nothing_to_mask!(
    Deleted,
    Page<WorkflowSummary>,
    Vec<TagCount>,
    Vec<WorkflowName>,
    WorkflowCount,
    ValidationReport,
    Page<Run>,
    RunCount,
    Run,
    RunOutput,
    ImportReport,
    PruneReport,
    Settings,
    crate::SyncStatus,
    Vec<ScheduleRow>,
    SchedulePreview,
    ExportedWorkflows,
    RevealedConfig,
    SecretsRotated,
    SecretKey,
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed bindings are what the Rust types say; with
    /// `FLOWKEEP_UPDATE_BINDINGS=1` the test rewrites them instead.
    #[test]
    fn bindings_are_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(crate::bindings::BINDINGS_PATH);
        let generated = typescript_bindings();
        assert!(!generated.contains("bigint"));
        for c in COMMANDS {
            assert!(generated.contains(&format!("  {}: {{ input: ", c.name)));
        }
        if std::env::var_os("FLOWKEEP_UPDATE_BINDINGS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is out of date: run FLOWKEEP_UPDATE_BINDINGS=1 cargo test -p flowkeep-app --lib bindings",
            path.display()
        );
    }

    /// Every former name leads to a command of the table, and none is still
    /// a name of its own.
    #[test]
    fn former_names_reach_their_renamed_command() {
        let svc = Service::open_in_memory(Default::default()).unwrap();
        for (old, new) in FORMER_NAMES {
            assert!(COMMANDS.iter().any(|c| c.name == *new), "{new}");
            assert!(!COMMANDS.iter().any(|c| c.name == *old), "{old}");
        }
        let by_old = dispatch(&svc, "count_executions", serde_json::json!({})).unwrap();
        let by_new = dispatch(&svc, "count_runs", serde_json::json!({})).unwrap();
        assert_eq!(by_old, by_new);
        let err = dispatch(&svc, "no_such_command", serde_json::json!({})).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }));
    }
}
