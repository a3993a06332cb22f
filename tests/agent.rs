//! `flowkeep agent` as a user runs it: a real process, a 2-second interval,
//! SIGTERM, and a second agent that waits for the first.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Flowkeep;

fn start_agent(fk: &Flowkeep) -> Child {
    Command::new(Flowkeep::bin())
        .arg("--data-dir")
        .arg(fk.data_dir())
        .arg("agent")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the agent starts")
}

fn scheduled_runs(fk: &Flowkeep, id: &str) -> Vec<Value> {
    let out = fk.json(&["exec", "list", id, "--limit", "200"]).ok().json();
    out["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"] == "schedule")
        .cloned()
        .collect()
}

fn terminate(child: &mut Child) -> Duration {
    let t = Instant::now();
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    loop {
        if child.try_wait().unwrap().is_some() {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the agent ignores SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_agent_runs_a_two_second_schedule_and_hands_over_to_the_next() {
    let fk = Flowkeep::new();
    let marks = fk.data_dir().join("marks");
    let script = format!("echo $FLOWKEEP_EXECUTION_ID >> {}", marks.display());
    let config = serde_json::json!({
        "run": {"command": ["sh", "-c", script], "schedule": {"interval": "2s"}}
    });
    let id = fk
        .json(&[
            "workflow",
            "create",
            "--name",
            "tick",
            "--config",
            &config.to_string(),
        ])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut first = start_agent(&fk);
    let deadline = Instant::now() + Duration::from_secs(20);
    while scheduled_runs(&fk, &id).len() < 2 {
        assert!(Instant::now() < deadline, "no two scheduled runs in 20 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = fk.json(&["agent", "status"]).ok().json();
    assert_eq!(status["running"], true);
    assert_eq!(status["pid"], first.id());

    // A second agent waits while the first runs, and takes over when it stops.
    let mut second = start_agent(&fk);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fk.json(&["agent", "status"]).ok().json()["pid"], first.id());
    assert!(terminate(&mut first) < Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Exit 1 while none runs (between the two).
        let s = fk.json(&["agent", "status"]).json();
        if s["pid"] == second.id() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second agent never took over: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = scheduled_runs(&fk, &id).len();
    let deadline = Instant::now() + Duration::from_secs(20);
    while scheduled_runs(&fk, &id).len() <= before {
        assert!(Instant::now() < deadline, "the second agent ran nothing");
        std::thread::sleep(Duration::from_millis(200));
    }
    terminate(&mut second);
    let stopped = fk.run(&["agent", "status"]);
    assert_eq!(stopped.code, 1, "{}", stopped.stdout);
    assert!(
        stopped.stdout.contains("No agent runs"),
        "{}",
        stopped.stdout
    );

    // Each occurrence once, two seconds apart, every job's mark there.
    let runs = scheduled_runs(&fk, &id);
    let mut occ: Vec<i64> = runs
        .iter()
        .map(|r| r["occurrence"].as_i64().unwrap())
        .collect();
    occ.sort();
    assert!(occ.windows(2).all(|w| w[1] - w[0] == 2000), "{occ:?}");
    let ran = runs.iter().filter(|r| r["status"] == "succeeded").count();
    let marks = std::fs::read_to_string(&marks).unwrap();
    assert_eq!(marks.lines().count(), ran, "{marks}");

    let list = fk.json(&["schedule", "list"]).ok().json();
    let row = &list.as_array().unwrap()[0];
    assert_eq!(row["workflow_id"], id.as_str());
    assert_eq!(row["describe"], "every 2s");
    assert!(row["next_run"].as_i64().is_some());
    assert_eq!(row["owned_here"], true);
}

#[test]
fn a_bad_schedule_is_refused_naming_each_field_and_changes_nothing() {
    let fk = Flowkeep::new();
    let config = serde_json::json!({
        "run": {"command": ["true"], "schedule": {"cron": "61 25 * * *", "timezone": "Mars/Olympus_Mons"}}
    });
    fk.json(&["workflow", "list"]).ok();
    let before = fk.sql_count("SELECT count(*) FROM events");
    let run = fk.json(&[
        "workflow",
        "create",
        "--name",
        "x",
        "--config",
        &config.to_string(),
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let err = run.error();
    let fields: Vec<&str> = err["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["run.schedule.cron", "run.schedule.timezone"]);
    assert_eq!(fk.sql_count("SELECT count(*) FROM events"), before);

    let preview = fk
        .json(&[
            "schedule",
            "preview",
            r#"{"cron": "0 3 * * *", "timezone": "Europe/Berlin"}"#,
            "--count",
            "3",
        ])
        .ok()
        .json();
    let times = preview["times"].as_array().unwrap();
    assert_eq!(times.len(), 3);
    assert!(times.windows(2).all(|w| w[1].as_i64() > w[0].as_i64()));
}

#[test]
fn agent_install_writes_a_user_unit_that_runs_this_data_dir() {
    let fk = Flowkeep::new();
    let config_home = tempfile::tempdir().unwrap();
    let out = Command::new(Flowkeep::bin())
        .arg("--data-dir")
        .arg(fk.data_dir())
        .args(["--json", "agent", "install", "--no-start"])
        .env("XDG_CONFIG_HOME", config_home.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let unit = std::path::PathBuf::from(got["unit"].as_str().unwrap());
    assert!(unit.starts_with(config_home.path().join("systemd/user")));
    assert_eq!(got["enabled"], false);
    let text = std::fs::read_to_string(&unit).unwrap();
    let exec = text.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    assert!(
        exec.contains(&format!("\"{}\"", fk.data_dir().display())),
        "{exec}"
    );
    assert!(exec.ends_with(" agent"), "{exec}");
    assert!(text.contains("WantedBy=default.target"));

    let out = Command::new(Flowkeep::bin())
        .arg("--data-dir")
        .arg(fk.data_dir())
        .args(["agent", "status"])
        .env("XDG_CONFIG_HOME", config_home.path())
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains(&unit.display().to_string()), "{status}");
}
