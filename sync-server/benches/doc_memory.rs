//! What the server's copy of a document costs in memory per change, which
//! is what a server's memory grows by while its documents are edited (the
//! soak in `fanout.rs`). Automerge keeps every change; this measures how
//! much each costs held in memory, against its saved form.
//!
//!   cargo bench -p flowkeep-sync-server --bench doc_memory
//!
//! For each shape, a writer's one-field changes are made first (so its own
//! memory is not counted), then applied one at a time to the server's
//! copies as sync applies them; then the copies are saved and loaded again.
//! Figures are jemalloc's count of live bytes, as `/metrics` reports them,
//! per change, with each document's fixed cost (about 10 KiB for an empty
//! one) spread over its changes.

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};

/// (documents, changes to each): the soak's shape (300 workspaces' documents
/// edited about 270 times in its ten minutes), longer histories, and one
/// long-lived document.
const SHAPES: [(usize, usize); 3] = [(300, 270), (300, 1_000), (1, 100_000)];

fn live_bytes() -> f64 {
    flowkeep_sync_server::memory::heap().map_or(f64::NAN, |h| h.allocated as f64)
}

/// Each document's changes, in order, as the bytes sync carries.
fn changes(docs: usize, per_doc: usize) -> Vec<Vec<Vec<u8>>> {
    (0..docs)
        .map(|d| {
            let mut writer = Automerge::new();
            (0..per_doc)
                .map(|r| {
                    let heads = writer.get_heads();
                    let mut tx = writer.transaction();
                    tx.put(ROOT, "value", format!("round {r} of {d}")).unwrap();
                    tx.commit();
                    writer.save_after(&heads)
                })
                .collect()
        })
        .collect()
}

fn main() {
    if live_bytes().is_nan() {
        eprintln!("doc_memory needs jemalloc's statistics (not on MSVC)");
        return;
    }
    println!("| documents × changes | received one at a time | loaded from the saved form | saved form |");
    println!("|---|---|---|---|");
    for (docs, per_doc) in SHAPES {
        let log = changes(docs, per_doc);
        let n = (docs * per_doc) as f64;
        let before = live_bytes();
        let mut copies: Vec<Automerge> = (0..docs).map(|_| Automerge::new()).collect();
        for r in 0..per_doc {
            for (copy, changes) in copies.iter_mut().zip(&log) {
                copy.load_incremental(&changes[r]).unwrap();
            }
        }
        let received = live_bytes() - before;
        let saved: Vec<Vec<u8>> = copies.iter().map(|c| c.save()).collect();
        drop(copies);
        let before = live_bytes();
        let loaded: Vec<Automerge> = saved.iter().map(|b| Automerge::load(b).unwrap()).collect();
        let reloaded = live_bytes() - before;
        drop(loaded);
        let saved_bytes: usize = saved.iter().map(Vec::len).sum();
        println!(
            "| {docs} × {per_doc} | {:.0} B per change | {:.0} B | {:.1} B |",
            received / n,
            reloaded / n,
            saved_bytes as f64 / n
        );
    }
}
