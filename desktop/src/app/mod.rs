//! The desktop window (cargo feature `native`): the same web UI in a Tauri 2
//! window, calling the same command table over Tauri IPC instead of HTTP.
//! The IPC side stays thin: state in, one table call, JSON (or the one error
//! shape) out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use flowkeep_app::Service;
use flowkeep_core::commands::{ExportFormat, RunFilter};
use flowkeep_core::{ErrorBody, ErrorCode};
use serde_json::Value;
use tauri::ipc::Channel;
use tauri::{Emitter, Manager};
use tauri_plugin_dialog::DialogExt;

use crate::ui_runs::UiRuns;

struct Native {
    svc: Arc<Service>,
    runs: Arc<UiRuns>,
    /// Set when the window closes: followers of run output end with it.
    stop: Arc<AtomicBool>,
    /// Run output being followed, by the id `follow_run_output` answered:
    /// set to stop one (`stop_run_output`, when its view closes).
    following: Mutex<HashMap<u64, Arc<AtomicBool>>>,
    next_follow: AtomicU64,
}

/// Opens the window and returns when it is closed.
pub fn run_app(svc: Service) -> anyhow::Result<()> {
    let svc = Arc::new(svc);
    let runs = Arc::new(UiRuns::new(svc.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    // The header shows its status (the `sync_status` command).
    let sync_thread = crate::ui_runs::background_sync(&svc, &stop);
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .manage(Native {
            svc,
            runs: runs.clone(),
            stop: stop.clone(),
            following: Mutex::new(HashMap::new()),
            next_follow: AtomicU64::new(1),
        })
        .invoke_handler(tauri::generate_handler![
            command,
            export_runs,
            follow_run_output,
            stop_run_output
        ])
        .build(tauri::generate_context!())?;
    // Ctrl-C or SIGTERM close the window the normal way, so the window's size
    // and position are saved and runs are recorded as cancelled.
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, signalled.clone())?;
    }
    // The same news a browser gets as Server-Sent Events, as Tauri events:
    // the window's views read again when told, never on a timer.
    let live = app.handle().clone();
    let follower = crate::follow::spawn(
        app.state::<Native>().svc.clone(),
        stop.clone(),
        move |news| {
            let (event, data) = news.wire();
            let _ = live.emit(
                LIVE_EVENT,
                serde_json::json!({ "event": event, "data": data }),
            );
        },
    )?;
    let handle = app.handle().clone();
    let watcher_stop = stop.clone();
    std::thread::spawn(move || {
        while !watcher_stop.load(Ordering::SeqCst) {
            if signalled.load(Ordering::SeqCst) {
                handle.exit(0);
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    });
    app.run(|_, _| {});
    stop.store(true, Ordering::SeqCst);
    // Runs still going are cancelled and recorded so, not left `running`.
    runs.stop_all();
    if let Some(t) = sync_thread {
        let _ = t.join();
    }
    let _ = follower.join();
    Ok(())
}

/// The Tauri event the window's UI listens to (`ui/src/api/live.ts`):
/// `{"event": "change" | "sync" | "reload", "data": <JSON text>}`.
const LIVE_EVENT: &str = "flowkeep:live";

/// Every command of the table by name (plus `run` and `cancel_run`, which
/// answer once a run has started), with the same JSON as `POST /api/<name>`.
#[tauri::command]
async fn command(
    state: tauri::State<'_, Native>,
    name: String,
    input: Value,
) -> Result<Value, ErrorBody> {
    let (svc, runs) = (state.svc.clone(), state.runs.clone());
    blocking(move || crate::ui_runs::call(&svc, &runs, &name, input)).await
}

/// A run's output as it is written, sent on `on_output` as
/// `{"event": "output" | "end" | "failed", "data": <JSON text>}` (what a
/// browser gets from `GET /api/runs/<ID>/output`). Answers an id for
/// `stop_run_output` once the first piece was read, or the error that kept
/// it from being read (an unknown run, another device's).
#[tauri::command]
async fn follow_run_output(
    state: tauri::State<'_, Native>,
    id: String,
    from: u64,
    on_output: Channel<Value>,
) -> Result<u64, ErrorBody> {
    let svc = state.svc.clone();
    let first = {
        let (svc, id) = (svc.clone(), id.clone());
        blocking(move || crate::follow_output::read(&svc, &id, from)).await?
    };
    let follow = state.next_follow.fetch_add(1, Ordering::SeqCst);
    let done = Arc::new(AtomicBool::new(false));
    state
        .following
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(follow, done.clone());
    let window_closed = state.stop.clone();
    std::thread::Builder::new()
        .name("flowkeep-output".into())
        .spawn(move || {
            let stopped = || done.load(Ordering::SeqCst) || window_closed.load(Ordering::SeqCst);
            crate::follow_output::follow(&svc, &id, first, stopped, |news| {
                let (event, data) = news.wire();
                on_output
                    .send(serde_json::json!({ "event": event, "data": data }))
                    .is_ok()
            });
        })
        .map_err(|e| flowkeep_app::Error::Io(e).body())?;
    Ok(follow)
}

/// Stops following a run's output (its view closed).
#[tauri::command]
fn stop_run_output(state: tauri::State<'_, Native>, follow: u64) {
    if let Some(done) = state
        .following
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&follow)
    {
        done.store(true, Ordering::SeqCst);
    }
}

/// Asks where to save (the native save dialog), then writes the runs the
/// filter matches there. `None`: the user closed the dialog.
#[tauri::command]
async fn export_runs(
    app: tauri::AppHandle,
    filter: RunFilter,
    format: ExportFormat,
) -> Result<Option<String>, ErrorBody> {
    let ext = match format {
        ExportFormat::Json => "json",
        ExportFormat::Ndjson => "ndjson",
        ExportFormat::Csv => "csv",
    };
    let svc = app.state::<Native>().svc.clone();
    blocking(move || {
        let Some(path) = app
            .dialog()
            .file()
            .set_file_name(format!("flowkeep-runs.{ext}"))
            .add_filter(ext.to_uppercase(), &[ext])
            .blocking_save_file()
        else {
            return Ok(None);
        };
        let path = path
            .into_path()
            .map_err(|e| flowkeep_app::Error::Io(std::io::Error::other(e.to_string())))?;
        // `<path>.partial`, created new (0600) and renamed: as the CLI exports.
        let never = std::sync::atomic::AtomicBool::new(false);
        svc.runs()
            .export_to_file(&filter, format, &path, &never, &mut |_| {})?;
        Ok(Some(path.display().to_string()))
    })
    .await
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, flowkeep_app::Error> + Send + 'static,
) -> Result<T, ErrorBody> {
    match tauri::async_runtime::spawn_blocking(f).await {
        Ok(result) => result.map_err(|e| e.body()),
        Err(_) => Err(ErrorBody {
            code: ErrorCode::Internal,
            message: "the command panicked".to_owned(),
            fields: vec![],
        }),
    }
}
