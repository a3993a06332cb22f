//! This device's copy of the workspace's documents: samod's repo over the
//! `sync_kv` table, and what the sync records about a document only once
//! that copy is on disk.
//!
//! What a session records (the heads a workflow was merged at or pushed
//! to, in `sync_docs` and `sync_logs`) is read against this copy next
//! time: a document that lacks heads recorded for it reads as another
//! device having undone them, and its older values would be merged over
//! the projection as a remote change — a local edit lost, or a merged one
//! undone. samod writes a document's changes after the step that made
//! them, and its `Storage` cannot say that a write failed. So nothing is
//! recorded about a document before its writes completed
//! ([`SyncRepo::stored`]), and a failed write ends the session with an
//! error, its repo writing nothing more (`flowkeep_samod_sqlite::guarded`).

use std::collections::BTreeSet;
use std::ops::Deref;
use std::sync::Mutex;

use flowkeep_samod_sqlite::guarded::{Failures, Guarded};
use flowkeep_samod_sqlite::SqliteStorage;

use super::*;

/// How long a document's writes to this device's file may take before the
/// session gives up (a disk that stopped answering).
const STORED_TIMEOUT: Duration = Duration::from_secs(60);

/// samod's repo, with what its storage reported and the documents its
/// engine failed on.
pub(super) struct SyncRepo {
    repo: Repo,
    failures: StorageFailures,
    passed_over: Mutex<BTreeSet<DocumentId>>,
}

impl Deref for SyncRepo {
    type Target = Repo;

    fn deref(&self) -> &Repo {
        &self.repo
    }
}

impl SyncRepo {
    /// A repo in memory, for tests of one device's steps without a server.
    #[cfg(test)]
    pub(super) async fn in_memory() -> SyncRepo {
        SyncRepo {
            repo: Repo::build_tokio().load().await,
            failures: StorageFailures::default(),
            passed_over: Mutex::default(),
        }
    }

    /// `r`, or `None` when it is the sync engine's failure on `id`
    /// ([`Error::SyncDocument`]): one document a change trips (a bug, or a
    /// peer's change automerge cannot apply) must not hold back every other
    /// one, so the round goes on without it, having recorded nothing about
    /// it, and names it ([`Self::passed_over`]). Any other error is the
    /// round's.
    pub(super) fn pass_over<T>(&self, id: &DocumentId, r: Result<T>) -> Result<Option<T>> {
        match r {
            Err(Error::SyncDocument(failed)) if failed == id.to_string() => {
                let new = self
                    .passed_over
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id.clone());
                if new {
                    tracing::warn!(document = %id, "the sync engine failed on this document; syncing goes on without it");
                }
                Ok(None)
            }
            r => r.map(Some),
        }
    }

    /// The documents passed over since the last call, in order.
    pub(super) fn take_passed_over(&self) -> Vec<DocumentId> {
        std::mem::take(&mut *self.passed_over.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .collect()
    }

    /// Resolves once every change `handle` holds is in this device's file;
    /// an error if a write to it failed (now or earlier in this repo's
    /// life) or took too long.
    pub(super) async fn stored(&self, handle: &DocHandle) -> Result<()> {
        match tokio::time::timeout(STORED_TIMEOUT, handle.stored()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                // Its actor failed, or the whole repo stopped.
                with_doc(handle, |_| ())?;
                return Err(Error::Unavailable("the sync engine stopped".into()));
            }
            Err(_) => {
                return Err(Error::SyncStorage(format!(
                    "writing document {} took longer than {} s",
                    handle.document_id(),
                    STORED_TIMEOUT.as_secs()
                )))
            }
        }
        self.failures.check()
    }

    /// [`Self::stored`] for many documents, waited for together (their
    /// writes are committed together): for each, in order, whether it was
    /// stored, or passed over ([`Self::pass_over`]).
    pub(super) async fn all_stored<'a>(
        &self,
        handles: impl IntoIterator<Item = &'a DocHandle>,
    ) -> Result<Vec<bool>> {
        futures::future::try_join_all(handles.into_iter().map(|h| async move {
            Ok(self
                .pass_over(h.document_id(), self.stored(h).await)?
                .is_some())
        }))
        .await
    }
}

/// The first failed call of this device's sync storage.
#[derive(Clone, Default)]
struct StorageFailures(Arc<Mutex<Option<String>>>);

impl StorageFailures {
    fn check(&self) -> Result<()> {
        match &*self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(Error::SyncStorage(e.clone())),
            None => Ok(()),
        }
    }
}

impl Failures for StorageFailures {
    fn failed(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    fn report(&self, error: &flowkeep_samod_sqlite::Error) {
        let mut first = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            tracing::error!(%error, "this device's sync storage failed; the sync stops");
            *first = Some(error.to_string());
        }
    }
}

/// Held while this process syncs a data dir: two processes syncing one data
/// dir at once (the app's background sync and a `sync now` in a terminal)
/// would each keep their own copy of the documents in memory and record
/// heads the other's copy lacks, which a merge reads as another device
/// undoing them. An OS lock on a file beside the database: it goes with
/// the process, however that ends.
pub(super) struct SyncLock {
    _held: std::fs::File,
}

impl SyncLock {
    /// The lock for the data dir of `db_path`, or `None` while another
    /// process holds it.
    pub(super) fn try_take(db_path: &std::path::Path) -> Result<Option<SyncLock>> {
        let path = db_path.with_extension("sync-lock");
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(flowkeep_store::private::FILE_MODE);
        }
        let file = opts.open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(SyncLock { _held: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    /// What a sync says when the process holding the lock did not send
    /// this data dir's changes within `waited`.
    pub(super) fn taken(waited: Duration) -> Error {
        Error::Unavailable(format!(
            "another flowkeep process is syncing this data dir (`sync watch` or the app) and has not sent its changes within {} s; `sync status` says when it last synced",
            waited.as_secs()
        ))
    }
}

impl Service {
    pub(super) async fn open_repo(&self, db_path: &std::path::Path) -> Result<SyncRepo> {
        // samod's documents in this device's file (`sync_kv`), on a
        // connection of its own.
        let conn = rusqlite::Connection::open(db_path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // As the store's own writer: no committed change is lost to a
        // process crash, and a first sync of 10,000 documents is not 20,000
        // fsyncs (it timed out connecting).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let failures = StorageFailures::default();
        let storage = Guarded::new(
            SqliteStorage::new(Arc::new(Mutex::new(conn)), "sync_kv", ""),
            failures.clone(),
        );
        let builder = Repo::build_tokio()
            .with_storage(storage)
            .with_peer_id(PeerId::from(format!("flowkeep/{}", self.device_id())));
        #[cfg(test)]
        let builder = builder.with_observer(trap::Trap(self.device_id().to_owned()));
        let repo = builder.load().await;
        Ok(SyncRepo {
            repo,
            failures,
            passed_over: Mutex::default(),
        })
    }
}

/// Reads or changes a document: `f` on it, or [`Error::SyncDocument`] if
/// samod's actor for it failed (panicked on a change it applied) — its
/// copy in memory is then in whatever state the panic left. The round
/// records nothing more about it and goes on without it
/// ([`SyncRepo::pass_over`]); the next loads it again from this device's
/// file.
pub(super) fn with_doc<R>(handle: &DocHandle, f: impl FnOnce(&mut Automerge) -> R) -> Result<R> {
    handle
        .try_with_document(f)
        .map_err(|_| Error::SyncDocument(handle.document_id().to_string()))
}

/// Makes the sync engine fail on a document, as a change automerge
/// cannot apply would: for the tests of what a sync does then.
#[cfg(test)]
pub(super) mod trap {
    use std::sync::Mutex;

    use samod::{DocumentId, RepoEvent, RepoObserver};

    /// (device id, document): every sync message about the document that
    /// reaches this device's repo panics inside the document's actor.
    static ARMED: Mutex<Vec<(String, DocumentId)>> = Mutex::new(Vec::new());

    pub(in crate::sync) fn arm(device: &str, doc: &DocumentId, armed: bool) {
        let mut all = ARMED.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|(d, id)| !(d == device && id == doc));
        if armed {
            all.push((device.to_owned(), doc.clone()));
        }
    }

    pub(in crate::sync) struct Trap(pub String);

    impl RepoObserver for Trap {
        fn observe(&self, event: &RepoEvent) {
            if let RepoEvent::SyncMessageReceived { document_id, .. } = event {
                let armed = ARMED.lock().unwrap_or_else(|p| p.into_inner());
                if armed
                    .iter()
                    .any(|(d, id)| *d == self.0 && id == document_id)
                {
                    drop(armed);
                    panic!("trap: a change this device's sync engine cannot take");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document whose actor failed (here a closure panics inside it; in
    /// a sync, a change automerge cannot apply) stops the session with an
    /// error naming it, never a panic, and is never counted as stored.
    #[tokio::test]
    async fn a_document_the_sync_engine_failed_on_is_an_error_naming_it() {
        let repo = SyncRepo::in_memory().await;
        let (failing, other) = (
            repo.create(Automerge::new()).await.unwrap(),
            repo.create(Automerge::new()).await.unwrap(),
        );
        assert!(heads_of(&failing).is_ok());
        let _ = failing
            .with_document_async(|_| panic!("a change this actor cannot take"))
            .await;

        let id = failing.document_id().to_string();
        for err in [
            heads_of(&failing).unwrap_err(),
            repo.stored(&failing).await.unwrap_err(),
        ] {
            assert!(
                matches!(&err, Error::SyncDocument(d) if *d == id),
                "{err:?}"
            );
            let said = err.to_string();
            assert!(
                said.contains(&id) && said.contains("nothing about it was recorded"),
                "{said}"
            );
        }
        assert!(heads_of(&other).is_ok(), "another document is untouched");
        repo.stored(&other).await.unwrap();
    }
}
