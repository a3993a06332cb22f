//! Execution-log documents: the runs one device recorded for one workflow in
//! one month (bounded documents). Each run is a key of `runs` holding the
//! run as JSON text; a device only ever writes its own logs, so runs are
//! append-only records that never conflict. Large output is cut down in the
//! synced copy and stays whole on the device that ran it.

use automerge::transaction::Transactable;
use automerge::{ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use flowkeep_core::execution::Execution;
use flowkeep_core::remote::{self, LogKey};
use serde_json::{json, Value as Json};

pub(crate) const KIND: &str = "flowkeep.execution-log";
/// Output JSON longer than this is replaced by a short summary when synced
/// (other devices refuse a longer one).
const MAX_SYNCED_OUTPUT: usize = remote::MAX_SYNCED_OUTPUT_BYTES;

pub(crate) fn log_key(workflow_id: &str, device_id: &str, started_at: i64) -> String {
    LogKey::new(workflow_id, device_id, started_at).to_string()
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

/// The shape of a log document from elsewhere: its type, the key it says it
/// is (which must be the one the workspace lists it under), its runs map.
pub(crate) fn check(doc: &impl ReadDoc, key: &str) -> Result<(), String> {
    let prop = |k: &str| match doc.get(ROOT, k) {
        Ok(Some((v, _))) => text(&v),
        _ => None,
    };
    if prop("type").as_deref() != Some(KIND) {
        return Err("not an execution-log document".to_owned());
    }
    match prop("log") {
        Some(k) if k == key => {}
        Some(k) => {
            return Err(format!(
                "the document is log {} but is listed as {key}",
                remote::quote(&k)
            ))
        }
        None => return Err("log: must be a string".to_owned()),
    }
    if runs(doc).is_none() {
        return Err("runs: must be a map".to_owned());
    }
    Ok(())
}

fn text(v: &Value<'_>) -> Option<String> {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(t) => Some(t.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Records whose text changed since `since` (all of them when `since` is
/// empty), by key: the JSON text, or why there is none. Nothing is trusted
/// yet: the caller checks each record.
pub(crate) fn changed_since(
    doc: &impl ReadDoc,
    since: &[ChangeHash],
) -> Vec<(String, Result<String, String>)> {
    let Some(obj) = runs(doc) else { return vec![] };
    doc.keys(&obj)
        .filter_map(|k| {
            let now = match doc.get(&obj, &k) {
                Ok(Some((v, _))) => v,
                Ok(None) => return None,
                Err(e) => return Some((k, Err(e.to_string()))),
            };
            if !since.is_empty() {
                if let Ok(Some((before, _))) = doc.get_at(&obj, &k, since) {
                    if before == now {
                        return None;
                    }
                }
            }
            match text(&now) {
                Some(t) => Some((k, Ok(t))),
                None => Some((k, Err("the record is not JSON text".to_owned()))),
            }
        })
        .collect()
}
