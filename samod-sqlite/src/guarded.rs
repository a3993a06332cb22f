//! samod's `Storage` over a storage that can say what failed, for a repo
//! that must not carry on as if a failed call had worked.
//!
//! samod's `Storage` cannot report an error: a write that failed looks
//! stored, and a read that failed looks like a document not stored yet.
//! [`Guarded`] hands each failure to its [`Failures`] (which decides what
//! the repo's owner is told), and after the first failed write writes
//! nothing more: samod believes the failed write stored, and after a
//! snapshot it deletes the chunks the snapshot replaces, which would then
//! hold the only copy of their changes. The owner stops the repo and loads
//! it afresh from what is stored.

use std::collections::HashMap;
use std::future::Future;

use samod::storage::{Storage, StorageKey};

use crate::{Error, SqliteStorage};

/// A storage whose calls say what failed.
pub trait TryStorage: Clone + Send + Sync + 'static {
    fn try_load(
        &self,
        key: StorageKey,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Error>> + Send;

    fn try_load_range(
        &self,
        prefix: StorageKey,
    ) -> impl Future<Output = Result<HashMap<StorageKey, Vec<u8>>, Error>> + Send;

    /// Queued when called, not when first polled: writes are stored in the
    /// order asked.
    fn try_put(
        &self,
        key: StorageKey,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static;

    /// Queued when called, as `try_put`.
    fn try_delete(
        &self,
        key: StorageKey,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static;
}

/// Where a [`Guarded`] storage's failures go.
pub trait Failures: Clone + Send + Sync + 'static {
    /// Whether a call has failed already (then nothing more is written).
    fn failed(&self) -> bool;
    /// A call failed with `error`.
    fn report(&self, error: &Error);
}

/// `inner` as samod's `Storage`, failures told to `failures`.
#[derive(Clone)]
pub struct Guarded<S, F> {
    inner: S,
    failures: F,
}

impl<S: TryStorage, F: Failures> Guarded<S, F> {
    pub fn new(inner: S, failures: F) -> Guarded<S, F> {
        Guarded { inner, failures }
    }

    fn check<T: Default>(&self, r: Result<T, Error>) -> T {
        r.unwrap_or_else(|e| {
            self.failures.report(&e);
            T::default()
        })
    }
}

impl<S: TryStorage, F: Failures> Storage for Guarded<S, F> {
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

    fn put(&self, key: StorageKey, data: Vec<u8>) -> impl Future<Output = ()> + Send {
        let this = self.clone();
        let call = (!self.failures.failed()).then(|| self.inner.try_put(key, data));
        async move {
            if let Some(call) = call {
                this.check(call.await)
            }
        }
    }

    fn delete(&self, key: StorageKey) -> impl Future<Output = ()> + Send {
        let this = self.clone();
        let call = (!self.failures.failed()).then(|| self.inner.try_delete(key));
        async move {
            if let Some(call) = call {
                this.check(call.await)
            }
        }
    }
}

impl TryStorage for SqliteStorage {
    fn try_load(
        &self,
        key: StorageKey,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Error>> + Send {
        SqliteStorage::try_load(self, key)
    }

    fn try_load_range(
        &self,
        prefix: StorageKey,
    ) -> impl Future<Output = Result<HashMap<StorageKey, Vec<u8>>, Error>> + Send {
        SqliteStorage::try_load_range(self, prefix)
    }

    fn try_put(
        &self,
        key: StorageKey,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        SqliteStorage::try_put(self, key, data)
    }

    fn try_delete(
        &self,
        key: StorageKey,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        SqliteStorage::try_delete(self, key)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Count(Arc<AtomicUsize>);

    impl Failures for Count {
        fn failed(&self) -> bool {
            self.0.load(Ordering::SeqCst) > 0
        }
        fn report(&self, _: &Error) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// After a write fails, samod goes on as if it had stored it: after a
    /// snapshot that failed it deletes the chunks the snapshot replaces.
    /// Those deletes must not happen.
    #[tokio::test]
    async fn after_a_failed_write_nothing_more_is_written_or_deleted() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE kv (key TEXT PRIMARY KEY, data BLOB NOT NULL)")
            .unwrap();
        let conn = Arc::new(Mutex::new(conn));
        let failures = Count::default();
        let storage = Guarded::new(
            SqliteStorage::new(conn.clone(), "kv", "ws/team"),
            failures.clone(),
        );
        let key = |k: &str| StorageKey::from_parts([k]).unwrap();

        storage.put(key("chunk"), vec![1]).await;
        assert!(!failures.failed());
        conn.lock()
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER disk_full BEFORE INSERT ON kv
                 BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END;",
            )
            .unwrap();
        storage.put(key("snapshot"), vec![1, 2]).await;
        assert!(failures.failed(), "the failed write is reported");

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
        assert_eq!(failures.0.load(Ordering::SeqCst), 1, "one failure, once");
    }
}
