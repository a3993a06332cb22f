//! `cargo bench -p flowkeep-app --bench validation`: a config with 50 text
//! fields, each `pattern: "\\w{120}"` (Unicode `\w`, ~6 MiB compiled), on a
//! temp-file database.
//!
//! - p50/p99 of `set_config_value` and `update_config` on it (the pattern is
//!   compiled once per process, then taken from the cache);
//! - p50/p99 of a plain `create_workflow` while another thread updates such a
//!   config whose patterns are new (not compiled yet, so its validation is
//!   slow): validation runs outside the write transaction, so the create
//!   does not wait for it. The same creates alone are the baseline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowkeep_app::{Service, StoreOptions};
use flowkeep_core::commands::*;
use flowkeep_core::validation::patterns;
use serde_json::{json, Value};

const FIELDS: usize = 50;

fn patterned(patterns: &[String], fill: char) -> Value {
    let fields: Vec<Value> = (0..FIELDS)
        .map(|i| json!({"key": format!("p{i}"), "type": "text", "pattern": patterns[i % patterns.len()]}))
        .collect();
    let values: serde_json::Map<String, Value> = (0..FIELDS)
        .map(|i| (format!("p{i}"), json!(fill.to_string().repeat(120))))
        .collect();
    json!({"fields": fields, "values": values})
}

struct Stats {
    n: usize,
    p50: Duration,
    p99: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    Stats {
        n,
        p50: samples[n / 2],
        p99: samples[(n * 99 / 100).min(n - 1)],
    }
}

fn time(n: usize, mut f: impl FnMut(usize)) -> Stats {
    stats(
        (0..n)
            .map(|i| {
                let t = Instant::now();
                f(i);
                t.elapsed()
            })
            .collect(),
    )
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn plain_create(svc: &Service, name: String) {
    svc.workflows()
        .create(CreateWorkflow {
            name,
            config: Some(json!({"fields": [], "values": {}})),
            ..Default::default()
        })
        .unwrap();
}

fn main() {
    let dir = tempfile::Builder::new()
        .prefix("flowkeep-bench-validation")
        .tempdir()
        .unwrap();
    let svc = Arc::new(
        Service::open(
            &dir.path().join("flowkeep.db"),
            StoreOptions {
                actor: "bench".into(),
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let mut rows: Vec<(String, Stats)> = Vec::new();

    let w120 = vec![r"\w{120}".to_owned()];
    let t = Instant::now();
    let id = svc
        .workflows()
        .create(CreateWorkflow {
            name: "patterns".into(),
            config: Some(patterned(&w120, 'a')),
            ..Default::default()
        })
        .unwrap()
        .id;
    let first = t.elapsed();

    let before = patterns::cache_stats().builds;
    let n = 500;
    rows.push((
        format!("set_config_value, {FIELDS} × \\w{{120}}"),
        time(n, |i| {
            svc.configs()
                .set_value(SetConfigValue {
                    workflow_id: id.clone(),
                    key: format!("p{}", i % FIELDS),
                    value: json!(if i % 2 == 0 { "b" } else { "c" }.repeat(120)),
                    expected_revision: None,
                })
                .unwrap();
        }),
    ));
    rows.push((
        format!("update_config, {FIELDS} × \\w{{120}}"),
        time(n, |i| {
            svc.configs()
                .update(UpdateConfig {
                    workflow_id: id.clone(),
                    config: patterned(&w120, if i % 2 == 0 { 'd' } else { 'e' }),
                    expected_revision: None,
                })
                .unwrap();
        }),
    ));
    let warm_compiles = patterns::cache_stats().builds - before;

    let n = 300;
    rows.push((
        "create_workflow (plain), alone".into(),
        time(n, |i| plain_create(&svc, format!("alone {i}"))),
    ));

    // Rounds of an update whose 4 patterns were never compiled (slow to
    // validate), with plain creates on this thread for as long as it runs.
    let rounds = 10;
    let mut during = Vec::new();
    let mut slow_updates = Vec::new();
    for round in 0..rounds {
        let fresh: Vec<String> = (0..4)
            .map(|k| format!(r"\w{{120}}(?:r{round}k{k})?"))
            .collect();
        let done = Arc::new(AtomicBool::new(false));
        let updater = {
            let (svc, id, done) = (svc.clone(), id.clone(), done.clone());
            std::thread::spawn(move || {
                let t = Instant::now();
                svc.configs()
                    .update(UpdateConfig {
                        workflow_id: id,
                        config: patterned(&fresh, 'f'),
                        expected_revision: None,
                    })
                    .unwrap();
                let took = t.elapsed();
                done.store(true, Ordering::SeqCst);
                took
            })
        };
        let mut i = 0;
        while !done.load(Ordering::SeqCst) {
            let t = Instant::now();
            plain_create(&svc, format!("during {round} {i}"));
            during.push(t.elapsed());
            i += 1;
        }
        slow_updates.push(updater.join().unwrap());
    }
    rows.push((
        "create_workflow (plain), while an update validates new patterns".into(),
        stats(during),
    ));
    rows.push((
        "update_config, 4 new \\w{120} patterns (cold)".into(),
        stats(slow_updates),
    ));

    println!("# flowkeep-app validation bench");
    println!(
        "first create of the {FIELDS}-pattern config (compiles \\w{{120}} once): {} ms",
        ms(first)
    );
    println!("patterns compiled during the warm updates: {warm_compiles}");
    println!();
    println!("| command | n | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    for (name, s) in &rows {
        println!("| {name} | {} | {} | {} |", s.n, ms(s.p50), ms(s.p99));
    }
}
