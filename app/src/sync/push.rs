//! Local changes onto this device's documents (three-way: projection vs.
//! the document it last reflected), and this device's runs into its logs.

use super::*;

/// What `push_changed` did.
#[derive(Default)]
pub(super) struct Pushed {
    /// Workflows whose local changes were written into their documents.
    pub workflows: usize,
    /// Documents created for workflows and run logs new here: to be listed
    /// in the workspace root.
    pub new_docs: Vec<KnownDoc>,
    pub new_logs: Vec<KnownDoc>,
    /// Workflows waiting for a push of theirs the server may give back
    /// (`Push::Behind`): a full round settles them.
    pub behind: usize,
}

/// How many times a push waits for a merge of what arrived meanwhile
/// before it writes anyway (changes that keep arriving must not starve it).
const PUSH_TRIES: usize = 3;

impl Service {
    /// Steps 0 and 1: pending merges first, then local changes onto this
    /// device's documents. Returns how many workflows had changes to send.
    /// `ask`: the server to ask who brought what is merged on the way, when
    /// connected (a watch); a session does this offline, before it connects.
    pub(super) async fn push_local(
        &self,
        repo: &SyncRepo,
        ask: Option<&Settings>,
    ) -> Result<usize> {
        // Workflows whose document could not take local edits (it did not
        // read) are pushed again, even if step 0 now merges it.
        let pending = self.push_pending()?;
        self.merge_unmerged(repo, ask).await?;
        Ok(self.push_changed(repo, &pending, ask).await?.workflows)
    }

    /// Step 0, over every document this device syncs: merges what a
    /// session received but stopped before merging.
    pub(super) async fn merge_unmerged(
        &self,
        repo: &SyncRepo,
        ask: Option<&Settings>,
    ) -> Result<()> {
        // 0. Documents that hold changes the projection does not reflect (a
        //    session that stopped between receiving and merging): merge them
        //    first, or step 1 would take the projection's older values for
        //    local edits and write them back over the remote ones.
        let mut unmerged = Vec::new();
        for known in self.known_docs()? {
            let id = known.doc_id.clone();
            let Some(Some(handle)) = repo.pass_over(&id, find(repo, &id).await)? else {
                continue;
            };
            if repo
                .pass_over(&id, heads_of(&handle))?
                .is_some_and(|heads| heads != known.heads)
            {
                unmerged.push((known, handle));
            }
        }
        let since: Vec<(&DocHandle, Vec<ChangeHash>)> = unmerged
            .iter()
            .map(|(known, h)| (h, parse_heads(&known.heads)))
            .collect();
        let uploads = self.uploads_if(ask, &since).await;
        for (known, handle) in &unmerged {
            let considered = self
                .consider_workflow(repo, &known.key, handle, Some(known), &uploads)
                .await;
            repo.pass_over(handle.document_id(), considered)?;
        }
        Ok(())
    }

    /// Who brought the changes of `docs` since their heads, when there is
    /// a server to ask.
    async fn uploads_if(
        &self,
        ask: Option<&Settings>,
        docs: &[(&DocHandle, Vec<ChangeHash>)],
    ) -> Uploads {
        match ask {
            Some(s) if !docs.is_empty() => self.sync().uploads_since(s, docs).await,
            _ => Uploads::default(),
        }
    }

    /// Step 1, over the workflows with local changes (and `pending`, those
    /// a document could not take before) only: local changes onto this
    /// device's documents, and its runs into its logs. Returns once what
    /// it wrote is on this device's disk, and records heads only then.
    pub(super) async fn push_changed(
        &self,
        repo: &SyncRepo,
        pending: &[String],
        mut ask: Option<&Settings>,
    ) -> Result<Pushed> {
        // 1. Local changes onto this device's documents, before any remote
        //    change can arrive. Only the changed workflows' documents are
        //    looked up: a watch round costs what changed, not every workflow.
        let mut out = Pushed::default();
        let workflows = self.workflows_to_push(pending)?;
        // Documents written, with the heads to record once they are stored
        // and whether the workflow was pending.
        let mut written: Vec<(&str, DocHandle, Option<Vec<String>>)> = Vec::new();
        let mut done_pending: Vec<&str> = Vec::new();
        for (wf, deleted) in &workflows {
            let (handle, mut known) = match self.known_doc(&wf.id)? {
                Some(known) => {
                    match repo.pass_over(&known.doc_id, find(repo, &known.doc_id).await)? {
                        Some(Some(h)) => (h, known),
                        // Not loaded here (this device's copy lacks it and no
                        // server has given it yet, or the sync engine failed on
                        // it): the edit waits for a round that can, instead of
                        // being passed over with the events it came from.
                        None | Some(None) => {
                            if !pending.contains(&wf.id) {
                                self.set_push_pending(&wf.id, true)?;
                            }
                            continue;
                        }
                    }
                }
                None => {
                    let h = self.create_doc(repo, wf, *deleted).await?;
                    // Created documents are stored before `create` returns;
                    // this says whether that write failed.
                    repo.stored(&h).await?;
                    let heads = heads_of(&h)?;
                    self.save_doc(&wf.id, &h, &heads)?;
                    out.new_docs.push(KnownDoc {
                        key: wf.id.clone(),
                        doc_id: h.document_id().clone(),
                        heads,
                    });
                    out.workflows += 1;
                    continue;
                }
            };
            let mut tries = 0;
            // The projection, read again after a merge here.
            let mut reread: Option<(flowkeep_core::workflow::Workflow, bool)> = None;
            let pushed = loop {
                let since = parse_heads(&known.heads);
                let merge_first = tries < PUSH_TRIES;
                let (wf, deleted) = reread.as_ref().map_or((wf, *deleted), |(w, d)| (w, *d));
                let pushed = self.push_into(&handle, &since, wf, deleted, merge_first);
                match repo.pass_over(handle.document_id(), pushed)? {
                    Some(Push::Unmerged) => {}
                    // The engine failed on it: as one that did not read.
                    None => break Push::Unreadable,
                    Some(pushed) => break pushed,
                }
                // Offline (step 0 merged what was there) or mid-watch (a
                // change arrived since the round's merges): merged here.
                let uploads = self.uploads_if(ask, &[(&handle, since)]).await;
                // A server that did not answer is not asked again (and
                // waited for) for every other document of this push.
                if uploads.unanswered() {
                    ask = None;
                }
                let considered = self
                    .consider_workflow(repo, &wf.id, &handle, Some(&known), &uploads)
                    .await;
                if repo.pass_over(handle.document_id(), considered)?.is_none() {
                    break Push::Unreadable;
                }
                tries += 1;
                match self.known_doc(&wf.id)? {
                    Some(k) if k.heads != known.heads => known = k,
                    // Nothing merged (the document was rejected): push as is.
                    _ => tries = PUSH_TRIES,
                }
                reread = self
                    .read(|c| Ok(queries::workflows::load(c, &wf.id)?))?
                    .map(|l| (l.workflow, l.deleted));
            };
            out.behind += usize::from(matches!(pushed, Push::Behind));
            match pushed {
                Push::Sent(heads) => {
                    out.workflows += 1;
                    if pending.contains(&wf.id) {
                        done_pending.push(&wf.id);
                    }
                    written.push((&wf.id, handle, heads));
                }
                Push::Nothing if pending.contains(&wf.id) => done_pending.push(&wf.id),
                Push::Nothing => {}
                Push::Unreadable | Push::Behind if !pending.contains(&wf.id) => {
                    self.set_push_pending(&wf.id, true)?
                }
                Push::Unreadable | Push::Unmerged | Push::Behind => {}
            }
        }

        // 1b. Runs recorded here since the last sync, into this device's
        //     execution-log documents.
        let mut logs_written: Vec<(DocHandle, Option<ChangeHash>, Vec<flowkeep_core::run::Run>)> =
            Vec::new();
        let mut runs_sent: Vec<String> = Vec::new();
        for (key, runs) in self.local_runs_to_send()? {
            let handle = match self.known_log(&key)? {
                Some(known) => {
                    match repo.pass_over(&known.doc_id, find(repo, &known.doc_id).await)? {
                        Some(Some(h)) => h,
                        // Not loaded here (as for a workflow above): its runs
                        // wait for a push that can, instead of being passed
                        // over with the events they came from.
                        None | Some(None) => {
                            self.set_runs_pending(runs.iter().map(|r| r.id.as_str()), true)?;
                            continue;
                        }
                    }
                }
                None => {
                    let mut d = Automerge::new();
                    d.transact::<_, _, String>(|tx| execlog::init(tx, &key))
                        .map_err(|f| Error::Corrupt(f.error))?;
                    let h = repo
                        .create(d)
                        .await
                        .map_err(|_| Error::Unavailable("the sync engine stopped".into()))?;
                    repo.stored(&h).await?;
                    self.save_log(&key, h.document_id(), &[])?;
                    out.new_logs.push(KnownDoc {
                        key: key.clone(),
                        doc_id: h.document_id().clone(),
                        heads: vec![],
                    });
                    h
                }
            };
            match repo.pass_over(handle.document_id(), self.put_runs(&handle, &runs))? {
                Some(hash) => logs_written.push((handle, hash, runs)),
                None => self.set_runs_pending(runs.iter().map(|r| r.id.as_str()), true)?,
            }
        }

        // What was written is on disk before anything says it was pushed:
        // the heads recorded here, and the log's sequence number the caller
        // marks as synced (a run not stored would never be sent). A
        // document the engine failed on meanwhile is pushed again later.
        let stored = repo
            .all_stored(
                written
                    .iter()
                    .map(|(_, h, _)| h)
                    .chain(logs_written.iter().map(|(h, _, _)| h)),
            )
            .await?;
        let (stored_wf, stored_logs) = stored.split_at(written.len());
        for ((handle, hash, runs), stored) in logs_written.into_iter().zip(stored_logs) {
            if !stored {
                self.set_runs_pending(runs.iter().map(|r| r.id.as_str()), true)?;
                continue;
            }
            if let Some(hash) = hash {
                self.forget_pushes(handle.document_id(), &[hash])?;
            }
            runs_sent.extend(runs.into_iter().map(|r| r.id));
        }
        for ((wf_id, handle, heads), stored) in written.iter().zip(stored_wf) {
            if !stored {
                done_pending.retain(|id| id != wf_id);
                if !pending.iter().any(|id| id == *wf_id) {
                    self.set_push_pending(wf_id, true)?;
                }
                continue;
            }
            if let Some(heads) = heads {
                self.save_doc(wf_id, handle, heads)?;
            }
        }
        for wf_id in done_pending {
            self.set_push_pending(wf_id, false)?;
        }
        self.set_runs_pending(runs_sent.iter().map(String::as_str), false)?;
        Ok(out)
    }

    /// Runs into one of this device's logs, the change noted like a
    /// workflow push (`sync_pushed`) until it is known to be on disk: one
    /// a crash keeps off this disk after it was sent comes back concurrent
    /// with what is written next (`mend_own_log`).
    pub(super) fn put_runs(
        &self,
        handle: &DocHandle,
        runs: &[flowkeep_core::run::Run],
    ) -> Result<Option<ChangeHash>> {
        let put = |tx: &mut automerge::transaction::Transaction<'_>| {
            runs.iter().try_for_each(|run| execlog::put(tx, run))
        };
        let note = |hash: &ChangeHash| self.note_pushed(handle.document_id(), hash);
        with_doc(handle, |d| {
            commit_noted(d, None, CommitOptions::default(), put, note)
        })?
    }

    /// One of this device's logs, settled with the server while it held
    /// changes not known to be on this disk (a crash, a full disk): a run
    /// whose record came back concurrent with the one written since is
    /// written again on top, from this device's own record, so every device
    /// ends with it rather than with whichever won. Then nothing is left to
    /// come back. Returns whether it wrote.
    pub(super) async fn mend_own_log(&self, repo: &SyncRepo, handle: &DocHandle) -> Result<bool> {
        let noted: Vec<ChangeHash> = self.pushed(handle.document_id())?.into_iter().collect();
        if noted.is_empty() {
            return Ok(false);
        }
        let contested = with_doc(handle, |d| execlog::contested(d))?;
        let runs = self.read(|c| {
            let mut out = Vec::new();
            for id in &contested {
                match queries::runs::get(c, id) {
                    Ok(run) if run.device_id == self.device_id() => out.push(run),
                    Ok(_) | Err(flowkeep_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(out)
        })?;
        if !runs.is_empty() {
            tracing::debug!(document = %handle.document_id(), runs = runs.len(), "run records written again over concurrent ones");
            let hash = self.put_runs(handle, &runs)?;
            repo.stored(handle).await?;
            self.forget_pushes(handle.document_id(), hash.as_slice())?;
        }
        self.forget_pushes(handle.document_id(), &noted)?;
        Ok(!runs.is_empty())
    }

    /// Writes what the projection changed since the document state it last
    /// reflected (`since`) over the document as it is now (which may
    /// already hold changes from elsewhere).
    pub(super) fn push_into(
        &self,
        handle: &DocHandle,
        since: &[ChangeHash],
        wf: &flowkeep_core::workflow::Workflow,
        deleted: bool,
        merge_first: bool,
    ) -> Result<Push> {
        let message = self.commit_message();
        let noted = self.pushed(handle.document_id())?;
        with_doc(handle, |d| {
            // A push of this device's that this copy lacks may be on the
            // server: written before it comes back, this edit would be
            // concurrent with it, not after it (`Push::Behind`).
            if !missing_pushes(d, &noted).is_empty() {
                return Ok(Push::Behind);
            }
            // The heads may move only if the document holds nothing
            // unmerged (checked under the document's lock): then projection
            // and document agree again, and the device never merges its own
            // push back over a newer local edit. Unless told to write
            // anyway, a push waits for a merge so that they can.
            let heads = sorted_heads(d);
            let nothing_unmerged = heads == sorted_hex(since);
            if !nothing_unmerged && merge_first {
                return Ok(Push::Unmerged);
            }
            // Written anyway, it is written as made at the recorded heads
            // (past this device's own pushes): concurrent with what is not
            // merged yet, where it was made, and on top of the heads, where
            // the next merge knows it as this device's. Written over the
            // unmerged changes, it would read as another device's, and the
            // next local edit, merged against it, could lose to it. Except
            // over a document rejected as it is (another client broke it,
            // nothing of it merges): written on top is how an edit here
            // repairs it. And over a copy that lacks the recorded heads (its
            // storage lost or restored apart from the database), where
            // there is nothing to write it at.
            // Looked at only then: a push with nothing unmerged (nearly
            // every one) reads neither.
            let at = if nothing_unmerged {
                None
            } else {
                let scope = handle.document_id().to_string();
                let repairs = self.remembered(&scope)?.is_some_and(|r| r.heads == heads);
                let has_since = !since.is_empty()
                    && since.iter().all(|h| d.get_change_meta_by_hash(h).is_some());
                (!repairs && has_since).then(|| past_own_pushes(d, since, &noted).0)
            };
            // A document another client broke takes no local changes until
            // it reads again; they stay pending here.
            let Ok(now) = doc::read(d) else {
                return Ok(Push::Unreadable);
            };
            let base = base_at(d, since).unwrap_or_else(|| now.clone());
            let mut changes = workflow::unsent(&base.spec, &wf.spec, &now.spec);
            if base.deleted != deleted && now.deleted != deleted {
                changes.push(FieldChange {
                    field: "deleted".into(),
                    old: now.deleted.into(),
                    new: deleted.into(),
                });
            }
            if changes.is_empty() {
                return Ok(Push::Nothing);
            }
            let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
            let opts = CommitOptions::default()
                .with_message(format!("{message} {}", fields.join(",")))
                .with_time(chrono::Utc::now().timestamp());
            // Noted before samod can send or write it: a crash before the
            // heads are recorded leaves a change the next merge knows as
            // this device's (`merge.rs`).
            let note = |hash: &ChangeHash| self.note_pushed(handle.document_id(), hash);
            commit_noted(d, at.as_deref(), opts, |tx| doc::apply(tx, &changes), note)?;
            Ok(Push::Sent(nothing_unmerged.then(|| sorted_heads(d))))
        })?
    }

    /// Workflows with local changes since the last sync, workflows that
    /// have no document yet, and `also`.
    pub(super) fn workflows_to_push(
        &self,
        also: &[String],
    ) -> Result<Vec<(flowkeep_core::workflow::Workflow, bool)>> {
        let synced: i64 = self
            .meta(META_SEQ)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        self.read(|c| {
            let ids: Vec<String> = c
                .prepare(
                    "SELECT id FROM workflows WHERE id NOT IN (SELECT workflow_id FROM sync_docs)
                     UNION
                     SELECT DISTINCT stream_id FROM events WHERE seq > ?1 AND origin = 'local'
                     AND kind IN ('workflow.created', 'workflow.updated', 'config.updated', 'workflow.deleted', 'workflow.restored')",
                )?
                .query_map([synced], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let ids: std::collections::BTreeSet<String> =
                ids.into_iter().chain(also.iter().cloned()).collect();
            let mut out = Vec::new();
            for id in ids {
                if let Some(l) = queries::workflows::load(c, &id)? {
                    out.push((l.workflow, l.deleted));
                }
            }
            Ok(out)
        })
    }

    /// Workflows with local edits their document could not take yet.
    pub(super) fn push_pending(&self) -> Result<Vec<String>> {
        self.read(|c| meta_flags(c, META_PUSH_PENDING))
    }

    pub(super) fn set_push_pending(&self, workflow_id: &str, pending: bool) -> Result<()> {
        self.set_meta_flags(META_PUSH_PENDING, [workflow_id], pending)
    }

    pub(super) async fn create_doc(
        &self,
        repo: &Repo,
        wf: &flowkeep_core::workflow::Workflow,
        deleted: bool,
    ) -> Result<DocHandle> {
        let mut d = Automerge::new();
        let opts = CommitOptions::default()
            .with_message(format!("{} created", self.commit_message()))
            .with_time(chrono::Utc::now().timestamp());
        d.transact_with::<_, _, String, _>(
            |_| opts,
            |tx| doc::init(tx, &wf.id, wf.created_at, deleted, &wf.spec),
        )
        .map_err(|f| Error::Corrupt(f.error))?;
        repo.create(d)
            .await
            .map_err(|_| Error::Unavailable("the sync engine stopped".into()))
    }

    pub(super) fn commit_message(&self) -> String {
        format!("flowkeep:{}:{}:", self.device_id(), self.actor())
    }

    /// Marks runs as waiting for their log document, or no longer.
    pub(super) fn set_runs_pending<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
        pending: bool,
    ) -> Result<()> {
        self.set_meta_flags(META_RUNS_PENDING, ids, pending)
    }

    /// This device's runs touched since the last sync, and those still
    /// waiting for their log document, grouped by log key. A waiting run
    /// deleted meanwhile waits no more.
    pub(super) fn local_runs_to_send(&self) -> Result<Vec<(String, Vec<flowkeep_core::run::Run>)>> {
        let synced: i64 = self
            .meta(META_SEQ)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let own = self.device_id().to_owned();
        self.read(|c| {
            let mut ids: std::collections::BTreeSet<String> = c
                .prepare(
                    "SELECT DISTINCT stream_id FROM events WHERE seq > ?1 AND origin = 'local'
                     AND kind IN ('execution.started', 'execution.finished', 'execution.recorded')",
                )?
                .query_map([synced], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let pending = meta_flags(c, META_RUNS_PENDING)?;
            ids.extend(pending.iter().cloned());
            let mut groups: std::collections::BTreeMap<String, Vec<_>> = Default::default();
            let mut gone = Vec::new();
            for id in ids {
                match queries::runs::get(c, &id) {
                    Ok(e) if e.device_id == own => {
                        groups
                            .entry(execlog::log_key(&e.workflow_id, &own, e.started_at))
                            .or_default()
                            .push(e);
                    }
                    Ok(_) => {}
                    Err(flowkeep_store::Error::NotFound { .. }) => {
                        if pending.contains(&id) {
                            gone.push(id);
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok((groups.into_iter().collect(), gone))
        })
        .and_then(|(groups, gone)| {
            if !gone.is_empty() {
                self.set_runs_pending(gone.iter().map(String::as_str), false)?;
            }
            Ok(groups)
        })
    }
}

#[cfg(test)]
// Tests read their documents directly; a failure there is the test's.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use flowkeep_core::commands::UpdateWorkflow;

    fn start_run(svc: &Service, workflow_id: &str) -> flowkeep_core::run::Run {
        svc.runs()
            .start(flowkeep_core::commands::StartRun {
                workflow_id: workflow_id.to_owned(),
                status: None,
                trigger: None,
            })
            .unwrap()
    }

    /// What a round does once its push is stored.
    fn round_done(svc: &Service) {
        let seq = svc.max_seq().unwrap().to_string();
        svc.set_meta(&[(META_SEQ, &seq)]).unwrap();
    }

    /// A run whose log document cannot be loaded when it is to be sent
    /// (this device's copy lost it, no server has given it back yet) waits
    /// and goes with the next push that can, though the events it came
    /// from are marked synced meanwhile (before, it was passed over until
    /// the run changed again).
    #[tokio::test]
    async fn a_run_whose_log_cannot_be_loaded_goes_with_a_later_push() {
        let svc = Service::open_in_memory(Default::default()).unwrap();
        let wf = test_workflow(&svc).id;
        let start = || start_run(&svc, &wf);
        let round_done = || round_done(&svc);
        let repo = SyncRepo::in_memory().await;
        let first = start();
        svc.push_changed(&repo, &[], None).await.unwrap();
        round_done();
        let second = start();

        let without_it = SyncRepo::in_memory().await;
        svc.push_changed(&without_it, &[], None).await.unwrap();
        round_done();
        let waiting = svc.local_runs_to_send().unwrap();
        let ids: Vec<&str> = waiting
            .iter()
            .flat_map(|(_, runs)| runs.iter().map(|r| r.id.as_str()))
            .collect();
        assert_eq!(ids, [second.id.as_str()], "still to send, and only it");

        svc.push_changed(&repo, &[], None).await.unwrap();
        round_done();
        assert!(svc.local_runs_to_send().unwrap().is_empty(), "sent");
        let key = execlog::log_key(&wf, svc.device_id(), second.started_at);
        let log = svc.known_log(&key).unwrap().unwrap();
        let h = find(&repo, &log.doc_id).await.unwrap().unwrap();
        let mut records: Vec<String> = h
            .with_document(|d| execlog::changed_since(d, &[]))
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        records.sort();
        let mut expected = vec![first.id, second.id];
        expected.sort();
        assert_eq!(records, expected);
    }

    /// A run waiting for its log that is deleted meanwhile is not looked
    /// for again at every push.
    #[tokio::test]
    async fn a_waiting_run_deleted_meanwhile_waits_no_more() {
        let svc = Service::open_in_memory(Default::default()).unwrap();
        let wf = test_workflow(&svc).id;
        let start = || start_run(&svc, &wf);
        let round_done = || round_done(&svc);
        start();
        svc.push_changed(&SyncRepo::in_memory().await, &[], None)
            .await
            .unwrap();
        round_done();
        // Its log is not in this repo: the run waits.
        let run = start();
        svc.push_changed(&SyncRepo::in_memory().await, &[], None)
            .await
            .unwrap();
        round_done();
        let waiting = || svc.read(|c| meta_flags(c, META_RUNS_PENDING)).unwrap();
        assert_eq!(waiting(), [run.id.as_str()]);

        svc.runs()
            .delete(flowkeep_core::commands::RunId { id: run.id })
            .unwrap();
        assert!(svc.local_runs_to_send().unwrap().is_empty());
        assert!(waiting().is_empty(), "{:?}", waiting());
    }

    /// A workflow whose document is in a repo in memory, heads recorded.
    struct Synced {
        svc: Service,
        wf: String,
        repo: SyncRepo,
        handle: DocHandle,
        since: Vec<ChangeHash>,
    }

    impl Synced {
        async fn new() -> Synced {
            let svc = Service::open_in_memory(Default::default()).unwrap();
            let wf = test_workflow(&svc).id;
            let repo = SyncRepo::in_memory().await;
            svc.push_changed(&repo, &[], None).await.unwrap();
            let known = svc.known_doc(&wf).unwrap().unwrap();
            let handle = find(&repo, &known.doc_id).await.unwrap().unwrap();
            let since = parse_heads(&known.heads);
            Synced {
                svc,
                wf,
                repo,
                handle,
                since,
            }
        }

        /// Another device's change, in this copy and not merged yet.
        fn theirs(&self, field: &str, old: &str, new: &str) {
            let change = FieldChange {
                field: field.into(),
                old: old.into(),
                new: new.into(),
            };
            self.handle.with_document(|d| {
                let mut other = d.fork();
                other
                    .transact_with::<_, _, String, _>(
                        |_| CommitOptions::default(),
                        |tx| doc::apply(tx, &[change]),
                    )
                    .unwrap();
                d.merge(&mut other).unwrap();
            });
        }

        fn describe(&self, text: &str) {
            let update = UpdateWorkflow {
                id: self.wf.clone(),
                description: Some(text.into()),
                ..Default::default()
            };
            self.svc.workflows().update(update).unwrap();
        }

        fn here(&self) -> WorkflowSpec {
            let loaded = self
                .svc
                .read(|c| Ok(queries::workflows::load(c, &self.wf)?));
            loaded.unwrap().unwrap().workflow.spec
        }

        fn there(&self) -> doc::DocState {
            self.handle.with_document(|d| doc::read(d).unwrap())
        }

        /// The local edits written anyway (`merge_first` false), as step 4b
        /// or a push past `PUSH_TRIES` does: the change it made.
        fn push_anyway(&self) -> ChangeHash {
            let before = self.svc.pushed(self.handle.document_id()).unwrap();
            let l = self
                .svc
                .read(|c| Ok(queries::workflows::load(c, &self.wf)?))
                .unwrap()
                .unwrap();
            let pushed =
                self.svc
                    .push_into(&self.handle, &self.since, &l.workflow, l.deleted, false);
            assert!(matches!(pushed.unwrap(), Push::Sent(None)));
            let after = self.svc.pushed(self.handle.document_id()).unwrap();
            let mut new = after.difference(&before);
            *new.next().expect("the push is noted")
        }

        fn deps(&self, change: &ChangeHash) -> Vec<String> {
            let deps = self
                .handle
                .with_document(|d| d.get_change_meta_by_hash(change).unwrap().deps);
            sorted_hex(&deps)
        }
    }

    /// A push written over a change not merged yet (after `PUSH_TRIES`, or
    /// in a session's step 4b) is still this device's: the edit made after
    /// it follows it, rather than becoming a conflict it can lose to it.
    #[tokio::test]
    async fn an_edit_after_a_push_written_over_unmerged_changes_is_not_lost_to_that_push() {
        let s = Synced::new().await;
        s.theirs("name", "shared", "renamed");

        s.describe("one");
        let forced = s.push_anyway();
        assert_eq!(s.deps(&forced), sorted_hex(&s.since), "made where merged");

        // The next edit goes the usual way: the rename merged, then pushed.
        s.describe("two");
        s.svc.push_changed(&s.repo, &[], None).await.unwrap();
        let here = s.here();
        assert_eq!((&*here.name, &*here.description), ("renamed", "two"));
        let there = s.there();
        assert_eq!(
            (&*there.spec.name, &*there.spec.description),
            ("renamed", "two")
        );
        assert!(there.conflicts.is_empty(), "{:?}", there.conflicts);
    }

    /// Written anyway over another device's change to the same field, the
    /// push is concurrent with it: a conflict with one winner on every
    /// device, the other value kept, as for edits made offline on both.
    /// The next edit here settles it.
    #[tokio::test]
    async fn a_push_written_anyway_over_the_same_field_is_a_conflict_the_next_edit_settles() {
        let s = Synced::new().await;
        s.theirs("description", "base", "theirs");

        s.describe("one");
        s.push_anyway();
        let there = s.there();
        assert_eq!(there.conflicts.len(), 1, "{:?}", there.conflicts);
        let mut values = there.conflicts[0].values.clone();
        values.sort_by_key(|v| v.to_string());
        assert_eq!(
            (there.conflicts[0].field.as_str(), values),
            ("description", vec!["one".into(), "theirs".into()])
        );

        s.svc.push_changed(&s.repo, &[], None).await.unwrap();
        assert_eq!(s.here().description, there.spec.description, "the winner");
        s.describe("two");
        s.svc.push_changed(&s.repo, &[], None).await.unwrap();
        assert_eq!(s.here().description, "two");
        let there = s.there();
        assert_eq!(there.spec.description, "two");
        assert!(there.conflicts.is_empty(), "{:?}", there.conflicts);
    }

    /// A document rejected as it is (another client broke it) takes the
    /// push on top: that is how an edit here repairs it.
    #[tokio::test]
    async fn a_push_written_anyway_over_a_rejected_document_goes_on_top_to_repair_it() {
        let s = Synced::new().await;
        s.theirs("name", "shared", &"n".repeat(201));
        let rejected = Rejected {
            heads: s.handle.with_document(|d| sorted_heads(d)),
            reason: "name: must be 1 to 200 characters".into(),
        };
        let key = format!("{META_REJECTED}{}", s.handle.document_id());
        let json = serde_json::to_string(&rejected).unwrap();
        s.svc.set_meta(&[(&key, &json)]).unwrap();

        s.describe("one");
        let repair = s.push_anyway();
        let after = s.handle.with_document(|d| d.get_heads());
        assert_eq!(after, vec![repair], "on top of the rejected heads");
    }

    /// A copy without the recorded heads (its storage lost or restored
    /// apart from the database) has nothing to write the push at: it goes
    /// on top rather than failing.
    #[tokio::test]
    async fn a_copy_without_the_recorded_heads_takes_a_push_written_anyway_on_top() {
        let mut s = Synced::new().await;
        s.since = vec![ChangeHash([7; 32])];
        s.describe("one");
        let pushed = s.push_anyway();
        assert_eq!(s.handle.with_document(|d| d.get_heads()), vec![pushed]);
        assert_eq!(s.there().spec.description, "one");
    }
}
