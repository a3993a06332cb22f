//! The service: every command's handler. A write validates, then appends its
//! events and projects them in one transaction; a rejected command writes
//! nothing.

mod approval;
mod changes;
mod config;
mod facets;
mod history;
mod runs;
mod schedules;
mod settings;
mod versions;
mod workflows;

use std::path::{Path, PathBuf};

use flowkeep_core::config::ConfigDocument;
use flowkeep_core::events::{Event, WorkflowChangedV1};
use flowkeep_core::validation::ValidationContext;
use flowkeep_core::workflow::{self, Workflow, WorkflowSpec};
use rusqlite::Connection;

pub(crate) use approval::ensure_approved;
pub use changes::Change;
pub use facets::{
    ConfigService, RunService, ScheduleService, SettingsService, SyncService, WorkflowService,
};
pub use runs::{PRUNE_BATCH, PRUNE_BATCH_MAX};
pub(crate) use schedules::Entry as ScheduleEntry;
use serde_json::Value;

use crate::clock::{Clock, SystemClock};
use crate::{Error, Result};
use flowkeep_store::db::{Db, StoreOptions};
use flowkeep_store::event_log::{self, Expected, NewEvent, StoredEvent};
use flowkeep_store::{projection, queries};

pub struct Service {
    db: Db,
    clock: Box<dyn Clock>,
    actor: String,
    device_id: String,
    /// `runs/` beside the database file: run logs, configs and locks.
    runs_dir: Option<PathBuf>,
    db_path: Option<PathBuf>,
    /// The workspace's secret keys (`secrets.keys` beside the database).
    pub(crate) secrets: crate::secrets::Keys,
    /// Told how a sync session advances (see `on_sync_progress`).
    sync_progress: std::sync::Mutex<Option<SyncProgress>>,
}

/// `(step, done, total)` of a sync session: "opening documents", "merging".
pub type SyncProgress = Box<dyn Fn(&str, u64, u64) + Send + Sync>;

/// A write in progress: the open transaction plus who and when.
pub(crate) struct Writer<'a> {
    pub conn: &'a Connection,
    pub now: i64,
    actor: &'a str,
    device_id: &'a str,
}

impl Writer<'_> {
    pub(crate) fn append(
        &self,
        stream_id: &str,
        expected: Expected,
        event: Event,
    ) -> Result<StoredEvent> {
        let stored = event_log::append(
            self.conn,
            NewEvent {
                stream_id,
                expected,
                event,
                actor: self.actor,
                device_id: self.device_id,
                recorded_at: self.now,
                origin: "local",
            },
        )?;
        projection::apply(self.conn, &stored)?;
        Ok(stored)
    }

    /// Appends an event that came from another device (`origin = remote`),
    /// recorded under that device's actor and id.
    pub(crate) fn append_remote(
        &self,
        stream_id: &str,
        event: Event,
        actor: &str,
        device_id: &str,
    ) -> Result<StoredEvent> {
        let stored = event_log::append(
            self.conn,
            NewEvent {
                stream_id,
                expected: Expected::Any,
                event,
                actor,
                device_id,
                recorded_at: self.now,
                origin: "remote",
            },
        )?;
        projection::apply(self.conn, &stored)?;
        Ok(stored)
    }
}

/// Which event records a workflow change.
#[derive(Clone, Copy)]
pub(crate) enum ChangeKind {
    Workflow,
    Config,
}

impl Service {
    /// Opens (creating if needed) the database file, applies migrations,
    /// and marks runs whose supervising process died as interrupted.
    pub fn open(path: &Path, opts: StoreOptions) -> Result<Service> {
        let runs = path.parent().unwrap_or(Path::new(".")).join("runs");
        let mut svc = Service::new(Db::open(path, &opts)?, opts, Some(runs))?;
        svc.secrets = crate::secrets::Keys::new(Some(
            path.parent().unwrap_or(Path::new(".")).join("secrets.keys"),
        ));
        svc.db_path = Some(path.to_owned());
        svc.runs().recover_interrupted()?;
        Ok(svc)
    }

    /// A private in-memory database, for tests. It cannot run workflows.
    pub fn open_in_memory(opts: StoreOptions) -> Result<Service> {
        Service::new(Db::open_in_memory()?, opts, None)
    }

    fn new(db: Db, opts: StoreOptions, runs_dir: Option<PathBuf>) -> Result<Service> {
        let device_id = db.write(|tx| -> Result<String> {
            if let Some(id) = event_log::meta_get(tx, "device_id")? {
                return Ok(id);
            }
            let id = uuid::Uuid::now_v7().to_string();
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('device_id', ?1)",
                [&id],
            )?;
            Ok(id)
        })?;
        Ok(Service {
            db,
            clock: Box::new(SystemClock),
            actor: opts.actor,
            device_id,
            runs_dir,
            db_path: None,
            secrets: crate::secrets::Keys::new(None),
            sync_progress: std::sync::Mutex::new(None),
        })
    }

    /// Sets what a sync session tells as it goes through many documents
    /// (a first sync of thousands), e.g. a progress bar.
    pub fn on_sync_progress(&self, f: SyncProgress) {
        *self.sync_progress.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    pub(crate) fn sync_progress(&self, step: &str, done: u64, total: u64) {
        if let Some(f) = &*self.sync_progress.lock().unwrap_or_else(|p| p.into_inner()) {
            f(step, done, total);
        }
    }

    /// Keeps the secrets key in the OS keychain when one answers (the
    /// entry named after `data_dir`), the file otherwise.
    pub fn with_keychain(mut self, data_dir: &Path) -> Service {
        let path = data_dir.join("secrets.keys");
        let user = std::path::absolute(data_dir)
            .unwrap_or_else(|_| data_dir.to_owned())
            .display()
            .to_string();
        self.secrets = crate::secrets::Keys::new(Some(path)).with_keychain(user);
        self
    }

    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Service {
        self.clock = Box::new(clock);
        self
    }

    /// The time by this service's clock (Unix ms).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// This database's device id, recorded on every event it writes.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The database file; `None` for an in-memory database.
    pub fn db_path(&self) -> Option<&Path> {
        self.db_path.as_deref()
    }

    /// Where run directories live; `None` for an in-memory database.
    pub fn runs_dir(&self) -> Option<&Path> {
        self.runs_dir.as_deref()
    }

    pub(crate) fn write<T>(&self, f: impl FnOnce(&Writer<'_>) -> Result<T>) -> Result<T> {
        let now = self.clock.now_ms();
        self.db.write(|tx| {
            f(&Writer {
                conn: tx,
                now,
                actor: &self.actor,
                device_id: &self.device_id,
            })
        })
    }

    /// See `Db::checkpoint_now`.
    pub(crate) fn checkpoint_now(&self) {
        self.db.checkpoint_now();
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.db.read(f)
    }

    /// Drops the read tables and replays the event log into them. Returns
    /// the number of events replayed.
    pub fn rebuild_projections(&self) -> Result<u64> {
        self.rebuild_projections_with(&mut |_, _| {})
    }

    /// `rebuild_projections` telling `progress(replayed, total)` as it goes.
    /// One transaction: stopped half way, the old tables stay as they were.
    pub fn rebuild_projections_with(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<u64> {
        let total = self.event_count()?;
        Ok(self
            .db
            .write(|tx| projection::rebuild(tx, &mut |n| progress(n, total)))?)
    }

    /// Number of events in the log.
    pub fn event_count(&self) -> Result<u64> {
        self.read(|c| {
            Ok(c.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))? as u64)
        })
    }

    /// Every row of every read table, in primary-key order, as text: two
    /// databases with equal dumps have byte-for-byte equal read tables.
    pub fn dump_read_tables(&self) -> Result<String> {
        self.read(|c| {
            let mut out = String::new();
            for table in projection::READ_TABLES {
                out.push_str(&format!("## {table}\n"));
                let key = match table {
                    "workflow_tags" => "tag, workflow_id",
                    "settings" => "key",
                    "version_snapshots" => "workflow_id, revision",
                    "schedules" => "workflow_id",
                    _ => "id",
                };
                let mut stmt = c.prepare(&format!("SELECT * FROM {table} ORDER BY {key}"))?;
                let n = stmt.column_count();
                let mut rows = stmt.query([])?;
                while let Some(r) = rows.next()? {
                    let cells: Vec<String> = (0..n)
                        .map(|i| r.get_ref(i).map(cell).unwrap_or_default())
                        .collect();
                    out.push_str(&cells.join("|"));
                    out.push('\n');
                }
            }
            Ok(out)
        })
    }

    /// The one path from a command to a new workflow state: load, check the
    /// expected revision, edit a copy, validate it, record the field-level
    /// difference as an event and project it. No difference, no event.
    ///
    /// Validation can be slow (a file check, a large schema or pattern not
    /// compiled yet), so it runs on a read snapshot, outside the write
    /// transaction: other writers go on meanwhile. The transaction then
    /// re-checks the revision. If it moved, the caller's `expected_revision`
    /// decides: given, it is a conflict as always; not given, the edit is made
    /// again on the new state and validated again, a few times at most.
    pub(crate) fn change_workflow(
        &self,
        id: &str,
        expected_revision: Option<u64>,
        kind: ChangeKind,
        edit: impl Fn(&mut WorkflowSpec) -> Result<()>,
    ) -> Result<Workflow> {
        let mut current = self.read(|c| Ok(queries::workflows::get(c, id)?))?;
        for _ in 0..CHANGE_ATTEMPTS {
            check_revision(&current, expected_revision)?;
            let mut spec = current.spec.clone();
            edit(&mut spec)?;
            workflow::normalize(&mut spec);
            flowkeep_core::schedule::settle_owner(&mut spec, Some(&current.spec), self.device_id());
            validate_config(&spec.config)?;
            // Checked in clear above; stored sealed from here on.
            self.seal_secrets(&mut spec, Some(&current.spec))?;
            #[cfg(test)]
            tests::after_validate();
            let changes = workflow::diff(&current.spec, &spec);
            if changes.is_empty() {
                return Ok(current);
            }
            let payload = WorkflowChangedV1 { changes };
            let event = match kind {
                ChangeKind::Workflow => Event::WorkflowUpdated(payload),
                ChangeKind::Config => Event::ConfigUpdated(payload),
            };
            let written = self.write(|w| {
                let now = queries::workflows::get(w.conn, id)?;
                if now.revision != current.revision {
                    return Ok(Err(now));
                }
                w.append(id, Expected::Version(current.revision), event)?;
                Ok(queries::workflows::get(w.conn, id).map(Ok)?)
            })?;
            match written {
                Ok(wf) => return Ok(wf),
                Err(moved) => current = moved,
            }
        }
        check_revision(&current, expected_revision)?;
        Err(Error::Conflict(format!(
            "workflow {id} kept changing while this change was validated ({CHANGE_ATTEMPTS} tries); try again"
        )))
    }
}

/// How many times `change_workflow` validates an edit whose workflow
/// changed meanwhile before it gives up with a conflict.
const CHANGE_ATTEMPTS: usize = 5;

/// A cell as an unambiguous literal: `NULL`, a number, or a JSON string.
fn cell(v: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => format!("{f:?}"),
        ValueRef::Text(t) => serde_json::to_string(&String::from_utf8_lossy(t)).expect("json"),
        ValueRef::Blob(b) => format!(
            "x'{}'",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
    }
}

pub(crate) fn check_revision(current: &Workflow, expected: Option<u64>) -> Result<()> {
    match expected {
        // A revision it never reached was not "changed by someone else".
        Some(v) if v > current.revision => Err(Error::Conflict(format!(
            "workflow {} is at revision {}, not {v}: expected revision {v} is ahead of it; reload and try again",
            current.id, current.revision
        ))),
        Some(v) if v != current.revision => Err(Error::Conflict(format!(
            "workflow {} was changed by someone else: expected revision {v}, it is now at {}; reload and try again",
            current.id, current.revision
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;

fn file_exists(path: &str) -> bool {
    Path::new(path).exists()
}

pub(crate) fn validation_context() -> ValidationContext<'static> {
    ValidationContext::with_file_check(&file_exists)
}

/// Parses and validates a config document given as JSON.
pub(crate) fn parse_config(value: &Value) -> Result<ConfigDocument> {
    ConfigDocument::from_json(value, &validation_context()).map_err(Error::Invalid)
}

/// `parse_config` with the problems as they are (paths relative to the
/// document), for callers that place them elsewhere (a file's lines).
pub(crate) fn parse_config_lenient(
    value: &Value,
) -> std::result::Result<ConfigDocument, Vec<flowkeep_core::FieldError>> {
    ConfigDocument::from_json(value, &validation_context())
}

/// Every problem of a config document (none: valid).
pub(crate) fn validation_errors(doc: &ConfigDocument) -> Vec<flowkeep_core::FieldError> {
    doc.validate(&validation_context())
}

pub(crate) fn validate_config(doc: &ConfigDocument) -> Result<()> {
    let errors = doc.validate(&validation_context());
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(errors))
    }
}
