//! The workspace root document: which document holds each workflow, and
//! which documents hold the execution logs.

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ScalarValue, Value, ROOT};

/// The two lists the root keeps, each a map from a key to a document URL.
#[derive(Clone, Copy)]
pub(crate) enum List {
    /// workflow id → document
    Workflows,
    /// `<workflow>/<device>/<month>` → execution-log document
    Logs,
}

impl List {
    fn name(self) -> &'static str {
        match self {
            List::Workflows => "workflows",
            List::Logs => "execution_logs",
        }
    }
}

pub(crate) fn init(tx: &mut impl Transactable) -> Result<(), String> {
    tx.put(ROOT, "type", "flowkeep.workspace")
        .map_err(|e| e.to_string())?;
    tx.put(ROOT, "schema", 1i64).map_err(|e| e.to_string())?;
    tx.put_object(ROOT, List::Workflows.name(), ObjType::Map)
        .map_err(|e| e.to_string())?;
    tx.put_object(ROOT, List::Logs.name(), ObjType::Map)
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn map(doc: &impl ReadDoc, list: List) -> Option<automerge::ObjId> {
    match doc.get(ROOT, list.name()).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// (key, document URL) pairs of a list.
pub(crate) fn entries(doc: &impl ReadDoc, list: List) -> Vec<(String, String)> {
    let Some(obj) = map(doc, list) else {
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
    list: List,
    key: &str,
    doc_url: &str,
) -> Result<(), String> {
    let obj = match map(tx, list) {
        Some(o) => o,
        None => tx
            .put_object(ROOT, list.name(), ObjType::Map)
            .map_err(|e| e.to_string())?,
    };
    tx.put(&obj, key, doc_url).map_err(|e| e.to_string())?;
    Ok(())
}
