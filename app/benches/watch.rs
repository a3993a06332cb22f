//! `cargo bench -p flowkeep-app --bench watch` (build the server first:
//! `cargo build --release -p flowkeep-sync-server`). Two devices of one
//! workspace with N workflow documents (default 10,000; set
//! FLOWKEEP_BENCH_WATCH_DOCS), both running `sync watch` through the real
//! server on loopback. Prints, from one run:
//! - the first sync of N documents (init on one device, join on the other);
//! - one edit on device A until device B's read tables show it: p50/p99;
//! - an idle watch's CPU, per watching device, as a share of one core.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowkeep_core::commands::*;

#[path = "sync_support/mod.rs"]
mod sync_support;
use sync_support::*;

/// This process's CPU time (user + system).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The command name may hold spaces; the fields after it do not.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = 100; // USER_HZ on Linux
    Duration::from_millis(ticks * 1000 / hz)
}

fn main() {
    let n: usize = std::env::var("FLOWKEEP_BENCH_WATCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let interval = Duration::from_millis(
        std::env::var("FLOWKEEP_BENCH_WATCH_INTERVAL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50),
    );
    println!(
        "# flowkeep watch bench: {n} workflows, {} cores, local changes looked for every {} ms",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        interval.as_millis()
    );
    let server = start_server();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (device(&da, "a"), device(&db, "b"));
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let wf = a
            .workflows().create(CreateWorkflow {
                name: format!("w{i}"),
                config: Some(serde_json::json!({"fields": [{"key": "k", "type": "number"}], "values": {"k": i}})),
                ..Default::default()
            })
            .unwrap();
        ids.push(wf.id);
    }
    let t = Instant::now();
    let join = a.sync().init(&server.url, &server.token).unwrap().join;
    let init = t.elapsed();
    let t = Instant::now();
    b.sync().join(&join, &server.token).unwrap();
    let joined = t.elapsed();
    drop((a, b));

    // Each device watches with its own service, as `flowkeep sync watch`
    // does beside the process that edits.
    let stop = Arc::new(AtomicBool::new(false));
    let watchers: Vec<_> = [&da, &db]
        .into_iter()
        .map(|dir| {
            let (stop, path) = (stop.clone(), dir.path().join("flowkeep.db"));
            std::thread::spawn(move || {
                let svc = flowkeep_app::Service::open(&path, Default::default()).unwrap();
                svc.sync().watch(&stop, interval, |_| {})
            })
        })
        .collect();
    let (a, b) = (device(&da, "a"), device(&db, "b"));
    // Both watchers finish their first (full) rounds: this process's CPU
    // falls under 5% of a core for 5 s.
    let warm = Instant::now();
    let mut last = cpu();
    loop {
        std::thread::sleep(Duration::from_secs(5));
        let now = cpu();
        if now - last < Duration::from_millis(250) || warm.elapsed() > Duration::from_secs(600) {
            break;
        }
        last = now;
    }
    let warm_up = warm.elapsed();

    let idle_window = Duration::from_secs(10);
    let before = cpu();
    std::thread::sleep(idle_window);
    let idle = (cpu() - before).as_secs_f64() / idle_window.as_secs_f64() / 2.0 * 100.0;

    let mut lat = Vec::new();
    for i in 0..100 {
        let id = &ids[(i * 7919) % n];
        let text = format!("edit {i}");
        let t = Instant::now();
        a.workflows()
            .update(UpdateWorkflow {
                id: id.clone(),
                description: Some(text.clone()),
                ..Default::default()
            })
            .unwrap();
        loop {
            let got = b.workflows().get(WorkflowId { id: id.clone() }).unwrap();
            if got.spec.description == text {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "edit {i} did not arrive"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        lat.push(t.elapsed());
    }
    stop.store(true, Ordering::SeqCst);
    for w in watchers {
        w.join().unwrap().unwrap();
    }

    println!();
    println!("| measure ({n} workflows) | result |");
    println!("|---|---:|");
    println!(
        "| first sync: `sync init` on A | {:.1} s |",
        init.as_secs_f64()
    );
    println!(
        "| first sync: `sync join` on B | {:.1} s |",
        joined.as_secs_f64()
    );
    println!(
        "| both watches' first full rounds | {:.1} s |",
        warm_up.as_secs_f64()
    );
    println!(
        "| one edit on A until B's read tables show it, both watching, p50 | {:.1} ms |",
        pct(lat.clone(), 50)
    );
    println!("| the same, p99 | {:.1} ms |", pct(lat, 99));
    println!(
        "| idle watch CPU per device ({} s window) | {idle:.2} % of a core |",
        idle_window.as_secs()
    );
}
