//! `run_workflow`: run a workflow's command with its configuration and
//! record what happened, like a local job runner. Also the recovery of runs
//! whose supervising process died.

mod child;
mod launch;
mod output;
mod rundir;
mod tail;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use flowkeep_core::commands::{ApplyRetention, FinishRun, StartRun};
use flowkeep_core::run::{Run, RunStatus};
use flowkeep_core::FieldError;
use serde_json::{json, Value};

use crate::{Error, Result, RunService};
use flowkeep_store::queries;

/// Which of the child's output streams a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Receives the child's output as it arrives, from the threads that read it.
pub type OutputSink = Arc<dyn Fn(OutputStream, &[u8]) + Send + Sync>;

/// See `RunRequest::on_start`.
pub type OnStart = Box<dyn FnOnce(&Run) + Send>;

pub struct RunRequest {
    pub workflow_id: String,
    /// `KEY=VALUE` overrides, converted to each field's type.
    pub overrides: Vec<(String, String)>,
    pub trigger: String,
    /// Called once the run is recorded as started, before the command runs
    /// (so a caller that does not wait for the end can answer with its id).
    pub on_start: Option<OnStart>,
    /// The schedule's occurrence this run is for (see
    /// `RunService::start_occurrence`).
    pub occurrence: Option<i64>,
}

impl RunService<'_> {
    /// Validates the config with the overrides, records `execution.started`,
    /// runs the command (config values as JSON on stdin and in the file
    /// named by `FLOWKEEP_CONFIG`), passes output to `sink` as it arrives,
    /// and records `execution.finished`. An invalid config refuses to run
    /// and records nothing. Setting `cancel` stops the run (`cancelled`).
    pub fn run(&self, req: RunRequest, cancel: &AtomicBool, sink: OutputSink) -> Result<Run> {
        let Some(runs) = self.runs_dir().map(|p| p.to_owned()) else {
            return Err(Error::invalid(
                "run",
                "unavailable",
                "running needs a database on disk",
            ));
        };
        let wf = self.read(|c| {
            let wf = queries::workflows::get(c, &req.workflow_id)?;
            // Before the config is checked: an unapproved command is the
            // first thing the user must know about.
            crate::service::ensure_approved(c, &wf)?;
            Ok(wf)
        })?;
        let mut config = wf.spec.config.clone();
        let mut problems = Vec::new();
        for (key, raw) in &req.overrides {
            match config.field(key) {
                // `••••` for a secret means the value it has, as when a
                // config is saved: nothing to override (and not a password
                // of four dots that no rule would check).
                Some(field)
                    if field.kind == flowkeep_core::config::ConfigType::Secret
                        && raw == flowkeep_core::secret::MASK => {}
                Some(field) => {
                    let v = field.coerce_text(raw);
                    config.values.insert(key.clone(), v);
                }
                None => problems.push(FieldError::new(
                    format!("values.{key}"),
                    "undeclared",
                    format!("no field named \"{key}\" to override"),
                )),
            }
        }
        problems.extend(config.validate(&crate::service::validation_context()));
        let Some(run) = config.run.clone() else {
            problems.push(FieldError::new(
                "run",
                "required",
                "this workflow has no command: add \"run\": {\"command\": [\"program\", \"arg\"]} to its config",
            ));
            return Err(Error::Invalid(problems));
        };
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        // Secrets opened for the job alone: the record (`config.json`, the
        // run's output) keeps them masked.
        let (job_values, secrets) = self.open_for_job(&config)?;
        let mut values = Value::Object(job_values.clone());
        if !secrets.is_empty() {
            let mut shown = config.clone();
            flowkeep_core::secret::mask_document(&mut shown);
            values = Value::Object(shown.effective_values());
        }
        let job_values = Value::Object(job_values);

        let execution = self.runs().start_occurrence(
            StartRun {
                workflow_id: wf.id.clone(),
                status: None,
                trigger: Some(req.trigger),
            },
            req.occurrence,
        )?;
        if let Some(on_start) = req.on_start {
            on_start(&execution);
        }
        let dir = match rundir::RunDir::create(&runs, &execution.id, &values) {
            Ok(d) => d,
            Err(e) => {
                return self.fail(
                    &execution.id,
                    format!("cannot prepare the run directory: {e}"),
                    json!({}),
                )
            }
        };
        let log = dir.log_path();
        let job_config = if secrets.is_empty() {
            dir.config_path()
        } else {
            match dir.write_job_config(&job_values) {
                Ok(p) => p,
                Err(e) => {
                    let result = self.fail(
                        &execution.id,
                        format!("cannot prepare the run directory: {e}"),
                        json!({}),
                    );
                    dir.release();
                    return result;
                }
            }
        };
        let spec = child::Spec {
            command: &run.command,
            cwd: run.cwd.as_deref(),
            env: job_env(
                std::env::vars_os(),
                &run,
                [
                    ("FLOWKEEP_CONFIG", job_config.into_os_string()),
                    ("FLOWKEEP_EXECUTION_ID", execution.id.clone().into()),
                    ("FLOWKEEP_WORKFLOW_ID", wf.id.clone().into()),
                ],
            ),
            stdin: serde_json::to_vec(&job_values)?,
            secrets: &secrets,
            timeout: run.timeout_s.map(Duration::from_secs),
            log: &log,
        };
        let finished = child::run(spec, cancel, sink);
        dir.discard_job_config();
        let finished = match finished {
            Ok(f) => f,
            Err(e) => {
                let out = json!({"log": log.display().to_string()});
                // The spawn's error does not say which path it could not
                // find: a missing working directory reads as a missing
                // program.
                let why = match run.cwd.as_deref().filter(|c| !std::path::Path::new(c).is_dir()) {
                    Some(cwd) => format!(
                        "cannot start `{}`: its working directory (run.cwd) `{cwd}` is not a directory here: {e}",
                        run.command[0]
                    ),
                    None => format!("cannot start `{}`: {e}", run.command[0]),
                };
                let result = self.fail(&execution.id, why, out);
                dir.release();
                return result;
            }
        };
        let (status, exit_code, error) = match finished.ending {
            child::Ending::Exited(s) => match (s.code(), s.signal()) {
                (Some(0), _) => (RunStatus::Succeeded, Some(0), None),
                (Some(c), _) => (
                    RunStatus::Failed,
                    Some(c as i64),
                    Some(format!("exit code {c}")),
                ),
                (None, Some(sig)) => (
                    RunStatus::Failed,
                    None,
                    Some(format!("killed by signal {sig}")),
                ),
                (None, None) => (
                    RunStatus::Failed,
                    None,
                    Some("ended without an exit code".to_owned()),
                ),
            },
            child::Ending::TimedOut => (RunStatus::Failed, None, Some("timeout".to_owned())),
            child::Ending::Cancelled => (RunStatus::Cancelled, None, Some("cancelled".to_owned())),
        };
        let output = json!({
            "result": finished.stdout.json_result(),
            "stdout_tail": finished.stdout.text(),
            "stderr_tail": finished.stderr.text(),
            "stdout_bytes": finished.stdout.total,
            "stderr_bytes": finished.stderr.total,
            "truncated": finished.stdout.truncated() || finished.stderr.truncated(),
            "log": log.display().to_string(),
        });
        let done = self.runs().finish(FinishRun {
            id: execution.id.clone(),
            status,
            exit_code,
            output: Some(output),
            error,
        })?;
        dir.release();
        // Retention runs after the run is safely recorded; a failure here
        // must not turn a recorded run into an error.
        let _ = self.settings().apply_retention(ApplyRetention {
            workflow_id: Some(wf.id.clone()),
        });
        Ok(done)
    }

    fn fail(&self, id: &str, error: String, output: Value) -> Result<Run> {
        self.runs().finish(FinishRun {
            id: id.to_owned(),
            status: RunStatus::Failed,
            exit_code: None,
            output: Some(output),
            error: Some(flowkeep_core::run::clip_error(&error)),
        })
    }

    /// Marks runs of this device whose supervising process is gone as
    /// `failed` with error `interrupted`. Returns how many. Called at open,
    /// so a crash never leaves a run `running` forever.
    pub fn recover_interrupted(&self) -> Result<u64> {
        let Some(runs) = self.runs_dir().map(|p| p.to_owned()) else {
            return Ok(0);
        };
        // Run dirs of an older install were made with the umask: with
        // `runs/` itself 0700 nobody else can reach them.
        flowkeep_store::private::tighten(&runs)?;
        let candidates: Vec<String> = self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT id FROM executions WHERE status IN ('running', 'queued') AND device_id = ?1",
            )?;
            let ids = stmt.query_map([self.device_id()], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
            Ok(ids)
        })?;
        let mut recovered = 0;
        for id in candidates {
            // Only a UUID names a run directory (`is_abandoned` says no to
            // anything else): a forged id like `../../x` is never a path.
            let Some(dir) = rundir::path_of(&runs, &id) else {
                continue;
            };
            if !rundir::is_abandoned(&runs, &id) {
                continue;
            }
            let log = dir.join("output.log");
            let _ = std::fs::remove_file(dir.join(rundir::JOB_CONFIG));
            let finished = self.runs().finish(FinishRun {
                id: id.clone(),
                status: RunStatus::Failed,
                exit_code: None,
                output: Some(json!({"log": log.display().to_string()})),
                error: Some("interrupted".to_owned()),
            });
            match finished {
                Ok(_) => recovered += 1,
                // Another process recovered or finished it first.
                Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
            rundir::remove_lock(&runs, &id);
        }
        Ok(recovered)
    }

    /// Removes the run directories of deleted runs (after the deletion
    /// committed). A directory that cannot be removed stays behind: the
    /// deletion itself already happened, and is not undone for a file.
    pub(crate) fn remove_run_dirs(&self, ids: &[String]) {
        let Some(runs) = self.runs_dir() else {
            return;
        };
        for id in ids {
            let _ = rundir::remove(runs, id);
        }
    }
}

/// Variables of flowkeep's own environment that every job gets, when set:
/// what programs need to find things and to speak the user's language.
const BASE_ENV: [&str; 8] = [
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "TERM",
];

/// The job's whole environment, in order (a later entry wins): the fixed
/// base and every `LC_*` from `own` (flowkeep's environment), the spec's
/// `env`, the names the spec lists in `inherit_env` (from `own`, when set),
/// then `ours`. Nothing else of `own` is passed on: it may hold secrets
/// (the sync token, the user's shell), and output tails sync to every
/// device. No `FLOWKEEP_*` variable of `own` is ever passed, whatever the
/// spec lists.
fn job_env(
    own: impl IntoIterator<Item = (OsString, OsString)>,
    run: &flowkeep_core::config::RunSpec,
    ours: [(&str, OsString); 3],
) -> Vec<(OsString, OsString)> {
    use flowkeep_core::config::RunSpec;
    let own: BTreeMap<OsString, OsString> = own.into_iter().collect();
    let mut env: Vec<(OsString, OsString)> = own
        .iter()
        .filter(|(k, _)| {
            BASE_ENV.iter().any(|b| k.as_os_str() == *b) || k.as_encoded_bytes().starts_with(b"LC_")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.extend(run.env.iter().map(|(k, v)| (k.into(), v.into())));
    for name in &run.inherit_env {
        if RunSpec::is_reserved_env(name) {
            continue;
        }
        if let Some(v) = own.get(OsStr::new(name)) {
            env.push((name.into(), v.clone()));
        }
    }
    env.extend(ours.into_iter().map(|(k, v)| (k.into(), v)));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn the_job_gets_the_base_its_spec_and_what_it_inherits_nothing_else() {
        let own = vars(&[
            ("PATH", "/usr/bin"),
            ("HOME", "/home/u"),
            ("LANG", "C.UTF-8"),
            ("LC_TIME", "de_DE.UTF-8"),
            ("TERM", "xterm"),
            ("PROBE_SECRET", "s3cret"),
            ("AWS_SECRET_ACCESS_KEY", "k"),
            ("FLOWKEEP_SYNC_TOKEN", "tok"),
            ("FLOWKEEP_ACTOR", "alice"),
            ("AWS_PROFILE", "dev"),
            ("SSH_AUTH_SOCK", "/tmp/agent"),
        ]);
        let run: flowkeep_core::config::RunSpec = serde_json::from_value(json!({
            "command": ["job"],
            "env": {"SPEC_VAR": "from-spec", "PATH": "/opt/bin:/usr/bin", "FLOWKEEP_CONFIG": "spoofed"},
            "inherit_env": ["AWS_PROFILE", "NOT_SET", "FLOWKEEP_SYNC_TOKEN"],
        }))
        .unwrap();
        let env = job_env(
            own,
            &run,
            [
                ("FLOWKEEP_CONFIG", "/data/runs/e/config.json".into()),
                ("FLOWKEEP_EXECUTION_ID", "e".into()),
                ("FLOWKEEP_WORKFLOW_ID", "w".into()),
            ],
        );
        // As the child sees it: a later entry wins.
        let seen: BTreeMap<String, String> = env
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect();
        let want: BTreeMap<String, String> = [
            ("PATH", "/opt/bin:/usr/bin"),
            ("HOME", "/home/u"),
            ("LANG", "C.UTF-8"),
            ("LC_TIME", "de_DE.UTF-8"),
            ("TERM", "xterm"),
            ("SPEC_VAR", "from-spec"),
            ("AWS_PROFILE", "dev"),
            ("FLOWKEEP_CONFIG", "/data/runs/e/config.json"),
            ("FLOWKEEP_EXECUTION_ID", "e"),
            ("FLOWKEEP_WORKFLOW_ID", "w"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(seen, want);
    }
}
