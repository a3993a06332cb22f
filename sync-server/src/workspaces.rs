//! One samod `Repo` per workspace, created when its first device connects
//! and stopped when none has been connected for a while: samod keeps every
//! loaded document until its repo stops, and its per-message work grows with
//! connections × loaded documents, so idle repos must not linger.
//!
//! Each workspace has one slot, never removed, with its own lock: a repo is
//! loaded and stopped only while that lock is held, so a workspace never has
//! two repos (a connect during a stop waits for it, then loads afresh), and
//! loading one workspace (storage reads) holds up no other workspace.
//!
//! On shared storage (PostgreSQL) a repo is loaded only while this node
//! holds the workspace's lease (see `cluster.rs`); otherwise `serve` names
//! the node that does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use samod::{AcceptorHandle, PeerId, Repo};
use tokio::sync::Mutex;

use crate::cluster::Node;
use crate::db::Lease;
use crate::metrics::{DocumentsLoaded, Metrics, Timed};
use crate::quota::{Counted, Quota, Usage};
use crate::storage::{self, Failure};
use crate::Db;

/// How long a document stays in memory without a message about it, unless
/// configured (`--doc-idle-seconds`).
pub const DOC_IDLE: Duration = Duration::from_secs(300);

/// How long a workspace whose storage failed is turned away before it is
/// loaded again: each of its devices reconnects at once and sends again
/// what could not be stored, so without a pause a full disk has every
/// device reload the workspace and fail again, over and over. Doubled each
/// time it fails again soon after (`REST_STREAK`), up to `REST_MAX`: at
/// most one reload every 8 s, and a device's `sync now` still waits out the
/// longest rest rather than failing (the client waits up to 10 s).
const REST: Duration = Duration::from_secs(1);
pub const REST_MAX: Duration = Duration::from_secs(8);
/// A failure this soon after the last rest ended continues its streak.
const REST_STREAK: Duration = Duration::from_secs(60);

/// An idle time that never passes.
const KEPT_FOR_GOOD: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub struct Workspaces {
    db: Arc<Db>,
    node: Node,
    quota: Quota,
    /// Unload a document after this long without a message about it (samod
    /// patch, vendor/README.md); `None` keeps it until the repo stops.
    doc_idle: Option<Duration>,
    metrics: Arc<Metrics>,
    slots: std::sync::Mutex<HashMap<String, Arc<Mutex<Option<Live>>>>>,
    /// Workspaces whose storage failed lately, and until when they rest.
    resting: std::sync::Mutex<HashMap<String, Rest>>,
    /// Repos loaded now.
    loaded: AtomicUsize,
}

#[derive(Clone, Copy)]
struct Rest {
    until: Instant,
    /// Failures in a row, each soon after the rest before it ended.
    streak: u32,
}

/// Why a device of a workspace cannot be served right now: a sentence for
/// the device, and when to try again.
#[derive(Debug)]
pub struct NotNow {
    pub why: String,
    pub retry_after: Duration,
}

impl NotNow {
    fn unreachable() -> NotNow {
        NotNow {
            why: "the server cannot reach this workspace's storage (or its lease) right now; try again shortly"
                .to_owned(),
            retry_after: REST,
        }
    }
}

/// Where a device of a workspace is served.
pub enum Serve {
    /// By this node's repo; `usage` says whether the workspace is full,
    /// `failure` when its storage failed (the connection must end).
    Here {
        acceptor: AcceptorHandle,
        usage: Arc<Usage>,
        failure: Failure,
    },
    /// By another node (shared storage), reachable at `url`.
    Elsewhere { url: String },
}

struct Live {
    repo: Repo,
    acceptor: AcceptorHandle,
    usage: Arc<Usage>,
    failure: Failure,
    idle_since: Option<Instant>,
    loaded_at: Instant,
}

impl Workspaces {
    pub fn new(db: Arc<Db>, node: Node) -> Arc<Workspaces> {
        Workspaces::with_limits(db, node, Quota::default(), Some(DOC_IDLE))
    }

    pub fn with_limits(
        db: Arc<Db>,
        node: Node,
        quota: Quota,
        doc_idle: Option<Duration>,
    ) -> Arc<Workspaces> {
        Arc::new(Workspaces {
            db,
            node,
            quota,
            doc_idle,
            metrics: Metrics::new(),
            slots: std::sync::Mutex::new(HashMap::new()),
            resting: std::sync::Mutex::new(HashMap::new()),
            loaded: AtomicUsize::new(0),
        })
    }

    fn slot(&self, workspace_id: &str) -> Arc<Mutex<Option<Live>>> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(workspace_id.to_owned())
            .or_default()
            .clone()
    }

    fn all_slots(&self) -> Vec<(String, Arc<Mutex<Option<Live>>>)> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, s)| (id.clone(), s.clone()))
            .collect()
    }

    /// Where a device of this workspace is served: here (loading the repo
    /// if needed), or on the node holding its lease; why not, when the
    /// database cannot say or the workspace rests after a storage failure.
    /// `name` is the workspace's, for the sentences its limits give.
    pub async fn serve(&self, workspace_id: &str, name: &str) -> Result<Serve, NotNow> {
        let slot = self.slot(workspace_id);
        let mut live = slot.lock().await;
        if let Some(l) = live.as_mut() {
            if !l.failure.failed() {
                l.idle_since = None;
                return Ok(Serve::Here {
                    acceptor: l.acceptor.clone(),
                    usage: l.usage.clone(),
                    failure: l.failure.clone(),
                });
            }
        }
        // Its storage failed: what it holds in memory may not be stored, so
        // the workspace is served afresh from what is (its devices send the
        // rest again), after a rest. Its lease, if any, is not renewed
        // meanwhile (`keep_leases` renews loaded repos') but outlasts a rest
        // at the default lease (15 s against at most 8 s); with a shorter
        // one another node may take the workspace over, as from a node that
        // stopped. Given up, it would send the devices to another node that
        // most likely shares the failing database.
        if let Some(l) = live.take() {
            l.repo.stop().await;
            self.loaded.fetch_sub(1, Ordering::SeqCst);
            let failed_at = l.failure.at().unwrap_or_else(Instant::now);
            let rest = self.rest_after_failure(workspace_id, failed_at);
            tracing::info!(
                workspace = workspace_id,
                rest_ms = rest.as_millis() as u64,
                "workspace repo stopped after a storage failure; loading it again after a rest"
            );
        }
        if let Some(left) = self.rest_left(workspace_id) {
            return Err(NotNow {
                why: format!(
                    "the server could not store workspace {name}'s changes and takes the workspace back in {} s; \
                     a device keeps what it has not sent and sends it then",
                    left.as_secs_f64().ceil() as u64
                ),
                retry_after: left,
            });
        }
        if self.db.is_shared() {
            let (db, node, id) = (self.db.clone(), self.node.clone(), workspace_id.to_owned());
            match tokio::task::spawn_blocking(move || db.acquire_lease(&id, &node)).await {
                Ok(Ok(Lease::Mine)) => {}
                Ok(Ok(Lease::Held { url, .. })) => return Ok(Serve::Elsewhere { url }),
                Ok(Err(e)) => {
                    tracing::warn!(workspace = workspace_id, error = %e, "cannot take the workspace's lease");
                    return Err(NotNow::unreachable());
                }
                Err(_) => return Err(NotNow::unreachable()),
            }
        }
        let storage = self.db.storage(workspace_id);
        let sizes = match storage.sizes().await {
            Ok(sizes) => sizes,
            Err(e) => {
                self.metrics.storage_failures.inc();
                tracing::error!(workspace = workspace_id, error = %e, "cannot read the workspace's storage");
                self.release(workspace_id).await;
                return Err(NotNow::unreachable());
            }
        };
        let usage = Usage::new(name, self.quota, sizes);
        let failure = Failure::new();
        let storage =
            storage::watched(storage, failure.clone(), workspace_id, self.metrics.clone());
        let builder = Repo::build_tokio()
            .with_storage(Timed::new(
                Counted::new(storage, usage.clone()),
                self.metrics.clone(),
            ))
            .with_peer_id(PeerId::from(format!("flowkeep-sync-server/{workspace_id}")))
            // Devices ask for the documents they use (the workspace root
            // lists them); announcing every loaded document to every new
            // device made each join cost the whole workspace. The policy
            // never announces, and makes devices read-only peers for what
            // the workspace's quota refuses (`quota.rs`). On demand: a
            // device's connection is attached to a document only once it
            // asks about it (our samod patch, vendor/README.md).
            .with_share_policy(usage.share_policy())
            .with_documents_on_demand(true)
            // A device counts the changes it sees in the server's heads as
            // stored: what it is sent waits until what it sent is written;
            // the other devices get a change at once (our samod patch).
            .with_sync_after_storage(true)
            .with_observer(DocumentsLoaded(self.metrics.clone()));
        // A device that stays connected would otherwise keep every document
        // it ever used in memory, with its whole history, until it leaves.
        // Without an idle time a document found nowhere (a device asked for
        // one nobody has) still goes, 2 s after (samod patch), or a device
        // asking for made-up ids would fill the memory.
        let repo = builder
            .with_unload_idle_documents(self.doc_idle.unwrap_or(KEPT_FOR_GOOD))
            .load()
            .await;
        let url = url::Url::parse(&format!("flowkeep-sync://workspace/{workspace_id}")).ok();
        let Some(acceptor) = url.and_then(|u| repo.make_acceptor(u).ok()) else {
            repo.stop().await;
            self.release(workspace_id).await;
            return Err(NotNow::unreachable());
        };
        self.loaded.fetch_add(1, Ordering::SeqCst);
        tracing::info!(workspace = workspace_id, "workspace repo loaded");
        *live = Some(Live {
            repo,
            acceptor: acceptor.clone(),
            usage: usage.clone(),
            failure: failure.clone(),
            idle_since: None,
            loaded_at: Instant::now(),
        });
        Ok(Serve::Here {
            acceptor,
            usage,
            failure,
        })
    }

    /// Starts a rest, from `failed_at`, for a workspace whose storage
    /// failed, longer if it failed again soon after the last one; returns
    /// its length.
    fn rest_after_failure(&self, workspace_id: &str, failed_at: Instant) -> Duration {
        let mut resting = self.resting.lock().unwrap_or_else(|p| p.into_inner());
        // Those long over say nothing any more.
        resting.retain(|_, r| failed_at < r.until + REST_STREAK);
        let streak = resting
            .get(workspace_id)
            .map_or(1, |r| r.streak.saturating_add(1));
        let rest = REST
            .saturating_mul(2u32.saturating_pow(streak.min(16) - 1))
            .min(REST_MAX);
        resting.insert(
            workspace_id.to_owned(),
            Rest {
                until: failed_at + rest,
                streak,
            },
        );
        rest
    }

    /// How long the workspace still rests after a storage failure.
    fn rest_left(&self, workspace_id: &str) -> Option<Duration> {
        let resting = self.resting.lock().unwrap_or_else(|p| p.into_inner());
        let left = resting
            .get(workspace_id)?
            .until
            .checked_duration_since(Instant::now())?;
        (!left.is_zero()).then_some(left)
    }

    /// This node's repo of a workspace, loading it if needed; `None` when
    /// another node serves it.
    pub async fn acceptor(&self, workspace_id: &str) -> Option<AcceptorHandle> {
        match self.serve(workspace_id, workspace_id).await.ok()? {
            Serve::Here { acceptor, .. } => Some(acceptor),
            Serve::Elsewhere { .. } => None,
        }
    }

    async fn release(&self, workspace_id: &str) {
        if !self.db.is_shared() {
            return;
        }
        let (db, node, id) = (self.db.clone(), self.node.clone(), workspace_id.to_owned());
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || db.release_lease(&id, &node)).await
        {
            // It runs out by itself.
            tracing::warn!(workspace = workspace_id, error = %e, "cannot release the workspace's lease");
        }
    }

    /// Renews the leases of the workspaces this node serves, every third of
    /// a lease, until the task is aborted. A workspace whose lease was lost
    /// (this node paused past it and another took over), or could not be
    /// renewed for a whole lease (the database unreachable), is stopped
    /// here: its devices reconnect and reach the new owner.
    pub async fn keep_leases(self: Arc<Self>) {
        if !self.db.is_shared() {
            return;
        }
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.node.renew_every()).await;
            let asked = Instant::now();
            // A slot locked right now is loading (its lease is fresh) or
            // stopping; the next round sees it.
            let serving: Vec<String> = self
                .all_slots()
                .into_iter()
                .filter(|(_, s)| s.try_lock().is_ok_and(|l| l.is_some()))
                .map(|(id, _)| id)
                .collect();
            if serving.is_empty() {
                renewed = asked;
                continue;
            }
            let (db, node, ids) = (self.db.clone(), self.node.clone(), serving.clone());
            let held = match tokio::task::spawn_blocking(move || db.renew_leases(&node, &ids)).await
            {
                Ok(Ok(held)) => {
                    renewed = asked;
                    Some(held)
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot renew workspace leases");
                    None
                }
                Err(_) => None,
            };
            let expired = held.is_none() && renewed.elapsed() >= self.node.lease;
            for id in serving {
                let lost = match &held {
                    Some(held) => !held.contains(&id),
                    None => expired,
                };
                if !lost {
                    continue;
                }
                let slot = self.slot(&id);
                let mut live = slot.lock().await;
                // Loaded again since we asked (released, then taken anew):
                // that lease is fresh.
                if live.as_ref().is_some_and(|l| l.loaded_at < asked) {
                    if let Some(l) = live.take() {
                        l.repo.stop().await;
                        self.loaded.fetch_sub(1, Ordering::SeqCst);
                        tracing::warn!(
                            workspace = id.as_str(),
                            "workspace lease lost; repo stopped"
                        );
                    }
                }
            }
        }
    }

    /// Stops the repos of workspaces without connections for `idle`. A
    /// workspace being loaded or connected to right now is left alone.
    pub async fn reap_idle(&self, idle: Duration) {
        let now = Instant::now();
        for (id, slot) in self.all_slots() {
            let Ok(mut live) = slot.try_lock() else {
                continue;
            };
            let Some(l) = live.as_mut() else {
                continue;
            };
            if l.acceptor.connection_count() > 0 {
                l.idle_since = None;
                continue;
            }
            let since = *l.idle_since.get_or_insert(now);
            if now.duration_since(since) < idle {
                continue;
            }
            if let Some(l) = live.take() {
                // Still holding the slot: a connect waits for the stop.
                l.repo.stop().await;
                self.loaded.fetch_sub(1, Ordering::SeqCst);
                self.release(&id).await;
                tracing::info!(workspace = id.as_str(), "idle workspace repo stopped");
            }
        }
    }

    /// This process, as other nodes see it.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// What `/metrics` shows (storage timings are taken here).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub async fn loaded(&self) -> usize {
        self.loaded.load(Ordering::SeqCst)
    }

    /// Stops every repo (after their pending storage writes), for shutdown,
    /// and gives up their leases so other nodes take over at once.
    pub async fn stop_all(&self) {
        for (id, slot) in self.all_slots() {
            if let Some(l) = slot.lock().await.take() {
                l.repo.stop().await;
                self.loaded.fetch_sub(1, Ordering::SeqCst);
                self.release(&id).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connects and idle stops interleaved every way a scheduler can: a
    /// workspace never has more than one repo, and every acceptor handed
    /// out belongs to a repo that was loaded.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn connects_and_idle_stops_in_any_order_keep_one_repo_per_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("sync.db")).unwrap());
        let w = Workspaces::new(db, Node::new("ws://127.0.0.1:1", Duration::from_secs(15)));
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..16 {
            let w = w.clone();
            tasks.spawn(async move {
                for i in 0..25 {
                    let ws = if (t + i) % 3 == 0 { "b" } else { "a" };
                    if (t * 7 + i) % 4 == 0 {
                        w.reap_idle(Duration::ZERO).await;
                    } else {
                        assert!(w.acceptor(ws).await.is_some());
                    }
                    let loaded = w.loaded().await;
                    assert!(loaded <= 2, "{loaded} repos for two workspaces");
                    tokio::task::yield_now().await;
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        w.reap_idle(Duration::ZERO).await;
        assert_eq!(w.loaded().await, 0, "every idle repo stopped");
        w.acceptor("a").await.unwrap();
        assert_eq!(w.loaded().await, 1);
        w.stop_all().await;
        assert_eq!(w.loaded().await, 0);
    }

    /// Creates a document in the workspace's loaded repo; whether its
    /// storage failed within a few seconds.
    async fn write_fails(w: &Workspaces, workspace_id: &str) -> bool {
        let slot = w.slot(workspace_id);
        let (repo, failure) = {
            let live = slot.lock().await;
            let l = live.as_ref().expect("loaded");
            (l.repo.clone(), l.failure.clone())
        };
        repo.create(automerge::Automerge::new()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), failure.wait())
            .await
            .is_ok()
    }

    /// A workspace whose storage failed is not loaded again at once (its
    /// devices would reload it and fail again, over and over) but after a
    /// rest that doubles while it keeps failing, and ends once it works.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_workspace_whose_storage_failed_rests_longer_while_it_keeps_failing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.db");
        let db = Arc::new(Db::open(&path).unwrap());
        let w = Workspaces::new(db, Node::new("ws://127.0.0.1:1", Duration::from_secs(15)));
        assert!(w.serve("a", "team").await.is_ok());
        assert!(w.serve("b", "other").await.is_ok());
        let refusing = rusqlite::Connection::open(&path).unwrap();
        refusing
            .execute_batch(
                "CREATE TRIGGER disk_full BEFORE INSERT ON kv
                 BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END;",
            )
            .unwrap();
        assert!(write_fails(&w, "a").await, "the failure was not noticed");

        let first = w.serve("a", "team").await.err().expect("rests");
        assert_eq!(w.loaded().await, 1, "a's repo stopped; b's runs on");
        assert!(first.retry_after <= REST, "{first:?}");
        assert!(
            first.why.contains(
                "could not store workspace team's changes and takes the workspace back in 1 s"
            ),
            "{}",
            first.why
        );
        tokio::time::sleep(first.retry_after + Duration::from_millis(50)).await;
        assert!(
            w.serve("a", "team").await.is_ok(),
            "loaded again after the rest"
        );

        // It fails again at once: a longer rest.
        assert!(write_fails(&w, "a").await);
        let second = w.serve("a", "team").await.err().expect("rests");
        assert!(second.retry_after > REST, "{second:?}");
        assert!(second.retry_after <= REST * 2);

        // The disk has room again: after the rest the workspace is served
        // and stored as before.
        refusing.execute_batch("DROP TRIGGER disk_full").unwrap();
        tokio::time::sleep(second.retry_after + Duration::from_millis(50)).await;
        assert!(w.serve("a", "team").await.is_ok());
        assert!(!write_fails(&w, "a").await);
        assert!(w.serve("a", "team").await.is_ok());
        w.stop_all().await;
    }
}
