//! What other devices wrote, checked (`flowkeep_core::remote`) and merged:
//! the root's entries, workflow documents, run records; rejections recorded.

use super::*;

/// How many times a merge gives way to local edits made while it ran
/// before it merges anyway (edits that keep coming must not starve it).
const CONTEST_TRIES: usize = 5;

/// A workflow document's state, to be merged into the projection.
pub(super) struct Merge<'a> {
    pub workflow_id: &'a str,
    pub doc_id: &'a DocumentId,
    pub state: doc::DocState,
    /// The document as this device last merged it.
    pub base: Option<doc::DocState>,
    pub heads: &'a [String],
    pub authors: Vec<RemoteAuthor>,
    /// Pushes of this device's the heads cover, forgotten with them.
    pub done: &'a [ChangeHash],
    /// The projection `write_contested` looked at: if it changed since, the
    /// merge gives way (an edit made meanwhile is written in first).
    pub seen: Option<Seen>,
}

/// A workflow's spec and whether it is deleted, as read at one moment.
pub(super) type Seen = (WorkflowSpec, bool);

impl Service {
    /// The root's lists, checked entry by entry: keys must be workflow ids
    /// or log keys, values document URLs; a workflow or log this device
    /// syncs keeps its document whatever the root says now. Problems are
    /// recorded (once while they last); the entries that pass are returned.
    pub(super) fn check_root(
        &self,
        root: &DocHandle,
        docs: &[KnownDoc],
        logs: &[KnownDoc],
    ) -> Result<Listed> {
        let own = self.device_id().to_owned();
        let (heads, is_root, wf_entries, log_entries) = with_doc(root, |d| {
            (
                sorted_heads(d),
                root::is_root(d),
                root::raw_entries(d, root::List::Workflows),
                root::raw_entries(d, root::List::Logs),
            )
        })?;
        // (memory scope, subject, reason)
        let mut bad: Vec<(String, Option<String>, String)> = Vec::new();
        if !is_root {
            bad.push((
                "root:type".into(),
                None,
                "the workspace document does not say it is one (type)".into(),
            ));
        }
        let mut out = Listed::default();
        match wf_entries {
            Err(reason) => bad.push(("root:workflows".into(), None, reason)),
            Ok(entries) => {
                for (key, url) in entries {
                    let scope = || format!("root:workflows:{}", short_hash(&key));
                    if remote::parse_id(&key).is_none() {
                        let reason = format!("workflow entry {}: not a UUID", remote::quote(&key));
                        bad.push((scope(), None, reason));
                        continue;
                    }
                    let tracked = docs.iter().find(|k| k.key == key);
                    match (entry_doc(url), tracked) {
                        (Ok(doc), Some(t)) if doc != t.doc_id => {
                            let reason = format!("workflow {key} is listed with document {doc}, not the one this device syncs it in ({}), which is kept", t.doc_id);
                            bad.push((scope(), Some(key.clone()), reason));
                            out.workflows.push((key, t.doc_id.clone()));
                        }
                        (Ok(doc), _) => out.workflows.push((key, doc)),
                        (Err(m), tracked) => {
                            bad.push((scope(), Some(key.clone()), format!("workflow {key}: {m}")));
                            if let Some(t) = tracked {
                                out.workflows.push((key, t.doc_id.clone()));
                            }
                        }
                    }
                }
            }
        }
        match log_entries {
            Err(reason) => bad.push(("root:execution_logs".into(), None, reason)),
            Ok(entries) => {
                for (key, url) in entries {
                    let scope = || format!("root:execution_logs:{}", short_hash(&key));
                    let parsed = match LogKey::parse(&key) {
                        Ok(k) => k,
                        Err(reason) => {
                            bad.push((scope(), None, reason));
                            continue;
                        }
                    };
                    let subject = Some(parsed.workflow_id.clone());
                    let tracked = logs.iter().find(|k| k.key == key);
                    match (entry_doc(url), tracked) {
                        (Ok(doc), Some(t)) if doc != t.doc_id => {
                            let reason = format!("log {key} is listed with document {doc}, not the one this device syncs it in ({}), which is kept", t.doc_id);
                            bad.push((scope(), subject, reason));
                            out.logs.push((parsed, t.doc_id.clone()));
                        }
                        (Ok(_), None) if parsed.device_id == own => {
                            let reason = format!("log {key} is under this device's id, and this device did not write it");
                            bad.push((scope(), subject, reason));
                        }
                        (Ok(doc), _) => out.logs.push((parsed, doc)),
                        (Err(m), tracked) => {
                            bad.push((scope(), subject, format!("log {key}: {m}")));
                            if let Some(t) = tracked {
                                out.logs.push((parsed, t.doc_id.clone()));
                            }
                        }
                    }
                }
            }
        }
        // What this device syncs stays synced if another client removed
        // its entry meanwhile (the next session lists it again).
        for k in docs {
            if !out.workflows.iter().any(|(id, _)| id == &k.key) {
                out.workflows.push((k.key.clone(), k.doc_id.clone()));
            }
        }
        for k in logs {
            if let Ok(parsed) = LogKey::parse(&k.key) {
                if !out.logs.iter().any(|(l, _)| l == &parsed) {
                    out.logs.push((parsed, k.doc_id.clone()));
                }
            }
        }
        // What is on record already is not recorded again (nor written).
        // Scopes of root entries start `root:` (document ids have no colon).
        let prefix = format!("{META_REJECTED}root:");
        let remembered: std::collections::HashMap<String, String> = self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT key, value FROM meta WHERE key >= ?1 AND key < ?1 || '~'",
            )?;
            let rows = stmt.query_map([&prefix], |r| Ok((r.get(0)?, r.get::<_, String>(1)?)))?;
            let mut out = std::collections::HashMap::new();
            for row in rows {
                let (key, value) = row?;
                let reason = serde_json::from_str::<Rejected>(&value)
                    .map(|r| r.reason)
                    .unwrap_or_default();
                out.insert(key, reason);
            }
            Ok(out)
        })?;
        let scopes: HashSet<String> = bad
            .iter()
            .map(|(s, _, _)| format!("{META_REJECTED}{s}"))
            .collect();
        let stale: Vec<&String> = remembered.keys().filter(|k| !scopes.contains(*k)).collect();
        bad.retain(|(scope, _, reason)| {
            remembered.get(&format!("{META_REJECTED}{scope}"))
                != Some(&remote::clip(reason, remote::MAX_REASON_CHARS))
        });
        // A root of a million bad entries records a few and how many more,
        // not an event each.
        if bad.len() > MAX_REPORTS {
            let more = bad.len() - MAX_REPORTS;
            bad.truncate(MAX_REPORTS);
            bad.push((
                "root:more".into(),
                None,
                format!("and {more} more entries of the workspace document like these"),
            ));
        }
        if !bad.is_empty() || !stale.is_empty() {
            let document = root.document_id().to_string();
            self.write(|w| {
                for (scope, subject, reason) in bad {
                    let r = Rejection {
                        document: document.clone(),
                        what: "root",
                        subject,
                        device_id: None,
                        reason,
                        heads: heads.clone(),
                    };
                    reject_in(w, &scope, r, false)?;
                }
                // Entries fixed or gone: a new problem there is news again.
                for key in &stale {
                    w.conn.execute("DELETE FROM meta WHERE key = ?1", [key])?;
                }
                Ok(())
            })?;
        }
        Ok(out)
    }

    /// Merges a workflow document's changes since this device last merged
    /// it, if the document passes the checks; otherwise records why not and
    /// keeps the heads last merged, so the changes are merged once the
    /// document is valid again. Returns whether the workflow changed here.
    pub(super) async fn consider_workflow(
        &self,
        repo: &SyncRepo,
        wf_id: &str,
        handle: &DocHandle,
        known: Option<&KnownDoc>,
        uploads: &Uploads,
    ) -> Result<bool> {
        let heads_now = heads_of(handle)?;
        if known.is_some_and(|k| k.heads == heads_now) {
            return Ok(false);
        }
        let scope = handle.document_id().to_string();
        let remembered = self.remembered(&scope)?;
        let since: Vec<ChangeHash> = known.map(|k| parse_heads(&k.heads)).unwrap_or_default();
        let own = self.device_id().to_owned();
        // What this device pushed past the recorded heads is merged already
        // (`past_own_pushes`); only what came after is merged below.
        let pushed = self.pushed(handle.document_id())?;
        let (since, own_only) = with_doc(handle, |d| {
            let (since, only) = past_own_pushes(d, &since, &pushed);
            (since, only.then(|| sorted_heads(d)))
        })?;
        if let Some(heads) = own_only {
            repo.stored(handle).await?;
            self.save_doc(wf_id, handle, &heads)?;
            return Ok(false);
        }
        let message = self.commit_message();
        let checked = with_doc(handle, |d| {
            let mut heads = sorted_heads(d);
            if remembered.as_ref().is_some_and(|r| r.heads == heads) {
                return None;
            }
            let state = doc::checked(d, wf_id);
            // A document of the first layout is rewritten in the current
            // one the first time it is opened here; it says the same.
            if state.is_ok() {
                let opts = CommitOptions::default()
                    .with_message(format!("{message} upgrade"))
                    .with_time(chrono::Utc::now().timestamp());
                if let Ok(done) = d.transact_with(|_| opts, |tx| doc::upgrade(tx)) {
                    if done.result {
                        heads = sorted_heads(d);
                    }
                }
            }
            Some((
                heads,
                state,
                base_at(d, &since),
                authors_since(d, &since, &own, uploads),
            ))
        })?;
        let Some((mut heads, mut state, mut base, mut authors)) = checked else {
            return Ok(false);
        };
        let reread = |d: &mut Automerge| {
            (
                sorted_heads(d),
                doc::checked(d, wf_id),
                base_at(d, &since),
                authors_since(d, &since, &own, uploads),
            )
        };
        let mut tries = 0;
        loop {
            let mut seen = None;
            if let (Ok(theirs), Some(b)) = (&state, &base) {
                let wrote;
                (wrote, seen) = self.write_contested(wf_id, handle, &since, b, theirs)?;
                if wrote {
                    (heads, state, base, authors) = with_doc(handle, reread)?;
                }
            }
            // The heads recorded below are what this device's copy holds
            // from now on (`repo.rs`).
            repo.stored(handle).await?;
            let theirs = match state {
                Ok(theirs) => theirs,
                Err(reason) => {
                    let r = Rejection {
                        document: scope.clone(),
                        what: "workflow",
                        subject: remote::parse_id(wf_id).map(|_| wf_id.to_owned()),
                        device_id: authors
                            .iter()
                            .map(|a| a.device_id.clone())
                            .find(|d| remote::parse_id(d).is_some()),
                        reason,
                        heads,
                    };
                    self.write(|w| reject_in(w, &scope, r, true))?;
                    return Ok(false);
                }
            };
            let done = self.covered_pushes(handle, &heads)?;
            let merge = Merge {
                workflow_id: wf_id,
                doc_id: handle.document_id(),
                state: theirs,
                base,
                heads: &heads,
                authors,
                done: &done,
                seen: seen.filter(|_| tries < CONTEST_TRIES),
            };
            match self.merge_remote(merge)? {
                Some(changed) => return Ok(changed),
                // A local edit made since `write_contested` looked, which
                // this merge would overwrite: into the document first.
                None => tries += 1,
            }
            (heads, state, base, authors) = with_doc(handle, reread)?;
        }
    }

    /// Local edits this merge would overwrite (another process wrote them
    /// after this round's push; see `workflow::unsent_conflicts`) go into
    /// the document first, as made at `since`, so they are concurrent with
    /// what arrived: the field becomes a conflict with the same winner on
    /// every device, and a losing local value stays visible. Returns
    /// whether the document changed, and the projection it looked at.
    fn write_contested(
        &self,
        wf_id: &str,
        handle: &DocHandle,
        since: &[ChangeHash],
        base: &doc::DocState,
        theirs: &doc::DocState,
    ) -> Result<(bool, Option<Seen>)> {
        let Some(here) = self.read(|c| Ok(queries::workflows::load(c, wf_id)?))? else {
            return Ok((false, None));
        };
        let seen = Some((here.workflow.spec.clone(), here.deleted));
        let contested = workflow::unsent_conflicts(
            &base.spec,
            &theirs.spec,
            &here.workflow.spec,
            &theirs.conflicts,
        );
        if contested.is_empty() {
            return Ok((false, seen));
        }
        let message = self.commit_message();
        with_doc(handle, move |d| {
            let mut at_since = d
                .fork_at(since)
                .map_err(|e| Error::Corrupt(e.to_string()))?;
            let fields: Vec<&str> = contested.iter().map(|c| c.field.as_str()).collect();
            let opts = CommitOptions::default()
                .with_message(format!("{message} {}", fields.join(",")))
                .with_time(chrono::Utc::now().timestamp());
            at_since
                .transact_with(|_| opts, |tx| doc::apply(tx, &contested))
                .map_err(|f| Error::Corrupt(f.error))?;
            d.merge(&mut at_since)
                .map_err(|e| Error::Corrupt(e.to_string()))?;
            tracing::debug!(
                workflow = wf_id,
                ?fields,
                "local edits written concurrently before a merge"
            );
            Ok((true, seen))
        })?
    }

    /// Merges the run records another device added or changed in one of
    /// its execution logs since last merged: each record that passes the
    /// checks is merged, each that fails is recorded as rejected, in one
    /// transaction with the log's new heads.
    pub(super) async fn consider_log(
        &self,
        repo: &SyncRepo,
        key: &LogKey,
        handle: &DocHandle,
        known: Option<&KnownDoc>,
        listed_workflows: &HashSet<&str>,
        uploads: &Uploads,
    ) -> Result<()> {
        let heads_now = heads_of(handle)?;
        if known.is_some_and(|k| k.heads == heads_now) {
            return Ok(());
        }
        let key_text = key.to_string();
        let doc_id = handle.document_id().clone();
        let scope = doc_id.to_string();
        let exists = self
            .read(|c| Ok(queries::workflows::load(c, &key.workflow_id)?))?
            .is_some();
        if !exists {
            // A workflow the root lists arrives with its own document (or
            // that document was rejected, and said so): wait for it.
            if listed_workflows.contains(key.workflow_id.as_str()) {
                return Ok(());
            }
            let r = Rejection {
                document: key_text.clone(),
                what: "run",
                subject: Some(key.workflow_id.clone()),
                device_id: Some(key.device_id.clone()),
                reason: format!(
                    "runs of workflow {}, which this workspace does not have",
                    key.workflow_id
                ),
                heads: heads_of(handle)?,
            };
            // Its own scope: the log is looked at again once the workflow
            // exists, whatever its heads.
            self.write(|w| reject_in(w, &format!("{scope}:workflow"), r, false))?;
            return Ok(());
        }
        let remembered = self.remembered(&scope)?;
        let since: Vec<ChangeHash> = known.map(|k| parse_heads(&k.heads)).unwrap_or_default();
        let read = with_doc(handle, |d| {
            let heads = sorted_heads(d);
            if remembered.as_ref().is_some_and(|r| r.heads == heads) {
                return None;
            }
            let runs = execlog::check(d, &key_text).map(|()| {
                execlog::changed_since(d, &since)
                    .into_iter()
                    .map(|(run_key, text)| {
                        let written = execlog::written_in(d, &run_key);
                        (run_key, text, written)
                    })
                    .collect::<Vec<_>>()
            });
            Some((heads, runs))
        })?;
        let Some((heads, runs)) = read else {
            return Ok(());
        };
        repo.stored(handle).await?;
        let runs = match runs {
            Ok(r) => r,
            Err(reason) => {
                let r = Rejection {
                    document: key_text.clone(),
                    what: "run",
                    subject: Some(key.workflow_id.clone()),
                    device_id: Some(key.device_id.clone()),
                    reason,
                    heads,
                };
                self.write(|w| reject_in(w, &scope, r, true))?;
                return Ok(());
            }
        };
        let own = self.device_id().to_owned();
        let mut good = Vec::new();
        let mut bad: Vec<(String, String)> = Vec::new();
        for (run_key, text, written) in runs {
            let origin = RunOrigin {
                log: key,
                key: &run_key,
                this_device: &own,
                now_ms: chrono::Utc::now().timestamp_millis(),
            };
            let checked =
                text.and_then(|t| remote::check_run(&t, origin).map_err(|e| remote::describe(&e)));
            // A device writes only its own logs: a record the server saw
            // another device upload is that device's claim, not a run
            // (without an answer from the server, the record's own checks
            // are all there is).
            let uploaded_by = written
                .and_then(|h| uploads.of(&h))
                .filter(|by| *by != key.device_id);
            match (checked, uploaded_by) {
                (Ok(_), Some(by)) => bad.push((
                    run_key,
                    format!(
                        "written by device {by} (as the sync server saw it), not by device {} whose run log this is",
                        key.device_id
                    ),
                )),
                (Ok(run), None) => good.push(run),
                (Err(reason), _) => bad.push((run_key, reason)),
            }
        }
        self.write(|w| {
            for run in &good {
                if let Err(reason) = merge_run_in(w, run)? {
                    bad.push((run.id.clone(), reason));
                }
            }
            for (i, (run_key, reason)) in bad.iter().enumerate() {
                let (subject, reason) = if i < MAX_REPORTS {
                    match remote::parse_id(run_key) {
                        Some(_) => (Some(run_key.clone()), reason.clone()),
                        None => (None, format!("run {}: {reason}", remote::quote(run_key))),
                    }
                } else {
                    (
                        None,
                        format!("and {} more run records like these", bad.len() - i),
                    )
                };
                let event = Event::RemoteRejected(RemoteRejectedV1 {
                    document: key_text.clone(),
                    what: "run".into(),
                    subject,
                    device_id: Some(key.device_id.clone()),
                    reason: remote::clip(&reason, remote::MAX_REASON_CHARS),
                    heads: heads.clone(),
                });
                w.append(REJECTIONS, Expected::Any, event)?;
                if i >= MAX_REPORTS {
                    break;
                }
            }
            save_log_in(w.conn, &key_text, &doc_id, &heads)?;
            forget_in(w.conn, &format!("{scope}:workflow"))?;
            forget_in(w.conn, &scope)
        })
    }

    /// What was last rejected in `scope`, if anything.
    pub(super) fn remembered(&self, scope: &str) -> Result<Option<Rejected>> {
        Ok(self
            .meta(&format!("{META_REJECTED}{scope}"))?
            .and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// One `remote.merged` event for what the document says beyond this
    /// device's projection. Returns whether anything changed; `None`, with
    /// nothing written, when the projection is no longer what `seen` says.
    pub(super) fn merge_remote(&self, m: Merge<'_>) -> Result<Option<bool>> {
        let Merge {
            workflow_id,
            doc_id,
            state,
            base,
            heads,
            authors,
            done,
            seen,
        } = m;
        // Validated here first, outside the write transaction, so that the
        // projection's validation inside it finds its patterns and schemas
        // compiled (cached).
        let _ = state.spec.config.validate(&Default::default());
        self.write(|w| {
            let existing = queries::workflows::load(w.conn, workflow_id)?;
            // Looked at again in the transaction that writes: a local edit
            // made since `write_contested` read the projection is not
            // overwritten, but sent back to be written in first.
            if let (Some((spec, deleted)), Some(l)) = (&seen, &existing) {
                if l.workflow.spec != *spec || l.deleted != *deleted {
                    return Ok(None);
                }
            }
            let (changes, created_at, deleted, conflicts_changed) = match &existing {
                None => {
                    let mut changes = workflow::diff(&WorkflowSpec::default(), &state.spec);
                    for c in &mut changes {
                        c.old = Value::Null;
                    }
                    (changes, Some(state.created_at), Some(state.deleted), true)
                }
                // What the other devices changed since this device last
                // merged, applied over what this device has now (which may
                // hold local edits not sent yet).
                Some(l) => {
                    let (changes, deleted) = match &base {
                        Some(b) => (
                            workflow::rebase(&b.spec, &state.spec, &l.workflow.spec),
                            (b.deleted != state.deleted && l.deleted != state.deleted)
                                .then_some(state.deleted),
                        ),
                        None => (
                            workflow::diff(&l.workflow.spec, &state.spec),
                            (l.deleted != state.deleted).then_some(state.deleted),
                        ),
                    };
                    (
                        changes,
                        None,
                        deleted,
                        l.workflow.conflicts != state.conflicts,
                    )
                }
            };
            let changed = !changes.is_empty() || deleted.is_some() || conflicts_changed;
            if changed {
                let (actor, device) = match authors.first() {
                    Some(a) => (a.actor.clone(), a.device_id.clone()),
                    None => ("unknown".to_owned(), "unknown".to_owned()),
                };
                let event = Event::RemoteMerged(RemoteMergedV1 {
                    changes,
                    created_at,
                    deleted,
                    authors,
                    heads: heads.to_vec(),
                    conflicts: state.conflicts,
                });
                w.append_remote(workflow_id, event, &actor, &device)?;
            }
            save_doc_in(w.conn, workflow_id, doc_id, heads, done)?;
            forget_in(w.conn, &doc_id.to_string())?;
            Ok(Some(changed))
        })
    }
}

/// Records another device's run here as `remote` events: a new run as
/// started (and finished, if it is), a known running one as finished.
/// `Err` (nothing written) when the id is already another run's here.
pub(super) fn merge_run_in(
    w: &Writer<'_>,
    run: &flowkeep_core::run::Run,
) -> Result<std::result::Result<(), String>> {
    use flowkeep_core::events::{RunFinishedV1, RunStartedV1};
    use flowkeep_core::run::RunStatus;
    let local = match queries::runs::get(w.conn, &run.id) {
        Ok(e) => Some(e),
        Err(flowkeep_store::Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let status_here = match &local {
        Some(e) if e.device_id != run.device_id || e.workflow_id != run.workflow_id => {
            return Ok(Err(format!(
                "id: run {} here is a run of device {} for workflow {}",
                run.id, e.device_id, e.workflow_id
            )));
        }
        Some(e) => e.status,
        None => {
            let started = if run.status.is_terminal() {
                RunStatus::Running
            } else {
                run.status
            };
            let event = Event::RunStarted(RunStartedV1 {
                workflow_id: run.workflow_id.clone(),
                status: started,
                started_at: run.started_at,
                trigger: run.trigger.clone(),
                // Revisions are numbered per device: the other device's
                // number means nothing here. The config hash does.
                workflow_revision: None,
                config_hash: run.config_hash.clone(),
                // The occurrence key is this device's agent's business.
                occurrence: None,
            });
            w.append_remote(&run.id, event, "sync", &run.device_id)?;
            started
        }
    };
    if run.status.is_terminal() && status_here.can_move_to(run.status) {
        let event = Event::RunFinished(RunFinishedV1 {
            status: run.status,
            completed_at: run.completed_at.unwrap_or(run.started_at),
            exit_code: run.exit_code,
            output: run.output.clone(),
            error: run.error.clone(),
        });
        w.append_remote(&run.id, event, "sync", &run.device_id)?;
    }
    Ok(Ok(()))
}

/// Records a rejection in `scope` (a document, or a root entry) unless the
/// same reason is on record for it already; remembers the heads either way.
/// `skip_unchanged`: the scope's heads are checked against before reading
/// it again (documents); root entries are looked at every round.
pub(super) fn reject_in(
    w: &Writer<'_>,
    scope: &str,
    r: Rejection,
    skip_unchanged: bool,
) -> Result<()> {
    let key = format!("{META_REJECTED}{scope}");
    let prior: Option<Rejected> =
        event_log::meta_get(w.conn, &key)?.and_then(|v| serde_json::from_str(&v).ok());
    let reason = remote::clip(&r.reason, remote::MAX_REASON_CHARS);
    if prior.as_ref().is_some_and(|p| p.reason == reason) {
        if !skip_unchanged || prior.as_ref().is_some_and(|p| p.heads == r.heads) {
            return Ok(());
        }
    } else {
        let event = Event::RemoteRejected(RemoteRejectedV1 {
            document: r.document,
            what: r.what.into(),
            subject: r.subject,
            device_id: r.device_id,
            reason: reason.clone(),
            heads: r.heads.clone(),
        });
        w.append(REJECTIONS, Expected::Any, event)?;
    }
    let memory = Rejected {
        heads: r.heads,
        reason,
    };
    w.conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        params![key, serde_json::to_string(&memory)?],
    )?;
    Ok(())
}

/// A scope passed the checks: a later problem there is news again.
pub(super) fn forget_in(c: &rusqlite::Connection, scope: &str) -> Result<()> {
    c.prepare_cached("DELETE FROM meta WHERE key = ?1")?
        .execute([format!("{META_REJECTED}{scope}")])?;
    Ok(())
}

/// The document a root entry names, or what is wrong with the entry.
pub(super) fn entry_doc(
    url: std::result::Result<String, &'static str>,
) -> std::result::Result<DocumentId, String> {
    let url = url.map_err(|kind| format!("holds {kind}, not a document URL"))?;
    AutomergeUrl::from_str(&url)
        .map(|u| u.document_id().clone())
        .map_err(|_| format!("{} is not a document URL", remote::quote(&url)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowkeep_core::commands::{UpdateWorkflow, WorkflowId};

    fn state(wf: &flowkeep_core::workflow::Workflow, description: &str) -> doc::DocState {
        let mut spec = wf.spec.clone();
        spec.description = description.into();
        doc::DocState {
            id: wf.id.clone(),
            spec,
            created_at: wf.created_at,
            deleted: false,
            conflicts: vec![],
        }
    }

    /// Another process's edit can land between the look `write_contested`
    /// takes at the projection and the merge's write: the merge sees it in
    /// the transaction that would overwrite it, and writes nothing.
    #[test]
    fn a_merge_gives_way_to_a_local_edit_made_since_it_looked_and_writes_nothing() {
        let svc = Service::open_in_memory(Default::default()).unwrap();
        let wf = test_workflow(&svc);
        let describe = |text: &str| {
            svc.workflows()
                .update(UpdateWorkflow {
                    id: wf.id.clone(),
                    description: Some(text.into()),
                    ..Default::default()
                })
                .unwrap()
        };
        let description = || {
            let got = svc.workflows().get(WorkflowId { id: wf.id.clone() });
            got.unwrap().spec.description
        };
        let doc_id = DocumentId::try_from(vec![7u8; 16]).unwrap();
        let heads = vec!["00".repeat(32)];
        let merge = |seen| Merge {
            workflow_id: &wf.id,
            doc_id: &doc_id,
            state: state(&wf, "theirs"),
            base: Some(state(&wf, "base")),
            heads: &heads,
            authors: vec![],
            done: &[],
            seen,
        };
        let now = || {
            let got = svc.workflows().get(WorkflowId { id: wf.id.clone() });
            Some((got.unwrap().spec, false))
        };

        // `write_contested` saw "base"; "mine" was written after.
        let seen = now();
        describe("mine");
        assert_eq!(svc.merge_remote(merge(seen)).unwrap(), None);
        assert_eq!(description(), "mine");
        assert!(
            svc.known_doc(&wf.id).unwrap().is_none(),
            "no heads recorded"
        );

        // What it saw is what is there (it wrote "mine" into the document
        // as contested, say; a part that cannot show as a conflict, like a
        // tag set, still differs from both sides): merged at once.
        assert_eq!(svc.merge_remote(merge(now())).unwrap(), Some(true));
        assert_eq!(description(), "theirs");

        // Edits that kept coming: merged anyway, after `CONTEST_TRIES`.
        describe("mine again");
        assert_eq!(svc.merge_remote(merge(None)).unwrap(), Some(true));
        assert_eq!(description(), "theirs");
    }
}
