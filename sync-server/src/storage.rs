//! samod's key/value storage on the server's SQLite file, one namespace per
//! workspace (`ws/<id>/<samod key>`). Calls run on the blocking pool.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use samod::storage::StorageKey;

use crate::Db;

#[derive(Clone)]
pub struct WorkspaceStorage {
    db: Arc<Db>,
    prefix: String,
}

impl WorkspaceStorage {
    pub fn new(db: Arc<Db>, workspace_id: &str) -> WorkspaceStorage {
        WorkspaceStorage {
            db,
            prefix: format!("ws/{workspace_id}"),
        }
    }

    fn full(&self, key: &StorageKey) -> String {
        let parts: Vec<&str> = key.into_iter().map(|s| s.as_str()).collect();
        format!("{}/{}", self.prefix, parts.join("/"))
    }

    fn strip(&self, full: &str) -> Option<StorageKey> {
        let rest = full.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        StorageKey::from_parts(rest.split('/')).ok()
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

impl samod::storage::Storage for WorkspaceStorage {
    fn load(&self, key: StorageKey) -> impl Future<Output = Option<Vec<u8>>> + Send {
        let (db, k) = (self.db.clone(), self.full(&key));
        async move {
            match blocking(move || db.get(&k)).await {
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    tracing::error!(error = %e, "storage load failed");
                    None
                }
                None => None,
            }
        }
    }

    fn load_range(
        &self,
        prefix: StorageKey,
    ) -> impl Future<Output = HashMap<StorageKey, Vec<u8>>> + Send {
        let this = self.clone();
        let p = self.full(&prefix);
        let p = p.trim_end_matches('/').to_owned();
        async move {
            let db = this.db.clone();
            match blocking(move || db.range(&p)).await {
                Some(Ok(rows)) => rows
                    .into_iter()
                    .filter_map(|(k, v)| Some((this.strip(&k)?, v)))
                    .collect(),
                Some(Err(e)) => {
                    tracing::error!(error = %e, "storage load_range failed");
                    HashMap::new()
                }
                None => HashMap::new(),
            }
        }
    }

    fn put(&self, key: StorageKey, data: Vec<u8>) -> impl Future<Output = ()> + Send {
        let (db, k) = (self.db.clone(), self.full(&key));
        async move {
            if let Some(Err(e)) = blocking(move || db.put(&k, &data)).await {
                tracing::error!(error = %e, "storage put failed: a document change was not saved");
            }
        }
    }

    fn delete(&self, key: StorageKey) -> impl Future<Output = ()> + Send {
        let (db, k) = (self.db.clone(), self.full(&key));
        async move {
            if let Some(Err(e)) = blocking(move || db.delete(&k)).await {
                tracing::error!(error = %e, "storage delete failed");
            }
        }
    }
}
