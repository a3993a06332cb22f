//! The unload protocol through the hub alone, with the actors played by
//! the test: what is asked, held, handed on and spawned; and an actor that
//! fails (panics), which the hub forgets as if it had unloaded.

use std::collections::HashMap;
use std::time::Duration;

use rand::{SeedableRng, rngs::StdRng};

use crate::actors::hub::{Hub, HubEvent, HubResults};
use crate::actors::messages::{DocToHubMsg, DocToHubMsgPayload, HubToDocMsgPayload};
use crate::io::{IoResult, StorageResult, StorageTask};
use crate::network::{ListenerConfig, wire_protocol::WireMessage};
use crate::{
    CommandResult, ConnectionId, DocSearchPhase, DocumentActorId, DocumentId, LoaderState, PeerId,
    SamodLoader, UnixTimestamp,
};

const AFTER: Duration = Duration::from_secs(60);

/// A relay repo (documents on demand, unloading after `AFTER`) with one
/// connected device.
struct Relay {
    hub: Hub,
    rng: StdRng,
    now: UnixTimestamp,
    conn: ConnectionId,
}

impl Relay {
    fn new() -> Self {
        let now = UnixTimestamp::from_millis(1_000_000);
        let mut rng = StdRng::seed_from_u64(7);
        let mut loader = SamodLoader::new(PeerId::from("relay"))
            .with_documents_on_demand(true)
            .with_unload_idle_documents(Some(AFTER));
        let mut hub = loop {
            match loader.step(&mut rng, now) {
                LoaderState::Loaded(hub) => break *hub,
                LoaderState::NeedIo(tasks) => {
                    for task in tasks {
                        let payload = match task.action {
                            StorageTask::Load { .. } => StorageResult::Load { value: None },
                            StorageTask::LoadRange { .. } => StorageResult::LoadRange {
                                values: HashMap::new(),
                            },
                            StorageTask::Put { .. } => StorageResult::Put,
                            StorageTask::Delete { .. } => StorageResult::Delete,
                        };
                        loader.provide_io_result(IoResult {
                            task_id: task.task_id,
                            payload,
                        });
                    }
                }
            }
        };
        let url = "ws://relay".parse().unwrap();
        let listen = HubEvent::add_listener(ListenerConfig { url });
        let mut r = hub.handle_event(&mut rng, now, listen.event);
        let Some(CommandResult::AddListener { listener_id }) =
            r.completed_commands.remove(&listen.command_id)
        else {
            panic!("no listener");
        };
        let create = HubEvent::create_listener_connection(listener_id, None);
        let mut r = hub.handle_event(&mut rng, now, create.event);
        let Some(CommandResult::CreateConnection { connection_id }) =
            r.completed_commands.remove(&create.command_id)
        else {
            panic!("no connection");
        };
        let mut relay = Relay {
            hub,
            rng,
            now,
            conn: connection_id,
        };
        relay.receive(WireMessage::Join {
            sender_id: "device".into(),
            supported_protocol_versions: vec!["1".into()],
            metadata: None,
        });
        relay
    }

    fn event(&mut self, event: HubEvent) -> HubResults {
        self.hub.handle_event(&mut self.rng, self.now, event)
    }

    fn receive(&mut self, msg: WireMessage) -> HubResults {
        self.event(HubEvent::receive(self.conn, msg.encode()).event)
    }

    /// The device sends a sync message about `doc`.
    fn sync(&mut self, doc: &DocumentId) -> HubResults {
        self.receive(WireMessage::Sync {
            document_id: doc.clone(),
            sender_id: "device".into(),
            target_id: "relay".into(),
            data: vec![1, 2, 3],
        })
    }

    fn actor_says(&mut self, actor: DocumentActorId, msg: DocToHubMsgPayload) -> HubResults {
        self.event(HubEvent::actor_message(actor, DocToHubMsg(msg)))
    }

    /// Time passes beyond `AFTER` and the hub ticks.
    fn idle(&mut self) -> HubResults {
        self.now += AFTER + Duration::from_secs(1);
        self.event(HubEvent::tick())
    }

    /// A document the device used, loaded and now idle: its actor is asked
    /// to unload.
    fn asked_to_unload(&mut self, doc: &DocumentId) -> DocumentActorId {
        let spawned = self.sync(doc).spawn_actors;
        assert_eq!(spawned.len(), 1);
        let actor = spawned[0].actor_id();
        self.actor_says(
            actor,
            DocToHubMsgPayload::DocSearchChanged(DocSearchPhase::Ready),
        );
        let asked = self.idle().actor_messages;
        assert!(
            asked
                .iter()
                .any(|(a, m)| *a == actor && matches!(m.0, HubToDocMsgPayload::Unload)),
            "{asked:?}"
        );
        actor
    }
}

fn handed(r: &HubResults, actor: DocumentActorId) -> usize {
    r.actor_messages
        .iter()
        .filter(|(a, m)| *a == actor && matches!(m.0, HubToDocMsgPayload::HandleDocMessage { .. }))
        .count()
}

#[test]
fn what_arrives_while_an_actor_unloads_waits_and_goes_to_the_next_actor() {
    let mut relay = Relay::new();
    let doc = DocumentId::new(&mut rand::rng());
    let old = relay.asked_to_unload(&doc);

    let r = relay.sync(&doc);
    assert!(
        r.spawn_actors.is_empty() && r.actor_messages.is_empty(),
        "held"
    );
    let search = HubEvent::search_for_doc(doc.clone());
    let r = relay.event(search.event);
    assert!(
        !r.completed_commands.contains_key(&search.command_id),
        "held"
    );

    let mut r = relay.actor_says(old, DocToHubMsgPayload::Terminated);
    assert_eq!(r.stopped_actors, vec![old]);
    assert_eq!(r.spawn_actors.len(), 1, "one new actor");
    let next = &r.spawn_actors[0];
    assert_eq!(next.document_id(), &doc);
    let (_, held) = &next.initial_connections[&relay.conn];
    assert!(held.is_some(), "the held message goes to it");
    assert!(next.resumed_connections.contains(&relay.conn));
    let Some(CommandResult::SearchForDoc { actor_id, .. }) =
        r.completed_commands.remove(&search.command_id)
    else {
        panic!("the search is answered");
    };
    assert_eq!(actor_id, next.actor_id());
}

#[test]
fn an_actor_that_refuses_keeps_its_document_and_gets_what_arrived() {
    let mut relay = Relay::new();
    let doc = DocumentId::new(&mut rand::rng());
    let actor = relay.asked_to_unload(&doc);
    assert_eq!(handed(&relay.sync(&doc), actor), 0, "held");

    let r = relay.actor_says(actor, DocToHubMsgPayload::UnloadRefused);
    assert!(r.spawn_actors.is_empty() && r.stopped_actors.is_empty());
    assert_eq!(handed(&r, actor), 1, "the held message");
    assert_eq!(handed(&relay.sync(&doc), actor), 1, "and the next");
}

#[test]
fn a_document_found_here_is_never_unloaded() {
    let mut relay = Relay::new();
    let doc = DocumentId::new(&mut rand::rng());
    let r = relay.event(HubEvent::search_for_doc(doc.clone()).event);
    let actor = r.spawn_actors[0].actor_id();
    relay.actor_says(
        actor,
        DocToHubMsgPayload::DocSearchChanged(DocSearchPhase::Ready),
    );
    let r = relay.idle();
    assert!(
        !r.actor_messages
            .iter()
            .any(|(_, m)| matches!(m.0, HubToDocMsgPayload::Unload))
    );
}

#[test]
fn a_document_found_nowhere_goes_long_before_an_idle_one() {
    let mut relay = Relay::new();
    let (asked, used) = (
        DocumentId::new(&mut rand::rng()),
        DocumentId::new(&mut rand::rng()),
    );
    let not_found = relay.sync(&asked).spawn_actors[0].actor_id();
    let searching = HashMap::from([(relay.conn, crate::PeerRequestState::Unavailable)]);
    relay.actor_says(
        not_found,
        DocToHubMsgPayload::DocSearchChanged(DocSearchPhase::Searching(searching)),
    );
    let ready = relay.sync(&used).spawn_actors[0].actor_id();
    relay.actor_says(
        ready,
        DocToHubMsgPayload::DocSearchChanged(DocSearchPhase::Ready),
    );

    relay.now += super::unload::NOT_FOUND_AFTER + Duration::from_millis(1);
    let asked_to: Vec<_> = relay
        .event(HubEvent::tick())
        .actor_messages
        .into_iter()
        .filter(|(_, m)| matches!(m.0, HubToDocMsgPayload::Unload))
        .map(|(a, _)| a)
        .collect();
    // (`AFTER` is a minute: the one in use stays.)
    assert_eq!(asked_to, vec![not_found], "only the one found nowhere");
}

#[test]
fn a_document_found_nowhere_that_refused_to_unload_waits_the_full_idle_time() {
    let mut relay = Relay::new();
    let doc = DocumentId::new(&mut rand::rng());
    let actor = relay.sync(&doc).spawn_actors[0].actor_id();
    // The device still syncs it (its changes are nowhere else).
    let searching = HashMap::from([(relay.conn, crate::PeerRequestState::Syncing)]);
    relay.actor_says(
        actor,
        DocToHubMsgPayload::DocSearchChanged(DocSearchPhase::Searching(searching)),
    );
    let asked = |r: &HubResults| {
        r.actor_messages
            .iter()
            .any(|(a, m)| *a == actor && matches!(m.0, HubToDocMsgPayload::Unload))
    };
    relay.now += super::unload::NOT_FOUND_AFTER + Duration::from_millis(1);
    assert!(asked(&relay.event(HubEvent::tick())));
    relay.actor_says(actor, DocToHubMsgPayload::UnloadRefused);

    relay.now += super::unload::NOT_FOUND_AFTER * 3;
    assert!(!asked(&relay.event(HubEvent::tick())), "not every 2 s");
    assert!(asked(&relay.idle()), "after the idle time");
}

#[test]
fn an_actor_that_failed_is_forgotten_and_the_next_message_loads_its_document_again() {
    let mut relay = Relay::new();
    let (doc, other) = (
        DocumentId::new(&mut rand::rng()),
        DocumentId::new(&mut rand::rng()),
    );
    let failed = relay.sync(&doc).spawn_actors[0].actor_id();
    let other_actor = relay.sync(&other).spawn_actors[0].actor_id();

    let r = relay.actor_says(failed, DocToHubMsgPayload::Failed);
    assert_eq!(r.stopped_actors, vec![failed]);
    assert_eq!(r.failed_documents, vec![doc.clone()]);
    assert!(r.spawn_actors.is_empty(), "nothing waited for it");

    let r = relay.sync(&doc);
    assert_eq!(handed(&r, failed), 0);
    assert_eq!(r.spawn_actors.len(), 1, "a new actor loads it");
    let next = &r.spawn_actors[0];
    assert_ne!(next.actor_id(), failed);
    assert!(
        next.resumed_connections.contains(&relay.conn),
        "the device that used it is synced as if it asked"
    );
    assert!(next.resync, "and asked to send again what it sent before");
    assert_eq!(
        handed(&relay.sync(&other), other_actor),
        1,
        "the other document keeps its actor"
    );
    assert!(
        relay
            .actor_says(failed, DocToHubMsgPayload::Failed)
            .stopped_actors
            .is_empty(),
        "a second report of it changes nothing"
    );
}

#[test]
fn what_waited_for_the_unload_of_an_actor_that_failed_goes_to_a_new_actor() {
    let mut relay = Relay::new();
    let doc = DocumentId::new(&mut rand::rng());
    let old = relay.asked_to_unload(&doc);
    assert!(relay.sync(&doc).spawn_actors.is_empty(), "held");

    let r = relay.actor_says(old, DocToHubMsgPayload::Failed);
    assert_eq!(r.stopped_actors, vec![old]);
    assert_eq!(r.spawn_actors.len(), 1, "one new actor");
    let (_, held) = &r.spawn_actors[0].initial_connections[&relay.conn];
    assert!(held.is_some(), "the held message goes to it");
    assert!(r.spawn_actors[0].resync);

    // That actor, idle in turn, unloads as any other: the one after it
    // does not restart the exchange.
    let next = r.spawn_actors[0].actor_id();
    relay.actor_says(
        next,
        DocToHubMsgPayload::DocSearchChanged(DocSearchPhase::Ready),
    );
    let asked = relay.idle().actor_messages;
    assert!(
        asked
            .iter()
            .any(|(a, m)| *a == next && matches!(m.0, HubToDocMsgPayload::Unload))
    );
    assert!(relay.sync(&doc).spawn_actors.is_empty(), "held");
    let r = relay.actor_says(next, DocToHubMsgPayload::Terminated);
    assert_eq!(r.spawn_actors.len(), 1);
    assert!(!r.spawn_actors[0].resync, "only after a failure");
}

#[test]
fn a_document_that_fails_again_soon_rests_before_it_loads_again() {
    let mut relay = Relay::new();
    let doc = DocumentId::new(&mut rand::rng());
    let first = relay.sync(&doc).spawn_actors[0].actor_id();
    relay.actor_says(first, DocToHubMsgPayload::Failed);
    let second = relay.sync(&doc).spawn_actors[0].actor_id();
    relay.actor_says(second, DocToHubMsgPayload::Failed);

    let r = relay.sync(&doc);
    assert!(
        r.spawn_actors.is_empty() && r.actor_messages.is_empty(),
        "dropped while it rests"
    );
    relay.now += Duration::from_secs(1);
    let r = relay.sync(&doc);
    assert_eq!(r.spawn_actors.len(), 1, "loaded again after the rest");
    assert!(r.spawn_actors[0].resync);
}
