//! `cargo bench -p flowkeep-samod-sqlite --bench writes`: a burst of
//! storage writes as samod makes them when many documents compact at once
//! (each writes its new snapshot and deletes the 12 chunks it replaces),
//! all asked for concurrently, on a file database in WAL mode as the
//! server and the app open theirs. Against, in the same run, the way
//! writes went before group commit: each on tokio's blocking pool in its
//! own transaction. Prints medians of 7 runs per row.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowkeep_samod_sqlite::SqliteStorage;
use futures::FutureExt;
use rusqlite::{params, Connection};
use samod::storage::{Storage, StorageKey};

const CHUNKS: usize = 12;

fn open(dir: &std::path::Path) -> Arc<Mutex<Connection>> {
    let conn = Connection::open(dir.join("bench.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.execute_batch("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, data BLOB NOT NULL)")
        .unwrap();
    Arc::new(Mutex::new(conn))
}

fn key(doc: usize, kind: &str, n: usize) -> StorageKey {
    StorageKey::from_parts([format!("doc{doc}"), kind.to_owned(), format!("{n}")]).unwrap()
}

fn full(k: &StorageKey) -> String {
    k.into_iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("/")
}

/// Puts every document's chunks (not timed).
async fn seed(s: &SqliteStorage, docs: usize, round: usize) {
    let mut all = Vec::new();
    for d in 0..docs {
        for c in 0..CHUNKS {
            all.push(s.put(key(d, "incremental", round * 100 + c), vec![7; 300]));
        }
    }
    for f in all {
        f.await;
    }
}

/// The compaction burst through the storage: one snapshot and 12 deletes
/// per document, all in flight at once.
async fn burst(s: &SqliteStorage, docs: usize, round: usize) -> Duration {
    let t = Instant::now();
    let mut all = Vec::new();
    for d in 0..docs {
        // Queued as each is asked for, as samod's IO tasks ask.
        all.push(s.put(key(d, "snapshot", round), vec![9; 3000]).boxed());
        for c in 0..CHUNKS {
            all.push(s.delete(key(d, "incremental", round * 100 + c)).boxed());
        }
    }
    for f in all {
        f.await;
    }
    t.elapsed()
}

/// The same burst, each write alone on the blocking pool in its own
/// transaction (as before group commit).
async fn burst_alone(conn: &Arc<Mutex<Connection>>, docs: usize, round: usize) -> Duration {
    let t = Instant::now();
    let mut all = Vec::new();
    let one = |sql: &'static str, k: String, data: Option<Vec<u8>>| {
        let conn = conn.clone();
        tokio::task::spawn_blocking(move || {
            let c = conn.lock().unwrap();
            let mut stmt = c.prepare_cached(sql).unwrap();
            match data {
                Some(d) => stmt.execute(params![k, d]).unwrap(),
                None => stmt.execute([k]).unwrap(),
            };
        })
    };
    for d in 0..docs {
        all.push(one(
            "INSERT OR REPLACE INTO kv (key, data) VALUES (?1, ?2)",
            full(&key(d, "snapshot", round)),
            Some(vec![9; 3000]),
        ));
        for c in 0..CHUNKS {
            all.push(one(
                "DELETE FROM kv WHERE key = ?1",
                full(&key(d, "incremental", round * 100 + c)),
                None,
            ));
        }
    }
    for f in all {
        f.await.unwrap();
    }
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(32)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| documents compacting at once | storage calls | one transaction per write | group commit | ratio |"
    );
    println!("|---|---|---|---|---|");
    rt.block_on(async {
        for docs in [30, 300, 1000] {
            let dir = tempfile::tempdir().unwrap();
            let conn = open(dir.path());
            let s = SqliteStorage::new(conn.clone(), "kv", "");
            let (mut alone, mut grouped) = (Vec::new(), Vec::new());
            for round in 0..14 {
                seed(&s, docs, round).await;
                // Alternate, so that neither always meets a bigger file.
                if round % 2 == 0 {
                    alone.push(burst_alone(&conn, docs, round).await);
                } else {
                    grouped.push(burst(&s, docs, round).await);
                }
            }
            let (a, g) = (median(alone), median(grouped));
            println!(
                "| {docs} | {} | {:.1} ms | {:.1} ms | {:.2} |",
                docs * (CHUNKS + 1),
                a.as_secs_f64() * 1e3,
                g.as_secs_f64() * 1e3,
                g.as_secs_f64() / a.as_secs_f64()
            );
        }
    });
}
