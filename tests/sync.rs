//! Devices syncing through a real server: three data dirs, three real
//! `flowkeep` processes, one real `flowkeep-sync-server`, all on loopback.

mod server_support;
mod support;

use serde_json::{json, Value};
use server_support::{add_device, create_workspace, server_bin_beside, Server};
use support::Flowkeep;

const CFG: &str = r#"{"fields":[{"key":"a","type":"number"},{"key":"b","type":"number"},{"key":"c","type":"number"},{"key":"limit","type":"number","max":100}],"values":{"a":1,"b":1,"c":1}}"#;

struct Workspace {
    _data: tempfile::TempDir,
    bin: std::path::PathBuf,
    token: String,
}

impl Workspace {
    fn new() -> Workspace {
        let bin = server_bin_beside(&Flowkeep::bin());
        let data = tempfile::tempdir().unwrap();
        let token = create_workspace(&bin, data.path(), "team");
        Workspace {
            _data: data,
            bin,
            token,
        }
    }
    /// `sync init` on `fk` against `server`; the join string for others.
    fn init(&self, fk: &Flowkeep, server: &Server) -> String {
        fk.json(&[
            "sync",
            "init",
            "--server",
            &server.url(),
            "--token",
            &self.token,
        ])
        .ok()
        .json()["join"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    fn start(&self) -> Server {
        Server::start(&self.bin, self._data.path(), &[])
    }
    fn restart(&self, port: u16) -> Server {
        Server::start_on(
            &self.bin,
            self._data.path(),
            &format!("127.0.0.1:{port}"),
            &[],
        )
    }
}

/// Two devices of the workspace: A with a workflow "w" (`CFG`), set up to
/// sync through `server`, and B joined. Returns (A, B, the workflow's id).
fn two_devices(ws: &Workspace, server: &Server) -> (Flowkeep, Flowkeep, String) {
    let (a, b) = (Flowkeep::new(), Flowkeep::new());
    let wf = a
        .json(&["workflow", "create", "--name", "w", "--config", CFG])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let join = ws.init(&a, server);
    b.json(&["sync", "join", &join, "--token", &ws.token]).ok();
    (a, b, wf)
}

/// What must be equal on every device: each workflow as `workflow get`
/// shows it, without the per-device bookkeeping (revision, updated_at).
fn view(fk: &Flowkeep) -> Value {
    let list = fk.json(&["workflow", "list", "--limit", "500"]).ok().json();
    let mut out = serde_json::Map::new();
    for item in list["items"].as_array().unwrap() {
        let id = item["id"].as_str().unwrap();
        let mut wf = fk.json(&["workflow", "get", id]).ok().json();
        let obj = wf.as_object_mut().unwrap();
        obj.remove("revision");
        obj.remove("updated_at");
        out.insert(id.to_owned(), wf);
    }
    Value::Object(out)
}

/// The heads `fk` recorded as merged or pushed for workflow `wf`.
fn recorded_heads(fk: &Flowkeep, wf: &str) -> String {
    rusqlite::Connection::open(fk.db())
        .unwrap()
        .query_row(
            "SELECT heads FROM sync_docs WHERE workflow_id = ?1",
            [wf],
            |r| r.get(0),
        )
        .unwrap()
}

/// Config values `a` and `b` of workflow `wf` on `fk`.
fn values_ab(fk: &Flowkeep, wf: &str) -> (Option<i64>, Option<i64>) {
    let v = fk.json(&["config", "get", wf]).ok().json()["values"].clone();
    (v["a"].as_i64(), v["b"].as_i64())
}

fn history_fields(fk: &Flowkeep, id: &str) -> Vec<(String, String, Value)> {
    let h = fk.json(&["history", id]).ok().json();
    h.as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            let kind = e["kind"].as_str().unwrap().to_owned();
            e["changes"].as_array().unwrap().iter().map(move |c| {
                (
                    kind.clone(),
                    c["field"].as_str().unwrap().to_owned(),
                    c["new"].clone(),
                )
            })
        })
        .collect()
}

#[test]
fn three_devices_edit_offline_and_converge_without_losing_an_edit() {
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b, c) = (Flowkeep::new(), Flowkeep::new(), Flowkeep::new());
    let w1 = a
        .json(&["workflow", "create", "--name", "shared", "--config", CFG])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let init = a
        .run(&[
            "sync",
            "init",
            "--server",
            &server.url(),
            "--token",
            &ws.token,
        ])
        .ok();
    let join = init.stdout.lines().last().unwrap().to_owned();
    assert!(
        join.starts_with("flowkeep-join:ws://127.0.0.1:"),
        "{}",
        init.stdout
    );
    for d in [&b, &c] {
        let r = d
            .json(&["sync", "join", &join, "--token", &ws.token])
            .ok()
            .json();
        assert_eq!(r["merged"], 1);
    }
    assert_eq!(view(&a), view(&b));
    assert_eq!(view(&a), view(&c));

    // The server goes away; every device keeps working.
    let port = server.port;
    drop(server);
    a.json(&["config", "set", &w1, "a", "2"]).ok();
    b.json(&["config", "set", &w1, "a", "5"]).ok(); // same key as A: a conflict
    b.json(&["config", "set", &w1, "b", "3"]).ok();
    c.json(&["config", "set", &w1, "c", "4"]).ok();
    c.json(&["workflow", "update", &w1, "--description", "edited on c"])
        .ok();
    let w2 = a
        .json(&["workflow", "create", "--name", "from a"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let w3 = c
        .json(&["workflow", "create", "--name", "from c", "--tag", "ops"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let offline = a.json(&["sync", "now"]);
    assert_eq!(offline.code, 1, "sync without a server fails");
    assert!(
        offline.error()["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{}",
        offline.stderr
    );
    assert_eq!(
        a.json(&["sync", "status"]).ok().json()["pending_local_changes"],
        2
    );

    let _server = ws.restart(port);
    for d in [&a, &b, &c, &a, &b] {
        d.json(&["sync", "now"]).ok();
    }
    let (va, vb, vc) = (view(&a), view(&b), view(&c));
    assert_eq!(va, vb, "A and B differ");
    assert_eq!(va, vc, "A and C differ");
    assert_eq!(
        va.as_object().unwrap().len(),
        3,
        "every workflow reached every device"
    );
    let shared = &va[&w1];
    assert_eq!(shared["config"]["values"]["b"], 3);
    assert_eq!(shared["config"]["values"]["c"], 4);
    assert_eq!(shared["description"], "edited on c");
    let winner = shared["config"]["values"]["a"].clone();
    assert!(winner == json!(2) || winner == json!(5), "{winner}");
    // The losing value is visible, not dropped.
    let conflict = &shared["conflicts"][0];
    assert_eq!(conflict["field"], "config.values.a");
    assert_eq!(conflict["values"][0], winner);
    let mut values: Vec<i64> = conflict["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, [2, 5]);
    assert_eq!(va[&w3]["tags"], json!(["ops"]));
    assert!(va.get(&w2).is_some());

    // Every edit is in the audit trail on every device, with where it came from.
    for d in [&a, &b, &c] {
        let fields = history_fields(d, &w1);
        for (field, value) in [
            ("config.values.b", json!(3)),
            ("config.values.c", json!(4)),
            ("description", json!("edited on c")),
        ] {
            assert!(
                fields.iter().any(|(_, f, v)| f == field && v == &value),
                "{field} missing from a history: {fields:?}"
            );
        }
        assert!(fields
            .iter()
            .any(|(_, f, v)| f == "config.values.a" && (v == &json!(2) || v == &json!(5))));
    }
    // On every device the history shows both values of the conflicting edit.
    for d in [&a, &b, &c] {
        let h = d.json(&["history", &w1]).ok().json();
        let shown = h.as_array().unwrap().iter().any(|e| {
            e["conflicts"].as_array().is_some_and(|cs| {
                cs.iter().any(|c| {
                    c["field"] == "config.values.a" && c["values"].as_array().unwrap().len() == 2
                })
            })
        });
        assert!(shown, "the conflict is not in a device's history: {h}");
    }
    let human = a.run(&["history", &w1]).ok().stdout;
    assert!(human.contains("conflict on config.values.a"), "{human}");
    let remote = a.json(&["history", &w1]).ok().json();
    let from_c = remote.as_array().unwrap().iter().find(|e| {
        e["kind"] == "remote.merged"
            && e["changes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["field"] == "config.values.c")
    });
    let from_c = from_c.expect("C's edit arrived on A as remote.merged");
    assert_eq!(from_c["origin"], "remote");
    assert_eq!(from_c["actor"], "cli-test");
    let c_device = c.json(&["sync", "status"]).ok().json();
    assert!(c_device["configured"].as_bool().unwrap());
    assert_eq!(
        a.json(&["sync", "status"]).ok().json()["pending_local_changes"],
        0
    );

    // A merged config may break a rule no device broke: kept and flagged.
    a.json(&["config", "set", &w1, "limit", "90"]).ok();
    a.json(&["sync", "now"]).ok();
    b.json(&["sync", "now"]).ok();
    let mut tighter: Value = serde_json::from_str(CFG).unwrap();
    tighter["fields"][3]["max"] = json!(50);
    tighter["values"] = b.json(&["config", "get", &w1]).ok().json()["values"].clone();
    tighter["values"]["limit"] = json!(40);
    b.json(&["config", "update", &w1, "--config", &tighter.to_string()])
        .ok();
    a.json(&["config", "set", &w1, "limit", "80"]).ok(); // valid against max 100
    b.json(&["sync", "now"]).ok();
    a.json(&["sync", "now"]).ok();
    b.json(&["sync", "now"]).ok();
    let (ga, gb) = (
        a.json(&["workflow", "get", &w1]).ok().json(),
        b.json(&["workflow", "get", &w1]).ok().json(),
    );
    assert_eq!(ga["config"], gb["config"]);
    if ga["config"]["values"]["limit"] == json!(80) {
        assert_eq!(ga["validation_errors"][0]["field"], "values.limit", "{ga}");
        assert_eq!(gb["validation_errors"], ga["validation_errors"]);
    }
}

#[test]
fn a_wrong_token_or_join_string_is_refused_clearly() {
    let ws = Workspace::new();
    let server = ws.start();
    let a = Flowkeep::new();
    a.json(&["workflow", "create", "--name", "x"]).ok();
    let init = a
        .json(&[
            "sync",
            "init",
            "--server",
            &server.url(),
            "--token",
            &ws.token,
        ])
        .ok()
        .json();
    let join = init["join"].as_str().unwrap().to_owned();
    let b = Flowkeep::new();
    let r = b.json(&["sync", "join", &join, "--token", "fks_wrong"]);
    assert_eq!(r.code, 1);
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .contains("unknown workspace token"),
        "{}",
        r.stderr
    );
    assert!(
        b.json(&["workflow", "list"]).ok().json()["items"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing received"
    );
    let r = b.json(&["sync", "join", "not-a-join-string", "--token", &ws.token]);
    assert_eq!(r.code, 3);
    assert_eq!(r.error()["fields"][0]["field"], "join");
    let r = b.json(&["sync", "init", "--server", "http://x", "--token", &ws.token]);
    assert_eq!(r.code, 3);
    assert_eq!(r.error()["fields"][0]["field"], "server");
    // A second init on a device that already syncs is a conflict.
    let r = a.json(&[
        "sync",
        "init",
        "--server",
        &server.url(),
        "--token",
        &ws.token,
    ]);
    assert_eq!(r.code, 5);
}

#[test]
fn runs_recorded_on_one_device_show_on_the_others() {
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b) = (Flowkeep::new(), Flowkeep::new());
    let wf = a.json(&["workflow", "create", "--name", "job"]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A run recorded before sync was set up travels too.
    let early = a.json(&["exec", "start", &wf]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.json(&[
        "exec",
        "finish",
        &early,
        "--status",
        "succeeded",
        "--exit-code",
        "0",
        "--output",
        r#"{"result": {"rows": 7}}"#,
    ])
    .ok();
    let join = ws.init(&a, &server);
    b.json(&["sync", "join", &join, "--token", &ws.token]).ok();
    let device_a = a.json(&["exec", "get", &early]).ok().json()["device_id"].clone();
    let seen = b.json(&["exec", "get", &early]).ok().json();
    assert_eq!(seen["status"], "succeeded");
    assert_eq!(seen["output"]["result"]["rows"], 7);
    assert_eq!(
        seen["device_id"], device_a,
        "marked with the device that ran it"
    );

    // B starts a run and finishes it later, with a large output.
    let running = b.json(&["exec", "start", &wf]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.json(&["sync", "now"]).ok();
    a.json(&["sync", "now"]).ok();
    assert_eq!(
        a.json(&["exec", "get", &running]).ok().json()["status"],
        "running"
    );
    let big = json!({"result": {"ok": true}, "stdout_tail": "x".repeat(10_000)}).to_string();
    b.json(&[
        "exec",
        "finish",
        &running,
        "--status",
        "failed",
        "--exit-code",
        "2",
        "--output",
        &big,
    ])
    .ok();
    b.json(&["sync", "now"]).ok();
    a.json(&["sync", "now"]).ok();
    let on_a = a.json(&["exec", "get", &running]).ok().json();
    assert_eq!(
        (on_a["status"].as_str(), on_a["exit_code"].as_i64()),
        (Some("failed"), Some(2))
    );
    assert_eq!(
        on_a["output"]["truncated"], true,
        "large output is cut in the synced copy"
    );
    assert_eq!(
        on_a["output"]["result"]["ok"], true,
        "a small result survives the cut"
    );
    let on_b = b.json(&["exec", "get", &running]).ok().json();
    assert_eq!(
        on_b["output"]["stdout_tail"].as_str().unwrap().len(),
        10_000,
        "whole on the device that ran it"
    );

    // Both devices list both runs.
    let ids = |d: &Flowkeep| -> Vec<String> {
        let mut v: Vec<String> = d.json(&["exec", "list", &wf]).ok().json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(ids(&a).len(), 2);

    // A run pruned here does not come back with the next sync.
    a.json(&["exec", "delete", &early]).ok();
    a.json(&["sync", "now"]).ok();
    b.json(&["sync", "now"]).ok();
    a.json(&["sync", "now"]).ok();
    assert_eq!(ids(&a).len(), 1);
    assert_eq!(ids(&b).len(), 2, "deletes are local: B keeps its copy");
}

#[test]
fn the_js_automerge_repo_client_reads_a_workflow_flowkeep_wrote() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/js-interop");
    assert!(
        dir.join("node_modules/@automerge/automerge-repo").exists(),
        "the JS client is not installed: run scripts/test.sh (it runs npm ci in tests/js-interop)"
    );
    let ws = Workspace::new();
    let server = ws.start();
    let a = Flowkeep::new();
    let cfg = r#"{"fields":[{"key":"a","type":"number"},{"key":"mode","type":"select","options":["x","y"]}],"values":{"a":41,"mode":"y"}}"#;
    let id = a
        .json(&[
            "workflow",
            "create",
            "--name",
            "written by flowkeep",
            "--config",
            cfg,
        ])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let join = ws.init(&a, &server);
    let root = join.rsplit('#').next().unwrap();
    // The JS client is a headless device: the operator enrols it.
    let credential = add_device(&ws.bin, ws._data.path(), "team", "js client");
    let out = std::process::Command::new("node")
        .current_dir(&dir)
        .args(["read-workflow.mjs", &server.url(), &credential, root, &id])
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got,
        json!({"type": "flowkeep.workflow", "id": id, "name": "written by flowkeep", "values": {"a": 41, "mode": "y"}})
    );
    // The same client with a wrong token gets nothing.
    let out = std::process::Command::new("node")
        .current_dir(&dir)
        .args(["read-workflow.mjs", &server.url(), "fks_wrong", root, &id])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no content with a wrong token");
}

#[test]
fn a_session_that_stopped_before_merging_loses_no_remote_edit() {
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b, wf) = two_devices(&ws, &server);
    a.json(&["config", "set", &wf, "a", "7"]).ok();
    a.json(&["sync", "now"]).ok();
    b.json(&["sync", "now"]).ok();
    assert_eq!(
        b.json(&["config", "get", &wf]).ok().json()["values"]["a"],
        7
    );

    unmerge_last(&b, &wf);
    assert_eq!(
        b.json(&["config", "get", &wf]).ok().json()["values"]["a"],
        1,
        "B's tables no longer show A's edit"
    );

    // B edits another key and syncs: A's edit is merged first, not overwritten.
    b.json(&["config", "set", &wf, "b", "8"]).ok();
    b.json(&["sync", "now"]).ok();
    a.json(&["sync", "now"]).ok();
    for d in [&a, &b] {
        assert_eq!(values_ab(d, &wf), (Some(7), Some(8)));
    }
}

/// What a stopped session left unmerged, a watch merges in its first round
/// before it pushes, connected: it asks the server who brought it, as for
/// every merge it makes (`sync now` merges it offline, on the claim alone).
#[test]
fn a_watch_asks_the_server_who_brought_what_a_stopped_session_left_unmerged() {
    use std::time::Duration;
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b, wf) = two_devices(&ws, &server);
    a.json(&["config", "set", &wf, "a", "7"]).ok();
    a.json(&["sync", "now"]).ok();
    b.json(&["sync", "now"]).ok();
    unmerge_last(&b, &wf);

    let _wb = watch(&b);
    eventually(
        "B's watch merging A's edit",
        Duration::from_secs(20),
        || b.json(&["config", "get", &wf]).ok().json()["values"]["a"] == 7,
    );
    let a_dev = a.json(&["sync", "status"]).ok().json()["device_id"].clone();
    let history = b.json(&["history", &wf]).ok().json();
    let merged = history.as_array().unwrap().last().unwrap();
    assert_eq!(merged["kind"], "remote.merged", "{history:#}");
    assert_eq!(merged["device_id"], a_dev, "{history:#}");
    assert_eq!(merged["uploaded_by"], a_dev, "{history:#}");
}

/// Makes `fk` look as if its last session stopped after storing another
/// device's change to `wf` in the document but before recording the merge:
/// that merge event dropped, the tables rebuilt from the log, the heads
/// merged before put back.
fn unmerge_last(fk: &Flowkeep, wf: &str) {
    let db = rusqlite::Connection::open(fk.db()).unwrap();
    let (seq, old_heads): (i64, String) = db
        .query_row(
            "SELECT seq, (SELECT heads FROM sync_docs WHERE workflow_id = ?1) FROM events WHERE stream_id = ?1 AND kind = 'remote.merged' ORDER BY seq DESC LIMIT 1",
            [wf],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let previous: String = db
        .query_row("SELECT payload FROM events WHERE stream_id = ?1 AND kind = 'remote.merged' AND seq < ?2 ORDER BY seq DESC LIMIT 1", rusqlite::params![wf, seq], |r| r.get(0))
        .unwrap();
    let previous_heads = serde_json::from_str::<Value>(&previous).unwrap()["heads"].to_string();
    assert_ne!(previous_heads, old_heads);
    db.execute("DELETE FROM events WHERE seq = ?1", [seq])
        .unwrap();
    db.execute(
        "UPDATE sync_docs SET heads = ?2 WHERE workflow_id = ?1",
        rusqlite::params![wf, previous_heads],
    )
    .unwrap();
    drop(db);
    fk.json(&["rebuild-projections"]).ok();
}

/// Makes every write to `fk`'s copy of the synced documents fail as a full
/// disk would, or (`false`) lets them through again.
fn sync_storage_full(fk: &Flowkeep, full: bool) {
    table_full(fk, "sync_kv", full);
}

/// Inserts into `table` fail as on a full disk (or work again).
fn table_full(fk: &Flowkeep, table: &str, full: bool) {
    let db = rusqlite::Connection::open(fk.db()).unwrap();
    let sql = if full {
        format!(
            "CREATE TRIGGER {table}_full BEFORE INSERT ON {table}
             BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END;"
        )
    } else {
        format!("DROP TRIGGER {table}_full")
    };
    db.execute_batch(&sql).unwrap();
}

#[test]
fn a_sync_this_device_cannot_store_fails_clearly_and_records_nothing_it_could_not_keep() {
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b, wf) = two_devices(&ws, &server);
    a.json(&["config", "set", &wf, "a", "7"]).ok();
    a.json(&["sync", "now"]).ok();
    b.json(&["config", "set", &wf, "b", "8"]).ok();
    let heads_before = || recorded_heads(&b, &wf);
    let recorded = heads_before();

    // B's disk is full: its local edit cannot be written into its copy of
    // the document, nor A's edit when it arrives.
    sync_storage_full(&b, true);
    let out = b.run(&["sync", "now"]);
    assert_ne!(out.code, 0, "the sync says it failed");
    let err = &out.stderr;
    assert!(
        err.contains("could not store the synced documents")
            && err.contains("database or disk is full (test)"),
        "says what failed: {err}"
    );
    assert_eq!(
        heads_before(),
        recorded,
        "no heads recorded for what is not stored"
    );
    assert_eq!(values_ab(&b, &wf), (Some(1), Some(8)));
    let status = b.json(&["sync", "status"]).ok().json();
    assert!(
        status
            .to_string()
            .contains("could not store the synced documents"),
        "sync status keeps the reason: {status}"
    );

    // Space again: the next syncs send and fetch what the failed one could
    // not keep, and no device ever shows B's edit undone.
    sync_storage_full(&b, false);
    b.json(&["sync", "now"]).ok();
    a.json(&["sync", "now"]).ok();
    for d in [&a, &b] {
        assert_eq!(values_ab(d, &wf), (Some(7), Some(8)));
        let history = d.json(&["history", &wf]).ok().json();
        let undone = history.as_array().unwrap().iter().any(|e| {
            e["changes"].as_array().unwrap().iter().any(|c| {
                c["field"] == "config.values.b" && c["old"] == json!(8) && c["new"] == json!(1)
            })
        });
        assert!(!undone, "B's edit was never undone: {history}");
    }
}

#[test]
fn a_push_whose_heads_a_crash_kept_from_being_recorded_is_not_taken_for_another_devices_change() {
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b, wf) = two_devices(&ws, &server);
    b.json(&["sync", "now"]).ok();
    let heads = || recorded_heads(&b, &wf);
    let before_push = heads();
    b.json(&["config", "set", &wf, "b", "2"]).ok();
    b.json(&["sync", "now"]).ok();
    let pushed: Vec<String> = serde_json::from_str(&heads()).unwrap();
    assert_ne!(heads(), before_push);
    assert_eq!(pushed.len(), 1, "the push is the one head");

    // As if B had stopped after its push reached its disk but before the
    // push's heads were recorded (the push was noted before it was
    // written); then B edits the same field again.
    let db = rusqlite::Connection::open(b.db()).unwrap();
    db.execute(
        "UPDATE sync_docs SET heads = ?2 WHERE workflow_id = ?1",
        rusqlite::params![wf, before_push],
    )
    .unwrap();
    db.execute(
        "INSERT INTO sync_pushed (doc_id, hash) SELECT doc_id, ?2 FROM sync_docs WHERE workflow_id = ?1",
        rusqlite::params![wf, pushed[0]],
    )
    .unwrap();
    drop(db);
    b.json(&["config", "set", &wf, "b", "3"]).ok();
    b.json(&["sync", "now"]).ok();
    a.json(&["sync", "now"]).ok();
    for d in [&a, &b] {
        let got = d.json(&["workflow", "get", &wf]).ok().json();
        assert_eq!(got["config"]["values"]["b"], 3, "{got}");
        assert!(
            got["conflicts"].as_array().is_none_or(|c| c.is_empty()),
            "B's two edits are one after the other, not a conflict: {got}"
        );
    }
}

#[test]
fn offline_additions_of_tags_fields_and_run_parts_on_two_devices_all_survive() {
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b) = (Flowkeep::new(), Flowkeep::new());
    let mut config: Value = serde_json::from_str(CFG).unwrap();
    config["run"] = json!({"command": ["/bin/true"]});
    let wf = a
        .json(&[
            "workflow",
            "create",
            "--name",
            "w",
            "--tag",
            "base",
            "--config",
            &config.to_string(),
        ])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let join = ws.init(&a, &server);
    b.json(&["sync", "join", &join, "--token", &ws.token]).ok();

    let port = server.port;
    drop(server);
    let edit = |d: &Flowkeep, tag: &str, field: &str, run: (&str, Value)| {
        d.json(&["workflow", "update", &wf, "--tag", "base", "--tag", tag])
            .ok();
        let got = d.json(&["config", "get", &wf]).ok().json();
        let mut c = json!({"fields": got["fields"], "values": got["values"], "run": got["run"]});
        c["fields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": field, "type": "text"}));
        c["run"][run.0] = run.1;
        d.json(&["config", "update", &wf, "--config", &c.to_string()])
            .ok();
    };
    edit(&a, "from-a", "a_field", ("timeout_s", json!(30)));
    edit(&b, "from-b", "b_field", ("cwd", json!("/tmp")));

    let _server = ws.restart(port);
    for d in [&a, &b, &a, &b] {
        d.json(&["sync", "now"]).ok();
    }
    let (ga, gb) = (
        a.json(&["workflow", "get", &wf]).ok().json(),
        b.json(&["workflow", "get", &wf]).ok().json(),
    );
    assert_eq!(ga["config"], gb["config"]);
    assert_eq!(ga["tags"], gb["tags"]);
    assert_eq!(ga["tags"], json!(["base", "from-a", "from-b"]));
    let keys: Vec<&str> = ga["config"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"a_field") && keys.contains(&"b_field"),
        "{keys:?}"
    );
    let run = &ga["config"]["run"];
    assert_eq!(
        (&run["command"], &run["timeout_s"], &run["cwd"]),
        (&json!(["/bin/true"]), &json!(30), &json!("/tmp")),
        "{run}"
    );
    assert!(
        ga["conflicts"].as_array().is_none_or(|c| c.is_empty()),
        "no addition is a conflict: {ga}"
    );
}

/// Polls until `f` holds (a background sync is asynchronous by nature).
fn eventually(
    what: &str,
    limit: std::time::Duration,
    mut f: impl FnMut() -> bool,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    start.elapsed()
}

/// A `sync watch` process, killed if the test fails before it stops it.
struct Watch(std::process::Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn watch(fk: &Flowkeep) -> Watch {
    Watch(
        std::process::Command::new(Flowkeep::bin())
            .arg("--data-dir")
            .arg(fk.data_dir())
            .args(["sync", "watch", "--interval-ms", "100"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn a_watcher_whose_copy_cannot_be_written_says_so_and_carries_on_once_it_can() {
    watcher_carries_on_once_it_can_write("sync_kv", "could not store the synced documents");
}

/// Not only its copy of the documents: a merge this device's database
/// cannot write (a full disk; here the heads it would record) pauses the
/// watch the same way.
#[test]
fn a_watcher_whose_database_cannot_be_written_says_so_and_carries_on_once_it_can() {
    watcher_carries_on_once_it_can_write("sync_docs", "this device's database failed");
}

/// B's watch while inserts into `table` fail as on a full disk: it says
/// `why` in `sync status`, merges nothing it could not keep, keeps running,
/// and once there is room again takes A's edit and sends B's.
fn watcher_carries_on_once_it_can_write(table: &str, why: &str) {
    use std::time::Duration;
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b, wf) = two_devices(&ws, &server);
    let _wa = watch(&a);
    table_full(&b, table, true);
    let mut wb = watch(&b);

    a.json(&["config", "set", &wf, "a", "42"]).ok();
    eventually("B's watcher saying why", Duration::from_secs(20), || {
        b.json(&["sync", "status"]).ok().json()["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(why))
    });
    assert_eq!(
        b.json(&["config", "get", &wf]).ok().json()["values"]["a"],
        1,
        "nothing merged that B could not keep"
    );
    assert!(wb.0.try_wait().unwrap().is_none(), "B's watch still runs");

    // Room again: the same watcher takes A's edit and sends B's.
    table_full(&b, table, false);
    b.json(&["config", "set", &wf, "b", "9"]).ok();
    eventually("A's edit on B", Duration::from_secs(30), || {
        b.json(&["config", "get", &wf]).ok().json()["values"]["a"] == 42
    });
    eventually("B's edit on A", Duration::from_secs(30), || {
        a.json(&["config", "get", &wf]).ok().json()["values"]["b"] == 9
    });
    eventually("B's status clear again", Duration::from_secs(10), || {
        b.json(&["sync", "status"]).ok().json()["last_error"].is_null()
    });
    assert!(wb.0.try_wait().unwrap().is_none(), "the same watch");
}

/// A run of `wf` started on `fk` (`exec start`): its id.
fn start_run(fk: &Flowkeep, wf: &str) -> String {
    let run = fk.json(&["exec", "start", wf]).ok().json();
    run["id"].as_str().unwrap().to_owned()
}

/// `exec finish` with success.
fn finish_run(fk: &Flowkeep, run: &str) {
    let args = [
        "exec",
        "finish",
        run,
        "--status",
        "succeeded",
        "--exit-code",
        "0",
    ];
    fk.json(&args).ok();
}

/// `b`'s watch once it has merged an edit of `a`'s (`a` = `mark`): past
/// its first round, every document it syncs open and in sync with the
/// server, so what it writes next is sent at once.
fn watch_past_first_round(a: &Flowkeep, b: &Flowkeep, wf: &str, mark: i64) -> Watch {
    let w = watch(b);
    a.json(&["config", "set", wf, "a", &mark.to_string()]).ok();
    a.json(&["sync", "now"]).ok();
    eventually(
        "B's watch merging A's edit",
        std::time::Duration::from_secs(20),
        || b.json(&["config", "get", wf]).ok().json()["values"]["a"] == mark,
    );
    w
}

/// A change this device sent that its own disk did not keep (a crash, a
/// full disk) is either on the server, and comes back before the next local
/// edit is written after it, or it is nowhere, and the next edit goes out
/// without waiting for it. Either way two edits made here one after the
/// other never become a conflict with each other.
#[test]
fn an_edit_sent_but_not_kept_here_is_not_made_concurrent_with_the_next_one() {
    use std::time::Duration;
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b, wf) = two_devices(&ws, &server);
    let no_conflict = |d: &Flowkeep, want: i64| {
        let got = d.json(&["workflow", "get", &wf]).ok().json();
        got["config"]["values"]["b"] == want
            && got["conflicts"].as_array().is_none_or(|c| c.is_empty())
    };

    // Written into the document and noted as sent, never stored nor sent:
    // `sync now` writes before it connects.
    b.json(&["config", "set", &wf, "b", "5"]).ok();
    sync_storage_full(&b, true);
    let out = b.run(&["sync", "now"]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    sync_storage_full(&b, false);
    b.json(&["config", "set", &wf, "b", "6"]).ok();
    b.json(&["sync", "now"]).ok();
    a.json(&["sync", "now"]).ok();
    assert!(no_conflict(&a, 6), "B's next edit went out");

    // Sent by a watch (it is connected when it writes), not stored here.
    let wb = watch_past_first_round(&a, &b, &wf, 100);
    sync_storage_full(&b, true);
    b.json(&["config", "set", &wf, "b", "7"]).ok();
    eventually("B's unstored edit on A", Duration::from_secs(20), || {
        a.json(&["sync", "now"]).ok();
        a.json(&["config", "get", &wf]).ok().json()["values"]["b"] == 7
    });
    drop(wb);
    sync_storage_full(&b, false);
    b.json(&["config", "set", &wf, "b", "8"]).ok();
    let _wb = watch(&b);
    for (name, d) in [("A", &a), ("B", &b)] {
        eventually(
            &format!("b = 8 without a conflict on {name}"),
            Duration::from_secs(20),
            || {
                if std::ptr::eq(d, &a) {
                    a.json(&["sync", "now"]).ok();
                }
                no_conflict(d, 8)
            },
        );
    }
}

/// A disk so full that the change's note cannot be written either: the
/// change is not made at all, so nothing unnoted is sent, and once there is
/// space the edit goes out once, after nothing of its own.
#[test]
fn a_push_that_cannot_be_noted_is_not_sent() {
    use std::time::Duration;
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b, wf) = two_devices(&ws, &server);
    let wb = watch_past_first_round(&a, &b, &wf, 100);
    sync_storage_full(&b, true);
    table_full(&b, "sync_pushed", true);
    b.json(&["config", "set", &wf, "b", "7"]).ok();
    eventually("B's watch saying why", Duration::from_secs(20), || {
        b.json(&["sync", "status"]).ok().json()["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("could not store") && m.contains("full"))
    });
    drop(wb);
    a.json(&["sync", "now"]).ok();
    assert_eq!(
        a.json(&["config", "get", &wf]).ok().json()["values"]["b"],
        1,
        "nothing of B's reached the server"
    );
    sync_storage_full(&b, false);
    table_full(&b, "sync_pushed", false);
    b.json(&["config", "set", &wf, "b", "8"]).ok();
    let _wb = watch(&b);
    eventually(
        "b = 8 without a conflict on A",
        Duration::from_secs(20),
        || {
            a.json(&["sync", "now"]).ok();
            let got = a.json(&["workflow", "get", &wf]).ok().json();
            got["config"]["values"]["b"] == 8
                && got["conflicts"].as_array().is_none_or(|c| c.is_empty())
        },
    );
}

/// The same for a run's record: sent as running by a watch, not kept here,
/// then finished. The two records of the one run were written concurrently;
/// the finished one is written again on top, so no device keeps the run
/// running whichever record won. (Which wins is a coin toss: three runs
/// make a missing repair show seven times in eight.)
#[test]
fn a_run_sent_as_running_but_not_kept_here_ends_finished_everywhere() {
    use std::time::Duration;
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b, wf) = two_devices(&ws, &server);
    let status =
        |d: &Flowkeep, run: &str| d.json(&["exec", "get", run]).ok().json()["status"].clone();
    // The month's log exists on the server: a run's record goes into it.
    let first = start_run(&b, &wf);
    finish_run(&b, &first);
    b.json(&["sync", "now"]).ok();
    for round in 0..3 {
        let wb = watch_past_first_round(&a, &b, &wf, 100 + round);
        sync_storage_full(&b, true);
        let run = start_run(&b, &wf);
        eventually("the running run on A", Duration::from_secs(20), || {
            a.json(&["sync", "now"]).ok();
            a.run(&["exec", "get", &run]).code == 0 && status(&a, &run) == "running"
        });
        drop(wb);
        sync_storage_full(&b, false);
        finish_run(&b, &run);
        let _wb = watch(&b);
        eventually("the run finished on A", Duration::from_secs(20), || {
            a.json(&["sync", "now"]).ok();
            status(&a, &run) == "succeeded"
        });
        assert_eq!(status(&b, &run), "succeeded");
    }
}

/// `sync watch` killed (SIGKILL) at random moments while both devices edit
/// loses nothing and undoes nothing: A only ever raises `a`, B only ever
/// raises `b`, so a change that lowers either on any device would be an
/// edit undone (say, heads recorded for changes a kill left off disk); and
/// every run B started and finished ends finished on A.
#[test]
fn a_watcher_killed_at_any_moment_loses_and_undoes_no_edit() {
    use std::time::Duration;
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b, wf) = two_devices(&ws, &server);
    let _wa = watch(&a);
    let mut seed: u64 = std::env::var("FLOWKEEP_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).unwrap();
            u64::from_le_bytes(bytes)
        });
    eprintln!("FLOWKEEP_TEST_SEED={seed}");
    let mut next = move |below: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % below
    };
    const ROUNDS: i64 = 20;
    // B's runs, each started and finished across a kill now and then.
    let mut runs = Vec::new();
    for i in 2..ROUNDS + 2 {
        let wb = watch(&b);
        a.json(&["config", "set", &wf, "a", &i.to_string()]).ok();
        let run = start_run(&b, &wf);
        std::thread::sleep(Duration::from_millis(next(300)));
        b.json(&["config", "set", &wf, "b", &i.to_string()]).ok();
        // Finished across a kill one round in two.
        let wb = if next(2) == 0 {
            drop(wb);
            watch(&b)
        } else {
            wb
        };
        finish_run(&b, &run);
        std::thread::sleep(Duration::from_millis(next(300)));
        drop(wb);
        runs.push(run);
    }
    let _wb = watch(&b);
    eventually("B's runs finished on A", Duration::from_secs(30), || {
        a.json(&["sync", "now"]).ok();
        runs.iter().all(|r| {
            let got = a.json(&["exec", "get", r]);
            got.code == 0 && got.json()["status"] == "succeeded"
        })
    });
    for d in [&a, &b] {
        eventually("both edits everywhere", Duration::from_secs(30), || {
            let v = d.json(&["config", "get", &wf]).ok().json()["values"].clone();
            v["a"] == ROUNDS + 1 && v["b"] == ROUNDS + 1
        });
        let history = d.json(&["history", &wf]).ok().json();
        for e in history.as_array().unwrap() {
            for c in e["changes"].as_array().unwrap() {
                let field = c["field"].as_str().unwrap();
                if field == "config.values.a" || field == "config.values.b" {
                    let (old, new) = (c["old"].as_i64(), c["new"].as_i64());
                    // The whole history beside the event: how it came to be.
                    assert!(
                        old.is_none() || new >= old,
                        "{field} lowered by {} on {}: {e}\nits history:\n{history:#}",
                        e["kind"],
                        if std::ptr::eq(d, &a) { "A" } else { "B" }
                    );
                }
            }
        }
    }
}

/// Two processes syncing one data dir would each hold their own copy of
/// the documents and record heads the other's lacks: one at a time. A
/// `sync now` while a watch runs waits for the watch to send its changes.
#[test]
fn one_process_at_a_time_syncs_a_data_dir() {
    use std::time::Duration;
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b, wf) = two_devices(&ws, &server);
    let first = watch(&b);
    let by_watch = |out: &support::Outcome| {
        out.code == 0
            && out
                .stdout
                .contains("by the `sync watch` (or the app) already running")
    };
    b.json(&["config", "set", &wf, "b", "5"]).ok();
    eventually(
        "`sync now` answered by B's running watch",
        Duration::from_secs(15),
        || by_watch(&b.run(&["sync", "now"])),
    );
    let on_a = |want: i64| {
        eventually(&format!("b = {want} on A"), Duration::from_secs(15), || {
            a.json(&["sync", "now"]).ok();
            a.json(&["config", "get", &wf]).ok().json()["values"]["b"] == want
        })
    };
    on_a(5);

    // A second watch waits for the first and takes over when it stops.
    let second = watch(&b);
    drop(first);
    b.json(&["config", "set", &wf, "b", "6"]).ok();
    eventually(
        "`sync now` answered by the second watch",
        Duration::from_secs(15),
        || by_watch(&b.run(&["sync", "now"])),
    );
    on_a(6);
    drop(second);
    let out = b.run(&["sync", "now"]);
    assert!(
        out.code == 0 && !by_watch(&out),
        "its own sync once no watch runs"
    );
}

#[test]
fn watchers_keep_devices_in_sync_say_when_the_server_is_out_of_reach_and_reconnect() {
    use std::time::Duration;
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b, wf) = two_devices(&ws, &server);
    let (mut wa, mut wb) = (watch(&a), watch(&b));

    // Edits made with the CLI while the watchers run reach the other device.
    a.json(&["config", "set", &wf, "a", "42"]).ok();
    let took = eventually("A's edit on B", Duration::from_secs(15), || {
        b.json(&["config", "get", &wf]).ok().json()["values"]["a"] == 42
    });
    eprintln!("edit A -> B through two watchers: {took:?}");
    let w2 = b
        .json(&["workflow", "create", "--name", "made on b"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("B's new workflow on A", Duration::from_secs(15), || {
        a.json(&["workflow", "get", &w2]).code == 0
    });

    // The server goes away and comes back on the same address.
    let port = server.port;
    drop(server);
    a.json(&["config", "set", &wf, "b", "7"]).ok();
    // Out of reach for a few seconds: `sync status` (and the app's header)
    // says so while the watcher keeps trying.
    let away = |fk: &Flowkeep| {
        fk.json(&["sync", "status"]).ok().json()["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot reach the sync server at ws://127.0.0.1:"))
    };
    eventually(
        "A saying the server is out of reach",
        Duration::from_secs(20),
        || away(&a),
    );
    let _server = ws.restart(port);
    eventually(
        "the edit made while the server was down",
        Duration::from_secs(40),
        || b.json(&["config", "get", &wf]).ok().json()["values"]["b"] == 7,
    );
    eventually(
        "A's notice cleared once it synced again",
        Duration::from_secs(20),
        || a.json(&["sync", "status"]).ok().json()["last_error"].is_null(),
    );

    // SIGTERM stops a watcher cleanly.
    for w in [&mut wa, &mut wb] {
        std::process::Command::new("kill")
            .args(["-TERM", &w.0.id().to_string()])
            .status()
            .unwrap();
        let status = w.0.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
    assert_eq!(
        a.json(&["sync", "status"]).ok().json()["pending_local_changes"],
        0
    );
}

#[test]
fn at_the_servers_connection_limit_a_device_is_told_why_and_a_watcher_waits_for_a_place() {
    use std::time::Duration;
    let ws = Workspace::new();
    let server = Server::start(
        &ws.bin,
        ws._data.path(),
        &["--max-connections-per-workspace", "1"],
    );
    let (a, b, wf) = two_devices(&ws, &server);
    let wa = watch(&a);

    // A's watcher holds the workspace's one place: B's one-off sync is
    // refused at once, with the server's reason.
    let mut why = String::new();
    eventually("B refused at the limit", Duration::from_secs(20), || {
        let r = b.json(&["sync", "now"]);
        if r.code == 0 {
            return false; // A's watcher is not connected yet
        }
        why = r.error()["message"].as_str().unwrap_or_default().to_owned();
        why.contains("--max-connections-per-workspace 1")
    });
    assert!(
        why.contains("workspace team already has 1 devices connected"),
        "{why}"
    );

    // B's watcher waits for a place and says why meanwhile.
    let _wb = watch(&b);
    eventually(
        "B's status saying the server is at its limit",
        Duration::from_secs(20),
        || {
            b.json(&["sync", "status"]).ok().json()["last_error"]["message"]
                .as_str()
                .is_some_and(|m| {
                    m.contains("already has 1 devices connected") && m.contains("asks again")
                })
        },
    );
    a.json(&["config", "set", &wf, "a", "5"]).ok();
    eventually("A's edit pushed", Duration::from_secs(20), || {
        a.json(&["sync", "status"]).ok().json()["pending_local_changes"] == 0
    });
    // A leaves; B's watcher gets the place and the edit.
    drop(wa);
    eventually(
        "A's edit on B once a place was free",
        Duration::from_secs(30),
        || b.json(&["config", "get", &wf]).ok().json()["values"]["a"] == 5,
    );
}

/// A private CA and a server certificate for IP 127.0.0.1 signed by it,
/// as PEM files in `dir`: (ca.pem, cert.pem, key.pem).
fn test_certificates(dir: &std::path::Path) -> [std::path::PathBuf; 3] {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let paths = [
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    ];
    std::fs::write(&paths[0], ca.pem()).unwrap();
    std::fs::write(&paths[1], leaf.pem()).unwrap();
    std::fs::write(&paths[2], leaf_key.serialize_pem()).unwrap();
    paths
}

#[test]
fn over_tls_a_trusted_certificate_syncs_and_an_untrusted_or_wrong_host_one_is_refused() {
    let ws = Workspace::new();
    let certs = tempfile::tempdir().unwrap();
    let [ca, cert, key] = test_certificates(certs.path());
    let server = Server::start(
        &ws.bin,
        ws._data.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let url = format!("wss://127.0.0.1:{}/sync", server.port);
    let ca = ca.to_str().unwrap();

    // No --ca-file: the private CA is not among the system's roots.
    let a = Flowkeep::new();
    let r = a.json(&["sync", "init", "--server", &url, "--token", &ws.token]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let msg = r.error()["message"].as_str().unwrap().to_owned();
    assert!(
        msg.contains("not trusted") && msg.contains("--ca-file"),
        "{msg}"
    );
    // The certificate names 127.0.0.1, not localhost.
    let wrong_host = format!("wss://localhost:{}/sync", server.port);
    let r = a.json(&[
        "sync",
        "init",
        "--server",
        &wrong_host,
        "--token",
        &ws.token,
        "--ca-file",
        ca,
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let msg = r.error()["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("not valid for localhost"), "{msg}");
    // A file that is not a certificate: named, nothing changed.
    let r = a.json(&[
        "sync",
        "init",
        "--server",
        &url,
        "--token",
        &ws.token,
        "--ca-file",
        key.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.error()["fields"][0]["field"], "ca_file");

    // Trusted: A starts the workspace, B joins, both over TLS; the CA is
    // kept, so later syncs need no flag.
    let id = a
        .json(&["workflow", "create", "--name", "over tls"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let join = a
        .json(&[
            "sync",
            "init",
            "--server",
            &url,
            "--token",
            &ws.token,
            "--ca-file",
            ca,
        ])
        .ok()
        .json()["join"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = Flowkeep::new();
    b.json(&["sync", "join", &join, "--token", &ws.token, "--ca-file", ca])
        .ok();
    assert_eq!(
        b.json(&["workflow", "get", &id]).ok().json()["name"],
        "over tls"
    );
    b.json(&["workflow", "update", &id, "--description", "edited on b"])
        .ok();
    b.json(&["sync", "now"]).ok();
    let report = a.json(&["sync", "now"]).ok().json();
    assert_eq!(
        report["unconfirmed"], 0,
        "the server confirmed every document: {report}"
    );
    assert_eq!(
        a.json(&["workflow", "get", &id]).ok().json()["description"],
        "edited on b"
    );
    // Two devices, two credentials; neither device keeps the workspace token.
    let devices = a.json(&["sync", "devices"]).ok().json();
    assert_eq!(devices["devices"].as_array().unwrap().len(), 2, "{devices}");
    for fk in [&a, &b] {
        let kept: String = rusqlite::Connection::open(fk.db())
            .unwrap()
            .query_row("SELECT value FROM meta WHERE key = 'sync.token'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(
            kept.starts_with("fkd_"),
            "a device keeps only its credential"
        );
        let db = std::fs::read(fk.db()).unwrap();
        assert!(!String::from_utf8_lossy(&db).contains(&ws.token));
    }
}

#[test]
fn a_revoked_device_is_shut_out_at_once_keeps_its_local_changes_and_the_others_sync_on() {
    let ws = Workspace::new();
    let server = ws.start();
    let (a, b) = (Flowkeep::new(), Flowkeep::new());
    let id = a
        .json(&["workflow", "create", "--name", "shared"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let join = ws.init(&a, &server);
    b.json(&["sync", "join", &join, "--token", &ws.token]).ok();
    let b_id = b.json(&["sync", "status"]).ok().json()["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut watch = Watch(
        std::process::Command::new(Flowkeep::bin())
            .arg("--data-dir")
            .arg(b.data_dir())
            .args(["sync", "watch"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(std::time::Duration::from_millis(500));

    let out = std::process::Command::new(&ws.bin)
        .arg("--data-dir")
        .arg(ws._data.path())
        .args(["device", "revoke", "--workspace", "team", &b_id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    a.json(&["workflow", "update", &id, "--description", "after revoke"])
        .ok();
    a.json(&["sync", "now"]).ok();

    // The watch ends with an error that says why.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = watch.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked device's watch is still running"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut watch.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("revoked"), "{stderr}");
    assert_ne!(
        b.json(&["workflow", "get", &id]).ok().json()["description"],
        "after revoke",
        "nothing reached the revoked device"
    );
    // Its own edits stay; syncing is refused, saying so.
    b.json(&["workflow", "update", &id, "--name", "kept offline"])
        .ok();
    let r = b.json(&["sync", "now"]);
    assert_eq!(r.code, 1);
    assert!(
        r.error()["message"].as_str().unwrap().contains("revoked"),
        "{}",
        r.stderr
    );
    assert_eq!(
        b.json(&["workflow", "get", &id]).ok().json()["name"],
        "kept offline"
    );
    // `sync status` (and the app's header, which reads it) says why.
    let status = b.json(&["sync", "status"]).ok().json();
    let why = status["last_error"]["message"].as_str().unwrap();
    assert!(why.contains("revoked"), "{status}");
    assert!(b
        .run(&["sync", "status"])
        .ok()
        .stdout
        .contains("last error"));
    a.json(&["sync", "now"]).ok();
    assert!(a.json(&["sync", "status"]).ok().json()["last_error"].is_null());
}

#[test]
fn at_the_workspaces_document_limit_sync_now_says_what_the_server_no_longer_takes() {
    let ws = Workspace::new();
    // The workspace root and one workflow.
    let server = Server::start(&ws.bin, ws._data.path(), &["--max-docs-per-workspace", "2"]);
    let a = Flowkeep::new();
    a.json(&["workflow", "create", "--name", "w", "--config", CFG])
        .ok();
    ws.init(&a, &server);
    let r = a.json(&["sync", "now"]).ok().json();
    let why = r["server_limit"].as_str().unwrap_or_default().to_owned();
    assert!(
        why.contains("workspace team holds 2 documents")
            && why.contains("--max-docs-per-workspace 2"),
        "{r}"
    );
    let status = a.json(&["sync", "status"]).ok().json();
    assert_eq!(
        status["server_limit"].as_str(),
        Some(why.as_str()),
        "{status}"
    );
    let text = a.run(&["sync", "now"]).ok().stdout;
    assert!(
        text.contains("The sync server says: workspace team holds 2 documents"),
        "{text}"
    );
}

#[test]
fn a_sync_that_fills_the_workspace_says_why_in_that_same_sync() {
    let ws = Workspace::new();
    // The workspace root and two workflows; the device brings four.
    let server = Server::start(&ws.bin, ws._data.path(), &["--max-docs-per-workspace", "3"]);
    let a = Flowkeep::new();
    ws.init(&a, &server);
    for i in 0..4 {
        a.json(&[
            "workflow",
            "create",
            "--name",
            &format!("w{i}"),
            "--config",
            CFG,
        ])
        .ok();
    }
    // The workspace had room when the device connected: the server says
    // so once it is full, on the connection of this sync.
    let r = a.json(&["sync", "now"]).ok().json();
    assert!(r["unconfirmed"].as_u64().unwrap_or(0) >= 1, "{r}");
    let why = r["server_limit"].as_str().unwrap_or_default();
    assert!(
        why.contains("workspace team holds 3 documents")
            && why.contains("--max-docs-per-workspace 3"),
        "not one past the limit, although the four came at once: {r}"
    );
    let status = a.json(&["sync", "status"]).ok().json();
    assert_eq!(status["server_limit"].as_str(), Some(why), "{status}");
    assert_eq!(status["unconfirmed"], r["unconfirmed"], "{status}");
    assert!(a.run(&["sync", "status"]).ok().stdout.contains(&format!(
        "not confirmed   {} document(s) the server had not taken",
        r["unconfirmed"]
    )));
    let text = a.run(&["sync", "now"]).ok().stdout;
    assert!(
        text.contains("The sync server says: workspace team holds")
            && text.contains("not yet confirmed by the server (see what it says above)"),
        "{text}"
    );
}

/// The workflow names a device that joins now, through `a`'s join string,
/// gets.
fn names_on_a_new_device(ws: &Workspace, a: &Flowkeep) -> Vec<String> {
    let b = Flowkeep::new();
    let join = a.json(&["sync", "status"]).ok().json()["join"]
        .as_str()
        .unwrap()
        .to_owned();
    b.json(&["sync", "join", &join, "--token", &ws.token]).ok();
    b.json(&["workflow", "list"]).ok().json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn changes_the_server_cannot_store_are_not_confirmed_and_reach_it_once_it_can() {
    let ws = Workspace::new();
    let server = Server::start(&ws.bin, ws._data.path(), &[]);
    let a = Flowkeep::new();
    a.json(&["workflow", "create", "--name", "before", "--config", CFG])
        .ok();
    ws.init(&a, &server);
    let stored = a.json(&["sync", "now"]).ok().json();
    assert_eq!(stored["unconfirmed"], 0, "{stored}");

    let db = server_support::refuse_document_writes(&ws._data.path().join("sync.db"));
    a.json(&["workflow", "create", "--name", "during", "--config", CFG])
        .ok();
    // The server replies to a change only once it is stored, and a failed
    // write ends the workspace's connections before any reply goes out:
    // the very first sync hears why and confirms nothing of its round.
    let r = a.json(&["sync", "now"]).ok().json();
    assert_eq!(
        r["server_limit"].as_str(),
        Some("the server could not store this workspace's changes; this device keeps them and sends them again"),
        "{r}"
    );
    assert!(
        r["unconfirmed"].as_u64().unwrap_or(0) >= 1,
        "the server could not store the change; the device must not count it as confirmed: {r}"
    );
    let text = a.run(&["sync", "status"]).ok().stdout;
    assert!(
        text.contains("could not store this workspace's changes"),
        "{text}"
    );
    let (failures, metrics) = server_counter(&server, "flowkeep_sync_storage_failures_total");
    assert!(failures >= 1, "{metrics}");

    // The disk has room again: the next sync stores the change, and says
    // nothing more of it.
    db.execute_batch("DROP TRIGGER disk_full").unwrap();
    drop(db);
    let r = a.json(&["sync", "now"]).ok().json();
    assert_eq!(r["unconfirmed"], 0, "{r}");
    assert_eq!(r["server_limit"], Value::Null, "{r}");

    // On disk, not only in the server's memory: a device that joins after a
    // restart gets both.
    let port = server.port;
    assert!(server.terminate().success());
    let _server = ws.restart(port);
    let names = names_on_a_new_device(&ws, &a);
    assert!(
        names.contains(&"before".to_owned()) && names.contains(&"during".to_owned()),
        "{names:?}"
    );
}

/// Answers every request on `port` with `status`, a `content_type` body
/// and nothing else, as a server (or a proxy in front of one) that cannot
/// take a device right now does, until the returned guard is dropped; the
/// port is closed then.
fn turning_away(port: u16, status: &str, content_type: &str, body: &str) -> TurningAway {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::spawn(move || {
        while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            };
            let _ = conn.set_nonblocking(false);
            let mut asked = Vec::new();
            let mut buf = [0u8; 1024];
            while !asked.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => asked.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(answer.as_bytes());
        }
    });
    TurningAway {
        stop,
        thread: Some(thread),
    }
}

struct TurningAway {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TurningAway {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_server_that_cannot_take_this_device_now_is_quoted_not_called_out_of_reach() {
    let ws = Workspace::new();
    let server = ws.start();
    let a = Flowkeep::new();
    let join = ws.init(&a, &server);
    let port = server.port;
    assert!(server.terminate().success());
    // Our server's words when a workspace rests after a storage failure.
    let sentence =
        "the server could not store workspace team's changes moments ago and tries again in 2 s; \
                    this device keeps them and sends them again";
    let _away = turning_away(
        port,
        "503 Service Unavailable",
        "text/plain; charset=utf-8",
        &format!("{sentence}\n"),
    );
    let said = format!(
        "the sync server at ws://127.0.0.1:{port}/sync cannot take this device right now (HTTP 503): {sentence}"
    );

    let r = a.json(&["sync", "now"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let failed = format!("sync failed: {said}");
    assert_eq!(r.error()["message"], failed.as_str(), "{}", r.stderr);
    let status = a.json(&["sync", "status"]).ok().json();
    assert_eq!(status["last_error"]["message"], said.as_str(), "{status}");
    // A device joining is told the same.
    let b = Flowkeep::new();
    let r = b.json(&["sync", "join", &join, "--token", &ws.token]);
    assert_ne!(r.code, 0);
    assert_eq!(r.error()["message"], failed.as_str(), "{}", r.stderr);

    // A proxy's error page is not quoted to the user: only its status.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = other.local_addr().unwrap().port();
    drop(other);
    let _proxy = turning_away(
        other_port,
        "502 Bad Gateway",
        "text/html",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
    );
    let join = join.replace(&format!(":{port}/"), &format!(":{other_port}/"));
    let r = b.json(&["sync", "join", &join, "--token", &ws.token]);
    assert_eq!(
        r.error()["message"],
        format!(
            "sync failed: the sync server at ws://127.0.0.1:{other_port}/sync cannot take this device right now \
             (HTTP 502): Bad Gateway"
        )
        .as_str(),
        "{}",
        r.stderr
    );
}

/// The watcher says why the server is away once it has been a while, and
/// says it again when the reason changes: a dial turned away while the
/// server shut down, then refused once it is gone (before, the first
/// sentence stayed, as the browser test of the sync badge once saw).
#[test]
fn a_watchers_notice_that_the_server_is_away_follows_the_latest_reason() {
    let ws = Workspace::new();
    let server = ws.start();
    let a = Flowkeep::new();
    ws.init(&a, &server);
    let port = server.port;
    let _watch = watch(&a);
    let said = |a: &Flowkeep| {
        a.json(&["sync", "status"]).ok().json()["last_error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let until = |what: &str, wanted: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let now = said(&a);
            if wanted(&now) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the watcher never said {what}; it says: {now:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    std::thread::sleep(std::time::Duration::from_millis(500));

    assert!(server.terminate().success());
    // What our server answers a dial while it stops (`http.rs`).
    let shutting = "shutting down";
    let away = turning_away(
        port,
        "503 Service Unavailable",
        "text/plain; charset=utf-8",
        &format!("{shutting}\n"),
    );
    until("the server's sentence", &|s| {
        s.ends_with("cannot take this device right now (HTTP 503): shutting down; trying again")
    });
    drop(away);
    until("that the server cannot be reached", &|s| {
        s == format!("cannot reach the sync server at ws://127.0.0.1:{port}/sync; trying again")
    });
}

/// A counter on the server's `/metrics` (0 when absent), with the whole text
/// to show when an assertion fails.
fn server_counter(server: &Server, name: &str) -> (u64, String) {
    let metrics = server_support::http_get_response(server.port, "/metrics HTTP/1.1");
    let value = metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    (value, metrics)
}

#[test]
fn a_change_over_the_servers_message_limit_is_refused_in_one_sentence_and_kept_here() {
    let ws = Workspace::new();
    let server = Server::start(&ws.bin, ws._data.path(), &["--max-message-bytes", "262144"]);
    let a = Flowkeep::new();
    a.json(&["workflow", "create", "--name", "small", "--config", CFG])
        .ok();
    ws.init(&a, &server);
    // A value of 600 kB in one change: its sync message is over 256 KiB.
    // Letters no compressor can shrink much (xorshift).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let big: String = (0..600_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    let cfg = serde_json::json!({
        "fields": [{"key": "blob", "type": "text"}],
        "values": {"blob": big}
    })
    .to_string();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), cfg).unwrap();
    let from_file = format!("@{}", file.path().display());
    let id = a
        .json(&[
            "workflow", "create", "--name", "big", "--config", &from_file,
        ])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = a.json(&["sync", "now"]).ok().json();
    let why = r["server_limit"].as_str().unwrap_or_default().to_owned();
    assert!(
        why.contains("larger than this server accepts") && why.contains("--max-message-bytes"),
        "{r}"
    );
    assert!(r["unconfirmed"].as_u64().unwrap_or(0) >= 1, "{r}");
    let text = a.run(&["sync", "status"]).ok().stdout;
    assert!(
        text.contains("the sync server closed the connection: a change is larger than this server accepts (256.0 KiB, --max-message-bytes)"),
        "{text}"
    );
    let (cut_off, metrics) = server_counter(&server, "flowkeep_sync_connections_cut_off_total");
    assert!(cut_off >= 1, "{metrics}");
    // Nothing is lost here, and what fits still syncs.
    assert_eq!(a.json(&["workflow", "get", &id]).ok().json()["name"], "big");
    let names = names_on_a_new_device(&ws, &a);
    assert!(names.contains(&"small".to_owned()), "{names:?}");
}

#[test]
fn a_restore_and_an_undelete_sync_like_any_change() {
    let ws = Workspace::new();
    let server = Server::start(&ws.bin, ws._data.path(), &[]);
    let a = Flowkeep::new();
    let id = a.json(&["workflow", "create", "--name", "v1"]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.json(&["workflow", "update", &id, "--name", "v2"]).ok();
    let join = ws.init(&a, &server);
    let b = Flowkeep::new();
    b.json(&["sync", "join", &join, "--token", &ws.token]).ok();
    let name_on_b = || b.json(&["workflow", "get", &id]).ok().json()["name"].clone();
    assert_eq!(name_on_b(), "v2");

    a.json(&["workflow", "restore", &id, "--to", "1"]).ok();
    a.json(&["sync", "now"]).ok();
    b.json(&["sync", "now"]).ok();
    assert_eq!(name_on_b(), "v1");

    a.json(&["workflow", "delete", &id]).ok();
    a.json(&["sync", "now"]).ok();
    b.json(&["sync", "now"]).ok();
    assert_eq!(b.run(&["workflow", "get", &id]).code, 4, "deleted on B too");
    a.json(&["workflow", "undelete", &id]).ok();
    a.json(&["sync", "now"]).ok();
    b.json(&["sync", "now"]).ok();
    assert_eq!(name_on_b(), "v1");
    // On B both arrived as merges from A, in its history.
    let kinds: Vec<String> = b
        .json(&["history", &id])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kinds.iter().filter(|k| *k == "remote.merged").count() >= 3,
        "{kinds:?}"
    );
}
