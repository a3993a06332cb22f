//! samod's document storage in this device's SQLite file (`sync_kv`), on a
//! connection of its own; calls run on the blocking pool.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use samod::storage::StorageKey;

#[derive(Clone)]
pub(crate) struct DeviceStorage {
    conn: Arc<Mutex<Connection>>,
}

impl DeviceStorage {
    pub(crate) fn open(db: &Path) -> rusqlite::Result<DeviceStorage> {
        let conn = Connection::open(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(DeviceStorage {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> impl Future<Output = Option<T>> + Send {
        let conn = self.conn.clone();
        async move {
            let r = tokio::task::spawn_blocking(move || {
                f(&conn.lock().unwrap_or_else(|p| p.into_inner()))
            })
            .await;
            match r {
                Ok(Ok(v)) => Some(v),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "sync storage error");
                    None
                }
                Err(_) => None,
            }
        }
    }
}

fn key(k: &StorageKey) -> String {
    k.into_iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("/")
}

impl samod::storage::Storage for DeviceStorage {
    fn load(&self, k: StorageKey) -> impl Future<Output = Option<Vec<u8>>> + Send {
        let k = key(&k);
        let fut = self.run(move |c| {
            c.query_row("SELECT data FROM sync_kv WHERE key = ?1", [k], |r| r.get(0))
                .optional()
        });
        async move { fut.await.flatten() }
    }

    fn load_range(
        &self,
        prefix: StorageKey,
    ) -> impl Future<Output = HashMap<StorageKey, Vec<u8>>> + Send {
        let p = key(&prefix);
        let fut = self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT key, data FROM sync_kv WHERE key = ?1 OR (key >= ?2 AND key < ?3)",
            )?;
            let rows = stmt.query_map(params![p, format!("{p}/"), format!("{p}0")], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        });
        async move {
            fut.await
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| Some((StorageKey::from_parts(k.split('/')).ok()?, v)))
                .collect()
        }
    }

    fn put(&self, k: StorageKey, data: Vec<u8>) -> impl Future<Output = ()> + Send {
        let k = key(&k);
        let fut = self.run(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO sync_kv (key, data) VALUES (?1, ?2)",
                params![k, data],
            )
        });
        async move {
            fut.await;
        }
    }

    fn delete(&self, k: StorageKey) -> impl Future<Output = ()> + Send {
        let k = key(&k);
        let fut = self.run(move |c| c.execute("DELETE FROM sync_kv WHERE key = ?1", [k]));
        async move {
            fut.await;
        }
    }
}
