use crate::{DocumentActorId, DocumentId, UnixTimestamp, doc_search::DocSearchPhase};

#[derive(Debug, Clone)]
pub(crate) struct ActorInfo {
    pub(crate) actor_id: DocumentActorId,
    pub(crate) document_id: DocumentId,
    pub(crate) search_phase: DocSearchPhase,
    /// When a message about the document last passed through the hub, or
    /// its actor was spawned or kept after refusing to unload (`None` until
    /// the first idle scan sees the actor).
    pub(crate) last_active: Option<UnixTimestamp>,
    /// Found or created by a local caller, who may hold a `DocHandle` to
    /// this actor: never unloaded while idle.
    pub(crate) pinned: bool,
    /// Refused to unload once: from then on it waits the full idle time,
    /// even when found nowhere (a peer that keeps it busy is not asked every
    /// 2 s).
    pub(crate) refused_unload: bool,
}

impl ActorInfo {
    pub fn new_with_id(actor_id: DocumentActorId, document_id: DocumentId) -> Self {
        Self {
            actor_id,
            document_id,
            search_phase: DocSearchPhase::Loading,
            last_active: None,
            pinned: false,
            refused_unload: false,
        }
    }
}
