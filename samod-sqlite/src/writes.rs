//! SQLite's side of group commit (`group_commit.rs`): a batch of puts and
//! deletes in one transaction on the storage's connection.

use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection};

use crate::group_commit::GroupCommit;
use crate::Error;

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

/// The writes waiting for `conn`, committed together.
pub(crate) fn writes(conn: Arc<Mutex<Connection>>) -> Arc<GroupCommit<Write>> {
    GroupCommit::new(MAX_BATCH, move |batch: &[Write]| {
        let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
        commit(&mut conn, batch)
    })
}

/// One transaction for the batch; a write that fails is reported to its
/// caller and the others still go in, as when each was alone. A transaction
/// that cannot begin or commit fails every write in it.
fn commit(conn: &mut Connection, batch: &[Write]) -> Vec<Result<(), Error>> {
    let all_failed = |what, e: &rusqlite::Error| {
        tracing::warn!(error = %e, writes = batch.len(), "sync storage: {what} failed");
        batch.iter().map(|_| Err(Error::sqlite(what, e))).collect()
    };
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => return all_failed("begin", &e),
    };
    let outcomes = batch
        .iter()
        .map(|w| {
            w.apply(&tx)
                .map(drop)
                .map_err(|e| Error::sqlite(w.what(), &e))
        })
        .collect();
    match tx.commit() {
        Ok(()) => outcomes,
        Err(e) => all_failed("commit", &e),
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;
    use crate::group_commit::tests::hold;

    fn db() -> Arc<Mutex<Connection>> {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE kv (key TEXT PRIMARY KEY, data BLOB NOT NULL)")
            .unwrap();
        Arc::new(Mutex::new(conn))
    }

    fn put(key: &str, data: &[u8]) -> Write {
        Write::Put {
            table: "kv",
            key: key.into(),
            data: data.to_vec(),
        }
    }

    fn stored(conn: &Arc<Mutex<Connection>>) -> Vec<(String, Vec<u8>)> {
        let c = conn.lock().unwrap();
        let mut stmt = c.prepare("SELECT key, data FROM kv ORDER BY key").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_waiting_together_are_one_transaction_in_the_order_asked() {
        let conn = db();
        let w = writes(conn.clone());
        // The connection is busy (another query): writes pile up.
        let release = hold(&conn);
        let mut all = Vec::new();
        for i in 0..200 {
            all.push(w.submit(put(&format!("k{i:03}"), b"1")));
        }
        all.push(w.submit(Write::Delete {
            table: "kv",
            key: "k007".into(),
        }));
        all.push(w.submit(put("k000", b"2")));
        let all = tokio::spawn(all_of(all));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !all.is_finished(),
            "nothing resolves before it is committed"
        );
        release.send(()).unwrap();
        assert!(all.await.unwrap().iter().all(Result::is_ok));
        let rows = stored(&conn);
        assert_eq!(rows.len(), 199, "k007 deleted after it was put");
        assert_eq!(
            rows[0],
            ("k000".to_owned(), b"2".to_vec()),
            "the later put wins"
        );
        assert!(
            w.batches() <= 3,
            "{} transactions for 202 writes",
            w.batches()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_fails_leaves_the_others_of_its_batch_in() {
        let conn = db();
        let w = writes(conn.clone());
        let outcomes = in_one_batch(
            &conn,
            &w,
            vec![
                put("a", b"1"),
                Write::Put {
                    table: "no_such_table",
                    key: "b".into(),
                    data: vec![],
                },
                put("c", b"3"),
            ],
        )
        .await;
        let keys: Vec<_> = stored(&conn).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "c"]);
        assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
        let why = outcomes[1].as_ref().unwrap_err().to_string();
        assert!(
            why.starts_with("sync storage put failed: no such table"),
            "its caller is told why: {why}"
        );
        // And the next write still gets a writer.
        w.submit(put("d", b"4")).await.unwrap();
        assert_eq!(stored(&conn).len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_that_cannot_commit_fails_every_write_in_it() {
        let conn = db();
        // A commit SQLite refuses, as on a full disk: a deferred foreign key unmet.
        conn.lock()
            .unwrap()
            .execute_batch(
                "CREATE TABLE parent (id TEXT PRIMARY KEY);
                 CREATE TABLE child (key TEXT PRIMARY KEY, data BLOB,
                   FOREIGN KEY (key) REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
                 PRAGMA foreign_keys = ON;",
            )
            .unwrap();
        let w = writes(conn.clone());
        let outcomes = in_one_batch(
            &conn,
            &w,
            vec![
                put("a", b"1"),
                Write::Put {
                    table: "child",
                    key: "orphan".into(),
                    data: vec![],
                },
            ],
        )
        .await;
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Err(Error::Failed { what: "commit", .. }))),
            "{outcomes:?}"
        );
        assert!(stored(&conn).is_empty(), "nothing of the batch went in");
    }

    /// `batch` asked for while the connection is busy, so that it is
    /// committed in one transaction; each write's outcome.
    async fn in_one_batch(
        conn: &Arc<Mutex<Connection>>,
        w: &Arc<GroupCommit<Write>>,
        batch: Vec<Write>,
    ) -> Vec<Result<(), Error>> {
        let release = hold(conn);
        let all = batch.into_iter().map(|b| w.submit(b)).collect();
        let all = tokio::spawn(all_of(all));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        release.send(()).unwrap();
        all.await.unwrap()
    }

    async fn all_of(all: Vec<impl Future<Output = Result<(), Error>>>) -> Vec<Result<(), Error>> {
        let mut outcomes = Vec::new();
        for f in all {
            outcomes.push(f.await);
        }
        outcomes
    }
}
