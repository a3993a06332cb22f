//! The merge/push race: a remote change arrives in a round after this
//! device pushed, and another process writes a local edit to the same field
//! in that window. The local edit must not be overwritten silently: both
//! devices end equal, and the value that lost is visible as a conflict.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use flowkeep_app::{Service, StoreOptions};
use flowkeep_core::commands::*;

mod support;
use support::TestServer;

fn device(dir: &std::path::Path, actor: &str) -> Service {
    Service::open(
        &dir.join("flowkeep.db"),
        StoreOptions {
            actor: actor.to_owned(),
            ..Default::default()
        },
    )
    .unwrap()
}

fn describe(svc: &Service, id: &str, text: &str) {
    svc.workflows()
        .update(UpdateWorkflow {
            id: id.to_owned(),
            description: Some(text.to_owned()),
            ..Default::default()
        })
        .unwrap();
}

#[test]
fn a_local_edit_written_between_push_and_merge_is_never_lost() {
    let server = TestServer::start();
    let token = server.workspace("team");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = device(dir_a.path(), "alice");
    let b = device(dir_b.path(), "bob");
    let wf = a
        .workflows()
        .create(CreateWorkflow {
            name: "shared".into(),
            ..Default::default()
        })
        .unwrap();
    let join = a.sync().init(&server.url, &token).unwrap().join;
    b.sync().join(&join, &token).unwrap();

    // Bob changes the description and syncs: the server has it.
    describe(&b, &wf.id, "bob's");
    b.sync().now().unwrap();

    // Alice syncs; after her push, while documents are being opened (before
    // Bob's change is merged), another process on her machine edits the same
    // field.
    let other_process = device(dir_a.path(), "alice");
    let edited = Arc::new(AtomicBool::new(false));
    let (flag, id) = (edited.clone(), wf.id.clone());
    a.on_sync_progress(Box::new(move |step, _, _| {
        if step == "opening documents" && !flag.swap(true, Ordering::SeqCst) {
            describe(&other_process, &id, "alice's");
        }
    }));
    a.sync().now().unwrap();
    assert!(
        edited.load(Ordering::SeqCst),
        "the edit went in mid-session"
    );

    // Everyone syncs until quiet.
    for _ in 0..2 {
        a.sync().now().unwrap();
        b.sync().now().unwrap();
    }
    let get = |s: &Service| s.workflows().get(WorkflowId { id: wf.id.clone() }).unwrap();
    let (wa, wb) = (get(&a), get(&b));
    assert_eq!(wa.spec, wb.spec, "the devices converge");
    let winner = wa.spec.description.clone();
    assert!(winner == "alice's" || winner == "bob's", "{winner}");
    if winner == "bob's" {
        // Alice's edit lost the conflict: visibly, on both devices.
        for w in [&wa, &wb] {
            let shown = serde_json::to_string(&w.conflicts).unwrap();
            assert!(shown.contains("alice's"), "alice's edit vanished: {shown}");
        }
    }
}
