//! The server's tokio runtime: how many threads storage calls get, and how
//! long one of them lives once it has nothing to do.

use std::time::Duration;

/// Threads for storage calls. SQLite is one connection behind a lock and
/// PostgreSQL a small pool, so more threads only wait: tokio's default (512)
/// let a burst of edits from 1,000 devices start 500 threads, each with its
/// stack and a share of the allocator's arenas.
pub const BLOCKING_THREADS: usize = 32;

/// How long a storage thread with nothing to do stays (tokio's default is
/// 10 s). jemalloc keeps what a thread frees in that thread's cache, and
/// tidies the cache only when the thread allocates or frees again, so an
/// idle thread holds on to everything it freed last. Storage threads free
/// what other threads allocated (group commit drops a whole batch of
/// writes at once, with their bytes), and a burst leaves up to 32 of them
/// idle and full: in the soak (`benches/fanout.rs`) that held 10 MiB more
/// than before group commit after a minute and grew 6–8 MiB a minute,
/// while the live heap glibc's malloc counted under heaptrack was the same
/// with and without group commit. A thread that ends returns its cache; at
/// 1 s the threads of a burst end between the soak's rounds, and a new
/// thread costs tens of microseconds.
pub const IDLE_BLOCKING_THREAD_LIVES: Duration = Duration::from_secs(1);

/// The runtime the server runs on.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_keep_alive(IDLE_BLOCKING_THREAD_LIVES)
        .build()
}
