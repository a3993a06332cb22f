//! A hostile peer: a client that holds the workspace's valid token writes
//! whatever it likes into the workspace's documents (samod and automerge
//! directly, no flowkeep in between). The victim device then syncs with the
//! real `flowkeep` binary against the real server: nothing of it runs, no
//! file outside the data dir is touched, the projections equal a rebuild,
//! every rejection is reported once, and the valid data sent alongside is
//! merged.

mod server_support;
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ScalarValue, Value as AmValue, ROOT};
use samod::{AutomergeUrl, BackoffConfig, DocHandle, Repo};
use serde_json::{json, Value};
use server_support::{add_device, create_workspace, server_bin_beside, Server};
use support::{Flowkeep, Outcome};

/// A device whose data dir sits in a folder of the test's own, so a path
/// that escapes the data dir (`runs/../../victim`) lands where the test
/// can watch it.
struct Victim {
    top: tempfile::TempDir,
}

impl Victim {
    fn data(&self) -> PathBuf {
        self.top.path().join("data")
    }
    fn run(&self, args: &[&str]) -> Outcome {
        let out = Command::new(Flowkeep::bin())
            .arg("--data-dir")
            .arg(self.data())
            .args(args)
            .env("FLOWKEEP_ACTOR", "victim")
            .output()
            .unwrap();
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
    fn json(&self, args: &[&str]) -> Outcome {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.run(&all)
    }
    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data().join("flowkeep.db")).unwrap()
    }
    /// Every read table, row by row.
    fn tables(&self) -> String {
        support::dump_tables(
            &self.data().join("flowkeep.db"),
            &[
                "workflows",
                "configs",
                "executions",
                "workflow_tags",
                "settings",
            ],
        )
    }
}

fn device_id(db: &Path) -> String {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT value FROM meta WHERE key = 'device_id'", [], |r| {
            r.get(0)
        })
        .unwrap()
}

/// Every path under `dir`, except those under `skip`.
fn tree(dir: &Path, skip: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.starts_with(skip) {
                continue;
            }
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.insert(p);
        }
    }
    out
}

/// A distinct id in canonical UUID form.
fn uuid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id() as u64;
    format!(
        "0190a4b2-{:04x}-7e4f-8a5b-{:012x}",
        pid & 0xffff,
        0xbad0_0000_0000 + n
    )
}

fn url_of(h: &DocHandle) -> String {
    AutomergeUrl::from(h.document_id()).to_string()
}

/// A workflow document as flowkeep lays it out, with the content given.
fn workflow_doc(id: &str, name: AmScalar, config_values: &[(&str, String)]) -> Automerge {
    let mut d = Automerge::new();
    d.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "type", "flowkeep.workflow")?;
        tx.put(ROOT, "schema", 1i64)?;
        tx.put(ROOT, "id", id)?;
        tx.put(ROOT, "created_at", 1_700_000_000_000i64)?;
        tx.put(ROOT, "deleted", false)?;
        tx.put(ROOT, "name", name.0)?;
        tx.put(ROOT, "version", "1.0.0")?;
        tx.put(ROOT, "tags", "[]")?;
        let config = tx.put_object(ROOT, "config", ObjType::Map)?;
        tx.put(
            &config,
            "fields",
            json!([{"key": "a", "type": "json"}, {"key": "b", "type": "json"}]).to_string(),
        )?;
        let values = tx.put_object(&config, "values", ObjType::Map)?;
        for (k, v) in config_values {
            tx.put(&values, *k, v.as_str())?;
        }
        Ok(())
    })
    .unwrap();
    d
}

struct AmScalar(ScalarValue);

fn text(s: &str) -> AmScalar {
    AmScalar(ScalarValue::Str(s.into()))
}

/// The key in a root list whose text contains `part`, and its document.
fn listed(root: &DocHandle, list: &str, part: &str) -> (String, String) {
    root.with_document(|d| {
        let Some((AmValue::Object(ObjType::Map), obj)) = d.get(ROOT, list).unwrap() else {
            panic!("no {list} in the root")
        };
        for k in d.keys(&obj) {
            if k.contains(part) {
                let (v, _) = d.get(&obj, &k).unwrap().unwrap();
                return (k, v.into_string().unwrap());
            }
        }
        panic!("no {list} entry with {part}")
    })
}

fn put_in_root(root: &DocHandle, list: &str, key: &str, value: ScalarValue) {
    root.with_document(|d| {
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            let Some((AmValue::Object(ObjType::Map), obj)) = tx.get(ROOT, list)? else {
                panic!("no {list} in the root")
            };
            tx.put(&obj, key, value)?;
            Ok(())
        })
        .unwrap();
    });
}

fn log_doc(key: &str, runs: &[(&str, String)]) -> Automerge {
    let mut d = Automerge::new();
    d.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "type", "flowkeep.execution-log")?;
        tx.put(ROOT, "schema", 1i64)?;
        tx.put(ROOT, "log", key)?;
        let obj = tx.put_object(ROOT, "runs", ObjType::Map)?;
        for (k, v) in runs {
            tx.put(&obj, *k, v.as_str())?;
        }
        Ok(())
    })
    .unwrap();
    d
}

/// Retitles the terminal, clears it, rings its bell.
const TERMINAL_ESCAPES: &str = "exit 1\u{1b}]0;owned\u{7}\u{1b}[2J";

struct Forged {
    valid_workflow: String,
    /// (what, subject, a piece of the reason) of every rejection to expect.
    expected: Vec<(&'static str, Option<String>, &'static str)>,
}

/// Connects as a client of the workspace and writes the forged data.
fn forge(
    server: &Server,
    token: &str,
    root_url: &str,
    wf: &str,
    a_dev: &str,
    b_dev: &str,
) -> Forged {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let repo = Repo::build_tokio().load().await;
        let dialer = repo
            .dial(
                BackoffConfig {
                    max_retries: Some(3),
                    ..BackoffConfig::default()
                },
                Arc::new(flowkeep_app::TokenDialer {
                    url: url::Url::parse(&server.url()).unwrap(),
                    token: token.to_owned(),
                    tls: None,
                    limit: Default::default(),
                }),
            )
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), dialer.established())
            .await
            .expect("connects in time")
            .expect("the token is valid");
        let conn = dialer.connection_id().unwrap();
        let root_id = AutomergeUrl::from_str(root_url).unwrap().document_id().clone();
        let root = tokio::time::timeout(Duration::from_secs(10), repo.find(root_id))
            .await
            .unwrap()
            .unwrap()
            .expect("the root document is on the server");
        let mut touched: Vec<DocHandle> = vec![root.clone()];
        let mut expected = Vec::new();
        let now = chrono::Utc::now();
        let month = now.format("%Y-%m").to_string();
        let started = now.timestamp_millis() - 60_000;
        let run = |id: &str, wf: &str, dev: &str, status: &str| {
            json!({"id": id, "workflow_id": wf, "device_id": dev, "status": status,
                   "output": null, "started_at": started, "completed_at": if status == "running" { Value::Null } else { json!(started + 10) },
                   "duration_ms": null, "exit_code": 0, "error": null, "trigger": "cli"})
            .to_string()
        };

        // Into B's own execution log: forged records beside a valid one.
        let (_, b_url) = listed(&root, "execution_logs", b_dev);
        let b_log = repo
            .find(AutomergeUrl::from_str(&b_url).unwrap().document_id().clone())
            .await
            .unwrap()
            .unwrap();
        let well_formed = uuid();
        let (r1, r2, r3, r5, r6) = (uuid(), uuid(), uuid(), uuid(), uuid());
        let unknown_wf = uuid();
        let other_dev = uuid();
        let records: Vec<(String, ScalarValue)> = vec![
            // The path attack: a running run of the victim's own device
            // whose id climbs out of runs/.
            ("../../victim".into(), run("../../victim", wf, a_dev, "running").into()),
            (r1.clone(), run(&r1, wf, a_dev, "running").into()),
            (r2.clone(), run(&r2, wf, &other_dev, "succeeded").into()),
            (
                r3.clone(),
                json!({"id": r3, "workflow_id": wf, "device_id": b_dev, "status": 5, "started_at": "yesterday", "trigger": "cli"})
                    .to_string()
                    .into(),
            ),
            (r5.clone(), ScalarValue::Int(5)),
            (r6.clone(), run(&r6, &unknown_wf, b_dev, "succeeded").into()),
            // Well formed and naming B, but written by this peer.
            (well_formed.clone(), {
                let mut r: Value = serde_json::from_str(&run(&well_formed, wf, b_dev, "failed")).unwrap();
                r["exit_code"] = json!(1);
                r["error"] = json!(TERMINAL_ESCAPES);
                r.to_string().into()
            }),
        ];
        b_log.with_document(|d| {
            d.transact::<_, _, automerge::AutomergeError>(|tx| {
                let Some((AmValue::Object(ObjType::Map), obj)) = tx.get(ROOT, "runs")? else {
                    panic!("B's log has no runs")
                };
                for (k, v) in &records {
                    tx.put(&obj, k.as_str(), v.clone())?;
                }
                Ok(())
            })
            .unwrap();
        });
        touched.push(b_log);
        expected.extend([
            // Well formed, but the server saw this peer, not B, upload it.
            ("run", Some(well_formed.clone()), "written by device"),
            ("run", None, "../../victim"),
            ("run", Some(r1), "this device"),
            ("run", Some(r2), "device"),
            ("run", Some(r3), "must be"),
            ("run", Some(r5), "not JSON text"),
            ("run", Some(r6), "workflow"),
        ]);

        // A log of a workflow the workspace does not have.
        let key = format!("{unknown_wf}/{b_dev}/{month}");
        let r7 = uuid();
        let h = repo
            .create(log_doc(&key, &[(&r7, run(&r7, &unknown_wf, b_dev, "succeeded"))]))
            .await
            .unwrap();
        put_in_root(&root, "execution_logs", &key, url_of(&h).into());
        touched.push(h);
        expected.push(("run", Some(unknown_wf.clone()), "does not have"));

        // A log under the victim's device id, which it did not write.
        let key = format!("{wf}/{a_dev}/{month}");
        let r8 = uuid();
        let h = repo
            .create(log_doc(&key, &[(&r8, run(&r8, wf, a_dev, "running"))]))
            .await
            .unwrap();
        put_in_root(&root, "execution_logs", &key, url_of(&h).into());
        touched.push(h);
        expected.push(("root", Some(wf.to_owned()), "this device's id"));

        // Root entries that are garbage.
        let (g, k) = (uuid(), uuid());
        put_in_root(&root, "execution_logs", "../../x/y", url_of(&root).into());
        put_in_root(&root, "workflows", "../../evil", url_of(&root).into());
        put_in_root(&root, "workflows", &g, "not a url".into());
        put_in_root(&root, "workflows", &k, ScalarValue::Int(7));
        expected.extend([
            ("root", None, "../../x/y"),
            ("root", None, "../../evil"),
            ("root", Some(g), "not a document URL"),
            ("root", Some(k), "not text"),
        ]);

        // Workflow documents: wrong types, a 10 MB name, deeply nested JSON,
        // and one valid workflow sent alongside.
        let garbage = uuid();
        let mut d = workflow_doc(&garbage, AmScalar(ScalarValue::Int(42)), &[]);
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "config", "not a map")?;
            tx.put(ROOT, "deleted", "maybe")?;
            Ok(())
        })
        .unwrap();
        let huge = uuid();
        let big_name = "x".repeat(10 * 1024 * 1024);
        let deep = uuid();
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let valid_workflow = uuid();
        let escapes = uuid();
        for (id, doc) in [
            (escapes.clone(), workflow_doc(&escapes, text(TERMINAL_ESCAPES), &[])),
            (garbage.clone(), d),
            (huge.clone(), workflow_doc(&huge, text(&big_name), &[])),
            (
                deep.clone(),
                workflow_doc(
                    &deep,
                    text("deep"),
                    &[("a", nested(100)), ("b", nested(100_000))],
                ),
            ),
            (
                valid_workflow.clone(),
                workflow_doc(&valid_workflow, text("sent alongside"), &[("a", "{\"k\": 1}".into())]),
            ),
        ] {
            let h = repo.create(doc).await.unwrap();
            put_in_root(&root, "workflows", &id, url_of(&h).into());
            touched.push(h);
        }
        expected.extend([
            ("workflow", Some(garbage), "must be"),
            ("workflow", Some(huge), "name"),
            ("workflow", Some(deep), "nested"),
            ("workflow", Some(escapes), "control characters"),
        ]);

        for h in &touched {
            tokio::time::timeout(Duration::from_secs(20), h.they_have_our_changes(conn))
                .await
                .expect("the server took the forged changes");
        }
        repo.stop().await;
        Forged {
            valid_workflow,
            expected,
        }
    })
}

#[test]
fn a_hostile_peer_with_the_token_gets_nothing_merged_run_or_touched() {
    let server_bin = server_bin_beside(&Flowkeep::bin());
    let server_data = tempfile::tempdir().unwrap();
    let token = create_workspace(&server_bin, server_data.path(), "team");
    let server = Server::start(&server_bin, server_data.path(), &[]);

    let a = Victim {
        top: tempfile::tempdir().unwrap(),
    };
    let lock = a.top.path().join("victim/lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, "not flowkeep's").unwrap();
    let marker = a.top.path().join("ran");
    let config = json!({
        "run": {"command": ["touch", marker.to_str().unwrap()], "timeout_s": 10},
        "fields": [{"key": "n", "type": "number"}], "values": {"n": 1}
    })
    .to_string();
    let wf = a
        .json(&["workflow", "create", "--name", "job", "--config", &config])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let join = a
        .json(&["sync", "init", "--server", &server.url(), "--token", &token])
        .ok()
        .json()["join"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = Flowkeep::new();
    b.json(&["sync", "join", &join, "--token", &token]).ok();
    // B runs A's job only once it approved it, like any device.
    b.json(&["workflow", "approve", &wf]).ok();
    let b_run = b.json(&["exec", "start", &wf]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.json(&["exec", "finish", &b_run, "--status", "succeeded"])
        .ok();
    // A run of B's whose error text would drive a terminal.
    let b_escapes = b.json(&["exec", "start", &wf]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.json(&[
        "exec",
        "finish",
        &b_escapes,
        "--status",
        "failed",
        "--error",
        TERMINAL_ESCAPES,
    ])
    .ok();
    b.json(&["sync", "now"]).ok();
    let a_dev = device_id(&a.data().join("flowkeep.db"));
    let b_dev = device_id(&b.db());

    let root_url = join.rsplit('#').next().unwrap();
    // The hostile peer enrolled like any device: it holds a valid credential.
    let credential = add_device(&server_bin, server_data.path(), "team", "hostile");
    let forged = forge(&server, &credential, root_url, &wf, &a_dev, &b_dev);

    let outside = tree(a.top.path(), &a.data());
    let synced = a.json(&["sync", "now"]).ok().json();
    assert_eq!(synced["merged"], 1, "the valid workflow: {synced}");

    // Nothing ran, nothing outside the data dir was created or removed.
    assert!(!marker.exists(), "a job ran during sync");
    assert!(lock.exists(), "victim/lock was removed");
    assert_eq!(tree(a.top.path(), &a.data()), outside);

    // The valid data sent alongside merged; nothing forged did.
    assert_eq!(
        a.json(&["workflow", "get", &forged.valid_workflow])
            .ok()
            .json()["name"],
        "sent alongside"
    );
    let runs = a.json(&["exec", "list", &wf, "--limit", "500"]).ok().json();
    let mut ids: Vec<&str> = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![b_run.as_str(), b_escapes.as_str()];
    want.sort();
    assert_eq!(
        ids, want,
        "only B's runs: not even a well-formed one the peer wrote into B's log"
    );
    let mine: i64 = a
        .db()
        .query_row(
            "SELECT count(*) FROM executions WHERE device_id = ?1 OR id LIKE '%/%'",
            [&a_dev],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(mine, 0, "no run claims this device or a path");
    let listed = a.json(&["workflow", "list", "--limit", "500"]).ok().json();
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        2,
        "job and the valid one: {listed}"
    );

    // Every rejection is reported, with its reason, and no token anywhere.
    let status = a.json(&["sync", "status"]).ok();
    let s = status.json();
    assert_eq!(
        s["rejected"].as_u64(),
        Some(forged.expected.len() as u64),
        "{s:#}"
    );
    let got = s["rejections"].as_array().unwrap();
    for (what, subject, reason) in &forged.expected {
        let found = got.iter().any(|r| {
            r["what"] == *what
                && subject.as_deref().is_none_or(|sub| r["subject"] == sub)
                && r["reason"].as_str().unwrap().contains(reason)
        });
        assert!(
            found,
            "no {what} rejection {subject:?} with \"{reason}\": {s:#}"
        );
    }
    assert!(
        got.iter()
            .all(|r| r["reason"].as_str().unwrap().len() < 1000),
        "a reason quotes remote text whole"
    );
    let human = a.run(&["sync", "status"]).ok();
    for out in [&status.stdout, &human.stdout] {
        assert!(!out.contains(&token), "sync status prints the token");
    }
    let fp = s["token_fingerprint"].as_str().unwrap();
    assert_eq!(fp.len(), 8);
    assert!(human.stdout.contains(fp), "{}", human.stdout);
    assert!(
        human
            .stdout
            .contains(&format!("{} rejected", forged.expected.len())),
        "{}",
        human.stdout
    );

    // Text from another device reaches this terminal escaped, never as the
    // escape sequences it holds; JSON keeps it as it is.
    let shown = a.run(&["exec", "get", &b_escapes]).ok();
    assert!(
        !shown.stdout.contains(['\u{1b}', '\u{7}']),
        "{:?}",
        shown.stdout
    );
    assert!(
        shown
            .stdout
            .contains("exit 1\\u{1b}]0;owned\\u{7}\\u{1b}[2J"),
        "{}",
        shown.stdout
    );
    let got = a.json(&["exec", "get", &b_escapes]).ok().json();
    assert_eq!(got["error"], TERMINAL_ESCAPES);

    // Projections equal a rebuild; a re-open (crash recovery) keeps
    // victim/lock; another sync reports nothing again.
    let before = a.tables();
    a.run(&["rebuild-projections"]).ok();
    assert_eq!(a.tables(), before);
    a.run(&["workflow", "list"]).ok();
    assert!(lock.exists(), "victim/lock was removed on re-open");
    a.json(&["sync", "now"]).ok();
    let again = a.json(&["sync", "status"]).ok().json();
    assert_eq!(
        again["rejected"], s["rejected"],
        "rejections reported twice"
    );
    assert!(!marker.exists());
    assert_eq!(tree(a.top.path(), &a.data()), outside);
}

/// A device of the workspace writes a change whose message claims another
/// device. The device that merges it records both: the claimed device and
/// the one the server authenticated as sending it; an honest change is
/// confirmed by the server.
#[test]
fn a_change_that_claims_another_device_shows_the_device_that_sent_it() {
    let server_bin = server_bin_beside(&Flowkeep::bin());
    let server_data = tempfile::tempdir().unwrap();
    let token = create_workspace(&server_bin, server_data.path(), "team");
    let server = Server::start(&server_bin, server_data.path(), &[]);

    let a = Flowkeep::new();
    let wf = a.json(&["workflow", "create", "--name", "job"]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let join = a
        .json(&["sync", "init", "--server", &server.url(), "--token", &token])
        .ok()
        .json()["join"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = Flowkeep::new();
    b.json(&["sync", "join", &join, "--token", &token]).ok();
    let a_dev = device_id(&a.db());

    // A's own change, as B merged it: the server confirms A sent it.
    let history = b.json(&["history", &wf]).ok().json();
    let created = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(created["device_id"], a_dev.as_str(), "{history:#}");
    assert_eq!(created["uploaded_by"], a_dev.as_str(), "{history:#}");

    // A third client with its own credential renames the workflow in a
    // change that claims to come from A.
    let credential = add_device(&server_bin, server_data.path(), "team", "mallory");
    let devices = b.json(&["sync", "devices"]).ok().json();
    let mallory = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "mallory")
        .unwrap_or_else(|| panic!("no mallory in {devices:#}"))["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let root_url = join.rsplit('#').next().unwrap().to_owned();
    let message = format!("flowkeep:{a_dev}:alice: name");
    write_as(
        &server,
        &credential,
        &root_url,
        &wf,
        &message,
        "name",
        "renamed by mallory",
    );

    let synced = b.json(&["sync", "now"]).ok().json();
    assert_eq!(synced["merged"], 1, "{synced}");
    assert_eq!(
        b.json(&["workflow", "get", &wf]).ok().json()["name"],
        "renamed by mallory"
    );
    let renamed = entry_setting(&b, &wf, "renamed by mallory");
    assert_eq!(renamed["actor"], "alice", "the claim is kept as written");
    assert_eq!(renamed["device_id"], a_dev.as_str());
    assert_eq!(
        renamed["uploaded_by"],
        mallory.as_str(),
        "the server saw mallory send it"
    );
    let human = b.run(&["history", &wf]).ok().stdout;
    assert!(
        human.contains(&format!("sent by device {}", &mallory[mallory.len() - 8..])),
        "{human}"
    );
    assert!(human.contains("confirmed by the sync server"), "{human}");

    // A change claiming the very device that merges it is no longer left
    // out as its own: the server saw mallory send it.
    let b_dev = device_id(&b.db());
    let message = format!("flowkeep:{b_dev}:bob: description");
    write_as(
        &server,
        &credential,
        &root_url,
        &wf,
        &message,
        "description",
        "claimed as B's own",
    );
    let synced = b.json(&["sync", "now"]).ok().json();
    assert_eq!(synced["merged"], 1, "{synced}");
    let described = entry_setting(&b, &wf, "claimed as B's own");
    assert_eq!(described["uploaded_by"], mallory.as_str(), "{described:#}");
}

/// The history entry of `wf` on `device` with a change to `value`.
fn entry_setting(device: &Flowkeep, wf: &str, value: &str) -> Value {
    let history = device.json(&["history", wf]).ok().json();
    history
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["changes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["new"] == value)
        })
        .unwrap_or_else(|| panic!("no change to {value:?} in {history:#}"))
        .clone()
}

/// Connects with `credential` and writes `field` = `value` into the
/// workflow's document in one change with `message` as its commit message.
fn write_as(
    server: &Server,
    credential: &str,
    root_url: &str,
    wf: &str,
    message: &str,
    field: &str,
    value: &str,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let repo = Repo::build_tokio().load().await;
        let dialer = repo
            .dial(
                BackoffConfig {
                    max_retries: Some(3),
                    ..BackoffConfig::default()
                },
                Arc::new(flowkeep_app::TokenDialer {
                    url: url::Url::parse(&server.url()).unwrap(),
                    token: credential.to_owned(),
                    tls: None,
                    limit: Default::default(),
                }),
            )
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), dialer.established())
            .await
            .expect("connects in time")
            .expect("the credential is valid");
        let conn = dialer.connection_id().unwrap();
        let find = |url: &str| {
            let id = AutomergeUrl::from_str(url).unwrap().document_id().clone();
            let repo = repo.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(10), repo.find(id))
                    .await
                    .unwrap()
                    .unwrap()
                    .expect("the document is on the server")
            }
        };
        let root = find(root_url).await;
        let (_, wf_url) = listed(&root, "workflows", wf);
        let doc = find(&wf_url).await;
        doc.with_document(|d| {
            d.transact_with::<_, _, automerge::AutomergeError, _>(
                |_| automerge::transaction::CommitOptions::default().with_message(message),
                |tx| tx.put(ROOT, field, value),
            )
            .unwrap();
        });
        tokio::time::timeout(Duration::from_secs(10), doc.they_have_our_changes(conn))
            .await
            .expect("the server has the change");
        repo.stop().await;
    });
}
