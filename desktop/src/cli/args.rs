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
    /// Runs of workflows: list, inspect, record, delete, prune, export.
    #[command(subcommand)]
    Exec(ExecCmd),
    /// The audit trail of one workflow: who changed what, when, where.
    History { workflow: String },
    /// Run the workflow's command with its config and record the run.
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
    /// Run the schedules this device owns (and sync, when set up) until
    /// stopped; `agent install` makes it a systemd user service.
    Agent {
        #[command(subcommand)]
        cmd: Option<AgentCmd>,
    },
    /// Workflows' schedules: what runs when and where.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// The key that seals `secret` values: rotate it, or move it to a new device.
    #[command(subcommand)]
    Secrets(SecretsCmd),
    /// Drop the read tables and rebuild them from the event log.
    RebuildProjections,
    /// Run any command of the command table by name with a JSON input, as
    /// the HTTP API and the desktop window do (`flowkeep call --list`
    /// lists them). Prints the command's JSON output.
    Call {
        /// The command's name, e.g. `get_workflow`; `--list` for all.
        #[arg(required_unless_present = "list")]
        command: Option<String>,
        /// Its input as JSON (or @FILE); `{}` when absent.
        #[arg(value_name = "JSON|@FILE")]
        input: Option<String>,
        /// List the commands with their input and output types.
        #[arg(long)]
        list: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum MatchArg {
    Id,
    Name,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum PreferArg {
    File,
    Local,
}

#[derive(Subcommand, Debug)]
pub enum SecretsCmd {
    /// Seal every secret again under a new key (one change per workflow).
    Rotate,
    /// Print this workspace's key, to give a device that joins (keep it
    /// private); with --add, take a key printed on another device.
    Key {
        /// A key printed on another device; `-` reads it from stdin (an
        /// argument shows in the process list while the command runs).
        #[arg(long, value_name = "KEY")]
        add: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentCmd {
    /// Run in the foreground until Ctrl-C or SIGTERM (what `agent` alone does).
    Run,
    /// Write a systemd user unit that runs the agent for this data dir, and
    /// enable and start it (Linux). On macOS see the README for a launchd
    /// plist.
    Install {
        /// Only write the unit; do not enable or start it.
        #[arg(long)]
        no_start: bool,
    },
    /// Stop, disable and remove the systemd user unit.
    Uninstall,
    /// Whether an agent runs for this data dir, and the unit if installed.
    Status,
}

#[derive(Subcommand, Debug)]
pub enum ScheduleCmd {
    /// Schedules with their next run, last run, owner and policies.
    List {
        /// Only this workflow's.
        workflow: Option<String>,
    },
    /// Make this device (or --device) the one that runs a workflow's
    /// schedule. Recorded as a change of the workflow and synced.
    Own {
        workflow: String,
        /// Hand it to this device id instead (see `sync devices`).
        #[arg(long)]
        device: Option<String>,
        /// Refuse if the workflow changed since this revision.
        #[arg(long)]
        expected_revision: Option<u64>,
    },
    /// The next times a schedule (as JSON) falls, e.g.
    /// '{"cron": "0 3 * * *", "timezone": "Europe/Berlin"}'.
    Preview {
        #[arg(value_name = "JSON|@FILE")]
        schedule: String,
        /// How many (default 5).
        #[arg(long)]
        count: Option<u32>,
    },
}

/// How `sync init` and `sync join` reach the server.
#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// Allow plain ws:// to a server that is not on this machine: the
    /// token and every config value cross the network unencrypted.
    #[arg(long)]
    pub allow_insecure: bool,
    /// Trust this CA certificate (PEM) for a wss:// server, beside the
    /// system's roots; kept for later syncs.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<std::path::PathBuf>,
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
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Join a workspace another device started.
    Join {
        /// The join string `flowkeep sync init` printed.
        join: String,
        #[arg(long, env = "FLOWKEEP_SYNC_TOKEN", hide_env_values = true)]
        token: String,
        /// The workspace's secret key (`flowkeep secrets key` on a device
        /// that has it), so this device can open `secret` values. It never
        /// goes through the server. `-` reads it from stdin.
        #[arg(long, env = "FLOWKEEP_SECRETS_KEY", hide_env_values = true)]
        secrets_key: Option<String>,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Send local changes, receive other devices', merge; exit when in sync.
    Now {
        /// Trust this CA certificate (PEM) for the wss:// server from now on.
        #[arg(long, value_name = "PEM")]
        ca_file: Option<std::path::PathBuf>,
    },
    /// The workspace's devices as the server knows them (id, name, first
    /// and last seen, revoked).
    Devices,
    /// Server, last sync and pending local changes.
    Status,
    /// Keep syncing in the background until Ctrl-C: reconnects when the
    /// server comes back, sends and merges changes as they happen.
    Watch {
        /// How often to look for local changes, in milliseconds, 20 to
        /// 60000 (other devices' changes wake the watch at once).
        #[arg(long, default_value_t = 50)]
        interval_ms: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum WorkflowCmd {
    Create {
        /// The workflow's name: one line, 1 to 200 characters.
        #[arg(long)]
        name: String,
        /// Free text, at most 10,000 characters.
        #[arg(long)]
        description: Option<String>,
        /// Semantic version of the workflow (default 1.0.0).
        #[arg(long)]
        version: Option<String>,
        /// A tag (repeat for several): 1 to 50 letters, digits or - _ . : /.
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// The config document as JSON, or @FILE to read it from a file.
        #[arg(long, value_name = "JSON|@FILE")]
        config: Option<String>,
    },
    Update {
        id: String,
        /// A new name: one line, 1 to 200 characters.
        #[arg(long)]
        name: Option<String>,
        /// Free text, at most 10,000 characters.
        #[arg(long)]
        description: Option<String>,
        /// Semantic version of the workflow (like 1.2.0).
        #[arg(long)]
        version: Option<String>,
        /// Replace the tags (repeat for several).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Remove all tags.
        #[arg(long, conflicts_with = "tags")]
        clear_tags: bool,
        /// The config document as JSON, or @FILE to read it from a file.
        #[arg(long, value_name = "JSON|@FILE")]
        config: Option<String>,
        /// Fail with a conflict (exit 5) unless the workflow is at this revision.
        #[arg(long)]
        expected_revision: Option<u64>,
    },
    Get {
        id: String,
        /// The workflow as it was at a revision (12), a time
        /// (2026-12-03T10:00:00Z) or the version a run used (run:RUN_ID).
        #[arg(long, value_name = "REV|TIME|run:RUN_ID")]
        at: Option<String>,
    },
    /// What changed between two versions, field by field, old → new.
    Diff {
        id: String,
        /// A revision, a time (RFC 3339) or run:RUN_ID.
        #[arg(value_name = "FROM")]
        from: String,
        /// The same forms; default: the workflow as it is now.
        #[arg(value_name = "TO")]
        to: Option<String>,
    },
    /// Set the workflow back to an earlier version, as one new change.
    Restore {
        id: String,
        /// A revision, a time (RFC 3339) or run:RUN_ID.
        #[arg(long, value_name = "REV|TIME|run:RUN_ID")]
        to: String,
        /// Fail with a conflict (exit 5) unless the workflow is at this revision.
        #[arg(long)]
        expected_revision: Option<u64>,
    },
    /// Write workflows as files: one canonical <name>.flowkeep.yaml each,
    /// to keep in git or copy to another machine.
    Export {
        /// The folder (created if missing).
        #[arg(long)]
        dir: String,
        /// Only workflows whose name or description contains this.
        #[arg(long)]
        search: Option<String>,
        /// Only workflows with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only these workflows (repeatable).
        #[arg(long = "id", value_name = "WF")]
        ids: Vec<String>,
    },
    /// Create or update workflows from files (a folder and/or files). All
    /// files are checked first: one invalid file changes nothing. A field
    /// changed both in a file and here since the last export or import is a
    /// conflict (exit 5) unless --prefer says who wins.
    Import {
        /// Every *.flowkeep.yaml in this folder.
        #[arg(long)]
        dir: Option<String>,
        /// Files to import (beside or instead of --dir).
        files: Vec<String>,
        /// Match files to workflows by id (default) or by name.
        #[arg(long = "match", value_enum, default_value = "id")]
        match_by: MatchArg,
        /// Who wins a field changed on both sides.
        #[arg(long, value_enum)]
        prefer: Option<PreferArg>,
        /// Only print what would be created, updated, or is in conflict.
        #[arg(long)]
        dry_run: bool,
    },
    /// Bring back a deleted workflow, with its history and runs.
    Undelete {
        id: String,
        /// Fail with a conflict (exit 5) unless the workflow is at this revision.
        #[arg(long)]
        expected_revision: Option<u64>,
    },
    Delete {
        id: String,
        /// Fail with a conflict (exit 5) unless the workflow is at this revision.
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
        #[arg(long, value_parser = parse_cursor)]
        cursor: Option<String>,
        /// List deleted workflows (to undelete one).
        #[arg(long)]
        deleted: bool,
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
        /// Show secret values in clear (they show as •••• otherwise).
        #[arg(long)]
        reveal: bool,
    },
    /// Set one value; VALUE is converted to the field's type (5, true, {"a":1}).
    Set {
        workflow: String,
        key: String,
        value: String,
        /// Fail with a conflict (exit 5) unless the workflow is at this revision.
        #[arg(long)]
        expected_revision: Option<u64>,
    },
    /// Remove one value: the field's default applies again (a required
    /// field without one is then invalid, and refused).
    Unset {
        workflow: String,
        key: String,
        /// Fail with a conflict (exit 5) unless the workflow is at this revision.
        #[arg(long)]
        expected_revision: Option<u64>,
    },
    /// Replace the whole config document.
    Update {
        workflow: String,
        /// The config document as JSON, or @FILE to read it from a file.
        #[arg(long, value_name = "JSON|@FILE")]
        config: String,
        /// Fail with a conflict (exit 5) unless the workflow is at this revision.
        #[arg(long)]
        expected_revision: Option<u64>,
    },
    /// Check the stored config, or a proposed one, without saving (exit 3 if invalid).
    Validate {
        workflow: String,
        /// The config document as JSON, or @FILE to read it from a file.
        #[arg(long, value_name = "JSON|@FILE")]
        config: Option<String>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ExecFilterArgs {
    #[arg(long, value_parser = parse_status)]
    pub status: Option<flowkeep_core::run::RunStatus>,
    /// Started at or after: 2026-11-01, 2026-11-01T08:00:00Z, or 7d (ago).
    #[arg(long, value_name = "DATE", value_parser = super::time_arg::in_range)]
    pub since: Option<String>,
    /// Started before: same forms as --since.
    #[arg(long, visible_alias = "before", value_name = "DATE", value_parser = super::time_arg::in_range)]
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
        #[arg(long, value_parser = parse_cursor)]
        cursor: Option<String>,
    },
    Get {
        id: String,
    },
    /// Print a run's output log (on the device that ran it).
    Logs {
        id: String,
        /// Keep printing what the run writes until it ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Delete one run by ID, or every finished run matching the filters
    /// (the count is shown and confirmed first).
    Delete {
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        workflow: Option<String>,
        /// The filters `exec list` takes (`--until` defaults to now).
        #[command(flatten)]
        filter: ExecFilterArgs,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Show or set retention policies (global, or one workflow's).
    Retention {
        #[arg(long)]
        workflow: Option<String>,
        /// Keep runs younger than this: 30d, 12h, 1w.
        #[arg(long, value_name = "DURATION", value_parser = parse_max_age)]
        max_age: Option<String>,
        /// Keep at most this many finished runs per workflow.
        #[arg(long, value_name = "N", value_parser = parse_max_count)]
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
    /// Record how a run ended: succeeded, failed, cancelled or skipped.
    Finish {
        id: String,
        #[arg(long, value_parser = parse_status)]
        status: flowkeep_core::run::RunStatus,
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
        status: Option<flowkeep_core::run::RunStatus>,
        /// Delete finished runs that started before this date instead of applying the policies.
        #[arg(long, visible_alias = "until", value_name = "DATE", value_parser = super::time_arg::in_range)]
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

fn parse_status(s: &str) -> Result<flowkeep_core::run::RunStatus, String> {
    flowkeep_core::run::RunStatus::parse(s).ok_or_else(|| {
        let all: Vec<&str> = flowkeep_core::run::RunStatus::ALL
            .iter()
            .map(|st| st.as_str())
            .collect();
        format!("expected one of {}", all.join(", "))
    })
}

// Values clap cannot use are usage errors (exit 2): a cursor that is not a
// cursor, limits too large to mean anything (they would overflow). Values of
// the right kind that break a rule are the store's to report (exit 3).

fn parse_cursor(s: &str) -> Result<String, String> {
    flowkeep_app::check_cursor(s)
        .map(|()| s.to_owned())
        .map_err(|_| "invalid cursor: not a cursor from a previous page of this listing".to_owned())
}

fn parse_max_count(s: &str) -> Result<u64, String> {
    let max = flowkeep_core::config::RetentionPolicy::MAX_COUNT;
    let too_large = || format!("must be at most {max}");
    let digits = s.trim();
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = digits.parse().map_err(|_| too_large())?;
        return if n > max { Err(too_large()) } else { Ok(n) };
    }
    Err("expected a whole number".to_owned())
}

fn parse_max_age(s: &str) -> Result<String, String> {
    let max = flowkeep_core::config::RetentionPolicy::MAX_AGE_MS;
    match flowkeep_core::config::duration_ms_wide(s) {
        Some(ms) if ms > u128::from(max) => {
            Err("must be at most 365000d (about 1000 years)".to_owned())
        }
        _ => Ok(s.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn overflowing_limits_and_junk_cursors_are_usage_errors() {
        let usage = |args: &[&str]| {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
            err.to_string()
        };
        let err = usage(&[
            "flowkeep",
            "exec",
            "retention",
            "--max-count",
            "18446744073709551615",
        ]);
        assert!(
            err.contains("--max-count") && err.contains("at most"),
            "{err}"
        );
        usage(&[
            "flowkeep",
            "exec",
            "retention",
            "--max-count",
            "99999999999999999999999",
        ]);
        usage(&["flowkeep", "exec", "retention", "--max-age", "20000000000w"]);
        let err = usage(&["flowkeep", "exec", "prune", "--before", "20000000000w"]);
        assert!(
            err.contains("--before") && err.contains("out of range"),
            "{err}"
        );
        usage(&[
            "flowkeep",
            "exec",
            "list",
            "--since",
            "9999999999999999999999",
        ]);
        usage(&[
            "flowkeep",
            "exec",
            "delete",
            "--before",
            "2000000000w",
            "--yes",
        ]);
        for cur in ["ünïcodé", "aüb", "zz", "00"] {
            let err = usage(&["flowkeep", "workflow", "list", "--cursor", cur]);
            assert!(err.contains("invalid cursor"), "{err}");
            usage(&["flowkeep", "exec", "list", "--cursor", cur]);
        }
        // Within range: parsed, and left to the store to judge.
        for args in [
            &["flowkeep", "exec", "retention", "--max-count", "0"][..],
            &[
                "flowkeep",
                "exec",
                "retention",
                "--max-count",
                "1000000000",
                "--max-age",
                "soon",
            ],
            &["flowkeep", "exec", "list", "--since", "someday"],
            &["flowkeep", "exec", "prune", "--before", "7d"],
        ] {
            Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }

    #[test]
    fn non_utf8_arguments_are_usage_errors_not_panics() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;
        for args in [
            ["workflow", "list", "--cursor"],
            ["exec", "list", "--cursor"],
            ["exec", "prune", "--before"],
        ] {
            let mut argv: Vec<OsString> = std::iter::once("flowkeep")
                .chain(args)
                .map(OsString::from)
                .collect();
            argv.push(OsString::from_vec(vec![0xff, 0xfe]));
            let err = Cli::try_parse_from(argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{err}");
        }
    }
}
