//! The one command table. Each entry names a command, its input and output
//! types and the method that handles it (`workflows.create`: the `create` of
//! `svc.workflows()`). The CLI calls commands
//! through `call`, the local HTTP API and Tauri through `dispatch` (by name,
//! with JSON in and out); `COMMANDS` lists them for generated bindings.

use flowkeep_core::commands::*;
use flowkeep_core::execution::Execution;
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
                        svc.$service().$method(input)
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
        pub fn dispatch(svc: &Service, name: &str, input: Value) -> Result<Value> {
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
    CountWorkflowsCmd = "count_workflows" (CountWorkflows) -> WorkflowCount => workflows.count;
    DuplicateWorkflowCmd = "duplicate_workflow" (DuplicateWorkflow) -> Workflow => workflows.duplicate;
    ApproveWorkflowCmd = "approve_workflow" (ApproveWorkflow) -> Workflow => workflows.approve;
    GetConfigCmd = "get_config" (GetConfig) -> ConfigOut => configs.get;
    UpdateConfigCmd = "update_config" (UpdateConfig) -> ConfigOut => configs.update;
    SetConfigValueCmd = "set_config_value" (SetConfigValue) -> ConfigOut => configs.set_value;
    ValidateConfigCmd = "validate_config" (ValidateConfig) -> ValidationReport => configs.validate;
    GetExecutionsCmd = "get_executions" (GetExecutions) -> Page<Execution> => runs.list;
    CountExecutionsCmd = "count_executions" (ExecutionFilter) -> ExecutionCount => runs.count;
    GetExecutionCmd = "get_execution" (ExecutionId) -> Execution => runs.get;
    DeleteExecutionCmd = "delete_execution" (ExecutionId) -> Deleted => runs.delete;
    StartExecutionCmd = "start_execution" (StartExecution) -> Execution => runs.start;
    FinishExecutionCmd = "finish_execution" (FinishExecution) -> Execution => runs.finish;
    ImportExecutionsCmd = "import_executions" (ImportExecutions) -> ImportReport => runs.import;
    PruneExecutionsCmd = "prune_executions" (ExecutionFilter) -> PruneReport => runs.prune;
    GetSettingsCmd = "get_settings" (GetSettings) -> Settings => settings.get;
    SetRetentionCmd = "set_retention" (SetRetention) -> Settings => settings.set_retention;
    ApplyRetentionCmd = "apply_retention" (ApplyRetention) -> PruneReport => settings.apply_retention;
    WorkflowHistoryCmd = "workflow_history" (WorkflowHistory) -> Vec<HistoryEntry> => workflows.history;
    SyncStatusCmd = "sync_status" (GetSyncStatus) -> crate::SyncStatus => sync.status;
}

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
            "{} is out of date: run FLOWKEEP_UPDATE_BINDINGS=1 cargo test -p flowkeep-store --lib bindings",
            path.display()
        );
    }
}
