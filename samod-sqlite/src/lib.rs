//! samod's key/value document storage in one SQLite table (`key TEXT
//! PRIMARY KEY, data BLOB`), under a key prefix: the device keeps its
//! documents in `sync_kv` with no prefix, the server keeps every
//! workspace's in `kv` under `ws/<workspace-id>`. Calls run on tokio's
//! blocking pool; writes waiting at the same time are committed together
//! (`group_commit.rs`, `writes.rs`).
//!
//! samod's `Storage` has no way to report an error: through it, an error is
//! logged and reads as "nothing stored", which samod treats as a document it
//! does not have yet. The `try_` methods say what failed, for a caller that
//! must not carry on as if it had been stored: `guarded.rs` is samod's
//! `Storage` over them that reports each failure and then writes nothing
//! more (the sync server stops serving a workspace whose storage fails; a
//! device's sync fails before it records anything of that round).

pub mod group_commit;
pub mod guarded;
mod writes;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use samod::storage::StorageKey;

use group_commit::GroupCommit;
use writes::Write;

/// Why a storage call did not do what it was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The database refused or could not run it (disk full, I/O error, a
    /// constraint, the database gone).
    #[error("sync storage {what} failed: {reason}")]
    Failed { what: &'static str, reason: String },
    /// It never reached the database: the process is stopping, or the
    /// task writing it panicked.
    #[error("sync storage call dropped before it reached the database")]
    Dropped,
}

impl Error {
    pub(crate) fn sqlite(what: &'static str, e: &rusqlite::Error) -> Error {
        Error::Failed {
            what,
            reason: e.to_string(),
        }
    }
}

#[derive(Clone)]
pub struct SqliteStorage {
    conn: Arc<Mutex<Connection>>,
    /// Shared by every storage made from this one with `with_prefix`, so
    /// that their writes are committed together.
    writes: Arc<GroupCommit<Write>>,
    table: &'static str,
    /// Empty, or a path prefix without a trailing `/`.
    prefix: String,
}

impl SqliteStorage {
    /// Storage in `table` of `conn`'s database, keys under `prefix`. The
    /// table must exist with columns `key TEXT PRIMARY KEY, data BLOB`.
    pub fn new(conn: Arc<Mutex<Connection>>, table: &'static str, prefix: &str) -> SqliteStorage {
        SqliteStorage {
            writes: writes::writes(conn.clone()),
            conn,
            table,
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }

    /// The same table and connection under another prefix, writing with
    /// this storage's writes (a server's workspaces share one connection).
    pub fn with_prefix(&self, prefix: &str) -> SqliteStorage {
        SqliteStorage {
            prefix: prefix.trim_end_matches('/').to_owned(),
            ..self.clone()
        }
    }

    fn full(&self, key: &StorageKey) -> String {
        let parts: Vec<&str> = key.into_iter().map(|s| s.as_str()).collect();
        match self.prefix.as_str() {
            "" => parts.join("/"),
            p => format!("{p}/{}", parts.join("/")),
        }
    }

    fn strip(&self, full: &str) -> Option<StorageKey> {
        let rest = match self.prefix.as_str() {
            "" => full,
            p => full.strip_prefix(p)?.strip_prefix('/')?,
        };
        StorageKey::from_parts(rest.split('/')).ok()
    }

    fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> impl Future<Output = Result<T, Error>> + Send {
        let conn = self.conn.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                f(&conn.lock().unwrap_or_else(|p| p.into_inner()))
                    .map_err(|e| Error::sqlite(what, &e))
            })
            .await
            .unwrap_or(Err(Error::Dropped))
        }
    }
}

/// `r`'s value, or (logged) the default: what samod's `Storage` can say.
pub fn logged<T: Default>(r: Result<T, Error>) -> T {
    r.unwrap_or_else(|e| {
        tracing::error!(error = %e, "sync storage call failed");
        T::default()
    })
}

impl SqliteStorage {
    /// Every key under the prefix (relative to it) with the size of its
    /// data, without reading the data.
    pub fn sizes(&self) -> impl Future<Output = Result<Vec<(String, u64)>, Error>> + Send {
        let p = self.prefix.clone();
        let sql = if p.is_empty() {
            format!("SELECT key, length(data) FROM {}", self.table)
        } else {
            format!(
                "SELECT key, length(data) FROM {} WHERE key >= ?1 AND key < ?2",
                self.table
            )
        };
        self.run("sizes", move |c| {
            let mut stmt = c.prepare(&sql)?;
            let map = |r: &rusqlite::Row<'_>| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?));
            let rows = if p.is_empty() {
                stmt.query_map([], map)?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            } else {
                stmt.query_map(params![format!("{p}/"), format!("{p}0")], map)?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            };
            Ok(rows
                .into_iter()
                .map(|(k, n)| {
                    let k = if p.is_empty() {
                        k
                    } else {
                        k[p.len() + 1..].to_owned()
                    };
                    (k, n.max(0) as u64)
                })
                .collect())
        })
    }

    /// The data at `key`, `None` if nothing is stored there.
    pub fn try_load(
        &self,
        key: StorageKey,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Error>> + Send {
        let (k, sql) = (
            self.full(&key),
            format!("SELECT data FROM {} WHERE key = ?1", self.table),
        );
        self.run("load", move |c| {
            c.prepare_cached(&sql)?
                .query_row([k], |r| r.get(0))
                .optional()
        })
    }

    /// Every key equal to `prefix` or under it, with its data.
    pub fn try_load_range(
        &self,
        prefix: StorageKey,
    ) -> impl Future<Output = Result<HashMap<StorageKey, Vec<u8>>, Error>> + Send {
        let p = self.full(&prefix).trim_end_matches('/').to_owned();
        let sql = format!(
            "SELECT key, data FROM {} WHERE key = ?1 OR (key >= ?2 AND key < ?3)",
            self.table
        );
        let this = self.clone();
        let fut = self.run("load_range", move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            // Every key equal to `p` or below `p/` ('0' sorts right after '/').
            let rows = stmt.query_map(params![p, format!("{p}/"), format!("{p}0")], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        });
        async move {
            Ok(fut
                .await?
                .into_iter()
                .filter_map(|(k, v)| Some((this.strip(&k)?, v)))
                .collect())
        }
    }

    /// Stores `data` at `key`; resolves once committed. Queued when called,
    /// not when first polled, so writes are stored in the order asked.
    pub fn try_put(
        &self,
        key: StorageKey,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let (table, key) = (self.table, self.full(&key));
        self.writes.submit(Write::Put { table, key, data })
    }

    /// Removes `key`; resolves once committed (queued as `try_put`).
    pub fn try_delete(
        &self,
        key: StorageKey,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let (table, key) = (self.table, self.full(&key));
        self.writes.submit(Write::Delete { table, key })
    }
}

impl samod::storage::Storage for SqliteStorage {
    fn load(&self, key: StorageKey) -> impl Future<Output = Option<Vec<u8>>> + Send {
        let call = self.try_load(key);
        async move { logged(call.await) }
    }

    fn load_range(
        &self,
        prefix: StorageKey,
    ) -> impl Future<Output = HashMap<StorageKey, Vec<u8>>> + Send {
        let call = self.try_load_range(prefix);
        async move { logged(call.await) }
    }

    fn put(&self, key: StorageKey, data: Vec<u8>) -> impl Future<Output = ()> + Send {
        let call = self.try_put(key, data);
        async move { logged(call.await) }
    }

    fn delete(&self, key: StorageKey) -> impl Future<Output = ()> + Send {
        let call = self.try_delete(key);
        async move { logged(call.await) }
    }
}

#[cfg(test)]
mod tests {
    use samod::storage::Storage;

    use super::*;

    fn key(parts: &[&str]) -> StorageKey {
        StorageKey::from_parts(parts.iter().copied()).unwrap()
    }

    #[tokio::test]
    async fn prefixes_keep_namespaces_apart_and_ranges_stay_inside_them() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE kv (key TEXT PRIMARY KEY, data BLOB NOT NULL)")
            .unwrap();
        let conn = Arc::new(Mutex::new(conn));
        let a = SqliteStorage::new(conn.clone(), "kv", "ws/a");
        let b = SqliteStorage::new(conn.clone(), "kv", "ws/b/");
        let plain = SqliteStorage::new(conn, "kv", "");
        a.put(key(&["doc1", "snapshot", "x"]), vec![1]).await;
        a.put(key(&["doc1", "incremental", "y"]), vec![2]).await;
        a.put(key(&["doc10", "snapshot", "z"]), vec![3]).await;
        b.put(key(&["doc1", "snapshot", "x"]), vec![9]).await;
        assert_eq!(a.load(key(&["doc1", "snapshot", "x"])).await, Some(vec![1]));
        assert_eq!(b.load(key(&["doc1", "snapshot", "x"])).await, Some(vec![9]));
        let range = a.load_range(key(&["doc1"])).await;
        assert_eq!(range.len(), 2, "doc10 is not under doc1: {range:?}");
        assert_eq!(range[&key(&["doc1", "incremental", "y"])], vec![2]);
        // Without a prefix, keys are the server's full ones.
        assert_eq!(
            plain.load(key(&["ws", "b", "doc1", "snapshot", "x"])).await,
            Some(vec![9])
        );
        let mut sizes = a.sizes().await.unwrap();
        sizes.sort();
        assert_eq!(
            sizes,
            vec![
                ("doc1/incremental/y".to_owned(), 1),
                ("doc1/snapshot/x".to_owned(), 1),
                ("doc10/snapshot/z".to_owned(), 1)
            ]
        );
        a.delete(key(&["doc1", "snapshot", "x"])).await;
        assert_eq!(a.load(key(&["doc1", "snapshot", "x"])).await, None);
        assert_eq!(b.load(key(&["doc1", "snapshot", "x"])).await, Some(vec![9]));
    }
}
