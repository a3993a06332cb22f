//! Workflow reads: by id, and the list with search, tag filter, sort and
//! keyset pagination.

use flowkeep_core::commands::{
    CountWorkflows, ListTags, ListWorkflows, Page, TagCount, WorkflowName, WorkflowSort,
    DEFAULT_PAGE,
};
use flowkeep_core::run::RunStatus;
use flowkeep_core::workflow::{Approval, LastRun, Workflow, WorkflowSpec, WorkflowSummary};
use rusqlite::types::Value as Sql;
use rusqlite::{params_from_iter, Connection, OptionalExtension, Row};
use serde_json::Value;

use crate::{cursor, Error, Result};

const COLUMNS: &str = "w.id, w.name, w.description, w.version, w.config, w.tags, w.created_at, w.updated_at, w.revision, w.deleted, w.conflicts, w.validation_errors, w.approved_spec, w.approved";

pub struct Loaded {
    pub workflow: Workflow,
    pub deleted: bool,
}

fn from_row(r: &Row<'_>) -> Result<Loaded> {
    let config: String = r.get(4)?;
    let tags: String = r.get(5)?;
    Ok(Loaded {
        workflow: Workflow {
            id: r.get(0)?,
            spec: WorkflowSpec {
                name: r.get(1)?,
                description: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                version: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                tags: serde_json::from_str(&tags)?,
                config: serde_json::from_str(&config)?,
            },
            created_at: r.get(6)?,
            updated_at: r.get(7)?,
            revision: r.get::<_, i64>(8)? as u64,
            conflicts: serde_json::from_str(&r.get::<_, String>(10)?)?,
            validation_errors: serde_json::from_str(&r.get::<_, String>(11)?)?,
            approval: Approval {
                approved_spec: serde_json::from_str(&r.get::<_, String>(12)?)?,
                approved: r.get::<_, i64>(13)? != 0,
            },
        },
        deleted: r.get::<_, i64>(9)? != 0,
    })
}

/// The workflow row, deleted or not.
pub fn load(conn: &Connection, id: &str) -> Result<Option<Loaded>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM workflows w WHERE w.id = ?1"
    ))?;
    let row = stmt.query_row([id], |r| Ok(from_row(r))).optional()?;
    row.transpose()
}

/// A live (not deleted) workflow, or `NotFound`.
pub fn get(conn: &Connection, id: &str) -> Result<Workflow> {
    match load(conn, id)? {
        Some(l) if !l.deleted => Ok(l.workflow),
        _ => Err(Error::workflow_not_found(id)),
    }
}

/// Each id's name, in the order given; `None` for a deleted or unknown one.
pub fn names(conn: &Connection, ids: &[String]) -> Result<Vec<WorkflowName>> {
    let mut stmt =
        conn.prepare_cached("SELECT name FROM workflows WHERE id = ?1 AND deleted = 0")?;
    ids.iter()
        .map(|id| {
            let name = stmt.query_row([id], |r| r.get(0)).optional()?;
            Ok(WorkflowName {
                id: id.clone(),
                name,
            })
        })
        .collect()
}

/// A list row's own columns.
const PAGE_COLUMNS: &str =
    "w.id, w.name, w.description, w.version, w.tags, w.created_at, w.updated_at, w.revision, w.approved";
/// Its newest run, from the (workflow_id, started_at, id) index: two index
/// probes a row. Read for the rows of the page only: in the same SELECT as
/// a sort that has no index (a search), SQLite would read it for every
/// matching row before sorting.
const LAST_RUN_COLUMNS: &str =
    "(SELECT e.status FROM executions e WHERE e.workflow_id = w.id ORDER BY e.started_at DESC, e.id DESC LIMIT 1),
     (SELECT e.started_at FROM executions e WHERE e.workflow_id = w.id ORDER BY e.started_at DESC, e.id DESC LIMIT 1)";

fn summary_from_row(r: &Row<'_>) -> Result<WorkflowSummary> {
    let tags: String = r.get(4)?;
    Ok(WorkflowSummary {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        version: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        tags: serde_json::from_str(&tags)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        revision: r.get::<_, i64>(7)? as u64,
        approved: r.get::<_, i64>(8)? != 0,
        last_run: match (r.get::<_, Option<String>>(9)?, r.get::<_, Option<i64>>(10)?) {
            (Some(status), Some(started_at)) => Some(LastRun {
                status: RunStatus::parse(&status).ok_or_else(|| {
                    Error::Corrupt(format!("execution status {status:?} in the read table"))
                })?,
                started_at,
            }),
            _ => None,
        },
    })
}

/// Tags of live workflows, by name, with how many carry each.
pub fn tags(conn: &Connection, q: &ListTags) -> Result<Vec<TagCount>> {
    let prefix = format!("{}%", escape_like(q.prefix.as_deref().unwrap_or("").trim()));
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    let mut stmt = conn.prepare_cached(
        "SELECT t.tag, count(*) FROM workflow_tags t JOIN workflows w ON w.id = t.workflow_id
         WHERE w.deleted = 0 AND t.tag LIKE ?1 ESCAPE '\\'
         GROUP BY t.tag ORDER BY t.tag LIMIT ?2",
    )?;
    let rows = stmt.query_map(rusqlite::params![prefix, limit], |r| {
        Ok(TagCount {
            tag: r.get(0)?,
            workflows: r.get::<_, i64>(1)? as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// `WHERE` (live workflows, or only deleted ones) and its arguments for a
/// search and a tag, as a list and its count share them.
fn filter_sql(search: Option<&str>, tag: Option<&str>, deleted: bool) -> (String, Vec<Sql>) {
    let mut sql = format!("WHERE w.deleted = {}", i64::from(deleted));
    let mut args: Vec<Sql> = Vec::new();
    if let Some(search) = search {
        args.push(Sql::Text(format!("%{}%", escape_like(search))));
        let n = args.len();
        sql.push_str(&format!(
            " AND (w.name LIKE ?{n} ESCAPE '\\' OR w.description LIKE ?{n} ESCAPE '\\')"
        ));
    }
    if let Some(tag) = tag {
        args.push(Sql::Text(tag.trim().to_owned()));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM workflow_tags t WHERE t.tag = ?{} AND t.workflow_id = w.id)",
            args.len()
        ));
    }
    (sql, args)
}

/// How many live workflows a search and tag match.
pub fn count(conn: &Connection, q: &CountWorkflows) -> Result<u64> {
    let (where_sql, args) = filter_sql(q.search.as_deref(), q.tag.as_deref(), false);
    let n: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM workflows w {where_sql}"))?
        .query_row(params_from_iter(args), |r| r.get(0))?;
    Ok(n as u64)
}

pub fn list(conn: &Connection, q: &ListWorkflows) -> Result<Page<WorkflowSummary>> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE) as usize;
    let (sort_name, sort_col) = match q.sort {
        WorkflowSort::Name => ("name", "w.name COLLATE NOCASE"),
        WorkflowSort::Created => ("created", "w.created_at"),
        WorkflowSort::Updated => ("updated", "w.updated_at"),
    };
    let (where_sql, mut args) = filter_sql(q.search.as_deref(), q.tag.as_deref(), q.deleted);
    let mut sql = format!("SELECT {PAGE_COLUMNS} FROM workflows w {where_sql}");
    let op = if q.desc { "<" } else { ">" };
    if let Some(c) = &q.cursor {
        let (key, id) = cursor::decode(c, sort_name)?;
        let key = match key {
            Value::String(s) => Sql::Text(s),
            Value::Number(n) if n.is_i64() => Sql::Integer(n.as_i64().unwrap()),
            _ => {
                return Err(Error::invalid(
                    "cursor",
                    "format",
                    "not a cursor from a previous page of this listing",
                ))
            }
        };
        args.push(key);
        args.push(Sql::Text(id));
        let n = args.len();
        sql.push_str(&format!(" AND ({sort_col}, w.id) {op} (?{}, ?{n})", n - 1));
    }
    let dir = if q.desc { "DESC" } else { "ASC" };
    let order = format!("ORDER BY {sort_col} {dir}, w.id {dir}");
    let sql = format!(
        "WITH page AS MATERIALIZED ({sql} {order} LIMIT {})
         SELECT {PAGE_COLUMNS}, {LAST_RUN_COLUMNS} FROM page w {order}",
        limit + 1
    );

    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut items = Vec::with_capacity(limit + 1);
    while let Some(r) = rows.next()? {
        items.push(summary_from_row(r)?);
    }
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        let last = items.last().expect("a full page");
        let key = match q.sort {
            WorkflowSort::Name => Value::String(last.name.clone()),
            WorkflowSort::Created => last.created_at.into(),
            WorkflowSort::Updated => last.updated_at.into(),
        };
        Some(cursor::encode(sort_name, key, &last.id))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Ids of live workflows matching a search and tag (as `list` filters), by
/// name then id: every one, no paging (an export).
pub fn ids(conn: &Connection, search: Option<&str>, tag: Option<&str>) -> Result<Vec<String>> {
    let (where_sql, args) = filter_sql(search, tag, false);
    let mut stmt = conn.prepare(&format!(
        "SELECT w.id FROM workflows w {where_sql} ORDER BY w.name COLLATE NOCASE, w.id"
    ))?;
    let ids = stmt
        .query_map(params_from_iter(args), |r| r.get(0))?
        .collect::<std::result::Result<Vec<String>, _>>()?;
    Ok(ids)
}

/// Ids of live workflows with exactly this name.
pub fn ids_named(conn: &Connection, name: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT id FROM workflows WHERE deleted = 0 AND name = ?1 ORDER BY id")?;
    let ids = stmt
        .query_map([name], |r| r.get(0))?
        .collect::<std::result::Result<Vec<String>, _>>()?;
    Ok(ids)
}
