//! The command line: clap arguments (`args.rs`), one handler file per
//! command group that builds the typed input, calls the command table and
//! renders the result (`workflow.rs`, `exec.rs`, `sync.rs`, `run.rs`,
//! `call.rs`), and the human output (`render.rs`).

pub mod agent;
mod args;
mod call;
mod exec;
mod output;
mod progress;
pub mod render;
mod run;
mod schedule;
mod sync;
mod time_arg;
mod workflow;

pub use args::{Cli, Command};
pub use output::{printable, Failure, Rendered};

use flowkeep_app::commands::*;
use flowkeep_app::{call, Service};
use flowkeep_core::commands::*;
use serde::Serialize;
use serde_json::Value;

pub(crate) type Out = Result<Option<Rendered>, Failure>;

pub(crate) fn done<T: Serialize>(value: &T, text: String) -> Out {
    Ok(Some(Rendered::ok(
        serde_json::to_value(value).map_err(|e| Failure::Other(e.into()))?,
        text,
    )))
}

/// Runs one CLI command (not `ui` or `app`, which `main` serves itself).
pub fn handle(svc: &Service, command: Command, json: bool) -> Out {
    match command {
        Command::Workflow(c) => workflow::workflow(svc, c),
        Command::Config(c) => workflow::config(svc, c),
        Command::Exec(c) => exec::exec(svc, c, json),
        Command::History { workflow } => {
            let h = call::<WorkflowHistoryCmd>(
                svc,
                WorkflowHistory {
                    workflow_id: workflow,
                },
            )?;
            done(&h, render::history(&h))
        }
        Command::Run { workflow, set } => run::run(svc, workflow, set, json),
        Command::Ui { .. } | Command::App => unreachable!("main runs `ui` and `app` itself"),
        Command::Sync(c) => sync::sync(svc, c, json),
        Command::Schedule(c) => schedule::schedule(svc, c),
        Command::Secrets(c) => match c {
            args::SecretsCmd::Rotate => {
                let r = call::<RotateSecretsCmd>(svc, RotateSecrets {})?;
                done(
                    &r,
                    format!(
                        "Secrets sealed again under key {} ({} value(s) in {} workflow(s)). Devices that sync need this key: `flowkeep secrets key` here, `flowkeep secrets key --add KEY` there.\n",
                        r.key_id, r.values, r.workflows
                    ),
                )
            }
            args::SecretsCmd::Key { add } => {
                let adding = add.is_some();
                let add = add.map(|k| key_arg("--add", k)).transpose()?;
                let r = call::<SecretKeyCmd>(
                    svc,
                    SecretKey {
                        key: add,
                        ..Default::default()
                    },
                )?;
                let kept = r.kept_in.clone().unwrap_or_else(|| "memory".into());
                let text = if adding {
                    format!(
                        "Added key {}; it seals from now on (kept in {kept}).\n",
                        r.key_id.clone().unwrap_or_default()
                    )
                } else {
                    format!(
                        "{}\nThis is the key that seals secrets (id {}, kept in {kept}). Keep it private; on a device that joins: flowkeep sync join ... --secrets-key <KEY>, or flowkeep secrets key --add <KEY>\n",
                        r.key.clone().unwrap_or_default(),
                        r.key_id.clone().unwrap_or_default()
                    )
                };
                done(&r, text)
            }
        },
        Command::Agent { .. } => unreachable!("main runs `agent` itself"),
        Command::Call {
            command,
            input,
            list,
        } => call::call(svc, command.as_deref(), input.as_deref(), list),
        Command::RebuildProjections => {
            let bar = progress::Progress::new(json, svc.event_count()?, "replaying events");
            let n = svc.rebuild_projections_with(&mut |n, _| bar.set(n))?;
            bar.finish();
            done(
                &serde_json::json!({"replayed_events": n}),
                format!("Rebuilt the read tables from {n} events.\n"),
            )
        }
    }
}

/// Most an @FILE argument may hold.
const MAX_ARG_FILE_BYTES: u64 = 64 << 20;

/// A regular file's text, at most `max` bytes when given, or why not in a
/// few words.
pub(crate) fn read_regular_file(
    path: &std::path::Path,
    max: Option<u64>,
) -> Result<String, String> {
    use flowkeep_app::files::{read_regular, Unreadable};
    read_regular(path, max).map_err(|why| match why {
        Unreadable::Io(e) => e.to_string(),
        Unreadable::NotRegular => "not a regular file".into(),
        Unreadable::TooLarge(_) => format!("larger than {} MiB", max.unwrap_or(u64::MAX) >> 20),
    })
}

/// A secrets key given as an argument, or read from stdin when given as
/// `-`: an argument is visible to every user of the machine in the process
/// list while the command runs, a pipe is not.
pub(crate) fn key_arg(field: &str, given: String) -> Result<String, Failure> {
    if given != "-" {
        return Ok(given);
    }
    use std::io::{BufRead, Read};
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(4096)
        .read_line(&mut line)
        .map_err(|e| {
            input_error(
                field,
                "stdin",
                &format!("cannot read the key from stdin: {e}"),
            )
        })?;
    let key = line.trim();
    if key.is_empty() {
        return Err(input_error(
            field,
            "required",
            "no key on stdin (- reads one line)",
        ));
    }
    Ok(key.to_owned())
}

pub(crate) fn input_error(field: &str, code: &str, message: &str) -> Failure {
    Failure::Input(vec![flowkeep_core::FieldError::new(field, code, message)])
}

/// A JSON argument given inline or as @FILE; malformed JSON names the flag.
pub(crate) fn json_arg(field: &str, raw: &str) -> Result<Value, Failure> {
    let text = match raw.strip_prefix('@') {
        Some(path) => read_regular_file(std::path::Path::new(path), Some(MAX_ARG_FILE_BYTES))
            .map_err(|why| input_error(field, "file", &format!("cannot read {path}: {why}")))?,
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
