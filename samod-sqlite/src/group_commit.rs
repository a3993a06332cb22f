//! Group commit: the writes waiting for one database go to it together, in
//! one transaction, in the order they were asked for.
//!
//! samod writes one key per call. Alone, each call was its own transaction
//! and its own trip to the blocking pool; a document compacting writes its
//! snapshot and deletes a dozen chunks, and a server whose documents
//! compact in the same moment made thousands of calls queue behind each
//! other. A call's future still resolves only once its batch was committed,
//! or with the reason its write did not go in, so what a caller is told is
//! stored is stored.
//!
//! The queue knows nothing of the database: SQLite's storage here
//! (`writes.rs`) and the sync server's PostgreSQL storage each give it the
//! function that commits a batch.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::Error;

/// Commits one batch, in order, on the calling (blocking) thread, and says
/// of each write whether it went in (one outcome per write, in order).
type Commit<W> = Box<dyn Fn(&[W]) -> Vec<Result<(), Error>> + Send + Sync>;

/// The writes waiting for one database.
pub struct GroupCommit<W> {
    waiting: Mutex<Waiting<W>>,
    commit: Commit<W>,
    max_batch: usize,
    batches: AtomicUsize,
}

struct Waiting<W> {
    writes: Vec<(W, oneshot::Sender<Result<(), Error>>)>,
    /// A task on the blocking pool is writing; it takes what arrives
    /// meanwhile before it stops.
    writing: bool,
}

impl<W: Send + 'static> GroupCommit<W> {
    /// A queue whose batches, of at most `max_batch` writes, `commit`
    /// writes in one transaction, returning one outcome per write.
    pub fn new(
        max_batch: usize,
        commit: impl Fn(&[W]) -> Vec<Result<(), Error>> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(GroupCommit {
            waiting: Mutex::new(Waiting {
                writes: Vec::new(),
                writing: false,
            }),
            commit: Box::new(commit),
            max_batch: max_batch.max(1),
            batches: AtomicUsize::new(0),
        })
    }

    /// Batches committed so far.
    pub fn batches(&self) -> usize {
        self.batches.load(Ordering::Relaxed)
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting<W>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `w` now, behind every write asked for before it; the future
    /// resolves once its batch was committed, or with why `w` is not stored.
    pub fn submit(
        self: &Arc<Self>,
        w: W,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let (done, committed) = oneshot::channel();
        let start = {
            let mut waiting = self.waiting();
            waiting.writes.push((w, done));
            !std::mem::replace(&mut waiting.writing, true)
        };
        if start {
            self.start_writer();
        }
        // A writer that never ran or panicked drops the sender.
        async move { committed.await.unwrap_or(Err(Error::Dropped)) }
    }

    /// Starts the task on the blocking pool that writes what is waiting
    /// (`writing` is already set).
    fn start_writer(self: &Arc<Self>) {
        let mut writer = Writer {
            queue: self.clone(),
            ran: false,
        };
        drop(tokio::task::spawn_blocking(move || {
            writer.ran = true;
            writer.queue.write_all();
        }));
    }

    /// Writes batches until none is waiting.
    fn write_all(&self) {
        loop {
            let (batch, done): (Vec<W>, Vec<_>) = {
                let mut waiting = self.waiting();
                if waiting.writes.is_empty() {
                    waiting.writing = false;
                    return;
                }
                let n = waiting.writes.len().min(self.max_batch);
                waiting.writes.drain(..n).unzip()
            };
            let mut outcomes = (self.commit)(&batch).into_iter();
            self.batches.fetch_add(1, Ordering::Relaxed);
            for d in done {
                // A commit that says nothing of a write did not store it.
                let _ = d.send(outcomes.next().unwrap_or(Err(Error::Dropped)));
            }
        }
    }
}

/// The task on the blocking pool that writes. If it panics midway, the
/// batch it held is dropped (its callers are told) and the writes queued
/// behind it get a new writer. If it never runs (the runtime is shutting
/// down), nothing will write what is waiting: it is dropped, its callers
/// are told, and a later write starts a writer again.
struct Writer<W: Send + 'static> {
    queue: Arc<GroupCommit<W>>,
    ran: bool,
}

impl<W: Send + 'static> Drop for Writer<W> {
    fn drop(&mut self) {
        if self.ran && !std::thread::panicking() {
            return;
        }
        let mut waiting = self.queue.waiting();
        if self.ran && !waiting.writes.is_empty() && tokio::runtime::Handle::try_current().is_ok() {
            drop(waiting);
            self.queue.start_writer();
            return;
        }
        waiting.writes.clear();
        waiting.writing = false;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    type Batches = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A queue whose commits record each batch, and wait while `gate` is
    /// held, as a database busy with another query would.
    fn recording(gate: Arc<Mutex<()>>) -> (Arc<GroupCommit<u32>>, Batches) {
        let batches = Batches::default();
        let b = batches.clone();
        let q = GroupCommit::new(4, move |batch: &[u32]| {
            let _busy = gate.lock().unwrap();
            b.lock().unwrap().push(batch.to_vec());
            batch.iter().map(|_| Ok(())).collect()
        });
        (q, batches)
    }

    /// Holds `m` from another thread until told, as another query holding
    /// the database would.
    pub(crate) fn hold<T: Send + 'static>(m: &Arc<Mutex<T>>) -> std::sync::mpsc::Sender<()> {
        let (held, is_held) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let m = m.clone();
        std::thread::spawn(move || {
            let _g = m.lock().unwrap();
            held.send(()).unwrap();
            let _ = released.recv();
        });
        is_held.recv().unwrap();
        release
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_waiting_together_go_in_batches_in_the_order_asked() {
        let gate = Arc::new(Mutex::new(()));
        let (q, batches) = recording(gate.clone());
        let release = hold(&gate);
        let all: Vec<_> = (0..10).map(|i| q.submit(i)).collect();
        let all = tokio::spawn(async move {
            for f in all {
                f.await.unwrap();
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !all.is_finished(),
            "nothing resolves before it is committed"
        );
        release.send(()).unwrap();
        all.await.unwrap();
        let batches = batches.lock().unwrap().clone();
        assert_eq!(batches.concat(), (0..10).collect::<Vec<_>>(), "in order");
        assert!(batches.iter().all(|b| b.len() <= 4), "{batches:?}");
        // The first write was taken alone, the 9 behind it in 3 batches.
        assert!(batches.len() <= 4, "{batches:?}");
        assert_eq!(q.batches(), batches.len());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_that_panics_releases_its_callers_and_the_next_write_gets_a_writer() {
        let q = GroupCommit::new(8, |batch: &[u32]| {
            if batch.contains(&13) {
                panic!("the database went away");
            }
            batch.iter().map(|_| Ok(())).collect()
        });
        assert!(
            matches!(q.submit(13).await, Err(Error::Dropped)),
            "a write whose commit panicked is not called stored"
        );
        tokio::time::timeout(std::time::Duration::from_secs(5), q.submit(1))
            .await
            .expect("a new writer takes the next write")
            .expect("and stores it");
        assert_eq!(q.batches(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_behind_a_commit_that_panics_are_still_written() {
        let gate = Arc::new(Mutex::new(()));
        let written = Arc::new(Mutex::new(Vec::new()));
        let (g, w) = (gate.clone(), written.clone());
        let q = GroupCommit::new(1, move |batch: &[u32]| {
            let _busy = g.lock().unwrap_or_else(|p| p.into_inner());
            if batch.contains(&13) {
                panic!("the database went away");
            }
            w.lock().unwrap().extend_from_slice(batch);
            batch.iter().map(|_| Ok(())).collect()
        });
        // 13's commit waits (another query) while 1 and 2 queue behind it.
        let release = hold(&gate);
        let (bad, one, two) = (q.submit(13), q.submit(1), q.submit(2));
        release.send(()).unwrap();
        let wait = std::time::Duration::from_secs(5);
        assert!(matches!(bad.await, Err(Error::Dropped)));
        let one = tokio::time::timeout(wait, one).await.expect("a new writer");
        let two = tokio::time::timeout(wait, two).await.expect("a new writer");
        assert!(one.is_ok() && two.is_ok(), "{one:?} {two:?}");
        assert_eq!(*written.lock().unwrap(), [1, 2]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_caller_hears_whether_its_own_write_went_in() {
        let q = GroupCommit::new(8, |batch: &[u32]| {
            batch
                .iter()
                .map(|&w| match w {
                    13 => Err(Error::Failed {
                        what: "put",
                        reason: "disk full".into(),
                    }),
                    _ => Ok(()),
                })
                .collect()
        });
        let (a, b, c) = (q.submit(1), q.submit(13), q.submit(2));
        assert!(a.await.is_ok());
        let e = b.await.unwrap_err();
        assert_eq!(e.to_string(), "sync storage put failed: disk full");
        assert!(c.await.is_ok());
    }
}
