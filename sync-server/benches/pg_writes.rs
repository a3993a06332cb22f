//! `cargo bench -p flowkeep-sync-server --bench pg_writes`: a burst of
//! document writes on PostgreSQL as samod makes them when many documents
//! compact at once (each writes its new snapshot and deletes the 12 chunks
//! it replaces), all asked for concurrently, through the server's storage
//! (group commit, `db/pg_writes.rs`). Against, in the same run, the way
//! writes went before: each on tokio's blocking pool (32 threads, as the
//! server's) in its own transaction on a pooled connection. A throwaway
//! PostgreSQL on 127.0.0.1 with `fsync` on, as a real one runs (Debian's
//! `postgresql`); over a network each statement also pays a round trip,
//! which the old way paid per write and a batch pays twice. Prints medians
//! of 7 runs per row.

#[path = "../../tests/pg_support/mod.rs"]
mod pg_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowkeep_sync_server::storage::{TryStorage, WorkspaceStorage};
use flowkeep_sync_server::Db;
use futures::FutureExt;
use postgres::{Client, NoTls};
use samod::storage::StorageKey;

const CHUNKS: usize = 12;

fn key(doc: usize, kind: &str, n: usize) -> StorageKey {
    StorageKey::from_parts([format!("doc{doc}"), kind.to_owned(), format!("{n}")]).unwrap()
}

/// `db.storage("bench")`'s key for `k`.
fn full(k: &StorageKey) -> String {
    let parts: Vec<_> = k.into_iter().map(|s| s.as_str()).collect();
    format!("ws/bench/{}", parts.join("/"))
}

/// Puts every document's chunks (not timed).
async fn seed(s: &WorkspaceStorage, docs: usize, round: usize) {
    let all: Vec<_> = (0..docs)
        .flat_map(|d| (0..CHUNKS).map(move |c| (d, c)))
        .map(|(d, c)| s.try_put(key(d, "incremental", round * 100 + c), vec![7; 300]))
        .collect();
    for stored in futures::future::join_all(all).await {
        stored.expect("seeded");
    }
}

/// The compaction burst through the server's storage.
async fn burst(s: &WorkspaceStorage, docs: usize, round: usize) -> Duration {
    let t = Instant::now();
    let mut all = Vec::new();
    for d in 0..docs {
        all.push(s.try_put(key(d, "snapshot", round), vec![9; 3000]).boxed());
        for c in 0..CHUNKS {
            all.push(s.try_delete(key(d, "incremental", round * 100 + c)).boxed());
        }
    }
    let outcomes = futures::future::join_all(all).await;
    let took = t.elapsed();
    for stored in outcomes {
        stored.expect("written");
    }
    took
}

/// Connections kept between calls, as the server's pool kept 16.
struct OldPool {
    url: String,
    idle: Mutex<Vec<Client>>,
}

impl OldPool {
    fn with(&self, f: impl FnOnce(&mut Client)) {
        let pooled = self.idle.lock().unwrap().pop();
        let mut c = pooled.unwrap_or_else(|| Client::connect(&self.url, NoTls).unwrap());
        f(&mut c);
        let mut idle = self.idle.lock().unwrap();
        if idle.len() < 16 {
            idle.push(c);
        }
    }
}

/// The same burst, each write alone on the blocking pool in its own
/// transaction (as before group commit).
async fn burst_alone(pool: &Arc<OldPool>, docs: usize, round: usize) -> Duration {
    let t = Instant::now();
    let mut all = Vec::new();
    let one = |k: String, data: Option<Vec<u8>>| {
        let pool = pool.clone();
        tokio::task::spawn_blocking(move || {
            pool.with(|c| {
                match data {
                    Some(d) => c.execute(
                        "INSERT INTO kv (key, data) VALUES ($1, $2)
                         ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data",
                        &[&k, &d],
                    ),
                    None => c.execute("DELETE FROM kv WHERE key = $1", &[&k]),
                }
                .unwrap();
            })
        })
    };
    for d in 0..docs {
        all.push(one(full(&key(d, "snapshot", round)), Some(vec![9; 3000])));
        for c in 0..CHUNKS {
            all.push(one(full(&key(d, "incremental", round * 100 + c)), None));
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
    let pg = pg_support::Postgres::start_durable().expect("PostgreSQL is needed for this bench");
    // The server's runtime (on this 2-core machine, 2 workers).
    let rt = flowkeep_sync_server::runtime::build().unwrap();
    let db = Db::open_postgres(&pg.url()).unwrap();
    let s = db.storage("bench");
    let old = Arc::new(OldPool {
        url: pg.url(),
        idle: Mutex::new(Vec::new()),
    });
    println!(
        "| documents compacting at once | storage calls | one transaction per write | group commit | ratio |"
    );
    println!("|---|---|---|---|---|");
    rt.block_on(async {
        for docs in [30, 300, 1000] {
            let (mut alone, mut grouped) = (Vec::new(), Vec::new());
            for round in 0..14 {
                seed(&s, docs, round).await;
                // Alternate, so that neither always meets a bigger table.
                if round % 2 == 0 {
                    alone.push(burst_alone(&old, docs, round).await);
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
    drop(old);
    drop(db);
}
