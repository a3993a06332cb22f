use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use automerge::{Automerge, ReadDoc};
use futures::{
    Stream,
    channel::{mpsc, oneshot},
};
use samod_core::{
    ConnectionId, DocumentActorId, DocumentChanged, DocumentId, PeerId, SyncDirection,
    SyncMessageStat, UnixTimestamp,
    io::IoTaskId,
    actors::{
        DocToHubMsg,
        document::{DocActorResult, DocumentActor, WithDocResult},
    },
};

use crate::{
    actor_task::ActorTask,
    io_loop::{self, IoLoopTask},
    observer::{self, RepoObserver},
    peer_connection_info::PeerDocState,
    unbounded::UnboundedSender,
};

pub(crate) struct DocActorInner {
    document_id: DocumentId,
    actor_id: DocumentActorId,
    tx_to_core: UnboundedSender<(DocumentActorId, DocToHubMsg)>,
    tx_io: UnboundedSender<io_loop::IoLoopTask>,
    ephemera_listeners: Vec<mpsc::UnboundedSender<Vec<u8>>>,
    change_listeners: Vec<mpsc::UnboundedSender<DocumentChanged>>,
    peer_state_change_listeners: Vec<mpsc::UnboundedSender<HashMap<ConnectionId, PeerDocState>>>,
    actor: DocumentActor,
    /// The set of peers who are connected to this document as of the last [`DocAtorResult`]
    last_observed_peers: HashSet<PeerId>,
    /// `DocumentActor::peers_version` when `last_observed_peers` was
    /// collected: collecting them on every result cost the actor a pass
    /// over all its peers for each message.
    last_observed_version: Option<u64>,
    observer: Option<Arc<dyn RepoObserver>>,
    /// Callers of `DocHandle::stored`, each waiting for the writes issued
    /// up to the one named.
    stored_waiters: Vec<(IoTaskId, oneshot::Sender<()>)>,
    /// Set once the actor panicked (`fail`): its document is in whatever
    /// state the panic left, so handles are refused it from then on.
    failed: bool,
}

impl DocActorInner {
    pub(crate) fn new(
        document_id: DocumentId,
        actor_id: DocumentActorId,
        actor: DocumentActor,
        tx_to_core: UnboundedSender<(DocumentActorId, DocToHubMsg)>,
        tx_io: UnboundedSender<io_loop::IoLoopTask>,
        observer: Option<Arc<dyn RepoObserver>>,
    ) -> Self {
        DocActorInner {
            document_id,
            actor_id,
            tx_to_core,
            tx_io,
            ephemera_listeners: Vec::new(),
            change_listeners: Vec::new(),
            peer_state_change_listeners: Vec::new(),
            actor,
            last_observed_peers: HashSet::new(),
            last_observed_version: None,
            observer,
            stored_waiters: Vec::new(),
            failed: false,
        }
    }

    /// Whether the actor panicked and was stopped (`fail`).
    pub(crate) fn has_failed(&self) -> bool {
        self.failed
    }

    /// Resolves once every change the document holds now is stored: `None`
    /// when it already is. Dropped unresolved if the actor goes away first.
    pub(crate) fn when_stored(&mut self) -> Option<oneshot::Receiver<()>> {
        let last = self.actor.last_running_write()?;
        let (tx, rx) = oneshot::channel();
        self.stored_waiters.push((last, tx));
        Some(rx)
    }

    fn wake_stored_waiters(&mut self) {
        if self.stored_waiters.is_empty() {
            return;
        }
        let actor = &self.actor;
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.stored_waiters)
            .into_iter()
            .partition(|(write, _)| actor.writes_complete_through(*write));
        self.stored_waiters = waiting;
        for (_, tx) in done {
            let _ = tx.send(());
        }
    }

    pub(crate) fn document(&self) -> &Automerge {
        self.actor.document()
    }

    pub(crate) fn with_document<F, R>(&mut self, f: F) -> R
    where
        F: FnOnce(&mut Automerge) -> R,
    {
        let WithDocResult {
            actor_result,
            value,
        } = self.actor.with_document(UnixTimestamp::now(), f).unwrap();

        self.handle_results(actor_result);

        value
    }

    /// [`Self::with_document`], or `None` when the actor failed or its
    /// document is not there to change (not ready, or unloaded).
    pub(crate) fn try_with_document<F, R>(&mut self, f: F) -> Option<R>
    where
        F: FnOnce(&mut Automerge) -> R,
    {
        if self.failed {
            return None;
        }
        let WithDocResult {
            actor_result,
            value,
        } = self.actor.with_document(UnixTimestamp::now(), f).ok()?;
        self.handle_results(actor_result);
        Some(value)
    }

    pub(crate) fn create_ephemera_listener(&mut self) -> mpsc::UnboundedReceiver<Vec<u8>> {
        let (tx, rx) = mpsc::unbounded();
        self.ephemera_listeners.push(tx);
        rx
    }

    pub(crate) fn create_change_listener(&mut self) -> mpsc::UnboundedReceiver<DocumentChanged> {
        let (tx, rx) = mpsc::unbounded();
        self.change_listeners.push(tx);
        rx
    }

    pub(crate) fn broadcast_ephemeral_message(&mut self, message: Vec<u8>) {
        let result = self.actor.broadcast(UnixTimestamp::now(), message);
        self.handle_results(result);
    }

    pub(crate) fn handle_results(&mut self, results: DocActorResult) {
        let DocActorResult {
            io_tasks,
            outgoing_messages,
            ephemeral_messages,
            change_events,
            stopped,
            peer_state_changes,
            sync_message_stats,
            pending_sync_messages,
        } = results;
        self.wake_stored_waiters();

        if let Some(new_peers) = self.connected_peers_changed(stopped) {
            // Send lifecycle changes before the checks below, including removal
            // of the last connection to a peer even when no check is generated.
            let _ = self.tx_io.unbounded_send(IoLoopTask::DocumentPeersChanged {
                actor_id: self.actor_id,
                peers: new_peers,
            });
        }
        let peer_count = self.actor.peer_count();
        let stats = self.actor.document().stats();
        log_sync_message_stats(
            &self.document_id,
            &sync_message_stats,
            peer_count,
            stats.num_ops,
            stats.num_changes,
        );

        if let Some(ref obs) = self.observer {
            for stat in &sync_message_stats {
                let event = match stat.direction {
                    SyncDirection::Received => observer::RepoEvent::SyncMessageReceived {
                        document_id: self.document_id.clone(),
                        connection_id: stat.connection_id,
                        bytes: stat.bytes,
                        duration: stat.duration,
                        queue_duration: stat.queue_duration,
                    },
                    SyncDirection::Generated => observer::RepoEvent::SyncMessageGenerated {
                        document_id: self.document_id.clone(),
                        connection_id: stat.connection_id,
                        bytes: stat.bytes,
                        duration: stat.duration,
                    },
                };
                obs.observe(&event);
            }
            if pending_sync_messages > 0 {
                obs.observe(&observer::RepoEvent::DocumentPendingSyncMessages {
                    document_id: self.document_id.clone(),
                    count: pending_sync_messages,
                });
            }
            if stopped {
                obs.observe(&observer::RepoEvent::DocumentClosed {
                    document_id: self.document_id.clone(),
                });
            }
        }
        for task in io_tasks {
            if let Err(_e) = self.tx_io.unbounded_send(IoLoopTask::Storage {
                doc_id: self.document_id.clone(),
                task,
                actor_id: self.actor_id,
            }) {
                tracing::error!("io receiver dropped whilst document actor is still running");
                return;
            }
        }

        for msg in outgoing_messages {
            if let Err(_e) = self.tx_to_core.unbounded_send((self.actor_id, msg)) {
                tracing::error!("core receiver dropped whilst document actor is still running");
                return;
            }
        }

        if !ephemeral_messages.is_empty() {
            self.ephemera_listeners.retain_mut(|listener| {
                for msg in &ephemeral_messages {
                    if listener.unbounded_send(msg.clone()).is_err() {
                        return false;
                    }
                }
                true
            });
        }

        if !change_events.is_empty() {
            self.change_listeners.retain_mut(|listener| {
                for change in &change_events {
                    if listener.unbounded_send(change.clone()).is_err() {
                        return false;
                    }
                }
                true
            });
        }

        if !peer_state_changes.is_empty() {
            let changes = peer_state_changes
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect::<HashMap<_, _>>();
            self.peer_state_change_listeners
                .retain_mut(move |listener| {
                    if listener.unbounded_send(changes.clone()).is_err() {
                        return false;
                    }
                    true
                });
        }
    }

    pub(crate) fn handle_task(&mut self, task: ActorTask) {
        let result = match task {
            ActorTask::HandleMessage(samod_to_actor_message) => self
                .actor
                .handle_message(UnixTimestamp::now(), samod_to_actor_message),
            ActorTask::IoComplete(io_result) => self
                .actor
                .handle_io_complete(UnixTimestamp::now(), io_result),
            ActorTask::WithDocument(f) => {
                f(self);
                return;
            }
        };
        self.handle_results(result.unwrap());
    }

    /// Tells the IO loop (its share-policy checks for this actor) and the
    /// hub that this actor runs no more (`run_guarded`).
    fn fail(&mut self, what: &str) {
        self.failed = true;
        tracing::error!(
            document_id = %self.document_id,
            actor_id = ?self.actor_id,
            panic = what,
            "document actor panicked and was stopped"
        );
        // Their streams end (`DocHandle::changes` and the like) instead of
        // waiting for what will never come.
        self.stored_waiters.clear();
        self.change_listeners.clear();
        self.ephemera_listeners.clear();
        self.peer_state_change_listeners.clear();
        let _ = self.tx_io.unbounded_send(IoLoopTask::DocumentPeersChanged {
            actor_id: self.actor_id,
            peers: HashSet::new(),
        });
        let _ = self
            .tx_to_core
            .unbounded_send((self.actor_id, DocToHubMsg::failed()));
        if let Some(obs) = &self.observer {
            let document_id = &self.document_id;
            // The caller is already handling a panic: one from an observer
            // must not escape it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for event in [
                    observer::RepoEvent::DocumentFailed {
                        document_id: document_id.clone(),
                    },
                    observer::RepoEvent::DocumentClosed {
                        document_id: document_id.clone(),
                    },
                ] {
                    obs.observe(&event);
                }
            }));
        }
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.actor.is_stopped()
    }

    pub(crate) fn peers(
        &mut self,
    ) -> (
        HashMap<ConnectionId, PeerDocState>,
        impl Stream<Item = HashMap<ConnectionId, PeerDocState>> + 'static + use<>,
    ) {
        let peers = self.actor.peers();
        let (tx, rx) = mpsc::unbounded();
        self.peer_state_change_listeners.push(tx);
        let peers = peers.into_iter().map(|(k, v)| (k, v.into())).collect();
        (peers, rx)
    }

    /// Returns the set of peers for this document if it is different to self.last_observed_peers
    pub(crate) fn connected_peers_changed(&mut self, stopped: bool) -> Option<HashSet<PeerId>> {
        let version = (!stopped).then(|| self.actor.peers_version());
        if version.is_some() && version == self.last_observed_version {
            return None;
        }
        self.last_observed_version = version;
        let peers = if stopped {
            HashSet::new()
        } else {
            self.actor.connected_peer_ids()
        };
        if peers != self.last_observed_peers {
            self.last_observed_peers = peers.clone();
            Some(peers)
        } else {
            None
        }
    }
}

/// Runs `f` on a document's actor, catching a panic: a document whose
/// input (a peer's change, a stored chunk) or a bug makes its actor panic
/// must not stop the repo's other documents (on the async runtime they all
/// run in one task) or leave its peers answered by nobody. On a panic the
/// actor is reported failed (`DocActorInner::fail`) and `None` returned;
/// its runner then runs it no more.
pub(crate) fn run_guarded<R>(
    inner: &std::sync::Mutex<DocActorInner>,
    f: impl FnOnce(&mut DocActorInner) -> R,
) -> Option<R> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Poisoned: something panicked while it held the document (a
        // `DocHandle` caller's closure); its state is as suspect as after a
        // panic here.
        let mut guard = inner.lock().unwrap();
        f(&mut guard)
    }));
    match outcome {
        Ok(r) => Some(r),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .fail(&what);
            None
        }
    }
}

fn log_sync_message_stats(
    doc_id: &DocumentId,
    sync_message_stats: &[SyncMessageStat],
    peer_count: usize,
    num_ops: u64,
    num_changes: u64,
) {
    for stat in sync_message_stats {
        let direction = match stat.direction {
            SyncDirection::Received => "received",
            SyncDirection::Generated => "generated",
        };
        tracing::debug!(
            document_id = %doc_id,
            connection_id = ?stat.connection_id,
            direction,
            bytes = stat.bytes,
            duration_us = stat.duration.as_micros() as u64,
            queue_duration_us = stat.queue_duration.as_micros() as u64,
            peer_count,
            num_ops,
            num_changes,
            "sync_message"
        );
    }
}
