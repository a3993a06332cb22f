#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use flowkeep_app::{Clock, Service, StoreOptions};
use serde_json::{json, Value};

/// A clock tests move by hand; it ticks 1 ms per reading so that events
/// recorded in a row have distinct times.
#[derive(Clone)]
pub struct TestClock(pub Arc<AtomicI64>);

impl TestClock {
    pub fn at(ms: i64) -> TestClock {
        TestClock(Arc::new(AtomicI64::new(ms)))
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

pub const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

pub fn open(dir: &tempfile::TempDir) -> (Service, TestClock) {
    let clock = TestClock::at(T0);
    let svc = Service::open(
        &dir.path().join("flowkeep.db"),
        StoreOptions {
            actor: "tester".into(),
            ..Default::default()
        },
    )
    .unwrap()
    .with_clock(clock.clone());
    (svc, clock)
}

pub fn etl_config() -> Value {
    json!({
        "fields": [
            {"key": "retries", "type": "number", "required": true, "integer": true, "min": 0, "max": 10},
            {"key": "mode", "type": "select", "options": ["fast", "safe"], "required": true},
            {"key": "endpoint", "type": "text", "format": "url"}
        ],
        "values": {"retries": 3, "mode": "fast", "endpoint": "https://example.org/x"}
    })
}
