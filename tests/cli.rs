//! The real `flowkeep` binary against temp data dirs: the user guide's
//! commands, their output, exit codes and the JSON error shape.

mod support;

use serde_json::{json, Value};
use support::Flowkeep;

const CFG: &str = r#"{"fields":[{"key":"retries","type":"number","required":true,"integer":true,"min":0,"max":10},{"key":"mode","type":"select","options":["fast","safe"],"required":true},{"key":"endpoint","type":"text","format":"url"}],"values":{"retries":3,"mode":"fast","endpoint":"https://example.org/x"}}"#;

fn create(fk: &Flowkeep, name: &str) -> String {
    let out = fk
        .json(&["workflow", "create", "--name", name, "--config", CFG])
        .ok()
        .json();
    out["id"].as_str().unwrap().to_owned()
}

/// Runs a failing command and checks exit code, JSON error code, and that
/// the database did not change.
fn fails(fk: &Flowkeep, args: &[&str], exit: i32, code: &str) -> Value {
    let before = fk.snapshot();
    let run = fk.json(args);
    assert_eq!(run.code, exit, "{args:?}: {}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.is_empty(),
        "a failure printed a result: {}",
        run.stdout
    );
    let err = run.error();
    assert_eq!(err["code"], json!(code), "{err}");
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(fk.snapshot(), before, "{args:?} changed the database");
    err
}

fn fields(err: &Value) -> Vec<(String, String)> {
    err["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().into(),
                f["code"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn create_get_list_update_duplicate_delete() {
    let fk = Flowkeep::new();
    let created = fk
        .json(&[
            "workflow",
            "create",
            "--name",
            "Nightly ETL",
            "--description",
            "loads the warehouse",
            "--tag",
            "etl",
            "--config",
            CFG,
        ])
        .ok()
        .json();
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["name"], "Nightly ETL");
    assert_eq!(created["version"], "1.0.0");
    assert_eq!(created["revision"], 1);
    create(&fk, "Backup");

    let got = fk.json(&["workflow", "get", id]).ok().json();
    assert_eq!(got["config"]["values"]["retries"], 3);
    let human = fk.run(&["workflow", "get", id]).ok().stdout;
    assert!(
        human.contains("Nightly ETL") && human.contains("retries") && human.contains("0..10"),
        "{human}"
    );

    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["workflow", "list"];
        all.extend_from_slice(args);
        fk.json(&all).ok().json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&["--sort", "name"]), ["Backup", "Nightly ETL"]);
    assert_eq!(
        names(&["--sort", "name", "--desc"]),
        ["Nightly ETL", "Backup"]
    );
    assert_eq!(names(&["--search", "warehouse"]), ["Nightly ETL"]);
    assert_eq!(names(&["--tag", "etl"]), ["Nightly ETL"]);
    let page = fk.json(&["workflow", "list", "--limit", "1"]).ok().json();
    let cursor = page["next_cursor"].as_str().expect("a next page");
    assert_eq!(
        names(&["--limit", "1", "--cursor", cursor]),
        ["Nightly ETL"]
    );

    let updated = fk
        .json(&[
            "workflow",
            "update",
            id,
            "--name",
            "Nightly load",
            "--version",
            "1.1.0",
            "--expected-revision",
            "1",
        ])
        .ok()
        .json();
    assert_eq!(
        (updated["name"].as_str(), updated["revision"].as_u64()),
        (Some("Nightly load"), Some(2))
    );

    let copy = fk.json(&["workflow", "duplicate", id]).ok().json();
    assert_eq!(copy["name"], "Nightly load (copy)");
    assert_eq!(copy["config"], updated["config"]);

    fk.json(&["workflow", "delete", id]).ok();
    assert_eq!(names(&[]), ["Backup", "Nightly load (copy)"]);
    fails(&fk, &["workflow", "get", id], 4, "not_found");
    // The history of a deleted workflow is still there.
    let history = fk.json(&["history", id]).ok().json();
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["workflow.created", "workflow.updated", "workflow.deleted"]
    );
    assert_eq!(history[1]["actor"], "cli-test");
}

#[test]
fn config_get_set_update_validate() {
    let fk = Flowkeep::new();
    let id = create(&fk, "w");
    let cfg = fk.json(&["config", "get", &id]).ok().json();
    assert_eq!(
        cfg["values"],
        json!({"retries": 3, "mode": "fast", "endpoint": "https://example.org/x"})
    );
    fk.json(&["config", "set", &id, "retries", "5"]).ok();
    fk.json(&["config", "set", &id, "mode", "safe"]).ok();
    let c = rusqlite::Connection::open(fk.db()).unwrap();
    let v: String = c
        .query_row(
            "SELECT value FROM configs WHERE workflow_id = ?1 AND key = 'retries'",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, "5");

    let history = fk.run(&["history", &id]).ok().stdout;
    assert!(
        history.contains("config.values.retries: 3 → 5"),
        "{history}"
    );
    assert!(history.contains("by cli-test"), "{history}");

    // Unset: the value goes (an optional field); a required one without a
    // default cannot go, and nothing changes.
    let unset = fk.json(&["config", "unset", &id, "endpoint"]).ok().json();
    assert!(unset["values"].get("endpoint").is_none(), "{unset}");
    fails(
        &fk,
        &["config", "unset", &id, "retries"],
        3,
        "validation_failed",
    );
    fails(
        &fk,
        &["config", "unset", &id, "nope"],
        3,
        "validation_failed",
    );
    fk.json(&["config", "set", &id, "endpoint", "https://example.org/x"])
        .ok();

    let valid = fk.json(&["config", "validate", &id]).ok().json();
    assert_eq!(valid["valid"], true);
    let proposed = CFG.replace("\"retries\":3", "\"retries\":30");
    let report = fk.json(&["config", "validate", &id, "--config", &proposed]);
    assert_eq!(report.code, 3);
    assert_eq!(report.json()["errors"][0]["field"], "values.retries");

    let file = fk.data_dir().join("cfg.json");
    std::fs::write(&file, CFG.replace("\"retries\":3", "\"retries\":7")).unwrap();
    let updated = fk
        .json(&[
            "config",
            "update",
            &id,
            "--config",
            &format!("@{}", file.display()),
        ])
        .ok()
        .json();
    assert_eq!(updated["values"]["retries"], 7);
}

/// A config past what sync carries (nested deeper than 64 levels, or over
/// 2 MiB) is refused where it is written: accepted, it never synced, and
/// nested near serde_json's limit it left an event that did not read back,
/// so `history` and `rebuild-projections` failed as corrupt data.
#[test]
fn a_config_nested_or_sized_past_what_sync_carries_is_refused_and_history_reads() {
    let fk = Flowkeep::new();
    let nested = |levels: usize| format!("{}1{}", "[".repeat(levels - 1), "]".repeat(levels - 1));
    let doc = |value: &str| {
        format!(r#"{{"fields":[{{"key":"j","type":"json"}}],"values":{{"j":{value}}}}}"#)
    };
    let id = fk
        .json(&[
            "workflow",
            "create",
            "--name",
            "ok",
            "--config",
            &doc(&nested(64)),
        ])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for levels in [65, 125] {
        let err = fails(
            &fk,
            &[
                "workflow",
                "create",
                "--name",
                "deep",
                "--config",
                &doc(&nested(levels)),
            ],
            3,
            "validation_failed",
        );
        assert_eq!(fields(&err), [("values.j".into(), "depth".into())]);
        let message = err["fields"][0]["message"].as_str().unwrap();
        assert!(message.contains("at most 64"), "{message}");
    }
    let err = fails(
        &fk,
        &["config", "set", &id, "j", &nested(100)],
        3,
        "validation_failed",
    );
    assert_eq!(fields(&err), [("values.j".into(), "depth".into())]);
    let big = format!(
        r#"{{"fields":[{{"key":"t","type":"text"}}],"values":{{"t":"{}"}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let file = fk.data_dir().join("big.json");
    std::fs::write(&file, big).unwrap();
    let err = fails(
        &fk,
        &[
            "config",
            "update",
            &id,
            "--config",
            &format!("@{}", file.display()),
        ],
        3,
        "validation_failed",
    );
    assert_eq!(fields(&err), [("config".into(), "size".into())]);

    fk.json(&["history", &id]).ok();
    fk.json(&["rebuild-projections"]).ok();
}

#[test]
fn bad_input_gets_exit_codes_named_fields_and_changes_nothing() {
    let fk = Flowkeep::new();
    let id = create(&fk, "w");

    let err = fails(
        &fk,
        &["workflow", "create", "--name", "   "],
        3,
        "validation_failed",
    );
    assert_eq!(fields(&err), [("name".into(), "length".into())]);
    let long = "x".repeat(201);
    let err = fails(
        &fk,
        &["workflow", "create", "--name", &long],
        3,
        "validation_failed",
    );
    assert_eq!(fields(&err), [("name".into(), "length".into())]);

    let err = fails(
        &fk,
        &[
            "workflow",
            "create",
            "--name",
            "t",
            "--config",
            r#"{"fields":[{"key":"c","type":"colour"}]}"#,
        ],
        3,
        "validation_failed",
    );
    assert_eq!(
        fields(&err),
        [("fields.c.type".into(), "unknown_type".into())]
    );
    assert!(err["fields"][0]["message"]
        .as_str()
        .unwrap()
        .contains("expected one of text, number"));

    let err = fails(
        &fk,
        &[
            "workflow",
            "create",
            "--name",
            "t",
            "--config",
            r#"{"fields":[{"key":"p","type":"text","pattern":"(["}]}"#,
        ],
        3,
        "validation_failed",
    );
    assert_eq!(
        fields(&err),
        [("fields.p.pattern".into(), "pattern".into())]
    );

    let err = fails(
        &fk,
        &["config", "set", &id, "retries", "lots"],
        3,
        "validation_failed",
    );
    assert_eq!(fields(&err), [("values.retries".into(), "type".into())]);
    let err = fails(
        &fk,
        &["config", "set", &id, "retries", "11"],
        3,
        "validation_failed",
    );
    assert_eq!(fields(&err), [("values.retries".into(), "range".into())]);
    assert_eq!(
        err["fields"][0]["message"],
        "must be between 0 and 10, got 11"
    );

    let bad = CFG.replace(
        "\"retries\":3,\"mode\":\"fast\",\"endpoint\":\"https://example.org/x\"",
        "\"retries\":11,\"mode\":\"slow\",\"endpoint\":\"not a url\"",
    );
    let err = fails(
        &fk,
        &["config", "update", &id, "--config", &bad],
        3,
        "validation_failed",
    );
    let mut f = fields(&err);
    f.sort();
    assert_eq!(
        f,
        [
            ("values.endpoint".into(), "format".into()),
            ("values.mode".into(), "options".into()),
            ("values.retries".into(), "range".into())
        ]
    );

    let err = fails(
        &fk,
        &["config", "update", &id, "--config", "{not json"],
        3,
        "invalid_input",
    );
    assert_eq!(fields(&err), [("config".into(), "json".into())]);
    let err = fails(
        &fk,
        &["config", "update", &id, "--config", "@/no/such/file.json"],
        3,
        "invalid_input",
    );
    assert_eq!(fields(&err), [("config".into(), "file".into())]);

    fails(&fk, &["workflow", "get", "no-such-id"], 4, "not_found");
    fails(
        &fk,
        &["config", "set", "no-such-id", "retries", "1"],
        4,
        "not_found",
    );
    let err = fails(
        &fk,
        &[
            "workflow",
            "update",
            &id,
            "--name",
            "n",
            "--expected-revision",
            "9",
        ],
        5,
        "conflict",
    );
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("expected revision 9"),
        "{err}"
    );

    let err = fails(
        &fk,
        &["exec", "list", "--since", "someday"],
        3,
        "invalid_input",
    );
    assert_eq!(fields(&err), [("since".into(), "format".into())]);

    // Usage errors are clap's: exit 2.
    assert_eq!(fk.run(&["workflow", "create"]).code, 2);
    assert_eq!(fk.run(&["workflow", "list", "--sort", "colour"]).code, 2);

    // Human errors name the field and rule too.
    let human = fk.run(&["config", "set", &id, "retries", "11"]);
    assert_eq!(human.code, 3);
    assert!(
        human
            .stderr
            .contains("values.retries (range): must be between 0 and 10"),
        "{}",
        human.stderr
    );
}

#[test]
fn executions_record_list_filter_delete_prune_export() {
    let fk = Flowkeep::new();
    let id = create(&fk, "w");
    let mut ids = Vec::new();
    for i in 0..4 {
        let e = fk.json(&["exec", "start", &id]).ok().json();
        assert_eq!(e["status"], "running");
        assert_eq!(e["trigger"], "cli");
        let eid = e["id"].as_str().unwrap().to_owned();
        let status = if i % 2 == 0 { "succeeded" } else { "failed" };
        let out = format!(r#"{{"row": "a,b \"c\"\nd", "i": {i}}}"#);
        fk.json(&[
            "exec",
            "finish",
            &eid,
            "--status",
            status,
            "--exit-code",
            &i.to_string(),
            "--output",
            &out,
        ])
        .ok();
        ids.push(eid);
    }
    fails(
        &fk,
        &["exec", "finish", &ids[0], "--status", "failed"],
        5,
        "conflict",
    );
    let list = fk.json(&["exec", "list", &id]).ok().json();
    assert_eq!(list["items"].as_array().unwrap().len(), 4);
    assert_eq!(list["items"][0]["id"], ids[3], "newest first");
    let failed = fk
        .json(&["exec", "list", &id, "--status", "failed"])
        .ok()
        .json();
    assert_eq!(failed["items"].as_array().unwrap().len(), 2);
    let none = fk
        .json(&["exec", "list", &id, "--until", "2000-01-01"])
        .ok()
        .json();
    assert!(none["items"].as_array().unwrap().is_empty());
    let page = fk.json(&["exec", "list", &id, "--limit", "3"]).ok().json();
    let next = fk
        .json(&[
            "exec",
            "list",
            &id,
            "--limit",
            "3",
            "--cursor",
            page["next_cursor"].as_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(next["items"][0]["id"], ids[0]);

    let got = fk.json(&["exec", "get", &ids[1]]).ok().json();
    assert_eq!(
        (got["status"].as_str(), got["exit_code"].as_i64()),
        (Some("failed"), Some(1))
    );
    let human = fk.run(&["exec", "get", &ids[1]]).ok().stdout;
    assert!(human.contains("exit code 1"), "{human}");

    let csv_path = fk.data_dir().join("runs.csv");
    let done = fk
        .json(&[
            "exec",
            "export",
            "--workflow",
            &id,
            "--format",
            "csv",
            "--out",
            csv_path.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(done["exported"], 4);
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    let output: Value = serde_json::from_str(&rows[0][10]).unwrap();
    assert_eq!(output["row"], "a,b \"c\"\nd");
    assert!(!fk.data_dir().join("runs.partial").exists());

    let nd = fk
        .run(&["exec", "export", "--format", "ndjson"])
        .ok()
        .stdout;
    assert_eq!(nd.lines().count(), 4);
    let all: Value = serde_json::from_str(&fk.run(&["exec", "export"]).ok().stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 4);

    fk.json(&["exec", "delete", &ids[0]]).ok();
    fails(&fk, &["exec", "get", &ids[0]], 4, "not_found");
    let pruned = fk
        .json(&["exec", "prune", "--workflow", &id, "--before", "1d"])
        .ok()
        .json();
    assert_eq!(pruned["deleted"], 0, "nothing is a day old");
    let tomorrow = (chrono_like_now_ms() + 86_400_000).to_string();
    let pruned = fk
        .json(&["exec", "prune", "--workflow", &id, "--before", &tomorrow])
        .ok()
        .json();
    assert_eq!(pruned["deleted"], 3);
    assert_eq!(fk.sql_count("SELECT count(*) FROM executions"), 0);
    assert_eq!(
        fk.sql_count("SELECT count(*) FROM events WHERE kind = 'executions.pruned'"),
        1
    );
}

fn chrono_like_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn sync_before_setup_says_how() {
    let fk = Flowkeep::new();
    // Sync exists but needs setting up first, and says how.
    let run = fk.json(&["sync", "now"]);
    assert_eq!(run.code, 3);
    assert_eq!(run.error()["fields"][0]["code"], "not_configured");
}

#[test]
fn rebuild_projections_from_the_cli_keeps_the_tables() {
    let fk = Flowkeep::new();
    let id = create(&fk, "w");
    fk.json(&["config", "set", &id, "retries", "4"]).ok();
    fk.json(&["exec", "start", &id]).ok();
    let before = fk.snapshot();
    let out = fk.json(&["rebuild-projections"]).ok().json();
    assert_eq!(out["replayed_events"], 3);
    assert_eq!(fk.snapshot(), before);
}

#[test]
fn data_dir_comes_from_the_environment_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(Flowkeep::bin())
        .env("FLOWKEEP_DATA_DIR", dir.path())
        .args(["--json", "workflow", "create", "--name", "env"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("flowkeep.db").exists());
}

#[test]
fn killed_writers_lose_no_committed_change_and_leave_a_sound_file() {
    use std::process::{Command, Stdio};
    let fk = Flowkeep::new();
    let id = create(&fk, "w");
    // Writers in parallel; half of them are killed at staggered moments,
    // some before, some during, some after their commit.
    let mut children = Vec::new();
    for i in 0..24 {
        let child = Command::new(Flowkeep::bin())
            .arg("--data-dir")
            .arg(fk.data_dir())
            .args([
                "--json",
                "workflow",
                "create",
                "--name",
                &format!("writer {i}"),
                "--config",
                CFG,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        children.push((i, child));
    }
    let mut committed = Vec::new();
    for (i, mut child) in children {
        if i % 2 == 1 {
            std::thread::sleep(std::time::Duration::from_millis(i as u64));
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            committed.push(v["id"].as_str().unwrap().to_owned());
        }
    }
    assert!(
        committed.len() >= 12,
        "the writers that were not killed all succeed: {}",
        committed.len()
    );
    let c = rusqlite::Connection::open(fk.db()).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(c);
    for wid in &committed {
        fk.json(&["workflow", "get", wid]).ok();
    }
    // Every event has its projection: a rebuild changes nothing.
    let workflows = fk.sql_count("SELECT count(*) FROM workflows");
    let created = fk.sql_count("SELECT count(*) FROM events WHERE kind = 'workflow.created'");
    assert_eq!(workflows, created);
    let before = fk.snapshot();
    fk.json(&["rebuild-projections"]).ok();
    assert_eq!(fk.snapshot(), before);
    fk.json(&["config", "set", &id, "retries", "2"]).ok();
}

#[test]
fn exec_import_records_runs_from_ndjson_or_an_array_all_or_none() {
    let fk = Flowkeep::new();
    let wf = create(&fk, "imported");
    let run = |started: i64, status: &str| json!({"workflow_id": wf, "status": status, "started_at": started, "completed_at": started + 500, "exit_code": 0});
    let ndjson = fk.data_dir().join("runs.ndjson");
    std::fs::write(
        &ndjson,
        format!(
            "{}\n\n{}\n",
            run(1_700_000_000_000, "succeeded"),
            run(1_700_000_100_000, "failed")
        ),
    )
    .unwrap();
    let out = fk
        .json(&["exec", "import", ndjson.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(out["imported"], 2);
    let array = fk.data_dir().join("runs.json");
    std::fs::write(
        &array,
        json!([run(1_700_000_200_000, "cancelled")]).to_string(),
    )
    .unwrap();
    fk.json(&["exec", "import", array.to_str().unwrap()]).ok();
    let list = fk.json(&["exec", "list", &wf]).ok().json();
    let statuses: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["cancelled", "failed", "succeeded"]);

    // A bad line is named, and nothing of the file is recorded.
    std::fs::write(
        &ndjson,
        format!(
            "{}\n{{\"workflow_id\": 1}}\n",
            run(1_700_000_300_000, "succeeded")
        ),
    )
    .unwrap();
    let err = fails(
        &fk,
        &["exec", "import", ndjson.to_str().unwrap()],
        3,
        "invalid_input",
    );
    assert_eq!(err["fields"][0]["field"], "line 2", "{err}");
    // A run of an unknown workflow: refused as a whole.
    let mut unknown = run(1_700_000_400_000, "succeeded");
    unknown["workflow_id"] = json!("nope");
    std::fs::write(
        &array,
        json!([run(1_700_000_500_000, "succeeded"), unknown]).to_string(),
    )
    .unwrap();
    let run_out = fk.json(&["exec", "import", array.to_str().unwrap()]);
    assert_ne!(run_out.code, 0);
    assert_eq!(
        fk.json(&["exec", "list", &wf]).ok().json()["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // An exit status no platform gives, an output of more than 1 MiB: each
    // named, nothing recorded.
    let mut odd = run(1_700_000_600_000, "failed");
    odd["exit_code"] = json!(99_999_999_999i64);
    let mut big = run(1_700_000_700_000, "succeeded");
    big["output"] = json!({"result": "x".repeat(1 << 20)});
    std::fs::write(&array, json!([odd, big]).to_string()).unwrap();
    let err = fails(
        &fk,
        &["exec", "import", array.to_str().unwrap()],
        3,
        "validation_failed",
    );
    assert_eq!(
        fields(&err),
        [
            ("runs[0].exit_code".to_owned(), "range".to_owned()),
            ("runs[1].output".to_owned(), "max_length".to_owned())
        ],
        "{err}"
    );
    let started = fk.json(&["exec", "start", &wf]).ok().json();
    fails(
        &fk,
        &[
            "exec",
            "finish",
            started["id"].as_str().unwrap(),
            "--status",
            "failed",
            "--exit-code",
            "99999999999",
        ],
        3,
        "validation_failed",
    );
}

/// Text that may come from another device (here a run's error) reaches a
/// terminal escaped, whichever way it is printed; a CSV sent to a pipe
/// keeps it as it is. A terminal is `script`'s pseudo-terminal.
#[test]
fn escape_sequences_in_run_text_are_shown_escaped_on_a_terminal() {
    let fk = Flowkeep::new();
    let wf = create(&fk, "w");
    let run = fk.json(&["exec", "start", &wf]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let error = "bad\u{1b}[2Jthing\u{7}";
    let args = [
        "exec", "finish", &run, "--status", "failed", "--error", error,
    ];
    fk.json(&args).ok();

    let on_a_terminal = |args: &str| {
        let command = format!(
            "{} --data-dir {} {args}",
            Flowkeep::bin().display(),
            fk.data_dir().display()
        );
        let out = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .output()
            .expect("script (util-linux) runs");
        assert!(out.status.success(), "{command}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for args in [format!("exec get {run}"), "exec export --format csv".into()] {
        let shown = on_a_terminal(&args);
        assert!(!shown.contains(['\u{1b}', '\u{7}']), "{args}: {shown:?}");
        assert!(
            shown.contains("bad\\u{1b}[2Jthing\\u{7}"),
            "{args}: {shown}"
        );
    }
    let piped = fk.run(&["exec", "export", "--format", "csv"]).ok();
    assert!(piped.stdout.contains(error), "{}", piped.stdout);
}

/// A text field made a secret: its values show in clear nowhere, not even
/// those from before it became one (history, a diff across the change, the
/// workflow and its config), in JSON and to a person alike.
#[test]
fn a_value_made_a_secret_shows_in_clear_nowhere_in_its_history() {
    let fk = Flowkeep::new();
    let wf = fk
        .json(&[
            "workflow",
            "create",
            "--name",
            "keys",
            "--config",
            r#"{"fields":[{"key":"k","type":"text"}],"values":{"k":"sk-live-first"}}"#,
        ])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fk.json(&["config", "set", &wf, "k", "sk-live-second"]).ok();
    fk.json(&[
        "config",
        "update",
        &wf,
        "--config",
        r#"{"fields":[{"key":"k","type":"secret"}],"values":{"k":"sk-live-now"}}"#,
    ])
    .ok();
    let views: [&[&str]; 4] = [
        &["history", &wf],
        &["workflow", "diff", &wf, "1"],
        &["workflow", "get", &wf],
        &["config", "get", &wf],
    ];
    for view in views {
        for shown in [fk.json(view).ok().stdout, fk.run(view).ok().stdout] {
            assert!(
                !shown.contains("sk-live"),
                "{view:?} shows a secret: {shown}"
            );
        }
    }
    let history = fk.json(&["history", &wf]).ok().stdout;
    assert!(history.contains("••••"), "{history}");
}

/// `workflow export --dir` into a folder of the user's (a repository, the
/// home folder) leaves its mode alone; a folder it makes is private.
#[test]
fn exporting_into_an_existing_folder_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let fk = Flowkeep::new();
    fk.json(&["workflow", "create", "--name", "shared"]).ok();
    let repo = tempfile::tempdir().unwrap();
    std::fs::set_permissions(repo.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = repo.path().to_str().unwrap();
    fk.json(&["workflow", "export", "--dir", dir]).ok();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(repo.path()), 0o755);
    let new = repo.path().join("flows");
    fk.json(&["workflow", "export", "--dir", new.to_str().unwrap()])
        .ok();
    assert_eq!(mode(&new), 0o700);
}

/// Two workflows of the same name exported one at a time: the second does
/// not write over the first's file.
#[test]
fn exporting_one_workflow_never_overwrites_anothers_file_of_the_same_name() {
    let fk = Flowkeep::new();
    let id = |v: Value| v["id"].as_str().unwrap().to_owned();
    let a = id(fk
        .json(&["workflow", "create", "--name", "Report"])
        .ok()
        .json());
    let b = id(fk
        .json(&["workflow", "create", "--name", "Report"])
        .ok()
        .json());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    fk.json(&["workflow", "export", "--dir", d, "--id", &a])
        .ok();
    fk.json(&["workflow", "export", "--dir", d, "--id", &b])
        .ok();
    // And again: each goes to its own file.
    fk.json(&["workflow", "export", "--dir", d, "--id", &a])
        .ok();
    let mut held: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    held.sort();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held.iter().any(|t| t.contains(&a)) && held.iter().any(|t| t.contains(&b)));
}

/// An import reads regular files only, and no more than a file may hold:
/// a symbolic link in the folder is skipped (a repository's link could
/// point anywhere here), a device named outright is refused at once.
#[test]
fn an_import_reads_regular_files_only_and_follows_no_link_in_its_folder() {
    let fk = Flowkeep::new();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("elsewhere.flowkeep.yaml");
    std::fs::write(&secret, "name: from outside the folder\n").unwrap();
    let repo = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&secret, repo.path().join("link.flowkeep.yaml")).unwrap();
    std::fs::write(
        repo.path().join("mine.flowkeep.yaml"),
        "name: in the folder\n",
    )
    .unwrap();
    let d = repo.path().to_str().unwrap();
    let report = fk.json(&["workflow", "import", "--dir", d]).ok().stdout;
    assert!(report.contains("in the folder"), "{report}");
    assert!(!report.contains("from outside"), "{report}");

    let zero = fk.json(&["workflow", "import", "/dev/zero"]);
    assert_eq!(zero.code, 3, "{}", zero.stderr);
    assert!(
        zero.stderr.contains("not a regular file"),
        "{}",
        zero.stderr
    );
}

/// A secret typed in clear into a file that updates a workflow is checked
/// against its field's rules before it is sealed.
#[test]
fn a_secret_in_a_file_that_updates_a_workflow_is_checked_before_it_is_sealed() {
    let fk = Flowkeep::new();
    let wf = fk
        .json(&[
            "workflow",
            "create",
            "--name",
            "api",
            "--config",
            r#"{"fields":[{"key":"k","type":"secret","pattern":"^sk-"}],"values":{"k":"sk-good"}}"#,
        ])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    fk.json(&["workflow", "export", "--dir", d]).ok();
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("k: ••••") || text.contains("k: '••••'") || text.contains("fkenc:"),
        "{text}"
    );
    let edited: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("k:") {
                format!("{}k: nope", &l[..l.len() - l.trim_start().len()])
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&file, edited).unwrap();
    let (events, _) = fk.snapshot();
    let refused = fk.json(&["workflow", "import", "--dir", d]);
    assert_eq!(refused.code, 3, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("config.values.k"),
        "{}",
        refused.stderr
    );
    assert_eq!(fk.snapshot().0, events, "nothing written");
    let _ = wf;
}

/// A JSON argument or a runs file names a regular file: a device named by
/// mistake is refused at once (exit 3), not read until memory runs out.
#[test]
fn file_arguments_are_regular_files_only() {
    let fk = Flowkeep::new();
    // A named pipe nobody writes to: opening it the usual way waits for
    // good.
    let fifo = fk.data_dir().join("pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let at_fifo = format!("@{}", fifo.display());
    let fifo = fifo.to_str().unwrap();
    for args in [
        &[
            "workflow",
            "create",
            "--name",
            "x",
            "--config",
            "@/dev/zero",
        ][..],
        &["exec", "import", "/dev/zero"][..],
        &["schedule", "preview", "@/dev/zero"][..],
        &["workflow", "create", "--name", "x", "--config", &at_fifo][..],
        &["exec", "import", fifo][..],
        &["workflow", "import", fifo][..],
    ] {
        let out = fk.json(args);
        assert_eq!(out.code, 3, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("not a regular file"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let far = fk.json(&[
        "call",
        "preview_schedule",
        r#"{"schedule": {"interval": "1s"}, "from": -9223372036854775808}"#,
    ]);
    assert_eq!(far.code, 3, "{}", far.stderr);
    assert!(far.stderr.contains("from"), "{}", far.stderr);
}

/// The actor every event records is one line of plain text: a name that
/// would fake a line of history is refused, and nothing is written.
#[test]
fn the_actor_is_one_plain_line_or_the_command_is_refused() {
    let fk = Flowkeep::new();
    let id = create(&fk, "first");
    let before = fk.snapshot();
    for bad in ["evil\nfake line on device x (local)", "a\u{1b}[2J", "   "] {
        let out = fk
            .command(&["--json", "workflow", "update", &id, "--name", "second"])
            .env("FLOWKEEP_ACTOR", bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{bad:?}: {stderr}");
        assert!(stderr.contains("FLOWKEEP_ACTOR"), "{bad:?}: {stderr}");
        assert_eq!(fk.snapshot(), before, "{bad:?} wrote something");
    }
    // Unset or empty: the login name.
    let out = fk
        .command(&["--json", "workflow", "update", &id, "--name", "second"])
        .env("FLOWKEEP_ACTOR", "")
        .env("USER", "login-name")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let actor: String = rusqlite::Connection::open(fk.db())
        .unwrap()
        .query_row(
            "SELECT actor FROM events ORDER BY rowid DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(actor, "login-name");
}

/// With `--json` a command line that cannot be read is an error in the one
/// JSON shape too (code `usage`, exit 2), naming the argument.
#[test]
fn usage_errors_are_json_with_json() {
    let fk = Flowkeep::new();
    let out = fk.json(&["exec", "list", "--limit", "abc"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let err: Value = serde_json::from_str(out.stderr.trim()).expect(&out.stderr);
    assert_eq!(err["code"], "usage", "{err}");
    assert_eq!(err["fields"][0]["field"], "--limit", "{err}");
    assert!(err["message"].as_str().unwrap().contains("abc"), "{err}");
    let out = fk.json(&["workflow", "list", "--cursor", "zz"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let err: Value = serde_json::from_str(out.stderr.trim()).expect(&out.stderr);
    assert_eq!(err["fields"][0]["field"], "--cursor", "{err}");
    // Without --json, clap's own text; help is not an error.
    let out = fk.run(&["exec", "list", "--limit", "abc"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    let help = fk.json(&["exec", "list", "--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);
    assert!(help.stdout.contains("--limit"), "{}", help.stdout);
}

/// A secrets key can be given on stdin (`-`), out of the process list.
#[test]
fn a_secrets_key_is_taken_from_stdin_with_a_dash() {
    use std::io::Write;
    let a = Flowkeep::new();
    let b = Flowkeep::new();
    let shown = a.json(&["secrets", "key"]).ok().json();
    let key = shown["key"].as_str().unwrap().to_owned();
    let add = |input: &str| {
        let mut child = b
            .command(&["--json", "secrets", "key", "--add", "-"])
            .env("FLOWKEEP_KEYCHAIN", "off")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let empty = add("\n");
    assert_eq!(empty.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("--add"));
    let added = add(&format!("{key}\n"));
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let added: Value = serde_json::from_slice(&added.stdout).unwrap();
    assert_eq!(added["key_id"], shown["key_id"], "{added}");
}
