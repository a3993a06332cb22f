//! Documents a connection asked for that its workspace does not hold.
//!
//! The server loads each document a device asks for while it looks for it,
//! and the connection keeps an entry for it afterwards, so that the
//! document reaches the device if another brings it later: a few hundred
//! bytes for as long as the connection lasts. A device asks only for
//! documents its workspace lists, so one that asks for more it does not
//! hold than the workspace may hold at all (`--max-docs-per-workspace`) is
//! sending made-up ids, and its connection is closed.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

/// Why such a connection closes (a close frame holds 123 bytes).
pub const TOO_MANY_REASON: &str =
    "asked for more documents the workspace does not hold than it may hold (--max-docs-per-workspace)";

pub struct UnknownAsks {
    /// Hashes of the ids asked for: a collision only counts one ask less.
    seen: HashSet<u64>,
    hasher: RandomState,
    max: u64,
}

impl UnknownAsks {
    pub fn new(max: u64) -> UnknownAsks {
        UnknownAsks {
            seen: HashSet::new(),
            hasher: RandomState::new(),
            max,
        }
    }

    /// Notes an ask for `doc`, which the workspace does not hold: false
    /// once more such documents than `max` were asked for.
    pub fn note(&mut self, doc: &str) -> bool {
        self.seen.insert(self.hasher.hash_one(doc));
        self.seen.len() as u64 <= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_document_asked_again_counts_once_and_one_past_the_limit_is_refused() {
        let mut asks = UnknownAsks::new(2);
        assert!(asks.note("a"));
        assert!(asks.note("a"));
        assert!(asks.note("b"));
        assert!(asks.note("b"));
        assert!(!asks.note("c"));
    }

    #[test]
    fn the_reason_fits_a_close_frame() {
        assert!(TOO_MANY_REASON.len() <= 123, "{}", TOO_MANY_REASON.len());
    }
}
