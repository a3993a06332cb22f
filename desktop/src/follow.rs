//! What the open UI hears without asking: one thread follows the event log
//! (whichever process wrote it: this one, the CLI, a job, a sync merge) and
//! this device's sync state, and tells each change to a sink. The local
//! HTTP server fans it out to pages as Server-Sent Events (`http/live.rs`);
//! the desktop window as Tauri events (`app/mod.rs`). Both front ends hear
//! the same news, so neither polls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flowkeep_app::{Change, Service, SyncStatus};
use flowkeep_core::commands::GetSyncStatus;

/// How often the log is looked at: a change shows within this (plus the
/// page's own read).
const TICK: Duration = Duration::from_millis(200);
/// Changes read at once; more than this is a burst (see `News::Burst`).
const BATCH: u32 = 500;
/// How often the sync state is looked at.
const SYNC_EVERY: u32 = 5;
/// A sync that only moved "last synced" is told at most this often: the UI
/// shows it as "a minute ago", not to the millisecond, and a watching
/// device syncs every 100 ms.
const LAST_SYNC_EVERY: Duration = Duration::from_secs(15);

/// One piece of news for the UI.
#[derive(Clone, Debug)]
pub enum News {
    /// One logged event.
    Change(Change),
    /// More changed at once than a page should hear about one by one (an
    /// import of thousands of runs, a first sync): read everything again.
    Burst,
    /// This device's sync state changed (`sync_status`'s answer).
    Sync(Box<SyncStatus>),
}

impl News {
    /// The event's name and its JSON, as both front ends send it.
    pub fn wire(&self) -> (&'static str, String) {
        match self {
            News::Change(c) => ("change", serde_json::to_string(c).unwrap_or_default()),
            News::Burst => ("reload", "\"many changes at once\"".to_owned()),
            News::Sync(s) => ("sync", serde_json::to_string(s).unwrap_or_default()),
        }
    }
}

/// Follows the log and the sync state until `stop` is set, telling `tell`.
pub fn spawn(
    svc: Arc<Service>,
    stop: Arc<AtomicBool>,
    mut tell: impl FnMut(News) + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("flowkeep-follow".into())
        .spawn(move || {
            let mut seen = svc.latest_seq().unwrap_or(0);
            let mut sync = SyncSeen::default();
            let mut tick = 0u32;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(TICK);
                seen = follow_log(&svc, seen, &mut tell);
                if tick.is_multiple_of(SYNC_EVERY) {
                    match svc.sync().status(GetSyncStatus {}) {
                        Ok(status) => {
                            if sync.worth_telling(&status, Instant::now()) {
                                tell(News::Sync(Box::new(status)));
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "live: reading the sync state failed"),
                    }
                }
                tick = tick.wrapping_add(1);
            }
        })
}

/// Tells what the log gained after `seen`; returns the new position.
fn follow_log(svc: &Service, seen: i64, tell: &mut impl FnMut(News)) -> i64 {
    match svc.changes_since(seen, BATCH) {
        // A burst: skip to the end of the log and tell once, so a page
        // does not read again once per change and the follower keeps up.
        Ok(changes) if changes.len() >= BATCH as usize => {
            let latest = svc
                .latest_seq()
                .unwrap_or_else(|_| changes.last().map_or(seen, |c| c.seq));
            tell(News::Burst);
            latest
        }
        Ok(changes) => {
            let mut seen = seen;
            for c in changes {
                seen = c.seq;
                tell(News::Change(c));
            }
            seen
        }
        Err(e) => {
            tracing::warn!(error = %e, "live: reading the log failed");
            seen
        }
    }
}

/// The sync state last told, to tell only what changed.
#[derive(Default)]
struct SyncSeen {
    /// `status` without `last_sync`, as JSON.
    shape: Option<String>,
    last_sync: Option<i64>,
    told_at: Option<Instant>,
}

impl SyncSeen {
    /// Whether `status` is news: anything but "last synced" changed, or
    /// that moved and was last told `LAST_SYNC_EVERY` ago.
    fn worth_telling(&mut self, status: &SyncStatus, now: Instant) -> bool {
        let mut without = status.clone();
        without.last_sync = None;
        let shape = serde_json::to_string(&without).ok();
        let changed = shape != self.shape;
        let moved = status.last_sync != self.last_sync
            && self
                .told_at
                .is_none_or(|at| now.duration_since(at) >= LAST_SYNC_EVERY);
        if !(changed || moved) {
            return false;
        }
        self.shape = shape;
        self.last_sync = status.last_sync;
        self.told_at = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(last_sync: Option<i64>, pending: u64) -> SyncStatus {
        SyncStatus {
            configured: true,
            device_id: "d".into(),
            server: Some("ws://127.0.0.1:1".into()),
            join: None,
            last_sync,
            pending_local_changes: pending,
            token_fingerprint: None,
            rejected: 0,
            rejections: vec![],
            last_error: None,
            server_limit: None,
            unconfirmed: 0,
        }
    }

    #[test]
    fn sync_state_is_told_when_it_changes_and_last_sync_at_most_every_15_s() {
        let mut seen = SyncSeen::default();
        let t0 = Instant::now();
        assert!(
            seen.worth_telling(&status(Some(1), 0), t0),
            "the first is news"
        );
        assert!(
            !seen.worth_telling(&status(Some(1), 0), t0),
            "nothing changed"
        );
        assert!(
            !seen.worth_telling(&status(Some(2), 0), t0 + Duration::from_secs(1)),
            "only last sync moved, 1 s later"
        );
        assert!(
            seen.worth_telling(&status(Some(3), 1), t0 + Duration::from_secs(2)),
            "a pending change is news at once"
        );
        assert!(seen.worth_telling(&status(Some(9), 1), t0 + LAST_SYNC_EVERY * 2));
    }
}
