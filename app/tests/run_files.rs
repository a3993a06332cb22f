//! The files a device keeps for itself: private modes on the database and
//! run directories, no path from an id that is not a UUID, and the run spec's
//! `inherit_env` carried through sync like the rest of the spec.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use flowkeep_app::{RunRequest, Service, StoreOptions};
use flowkeep_core::commands::*;
use serde_json::json;

mod support;
use support::TestServer;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn open(path: &Path) -> Service {
    Service::open(path, StoreOptions::default()).unwrap()
}

fn sidecar(db: &Path, suffix: &str) -> std::path::PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

fn workflow(svc: &Service, config: serde_json::Value) -> String {
    svc.workflows()
        .create(CreateWorkflow {
            name: "w".into(),
            config: Some(serde_json::from_value(config).unwrap()),
            ..Default::default()
        })
        .unwrap()
        .id
}

#[test]
fn the_database_and_run_files_are_private_and_an_old_install_is_tightened() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("new").join("flowkeep");
    let db = dir.join("flowkeep.db");
    let svc = open(&db);
    let wf = workflow(
        &svc,
        json!({"run": {"command": ["sh", "-c", "echo hello"]}, "fields": [], "values": {}}),
    );
    let (wal, shm) = (sidecar(&db, "-wal"), sidecar(&db, "-shm"));
    assert!(wal.exists() && shm.exists(), "WAL mode with the store open");
    assert_eq!(
        (mode(&dir), mode(&db), mode(&wal), mode(&shm)),
        (0o700, 0o600, 0o600, 0o600)
    );

    let e = svc
        .runs()
        .run(
            RunRequest {
                occurrence: None,
                workflow_id: wf,
                overrides: vec![],
                trigger: "test".into(),
                on_start: None,
            },
            &AtomicBool::new(false),
            Arc::new(|_, _| {}),
        )
        .unwrap();
    let runs = dir.join("runs");
    let run = runs.join(&e.id);
    assert_eq!(
        std::fs::read_to_string(run.join("output.log")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        (
            mode(&runs),
            mode(&run),
            mode(&run.join("output.log")),
            mode(&run.join("config.json"))
        ),
        (0o700, 0o700, 0o600, 0o600)
    );

    // Loosened, as an older version (or a loose umask) left them: the next
    // open tightens them. The first store stays open so -wal and -shm stay.
    for (p, m) in [(&dir, 0o755), (&db, 0o644), (&wal, 0o644), (&shm, 0o664)] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    let _again = open(&db);
    assert_eq!(
        (mode(&dir), mode(&db), mode(&wal), mode(&shm)),
        (0o700, 0o600, 0o600, 0o600)
    );
    // Only the data dir itself: its parents are the user's.
    assert_eq!(mode(tmp.path()), 0o755);
}

#[test]
fn recovery_never_builds_a_path_from_an_id_that_is_not_a_uuid() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("a").join("b");
    let db = data.join("flowkeep.db");
    let svc = open(&db);
    let wf = workflow(&svc, json!({"fields": [], "values": {}}));
    let device = svc.device_id().to_owned();
    drop(svc);
    // A file outside the data dir, where `runs/../../victim` points, that
    // looks like an abandoned run: a directory with an unheld lock.
    let victim = tmp.path().join("a").join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("lock"), "").unwrap();
    std::fs::create_dir_all(data.join("runs")).unwrap();
    // A forged run record claiming this device, as a hostile peer could
    // have had merged before remote records were checked.
    let c = rusqlite::Connection::open(&db).unwrap();
    for id in ["../../victim", "../victim", "/etc"] {
        c.execute(
            "INSERT INTO executions (id, workflow_id, status, started_at, trigger, device_id)
             VALUES (?1, ?2, 'running', 1, 'x', ?3)",
            rusqlite::params![id, wf, device],
        )
        .unwrap();
    }
    drop(c);
    let svc = open(&db);
    assert!(
        victim.join("lock").exists(),
        "nothing outside runs/ touched"
    );
    assert_eq!(svc.runs().recover_interrupted().unwrap(), 0);
    assert!(victim.join("lock").exists());
}

#[test]
fn inherit_env_travels_with_the_run_spec_through_sync() {
    let server = TestServer::start();
    let token = server.workspace("team");
    let url = server.url.clone();

    let (da, dbb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open(&da.path().join("flowkeep.db"));
    let b = open(&dbb.path().join("flowkeep.db"));
    let run = json!({"command": ["job"], "inherit_env": ["AWS_PROFILE", "HTTPS_PROXY"]});
    let wf = workflow(&a, json!({"run": run, "fields": [], "values": {}}));
    let join = a.sync().init(&url, &token).unwrap().join;
    b.sync().join(&join, &token).unwrap();
    let got = b.workflows().get(WorkflowId { id: wf.clone() }).unwrap();
    let spec = got.spec.config.run.expect("the run spec arrived");
    assert_eq!(spec.inherit_env, ["AWS_PROFILE", "HTTPS_PROXY"]);
}
