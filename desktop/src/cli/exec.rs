//! `flowkeep exec …`: the history of runs.

use std::io::{BufWriter, IsTerminal, Write};

use flowkeep_app::commands::*;
use flowkeep_app::{call, Service};
use flowkeep_core::commands::*;

use super::args::{ExecCmd, ExecFilterArgs, FormatArg};
use serde_json::Value;

use super::{done, input_error, json_arg, render, time_arg, Failure, Out, Rendered};

fn filter(
    svc_now: i64,
    workflow_id: Option<String>,
    f: ExecFilterArgs,
) -> Result<RunFilter, Failure> {
    Ok(RunFilter {
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

pub(super) fn exec(svc: &Service, c: ExecCmd, json: bool) -> Out {
    match c {
        ExecCmd::List {
            workflow,
            filter: f,
            limit,
            cursor,
        } => {
            let filter = filter(now_ms(), workflow, f)?;
            let page = call::<ListRunsCmd>(
                svc,
                ListRuns {
                    filter,
                    limit: Some(limit),
                    cursor,
                },
            )?;
            done(&page, render::run_list(&page))
        }
        ExecCmd::Get { id } => {
            let e = call::<GetRunCmd>(svc, RunId { id })?;
            done(&e, render::run(&e))
        }
        ExecCmd::Logs { id, follow } => logs(svc, id, follow, json),
        ExecCmd::Delete {
            id: Some(id),
            workflow,
            filter: f,
            ..
        } => {
            if workflow.is_some() || f.status.is_some() || f.since.is_some() || f.until.is_some() {
                return Err(input_error(
                    "id",
                    "conflict",
                    "give a run ID or filters (--workflow, --status, --since, --until), not both",
                ));
            }
            let d = call::<DeleteRunCmd>(svc, RunId { id })?;
            done(&d, format!("Deleted run {}.\n", d.id))
        }
        ExecCmd::Delete {
            id: None,
            workflow,
            filter: f,
            yes,
        } => delete_matching(svc, workflow, f, yes, json),
        ExecCmd::Start {
            workflow,
            trigger,
            queued,
        } => {
            let status = queued.then_some(flowkeep_core::run::RunStatus::Queued);
            let trigger = Some(trigger.unwrap_or_else(|| "cli".to_owned()));
            let e = call::<StartRunCmd>(
                svc,
                StartRun {
                    workflow_id: workflow,
                    status,
                    trigger,
                },
            )?;
            done(&e, format!("Started run {}\n{}", e.id, render::run(&e)))
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
            let e = call::<FinishRunCmd>(
                svc,
                FinishRun {
                    id,
                    status,
                    exit_code,
                    output,
                    error,
                },
            )?;
            done(&e, render::run(&e))
        }
        ExecCmd::Import { file } => {
            let executions = read_runs(&file)?;
            // One transaction: all of the file or nothing, also on Ctrl-C.
            let what = format!("recording {} run(s)", executions.len());
            let bar = super::progress::Progress::working(json, &what);
            let report = call::<ImportRunsCmd>(svc, ImportRuns { runs: executions });
            bar.finish();
            let report = report?;
            let text = format!("imported {} run(s)\n", report.imported);
            done(&report, text)
        }
        ExecCmd::Prune {
            workflow,
            status,
            before: Some(before),
        } => prune_before(svc, workflow, status, &before, json),
        ExecCmd::Prune {
            workflow,
            before: None,
            ..
        } => apply_retention(svc, workflow, json),
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

/// `exec delete` without an id: every finished run the filter matches,
/// after showing the count and asking.
fn delete_matching(
    svc: &Service,
    workflow: Option<String>,
    f: ExecFilterArgs,
    yes: bool,
    json: bool,
) -> Out {
    if workflow.is_none() && f.status.is_none() && f.since.is_none() && f.until.is_none() {
        return Err(input_error(
            "id",
            "required",
            "give a run ID, or at least one of --workflow, --status, --since, --until",
        ));
    }
    let now = now_ms();
    let mut prune = filter(now, workflow, f)?;
    prune.until = prune.until.or(Some(now + 1));
    bulk_delete(svc, prune, yes, json)
}

/// `exec prune --before DATE`: finished runs that started before it.
fn prune_before(
    svc: &Service,
    workflow: Option<String>,
    status: Option<flowkeep_core::run::RunStatus>,
    before: &str,
    json: bool,
) -> Out {
    let before = time_arg::parse("before", before, now_ms())?;
    let input = RunFilter {
        workflow_id: workflow,
        status,
        until: Some(before),
        ..Default::default()
    };
    let expected = svc.runs().prune_preview(&input)?;
    let r = prune_in_batches(svc, input, expected, json)?;
    let text = format!(
        "Deleted {} finished run(s) that started before {}.\n",
        r.deleted,
        time_arg::show(before)
    );
    done(&r, text)
}

/// `exec prune` without `--before`: what the retention policies say.
fn apply_retention(svc: &Service, workflow: Option<String>, json: bool) -> Out {
    let stop = super::progress::stop_on_signal()?;
    let bar = super::progress::Progress::new(json, 0, "retention: deleting runs");
    let r = svc.settings().apply_retention_with(
        ApplyRetention {
            workflow_id: workflow,
        },
        &stop,
        &mut |n| bar.set(n),
    );
    bar.finish();
    let r = r?;
    let settings = call::<GetSettingsCmd>(svc, GetSettings {})?;
    let mut text = format!("Retention deleted {} finished run(s).\n", r.deleted);
    if r.deleted == 0 && settings.retention.is_empty() {
        text.push_str("No global retention policy is set: `flowkeep exec retention --max-age 90d` sets one.\n");
    }
    done(&r, text)
}

fn export(
    svc: &Service,
    filter: &RunFilter,
    format: ExportFormat,
    out: Option<std::path::PathBuf>,
    json: bool,
) -> Out {
    let Some(path) = out else {
        let stdout = std::io::stdout();
        // CSV keeps text as it is (JSON escapes it): on a terminal it is
        // shown escaped, like every answer.
        if format == ExportFormat::Csv && stdout.is_terminal() {
            let mut csv = Vec::new();
            svc.runs()
                .export(filter, format, &mut csv, &mut |_| Ok(()))?;
            let text = String::from_utf8_lossy(&csv);
            let mut w = stdout.lock();
            w.write_all(super::printable(&text).as_bytes())?;
            w.flush()?;
            return Ok(None);
        }
        let mut w = BufWriter::new(stdout.lock());
        svc.runs().export(filter, format, &mut w, &mut |_| Ok(()))?;
        w.flush()?;
        return Ok(None);
    };
    let total = if json || !std::io::stderr().is_terminal() {
        0
    } else {
        svc.runs().count(filter.clone())?.count
    };
    let bar = super::progress::Progress::new(json, total, "exporting runs");
    // Written to `<out>.partial` and renamed at the end, see the store.
    let stop = super::progress::stop_on_signal()?;
    let result = svc
        .runs()
        .export_to_file(filter, format, &path, &stop, &mut |n| bar.set(n));
    bar.finish();
    let n = result?;
    done(
        &serde_json::json!({"exported": n, "out": path}),
        format!("Exported {n} run(s) to {}.\n", path.display()),
    )
}

/// Shows what a filtered delete will remove, asks (unless `--yes`), deletes.
fn bulk_delete(svc: &Service, prune: RunFilter, yes: bool, json: bool) -> Out {
    let n = svc.runs().prune_preview(&prune)?;
    if n == 0 {
        return done(
            &PruneReport { deleted: 0 },
            "No finished runs match; nothing deleted.\n".to_owned(),
        );
    }
    if !yes {
        let interactive =
            !json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if !interactive {
            return Err(input_error(
                "yes",
                "required",
                &format!("{n} run(s) match; pass --yes to delete them without a prompt"),
            ));
        }
        eprint!("{n} finished run(s) will be deleted. Delete them? [y/N] ");
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
    let r = prune_in_batches(svc, prune, n, json)?;
    done(&r, format!("Deleted {} run(s).\n", r.deleted))
}

/// A prune in bounded batches with a progress bar; Ctrl-C stops it after
/// the current batch, keeping what was deleted.
fn prune_in_batches(
    svc: &Service,
    prune: RunFilter,
    expected: u64,
    json: bool,
) -> Result<PruneReport, Failure> {
    let stop = super::progress::stop_on_signal()?;
    let bar = super::progress::Progress::new(json, expected, "deleting runs");
    let r = svc.runs().prune_with(prune, &stop, &mut |n| bar.set(n));
    bar.finish();
    Ok(r?)
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
/// cannot be read is named by its position (`runs[3]`, `line 4`).
fn read_runs(path: &std::path::Path) -> Result<Vec<ImportedRun>, Failure> {
    let text = if path == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string())
    } else {
        super::read_regular_file(path, None)
    }
    .map_err(|why| {
        Failure::Input(vec![flowkeep_core::FieldError::new(
            "file",
            "file",
            format!("cannot read {}: {why}", path.display()),
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
            .map(|(i, v)| serde_json::from_value(v).map_err(|e| bad(format!("runs[{i}]"), e)))
            .collect()
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| bad(format!("line {}", i + 1), e)))
            .collect()
    }
}

/// `exec logs`: the log as it is now (or, with `--follow`, as it is written
/// until the run ends) on stdout. With `--json`, the log as it is now, in
/// one `get_run_output` answer.
fn logs(svc: &Service, id: String, follow: bool, json: bool) -> Out {
    let read = |from: u64, limit: Option<u32>| {
        call::<GetRunOutputCmd>(
            svc,
            GetRunOutput {
                id: id.clone(),
                from: Some(from),
                limit,
            },
        )
    };
    if json {
        let all = read(0, Some(1_048_576))?;
        return done(&all, String::new());
    }
    let mut out = std::io::stdout().lock();
    let mut from = 0;
    loop {
        let piece = read(from, None)?;
        if piece.cut {
            eprintln!(
                "[the output grew too long: its middle is cut; the end follows when the run ends]"
            );
        }
        out.write_all(piece.text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Failure::Other(e.into()))?;
        from = piece.next;
        // Without --follow: what is there now, and no more (a log that
        // ends inside a character holds that back until the rest comes).
        if piece.finished || (!follow && (piece.next >= piece.size || piece.text.is_empty())) {
            return Ok(None);
        }
        if piece.text.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }
}
