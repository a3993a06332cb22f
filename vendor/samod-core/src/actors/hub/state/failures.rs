//! Documents whose actor failed (panicked, reported by the runtime with
//! `DocToHubMsg::failed`). The next actor restarts the exchange with its
//! peers (`SpawnArgs::resync`), which makes them send again what they sent
//! the failed one: when that is what made it fail (a change that trips
//! automerge every time), every actor after it fails too, and each failure
//! costs a load from storage and a whole-document exchange with every peer.
//! So a document that fails again soon rests: peers' messages about it are
//! dropped for a while that doubles with each failure, and only the next
//! message after the rest loads it again.

use std::collections::HashMap;
use std::time::Duration;

use crate::{DocumentId, UnixTimestamp};

/// A document that has not failed for this long starts counting afresh.
const FORGIVEN_AFTER: Duration = Duration::from_secs(600);

/// The rest after the second failure in a row; it doubles after each one
/// that follows, up to `LONGEST_REST`. The first failure gets none: it may
/// have nothing to do with what comes next.
const FIRST_REST: Duration = Duration::from_secs(1);
const LONGEST_REST: Duration = Duration::from_secs(300);

#[derive(Default)]
pub(super) struct Failures {
    documents: HashMap<DocumentId, Failure>,
}

struct Failure {
    /// Failures in a row, none more than `FORGIVEN_AFTER` after the last.
    count: u32,
    last: UnixTimestamp,
    /// The next actor spawned for it has not restarted the exchange yet.
    resync: bool,
}

impl Failures {
    pub(super) fn record(&mut self, document_id: DocumentId, now: UnixTimestamp) {
        self.documents.retain(|_, f| now < f.last + FORGIVEN_AFTER);
        let failure = self.documents.entry(document_id).or_insert(Failure {
            count: 0,
            last: now,
            resync: true,
        });
        failure.count += 1;
        failure.last = now;
        failure.resync = true;
    }

    /// Whether a peer's message about the document must not load it now.
    pub(super) fn resting(&self, document_id: &DocumentId, now: UnixTimestamp) -> bool {
        self.documents
            .get(document_id)
            .and_then(|f| rest(f.count).map(|r| now < f.last + r))
            .unwrap_or(false)
    }

    /// Whether the actor being spawned for the document must restart the
    /// exchange with its peers (once per failure).
    pub(super) fn take_resync(&mut self, document_id: &DocumentId) -> bool {
        self.documents
            .get_mut(document_id)
            .is_some_and(|f| std::mem::take(&mut f.resync))
    }
}

fn rest(failures: u32) -> Option<Duration> {
    let doublings = failures.checked_sub(2)?;
    Some(
        FIRST_REST
            .checked_mul(1u32.checked_shl(doublings).unwrap_or(u32::MAX))
            .unwrap_or(LONGEST_REST)
            .min(LONGEST_REST),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> DocumentId {
        DocumentId::new(&mut rand::rng())
    }

    #[test]
    fn the_first_failure_rests_not_and_each_next_one_rests_twice_as_long() {
        let (d, t) = (doc(), UnixTimestamp::from_millis(1_000_000));
        let mut f = Failures::default();
        f.record(d.clone(), t);
        assert!(!f.resting(&d, t));
        assert!(f.take_resync(&d));
        assert!(!f.take_resync(&d), "once per failure");

        f.record(d.clone(), t);
        assert!(f.resting(&d, t + Duration::from_millis(999)));
        assert!(!f.resting(&d, t + FIRST_REST));
        f.record(d.clone(), t);
        assert!(f.resting(&d, t + Duration::from_millis(1_999)));
        assert!(!f.resting(&d, t + Duration::from_secs(2)));
        for _ in 0..40 {
            f.record(d.clone(), t);
        }
        assert!(f.resting(&d, t + LONGEST_REST - Duration::from_millis(1)));
        assert!(!f.resting(&d, t + LONGEST_REST), "never longer");
        assert!(!f.resting(&doc(), t), "only that document");
    }

    #[test]
    fn a_failure_long_after_the_last_counts_as_the_first() {
        let (d, t) = (doc(), UnixTimestamp::from_millis(1_000_000));
        let mut f = Failures::default();
        f.record(d.clone(), t);
        f.record(d.clone(), t);
        let later = t + FORGIVEN_AFTER;
        f.record(d.clone(), later);
        assert!(!f.resting(&d, later));
    }
}
