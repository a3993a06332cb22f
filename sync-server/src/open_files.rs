//! How many files the server may hold open: every connection is one (two
//! when passed on to another node), besides storage and the listener.
//!
//! Linux gives a process a soft limit of 1,024 by default (systemd's
//! `LimitNOFILE=1024:524288`, most shells' `ulimit -n`), far below the
//! server's `--max-connections`. Past it `accept` fails with `EMFILE` and
//! new devices wait in the kernel's queue, unanswered, until one leaves:
//! a server that looks healthy and takes no one. The soft limit is the
//! process's own to raise up to the hard one, as Go's runtime and nginx's
//! `worker_rlimit_nofile` do, so the server raises it at start and says so
//! when even the hard limit is lower than its connection limit needs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Files the server holds open besides its connections: storage (SQLite's
/// database and journal, PostgreSQL's connections), the listener, logs,
/// the runtime's own.
pub const BESIDES_CONNECTIONS: u64 = 64;

/// The limit on open files before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub was: u64,
    pub now: u64,
}

impl Limit {
    /// Room for `max_connections` devices and what the server opens
    /// besides them.
    pub fn fits(&self, max_connections: usize) -> bool {
        self.now >= (max_connections as u64).saturating_add(BESIDES_CONNECTIONS)
    }
}

/// Raises this process's soft limit on open files to its hard limit.
#[cfg(unix)]
pub fn raise() -> nix::Result<Limit> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= hard {
        return Ok(Limit {
            was: soft,
            now: soft,
        });
    }
    // macOS refuses more than OPEN_MAX (10,240) for an unlimited hard limit;
    // never lower what the process has.
    #[cfg(target_os = "macos")]
    let target = hard.min(10_240).max(soft);
    #[cfg(not(target_os = "macos"))]
    let target = hard;
    if target <= soft {
        return Ok(Limit {
            was: soft,
            now: soft,
        });
    }
    // The hard limit stays as it is: only the soft one is ours to move.
    setrlimit(Resource::RLIMIT_NOFILE, target, hard)?;
    Ok(Limit {
        was: soft,
        now: target,
    })
}

/// Says at most once every `every_secs` seconds (over all threads) that
/// the server cannot accept connections, with why: a failing `accept`
/// repeats every 50 ms for as long as the server is full.
pub struct AcceptFailures {
    every_secs: u64,
    last_said: AtomicU64,
}

impl AcceptFailures {
    pub const fn new(every_secs: u64) -> AcceptFailures {
        AcceptFailures {
            every_secs,
            last_said: AtomicU64::new(0),
        }
    }

    /// Whether a failure now should be logged.
    pub fn should_say(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_said.load(Ordering::Relaxed);
        (last == 0 || now >= last.saturating_add(self.every_secs))
            && self
                .last_said
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// The log line for a failed `accept`.
pub fn say_accept_failed(error: &std::io::Error) {
    static SAID: AcceptFailures = AcceptFailures::new(10);
    if !SAID.should_say() {
        return;
    }
    if error.raw_os_error() == Some(24) {
        // EMFILE: the usual cause, and one with a remedy.
        tracing::warn!(
            error = %error,
            "cannot accept connections: this process holds as many files open as it may \
             (ulimit -n); devices wait until one disconnects. Raise the limit (systemd \
             LimitNOFILE=, ulimit -n) or lower --max-connections"
        );
    } else {
        tracing::warn!(error = %error, "cannot accept connections; retrying");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_accept_is_said_once_per_interval_not_every_time() {
        let said = AcceptFailures::new(3600);
        assert!(said.should_say());
        assert!(!said.should_say());
        assert!(!said.should_say());
    }

    #[test]
    fn the_limit_must_leave_room_beside_the_connections() {
        let l = Limit {
            was: 1024,
            now: 1024,
        };
        assert!(l.fits(900));
        assert!(!l.fits(1000));
        assert!(!l.fits(10_000));
    }

    #[cfg(unix)]
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        use nix::sys::resource::{getrlimit, Resource};
        let l = raise().unwrap();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, l.now);
        assert!(l.now >= l.was);
        #[cfg(not(target_os = "macos"))]
        assert_eq!(soft, hard);
    }
}
