//! Two writers racing to update the same workflow: exactly one wins, the
//! other gets a conflict, and nothing is torn.

mod common;

use std::sync::{Arc, Barrier};

use common::*;
use flowkeep_app::{Error, Service, StoreOptions};
use flowkeep_core::commands::*;

#[test]
fn two_threads_one_success_one_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let wf = svc
        .workflows()
        .create(CreateWorkflow {
            name: "race".into(),
            config: Some(etl_config()),
            ..Default::default()
        })
        .unwrap();
    let svc = Arc::new(svc);
    for round in 0..20 {
        let revision = svc
            .workflows()
            .get(WorkflowId { id: wf.id.clone() })
            .unwrap()
            .revision;
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let (svc, barrier, id) = (svc.clone(), barrier.clone(), wf.id.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    svc.workflows().update(UpdateWorkflow {
                        id,
                        expected_revision: Some(revision),
                        name: Some(format!("round {round} thread {t}")),
                        description: Some(format!("written by thread {t}")),
                        ..Default::default()
                    })
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let conflicts = results
            .iter()
            .filter(|r| matches!(r, Err(Error::Conflict(_))))
            .count();
        assert_eq!(
            (wins.len(), conflicts),
            (1, 1),
            "round {round}: {results:?}"
        );
        let now = svc
            .workflows()
            .get(WorkflowId { id: wf.id.clone() })
            .unwrap();
        assert_eq!(now.revision, revision + 1);
        // Not torn: name and description come from the same writer.
        let t = now.spec.name.chars().last().unwrap();
        assert_eq!(now.spec.description, format!("written by thread {t}"));
        assert_eq!(&now, wins[0]);
    }
    assert_eq!(svc.event_count().unwrap(), 21);
}

#[test]
fn two_connections_like_two_processes_one_success_one_conflict() {
    // Two Service instances on one file behave like two flowkeep processes:
    // BEGIN IMMEDIATE serializes them and the revision check decides.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flowkeep.db");
    let a = Arc::new(Service::open(&path, StoreOptions::default()).unwrap());
    let b = Arc::new(Service::open(&path, StoreOptions::default()).unwrap());
    let wf = a
        .workflows()
        .create(CreateWorkflow {
            name: "race".into(),
            ..Default::default()
        })
        .unwrap();
    for round in 0..10 {
        let revision = a
            .workflows()
            .get(WorkflowId { id: wf.id.clone() })
            .unwrap()
            .revision;
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .enumerate()
            .map(|(i, svc)| {
                let (barrier, id) = (barrier.clone(), wf.id.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    svc.workflows().update(UpdateWorkflow {
                        id,
                        expected_revision: Some(revision),
                        name: Some(format!("round {round} p{i}")),
                        ..Default::default()
                    })
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert_eq!(
            results
                .iter()
                .filter(|r| matches!(r, Err(Error::Conflict(_))))
                .count(),
            1,
            "{results:?}"
        );
    }
    assert_eq!(a.event_count().unwrap(), 11);
    let live = a.dump_read_tables().unwrap();
    a.rebuild_projections().unwrap();
    assert_eq!(b.dump_read_tables().unwrap(), live);
}
