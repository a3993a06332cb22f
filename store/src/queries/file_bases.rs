//! `file_bases`: what a workflow's file said at its last export or import
//! on this device (the base of the next import's three-way merge).

use flowkeep_core::workflow::WorkflowSpec;
use rusqlite::{params, Connection, OptionalExtension};

use crate::Result;

pub fn get(conn: &Connection, workflow_id: &str) -> Result<Option<WorkflowSpec>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT spec FROM file_bases WHERE workflow_id = ?1")?
        .query_row([workflow_id], |r| r.get(0))
        .optional()?;
    // A base that no longer reads (written by a later version) is as good
    // as none: the import then takes the file as it is.
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

pub fn set(conn: &Connection, workflow_id: &str, spec: &WorkflowSpec, now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO file_bases (workflow_id, spec, updated_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![workflow_id, serde_json::to_string(spec)?, now])?;
    Ok(())
}
