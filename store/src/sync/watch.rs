//! `sync watch`: a round (push, exchange, merge) runs only when something
//! happened: a local event was written, a document this device syncs
//! changed (samod's change notifications, one small task per document), or
//! the connection was re-established. An idle watch wakes only to look at
//! the event log's sequence number, so its cost does not grow with the
//! number of workflows.

use std::sync::atomic::AtomicU64;

use futures::StreamExt;
use tokio::task::JoinSet;

use super::*;

/// Documents whose changes wake the watch, subscribed once each.
struct Subscriptions {
    tasks: JoinSet<()>,
    subscribed: HashSet<DocumentId>,
    /// Bumped by every change notification.
    changes: Arc<AtomicU64>,
    wake: Arc<tokio::sync::Notify>,
}

impl Subscriptions {
    fn new() -> Subscriptions {
        Subscriptions {
            tasks: JoinSet::new(),
            subscribed: HashSet::new(),
            changes: Arc::new(AtomicU64::new(0)),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Subscribes to the documents not yet watched; true when there were any
    /// (a change that landed before the subscription needs one more round).
    fn add<'a>(&mut self, handles: impl IntoIterator<Item = &'a DocHandle>) -> bool {
        let mut added = false;
        for h in handles {
            if !self.subscribed.insert(h.document_id().clone()) {
                continue;
            }
            added = true;
            let mut changes = h.changes();
            let (count, wake) = (self.changes.clone(), self.wake.clone());
            self.tasks.spawn(async move {
                while changes.next().await.is_some() {
                    count.fetch_add(1, Ordering::SeqCst);
                    wake.notify_one();
                }
            });
        }
        added
    }
}

impl Service {
    /// Keeps this device in sync until `stop` is set: sends local changes and
    /// merges other devices' as they happen (local writes are looked for
    /// every `interval`; remote ones wake it at once), over one connection
    /// that is re-established with backoff when the server goes away. A
    /// refused credential (a revoked device) or an untrusted certificate
    /// ends it with an error, also mid-watch. `on_round` sees rounds that
    /// moved data.
    pub fn sync_watch(
        &self,
        stop: &AtomicBool,
        interval: Duration,
        mut on_round: impl FnMut(&SyncReport),
    ) -> Result<()> {
        let settings = match self.settings()? {
            Some(s) if s.root.is_some() => s,
            _ => return self.sync_now().map(drop),
        };
        let Some(db_path) = self.db_path().map(|p| p.to_owned()) else {
            return Err(Error::invalid(
                "sync",
                "unavailable",
                "sync needs a database on disk",
            ));
        };
        let rt = runtime()?;
        let result = rt.block_on(async {
            let settings = self.enrolled(settings).await?;
            let repo = self.open_repo(&db_path).await?;
            let result = self
                .watch_with(&repo, &settings, stop, interval, &mut on_round)
                .await;
            repo.stop().await;
            result
        });
        rt.shutdown_timeout(Duration::from_secs(2));
        result
    }

    async fn watch_with(
        &self,
        repo: &Repo,
        settings: &Settings,
        stop: &AtomicBool,
        interval: Duration,
        on_round: &mut dyn FnMut(&SyncReport),
    ) -> Result<()> {
        let backoff = BackoffConfig {
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retries: None,
        };
        let dialer = dial(repo, settings, backoff)?;
        // A refused credential is final; an unreachable server is waited for.
        if let Ok(Err(samod::DialerFailed::PermanentFailure(e))) =
            tokio::time::timeout(CONNECT_TIMEOUT, dialer.established()).await
        {
            return Err(Error::Unavailable(e.to_string()));
        }
        let mut subs = Subscriptions::new();
        let mut root: Option<DocHandle> = None;
        // What the last complete round saw; `None` forces a round.
        let mut done: Option<(samod::ConnectionId, i64, u64)> = None;
        while !stop.load(Ordering::SeqCst) {
            // Revoked (or the certificate changed) while watching: the
            // reconnect was refused for good.
            if let Some(Err(samod::DialerFailed::PermanentFailure(e))) =
                futures::FutureExt::now_or_never(dialer.established())
            {
                return Err(Error::Unavailable(e.to_string()));
            }
            if let Some(conn) = dialer.connection_id() {
                let seq = self.max_seq()?;
                let changes = subs.changes.load(Ordering::SeqCst);
                if done != Some((conn, seq, changes)) {
                    let round = async {
                        let pushed = self.push_local(repo).await?;
                        if root.is_none() {
                            root = Some(self.open_root(repo, settings).await?);
                        }
                        let root = root.as_ref().expect("opened above");
                        let x = self.exchange(repo, root, conn).await?;
                        let added = subs.add(std::iter::once(root).chain(&x.handles));
                        Ok::<_, Error>((
                            SyncReport {
                                server: settings.server.clone(),
                                join: join_string(&settings.server, &root.url().to_string()),
                                pushed,
                                merged: x.merged,
                                documents: x.workflows,
                            },
                            added,
                        ))
                    };
                    match round.await {
                        Ok((report, added)) => {
                            self.mark_synced(settings, &report.join, seq)?;
                            if report.pushed + report.merged > 0 {
                                on_round(&report);
                            }
                            // What changed during the round (our own pushes and
                            // merges too) gets one more round, which settles
                            // with nothing to do; so does a document watched
                            // only from now on.
                            done = (!added).then_some((conn, seq, changes));
                        }
                        // The connection went away mid-round: the next round
                        // (after reconnecting) picks everything up again.
                        Err(Error::Unavailable(_)) => done = None,
                        Err(e) => return Err(e),
                    }
                    continue;
                }
            }
            // Asleep until a document changes, or the next look at the log
            // (and at `stop`).
            let _ = tokio::time::timeout(interval, subs.wake.notified()).await;
        }
        Ok(())
    }
}
