//! Unloading idle documents, for repos with `documents_on_demand` (a sync
//! server): an actor keeps its document's whole history in memory, so a
//! repo whose peers stay connected would otherwise hold every document any
//! of them ever used until the repo stops.
//!
//! A document whose actor saw no sync message for `after` is unloaded: its
//! actor is told to terminate, which it does once its changes are on disk.
//! The connections that used it stay subscribed to it (the connection
//! remembers the document), so when a message about it arrives the new
//! actor is spawned with all of them and syncs each as if it had asked.
//! Messages that arrive while the old actor is still terminating wait here
//! and go to the new actor once the old one has stopped, so that the new
//! actor loads everything the old one saved.

use std::collections::HashMap;
use std::time::Duration;

use crate::actors::messages::DocMessage;
use crate::{ConnectionId, DocumentActorId, DocumentId, UnixTimestamp};

/// How often idle documents are looked for, at most.
const SCAN_EVERY: Duration = Duration::from_secs(1);

pub(super) struct Unloads {
    after: Option<Duration>,
    last_scan: Option<UnixTimestamp>,
    terminating: HashMap<DocumentId, Terminating>,
}

struct Terminating {
    actor: DocumentActorId,
    queued: Vec<Queued>,
}

/// A message about a document that arrived while its actor terminated.
pub(super) struct Queued {
    pub(super) connection_id: ConnectionId,
    pub(super) msg: DocMessage,
    pub(super) received_at: UnixTimestamp,
}

impl Unloads {
    pub(super) fn new(after: Option<Duration>) -> Self {
        Self {
            after,
            last_scan: None,
            terminating: HashMap::new(),
        }
    }

    /// The idle time after which a document is unloaded, when a scan for
    /// idle documents is due at `now`.
    pub(super) fn scan_due(&mut self, now: UnixTimestamp) -> Option<Duration> {
        let after = self.after?;
        if self
            .last_scan
            .is_some_and(|last| elapsed(now, last) < SCAN_EVERY.min(after))
        {
            return None;
        }
        self.last_scan = Some(now);
        Some(after)
    }

    pub(super) fn begin(&mut self, document_id: DocumentId, actor: DocumentActorId) {
        self.terminating.insert(
            document_id,
            Terminating {
                actor,
                queued: Vec::new(),
            },
        );
    }

    /// Keeps a message for a document whose actor is terminating; gives it
    /// back when the document is not being unloaded.
    pub(super) fn hold(
        &mut self,
        document_id: &DocumentId,
        connection_id: ConnectionId,
        msg: DocMessage,
        received_at: UnixTimestamp,
    ) -> Option<DocMessage> {
        let Some(terminating) = self.terminating.get_mut(document_id) else {
            return Some(msg);
        };
        terminating.queued.push(Queued {
            connection_id,
            msg,
            received_at,
        });
        None
    }

    /// The document an actor that just stopped was unloading, with the
    /// messages that arrived for it meanwhile.
    pub(super) fn finished(&mut self, actor: DocumentActorId) -> Option<(DocumentId, Vec<Queued>)> {
        let document_id = self
            .terminating
            .iter()
            .find(|(_, t)| t.actor == actor)
            .map(|(d, _)| d.clone())?;
        let terminating = self.terminating.remove(&document_id)?;
        Some((document_id, terminating.queued))
    }

    /// Stops waiting for a document's old actor (a local caller wants the
    /// document now), giving back what was held for it.
    pub(super) fn cancel(&mut self, document_id: &DocumentId) -> Vec<Queued> {
        self.terminating
            .remove(document_id)
            .map(|t| t.queued)
            .unwrap_or_default()
    }
}

/// `now - since`, zero if the clock went back.
pub(super) fn elapsed(now: UnixTimestamp, since: UnixTimestamp) -> Duration {
    if now.as_millis() <= since.as_millis() {
        Duration::ZERO
    } else {
        now - since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> DocumentId {
        DocumentId::new(&mut rand::rng())
    }

    fn msg() -> DocMessage {
        DocMessage::Sync(crate::actors::messages::SyncMessage::Sync { data: vec![1] })
    }

    #[test]
    fn never_scans_without_an_idle_time() {
        let mut u = Unloads::new(None);
        assert_eq!(u.scan_due(UnixTimestamp::now()), None);
    }

    #[test]
    fn scans_at_most_once_a_second() {
        let mut u = Unloads::new(Some(Duration::from_secs(300)));
        let t = UnixTimestamp::from_millis(10_000);
        assert_eq!(u.scan_due(t), Some(Duration::from_secs(300)));
        assert_eq!(u.scan_due(t + Duration::from_millis(999)), None);
        assert!(u.scan_due(t + Duration::from_millis(1_000)).is_some());
    }

    #[test]
    fn holds_messages_only_while_the_old_actor_terminates_and_hands_them_on() {
        let mut u = Unloads::new(Some(Duration::from_secs(1)));
        let (d, other) = (doc(), doc());
        let actor = DocumentActorId::new();
        let conn = ConnectionId::new();
        let now = UnixTimestamp::now();
        u.begin(d.clone(), actor);
        assert!(u.hold(&d, conn, msg(), now).is_none(), "held");
        assert!(u.hold(&other, conn, msg(), now).is_some(), "not unloading");
        assert!(u.finished(DocumentActorId::new()).is_none());
        let (done, queued) = u.finished(actor).expect("the unloading actor");
        assert_eq!(done, d);
        assert_eq!(queued.len(), 1);
        assert!(
            u.hold(&d, conn, msg(), now).is_some(),
            "no longer unloading"
        );
    }

    #[test]
    fn elapsed_is_zero_when_the_clock_goes_back() {
        let t = UnixTimestamp::from_millis(5_000);
        assert_eq!(elapsed(t, t + Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(
            elapsed(t + Duration::from_secs(2), t),
            Duration::from_secs(2)
        );
    }
}
