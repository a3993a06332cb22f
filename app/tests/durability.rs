//! The WAL is copied back by the background checkpointer, not by a write.

mod common;

use std::time::{Duration, Instant};

use common::*;
use flowkeep_core::commands::CreateWorkflow;

#[test]
fn the_background_checkpointer_copies_committed_pages_back() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let db = dir.path().join("flowkeep.db");
    for i in 0..200 {
        svc.workflows()
            .create(CreateWorkflow {
                name: format!("w{i}"),
                config: Some(etl_config()),
                ..Default::default()
            })
            .unwrap();
    }
    // The main file grows only when a checkpoint copies pages into it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let size = || std::fs::metadata(&db).unwrap().len();
    while size() < 64 * 1024 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        size() >= 64 * 1024,
        "no checkpoint copied the 200 workflows into the main file ({} bytes)",
        size()
    );
    drop(svc);
}
