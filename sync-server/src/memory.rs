//! The server's memory as its allocator sees it, for `/metrics`.
//!
//! The `flowkeep-sync-server` binary allocates with jemalloc (see `main.rs`)
//! rather than glibc's malloc. Under a steady stream of edits glibc kept the
//! memory that documents' growing vectors had freed inside its arenas: in the
//! soak (`benches/fanout.rs`) RSS grew by 35 MiB in four minutes while the
//! live heap grew by 5 MiB (heaptrack), and `malloc_trim(0)` at minute 5 gave
//! 45 MiB back at once. jemalloc returns freed pages to the OS within
//! seconds, from a background thread, so RSS follows what the server holds.
//!
//! The figures are jemalloc's: they describe the process only where jemalloc
//! is the global allocator, as in the binary (an embedder of this library
//! that keeps the system allocator reads near-zero figures).

/// Bytes the allocator reports.
#[derive(Debug, Clone, Copy)]
pub struct Heap {
    /// Held by live objects: documents, connections, buffers.
    pub allocated: u64,
    /// Resident in memory on the allocator's behalf, including what it has
    /// not yet returned and its own metadata.
    pub resident: u64,
}

/// The allocator's figures now, or `None` where there are none.
#[cfg(not(target_env = "msvc"))]
pub fn heap() -> Option<Heap> {
    use tikv_jemalloc_ctl::{epoch, stats};
    // jemalloc's statistics are a snapshot refreshed when the epoch moves.
    epoch::advance().ok()?;
    Some(Heap {
        allocated: stats::allocated::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
    })
}

/// The allocator's figures now, or `None` where there are none.
#[cfg(target_env = "msvc")]
pub fn heap() -> Option<Heap> {
    None
}
