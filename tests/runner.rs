//! `flowkeep run` with real child processes (small Python scripts made by
//! each test), retention, bulk delete and large exports, through the real
//! binary on temp data dirs.

mod support;

use std::io::{BufRead, BufReader};
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

    // A working directory that is not there is named, not taken for a
    // missing program.
    let cfg = json!({"run": {"command": ["true"], "cwd": "/no/such/dir"}});
    let nowhere = fk
        .json(&[
            "workflow",
            "create",
            "--name",
            "nowhere",
            "--config",
            &cfg.to_string(),
        ])
        .ok()
        .json();
    let r = fk.json(&["run", nowhere["id"].as_str().unwrap()]);
    assert_eq!(r.code, 1);
    let error = r.json()["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("run.cwd") && error.contains("/no/such/dir"),
        "{error}"
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
    // `executions`: the field's name before runs were called runs, still read.
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
    let svc = flowkeep_app::Service::open(&fk.db(), Default::default()).unwrap();
    let input: flowkeep_core::commands::ImportRuns = serde_json::from_value(runs.clone()).unwrap();
    svc.runs().import(input).unwrap();
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
    import(&fk, &json!({"runs": runs}));
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
            .contains("5 run(s) match"),
        "{}",
        r.stderr
    );
    assert_eq!(fk.snapshot(), before);
    let human = fk
        .run(&["exec", "delete", "--status", "failed", "--yes"])
        .ok();
    assert_eq!(human.stdout, "Deleted 5 run(s).\n");
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
    let svc = flowkeep_app::Service::open(&fk.db(), Default::default()).unwrap();
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
        svc.runs()
            .import(flowkeep_core::commands::ImportRuns { runs: executions })
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

/// `flowkeep --data-dir DIR ARGS` with a shell's `umask 022` and extra
/// variables in flowkeep's own environment.
fn flowkeep_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> support::Outcome {
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(Flowkeep::bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .envs(env.iter().copied())
        .env("FLOWKEEP_ACTOR", "cli-test")
        .output()
        .unwrap();
    support::Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn create(fk: &Flowkeep, config: &Value) -> String {
    fk.json(&[
        "workflow",
        "create",
        "--name",
        "w",
        "--config",
        &config.to_string(),
    ])
    .ok()
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_job_gets_a_clean_environment() {
    let fk = Flowkeep::new();
    let out = fk.data_dir().join("env.json");
    let script = fk.data_dir().join("env.py");
    std::fs::write(
        &script,
        "import json, os, sys\njson.dump(dict(os.environ), open(sys.argv[1], 'w'))\n",
    )
    .unwrap();
    // The interpreter itself: a launcher script (pyenv) would add its own variables.
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let python = String::from_utf8(python.stdout).unwrap().trim().to_owned();
    let wf = create(
        &fk,
        &json!({"run": {
            "command": [python, script, out],
            "env": {"SPEC_VAR": "from-spec"},
            "inherit_env": ["PASS_ME", "NOT_SET_ANYWHERE"]
        }}),
    );
    let r = flowkeep_in(
        fk.data_dir(),
        &["run", &wf],
        &[
            ("PROBE_SECRET", "probe-secret-value"),
            ("FLOWKEEP_SYNC_TOKEN", "token-value"),
            ("FLOWKEEP_PROBE", "1"),
            ("PASS_ME", "passed"),
            ("LC_TIME", "C"),
            ("TZ", "UTC"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let env: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    for secret in [
        "PROBE_SECRET",
        "FLOWKEEP_SYNC_TOKEN",
        "FLOWKEEP_PROBE",
        "FLOWKEEP_ACTOR",
    ] {
        assert!(!env.contains_key(secret), "{secret} reached the job");
    }
    assert!(
        !env.values()
            .any(|v| v.contains("token-value") || v.contains("probe-secret")),
        "{env:?}"
    );
    // The test harness's own variables (CARGO_*, RUST_*, ...) stay out too.
    let allowed = [
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "TZ",
        "TMPDIR",
        "TERM",
        "SPEC_VAR",
        "PASS_ME",
        "FLOWKEEP_CONFIG",
        "FLOWKEEP_EXECUTION_ID",
        "FLOWKEEP_WORKFLOW_ID",
    ];
    let extra: Vec<&String> = env
        .keys()
        // Python itself may add LC_CTYPE (PEP 538).
        .filter(|k| !allowed.contains(&k.as_str()) && !k.starts_with("LC_"))
        .collect();
    assert!(extra.is_empty(), "beyond the base: {extra:?}");
    assert_eq!(env["SPEC_VAR"], "from-spec");
    assert_eq!(env["PASS_ME"], "passed");
    assert_eq!(env["LC_TIME"], "C");
    assert_eq!(env["TZ"], "UTC");
    assert_eq!(env["PATH"], std::env::var("PATH").unwrap());
    assert!(env["FLOWKEEP_CONFIG"].ends_with("config.json"));
    assert_eq!(env["FLOWKEEP_WORKFLOW_ID"], wf);

    // flowkeep's own variables cannot be asked for: refused when the spec is saved.
    for name in ["FLOWKEEP_SYNC_TOKEN", "flowkeep_data_dir", "NOT A NAME"] {
        let r = fk.json(&[
            "workflow",
            "create",
            "--name",
            "x",
            "--config",
            &json!({"run": {"command": ["true"], "inherit_env": [name]}}).to_string(),
        ]);
        assert_eq!(r.code, 3, "{name}: {}", r.stderr);
        assert_eq!(
            r.error()["fields"][0]["field"],
            "run.inherit_env[0]",
            "{name}"
        );
    }
}

#[test]
fn files_are_private_whatever_the_umask() {
    let fk = Flowkeep::new();
    let data = fk.data_dir().join("new-data-dir");
    let mode = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let cfg = json!({"run": {"command": ["sh", "-c", "echo hi"]}});
    let r = flowkeep_in(
        &data,
        &[
            "--json",
            "workflow",
            "create",
            "--name",
            "w",
            "--config",
            &cfg.to_string(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let wf = r.json()["id"].as_str().unwrap().to_owned();
    let r = flowkeep_in(&data, &["--json", "run", &wf], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let run = data.join("runs").join(r.json()["id"].as_str().unwrap());
    let export = fk.data_dir().join("runs.csv");
    let r = flowkeep_in(
        &data,
        &[
            "exec",
            "export",
            "--format",
            "csv",
            "--out",
            export.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        [
            mode(&data),
            mode(&data.join("flowkeep.db")),
            mode(&data.join("runs")),
            mode(&run),
            mode(&run.join("output.log")),
            mode(&run.join("config.json")),
            mode(&export),
        ],
        [0o700, 0o600, 0o700, 0o700, 0o600, 0o600, 0o600]
    );
    // An install made before (0755 / 0644) is tightened when opened.
    use std::os::unix::fs::PermissionsExt;
    for (path, mode) in [
        (data.clone(), 0o755),
        (data.join("runs"), 0o755),
        (data.join("flowkeep.db"), 0o644),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    assert_eq!(flowkeep_in(&data, &["workflow", "list"], &[]).code, 0);
    assert_eq!(
        (
            mode(&data),
            mode(&data.join("runs")),
            mode(&data.join("flowkeep.db"))
        ),
        (0o700, 0o700, 0o600)
    );
}

#[test]
fn output_log_keeps_head_and_tail_of_12_mib() {
    let fk = Flowkeep::new();
    let script = "import sys\nw = sys.stdout.write\nw('FIRST-LINE\\n')\nc = ('x' * 1023 + '\\n') * 1024\nfor _ in range(12):\n    w(c)\nw('LAST-LINE\\n')\n";
    let wf = create(
        &fk,
        &json!({"run": {"command": ["python3", "-c", script], "timeout_s": 120}}),
    );
    let e = fk.json(&["run", &wf]).ok().json();
    let log = std::fs::read(e["output"]["log"].as_str().unwrap()).unwrap();
    assert!(
        log.len() <= 10 * 1024 * 1024 + 100,
        "output.log is {} bytes",
        log.len()
    );
    // Head and tail are cut at line ends of what the job wrote at once.
    assert!(
        log.len() >= 10 * 1024 * 1024 - 128 * 1024,
        "{} bytes",
        log.len()
    );
    assert!(log.starts_with(b"FIRST-LINE\n"));
    assert!(log.ends_with(b"LAST-LINE\n"));
    let text = String::from_utf8(log).unwrap();
    let markers: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("[flowkeep:"))
        .collect();
    assert_eq!(markers.len(), 1, "one line marks the cut");
    let cut: u64 = markers[0]
        .trim_start_matches("[flowkeep: ")
        .trim_end_matches(" bytes cut]")
        .parse()
        .unwrap();
    let total = 11 + 12 * 1024 * 1024 + 10;
    assert_eq!(
        cut + (text.len() - markers[0].len() - 1) as u64,
        total,
        "the cut counts exactly what is missing"
    );
    // Whole lines on both sides of the cut.
    assert!(text
        .lines()
        .all(|l| l.len() == 1023 || l.starts_with("[flowkeep:") || l.ends_with("-LINE")));
    assert_eq!(
        e["output"]["stdout_bytes"], total,
        "the record still counts everything"
    );
}

/// A job's config with its secrets in clear (`job-config.json`) goes as
/// soon as the job ends, also when its run can no longer be recorded as
/// finished by the runner (finished by hand, or deleted, while it ran).
#[test]
fn the_config_in_clear_goes_when_the_job_ends_even_if_its_run_was_finished_meanwhile() {
    let fk = Flowkeep::new();
    let gate = fk.data_dir().join("gate");
    let wf = create(
        &fk,
        &json!({
            "fields": [{"key": "api_key", "type": "secret"}],
            "values": {"api_key": "fk-secret-runner-test"},
            "run": {
                "command": ["sh", "-c", format!("while [ ! -e '{}' ]; do sleep 0.05; done", gate.display())],
                "timeout_s": 30
            }
        }),
    );
    let child = Command::new(Flowkeep::bin())
        .arg("--data-dir")
        .arg(fk.data_dir())
        .args(["--json", "run", &wf])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the run to start", || running(&fk, &wf).len() == 1);
    let id = running(&fk, &wf)[0]["id"].as_str().unwrap().to_owned();
    let job_config = fk.data_dir().join("runs").join(&id).join("job-config.json");
    wait_for("the job's config", || job_config.exists());
    fk.json(&["exec", "finish", &id, "--status", "failed"]).ok();
    std::fs::write(&gate, "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0), "the runner could not record it");
    assert!(
        !job_config.exists(),
        "the secrets in clear outlived the job: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn deleting_and_pruning_runs_removes_their_run_dirs() {
    let fk = Flowkeep::new();
    let wf = create(&fk, &json!({"run": {"command": ["sh", "-c", "echo hi"]}}));
    let run_dir = |id: &str| fk.data_dir().join("runs").join(id);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let e = fk.json(&["run", &wf]).ok().json();
        ids.push(e["id"].as_str().unwrap().to_owned());
    }
    assert!(ids.iter().all(|id| run_dir(id).is_dir()));

    fk.json(&["exec", "delete", &ids[0]]).ok();
    assert!(
        !run_dir(&ids[0]).exists(),
        "exec delete removes the run dir"
    );
    assert!(run_dir(&ids[1]).is_dir());

    // Retention after a run: only the newest stays, with its directory.
    fk.json(&["exec", "retention", "--workflow", &wf, "--max-count", "1"])
        .ok();
    let newest = fk.json(&["run", &wf]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(executions(&fk, &wf).len(), 1);
    assert!(!run_dir(&ids[1]).exists() && !run_dir(&ids[2]).exists());
    assert!(run_dir(&newest).is_dir());

    // exec prune --before, and a bulk delete.
    let later = (chrono_now_ms() + 60_000).to_string();
    fk.json(&["exec", "prune", "--workflow", &wf, "--before", &later])
        .ok();
    assert!(!run_dir(&newest).exists(), "exec prune removes the run dir");
    fk.json(&["exec", "retention", "--workflow", &wf, "--clear"])
        .ok();
    let last = fk.json(&["run", &wf]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fk.json(&["exec", "delete", "--workflow", &wf, "--yes"])
        .ok();
    assert!(
        !run_dir(&last).exists(),
        "a bulk delete removes the run dir"
    );
    assert_eq!(
        std::fs::read_dir(fk.data_dir().join("runs"))
            .unwrap()
            .count(),
        0
    );
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn overflowing_limits_and_junk_cursors_exit_2_and_delete_nothing() {
    let fk = Flowkeep::new();
    let wf = create(&fk, &json!({"fields": [], "values": {}}));
    let now = chrono_now_ms();
    let runs: Vec<Value> = (1..=3)
        .map(|h| json!({"workflow_id": wf, "status": "succeeded", "started_at": now - h * 3_600_000, "completed_at": now - h * 3_600_000 + 1000}))
        .collect();
    import(&fk, &json!({"runs": runs}));
    let before = fk.snapshot();
    for args in [
        &[
            "exec",
            "retention",
            "--workflow",
            &wf,
            "--max-count",
            "18446744073709551615",
        ][..],
        &[
            "exec",
            "retention",
            "--max-count",
            "99999999999999999999999",
        ],
        &[
            "exec",
            "retention",
            "--workflow",
            &wf,
            "--max-age",
            "20000000000w",
        ],
        &[
            "exec",
            "prune",
            "--workflow",
            &wf,
            "--before",
            "20000000000w",
        ],
        &["exec", "prune", "--before", "99999999999999999999"],
        &["exec", "delete", "--before", "2000000000w", "--yes"],
        &["exec", "list", "--since", "20000000000w"],
    ] {
        let r = fk.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    // Applying the policies afterwards: there is none, nothing goes.
    fk.json(&["exec", "prune", "--workflow", &wf]).ok();
    assert_eq!(fk.snapshot(), before, "nothing changed");
    assert_eq!(executions(&fk, &wf).len(), 3);

    for cursor in ["ünïcodé", "aüb", "zz", "0"] {
        for cmd in [&["workflow", "list"][..], &["exec", "list"]] {
            let mut args = cmd.to_vec();
            args.extend(["--cursor", cursor]);
            let r = fk.run(&args);
            assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
            assert!(r.stderr.contains("invalid cursor"), "{}", r.stderr);
            assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        }
    }
    // Bytes that are not UTF-8 at all.
    use std::os::unix::ffi::OsStrExt;
    for cmd in [["workflow", "list"], ["exec", "list"]] {
        let out = Command::new(Flowkeep::bin())
            .arg("--data-dir")
            .arg(fk.data_dir())
            .args(cmd)
            .arg("--cursor")
            .arg(std::ffi::OsStr::from_bytes(b"\xff\xfe"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // A valid cursor still pages.
    import(&fk, &json!({"runs": [runs[0].clone()]}));
    let page = fk.json(&["exec", "list", &wf, "--limit", "2"]).ok().json();
    let next = page["next_cursor"].as_str().unwrap();
    let rest = fk
        .json(&["exec", "list", &wf, "--limit", "2", "--cursor", next])
        .ok()
        .json();
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
}

#[test]
fn exports_go_beside_the_target_and_never_follow_a_symlink() {
    let fk = Flowkeep::new();
    let wf = create(&fk, &json!({"fields": [], "values": {}}));
    import(
        &fk,
        &json!({"runs": [{"workflow_id": wf, "status": "succeeded", "started_at": 1_000, "completed_at": 2_000}]}),
    );
    let dir = fk.data_dir();
    std::fs::write(dir.join("report.partial"), "unrelated file").unwrap();
    let report = dir.join("report.csv");
    fk.json(&[
        "exec",
        "export",
        "--format",
        "csv",
        "--out",
        report.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read_to_string(&report).unwrap().lines().count(), 2);
    assert_eq!(
        std::fs::read_to_string(dir.join("report.partial")).unwrap(),
        "unrelated file",
        "an unrelated report.partial is left alone"
    );
    assert!(!dir.join("report.csv.partial").exists());

    // A folder as --out is named before anything is written.
    let folder = dir.join("reports");
    std::fs::create_dir(&folder).unwrap();
    let r = fk.json(&["exec", "export", "--out", folder.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.error()["fields"][0]["field"], "out");
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .contains("is a folder"),
        "{}",
        r.stderr
    );
    assert!(!dir.join("reports.partial").exists());

    std::fs::write(dir.join("victim.txt"), "original").unwrap();
    std::os::unix::fs::symlink(dir.join("victim.txt"), dir.join("r2.csv.partial")).unwrap();
    let r2 = dir.join("r2.csv");
    let r = fk.json(&[
        "exec",
        "export",
        "--format",
        "csv",
        "--out",
        r2.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.error()["fields"][0]["field"], "out");
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .contains("r2.csv.partial"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("victim.txt")).unwrap(),
        "original"
    );
    assert!(!r2.exists());
}

#[test]
fn imported_times_that_are_not_dates_are_refused() {
    let fk = Flowkeep::new();
    let wf = create(&fk, &json!({"fields": [], "values": {}}));
    let file = fk.data_dir().join("runs.ndjson");
    std::fs::write(
        &file,
        format!(
            "{}\n",
            json!({"workflow_id": wf, "status": "succeeded", "started_at": i64::MIN, "completed_at": i64::MAX})
        ),
    )
    .unwrap();
    let before = fk.snapshot();
    let r = fk.json(&["exec", "import", file.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.error()["fields"][0]["field"], "runs[0].started_at");
    assert_eq!(fk.snapshot(), before);
    fk.json(&["exec", "list"]).ok();
}

#[test]
fn exec_logs_prints_a_runs_output_and_follows_it_while_it_runs() {
    let fk = Flowkeep::new();
    let go = fk.data_dir().join("go");
    let wf = create(
        &fk,
        &json!({"run": {"command": ["sh", "-c", format!(
            "echo 'line one'; while [ ! -e '{}' ]; do sleep 0.05; done; echo 'line two'",
            go.display()
        )]}, "fields": [], "values": {}}),
    );
    // A run going on in another process.
    let mut running = Command::new(Flowkeep::bin())
        .args(["--data-dir", fk.data_dir().to_str().unwrap(), "run", &wf])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let id = loop {
        let runs = fk.json(&["exec", "list", &wf]).ok().json();
        if let Some(id) = runs["items"][0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // Following: the first line while the run goes on, the rest once it is
    // written, and the command ends with the run.
    let mut follow = Command::new(Flowkeep::bin())
        .args([
            "--data-dir",
            fk.data_dir().to_str().unwrap(),
            "exec",
            "logs",
            "-f",
            &id,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "line one");
    // Without --follow: what is there now, and done.
    assert_eq!(fk.run(&["exec", "logs", &id]).ok().stdout, "line one\n");
    std::fs::write(&go, "").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "line two");
    assert!(lines.next().is_none(), "follow ends when the run ends");
    assert!(follow.wait().unwrap().success());
    assert!(running.wait().unwrap().success());
    let all = fk.json(&["exec", "logs", &id]).ok().json();
    assert_eq!(all["text"], "line one\nline two\n");
    assert_eq!(all["finished"], true);
    // An unknown run: not found (exit 4).
    let missing = fk.json(&["exec", "logs", "0190a4b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b"]);
    assert_eq!(missing.code, 4, "{}", missing.stderr);
}

/// `--set KEY=••••` on a secret field keeps the value it has, as saving a
/// config does: the job gets the secret, not four dots no rule checked.
#[test]
fn a_masked_secret_given_to_a_run_keeps_the_value_it_has() {
    let fk = Flowkeep::new();
    let got = fk.data_dir().join("got");
    let wf = create(
        &fk,
        &json!({
            "fields": [{"key": "pw", "type": "secret", "pattern": "^sk-"}],
            "values": {"pw": "sk-the-real-one"},
            "run": {"command": ["sh", "-c", format!("cat > '{}'", got.display())], "timeout_s": 30}
        }),
    );
    fk.json(&["run", &wf, "--set", "pw=••••"]).ok();
    let seen = std::fs::read_to_string(&got).unwrap();
    assert!(seen.contains("sk-the-real-one"), "{seen}");
}
