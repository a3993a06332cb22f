//! Migrations from an empty file, re-open idempotence, and a database from
//! the future refused rather than damaged.

use flowkeep_app::{Service, StoreOptions};

fn user_version(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

fn schema(path: &std::path::Path) -> Vec<String> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut s = c.prepare("SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").unwrap();
    s.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn from_empty_then_reopen_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/flowkeep.db");
    drop(Service::open(&path, StoreOptions::default()).unwrap());
    let version = user_version(&path);
    assert!(version >= 1);
    let first = schema(&path);
    for t in [
        "table configs",
        "table events",
        "table executions",
        "table workflows",
        "index executions_by_status",
    ] {
        assert!(first.contains(&t.to_string()), "{t} missing: {first:?}");
    }
    for _ in 0..3 {
        drop(Service::open(&path, StoreOptions::default()).unwrap());
    }
    assert_eq!(user_version(&path), version);
    assert_eq!(schema(&path), first);
    let c = rusqlite::Connection::open(&path).unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn seed_columns_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    drop(Service::open(&path, StoreOptions::default()).unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    for (table, cols) in [
        (
            "workflows",
            "id, name, description, version, config, created_at, updated_at",
        ),
        (
            "executions",
            "id, workflow_id, status, output, started_at, completed_at",
        ),
        ("configs", "id, workflow_id, key, value, type"),
    ] {
        c.prepare(&format!("SELECT {cols} FROM {table}"))
            .unwrap_or_else(|e| panic!("{table}: {e}"));
    }
}

#[test]
fn a_newer_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    drop(Service::open(&path, StoreOptions::default()).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let err = Service::open(&path, StoreOptions::default())
        .err()
        .expect("opened a newer schema");
    assert!(
        err.to_string().contains("newer than this flowkeep"),
        "{err}"
    );
    assert_eq!(user_version(&path), 999);
}

#[test]
fn in_memory_databases_migrate_too() {
    let svc = Service::open_in_memory(StoreOptions::default()).unwrap();
    assert_eq!(svc.event_count().unwrap(), 0);
}

#[test]
fn rebuild_leaves_the_schema_as_it_was() {
    use flowkeep_core::commands::CreateWorkflow;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    let svc = Service::open(&path, StoreOptions::default()).unwrap();
    svc.workflows()
        .create(CreateWorkflow {
            name: "a".into(),
            tags: vec!["t".into()],
            ..Default::default()
        })
        .unwrap();
    let before = schema_sql(&path);
    svc.rebuild_projections().unwrap();
    assert_eq!(
        schema_sql(&path),
        before,
        "rebuild must recreate every index it drops, identically"
    );
}

fn schema_sql(path: &std::path::Path) -> Vec<String> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut s = c.prepare("SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master ORDER BY name").unwrap();
    s.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
