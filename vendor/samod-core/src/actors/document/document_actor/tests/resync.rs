//! The actor that follows a failed one (`SpawnArgs::resync`) restarts the
//! exchange with its peers: a peer counts what it sent the failed actor as
//! delivered and, without the restart, never sends it again, while the new
//! actor, missing it, keeps asking.

use automerge::ActorId;

use super::quiet_peers::{receive, sent};
use super::*;

/// A peer that synced a document with an actor (which stored it), sent
/// it a change that actor failed before storing, then made another: its
/// document and sync state, and the document as storage has it.
fn peer_after_a_failed_actor() -> (Automerge, sync::State, Automerge) {
    let mut device = Automerge::new().with_actor(ActorId::from([1; 16]));
    device
        .transact::<_, _, automerge::AutomergeError>(|tx| tx.put(ROOT, "stored", 0))
        .unwrap();
    let mut failed = Automerge::new();
    let (mut state, mut failed_state) = (sync::State::new(), sync::State::new());
    for _ in 0..5 {
        if let Some(m) = device.generate_sync_message(&mut state) {
            failed.receive_sync_message(&mut failed_state, m).unwrap();
        }
        if let Some(m) = failed.generate_sync_message(&mut failed_state) {
            device.receive_sync_message(&mut state, m).unwrap();
        }
    }
    assert_eq!(failed.get_heads(), device.get_heads(), "in sync");
    device
        .transact::<_, _, automerge::AutomergeError>(|tx| tx.put(ROOT, "first", 1))
        .unwrap();
    let lost = device.generate_sync_message(&mut state).unwrap();
    assert_eq!(lost.changes.len(), 1, "the first change went out");
    device
        .transact::<_, _, automerge::AutomergeError>(|tx| tx.put(ROOT, "second", 2))
        .unwrap();
    (device, state, failed)
}

/// The next actor, with the document as storage has it (without the first
/// change).
fn next_actor(resync: bool, stored: Automerge) -> (DocumentActor, ConnectionId, Vec<Vec<u8>>) {
    let conn = ConnectionId::new();
    let args = SpawnArgs {
        local_peer_id: "local".into(),
        actor_id: DocumentActorId::new(),
        document_id: DocumentId::new(&mut rand::rng()),
        initial_content: Some(stored),
        initial_connections: HashMap::from([(conn, ("device".into(), None))]),
        resumed_connections: [conn].into(),
        sync_after_storage: false,
        resync,
    };
    let (mut actor, result) = DocumentActor::new(UnixTimestamp::now(), args);
    let mut to_device = Vec::new();
    for task in result.io_tasks {
        if matches!(task.action, DocumentIoTask::CheckSharePolicy { .. }) {
            let r = complete_policy(&mut actor, task.task_id, ShareConfig::read_write());
            to_device.extend(sent(&r).into_iter().map(|(_, d)| d));
        }
    }
    (actor, conn, to_device)
}

/// Runs the exchange to its end (or 20 rounds) and says whether the actor
/// ends with both changes.
fn converges(resync: bool) -> bool {
    let (mut device, mut state, stored) = peer_after_a_failed_actor();
    let (mut actor, conn, mut to_device) = next_actor(resync, stored);
    let mut to_actor: Vec<Vec<u8>> = device
        .generate_sync_message(&mut state)
        .map(|m| m.encode())
        .into_iter()
        .collect();
    for _ in 0..20 {
        for m in std::mem::take(&mut to_actor) {
            to_device.extend(
                sent(&receive(&mut actor, conn, &m))
                    .into_iter()
                    .map(|(_, d)| d),
            );
        }
        for m in std::mem::take(&mut to_device) {
            device
                .receive_sync_message(&mut state, sync::Message::decode(&m).unwrap())
                .unwrap();
        }
        to_actor.extend(device.generate_sync_message(&mut state).map(|m| m.encode()));
        if to_actor.is_empty() {
            break;
        }
    }
    let doc = actor.document();
    doc.get(ROOT, "first").unwrap().is_some() && doc.get(ROOT, "second").unwrap().is_some()
}

#[test]
fn a_peer_sends_again_what_it_sent_the_failed_actor() {
    assert!(converges(true));
}

#[test]
fn without_the_restart_what_the_failed_actor_took_never_comes() {
    assert!(!converges(false));
}
