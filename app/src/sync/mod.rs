//! Local-first sync of workflows through a sync server.
//!
//! The event log stays the source of truth for the read tables; each
//! workflow's Automerge document is how changes travel. A session:
//! 1. offline, commits local changes (projection vs. document) onto this
//!    device's copy of each document, so they stay concurrent with other
//!    devices' offline edits;
//! 2. connects with this device's credential (enrolled once with the
//!    workspace token; a refused or revoked credential fails at once);
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
//!
//! The parts: `settings.rs` (server, credential, root; init, join, status),
//! `enrol.rs` (the workspace token traded for this device's credential;
//! the workspace's devices), `tls.rs` (whom `wss://` trusts),
//! `session.rs` (connect, exchange, `sync now`), `watch.rs` (`sync watch`,
//! woken by changes rather than polling every document), `push.rs`
//! (local changes onto documents), `merge.rs` (checks and merges of what
//! others wrote, rejections), `tracking.rs` (documents and logs this device
//! syncs, with their SQL), `heads.rs` (heads and authors), `uploads.rs`
//! (which device the server saw bring each change), and beside them
//! `doc.rs` / `execlog.rs` / `root.rs` (the document shapes), `dialer.rs`
//! (the authenticated dialer). samod's storage is the `sync_kv` table, through
//! `flowkeep-samod-sqlite` (the server's storage too); `repo.rs` opens it
//! and says when a document is stored there, before anything about it is
//! recorded.

pub mod dialer;
mod doc;
mod enrol;
mod execlog;
mod root;
pub mod tls;

mod heads;
mod merge;
#[cfg(test)]
mod passed_over_tests;
mod push;
mod repo;
mod session;
mod settings;
mod tracking;
mod uploads;
mod watch;

use enrol::not_configured;
pub use enrol::{SyncDevice, SyncDevices};
use heads::*;
use repo::{with_doc, SyncRepo};
use session::*;
use settings::*;
use tracking::*;
use uploads::Uploads;

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

use crate::service::Writer;
use crate::{Error, Result, Service, SyncService};
use flowkeep_store::event_log::Expected;
use flowkeep_store::{event_log, queries};

const META_SERVER: &str = "sync.server";
const META_TOKEN: &str = "sync.token";
/// The device credential this device chose for its enrolment, kept before
/// it asks, so an enrolment a crash interrupted is retried as the same one.
const META_ENROLLING: &str = "sync.enrolling";
const META_ROOT: &str = "sync.root";
const META_LAST: &str = "sync.last_sync";
const META_SEQ: &str = "sync.synced_seq";
const META_INSECURE: &str = "sync.allow_insecure";
/// A private CA this device trusts for `wss://`, as PEM (`--ca-file`).
const META_CA: &str = "sync.ca_pem";
/// Why the last sync failed (`SyncError` as JSON), until one succeeds.
const META_ERROR: &str = "sync.last_error";
/// The documents the last sync went on without (a JSON array of ids; empty:
/// none), for a `sync now` that a running watch answers.
const META_PASSED_OVER: &str = "sync.passed_over";
/// What the server last said about the workspace's limits (empty: nothing).
const META_SERVER_LIMIT: &str = "sync.server_limit";
const META_UNCONFIRMED: &str = "sync.unconfirmed";
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
/// Runs of this device's whose log document could not be loaded when they
/// were to be sent (one key per run id): sent with the next push.
const META_RUNS_PENDING: &str = "sync.runs_pending:";
/// Rejections of one document in one round (run records of a log, entries
/// of the workspace document) that get an event each; the rest are counted
/// in one more.
const MAX_REPORTS: usize = 50;
/// Rejections `sync status` lists.
const LATEST_REJECTIONS: u32 = 25;
/// For the handshake too, which waits behind the sync engine's other work:
/// after a first push of 10,000 new documents that took more than 15 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(45);
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
    /// Documents the server did not confirm within 20 s (it was busy, or
    /// the connection dropped): kept here and sent again next session.
    pub unconfirmed: usize,
    /// The server's sentence when the workspace is at one of its limits
    /// (documents or stored bytes): what it no longer takes; or why it
    /// closed the connection (its storage failed).
    pub server_limit: Option<String>,
    /// Documents left out of this sync because the sync engine failed on a
    /// change to them here (the log says why): nothing about them was
    /// recorded, their changes wait, and the next sync loads them again.
    /// Every other document synced. Answered by a running watch
    /// (`by_running_watch`), those its last round left out.
    pub passed_over: Vec<String>,
    /// Another process on this data dir (`sync watch`, the app) syncs it:
    /// it sent this data dir's changes up to the call; the counts are not
    /// known here.
    pub by_running_watch: bool,
}

impl SyncReport {
    /// What `passed_over` means, in one sentence; `None` when empty.
    pub fn passed_over_sentence(&self) -> Option<String> {
        passed_over_sentence(&self.passed_over)
    }
}

fn passed_over_sentence(ids: &[String]) -> Option<String> {
    let (first, rest) = ids.split_first()?;
    let more = match rest.len() {
        0 => String::new(),
        n => format!(" and {n} more ({})", rest.join(", ")),
    };
    Some(format!(
        "sync went on without document {first}{more}: the sync engine failed on a change to it here (the log says why); nothing about it was recorded, its changes wait, and the next sync loads it again"
    ))
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SyncStatus {
    pub configured: bool,
    /// This device's id, as the server's device list shows it.
    pub device_id: String,
    pub server: Option<String>,
    pub join: Option<String>,
    pub last_sync: Option<i64>,
    /// Local changes to workflows since the last sync (0 when this device
    /// does not sync).
    pub pending_local_changes: u64,
    /// First 8 hex digits of the SHA-256 of this device's credential (or of
    /// the workspace token before it enrolled): tells them apart without
    /// showing one.
    pub token_fingerprint: Option<String>,
    /// Data from other devices that failed the checks and was not merged.
    pub rejected: u64,
    /// The latest rejections, newest first.
    pub rejections: Vec<SyncRejection>,
    /// Why the last sync failed (server unreachable, this device revoked,
    /// an untrusted certificate, this device's disk), until one succeeds;
    /// or which documents a sync went on without (`SyncReport::passed_over`),
    /// until one leaves none out.
    pub last_error: Option<SyncError>,
    /// What the server said when this device last connected, if the
    /// workspace is at one of its limits (documents or stored bytes): what
    /// it no longer takes. Syncing goes on for the rest. Also why the server
    /// closed the connection, when it could not store the workspace's
    /// changes.
    pub server_limit: Option<String>,
    /// Documents the server had not confirmed when the last sync ended (a
    /// limit, a busy server, a dropped connection): kept here and sent
    /// again by the next sync. Local changes counted in
    /// `pending_local_changes` are not among them.
    pub unconfirmed: u64,
}

/// A sync that failed, as the user sees it.
#[derive(Debug, Clone, serde::Deserialize, Serialize, ts_rs::TS)]
pub struct SyncError {
    /// Unix ms.
    pub at: i64,
    pub message: String,
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
    /// The document holds changes not merged yet: nothing written; merge
    /// them first (`push.rs`, `PUSH_TRIES`).
    Unmerged,
    /// The document does not read: nothing written, try again later.
    Unreadable,
    /// This copy lacks a push of this device's (a crash kept it off this
    /// disk after it was sent): nothing written until a session with the
    /// server has given it back or shown the server lacks it too.
    Behind,
}

/// What was last rejected in a document or root entry.
#[derive(Debug, Clone, serde::Deserialize, Serialize)]
struct Rejected {
    heads: Vec<String>,
    reason: String,
}

struct Settings {
    server: String,
    token: String,
    root: Option<String>,
    /// Plain `ws://` to a host that is not this machine, which the user
    /// allowed (`--allow-insecure`).
    allow_insecure: bool,
    /// A private CA to trust for `wss://`, beside the system's roots.
    ca_pem: Option<String>,
}

impl Settings {
    /// Trust for a `wss://` server; `None` for `ws://`.
    fn tls(&self) -> Result<Option<Arc<rustls::ClientConfig>>> {
        if self.server.starts_with("wss://") {
            Ok(Some(tls::client_config(self.ca_pem.as_deref())?))
        } else {
            Ok(None)
        }
    }
}

/// How this device connects, beside the server and token.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Allow plain `ws://` to a host that is not this machine.
    pub allow_insecure: bool,
    /// A private CA (PEM) to trust for `wss://`; kept for later syncs.
    pub ca_pem: Option<String>,
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

/// A document this device tracks: a workflow id, or an execution-log key.
#[derive(Clone)]
struct KnownDoc {
    key: String,
    doc_id: DocumentId,
    heads: Vec<String>,
}

/// Most authors one merge records.
const MAX_AUTHORS: usize = 20;

/// A workflow named "shared", described "base": what the sync steps' unit
/// tests edit.
#[cfg(test)]
fn test_workflow(svc: &Service) -> flowkeep_core::workflow::Workflow {
    svc.workflows()
        .create(flowkeep_core::commands::CreateWorkflow {
            name: "shared".into(),
            description: Some("base".into()),
            ..Default::default()
        })
        .unwrap()
}
