//! samod's storage for one workspace, in whichever database the server
//! uses (see `db.rs`).

use std::collections::HashMap;
use std::future::Future;

use flowkeep_samod_sqlite::SqliteStorage;
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

    fn put(&self, key: StorageKey, data: Vec<u8>) -> impl Future<Output = ()> + Send {
        let this = self.clone();
        async move {
            match this {
                WorkspaceStorage::Sqlite(s) => s.put(key, data).await,
                WorkspaceStorage::Postgres(s) => s.put(key, data).await,
            }
        }
    }

    fn delete(&self, key: StorageKey) -> impl Future<Output = ()> + Send {
        let this = self.clone();
        async move {
            match this {
                WorkspaceStorage::Sqlite(s) => s.delete(key).await,
                WorkspaceStorage::Postgres(s) => s.delete(key).await,
            }
        }
    }
}
