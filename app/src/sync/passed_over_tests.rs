//! One document the sync engine fails on (here `repo::trap` makes it, as a
//! change automerge cannot apply would) does not hold back the others: a
//! sync goes on without it, says which it left out, records nothing about
//! it, and the next sync that can load it brings it, local edits included.

#[path = "../../tests/support/mod.rs"]
mod server;

use std::sync::atomic::AtomicBool;

use flowkeep_core::commands::{CreateWorkflow, GetSyncStatus, UpdateWorkflow, WorkflowId};

use super::repo::trap;
use super::*;
use crate::StoreOptions;

struct Device {
    svc: Service,
    _dir: tempfile::TempDir,
}

fn device(actor: &str) -> Device {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::open(
        &dir.path().join("flowkeep.db"),
        StoreOptions {
            actor: actor.into(),
            ..Default::default()
        },
    )
    .unwrap();
    Device { svc, _dir: dir }
}

/// Two devices of one workspace holding workflows `one` and `two`.
fn two_devices(server: &server::TestServer) -> (Device, Device, String, String) {
    let token = server.workspace("w");
    let (a, b) = (device("alice"), device("bob"));
    let create = |name: &str| {
        a.svc
            .workflows()
            .create(CreateWorkflow {
                name: name.into(),
                description: Some("base".into()),
                ..Default::default()
            })
            .unwrap()
            .id
    };
    let (one, two) = (create("one"), create("two"));
    let join = a.svc.sync().init(&server.url, &token).unwrap().join;
    b.svc.sync().join(&join, &token).unwrap();
    (a, b, one, two)
}

fn describe(svc: &Service, id: &str, description: &str) {
    svc.workflows()
        .update(UpdateWorkflow {
            id: id.into(),
            description: Some(description.into()),
            ..Default::default()
        })
        .unwrap();
}

fn description(svc: &Service, id: &str) -> String {
    svc.workflows()
        .get(WorkflowId { id: id.into() })
        .unwrap()
        .spec
        .description
}

fn doc_of(svc: &Service, workflow: &str) -> DocumentId {
    svc.sync().known_doc(workflow).unwrap().unwrap().doc_id
}

fn last_error(svc: &Service) -> Option<String> {
    let status = svc.sync().status(GetSyncStatus::default()).unwrap();
    status.last_error.map(|e| e.message)
}

#[test]
fn a_sync_goes_on_without_a_document_the_engine_fails_on_and_brings_it_later() {
    let server = server::TestServer::start();
    let (a, b, one, two) = two_devices(&server);
    describe(&a.svc, &one, "one, from alice");
    describe(&a.svc, &two, "two, from alice");
    a.svc.sync().now().unwrap();
    // An edit of bob's to the document his engine will fail on.
    b.svc
        .workflows()
        .update(UpdateWorkflow {
            id: one.clone(),
            name: Some("one, renamed by bob".into()),
            ..Default::default()
        })
        .unwrap();

    let failing = doc_of(&b.svc, &one);
    trap::arm(b.svc.device_id(), &failing, true);
    let report = b.svc.sync().now().unwrap();
    assert_eq!(report.passed_over, vec![failing.to_string()]);
    assert_eq!(
        description(&b.svc, &two),
        "two, from alice",
        "the other merged"
    );
    assert_eq!(description(&b.svc, &one), "base", "nothing of it merged");
    let said = last_error(&b.svc).expect("sync status says which was left out");
    assert!(
        said.contains(&failing.to_string()) && said.contains("sync went on without"),
        "{said}"
    );

    trap::arm(b.svc.device_id(), &failing, false);
    let report = b.svc.sync().now().unwrap();
    assert!(report.passed_over.is_empty());
    assert_eq!(
        last_error(&b.svc),
        None,
        "cleared by a sync that left nothing out"
    );
    assert_eq!(description(&b.svc, &one), "one, from alice");
    a.svc.sync().now().unwrap();
    let on_a = a
        .svc
        .workflows()
        .get(WorkflowId { id: one.clone() })
        .unwrap();
    assert_eq!(
        on_a.spec.name, "one, renamed by bob",
        "bob's edit was kept and sent"
    );
    assert_eq!(on_a.spec.description, "one, from alice");
}

#[test]
fn a_watch_goes_on_without_a_document_the_engine_fails_on_and_tries_it_again() {
    let server = server::TestServer::start();
    let (a, b, one, two) = two_devices(&server);
    let failing = doc_of(&b.svc, &one);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let watch = s.spawn(|| {
            b.svc
                .sync()
                .watch(&stop, Duration::from_millis(200), |_| {})
        });
        // A failed wait stops the watch too, or the scope would wait for it.
        let _stop = StopOnDrop(&stop);
        let until = |what: &str, f: &dyn Fn() -> bool| {
            let start = std::time::Instant::now();
            while !f() {
                assert!(
                    start.elapsed() < Duration::from_secs(40),
                    "waited 40 s for {what}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        // The watch is up once it merged something.
        describe(&a.svc, &two, "two, first");
        a.svc.sync().now().unwrap();
        until("the first edit", &|| {
            description(&b.svc, &two) == "two, first"
        });

        trap::arm(b.svc.device_id(), &failing, true);
        describe(&a.svc, &one, "one, from alice");
        a.svc.sync().now().unwrap();
        until("the watch to say it left one out", &|| {
            last_error(&b.svc).is_some_and(|e| e.contains(&failing.to_string()))
        });
        // A `sync now` the running watch answers says so too.
        let answered = b.svc.sync().now().unwrap();
        assert!(answered.by_running_watch);
        assert_eq!(answered.passed_over, vec![failing.to_string()]);
        // Still watching, and merging the rest.
        describe(&a.svc, &two, "two, second");
        a.svc.sync().now().unwrap();
        until("an edit to another", &|| {
            description(&b.svc, &two) == "two, second"
        });
        assert_eq!(description(&b.svc, &one), "base");

        // Tried again after a pause (10 to 12.5 s), it comes in.
        trap::arm(b.svc.device_id(), &failing, false);
        until("the document tried again", &|| {
            description(&b.svc, &one) == "one, from alice"
        });
        until("sync status cleared", &|| last_error(&b.svc).is_none());
        assert_eq!(
            b.svc.sync().now().unwrap().passed_over,
            Vec::<String>::new()
        );
        drop(_stop);
        watch.join().unwrap().unwrap();
    });
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
