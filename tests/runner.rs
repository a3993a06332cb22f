//! `flowkeep run` with real child processes (small Python scripts made by
//! each test), retention, bulk delete and large exports, through the real
//! binary on temp data dirs.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::Flowkeep;

/// Creates a workflow that runs `script` (Python) with fields n (0..100) and mode.
fn job(fk: &Flowkeep, script: &str, timeout_s: u64) -> String {
    // A new name per workflow: the data dir's entry count is unique enough.
    let path = fk.data_dir().join(format!(
        "job-{}.py",
        std::fs::read_dir(fk.data_dir()).unwrap().count()
    ));
    std::fs::write(&path, script).unwrap();
    let cfg = json!({
        "run": {"command": ["python3", path], "timeout_s": timeout_s, "env": {"JOB_GREETING": "hi"}},
        "fields": [
            {"key": "n", "type": "number", "required": true, "min": 0, "max": 100},
            {"key": "mode", "type": "select", "options": ["ok", "fail", "sleep", "spam"], "default": "ok"}
        ],
        "values": {"n": 21}
    });
    let out = fk
        .json(&[
            "workflow",
            "create",
            "--name",
            "job",
            "--config",
            &cfg.to_string(),
        ])
        .ok()
        .json();
    out["id"].as_str().unwrap().to_owned()
}

const SCRIPT: &str = r#"
import json, os, sys, time
cfg = json.load(open(os.environ["FLOWKEEP_CONFIG"]))
assert json.load(sys.stdin) == cfg, "stdin and FLOWKEEP_CONFIG agree"
print("working", os.environ["JOB_GREETING"], os.environ["FLOWKEEP_EXECUTION_ID"], flush=True)
print("a warning", file=sys.stderr, flush=True)
mode = cfg.get("mode")
if mode == "fail":
    sys.exit(7)
if mode == "sleep":
    open(os.path.join(os.path.dirname(os.environ["FLOWKEEP_CONFIG"]), "..", "..", "child.pid"), "w").write(str(os.getpid()))
    time.sleep(60)
if mode == "spam":
    for i in range(20000):
        print("line %05d %s" % (i, "x" * 40))
print(json.dumps({"doubled": cfg["n"] * 2}))
"#;

fn executions(fk: &Flowkeep, wf: &str) -> Vec<Value> {
    fk.json(&["exec", "list", wf]).ok().json()["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_successful_run_streams_output_and_records_result_and_tails() {
    let fk = Flowkeep::new();
    let wf = job(&fk, SCRIPT, 30);
    let run = fk.run(&["run", &wf]).ok();
    assert!(
        run.stdout.contains("working hi"),
        "child stdout streamed to ours: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains("a warning"),
        "child stderr streamed to ours: {}",
        run.stderr
    );
    assert!(run.stderr.contains("succeeded"), "{}", run.stderr);
    let list = executions(&fk, &wf);
    assert_eq!(list.len(), 1);
    let e = &list[0];
    assert_eq!(
        (
            e["status"].as_str(),
            e["exit_code"].as_i64(),
            e["trigger"].as_str()
        ),
        (Some("succeeded"), Some(0), Some("cli"))
    );
    assert!(e["duration_ms"].as_i64().unwrap() >= 0);
    let out = &e["output"];
    assert_eq!(out["result"], json!({"doubled": 42}));
    assert!(out["stdout_tail"]
        .as_str()
        .unwrap()
        .contains(&format!("working hi {}", e["id"].as_str().unwrap())));
    assert_eq!(out["stderr_tail"], "a warning\n");
    let log = std::fs::read_to_string(out["log"].as_str().unwrap()).unwrap();
    // Whole lines in arrival order: stderr never cuts into a stdout line.
    let mut lines: Vec<&str> = log.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(
        lines[0].starts_with("a warning")
            && lines[1].starts_with("working hi ")
            && lines[2].contains("doubled"),
        "{log}"
    );
    // exec get shows it all to a person.
    let human = fk
        .run(&["exec", "get", e["id"].as_str().unwrap()])
        .ok()
        .stdout;
    assert!(
        human.contains("result    {\"doubled\":42}") && human.contains("output.log"),
        "{human}"
    );
    // --json: the execution on stdout, the child's output on stderr.
    let j = fk.json(&["run", &wf]).ok();
    assert_eq!(j.json()["status"], "succeeded");
    // Both child streams share our stderr here, so only pieces are asserted.
    assert!(
        j.stderr.contains("working") && j.stderr.contains("a warning"),
        "{}",
        j.stderr
    );
}

#[test]
fn failures_timeouts_and_refusals() {
    let fk = Flowkeep::new();
    let wf = job(&fk, SCRIPT, 30);
    let failed = fk.json(&["run", &wf, "--set", "mode=fail"]);
    assert_eq!(failed.code, 1);
    let e = failed.json();
    assert_eq!(
        (
            e["status"].as_str(),
            e["exit_code"].as_i64(),
            e["error"].as_str()
        ),
        (Some("failed"), Some(7), Some("exit code 7"))
    );
    let listed = fk
        .json(&["exec", "list", &wf, "--status", "failed"])
        .ok()
        .json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Invalid config (override out of range, unknown key, bad format): exit 3, nothing recorded.
    let before = fk.snapshot();
    for args in [
        ["run", &wf, "--set", "n=1000"],
        ["run", &wf, "--set", "colour=red"],
        ["run", &wf, "--set", "no-equals-sign"],
    ] {
        let r = fk.json(&args);
        assert_eq!(r.code, 3, "{args:?}: {}", r.stderr);
        assert!(r.error()["fields"][0]["field"].as_str().is_some());
    }
    assert_eq!(fk.snapshot(), before, "a refused run records nothing");

    // A workflow without a run command says so.
    let plain = fk
        .json(&["workflow", "create", "--name", "plain"])
        .ok()
        .json();
    let r = fk.json(&["run", plain["id"].as_str().unwrap()]);
    assert_eq!(r.code, 3);
    assert_eq!(r.error()["fields"][0]["field"], "run");

    // A program that does not exist: recorded as failed with the reason.
    let cfg = json!({"run": {"command": ["/no/such/program"]}});
    let missing = fk
        .json(&[
            "workflow",
            "create",
            "--name",
            "missing",
            "--config",
            &cfg.to_string(),
        ])
        .ok()
        .json();
    let r = fk.json(&["run", missing["id"].as_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot start `/no/such/program`"),
        "{}",
        r.stdout
    );

    // Timeout: the child (and its process group) is stopped, the run failed with error timeout.
    let slow = job(
        &fk,
        "import time\nprint('start', flush=True)\ntime.sleep(30)\n",
        1,
    );
    let t = Instant::now();
    let r = fk.json(&["run", &slow]);
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "timeout took {:?}",
        t.elapsed()
    );
    assert_eq!(r.code, 1);
    let e = r.json();
    assert_eq!(
        (e["status"].as_str(), e["error"].as_str()),
        (Some("failed"), Some("timeout"))
    );
    assert_eq!(e["output"]["stdout_tail"], "start\n");
}

#[test]
fn output_tails_are_bounded_and_the_log_has_everything() {
    let fk = Flowkeep::new();
    let wf = job(&fk, SCRIPT, 60);
    let e = fk.json(&["run", &wf, "--set", "mode=spam"]).ok().json();
    let out = &e["output"];
    let tail = out["stdout_tail"].as_str().unwrap();
    assert!(tail.len() <= 16 * 1024, "tail is {} bytes", tail.len());
    assert!(out["stdout_bytes"].as_u64().unwrap() > 900_000);
    assert_eq!(out["truncated"], true);
    assert!(tail.contains("line 19999"));
    assert_eq!(
        out["result"],
        json!({"doubled": 42}),
        "the result line after the spam is still found"
    );
    let log = std::fs::read_to_string(out["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("line 00000") && log.contains("line 19999"));
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn_run(fk: &Flowkeep, wf: &str) -> std::process::Child {
    Command::new(Flowkeep::bin())
        .arg("--data-dir")
        .arg(fk.data_dir())
        .args(["--json", "run", wf, "--set", "mode=sleep"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn running(fk: &Flowkeep, wf: &str) -> Vec<Value> {
    let r = fk
        .json(&["exec", "list", wf, "--status", "running"])
        .ok()
        .json();
    r["items"].as_array().unwrap().clone()
}

#[test]
fn sigterm_cancels_the_run_and_stops_the_child() {
    let fk = Flowkeep::new();
    let wf = job(&fk, SCRIPT, 60);
    let child = spawn_run(&fk, &wf);
    let pid_file = fk.data_dir().join("child.pid");
    wait_for("the job to start", || pid_file.exists());
    let job_pid = std::fs::read_to_string(&pid_file).unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (e["status"].as_str(), e["error"].as_str()),
        (Some("cancelled"), Some("cancelled"))
    );
    // The job process is gone too.
    wait_for("the job process to exit", || {
        !std::path::Path::new(&format!("/proc/{job_pid}")).exists()
    });
}

#[test]
fn a_crashed_runner_leaves_no_run_stuck_and_a_live_one_is_left_alone() {
    let fk = Flowkeep::new();
    let wf = job(&fk, SCRIPT, 60);
    let mut child = spawn_run(&fk, &wf);
    let pid_file = fk.data_dir().join("child.pid");
    wait_for("the job to start", || pid_file.exists());
    // Another flowkeep process opening the store while the run is alive
    // must not call it interrupted.
    assert_eq!(running(&fk, &wf).len(), 1);
    assert_eq!(running(&fk, &wf).len(), 1);
    // kill -9: no chance to record anything, or to stop the job; the job
    // is told by the OS that its parent died (setpriv --pdeathsig) and ends.
    child.kill().unwrap();
    child.wait().unwrap();
    let job_pid = std::fs::read_to_string(&pid_file).unwrap();
    wait_for("the orphaned job to end", || {
        !std::path::Path::new(&format!("/proc/{}", job_pid.trim())).exists()
    });
    // The next open notices the abandoned run.
    assert!(
        running(&fk, &wf).is_empty(),
        "the run is not stuck in running"
    );
    let e = &executions(&fk, &wf)[0];
    assert_eq!(
        (e["status"].as_str(), e["error"].as_str()),
        (Some("failed"), Some("interrupted"))
    );
    assert!(e["output"]["log"].as_str().unwrap().ends_with("output.log"));
    // Runs recorded by hand (no runner) are not touched.
    let manual = fk.json(&["exec", "start", &wf]).ok().json();
    fk.json(&["workflow", "list"]).ok();
    let again = fk
        .json(&["exec", "get", manual["id"].as_str().unwrap()])
        .ok()
        .json();
    assert_eq!(again["status"], "running");
}

#[test]
fn retention_after_each_run_and_by_prune() {
    let fk = Flowkeep::new();
    let wf = job(&fk, SCRIPT, 30);
    fk.json(&["exec", "retention", "--workflow", &wf, "--max-count", "2"])
        .ok();
    for _ in 0..4 {
        fk.json(&["run", &wf]).ok();
    }
    assert_eq!(
        executions(&fk, &wf).len(),
        2,
        "retention applied after each run"
    );
    let pruned = fk.sql_count("SELECT count(*) FROM events WHERE kind = 'executions.pruned'");
    assert_eq!(pruned, 2);

    // Global policy by age, applied by `exec prune`; the workflow's own policy is removed first.
    fk.json(&["exec", "retention", "--workflow", &wf, "--clear"])
        .ok();
    let shown = fk
        .json(&["exec", "retention", "--max-age", "1h"])
        .ok()
        .json();
    assert_eq!(shown["global"]["max_age"], "1h");
    let old = json!({"executions": [{"workflow_id": wf, "status": "failed", "started_at": 1_000, "completed_at": 2_000}]});
    import(&fk, &old);
    assert_eq!(executions(&fk, &wf).len(), 3);
    let r = fk.json(&["exec", "prune"]).ok().json();
    assert_eq!(
        r["deleted"], 1,
        "only the run from 1970 is older than an hour"
    );
    assert_eq!(executions(&fk, &wf).len(), 2);
    let bad = fk.json(&["exec", "retention", "--max-age", "soon"]);
    assert_eq!(bad.code, 3);
    assert_eq!(bad.error()["fields"][0]["field"], "retention.max_age");
}

/// Imports runs through the library on the same database, as another process would.
fn import(fk: &Flowkeep, runs: &Value) {
    let svc = flowkeep_store::Service::open(&fk.db(), Default::default()).unwrap();
    let input: flowkeep_core::commands::ImportExecutions =
        serde_json::from_value(runs.clone()).unwrap();
    svc.import_executions(input).unwrap();
}

#[test]
fn bulk_delete_shows_the_count_and_needs_confirmation() {
    let fk = Flowkeep::new();
    let wf = job(&fk, SCRIPT, 30);
    let runs: Vec<Value> = (0..10)
        .map(|i| {
            json!({"workflow_id": wf, "status": if i % 2 == 0 { "failed" } else { "succeeded" },
                   "started_at": 1_700_000_000_000i64 + i * 1000, "completed_at": 1_700_000_000_000i64 + i * 1000 + 5})
        })
        .collect();
    import(&fk, &json!({"executions": runs}));
    let before = fk.snapshot();
    // Not a terminal and no --yes: refused, with the count, nothing deleted.
    let r = fk.json(&[
        "exec",
        "delete",
        "--workflow",
        &wf,
        "--status",
        "failed",
        "--before",
        "2024-01-01",
    ]);
    assert_eq!(r.code, 3);
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .contains("5 execution(s) match"),
        "{}",
        r.stderr
    );
    assert_eq!(fk.snapshot(), before);
    let human = fk
        .run(&["exec", "delete", "--status", "failed", "--yes"])
        .ok();
    assert_eq!(human.stdout, "Deleted 5 execution(s).\n");
    assert_eq!(executions(&fk, &wf).len(), 5);
    let none = fk
        .json(&["exec", "delete", "--status", "failed", "--yes"])
        .ok()
        .json();
    assert_eq!(none["deleted"], 0);
    assert_eq!(
        fk.json(&["exec", "delete"]).code,
        3,
        "no ID and no filter is refused"
    );
}

#[test]
fn export_of_100000_executions_in_each_format() {
    let fk = Flowkeep::new();
    let wf = job(&fk, SCRIPT, 30);
    let tricky = "comma, \"quote\"\nnewline";
    let svc = flowkeep_store::Service::open(&fk.db(), Default::default()).unwrap();
    for batch in 0..10 {
        let executions = (0..10_000)
            .map(|i| {
                let k = batch * 10_000 + i;
                serde_json::from_value(json!({
                    "workflow_id": wf, "status": "failed",
                    "started_at": 1_700_000_000_000i64 + k, "completed_at": 1_700_000_000_000i64 + k + 3,
                    "exit_code": 2, "error": tricky, "output": {"k": k}
                }))
                .unwrap()
            })
            .collect();
        svc.import_executions(flowkeep_core::commands::ImportExecutions { executions })
            .unwrap();
    }
    drop(svc);
    for format in ["json", "ndjson", "csv"] {
        let path = fk.data_dir().join(format!("all.{format}"));
        let r = fk
            .json(&[
                "exec",
                "export",
                "--workflow",
                &wf,
                "--format",
                format,
                "--out",
                path.to_str().unwrap(),
            ])
            .ok()
            .json();
        assert_eq!(r["exported"], 100_000, "{format}");
        let text = std::fs::read_to_string(&path).unwrap();
        let rows: Vec<Value> = match format {
            "json" => serde_json::from_str(&text).unwrap(),
            "ndjson" => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            _ => {
                let mut reader = csv::Reader::from_reader(text.as_bytes());
                let header = reader.headers().unwrap().clone();
                assert_eq!(&header[7], "error");
                reader
                    .records()
                    .map(|r| {
                        let r = r.unwrap();
                        json!({"error": &r[7], "output": serde_json::from_str::<Value>(&r[10]).unwrap()})
                    })
                    .collect()
            }
        };
        assert_eq!(rows.len(), 100_000, "{format}");
        assert_eq!(
            rows[0]["error"], tricky,
            "{format}: commas, quotes and newlines survive"
        );
        assert_eq!(rows[0]["output"]["k"], 99_999, "{format}: newest first");
    }
}
