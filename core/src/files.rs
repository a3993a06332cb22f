//! Workflows as files: the document a workflow is written as (one per
//! file, the same bytes for the same workflow), reading one back with every
//! problem named, and the three-way merge of an import (the file, the
//! workflow here, and the base both started from). No IO and no YAML here:
//! `flowkeep-app` reads and writes the files and the text.

use serde_json::{Map, Value};

use crate::commands::{CreateWorkflow, Input};
use crate::workflow::{self, FieldChange, Workflow, WorkflowSpec};
use crate::FieldError;

/// The keys of a workflow's document, in the order a person reads them
/// (the YAML writer sorts keys, so this is also the order in the file).
pub const KEYS: [&str; 6] = ["config", "description", "id", "name", "tags", "version"];

/// What a workflow's file holds: its id and spec, keys sorted at every
/// level (serde_json's map is ordered), nothing that differs between two
/// devices holding the same workflow (no revision, no times, no approval).
pub fn document(wf: &Workflow) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), wf.id.clone().into());
    m.insert("name".into(), wf.spec.name.clone().into());
    m.insert("description".into(), wf.spec.description.clone().into());
    m.insert("version".into(), wf.spec.version.clone().into());
    m.insert("tags".into(), wf.spec.tags.clone().into());
    m.insert(
        "config".into(),
        serde_json::to_value(&wf.spec.config).expect("a config document serializes"),
    );
    Value::Object(m)
}

/// A file's name for a workflow: its name in lower case, letters and
/// digits kept, the rest one `-` (at most 60), `workflow` when nothing is
/// left. Names two workflows share get the last 8 characters of each id
/// (the random end of a UUIDv7: its start is the creation time, which
/// workflows made together share).
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars().flat_map(char::to_lowercase) {
        if ch.is_alphanumeric() {
            out.push(ch);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.chars().count() >= 60 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "workflow".to_owned()
    } else {
        out
    }
}

/// `<slug>.flowkeep.yaml` for each workflow, in the order given; distinct
/// whatever the names, and the same for the same set of workflows.
pub fn file_names(workflows: &[(String, String)]) -> Vec<String> {
    let mut count = std::collections::HashMap::new();
    for (_, name) in workflows {
        *count.entry(slug(name)).or_insert(0usize) += 1;
    }
    workflows
        .iter()
        .map(|(id, name)| {
            let s = slug(name);
            if count[&s] > 1 {
                file_name_with_id(id, name)
            } else {
                format!("{s}.flowkeep.yaml")
            }
        })
        .collect()
}

/// A workflow's file name told apart by the end of its id, for a name
/// another workflow's file already has.
pub fn file_name_with_id(id: &str, name: &str) -> String {
    let hex: Vec<char> = id.chars().filter(|c| *c != '-').collect();
    let short: String = hex[hex.len().saturating_sub(8)..].iter().collect();
    format!("{}-{short}.flowkeep.yaml", slug(name))
}

/// A workflow as a file describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileWorkflow {
    /// Absent in a hand-written file meant to create a new workflow.
    pub id: Option<String>,
    pub spec: WorkflowSpec,
}

/// Reads a document: every problem at once, each by its path in the file
/// (`config.values.n`, `tags[1]`). `check_config` turns the config part into
/// a document with the app's validation (paths relative to `config`).
pub fn read(
    doc: &Value,
    check_config: impl FnOnce(&Value) -> Result<crate::config::ConfigDocument, Vec<FieldError>>,
) -> Result<FileWorkflow, Vec<FieldError>> {
    let Some(obj) = doc.as_object() else {
        return Err(vec![FieldError::new(
            "",
            "type",
            "a workflow file holds a mapping (name: ..., config: ...)",
        )]);
    };
    let mut errors = Vec::new();
    for key in obj.keys() {
        if !KEYS.contains(&key.as_str()) {
            errors.push(FieldError::new(
                key.clone(),
                "unknown",
                format!("not a key of a workflow file (known: {})", KEYS.join(", ")),
            ));
        }
    }
    let text = |key: &str, errors: &mut Vec<FieldError>| -> Option<String> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                errors.push(FieldError::new(
                    key,
                    "type",
                    format!("must be text, got {}", kind(other)),
                ));
                None
            }
        }
    };
    let id = text("id", &mut errors);
    if let Some(id) = &id {
        if uuid::Uuid::parse_str(id).map(|u| u.hyphenated().to_string()) != Ok(id.clone()) {
            errors.push(FieldError::new(
                "id",
                "uuid",
                "must be a workflow id (a UUID in lower case with hyphens); leave it out to create a new workflow",
            ));
        }
    }
    let name = text("name", &mut errors);
    if name.is_none() && !errors.iter().any(|e| e.field == "name") {
        errors.push(FieldError::new(
            "name",
            "required",
            "a workflow needs a name",
        ));
    }
    let description = text("description", &mut errors);
    let version = text("version", &mut errors);
    let tags: Vec<String> = match obj.get("tags") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t {
                Value::String(s) => Some(s.clone()),
                other => {
                    errors.push(FieldError::new(
                        format!("tags[{i}]"),
                        "type",
                        format!("must be text, got {}", kind(other)),
                    ));
                    None
                }
            })
            .collect(),
        Some(other) => {
            errors.push(FieldError::new(
                "tags",
                "type",
                format!("must be a list of text, got {}", kind(other)),
            ));
            vec![]
        }
    };
    let mut create = CreateWorkflow {
        name: name.clone().unwrap_or_default(),
        description: description.clone(),
        version: version.clone(),
        tags: tags.clone(),
        config: None,
    };
    if name.is_some() {
        if let Err(crate::Error::Invalid(found)) = create.check() {
            errors.extend(found);
        }
    }
    let config = match obj.get("config") {
        None | Some(Value::Null) => Some(Default::default()),
        Some(v) => match check_config(v) {
            Ok(c) => Some(c),
            Err(found) => {
                errors.extend(found.into_iter().map(|mut e| {
                    e.field = if e.field.is_empty() {
                        "config".to_owned()
                    } else {
                        format!("config.{}", e.field)
                    };
                    e
                }));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut spec = WorkflowSpec {
        name: create.name,
        description: create.description.unwrap_or_default(),
        version: create
            .version
            .unwrap_or_else(|| workflow::DEFAULT_VERSION.to_owned()),
        tags: create.tags,
        config: config.expect("no errors"),
    };
    workflow::normalize(&mut spec);
    Ok(FileWorkflow { id, spec })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Which side wins a field both the file and the workflow changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Prefer {
    File,
    Local,
}

/// A field both sides changed since the base, to different values.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct MergeConflict {
    /// `config.values.greeting`, `name`, `config.run`, ...
    pub field: String,
    #[ts(type = "unknown")]
    pub base: Value,
    /// The value the workflow has here.
    #[ts(type = "unknown")]
    pub local: Value,
    /// The value the file has.
    #[ts(type = "unknown")]
    pub file: Value,
}

/// The outcome of a three-way merge: the spec to write and what could not
/// be merged (then nothing of this workflow is written unless a side is
/// preferred).
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    pub merged: WorkflowSpec,
    pub conflicts: Vec<MergeConflict>,
}

/// Merges what the file changed since `base` into `local`, field by field
/// (each config value on its own; the definitions, rules, run spec and
/// retention each as a whole). A field only one side changed takes that
/// side's value; one both changed to the same value is no conflict; one both
/// changed differently is a conflict, or `prefer`'s side. Without a base
/// (the workflow was never exported or imported here) the file is taken as
/// it is.
pub fn merge(
    base: Option<&WorkflowSpec>,
    local: &WorkflowSpec,
    file: &WorkflowSpec,
    prefer: Option<Prefer>,
) -> Merge {
    let Some(base) = base else {
        return Merge {
            merged: file.clone(),
            conflicts: vec![],
        };
    };
    let theirs = workflow::diff(base, file);
    let ours = workflow::diff(base, local);
    let mut take: Vec<FieldChange> = Vec::new();
    let mut conflicts = Vec::new();
    for change in theirs {
        match ours.iter().find(|c| c.field == change.field) {
            Some(mine) if mine.new == change.new => {}
            Some(mine) => match prefer {
                Some(Prefer::File) => take.push(change),
                Some(Prefer::Local) => {}
                None => conflicts.push(MergeConflict {
                    field: change.field.clone(),
                    base: change.old.clone(),
                    local: mine.new.clone(),
                    file: change.new.clone(),
                }),
            },
            None => take.push(change),
        }
    }
    let mut merged = local.clone();
    if conflicts.is_empty() {
        // Changes come from `diff`, so they apply; a failure would mean
        // `diff` and `apply` disagree, caught by their tests.
        workflow::apply(&mut merged, &take).expect("changes from diff apply");
        workflow::normalize(&mut merged);
    }
    Merge { merged, conflicts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(values: Value) -> WorkflowSpec {
        let mut s = WorkflowSpec {
            name: "w".into(),
            version: "1.0.0".into(),
            ..Default::default()
        };
        s.config.values = serde_json::from_value(values).unwrap();
        s
    }

    #[test]
    fn slugs_and_file_names_are_stable_and_distinct() {
        assert_eq!(slug("Alpha ETL"), "alpha-etl");
        assert_eq!(slug("  Über / Backup!! "), "über-backup");
        assert_eq!(slug("***"), "workflow");
        let names = file_names(&[
            ("0193a-00000001".into(), "Report".into()),
            ("0193a-00000002".into(), "report".into()),
            ("0195c-3".into(), "Other".into()),
        ]);
        assert_eq!(
            names,
            [
                "report-00000001.flowkeep.yaml",
                "report-00000002.flowkeep.yaml",
                "other.flowkeep.yaml"
            ]
        );
    }

    fn check(v: &Value) -> Result<crate::config::ConfigDocument, Vec<FieldError>> {
        crate::config::ConfigDocument::from_json(v, &Default::default())
    }

    #[test]
    fn a_document_reads_back_to_the_same_workflow() {
        let wf = Workflow {
            id: "01a24290-0000-7000-8000-000000000001".into(),
            spec: WorkflowSpec {
                name: "Alpha".into(),
                description: "d".into(),
                version: "2.1.0".into(),
                tags: vec!["etl".into()],
                config: check(
                    &json!({"fields": [{"key": "n", "type": "number"}], "values": {"n": 3}}),
                )
                .unwrap(),
            },
            created_at: 1,
            updated_at: 2,
            revision: 7,
            conflicts: vec![],
            validation_errors: vec![],
            approval: Default::default(),
        };
        let doc = document(&wf);
        let back = read(&doc, check).unwrap();
        assert_eq!(back.id.as_deref(), Some(wf.id.as_str()));
        assert_eq!(back.spec, wf.spec);
    }

    #[test]
    fn every_problem_of_a_document_is_named_by_its_path() {
        let doc = json!({
            "id": "not-a-uuid", "tags": ["ok", 3], "colour": "red",
            "config": {"fields": [{"key": "n", "type": "number", "max": 5}], "values": {"n": 9}}
        });
        let errors = read(&doc, check).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["colour", "id", "name", "tags[1]", "config.values.n"],
            "{errors:?}"
        );
    }

    #[test]
    fn fields_changed_on_one_side_merge_and_on_both_conflict() {
        let base = spec(json!({"greeting": "a", "n": 1}));
        let local = spec(json!({"greeting": "a", "n": 2}));
        let file = spec(json!({"greeting": "b", "n": 1}));
        let m = merge(Some(&base), &local, &file, None);
        assert!(m.conflicts.is_empty());
        assert_eq!(m.merged, spec(json!({"greeting": "b", "n": 2})));

        let local = spec(json!({"greeting": "mine", "n": 1}));
        let file = spec(json!({"greeting": "theirs", "n": 5}));
        let m = merge(Some(&base), &local, &file, None);
        assert_eq!(
            m.conflicts,
            [MergeConflict {
                field: "config.values.greeting".into(),
                base: json!("a"),
                local: json!("mine"),
                file: json!("theirs"),
            }]
        );
        let m = merge(Some(&base), &local, &file, Some(Prefer::File));
        assert_eq!(m.merged, spec(json!({"greeting": "theirs", "n": 5})));
        let m = merge(Some(&base), &local, &file, Some(Prefer::Local));
        assert_eq!(m.merged, spec(json!({"greeting": "mine", "n": 5})));

        // The same change on both sides is no conflict; a removal merges.
        let both = spec(json!({"greeting": "same"}));
        let m = merge(
            Some(&base),
            &spec(json!({"greeting": "same", "n": 1})),
            &both,
            None,
        );
        assert!(m.conflicts.is_empty());
        assert_eq!(m.merged, both);
        // Without a base the file is taken as it is.
        assert_eq!(merge(None, &local, &file, None).merged, file);
    }
}
