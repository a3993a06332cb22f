//! The agent with 10,000 enabled schedules: its CPU while nothing is due
//! (target < 1% of a core) and how late scheduled runs start (wake-up
//! accuracy, target p99 < 1 s), with the real clock and real jobs.
//!
//! `cargo bench -p flowkeep-app --bench agent` prints a table. Seeding
//! takes a few seconds; each phase runs `FLOWKEEP_BENCH_SECS` (default 20).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowkeep_app::agent::Agent;
use flowkeep_app::{Service, StoreOptions};
use flowkeep_core::commands::*;
use serde_json::json;

const SCHEDULES: usize = 10_000;
const FIRING: usize = 10;
const ZONES: [&str; 5] = [
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "UTC",
    "Australia/Sydney",
];

/// CPU time of this process so far (user + system), from /proc.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

fn main() {
    let secs: u64 = std::env::var("FLOWKEEP_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let svc =
        Arc::new(Service::open(&dir.path().join("flowkeep.db"), StoreOptions::default()).unwrap());
    let t = Instant::now();
    for i in 0..SCHEDULES {
        // Yearly, at a minute of 1 January in one of five zones: enabled,
        // planned and tracked, but not due while the bench runs.
        let schedule =
            json!({"cron": format!("{} 0 1 1 *", i % 60), "timezone": ZONES[i % ZONES.len()]});
        svc.workflows()
            .create(CreateWorkflow {
                name: format!("scheduled {i:05}"),
                config: Some(json!({"run": {"command": ["true"], "schedule": schedule}})),
                ..Default::default()
            })
            .unwrap();
    }
    eprintln!(
        "seeded {SCHEDULES} schedules in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let agent_svc = svc.clone();
    let agent_stop = stop.clone();
    let handle = std::thread::spawn(move || {
        Agent::new(agent_svc, agent_stop).run().unwrap();
    });
    // Let the first pass load and plan everything, then measure idle.
    std::thread::sleep(Duration::from_secs(3));
    let (c0, w0) = (cpu(), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let idle = (cpu() - c0).as_secs_f64() / w0.elapsed().as_secs_f64();

    // Now some fire every second among the 10,000.
    let mut firing = Vec::new();
    for i in 0..FIRING {
        firing.push(
            svc.workflows()
                .create(CreateWorkflow {
                    name: format!("every second {i}"),
                    config: Some(json!({"run": {"command": ["true"], "schedule": {"interval": "1s", "overlap": "allow"}}})),
                    ..Default::default()
                })
                .unwrap()
                .id,
        );
    }
    let (c1, w1) = (cpu(), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let busy = (cpu() - c1).as_secs_f64() / w1.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();

    let mut late = Vec::new();
    let mut skipped = 0;
    for id in &firing {
        let runs = svc
            .runs()
            .list(ListRuns {
                filter: RunFilter {
                    workflow_id: Some(id.clone()),
                    ..Default::default()
                },
                limit: Some(500),
                ..Default::default()
            })
            .unwrap()
            .items;
        for r in runs {
            match (r.occurrence, r.status) {
                (Some(_), flowkeep_core::run::RunStatus::Skipped) => skipped += 1,
                (Some(o), _) => late.push(r.started_at - o),
                _ => {}
            }
        }
    }
    late.sort();
    let n = late.len();
    let p = |q: usize| late[(n * q / 100).min(n - 1)];
    println!("agent with {SCHEDULES} enabled schedules ({secs} s per phase)");
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!(
        "| idle CPU, nothing due | {:.2} % of a core | < 1 % |",
        idle * 100.0
    );
    println!(
        "| CPU with {FIRING} schedules firing every second | {:.2} % of a core | - |",
        busy * 100.0
    );
    println!("| scheduled runs started | {n} (skipped {skipped}) | - |");
    println!("| start after occurrence p50 | {} ms | - |", p(50));
    println!("| start after occurrence p99 | {} ms | < 1000 ms |", p(99));
    println!("| start after occurrence max | {} ms | - |", late[n - 1]);
}
