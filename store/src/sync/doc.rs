//! A workflow as an Automerge document, and back.
//!
//! Scalars (name, description, version, deleted) are document properties,
//! so concurrent edits of one of them keep Automerge's deterministic winner
//! and the other value stays visible as a conflict. Each config value is its
//! own key in `config.values` (JSON text), so edits to different keys on
//! different devices both survive. Field definitions, rules, run spec,
//! retention and tags are JSON text as a whole.

use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use flowkeep_core::events::FieldConflict;
use flowkeep_core::workflow::{FieldChange, WorkflowSpec};
use serde_json::Value as Json;

pub(crate) const KIND: &str = "flowkeep.workflow";

/// What a workflow document says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DocState {
    pub spec: WorkflowSpec,
    pub created_at: i64,
    pub deleted: bool,
    pub conflicts: Vec<FieldConflict>,
}

/// Writes a whole workflow into an empty document.
pub(crate) fn init(
    tx: &mut impl Transactable,
    id: &str,
    created_at: i64,
    deleted: bool,
    spec: &WorkflowSpec,
) -> Result<(), String> {
    tx.put(ROOT, "type", KIND).map_err(e)?;
    tx.put(ROOT, "schema", 1i64).map_err(e)?;
    tx.put(ROOT, "id", id).map_err(e)?;
    tx.put(ROOT, "created_at", created_at).map_err(e)?;
    tx.put(ROOT, "deleted", deleted).map_err(e)?;
    let config = tx.put_object(ROOT, "config", ObjType::Map).map_err(e)?;
    tx.put_object(&config, "values", ObjType::Map).map_err(e)?;
    let changes = flowkeep_core::workflow::diff(&empty_spec(), spec);
    apply(tx, &changes)
}

/// An all-empty spec: `diff` from it lists every field of a spec.
pub(crate) fn empty_spec() -> WorkflowSpec {
    WorkflowSpec::default()
}

fn e(err: impl std::fmt::Display) -> String {
    err.to_string()
}

fn obj(doc: &impl ReadDoc, parent: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(parent, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// Applies field-level changes (paths as in `workflow::diff`) to a document.
pub(crate) fn apply(tx: &mut impl Transactable, changes: &[FieldChange]) -> Result<(), String> {
    let config = obj(tx, &ROOT, "config").ok_or("the document has no config map")?;
    let values = obj(tx, &config, "values").ok_or("the document has no config.values map")?;
    for c in changes {
        match c.field.as_str() {
            "name" | "description" | "version" => tx
                .put(ROOT, c.field.as_str(), c.new.as_str().unwrap_or_default())
                .map_err(e)?,
            "tags" => tx.put(ROOT, "tags", c.new.to_string()).map_err(e)?,
            "deleted" => tx
                .put(ROOT, "deleted", c.new.as_bool().unwrap_or(false))
                .map_err(e)?,
            "config.fields" | "config.rules" | "config.run" | "config.retention" => {
                let key = &c.field["config.".len()..];
                tx.put(&config, key, c.new.to_string()).map_err(e)?
            }
            path => {
                let Some(key) = path.strip_prefix("config.values.") else {
                    return Err(format!("no document field for {path}"));
                };
                if c.new.is_null() {
                    tx.delete(&values, key).map_err(e)?;
                } else {
                    tx.put(&values, key, c.new.to_string()).map_err(e)?;
                }
            }
        }
    }
    Ok(())
}

fn scalar_json(v: &Value<'_>) -> Json {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(t) => Json::String(t.to_string()),
            ScalarValue::Int(i) => Json::from(*i),
            ScalarValue::Uint(u) => Json::from(*u),
            ScalarValue::F64(f) => Json::from(*f),
            ScalarValue::Boolean(b) => Json::Bool(*b),
            _ => Json::Null,
        },
        Value::Object(_) => Json::Null,
    }
}

/// The winning value and, if several devices set it concurrently, all values.
fn read_prop(
    doc: &impl ReadDoc,
    o: &ObjId,
    key: &str,
    path: &str,
    conflicts: &mut Vec<FieldConflict>,
) -> Json {
    let all = doc.get_all(o, key).unwrap_or_default();
    let winner = doc
        .get(o, key)
        .ok()
        .flatten()
        .map(|(v, _)| scalar_json(&v))
        .unwrap_or(Json::Null);
    if all.len() > 1 {
        let mut values = vec![winner.clone()];
        for (v, _) in &all {
            let j = scalar_json(v);
            if j != winner {
                values.push(j);
            }
        }
        conflicts.push(FieldConflict {
            field: path.to_owned(),
            values,
        });
    }
    winner
}

/// JSON text stored in the document, parsed; conflicts keep parsed values too.
fn read_json_prop(
    doc: &impl ReadDoc,
    o: &ObjId,
    key: &str,
    path: &str,
    conflicts: &mut Vec<FieldConflict>,
) -> Json {
    let before = conflicts.len();
    let raw = read_prop(doc, o, key, path, conflicts);
    for c in &mut conflicts[before..] {
        for v in &mut c.values {
            if let Some(t) = v.as_str() {
                *v = serde_json::from_str(t).unwrap_or(Json::Null);
            }
        }
    }
    raw.as_str()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Json::Null)
}

pub(crate) fn read(doc: &impl ReadDoc) -> Result<DocState, String> {
    let kind = doc
        .get(ROOT, "type")
        .ok()
        .flatten()
        .map(|(v, _)| scalar_json(&v));
    if kind != Some(Json::String(KIND.to_owned())) {
        return Err(format!("not a workflow document (type {kind:?})"));
    }
    let mut conflicts = Vec::new();
    let text = |v: Json| v.as_str().unwrap_or_default().to_owned();
    let name = text(read_prop(doc, &ROOT, "name", "name", &mut conflicts));
    let description = text(read_prop(
        doc,
        &ROOT,
        "description",
        "description",
        &mut conflicts,
    ));
    let version = text(read_prop(doc, &ROOT, "version", "version", &mut conflicts));
    let deleted = read_prop(doc, &ROOT, "deleted", "deleted", &mut conflicts)
        .as_bool()
        .unwrap_or(false);
    let created_at = read_prop(doc, &ROOT, "created_at", "created_at", &mut conflicts)
        .as_i64()
        .unwrap_or(0);
    let tags = serde_json::from_value(read_json_prop(doc, &ROOT, "tags", "tags", &mut conflicts))
        .unwrap_or_default();
    let config_obj = obj(doc, &ROOT, "config").ok_or("the document has no config map")?;
    let mut config = serde_json::Map::new();
    for key in ["fields", "rules", "run", "retention"] {
        let v = read_json_prop(
            doc,
            &config_obj,
            key,
            &format!("config.{key}"),
            &mut conflicts,
        );
        if !v.is_null() {
            config.insert(key.to_owned(), v);
        }
    }
    let mut values = serde_json::Map::new();
    if let Some(values_obj) = obj(doc, &config_obj, "values") {
        for key in doc.keys(&values_obj) {
            let v = read_json_prop(
                doc,
                &values_obj,
                &key,
                &format!("config.values.{key}"),
                &mut conflicts,
            );
            if !v.is_null() {
                values.insert(key, v);
            }
        }
    }
    config.insert("values".to_owned(), Json::Object(values));
    let config = serde_json::from_value(Json::Object(config))
        .map_err(|err| format!("config in the document: {err}"))?;
    // Bookkeeping fields are not the user's conflicts.
    conflicts.retain(|c| c.field != "created_at");
    Ok(DocState {
        spec: WorkflowSpec {
            name,
            description,
            version,
            tags,
            config,
        },
        created_at,
        deleted,
        conflicts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::{sync::SyncDoc, Automerge};
    use serde_json::json;

    fn spec(n: i64) -> WorkflowSpec {
        serde_json::from_value(json!({
            "name": "etl", "description": "d", "version": "1.0.0", "tags": ["a"],
            "config": {"fields": [{"key": "a", "type": "number"}, {"key": "b", "type": "number"}], "values": {"a": n, "b": n}}
        }))
        .unwrap()
    }

    fn doc_with(s: &WorkflowSpec) -> Automerge {
        let mut d = Automerge::new();
        d.transact::<_, _, String>(|tx| init(tx, "w1", 7, false, s))
            .unwrap();
        d
    }

    fn sync(a: &mut Automerge, b: &mut Automerge) {
        let (mut sa, mut sb) = (automerge::sync::State::new(), automerge::sync::State::new());
        for _ in 0..10 {
            if let Some(m) = a.generate_sync_message(&mut sa) {
                b.receive_sync_message(&mut sb, m).unwrap();
            }
            if let Some(m) = b.generate_sync_message(&mut sb) {
                a.receive_sync_message(&mut sa, m).unwrap();
            }
        }
    }

    #[test]
    fn a_spec_round_trips_through_a_document() {
        let s = spec(1);
        let d = doc_with(&s);
        let state = read(&d).unwrap();
        assert_eq!(state.spec, s);
        assert_eq!((state.created_at, state.deleted), (7, false));
        assert!(state.conflicts.is_empty());
    }

    #[test]
    fn concurrent_edits_to_different_keys_both_survive_same_key_conflicts() {
        let base = doc_with(&spec(1));
        let mut a = base.fork();
        let mut b = base.fork();
        let change = |field: &str, new: Json| FieldChange {
            field: field.into(),
            old: json!(1),
            new,
        };
        a.transact::<_, _, String>(|tx| apply(tx, &[change("config.values.a", json!(2))]))
            .unwrap();
        b.transact::<_, _, String>(|tx| apply(tx, &[change("config.values.b", json!(3))]))
            .unwrap();
        sync(&mut a, &mut b);
        let (ra, rb) = (read(&a).unwrap(), read(&b).unwrap());
        assert_eq!(ra, rb);
        assert_eq!(ra.spec.config.values["a"], json!(2));
        assert_eq!(ra.spec.config.values["b"], json!(3));

        a.transact::<_, _, String>(|tx| apply(tx, &[change("name", json!("from a"))]))
            .unwrap();
        b.transact::<_, _, String>(|tx| apply(tx, &[change("name", json!("from b"))]))
            .unwrap();
        sync(&mut a, &mut b);
        let (ra, rb) = (read(&a).unwrap(), read(&b).unwrap());
        assert_eq!(
            ra.spec.name, rb.spec.name,
            "one deterministic winner everywhere"
        );
        assert_eq!(ra.conflicts.len(), 1);
        let mut values = ra.conflicts[0].values.clone();
        assert_eq!(values[0], json!(ra.spec.name), "the winner comes first");
        values.sort_by_key(|v| v.to_string());
        assert_eq!(values, [json!("from a"), json!("from b")]);
    }

    #[test]
    fn removing_a_value_deletes_the_key() {
        let mut d = doc_with(&spec(1));
        d.transact::<_, _, String>(|tx| {
            apply(
                tx,
                &[FieldChange {
                    field: "config.values.a".into(),
                    old: json!(1),
                    new: Json::Null,
                }],
            )
        })
        .unwrap();
        assert!(!read(&d).unwrap().spec.config.values.contains_key("a"));
    }
}
