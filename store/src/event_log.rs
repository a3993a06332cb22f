//! The append-only event log. Events are inserted, never updated or deleted.

use flowkeep_core::events::Event;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{Error, Result};

/// An event as stored: its place in the log, its stream and who wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub id: String,
    pub stream_id: String,
    pub stream_version: u64,
    pub event: Event,
    pub actor: String,
    pub device_id: String,
    pub origin: String,
    pub recorded_at: i64,
}

/// What the writer expects a stream's version to be before appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version (optimistic concurrency).
    Version(u64),
    /// Append whatever the version is; the caller checked state in this transaction.
    Any,
}

pub struct NewEvent<'a> {
    pub stream_id: &'a str,
    pub expected: Expected,
    pub event: Event,
    pub actor: &'a str,
    pub device_id: &'a str,
    pub recorded_at: i64,
    /// `local`, or `remote` for changes that arrived through sync.
    pub origin: &'a str,
}

pub fn stream_version(conn: &Connection, stream_id: &str) -> Result<u64> {
    // Not `max(stream_version)`: that form made SQLite re-prepare the
    // statement on every call (seen in profiles of bulk imports).
    let v: Option<i64> = conn
        .prepare_cached(
            "SELECT stream_version FROM events WHERE stream_id = ?1 ORDER BY stream_version DESC LIMIT 1",
        )?
        .query_row([stream_id], |r| r.get(0))
        .optional()?;
    Ok(v.unwrap_or(0) as u64)
}

pub fn append(conn: &Connection, new: NewEvent<'_>) -> Result<StoredEvent> {
    // A new stream needs no lookup: version 1 is inserted and
    // UNIQUE(stream_id, stream_version) rejects it if the stream exists.
    let current = match new.expected {
        Expected::NoStream => 0,
        _ => stream_version(conn, new.stream_id)?,
    };
    match new.expected {
        Expected::Version(v) if v != current => {
            return Err(Error::Conflict(format!(
                "{} was changed by someone else: expected revision {v}, it is now at {current}; reload and try again",
                new.stream_id
            )));
        }
        _ => {}
    }
    let id = uuid::Uuid::now_v7().to_string();
    let version = current + 1;
    let kind = new.event.kind();
    let result = conn
        .prepare_cached(
            "INSERT INTO events (id, stream_id, stream_version, kind, schema_version, payload, actor, device_id, origin, recorded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?10, ?9)",
        )?
        .execute(params![
            id,
            new.stream_id,
            version as i64,
            kind,
            new.event.schema_version(),
            new.event.payload_json(),
            new.actor,
            new.device_id,
            new.recorded_at,
            new.origin,
        ]);
    match result {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            let message = match new.expected {
                Expected::NoStream => format!("{} already exists", new.stream_id),
                // Another connection appended the same version first.
                _ => format!("{} was changed concurrently; try again", new.stream_id),
            };
            return Err(Error::Conflict(message));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(StoredEvent {
        seq: conn.last_insert_rowid(),
        id,
        stream_id: new.stream_id.to_owned(),
        stream_version: version,
        event: new.event,
        actor: new.actor.to_owned(),
        device_id: new.device_id.to_owned(),
        origin: new.origin.to_owned(),
        recorded_at: new.recorded_at,
    })
}

const COLUMNS: &str =
    "seq, id, stream_id, stream_version, kind, schema_version, payload, actor, device_id, origin, recorded_at";

fn from_row(r: &Row<'_>) -> Result<StoredEvent> {
    let kind: String = r.get(4)?;
    let version: u32 = r.get(5)?;
    let payload: String = r.get(6)?;
    Ok(StoredEvent {
        seq: r.get(0)?,
        id: r.get(1)?,
        stream_id: r.get(2)?,
        stream_version: r.get::<_, i64>(3)? as u64,
        event: Event::decode(&kind, version, &payload)?,
        actor: r.get(7)?,
        device_id: r.get(8)?,
        origin: r.get(9)?,
        recorded_at: r.get(10)?,
    })
}

pub fn read_stream(conn: &Connection, stream_id: &str) -> Result<Vec<StoredEvent>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events WHERE stream_id = ?1 ORDER BY stream_version"
    ))?;
    let mut rows = stmt.query([stream_id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(from_row(r)?);
    }
    Ok(out)
}

/// Calls `f` on the events of one stream after version `after`, in order,
/// until it returns `false`: only what is read is decoded.
pub fn for_each_in_stream(
    conn: &Connection,
    stream_id: &str,
    after: u64,
    mut f: impl FnMut(StoredEvent) -> Result<bool>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events WHERE stream_id = ?1 AND stream_version > ?2 ORDER BY stream_version"
    ))?;
    let mut rows = stmt.query(rusqlite::params![stream_id, after as i64])?;
    while let Some(r) = rows.next()? {
        if !f(from_row(r)?)? {
            break;
        }
    }
    Ok(())
}

/// Calls `f` on every event in log order, without loading the log into memory.
pub fn for_each(conn: &Connection, mut f: impl FnMut(StoredEvent) -> Result<()>) -> Result<u64> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM events ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        f(from_row(r)?)?;
        n += 1;
    }
    Ok(n)
}

pub fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowkeep_core::events::{Event, RunDeletedV1};

    fn conn() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::migrate::migrate(&mut c).unwrap();
        c
    }

    fn event(stream: &str, expected: Expected) -> NewEvent<'_> {
        NewEvent {
            stream_id: stream,
            expected,
            event: Event::RunDeleted(RunDeletedV1 {
                workflow_id: "w".into(),
            }),
            actor: "a",
            device_id: "d",
            recorded_at: 1,
            origin: "local",
        }
    }

    #[test]
    fn versions_count_up_per_stream_and_expectations_are_enforced() {
        let c = conn();
        assert_eq!(
            append(&c, event("s", Expected::NoStream))
                .unwrap()
                .stream_version,
            1
        );
        assert_eq!(
            append(&c, event("s", Expected::Version(1)))
                .unwrap()
                .stream_version,
            2
        );
        assert_eq!(
            append(&c, event("s", Expected::Any))
                .unwrap()
                .stream_version,
            3
        );
        assert_eq!(
            append(&c, event("t", Expected::NoStream))
                .unwrap()
                .stream_version,
            1
        );
        assert_eq!(stream_version(&c, "s").unwrap(), 3);
        assert_eq!(stream_version(&c, "nothing").unwrap(), 0);
        let e = append(&c, event("s", Expected::NoStream)).unwrap_err();
        assert!(
            matches!(&e, Error::Conflict(m) if m == "s already exists"),
            "{e}"
        );
        let e = append(&c, event("s", Expected::Version(2))).unwrap_err();
        assert!(
            matches!(&e, Error::Conflict(m) if m.contains("expected revision 2, it is now at 3")),
            "{e}"
        );
        let n: i64 = c
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 4, "rejected appends wrote nothing");
    }

    #[test]
    fn stored_events_read_back_in_order() {
        let c = conn();
        append(&c, event("s", Expected::NoStream)).unwrap();
        append(&c, event("s", Expected::Any)).unwrap();
        let read = read_stream(&c, "s").unwrap();
        assert_eq!(
            read.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
            [1, 2]
        );
        let mut seen = 0;
        for_each(&c, |_| {
            seen += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, 2);
    }
}
