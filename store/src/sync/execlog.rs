//! Execution-log documents: the runs one device recorded for one workflow in
//! one month (bounded documents). Each run is a key of `runs` holding the
//! run as JSON text; a device only ever writes its own logs, so runs are
//! append-only records that never conflict. Large output is cut down in the
//! synced copy and stays whole on the device that ran it.

use automerge::transaction::Transactable;
use automerge::{ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use flowkeep_core::execution::Execution;
use serde_json::{json, Value as Json};

pub(crate) const KIND: &str = "flowkeep.execution-log";
/// Output JSON longer than this is replaced by a short summary when synced.
pub(crate) const MAX_SYNCED_OUTPUT: usize = 4096;

pub(crate) fn log_key(workflow_id: &str, device_id: &str, started_at: i64) -> String {
    let month = chrono::DateTime::from_timestamp_millis(started_at)
        .map(|t| t.format("%Y-%m").to_string())
        .unwrap_or_else(|| "0000-00".into());
    format!("{workflow_id}/{device_id}/{month}")
}

/// The device part of a log key.
pub(crate) fn device_of(key: &str) -> Option<&str> {
    key.split('/').nth(1)
}

pub(crate) fn init(tx: &mut impl Transactable, key: &str) -> Result<(), String> {
    let e = |err: automerge::AutomergeError| err.to_string();
    tx.put(ROOT, "type", KIND).map_err(e)?;
    tx.put(ROOT, "schema", 1i64).map_err(e)?;
    tx.put(ROOT, "log", key).map_err(e)?;
    tx.put_object(ROOT, "runs", ObjType::Map).map_err(e)?;
    Ok(())
}

fn runs(doc: &impl ReadDoc) -> Option<ObjId> {
    match doc.get(ROOT, "runs").ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// The synced form of a run: its output cut down if large.
pub(crate) fn record(e: &Execution) -> Json {
    let mut v = serde_json::to_value(e).expect("an execution serializes");
    if let Some(out) = &e.output {
        if out.to_string().len() > MAX_SYNCED_OUTPUT {
            let result = out
                .get("result")
                .filter(|r| r.to_string().len() <= MAX_SYNCED_OUTPUT / 2)
                .cloned();
            v["output"] = json!({"truncated": true, "result": result, "note": "the whole output is on the device that ran it"});
        }
    }
    v
}

pub(crate) fn put(tx: &mut impl Transactable, e: &Execution) -> Result<(), String> {
    let obj = runs(tx).ok_or("the log document has no runs map")?;
    tx.put(&obj, e.id.as_str(), record(e).to_string())
        .map_err(|err| err.to_string())
}

fn text(v: Option<(Value<'_>, ObjId)>) -> Option<String> {
    match v? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Str(t) => Some(t.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Runs whose record changed since `since` (all of them when `since` is empty).
pub(crate) fn changed_since(doc: &impl ReadDoc, since: &[ChangeHash]) -> Vec<Execution> {
    let Some(obj) = runs(doc) else { return vec![] };
    doc.keys(&obj)
        .filter_map(|k| {
            let now = text(doc.get(&obj, &k).ok()?)?;
            if !since.is_empty() {
                let before = doc
                    .get_at(&obj, &k, since)
                    .ok()
                    .flatten()
                    .and_then(|v| text(Some(v)));
                if before.as_deref() == Some(now.as_str()) {
                    return None;
                }
            }
            serde_json::from_str(&now).ok()
        })
        .collect()
}
