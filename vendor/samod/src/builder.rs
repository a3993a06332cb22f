use std::sync::Arc;

use samod_core::{PeerId, ShareConfig};

use crate::{
    Repo,
    observer::RepoObserver,
    runtime::{LocalRuntimeHandle, RuntimeHandle},
    share_policy::{LocalSharePolicy, SharePolicy},
    storage::{InMemoryStorage, LocalStorage, Storage},
};

/// How to run concurrent documents
///
/// See the [concurrency section](./index.html#concurrency) of the module level
/// documentation
pub enum ConcurrencyConfig {
    /// Run each document in a separate task on the async runtime
    AsyncRuntime,
    /// Run each document on a rayon threadpool
    #[cfg(feature = "threadpool")]
    Threadpool(rayon::ThreadPool),
}

/// A struct for configuring a [`Repo`](crate::Repo)
///
/// ## `Send` and non-`Send` futures
///
/// Once you've finished configuring the builder, you call either [`load`](Self::load) or
/// [`load_local`](Self::load_local) to create a [`Repo`]. The difference between the two is that
/// [`load`](Self::load) is only available for runtimes which implement `RuntimeHandle` and
/// thus require `Send` futures (such as tokio). [`load_local`](Self::load_local) on the other
/// hand works with runtimes that implement [`LocalRuntimeHandle`] and thus does
/// not require [`Send`] futures. If you want to use
/// [`load_local`](Self::load_local) you need to configure the storage and
/// share policy implementations to be implementations of [`LocalStorage`]
/// and [`LocalSharePolicy`] respectively. See the [module level
/// documentation on runtimes](./index.html#runtimes) for more details.
pub struct RepoBuilder<S, R, A> {
    pub(crate) storage: S,
    pub(crate) runtime: R,
    pub(crate) share_policy: A,
    pub(crate) peer_id: Option<PeerId>,
    pub(crate) concurrency: ConcurrencyConfig,
    pub(crate) observer: Option<Arc<dyn RepoObserver>>,
    pub(crate) documents_on_demand: bool,
    pub(crate) unload_idle_documents: Option<std::time::Duration>,
    pub(crate) sync_after_storage: bool,
}

impl<S, R, A> RepoBuilder<S, R, A> {
    pub fn with_storage<S2>(self, storage: S2) -> RepoBuilder<S2, R, A> {
        RepoBuilder {
            storage,
            peer_id: self.peer_id,
            runtime: self.runtime,
            share_policy: self.share_policy,
            concurrency: self.concurrency,
            observer: self.observer,
            documents_on_demand: self.documents_on_demand,
            unload_idle_documents: self.unload_idle_documents,
            sync_after_storage: self.sync_after_storage,
        }
    }

    pub fn with_runtime<R2>(self, runtime: R2) -> RepoBuilder<S, R2, A> {
        RepoBuilder {
            runtime,
            peer_id: self.peer_id,
            storage: self.storage,
            share_policy: self.share_policy,
            concurrency: self.concurrency,
            observer: self.observer,
            documents_on_demand: self.documents_on_demand,
            unload_idle_documents: self.unload_idle_documents,
            sync_after_storage: self.sync_after_storage,
        }
    }

    pub fn with_peer_id(mut self, peer_id: PeerId) -> Self {
        self.peer_id = Some(peer_id);
        self
    }

    /// Configure document access and announcements for each remote peer.
    /// Defaults to read-write access with announcements enabled.
    pub fn with_share_policy<A2>(self, share_policy: A2) -> RepoBuilder<S, R, A2> {
        RepoBuilder {
            runtime: self.runtime,
            peer_id: self.peer_id,
            storage: self.storage,
            share_policy,
            concurrency: self.concurrency,
            observer: self.observer,
            documents_on_demand: self.documents_on_demand,
            unload_idle_documents: self.unload_idle_documents,
            sync_after_storage: self.sync_after_storage,
        }
    }

    /// Configure how the repository should process concurrent documents
    ///
    /// See the [concurrency section](./index.html#concurrency) of the module level
    /// documentation
    pub fn with_concurrency(mut self, concurrency: ConcurrencyConfig) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Attach a connection to a document only when the peer sends a message
    /// about it (or the document is created or found for that connection),
    /// instead of attaching every connection to every loaded document.
    ///
    /// For a repo that never announces documents (a sync server whose
    /// share policy has `announce: false`): every remote peer then costs
    /// work for the documents it uses, not for every document loaded, so a
    /// new peer of a repo holding thousands of documents is cheap. Such a
    /// repo does not ask its other peers for a document it lacks.
    pub fn with_documents_on_demand(mut self, on_demand: bool) -> Self {
        self.documents_on_demand = on_demand;
        self
    }

    /// With [`with_documents_on_demand`](Self::with_documents_on_demand):
    /// unload a document that no message has been about for `after`,
    /// once its changes are on disk, and load it again when one is. Its
    /// connections stay attached: the next change to it is sent to each of
    /// them. Documents found or created through this repo (which a
    /// [`DocHandle`](crate::DocHandle) may hold) are never unloaded. Memory
    /// then follows the documents in use, not every document used since
    /// the repo started.
    pub fn with_unload_idle_documents(mut self, after: std::time::Duration) -> Self {
        self.unload_idle_documents = Some(after);
        self
    }

    /// Tell a peer that this repo has a change of the peer's own (the
    /// repo's heads in a sync message) only once the change is in storage.
    /// A peer that sees its changes in this repo's heads counts them as
    /// stored; without this the repo answers as soon as it has applied a
    /// change and writes it afterwards, so a crash or a failed write in
    /// between leaves the peer wrong. A message to a peer waits for the
    /// writes, up to the last one holding a change that peer sent or says
    /// it has (a few milliseconds on a local disk), never for later ones;
    /// the document's other peers get the change at once. For a repo that
    /// peers rely on to keep their changes, such as a sync server.
    pub fn with_sync_after_storage(mut self, after_storage: bool) -> Self {
        self.sync_after_storage = after_storage;
        self
    }

    /// Set an observer for receiving structured observability events.
    pub fn with_observer(mut self, observer: impl RepoObserver) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }
}

impl<R> RepoBuilder<InMemoryStorage, R, ShareConfig> {
    pub fn new(runtime: R) -> RepoBuilder<InMemoryStorage, R, ShareConfig> {
        RepoBuilder {
            storage: InMemoryStorage::new(),
            runtime,
            peer_id: None,
            share_policy: ShareConfig::default(),
            concurrency: ConcurrencyConfig::AsyncRuntime,
            observer: None,
            documents_on_demand: false,
            unload_idle_documents: None,
            sync_after_storage: false,
        }
    }
}

impl<S: Storage, R: RuntimeHandle + Clone + Send, A: SharePolicy> RepoBuilder<S, R, A> {
    /// Create the repository
    pub async fn load(self) -> Repo {
        Repo::load(self).await
    }
}

impl<S: LocalStorage, R: LocalRuntimeHandle + Clone + 'static, A: LocalSharePolicy>
    RepoBuilder<S, R, A>
{
    /// Create the repository
    pub async fn load_local(self) -> Repo {
        Repo::load_local(self).await
    }
}
