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
    pub(crate) fn name(self) -> &'static str {
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

/// What another client may have put in a list: each key with its document
/// URL, or what stands there instead of one. `Err` when the list itself is
/// not a map.
#[allow(clippy::type_complexity)]
pub(crate) fn raw_entries(
    doc: &impl ReadDoc,
    list: List,
) -> Result<Vec<(String, Result<String, &'static str>)>, String> {
    let obj = match doc.get(ROOT, list.name()) {
        Ok(Some((Value::Object(ObjType::Map), id))) => id,
        Ok(None) => return Ok(vec![]),
        Ok(Some(_)) => return Err(format!("{}: must be a map", list.name())),
        Err(e) => return Err(format!("{}: {e}", list.name())),
    };
    Ok(doc
        .keys(&obj)
        .map(|k| {
            let v = match doc.get(&obj, &k) {
                Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                    ScalarValue::Str(u) => Ok(u.to_string()),
                    _ => Err("a value that is not text"),
                },
                Ok(Some(_)) => Err("an object"),
                Ok(None) | Err(_) => Err("nothing readable"),
            };
            (k, v)
        })
        .collect())
}

/// Whether the document says it is a workspace root.
pub(crate) fn is_root(doc: &impl ReadDoc) -> bool {
    matches!(doc.get(ROOT, "type"), Ok(Some((Value::Scalar(s), _)))
        if matches!(s.as_ref(), ScalarValue::Str(t) if t.as_str() == "flowkeep.workspace"))
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
