//! Documents a connection names that its workspace does not hold.
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
//! made-up ids, and its connection is closed ([`UnknownAsks`]).
//!
//! A device's own new documents are not asks: it sends `sync` messages for
//! those, the first naming its changes and carrying none. Each costs the
//! connection such an entry too, and a device that names made-up documents
//! and never sends their changes is not told from one about to send them,
//! so closing it would close a device with more new documents than that
//! (it was, on every dial). Past as many documents the workspace has not
//! let in, further `sync` messages about documents it does not hold are
//! dropped instead ([`UnknownSyncs`]): the device's other documents keep
//! syncing, and the dropped ones are sent again with their next edit or
//! connection. Those the workspace has taken since stop counting.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

/// Why such a connection closes (a close frame holds 123 bytes).
pub const TOO_MANY_REASON: &str =
    "asked for more documents the workspace does not hold than it may hold (--max-docs-per-workspace)";

/// What the server logs when it starts dropping a connection's `sync`
/// messages about documents the workspace does not hold.
pub const DROPPING_SYNCS: &str = "dropping sync messages about documents the workspace does not hold: this connection named more of them than the workspace may hold (--max-docs-per-workspace)";

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

/// `sync` messages about documents the workspace does not hold.
pub struct UnknownSyncs {
    documents: HashSet<String>,
    max: usize,
    /// When the documents may be looked through again for those the
    /// workspace has taken since (at most once a [`LOOK_AGAIN_AFTER`], so a
    /// device sending made-up ids past the limit does not cost a pass over
    /// all of them per message).
    look_again: Option<Instant>,
    dropped: bool,
}

/// How often a full [`UnknownSyncs`] looks for documents the workspace took.
pub const LOOK_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// Whether a `sync` message about a document the workspace does not hold
/// goes on.
#[derive(Debug, PartialEq, Eq)]
pub enum Sync {
    Passes,
    /// Dropped, the first time on this connection (worth one log line).
    DroppedFirst,
    Dropped,
}

impl UnknownSyncs {
    /// For a connection to a workspace that may hold `max_docs` documents.
    pub fn for_workspace(max_docs: u64) -> UnknownSyncs {
        UnknownSyncs::new(usize::try_from(max_docs.max(MIN_ASKS)).unwrap_or(usize::MAX))
    }

    fn new(max: usize) -> UnknownSyncs {
        UnknownSyncs {
            documents: HashSet::new(),
            max,
            look_again: None,
            dropped: false,
        }
    }

    /// Notes a `sync` message about `doc`, which the workspace does not
    /// hold; `knows` says whether it holds (or has let in) a document now.
    pub fn note(&mut self, doc: &str, now: Instant, knows: impl Fn(&str) -> bool) -> Sync {
        if self.documents.contains(doc) {
            return Sync::Passes;
        }
        if self.documents.len() >= self.max && self.look_again.is_none_or(|at| now >= at) {
            self.documents.retain(|d| !knows(d));
            self.look_again = Some(now + LOOK_AGAIN_AFTER);
        }
        if self.documents.len() < self.max {
            self.documents.insert(doc.to_owned());
            return Sync::Passes;
        }
        if self.dropped {
            Sync::Dropped
        } else {
            self.dropped = true;
            Sync::DroppedFirst
        }
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

    #[test]
    fn syncs_about_documents_past_the_limit_are_dropped_until_the_workspace_takes_some() {
        let t0 = Instant::now();
        let taken = std::cell::RefCell::new(HashSet::<String>::new());
        let knows = |d: &str| taken.borrow().contains(d);
        let mut syncs = UnknownSyncs::new(2);
        assert_eq!(syncs.note("a", t0, knows), Sync::Passes);
        assert_eq!(syncs.note("b", t0, knows), Sync::Passes);
        assert_eq!(syncs.note("a", t0, knows), Sync::Passes, "again");
        assert_eq!(syncs.note("c", t0, knows), Sync::DroppedFirst);
        assert_eq!(syncs.note("d", t0, knows), Sync::Dropped);
        // The workspace takes "a": its place is free once looked again.
        taken.borrow_mut().insert("a".to_owned());
        assert_eq!(syncs.note("c", t0, knows), Sync::Dropped, "not looked yet");
        let later = t0 + LOOK_AGAIN_AFTER;
        assert_eq!(syncs.note("c", later, knows), Sync::Passes);
        assert_eq!(syncs.note("d", later, knows), Sync::Dropped);
    }

    #[test]
    fn a_small_document_limit_still_lets_a_thousand_new_documents_through() {
        let t = Instant::now();
        let mut syncs = UnknownSyncs::for_workspace(3);
        assert!((0..MIN_ASKS).all(|i| syncs.note(&i.to_string(), t, |_| false) == Sync::Passes));
        assert_eq!(syncs.note("one more", t, |_| false), Sync::DroppedFirst);
    }
}
