//! `cargo bench -p flowkeep-app`: seeds 10,000 workflows and 1,000,000
//! executions into a temp-file database, then prints p50/p99 latency of each
//! command and of execution list pages, beside raw SQLite single-insert and
//! batched-insert rates measured in the same run on the same disk.
//!
//! Scale down for a quick look: FLOWKEEP_BENCH_WORKFLOWS=1000
//! FLOWKEEP_BENCH_EXECUTIONS=100000 cargo bench -p flowkeep-app

mod timing;

use std::time::{Duration, Instant};

use flowkeep_app::{Service, StoreOptions};
use flowkeep_core::commands::*;
use flowkeep_core::run::RunStatus;
use serde_json::json;
use timing::{time, us, Stats};

const DAY_MS: i64 = 86_400_000;
const T0: i64 = 1_735_689_600_000; // 2025-01-01

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config() -> serde_json::Value {
    json!({
        "fields": [
            {"key": "retries", "type": "number", "required": true, "integer": true, "min": 0, "max": 10},
            {"key": "mode", "type": "select", "options": ["fast", "safe"], "required": true},
            {"key": "endpoint", "type": "text", "format": "url"},
            {"key": "schedule", "type": "text", "rule": "cron"},
            {"key": "params", "type": "json", "schema": {"type": "object"}}
        ],
        "values": {"retries": 3, "mode": "fast", "endpoint": "https://example.org/x", "schedule": "0 3 * * *", "params": {"a": 1}}
    })
}

/// Raw SQLite with the same pragmas: one row per commit, and 1,000 rows per commit.
fn raw_rates(dir: &std::path::Path) -> (f64, f64) {
    let c = rusqlite::Connection::open(dir.join("raw.db")).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "NORMAL").unwrap();
    c.execute_batch(
        "CREATE TABLE raw (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, stream TEXT, payload TEXT)",
    )
    .unwrap();
    let payload = config().to_string();
    let n_single = 5_000;
    let t = Instant::now();
    for i in 0..n_single {
        c.execute(
            "INSERT INTO raw (id, stream, payload) VALUES (?1, ?2, ?3)",
            rusqlite::params![format!("s{i}"), "x", payload],
        )
        .unwrap();
    }
    let single = n_single as f64 / t.elapsed().as_secs_f64();
    let n_batch = 200_000;
    let t = Instant::now();
    let mut c = c;
    for b in 0..n_batch / 1000 {
        let tx = c.transaction().unwrap();
        {
            let mut st = tx
                .prepare_cached("INSERT INTO raw (id, stream, payload) VALUES (?1, ?2, ?3)")
                .unwrap();
            for i in 0..1000 {
                st.execute(rusqlite::params![
                    format!("b{b}-{i}"),
                    "x",
                    "{\"status\":\"succeeded\"}"
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let batched = n_batch as f64 / t.elapsed().as_secs_f64();
    (single, batched)
}

/// Raw SQLite doing exactly the row writes of one `start_run` (an
/// event row and an execution row, with the real schema and indexes): the
/// floor for that command, single and 1,000 per commit.
fn raw_same_rows(dir: &std::path::Path) -> (f64, f64) {
    let mut c = rusqlite::Connection::open(dir.join("raw-schema.db")).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "NORMAL").unwrap();
    c.execute_batch(include_str!("../../migrations/0001_init.sql"))
        .unwrap();
    c.execute(
        "INSERT INTO workflows (id, name, config) VALUES ('w', 'w', '{}')",
        [],
    )
    .unwrap();
    let write = |tx: &rusqlite::Connection, i: usize| {
        let id = uuid::Uuid::now_v7().to_string();
        tx.prepare_cached(
            "INSERT INTO events (id, stream_id, stream_version, kind, schema_version, payload, actor, device_id, recorded_at)
             VALUES (?1, ?2, 1, 'execution.started', 1, ?3, 'a', 'd', ?4)",
        )
        .unwrap()
        .execute(rusqlite::params![uuid::Uuid::now_v7().to_string(), id, "{\"workflow_id\":\"w\",\"status\":\"running\"}", i as i64])
        .unwrap();
        tx.prepare_cached(
            "INSERT INTO executions (id, workflow_id, status, started_at, trigger, device_id) VALUES (?1, 'w', 'running', ?2, 'x', 'd')",
        )
        .unwrap()
        .execute(rusqlite::params![id, i as i64])
        .unwrap();
    };
    let n = 5_000;
    let t = Instant::now();
    for i in 0..n {
        let tx = c.transaction().unwrap();
        write(&tx, i);
        tx.commit().unwrap();
    }
    let single = n as f64 / t.elapsed().as_secs_f64();
    let n = 100_000;
    let t = Instant::now();
    for b in 0..n / 1000 {
        let tx = c.transaction().unwrap();
        for i in 0..1000 {
            write(&tx, n + b * 1000 + i);
        }
        tx.commit().unwrap();
    }
    (single, n as f64 / t.elapsed().as_secs_f64())
}

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    let n_workflows = env_usize("FLOWKEEP_BENCH_WORKFLOWS", 10_000);
    let n_executions = env_usize("FLOWKEEP_BENCH_EXECUTIONS", 1_000_000);
    let dir = tempfile::Builder::new()
        .prefix("flowkeep-bench")
        .tempdir_in(std::env::temp_dir())
        .unwrap();
    println!("# flowkeep-app bench: {n_workflows} workflows, {n_executions} runs");
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        uname()
    );

    let (raw_single, raw_batched) = raw_rates(dir.path());
    let (raw_exec_single, raw_exec_batched) = raw_same_rows(dir.path());
    let svc = Service::open(
        &dir.path().join("flowkeep.db"),
        StoreOptions {
            actor: "bench".into(),
            ..Default::default()
        },
    )
    .unwrap();

    let mut rows: Vec<Stats> = Vec::new();
    // Seeding through the real command: each create is one event, one commit.
    let mut ids = Vec::with_capacity(n_workflows);
    let t = Instant::now();
    let create = time("create_workflow", n_workflows, |i| {
        let wf = svc
            .workflows()
            .create(CreateWorkflow {
                name: format!("workflow {i:05}"),
                description: Some(format!("loads table {} into the warehouse", i % 97)),
                tags: vec![format!("team{}", i % 20)],
                config: Some(config()),
                ..Default::default()
            })
            .unwrap();
        ids.push(wf.id);
    });
    let create_rate = n_workflows as f64 / t.elapsed().as_secs_f64();
    rows.push(create);

    // 1,000,000 finished runs over a year, 80% succeeded / 15% failed / 5% cancelled.
    let t = Instant::now();
    let step = (365 * DAY_MS) / n_executions as i64;
    let batch = 1000;
    let mut done = 0;
    while done < n_executions {
        let executions = (done..(done + batch).min(n_executions))
            .map(|i| {
                let status = match i % 20 {
                    0..=15 => RunStatus::Succeeded,
                    16..=18 => RunStatus::Failed,
                    _ => RunStatus::Cancelled,
                };
                ImportedRun {
                    workflow_id: ids[i % ids.len()].clone(),
                    status,
                    started_at: T0 + i as i64 * step,
                    completed_at: T0 + i as i64 * step + 1500,
                    exit_code: Some(if status == RunStatus::Succeeded { 0 } else { 1 }),
                    output: Some(json!({"rows": i % 1000})),
                    error: None,
                    trigger: None,
                }
            })
            .collect();
        done += svc
            .runs()
            .import(ImportRuns { runs: executions })
            .unwrap()
            .imported as usize;
    }
    let import_secs = t.elapsed().as_secs_f64();
    let import_events_rate = n_executions as f64 / import_secs;
    eprintln!("seeded in {import_secs:.1} s");

    let n = 2000;
    let pick = |i: usize| ids[(i * 7919) % ids.len()].clone();
    rows.push(time("get_workflow", n, |i| {
        svc.workflows().get(WorkflowId { id: pick(i) }).unwrap()
    }));
    rows.push(time("list_workflows (page 50, by name)", n, |_| {
        svc.workflows().list(ListWorkflows::default()).unwrap()
    }));
    let cursor = svc
        .workflows()
        .list(ListWorkflows {
            limit: Some(50),
            ..Default::default()
        })
        .unwrap()
        .next_cursor;
    rows.push(time("list_workflows (next page)", n, |_| {
        svc.workflows()
            .list(ListWorkflows {
                cursor: cursor.clone(),
                ..Default::default()
            })
            .unwrap()
    }));
    rows.push(time("list_workflows (updated desc)", n, |_| {
        svc.workflows()
            .list(ListWorkflows {
                sort: WorkflowSort::Updated,
                desc: true,
                ..Default::default()
            })
            .unwrap()
    }));
    rows.push(time("list_workflows (tag filter)", n, |i| {
        svc.workflows()
            .list(ListWorkflows {
                tag: Some(format!("team{}", i % 20)),
                ..Default::default()
            })
            .unwrap()
    }));
    rows.push(time("list_workflows (search)", 500, |i| {
        svc.workflows()
            .list(ListWorkflows {
                search: Some(format!("table {} ", i % 97)),
                ..Default::default()
            })
            .unwrap()
    }));
    rows.push(time("update_workflow (rename)", n, |i| {
        svc.workflows()
            .update(UpdateWorkflow {
                id: pick(i),
                name: Some(format!("renamed {i}")),
                ..Default::default()
            })
            .unwrap()
    }));
    rows.push(time("set_config_value", n, |i| {
        svc.configs()
            .set_value(SetConfigValue {
                workflow_id: pick(i),
                key: "retries".into(),
                value: json!(i % 10),
                expected_revision: None,
            })
            .unwrap()
    }));
    rows.push(time("get_config", n, |i| {
        svc.configs()
            .get(GetConfig {
                workflow_id: pick(i),
            })
            .unwrap()
    }));
    rows.push(time("validate_config", n, |i| {
        svc.configs()
            .validate(ValidateConfig {
                workflow_id: pick(i),
                config: None,
            })
            .unwrap()
    }));
    rows.push(time("workflow_history", n, |i| {
        svc.workflows()
            .history(WorkflowHistory {
                workflow_id: pick(i),
            })
            .unwrap()
    }));
    let mut started = Vec::new();
    let t = Instant::now();
    rows.push(time("start_run", n, |i| {
        started.push(
            svc.runs()
                .start(StartRun {
                    workflow_id: pick(i),
                    ..Default::default()
                })
                .unwrap()
                .id,
        )
    }));
    let start_rate = n as f64 / t.elapsed().as_secs_f64();
    rows.push(time("finish_run", n, |i| {
        svc.runs()
            .finish(FinishRun {
                id: started[i].clone(),
                status: RunStatus::Succeeded,
                exit_code: Some(0),
                output: None,
                error: None,
            })
            .unwrap()
    }));
    rows.push(time("get_run", n, |i| {
        svc.runs()
            .get(RunId {
                id: started[i].clone(),
            })
            .unwrap()
    }));
    rows.push(time("list_runs (workflow, page 50)", n, |i| {
        let filter = RunFilter {
            workflow_id: Some(pick(i)),
            ..Default::default()
        };
        svc.runs()
            .list(ListRuns {
                filter,
                limit: Some(50),
                cursor: None,
            })
            .unwrap()
    }));
    let month = |i: usize| T0 + ((i % 300) as i64) * DAY_MS;
    let status_range = |i: usize| RunFilter {
        workflow_id: None,
        status: Some(if i.is_multiple_of(2) {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        }),
        since: Some(month(i)),
        until: Some(month(i) + 30 * DAY_MS),
    };
    rows.push(time("list_runs (status + date range, page 50)", n, |i| {
        svc.runs()
            .list(ListRuns {
                filter: status_range(i),
                limit: Some(50),
                cursor: None,
            })
            .unwrap()
    }));
    let cursors: Vec<Option<String>> = (0..n)
        .map(|i| {
            svc.runs()
                .list(ListRuns {
                    filter: status_range(i),
                    limit: Some(50),
                    cursor: None,
                })
                .unwrap()
                .next_cursor
        })
        .collect();
    rows.push(time("list_runs (status + date range, next page)", n, |i| {
        svc.runs()
            .list(ListRuns {
                filter: status_range(i),
                limit: Some(50),
                cursor: cursors[i].clone(),
            })
            .unwrap()
    }));
    rows.push(time("delete_run", n, |i| {
        svc.runs()
            .delete(RunId {
                id: started[i].clone(),
            })
            .unwrap()
    }));
    rows.push(time("duplicate_workflow", 500, |i| {
        svc.workflows()
            .duplicate(DuplicateWorkflow {
                id: pick(i),
                name: None,
            })
            .unwrap()
    }));
    rows.push(time("delete_workflow", 500, |i| {
        svc.workflows()
            .delete(DeleteWorkflow {
                id: ids[i].clone(),
                expected_revision: None,
            })
            .unwrap()
    }));

    // A recorded run is a start and a finish: pairs per second, one commit each.
    let pairs = 2000;
    // The first 500 workflows were just deleted; use the second half.
    let live = |i: usize| ids[ids.len() / 2 + (i * 7919) % (ids.len() / 2)].clone();
    let t = Instant::now();
    for i in 0..pairs {
        let e = svc
            .runs()
            .start(StartRun {
                workflow_id: live(i),
                ..Default::default()
            })
            .unwrap();
        svc.runs()
            .finish(FinishRun {
                id: e.id,
                status: RunStatus::Succeeded,
                exit_code: Some(0),
                output: Some(json!({"result": {"rows": i}})),
                error: None,
            })
            .unwrap();
    }
    let pair_rate = pairs as f64 / t.elapsed().as_secs_f64();

    // Prune the older half of the imported runs, then list pages again on
    // the half that is left.
    let half = T0 + (n_executions as i64 / 2) * step;
    // In batches. What matters is how long another writer waits: a writer
    // beside the prune edits a workflow every 2 ms and times each edit;
    // the same writer alone, just before, is the baseline.
    let writer = |stop: &std::sync::atomic::AtomicBool| {
        let mut waits = Vec::new();
        let mut i = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let t = Instant::now();
            svc.workflows()
                .update(UpdateWorkflow {
                    id: live(i),
                    description: Some(format!("edited beside a prune {i}")),
                    ..Default::default()
                })
                .unwrap();
            waits.push(t.elapsed().as_secs_f64() * 1000.0);
            i += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        waits.sort_by(f64::total_cmp);
        waits
    };
    let alone_stop = std::sync::atomic::AtomicBool::new(false);
    let alone = std::thread::scope(|s| {
        let h = s.spawn(|| writer(&alone_stop));
        std::thread::sleep(Duration::from_secs(3));
        alone_stop.store(true, std::sync::atomic::Ordering::Relaxed);
        h.join().unwrap()
    });
    let t = Instant::now();
    let mut last = Instant::now();
    let mut batches: Vec<f64> = Vec::new();
    let beside_stop = std::sync::atomic::AtomicBool::new(false);
    let (pruned, beside) = std::thread::scope(|s| {
        let h = s.spawn(|| writer(&beside_stop));
        let pruned = svc
            .runs()
            .prune_with(
                RunFilter {
                    workflow_id: None,
                    status: None,
                    since: None,
                    until: Some(half),
                },
                &std::sync::atomic::AtomicBool::new(false),
                &mut |_| {
                    batches.push(last.elapsed().as_secs_f64() * 1000.0);
                    last = Instant::now();
                },
            )
            .unwrap()
            .deleted;
        beside_stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (pruned, h.join().unwrap())
    });
    let prune_secs = t.elapsed().as_secs_f64();
    let q = |v: &[f64], p: usize| {
        v.get((v.len() * p / 100).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    batches.sort_by(f64::total_cmp);
    let batch_p50 = batches.get(batches.len() / 2).copied().unwrap_or(0.0);
    let batch_max = batches.last().copied().unwrap_or(0.0);
    let late = |i: usize| T0 + 183 * DAY_MS + ((i % 150) as i64) * DAY_MS;
    let late_range = |i: usize| RunFilter {
        workflow_id: None,
        status: Some(if i.is_multiple_of(2) {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        }),
        since: Some(late(i)),
        until: Some(late(i) + 30 * DAY_MS),
    };
    let after_prune = time(
        "list_runs (status + date range, page 50) after pruning half",
        n,
        |i| {
            svc.runs()
                .list(ListRuns {
                    filter: late_range(i),
                    limit: Some(50),
                    cursor: None,
                })
                .unwrap()
        },
    );
    let after_prune_workflow = time("list_runs (workflow, page 50) after pruning half", n, |i| {
        let filter = RunFilter {
            workflow_id: Some(live(i)),
            ..Default::default()
        };
        svc.runs()
            .list(ListRuns {
                filter,
                limit: Some(50),
                cursor: None,
            })
            .unwrap()
    });
    rows.push(after_prune);
    rows.push(after_prune_workflow);

    println!();
    println!("| command | n | p50 µs | p99 µs |");
    println!("|---|---:|---:|---:|");
    for r in &rows {
        println!("| {} | {} | {} | {} |", r.name, r.n, us(r.p50), us(r.p99));
    }
    println!();
    println!("| write rate | per second | vs raw SQLite |");
    println!("|---|---:|---:|");
    println!("| raw SQLite single-row commits | {raw_single:.0} | 1.00 |");
    println!(
        "| create_workflow (one event per commit) | {create_rate:.0} | {:.2} |",
        create_rate / raw_single
    );
    println!(
        "| start_run (one event per commit) | {start_rate:.0} | {:.2} |",
        start_rate / raw_single
    );
    println!("| raw SQLite batched inserts (1,000/commit) | {raw_batched:.0} | 1.00 |");
    println!(
        "| import_runs (1,000 runs = 1,000 events/commit) | {import_events_rate:.0} | {:.2} |",
        import_events_rate / raw_batched
    );
    println!();
    println!("| same rows as the command, raw SQLite, real schema | per second | command vs this floor |");
    println!("|---|---:|---:|");
    println!(
        "| event + execution row, one per commit | {raw_exec_single:.0} | start_run {:.2} |",
        start_rate / raw_exec_single
    );
    println!(
        "| event + execution row, 1,000 per commit | {raw_exec_batched:.0} | import_runs {:.2} |",
        import_events_rate / raw_exec_batched
    );

    println!();
    println!("| runs | result |");
    println!("|---|---:|");
    println!("| start + finish pairs (2 commits each) | {pair_rate:.0} per second |");
    println!(
        "| prune of the older half ({pruned} runs, {} batches) | {prune_secs:.1} s (batch p50 {batch_p50:.0} ms, max {batch_max:.0} ms) |",
        batches.len()
    );
    println!(
        "| a workflow edit every 2 ms beside the prune ({} edits): wait p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |",
        beside.len(),
        q(&beside, 50),
        q(&beside, 99),
        beside.last().copied().unwrap_or(0.0)
    );
    println!(
        "| the same writer alone, just before ({} edits): p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |",
        alone.len(),
        q(&alone, 50),
        q(&alone, 99),
        alone.last().copied().unwrap_or(0.0)
    );

    let events = svc.event_count().unwrap();
    let t = Instant::now();
    svc.rebuild_projections().unwrap();
    let rebuild = t.elapsed();
    println!();
    println!(
        "rebuild_projections: {events} events in {:.1} s ({:.0} events/s)",
        rebuild.as_secs_f64(),
        events as f64 / rebuild.as_secs_f64()
    );
}

fn uname() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}
