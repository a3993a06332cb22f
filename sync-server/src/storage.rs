//! samod's storage for one workspace, in whichever database the server
//! uses (see `db.rs`).

use std::collections::HashMap;
use std::future::Future;

use flowkeep_samod_sqlite::SqliteStorage;
use futures::future::Either;
use samod::storage::{Storage, StorageKey};

use crate::db::PgStorage;

#[derive(Clone)]
pub enum WorkspaceStorage {
    Sqlite(SqliteStorage),
    Postgres(PgStorage),
}

impl WorkspaceStorage {
    /// Every key (relative to the workspace) with the size of its data.
    pub async fn sizes(&self) -> Vec<(String, u64)> {
        match self {
            WorkspaceStorage::Sqlite(s) => s.sizes().await,
            WorkspaceStorage::Postgres(s) => s.sizes().await,
        }
    }
}

impl Storage for WorkspaceStorage {
    fn load(&self, key: StorageKey) -> impl Future<Output = Option<Vec<u8>>> + Send {
        let this = self.clone();
        async move {
            match this {
                WorkspaceStorage::Sqlite(s) => s.load(key).await,
                WorkspaceStorage::Postgres(s) => s.load(key).await,
            }
        }
    }

    fn load_range(
        &self,
        prefix: StorageKey,
    ) -> impl Future<Output = HashMap<StorageKey, Vec<u8>>> + Send {
        let this = self.clone();
        async move {
            match this {
                WorkspaceStorage::Sqlite(s) => s.load_range(prefix).await,
                WorkspaceStorage::Postgres(s) => s.load_range(prefix).await,
            }
        }
    }

    // Writes are queued when asked for, not when first polled, so that
    // they are stored in the order samod asked (`group_commit.rs`).
    fn put(&self, key: StorageKey, data: Vec<u8>) -> impl Future<Output = ()> + Send {
        match self {
            WorkspaceStorage::Sqlite(s) => Either::Left(s.put(key, data)),
            WorkspaceStorage::Postgres(s) => Either::Right(s.put(key, data)),
        }
    }

    fn delete(&self, key: StorageKey) -> impl Future<Output = ()> + Send {
        match self {
            WorkspaceStorage::Sqlite(s) => Either::Left(s.delete(key)),
            WorkspaceStorage::Postgres(s) => Either::Right(s.delete(key)),
        }
    }
}
