use flowkeep_core::commands::{HistoryEntry, Input, WorkflowHistory};
use flowkeep_core::events::Event;
use flowkeep_core::workflow::{self, FieldChange, WorkflowSpec};
use serde_json::Value;

use super::WorkflowService;
use crate::{Error, Result};
use flowkeep_store::{event_log, queries};

impl WorkflowService<'_> {
    /// The audit trail of one workflow, oldest first: every event with who,
    /// when, which device, and each changed field's old and new value.
    /// Works for deleted workflows too.
    pub fn history(&self, mut input: WorkflowHistory) -> Result<Vec<HistoryEntry>> {
        input.check()?;
        self.read(|c| {
            let Some(now) = queries::workflows::load(c, &input.workflow_id)? else {
                return Err(Error::workflow_not_found(&input.workflow_id));
            };
            // A value of a field that is a secret now is masked all through
            // its history, also from before it became one.
            let secret: Vec<&str> = flowkeep_core::secret::secret_keys(&now.workflow.spec.config);
            let masked = |mut changes: Vec<FieldChange>| {
                flowkeep_core::secret::mask_changes(&mut changes, &|k| secret.contains(&k));
                changes
            };
            let events = event_log::read_stream(c, &input.workflow_id)?;
            Ok(events
                .into_iter()
                .map(|e| HistoryEntry {
                    changes: masked(changes_of(&e.event)),
                    conflicts: match &e.event {
                        Event::RemoteMerged(p) => p.conflicts.clone(),
                        _ => vec![],
                    },
                    // The event's device is its first author's claim.
                    uploaded_by: match &e.event {
                        Event::RemoteMerged(p) => {
                            p.authors.first().and_then(|a| a.uploaded_by.clone())
                        }
                        _ => None,
                    },
                    seq: e.seq,
                    event_id: e.id,
                    kind: e.event.kind().to_owned(),
                    revision: e.stream_version,
                    actor: e.actor,
                    device_id: e.device_id,
                    origin: e.origin,
                    recorded_at: e.recorded_at,
                })
                .collect())
        })
    }
}

fn changes_of(event: &Event) -> Vec<FieldChange> {
    match event {
        Event::WorkflowCreated(p) => {
            let mut changes = workflow::diff(&WorkflowSpec::default(), &p.spec);
            for c in &mut changes {
                c.old = Value::Null;
            }
            if let Some(source) = &p.duplicated_from {
                changes.insert(
                    0,
                    FieldChange {
                        field: "duplicated_from".into(),
                        old: Value::Null,
                        new: source.clone().into(),
                    },
                );
            }
            changes
        }
        Event::WorkflowUpdated(p) | Event::ConfigUpdated(p) => p.changes.clone(),
        Event::RemoteMerged(p) => {
            let mut changes = p.changes.clone();
            if let Some(d) = p.deleted {
                changes.push(FieldChange {
                    field: "deleted".into(),
                    old: (!d).into(),
                    new: d.into(),
                });
            }
            changes
        }
        Event::WorkflowApproved(p) => vec![FieldChange {
            field: "approved".into(),
            old: Value::Null,
            new: serde_json::json!({"run": p.run, "retention": p.retention}),
        }],
        Event::WorkflowDeleted(_) => {
            vec![FieldChange {
                field: "deleted".into(),
                old: false.into(),
                new: true.into(),
            }]
        }
        Event::WorkflowRestored(p) => {
            let mut changes = p.changes.clone();
            if p.undeleted {
                changes.push(FieldChange {
                    field: "deleted".into(),
                    old: true.into(),
                    new: false.into(),
                });
            }
            changes
        }
        _ => vec![],
    }
}
