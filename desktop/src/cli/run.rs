//! `flowkeep run WF [--set KEY=VALUE]...`: run the workflow's command,
//! stream its output live, record the run.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use flowkeep_app::{OutputStream, RunRequest, Service};
use flowkeep_core::run::RunStatus;

use super::{render, Failure, Rendered};

pub fn run(
    svc: &Service,
    workflow: String,
    set: Vec<String>,
    json: bool,
) -> Result<Option<Rendered>, Failure> {
    let mut overrides = Vec::new();
    for s in &set {
        match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                overrides.push((k.trim().to_owned(), v.to_owned()))
            }
            _ => {
                return Err(Failure::Input(vec![flowkeep_core::FieldError::new(
                    "set",
                    "format",
                    format!("expected KEY=VALUE, got \"{s}\""),
                )]))
            }
        }
    }
    // Ctrl-C and SIGTERM stop the child and record the run as cancelled
    // instead of killing flowkeep with the run left `running`.
    let cancel = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, cancel.clone()).map_err(|e| Failure::Other(e.into()))?;
    }
    // With --json, stdout carries only the result; the child's output goes to stderr.
    let sink = Arc::new(move |stream: OutputStream, chunk: &[u8]| {
        if json || stream == OutputStream::Stderr {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(chunk);
            let _ = e.flush();
        } else {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(chunk);
            let _ = o.flush();
        }
    });
    let req = RunRequest {
        occurrence: None,
        workflow_id: workflow,
        overrides,
        trigger: "cli".to_owned(),
        on_start: None,
    };
    let execution = svc.runs().run(req, &cancel, sink)?;
    let exit = match execution.status {
        RunStatus::Succeeded => 0,
        RunStatus::Cancelled => 130,
        _ => 1,
    };
    if !json {
        eprint!("{}", super::printable(&render::run_summary(&execution)));
    }
    Ok(Some(Rendered {
        json: serde_json::to_value(&execution).map_err(|e| Failure::Other(e.into()))?,
        text: String::new(),
        exit,
    }))
}
