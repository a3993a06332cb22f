//! Local-first sync of workflows through a sync server.
//!
//! The event log stays the source of truth for the read tables; each
//! workflow's Automerge document is how changes travel. A session:
//! 1. offline, commits local changes (projection vs. document) onto this
//!    device's copy of each document, so they stay concurrent with other
//!    devices' offline edits;
//! 2. connects with the workspace token (a refused token fails at once);
//! 3. syncs the root document, which lists the workspace's workflow
//!    documents, and every document it lists;
//! 4. merges: each document whose heads differ from the heads last
//!    projected becomes one `remote.merged` event with field-level old → new
//!    values and the remote authors, projected like any event. A crash
//!    between 3 and 4 only means the next session merges again.

pub mod dialer;
mod doc;
mod execlog;
mod root;
mod storage;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use automerge::transaction::CommitOptions;
use automerge::{Automerge, ChangeHash};
use flowkeep_core::commands::Input;
use flowkeep_core::events::{Event, RemoteAuthor, RemoteMergedV1};
use flowkeep_core::workflow::{self, FieldChange, WorkflowSpec};
use rusqlite::params;
use samod::{AutomergeUrl, BackoffConfig, DocHandle, DocumentId, PeerId, Repo};
use serde::Serialize;
use serde_json::Value;

use crate::{event_log, queries, Error, Result, Service};

const META_SERVER: &str = "sync.server";
const META_TOKEN: &str = "sync.token";
const META_ROOT: &str = "sync.root";
const META_LAST: &str = "sync.last_sync";
const META_SEQ: &str = "sync.synced_seq";
const JOIN_PREFIX: &str = "flowkeep-join:";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const DOC_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub server: String,
    /// Give this (with the token) to another device: `flowkeep sync join`.
    pub join: String,
    /// Workflows whose local changes were sent.
    pub pushed: usize,
    /// Workflows changed by other devices, merged here.
    pub merged: usize,
    pub documents: usize,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SyncStatus {
    pub configured: bool,
    pub server: Option<String>,
    pub join: Option<String>,
    pub last_sync: Option<i64>,
    /// Local changes to workflows since the last sync.
    pub pending_local_changes: u64,
}

struct Settings {
    server: String,
    token: String,
    root: Option<String>,
}

fn join_string(server: &str, root: &str) -> String {
    format!("{JOIN_PREFIX}{server}#{root}")
}

/// A dialer to the server that sends the workspace token.
fn dial(
    repo: &Repo,
    s: &Settings,
    backoff: BackoffConfig,
) -> Result<samod::DialerHandle<dialer::Refused>> {
    let url = check_server(&s.server)?;
    repo.dial(
        backoff,
        Arc::new(dialer::TokenDialer {
            url,
            token: s.token.clone(),
        }),
    )
    .map_err(|_| Error::Unavailable("the sync engine stopped".into()))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn check_server(server: &str) -> Result<url::Url> {
    match url::Url::parse(server) {
        Ok(u) if matches!(u.scheme(), "ws" | "wss") && u.has_host() => Ok(u),
        _ => Err(Error::invalid(
            "server",
            "format",
            format!("\"{server}\" is not a ws:// or wss:// URL"),
        )),
    }
}

fn check_token(token: &str) -> Result<&str> {
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::invalid(
            "token",
            "required",
            "the workspace token is required",
        ));
    }
    Ok(token)
}

impl Service {
    fn meta(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| event_log::meta_get(c, key))
    }

    fn set_meta(&self, pairs: &[(&str, &str)]) -> Result<()> {
        self.write(|w| {
            for (k, v) in pairs {
                w.conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                    params![k, v],
                )?;
            }
            Ok(())
        })
    }

    fn settings(&self) -> Result<Option<Settings>> {
        let (Some(server), Some(token)) = (self.meta(META_SERVER)?, self.meta(META_TOKEN)?) else {
            return Ok(None);
        };
        Ok(Some(Settings {
            server,
            token,
            root: self.meta(META_ROOT)?,
        }))
    }

    /// Starts a workspace on the server from this device's workflows.
    pub fn sync_init(&self, server: &str, token: &str) -> Result<SyncReport> {
        check_server(server)?;
        let token = check_token(token)?;
        if let Some(s) = self.settings()? {
            if s.root.is_some() {
                return Err(Error::Conflict(format!(
                    "this device already syncs with {}; its join string is in `flowkeep sync status`",
                    s.server
                )));
            }
        }
        let s = Settings {
            server: server.to_owned(),
            token: token.to_owned(),
            root: None,
        };
        self.session(s)
    }

    /// Joins a workspace another device started, and receives everything.
    pub fn sync_join(&self, join: &str, token: &str) -> Result<SyncReport> {
        let bad = || {
            Error::invalid(
                "join",
                "format",
                format!("expected {JOIN_PREFIX}ws://host:port/sync#automerge:..., got \"{join}\""),
            )
        };
        let rest = join.trim().strip_prefix(JOIN_PREFIX).ok_or_else(bad)?;
        let (server, root) = rest.split_once('#').ok_or_else(bad)?;
        check_server(server)?;
        AutomergeUrl::from_str(root).map_err(|_| bad())?;
        let token = check_token(token)?;
        if let Some(s) = self.settings()? {
            if s.root.as_deref().is_some_and(|r| r != root) {
                return Err(Error::Conflict(format!(
                    "this device already syncs another workspace with {}",
                    s.server
                )));
            }
        }
        let s = Settings {
            server: server.to_owned(),
            token: token.to_owned(),
            root: Some(root.to_owned()),
        };
        self.session(s)
    }

    /// Sends local changes, receives the other devices', merges; returns when
    /// every document is in sync with the server.
    pub fn sync_now(&self) -> Result<SyncReport> {
        match self.settings()? {
            Some(s) if s.root.is_some() => self.session(s),
            _ => Err(Error::invalid(
                "sync",
                "not_configured",
                "this device does not sync yet: `flowkeep sync init --server URL --token T` or `flowkeep sync join JOIN --token T`",
            )),
        }
    }

    /// `sync_status` of the command table.
    pub fn get_sync_status(
        &self,
        mut input: flowkeep_core::commands::GetSyncStatus,
    ) -> Result<SyncStatus> {
        input.check()?;
        self.sync_status()
    }

    pub fn sync_status(&self) -> Result<SyncStatus> {
        let s = self.settings()?;
        let synced: i64 = self
            .meta(META_SEQ)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let pending: i64 = self.read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM events WHERE seq > ?1 AND origin = 'local'
                 AND kind IN ('workflow.created', 'workflow.updated', 'config.updated', 'workflow.deleted')",
                [synced],
                |r| r.get(0),
            )?)
        })?;
        Ok(SyncStatus {
            configured: s.as_ref().is_some_and(|s| s.root.is_some()),
            join: s
                .as_ref()
                .and_then(|s| Some(join_string(&s.server, s.root.as_ref()?))),
            server: s.map(|s| s.server),
            last_sync: self.meta(META_LAST)?.and_then(|v| v.parse().ok()),
            pending_local_changes: pending as u64,
        })
    }

    fn session(&self, settings: Settings) -> Result<SyncReport> {
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
        let rt = runtime()?;
        let report = rt.block_on(async {
            let repo = self.open_repo(&db_path).await?;
            let result = self.session_with(&repo, &settings).await;
            repo.stop().await;
            result
        });
        rt.shutdown_timeout(Duration::from_secs(2));
        let report = report?;
        self.mark_synced(&settings, &report.join, seq)?;
        Ok(report)
    }

    /// Keeps this device in sync until `stop` is set: sends local changes and
    /// merges other devices' every `interval`, over one connection that is
    /// re-established with backoff when the server goes away. A refused
    /// token ends it with an error. `on_round` sees rounds that moved data.
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
            let repo = self.open_repo(&db_path).await?;
            let backoff = BackoffConfig {
                initial_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(10),
                max_retries: None,
            };
            let dialer = dial(&repo, &settings, backoff)?;
            // A refused token is final; an unreachable server is waited for.
            if let Ok(Err(samod::DialerFailed::PermanentFailure(e))) =
                tokio::time::timeout(CONNECT_TIMEOUT, dialer.established()).await
            {
                repo.stop().await;
                return Err(Error::Unavailable(e.to_string()));
            }
            let mut root: Option<DocHandle> = None;
            while !stop.load(Ordering::SeqCst) {
                if let Some(conn) = dialer.connection_id() {
                    let seq = self.max_seq()?;
                    let round = async {
                        let pushed = self.push_local(&repo).await?;
                        if root.is_none() {
                            root = Some(self.open_root(&repo, &settings).await?);
                        }
                        let root = root.as_ref().expect("opened above");
                        let (merged, documents) = self.exchange(&repo, root, conn).await?;
                        Ok::<_, Error>(SyncReport {
                            server: settings.server.clone(),
                            join: join_string(&settings.server, &root.url().to_string()),
                            pushed,
                            merged,
                            documents,
                        })
                    };
                    match round.await {
                        Ok(report) => {
                            self.mark_synced(&settings, &report.join, seq)?;
                            if report.pushed + report.merged > 0 {
                                on_round(&report);
                            }
                        }
                        // The connection went away mid-round: the next round
                        // (after reconnecting) picks everything up again.
                        Err(Error::Unavailable(_)) => {}
                        Err(e) => {
                            repo.stop().await;
                            return Err(e);
                        }
                    }
                }
                let until = tokio::time::Instant::now() + interval;
                while tokio::time::Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            repo.stop().await;
            Ok(())
        });
        rt.shutdown_timeout(Duration::from_secs(2));
        result
    }

    fn max_seq(&self) -> Result<i64> {
        self.read(
            |c| Ok(c.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))?),
        )
    }

    async fn open_repo(&self, db_path: &std::path::Path) -> Result<Repo> {
        let storage = storage::DeviceStorage::open(db_path)?;
        Ok(Repo::build_tokio()
            .with_storage(storage)
            .with_peer_id(PeerId::from(format!("flowkeep/{}", self.device_id())))
            .load()
            .await)
    }

    /// Records a successful sync: settings, time, and the local events sent.
    fn mark_synced(&self, settings: &Settings, join: &str, seq: i64) -> Result<()> {
        let now = chrono::Utc::now().timestamp_millis().to_string();
        let root = join.rsplit('#').next().unwrap_or_default().to_owned();
        self.set_meta(&[
            (META_SERVER, &settings.server),
            (META_TOKEN, &settings.token),
            (META_ROOT, &root),
            (META_LAST, &now),
            (META_SEQ, &seq.to_string()),
        ])
    }

    async fn session_with(&self, repo: &Repo, s: &Settings) -> Result<SyncReport> {
        let pushed = self.push_local(repo).await?;
        let backoff = BackoffConfig {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_retries: Some(3),
        };
        let (_dialer, conn) = self.connect(repo, s, backoff).await?;
        let root = self.open_root(repo, s).await?;
        let (merged, documents) = self.exchange(repo, &root, conn).await?;
        Ok(SyncReport {
            server: s.server.clone(),
            join: join_string(&s.server, &root.url().to_string()),
            pushed,
            merged,
            documents,
        })
    }

    /// Steps 0 and 1: pending merges first, then local changes onto this
    /// device's documents. Returns how many workflows had changes to send.
    async fn push_local(&self, repo: &Repo) -> Result<usize> {
        // 0. Documents that hold changes the projection does not reflect (a
        //    session that stopped between receiving and merging): merge them
        //    first, or step 1 would take the projection's older values for
        //    local edits and write them back over the remote ones.
        for known in self.known_docs()? {
            let Some(handle) = find(repo, &known.doc_id).await? else {
                continue;
            };
            let heads = heads_of(&handle);
            if heads == known.heads {
                continue;
            }
            let since = parse_heads(&known.heads);
            let own = self.device_id().to_owned();
            let (state, base, authors) = handle.with_document(|d| {
                (
                    doc::read(d),
                    base_at(d, &since),
                    authors_since(d, &since, &own),
                )
            });
            if let Ok(state) = state {
                self.merge_remote(
                    &known.key,
                    handle.document_id(),
                    state,
                    base,
                    &heads,
                    authors,
                )?;
            }
        }

        // 1. Local changes onto this device's documents, before any remote
        //    change can arrive.
        let mut docs = self.known_docs()?;
        let mut pushed = 0;
        let workflows = self.workflows_to_push()?;
        for (wf, deleted) in &workflows {
            let (handle, since) = match docs.iter().find(|d| d.key == wf.id) {
                Some(known) => match find(repo, &known.doc_id).await? {
                    Some(h) => (h, parse_heads(&known.heads)),
                    None => continue,
                },
                None => {
                    let h = self.create_doc(repo, wf, *deleted).await?;
                    let heads = heads_of(&h);
                    self.save_doc(&wf.id, h.document_id(), &heads)?;
                    docs.push(KnownDoc {
                        key: wf.id.clone(),
                        doc_id: h.document_id().clone(),
                        heads,
                    });
                    pushed += 1;
                    continue;
                }
            };
            let message = self.commit_message();
            // Returns whether something was sent, and the new heads when the
            // document held nothing unmerged before this push (checked under
            // the document's lock): then projection and document agree again
            // and the heads may move, so the device never merges its own
            // push back over a newer local edit.
            let pushed_heads =
                handle.with_document(|d| -> Result<(bool, Option<Vec<String>>)> {
                    // Local changes are what the projection changed since the
                    // document state it last reflected, written over the document
                    // as it is now (which may already hold changes from elsewhere).
                    let now = doc::read(d).map_err(Error::Corrupt)?;
                    let base = base_at(d, &since).unwrap_or_else(|| now.clone());
                    let mut changes = workflow::rebase(&base.spec, &wf.spec, &now.spec);
                    if base.deleted != *deleted && now.deleted != *deleted {
                        changes.push(FieldChange {
                            field: "deleted".into(),
                            old: now.deleted.into(),
                            new: (*deleted).into(),
                        });
                    }
                    if changes.is_empty() {
                        return Ok((false, None));
                    }
                    let nothing_unmerged = sorted_heads(d) == sorted_hex(&since);
                    let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
                    let opts = CommitOptions::default()
                        .with_message(format!("{message} {}", fields.join(",")))
                        .with_time(chrono::Utc::now().timestamp());
                    d.transact_with(|_| opts, |tx| doc::apply(tx, &changes))
                        .map_err(|f| Error::Corrupt(f.error))?;
                    Ok((true, nothing_unmerged.then(|| sorted_heads(d))))
                })?;
            match pushed_heads {
                (true, Some(heads)) => {
                    pushed += 1;
                    self.save_doc(&wf.id, handle.document_id(), &heads)?;
                }
                (true, None) => pushed += 1,
                (false, _) => {}
            }
        }

        // 1b. Runs recorded here since the last sync, into this device's
        //     execution-log documents.
        let mut logs = self.known_logs()?;
        for (key, runs) in self.local_runs_to_send()? {
            let handle = match logs.iter().find(|l| l.key == key) {
                Some(known) => match find(repo, &known.doc_id).await? {
                    Some(h) => h,
                    None => continue,
                },
                None => {
                    let mut d = Automerge::new();
                    d.transact::<_, _, String>(|tx| execlog::init(tx, &key))
                        .map_err(|f| Error::Corrupt(f.error))?;
                    let h = repo
                        .create(d)
                        .await
                        .map_err(|_| Error::Unavailable("the sync engine stopped".into()))?;
                    self.save_log(&key, h.document_id(), &[])?;
                    logs.push(KnownDoc {
                        key: key.clone(),
                        doc_id: h.document_id().clone(),
                        heads: vec![],
                    });
                    h
                }
            };
            handle.with_document(|d| {
                d.transact::<_, _, String>(|tx| {
                    for run in &runs {
                        execlog::put(tx, run)?;
                    }
                    Ok(())
                })
                .map_err(|f| Error::Corrupt(f.error))
            })?;
        }

        Ok(pushed)
    }

    /// Dials the server; fails fast on a refused token, and after a few
    /// tries if it cannot be reached.
    async fn connect(
        &self,
        repo: &Repo,
        s: &Settings,
        backoff: BackoffConfig,
    ) -> Result<(samod::DialerHandle<dialer::Refused>, samod::ConnectionId)> {
        // 2. Connect.
        let dialer = dial(repo, s, backoff)?;
        match tokio::time::timeout(CONNECT_TIMEOUT, dialer.established()).await {
            Ok(Ok(_)) => {}
            Ok(Err(samod::DialerFailed::PermanentFailure(e))) => {
                return Err(Error::Unavailable(e.to_string()))
            }
            Ok(Err(_)) | Err(_) => {
                return Err(Error::Unavailable(format!(
                    "cannot reach the sync server at {}",
                    s.server
                )));
            }
        }
        let conn = dialer
            .connection_id()
            .ok_or_else(|| Error::Unavailable("the connection dropped".into()))?;

        Ok((dialer, conn))
    }

    /// The workspace root document: found on the server, or created by `init`.
    async fn open_root(&self, repo: &Repo, s: &Settings) -> Result<DocHandle> {
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
    /// document with the server, and merges what changed elsewhere. Returns
    /// (workflows merged, documents).
    async fn exchange(
        &self,
        repo: &Repo,
        root: &DocHandle,
        conn: samod::ConnectionId,
    ) -> Result<(usize, usize)> {
        let docs = self.known_docs()?;
        let logs = self.known_logs()?;
        list_missing(root, root::List::Workflows, &docs)?;
        list_missing(root, root::List::Logs, &logs)?;
        settle(root, conn).await;
        let listed = root.with_document(|d| root::entries(d, root::List::Workflows));
        let listed_logs = root.with_document(|d| root::entries(d, root::List::Logs));
        let mut handles: Vec<(String, DocHandle)> = Vec::new();
        for (wf_id, doc_url) in &listed {
            let Ok(url) = AutomergeUrl::from_str(doc_url) else {
                continue;
            };
            let found =
                tokio::time::timeout(DOC_TIMEOUT, repo.find(url.document_id().clone())).await;
            if let Ok(Ok(Some(h))) = found {
                handles.push((wf_id.clone(), h));
            }
        }
        let mut log_handles: Vec<(String, DocHandle)> = Vec::new();
        for (key, doc_url) in &listed_logs {
            let Ok(url) = AutomergeUrl::from_str(doc_url) else {
                continue;
            };
            let found =
                tokio::time::timeout(DOC_TIMEOUT, repo.find(url.document_id().clone())).await;
            if let Ok(Ok(Some(h))) = found {
                log_handles.push((key.clone(), h));
            }
        }
        futures::future::join_all(
            handles
                .iter()
                .chain(log_handles.iter())
                .map(|(_, h)| settle(h, conn)),
        )
        .await;

        // 4. Merge what changed elsewhere.
        let mut merged = 0;
        for (wf_id, handle) in &handles {
            let known = docs.iter().find(|k| &k.key == wf_id);
            let heads = heads_of(handle);
            if known.is_some_and(|k| k.heads == heads) {
                continue;
            }
            let since: Vec<ChangeHash> = known.map(|k| parse_heads(&k.heads)).unwrap_or_default();
            let own = self.device_id().to_owned();
            let (state, base, authors) = handle.with_document(|d| {
                (
                    doc::read(d),
                    base_at(d, &since),
                    authors_since(d, &since, &own),
                )
            });
            let state = match state {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("flowkeep: skipped document of workflow {wf_id}: {e}");
                    continue;
                }
            };
            if self.merge_remote(wf_id, handle.document_id(), state, base, &heads, authors)? {
                merged += 1;
            }
        }
        // 5. Runs other devices recorded, changed since last merged.
        let own = self.device_id().to_owned();
        for (key, handle) in &log_handles {
            if execlog::device_of(key) == Some(own.as_str()) {
                continue;
            }
            let known = logs.iter().find(|k| &k.key == key);
            let heads = heads_of(handle);
            if known.is_some_and(|k| k.heads == heads) {
                continue;
            }
            let since: Vec<ChangeHash> = known.map(|k| parse_heads(&k.heads)).unwrap_or_default();
            let runs = handle.with_document(|d| execlog::changed_since(d, &since));
            self.merge_runs(&runs)?;
            self.save_log(key, handle.document_id(), &heads)?;
        }
        Ok((merged, handles.len()))
    }

    fn commit_message(&self) -> String {
        format!("flowkeep:{}:{}:", self.device_id(), self.actor())
    }

    async fn create_doc(
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

    fn known_docs(&self) -> Result<Vec<KnownDoc>> {
        self.tracked("SELECT workflow_id, doc_id, heads FROM sync_docs")
    }

    fn known_logs(&self) -> Result<Vec<KnownDoc>> {
        self.tracked("SELECT log_key, doc_id, heads FROM sync_logs")
    }

    /// Tracked documents from a `(key, doc_id, heads)` query.
    fn tracked(&self, sql: &str) -> Result<Vec<KnownDoc>> {
        self.read(|c| {
            let mut stmt = c.prepare(sql)?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (key, doc_id, heads) = row?;
                let doc_id = DocumentId::from_str(&doc_id)
                    .map_err(|_| Error::Corrupt(format!("document id {doc_id}")))?;
                out.push(KnownDoc {
                    key,
                    doc_id,
                    heads: serde_json::from_str(&heads)?,
                });
            }
            Ok(out)
        })
    }

    fn save_log(&self, key: &str, doc_id: &DocumentId, heads: &[String]) -> Result<()> {
        self.write(|w| {
            w.conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO sync_logs (log_key, doc_id, heads) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![
                    key,
                    doc_id.to_string(),
                    serde_json::to_string(heads)?
                ])?;
            Ok(())
        })
    }

    /// This device's runs touched since the last sync, grouped by log key.
    fn local_runs_to_send(
        &self,
    ) -> Result<Vec<(String, Vec<flowkeep_core::execution::Execution>)>> {
        let synced: i64 = self
            .meta(META_SEQ)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let own = self.device_id().to_owned();
        self.read(|c| {
            let ids: Vec<String> = c
                .prepare(
                    "SELECT DISTINCT stream_id FROM events WHERE seq > ?1 AND origin = 'local'
                     AND kind IN ('execution.started', 'execution.finished', 'execution.recorded')",
                )?
                .query_map([synced], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut groups: std::collections::BTreeMap<String, Vec<_>> = Default::default();
            for id in ids {
                match queries::executions::get(c, &id) {
                    Ok(e) if e.device_id == own => {
                        groups
                            .entry(execlog::log_key(&e.workflow_id, &own, e.started_at))
                            .or_default()
                            .push(e);
                    }
                    Ok(_) | Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(groups.into_iter().collect())
        })
    }

    /// Records other devices' runs here as `remote` events: new runs as
    /// started (and finished, if they are), known running ones as finished.
    fn merge_runs(&self, runs: &[flowkeep_core::execution::Execution]) -> Result<()> {
        use flowkeep_core::events::{ExecutionFinishedV1, ExecutionStartedV1};
        use flowkeep_core::execution::ExecutionStatus;
        self.write(|w| {
            for run in runs {
                if queries::workflows::load(w.conn, &run.workflow_id)?.is_none() {
                    continue;
                }
                let local = match queries::executions::get(w.conn, &run.id) {
                    Ok(e) => Some(e),
                    Err(Error::NotFound { .. }) => None,
                    Err(e) => return Err(e),
                };
                let status_here = match &local {
                    Some(e) => e.status,
                    None => {
                        let started = if run.status.is_terminal() {
                            ExecutionStatus::Running
                        } else {
                            run.status
                        };
                        let event = Event::ExecutionStarted(ExecutionStartedV1 {
                            workflow_id: run.workflow_id.clone(),
                            status: started,
                            started_at: run.started_at,
                            trigger: run.trigger.clone(),
                        });
                        w.append_remote(&run.id, event, "sync", &run.device_id)?;
                        started
                    }
                };
                if run.status.is_terminal() && status_here.can_move_to(run.status) {
                    let event = Event::ExecutionFinished(ExecutionFinishedV1 {
                        status: run.status,
                        completed_at: run.completed_at.unwrap_or(run.started_at),
                        exit_code: run.exit_code,
                        output: run.output.clone(),
                        error: run.error.clone(),
                    });
                    w.append_remote(&run.id, event, "sync", &run.device_id)?;
                }
            }
            Ok(())
        })
    }

    fn save_doc(&self, workflow_id: &str, doc_id: &DocumentId, heads: &[String]) -> Result<()> {
        self.write(|w| save_doc_in(w.conn, workflow_id, doc_id, heads))
    }

    /// Workflows with local changes since the last sync, and workflows that
    /// have no document yet.
    fn workflows_to_push(&self) -> Result<Vec<(flowkeep_core::workflow::Workflow, bool)>> {
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
                     AND kind IN ('workflow.created', 'workflow.updated', 'config.updated', 'workflow.deleted')",
                )?
                .query_map([synced], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(l) = queries::workflows::load(c, &id)? {
                    out.push((l.workflow, l.deleted));
                }
            }
            Ok(out)
        })
    }

    /// One `remote.merged` event for what the document says beyond this
    /// device's projection. Returns whether anything changed.
    fn merge_remote(
        &self,
        workflow_id: &str,
        doc_id: &DocumentId,
        state: doc::DocState,
        base: Option<doc::DocState>,
        heads: &[String],
        authors: Vec<RemoteAuthor>,
    ) -> Result<bool> {
        // Validated here first, outside the write transaction, so that the
        // projection's validation inside it finds its patterns and schemas
        // compiled (cached).
        let _ = state.spec.config.validate(&Default::default());
        self.write(|w| {
            let existing = queries::workflows::load(w.conn, workflow_id)?;
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
            save_doc_in(w.conn, workflow_id, doc_id, heads)?;
            Ok(changed)
        })
    }
}

/// A document this device tracks: a workflow id, or an execution-log key.
struct KnownDoc {
    key: String,
    doc_id: DocumentId,
    heads: Vec<String>,
}

fn save_doc_in(
    c: &rusqlite::Connection,
    workflow_id: &str,
    doc_id: &DocumentId,
    heads: &[String],
) -> Result<()> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO sync_docs (workflow_id, doc_id, heads) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![
        workflow_id,
        doc_id.to_string(),
        serde_json::to_string(heads)?
    ])?;
    Ok(())
}

async fn find(repo: &Repo, id: &DocumentId) -> Result<Option<DocHandle>> {
    match tokio::time::timeout(DOC_TIMEOUT, repo.find(id.clone())).await {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(_)) => Err(Error::Unavailable("the sync engine stopped".into())),
        Err(_) => Ok(None),
    }
}

/// Waits until the server has our changes and we have its, for one document.
async fn settle(h: &DocHandle, conn: samod::ConnectionId) {
    let both = futures::future::join(h.they_have_our_changes(conn), h.we_have_their_changes(conn));
    let _ = tokio::time::timeout(DOC_TIMEOUT, both).await;
}

/// The document as it was at `heads` (what this device last merged).
fn base_at(d: &Automerge, heads: &[ChangeHash]) -> Option<doc::DocState> {
    if heads.is_empty() {
        return None;
    }
    d.fork_at(heads).ok().and_then(|f| doc::read(&f).ok())
}

/// Adds the tracked documents a root list does not mention yet.
fn list_missing(root: &DocHandle, list: root::List, tracked: &[KnownDoc]) -> Result<()> {
    let listed = root.with_document(|d| root::entries(d, list));
    let missing: Vec<&KnownDoc> = tracked
        .iter()
        .filter(|k| !listed.iter().any(|(key, _)| key == &k.key))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    root.with_document(|d| {
        d.transact::<_, _, String>(|tx| {
            for k in &missing {
                root::add(tx, list, &k.key, &AutomergeUrl::from(&k.doc_id).to_string())?;
            }
            Ok(())
        })
        .map_err(|f| Error::Corrupt(f.error))
    })?;
    Ok(())
}

fn sorted_heads(d: &Automerge) -> Vec<String> {
    sorted_hex(&d.get_heads())
}

fn sorted_hex(heads: &[ChangeHash]) -> Vec<String> {
    let mut v: Vec<String> = heads.iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

fn heads_of(h: &DocHandle) -> Vec<String> {
    let mut heads: Vec<String> = h
        .with_document(|d| d.get_heads())
        .iter()
        .map(|c| c.to_string())
        .collect();
    heads.sort();
    heads
}

fn parse_heads(heads: &[String]) -> Vec<ChangeHash> {
    heads
        .iter()
        .filter_map(|h| ChangeHash::from_str(h).ok())
        .collect()
}

/// Authors of the changes after `since`, from the commit messages
/// flowkeep writes (`flowkeep:<device>:<actor>: ...`), this device excluded.
fn authors_since(d: &Automerge, since: &[ChangeHash], own_device: &str) -> Vec<RemoteAuthor> {
    let mut out: Vec<RemoteAuthor> = Vec::new();
    for change in d.get_changes(since) {
        let author = match change.message().and_then(|m| m.strip_prefix("flowkeep:")) {
            Some(rest) => {
                let mut parts = rest.splitn(3, ':');
                let device_id = parts.next().unwrap_or_default().to_owned();
                let actor = parts.next().unwrap_or_default().to_owned();
                RemoteAuthor { actor, device_id }
            }
            // A change made by another automerge-repo client.
            None => RemoteAuthor {
                actor: format!("automerge:{}", change.actor_id()),
                device_id: "external".into(),
            },
        };
        if author.device_id != own_device && !out.contains(&author) {
            out.push(author);
        }
    }
    out
}
