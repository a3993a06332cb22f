//! What runs is decided on this device: a run spec or retention policy
//! changed on another device is refused (exit 6) until this device approves
//! it, while config values sync and apply as plain data. Real `flowkeep`
//! processes and a real sync server on loopback.

mod server_support;
mod support;

use std::path::Path;

use serde_json::{json, Value};
use server_support::{create_workspace, server_bin_beside, Server};
use support::Flowkeep;

/// A config whose job appends a line to `marker` (so a test can count runs)
/// and prints `label`.
fn job_config(marker: &Path, label: &str, n: i64) -> String {
    json!({
        "fields": [{"key": "n", "type": "number"}],
        "values": {"n": n},
        "run": {
            "command": ["sh", "-c", format!("echo {label} >> '{}'", marker.display())],
            "timeout_s": 30
        }
    })
    .to_string()
}

/// `config` with a schedule of one run a minute.
fn with_schedule(config: &str) -> String {
    let mut c: Value = serde_json::from_str(config).unwrap();
    c["run"]["schedule"] = json!({"interval": "1m"});
    c.to_string()
}

fn runs_of(marker: &Path) -> Vec<String> {
    std::fs::read_to_string(marker)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

struct Devices {
    _server_data: tempfile::TempDir,
    _server: Server,
    server_bin: std::path::PathBuf,
    token: String,
    join: String,
    a: Flowkeep,
    b: Flowkeep,
}

impl Devices {
    /// A and B in one workspace; `wf` created on A before B joins.
    fn with_workflow(config: &str) -> (Devices, String) {
        let server_bin = server_bin_beside(&Flowkeep::bin());
        let server_data = tempfile::tempdir().unwrap();
        let token = create_workspace(&server_bin, server_data.path(), "team");
        let server = Server::start(&server_bin, server_data.path(), &[]);
        let (a, b) = (Flowkeep::new(), Flowkeep::new());
        let wf = a
            .json(&["workflow", "create", "--name", "job", "--config", config])
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
        b.json(&["sync", "join", &join, "--token", &token]).ok();
        let d = Devices {
            _server_data: server_data,
            _server: server,
            server_bin,
            token,
            join,
            a,
            b,
        };
        (d, wf)
    }

    /// B's changes reach A.
    fn b_to_a(&self) {
        self.b.json(&["sync", "now"]).ok();
        self.a.json(&["sync", "now"]).ok();
    }
}

fn approved(fk: &Flowkeep, wf: &str) -> bool {
    let got = fk.json(&["workflow", "get", wf]).ok().json();
    let listed = fk.json(&["workflow", "list"]).ok().json();
    let row = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == wf)
        .unwrap()
        .clone();
    assert_eq!(
        got["approval"]["approved"], row["approved"],
        "get and list agree"
    );
    got["approval"]["approved"].as_bool().unwrap()
}

fn device_of_last_change(fk: &Flowkeep, wf: &str) -> String {
    let h = fk.json(&["history", wf]).ok().json();
    h.as_array().unwrap().last().unwrap()["device_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_run_spec_changed_on_another_device_runs_only_after_approval() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("ran.log");
    let (d, wf) = Devices::with_workflow(&job_config(&marker, "original", 1));
    let (a, b) = (&d.a, &d.b);

    // Created here: it runs.
    a.run(&["run", &wf]).ok();
    assert_eq!(runs_of(&marker), ["original"]);
    assert!(approved(a, &wf));
    // B got it by sync: nothing of it is approved there.
    assert!(!approved(b, &wf));
    let refused = b.json(&["run", &wf]);
    assert_eq!(refused.code, 6, "{}", refused.stderr);
    assert_eq!(refused.error()["code"], "not_approved");

    // A config value changed on B is plain data: it applies on A and runs.
    b.json(&["config", "set", &wf, "n", "5"]).ok();
    d.b_to_a();
    assert_eq!(
        a.json(&["config", "get", &wf]).ok().json()["values"]["n"],
        5
    );
    assert!(approved(a, &wf));
    a.run(&["run", &wf]).ok();
    assert_eq!(runs_of(&marker).len(), 2);

    // The run spec changed on B: refused on A, from `run` and `exec start`.
    b.json(&[
        "config",
        "update",
        &wf,
        "--config",
        &job_config(&marker, "evil", 5),
    ])
    .ok();
    let b_device = device_of_last_change(b, &wf);
    d.b_to_a();
    assert!(!approved(a, &wf));
    let (events_before, _) = a.snapshot();
    let refused = a.run(&["run", &wf]);
    assert_eq!(refused.code, 6, "{}{}", refused.stdout, refused.stderr);
    for part in [
        "cli-test",
        &b_device,
        "evil",
        "original",
        "workflow approve",
    ] {
        assert!(
            refused.stderr.contains(part),
            "the refusal names {part}: {}",
            refused.stderr
        );
    }
    let refused = a.json(&["exec", "start", &wf]);
    assert_eq!(refused.code, 6, "{}", refused.stderr);
    assert_eq!(runs_of(&marker).len(), 2, "nothing ran");
    assert_eq!(a.snapshot().0, events_before, "a refusal records nothing");
    let human = a.run(&["workflow", "get", &wf]).ok().stdout;
    assert!(human.contains("NOT APPROVED"), "{human}");
    let listed = a.run(&["workflow", "list"]).ok().stdout;
    assert!(listed.contains("needs approval"), "{listed}");

    // A copy made here does not launder the approval.
    let copy = a.json(&["workflow", "duplicate", &wf]).ok().json();
    let copy_id = copy["id"].as_str().unwrap();
    assert_eq!(copy["approval"]["approved"], false);
    assert_eq!(a.run(&["run", copy_id]).code, 6);

    // Approve: one audited event, then it runs.
    let rev = a.json(&["workflow", "get", &wf]).ok().json()["revision"]
        .as_u64()
        .unwrap();
    let stale = a.json(&[
        "workflow",
        "approve",
        &wf,
        "--expected-revision",
        &(rev - 1).to_string(),
    ]);
    assert_eq!(stale.code, 5, "approving a stale view is a conflict");
    a.run(&["workflow", "approve", &wf]).ok();
    assert!(approved(a, &wf));
    let history = a.json(&["history", &wf]).ok().json();
    let last = history.as_array().unwrap().last().unwrap();
    assert_eq!(last["kind"], "workflow.approved");
    assert_eq!(last["origin"], "local");
    let events = a.snapshot().0;
    a.run(&["workflow", "approve", &wf]).ok();
    assert_eq!(a.snapshot().0, events, "approving twice appends nothing");
    a.run(&["run", &wf]).ok();
    assert_eq!(runs_of(&marker).last().unwrap(), "evil");

    // Approval is local: it never reaches B, and the rebuild agrees.
    a.json(&["sync", "now"]).ok();
    b.json(&["sync", "now"]).ok();
    let b_history = b.json(&["history", &wf]).ok().json();
    assert!(
        !b_history
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "workflow.approved"),
        "A's approval is not synced"
    );
    let before = a.json(&["workflow", "get", &wf]).ok().json();
    a.json(&["rebuild-projections"]).ok();
    assert_eq!(a.json(&["workflow", "get", &wf]).ok().json(), before);

    let update = |fk: &Flowkeep, config: &str| {
        fk.json(&["config", "update", &wf, "--config", config]).ok();
    };
    // A local edit of an approved run spec approves it.
    update(a, &job_config(&marker, "mine", 5));
    assert!(approved(a, &wf));

    // Over a change from elsewhere not approved yet, no edit here approves
    // it: not one of something else, not handing the schedule to another
    // device, not a whole run spec written over it. Only `approve`, which
    // shows the change.
    update(b, &with_schedule(&job_config(&marker, "from-b-again", 5)));
    d.b_to_a();
    assert!(!approved(a, &wf));
    a.json(&["workflow", "update", &wf, "--name", "renamed here"])
        .ok();
    a.json(&["config", "set", &wf, "n", "6"]).ok();
    let rev = a.json(&["workflow", "get", &wf]).ok().json()["revision"].clone();
    let handed = a
        .json(&[
            "schedule",
            "own",
            &wf,
            "--device",
            "0193d2c4-0000-7000-8000-000000000c0c",
        ])
        .ok()
        .json();
    assert_ne!(handed["revision"], rev, "the hand-over wrote the run spec");
    assert!(!approved(a, &wf), "edits over it approve nothing");
    assert_eq!(a.run(&["run", &wf]).code, 6);
    update(a, &job_config(&marker, "mine, over theirs", 6));
    assert!(!approved(a, &wf));
    assert_eq!(a.run(&["run", &wf]).code, 6);
    assert_eq!(
        runs_of(&marker).last().unwrap(),
        "evil",
        "nothing ran since"
    );
    // Written back to what is approved here, it is approved again.
    update(a, &job_config(&marker, "mine", 5));
    assert!(approved(a, &wf));
    let before = a.json(&["workflow", "get", &wf]).ok().json();
    a.json(&["rebuild-projections"]).ok();
    assert_eq!(a.json(&["workflow", "get", &wf]).ok().json(), before);

    // A device that joins later has approved nothing.
    let c = Flowkeep::new();
    c.json(&["sync", "join", &d.join, "--token", &d.token]).ok();
    assert_eq!(c.run(&["run", &wf]).code, 6);
    let _ = &d.server_bin;
}

#[test]
fn a_retention_policy_changed_elsewhere_deletes_nothing_until_approved() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("ran.log");
    let (d, wf) = Devices::with_workflow(&job_config(&marker, "job", 1));
    let (a, b) = (&d.a, &d.b);
    let now = chrono_now_ms();
    let runs: Vec<Value> = (1..=3)
        .map(|h| {
            json!({"workflow_id": wf, "status": "succeeded",
                   "started_at": now - h * 3_600_000, "completed_at": now - h * 3_600_000 + 1000})
        })
        .collect();
    let file = tmp.path().join("runs.json");
    std::fs::write(&file, Value::Array(runs).to_string()).unwrap();
    a.json(&["exec", "import", file.to_str().unwrap()]).ok();

    b.json(&["exec", "retention", "--workflow", &wf, "--max-count", "1"])
        .ok();
    d.b_to_a();
    assert!(!approved(a, &wf));
    a.json(&["exec", "prune", "--workflow", &wf]).ok();
    let left = a.json(&["exec", "list", &wf]).ok().json()["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(left, 3, "the unapproved policy deleted nothing");
    a.run(&["workflow", "approve", &wf]).ok();
    a.json(&["exec", "prune", "--workflow", &wf]).ok();
    let left = a.json(&["exec", "list", &wf]).ok().json()["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(left, 1, "the approved policy applies");
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
