//! Events → read tables. Live writes and `rebuild` call the same `apply`, so
//! a rebuild from the log reproduces the live tables exactly.

use flowkeep_core::events::Event;
use flowkeep_core::workflow::{self, Approval, TrustedSpec, Workflow, WorkflowSpec};
use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::event_log::{self, StoredEvent};
use crate::queries;
use crate::{Error, Result};

/// The read tables, in the order they can be emptied under foreign keys.
pub const READ_TABLES: [&str; 7] = [
    "schedules",
    "version_snapshots",
    "configs",
    "workflow_tags",
    "executions",
    "workflows",
    "settings",
];

pub fn apply(conn: &Connection, e: &StoredEvent) -> Result<()> {
    apply_event(conn, e)?;
    if is_workflow_event(&e.event) {
        track_schedule(conn, e)?;
        if e.stream_version
            .is_multiple_of(queries::versions::SNAPSHOT_EVERY)
        {
            snapshot(conn, e)?;
        }
    }
    Ok(())
}

/// Keeps `schedules` in step with the live workflow's `config.run.schedule`:
/// when it appears or changes, `since` becomes the event's time (a changed,
/// resumed or handed-over schedule starts afresh from then); when it goes,
/// or the workflow is deleted, the row goes.
fn track_schedule(conn: &Connection, e: &StoredEvent) -> Result<()> {
    let now: Option<String> = conn
        .prepare_cached(
            "SELECT json_extract(config, '$.run.schedule') FROM workflows
             WHERE id = ?1 AND deleted = 0",
        )?
        .query_row([&e.stream_id], |r| r.get(0))
        .optional()?
        .flatten();
    let before: Option<String> = conn
        .prepare_cached("SELECT schedule FROM schedules WHERE workflow_id = ?1")?
        .query_row([&e.stream_id], |r| r.get(0))
        .optional()?;
    match now {
        None if before.is_some() => {
            conn.prepare_cached("DELETE FROM schedules WHERE workflow_id = ?1")?
                .execute([&e.stream_id])?;
        }
        Some(s) if before.as_ref() != Some(&s) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO schedules (workflow_id, schedule, since) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![e.stream_id, s, e.recorded_at])?;
        }
        _ => {}
    }
    Ok(())
}

fn is_workflow_event(event: &Event) -> bool {
    matches!(
        event,
        Event::WorkflowCreated(_)
            | Event::WorkflowUpdated(_)
            | Event::ConfigUpdated(_)
            | Event::WorkflowDeleted(_)
            | Event::RemoteMerged(_)
            | Event::WorkflowApproved(_)
            | Event::WorkflowRestored(_)
    )
}

/// The workflow as the read tables hold it after `e`: what time travel
/// would replay to at this revision, kept so it need not.
fn snapshot(conn: &Connection, e: &StoredEvent) -> Result<()> {
    let Some(l) = queries::workflows::load(conn, &e.stream_id)? else {
        return Ok(());
    };
    let w = l.workflow;
    let version = flowkeep_core::versions::WorkflowVersion {
        id: w.id,
        spec: w.spec,
        revision: w.revision,
        created_at: w.created_at,
        updated_at: w.updated_at,
        deleted: l.deleted,
        conflicts: w.conflicts,
    };
    queries::versions::save(conn, &version, e.recorded_at)
}

fn apply_event(conn: &Connection, e: &StoredEvent) -> Result<()> {
    match &e.event {
        Event::WorkflowCreated(p) => {
            // Written on this device: what it runs is approved here.
            let wf = Workflow {
                id: e.stream_id.clone(),
                spec: p.spec.clone(),
                created_at: e.recorded_at,
                updated_at: e.recorded_at,
                revision: e.stream_version,
                conflicts: vec![],
                validation_errors: vec![],
                approval: approval(created_approval(conn, p)?, &p.spec),
            };
            write_workflow_row(conn, INSERT_WORKFLOW, &wf)?;
            write_tags(conn, &wf)?;
            write_configs(conn, &wf)?;
        }
        Event::WorkflowUpdated(p) | Event::ConfigUpdated(p) => {
            let mut wf = live_workflow(conn, e)?;
            apply_local_change(&mut wf, e, &p.changes)?;
            write_workflow_row(conn, UPDATE_WORKFLOW, &wf)?;
            if p.changes.iter().any(|c| c.field == "tags") {
                write_tags(conn, &wf)?;
            }
            if p.changes.iter().any(|c| c.field.starts_with("config.")) {
                write_configs(conn, &wf)?;
            }
        }
        Event::RemoteMerged(p) => apply_remote(conn, e, p)?,
        Event::WorkflowRestored(p) => {
            let Some(l) = queries::workflows::load(conn, &e.stream_id)? else {
                return Err(Error::Corrupt(format!(
                    "event {} restores a workflow that does not exist",
                    e.id
                )));
            };
            let mut wf = l.workflow;
            // A restore is an edit made here, like any local change.
            apply_local_change(&mut wf, e, &p.changes)?;
            write_workflow_row(conn, UPDATE_WORKFLOW, &wf)?;
            let deleted = l.deleted && !p.undeleted;
            if !deleted {
                conn.prepare_cached("UPDATE workflows SET deleted = 0 WHERE id = ?1")?
                    .execute([&wf.id])?;
                write_tags(conn, &wf)?;
                write_configs(conn, &wf)?;
            }
        }
        Event::WorkflowApproved(p) => {
            let mut wf = live_workflow(conn, e)?;
            wf.revision = e.stream_version;
            let approved = TrustedSpec {
                run: p.run.clone(),
                retention: p.retention.clone(),
            };
            wf.approval = approval(approved, &wf.spec);
            write_workflow_row(conn, UPDATE_WORKFLOW, &wf)?;
        }
        // A rejection changes no read table: `sync status` reads the log.
        Event::RemoteRejected(_) => {}
        Event::WorkflowDeleted(_) => {
            live_workflow(conn, e)?;
            conn.prepare_cached(
                "UPDATE workflows SET deleted = 1, updated_at = ?2, revision = ?3 WHERE id = ?1",
            )?
            .execute(params![e.stream_id, e.recorded_at, e.stream_version as i64])?;
            conn.prepare_cached("DELETE FROM workflow_tags WHERE workflow_id = ?1")?
                .execute([&e.stream_id])?;
            conn.prepare_cached("DELETE FROM configs WHERE workflow_id = ?1")?
                .execute([&e.stream_id])?;
        }
        Event::RunStarted(p) => {
            conn.prepare_cached(
                "INSERT INTO executions (id, workflow_id, status, output, started_at, completed_at, duration_ms,
                 exit_code, error, trigger, device_id, workflow_revision, config_hash, occurrence)
                 VALUES (?1, ?2, ?3, NULL, ?4, NULL, NULL, NULL, NULL, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                e.stream_id,
                p.workflow_id,
                p.status.as_str(),
                p.started_at,
                p.trigger,
                e.device_id,
                p.workflow_revision.map(|v| v as i64),
                p.config_hash,
                p.occurrence
            ])?;
        }
        Event::RunFinished(p) => {
            let output = p.output.as_ref().map(serde_json::to_string).transpose()?;
            let n = conn
                .prepare_cached(
                    "UPDATE executions SET status = ?2, completed_at = ?3, duration_ms = max(0, ?3 - started_at),
                     exit_code = ?4, output = ?5, error = ?6 WHERE id = ?1",
                )?
                .execute(params![e.stream_id, p.status.as_str(), p.completed_at, p.exit_code, output, p.error])?;
            expect_one(n, e)?;
        }
        Event::RunRecorded(p) => {
            let output = p.output.as_ref().map(serde_json::to_string).transpose()?;
            conn.prepare_cached(
                "INSERT INTO executions (id, workflow_id, status, output, started_at, completed_at, duration_ms,
                 exit_code, error, trigger, device_id, workflow_revision, config_hash, occurrence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, max(0, ?6 - ?5), ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                e.stream_id,
                p.workflow_id,
                p.status.as_str(),
                output,
                p.started_at,
                p.completed_at,
                p.exit_code,
                p.error,
                p.trigger,
                e.device_id,
                p.workflow_revision.map(|v| v as i64),
                p.config_hash,
                p.occurrence
            ])?;
        }
        Event::SettingsUpdated(p) => {
            for c in &p.changes {
                if c.new.is_null() {
                    conn.prepare_cached("DELETE FROM settings WHERE key = ?1")?
                        .execute([&c.field])?;
                } else {
                    conn.prepare_cached(
                        "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)",
                    )?
                    .execute(params![c.field, c.new.to_string()])?;
                }
            }
        }
        Event::RunDeleted(_) => {
            let n = conn
                .prepare_cached("DELETE FROM executions WHERE id = ?1")?
                .execute([&e.stream_id])?;
            expect_one(n, e)?;
        }
        Event::RunsPruned(p) => {
            let (where_sql, args) =
                queries::runs::prune_filter_sql(&flowkeep_core::commands::RunFilter {
                    workflow_id: p.workflow_id.clone(),
                    status: p.status,
                    since: p.since,
                    until: Some(p.before),
                });
            let n = conn
                .prepare_cached(&format!("DELETE FROM executions {where_sql}"))?
                .execute(params_from_iter(args))?;
            if n as u64 != p.deleted {
                // Replay must delete what the live prune deleted; anything
                // else means the log and the tables disagree.
                return Err(Error::Corrupt(format!(
                    "event {}: prune deleted {n} executions, the event recorded {}",
                    e.id, p.deleted
                )));
            }
        }
    }
    Ok(())
}

/// A change made on this device (an edit, a restore) applied to `wf`.
fn apply_local_change(
    wf: &mut Workflow,
    e: &StoredEvent,
    changes: &[workflow::FieldChange],
) -> Result<()> {
    let before = wf.spec.clone();
    workflow::apply(&mut wf.spec, changes)
        .map_err(|m| Error::Corrupt(format!("event {}: {m}", e.id)))?;
    wf.updated_at = e.recorded_at;
    wf.revision = e.stream_version;
    // What this device wrote itself over an approved part it approves; what
    // it left alone keeps the approval it had.
    let approved = wf
        .approval
        .approved_spec
        .after_local_change(&before, &wf.spec, changes);
    wf.approval = approval(approved, &wf.spec);
    // A local edit is valid (or it was rejected) and settles the conflicts
    // on the fields it wrote.
    wf.conflicts
        .retain(|c| !changes.iter().any(|ch| ch.field == c.field));
    wf.validation_errors.clear();
    Ok(())
}

const INSERT_WORKFLOW: &str =
    "INSERT INTO workflows (id, name, description, version, config, tags, created_at,
    updated_at, deleted, revision, conflicts, validation_errors, approved_spec, approved)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?11, ?7, 0, ?8, ?9, ?10, ?12, ?13)";
const UPDATE_WORKFLOW: &str =
    "UPDATE workflows SET name = ?2, description = ?3, version = ?4, config = ?5, tags = ?6,
    updated_at = ?7, revision = ?8, conflicts = ?9, validation_errors = ?10, created_at = ?11,
    approved_spec = ?12, approved = ?13 WHERE id = ?1";

/// What a workflow created here starts with approved: all of it, unless it
/// is a copy, which inherits what its source had approved (a copy must not
/// turn another device's unapproved command into an approved one).
fn created_approval(
    conn: &Connection,
    p: &flowkeep_core::events::WorkflowCreatedV1,
) -> Result<TrustedSpec> {
    if let Some(source) = &p.duplicated_from {
        if let Some(l) = queries::workflows::load(conn, source)? {
            return Ok(l.workflow.approval.approved_spec);
        }
    }
    Ok(TrustedSpec::of(&p.spec))
}

/// The approval state of `spec` given what this device approved.
fn approval(approved_spec: TrustedSpec, spec: &WorkflowSpec) -> Approval {
    Approval {
        approved: approved_spec == TrustedSpec::of(spec),
        approved_spec,
    }
}

/// Binds a workflow's columns as ?1 id, ?2 name, ?3 description, ?4 version,
/// ?5 config, ?6 tags, ?7 updated_at, ?8 revision, ?9 conflicts,
/// ?10 validation_errors, ?11 created_at, ?12 approved_spec, ?13 approved.
fn write_workflow_row(conn: &Connection, sql: &str, wf: &Workflow) -> Result<()> {
    conn.prepare_cached(sql)?.execute(params![
        wf.id,
        wf.spec.name,
        wf.spec.description,
        wf.spec.version,
        serde_json::to_string(&wf.spec.config)?,
        serde_json::to_string(&wf.spec.tags)?,
        wf.updated_at,
        wf.revision as i64,
        serde_json::to_string(&wf.conflicts)?,
        serde_json::to_string(&wf.validation_errors)?,
        wf.created_at,
        serde_json::to_string(&wf.approval.approved_spec)?,
        wf.approval.approved as i64,
    ])?;
    Ok(())
}

/// A merge from another device: the workflow may be new here, deleted or
/// restored; its conflicts are replaced by the document's; a config no
/// device wrote as such may break its rules, and is kept and flagged.
fn apply_remote(
    conn: &Connection,
    e: &StoredEvent,
    p: &flowkeep_core::events::RemoteMergedV1,
) -> Result<()> {
    let existing = queries::workflows::load(conn, &e.stream_id)?;
    let is_new = existing.is_none();
    let (mut wf, was_deleted) = match existing {
        Some(l) => (l.workflow, l.deleted),
        None => (
            Workflow {
                id: e.stream_id.clone(),
                spec: WorkflowSpec::default(),
                created_at: p.created_at.unwrap_or(e.recorded_at),
                updated_at: e.recorded_at,
                revision: 0,
                conflicts: vec![],
                validation_errors: vec![],
                // Nothing of it is approved here yet.
                approval: Approval::default(),
            },
            false,
        ),
    };
    workflow::apply(&mut wf.spec, &p.changes)
        .map_err(|m| Error::Corrupt(format!("event {}: {m}", e.id)))?;
    wf.updated_at = e.recorded_at;
    wf.revision = e.stream_version;
    wf.conflicts = p.conflicts.clone();
    // Another device's change approves nothing here.
    wf.approval = approval(wf.approval.approved_spec.clone(), &wf.spec);
    // Without file checks: a rebuild must flag exactly what live projection did.
    wf.validation_errors = wf.spec.config.validate(&Default::default());
    write_workflow_row(
        conn,
        if is_new {
            INSERT_WORKFLOW
        } else {
            UPDATE_WORKFLOW
        },
        &wf,
    )?;
    let deleted = p.deleted.unwrap_or(was_deleted);
    conn.prepare_cached("UPDATE workflows SET deleted = ?2 WHERE id = ?1")?
        .execute(params![wf.id, deleted as i64])?;
    if deleted {
        conn.prepare_cached("DELETE FROM workflow_tags WHERE workflow_id = ?1")?
            .execute([&wf.id])?;
        conn.prepare_cached("DELETE FROM configs WHERE workflow_id = ?1")?
            .execute([&wf.id])?;
    } else {
        write_tags(conn, &wf)?;
        write_configs(conn, &wf)?;
    }
    Ok(())
}

fn live_workflow(conn: &Connection, e: &StoredEvent) -> Result<Workflow> {
    match queries::workflows::load(conn, &e.stream_id)? {
        Some(l) if !l.deleted => Ok(l.workflow),
        _ => Err(Error::Corrupt(format!(
            "event {} changes a workflow that does not exist",
            e.id
        ))),
    }
}

fn expect_one(n: usize, e: &StoredEvent) -> Result<()> {
    if n == 1 {
        Ok(())
    } else {
        Err(Error::Corrupt(format!(
            "event {} names execution {}, which does not exist",
            e.id, e.stream_id
        )))
    }
}

fn write_tags(conn: &Connection, wf: &Workflow) -> Result<()> {
    conn.prepare_cached("DELETE FROM workflow_tags WHERE workflow_id = ?1")?
        .execute([&wf.id])?;
    let mut insert =
        conn.prepare_cached("INSERT INTO workflow_tags (tag, workflow_id) VALUES (?1, ?2)")?;
    for tag in &wf.spec.tags {
        insert.execute([tag, &wf.id])?;
    }
    Ok(())
}

/// One `configs` row per field, holding the value a run would get (the set
/// value, else the default), as JSON text.
fn write_configs(conn: &Connection, wf: &Workflow) -> Result<()> {
    conn.prepare_cached("DELETE FROM configs WHERE workflow_id = ?1")?
        .execute([&wf.id])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO configs (id, workflow_id, key, value, type) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let spec: &WorkflowSpec = &wf.spec;
    for field in &spec.config.fields {
        let value = spec
            .config
            .effective_value(field)
            .map(|v| Sql::Text(v.to_string()))
            .unwrap_or(Sql::Null);
        insert.execute(params![
            format!("{}/{}", wf.id, field.key),
            wf.id,
            field.key,
            value,
            field.kind.as_str()
        ])?;
    }
    Ok(())
}

/// Indexes that only serve read queries. A rebuild drops them, replays,
/// and creates them again: one bulk build per index instead of a million
/// incremental inserts. Indexes the projection's own statements use
/// (tags and configs by workflow, executions by start time for prune
/// replay) stay, or the replay itself would scan.
const QUERY_ONLY_INDEXES: [&str; 6] = [
    "workflows_by_name",
    "workflows_by_created",
    "workflows_by_updated",
    "executions_by_workflow",
    "executions_by_workflow_status",
    "executions_by_status",
];

/// Empties the read tables and replays the whole log into them, in the
/// caller's transaction.
pub fn rebuild(conn: &Connection, progress: &mut dyn FnMut(u64)) -> Result<u64> {
    for t in READ_TABLES {
        conn.execute(&format!("DELETE FROM {t}"), [])?;
    }
    let mut deferred = Vec::new();
    for name in QUERY_ONLY_INDEXES {
        let sql: Option<String> = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(sql) = sql {
            conn.execute(&format!("DROP INDEX {name}"), [])?;
            deferred.push(sql);
        }
    }
    let mut replayed = 0;
    let n = event_log::for_each(conn, |e| {
        apply(conn, &e)?;
        replayed += 1;
        if replayed % 10_000 == 0 {
            progress(replayed);
        }
        Ok(())
    })?;
    progress(n);
    for sql in deferred {
        conn.execute(&sql, [])?;
    }
    Ok(n)
}
