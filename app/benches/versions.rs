//! `cargo bench -p flowkeep-app --bench versions`: one workflow with 10,000
//! events (config edits, renames, a delete and an undelete) in a temp-file
//! database, then p50/p99 of reading a past version and of a diff, by
//! revision and by time. Versions are replayed from the event log on each
//! call (no snapshots).
//!
//! FLOWKEEP_BENCH_EVENTS=N changes the history's length.

mod timing;

use flowkeep_app::{Service, StoreOptions};
use flowkeep_core::commands::*;
use serde_json::json;
use timing::{time, us};

fn main() {
    let events: usize = std::env::var("FLOWKEEP_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::open(&dir.path().join("flowkeep.db"), StoreOptions::default()).unwrap();
    let wf = svc
        .workflows()
        .create(CreateWorkflow {
            name: "long history".into(),
            config: Some(json!({
                "fields": [
                    {"key": "n", "type": "number"},
                    {"key": "mode", "type": "select", "options": ["a", "b"]},
                    {"key": "note", "type": "text"}
                ],
                "values": {"n": 0, "mode": "a", "note": ""}
            })),
            ..Default::default()
        })
        .unwrap();
    let id = wf.id.clone();
    let seeded = std::time::Instant::now();
    let mut instants = Vec::with_capacity(events);
    for i in 1..events {
        match i % 10 {
            0 => {
                svc.workflows()
                    .update(UpdateWorkflow {
                        id: id.clone(),
                        name: Some(format!("long history {i}")),
                        ..Default::default()
                    })
                    .unwrap();
            }
            5 => {
                svc.configs()
                    .set_value(SetConfigValue {
                        workflow_id: id.clone(),
                        key: "note".into(),
                        value: json!(format!("edit {i}")),
                        expected_revision: None,
                    })
                    .unwrap();
            }
            _ => {
                svc.configs()
                    .set_value(SetConfigValue {
                        workflow_id: id.clone(),
                        key: "n".into(),
                        value: json!(i),
                        expected_revision: None,
                    })
                    .unwrap();
            }
        }
        instants.push(chrono::Utc::now().to_rfc3339());
    }
    let revision = svc
        .workflows()
        .get(WorkflowId { id: id.clone() })
        .unwrap()
        .revision;
    eprintln!(
        "seeded {revision} events in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );
    let n = 200;
    let pick = |i: usize| (i * 7919) % revision as usize + 1;
    let rows = [
        time("workflow get --at REV", n, |i| {
            svc.workflows()
                .get_at(WorkflowAt {
                    id: id.clone(),
                    at: pick(i).to_string(),
                })
                .unwrap()
        }),
        time("workflow get --at TIME", n, |i| {
            svc.workflows()
                .get_at(WorkflowAt {
                    id: id.clone(),
                    at: instants[(i * 7919) % instants.len()].clone(),
                })
                .unwrap()
        }),
        time("workflow diff REV (to now)", n, |i| {
            svc.workflows()
                .diff(DiffWorkflow {
                    id: id.clone(),
                    from: pick(i).to_string(),
                    to: None,
                })
                .unwrap()
        }),
        time("workflow diff REV REV", n, |i| {
            let (a, b) = (pick(i), pick(i + 1));
            svc.workflows()
                .diff(DiffWorkflow {
                    id: id.clone(),
                    from: a.min(b).to_string(),
                    to: Some(a.max(b).to_string()),
                })
                .unwrap()
        }),
        time("workflow_history (all events)", n, |_| {
            svc.workflows()
                .history(WorkflowHistory {
                    workflow_id: id.clone(),
                })
                .unwrap()
        }),
    ];
    println!();
    println!("| call ({revision} events in the workflow) | n | p50 µs | p99 µs |");
    println!("|---|---:|---:|---:|");
    for r in &rows {
        println!("| {} | {} | {} | {} |", r.name, r.n, us(r.p50), us(r.p99));
    }
}
