//! One samod `Repo` per workspace, created when its first device connects
//! and stopped when none has been connected for a while: samod keeps every
//! loaded document until its repo stops, and its per-message work grows with
//! connections × loaded documents, so idle repos must not linger.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use samod::{AcceptorHandle, PeerId, Repo};
use tokio::sync::Mutex;

use crate::metrics::{Metrics, Timed};
use crate::Db;

pub struct Workspaces {
    db: Arc<Db>,
    metrics: Arc<Metrics>,
    live: Mutex<HashMap<String, Live>>,
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
            live: Mutex::new(HashMap::new()),
        })
    }

    /// The acceptor of a workspace's repo, loading the repo if needed.
    pub async fn acceptor(&self, workspace_id: &str) -> Option<AcceptorHandle> {
        let mut live = self.live.lock().await;
        if let Some(l) = live.get_mut(workspace_id) {
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
        let url = url::Url::parse(&format!("flowkeep-sync://workspace/{workspace_id}")).ok()?;
        let acceptor = repo.make_acceptor(url).ok()?;
        tracing::info!(workspace = workspace_id, "workspace repo loaded");
        live.insert(
            workspace_id.to_owned(),
            Live {
                repo,
                acceptor: acceptor.clone(),
                idle_since: None,
            },
        );
        Some(acceptor)
    }

    /// Stops the repos of workspaces without connections for `idle`.
    pub async fn reap_idle(&self, idle: Duration) {
        let mut stopped = Vec::new();
        {
            let mut live = self.live.lock().await;
            let now = Instant::now();
            live.retain(|id, l| {
                if l.acceptor.connection_count() > 0 {
                    l.idle_since = None;
                    return true;
                }
                let since = *l.idle_since.get_or_insert(now);
                if now.duration_since(since) < idle {
                    return true;
                }
                stopped.push((id.clone(), l.repo.clone()));
                false
            });
        }
        for (id, repo) in stopped {
            repo.stop().await;
            tracing::info!(workspace = id.as_str(), "idle workspace repo stopped");
        }
    }

    /// What `/metrics` shows (storage timings are taken here).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub async fn loaded(&self) -> usize {
        self.live.lock().await.len()
    }

    /// Stops every repo (after their pending storage writes), for shutdown.
    pub async fn stop_all(&self) {
        let repos: Vec<Repo> = self
            .live
            .lock()
            .await
            .drain()
            .map(|(_, l)| l.repo)
            .collect();
        for repo in repos {
            repo.stop().await;
        }
    }
}
