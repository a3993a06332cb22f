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

#[derive(Default)]
struct State {
    dirty: bool,
    stop: bool,
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
            cv.notify_one();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        {
            let (lock, cv) = &*self.shared;
            lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
            cv.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(path: &Path, shared: &(Mutex<State>, Condvar)) {
    let Ok(conn) = Connection::open(path) else {
        return;
    };
    let _ = conn.busy_timeout(Duration::from_secs(1));
    let (lock, cv) = shared;
    loop {
        {
            let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
            while !s.dirty && !s.stop {
                s = cv.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            // Let a burst of writes finish, then copy them back in one go.
            // Shutdown interrupts the wait: closing the last connection
            // checkpoints anyway, and a CLI process must not linger.
            let (mut s, _) = cv
                .wait_timeout_while(s, DELAY, |s| !s.stop)
                .unwrap_or_else(|p| p.into_inner());
            if s.stop {
                return;
            }
            s.dirty = false;
        }
        // PASSIVE never blocks writers or readers; whatever it cannot copy
        // now is copied next time. Errors (busy) are harmless for the same reason.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}
