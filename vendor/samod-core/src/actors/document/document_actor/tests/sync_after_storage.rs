//! With `sync_after_storage`, a peer is sent the document's heads only once
//! the changes it sent are written; other peers get them at once
//! (`document/outbox.rs`).

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
        resync: false,
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
    let peer = doc_with(key);
    (carrying(&peer), peer.get_heads()[0])
}

fn doc_with(key: &str) -> Automerge {
    let mut peer = Automerge::new();
    peer.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(ROOT, key, true))
        .unwrap();
    peer
}

/// `peer`'s first message to a repo that has nothing: its heads, and no
/// change yet.
fn announcing(peer: &Automerge) -> SyncMessage {
    let message = peer.generate_sync_message(&mut sync::State::new()).unwrap();
    assert!(message.changes.is_empty());
    SyncMessage::Sync {
        data: message.encode(),
    }
}

/// A message carrying all of `peer`'s changes.
fn carrying(peer: &Automerge) -> SyncMessage {
    let mut state = sync::State::new();
    let hello = Automerge::new()
        .generate_sync_message(&mut sync::State::new())
        .unwrap();
    let mut peer = peer.clone();
    peer.receive_sync_message(&mut state, hello).unwrap();
    let message = peer.generate_sync_message(&mut state).unwrap();
    assert!(!message.changes.is_empty());
    SyncMessage::Sync {
        data: message.encode(),
    }
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
            } => Some((*connection_id, sync::Message::decode(data).unwrap().heads)),
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
fn other_peers_get_a_change_before_it_is_written() {
    let (mut actor, conns) = ready_actor(true, 2);
    let (msg, a) = change("a");
    let applied = receive(&mut actor, conns[0], msg);
    assert_eq!(puts(&applied).len(), 1);
    // The fan-out does not wait for the disk; the author's answer does.
    assert_eq!(sent(&applied), vec![(conns[1], vec![a])]);
    assert_eq!(actor.held_sync_messages(), 1);
}

#[test]
fn a_peers_answers_wait_for_the_writes_up_to_its_own_and_keep_their_order() {
    let (mut actor, conns) = ready_actor(true, 2);
    let (first, a) = change("a");
    let (second, b) = change("b");
    let mut both = vec![a, b];
    both.sort();

    let first_write = puts(&receive(&mut actor, conns[0], first))[0];
    let after_second = receive(&mut actor, conns[1], second);
    let second_write = puts(&after_second)[0];
    // Nothing for either: each waits for its own change's write, and the
    // first peer's next message queues behind its first.
    assert!(sent(&after_second).is_empty(), "{:?}", sent(&after_second));
    assert_eq!(actor.held_sync_messages(), 3);

    // A peer's answer waits for every write issued up to its own: the
    // second write completing first answers nobody yet.
    assert!(sent(&stored(&mut actor, second_write)).is_empty());
    let released = sent(&stored(&mut actor, first_write));
    let to = |conn| {
        released
            .iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, heads)| heads.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(to(conns[0]), vec![vec![a], both.clone()], "in order");
    assert_eq!(to(conns[1]), vec![both]);
    assert_eq!(actor.held_sync_messages(), 0);
}

#[test]
fn a_peers_answers_do_not_wait_for_writes_issued_after_its_own() {
    let (mut actor, conns) = ready_actor(true, 2);
    let (first, a) = change("a");
    let (second, b) = change("b");
    let mut both = vec![a, b];
    both.sort();
    let first_write = puts(&receive(&mut actor, conns[0], first))[0];
    let second_write = puts(&receive(&mut actor, conns[1], second))[0];

    // The second peer's change is still being written; the first peer is
    // answered in full, as that change is not its own.
    assert_eq!(
        sent(&stored(&mut actor, first_write)),
        vec![(conns[0], vec![a]), (conns[0], both.clone())]
    );
    assert_eq!(
        sent(&stored(&mut actor, second_write)),
        vec![(conns[1], both)]
    );
}

#[test]
fn a_connection_attached_while_a_write_runs_waits_for_it() {
    // The author of a change being written may come back on a new
    // connection, under another peer id (a new process), before the write
    // completes.
    let (mut actor, conns) = ready_actor(true, 1);
    let (msg, a) = change("a");
    let write = puts(&receive(&mut actor, conns[0], msg))[0];

    let again = ConnectionId::new();
    let attached = actor
        .handle_message(
            UnixTimestamp::now(),
            HubToDocMsg(HubToDocMsgPayload::NewConnection {
                connection_id: again,
                peer_id: "remote-0, again".into(),
            }),
        )
        .unwrap();
    for task in attached.io_tasks {
        if matches!(task.action, DocumentIoTask::CheckSharePolicy { .. }) {
            complete_policy(&mut actor, task.task_id, ShareConfig::read_write());
        }
    }
    let hello = Automerge::new()
        .generate_sync_message(&mut sync::State::new())
        .unwrap();
    let asked = receive(
        &mut actor,
        again,
        SyncMessage::Sync {
            data: hello.encode(),
        },
    );
    assert!(sent(&asked).is_empty(), "{:?}", sent(&asked));

    let released = sent(&stored(&mut actor, write));
    assert!(released.contains(&(again, vec![a])), "{released:?}");
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

#[test]
fn a_peer_that_has_a_change_being_written_waits_for_it_whoever_delivered_it() {
    // After a reload: the author says it has its change, another peer
    // delivers it first.
    let (mut actor, conns) = ready_actor(true, 2);
    let author = doc_with("a");
    let a = author.get_heads()[0];
    receive(&mut actor, conns[0], announcing(&author));

    let delivered = receive(&mut actor, conns[1], carrying(&author));
    let write = puts(&delivered)[0];
    assert!(
        !sent(&delivered).iter().any(|(c, _)| *c == conns[0]),
        "the author is not shown its change before it is written: {:?}",
        sent(&delivered)
    );
    let released = sent(&stored(&mut actor, write));
    assert!(released.contains(&(conns[0], vec![a])), "{released:?}");
}

#[test]
fn a_peer_that_may_no_longer_read_is_not_sent_what_was_held_for_it() {
    let (mut actor, conns) = ready_actor(true, 1);
    let (msg, _) = change("a");
    let write = puts(&receive(&mut actor, conns[0], msg))[0];
    assert_eq!(actor.held_sync_messages(), 1);
    actor
        .handle_message(
            UnixTimestamp::now(),
            HubToDocMsg::update_share_policy("remote-0".into(), ShareConfig::none()),
        )
        .unwrap();
    assert_eq!(actor.held_sync_messages(), 0);
    assert!(sent(&stored(&mut actor, write)).is_empty());
}

#[test]
fn a_peer_that_has_a_change_only_from_here_is_not_held_for_its_write() {
    // The fan-out stays off the disk: a reader that acknowledged a change
    // still being written is sent the next one at once.
    let (mut actor, conns) = ready_actor(true, 2);
    let (first, a) = change("a");
    let applied = receive(&mut actor, conns[0], first);
    let _first_write_still_running = puts(&applied)[0];
    let mut reader = Automerge::new();
    let mut state = sync::State::new();
    let mut result = applied;
    for _ in 0..5 {
        for msg in &result.outgoing_messages {
            if let DocToHubMsgPayload::SendSyncMessage {
                connection_id,
                message: SyncMessage::Sync { data },
                ..
            } = &msg.0
                && *connection_id == conns[1]
            {
                let msg = sync::Message::decode(data).unwrap();
                reader.receive_sync_message(&mut state, msg).unwrap();
            }
        }
        let Some(reply) = reader.generate_sync_message(&mut state) else {
            break;
        };
        result = receive(
            &mut actor,
            conns[1],
            SyncMessage::Sync {
                data: reply.encode(),
            },
        );
    }
    assert_eq!(
        reader.get_heads(),
        vec![a],
        "the reader got the change at once"
    );
    assert_eq!(
        actor.held_sync_messages(),
        1,
        "only the author's answer waits"
    );

    let (second, b) = change("b");
    let applied = receive(&mut actor, conns[0], second);
    let mut both = vec![a, b];
    both.sort();
    assert!(
        sent(&applied)
            .iter()
            .any(|(c, h)| *c == conns[1] && *h == both),
        "{:?}",
        sent(&applied)
    );
}
