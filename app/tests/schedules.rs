//! The agent against a real store and real jobs, with a clock moved by
//! hand: no test sleeps to wait for a schedule.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use flowkeep_app::agent::Agent;
use flowkeep_app::{Service, StoreOptions};
use flowkeep_core::commands::*;
use flowkeep_core::run::{Run, RunStatus};
use serde_json::json;

mod common;
mod support;
use common::{TestClock, T0};
use support::TestServer;

fn open_at(dir: &std::path::Path, clock: &TestClock) -> Arc<Service> {
    Arc::new(
        Service::open(&dir.join("flowkeep.db"), StoreOptions::default())
            .unwrap()
            .with_clock(clock.clone()),
    )
}

fn scheduled(svc: &Service, command: &[&str], schedule: serde_json::Value) -> String {
    svc.workflows()
        .create(CreateWorkflow {
            name: "ticker".into(),
            config: Some(json!({"run": {"command": command, "schedule": schedule}})),
            ..Default::default()
        })
        .unwrap()
        .id
}

fn agent(svc: &Arc<Service>) -> Agent {
    Agent::new(svc.clone(), Arc::new(AtomicBool::new(false)))
}

/// The workflow's scheduled records, oldest occurrence first.
fn records(svc: &Service, wf: &str) -> Vec<Run> {
    let mut runs = svc
        .runs()
        .list(ListRuns {
            filter: RunFilter {
                workflow_id: Some(wf.to_owned()),
                ..Default::default()
            },
            limit: Some(500),
            ..Default::default()
        })
        .unwrap()
        .items;
    runs.retain(|r| r.occurrence.is_some());
    runs.sort_by_key(|r| r.occurrence);
    runs
}

fn summary(runs: &[Run]) -> Vec<(i64, RunStatus)> {
    runs.iter()
        .map(|r| (r.occurrence.unwrap() - T0, r.status))
        .collect()
}

#[test]
fn on_time_occurrences_run_once_and_missed_ones_are_recorded_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::at(T0);
    let svc = open_at(dir.path(), &clock);
    let wf = scheduled(&svc, &["true"], json!({"interval": "2s"}));
    let mut a = agent(&svc);

    clock.set(T0 + 2_010);
    a.pass().unwrap();
    a.pass().unwrap();
    a.drain();
    assert_eq!(
        summary(&records(&svc, &wf)),
        [(2_000, RunStatus::Succeeded)]
    );
    let run = &records(&svc, &wf)[0];
    assert_eq!(run.trigger, "schedule");

    // Asleep for 8 s: 4, 6 and 8 s are more than the grace (the interval)
    // late and are skipped; 10 s is on time.
    clock.set(T0 + 10_010);
    a.pass().unwrap();
    a.drain();
    let got = records(&svc, &wf);
    assert_eq!(
        summary(&got),
        [
            (2_000, RunStatus::Succeeded),
            (4_000, RunStatus::Skipped),
            (6_000, RunStatus::Skipped),
            (8_000, RunStatus::Skipped),
            (10_000, RunStatus::Succeeded),
        ]
    );
    let why = got[1].error.as_deref().unwrap();
    assert!(why.contains("missed: skip"), "{why}");

    // A new agent (a restart) starts from what is recorded.
    let mut again = agent(&svc);
    again.pass().unwrap();
    again.drain();
    assert_eq!(records(&svc, &wf).len(), 5);
}

#[test]
fn run_once_catches_up_with_the_latest_missed_occurrence() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::at(T0);
    let svc = open_at(dir.path(), &clock);
    let wf = scheduled(
        &svc,
        &["true"],
        json!({"interval": "1m", "missed": "run_once"}),
    );
    clock.set(T0 + 5 * 60_000 + 30_000 + 61_000);
    let mut a = agent(&svc);
    a.pass().unwrap();
    a.drain();
    let got = summary(&records(&svc, &wf));
    assert_eq!(
        got,
        [
            (60_000, RunStatus::Skipped),
            (120_000, RunStatus::Skipped),
            (180_000, RunStatus::Skipped),
            (240_000, RunStatus::Skipped),
            // The latest missed one (91 s late) runs; 360 s is on time
            // (31 s late, within the minute's grace).
            (300_000, RunStatus::Succeeded),
            (360_000, RunStatus::Succeeded),
        ]
    );
}

#[test]
fn two_agents_on_one_store_never_record_an_occurrence_twice() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::at(T0);
    let one = open_at(dir.path(), &clock);
    let two = open_at(dir.path(), &clock);
    let wf = scheduled(
        &one,
        &["true"],
        json!({"interval": "1s", "overlap": "allow"}),
    );
    let (mut a, mut b) = (agent(&one), agent(&two));
    for step in 1..=20 {
        clock.set(T0 + step * 700);
        // Both see the same moments, in either order, from two threads.
        std::thread::scope(|s| {
            s.spawn(|| a.pass().unwrap());
            s.spawn(|| b.pass().unwrap());
        });
    }
    a.drain();
    b.drain();
    let got = records(&one, &wf);
    let mut occ: Vec<i64> = got.iter().map(|r| r.occurrence.unwrap()).collect();
    let n = occ.len();
    occ.dedup();
    assert_eq!(
        occ.len(),
        n,
        "an occurrence recorded twice: {:?}",
        summary(&got)
    );
    let want: Vec<i64> = (1..=14).map(|s| T0 + s * 1000).collect();
    assert_eq!(occ, want, "every second from 1 to 14 s once");
}

#[test]
fn an_occurrence_while_the_last_run_is_going_follows_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::at(T0);
    let svc = open_at(dir.path(), &clock);
    let wf = scheduled(&svc, &["sleep", "30"], json!({"interval": "1s"}));
    let mut a = agent(&svc);
    clock.set(T0 + 1_005);
    a.pass().unwrap();
    // Wait until the first run is recorded as going.
    for _ in 0..100 {
        if records(&svc, &wf)
            .first()
            .is_some_and(|r| r.status == RunStatus::Running)
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    clock.set(T0 + 2_005);
    a.pass().unwrap();
    a.shutdown();
    let got = records(&svc, &wf);
    assert_eq!(
        summary(&got),
        [(1_000, RunStatus::Cancelled), (2_000, RunStatus::Skipped)]
    );
    assert!(got[1].error.as_deref().unwrap().contains("still going"));
}

#[test]
fn a_paused_schedule_records_nothing_and_resumes_from_then() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::at(T0);
    let svc = open_at(dir.path(), &clock);
    let wf = scheduled(&svc, &["true"], json!({"interval": "1s", "paused": true}));
    let mut a = agent(&svc);
    clock.set(T0 + 5_010);
    a.pass().unwrap();
    assert!(records(&svc, &wf).is_empty());
    let rows = svc.schedules().list(Default::default()).unwrap();
    assert_eq!(rows[0].state, "paused");
    assert_eq!(rows[0].next_run, None);
    let cfg = json!({"run": {"command": ["true"], "schedule": {"interval": "1s"}}});
    svc.configs()
        .update(UpdateConfig {
            workflow_id: wf.clone(),
            config: cfg,
            expected_revision: None,
        })
        .unwrap();
    clock.set(T0 + 6_010);
    a.pass().unwrap();
    a.drain();
    // Resumed at about 5 s: nothing from the pause is "missed".
    assert_eq!(
        summary(&records(&svc, &wf)),
        [(6_000, RunStatus::Succeeded)]
    );
}

#[test]
fn a_schedule_runs_only_on_its_owner_and_a_handover_is_an_audited_change() {
    let server = TestServer::start();
    let token = server.workspace("team");
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = TestClock::at(T0);
    let a = open_at(da.path(), &clock);
    let b = open_at(db.path(), &clock);
    let wf = scheduled(&a, &["true"], json!({"interval": "1s"}));
    let join = a.sync().init(&server.url, &token).unwrap().join;
    b.sync().join(&join, &token).unwrap();

    let row = &b.schedules().list(Default::default()).unwrap()[0];
    assert_eq!(row.owner.as_deref(), Some(a.device_id()));
    assert!(!row.owned_here);
    assert!(row.state.starts_with("runs on "), "{}", row.state);

    let (mut on_a, mut on_b) = (agent(&a), agent(&b));
    clock.set(T0 + 60_000);
    let first = T0 + 60_000;
    clock.set(first + 5);
    on_a.pass().unwrap();
    on_b.pass().unwrap();
    on_a.drain();
    on_b.drain();
    let ran = |svc: &Service| -> Vec<i64> {
        records(svc, &wf)
            .iter()
            .filter(|r| r.device_id == svc.device_id() && r.status != RunStatus::Skipped)
            .map(|r| r.occurrence.unwrap())
            .collect()
    };
    // A records the minute since the schedule was set (59 missed, skipped)
    // and runs the one on time.
    assert_eq!(records(&a, &wf).len(), 60);
    assert_eq!(ran(&a), [first]);
    assert!(records(&b, &wf).is_empty(), "B never runs A's schedule");

    // B cannot take a schedule whose run spec it never approved.
    let refused = b
        .schedules()
        .own(OwnSchedule {
            workflow_id: wf.clone(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(refused.to_string().contains("approve"), "{refused}");
    b.workflows()
        .approve(ApproveWorkflow {
            id: wf.clone(),
            expected_revision: None,
        })
        .unwrap();
    b.schedules()
        .own(OwnSchedule {
            workflow_id: wf.clone(),
            ..Default::default()
        })
        .unwrap();
    b.sync().now().unwrap();
    a.sync().now().unwrap();
    let on_a_now = &a.schedules().list(Default::default()).unwrap()[0];
    assert_eq!(on_a_now.owner.as_deref(), Some(b.device_id()));

    clock.set(first + 10_005);
    on_a.pass().unwrap();
    on_b.pass().unwrap();
    on_a.drain();
    on_b.drain();
    assert_eq!(ran(&a), [first], "A stopped running it");
    let on_b = ran(&b);
    assert!(!on_b.is_empty(), "B runs it now");
    assert!(on_b.iter().all(|o| *o > first), "{on_b:?}");

    // The handover is in the audit trail: config.run's owner, old → new.
    let history = b
        .workflows()
        .history(WorkflowHistory {
            workflow_id: wf.clone(),
        })
        .unwrap();
    let handover = history
        .iter()
        .find(|h| {
            h.changes
                .iter()
                .any(|c| c.field == "config.run" && c.new.to_string().contains(b.device_id()))
        })
        .expect("the handover is in the history");
    assert!(handover.changes[0].old.to_string().contains(a.device_id()));
}

#[test]
fn the_schedules_table_is_rebuilt_from_the_log_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::at(T0);
    let svc = open_at(dir.path(), &clock);
    let a = scheduled(&svc, &["true"], json!({"interval": "1m"}));
    let b = scheduled(
        &svc,
        &["true"],
        json!({"cron": "0 3 * * *", "timezone": "Asia/Tokyo"}),
    );
    clock.set(T0 + 10_000);
    svc.configs()
        .update(UpdateConfig {
            workflow_id: a.clone(),
            config: json!({"run": {"command": ["true"], "schedule": {"interval": "5m", "paused": true}}}),
            expected_revision: None,
        })
        .unwrap();
    svc.workflows()
        .delete(DeleteWorkflow {
            id: b.clone(),
            expected_revision: None,
        })
        .unwrap();
    let mut agent = agent(&svc);
    clock.set(T0 + 20 * 60_000);
    agent.pass().unwrap();
    agent.drain();
    let before = svc.dump_read_tables().unwrap();
    assert!(
        before.contains(&a) && !before.contains(&format!("{b}|")),
        "{before}"
    );
    svc.rebuild_projections().unwrap();
    assert_eq!(svc.dump_read_tables().unwrap(), before);
    let rows = svc.schedules().list(Default::default()).unwrap();
    assert_eq!(rows.len(), 1, "a deleted workflow's schedule is gone");
    assert_eq!(
        rows[0].since,
        T0 + 10_000,
        "since the change that set it as it is"
    );
}
