//! A sync session: connect, sync the root and every document it lists,
//! merge; `sync now` runs one (`watch.rs` repeats them over one connection).

use futures::StreamExt;

use super::*;

impl SyncService<'_> {
    /// Sends local changes, receives the other devices', merges; returns when
    /// every document is in sync with the server.
    pub fn now(&self) -> Result<SyncReport> {
        match self.sync_settings()? {
            Some(s) if s.root.is_some() => self.session(s),
            _ => Err(not_configured()),
        }
    }

    pub(super) fn session(&self, settings: Settings) -> Result<SyncReport> {
        let Some(db_path) = self.db_path().map(|p| p.to_owned()) else {
            return Err(Error::invalid(
                "sync",
                "unavailable",
                "sync needs a database on disk",
            ));
        };
        // Local events up to here are what this session sends; anything
        // written meanwhile (another process) goes with the next one.
        let seq = self.max_seq()?;
        let _lock = match self.wait_for_running_watch(&db_path, &settings, seq)? {
            Waited::Ours(lock) => lock,
            Waited::Sent(report) => return Ok(report),
        };
        let rt = runtime()?;
        let report = rt.block_on(async {
            let settings = self.enrolled(settings).await?;
            let repo = self.open_repo(&db_path).await?;
            let result = self.session_with(&repo, &settings).await;
            repo.stop().await;
            result.map(|r| (r, settings))
        });
        rt.shutdown_timeout(Duration::from_secs(2));
        let (report, settings) = report.inspect_err(|e| self.note_sync_error(e))?;
        self.mark_synced(&settings, &report.join, seq, &report.passed_over)?;
        Ok(report)
    }

    /// This data dir's sync lock, or, while another process holds it (a
    /// `sync watch`, the app), that process's word that it sent the local
    /// changes up to `seq` (it records the sequence it synced after each
    /// round, and merges other devices' changes as they arrive).
    fn wait_for_running_watch(
        &self,
        db_path: &std::path::Path,
        s: &Settings,
        seq: i64,
    ) -> Result<Waited> {
        let start = std::time::Instant::now();
        loop {
            if let Some(lock) = repo::SyncLock::try_take(db_path)? {
                return Ok(Waited::Ours(lock));
            }
            let synced: i64 = self
                .meta(META_SEQ)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if synced >= seq {
                return Ok(Waited::Sent(SyncReport {
                    server: s.server.clone(),
                    join: join_string(&s.server, s.root.as_deref().unwrap_or_default()),
                    pushed: 0,
                    merged: 0,
                    documents: 0,
                    unconfirmed: 0,
                    server_limit: None,
                    passed_over: self.passed_over()?,
                    by_running_watch: true,
                }));
            }
            if start.elapsed() >= RUNNING_WATCH_WAIT {
                return Err(repo::SyncLock::taken(RUNNING_WATCH_WAIT));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(super) async fn session_with(&self, repo: &SyncRepo, s: &Settings) -> Result<SyncReport> {
        let pushed = self.push_local(repo, None).await?;
        let backoff = BackoffConfig {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_retries: Some(3),
        };
        let limit = dialer::Limit::default();
        let (dialer, conn) = self.connect(repo, s, backoff, &limit).await?;
        let root = self.open_root(repo, s).await?;
        let x = self.exchange(repo, s, &root, conn, &limit).await;
        // Done with the server: a reconnect under way (the server closed
        // the connection, say) would otherwise run, and sync, before the
        // repo stops.
        dialer.close();
        let x = x?;
        let server_limit = limit.take_for_round(x.unconfirmed);
        self.note_server_limit(server_limit.as_deref());
        self.note_unconfirmed(x.unconfirmed);
        Ok(SyncReport {
            server: s.server.clone(),
            join: join_string(&s.server, &root.url().to_string()),
            pushed,
            merged: x.merged,
            documents: x.workflows,
            unconfirmed: x.unconfirmed,
            server_limit,
            passed_over: x.passed_over.iter().map(ToString::to_string).collect(),
            by_running_watch: false,
        })
    }

    /// Dials the server; fails fast on a refused token, and after a few
    /// tries if it cannot be reached. What the server says about the
    /// workspace's limits is kept in `limit`.
    pub(super) async fn connect(
        &self,
        repo: &Repo,
        s: &Settings,
        backoff: BackoffConfig,
        limit: &dialer::Limit,
    ) -> Result<(samod::DialerHandle<dialer::Refused>, samod::ConnectionId)> {
        // 2. Connect.
        let dialer = dial(repo, s, backoff, limit.clone())?;
        match tokio::time::timeout(CONNECT_TIMEOUT, dialer.established()).await {
            Ok(Ok(_)) => {}
            Ok(Err(samod::DialerFailed::PermanentFailure(e))) => {
                return Err(Error::Unavailable(e.to_string()))
            }
            Ok(Err(_)) | Err(_) => {
                return Err(Error::Unavailable(dialer::not_in(
                    &s.server,
                    limit.unavailable(),
                )));
            }
        }
        let conn = dialer
            .connection_id()
            .ok_or_else(|| Error::Unavailable("the connection dropped".into()))?;

        Ok((dialer, conn))
    }

    /// The workspace root document: found on the server, or created by `init`.
    pub(super) async fn open_root(&self, repo: &Repo, s: &Settings) -> Result<DocHandle> {
        // 3. The root document and every workflow document it lists.
        let root = match &s.root {
            Some(r) => {
                let url = AutomergeUrl::from_str(r)
                    .map_err(|_| Error::invalid("join", "format", "bad root URL"))?;
                let found =
                    tokio::time::timeout(DOC_TIMEOUT, repo.find(url.document_id().clone())).await;
                match found {
                    Ok(Ok(Some(h))) => h,
                    _ => return Err(Error::Unavailable(format!("the workspace document {r} is not on the server: check the join string and token"))),
                }
            }
            None => {
                let mut d = Automerge::new();
                d.transact::<_, _, String>(|tx| root::init(tx))
                    .map_err(|f| Error::Corrupt(f.error))?;
                repo.create(d)
                    .await
                    .map_err(|_| Error::Unavailable("the sync engine stopped".into()))?
            }
        };
        Ok(root)
    }

    /// Lists this device's documents in the root, settles every listed
    /// document with the server, and merges what changed elsewhere.
    pub(super) async fn exchange(
        &self,
        repo: &SyncRepo,
        s: &Settings,
        root: &DocHandle,
        conn: samod::ConnectionId,
        limit: &dialer::Limit,
    ) -> Result<Exchanged> {
        let at_limit = at_limit(limit);
        let docs = self.known_docs()?;
        let logs = self.known_logs()?;
        // An entry pointed elsewhere is put back once reported (`check_root`
        // below reports it this session; the next one puts it back).
        let reported = |list: &str, key: &str| {
            self.remembered(&format!("root:{list}:{}", short_hash(key)))
                .ok()
                .flatten()
                .is_some()
        };
        list_missing(root, root::List::Workflows, &docs, |k| {
            reported("workflows", k)
        })?;
        list_missing(root, root::List::Logs, &logs, |k| {
            reported("execution_logs", k)
        })?;
        let mut unconfirmed = usize::from(!settle(root, conn, at_limit.clone()).await?);
        // Only entries that pass the checks are opened: no document is
        // looked up, and no key used, that another client made up.
        let listed = self.check_root(root, &docs, &logs)?;
        let opening = (listed.workflows.len() + listed.logs.len()) as u64;
        let mut opened = 0;
        // Documents this device does not hold yet come from the server, one
        // round trip each: many are asked for at once.
        let mut found = futures::stream::iter(
            listed
                .workflows
                .iter()
                .map(|(id, doc)| (Some(id), None, doc))
                .chain(listed.logs.iter().map(|(key, doc)| (None, Some(key), doc))),
        )
        .map(|(wf, log, doc)| async move { (wf, log, doc, find(repo, doc).await) })
        .buffered(FIND_AT_ONCE);
        let mut handles: Vec<(String, DocHandle)> = Vec::new();
        let mut log_handles: Vec<(LogKey, DocHandle)> = Vec::new();
        let mut missing = 0;
        while let Some((wf, log, doc, found)) = found.next().await {
            match (wf, log, repo.pass_over(doc, found)?) {
                // Passed over: named in the report.
                (_, _, None) => {}
                (Some(wf_id), _, Some(Some(h))) => handles.push((wf_id.clone(), h)),
                (_, Some(key), Some(Some(h))) => log_handles.push((key.clone(), h)),
                _ => missing += 1,
            }
            opened += 1;
            self.sync_progress("opening documents", opened, opening);
        }
        drop(found);
        let settled = futures::future::join_all(
            handles
                .iter()
                .map(|(_, h)| h)
                .chain(log_handles.iter().map(|(_, h)| h))
                .map(|h| {
                    let at_limit = at_limit.clone();
                    async move { repo.pass_over(h.document_id(), settle(h, conn, at_limit).await) }
                }),
        )
        .await
        .into_iter()
        .collect::<Result<Vec<Option<bool>>>>()?;
        // What the engine failed on is left out of the rest of the round.
        let mut results = settled.into_iter();
        let (handles, settled): (Vec<_>, Vec<bool>) = handles
            .into_iter()
            .zip(results.by_ref())
            .filter_map(|(h, s)| s.map(|s| (h, s)))
            .unzip();
        let (log_handles, settled_logs): (Vec<_>, Vec<bool>) = log_handles
            .into_iter()
            .zip(results)
            .filter_map(|(h, s)| s.map(|s| (h, s)))
            .unzip();
        unconfirmed += settled
            .iter()
            .chain(&settled_logs)
            .filter(|settled| !**settled)
            .count();
        // A push of this device's that its copy lacks and that the server,
        // now settled with, did not give back is nowhere: the edits after
        // it go out without waiting for it (`Push::Behind`).
        for ((_, h), _) in handles.iter().zip(&settled).filter(|(_, s)| **s) {
            let pushed = self.pushed(h.document_id())?;
            if !pushed.is_empty() {
                let lost = with_doc(h, |d| missing_pushes(d, &pushed));
                if let Some(lost) = repo.pass_over(h.document_id(), lost)? {
                    if !lost.is_empty() {
                        tracing::debug!(document = %h.document_id(), lost = lost.len(), "pushes neither stored here nor on the server");
                        self.forget_pushes(h.document_id(), &lost)?;
                    }
                }
            }
        }
        let own = self.device_id().to_owned();
        for ((key, h), _) in log_handles.iter().zip(&settled_logs).filter(|(_, s)| **s) {
            if key.device_id == own {
                let mended = self.mend_own_log(repo, h).await;
                if repo.pass_over(h.document_id(), mended)? == Some(true) {
                    repo.pass_over(h.document_id(), settle(h, conn, at_limit.clone()).await)?;
                }
            }
        }

        // 4. Merge what changed elsewhere, with who the server saw bring
        //    each change (asked once for all of them).
        let since: Vec<(&DocHandle, Vec<ChangeHash>)> = handles
            .iter()
            .map(|(wf_id, h)| {
                let known = docs.iter().find(|k| &k.key == wf_id);
                (h, known.map(|k| parse_heads(&k.heads)).unwrap_or_default())
            })
            .collect();
        let uploads = self.uploads_since(s, &since).await;
        let mut merged = 0;
        for (i, (wf_id, handle)) in handles.iter().enumerate() {
            let known = docs.iter().find(|k| &k.key == wf_id);
            let considered = self
                .consider_workflow(repo, wf_id, handle, known, &uploads)
                .await;
            if repo.pass_over(handle.document_id(), considered)? == Some(true) {
                merged += 1;
            }
            self.sync_progress("merging", i as u64 + 1, handles.len() as u64);
        }
        // 4b. Local edits a document could not take before it arrived
        //     readable this round: sent now rather than a round later.
        let pending = self.push_pending()?;
        if !pending.is_empty() {
            let docs = self.known_docs()?;
            for (wf_id, handle) in handles.iter().filter(|(id, _)| pending.contains(id)) {
                let Some(known) = docs.iter().find(|k| &k.key == wf_id) else {
                    continue;
                };
                let Some(l) = self.read(|c| Ok(queries::workflows::load(c, wf_id)?))? else {
                    continue;
                };
                let id = handle.document_id();
                let pushed = self.push_into(
                    handle,
                    &parse_heads(&known.heads),
                    &l.workflow,
                    l.deleted,
                    false,
                );
                match repo.pass_over(id, pushed)? {
                    None | Some(Push::Unreadable | Push::Unmerged | Push::Behind) => {}
                    Some(Push::Nothing) => self.set_push_pending(wf_id, false)?,
                    Some(Push::Sent(heads)) => {
                        if repo.pass_over(id, repo.stored(handle).await)?.is_none() {
                            continue;
                        }
                        if let Some(heads) = heads {
                            self.save_doc(wf_id, handle, &heads)?;
                        }
                        self.set_push_pending(wf_id, false)?;
                        repo.pass_over(id, settle(handle, conn, at_limit.clone()).await)?;
                    }
                }
            }
        }
        // 5. Runs other devices recorded, changed since last merged.
        let listed_ids: HashSet<&str> =
            listed.workflows.iter().map(|(id, _)| id.as_str()).collect();
        //    Who uploaded their changes is asked once for all of them.
        let theirs: Vec<(&LogKey, &DocHandle, Option<&KnownDoc>)> = log_handles
            .iter()
            .filter(|(key, _)| key.device_id != own)
            .map(|(key, h)| (key, h, logs.iter().find(|k| k.key == key.to_string())))
            .collect();
        let since: Vec<(&DocHandle, Vec<ChangeHash>)> = theirs
            .iter()
            .map(|(_, h, known)| (*h, known.map(|k| parse_heads(&k.heads)).unwrap_or_default()))
            .collect();
        let log_uploads = self.uploads_since(s, &since).await;
        for (key, handle, known) in theirs {
            let considered = self
                .consider_log(repo, key, handle, known, &listed_ids, &log_uploads)
                .await;
            repo.pass_over(handle.document_id(), considered)?;
        }
        // The server could not store the workspace's changes this round:
        // it answers sync from memory, so what it confirmed may be nowhere
        // but there. Nothing of the round counts as confirmed; the next
        // round, against what it did store, sends what it lacks.
        if limit.unstored() {
            unconfirmed = 1 + handles.len() + log_handles.len();
        }
        // Left out: what the engine failed on and this round holds no live
        // handle to. One that failed earlier in the round (its push) and
        // synced here on a fresh load is not.
        let live = |h: &DocHandle| with_doc(h, |_| ()).is_ok();
        let workflows: Vec<DocHandle> = handles.into_iter().map(|(_, h)| h).filter(live).collect();
        let logs: Vec<DocHandle> = log_handles
            .into_iter()
            .map(|(_, h)| h)
            .filter(live)
            .collect();
        let mut passed_over = repo.take_passed_over();
        passed_over.retain(|id| !workflows.iter().chain(&logs).any(|h| h.document_id() == id));
        Ok(Exchanged {
            merged,
            unconfirmed,
            missing,
            workflows: workflows.len(),
            handles: workflows.into_iter().chain(logs).collect(),
            passed_over,
        })
    }
}

/// What waiting for a running watch came to.
enum Waited {
    /// The lock: this process syncs.
    Ours(repo::SyncLock),
    /// The running watch sent the changes.
    Sent(SyncReport),
}

/// How long `sync now` waits for a running watch to send this data dir's
/// changes.
const RUNNING_WATCH_WAIT: Duration = Duration::from_secs(60);

/// Documents asked of the server at once when a device opens what it does
/// not hold yet (a join): enough to hide the round trips, few enough not to
/// flood the server.
const FIND_AT_ONCE: usize = 64;

/// What one exchange did: workflows merged, and every document it synced
/// (the workflows' and the run logs').
pub(super) struct Exchanged {
    pub merged: usize,
    /// Documents the server did not confirm in time.
    pub unconfirmed: usize,
    /// Listed documents the server did not have (yet): their device may
    /// still be sending them.
    pub missing: usize,
    pub workflows: usize,
    /// Every document synced, but those passed over.
    pub handles: Vec<DocHandle>,
    /// Documents the sync engine failed on ([`SyncRepo::pass_over`]).
    pub passed_over: Vec<DocumentId>,
}

/// A dialer to the server that sends this device's credential, keeping
/// what the server says about the workspace's limits in `limit`.
pub(super) fn dial(
    repo: &Repo,
    s: &Settings,
    backoff: BackoffConfig,
    limit: dialer::Limit,
) -> Result<samod::DialerHandle<dialer::Refused>> {
    let url = check_server(&s.server)?;
    check_transport(&url, s.allow_insecure)?;
    repo.dial(
        backoff,
        Arc::new(dialer::TokenDialer {
            url,
            token: s.token.clone(),
            tls: s.tls()?,
            limit,
        }),
    )
    .map_err(|_| Error::Unavailable("the sync engine stopped".into()))
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

pub(super) async fn find(repo: &Repo, id: &DocumentId) -> Result<Option<DocHandle>> {
    match tokio::time::timeout(DOC_TIMEOUT, repo.find(id.clone())).await {
        Ok(Ok(Some(h))) => Ok(with_doc(&h, |d| arrived(d))?.then_some(h)),
        Ok(Ok(None)) => Ok(None),
        Ok(Err(_)) => Err(Error::Unavailable("the sync engine stopped".into())),
        Err(_) => Ok(None),
    }
}

/// Whether anything of a document has arrived. Every document a device
/// makes has a first change (samod commits one into an empty document): one
/// with none is not a document yet, though a server may hand it over as
/// found (one asked for before any device brought it; `vendor/README.md`).
/// Read as a workflow it would be rejected as "not a workflow document"; it
/// is looked at again once it fills in.
fn arrived(d: &Automerge) -> bool {
    !d.get_heads().is_empty()
}

/// Waits until the server has our changes and we have its, for one
/// document; false when that did not happen in time, or soon after the
/// server said the workspace is at a limit (`at_limit`): what it refuses
/// never settles. What is not confirmed is kept here and sent again next
/// session. An error if the sync engine failed on the document (the waits
/// end then too).
pub(super) async fn settle(
    h: &DocHandle,
    conn: samod::ConnectionId,
    at_limit: impl std::future::Future<Output = ()>,
) -> Result<bool> {
    let both = futures::future::join(h.they_have_our_changes(conn), h.we_have_their_changes(conn));
    let refused = async {
        at_limit.await;
        tokio::time::sleep(AT_LIMIT_GRACE).await;
    };
    let settled = tokio::select! {
        biased;
        settled = tokio::time::timeout(DOC_TIMEOUT, both) => settled.is_ok(),
        () = refused => false,
    };
    with_doc(h, |_| ())?;
    Ok(settled)
}

/// How long a document still gets to settle once the server said the
/// workspace is at a limit: those it takes do within moments.
const AT_LIMIT_GRACE: Duration = Duration::from_secs(2);

/// Resolves once the server said the workspace is at a limit (at once if
/// it said so when this device connected); one for all of a session's
/// documents.
fn at_limit(
    limit: &dialer::Limit,
) -> futures::future::Shared<futures::future::BoxFuture<'static, ()>> {
    use futures::FutureExt;
    let limit = limit.clone();
    async move {
        while !limit.heard() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    .boxed()
    .shared()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_with_no_change_has_not_arrived() {
        let mut d = Automerge::new();
        assert!(!arrived(&d));
        d.empty_commit(CommitOptions::default());
        assert!(arrived(&d), "samod's first commit of a new document");
    }
}
