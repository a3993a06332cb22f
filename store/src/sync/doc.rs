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
use flowkeep_core::remote;
use flowkeep_core::workflow::{FieldChange, WorkflowSpec};
use serde_json::Value as Json;

pub(crate) const KIND: &str = "flowkeep.workflow";

/// What a workflow document says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DocState {
    /// The workflow id the document says it holds.
    pub id: String,
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
    // Another client may have removed the map; values go into a new one.
    let values = match obj(tx, &config, "values") {
        Some(v) => v,
        None => tx.put_object(&config, "values", ObjType::Map).map_err(e)?,
    };
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

/// A scalar as JSON; anything else (an object, bytes, a counter, ...) is
/// named instead, for the message.
fn scalar_json(v: &Value<'_>) -> Result<Json, &'static str> {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(t) => Ok(Json::String(t.to_string())),
            ScalarValue::Int(i) => Ok(Json::from(*i)),
            ScalarValue::Uint(u) => Ok(Json::from(*u)),
            ScalarValue::F64(f) => Ok(Json::from(*f)),
            ScalarValue::Boolean(b) => Ok(Json::Bool(*b)),
            ScalarValue::Null => Ok(Json::Null),
            ScalarValue::Bytes(_) => Err("bytes"),
            ScalarValue::Counter(_) => Err("a counter"),
            ScalarValue::Timestamp(_) => Err("a timestamp"),
            ScalarValue::Unknown { .. } => Err("an unknown scalar"),
        },
        Value::Object(ObjType::Map) => Err("a map"),
        Value::Object(_) => Err("a list or text object"),
    }
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Reads a document without trusting it: every property of the wrong type
/// is a problem (never a silent default), and conflicts keep every value.
struct Reader<'a, D> {
    doc: &'a D,
    conflicts: Vec<FieldConflict>,
    problems: Vec<String>,
}

impl<D: ReadDoc> Reader<'_, D> {
    /// The winning scalar and, if several devices set it concurrently, all
    /// values (the winner first). `None` when absent or not a scalar.
    fn scalar(&mut self, o: &ObjId, key: &str, path: &str) -> Option<Json> {
        let all = match self.doc.get_all(o, key) {
            Ok(all) => all,
            Err(err) => {
                self.problems.push(format!("{path}: {err}"));
                return None;
            }
        };
        let winner = match self.doc.get(o, key) {
            Ok(Some((v, _))) => v,
            Ok(None) => return None,
            Err(err) => {
                self.problems.push(format!("{path}: {err}"));
                return None;
            }
        };
        let winner = match scalar_json(&winner) {
            Ok(j) => j,
            Err(kind) => {
                self.problems
                    .push(format!("{path}: must be a value, got {kind}"));
                return None;
            }
        };
        if all.len() > 1 {
            let mut values = vec![winner.clone()];
            for (v, _) in &all {
                match scalar_json(v) {
                    Ok(j) if j != winner => values.push(j),
                    Ok(_) => {}
                    Err(kind) => {
                        self.problems
                            .push(format!("{path}: a conflicting value is {kind}"));
                        return None;
                    }
                }
            }
            self.conflicts.push(FieldConflict {
                field: path.to_owned(),
                values,
            });
        }
        Some(winner)
    }

    fn typed<T>(
        &mut self,
        o: &ObjId,
        key: &str,
        path: &str,
        expected: &str,
        get: impl Fn(&Json) -> Option<T>,
    ) -> Option<T> {
        let v = self.scalar(o, key, path)?;
        let out = get(&v);
        if out.is_none() {
            self.problems
                .push(format!("{path}: must be {expected}, got {}", json_kind(&v)));
        }
        out
    }

    fn text(&mut self, o: &ObjId, key: &str, path: &str) -> Option<String> {
        self.typed(o, key, path, "a string", |v| v.as_str().map(str::to_owned))
    }

    /// JSON text stored in the document, parsed (bounded in size and depth);
    /// conflicting values are parsed too.
    fn json(&mut self, o: &ObjId, key: &str, path: &str) -> Option<Json> {
        let before = self.conflicts.len();
        let raw = self.text(o, key, path)?;
        let parse = |t: &str, problems: &mut Vec<String>| {
            remote::parse_json_text(t, remote::MAX_CONFIG_BYTES)
                .map_err(|m| problems.push(format!("{path}: {m}")))
                .ok()
        };
        for c in &mut self.conflicts[before..] {
            for v in &mut c.values {
                match v.as_str() {
                    Some(t) => *v = parse(t, &mut self.problems)?,
                    None => {
                        self.problems.push(format!(
                            "{path}: a conflicting value is {}, not JSON text",
                            json_kind(v)
                        ));
                        return None;
                    }
                }
            }
        }
        parse(&raw, &mut self.problems)
    }

    fn map(&mut self, o: &ObjId, key: &str, path: &str, required: bool) -> Option<ObjId> {
        match self.doc.get(o, key) {
            Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
            Ok(Some((v, _))) => {
                let kind = scalar_json(&v).map(|j| json_kind(&j)).unwrap_or_else(|k| k);
                self.problems
                    .push(format!("{path}: must be a map, got {kind}"));
                None
            }
            Ok(None) if required => {
                self.problems.push(format!("{path}: is missing"));
                None
            }
            Ok(None) => None,
            Err(err) => {
                self.problems.push(format!("{path}: {err}"));
                None
            }
        }
    }
}

/// What a workflow document says, or every problem with its shape (types,
/// JSON text, nesting). Never panics, whatever the document holds; the
/// content rules (sizes, ids) are `checked`'s.
pub(crate) fn read(doc: &impl ReadDoc) -> Result<DocState, String> {
    let mut r = Reader {
        doc,
        conflicts: Vec::new(),
        problems: Vec::new(),
    };
    let kind = r.text(&ROOT, "type", "type");
    if kind.as_deref() != Some(KIND) {
        return Err(match kind {
            Some(k) => format!("not a workflow document (type {})", remote::quote(&k)),
            None if r.problems.is_empty() => "not a workflow document (no type)".to_owned(),
            None => r.problems.join("; "),
        });
    }
    if let Some(schema) = r.typed(&ROOT, "schema", "schema", "an integer", Json::as_i64) {
        if schema != 1 {
            r.problems.push(format!(
                "schema: {schema} is not one this version of flowkeep reads"
            ));
        }
    }
    let id = r.text(&ROOT, "id", "id");
    if id.is_none() && r.problems.is_empty() {
        r.problems.push("id: is missing".to_owned());
    }
    let name = r.text(&ROOT, "name", "name").unwrap_or_default();
    let description = r
        .text(&ROOT, "description", "description")
        .unwrap_or_default();
    let version = r.text(&ROOT, "version", "version").unwrap_or_default();
    let deleted = r
        .typed(&ROOT, "deleted", "deleted", "true or false", Json::as_bool)
        .unwrap_or(false);
    let created_at = r
        .typed(
            &ROOT,
            "created_at",
            "created_at",
            "an integer",
            Json::as_i64,
        )
        .unwrap_or(0);
    let tags = match r.json(&ROOT, "tags", "tags") {
        None => vec![],
        Some(v) => match serde_json::from_value::<Vec<String>>(v) {
            Ok(t) => t,
            Err(_) => {
                r.problems
                    .push("tags: must be an array of strings".to_owned());
                vec![]
            }
        },
    };
    let mut config = serde_json::Map::new();
    if let Some(config_obj) = r.map(&ROOT, "config", "config", true) {
        for key in ["fields", "rules", "run", "retention"] {
            if let Some(v) = r.json(&config_obj, key, &format!("config.{key}")) {
                if !v.is_null() {
                    config.insert(key.to_owned(), v);
                }
            }
        }
        let mut values = serde_json::Map::new();
        if let Some(values_obj) = r.map(&config_obj, "values", "config.values", false) {
            for key in doc.keys(&values_obj) {
                let path = format!("config.values.{key}");
                if let Some(v) = r.json(&values_obj, &key, &path) {
                    if !v.is_null() {
                        values.insert(key, v);
                    }
                }
            }
        }
        config.insert("values".to_owned(), Json::Object(values));
    }
    if !r.problems.is_empty() {
        return Err(remote::clip(
            &r.problems.join("; "),
            remote::MAX_REASON_CHARS,
        ));
    }
    let config = serde_json::from_value(Json::Object(config))
        .map_err(|err| remote::clip(&format!("config: {err}"), remote::MAX_REASON_CHARS))?;
    let mut conflicts = r.conflicts;
    // Bookkeeping fields are not the user's conflicts.
    conflicts.retain(|c| {
        c.field != "created_at" && c.field != "id" && c.field != "type" && c.field != "schema"
    });
    Ok(DocState {
        id: id.unwrap_or_default(),
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

/// A workflow document read and held to the rules a local command gets,
/// for the workflow the workspace lists it as (`key`). The reason is one
/// line, short, with remote text quoted and cut.
pub(crate) fn checked(doc: &impl ReadDoc, key: &str) -> Result<DocState, String> {
    let state = read(doc)?;
    let errors = remote::check_workflow(key, &state.id, &state.spec, &state.conflicts);
    if errors.is_empty() {
        Ok(state)
    } else {
        Err(remote::describe(&errors))
    }
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
    fn a_document_of_the_wrong_shape_is_reported_not_read_with_defaults() {
        let mut d = doc_with(&spec(1));
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "name", 5i64)?;
            tx.put(ROOT, "deleted", "yes")?;
            tx.put_object(ROOT, "tags", ObjType::List)?;
            let config = obj(tx, &ROOT, "config").unwrap();
            tx.put(&config, "run", "{not json")?;
            let values = obj(tx, &config, "values").unwrap();
            let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
            tx.put(&values, "a", deep)?;
            tx.put(&values, "b", ScalarValue::Bytes(vec![1, 2]))?;
            Ok(())
        })
        .unwrap();
        let err = read(&d).unwrap_err();
        for part in [
            "name: must be a string, got a number",
            "deleted: must be true or false, got a string",
            "tags: must be a value, got a list",
            "config.run: not JSON",
            "config.values.a: nested 101 levels deep",
            "config.values.b: must be a value, got bytes",
        ] {
            assert!(err.contains(part), "{part} missing from: {err}");
        }

        for broken in [
            |tx: &mut automerge::transaction::Transaction<'_>| tx.put(ROOT, "config", "gone"),
            |tx: &mut automerge::transaction::Transaction<'_>| tx.delete(ROOT, "config"),
            |tx: &mut automerge::transaction::Transaction<'_>| tx.put(ROOT, "type", "other"),
            |tx: &mut automerge::transaction::Transaction<'_>| tx.put(ROOT, "schema", 2i64),
        ] {
            let mut d = doc_with(&spec(1));
            let mut tx = d.transaction();
            broken(&mut tx).unwrap();
            tx.commit();
            assert!(read(&d).is_err());
        }
        assert!(read(&Automerge::new()).is_err(), "an empty document");
    }

    #[test]
    fn checked_holds_the_content_to_the_local_rules() {
        let d = doc_with(&spec(1));
        assert!(checked(&d, "w1").unwrap_err().contains("not a UUID"));
        let id = "0190a4b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b";
        let mut d = Automerge::new();
        d.transact::<_, _, String>(|tx| init(tx, id, 7, false, &spec(1)))
            .unwrap();
        assert_eq!(checked(&d, id).unwrap().spec, spec(1));
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "name", "n".repeat(10_000))
        })
        .unwrap();
        let err = checked(&d, id).unwrap_err();
        assert_eq!(err, "name: must be 1 to 200 characters long");
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
