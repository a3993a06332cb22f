//! A peer that was sent everything is not generated for again until the
//! document or its own sync state changes (`PeerDocConnection::quiet_at`):
//! upstream generated for every peer on every message, so each change cost
//! a document with n peers n² attempts.

use automerge::{ActorId, transaction::CommitOptions};
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;

/// A ready, empty document (with a fixed actor id) whose peers may read and
/// write, on the given connections.
fn actor_on(conns: &[ConnectionId]) -> DocumentActor {
    let args = SpawnArgs {
        local_peer_id: "local".into(),
        actor_id: DocumentActorId::new(),
        document_id: DocumentId::new(&mut StdRng::seed_from_u64(7)),
        initial_content: Some(Automerge::new().with_actor(ActorId::from([0xAA; 16]))),
        initial_connections: conns
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, (format!("remote-{i}").as_str().into(), None)))
            .collect(),
        resumed_connections: Default::default(),
        sync_after_storage: false,
        resync: false,
    };
    let (mut actor, result) = DocumentActor::new(UnixTimestamp::now(), args);
    for task in result.io_tasks {
        if matches!(task.action, DocumentIoTask::CheckSharePolicy { .. }) {
            complete_policy(&mut actor, task.task_id, ShareConfig::read_write());
        }
    }
    actor
}

fn generate_calls(actor: &DocumentActor) -> usize {
    actor
        .peer_connections
        .values()
        .map(|c| c.generate_calls)
        .sum()
}

fn calls_for(actor: &DocumentActor, conn: ConnectionId) -> usize {
    actor.peer_connections[&conn].generate_calls
}

/// The sync messages a result sends, by connection, in order.
pub(super) fn sent(result: &DocActorResult) -> Vec<(ConnectionId, Vec<u8>)> {
    result
        .outgoing_messages
        .iter()
        .filter_map(|msg| match &msg.0 {
            DocToHubMsgPayload::SendSyncMessage {
                connection_id,
                message: SyncMessage::Sync { data },
                ..
            } => Some((*connection_id, data.clone())),
            _ => None,
        })
        .collect()
}

/// What a result sends to each connection, in order (the order between
/// connections follows a hash map's).
fn by_conn(result: &DocActorResult) -> HashMap<ConnectionId, Vec<Vec<u8>>> {
    let mut to: HashMap<ConnectionId, Vec<Vec<u8>>> = HashMap::new();
    for (conn, data) in sent(result) {
        to.entry(conn).or_default().push(data);
    }
    to
}

pub(super) fn receive(
    actor: &mut DocumentActor,
    conn: ConnectionId,
    data: &[u8],
) -> DocActorResult {
    actor
        .handle_message(
            UnixTimestamp::now(),
            HubToDocMsg(HubToDocMsgPayload::HandleDocMessage {
                connection_id: conn,
                message: DocMessage::Sync(SyncMessage::Sync {
                    data: data.to_vec(),
                }),
                received_at: UnixTimestamp::now(),
            }),
        )
        .unwrap()
}

/// A change with a fixed time, so two documents with the same actor make
/// the same change.
fn put(doc: &mut Automerge, key: &str, value: i64) {
    doc.transact_with::<_, _, automerge::AutomergeError, _>(
        |_| CommitOptions::default().with_time(0),
        |tx| tx.put(ROOT, key, value),
    )
    .unwrap();
}

/// A device at the other end of a connection.
struct Peer {
    conn: ConnectionId,
    doc: Automerge,
    state: sync::State,
    /// Messages from the actor not yet delivered to this peer.
    inbox: Vec<Vec<u8>>,
    /// Messages from this peer not yet delivered to the actor.
    outbox: Vec<Vec<u8>>,
}

impl Peer {
    fn new(i: u8) -> Self {
        Self {
            conn: ConnectionId::new(),
            doc: Automerge::new().with_actor(ActorId::from([i; 16])),
            state: sync::State::new(),
            inbox: Vec::new(),
            outbox: Vec::new(),
        }
    }

    fn speak(&mut self) {
        while let Some(msg) = self.doc.generate_sync_message(&mut self.state) {
            self.outbox.push(msg.encode());
        }
    }

    fn hear(&mut self) -> bool {
        if self.inbox.is_empty() {
            return false;
        }
        let data = self.inbox.remove(0);
        let msg = sync::Message::decode(&data).unwrap();
        self.doc.receive_sync_message(&mut self.state, msg).unwrap();
        self.speak();
        true
    }
}

/// Peers that each made a change, and an actor they all synced with until
/// nobody had anything more to say.
fn synced(n: u8) -> (DocumentActor, Vec<Peer>) {
    let mut peers: Vec<Peer> = (1..=n).map(Peer::new).collect();
    let conns: Vec<ConnectionId> = peers.iter().map(|p| p.conn).collect();
    let mut actor = actor_on(&conns);
    for (i, p) in peers.iter_mut().enumerate() {
        put(&mut p.doc, &format!("peer {i}"), 1);
        p.speak();
    }
    settle(&mut actor, &mut peers);
    (actor, peers)
}

/// Delivers every message both ways until there are none.
fn settle(actor: &mut DocumentActor, peers: &mut [Peer]) {
    loop {
        let mut moved = false;
        for i in 0..peers.len() {
            for data in std::mem::take(&mut peers[i].outbox) {
                moved = true;
                deliver(&sent(&receive(actor, peers[i].conn, &data)), peers);
            }
            while peers[i].hear() {
                moved = true;
            }
        }
        if !moved {
            return;
        }
    }
}

fn deliver(messages: &[(ConnectionId, Vec<u8>)], peers: &mut [Peer]) {
    for (conn, data) in messages {
        let peer = peers.iter_mut().find(|p| p.conn == *conn).unwrap();
        peer.inbox.push(data.clone());
    }
}

#[test]
fn a_message_from_one_peer_is_answered_without_generating_for_the_others() {
    let (mut actor, mut peers) = synced(3);
    let heads = actor.document().get_heads();
    assert!(peers.iter().all(|p| p.doc.get_heads() == heads));

    // A peer that asks again (a new sync state: its first message after a
    // reconnect) carries no change.
    peers[0].state = sync::State::new();
    peers[0].speak();
    let hello = peers[0].outbox.remove(0);
    let before: Vec<usize> = peers.iter().map(|p| calls_for(&actor, p.conn)).collect();
    receive(&mut actor, peers[0].conn, &hello);

    assert!(
        calls_for(&actor, peers[0].conn) > before[0],
        "it is answered"
    );
    for (i, p) in peers.iter().enumerate().filter(|(i, _)| *i > 0) {
        assert_eq!(
            calls_for(&actor, p.conn),
            before[i],
            "peer {i} has everything and is not generated for"
        );
    }
}

#[test]
fn a_change_from_one_peer_is_generated_for_every_peer() {
    let (mut actor, mut peers) = synced(3);
    put(&mut peers[1].doc, "news", 2);
    peers[1].speak();
    let news = peers[1].outbox.remove(0);
    let result = receive(&mut actor, peers[1].conn, &news);

    let to: Vec<ConnectionId> = sent(&result).iter().map(|(c, _)| *c).collect();
    assert!(
        to.contains(&peers[0].conn) && to.contains(&peers[2].conn),
        "{to:?}"
    );
    deliver(&sent(&result), &mut peers);
    settle(&mut actor, &mut peers);
    let heads = actor.document().get_heads();
    assert!(peers.iter().all(|p| p.doc.get_heads() == heads));
}

#[test]
fn a_local_change_is_generated_for_every_peer() {
    let (mut actor, peers) = synced(3);
    let result = actor
        .with_document(UnixTimestamp::now(), |doc| put(doc, "local", 3))
        .unwrap();
    let to: HashSet<ConnectionId> = by_conn(&result.actor_result).into_keys().collect();
    let all: HashSet<ConnectionId> = peers.iter().map(|p| p.conn).collect();
    assert_eq!(to, all);
}

#[test]
fn a_peer_made_read_only_is_told_though_it_has_everything() {
    // Its sync state changes (read-only, so it must not send changes any
    // more), not the document: the actor must say so to a quiet peer.
    let (mut actor, peers) = synced(2);
    let result = actor
        .handle_message(
            UnixTimestamp::now(),
            HubToDocMsg::update_share_policy("remote-0".into(), ShareConfig::read_only()),
        )
        .unwrap();
    let to = by_conn(&result);
    let told = to
        .get(&peers[0].conn)
        .expect("the peer made read-only is told");
    let flags = sync::Message::decode(&told[0]).unwrap().flags.unwrap();
    assert!(flags.contains(sync::MessageFlags::READ_ONLY));
    assert!(
        !to.contains_key(&peers[1].conn),
        "the other has nothing new"
    );
}

#[test]
fn a_change_waiting_for_its_dependencies_counts_as_a_change() {
    // A change that arrives before its dependency is queued: the heads do
    // not move, and no quiet peer would be sent anything for it (the queue
    // only changes what a message asks for), but the actor does not rely on
    // that and treats every message that carried changes as a change.
    let (mut actor, peers) = synced(2);
    let mut author = peers[0].doc.fork().with_actor(ActorId::from([0x77; 16]));
    put(&mut author, "first", 1);
    let first = author.get_heads();
    put(&mut author, "second", 2);
    let second = author.get_change_by_hash(&author.get_heads()[0]).unwrap();
    assert_eq!(second.deps(), first.as_slice());
    let orphan = sync::Message {
        heads: author.get_heads(),
        need: vec![],
        have: vec![],
        changes: vec![second.raw_bytes().to_vec()].into(),
        flags: None,
        version: sync::MessageVersion::V1,
    };

    let heads = actor.document().get_heads();
    let other = calls_for(&actor, peers[1].conn);
    receive(&mut actor, peers[0].conn, &orphan.encode());
    assert_eq!(actor.document().get_heads(), heads, "queued, not applied");
    assert!(calls_for(&actor, peers[1].conn) > other);
}

/// The same peers talking to an actor that skips quiet peers and to one
/// that generates for every peer on every step, as upstream does.
struct Twins {
    skipping: DocumentActor,
    upstream: DocumentActor,
    peers: Vec<Peer>,
}

impl Twins {
    fn new(n: u8) -> Self {
        let mut peers: Vec<Peer> = (1..=n).map(Peer::new).collect();
        let conns: Vec<ConnectionId> = peers.iter().map(|p| p.conn).collect();
        let skipping = actor_on(&conns);
        let mut upstream = actor_on(&conns);
        upstream.generate_for_quiet_peers = true;
        for p in &mut peers {
            p.speak();
        }
        Self {
            skipping,
            upstream,
            peers,
        }
    }

    /// Peer `i`'s next message to both actors; both must answer alike.
    fn to_actors(&mut self, i: usize) {
        if self.peers[i].outbox.is_empty() {
            return;
        }
        let data = self.peers[i].outbox.remove(0);
        let conn = self.peers[i].conn;
        let a = receive(&mut self.skipping, conn, &data);
        let b = receive(&mut self.upstream, conn, &data);
        assert_eq!(by_conn(&a), by_conn(&b), "the same messages");
        deliver(&sent(&a), &mut self.peers);
    }

    fn local_change(&mut self, key: &str, value: i64) {
        let now = UnixTimestamp::now();
        let a = self.skipping.with_document(now, |d| put(d, key, value));
        let b = self.upstream.with_document(now, |d| put(d, key, value));
        let (a, b) = (a.unwrap().actor_result, b.unwrap().actor_result);
        assert_eq!(by_conn(&a), by_conn(&b), "the same messages");
        deliver(&sent(&a), &mut self.peers);
    }

    /// A new share policy for peer `i` on both actors.
    fn policy(&mut self, i: usize, config: ShareConfig) {
        let update =
            || HubToDocMsg::update_share_policy(format!("remote-{i}").as_str().into(), config);
        let now = UnixTimestamp::now();
        let a = self.skipping.handle_message(now, update()).unwrap();
        let b = self.upstream.handle_message(now, update()).unwrap();
        assert_eq!(by_conn(&a), by_conn(&b), "the same messages");
        deliver(&sent(&a), &mut self.peers);
    }

    fn quiet(&self) -> bool {
        self.peers
            .iter()
            .all(|p| p.inbox.is_empty() && p.outbox.is_empty())
    }
}

/// Random traffic, with peers made read-only and read-write again: both
/// actors send exactly the same messages, the skipping one with fewer
/// attempts, and everyone converges.
#[test]
fn skipping_quiet_peers_sends_exactly_what_generating_for_all_sends() {
    for seed in 0..16 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut t = Twins::new(rng.random_range(2..=5));
        for _ in 0..120 {
            let i = rng.random_range(0..t.peers.len());
            let key = format!("k{}", rng.random_range(0..4));
            let value = rng.random_range(0..100);
            match rng.random_range(0..9) {
                0 | 1 => {
                    put(&mut t.peers[i].doc, &key, value);
                    t.peers[i].speak();
                }
                2 | 3 => {
                    t.peers[i].hear();
                }
                4 | 5 => t.to_actors(i),
                6 | 7 => t.local_change(&key, value),
                _ if rng.random_bool(0.5) => t.policy(i, ShareConfig::read_only()),
                _ => t.policy(i, ShareConfig::read_write()),
            }
        }
        for i in 0..t.peers.len() {
            t.policy(i, ShareConfig::read_write());
        }
        // Then every message delivered until nothing moves.
        while !t.quiet() {
            for i in 0..t.peers.len() {
                while !t.peers[i].outbox.is_empty() {
                    t.to_actors(i);
                }
                while t.peers[i].hear() {}
            }
        }
        let heads = t.skipping.document().get_heads();
        assert_eq!(heads, t.upstream.document().get_heads(), "seed {seed}");
        for (i, p) in t.peers.iter().enumerate() {
            assert_eq!(p.doc.get_heads(), heads, "seed {seed}: peer {i} converged");
        }
        let (fewer, all) = (generate_calls(&t.skipping), generate_calls(&t.upstream));
        assert!(fewer < all, "seed {seed}: {fewer} attempts against {all}");
    }
}

#[test]
fn the_peers_version_moves_only_when_a_connection_comes_or_goes() {
    let (mut actor, mut peers) = synced(2);
    let version = actor.peers_version();
    put(&mut peers[0].doc, "more", 1);
    peers[0].speak();
    settle(&mut actor, &mut peers);
    assert_eq!(actor.peers_version(), version);
    assert_eq!(actor.peer_count(), 2);

    let third = ConnectionId::new();
    actor
        .handle_message(
            UnixTimestamp::now(),
            HubToDocMsg(HubToDocMsgPayload::NewConnection {
                connection_id: third,
                peer_id: "remote-2".into(),
            }),
        )
        .unwrap();
    assert_ne!(actor.peers_version(), version);
    assert_eq!(actor.peer_count(), 3);
    let version = actor.peers_version();

    actor
        .handle_message(
            UnixTimestamp::now(),
            HubToDocMsg(HubToDocMsgPayload::ConnectionClosed {
                connection_id: peers[0].conn,
            }),
        )
        .unwrap();
    assert_ne!(actor.peers_version(), version);
    assert_eq!(actor.peer_count(), 2);
    assert_eq!(
        actor.connected_peer_ids(),
        HashSet::from(["remote-1".into(), "remote-2".into()])
    );
}
