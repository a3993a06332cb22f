//! The workspace root document: which document holds each workflow.

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ScalarValue, Value, ROOT};

pub(crate) fn init(tx: &mut impl Transactable) -> Result<(), String> {
    tx.put(ROOT, "type", "flowkeep.workspace")
        .map_err(|e| e.to_string())?;
    tx.put(ROOT, "schema", 1i64).map_err(|e| e.to_string())?;
    tx.put_object(ROOT, "workflows", ObjType::Map)
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn workflows(doc: &impl ReadDoc) -> Option<automerge::ObjId> {
    match doc.get(ROOT, "workflows").ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// (workflow id, document URL) pairs.
pub(crate) fn entries(doc: &impl ReadDoc) -> Vec<(String, String)> {
    let Some(obj) = workflows(doc) else {
        return vec![];
    };
    doc.keys(&obj)
        .filter_map(|k| match doc.get(&obj, &k).ok()?? {
            (Value::Scalar(s), _) => match s.as_ref() {
                ScalarValue::Str(u) => Some((k.clone(), u.to_string())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

pub(crate) fn add(
    tx: &mut impl Transactable,
    workflow_id: &str,
    doc_url: &str,
) -> Result<(), String> {
    let obj = workflows(tx).ok_or("the root document has no workflows map")?;
    tx.put(&obj, workflow_id, doc_url)
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn logs(doc: &impl ReadDoc) -> Option<automerge::ObjId> {
    match doc.get(ROOT, "execution_logs").ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// (log key, document URL) pairs of execution-log documents.
pub(crate) fn log_entries(doc: &impl ReadDoc) -> Vec<(String, String)> {
    let Some(obj) = logs(doc) else { return vec![] };
    doc.keys(&obj)
        .filter_map(|k| match doc.get(&obj, &k).ok()?? {
            (Value::Scalar(s), _) => match s.as_ref() {
                ScalarValue::Str(u) => Some((k.clone(), u.to_string())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

pub(crate) fn add_log(tx: &mut impl Transactable, key: &str, doc_url: &str) -> Result<(), String> {
    let obj = match logs(tx) {
        Some(o) => o,
        None => tx
            .put_object(ROOT, "execution_logs", ObjType::Map)
            .map_err(|e| e.to_string())?,
    };
    tx.put(&obj, key, doc_url).map_err(|e| e.to_string())?;
    Ok(())
}
