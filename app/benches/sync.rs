//! `cargo bench -p flowkeep-app --bench sync` (build the server first:
//! `cargo build --release -p flowkeep-sync-server`). Prints:
//! - two devices with 1,000 offline edits each: time until both hold the
//!   same workflow, through the real server;
//! - one edit's propagation device → device (edit, `sync now` on the
//!   sender, `sync now` on the receiver): p50/p99;
//! - the server with N concurrent clients (default 1,000): time for all to
//!   connect and receive the root document, p50/p99 per client, and the
//!   server's resident memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flowkeep_app::TokenDialer;
use flowkeep_core::commands::*;
use samod::{BackoffConfig, Repo};
use serde_json::json;

#[path = "sync_support/mod.rs"]
mod sync_support;
use sync_support::*;

fn main() {
    let clients: usize = std::env::var("FLOWKEEP_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    println!(
        "# flowkeep sync bench ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let server = start_server();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (device(&da, "a"), device(&db, "b"));
    let fields: Vec<_> = (0..20)
        .map(|i| json!({"key": format!("k{i}"), "type": "number"}))
        .collect();
    let wf = a
        .workflows()
        .create(CreateWorkflow {
            name: "bench".into(),
            config: Some(json!({"fields": fields, "values": {}})),
            ..Default::default()
        })
        .unwrap();
    let join = a.sync().init(&server.url, &server.token).unwrap().join;
    b.sync().join(&join, &server.token).unwrap();

    // 1,000 offline edits on each device, then sync until both agree.
    for i in 0..1000 {
        for (d, svc) in [(0, &a), (1, &b)] {
            svc.configs()
                .set_value(SetConfigValue {
                    workflow_id: wf.id.clone(),
                    key: format!("k{}", (i * 7 + d * 3) % 20),
                    value: json!(i * 10 + d),
                    expected_revision: None,
                })
                .unwrap();
        }
    }
    let t = Instant::now();
    a.sync().now().unwrap();
    b.sync().now().unwrap();
    a.sync().now().unwrap();
    let converge = t.elapsed();
    let same = a
        .configs()
        .get(GetConfig {
            workflow_id: wf.id.clone(),
        })
        .unwrap()
        .config
        == b.configs()
            .get(GetConfig {
                workflow_id: wf.id.clone(),
            })
            .unwrap()
            .config;
    assert!(same, "the devices did not converge");

    // One edit, device → device.
    let mut lat = Vec::new();
    for i in 0..50 {
        let t = Instant::now();
        a.configs()
            .set_value(SetConfigValue {
                workflow_id: wf.id.clone(),
                key: "k0".into(),
                value: json!(100_000 + i),
                expected_revision: None,
            })
            .unwrap();
        a.sync().now().unwrap();
        b.sync().now().unwrap();
        lat.push(t.elapsed());
        assert_eq!(
            b.configs()
                .get(GetConfig {
                    workflow_id: wf.id.clone()
                })
                .unwrap()
                .config
                .values["k0"],
            json!(100_000 + i)
        );
    }

    // The same with both devices watching (background sync, 10 ms rounds).
    let (a, b) = (Arc::new(a), Arc::new(b));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|svc| {
            let stop = stop.clone();
            std::thread::spawn(move || svc.sync().watch(&stop, Duration::from_millis(10), |_| {}))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let mut live = Vec::new();
    for i in 0..100 {
        let t = Instant::now();
        a.configs()
            .set_value(SetConfigValue {
                workflow_id: wf.id.clone(),
                key: "k1".into(),
                value: json!(200_000 + i),
                expected_revision: None,
            })
            .unwrap();
        loop {
            let v = b
                .configs()
                .get(GetConfig {
                    workflow_id: wf.id.clone(),
                })
                .unwrap()
                .config
                .values["k1"]
                .clone();
            if v == json!(200_000 + i) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "a live edit did not arrive"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        live.push(t.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in watchers {
        w.join().unwrap().unwrap();
    }

    // N concurrent clients of the workspace, each fetching the root document.
    let root = join.rsplit('#').next().unwrap().to_owned();
    let root_id = root
        .parse::<samod::AutomergeUrl>()
        .unwrap()
        .document_id()
        .clone();
    let rss_before = rss_kib(server.child.id());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (per_client, total, ok, rss_during) = rt.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (url, token, root_id) = (
                server.url.clone(),
                server.credential.clone(),
                root_id.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let repo = Repo::build_tokio().load().await;
                let backoff = BackoffConfig {
                    max_retries: Some(5),
                    ..Default::default()
                };
                let dialer = repo
                    .dial(
                        backoff,
                        Arc::new(TokenDialer {
                            url: url::Url::parse(&url).unwrap(),
                            token,
                            tls: None,
                            limit: Default::default(),
                        }),
                    )
                    .unwrap();
                let ok = tokio::time::timeout(Duration::from_secs(120), async {
                    dialer.established().await.ok()?;
                    repo.find(root_id).await.ok()?
                })
                .await
                .ok()
                .flatten()
                .is_some();
                (t.elapsed(), ok, repo)
            }));
        }
        let mut times = Vec::new();
        let mut repos = Vec::new();
        let mut ok = 0;
        for task in tasks {
            let (d, good, repo) = task.await.unwrap();
            times.push(d);
            ok += good as usize;
            repos.push(repo);
        }
        let total = start.elapsed();
        let rss = rss_kib(server.child.id());
        for r in repos {
            r.stop().await;
        }
        (times, total, ok, rss)
    });

    println!();
    println!("| measure | result |");
    println!("|---|---:|");
    println!(
        "| 2 devices × 1,000 offline edits: converge (3 sync sessions) | {:.0} ms |",
        converge.as_secs_f64() * 1e3
    );
    println!(
        "| one edit device → device (sync now on both), p50 | {:.1} ms |",
        pct(lat.clone(), 50)
    );
    println!(
        "| one edit device → device (sync now on both), p99 | {:.1} ms |",
        pct(lat, 99)
    );
    println!(
        "| one edit device → device, both running sync watch (10 ms rounds), p50 | {:.1} ms |",
        pct(live.clone(), 50)
    );
    println!(
        "| one edit device → device, both running sync watch (10 ms rounds), p99 | {:.1} ms |",
        pct(live, 99)
    );
    println!("| {clients} concurrent clients: all connected and synced the root | {:.2} s ({ok} of {clients} ok) |", total.as_secs_f64());
    println!(
        "| per client connect + root document, p50 | {:.0} ms |",
        pct(per_client.clone(), 50)
    );
    println!(
        "| per client connect + root document, p99 | {:.0} ms |",
        pct(per_client, 99)
    );
    println!(
        "| server RSS idle / with {clients} clients | {} MiB / {} MiB |",
        rss_before / 1024,
        rss_during / 1024
    );
}
