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

/// How long pages that nothing uses any more stay resident, in ms.
/// jemalloc's default, 10 s, kept them resident for good in an idle server:
/// after the documents of an idle workspace were unloaded (`benches/fanout.rs
/// idle`, 500 documents) the live heap fell from 24 to 6 MiB while RSS stayed
/// at 44 MiB for as long as we waited; with 1 s it fell to 34 MiB. A server's
/// memory then follows what it holds, for one `madvise` per freed run of
/// pages.
pub const FREED_PAGES_RESIDENT_MS: isize = 1_000;

/// Applies [`FREED_PAGES_RESIDENT_MS`] to the arenas that exist and those to
/// come. Call it before starting threads.
#[cfg(not(target_env = "msvc"))]
pub fn return_freed_pages_sooner() -> Result<(), tikv_jemalloc_ctl::Error> {
    use tikv_jemalloc_ctl::{arenas, Access, AsName};
    b"arenas.dirty_decay_ms\0"
        .name()
        .write(FREED_PAGES_RESIDENT_MS)?;
    for i in 0..arenas::narenas::read()? {
        // An arena not created yet takes the default set above.
        let key = format!("arena.{i}.dirty_decay_ms\0");
        let _ = key.as_bytes().name().write(FREED_PAGES_RESIDENT_MS);
    }
    Ok(())
}

/// Without jemalloc there is nothing to set.
#[cfg(target_env = "msvc")]
pub fn return_freed_pages_sooner() -> Result<(), std::convert::Infallible> {
    Ok(())
}

/// The allocator's figures now, or `None` where there are none.
#[cfg(target_env = "msvc")]
pub fn heap() -> Option<Heap> {
    None
}

#[cfg(all(test, not(target_env = "msvc")))]
mod tests {
    use super::*;
    use tikv_jemalloc_ctl::{Access, AsName};

    #[test]
    fn freed_pages_are_returned_after_a_second_not_ten() {
        return_freed_pages_sooner().unwrap();
        let default: isize = b"arenas.dirty_decay_ms\0".name().read().unwrap();
        let first: isize = b"arena.0.dirty_decay_ms\0".name().read().unwrap();
        assert_eq!((default, first), (1_000, 1_000));
    }
}
