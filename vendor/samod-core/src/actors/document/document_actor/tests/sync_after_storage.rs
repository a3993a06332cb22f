//! With `sync_after_storage`, a sync message goes out only once the writes
//! of what it advertises have completed (`document/outbox.rs`).

use super::*;
use crate::io::{StorageResult, StorageTask};

/// A ready, empty document whose peers `remote-0`, `remote-1`, … may read
/// and write.
fn ready_actor(after_storage: bool, peers: usize) -> (DocumentActor, Vec<ConnectionId>) {
    let conns: Vec<ConnectionId> = (0..peers).map(|_| ConnectionId::new()).collect();
    let args = SpawnArgs {
        local_peer_id: "local".into(),
        actor_id: DocumentActorId::new(),
        document_id: DocumentId::new(&mut rand::rng()),
        initial_content: Some(Automerge::new()),
        initial_connections: conns
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, (format!("remote-{i}").as_str().into(), None)))
            .collect(),
        resumed_connections: Default::default(),
        sync_after_storage: after_storage,
    };
    let (mut actor, result) = DocumentActor::new(UnixTimestamp::now(), args);
    for task in result.io_tasks {
        if matches!(task.action, DocumentIoTask::CheckSharePolicy { .. }) {
            complete_policy(&mut actor, task.task_id, ShareConfig::read_write());
        }
    }
    (actor, conns)
}

/// A peer's sync message carrying one new change that sets `key`, and the
/// change's hash.
fn change(key: &str) -> (SyncMessage, ChangeHash) {
    let mut peer = Automerge::new();
    peer.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(ROOT, key, true))
        .unwrap();
    let hash = peer.get_heads()[0];
    let mut state = sync::State::new();
    let hello = Automerge::new()
        .generate_sync_message(&mut sync::State::new())
        .unwrap();
    peer.receive_sync_message(&mut state, hello).unwrap();
    let message = peer.generate_sync_message(&mut state).unwrap();
    (
        SyncMessage::Sync {
            data: message.encode(),
        },
        hash,
    )
}

fn receive(actor: &mut DocumentActor, conn: ConnectionId, msg: SyncMessage) -> DocActorResult {
    actor
        .handle_message(
            UnixTimestamp::now(),
            HubToDocMsg(HubToDocMsgPayload::HandleDocMessage {
                connection_id: conn,
                message: DocMessage::Sync(msg),
                received_at: UnixTimestamp::now(),
            }),
        )
        .unwrap()
}

fn puts(result: &DocActorResult) -> Vec<IoTaskId> {
    result
        .io_tasks
        .iter()
        .filter_map(|task| {
            matches!(
                task.action,
                DocumentIoTask::Storage(StorageTask::Put { .. })
            )
            .then_some(task.task_id)
        })
        .collect()
}

fn stored(actor: &mut DocumentActor, put: IoTaskId) -> DocActorResult {
    actor
        .handle_io_complete(
            UnixTimestamp::now(),
            IoResult {
                task_id: put,
                payload: DocumentIoResult::Storage(StorageResult::Put),
            },
        )
        .unwrap()
}

/// The connections sent to, and the heads each message advertises.
fn sent(result: &DocActorResult) -> Vec<(ConnectionId, Vec<ChangeHash>)> {
    result
        .outgoing_messages
        .iter()
        .filter_map(|msg| match &msg.0 {
            DocToHubMsgPayload::SendSyncMessage {
                connection_id,
                message: SyncMessage::Sync { data },
                ..
            } => Some((
                *connection_id,
                sync::Message::decode(data).unwrap().heads,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn a_change_is_acknowledged_only_once_it_is_written() {
    let (mut actor, conns) = ready_actor(true, 1);
    let (msg, hash) = change("a");

    let applied = receive(&mut actor, conns[0], msg);
    let writes = puts(&applied);
    assert_eq!(writes.len(), 1, "the change is written");
    assert!(sent(&applied).is_empty(), "nothing is said before it is");
    assert_eq!(actor.held_sync_messages(), 1);

    let written = stored(&mut actor, writes[0]);
    assert_eq!(sent(&written), vec![(conns[0], vec![hash])]);
    assert_eq!(actor.held_sync_messages(), 0);
}

#[test]
fn without_it_the_reply_goes_out_before_the_write_completes() {
    // What the option changes: upstream answers at once.
    let (mut actor, conns) = ready_actor(false, 1);
    let (msg, hash) = change("a");
    let applied = receive(&mut actor, conns[0], msg);
    assert_eq!(puts(&applied).len(), 1);
    assert_eq!(sent(&applied), vec![(conns[0], vec![hash])]);
}

#[test]
fn a_message_waits_for_earlier_writes_only_and_order_is_kept() {
    let (mut actor, conns) = ready_actor(true, 2);
    let (first, a) = change("a");
    let (second, b) = change("b");

    let first_write = puts(&receive(&mut actor, conns[0], first))[0];
    let second_write = puts(&receive(&mut actor, conns[1], second))[0];
    let held = actor.held_sync_messages();
    assert!(held >= 2, "replies to both peers wait, {held} held");

    // The later write completing first releases nothing: the first
    // peer's reply still advertises the change being written.
    assert!(sent(&stored(&mut actor, second_write)).is_empty());

    let released = sent(&stored(&mut actor, first_write));
    assert_eq!(actor.held_sync_messages(), 0);
    assert_eq!(released.len(), held);
    // Those that advertise only the first change were generated first and
    // are sent first; the first peer is answered among them.
    let mut both = vec![a, b];
    both.sort();
    let only_a = released.iter().take_while(|(_, h)| *h == vec![a]).count();
    assert!(released[..only_a].iter().any(|(c, _)| *c == conns[0]));
    assert!(released[only_a..].iter().all(|(_, h)| *h == both), "{released:?}");
    assert!(only_a < released.len(), "the second change is advertised too");
}

#[test]
fn a_message_is_not_held_for_writes_issued_after_it() {
    let (mut actor, conns) = ready_actor(true, 2);
    let (first, a) = change("a");
    let (second, _) = change("b");

    let first_write = puts(&receive(&mut actor, conns[0], first))[0];
    let _still_running = puts(&receive(&mut actor, conns[1], second))[0];

    let released = sent(&stored(&mut actor, first_write));
    assert!(released.iter().any(|(c, _)| *c == conns[0]));
    assert!(released.iter().all(|(_, h)| *h == vec![a]), "{released:?}");
    assert!(actor.held_sync_messages() > 0, "the second change's replies wait");
}

#[test]
fn a_closed_connections_held_messages_are_dropped() {
    let (mut actor, conns) = ready_actor(true, 1);
    let (msg, _) = change("a");
    let write = puts(&receive(&mut actor, conns[0], msg))[0];
    actor
        .handle_message(
            UnixTimestamp::now(),
            HubToDocMsg(HubToDocMsgPayload::ConnectionClosed {
                connection_id: conns[0],
            }),
        )
        .unwrap();
    assert_eq!(actor.held_sync_messages(), 0);
    assert!(sent(&stored(&mut actor, write)).is_empty());
}
