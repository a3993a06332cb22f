//! One samod `Repo` per workspace, created when its first device connects
//! and stopped when none has been connected for a while: samod keeps every
//! loaded document until its repo stops, and its per-message work grows with
//! connections × loaded documents, so idle repos must not linger.
//!
//! Each workspace has one slot, never removed, with its own lock: a repo is
//! loaded and stopped only while that lock is held, so a workspace never has
//! two repos (a connect during a stop waits for it, then loads afresh), and
//! loading one workspace (storage reads) holds up no other workspace.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use samod::{AcceptorHandle, PeerId, Repo};
use tokio::sync::Mutex;

use crate::metrics::{Metrics, Timed};
use crate::Db;

pub struct Workspaces {
    db: Arc<Db>,
    metrics: Arc<Metrics>,
    slots: std::sync::Mutex<HashMap<String, Arc<Mutex<Option<Live>>>>>,
    /// Repos loaded now.
    loaded: AtomicUsize,
}

struct Live {
    repo: Repo,
    acceptor: AcceptorHandle,
    idle_since: Option<Instant>,
}

impl Workspaces {
    pub fn new(db: Arc<Db>) -> Arc<Workspaces> {
        Arc::new(Workspaces {
            db,
            metrics: Metrics::new(),
            slots: std::sync::Mutex::new(HashMap::new()),
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

    /// The acceptor of a workspace's repo, loading the repo if needed.
    pub async fn acceptor(&self, workspace_id: &str) -> Option<AcceptorHandle> {
        let slot = self.slot(workspace_id);
        let mut live = slot.lock().await;
        if let Some(l) = live.as_mut() {
            l.idle_since = None;
            return Some(l.acceptor.clone());
        }
        let repo = Repo::build_tokio()
            .with_storage(Timed::new(
                self.db.storage(workspace_id),
                self.metrics.clone(),
            ))
            .with_peer_id(PeerId::from(format!("flowkeep-sync-server/{workspace_id}")))
            .load()
            .await;
        let url = url::Url::parse(&format!("flowkeep-sync://workspace/{workspace_id}")).ok();
        let Some(acceptor) = url.and_then(|u| repo.make_acceptor(u).ok()) else {
            repo.stop().await;
            return None;
        };
        self.loaded.fetch_add(1, Ordering::SeqCst);
        tracing::info!(workspace = workspace_id, "workspace repo loaded");
        *live = Some(Live {
            repo,
            acceptor: acceptor.clone(),
            idle_since: None,
        });
        Some(acceptor)
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
                tracing::info!(workspace = id.as_str(), "idle workspace repo stopped");
            }
        }
    }

    /// What `/metrics` shows (storage timings are taken here).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub async fn loaded(&self) -> usize {
        self.loaded.load(Ordering::SeqCst)
    }

    /// Stops every repo (after their pending storage writes), for shutdown.
    pub async fn stop_all(&self) {
        for (_, slot) in self.all_slots() {
            if let Some(l) = slot.lock().await.take() {
                l.repo.stop().await;
                self.loaded.fetch_sub(1, Ordering::SeqCst);
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
        let w = Workspaces::new(db);
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
}
