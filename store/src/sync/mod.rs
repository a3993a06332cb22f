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
//!
//! Everything another device wrote is untrusted: the root's entries, each
//! workflow document and each run record pass the checks a local command
//! gets (`flowkeep_core::remote`) before anything is merged. What fails is
//! not merged and becomes a `remote.rejected` event (stream
//! `sync:rejected`); a workflow document that fails keeps the heads last
//! merged, so once it is valid again every change since then is merged.

pub mod dialer;
mod doc;
mod execlog;
mod root;
mod storage;

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use automerge::transaction::CommitOptions;
use automerge::{Automerge, ChangeHash};
use flowkeep_core::commands::Input;
use flowkeep_core::events::{Event, RemoteAuthor, RemoteMergedV1, RemoteRejectedV1};
use flowkeep_core::remote::{self, LogKey, RunOrigin};
use flowkeep_core::workflow::{self, FieldChange, WorkflowSpec};
use rusqlite::params;
use samod::{AutomergeUrl, BackoffConfig, DocHandle, DocumentId, PeerId, Repo};
use serde::Serialize;
use serde_json::Value;

use crate::event_log::Expected;
use crate::service::Writer;
use crate::{event_log, queries, Error, Result, Service};

const META_SERVER: &str = "sync.server";
const META_TOKEN: &str = "sync.token";
const META_ROOT: &str = "sync.root";
const META_LAST: &str = "sync.last_sync";
const META_SEQ: &str = "sync.synced_seq";
const JOIN_PREFIX: &str = "flowkeep-join:";
/// Stream of the `remote.rejected` events: not a workflow's, whose stream
/// version is its revision.
const REJECTIONS: &str = "sync:rejected";
/// Meta key prefix: what was last rejected in a document or root entry
/// (heads and reason), so an unchanged one is neither checked nor reported
/// again.
const META_REJECTED: &str = "sync.rejected:";
/// Meta key prefix: a workflow with local edits its document could not
/// take (it did not read); pushed again until it can.
const META_PUSH_PENDING: &str = "sync.push_pending:";
/// Run records rejected from one log in one round that get an event each;
/// the rest are counted in one more.
const MAX_RUN_REPORTS: usize = 50;
/// Rejections `sync status` lists.
const LATEST_REJECTIONS: u32 = 25;
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
    /// First 8 hex digits of the workspace token's SHA-256: tells tokens
    /// apart without showing one.
    pub token_fingerprint: Option<String>,
    /// Data from other devices that failed the checks and was not merged.
    pub rejected: u64,
    /// The latest rejections, newest first.
    pub rejections: Vec<SyncRejection>,
}

/// Something another device wrote that was not merged here, and why.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SyncRejection {
    /// When this device rejected it (Unix ms).
    pub at: i64,
    /// `workflow`, `root` or `run`.
    pub what: String,
    /// The document it came in (or the execution-log key).
    pub document: String,
    /// The workflow or run id it claimed, when there was a usable one.
    pub subject: Option<String>,
    /// The device that wrote it, as far as it can be told.
    pub device_id: Option<String>,
    pub reason: String,
}

/// What `push_into` did.
enum Push {
    /// Local changes went into the document; the heads to record, if the
    /// document now reflects exactly the projection.
    Sent(Option<Vec<String>>),
    Nothing,
    /// The document does not read: nothing written, try again later.
    Unreadable,
}

/// What was last rejected in a document or root entry.
#[derive(Debug, Clone, serde::Deserialize, Serialize)]
struct Rejected {
    heads: Vec<String>,
    reason: String,
}

/// A first look at the token, for telling tokens apart.
fn fingerprint(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// A short, fixed-size name for remote text used as a key.
fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
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

    /// Server, last sync, pending local changes, rejections (`sync_status`).
    pub fn sync_status(
        &self,
        mut input: flowkeep_core::commands::GetSyncStatus,
    ) -> Result<SyncStatus> {
        input.check()?;
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
        let (rejected, rejections) = self.read(|c| {
            // The stream's own index answers both: no scan of the log.
            let n: i64 = c.query_row(
                "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = ?1",
                [REJECTIONS],
                |r| r.get(0),
            )?;
            let mut stmt = c.prepare(
                "SELECT kind, schema_version, payload, recorded_at FROM events
                 WHERE stream_id = ?1 ORDER BY stream_version DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(rusqlite::params![REJECTIONS, LATEST_REJECTIONS], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            let mut latest = Vec::new();
            for row in rows {
                let (kind, version, payload, at) = row?;
                if let Ok(Event::RemoteRejected(p)) = Event::decode(&kind, version, &payload) {
                    latest.push(SyncRejection {
                        at,
                        what: p.what,
                        document: p.document,
                        subject: p.subject,
                        device_id: p.device_id,
                        reason: p.reason,
                    });
                }
            }
            Ok((n as u64, latest))
        })?;
        Ok(SyncStatus {
            configured: s.as_ref().is_some_and(|s| s.root.is_some()),
            join: s
                .as_ref()
                .and_then(|s| Some(join_string(&s.server, s.root.as_ref()?))),
            token_fingerprint: s.as_ref().map(|s| fingerprint(&s.token)),
            server: s.map(|s| s.server),
            last_sync: self.meta(META_LAST)?.and_then(|v| v.parse().ok()),
            pending_local_changes: pending as u64,
            rejected,
            rejections,
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
        // Workflows whose document could not take local edits (it did not
        // read) are pushed again, even if step 0 now merges it.
        let pending = self.push_pending()?;
        for known in self.known_docs()? {
            let Some(handle) = find(repo, &known.doc_id).await? else {
                continue;
            };
            self.consider_workflow(&known.key, &handle, Some(&known))?;
        }

        // 1. Local changes onto this device's documents, before any remote
        //    change can arrive.
        let mut docs = self.known_docs()?;
        let mut pushed = 0;
        let workflows = self.workflows_to_push(&pending)?;
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
            match self.push_into(&handle, &since, wf, *deleted)? {
                Push::Sent(heads) => {
                    pushed += 1;
                    if let Some(heads) = heads {
                        self.save_doc(&wf.id, handle.document_id(), &heads)?;
                    }
                    if pending.contains(&wf.id) {
                        self.set_push_pending(&wf.id, false)?;
                    }
                }
                Push::Nothing if pending.contains(&wf.id) => {
                    self.set_push_pending(&wf.id, false)?
                }
                Push::Nothing => {}
                Push::Unreadable if !pending.contains(&wf.id) => {
                    self.set_push_pending(&wf.id, true)?
                }
                Push::Unreadable => {}
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
        // Only entries that pass the checks are opened: no document is
        // looked up, and no key used, that another client made up.
        let listed = self.check_root(root, &docs, &logs)?;
        let opening = (listed.workflows.len() + listed.logs.len()) as u64;
        let mut opened = 0;
        let mut handles: Vec<(String, DocHandle)> = Vec::new();
        for (wf_id, doc_id) in &listed.workflows {
            if let Some(h) = find(repo, doc_id).await? {
                handles.push((wf_id.clone(), h));
            }
            opened += 1;
            self.sync_progress("opening documents", opened, opening);
        }
        let mut log_handles: Vec<(LogKey, DocHandle)> = Vec::new();
        for (key, doc_id) in &listed.logs {
            if let Some(h) = find(repo, doc_id).await? {
                log_handles.push((key.clone(), h));
            }
            opened += 1;
            self.sync_progress("opening documents", opened, opening);
        }
        futures::future::join_all(
            handles
                .iter()
                .map(|(_, h)| h)
                .chain(log_handles.iter().map(|(_, h)| h))
                .map(|h| settle(h, conn)),
        )
        .await;

        // 4. Merge what changed elsewhere.
        let mut merged = 0;
        for (i, (wf_id, handle)) in handles.iter().enumerate() {
            let known = docs.iter().find(|k| &k.key == wf_id);
            if self.consider_workflow(wf_id, handle, known)? {
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
                let Some(l) = self.read(|c| queries::workflows::load(c, wf_id))? else {
                    continue;
                };
                match self.push_into(handle, &parse_heads(&known.heads), &l.workflow, l.deleted)? {
                    Push::Unreadable => {}
                    Push::Nothing => self.set_push_pending(wf_id, false)?,
                    Push::Sent(heads) => {
                        if let Some(heads) = heads {
                            self.save_doc(wf_id, handle.document_id(), &heads)?;
                        }
                        self.set_push_pending(wf_id, false)?;
                        settle(handle, conn).await;
                    }
                }
            }
        }
        // 5. Runs other devices recorded, changed since last merged.
        let own = self.device_id().to_owned();
        let listed_ids: HashSet<&str> =
            listed.workflows.iter().map(|(id, _)| id.as_str()).collect();
        for (key, handle) in &log_handles {
            if key.device_id == own {
                continue;
            }
            let known = logs.iter().find(|k| k.key == key.to_string());
            self.consider_log(key, handle, known, &listed_ids)?;
        }
        Ok((merged, handles.len()))
    }

    /// The root's lists, checked entry by entry: keys must be workflow ids
    /// or log keys, values document URLs; a workflow or log this device
    /// syncs keeps its document whatever the root says now. Problems are
    /// recorded (once while they last); the entries that pass are returned.
    fn check_root(&self, root: &DocHandle, docs: &[KnownDoc], logs: &[KnownDoc]) -> Result<Listed> {
        let own = self.device_id().to_owned();
        let (heads, is_root, wf_entries, log_entries) = root.with_document(|d| {
            (
                sorted_heads(d),
                root::is_root(d),
                root::raw_entries(d, root::List::Workflows),
                root::raw_entries(d, root::List::Logs),
            )
        });
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
    fn consider_workflow(
        &self,
        wf_id: &str,
        handle: &DocHandle,
        known: Option<&KnownDoc>,
    ) -> Result<bool> {
        if known.is_some_and(|k| k.heads == heads_of(handle)) {
            return Ok(false);
        }
        let scope = handle.document_id().to_string();
        let remembered = self.remembered(&scope)?;
        let since: Vec<ChangeHash> = known.map(|k| parse_heads(&k.heads)).unwrap_or_default();
        let own = self.device_id().to_owned();
        let checked = handle.with_document(|d| {
            let heads = sorted_heads(d);
            if remembered.as_ref().is_some_and(|r| r.heads == heads) {
                return None;
            }
            Some((
                heads,
                doc::checked(d, wf_id),
                base_at(d, &since),
                authors_since(d, &since, &own),
            ))
        });
        let Some((heads, state, base, authors)) = checked else {
            return Ok(false);
        };
        match state {
            Ok(state) => {
                self.merge_remote(wf_id, handle.document_id(), state, base, &heads, authors)
            }
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
                Ok(false)
            }
        }
    }

    /// Merges the run records another device added or changed in one of
    /// its execution logs since last merged: each record that passes the
    /// checks is merged, each that fails is recorded as rejected, in one
    /// transaction with the log's new heads.
    fn consider_log(
        &self,
        key: &LogKey,
        handle: &DocHandle,
        known: Option<&KnownDoc>,
        listed_workflows: &HashSet<&str>,
    ) -> Result<()> {
        if known.is_some_and(|k| k.heads == heads_of(handle)) {
            return Ok(());
        }
        let key_text = key.to_string();
        let doc_id = handle.document_id().clone();
        let scope = doc_id.to_string();
        let exists = self
            .read(|c| queries::workflows::load(c, &key.workflow_id))?
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
                heads: heads_of(handle),
            };
            // Its own scope: the log is looked at again once the workflow
            // exists, whatever its heads.
            self.write(|w| reject_in(w, &format!("{scope}:workflow"), r, false))?;
            return Ok(());
        }
        let remembered = self.remembered(&scope)?;
        let since: Vec<ChangeHash> = known.map(|k| parse_heads(&k.heads)).unwrap_or_default();
        let read = handle.with_document(|d| {
            let heads = sorted_heads(d);
            if remembered.as_ref().is_some_and(|r| r.heads == heads) {
                return None;
            }
            let runs = execlog::check(d, &key_text).map(|()| execlog::changed_since(d, &since));
            Some((heads, runs))
        });
        let Some((heads, runs)) = read else {
            return Ok(());
        };
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
        for (run_key, text) in runs {
            let origin = RunOrigin {
                log: key,
                key: &run_key,
                this_device: &own,
            };
            match text.and_then(|t| remote::check_run(&t, origin).map_err(|e| remote::describe(&e)))
            {
                Ok(run) => good.push(run),
                Err(reason) => bad.push((run_key, reason)),
            }
        }
        self.write(|w| {
            for run in &good {
                if let Err(reason) = merge_run_in(w, run)? {
                    bad.push((run.id.clone(), reason));
                }
            }
            for (i, (run_key, reason)) in bad.iter().enumerate() {
                let (subject, reason) = if i < MAX_RUN_REPORTS {
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
                if i >= MAX_RUN_REPORTS {
                    break;
                }
            }
            save_log_in(w.conn, &key_text, &doc_id, &heads)?;
            forget_in(w.conn, &format!("{scope}:workflow"))?;
            forget_in(w.conn, &scope)
        })
    }

    /// What was last rejected in `scope`, if anything.
    fn remembered(&self, scope: &str) -> Result<Option<Rejected>> {
        Ok(self
            .meta(&format!("{META_REJECTED}{scope}"))?
            .and_then(|v| serde_json::from_str(&v).ok()))
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
        self.write(|w| save_log_in(w.conn, key, doc_id, heads))
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

    fn save_doc(&self, workflow_id: &str, doc_id: &DocumentId, heads: &[String]) -> Result<()> {
        self.write(|w| save_doc_in(w.conn, workflow_id, doc_id, heads))
    }

    /// Workflows with local edits their document could not take yet.
    fn push_pending(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let keys: Vec<String> = c
                .prepare("SELECT key FROM meta WHERE key >= ?1 AND key < ?1 || '~'")?
                .query_map([META_PUSH_PENDING], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(keys
                .into_iter()
                .map(|k| k[META_PUSH_PENDING.len()..].to_owned())
                .collect())
        })
    }

    fn set_push_pending(&self, workflow_id: &str, pending: bool) -> Result<()> {
        let key = format!("{META_PUSH_PENDING}{workflow_id}");
        self.write(|w| {
            if pending {
                w.conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, '1')",
                    [&key],
                )?;
            } else {
                w.conn.execute("DELETE FROM meta WHERE key = ?1", [&key])?;
            }
            Ok(())
        })
    }

    /// Writes what the projection changed since the document state it last
    /// reflected (`since`) over the document as it is now (which may
    /// already hold changes from elsewhere).
    fn push_into(
        &self,
        handle: &DocHandle,
        since: &[ChangeHash],
        wf: &flowkeep_core::workflow::Workflow,
        deleted: bool,
    ) -> Result<Push> {
        let message = self.commit_message();
        handle.with_document(|d| {
            // A document another client broke takes no local changes until
            // it reads again; they stay pending here.
            let Ok(now) = doc::read(d) else {
                return Ok(Push::Unreadable);
            };
            let base = base_at(d, since).unwrap_or_else(|| now.clone());
            let mut changes = workflow::rebase(&base.spec, &wf.spec, &now.spec);
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
            // The heads may move only if the document held nothing unmerged
            // before this push (checked under the document's lock): then
            // projection and document agree again, and the device never
            // merges its own push back over a newer local edit.
            let nothing_unmerged = sorted_heads(d) == sorted_hex(since);
            let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
            let opts = CommitOptions::default()
                .with_message(format!("{message} {}", fields.join(",")))
                .with_time(chrono::Utc::now().timestamp());
            d.transact_with(|_| opts, |tx| doc::apply(tx, &changes))
                .map_err(|f| Error::Corrupt(f.error))?;
            Ok(Push::Sent(nothing_unmerged.then(|| sorted_heads(d))))
        })
    }

    /// Workflows with local changes since the last sync, workflows that
    /// have no document yet, and `also`.
    fn workflows_to_push(
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
                     AND kind IN ('workflow.created', 'workflow.updated', 'config.updated', 'workflow.deleted')",
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
            forget_in(w.conn, &doc_id.to_string())?;
            Ok(changed)
        })
    }
}

/// Records another device's run here as `remote` events: a new run as
/// started (and finished, if it is), a known running one as finished.
/// `Err` (nothing written) when the id is already another run's here.
fn merge_run_in(
    w: &Writer<'_>,
    run: &flowkeep_core::execution::Execution,
) -> Result<std::result::Result<(), String>> {
    use flowkeep_core::events::{ExecutionFinishedV1, ExecutionStartedV1};
    use flowkeep_core::execution::ExecutionStatus;
    let local = match queries::executions::get(w.conn, &run.id) {
        Ok(e) => Some(e),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e),
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
    Ok(Ok(()))
}

/// The root entries that passed the checks, with the document each is in.
#[derive(Default)]
struct Listed {
    workflows: Vec<(String, DocumentId)>,
    logs: Vec<(LogKey, DocumentId)>,
}

/// Something that failed the checks, as recorded.
struct Rejection {
    document: String,
    what: &'static str,
    subject: Option<String>,
    device_id: Option<String>,
    reason: String,
    heads: Vec<String>,
}

/// Records a rejection in `scope` (a document, or a root entry) unless the
/// same reason is on record for it already; remembers the heads either way.
/// `skip_unchanged`: the scope's heads are checked against before reading
/// it again (documents); root entries are looked at every round.
fn reject_in(w: &Writer<'_>, scope: &str, r: Rejection, skip_unchanged: bool) -> Result<()> {
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
fn forget_in(c: &rusqlite::Connection, scope: &str) -> Result<()> {
    c.prepare_cached("DELETE FROM meta WHERE key = ?1")?
        .execute([format!("{META_REJECTED}{scope}")])?;
    Ok(())
}

/// The document a root entry names, or what is wrong with the entry.
fn entry_doc(
    url: std::result::Result<String, &'static str>,
) -> std::result::Result<DocumentId, String> {
    let url = url.map_err(|kind| format!("holds {kind}, not a document URL"))?;
    AutomergeUrl::from_str(&url)
        .map(|u| u.document_id().clone())
        .map_err(|_| format!("{} is not a document URL", remote::quote(&url)))
}

fn save_log_in(
    c: &rusqlite::Connection,
    key: &str,
    doc_id: &DocumentId,
    heads: &[String],
) -> Result<()> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO sync_logs (log_key, doc_id, heads) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![
        key,
        doc_id.to_string(),
        serde_json::to_string(heads)?
    ])?;
    Ok(())
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
    // Entries another client removed or pointed elsewhere are put back.
    let missing: Vec<&KnownDoc> = tracked
        .iter()
        .filter(|k| {
            let url = AutomergeUrl::from(&k.doc_id).to_string();
            !listed.iter().any(|(key, u)| key == &k.key && u == &url)
        })
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

/// Most authors one merge records.
const MAX_AUTHORS: usize = 20;

/// Authors of the changes after `since`, from the commit messages
/// flowkeep writes (`flowkeep:<device>:<actor>: ...`), this device excluded.
/// A message is a claim anyone with the token can write: a device id that
/// is not a UUID is recorded as `unknown`, long names are cut.
fn authors_since(d: &Automerge, since: &[ChangeHash], own_device: &str) -> Vec<RemoteAuthor> {
    let mut out: Vec<RemoteAuthor> = Vec::new();
    for change in d.get_changes(since) {
        let author = match change.message().and_then(|m| m.strip_prefix("flowkeep:")) {
            Some(rest) => {
                let mut parts = rest.splitn(3, ':');
                let device = parts.next().unwrap_or_default();
                let actor = parts.next().unwrap_or_default();
                let (device_id, actor) = remote::claimed_author(device, actor);
                RemoteAuthor {
                    actor,
                    device_id: device_id.unwrap_or_else(|| "unknown".into()),
                }
            }
            // A change made by another automerge-repo client.
            None => RemoteAuthor {
                actor: format!("automerge:{}", change.actor_id()),
                device_id: "external".into(),
            },
        };
        if author.device_id != own_device && !out.contains(&author) {
            out.push(author);
            if out.len() == MAX_AUTHORS {
                break;
            }
        }
    }
    out
}
