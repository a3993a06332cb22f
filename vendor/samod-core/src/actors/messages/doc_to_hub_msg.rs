use std::collections::HashMap;

use crate::{
    ConnectionId, DocumentId, doc_search::DocSearchPhase, ephemera::EphemeralMessage,
    network::PeerDocState,
};

use super::SyncMessage;

/// Messages sent from document actors to Samod.
#[derive(Debug, Clone)]
pub struct DocToHubMsg(pub(crate) DocToHubMsgPayload);

impl DocToHubMsg {
    /// What the runtime sends on behalf of an actor that panicked: it runs
    /// no more, and the hub forgets it so that the document loads again,
    /// in a new actor, on its next use.
    pub fn failed() -> Self {
        DocToHubMsg(DocToHubMsgPayload::Failed)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum DocToHubMsgPayload {
    DocSearchChanged(DocSearchPhase),

    PeerStatesChanged(HashMap<ConnectionId, PeerDocState>),

    SendSyncMessage {
        connection_id: ConnectionId,
        document_id: DocumentId,
        message: SyncMessage,
    },

    Broadcast {
        connections: Vec<ConnectionId>,
        msg: Broadcast,
    },

    /// Close a connection which exceeded document-level resource limits.
    Disconnect {
        connection_id: ConnectionId,
        reason: String,
    },

    Terminated,

    /// The actor did not stop for an `Unload`: it still had work in hand
    /// (a load, a search peers have not all answered, a share-policy check,
    /// messages waiting for one).
    UnloadRefused,

    /// The actor panicked and was stopped by the runtime (`DocToHubMsg::
    /// failed`): whatever it did not save is gone, what it saved is not.
    Failed,
}

#[derive(Debug, Clone)]
pub enum Broadcast {
    New { msg: Vec<u8> },
    Gossip { msg: EphemeralMessage },
}
