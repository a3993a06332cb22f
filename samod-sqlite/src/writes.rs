//! Group commit: the puts and deletes waiting for one connection go to
//! SQLite together, in one transaction, in the order they were asked for.
//!
//! samod writes one key per call. Alone, each call was its own transaction
//! and its own trip to the blocking pool; a document compacting writes its
//! snapshot and deletes a dozen chunks, and a server whose documents
//! compact in the same moment made thousands of calls queue behind each
//! other on its one connection. A call's future still resolves only once
//! its transaction committed, so what samod is told is stored is stored.

use std::future::Future;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection};
use tokio::sync::oneshot;

/// One key written, with the table it lives in.
pub(crate) enum Write {
    Put {
        table: &'static str,
        key: String,
        data: Vec<u8>,
    },
    Delete {
        table: &'static str,
        key: String,
    },
}

impl Write {
    fn apply(&self, c: &Connection) -> rusqlite::Result<usize> {
        match self {
            Write::Put { table, key, data } => c
                .prepare_cached(&format!(
                    "INSERT OR REPLACE INTO {table} (key, data) VALUES (?1, ?2)"
                ))?
                .execute(params![key, data]),
            Write::Delete { table, key } => c
                .prepare_cached(&format!("DELETE FROM {table} WHERE key = ?1"))?
                .execute([key]),
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Write::Put { .. } => "put",
            Write::Delete { .. } => "delete",
        }
    }
}

/// Most writes in one transaction: the connection is locked while it
/// runs, and the server's other queries share it.
const MAX_BATCH: usize = 512;

/// The writes waiting for one connection.
pub(crate) struct Writes {
    conn: Arc<Mutex<Connection>>,
    waiting: Mutex<Waiting>,
    #[cfg(test)]
    transactions: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct Waiting {
    writes: Vec<(Write, oneshot::Sender<()>)>,
    /// A task on the blocking pool is writing; it takes what arrives
    /// meanwhile before it stops.
    writing: bool,
}

impl Writes {
    pub(crate) fn new(conn: Arc<Mutex<Connection>>) -> Arc<Writes> {
        Arc::new(Writes {
            conn,
            waiting: Mutex::default(),
            #[cfg(test)]
            transactions: Default::default(),
        })
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `w` now, behind every write asked for before it; the future
    /// resolves once it is committed (or failed, which is logged: samod's
    /// storage has no way to report it).
    pub(crate) fn write(self: &Arc<Self>, w: Write) -> impl Future<Output = ()> + Send + 'static {
        let (done, committed) = oneshot::channel();
        let start = {
            let mut waiting = self.waiting();
            waiting.writes.push((w, done));
            !std::mem::replace(&mut waiting.writing, true)
        };
        if start {
            let mut writer = Writer {
                writes: self.clone(),
                ran: false,
            };
            drop(tokio::task::spawn_blocking(move || {
                writer.ran = true;
                writer.writes.write_all();
            }));
        }
        async move {
            let _ = committed.await;
        }
    }

    /// Writes batches until none is waiting.
    fn write_all(&self) {
        loop {
            let batch: Vec<_> = {
                let mut waiting = self.waiting();
                if waiting.writes.is_empty() {
                    waiting.writing = false;
                    return;
                }
                let n = waiting.writes.len().min(MAX_BATCH);
                waiting.writes.drain(..n).collect()
            };
            let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            commit(&mut conn, &batch);
            drop(conn);
            #[cfg(test)]
            self.transactions
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for (_, done) in batch {
                let _ = done.send(());
            }
        }
    }
}

/// One transaction for the batch; a write that fails is logged and the
/// others still go in, as when each was alone.
fn commit(conn: &mut Connection, batch: &[(Write, oneshot::Sender<()>)]) {
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, writes = batch.len(), "sync storage: cannot begin a transaction");
            return;
        }
    };
    for (w, _) in batch {
        if let Err(e) = w.apply(&tx) {
            tracing::error!(error = %e, "sync storage {} failed", w.what());
        }
    }
    if let Err(e) = tx.commit() {
        tracing::error!(error = %e, writes = batch.len(), "sync storage: commit failed");
    }
}

/// The task on the blocking pool that writes. If it never runs (the
/// runtime is shutting down) or fails midway, the writes it would have
/// taken are dropped, their callers return, and the next write starts a
/// writer again.
struct Writer {
    writes: Arc<Writes>,
    ran: bool,
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.ran || std::thread::panicking() {
            let mut waiting = self.writes.waiting();
            waiting.writes.clear();
            waiting.writing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn writes() -> Arc<Writes> {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE kv (key TEXT PRIMARY KEY, data BLOB NOT NULL)")
            .unwrap();
        Writes::new(Arc::new(Mutex::new(conn)))
    }

    fn put(key: &str, data: &[u8]) -> Write {
        Write::Put {
            table: "kv",
            key: key.into(),
            data: data.to_vec(),
        }
    }

    /// Keeps the connection locked, as another query would, until told.
    fn busy(w: &Writes) -> std::sync::mpsc::Sender<()> {
        let (locked, is_locked) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let conn = w.conn.clone();
        std::thread::spawn(move || {
            let _held = conn.lock().unwrap();
            locked.send(()).unwrap();
            let _ = released.recv();
        });
        is_locked.recv().unwrap();
        release
    }

    fn stored(w: &Writes) -> Vec<(String, Vec<u8>)> {
        let c = w.conn.lock().unwrap();
        let mut stmt = c.prepare("SELECT key, data FROM kv ORDER BY key").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_waiting_together_are_one_transaction_in_the_order_asked() {
        let w = writes();
        // The connection is busy (another query): writes pile up.
        let release = busy(&w);
        let mut all = Vec::new();
        for i in 0..200 {
            all.push(w.write(put(&format!("k{i:03}"), b"1")));
        }
        all.push(w.write(Write::Delete {
            table: "kv",
            key: "k007".into(),
        }));
        all.push(w.write(put("k000", b"2")));
        let all = tokio::spawn(all_of(all));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !all.is_finished(),
            "nothing resolves before it is committed"
        );
        release.send(()).unwrap();
        all.await.unwrap();
        let rows = stored(&w);
        assert_eq!(rows.len(), 199, "k007 deleted after it was put");
        assert_eq!(
            rows[0],
            ("k000".to_owned(), b"2".to_vec()),
            "the later put wins"
        );
        assert!(
            w.transactions.load(Ordering::Relaxed) <= 3,
            "{} transactions for 202 writes",
            w.transactions.load(Ordering::Relaxed)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_fails_leaves_the_others_of_its_batch_in() {
        let w = writes();
        let release = busy(&w);
        let all = vec![
            w.write(put("a", b"1")),
            w.write(Write::Put {
                table: "no_such_table",
                key: "b".into(),
                data: vec![],
            }),
            w.write(put("c", b"3")),
        ];
        let all = tokio::spawn(all_of(all));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        release.send(()).unwrap();
        all.await.unwrap();
        let keys: Vec<_> = stored(&w).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "c"]);
        // And the next write still gets a writer.
        w.write(put("d", b"4")).await;
        assert_eq!(stored(&w).len(), 3);
    }

    async fn all_of(all: Vec<impl Future<Output = ()>>) {
        for f in all {
            f.await;
        }
    }
}
