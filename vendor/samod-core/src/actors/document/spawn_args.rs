use std::collections::{HashMap, HashSet};

use crate::{ConnectionId, DocumentActorId, PeerId, actors::messages::DocMessage};

#[derive(Clone)]
pub struct SpawnArgs {
    pub(crate) local_peer_id: PeerId,
    pub(crate) actor_id: DocumentActorId,
    pub(crate) document_id: crate::DocumentId,
    pub(crate) initial_content: Option<automerge::Automerge>,
    pub(crate) initial_connections: HashMap<ConnectionId, (PeerId, Option<DocMessage>)>,
    /// Initial connections whose peers used this document with an earlier
    /// actor, unloaded while idle: they are synced as if they had asked.
    pub(crate) resumed_connections: HashSet<ConnectionId>,
    /// Show a peer a change it has only once the change is written
    /// (`HubState::sync_after_storage`).
    pub(crate) sync_after_storage: bool,
    /// The document's last actor failed: restart the exchange with every
    /// initial connection, whose peer counts what it sent that actor as
    /// delivered (`PeerDocConnection::resync`).
    pub(crate) resync: bool,
}

impl std::fmt::Debug for SpawnArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnArgs")
            .field("actor_id", &self.actor_id)
            .field("local_peer_id", &self.local_peer_id)
            .field("document_id", &self.document_id)
            .field(
                "initial_content",
                &self.initial_content.as_ref().map(|_| "<Automerge>"),
            )
            .field("initial_connections", &self.initial_connections)
            .field("resumed_connections", &self.resumed_connections)
            .field("sync_after_storage", &self.sync_after_storage)
            .field("resync", &self.resync)
            .finish()
    }
}

impl SpawnArgs {
    pub fn actor_id(&self) -> DocumentActorId {
        self.actor_id
    }

    pub fn document_id(&self) -> &crate::DocumentId {
        &self.document_id
    }
}
