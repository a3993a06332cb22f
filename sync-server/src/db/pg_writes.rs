//! PostgreSQL's side of group commit (`flowkeep_samod_sqlite::group_commit`):
//! the document writes waiting on this node go to the database together, a
//! batch in one transaction of at most two statements, so that a burst of
//! writes costs a few round trips to the database, not one per key each in
//! its own transaction.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use flowkeep_samod_sqlite::group_commit::GroupCommit;
use flowkeep_samod_sqlite::Error as StorageError;

use super::pg::{passing, Pool};

/// One key of `kv` written, as samod asked.
pub(crate) enum PgWrite {
    Put { key: String, data: Vec<u8> },
    Delete { key: String },
}

impl PgWrite {
    fn key(&self) -> &str {
        match self {
            PgWrite::Put { key, .. } | PgWrite::Delete { key } => key,
        }
    }
}

/// Most writes in one transaction (as SQLite's).
const MAX_BATCH: usize = 512;

/// Tries of a batch while the database restarts (100 ms doubling to 2 s:
/// about 7 s), as each write had alone.
const TRIES: u32 = 6;

/// The node's queue of document writes. It holds the pool weakly: the pool
/// owns the queue.
pub(crate) fn writes(pool: Weak<Pool>) -> Arc<GroupCommit<PgWrite>> {
    GroupCommit::new(MAX_BATCH, move |batch: &[PgWrite]| match pool.upgrade() {
        Some(pool) => commit(&pool, batch),
        // The database was closed before these writes.
        None => batch.iter().map(|_| Err(StorageError::Dropped)).collect(),
    })
}

fn failed(e: &super::Error) -> StorageError {
    StorageError::Failed {
        what: "write",
        reason: e.to_string(),
    }
}

/// What the batch leaves once applied in order: the last write to each
/// key. One transaction makes that the same as applying every write.
fn net(batch: &[PgWrite]) -> (Vec<(&str, &[u8])>, Vec<&str>) {
    let last: HashMap<&str, usize> = batch
        .iter()
        .enumerate()
        .map(|(i, w)| (w.key(), i))
        .collect();
    let (mut puts, mut deletes) = (Vec::new(), Vec::new());
    for (i, w) in batch.iter().enumerate() {
        if last[w.key()] != i {
            continue;
        }
        match w {
            PgWrite::Put { key, data } => puts.push((key.as_str(), data.as_slice())),
            PgWrite::Delete { key } => deletes.push(key.as_str()),
        }
    }
    (puts, deletes)
}

/// One transaction for the batch; one outcome per write.
fn commit(pool: &Pool, batch: &[PgWrite]) -> Vec<Result<(), StorageError>> {
    let (puts, deletes) = net(batch);
    let (keys, data): (Vec<&str>, Vec<&[u8]>) = puts.into_iter().unzip();
    let together = pool.retrying("write", TRIES, |c| {
        let mut tx = c.transaction()?;
        if !deletes.is_empty() {
            tx.execute("DELETE FROM kv WHERE key = ANY($1)", &[&deletes])?;
        }
        if !keys.is_empty() {
            tx.execute(
                "INSERT INTO kv (key, data) SELECT * FROM unnest($1::text[], $2::bytea[])
                 ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data",
                &[&keys, &data],
            )?;
        }
        tx.commit()
    });
    match together {
        Ok(()) => batch.iter().map(|_| Ok(())).collect(),
        // The database refused something in the batch (not a lost
        // connection): each write alone, so the others still go in.
        Err(e) if !passing(&e) && batch.len() > 1 => {
            tracing::warn!(error = %e, writes = batch.len(), "sync storage: a batch was refused; writing each alone");
            batch
                .iter()
                .map(|w| {
                    pool.retrying("write", 1, |c| match w {
                        PgWrite::Put { key, data } => c.execute(
                            "INSERT INTO kv (key, data) VALUES ($1, $2)
                             ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data",
                            &[key, data],
                        ),
                        PgWrite::Delete { key } => {
                            c.execute("DELETE FROM kv WHERE key = $1", &[key])
                        }
                    })
                    .map(drop)
                    .map_err(|e| failed(&e))
                })
                .collect()
        }
        Err(e) => {
            tracing::warn!(error = %e, writes = batch.len(), "sync storage: a batch failed");
            batch.iter().map(|_| Err(failed(&e))).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, data: &[u8]) -> PgWrite {
        PgWrite::Put {
            key: key.into(),
            data: data.to_vec(),
        }
    }

    fn delete(key: &str) -> PgWrite {
        PgWrite::Delete { key: key.into() }
    }

    #[test]
    fn a_batch_leaves_the_last_write_to_each_key() {
        let batch = [
            put("a", b"1"),
            delete("b"),
            put("b", b"2"),
            put("c", b"3"),
            delete("c"),
            put("a", b"4"),
            delete("d"),
        ];
        let (puts, deletes) = net(&batch);
        assert_eq!(puts, [("b", &b"2"[..]), ("a", &b"4"[..])]);
        assert_eq!(deletes, ["c", "d"]);
    }
}
