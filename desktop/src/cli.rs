//! The command line, as in DESIGN.md.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "flowkeep",
    version,
    about = "Local-first workflow and configuration manager"
)]
pub struct Cli {
    /// Where the database lives (default: the platform data dir, e.g. ~/.local/share/flowkeep).
    #[arg(long, global = true, env = "FLOWKEEP_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Machine-readable output: results as JSON on stdout, errors as JSON on stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// Without a command: the desktop window when there is a display and
    /// this build has it, else this help.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create, change, list and delete workflows.
    #[command(subcommand)]
    Workflow(WorkflowCmd),
    /// Read, change and validate a workflow's typed configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// The execution history: list, inspect, record, delete, prune, export.
    #[command(subcommand)]
    Exec(ExecCmd),
    /// The audit trail of one workflow: who changed what, when, where.
    History { workflow: String },
    /// Run the workflow's command with its config and record the execution.
    /// Exit code: 0 succeeded, 1 failed or timed out, 130 cancelled, 3 invalid config.
    Run {
        workflow: String,
        /// Override a config value for this run only (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Open the desktop window (builds with the `native` feature).
    App,
    /// Serve the local HTTP API and web UI on 127.0.0.1.
    Ui {
        /// Port on 127.0.0.1 (default: one the OS picks).
        #[arg(long)]
        port: Option<u16>,
        /// Only print the address; do not open a browser.
        #[arg(long)]
        no_open: bool,
    },
    /// Sync this workspace with other devices through a sync server.
    #[command(subcommand)]
    Sync(SyncCmd),
    /// Drop the read tables and rebuild them from the event log.
    RebuildProjections,
}

#[derive(Subcommand, Debug)]
pub enum SyncCmd {
    /// Start a workspace on a sync server with this device's workflows.
    Init {
        /// The server's sync URL, e.g. ws://127.0.0.1:7780/sync
        #[arg(long)]
        server: String,
        /// The workspace token from `flowkeep-sync-server workspace create`.
        #[arg(long, env = "FLOWKEEP_SYNC_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Join a workspace another device started.
    Join {
        /// The join string `flowkeep sync init` printed.
        join: String,
        #[arg(long, env = "FLOWKEEP_SYNC_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Send local changes, receive other devices', merge; exit when in sync.
    Now,
    /// Server, last sync and pending local changes.
    Status,
    /// Keep syncing in the background until Ctrl-C: reconnects when the
    /// server comes back, sends and merges changes as they happen.
    Watch {
        /// How often to look for changes, in milliseconds.
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum WorkflowCmd {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Semantic version of the workflow (default 1.0.0).
        #[arg(long)]
        version: Option<String>,
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// The config document as JSON, or @FILE to read it from a file.
        #[arg(long, value_name = "JSON|@FILE")]
        config: Option<String>,
    },
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        version: Option<String>,
        /// Replace the tags (repeat for several).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Remove all tags.
        #[arg(long, conflicts_with = "tags")]
        clear_tags: bool,
        #[arg(long, value_name = "JSON|@FILE")]
        config: Option<String>,
        /// Fail with a conflict (exit 5) unless the workflow is at this revision.
        #[arg(long)]
        expected_revision: Option<u64>,
    },
    Get {
        id: String,
    },
    Delete {
        id: String,
        #[arg(long)]
        expected_revision: Option<u64>,
    },
    /// Approve, on this device, the run spec and retention policy the
    /// workflow has now (needed after another device changed them).
    Approve {
        id: String,
        /// Approve only if the workflow is still at this revision (exit 5 otherwise).
        #[arg(long)]
        expected_revision: Option<u64>,
    },
    Duplicate {
        id: String,
        /// Name of the copy (default: "<name> (copy)").
        #[arg(long)]
        name: Option<String>,
    },
    List {
        /// Find text in the name or description.
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        tag: Option<String>,
        #[arg(long, value_enum, default_value_t = SortArg::Name)]
        sort: SortArg,
        #[arg(long)]
        desc: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Continue after the page that printed this cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum SortArg {
    Name,
    Created,
    Updated,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    Get {
        workflow: String,
    },
    /// Set one value; VALUE is converted to the field's type (5, true, {"a":1}).
    Set {
        workflow: String,
        key: String,
        value: String,
        #[arg(long)]
        expected_revision: Option<u64>,
    },
    /// Replace the whole config document.
    Update {
        workflow: String,
        #[arg(long, value_name = "JSON|@FILE")]
        config: String,
        #[arg(long)]
        expected_revision: Option<u64>,
    },
    /// Check the stored config, or a proposed one, without saving (exit 3 if invalid).
    Validate {
        workflow: String,
        #[arg(long, value_name = "JSON|@FILE")]
        config: Option<String>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ExecFilterArgs {
    #[arg(long, value_parser = parse_status)]
    pub status: Option<flowkeep_core::execution::ExecutionStatus>,
    /// Started at or after: 2026-11-01, 2026-11-01T08:00:00Z, or 7d (ago).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Started before: same forms as --since.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ExecCmd {
    List {
        /// Only this workflow's runs (default: all workflows).
        workflow: Option<String>,
        #[command(flatten)]
        filter: ExecFilterArgs,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        cursor: Option<String>,
    },
    Get {
        id: String,
    },
    /// Delete one run by ID, or every finished run matching the filters
    /// (the count is shown and confirmed first).
    Delete {
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        workflow: Option<String>,
        #[arg(long, value_parser = parse_status, conflicts_with = "id")]
        status: Option<flowkeep_core::execution::ExecutionStatus>,
        /// Only runs that started at or after this date.
        #[arg(long, value_name = "DATE", conflicts_with = "id")]
        since: Option<String>,
        /// Only runs that started before this date (default: now).
        #[arg(long, value_name = "DATE", conflicts_with = "id")]
        before: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Show or set retention policies (global, or one workflow's).
    Retention {
        #[arg(long)]
        workflow: Option<String>,
        /// Keep runs younger than this: 30d, 12h, 1w.
        #[arg(long, value_name = "DURATION")]
        max_age: Option<String>,
        /// Keep at most this many finished runs per workflow.
        #[arg(long, value_name = "N")]
        max_count: Option<u64>,
        /// Remove the policy.
        #[arg(long, conflicts_with_all = ["max_age", "max_count"])]
        clear: bool,
    },
    /// Record the start of a run made outside flowkeep.
    Start {
        workflow: String,
        #[arg(long)]
        trigger: Option<String>,
        /// Start as queued instead of running.
        #[arg(long)]
        queued: bool,
    },
    /// Record how a run ended: succeeded, failed or cancelled.
    Finish {
        id: String,
        #[arg(long, value_parser = parse_status)]
        status: flowkeep_core::execution::ExecutionStatus,
        #[arg(long)]
        exit_code: Option<i64>,
        /// JSON the run produced.
        #[arg(long, value_name = "JSON|@FILE")]
        output: Option<String>,
        #[arg(long)]
        error: Option<String>,
    },
    /// Record finished runs made elsewhere, from a file (`-` for stdin): a
    /// JSON array or NDJSON, one run per element or line, with
    /// workflow_id, status, started_at, completed_at (Unix ms) and optional
    /// exit_code, output, error, trigger. All are recorded, or none.
    Import {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Apply the retention policies now, or delete finished runs that
    /// started before a date.
    Prune {
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long, value_parser = parse_status, requires = "before")]
        status: Option<flowkeep_core::execution::ExecutionStatus>,
        /// Delete finished runs that started before this date instead of applying the policies.
        #[arg(long, value_name = "DATE")]
        before: Option<String>,
    },
    /// Stream runs as json, ndjson or csv to a file or stdout.
    Export {
        #[arg(long)]
        workflow: Option<String>,
        #[command(flatten)]
        filter: ExecFilterArgs,
        #[arg(long, value_enum, default_value_t = FormatArg::Json)]
        format: FormatArg,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    Json,
    Ndjson,
    Csv,
}

fn parse_status(s: &str) -> Result<flowkeep_core::execution::ExecutionStatus, String> {
    flowkeep_core::execution::ExecutionStatus::parse(s)
        .ok_or_else(|| "expected one of queued, running, succeeded, failed, cancelled".to_owned())
}
