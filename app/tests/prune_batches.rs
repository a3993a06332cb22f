//! A prune of many runs is cut into bounded batches, each its own
//! transaction and event, so other writers never wait for the whole prune;
//! the batches replay to the same tables, and a stopped prune keeps what it
//! deleted.

use std::sync::atomic::AtomicBool;

use flowkeep_app::{Service, StoreOptions, PRUNE_BATCH, PRUNE_BATCH_MAX};
use flowkeep_core::commands::{CreateWorkflow, ImportRuns, ImportedRun, RunFilter};
use flowkeep_core::run::RunStatus;

fn with_runs(n: u64) -> (Service, String) {
    let svc = Service::open_in_memory(StoreOptions::default()).unwrap();
    let wf = svc
        .workflows()
        .create(CreateWorkflow {
            name: "w".into(),
            ..Default::default()
        })
        .unwrap()
        .id;
    // Several runs share each start instant, so batch bounds meet ties.
    let executions = (0..n)
        .map(|i| ImportedRun {
            workflow_id: wf.clone(),
            status: RunStatus::Succeeded,
            started_at: 1_000_000 + (i / 3) as i64,
            completed_at: 1_000_000 + (i / 3) as i64 + 5,
            exit_code: Some(0),
            output: None,
            error: None,
            trigger: None,
        })
        .collect();
    svc.runs().import(ImportRuns { runs: executions }).unwrap();
    (svc, wf)
}

fn remaining(svc: &Service) -> u64 {
    svc.runs().count(RunFilter::default()).unwrap().count
}

/// Events beyond the creation and one `execution.recorded` per imported run.
fn prune_events(svc: &Service, imported: u64) -> u64 {
    svc.event_count().unwrap() - 1 - imported
}

#[test]
fn a_large_prune_is_several_bounded_batches_that_replay_to_the_same_tables() {
    let (svc, wf) = with_runs(5_000);
    let mut seen = Vec::new();
    let report = svc
        .runs()
        .prune_with(
            RunFilter {
                workflow_id: Some(wf),
                status: None,
                since: None,
                until: Some(1_000_000 + 1_500), // runs 0..4_500 started before this
            },
            &AtomicBool::new(false),
            &mut |n| seen.push(n),
        )
        .unwrap();
    assert_eq!(report.deleted, 4_500);
    assert_eq!(remaining(&svc), 500);
    // The first batch deleted PRUNE_BATCH (ties go along), the next ones as
    // many as fit the time a batch aims at, never more than the maximum;
    // progress only grows and ends at the total.
    assert!(seen.len() >= 2, "{seen:?}");
    assert_eq!(*seen.last().unwrap(), 4_500);
    for pair in seen.windows(2) {
        let step = pair[1] - pair[0];
        assert!(step <= PRUNE_BATCH_MAX + 2, "{seen:?}");
    }
    assert!(
        seen[0] >= PRUNE_BATCH && seen[0] <= PRUNE_BATCH + 2,
        "{seen:?}"
    );
    assert_eq!(prune_events(&svc, 5_000), seen.len() as u64);
    let live = svc.dump_read_tables().unwrap();
    svc.rebuild_projections().unwrap();
    assert_eq!(svc.dump_read_tables().unwrap(), live);
}

#[test]
fn a_stopped_prune_keeps_the_batches_it_committed() {
    let (svc, wf) = with_runs(5_000);
    let stop = AtomicBool::new(true); // stop after the first batch
    let report = svc
        .runs()
        .prune_with(
            RunFilter {
                workflow_id: Some(wf),
                status: None,
                since: None,
                until: Some(i64::MAX),
            },
            &stop,
            &mut |_| {},
        )
        .unwrap();
    assert!(report.deleted >= PRUNE_BATCH && report.deleted < 5_000);
    assert_eq!(remaining(&svc), 5_000 - report.deleted);
}

#[test]
fn a_small_prune_is_one_event() {
    let (svc, wf) = with_runs(10);
    let before = svc.event_count().unwrap();
    let report = svc
        .runs()
        .prune(RunFilter {
            workflow_id: Some(wf),
            status: None,
            since: None,
            until: Some(i64::MAX),
        })
        .unwrap();
    assert_eq!(report.deleted, 10);
    assert_eq!(svc.event_count().unwrap(), before + 1);
}

#[test]
fn a_prune_takes_the_filter_a_list_takes_and_must_say_until_when() {
    let (svc, wf) = with_runs(10);
    let filter = RunFilter {
        workflow_id: Some(wf),
        ..Default::default()
    };
    let err = svc.runs().prune(filter.clone()).unwrap_err();
    let body = err.body();
    assert_eq!(body.fields[0].field, "until", "{body:?}");
    assert_eq!(body.fields[0].code, "required");
    assert_eq!(remaining(&svc), 10, "nothing deleted");

    // The filter that counts what a list shows deletes exactly that.
    let cut = RunFilter {
        until: Some(1_000_000 + 2), // runs 0..6
        ..filter
    };
    let counted = svc.runs().count(cut.clone()).unwrap().count;
    assert_eq!(counted, 6);
    assert_eq!(svc.runs().prune(cut).unwrap().deleted, counted);
}
