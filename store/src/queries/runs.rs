//! Run reads: by id, and filtered lists newest first with keyset
//! pagination. The filter's SQL is shared with prune, count and export.

use flowkeep_core::commands::{Page, RunFilter, DEFAULT_PAGE};
use flowkeep_core::run::{Run, RunStatus};
use rusqlite::types::Value as Sql;
use rusqlite::{params_from_iter, Connection, OptionalExtension, Row};
use serde_json::Value;

use crate::{cursor, Error, Result};

pub const COLUMNS: &str =
    "id, workflow_id, status, output, started_at, completed_at, duration_ms, exit_code, error, trigger, device_id,
     workflow_revision, config_hash, occurrence";

pub fn from_row(r: &Row<'_>) -> Result<Run> {
    let status: String = r.get(2)?;
    let output: Option<String> = r.get(3)?;
    Ok(Run {
        id: r.get(0)?,
        workflow_id: r.get(1)?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| Error::Corrupt(format!("execution status {status}")))?,
        output: output.map(|o| serde_json::from_str(&o)).transpose()?,
        started_at: r.get(4)?,
        completed_at: r.get(5)?,
        duration_ms: r.get(6)?,
        exit_code: r.get(7)?,
        error: r.get(8)?,
        trigger: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
        device_id: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
        workflow_revision: r.get::<_, Option<i64>>(11)?.map(|v| v.max(0) as u64),
        config_hash: r.get(12)?,
        occurrence: r.get(13)?,
    })
}

pub fn get(conn: &Connection, id: &str) -> Result<Run> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM executions WHERE id = ?1"))?;
    match stmt.query_row([id], |r| Ok(from_row(r))).optional()? {
        Some(e) => e,
        None => Err(Error::run_not_found(id)),
    }
}

/// `WHERE` clause (starting with `WHERE 1`) and its arguments for a filter.
pub fn filter_sql(f: &RunFilter) -> (String, Vec<Sql>) {
    let mut sql = String::from("WHERE 1");
    let mut args = Vec::new();
    if let Some(w) = &f.workflow_id {
        args.push(Sql::Text(w.clone()));
        sql.push_str(&format!(" AND workflow_id = ?{}", args.len()));
    }
    if let Some(s) = f.status {
        args.push(Sql::Text(s.as_str().to_owned()));
        sql.push_str(&format!(" AND status = ?{}", args.len()));
    }
    if let Some(t) = f.since {
        args.push(Sql::Integer(t));
        sql.push_str(&format!(" AND started_at >= ?{}", args.len()));
    }
    if let Some(t) = f.until {
        args.push(Sql::Integer(t));
        sql.push_str(&format!(" AND started_at < ?{}", args.len()));
    }
    (sql, args)
}

pub fn list(
    conn: &Connection,
    f: &RunFilter,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Page<Run>> {
    let limit = limit.unwrap_or(DEFAULT_PAGE) as usize;
    let (mut where_sql, mut args) = filter_sql(f);
    if let Some(c) = cursor {
        let (key, id) = cursor::decode(c, "started")?;
        let Some(at) = key.as_i64() else {
            return Err(Error::invalid(
                "cursor",
                "format",
                "not a cursor from a previous page of this listing",
            ));
        };
        args.push(Sql::Integer(at));
        args.push(Sql::Text(id));
        let n = args.len();
        where_sql.push_str(&format!(" AND (started_at, id) < (?{}, ?{n})", n - 1));
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM executions {where_sql} ORDER BY started_at DESC, id DESC LIMIT {}",
        limit + 1
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut items = Vec::with_capacity(limit + 1);
    while let Some(r) = rows.next()? {
        items.push(from_row(r)?);
    }
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        let last = items.last().expect("a full page");
        Some(cursor::encode(
            "started",
            Value::from(last.started_at),
            &last.id,
        ))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

pub fn count(conn: &Connection, f: &RunFilter) -> Result<u64> {
    let (where_sql, args) = filter_sql(f);
    let n: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM executions {where_sql}"))?
        .query_row(params_from_iter(args), |r| r.get(0))?;
    Ok(n as u64)
}

/// The rows a prune deletes: the finished runs a filter matches (running
/// and queued runs are never pruned).
pub fn prune_filter_sql(f: &RunFilter) -> (String, Vec<Sql>) {
    let (mut sql, args) = filter_sql(f);
    sql.push_str(" AND status IN ('succeeded', 'failed', 'cancelled')");
    (sql, args)
}
