//! samod's storage for one workspace, in whichever database the server
//! uses (see `db.rs`), and what happens when it fails.
//!
//! samod's `Storage` cannot report an error: a write that failed looks
//! stored, and a read that failed looks like a document the server does not
//! have. Carrying on would tell devices the server holds changes it never
//! stored (they would count them as confirmed) and serve a workspace with
//! documents missing. So a loaded workspace's storage is [`Watched`]: its
//! first failure is a [`Failure`] that closes the workspace's connections
//! with a reason (`http.rs`) and makes the next connection load the
//! workspace afresh from what is stored (`workspaces.rs`). Devices keep
//! their changes and send them again then: nothing that was not stored is
//! ever acknowledged for long.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use flowkeep_samod_sqlite::{Error as StorageError, SqliteStorage};
use futures::future::Either;
use samod::storage::{Storage, StorageKey};
use tokio::sync::watch;

use crate::db::PgStorage;
use crate::metrics::Metrics;

#[derive(Clone)]
pub enum WorkspaceStorage {
    Sqlite(SqliteStorage),
    Postgres(PgStorage),
}

impl WorkspaceStorage {
    /// Every key (relative to the workspace) with the size of its data.
    pub async fn sizes(&self) -> Result<Vec<(String, u64)>, StorageError> {
        match self {
            WorkspaceStorage::Sqlite(s) => s.sizes().await,
            WorkspaceStorage::Postgres(s) => s.sizes().await,
        }
    }

    pub async fn try_load(&self, key: StorageKey) -> Result<Option<Vec<u8>>, StorageError> {
        match self {
            WorkspaceStorage::Sqlite(s) => s.try_load(key).await,
            WorkspaceStorage::Postgres(s) => s.try_load(key).await,
        }
    }

    pub async fn try_load_range(
        &self,
        prefix: StorageKey,
    ) -> Result<HashMap<StorageKey, Vec<u8>>, StorageError> {
        match self {
            WorkspaceStorage::Sqlite(s) => s.try_load_range(prefix).await,
            WorkspaceStorage::Postgres(s) => s.try_load_range(prefix).await,
        }
    }

    // Writes are queued when asked for, not when first polled, so that
    // they are stored in the order samod asked (`group_commit.rs`).
    pub fn try_put(
        &self,
        key: StorageKey,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send + 'static {
        match self {
            WorkspaceStorage::Sqlite(s) => Either::Left(s.try_put(key, data)),
            WorkspaceStorage::Postgres(s) => Either::Right(s.try_put(key, data)),
        }
    }

    pub fn try_delete(
        &self,
        key: StorageKey,
    ) -> impl Future<Output = Result<(), StorageError>> + Send + 'static {
        match self {
            WorkspaceStorage::Sqlite(s) => Either::Left(s.try_delete(key)),
            WorkspaceStorage::Postgres(s) => Either::Right(s.try_delete(key)),
        }
    }
}

/// What a device is told when its workspace's storage failed (a WebSocket
/// close reason: at most 123 bytes). The database's own error is for the
/// operator's log, not for devices.
pub const FAILED_REASON: &str =
    "the server could not store this workspace's changes; this device keeps them and sends them again";

/// Whether (and since when) a loaded workspace's storage has failed, after
/// which its connections must end. One per loaded repo: a repo loaded
/// afresh starts without one.
#[derive(Clone)]
pub struct Failure(Arc<watch::Sender<Option<Instant>>>);

impl Failure {
    pub fn new() -> Failure {
        Failure(Arc::new(watch::channel(None).0))
    }

    /// Marks the storage failed; `true` the first time.
    fn report(&self) -> bool {
        self.0.send_if_modified(|at| {
            let first = at.is_none();
            at.get_or_insert_with(Instant::now);
            first
        })
    }

    pub fn failed(&self) -> bool {
        self.0.borrow().is_some()
    }

    /// When the storage first failed.
    pub fn at(&self) -> Option<Instant> {
        *self.0.borrow()
    }

    /// Resolves once the storage has failed (at once if it has).
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            let _ = rx.wait_for(|f| f.is_some()).await;
        }
    }
}

impl Default for Failure {
    fn default() -> Self {
        Failure::new()
    }
}

/// A loaded workspace's storage, as samod sees it: every failed call is
/// counted, logged and marks the workspace's [`Failure`].
#[derive(Clone)]
pub struct Watched {
    inner: WorkspaceStorage,
    failure: Failure,
    workspace: Arc<str>,
    metrics: Arc<Metrics>,
}

impl Watched {
    pub fn new(
        inner: WorkspaceStorage,
        failure: Failure,
        workspace: &str,
        metrics: Arc<Metrics>,
    ) -> Watched {
        Watched {
            inner,
            failure,
            workspace: workspace.into(),
            metrics,
        }
    }

    fn check<T: Default>(&self, r: Result<T, StorageError>) -> T {
        r.unwrap_or_else(|e| {
            self.metrics.storage_failures.inc();
            if self.failure.report() {
                tracing::error!(
                    workspace = &*self.workspace,
                    error = %e,
                    "workspace storage failed; its connections are closed and it is loaded afresh on the next"
                );
            } else {
                tracing::debug!(workspace = &*self.workspace, error = %e, "workspace storage failed again");
            }
            T::default()
        })
    }
}

impl Storage for Watched {
    fn load(&self, key: StorageKey) -> impl Future<Output = Option<Vec<u8>>> + Send {
        let this = self.clone();
        async move { this.check(this.inner.try_load(key).await) }
    }

    fn load_range(
        &self,
        prefix: StorageKey,
    ) -> impl Future<Output = HashMap<StorageKey, Vec<u8>>> + Send {
        let this = self.clone();
        async move { this.check(this.inner.try_load_range(prefix).await) }
    }

    // Once a write has failed the repo writes nothing more: samod believes
    // the failed write stored, and after a snapshot it deletes the chunks
    // the snapshot replaces, which may hold changes devices were told are
    // stored. The workspace is loaded afresh from what is stored instead.
    fn put(&self, key: StorageKey, data: Vec<u8>) -> impl Future<Output = ()> + Send {
        let this = self.clone();
        let call = (!self.failure.failed()).then(|| self.inner.try_put(key, data));
        async move {
            if let Some(call) = call {
                this.check(call.await)
            }
        }
    }

    fn delete(&self, key: StorageKey) -> impl Future<Output = ()> + Send {
        let this = self.clone();
        let call = (!self.failure.failed()).then(|| self.inner.try_delete(key));
        async move {
            if let Some(call) = call {
                this.check(call.await)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// After a write fails, samod goes on as if it had stored it: after a
    /// snapshot that failed it deletes the chunks the snapshot replaces.
    /// Those deletes must not happen.
    #[tokio::test]
    async fn after_a_failed_write_nothing_more_is_written_or_deleted() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE kv (key TEXT PRIMARY KEY, data BLOB NOT NULL)")
            .unwrap();
        let conn = Arc::new(Mutex::new(conn));
        let inner = WorkspaceStorage::Sqlite(SqliteStorage::new(conn.clone(), "kv", "ws/team"));
        let failure = Failure::new();
        let storage = Watched::new(inner, failure.clone(), "team", Metrics::new());
        let key = |k: &str| StorageKey::from_parts([k]).unwrap();

        storage.put(key("chunk"), vec![1]).await;
        assert!(!failure.failed());
        conn.lock()
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER disk_full BEFORE INSERT ON kv
                 BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END;",
            )
            .unwrap();
        storage.put(key("snapshot"), vec![1, 2]).await;
        assert!(failure.failed(), "the failed write is noticed");

        conn.lock()
            .unwrap()
            .execute_batch("DROP TRIGGER disk_full")
            .unwrap();
        storage.delete(key("chunk")).await;
        storage.put(key("later"), vec![3]).await;
        let stored: Vec<String> = conn
            .lock()
            .unwrap()
            .prepare("SELECT key FROM kv ORDER BY key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored, vec!["ws/team/chunk".to_owned()]);
    }
}
