//! Runs started from the UI (browser or desktop window). Unlike the CLI's
//! `flowkeep run`, the caller does not wait for the end: `start` answers once
//! the run is recorded as started (or refused: invalid config, no command),
//! the command runs on its own thread, and `cancel` stops it. When the UI
//! stops, runs still going are cancelled and recorded as such.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use flowkeep_app::{Error, RunRequest, Service};
use flowkeep_core::commands::{Input, RunCancelled, RunId, RunWorkflow};
use flowkeep_core::run::Run;
use serde_json::Value;

/// A command from the UI by name: `run` and `cancel_run` here, the rest
/// through the command table. The HTTP API and the window both call this.
pub fn call(svc: &Service, runs: &UiRuns, name: &str, input: Value) -> Result<Value, Error> {
    match name {
        "run" => runs.start(parse(input)?).map(to_json),
        "cancel_run" => runs.cancel(parse(input)?).map(to_json),
        _ => flowkeep_app::dispatch(svc, name, input),
    }
}

/// Keeps this device in sync while the UI is open, if it syncs; ends when
/// `stop` is set, or with an error the watch gives up on (a revoked device,
/// an untrusted certificate). A panic in it (a bug, or a document from the
/// server that trips automerge) does not end it for the rest of the session:
/// it is logged and the watch starts again, after 10 s, doubling while it
/// keeps panicking (up to 10 minutes).
pub fn background_sync(svc: &Arc<Service>, stop: &Arc<AtomicBool>) -> Option<JoinHandle<()>> {
    let syncing = svc
        .sync()
        .status(Default::default())
        .map(|s| s.configured)
        .unwrap_or(false);
    syncing.then(|| {
        let (svc, stop) = (svc.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut pause = std::time::Duration::from_secs(10);
            while !stop.load(Ordering::SeqCst) {
                let watched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    svc.sync()
                        .watch(&stop, std::time::Duration::from_millis(100), |_| {})
                }));
                match watched {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => {
                        tracing::warn!("background sync stopped: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::error!(
                            "background sync panicked; it starts again in {}s",
                            pause.as_secs()
                        );
                        let until = std::time::Instant::now() + pause;
                        while std::time::Instant::now() < until && !stop.load(Ordering::SeqCst) {
                            std::thread::sleep(std::time::Duration::from_millis(100));
                        }
                        pause = (pause * 2).min(std::time::Duration::from_secs(600));
                    }
                }
            }
        })
    })
}

fn parse<T: serde::de::DeserializeOwned>(input: Value) -> Result<T, Error> {
    serde_json::from_value(input).map_err(|e| {
        Error::InvalidInput(vec![flowkeep_core::FieldError::new(
            "input",
            "invalid_input",
            e.to_string(),
        )])
    })
}

fn to_json<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).expect("command outputs serialize")
}

pub struct UiRuns {
    svc: Arc<Service>,
    active: Arc<Mutex<HashMap<String, Arc<AtomicBool>>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl UiRuns {
    pub fn new(svc: Arc<Service>) -> UiRuns {
        UiRuns {
            svc,
            active: Arc::default(),
            threads: Mutex::default(),
        }
    }

    /// Starts a run; blocks until it is recorded as started or refused.
    pub fn start(&self, mut input: RunWorkflow) -> Result<Run, Error> {
        input.check()?;
        let (tx, rx) = mpsc::channel::<Result<Run, Error>>();
        let cancel = Arc::new(AtomicBool::new(false));
        let (svc, active) = (self.svc.clone(), self.active.clone());
        let started_tx = tx.clone();
        let started_active = active.clone();
        let started_cancel = cancel.clone();
        let handle = std::thread::spawn(move || {
            let req = RunRequest {
                occurrence: None,
                workflow_id: input.workflow_id,
                overrides: input.set.into_iter().collect(),
                trigger: "ui".to_owned(),
                on_start: Some(Box::new(move |e: &Run| {
                    started_active
                        .lock()
                        .unwrap()
                        .insert(e.id.clone(), started_cancel);
                    let _ = started_tx.send(Ok(e.clone()));
                })),
            };
            // The output is in the run's log file and tails; nobody watches it live here.
            let result = svc.runs().run(req, &cancel, Arc::new(|_, _: &[u8]| {}));
            match result {
                Ok(e) => {
                    active.lock().unwrap().remove(&e.id);
                }
                // Refused before it started (the receiver ignores a second answer).
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
        let mut threads = self.threads.lock().unwrap();
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
        drop(threads);
        rx.recv().unwrap_or_else(|_| {
            Err(Error::Io(std::io::Error::other(
                "the run stopped before it started",
            )))
        })
    }

    /// Stops a run this UI started.
    pub fn cancel(&self, mut input: RunId) -> Result<RunCancelled, Error> {
        input.check()?;
        match self.active.lock().unwrap().get(&input.id) {
            Some(flag) => {
                flag.store(true, Ordering::SeqCst);
                Ok(RunCancelled { id: input.id })
            }
            None => Err(Error::NotFound {
                entity: "run in progress started by this app",
                id: input.id,
            }),
        }
    }

    /// Cancels every run still going and waits until each is recorded.
    pub fn stop_all(&self) {
        for flag in self.active.lock().unwrap().values() {
            flag.store(true, Ordering::SeqCst);
        }
        for t in self.threads.lock().unwrap().drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window's IPC and the HTTP API both call `call`: every command
    /// of the table reaches its handler through it (bad input is fine; an
    /// unknown command is what must not happen).
    #[test]
    fn every_command_of_the_table_is_reachable_through_call() {
        let svc = Arc::new(Service::open_in_memory(Default::default()).unwrap());
        let runs = UiRuns::new(svc.clone());
        let unknown = |r: &Result<Value, Error>| {
            matches!(
                r,
                Err(Error::NotFound {
                    entity: "command",
                    ..
                })
            )
        };
        for c in flowkeep_app::COMMANDS {
            let r = call(&svc, &runs, c.name, serde_json::json!({}));
            assert!(!unknown(&r), "{} is not reachable: {r:?}", c.name);
        }
        for name in ["run", "cancel_run"] {
            assert!(!unknown(&call(&svc, &runs, name, serde_json::json!({}))));
        }
        assert!(unknown(&call(&svc, &runs, "nope", serde_json::json!({}))));
    }
}
