//! A run's output read while it is written (`get_run_output`): pieces from
//! an offset, in order, the end said once the run has ended, and only on the
//! device that ran it.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use flowkeep_app::{Error, RunRequest, Service, StoreOptions};
use flowkeep_core::commands::*;
use serde_json::json;

fn open(path: &Path) -> Service {
    Service::open(path, StoreOptions::default()).unwrap()
}

fn workflow(svc: &Service, script: &str) -> String {
    svc.workflows()
        .create(CreateWorkflow {
            name: "w".into(),
            config: Some(
                serde_json::from_value(
                    json!({"run": {"command": ["sh", "-c", script]}, "fields": [], "values": {}}),
                )
                .unwrap(),
            ),
            ..Default::default()
        })
        .unwrap()
        .id
}

fn piece(svc: &Service, id: &str, from: u64, limit: Option<u32>) -> RunOutput {
    svc.runs()
        .output(GetRunOutput {
            id: id.into(),
            from: Some(from),
            limit,
        })
        .unwrap()
}

#[test]
fn output_is_read_while_the_run_writes_it_and_its_end_is_said_once() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("flowkeep.db");
    let svc = Arc::new(open(&db));
    // Waits for a file to exist before its last line, so the test sees the
    // run still going with its first lines already readable.
    let go = tmp.path().join("go");
    let wf = workflow(
        &svc,
        &format!(
            "echo first; echo 'naïve ünïcode'; while [ ! -e '{}' ]; do sleep 0.05; done; echo last",
            go.display()
        ),
    );
    let (started, run_id) = mpsc::channel();
    let runner = {
        let svc = svc.clone();
        std::thread::spawn(move || {
            svc.runs()
                .run(
                    RunRequest {
                        occurrence: None,
                        workflow_id: wf,
                        overrides: vec![],
                        trigger: "test".into(),
                        on_start: Some(Box::new(move |r| started.send(r.id.clone()).unwrap())),
                    },
                    &AtomicBool::new(false),
                    Arc::new(|_, _| {}),
                )
                .unwrap()
        })
    };
    let id = run_id.recv_timeout(Duration::from_secs(10)).unwrap();
    // Pieces of 5 bytes: "ï" and "ü" are two bytes each, so some piece ends
    // inside one; the character waits for the next piece.
    let mut text = String::new();
    let mut at = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text.contains("ünïcode\n") {
        assert!(Instant::now() < deadline, "read so far: {text:?}");
        let p = piece(&svc, &id, at, Some(5));
        assert_eq!(p.from, at);
        assert!(!p.finished, "the run is still going");
        assert!(
            !p.text.contains('\u{FFFD}'),
            "a character was split: {:?}",
            p.text
        );
        text.push_str(&p.text);
        at = p.next;
        if p.text.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert_eq!(text, "first\nnaïve ünïcode\n");
    std::fs::write(&go, "").unwrap();
    let run = runner.join().unwrap();
    assert_eq!(run.status, flowkeep_core::run::RunStatus::Succeeded);
    let rest = piece(&svc, &id, at, None);
    assert_eq!(rest.text, "last\n");
    assert!(rest.finished, "ended, and nothing after this piece");
    let again = piece(&svc, &id, rest.next, None);
    assert_eq!((again.text.as_str(), again.finished), ("", true));
    // The whole log from the start, in one piece.
    let all = piece(&svc, &id, 0, None);
    assert_eq!(all.text, "first\nnaïve ünïcode\nlast\n");
    let len = all.text.len() as u64;
    assert_eq!((all.next, all.size), (len, len));
    // An offset past the end (a log cut back while its reader was ahead)
    // goes on from the end and says so.
    let past = piece(&svc, &id, 1_000, None);
    assert!(past.cut);
    assert_eq!((past.from, past.next), (len, len));
}

#[test]
fn only_the_device_that_ran_a_run_has_its_output() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = open(&tmp.path().join("flowkeep.db"));
    let wf = workflow(&svc, "true");
    // A run recorded by another device (as sync would merge it).
    svc.runs()
        .import(ImportRuns {
            runs: vec![serde_json::from_value(json!({
                "workflow_id": wf, "status": "succeeded", "started_at": 1_000, "completed_at": 2_000
            }))
            .unwrap()],
        })
        .unwrap();
    let run = svc
        .runs()
        .list(ListRuns::default())
        .unwrap()
        .items
        .remove(0);
    let c = rusqlite::Connection::open(tmp.path().join("flowkeep.db")).unwrap();
    c.execute(
        "UPDATE executions SET device_id = 'another-device' WHERE id = ?1",
        [&run.id],
    )
    .unwrap();
    drop(c);
    let err = svc
        .runs()
        .output(GetRunOutput {
            id: run.id.clone(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("kept on the device that ran it"),
        "{err}"
    );
    // A run of this device recorded without a log (imported): no output.
    svc.runs()
        .import(ImportRuns {
            runs: vec![serde_json::from_value(json!({
                "workflow_id": wf, "status": "failed", "started_at": 3_000, "completed_at": 4_000
            }))
            .unwrap()],
        })
        .unwrap();
    let imported = svc
        .runs()
        .list(ListRuns::default())
        .unwrap()
        .items
        .remove(0);
    assert_eq!(imported.device_id, svc.device_id());
    let err = svc
        .runs()
        .output(GetRunOutput {
            id: imported.id,
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("recorded without an output log"),
        "{err}"
    );
    let unknown = svc.runs().output(GetRunOutput {
        id: "0190a4b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b".into(),
        ..Default::default()
    });
    assert!(matches!(unknown, Err(Error::NotFound { .. })));
    let bad = svc.runs().output(GetRunOutput {
        id: run.id,
        limit: Some(0),
        ..Default::default()
    });
    assert!(
        matches!(bad, Err(Error::Invalid(ref f)) if f[0].field == "limit"),
        "{bad:?}"
    );
}
