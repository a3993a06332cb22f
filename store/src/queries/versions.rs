//! Snapshots of workflow versions: a cache the projection fills at every
//! `SNAPSHOT_EVERY`th revision so that reading a past version replays a
//! few hundred events, not the whole history.

use flowkeep_core::versions::WorkflowVersion;
use rusqlite::{params, Connection, OptionalExtension};

use crate::Result;

/// A snapshot is kept at every revision divisible by this.
pub const SNAPSHOT_EVERY: u64 = 500;

/// Where a past version is asked for.
pub enum Before {
    /// At or before this revision.
    Revision(u64),
    /// Recorded at or before this instant (Unix ms).
    Time(i64),
}

pub fn save(conn: &Connection, v: &WorkflowVersion, recorded_at: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO version_snapshots (workflow_id, revision, recorded_at, version)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        v.id,
        v.revision as i64,
        recorded_at,
        serde_json::to_string(v)?
    ])?;
    Ok(())
}

/// The newest snapshot of the workflow at or before `before`.
pub fn latest(conn: &Connection, id: &str, before: &Before) -> Result<Option<WorkflowVersion>> {
    let (sql, bound) = match before {
        Before::Revision(n) => (
            "SELECT version FROM version_snapshots WHERE workflow_id = ?1 AND revision <= ?2
             ORDER BY revision DESC LIMIT 1",
            i64::try_from(*n).unwrap_or(i64::MAX),
        ),
        Before::Time(t) => (
            "SELECT version FROM version_snapshots WHERE workflow_id = ?1 AND recorded_at <= ?2
             ORDER BY revision DESC LIMIT 1",
            *t,
        ),
    };
    let text: Option<String> = conn
        .prepare_cached(sql)?
        .query_row(params![id, bound], |r| r.get(0))
        .optional()?;
    // A snapshot that does not read is only a missing cache entry.
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}
