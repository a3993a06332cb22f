//! Documents a connection asked for that its workspace does not hold.
//!
//! The server loads each document a device asks for while it looks for it,
//! and the connection keeps an entry for it afterwards, so that the
//! document reaches the device if another brings it later: a few hundred
//! bytes for as long as the connection lasts. A device asks (a `request`
//! message) only for documents its workspace lists and it does not have;
//! those the server does not hold are ones it refused at the document
//! limit, fewer than the workspace may hold unless the devices together
//! hold more than twice that. One that asks for more than the workspace
//! may hold (`--max-docs-per-workspace`, at least [`MIN_ASKS`]) is sending
//! made-up ids, and its connection is closed. A device's own new documents
//! are not asks: it sends `sync` messages for those.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

/// Why such a connection closes (a close frame holds 123 bytes).
pub const TOO_MANY_REASON: &str =
    "asked for more documents the workspace does not hold than it may hold (--max-docs-per-workspace)";

/// The fewest asks a connection may make, whatever the document limit (a
/// workspace limited to a few documents is not a reason to close devices
/// that list a few more).
pub const MIN_ASKS: u64 = 1_000;

pub struct UnknownAsks {
    /// Hashes of the ids asked for: a collision only counts one ask less.
    seen: HashSet<u64>,
    hasher: RandomState,
    max: u64,
}

impl UnknownAsks {
    /// For a connection to a workspace that may hold `max_docs` documents.
    pub fn for_workspace(max_docs: u64) -> UnknownAsks {
        UnknownAsks::new(max_docs.max(MIN_ASKS))
    }

    fn new(max: u64) -> UnknownAsks {
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
    fn a_small_document_limit_still_allows_a_thousand_asks() {
        let mut asks = UnknownAsks::for_workspace(3);
        assert!((0..MIN_ASKS).all(|i| asks.note(&i.to_string())));
        assert!(!asks.note("one more"));
        let mut asks = UnknownAsks::for_workspace(5_000);
        assert!((0..5_000).all(|i| asks.note(&i.to_string())));
        assert!(!asks.note("one more"));
    }

    #[test]
    fn the_reason_fits_a_close_frame() {
        assert!(TOO_MANY_REASON.len() <= 123, "{}", TOO_MANY_REASON.len());
    }
}
