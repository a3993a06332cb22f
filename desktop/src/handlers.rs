//! Each subcommand: build the typed input, call the command table, render.

use std::io::{BufWriter, IsTerminal, Write};

use flowkeep_core::commands::*;
use flowkeep_store::commands::*;
use flowkeep_store::{call, Service};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{Command, ConfigCmd, ExecCmd, ExecFilterArgs, FormatArg, SortArg, WorkflowCmd};
use crate::{render, time_arg, Failure, Rendered};

type Out = Result<Option<Rendered>, Failure>;

fn done<T: Serialize>(value: &T, text: String) -> Out {
    Ok(Some(Rendered::ok(
        serde_json::to_value(value).map_err(|e| Failure::Other(e.into()))?,
        text,
    )))
}

pub fn handle(svc: &Service, command: Command, json: bool) -> Out {
    match command {
        Command::Workflow(c) => workflow(svc, c),
        Command::Config(c) => config(svc, c),
        Command::Exec(c) => exec(svc, c, json),
        Command::History { workflow } => {
            let h = call::<WorkflowHistoryCmd>(
                svc,
                WorkflowHistory {
                    workflow_id: workflow,
                },
            )?;
            done(&h, render::history(&h))
        }
        Command::Run { workflow, set } => crate::run_cmd::run(svc, workflow, set, json),
        Command::Ui { .. } | Command::App => unreachable!("main runs `ui` and `app` itself"),
        Command::Sync(c) => sync(svc, c, json),
        Command::RebuildProjections => {
            let n = svc.rebuild_projections()?;
            done(
                &serde_json::json!({"replayed_events": n}),
                format!("Rebuilt the read tables from {n} events.\n"),
            )
        }
    }
}

fn workflow(svc: &Service, c: WorkflowCmd) -> Out {
    match c {
        WorkflowCmd::Create {
            name,
            description,
            version,
            tags,
            config,
        } => {
            let config = config
                .as_deref()
                .map(|c| json_arg("config", c))
                .transpose()?;
            let wf = call::<CreateWorkflowCmd>(
                svc,
                CreateWorkflow {
                    name,
                    description,
                    version,
                    tags,
                    config,
                },
            )?;
            done(
                &wf,
                format!("Created workflow {}\n{}", wf.id, render::workflow(&wf)),
            )
        }
        WorkflowCmd::Update {
            id,
            name,
            description,
            version,
            tags,
            clear_tags,
            config,
            expected_revision,
        } => {
            let config = config
                .as_deref()
                .map(|c| json_arg("config", c))
                .transpose()?;
            let tags = if clear_tags {
                Some(vec![])
            } else if tags.is_empty() {
                None
            } else {
                Some(tags)
            };
            let input = UpdateWorkflow {
                id,
                expected_revision,
                name,
                description,
                version,
                tags,
                config,
            };
            let wf = call::<UpdateWorkflowCmd>(svc, input)?;
            done(&wf, render::workflow(&wf))
        }
        WorkflowCmd::Get { id } => {
            let wf = call::<GetWorkflowCmd>(svc, WorkflowId { id })?;
            done(&wf, render::workflow(&wf))
        }
        WorkflowCmd::Delete {
            id,
            expected_revision,
        } => {
            let d = call::<DeleteWorkflowCmd>(
                svc,
                DeleteWorkflow {
                    id,
                    expected_revision,
                },
            )?;
            done(
                &d,
                format!("Deleted workflow {} (its history is kept).\n", d.id),
            )
        }
        WorkflowCmd::Approve {
            id,
            expected_revision,
        } => {
            let before = call::<GetWorkflowCmd>(svc, WorkflowId { id: id.clone() })?;
            let wf = call::<ApproveWorkflowCmd>(
                svc,
                ApproveWorkflow {
                    id,
                    expected_revision,
                },
            )?;
            let text = if before.approval.approved {
                format!("Workflow {} was already approved on this device.\n", wf.id)
            } else {
                format!(
                    "Approved on this device: what workflow {} runs now.\n{}",
                    wf.id,
                    render::workflow(&wf)
                )
            };
            done(&wf, text)
        }
        WorkflowCmd::Duplicate { id, name } => {
            let wf = call::<DuplicateWorkflowCmd>(svc, DuplicateWorkflow { id, name })?;
            done(
                &wf,
                format!("Created workflow {}\n{}", wf.id, render::workflow(&wf)),
            )
        }
        WorkflowCmd::List {
            search,
            tag,
            sort,
            desc,
            limit,
            cursor,
        } => {
            let sort = match sort {
                SortArg::Name => WorkflowSort::Name,
                SortArg::Created => WorkflowSort::Created,
                SortArg::Updated => WorkflowSort::Updated,
            };
            let page = call::<ListWorkflowsCmd>(
                svc,
                ListWorkflows {
                    search,
                    tag,
                    sort,
                    desc,
                    limit: Some(limit),
                    cursor,
                },
            )?;
            done(&page, render::workflow_list(&page))
        }
    }
}

fn config(svc: &Service, c: ConfigCmd) -> Out {
    match c {
        ConfigCmd::Get { workflow } => {
            let c = call::<GetConfigCmd>(
                svc,
                GetConfig {
                    workflow_id: workflow,
                },
            )?;
            done(&c, render::config(&c))
        }
        ConfigCmd::Set {
            workflow,
            key,
            value,
            expected_revision,
        } => {
            let input = SetConfigValue {
                workflow_id: workflow,
                key,
                value: Value::String(value),
                expected_revision,
            };
            let c = call::<SetConfigValueCmd>(svc, input)?;
            done(&c, render::config(&c))
        }
        ConfigCmd::Update {
            workflow,
            config,
            expected_revision,
        } => {
            let config = json_arg("config", &config)?;
            let c = call::<UpdateConfigCmd>(
                svc,
                UpdateConfig {
                    workflow_id: workflow,
                    config,
                    expected_revision,
                },
            )?;
            done(&c, render::config(&c))
        }
        ConfigCmd::Validate { workflow, config } => {
            let config = config
                .as_deref()
                .map(|c| json_arg("config", c))
                .transpose()?;
            let report = call::<ValidateConfigCmd>(
                svc,
                ValidateConfig {
                    workflow_id: workflow,
                    config,
                },
            )?;
            let mut out = Rendered::ok(
                serde_json::to_value(&report).expect("report"),
                render::validation(&report),
            );
            if !report.valid {
                out.exit = flowkeep_core::ErrorCode::ValidationFailed.exit_code() as u8;
            }
            Ok(Some(out))
        }
    }
}

fn filter(
    svc_now: i64,
    workflow_id: Option<String>,
    f: ExecFilterArgs,
) -> Result<ExecutionFilter, Failure> {
    Ok(ExecutionFilter {
        workflow_id,
        status: f.status,
        since: f
            .since
            .as_deref()
            .map(|s| time_arg::parse("since", s, svc_now))
            .transpose()?,
        until: f
            .until
            .as_deref()
            .map(|s| time_arg::parse("until", s, svc_now))
            .transpose()?,
    })
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn exec(svc: &Service, c: ExecCmd, json: bool) -> Out {
    match c {
        ExecCmd::List {
            workflow,
            filter: f,
            limit,
            cursor,
        } => {
            let filter = filter(now_ms(), workflow, f)?;
            let page = call::<GetExecutionsCmd>(
                svc,
                GetExecutions {
                    filter,
                    limit: Some(limit),
                    cursor,
                },
            )?;
            done(&page, render::execution_list(&page))
        }
        ExecCmd::Get { id } => {
            let e = call::<GetExecutionCmd>(svc, ExecutionId { id })?;
            done(&e, render::execution(&e))
        }
        ExecCmd::Delete { id: Some(id), .. } => {
            let d = call::<DeleteExecutionCmd>(svc, ExecutionId { id })?;
            done(&d, format!("Deleted execution {}.\n", d.id))
        }
        ExecCmd::Delete {
            id: None,
            workflow,
            status,
            since,
            before,
            yes,
        } => {
            if workflow.is_none() && status.is_none() && since.is_none() && before.is_none() {
                return Err(input_error(
                    "id",
                    "required",
                    "give an execution ID, or at least one of --workflow, --status, --since, --before",
                ));
            }
            let now = now_ms();
            let prune = PruneExecutions {
                workflow_id: workflow,
                status,
                since: since
                    .as_deref()
                    .map(|s| time_arg::parse("since", s, now))
                    .transpose()?,
                before: before
                    .as_deref()
                    .map(|s| time_arg::parse("before", s, now))
                    .transpose()?
                    .unwrap_or(now + 1),
            };
            bulk_delete(svc, prune, yes, json)
        }
        ExecCmd::Start {
            workflow,
            trigger,
            queued,
        } => {
            let status = queued.then_some(flowkeep_core::execution::ExecutionStatus::Queued);
            let trigger = Some(trigger.unwrap_or_else(|| "cli".to_owned()));
            let e = call::<StartExecutionCmd>(
                svc,
                StartExecution {
                    workflow_id: workflow,
                    status,
                    trigger,
                },
            )?;
            done(
                &e,
                format!("Started execution {}\n{}", e.id, render::execution(&e)),
            )
        }
        ExecCmd::Finish {
            id,
            status,
            exit_code,
            output,
            error,
        } => {
            let output = output
                .as_deref()
                .map(|o| json_arg("output", o))
                .transpose()?;
            let e = call::<FinishExecutionCmd>(
                svc,
                FinishExecution {
                    id,
                    status,
                    exit_code,
                    output,
                    error,
                },
            )?;
            done(&e, render::execution(&e))
        }
        ExecCmd::Import { file } => {
            let executions = read_runs(&file)?;
            let report = call::<ImportExecutionsCmd>(svc, ImportExecutions { executions })?;
            let text = format!("imported {} run(s)\n", report.imported);
            done(&report, text)
        }
        ExecCmd::Prune {
            workflow,
            status,
            before: Some(before),
        } => {
            let before = time_arg::parse("before", &before, now_ms())?;
            let input = PruneExecutions {
                workflow_id: workflow,
                status,
                since: None,
                before,
            };
            let r = call::<PruneExecutionsCmd>(svc, input)?;
            let text = format!(
                "Deleted {} finished execution(s) that started before {}.\n",
                r.deleted,
                time_arg::show(before)
            );
            done(&r, text)
        }
        ExecCmd::Prune {
            workflow,
            before: None,
            ..
        } => {
            let r = call::<ApplyRetentionCmd>(
                svc,
                ApplyRetention {
                    workflow_id: workflow,
                },
            )?;
            let settings = call::<GetSettingsCmd>(svc, GetSettings {})?;
            let mut text = format!("Retention deleted {} finished execution(s).\n", r.deleted);
            if r.deleted == 0 && settings.retention.is_empty() {
                text.push_str("No global retention policy is set: `flowkeep exec retention --max-age 90d` sets one.\n");
            }
            done(&r, text)
        }
        ExecCmd::Retention {
            workflow,
            max_age,
            max_count,
            clear,
        } => retention(svc, workflow, max_age, max_count, clear),
        ExecCmd::Export {
            workflow,
            filter: f,
            format,
            out,
        } => {
            let filter = filter(now_ms(), workflow, f)?;
            let format = match format {
                FormatArg::Json => ExportFormat::Json,
                FormatArg::Ndjson => ExportFormat::Ndjson,
                FormatArg::Csv => ExportFormat::Csv,
            };
            export(svc, &filter, format, out, json)
        }
    }
}

fn export(
    svc: &Service,
    filter: &ExecutionFilter,
    format: ExportFormat,
    out: Option<std::path::PathBuf>,
    json: bool,
) -> Out {
    let Some(path) = out else {
        let stdout = std::io::stdout();
        let mut w = BufWriter::new(stdout.lock());
        svc.export_executions(filter, format, &mut w, &mut |_| {})?;
        w.flush()?;
        return Ok(None);
    };
    let show_progress = !json && std::io::stderr().is_terminal();
    let total = if show_progress {
        svc.count_executions(filter)?
    } else {
        0
    };
    let mut progress = |n: u64| {
        if show_progress {
            let pct = (n * 100).checked_div(total).unwrap_or(100);
            eprint!("\rexporting {n}/{total} ({pct}%)");
        }
    };
    // Written to `<out>.partial` and renamed at the end, see the store.
    let result = svc.export_executions_to_file(filter, format, &path, &mut progress);
    if show_progress {
        eprintln!();
    }
    let n = result?;
    done(
        &serde_json::json!({"exported": n, "out": path}),
        format!("Exported {n} execution(s) to {}.\n", path.display()),
    )
}

fn sync(svc: &Service, c: crate::cli::SyncCmd, json: bool) -> Out {
    use crate::cli::SyncCmd;
    let summary = |r: &flowkeep_store::SyncReport| {
        format!(
            "Synced with {}: sent {} workflow(s), merged {} from other devices ({} documents).\n",
            r.server, r.pushed, r.merged, r.documents
        )
    };
    match c {
        SyncCmd::Init { server, token } => {
            let r = svc.sync_init(&server, &token)?;
            let text = format!(
                "{}On your other devices, with the same token:\n  flowkeep sync join JOIN --token TOKEN\nJoin string:\n{}\n",
                summary(&r),
                r.join
            );
            done(&r, text)
        }
        SyncCmd::Join { join, token } => {
            let r = svc.sync_join(&join, &token)?;
            done(&r, summary(&r))
        }
        SyncCmd::Now => {
            let r = svc.sync_now()?;
            done(&r, summary(&r))
        }
        SyncCmd::Watch { interval_ms } => {
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(sig, stop.clone())
                    .map_err(|e| Failure::Other(e.into()))?;
            }
            eprintln!("flowkeep: syncing until Ctrl-C");
            svc.sync_watch(
                &stop,
                std::time::Duration::from_millis(interval_ms.max(20)),
                |r| {
                    let line = if json {
                        serde_json::to_string(r).unwrap_or_default()
                    } else {
                        format!(
                            "{} sent {}, merged {}",
                            time_arg::show(chrono::Utc::now().timestamp_millis()),
                            r.pushed,
                            r.merged
                        )
                    };
                    println!("{line}");
                },
            )?;
            Ok(None)
        }
        SyncCmd::Status => {
            let s = svc.sync_status()?;
            done(&s, render::sync_status(&s))
        }
    }
}

fn input_error(field: &str, code: &str, message: &str) -> Failure {
    Failure::Input(vec![flowkeep_core::FieldError::new(field, code, message)])
}

/// Shows what a filtered delete will remove, asks (unless `--yes`), deletes.
fn bulk_delete(svc: &Service, prune: PruneExecutions, yes: bool, json: bool) -> Out {
    let n = svc.prune_preview(&prune)?;
    if n == 0 {
        return done(
            &PruneReport { deleted: 0 },
            "No finished executions match; nothing deleted.\n".to_owned(),
        );
    }
    if !yes {
        let interactive =
            !json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if !interactive {
            return Err(input_error(
                "yes",
                "required",
                &format!("{n} execution(s) match; pass --yes to delete them without a prompt"),
            ));
        }
        eprint!("{n} finished execution(s) will be deleted. Delete them? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("Nothing deleted.");
            return Ok(Some(Rendered {
                json: serde_json::json!({"deleted": 0}),
                text: String::new(),
                exit: 1,
            }));
        }
    }
    let r = call::<PruneExecutionsCmd>(svc, prune)?;
    done(&r, format!("Deleted {} execution(s).\n", r.deleted))
}

fn retention(
    svc: &Service,
    workflow: Option<String>,
    max_age: Option<String>,
    max_count: Option<u64>,
    clear: bool,
) -> Out {
    use flowkeep_core::config::RetentionPolicy;
    let show = |p: &RetentionPolicy| -> String {
        match (&p.max_age, p.max_count) {
            (None, None) => "none".to_owned(),
            (Some(a), None) => format!("keep runs younger than {a}"),
            (None, Some(c)) => format!("keep the newest {c} runs"),
            (Some(a), Some(c)) => format!("keep runs younger than {a}, at most {c}"),
        }
    };
    if clear || max_age.is_some() || max_count.is_some() {
        let policy = RetentionPolicy { max_age, max_count };
        call::<SetRetentionCmd>(
            svc,
            SetRetention {
                workflow_id: workflow.clone(),
                policy,
            },
        )?;
    }
    let settings = call::<GetSettingsCmd>(svc, GetSettings {})?;
    let mut text = format!("global retention: {}\n", show(&settings.retention));
    let mut value = serde_json::json!({"global": settings.retention});
    if let Some(id) = workflow {
        let own = call::<GetConfigCmd>(
            svc,
            GetConfig {
                workflow_id: id.clone(),
            },
        )?
        .config
        .retention;
        text.push_str(&format!(
            "workflow {id}: {}\n",
            own.as_ref()
                .map(show)
                .unwrap_or_else(|| "none (the global policy applies)".to_owned())
        ));
        value["workflow"] = serde_json::to_value(own).unwrap_or_default();
    }
    Ok(Some(Rendered::ok(value, text)))
}

/// Runs to import from a JSON array or NDJSON file (`-`: stdin). A run that
/// cannot be read is named by its position (`executions[3]`, `line 4`).
fn read_runs(path: &std::path::Path) -> Result<Vec<ImportedExecution>, Failure> {
    let text = if path == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| {
        Failure::Input(vec![flowkeep_core::FieldError::new(
            "file",
            "file",
            format!("cannot read {}: {e}", path.display()),
        )])
    })?;
    let bad = |at: String, e: serde_json::Error| {
        Failure::Input(vec![flowkeep_core::FieldError::new(
            at.clone(),
            "json",
            format!("{at}: {e}"),
        )])
    };
    if text.trim_start().starts_with('[') {
        let items: Vec<Value> =
            serde_json::from_str(&text).map_err(|e| bad("file".to_owned(), e))?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, v)| serde_json::from_value(v).map_err(|e| bad(format!("executions[{i}]"), e)))
            .collect()
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| bad(format!("line {}", i + 1), e)))
            .collect()
    }
}

/// A JSON argument given inline or as @FILE; malformed JSON names the flag.
fn json_arg(field: &str, raw: &str) -> Result<Value, Failure> {
    let text = match raw.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            Failure::Input(vec![flowkeep_core::FieldError::new(
                field,
                "file",
                format!("cannot read {path}: {e}"),
            )])
        })?,
        None => raw.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| {
        Failure::Input(vec![flowkeep_core::FieldError::new(
            field,
            "json",
            format!("malformed JSON: {e}"),
        )])
    })
}
