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

/// What a workspace's storage can do, saying what failed.
pub use flowkeep_samod_sqlite::guarded::TryStorage;
use flowkeep_samod_sqlite::guarded::{Failures, Guarded};
use flowkeep_samod_sqlite::{Error as StorageError, SqliteStorage};
use futures::future::Either;
use samod::storage::StorageKey;
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

/// A loaded workspace's storage, as samod sees it: after the first failed
/// call it writes nothing more (`flowkeep_samod_sqlite::guarded`).
pub type Watched = Guarded<WorkspaceStorage, Reporter>;

pub fn watched(
    inner: WorkspaceStorage,
    failure: Failure,
    workspace: &str,
    metrics: Arc<Metrics>,
) -> Watched {
    Guarded::new(
        inner,
        Reporter {
            failure,
            workspace: workspace.into(),
            metrics,
        },
    )
}

/// Every failed call of a workspace's storage is counted, logged and marks
/// the workspace's [`Failure`].
#[derive(Clone)]
pub struct Reporter {
    failure: Failure,
    workspace: Arc<str>,
    metrics: Arc<Metrics>,
}

impl Failures for Reporter {
    fn failed(&self) -> bool {
        self.failure.failed()
    }

    fn report(&self, e: &StorageError) {
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
    }
}

impl TryStorage for WorkspaceStorage {
    async fn try_load(&self, key: StorageKey) -> Result<Option<Vec<u8>>, StorageError> {
        match self {
            WorkspaceStorage::Sqlite(s) => s.try_load(key).await,
            WorkspaceStorage::Postgres(s) => s.try_load(key).await,
        }
    }

    async fn try_load_range(
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
    fn try_put(
        &self,
        key: StorageKey,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send + 'static {
        match self {
            WorkspaceStorage::Sqlite(s) => Either::Left(s.try_put(key, data)),
            WorkspaceStorage::Postgres(s) => Either::Right(s.try_put(key, data)),
        }
    }

    fn try_delete(
        &self,
        key: StorageKey,
    ) -> impl Future<Output = Result<(), StorageError>> + Send + 'static {
        match self {
            WorkspaceStorage::Sqlite(s) => Either::Left(s.try_delete(key)),
            WorkspaceStorage::Postgres(s) => Either::Right(s.try_delete(key)),
        }
    }
}
