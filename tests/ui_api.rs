//! `flowkeep ui`: the local HTTP API on 127.0.0.1, through the real binary.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use support::Flowkeep;

struct Ui {
    child: std::process::Child,
    port: u16,
    token: String,
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(fk: &Flowkeep) -> Ui {
    start_with(fk, &["--no-open"], None)
}

/// `flowkeep ui` with `extra` arguments, and `PATH` when given.
fn start_with(fk: &Flowkeep, extra: &[&str], path: Option<&str>) -> Ui {
    let mut cmd = Command::new(Flowkeep::bin());
    cmd.arg("--data-dir")
        .arg(fk.data_dir())
        .args(["--json", "ui", "--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert!(v["url"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    Ui {
        child,
        port: v["port"].as_u64().unwrap() as u16,
        token: v["token"].as_str().unwrap().to_owned(),
    }
}

/// (status, body) of one HTTP/1.1 request; `headers` are extra lines.
fn request(port: u16, method: &str, path: &str, headers: &[String], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The whole response (status line, headers, body) to a raw request.
fn raw(port: u16, req: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

impl Ui {
    fn host(&self) -> String {
        format!("Host: 127.0.0.1:{}", self.port)
    }
    fn auth(&self) -> String {
        format!("Authorization: Bearer {}", self.token)
    }
    fn call(&self, command: &str, input: Value) -> (u16, Value) {
        let (status, body) = request(
            self.port,
            "POST",
            &format!("/api/{command}"),
            &[self.host(), self.auth()],
            &input.to_string(),
        );
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }
}

#[test]
fn the_api_runs_commands_for_its_own_page_only() {
    let fk = Flowkeep::new();
    let ui = start(&fk);
    let (status, wf) = ui.call("create_workflow", json!({"name": "from the api", "config": {"fields": [{"key": "n", "type": "number", "max": 5}], "values": {"n": 1}}}));
    assert_eq!(status, 200, "{wf}");
    let id = wf["id"].as_str().unwrap().to_owned();
    let (status, got) = ui.call("get_workflow", json!({"id": id}));
    assert_eq!((status, got["name"].as_str()), (200, Some("from the api")));
    let (status, list) = ui.call("list_workflows", json!({}));
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 1));

    // Errors keep the one JSON shape, with HTTP statuses that fit.
    let (status, err) = ui.call(
        "set_config_value",
        json!({"workflow_id": id, "key": "n", "value": 9}),
    );
    assert_eq!(
        (
            status,
            err["code"].as_str(),
            err["fields"][0]["field"].as_str()
        ),
        (422, Some("validation_failed"), Some("values.n"))
    );
    let (status, err) = ui.call("get_workflow", json!({"id": "nope"}));
    assert_eq!((status, err["code"].as_str()), (404, Some("not_found")));
    let (status, _) = ui.call("launch_rockets", json!({}));
    assert_eq!(status, 404);
    let (status, body) = request(
        ui.port,
        "POST",
        "/api/get_workflow",
        &[ui.host(), ui.auth()],
        "{not json",
    );
    assert_eq!(status, 400, "{body}");
    let (status, commands) = ui.call("commands", json!({}));
    assert_eq!(status, 200);
    assert!(commands
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "create_workflow"));

    // Refused before anything runs, and nothing changes.
    let before = fk.snapshot();
    let create = json!({"name": "should not exist"}).to_string();
    let refusals = [
        (vec![ui.host()], 401),
        (
            vec![ui.host(), "Authorization: Bearer wrong".to_owned()],
            401,
        ),
        (
            vec![
                ui.host(),
                ui.auth(),
                "Origin: http://evil.example".to_owned(),
            ],
            403,
        ),
        (
            vec![format!("Host: evil.example:{}", ui.port), ui.auth()],
            403,
        ),
        (
            vec![
                ui.host(),
                ui.auth(),
                format!("Origin: http://127.0.0.1:{}.evil.example", ui.port),
            ],
            403,
        ),
    ];
    for (headers, want) in refusals {
        let (status, body) = request(ui.port, "POST", "/api/create_workflow", &headers, &create);
        assert_eq!(status, want, "{headers:?}: {body}");
    }
    assert_eq!(
        fk.snapshot(),
        before,
        "a refused request changed the database"
    );
    // Its own page, from the same origin, works.
    let (status, _) = ui.call("get_workflow", json!({"id": id}));
    assert_eq!(status, 200);
    let (status, page) = request(
        ui.port,
        "GET",
        &format!("/?token={}", ui.token),
        &[ui.host()],
        "",
    );
    assert_eq!(status, 200);
    assert!(page.contains("<div id=\"root\">"), "the built UI: {page}");
    // The page and its scripts hold no data and load without the token
    // (the page sends it with every API call), but only under our Host.
    let script = page
        .split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
        .expect("the page loads a script")
        .to_owned();
    let (status, js) = request(ui.port, "GET", &script, &[ui.host()], "");
    assert_eq!(status, 200);
    assert!(js.len() > 10_000);
    assert_eq!(request(ui.port, "GET", "/", &[ui.host()], "").0, 200);
    let foreign = format!("Host: evil.example:{}", ui.port);
    assert_eq!(
        request(ui.port, "GET", "/", std::slice::from_ref(&foreign), "").0,
        403
    );
    assert_eq!(request(ui.port, "GET", &script, &[foreign], "").0, 403);
    assert_eq!(
        request(ui.port, "GET", "/assets/nope.js", &[ui.host()], "").0,
        404
    );
    let head = raw(
        ui.port,
        &format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            ui.port
        ),
    );
    let head = head.to_ascii_lowercase();
    assert!(head.contains("x-frame-options: deny"), "{head}");
    assert!(head.contains("referrer-policy: no-referrer"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'self'"),
        "{head}"
    );

    // Export: the token is required, and the file has the runs.
    let (status, run) = ui.call("start_run", json!({"workflow_id": id}));
    assert_eq!(status, 200, "{run}");
    let export = format!("/api/export?format=csv&workflow_id={id}");
    assert_eq!(request(ui.port, "GET", &export, &[ui.host()], "").0, 401);
    let (status, csv) = request(ui.port, "GET", &export, &[ui.host(), ui.auth()], "");
    assert_eq!(status, 200, "{csv}");
    assert!(csv.contains(run["id"].as_str().unwrap()), "{csv}");
    let (status, err) = request(
        ui.port,
        "GET",
        &format!("/api/export?format=xml&workflow_id={id}"),
        &[ui.host(), ui.auth()],
        "",
    );
    assert_eq!(status, 422, "{err}");
    assert!(err.contains("\"format\""), "{err}");

    // SIGTERM stops it cleanly.
    let mut ui = ui;
    Command::new("kill")
        .args(["-TERM", &ui.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ui.child.wait().unwrap().success());
}

/// A workflow whose command is a Python script; `n` must be 0..=100.
fn python_job(fk: &Flowkeep, ui: &Ui, script: &str) -> String {
    let path = fk.data_dir().join("job.py");
    std::fs::write(&path, script).unwrap();
    let (status, wf) = ui.call(
        "create_workflow",
        json!({"name": "job", "config": {
            "run": {"command": ["python3", path]},
            "fields": [{"key": "n", "type": "number", "min": 0, "max": 100}],
            "values": {"n": 1}
        }}),
    );
    assert_eq!(status, 200, "{wf}");
    wf["id"].as_str().unwrap().to_owned()
}

fn wait_for_status(ui: &Ui, id: &str, want: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, run) = ui.call("get_run", json!({"id": id}));
        if run["status"] == want {
            return run;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run never became {want}: {run}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn runs_start_from_the_ui_answer_at_once_and_can_be_cancelled() {
    let fk = Flowkeep::new();
    let ui = start(&fk);
    let wf = python_job(
        &fk,
        &ui,
        "import json, sys, time\ncfg = json.load(sys.stdin)\nif cfg['n'] == 7:\n    time.sleep(60)\ntime.sleep(0.3)\nprint(json.dumps({'doubled': cfg['n'] * 2}))\n",
    );

    // Answers once started; the run finishes on its own with its result.
    let (status, run) = ui.call("run", json!({"workflow_id": wf, "set": {"n": "21"}}));
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "running");
    assert_eq!(run["trigger"], "ui");
    let done = wait_for_status(&ui, run["id"].as_str().unwrap(), "succeeded");
    assert_eq!(done["output"]["result"], json!({"doubled": 42}));

    // An override that breaks a rule: refused, nothing recorded.
    let before = fk.snapshot();
    let (status, err) = ui.call("run", json!({"workflow_id": wf, "set": {"n": "500"}}));
    assert_eq!(
        (status, err["fields"][0]["field"].as_str()),
        (422, Some("values.n")),
        "{err}"
    );
    assert_eq!(fk.snapshot(), before);
    let (status, _) = ui.call("run", json!({"workflow_id": "nope"}));
    assert_eq!(status, 404);

    // Cancel: the child is stopped and the run recorded as cancelled.
    let (_, long) = ui.call("run", json!({"workflow_id": wf, "set": {"n": "7"}}));
    let long_id = long["id"].as_str().unwrap().to_owned();
    let (status, body) = ui.call("cancel_run", json!({"id": long_id}));
    assert_eq!(status, 200, "{body}");
    wait_for_status(&ui, &long_id, "cancelled");
    let (status, _) = ui.call("cancel_run", json!({"id": long_id}));
    assert_eq!(status, 404, "a finished run cannot be cancelled");

    // Stopping the UI with a run going records it as cancelled, not running.
    let (_, last) = ui.call("run", json!({"workflow_id": wf, "set": {"n": "7"}}));
    let last_id = last["id"].as_str().unwrap().to_owned();
    let mut ui = ui;
    Command::new("kill")
        .args(["-TERM", &ui.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ui.child.wait().unwrap().success());
    let got = fk.json(&["exec", "get", &last_id]).ok().json();
    assert_eq!(got["status"], "cancelled", "{got}");
}

#[test]
fn junk_cursors_and_overflowing_limits_are_bad_requests() {
    let fk = Flowkeep::new();
    let ui = start(&fk);
    for cursor in ["ünïcodé", "aüb", "\u{fffd}\u{fffd}", "zz"] {
        for command in ["list_workflows", "list_runs"] {
            let (status, err) = ui.call(command, json!({"cursor": cursor}));
            assert_eq!(
                (status, err["fields"][0]["field"].as_str()),
                (400, Some("cursor")),
                "{command} {cursor:?}: {err}"
            );
        }
    }
    let (status, err) = ui.call("set_retention", json!({"policy": {"max_count": u64::MAX}}));
    assert_eq!(
        (status, err["fields"][0]["field"].as_str()),
        (400, Some("retention.max_count")),
        "{err}"
    );
    let (status, err) = ui.call(
        "set_retention",
        json!({"policy": {"max_age": "20000000000w"}}),
    );
    assert_eq!(
        (status, err["fields"][0]["code"].as_str()),
        (400, Some("range")),
        "{err}"
    );
    let (status, settings) = ui.call("get_settings", json!({}));
    assert_eq!(
        (status, &settings["retention"]),
        (200, &json!({})),
        "nothing was set"
    );
}

/// Every command declared in the table is reachable from each front end
/// without code of its own: `POST /api/<name>` here, `flowkeep call <name>`
/// on the command line, and the desktop window's IPC, which goes through
/// the same `ui_runs::call` as the HTTP API (its unit test covers that).
/// A command that is not reachable answers "command <name> not found".
#[test]
fn every_command_of_the_table_is_reachable_from_http_and_the_cli() {
    let fk = Flowkeep::new();
    let ui = start(&fk);
    let unknown = |body: &Value, name: &str| {
        body["code"] == "not_found"
            && body["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("command {name} not found")))
    };
    assert!(!flowkeep_app::COMMANDS.is_empty());
    for c in flowkeep_app::COMMANDS {
        let (status, body) = ui.call(c.name, json!({}));
        assert!(!unknown(&body, c.name), "HTTP {status}: {body}");
        let cli = fk.json(&["call", c.name, "{}"]);
        let answer = if cli.code == 0 {
            cli.json()
        } else {
            cli.error()
        };
        assert!(!unknown(&answer, c.name), "CLI: {answer}");
    }
    // And the check itself can fail: an undeclared name is unknown to both.
    let (_, body) = ui.call("no_such_command", json!({}));
    assert!(unknown(&body, "no_such_command"), "{body}");
    assert!(unknown(
        &fk.json(&["call", "no_such_command"]).error(),
        "no_such_command"
    ));
}

/// The `Set-Cookie` pair (`name=value`) of a response, if any.
fn cookie_of(response: &str) -> Option<String> {
    let head = response.split("\r\n\r\n").next()?;
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))?;
    let value = line.split_once(':')?.1.trim();
    assert!(
        value.contains("HttpOnly") && value.contains("SameSite=Strict"),
        "{value}"
    );
    Some(value.split(';').next()?.to_owned())
}

#[test]
fn the_first_page_load_sets_a_session_cookie_that_outlives_a_restart() {
    let fk = Flowkeep::new();
    let ui = start(&fk);
    let page = raw(
        ui.port,
        &format!(
            "GET /?token={} HTTP/1.1\r\n{}\r\nConnection: close\r\n\r\n",
            ui.token,
            ui.host()
        ),
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let cookie = cookie_of(&page).expect("the first load sets the session cookie");
    let no_token = raw(
        ui.port,
        &format!(
            "GET / HTTP/1.1\r\n{}\r\nConnection: close\r\n\r\n",
            ui.host()
        ),
    );
    assert!(cookie_of(&no_token).is_none(), "no token, no cookie");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(fk.data_dir().join("ui-session.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    drop(ui);

    let ui = start(&fk);
    let list =
        |headers: &[String]| request(ui.port, "POST", "/api/list_workflows", headers, "{}").0;
    let with_cookie = format!("Cookie: {cookie}");
    assert_eq!(
        list(&[ui.host(), with_cookie.clone()]),
        200,
        "after a restart"
    );
    assert_eq!(list(&[ui.host()]), 401);
    let forged = format!("Cookie: {}=0000", cookie.split('=').next().unwrap());
    assert_eq!(list(&[ui.host(), forged]), 401);
    let foreign = "Origin: http://evil.example".to_owned();
    assert_eq!(list(&[ui.host(), with_cookie.clone(), foreign]), 403);

    // A workflow's own URL is the page (which reads the path itself).
    let (status, html) = request(
        ui.port,
        "GET",
        "/workflows/0190a4b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b/runs",
        &[ui.host(), with_cookie],
        "",
    );
    assert_eq!(status, 200);
    assert!(html.contains("/assets/"), "{html}");
}

#[test]
fn a_change_made_by_another_process_is_pushed_to_open_pages() {
    let fk = Flowkeep::new();
    let ui = start(&fk);
    let mut s = TcpStream::connect(("127.0.0.1", ui.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(
        s,
        "GET /api/events HTTP/1.1\r\n{}\r\n{}\r\nAccept: text/event-stream\r\n\r\n",
        ui.host(),
        ui.auth()
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let mut seen = String::new();
    // Headers, then the `ready` event.
    while !seen.contains("event: ready") {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    assert!(seen.contains("text/event-stream"), "{seen}");

    let started = std::time::Instant::now();
    let id = fk
        .json(&["workflow", "create", "--name", "made by the cli"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut event = String::new();
    while !event.contains(&id) {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the stream ended: {event}"
        );
        event.push_str(&line);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert!(event.contains("event: change"), "{event}");
    assert!(event.contains("\"kind\":\"workflow.created\""), "{event}");

    // Without the token or cookie: refused.
    let (status, _) = request(ui.port, "GET", "/api/events", &[ui.host()], "");
    assert_eq!(status, 401);
}

/// Reads an SSE stream until `until` is in it (or it ends); what was read.
fn read_stream_until(reader: &mut BufReader<TcpStream>, until: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(until) {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
    }
    seen
}

#[test]
fn a_runs_output_streams_to_the_page_as_it_is_written() {
    let fk = Flowkeep::new();
    let ui = start(&fk);
    let go = fk.data_dir().join("go");
    let wf = python_job(
        &fk,
        &ui,
        &format!(
            "import os, time\nprint('first line', flush=True)\nwhile not os.path.exists({:?}):\n    time.sleep(0.05)\nprint('last line', flush=True)\n",
            go.display().to_string()
        ),
    );
    let (_, run) = ui.call("run", json!({"workflow_id": wf}));
    let id = run["id"].as_str().unwrap().to_owned();
    let mut s = TcpStream::connect(("127.0.0.1", ui.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET /api/runs/{id}/output HTTP/1.1\r\n{}\r\n{}\r\nAccept: text/event-stream\r\n\r\n",
        ui.host(),
        ui.auth()
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    // The first line arrives while the run is still going.
    let seen = read_stream_until(&mut reader, "first line");
    assert!(seen.contains("text/event-stream"), "{seen}");
    assert!(seen.contains("event: output"), "{seen}");
    let (_, now) = ui.call("get_run", json!({"id": id}));
    assert_eq!(now["status"], "running", "{now}");
    // The rest, then the end.
    std::fs::write(&go, "").unwrap();
    let rest = read_stream_until(&mut reader, "event: end");
    assert!(rest.contains("last line"), "{rest}");
    assert!(rest.contains("event: end"), "{rest}");
    assert!(
        !rest.contains("first line"),
        "nothing is sent twice: {rest}"
    );

    // From an offset: only what follows it.
    let from = "first line\n".len();
    let mut s = TcpStream::connect(("127.0.0.1", ui.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET /api/runs/{id}/output?from={from} HTTP/1.1\r\n{}\r\n{}\r\n\r\n",
        ui.host(),
        ui.auth()
    )
    .unwrap();
    let again = read_stream_until(&mut BufReader::new(s), "event: end");
    assert!(
        again.contains("last line") && !again.contains("first line"),
        "{again}"
    );

    // An unknown run, a bad offset, no token: refused, not streamed.
    let unknown = "/api/runs/0190a4b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b/output";
    let (status, body) = request(ui.port, "GET", unknown, &[ui.host(), ui.auth()], "");
    assert_eq!(status, 404, "{body}");
    let bad = format!("/api/runs/{id}/output?from=-1");
    let (status, body) = request(ui.port, "GET", &bad, &[ui.host(), ui.auth()], "");
    assert_eq!(status, 400, "{body}");
    let (status, _) = request(ui.port, "GET", unknown, &[ui.host()], "");
    assert_eq!(status, 401);
}

#[test]
fn thousands_of_changes_at_once_reach_open_pages_as_one_reload() {
    let fk = Flowkeep::new();
    let ui = start(&fk);
    let (_, wf) = ui.call("create_workflow", json!({"name": "w"}));
    let mut s = TcpStream::connect(("127.0.0.1", ui.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET /api/events HTTP/1.1\r\n{}\r\n{}\r\n\r\n",
        ui.host(),
        ui.auth()
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    read_stream_until(&mut reader, "event: ready");
    // 2,000 runs in one import: 2,000 events in the log.
    let runs: Vec<Value> = (0..2000)
        .map(|i| json!({"workflow_id": wf["id"], "status": "succeeded", "started_at": 1_000 + i, "completed_at": 2_000 + i}))
        .collect();
    let (status, _) = ui.call("import_runs", json!({ "runs": runs }));
    assert_eq!(status, 200);
    let seen = read_stream_until(&mut reader, "event: reload");
    assert!(seen.contains("event: reload"), "{seen}");
    assert!(
        seen.matches("event: change").count() < 500,
        "a burst is one reload, not one event per change: {} changes",
        seen.matches("event: change").count()
    );
    // And the stream goes on with single changes afterwards.
    let (_, other) = ui.call("create_workflow", json!({"name": "after the burst"}));
    let after = read_stream_until(&mut reader, other["id"].as_str().unwrap());
    assert!(after.contains("event: change"), "{after}");
}

/// The browser `flowkeep ui` opens is given a code that works for one page
/// load, not the launch token: the opener's command line, which other
/// users of the machine can read, holds nothing that works afterwards.
#[test]
fn the_opened_browser_gets_a_one_use_code_not_the_launch_token() {
    use std::os::unix::fs::PermissionsExt;
    let fk = Flowkeep::new();
    let bin = tempfile::tempdir().unwrap();
    let opened = bin.path().join("opened");
    let opener = bin.path().join("xdg-open");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ui = start_with(&fk, &[], Some(&path));
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !opened.exists() {
        assert!(std::time::Instant::now() < until, "no browser was opened");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let url = std::fs::read_to_string(&opened).unwrap();
    assert!(!url.contains(&ui.token), "{url}");
    let path = url
        .strip_prefix(&format!("http://127.0.0.1:{}", ui.port))
        .unwrap_or_else(|| panic!("{url}"));
    assert!(path.starts_with("/?code="), "{url}");
    let load = |path: &str| {
        raw(
            ui.port,
            &format!(
                "GET {path} HTTP/1.1\r\n{}\r\nConnection: close\r\n\r\n",
                ui.host()
            ),
        )
    };
    let first = load(path);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let cookie = cookie_of(&first).expect("the opened page gets the session cookie");
    assert!(cookie_of(&load(path)).is_none(), "the code works once");
    let (status, _) = request(
        ui.port,
        "POST",
        "/api/list_workflows",
        &[ui.host(), format!("Cookie: {cookie}")],
        "{}",
    );
    assert_eq!(status, 200);
    let (status, _) = request(
        ui.port,
        "POST",
        &format!("/api/list_workflows?{}", &path[2..]),
        &[ui.host()],
        "{}",
    );
    assert_eq!(status, 401, "the code is no credential for the API");
}
