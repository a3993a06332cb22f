//! Unloading idle documents, for repos with `documents_on_demand` (a sync
//! server): an actor keeps its document's whole history in memory, so a
//! repo whose peers stay connected would otherwise hold every document any
//! of them ever used until the repo stops.
//!
//! A document whose actor saw no message (sync or ephemeral) either way for
//! `after` is unloaded: the hub takes it out of `document_to_actor` and asks
//! its actor to `Unload`. The actor stops once what it applied is on disk,
//! unless it has work in hand (a share-policy check, messages waiting for
//! one), in which case it refuses and the hub puts it back. Messages and
//! local searches for the document that arrive meanwhile wait here and go
//! to the actor that serves it next: the same one after a refusal, or a new
//! one, spawned once the old one has stopped, which loads everything the old
//! one saved. So one document never has two actors. The connections that
//! used it keep their entry for it, so the new actor is spawned with all of
//! them and syncs each as if it had asked.

use std::collections::HashMap;
use std::time::Duration;

use crate::actors::hub::CommandId;
use crate::actors::messages::DocMessage;
use crate::{ConnectionId, DocumentActorId, DocumentId, UnixTimestamp};

/// How often idle documents are looked for, at most (on every tick when
/// `after` is shorter).
const SCAN_EVERY: Duration = Duration::from_secs(1);

/// How long a document found neither in storage nor on a peer stays loaded
/// (when `after` is longer), or one a peer named and never sent. Its actor
/// holds nothing but an empty document and its peers' states, yet costs
/// tens of KiB: kept for `after` (minutes on a sync server), a peer asking
/// for made-up ids held gigabytes. The
/// connections that asked keep their entry, so the document still reaches
/// them if someone brings it later.
pub(super) const NOT_FOUND_AFTER: Duration = Duration::from_secs(2);

pub(super) struct Unloads {
    after: Option<Duration>,
    last_scan: Option<UnixTimestamp>,
    unloading: HashMap<DocumentId, Unloading>,
}

struct Unloading {
    actor: DocumentActorId,
    held: Held,
}

/// What waits for a document while its actor is asked to unload.
#[derive(Default)]
pub(super) struct Held {
    pub(super) messages: Vec<Queued>,
    /// Local searches (`find`), answered with the actor that serves it next.
    pub(super) searches: Vec<CommandId>,
}

/// A message about a document that arrived while its actor was asked to
/// unload.
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
            unloading: HashMap::new(),
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
        self.unloading.insert(
            document_id,
            Unloading {
                actor,
                held: Held::default(),
            },
        );
    }

    /// Keeps a message for a document whose actor is being asked to unload;
    /// gives it back when it is not.
    pub(super) fn hold(
        &mut self,
        document_id: &DocumentId,
        connection_id: ConnectionId,
        msg: DocMessage,
        received_at: UnixTimestamp,
    ) -> Option<DocMessage> {
        let Some(unloading) = self.unloading.get_mut(document_id) else {
            return Some(msg);
        };
        unloading.held.messages.push(Queued {
            connection_id,
            msg,
            received_at,
        });
        None
    }

    /// Keeps a local search for a document whose actor is being asked to
    /// unload; false when it is not.
    pub(super) fn hold_search(&mut self, document_id: &DocumentId, command: CommandId) -> bool {
        let Some(unloading) = self.unloading.get_mut(document_id) else {
            return false;
        };
        unloading.held.searches.push(command);
        true
    }

    /// The document an actor was asked to unload, with what arrived for it
    /// meanwhile, once the actor has stopped or refused.
    pub(super) fn answered(&mut self, actor: DocumentActorId) -> Option<(DocumentId, Held)> {
        let document_id = self
            .unloading
            .iter()
            .find(|(_, t)| t.actor == actor)
            .map(|(d, _)| d.clone())?;
        let unloading = self.unloading.remove(&document_id)?;
        Some((document_id, unloading.held))
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
    fn holds_messages_and_searches_only_while_the_actor_is_asked_to_unload() {
        let mut u = Unloads::new(Some(Duration::from_secs(1)));
        let (d, other) = (doc(), doc());
        let actor = DocumentActorId::new();
        let conn = ConnectionId::new();
        let now = UnixTimestamp::now();
        u.begin(d.clone(), actor);
        assert!(u.hold(&d, conn, msg(), now).is_none(), "held");
        assert!(u.hold(&other, conn, msg(), now).is_some(), "not unloading");
        assert!(u.hold_search(&d, CommandId::new()));
        assert!(!u.hold_search(&other, CommandId::new()));
        assert!(u.answered(DocumentActorId::new()).is_none());
        let (done, held) = u.answered(actor).expect("the unloading actor");
        assert_eq!(done, d);
        assert_eq!((held.messages.len(), held.searches.len()), (1, 1));
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
