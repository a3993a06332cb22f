//! A workflow as an Automerge document, and back.
//!
//! Layout (schema 2): scalars (name, description, version, deleted) are
//! document properties, so concurrent edits of one keep Automerge's
//! deterministic winner and the other value stays visible as a conflict.
//! Every other part is as fine as its data, so that what two devices change
//! in different places both survives:
//! - `tags`: a set (a map whose keys are the tags);
//! - `config.fields`: field definitions keyed by field key, in the order
//!   `config.fields_order` lists them;
//! - `config.rules`: cross-field rules keyed by a hash of what they say, in
//!   the order `config.rules_order` lists them;
//! - `config.run`, `config.retention`: objects field by field;
//! - `config.values`: one key per config value.
//!
//! Leaves are JSON text, read back through the bounded parser. Schema 1
//! documents held tags, definitions, rules, run and retention as one JSON
//! text each; they are read as they are and `upgrade`d on first open.

mod read;
mod write;

use automerge::transaction::Transactable;
use automerge::ROOT;
use flowkeep_core::events::FieldConflict;
use flowkeep_core::remote;
use flowkeep_core::workflow::WorkflowSpec;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

pub(crate) use read::read;
pub(crate) use write::{apply, upgrade};

pub(crate) const KIND: &str = "flowkeep.workflow";
/// The layout this version writes.
const SCHEMA: i64 = 2;
/// The first layout: parts as one JSON text each.
const SCHEMA_JSON_TEXT: i64 = 1;
/// Bounds what a reader walks in one part, whatever a document holds.
const MAX_ENTRIES: usize = 10_000;
/// Most values kept of a key (or part) written concurrently: the winner
/// decides, the others only show it is contested.
const MAX_CONFLICT_VALUES: usize = 8;

/// How a part of a workflow is laid out in its document.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// A map whose keys are the (string) elements.
    Set,
    /// A map of entries by identity, plus a list of identities for order.
    Keyed { order: &'static str },
    /// A map with one key per field of a JSON object.
    Object,
}

/// A part of a workflow written finer than one value: its change path (as
/// `workflow::diff` names it), its key in the document and its shape.
#[derive(Debug)]
struct Part {
    path: &'static str,
    key: &'static str,
    shape: Shape,
}

/// `tags` sits at the document root, the others in `config`.
const PARTS: [Part; 5] = [
    Part {
        path: "tags",
        key: "tags",
        shape: Shape::Set,
    },
    Part {
        path: "config.fields",
        key: "fields",
        shape: Shape::Keyed {
            order: "fields_order",
        },
    },
    Part {
        path: "config.rules",
        key: "rules",
        shape: Shape::Keyed {
            order: "rules_order",
        },
    },
    Part {
        path: "config.run",
        key: "run",
        shape: Shape::Object,
    },
    Part {
        path: "config.retention",
        key: "retention",
        shape: Shape::Object,
    },
];

fn part(path: &str) -> Option<&'static Part> {
    PARTS.iter().find(|p| p.path == path)
}

/// The identity an entry of a keyed part is stored under: a field
/// definition's key; a rule's hash of its canonical JSON (two devices adding
/// the same rule add one entry).
fn entry_id(part: &Part, entry: &Json) -> Option<String> {
    match part.path {
        "config.fields" => entry.get("key")?.as_str().map(str::to_owned),
        _ => {
            let digest = Sha256::digest(entry.to_string().as_bytes());
            Some(digest[..8].iter().map(|b| format!("{b:02x}")).collect())
        }
    }
}

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
    let e = |err: automerge::AutomergeError| err.to_string();
    tx.put(ROOT, "type", KIND).map_err(e)?;
    tx.put(ROOT, "schema", SCHEMA).map_err(e)?;
    tx.put(ROOT, "id", id).map_err(e)?;
    tx.put(ROOT, "created_at", created_at).map_err(e)?;
    tx.put(ROOT, "deleted", deleted).map_err(e)?;
    let config = tx
        .put_object(ROOT, "config", automerge::ObjType::Map)
        .map_err(e)?;
    tx.put_object(&config, "values", automerge::ObjType::Map)
        .map_err(e)?;
    let changes = flowkeep_core::workflow::diff(&empty_spec(), spec);
    apply(tx, &changes)
}

/// An all-empty spec: `diff` from it lists every field of a spec.
pub(crate) fn empty_spec() -> WorkflowSpec {
    WorkflowSpec::default()
}

/// A workflow document read and held to the rules a local command gets,
/// for the workflow the workspace lists it as (`key`). The reason is one
/// line, short, with remote text quoted and cut.
pub(crate) fn checked(doc: &impl automerge::ReadDoc, key: &str) -> Result<DocState, String> {
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
    use automerge::{sync::SyncDoc, Automerge, ObjId, ObjType, ReadDoc, ScalarValue, Value};
    use flowkeep_core::workflow::FieldChange;
    use serde_json::json;
    use std::collections::BTreeSet;

    fn obj(doc: &impl ReadDoc, parent: &ObjId, key: &str) -> Option<ObjId> {
        match doc.get(parent, key).ok()?? {
            (Value::Object(ObjType::Map), id) => Some(id),
            _ => None,
        }
    }

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

    /// A document as the first layout wrote it: parts as JSON text.
    fn legacy_doc(s: &WorkflowSpec) -> Automerge {
        let mut d = Automerge::new();
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "type", KIND)?;
            tx.put(ROOT, "schema", 1i64)?;
            tx.put(ROOT, "id", "w1")?;
            tx.put(ROOT, "created_at", 7i64)?;
            tx.put(ROOT, "deleted", false)?;
            tx.put(ROOT, "name", s.name.as_str())?;
            tx.put(ROOT, "description", s.description.as_str())?;
            tx.put(ROOT, "version", s.version.as_str())?;
            tx.put(ROOT, "tags", json!(s.tags).to_string())?;
            let config = tx.put_object(ROOT, "config", ObjType::Map)?;
            tx.put(&config, "fields", json!(s.config.fields).to_string())?;
            tx.put(&config, "rules", json!(s.config.rules).to_string())?;
            tx.put(&config, "run", json!(s.config.run).to_string())?;
            let values = tx.put_object(&config, "values", ObjType::Map)?;
            for (k, v) in &s.config.values {
                tx.put(&values, k.as_str(), v.to_string())?;
            }
            Ok(())
        })
        .unwrap();
        d
    }

    fn rich_spec() -> WorkflowSpec {
        serde_json::from_value(json!({
            "name": "etl", "description": "d", "version": "1.0.0", "tags": ["base"],
            "config": {
                "fields": [
                    {"key": "lo", "type": "number"},
                    {"key": "hi", "type": "number"}
                ],
                "rules": [{"rule": "less_than", "fields": ["lo", "hi"]}],
                "values": {"lo": 1, "hi": 2},
                "run": {"command": ["./etl.sh"], "timeout_s": 60}
            }
        }))
        .unwrap()
    }

    fn edit(d: &mut Automerge, f: impl FnOnce(&mut WorkflowSpec)) {
        let before = read(d).unwrap().spec;
        let mut after = before.clone();
        f(&mut after);
        let changes = flowkeep_core::workflow::diff(&before, &after);
        d.transact::<_, _, String>(|tx| apply(tx, &changes))
            .unwrap();
    }

    fn field(key: &str) -> flowkeep_core::config::FieldDef {
        serde_json::from_value(json!({"key": key, "type": "text"})).unwrap()
    }

    #[test]
    fn concurrent_additions_to_tags_fields_rules_and_run_parts_all_survive() {
        let base = doc_with(&rich_spec());
        let (mut a, mut b) = (base.fork(), base.fork());
        edit(&mut a, |s| {
            s.tags.push("from-a".into());
            s.config.fields.push(field("a_field"));
            s.config.rules.push(
                serde_json::from_value(
                    json!({"rule": "one_of_required", "fields": ["lo", "a_field"]}),
                )
                .unwrap(),
            );
            s.config.run.as_mut().unwrap().timeout_s = Some(120);
        });
        edit(&mut b, |s| {
            s.tags.push("from-b".into());
            s.tags.retain(|t| t != "base");
            s.config.fields.insert(0, field("b_field"));
            s.config.rules.push(
                serde_json::from_value(json!({"rule": "required_if", "field": "b_field", "if_field": "lo", "equals": 1}))
                    .unwrap(),
            );
            let run = s.config.run.as_mut().unwrap();
            run.cwd = Some("/srv".into());
            run.env.insert("MODE".into(), "fast".into());
        });
        sync(&mut a, &mut b);
        let (ra, rb) = (read(&a).unwrap(), read(&b).unwrap());
        assert_eq!(ra, rb, "both devices read the same");
        let s = ra.spec;
        assert_eq!(s.tags, ["from-a", "from-b"], "both additions, B's removal");
        let keys: Vec<&str> = s.config.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            ["b_field", "lo", "hi", "a_field"],
            "each where its device put it"
        );
        assert_eq!(s.config.rules.len(), 3);
        let run = s.config.run.unwrap();
        assert_eq!(run.command, ["./etl.sh"]);
        assert_eq!(run.timeout_s, Some(120));
        assert_eq!(run.cwd.as_deref(), Some("/srv"));
        assert_eq!(run.env["MODE"], "fast");
        assert!(ra.conflicts.is_empty(), "{:?}", ra.conflicts);
    }

    #[test]
    fn the_same_definition_edited_on_two_devices_is_a_conflict_of_the_whole_part() {
        let base = doc_with(&rich_spec());
        let (mut a, mut b) = (base.fork(), base.fork());
        edit(&mut a, |s| {
            s.config.fields[1].label = Some("High (A)".into())
        });
        edit(&mut b, |s| {
            s.config.fields[1].label = Some("High (B)".into())
        });
        edit(&mut b, |s| {
            s.config.run.as_mut().unwrap().timeout_s = Some(5)
        });
        edit(&mut a, |s| {
            s.config.run.as_mut().unwrap().timeout_s = Some(9)
        });
        sync(&mut a, &mut b);
        let ra = read(&a).unwrap();
        assert_eq!(ra, read(&b).unwrap());
        let fields = ra
            .conflicts
            .iter()
            .find(|c| c.field == "config.fields")
            .unwrap();
        assert_eq!(
            fields.values[0],
            json!(ra.spec.config.fields),
            "the winner first"
        );
        let labels: BTreeSet<String> = fields
            .values
            .iter()
            .map(|v| v[1]["label"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            labels,
            BTreeSet::from(["High (A)".into(), "High (B)".into()])
        );
        let run = ra
            .conflicts
            .iter()
            .find(|c| c.field == "config.run")
            .unwrap();
        let timeouts: BTreeSet<i64> = run
            .values
            .iter()
            .map(|v| v["timeout_s"].as_i64().unwrap())
            .collect();
        assert_eq!(timeouts, BTreeSet::from([5, 9]));
        assert_eq!(ra.conflicts.len(), 2);
    }

    #[test]
    fn order_moves_and_removals_keep_the_document_in_step() {
        let mut d = doc_with(&rich_spec());
        edit(&mut d, |s| s.config.fields.reverse());
        edit(&mut d, |s| s.config.fields.insert(1, field("mid")));
        edit(&mut d, |s| s.config.rules.clear());
        edit(&mut d, |s| s.config.run = None);
        edit(&mut d, |s| s.tags.clear());
        let s = read(&d).unwrap().spec;
        let keys: Vec<&str> = s.config.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["hi", "mid", "lo"]);
        assert!(s.config.rules.is_empty() && s.config.run.is_none() && s.tags.is_empty());
        edit(&mut d, |s| s.config.run = rich_spec().config.run);
        assert_eq!(read(&d).unwrap().spec.config.run, rich_spec().config.run);
    }

    #[test]
    fn a_first_layout_document_reads_and_upgrades_on_first_write_saying_the_same() {
        let s = rich_spec();
        let mut d = legacy_doc(&s);
        assert_eq!(read(&d).unwrap().spec, s, "read as it is");
        let upgraded = d.transact::<_, _, String>(|tx| upgrade(tx)).unwrap().result;
        assert!(upgraded);
        assert_eq!(read(&d).unwrap().spec, s, "says the same after");
        assert_eq!(d.get(ROOT, "schema").unwrap().unwrap().0.as_i64(), Some(2));
        assert!(matches!(
            d.get(ROOT, "tags").unwrap().unwrap().0,
            Value::Object(ObjType::Map)
        ));
        let again = d.transact::<_, _, String>(|tx| upgrade(tx)).unwrap().result;
        assert!(!again, "nothing to do twice");

        // Two devices upgrade the same document concurrently (each by its
        // first write) and each adds a tag and a field: nothing is lost.
        let legacy = legacy_doc(&s);
        let (mut a, mut b) = (legacy.fork(), legacy.fork());
        edit(&mut a, |s| {
            s.tags.push("from-a".into());
            s.config.fields.push(field("a_field"));
        });
        edit(&mut b, |s| {
            s.tags.push("from-b".into());
            s.config.fields.push(field("b_field"));
        });
        sync(&mut a, &mut b);
        let (ra, rb) = (read(&a).unwrap(), read(&b).unwrap());
        assert_eq!(ra, rb);
        assert_eq!(ra.spec.tags, ["base", "from-a", "from-b"]);
        let keys: BTreeSet<&str> = ra
            .spec
            .config
            .fields
            .iter()
            .map(|f| f.key.as_str())
            .collect();
        assert_eq!(keys, BTreeSet::from(["lo", "hi", "a_field", "b_field"]));
        // And a later edit on one reaches every copy of the part.
        edit(&mut a, |s| s.tags.retain(|t| t != "from-b"));
        sync(&mut a, &mut b);
        assert_eq!(read(&b).unwrap().spec.tags, ["base", "from-a"]);
    }

    #[test]
    fn an_entry_stored_under_another_identity_is_reported() {
        let mut d = doc_with(&rich_spec());
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            let config = obj(tx, &ROOT, "config").unwrap();
            let fields = obj(tx, &config, "fields").unwrap();
            tx.put(
                &fields,
                "lo",
                json!({"key": "other", "type": "text"}).to_string(),
            )
        })
        .unwrap();
        let err = read(&d).unwrap_err();
        assert!(
            err.contains("config.fields.lo: holds an entry whose identity is not"),
            "{err}"
        );
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
    fn a_key_many_devices_wrote_at_once_costs_a_few_values_not_one_each() {
        let base = doc_with(&rich_spec());
        let mut merged = base.fork();
        for i in 0..40 {
            // Each fork is another actor (another device).
            let mut f = base.fork();
            let field = |k: &str| FieldChange {
                field: k.into(),
                old: Json::Null,
                new: json!(i),
            };
            f.transact::<_, _, String>(|tx| {
                apply(tx, &[field("config.values.lo")])?;
                apply(
                    tx,
                    &[FieldChange {
                        field: "config.fields".into(),
                        old: json!(rich_spec().config.fields),
                        new: json!([
                            {"key": "lo", "type": "number", "label": format!("lo {i}")},
                            {"key": "hi", "type": "number"}
                        ]),
                    }],
                )
            })
            .unwrap();
            merged.merge(&mut f).unwrap();
        }
        let state = read(&merged).unwrap();
        assert!(!state.conflicts.is_empty());
        for c in &state.conflicts {
            assert!(
                c.values.len() <= 1 + MAX_CONFLICT_VALUES,
                "{}: {} values",
                c.field,
                c.values.len()
            );
        }
    }

    #[test]
    fn config_values_are_bounded_like_every_other_part() {
        let mut d = doc_with(&spec(1));
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            let config = obj(tx, &ROOT, "config").unwrap();
            let values = obj(tx, &config, "values").unwrap();
            for i in 0..=MAX_ENTRIES {
                tx.put(&values, format!("k{i}"), "1")?;
            }
            Ok(())
        })
        .unwrap();
        let why = read(&d).unwrap_err();
        assert!(
            why.contains("config.values: more than 10000 entries"),
            "{why}"
        );

        let mut d = doc_with(&spec(1));
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            let config = obj(tx, &ROOT, "config").unwrap();
            let values = obj(tx, &config, "values").unwrap();
            let big = json!("x".repeat(300 << 10)).to_string();
            for i in 0..8 {
                tx.put(&values, format!("k{i}"), big.as_str())?;
            }
            Ok(())
        })
        .unwrap();
        let why = read(&d).unwrap_err();
        assert!(why.contains("config.values: more than"), "{why}");
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
            |tx: &mut automerge::transaction::Transaction<'_>| tx.put(ROOT, "schema", 3i64),
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
