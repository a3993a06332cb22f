//! The sync server's runtime (`flowkeep_sync_server::runtime`): a storage
//! thread with nothing to do ends within about a second, so what its
//! allocator cache holds goes back (the reason is in `runtime.rs`).
//!
//! Its own test binary: it counts the process's threads, which tests
//! running beside it would change.

#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use flowkeep_sync_server::runtime::{self, IDLE_BLOCKING_THREAD_LIVES};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn storage_threads_with_nothing_to_do_end_within_seconds() {
    let rt = runtime::build().unwrap();
    // The workers start with the first task.
    rt.block_on(async { tokio::task::yield_now().await });
    let before = threads();

    // A burst of storage calls, each holding its thread for a moment.
    rt.block_on(async {
        let calls: Vec<_> = (0..8)
            .map(|_| tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(100))))
            .collect();
        for c in calls {
            c.await.unwrap();
        }
    });
    let busy = threads();
    assert!(
        busy >= before + 8,
        "8 storage threads started: {before} -> {busy}"
    );

    // tokio's default keeps them 10 s; these end after a second.
    let deadline = Instant::now() + IDLE_BLOCKING_THREAD_LIVES * 4;
    while threads() > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let idle = threads();
    assert!(
        idle <= before,
        "{} storage threads still there {:?} after the burst",
        idle - before,
        IDLE_BLOCKING_THREAD_LIVES * 4
    );
    drop(rt);
}
