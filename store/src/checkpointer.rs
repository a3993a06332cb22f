//! WAL checkpoints off the write path. SQLite's automatic checkpoint runs
//! inside whichever commit crosses the threshold, so one write in a few
//! dozen paid for copying the WAL back and syncing (milliseconds). Here a
//! thread with its own connection checkpoints shortly after writes instead;
//! the automatic checkpoint stays on, at a high threshold, as a backstop.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// Pages of WAL at which a commit checkpoints by itself (about 64 MiB).
pub const BACKSTOP_PAGES: i64 = 16_384;
const DELAY: Duration = Duration::from_millis(100);
const BUSY_WAIT: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    dirty: bool,
    stop: bool,
    /// Checkpoints asked for by `checkpoint_now`, and how many of them are done.
    asked: u64,
    done: u64,
}

pub struct Checkpointer {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> Checkpointer {
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let path: PathBuf = path.to_owned();
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("flowkeep-checkpoint".into())
            .spawn(move || run(&path, &worker))
            .ok();
        Checkpointer { shared, thread }
    }

    /// Called after each commit.
    pub fn notify(&self) {
        let (lock, cv) = &*self.shared;
        let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
        if !s.dirty {
            s.dirty = true;
            cv.notify_all();
        }
    }
}

impl Checkpointer {
    /// Checkpoints now (no delay) and returns once done; see
    /// `Db::checkpoint_now`.
    pub fn checkpoint_now(&self) {
        let (lock, cv) = &*self.shared;
        let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
        if s.stop || self.thread.is_none() {
            return;
        }
        s.asked += 1;
        let ticket = s.asked;
        cv.notify_all();
        while s.done < ticket && !s.stop {
            s = cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        {
            let (lock, cv) = &*self.shared;
            lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
            cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Marks the checkpointer stopped when its thread ends, however it ends
/// (a panic included), so that no `checkpoint_now` waits for it forever.
struct StopOnExit<'a>(&'a (Mutex<State>, Condvar));

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        let (lock, cv) = self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        cv.notify_all();
    }
}

fn run(path: &Path, shared: &(Mutex<State>, Condvar)) {
    let _stop_on_exit = StopOnExit(shared);
    let (lock, cv) = shared;
    let Ok(conn) = Connection::open(path) else {
        // Nothing to wait for: `checkpoint_now` returns at once from here on.
        return;
    };
    let _ = conn.busy_timeout(BUSY_WAIT);
    loop {
        let target = {
            let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
            while !s.dirty && !s.stop && s.asked == s.done {
                s = cv.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            // Let a burst of writes finish, then copy them back in one go
            // (unless a checkpoint was asked for now). Shutdown interrupts
            // the wait: closing the last connection checkpoints anyway, and
            // a CLI process must not linger.
            let (mut s, _) = cv
                .wait_timeout_while(s, DELAY, |s| !s.stop && s.asked == s.done)
                .unwrap_or_else(|p| p.into_inner());
            if s.stop {
                return;
            }
            s.dirty = false;
            s.asked
        };
        // PASSIVE never blocks writers or readers; whatever it cannot copy
        // now is copied next time. Errors (busy) are harmless for the same reason.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
        s.done = s.done.max(target);
        cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use crate::db::{Db, StoreOptions};
    use rusqlite::Connection;

    /// (frames in the WAL, frames copied back), as a PASSIVE checkpoint
    /// from another connection sees them.
    fn wal(path: &std::path::Path) -> (i64, i64) {
        let c = Connection::open(path).unwrap();
        c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(1)?, r.get(2)?))
        })
        .unwrap()
    }

    #[test]
    fn checkpoint_now_copies_the_wal_back_and_the_next_write_starts_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flowkeep.db");
        let db = Db::open(&path, &StoreOptions::default()).unwrap();
        db.write(|tx| -> crate::Result<()> {
            tx.execute_batch(
                "CREATE TABLE bulk(x BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
                 INSERT INTO bulk SELECT randomblob(1000) FROM n;",
            )?;
            Ok(())
        })
        .unwrap();
        // Several callers at once each get their own checkpoint.
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| db.checkpoint_now());
            }
        });
        let (frames, copied) = wal(&path);
        assert!(
            frames > 700,
            "the bulk write is in the WAL: {frames} frames"
        );
        assert_eq!(copied, frames, "all of it is copied back");

        db.write(|tx| -> crate::Result<()> {
            tx.execute("INSERT INTO bulk VALUES (x'00')", [])?;
            Ok(())
        })
        .unwrap();
        let (frames, _) = wal(&path);
        assert!(
            frames < 10,
            "one small write after it starts the WAL again: {frames} frames"
        );
    }

    #[test]
    fn checkpoint_now_returns_at_once_in_memory() {
        Db::open_in_memory().unwrap().checkpoint_now();
    }
}
