//! `sync watch`: rounds run only when something happened, and touch only
//! what changed. The first round on a connection is a full session (push,
//! root, every document settled and merged). After it, a document this
//! device syncs that changes (samod's change notifications, one small task
//! per document) is merged on its own, and local events are pushed for
//! their workflows only; a change to the root document (a new workflow or
//! log) or a new connection brings a full round again. An idle watch wakes
//! only to look at the event log's sequence number, so its cost does not
//! grow with the number of workflows.

use std::collections::BTreeSet;
use std::sync::Mutex;

use futures::StreamExt;
use tokio::task::JoinSet;

use super::*;

/// Documents whose changes wake the watch, subscribed once each.
struct Subscriptions {
    tasks: JoinSet<()>,
    subscribed: HashSet<DocumentId>,
    /// Documents changed since the last round took them.
    changed: Arc<Mutex<HashSet<DocumentId>>>,
    /// Documents whose changes stopped coming: a stream ends only when the
    /// sync engine failed on its document (the repo is not stopped while
    /// watched), and its handle, the root's included, is of no more use.
    ended: Arc<Mutex<BTreeSet<DocumentId>>>,
    wake: Arc<tokio::sync::Notify>,
}

impl Subscriptions {
    fn new() -> Subscriptions {
        Subscriptions {
            tasks: JoinSet::new(),
            subscribed: HashSet::new(),
            changed: Arc::new(Mutex::new(HashSet::new())),
            ended: Arc::new(Mutex::new(BTreeSet::new())),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Subscribes to the documents not yet watched. Each new one counts as
    /// changed once: a change that landed before the subscription is merged
    /// by the next round.
    fn add<'a>(&mut self, handles: impl IntoIterator<Item = &'a DocHandle>) {
        for h in handles {
            let id = h.document_id().clone();
            if !self.subscribed.insert(id.clone()) {
                continue;
            }
            self.mark(&id);
            let mut changes = h.changes();
            let (changed, ended, wake) =
                (self.changed.clone(), self.ended.clone(), self.wake.clone());
            self.tasks.spawn(async move {
                while changes.next().await.is_some() {
                    changed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id.clone());
                    wake.notify_one();
                }
                ended.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
                wake.notify_one();
            });
        }
    }

    fn mark(&self, id: &DocumentId) {
        self.changed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone());
    }

    fn take(&self) -> HashSet<DocumentId> {
        std::mem::take(&mut *self.changed.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The documents whose changes stopped coming since the last call, no
    /// longer watched: a full round that finds them again watches their
    /// new handles.
    fn take_ended(&mut self) -> BTreeSet<DocumentId> {
        let ended = std::mem::take(&mut *self.ended.lock().unwrap_or_else(|p| p.into_inner()));
        for id in &ended {
            self.subscribed.remove(id);
        }
        ended
    }
}

/// How long the server may be out of reach before `sync status` says so
/// (a restart of the server, a laptop waking up, are shorter).
const AWAY_NOTICE: Duration = Duration::from_secs(5);
/// How soon a watch refused by a server at its connection limit asks
/// again, at first and at most.
const BUSY_RETRY: Duration = Duration::from_secs(3);
const BUSY_RETRY_MAX: Duration = Duration::from_secs(30);
/// How soon a watch whose writes to this device's copy of the documents
/// failed tries again (a disk that filled up may have room again soon), and
/// one whose sync engine failed on a document, at first.
const STORAGE_RETRY: Duration = Duration::from_secs(10);
/// A document the sync engine keeps failing on is tried again less and
/// less often, up to this: the change that trips it comes back with every
/// try, and each try is a full round (for the root, a reconnect).
const DOCUMENT_RETRY_MAX: Duration = Duration::from_secs(5 * 60);
/// How soon a full round looks again for listed documents that did not
/// load, at first and at most: one whose device is still sending it comes
/// within moments; one that never loads must not have every round fetch
/// everything.
const MISSING_RETRY: Duration = Duration::from_millis(250);
const MISSING_RETRY_MAX: Duration = Duration::from_secs(10);
/// A watch that ran this long before it failed starts its pauses over.
const DOCUMENT_RETRY_RESET: Duration = Duration::from_secs(10 * 60);

/// The pause after a failure of the sync engine on a document, given the
/// last such pause and how long the watch ran before it failed.
fn document_pause(last: Option<Duration>, ran: Duration) -> Duration {
    match last {
        Some(last) if ran < DOCUMENT_RETRY_RESET => (last * 2).min(DOCUMENT_RETRY_MAX),
        _ => STORAGE_RETRY,
    }
}

fn ids(docs: &BTreeSet<DocumentId>) -> Vec<String> {
    docs.iter().map(ToString::to_string).collect()
}

/// `d` plus up to a quarter more, at random.
fn jittered(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = getrandom::fill(&mut b).map_or(0, |_| u16::from_le_bytes(b));
    d + d / 4 * u32::from(r) / u32::from(u16::MAX)
}

impl SyncService<'_> {
    /// Keeps this device in sync until `stop` is set: sends local changes and
    /// merges other devices' as they happen (local writes are looked for
    /// every `interval`; remote ones wake it at once), over one connection
    /// that is re-established with backoff when the server goes away. A
    /// refused credential (a revoked device) or an untrusted certificate
    /// ends it with an error, also mid-watch; a failed write to this
    /// device's copy of the documents, or one SQLite refused in its
    /// database, or the sync engine's failure on the root document, is said
    /// in `sync status` (when that can still be written) and tried again
    /// after `STORAGE_RETRY` (the root failing again, later each time). Any
    /// other document the engine fails on is left out, said in `sync
    /// status`, and tried again after a pause that grows the same way.
    /// `on_round` sees rounds that moved data.
    pub fn watch(
        &self,
        stop: &AtomicBool,
        interval: Duration,
        mut on_round: impl FnMut(&SyncReport),
    ) -> Result<()> {
        let settings = match self.sync_settings()? {
            Some(s) if s.root.is_some() => s,
            _ => return self.sync().now().map(drop),
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
            // Another process syncing this data dir: wait for it to stop.
            let mut said = false;
            let _lock = loop {
                if let Some(lock) = repo::SyncLock::try_take(&db_path)? {
                    break lock;
                }
                if !said {
                    tracing::warn!("another flowkeep process is syncing this data dir; this watch starts when it stops");
                    said = true;
                }
                if stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            };
            let settings = self.enrolled(settings).await?;
            let mut pause: Option<Duration> = None;
            loop {
                let started = std::time::Instant::now();
                let result = match self.open_repo(&db_path).await {
                    Ok(repo) => {
                        let result = self
                            .watch_with(&repo, &settings, stop, interval, &mut on_round)
                            .await;
                        repo.stop().await;
                        result
                    }
                    Err(e) => Err(e),
                };
                // This device's copy of the documents, or its database,
                // could not be written (a full disk, a lock held too long,
                // an I/O error, a read-only file), or the sync engine failed
                // on one document: nothing was recorded that it did not
                // keep, and a fresh repo, loaded from what is stored, tries
                // again later. What only a change to this program mends (a
                // row that does not read as it should) ends the watch.
                let e = match result {
                    Err(e @ (Error::SyncStorage(_) | Error::SyncDocument(_))) => e,
                    Err(e @ Error::Database(rusqlite::Error::SqliteFailure(..))) => e,
                    other => return other,
                };
                let next = if let Error::SyncDocument(_) = e {
                    let next = document_pause(pause, started.elapsed());
                    pause = Some(next);
                    jittered(next)
                } else {
                    pause = None;
                    STORAGE_RETRY
                };
                tracing::warn!(error = %e, "sync paused; trying again in {} s", next.as_secs());
                self.note_sync_error(&e);
                let until = std::time::Instant::now() + next;
                while std::time::Instant::now() < until {
                    if stop.load(Ordering::SeqCst) {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        rt.shutdown_timeout(Duration::from_secs(2));
        result.inspect_err(|e| self.note_sync_error(e))
    }

    async fn watch_with(
        &self,
        repo: &SyncRepo,
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
        // A refused credential is final; an unreachable server, or one at
        // its connection limit, is waited for.
        // What the server says about the workspace's limits on each
        // connection; kept for `sync status` when it changes.
        let limit = dialer::Limit::default();
        let mut limit_noted: Option<Option<String>> = None;
        // What the server said now at the end of the last round.
        let mut now_seen: Option<Option<String>> = None;
        let Some(mut dialer) = self
            .dial_admitted(repo, settings, &backoff, stop, &limit)
            .await?
        else {
            return Ok(());
        };
        let mut subs = Subscriptions::new();
        let mut root: Option<DocHandle> = None;
        // The connection the last full round completed on, and the log's
        // sequence number the last round started from.
        let mut full_on: Option<samod::ConnectionId> = None;
        let mut seen_seq: Option<i64> = None;
        // Since when the server has been out of reach, and what was said
        // of it (`sync status`, the app's header).
        let mut away_since: Option<std::time::Instant> = None;
        let mut said_away: Option<String> = None;
        // Documents the sync engine failed on, left out until a full round
        // finds them again (samod loads a failed document afresh), at
        // `retry`: later each time they fail again (`document_pause`).
        let mut passed_over: BTreeSet<DocumentId> = BTreeSet::new();
        let mut retry: Option<std::time::Instant> = None;
        let mut retry_pause: Option<Duration> = None;
        // When a full round looks again for listed documents that did not
        // load, and the last such pause.
        let mut missing_retry: Option<std::time::Instant> = None;
        let mut missing_pause: Option<Duration> = None;
        while !stop.load(Ordering::SeqCst) {
            if missing_retry.is_some_and(|at| std::time::Instant::now() >= at) {
                missing_retry = None;
                full_on = None;
            }
            let ended = subs.take_ended();
            if !ended.is_empty() {
                // Without the root nothing syncs: a fresh repo, later.
                if let Some(r) = root.as_ref().filter(|r| ended.contains(r.document_id())) {
                    return Err(Error::SyncDocument(r.document_id().to_string()));
                }
                tracing::warn!(
                    documents = ended.len(),
                    "the sync engine failed on documents; syncing goes on without them"
                );
                passed_over.extend(ended);
                self.note_passed_over(&ids(&passed_over));
            }
            if passed_over.is_empty() {
                retry = None;
            } else if retry.is_none() {
                let next = document_pause(retry_pause, Duration::ZERO);
                retry_pause = Some(next);
                retry = Some(std::time::Instant::now() + jittered(next));
            } else if retry.is_some_and(|at| std::time::Instant::now() >= at) {
                retry = None;
                full_on = None;
            }
            // Revoked (or the certificate changed) while watching: the
            // reconnect was refused for good.
            if let Some(Err(samod::DialerFailed::PermanentFailure(e))) =
                futures::FutureExt::now_or_never(dialer.established())
            {
                if !e.is_busy() {
                    return Err(Error::Unavailable(e.to_string()));
                }
                // Reconnecting found the server at its limit: wait for a place.
                dialer.close();
                match self
                    .dial_admitted(repo, settings, &backoff, stop, &limit)
                    .await?
                {
                    Some(d) => dialer = d,
                    None => break,
                }
                full_on = None;
            }
            match dialer.connection_id() {
                None => {
                    let since = *away_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() >= AWAY_NOTICE {
                        let why = dialer::not_in(&settings.server, limit.unavailable());
                        let why = format!("{why}; trying again");
                        // Said again when the reason changes (a dial turned
                        // away while the server shut down, then refused once
                        // it is gone); cleared by the next round that syncs.
                        if said_away.as_deref() != Some(why.as_str()) {
                            self.note_sync_error(&Error::Unavailable(why.clone()));
                            said_away = Some(why);
                        }
                    }
                }
                Some(_) => {
                    away_since = None;
                    said_away = None;
                }
            }
            if let Some(conn) = dialer.connection_id() {
                let seq = self.max_seq()?;
                let changed = subs.take();
                let root_changed = root
                    .as_ref()
                    .is_some_and(|r| changed.contains(r.document_id()));
                let full = full_on != Some(conn) || root_changed;
                if full || seen_seq != Some(seq) || !changed.is_empty() {
                    let round = async {
                        if full {
                            limit.begin_round();
                            let pushed = self.push_local(repo, Some(settings)).await?;
                            if root.is_none() {
                                root = Some(self.open_root(repo, settings).await?);
                            }
                            let root = root.as_ref().expect("opened above");
                            let x = self.exchange(repo, settings, root, conn, &limit).await?;
                            subs.add(std::iter::once(root).chain(&x.handles));
                            Ok::<_, Error>((
                                pushed,
                                x.merged,
                                x.workflows,
                                x.unconfirmed,
                                x.missing,
                                x.passed_over,
                            ))
                        } else {
                            let root = root.as_ref().expect("a full round opened it");
                            let (pushed, merged, behind) = self
                                .incremental_round(repo, settings, root, &changed)
                                .await?;
                            // A push waiting for one of its own the server
                            // may give back: a full round settles it.
                            if behind > 0 {
                                full_on = None;
                            }
                            Ok((pushed, merged, 0, 0, 0, repo.take_passed_over()))
                        }
                    };
                    match round.await {
                        Ok((pushed, merged, documents, unconfirmed, missing, failed)) => {
                            // A full round tried every document again.
                            if full {
                                passed_over.clear();
                                if failed.is_empty() {
                                    retry_pause = None;
                                }
                            }
                            passed_over.extend(failed);
                            let root = root.as_ref().expect("a full round opened it");
                            let report = SyncReport {
                                server: settings.server.clone(),
                                join: join_string(&settings.server, &root.url().to_string()),
                                pushed,
                                merged,
                                documents,
                                unconfirmed,
                                // Said when `sync now` connects.
                                server_limit: None,
                                passed_over: ids(&passed_over),
                                by_running_watch: false,
                            };
                            self.mark_synced(settings, &report.join, seq, &report.passed_over)?;
                            // Only a full round settles every document.
                            if full {
                                self.note_unconfirmed(unconfirmed);
                            }
                            // A full round says what it settled against; a
                            // round after it only what the server says now,
                            // once that changes.
                            let now = limit.now();
                            let said = if full {
                                Some(limit.take_for_round(unconfirmed))
                            } else {
                                (now_seen.as_ref() != Some(&now)).then(|| now.clone())
                            };
                            now_seen = Some(now);
                            if let Some(said) = said {
                                if limit_noted.as_ref() != Some(&said) {
                                    self.note_server_limit(said.as_deref());
                                    limit_noted = Some(said);
                                }
                            }
                            if pushed + merged > 0 {
                                on_round(&report);
                            }
                            seen_seq = Some(seq);
                            if full {
                                full_on = Some(conn);
                                // A document the root lists that did not load
                                // (its device is still sending it, or the
                                // engine failed on it as it arrived) is
                                // looked for again by another full round,
                                // sooner at first.
                                if missing > 0 {
                                    let next = missing_pause
                                        .map_or(MISSING_RETRY, |p| (p * 2).min(MISSING_RETRY_MAX));
                                    missing_pause = Some(next);
                                    missing_retry = Some(std::time::Instant::now() + next);
                                } else {
                                    missing_pause = None;
                                    missing_retry = None;
                                }
                            }
                            continue;
                        }
                        // The connection went away mid-round, or the server
                        // did not answer: after the usual pause, a full round.
                        Err(Error::Unavailable(_)) => {
                            full_on = None;
                            for id in &changed {
                                subs.mark(id);
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            // Asleep until a document changes, or the next look at the log
            // (and at `stop`).
            let _ = tokio::time::timeout(interval, subs.wake.notified()).await;
        }
        Ok(())
    }

    /// A dialer that got in: a server at its connection limit (429) is
    /// told in `sync status` and asked again after `BUSY_RETRY`, then less
    /// and less often (up to `BUSY_RETRY_MAX`, with jitter, so that many
    /// refused devices do not all ask at once); `None` if `stop` was set
    /// meanwhile. Any other refusal is final.
    async fn dial_admitted(
        &self,
        repo: &Repo,
        settings: &Settings,
        backoff: &BackoffConfig,
        stop: &AtomicBool,
        limit: &dialer::Limit,
    ) -> Result<Option<samod::DialerHandle<dialer::Refused>>> {
        let mut pause = BUSY_RETRY;
        loop {
            let dialer = dial(repo, settings, backoff.clone(), limit.clone())?;
            match tokio::time::timeout(CONNECT_TIMEOUT, dialer.established()).await {
                Ok(Err(samod::DialerFailed::PermanentFailure(e))) if e.is_busy() => {
                    // A refused dialer stays in the repo until closed.
                    dialer.close();
                    self.note_sync_error(&Error::Unavailable(format!(
                        "{e}; this device asks again in {} s",
                        pause.as_secs()
                    )));
                    let until = std::time::Instant::now() + jittered(pause);
                    pause = (pause * 2).min(BUSY_RETRY_MAX);
                    while std::time::Instant::now() < until {
                        if stop.load(Ordering::SeqCst) {
                            return Ok(None);
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                Ok(Err(samod::DialerFailed::PermanentFailure(e))) => {
                    return Err(Error::Unavailable(e.to_string()))
                }
                _ => return Ok(Some(dialer)),
            }
        }
    }

    /// A round after a full one: only the documents that changed merged,
    /// then local changes pushed for their workflows only. Returns
    /// (workflows pushed, workflows merged, workflows whose push waits for
    /// a full round: `Push::Behind`).
    async fn incremental_round(
        &self,
        repo: &SyncRepo,
        settings: &Settings,
        root: &DocHandle,
        changed: &HashSet<DocumentId>,
    ) -> Result<(usize, usize, usize)> {
        // Read only when a run log changed: the workflows it may name.
        let mut workflows: Option<HashSet<String>> = None;
        // The changed workflows' documents first, to ask the server once
        // who brought their changes.
        let mut workflow_docs = Vec::new();
        let mut logs = Vec::new();
        for id in changed {
            match self.known_by_doc(id)? {
                Some((known, true)) => {
                    if let Some(Some(handle)) = repo.pass_over(id, find(repo, id).await)? {
                        workflow_docs.push((known, handle));
                    }
                }
                Some((known, false)) => logs.push((id, known)),
                None => {}
            }
        }
        let since: Vec<(&DocHandle, Vec<ChangeHash>)> = workflow_docs
            .iter()
            .map(|(known, h)| (h, parse_heads(&known.heads)))
            .collect();
        let uploads = self.uploads_since(settings, &since).await;
        let mut merged = 0;
        for (known, handle) in &workflow_docs {
            let considered = self
                .consider_workflow(repo, &known.key, handle, Some(known), &uploads)
                .await;
            if repo.pass_over(handle.document_id(), considered)? == Some(true) {
                merged += 1;
            }
        }
        // Other devices' logs, with who uploaded their changes (asked once).
        let mut their_logs = Vec::new();
        for (id, known) in logs {
            let Ok(key) = LogKey::parse(&known.key) else {
                continue;
            };
            if key.device_id == self.device_id() {
                continue;
            }
            if let Some(Some(handle)) = repo.pass_over(id, find(repo, id).await)? {
                their_logs.push((key, handle, known));
            }
        }
        let since: Vec<(&DocHandle, Vec<ChangeHash>)> = their_logs
            .iter()
            .map(|(_, h, known)| (h, parse_heads(&known.heads)))
            .collect();
        let log_uploads = self.uploads_since(settings, &since).await;
        for (key, handle, known) in &their_logs {
            let ids = match &mut workflows {
                Some(ids) => ids,
                None => workflows.insert(self.known_workflow_ids()?),
            };
            let listed: HashSet<&str> = ids.iter().map(String::as_str).collect();
            let considered = self
                .consider_log(repo, key, handle, Some(known), &listed, &log_uploads)
                .await;
            repo.pass_over(handle.document_id(), considered)?;
        }
        // Local changes after the merges: a push onto a document holding
        // changes not merged yet merges them itself, one at a time
        // (`push.rs`).
        let pending = self.push_pending()?;
        let pushed = self.push_changed(repo, &pending, Some(settings)).await?;
        // A workflow or run log created here since: listed in the root, so
        // the other devices find it.
        for (list, new) in [
            (root::List::Workflows, &pushed.new_docs),
            (root::List::Logs, &pushed.new_logs),
        ] {
            if !new.is_empty() {
                // New here: nothing to put back.
                list_missing(root, list, new, |_| false)?;
            }
        }
        Ok((pushed.workflows, merged, pushed.behind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_that_keeps_failing_soon_after_each_start_waits_longer_each_time() {
        let soon = Duration::from_secs(1);
        assert_eq!(document_pause(None, soon), STORAGE_RETRY, "the first pause");
        let mut pause = None;
        let mut seen = Vec::new();
        for _ in 0..8 {
            let next = document_pause(pause, soon);
            seen.push(next.as_secs());
            pause = Some(next);
        }
        assert_eq!(seen, [10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(
            document_pause(pause, DOCUMENT_RETRY_RESET),
            STORAGE_RETRY,
            "a watch that ran a while starts over"
        );
    }
}
