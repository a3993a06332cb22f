//! The server's SQLite file: workspaces (with hashed tokens) and the
//! key/value blobs samod stores for every workspace.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("a workspace named \"{0}\" already exists")]
    Conflict(String),
    #[error("invalid workspace name \"{0}\": use 1 to 64 letters, digits, - or _")]
    Invalid(String),
}

pub struct Db {
    conn: Mutex<Connection>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    data BLOB NOT NULL
) WITHOUT ROWID;
";

impl Db {
    pub fn open(path: &Path) -> Result<Db, Error> {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // A committed put survives a crash of the server process.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn create_workspace(
        &self,
        name: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<Workspace, Error> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(Error::Invalid(name.to_owned()));
        }
        let id = crate::token::random_hex(8);
        let conn = self.conn();
        match conn.execute(
            "INSERT INTO workspaces (id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, name, token_hash, now],
        ) {
            Ok(_) => Ok(Workspace {
                id,
                name: name.to_owned(),
                created_at: now,
            }),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(Error::Conflict(name.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn workspace_by_token_hash(&self, token_hash: &str) -> Result<Option<Workspace>, Error> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, name, created_at FROM workspaces WHERE token_hash = ?1",
                [token_hash],
                |r| {
                    Ok(Workspace {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn workspaces(&self) -> Result<Vec<Workspace>, Error> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id, name, created_at FROM workspaces ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok(Workspace {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces a workspace's token (the old one stops working).
    pub fn rotate_token(&self, name: &str, token_hash: &str) -> Result<bool, Error> {
        let n = self.conn().execute(
            "UPDATE workspaces SET token_hash = ?2 WHERE name = ?1",
            params![name, token_hash],
        )?;
        Ok(n == 1)
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self
            .conn()
            .query_row("SELECT data FROM kv WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Every key equal to `prefix` or below `prefix/`.
    pub fn range(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT key, data FROM kv WHERE key = ?1 OR (key >= ?2 AND key < ?3)",
        )?;
        let rows = stmt.query_map(
            params![prefix, format!("{prefix}/"), format!("{prefix}0")],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn put(&self, key: &str, data: &[u8]) -> Result<(), Error> {
        self.conn()
            .prepare_cached("INSERT OR REPLACE INTO kv (key, data) VALUES (?1, ?2)")?
            .execute(params![key, data])?;
        Ok(())
    }

    pub fn delete(&self, key: &str) -> Result<(), Error> {
        self.conn()
            .prepare_cached("DELETE FROM kv WHERE key = ?1")?
            .execute([key])?;
        Ok(())
    }

    pub fn ping(&self) -> bool {
        self.conn()
            .query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
            .is_ok()
    }
}
