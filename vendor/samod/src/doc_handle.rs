use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use automerge::{Automerge, ReadDoc};
use futures::{Stream, StreamExt, channel::oneshot};
use samod_core::{AutomergeUrl, DocumentChanged, DocumentId};

use crate::{
    ConnectionId, Stopped, actor_task::ActorTask, doc_actor_inner::DocActorInner,
    peer_connection_info::PeerDocState, unbounded::UnboundedSender,
};

/// The state of a single [`automerge`] document the [`Repo`](crate::Repo) is managing
///
/// [`DocHandle`]s are obtained using [`Repo::create`](crate::Repo::create) or
/// [`Repo::find`](crate::Repo::find)
///
/// Each `DocHandle` wraps an underlying `automerge::Automerge` instance in order to
/// capture local changes made to the document and publish them to any connected peers;
/// and to listen for remote changes made to the document and notify the local process.
///
/// To make local changes to a document you use [`DocHandle::with_document`] whilst
/// remote changes can be listened for using [`DocHandle::changes`].
///
/// You can also broadcast ephemeral messages to other peers using
/// [`DocHandle::broadcast`] and listen for ephemeral messages sent by other
/// peers using [`DocHandle::ephemera`].
#[derive(Clone)]
pub struct DocHandle {
    inner: Arc<Mutex<DocActorInner>>,
    document_id: DocumentId,
    task_dispatcher: DocTaskDispatcher,
}

#[derive(Clone)]
pub(crate) enum DocTaskDispatcher {
    Async(UnboundedSender<ActorTask>),
    #[cfg(feature = "threadpool")]
    Threadpool(Arc<crate::doc_runner::threadpool::ThreadpoolActor>),
}

impl DocTaskDispatcher {
    fn dispatch(&self, task: ActorTask) -> Result<(), ActorTask> {
        match self {
            DocTaskDispatcher::Async(tx) => tx.unbounded_send(task),
            #[cfg(feature = "threadpool")]
            DocTaskDispatcher::Threadpool(actor) => {
                actor.dispatch(task);
                Ok(())
            }
        }
    }
}

impl std::fmt::Debug for DocHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocHandle")
            .field("document_id", &self.document_id)
            .finish()
    }
}

impl DocHandle {
    pub(crate) fn new(
        doc_id: DocumentId,
        inner: Arc<Mutex<DocActorInner>>,
        task_dispatcher: DocTaskDispatcher,
    ) -> Self {
        Self {
            document_id: doc_id,
            inner,
            task_dispatcher,
        }
    }

    #[cfg(feature = "threadpool")]
    pub(crate) fn dispatch_task(&self, task: ActorTask) {
        let _ = self.task_dispatcher.dispatch(task);
    }

    /// The ID of this document
    pub fn document_id(&self) -> &DocumentId {
        &self.document_id
    }

    /// The URL of this document in a format compatible with the JS `automerge-repo` library
    pub fn url(&self) -> AutomergeUrl {
        AutomergeUrl::from(self.document_id())
    }

    /// Make a change to the underlying `automerge::Automerge` document
    ///
    /// Note that this method blocks the current thread until the document is
    /// available. There are two major reasons that the document might be
    /// unavailable:
    ///
    /// * Another caller is currently calling `with_document` and doing something
    ///   which takes a long time
    /// * We are receiving a sync message which is taking a long time to process
    ///
    /// This means it's probably best to run calls to this method inside
    /// `spawn_blocking` or similar constructions
    pub fn with_document<F, R>(&self, f: F) -> R
    where
        F: FnOnce(&mut Automerge) -> R,
    {
        self.inner
            .lock()
            .expect("the document's actor failed (panicked); try_with_document reports it")
            .with_document(f)
    }

    /// [`Self::with_document`], or `Err(Stopped)` instead of a panic when
    /// the document's actor failed (panicked while it applied a change, see
    /// [`RepoEvent::DocumentFailed`](crate::RepoEvent)): its document is in
    /// whatever state the panic left, and the repo loads it again from
    /// storage on its next `find`. For a caller that must go on (or report
    /// the document) when one document fails. A panic in `f` itself still
    /// reaches the caller, and fails the document.
    pub fn try_with_document<F, R>(&self, f: F) -> Result<R, Stopped>
    where
        F: FnOnce(&mut Automerge) -> R,
    {
        self.inner
            .lock()
            .map_err(|_| Stopped)?
            .try_with_document(f)
            .ok_or(Stopped)
    }

    fn live(&self) -> Option<std::sync::MutexGuard<'_, DocActorInner>> {
        live(&self.inner)
    }

    /// Make a change to the underlying `automerge::Automerge` document without
    /// blocking the calling task.
    ///
    /// When polled, this queues the work on the document actor and resolves when
    /// the actor has applied the change. Queued tasks are processed in submission
    /// order in both async and threadpool modes. Synchronous [`Self::with_document`]
    /// calls acquire the document directly and do not participate in that ordering.
    /// If you created this repo using
    /// [`ConcurrencyConfig::ThreadPool`] then the closure runs on the
    /// threadpool and doesn't block the current async task. Otherwise, the
    /// closure runs in the document actor task, so long-running closures can
    /// still occupy an executor worker; use threadpool concurrency for
    /// CPU-heavy document work.
    pub fn with_document_async<F, R>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<R, Stopped>> + Send + 'static
    where
        F: FnOnce(&mut Automerge) -> R + Send + 'static,
        R: Send + 'static,
    {
        let dispatcher = self.task_dispatcher.clone();
        async move {
            let (tx, rx) = oneshot::channel();
            let task = ActorTask::WithDocument(Box::new(move |inner| {
                let result = inner.with_document(f);
                let _ = tx.send(result);
            }));
            dispatcher.dispatch(task).map_err(|_| Stopped)?;
            rx.await.map_err(|_| Stopped)
        }
    }

    /// Resolves once every change the document holds now is in storage
    /// (the writes this repo issued for them completed), at once if it
    /// already is; `Err(Stopped)` if the document's actor went away first.
    /// For a caller that records elsewhere what the document holds, and
    /// must not record more than a crash would leave on disk.
    ///
    /// `Storage` cannot report a failed write: a write that failed counts
    /// as completed here, so a caller that must know wraps its storage.
    pub fn stored(&self) -> impl Future<Output = Result<(), Stopped>> + Send + 'static {
        // A failed actor's document may hold changes it never wrote: never
        // "stored" then.
        let waiting = self.live().map(|mut inner| inner.when_stored());
        async move {
            match waiting {
                None => Err(Stopped),
                Some(Some(rx)) => rx.await.map_err(|_| Stopped),
                Some(None) => Ok(()),
            }
        }
    }

    /// Listen to ephemeral messages sent by other peers to this document
    /// (the stream ends when the document's actor fails, at once if it
    /// already has).
    pub fn ephemera(&self) -> impl Stream<Item = Vec<u8>> + 'static {
        match self.live() {
            Some(mut inner) => inner.create_ephemera_listener(),
            None => futures::channel::mpsc::unbounded().1,
        }
    }

    /// Listen for changes to the document (the stream ends when the
    /// document's actor fails, at once if it already has).
    pub fn changes(&self) -> impl Stream<Item = DocumentChanged> + 'static {
        match self.live() {
            Some(mut inner) => inner.create_change_listener(),
            None => futures::channel::mpsc::unbounded().1,
        }
    }

    /// Send an ephemeral message which will be broadcast to all other peers who have this document open
    ///
    /// Note that whilst you can send any binary payload, the JS implementation
    /// will only process payloads which are valid CBOR. Dropped if the
    /// document's actor failed.
    pub fn broadcast(&self, message: Vec<u8>) {
        if let Some(mut inner) = self.live() {
            inner.broadcast_ephemeral_message(message);
        }
    }

    /// Get the current state of all peers connected to this document, and a stream of changes to that set
    ///
    /// The returned stream will receive updates in the form of a map from
    /// connection IDs which have changed to the new state for that connection
    /// (none, and a stream that has ended, if the document's actor failed)
    pub fn peers(
        &self,
    ) -> (
        HashMap<ConnectionId, PeerDocState>,
        impl Stream<Item = HashMap<ConnectionId, PeerDocState>> + 'static + use<>,
    ) {
        match self.live() {
            Some(mut inner) => {
                let (now, changes) = inner.peers();
                (now, changes.left_stream())
            }
            None => (
                HashMap::new(),
                futures::channel::mpsc::unbounded().1.right_stream(),
            ),
        }
    }

    /// Wait for a connection to have said they have everything we have.
    ///
    /// This may remain pending if sharing is denied or the peer refuses our changes.
    /// It also resolves, at once or when it happens, if the document's actor
    /// failed: a caller that must know asks [`Self::try_with_document`] after.
    pub fn they_have_our_changes(&self, conn: ConnectionId) -> impl Future<Output = ()> + 'static {
        let inner = self.inner.clone();
        async move {
            let mut state_changes = {
                let Some(mut inner) = live(&inner) else {
                    return;
                };
                let local_heads = inner.document().get_heads();
                let (current, state_changes) = inner.peers();
                if (current
                    .get(&conn)
                    .map(|c| c.shared_heads == Some(local_heads)))
                .unwrap_or(false)
                {
                    return;
                }
                state_changes
            };
            while let Some(changes) = state_changes.next().await {
                let Some(change) = changes.get(&conn) else {
                    continue;
                };
                let Some(local_heads) = live(&inner).map(|i| i.document().get_heads()) else {
                    return;
                };
                if change.shared_heads == Some(local_heads) {
                    break;
                }
            }
        }
    }

    /// Wait until we have all the changes advertised by this connection.
    ///
    /// This may remain pending when our share policy denies the peer write access.
    /// It also resolves, at once or when it happens, if the document's actor
    /// failed: a caller that must know asks [`Self::try_with_document`] after.
    pub fn we_have_their_changes(&self, conn: ConnectionId) -> impl Future<Output = ()> + 'static {
        let inner = self.inner.clone();
        async move {
            let mut state_changes = {
                let Some(mut inner) = live(&inner) else {
                    return;
                };
                let (current, state_changes) = inner.peers();
                if let Some(their_heads) = current.get(&conn).and_then(|c| c.their_heads.as_ref())
                    && their_heads
                        .iter()
                        .all(|h| inner.document().get_change_by_hash(h).is_some())
                {
                    return;
                }
                state_changes
            };
            while let Some(changes) = state_changes.next().await {
                let Some(change) = changes.get(&conn) else {
                    continue;
                };
                let Some(their_heads) = change.their_heads.as_ref() else {
                    continue;
                };
                {
                    let Some(inner) = live(&inner) else {
                        return;
                    };
                    if their_heads
                        .iter()
                        .all(|h| inner.document().get_change_by_hash(h).is_some())
                    {
                        return;
                    }
                }
            }
        }
    }
}

/// The actor's state, or `None` if it failed: a panic poisons the lock it
/// held, and `fail` marks it.
fn live(inner: &Mutex<DocActorInner>) -> Option<std::sync::MutexGuard<'_, DocActorInner>> {
    inner.lock().ok().filter(|inner| !inner.has_failed())
}
