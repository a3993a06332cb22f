//! Sync messages held until the changes a peer sent are on disk, for repos
//! built with `sync_after_storage`.
//!
//! A sync message carries the sender's heads, and a peer that sees its own
//! changes among them counts them as stored. Upstream, an actor applied a
//! peer's change, answered at once and wrote the change afterwards: a crash
//! or a failed write in between left the peer believing in a change the
//! repo never stored. With this, a message to a peer waits until every
//! write issued up to the last one holding a change that peer has is
//! complete: what it sent, what it says it has and did not get from here
//! (its own change delivered again by another peer after a reload), and,
//! for a connection attached while writes were running, those writes (it
//! may be the same peer again, under another id). A message to any other
//! peer leaves at once, so the rest of a document's peers get a change
//! without waiting for the disk (and may count it as stored while its
//! author does not, and sends it again). Messages to one connection keep the order they were generated
//! in; a message never waits for writes issued after it, so a document that
//! keeps changing starves nobody.

use std::collections::{HashMap, HashSet, VecDeque};

use super::DocActorResult;
use super::on_disk_state::OnDiskState;
use crate::actors::messages::SyncMessage;
use crate::io::IoTaskId;
use crate::{ConnectionId, DocumentId, PeerId};
use automerge::ChangeHash;

#[derive(Debug, Default)]
pub(super) struct Outbox {
    held: HashMap<ConnectionId, VecDeque<Held>>,
    /// Peers whose changes were applied since writes were last issued.
    applied_from: HashSet<PeerId>,
    /// The last write holding changes each peer sent.
    written_for: HashMap<PeerId, IoTaskId>,
    /// The last write running when each connection was attached.
    attached_during: HashMap<ConnectionId, IoTaskId>,
    /// Changes being written, and the last write issued with them.
    unstored: HashMap<ChangeHash, IoTaskId>,
}

#[derive(Debug)]
struct Held {
    message: SyncMessage,
    after: IoTaskId,
}

impl Outbox {
    /// `peer`'s message changed the document.
    pub(super) fn applied(&mut self, peer: &PeerId) {
        self.applied_from.insert(peer.clone());
    }

    /// The actor has issued the writes of everything it applied: the
    /// changes `written`.
    pub(super) fn writes_issued(&mut self, on_disk: &OnDiskState, written: Vec<ChangeHash>) {
        let Some(last) = on_disk.last_running_put() else {
            self.applied_from.clear();
            return;
        };
        for peer in self.applied_from.drain() {
            self.written_for.insert(peer, last);
        }
        for change in written {
            self.unstored.insert(change, last);
        }
    }

    pub(super) fn attached(&mut self, connection_id: ConnectionId, on_disk: &OnDiskState) {
        if let Some(last) = on_disk.last_running_put() {
            self.attached_during.insert(connection_id, last);
        }
    }

    /// Sends `message` to a connection of `peer`, or holds it until what
    /// that peer has is written. `sync` is the connection's sync state: the
    /// heads the peer last said it has, and what this repo sent it.
    pub(super) fn send(
        &mut self,
        on_disk: &OnDiskState,
        (connection_id, peer, sync): (ConnectionId, &PeerId, &automerge::sync::State),
        document_id: &DocumentId,
        message: SyncMessage,
        out: &mut DocActorResult,
    ) {
        // What it has: what it sent, and what it says it has and did not
        // get from here (its own change, delivered again by another peer
        // after a reload). What it got from here is not its own: holding
        // those would put the disk back on the fan-out.
        let has = sync
            .their_heads
            .iter()
            .flatten()
            .filter(|h| !sync.sent_hashes.contains(h))
            .filter_map(|h| self.unstored.get(h))
            .max();
        let own = self
            .written_for
            .get(peer)
            .max(self.attached_during.get(&connection_id))
            .max(has)
            .copied()
            .filter(|put| !on_disk.stored_through(*put));
        // Behind what is held for this connection, in order.
        let behind = self
            .held
            .get(&connection_id)
            .and_then(|queue| queue.back())
            .map(|held| held.after);
        match own.max(behind) {
            None => out.send_sync_message(connection_id, document_id.clone(), message),
            Some(after) => self
                .held
                .entry(connection_id)
                .or_default()
                .push_back(Held { message, after }),
        }
    }

    /// Sends what waited for writes that have completed now.
    pub(super) fn release(
        &mut self,
        on_disk: &OnDiskState,
        document_id: &DocumentId,
        out: &mut DocActorResult,
    ) {
        self.held.retain(|connection_id, queue| {
            while queue
                .front()
                .is_some_and(|first| on_disk.stored_through(first.after))
            {
                let Held { message, .. } = queue.pop_front().expect("front exists");
                out.send_sync_message(*connection_id, document_id.clone(), message);
            }
            !queue.is_empty()
        });
        self.written_for
            .retain(|_, put| !on_disk.stored_through(*put));
        self.attached_during
            .retain(|_, put| !on_disk.stored_through(*put));
        self.unstored.retain(|_, put| !on_disk.stored_through(*put));
    }

    pub(super) fn forget(&mut self, connection_id: ConnectionId) {
        self.held.remove(&connection_id);
        self.attached_during.remove(&connection_id);
    }

    /// What was generated for a connection that may no longer read.
    pub(super) fn drop_held(&mut self, connection_id: ConnectionId) {
        self.held.remove(&connection_id);
    }

    pub(super) fn len(&self) -> usize {
        self.held.values().map(VecDeque::len).sum()
    }
}
