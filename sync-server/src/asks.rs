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
//! connection such an entry too (as does any other message about a
//! document), and a device that names made-up documents and never sends
//! their changes is not told from one about to send them, so closing it
//! would close a device with more new documents than that (it was, on
//! every dial). Past as many documents the workspace has not stored, the
//! connection's further messages (other than asks) about documents it has
//! not stored are dropped instead ([`UnknownSends`]): the device's other
//! documents keep syncing, and a dropped one is sent again on its next
//! connection (or with its next edit, once the workspace has stored some
//! of those named). So one connection holds entries for at most twice as
//! many documents the workspace does not hold as it may hold.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

/// Why such a connection closes (a close frame holds 123 bytes).
pub const TOO_MANY_REASON: &str =
    "asked for more documents the workspace does not hold than it may hold (--max-docs-per-workspace)";

/// What the server logs when it starts dropping a connection's messages
/// about documents the workspace has not stored.
pub const DROPPING: &str = "dropping messages about documents the workspace does not hold: this connection named more of them than the workspace may hold (--max-docs-per-workspace)";

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

/// Messages other than asks about documents the workspace has not stored.
pub struct UnknownSends {
    documents: HashSet<String>,
    max: usize,
    /// When the documents may be looked through again for those the
    /// workspace has stored since (at most once a [`LOOK_AGAIN_AFTER`], so a
    /// device sending made-up ids past the limit does not cost a pass over
    /// all of them per message).
    look_again: Option<Instant>,
    dropped: bool,
}

/// How often a full [`UnknownSends`] looks for documents the workspace stored.
pub const LOOK_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// Whether a message about a document the workspace has not stored goes on.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Passes,
    /// Dropped, the first time on this connection (worth one log line).
    DroppedFirst,
    Dropped,
}

impl UnknownSends {
    /// For a connection to a workspace that may hold `max_docs` documents.
    pub fn for_workspace(max_docs: u64) -> UnknownSends {
        UnknownSends::new(usize::try_from(max_docs.max(MIN_ASKS)).unwrap_or(usize::MAX))
    }

    fn new(max: usize) -> UnknownSends {
        UnknownSends {
            documents: HashSet::new(),
            max,
            look_again: None,
            dropped: false,
        }
    }

    /// Notes a message about `doc`, which the workspace has not stored;
    /// `forget_stored` takes out of a set the documents it has stored now.
    pub fn note(
        &mut self,
        doc: &str,
        now: Instant,
        forget_stored: impl FnOnce(&mut HashSet<String>),
    ) -> Verdict {
        if self.documents.contains(doc) {
            return Verdict::Passes;
        }
        if self.documents.len() >= self.max && self.look_again.is_none_or(|at| now >= at) {
            forget_stored(&mut self.documents);
            self.look_again = Some(now + LOOK_AGAIN_AFTER);
        }
        if self.documents.len() < self.max {
            self.documents.insert(doc.to_owned());
            return Verdict::Passes;
        }
        if self.dropped {
            Verdict::Dropped
        } else {
            self.dropped = true;
            Verdict::DroppedFirst
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
    fn messages_about_documents_past_the_limit_are_dropped_until_the_workspace_stores_some() {
        let t0 = Instant::now();
        let stored = std::cell::RefCell::new(HashSet::<String>::new());
        let forget = |set: &mut HashSet<String>| set.retain(|d| !stored.borrow().contains(d));
        let mut sends = UnknownSends::new(2);
        assert_eq!(sends.note("a", t0, forget), Verdict::Passes);
        assert_eq!(sends.note("b", t0, forget), Verdict::Passes);
        assert_eq!(sends.note("a", t0, forget), Verdict::Passes, "again");
        assert_eq!(sends.note("c", t0, forget), Verdict::DroppedFirst);
        assert_eq!(sends.note("d", t0, forget), Verdict::Dropped);
        // The workspace stores "a": its place is free once looked again.
        stored.borrow_mut().insert("a".to_owned());
        assert_eq!(
            sends.note("c", t0, forget),
            Verdict::Dropped,
            "not looked yet"
        );
        let later = t0 + LOOK_AGAIN_AFTER;
        assert_eq!(sends.note("c", later, forget), Verdict::Passes);
        assert_eq!(sends.note("d", later, forget), Verdict::Dropped);
    }

    #[test]
    fn a_small_document_limit_still_lets_a_thousand_new_documents_through() {
        let t = Instant::now();
        let mut sends = UnknownSends::for_workspace(3);
        assert!((0..MIN_ASKS).all(|i| sends.note(&i.to_string(), t, |_| {}) == Verdict::Passes));
        assert_eq!(sends.note("one more", t, |_| {}), Verdict::DroppedFirst);
    }
}
