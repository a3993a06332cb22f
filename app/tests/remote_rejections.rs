//! What happens to a workflow document another client broke: it is not
//! merged, the rejection is recorded once, the heads this device merged
//! last stay where they were, and every valid change made meanwhile is
//! merged once the document is valid again. The server is the real one,
//! in-process on 127.0.0.1 (OS-chosen port); the other client writes with
//! samod and automerge directly, holding the workspace's valid token.

// The other client is not the app: it reads its documents directly.
#![allow(clippy::disallowed_methods)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, Value as AmValue, ROOT};
use flowkeep_app::{Service, StoreOptions, TokenDialer};
use flowkeep_core::commands::*;
use samod::{AutomergeUrl, BackoffConfig, ConnectionId, DocHandle, Repo};
use serde_json::json;

mod support;
use support::TestServer;

struct Server {
    /// Keeps the server running for as long as the test holds this.
    _inner: TestServer,
    url: String,
    token: String,
    /// What a raw peer presents: a device credential.
    peer_credential: String,
}

fn start_server() -> Server {
    let inner = TestServer::start();
    let token = inner.workspace("team");
    Server {
        url: inner.url.clone(),
        token,
        peer_credential: inner.device("team", "raw-peer"),
        _inner: inner,
    }
}

/// Another client of the workspace, writing into its documents directly.
struct Peer {
    rt: tokio::runtime::Runtime,
    repo: Repo,
    conn: ConnectionId,
    root: DocHandle,
}

impl Peer {
    fn connect(server: &Server, join: &str) -> Peer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (repo, conn, root) = rt.block_on(async {
            let repo = Repo::build_tokio().load().await;
            let dialer = repo
                .dial(
                    BackoffConfig::default(),
                    Arc::new(TokenDialer {
                        url: url::Url::parse(&server.url).unwrap(),
                        token: server.peer_credential.clone(),
                        tls: None,
                        limit: Default::default(),
                    }),
                )
                .unwrap();
            tokio::time::timeout(Duration::from_secs(10), dialer.established())
                .await
                .unwrap()
                .unwrap();
            let conn = dialer.connection_id().unwrap();
            // The dialer lives as long as the repo.
            std::mem::forget(dialer);
            let root_url = AutomergeUrl::from_str(join.rsplit('#').next().unwrap()).unwrap();
            let root = repo
                .find(root_url.document_id().clone())
                .await
                .unwrap()
                .unwrap();
            (repo, conn, root)
        });
        Peer {
            rt,
            repo,
            conn,
            root,
        }
    }

    /// The workflow's document, as up to date as the server has it.
    fn workflow(&self, id: &str) -> DocHandle {
        self.rt.block_on(async {
            self.root.we_have_their_changes(self.conn).await;
            let url = self.root.with_document(|d| {
                let Some((AmValue::Object(ObjType::Map), list)) = d.get(ROOT, "workflows").unwrap()
                else {
                    panic!("no workflows list")
                };
                let (v, _) = d.get(&list, id).unwrap().unwrap();
                v.into_string().unwrap()
            });
            let h = self
                .repo
                .find(AutomergeUrl::from_str(&url).unwrap().document_id().clone())
                .await
                .unwrap()
                .unwrap();
            h.we_have_their_changes(self.conn).await;
            h
        })
    }

    /// Edits a document and waits until the server has the change.
    fn edit(&self, h: &DocHandle, f: impl FnOnce(&mut automerge::transaction::Transaction<'_>)) {
        h.with_document(|d| {
            let mut tx = d.transaction();
            f(&mut tx);
            tx.commit();
        });
        self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), h.they_have_our_changes(self.conn))
                .await
                .unwrap()
        });
    }
}

fn open(dir: &tempfile::TempDir, actor: &str) -> Service {
    Service::open(
        &dir.path().join("flowkeep.db"),
        StoreOptions {
            actor: actor.into(),
            ..Default::default()
        },
    )
    .unwrap()
}

fn doc_heads(dir: &tempfile::TempDir, wf: &str) -> String {
    rusqlite::Connection::open(dir.path().join("flowkeep.db"))
        .unwrap()
        .query_row(
            "SELECT heads FROM sync_docs WHERE workflow_id = ?1",
            [wf],
            |r| r.get(0),
        )
        .unwrap()
}

fn get(svc: &Service, id: &str) -> flowkeep_core::workflow::Workflow {
    svc.workflows().get(WorkflowId { id: id.into() }).unwrap()
}

fn set(svc: &Service, id: &str, key: &str, v: i64) {
    svc.configs()
        .set_value(SetConfigValue {
            workflow_id: id.into(),
            key: key.into(),
            value: json!(v),
            expected_revision: None,
        })
        .unwrap();
}

const CFG: &str = r#"{"fields":[{"key":"a","type":"number"},{"key":"b","type":"number","max":10}],"values":{"a":1,"b":1}}"#;

/// Two devices in a workspace with one workflow, and the other client.
fn workspace() -> (
    Server,
    [tempfile::TempDir; 2],
    Service,
    Service,
    String,
    Peer,
) {
    let server = start_server();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = open(&dirs[0], "alice");
    let b = open(&dirs[1], "bob");
    let wf = a
        .workflows()
        .create(CreateWorkflow {
            name: "w".into(),
            config: Some(serde_json::from_str(CFG).unwrap()),
            ..Default::default()
        })
        .unwrap()
        .id;
    let join = a.sync().init(&server.url, &server.token).unwrap().join;
    b.sync().join(&join, &server.token).unwrap();
    let peer = Peer::connect(&server, &join);
    (server, dirs, a, b, wf, peer)
}

#[test]
fn a_broken_document_keeps_its_merged_heads_and_later_valid_changes_arrive() {
    let (_server, dirs, a, b, wf, peer) = workspace();
    let doc = peer.workflow(&wf);
    peer.edit(&doc, |tx| tx.put(ROOT, "name", "n".repeat(201)).unwrap());
    let heads = doc_heads(&dirs[0], &wf);

    a.sync().now().unwrap();
    assert_eq!(get(&a, &wf).spec.name, "w", "not merged");
    assert_eq!(doc_heads(&dirs[0], &wf), heads, "the merged heads stay");
    let status = a.sync().status(Default::default()).unwrap();
    assert_eq!(status.rejected, 1);
    let r = &status.rejections[0];
    assert_eq!(
        (r.what.as_str(), r.subject.as_deref()),
        ("workflow", Some(wf.as_str()))
    );
    assert!(r.reason.contains("name: must be 1 to 200"), "{}", r.reason);
    a.sync().now().unwrap();
    assert_eq!(
        a.sync().status(Default::default()).unwrap().rejected,
        1,
        "reported once"
    );

    // Valid edits on top of the broken document (B cannot merge it either,
    // but its own edits still go out)...
    b.sync().now().unwrap();
    set(&b, &wf, "a", 5);
    b.sync().now().unwrap();
    a.sync().now().unwrap();
    assert_eq!(get(&a, &wf).spec.config.values["a"], 1, "still not merged");
    assert_eq!(
        a.sync().status(Default::default()).unwrap().rejected,
        1,
        "same problem, not news"
    );

    // ...arrive with the change that makes the document valid again.
    b.workflows()
        .update(UpdateWorkflow {
            id: wf.clone(),
            name: Some("fixed".into()),
            ..Default::default()
        })
        .unwrap();
    b.sync().now().unwrap();
    a.sync().now().unwrap();
    let now = get(&a, &wf);
    assert_eq!(now.spec.name, "fixed");
    assert_eq!(now.spec.config.values["a"], 5, "the edit made meanwhile");
    assert_ne!(doc_heads(&dirs[0], &wf), heads);
    assert_eq!(a.sync().status(Default::default()).unwrap().rejected, 1);

    // Broken again after a good merge: that is news again.
    let doc = peer.workflow(&wf);
    peer.edit(&doc, |tx| tx.put(ROOT, "version", "not semver").unwrap());
    a.sync().now().unwrap();
    let status = a.sync().status(Default::default()).unwrap();
    assert_eq!(status.rejected, 2);
    assert!(status.rejections[0].reason.contains("version"));
    assert_eq!(get(&a, &wf).spec.version, "1.0.0");

    let dump = a.dump_read_tables().unwrap();
    a.rebuild_projections().unwrap();
    assert_eq!(a.dump_read_tables().unwrap(), dump);
}

#[test]
fn a_document_that_does_not_read_takes_local_edits_once_it_reads_again() {
    let (_server, dirs, a, b, wf, peer) = workspace();
    let doc = peer.workflow(&wf);
    // Put back below as JSON text, as the first document layout held it.
    let saved = serde_json::to_string(&get(&a, &wf).spec.config.fields).unwrap();
    peer.edit(&doc, |tx| tx.put(ROOT, "config", "gone").unwrap());
    a.sync().now().unwrap();
    assert_eq!(a.sync().status(Default::default()).unwrap().rejected, 1);

    // A local edit while the document cannot take it: kept pending.
    set(&a, &wf, "b", 7);
    a.sync().now().unwrap();
    assert_eq!(a.sync().status(Default::default()).unwrap().rejected, 1);
    let heads = doc_heads(&dirs[0], &wf);

    // The document reads again: A's edit goes out and reaches B.
    let doc = peer.workflow(&wf);
    peer.edit(&doc, |tx| {
        let config = tx.put_object(ROOT, "config", ObjType::Map).unwrap();
        tx.put(&config, "fields", saved.as_str()).unwrap();
        let values = tx.put_object(&config, "values", ObjType::Map).unwrap();
        tx.put(&values, "a", "1").unwrap();
        tx.put(&values, "b", "1").unwrap();
    });
    a.sync().now().unwrap();
    assert_ne!(doc_heads(&dirs[0], &wf), heads);
    assert_eq!(get(&a, &wf).spec.config.values["b"], 7);
    b.sync().now().unwrap();
    assert_eq!(get(&b, &wf).spec.config.values["b"], 7);
    assert_eq!(
        b.sync().status(Default::default()).unwrap().rejected,
        0,
        "B only ever looked at the document once it read again"
    );
}

#[test]
fn a_root_entry_pointed_elsewhere_is_refused_and_put_back() {
    let (_server, _dirs, a, b, wf, peer) = workspace();
    let rogue = peer.rt.block_on(async {
        let mut d = automerge::Automerge::new();
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "type", "flowkeep.workflow")?;
            tx.put(ROOT, "id", wf.as_str())?;
            tx.put(ROOT, "name", "taken over")?;
            Ok(())
        })
        .unwrap();
        peer.repo.create(d).await.unwrap()
    });
    peer.edit(&peer.root, |tx| {
        let Some((AmValue::Object(ObjType::Map), list)) = tx.get(ROOT, "workflows").unwrap() else {
            panic!()
        };
        tx.put(
            &list,
            wf.as_str(),
            AutomergeUrl::from(rogue.document_id()).to_string(),
        )
        .unwrap();
    });
    set(&b, &wf, "a", 3);
    b.sync().now().unwrap();
    a.sync().now().unwrap();
    let on_a = get(&a, &wf);
    assert_eq!(on_a.spec.name, "w", "the rogue document is not used");
    assert_eq!(on_a.spec.config.values["a"], 3, "the real one still syncs");
    let status = a.sync().status(Default::default()).unwrap();
    assert_eq!(status.rejected, 1, "{:?}", status.rejections);
    assert_eq!(status.rejections[0].what, "root");
    assert!(status.rejections[0].reason.contains("which is kept"));
    // The next session puts the entry back, for devices that join later.
    a.sync().now().unwrap();
    assert_eq!(
        a.sync().status(Default::default()).unwrap().rejected,
        1,
        "reported once"
    );
    let c_dir = tempfile::tempdir().unwrap();
    let c = open(&c_dir, "carol");
    c.sync()
        .join(
            &a.sync().status(Default::default()).unwrap().join.unwrap(),
            &_server.token,
        )
        .unwrap();
    assert_eq!(get(&c, &wf).spec.config.values["a"], 3);
    assert_eq!(c.sync().status(Default::default()).unwrap().rejected, 0);
}

#[test]
fn a_workspace_document_of_many_bad_entries_records_a_few_and_how_many_more() {
    let (_server, _dirs, a, _b, _wf, peer) = workspace();
    peer.edit(&peer.root, |tx| {
        let Some((AmValue::Object(ObjType::Map), list)) = tx.get(ROOT, "workflows").unwrap() else {
            panic!()
        };
        for i in 0..500 {
            tx.put(&list, format!("junk-{i}"), "x").unwrap();
        }
    });
    a.sync().now().unwrap();
    let status = a.sync().status(Default::default()).unwrap();
    assert!(
        status.rejected > 0 && status.rejected <= 51,
        "{} rejections recorded",
        status.rejected
    );
    assert!(
        status
            .rejections
            .iter()
            .any(|r| r.reason.contains("and 450 more entries")),
        "{:?}",
        status.rejections
    );
}
