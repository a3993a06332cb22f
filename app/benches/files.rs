//! Workflows as files at 10,000 workflows: export, import into an empty
//! store, and importing the unchanged folder again (no event). Each step
//! once, wall time, release build. `cargo bench -p flowkeep-app --bench files`.

use std::time::Instant;

use flowkeep_app::{Service, StoreOptions};
use flowkeep_core::commands::*;
use serde_json::json;

const N: usize = 10_000;

fn main() {
    let n: usize = std::env::var("FLOWKEEP_BENCH_WORKFLOWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(N);
    let (a, b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let one = Service::open(&a.path().join("flowkeep.db"), StoreOptions::default()).unwrap();
    for i in 0..n {
        one.workflows()
            .create(CreateWorkflow {
                name: format!("Workflow {i:05}"),
                description: Some(format!("loads partition {i}")),
                tags: vec!["etl".into(), format!("team-{}", i % 20)],
                config: Some(json!({
                    "run": {"command": ["python3", "job.py", "--part", i.to_string()], "timeout_s": 600},
                    "fields": [
                        {"key": "retries", "type": "number", "integer": true, "min": 0, "max": 10},
                        {"key": "mode", "type": "select", "options": ["fast", "safe"]},
                        {"key": "endpoint", "type": "text", "format": "url"}
                    ],
                    "values": {"retries": i % 10, "mode": "fast", "endpoint": format!("https://example.org/{i}")}
                })),
                ..Default::default()
            })
            .unwrap();
    }
    let dir = out.path().join("workflows");
    let t = Instant::now();
    let exported = one
        .workflows()
        .export_files(ExportWorkflows {
            dir: dir.display().to_string(),
            ..Default::default()
        })
        .unwrap();
    let export_s = t.elapsed().as_secs_f64();
    let bytes: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();

    let two = Service::open(&b.path().join("flowkeep.db"), StoreOptions::default()).unwrap();
    let import = |svc: &Service| {
        let t = Instant::now();
        let r = svc
            .workflows()
            .import_files(ImportWorkflows {
                dir: Some(dir.display().to_string()),
                ..Default::default()
            })
            .unwrap();
        (t.elapsed().as_secs_f64(), r)
    };
    let (create_s, created) = import(&two);
    let before = two.event_count().unwrap();
    let (again_s, _) = import(&two);
    assert_eq!(
        two.event_count().unwrap(),
        before,
        "re-import appended events"
    );
    let t = Instant::now();
    two.workflows()
        .import_files(ImportWorkflows {
            dir: Some(dir.display().to_string()),
            dry_run: true,
            ..Default::default()
        })
        .unwrap();
    let dry_s = t.elapsed().as_secs_f64();

    println!(
        "workflows as files, {n} workflows ({:.1} MiB of YAML)",
        bytes as f64 / 1048576.0
    );
    println!("| step | time | per workflow |");
    println!("|---|---|---|");
    let row = |name: &str, s: f64| println!("| {name} | {s:.2} s | {:.0} µs |", s * 1e6 / n as f64);
    row(
        &format!("export ({} files)", exported.files.len()),
        export_s,
    );
    row(
        &format!(
            "import into an empty store ({} created)",
            created.items.len()
        ),
        create_s,
    );
    row("import the unchanged folder again (0 events)", again_s);
    row("dry run of the same", dry_s);
}
