//! A workflow's past versions, from its own events: what it was at any
//! revision or instant, and what differs between two of them. Replay uses
//! the same `workflow::apply` the projection uses, so the version at
//! revision N is what the read tables held after event N.

use serde::{Deserialize, Serialize};

use crate::events::Event;
use crate::workflow::{self, FieldChange, FieldConflict, WorkflowSpec};

/// A workflow as it was at one revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct WorkflowVersion {
    pub id: String,
    #[serde(flatten)]
    pub spec: WorkflowSpec,
    /// The revision this version is (the stream version of its last event).
    pub revision: u64,
    pub created_at: i64,
    /// When its last event was recorded.
    pub updated_at: i64,
    /// Deleted at this revision.
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<FieldConflict>,
}

/// Where in a workflow's history: a revision, an instant, or the version a
/// run used. Written `12`, `2026-12-03T10:00:00Z` (RFC 3339), `run:<RUN_ID>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Point {
    Revision(u64),
    /// Unix ms: the last version recorded at or before it.
    Time(i64),
    Run(String),
}

impl Point {
    /// `text` as a point; `field` names it in the error.
    pub fn parse(field: &str, text: &str) -> Result<Point, crate::FieldError> {
        let t = text.trim();
        if let Some(run) = t.strip_prefix("run:") {
            return match crate::remote::parse_id(run.trim()) {
                Some(_) => Ok(Point::Run(run.trim().to_owned())),
                None => Err(crate::FieldError::new(
                    field,
                    "format",
                    "run:<RUN_ID> needs a run id (a UUID, as `exec list` shows it)",
                )),
            };
        }
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return match t.parse::<u64>() {
                Ok(0) | Err(_) => Err(crate::FieldError::new(
                    field,
                    "range",
                    "a revision is a whole number from 1",
                )),
                Ok(n) => Ok(Point::Revision(n)),
            };
        }
        match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(at) => Ok(Point::Time(at.timestamp_millis())),
            Err(_) => Err(crate::FieldError::new(
                field,
                "format",
                format!(
                    "\"{}\" is not a revision (12), a time (2026-12-03T10:00:00Z) or run:<RUN_ID>",
                    t.chars().take(60).collect::<String>()
                ),
            )),
        }
    }
}

/// One event of a workflow's stream, as replay needs it.
pub struct Step<'a> {
    pub event: &'a Event,
    pub revision: u64,
    pub recorded_at: i64,
}

/// The versions of one workflow, built by replaying its events in order.
#[derive(Debug, Default)]
pub struct Replay {
    current: Option<WorkflowVersion>,
}

impl Replay {
    pub fn new() -> Replay {
        Replay::default()
    }

    /// A replay that goes on from `version` (a snapshot of it).
    pub fn from(version: Option<WorkflowVersion>) -> Replay {
        Replay { current: version }
    }

    /// The version after the events applied so far (`None` before the
    /// workflow existed).
    pub fn version(&self) -> Option<&WorkflowVersion> {
        self.current.as_ref()
    }

    /// Applies one event of the workflow's stream. Events that do not
    /// change the workflow (approvals) still move its revision.
    pub fn apply(&mut self, id: &str, step: Step<'_>) -> Result<(), String> {
        let Step {
            event,
            revision,
            recorded_at,
        } = step;
        match event {
            Event::WorkflowCreated(p) => {
                self.current = Some(WorkflowVersion {
                    id: id.to_owned(),
                    spec: p.spec.clone(),
                    revision,
                    created_at: recorded_at,
                    updated_at: recorded_at,
                    deleted: false,
                    conflicts: vec![],
                });
            }
            Event::WorkflowUpdated(p) | Event::ConfigUpdated(p) => {
                let v = self.live(revision)?;
                workflow::apply(&mut v.spec, &p.changes)?;
                v.conflicts
                    .retain(|c| !p.changes.iter().any(|ch| ch.field == c.field));
                v.revision = revision;
                v.updated_at = recorded_at;
            }
            Event::WorkflowRestored(p) => {
                let v = self.any(revision)?;
                workflow::apply(&mut v.spec, &p.changes)?;
                v.conflicts
                    .retain(|c| !p.changes.iter().any(|ch| ch.field == c.field));
                if p.undeleted {
                    v.deleted = false;
                }
                v.revision = revision;
                v.updated_at = recorded_at;
            }
            Event::RemoteMerged(p) => {
                let v = self.current.get_or_insert_with(|| WorkflowVersion {
                    id: id.to_owned(),
                    spec: WorkflowSpec::default(),
                    revision: 0,
                    created_at: p.created_at.unwrap_or(recorded_at),
                    updated_at: recorded_at,
                    deleted: false,
                    conflicts: vec![],
                });
                workflow::apply(&mut v.spec, &p.changes)?;
                v.conflicts = p.conflicts.clone();
                if let Some(d) = p.deleted {
                    v.deleted = d;
                }
                v.revision = revision;
                v.updated_at = recorded_at;
            }
            Event::WorkflowDeleted(_) => {
                let v = self.live(revision)?;
                v.deleted = true;
                v.revision = revision;
                v.updated_at = recorded_at;
            }
            Event::WorkflowApproved(_) => {
                let v = self.any(revision)?;
                v.revision = revision;
            }
            // Not a workflow's event.
            _ => {}
        }
        Ok(())
    }

    fn any(&mut self, revision: u64) -> Result<&mut WorkflowVersion, String> {
        self.current
            .as_mut()
            .ok_or_else(|| format!("revision {revision} changes a workflow before it exists"))
    }

    fn live(&mut self, revision: u64) -> Result<&mut WorkflowVersion, String> {
        let v = self.any(revision)?;
        if v.deleted {
            return Err(format!("revision {revision} changes a deleted workflow"));
        }
        Ok(v)
    }
}

/// Whether the replay should stop before `step`: it lies after `point`
/// (a revision or an instant; a run's point is resolved to its revision by
/// the caller).
pub fn is_after(point: &Point, revision: u64, recorded_at: i64) -> bool {
    match point {
        Point::Revision(n) => revision > *n,
        Point::Time(t) => recorded_at > *t,
        Point::Run(_) => false,
    }
}

/// Field by field, what differs from `from` to `to`: the spec's fields as
/// `workflow::diff` names them, and `deleted` when that differs.
pub fn diff(from: &WorkflowVersion, to: &WorkflowVersion) -> Vec<FieldChange> {
    let mut changes = workflow::diff(&from.spec, &to.spec);
    if from.deleted != to.deleted {
        changes.push(FieldChange {
            field: "deleted".into(),
            old: from.deleted.into(),
            new: to.deleted.into(),
        });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{RemoteMergedV1, WorkflowChangedV1, WorkflowCreatedV1, WorkflowDeletedV1};
    use serde_json::json;

    fn created(name: &str) -> Event {
        Event::WorkflowCreated(WorkflowCreatedV1 {
            spec: WorkflowSpec {
                name: name.into(),
                version: "1.0.0".into(),
                ..Default::default()
            },
            duplicated_from: None,
        })
    }

    fn renamed(old: &str, new: &str) -> Event {
        Event::WorkflowUpdated(WorkflowChangedV1 {
            changes: vec![FieldChange {
                field: "name".into(),
                old: json!(old),
                new: json!(new),
            }],
        })
    }

    fn replay_to(events: &[Event], point: &Point) -> Option<WorkflowVersion> {
        let mut r = Replay::new();
        for (i, e) in events.iter().enumerate() {
            let (revision, recorded_at) = (i as u64 + 1, 1000 * (i as i64 + 1));
            if is_after(point, revision, recorded_at) {
                break;
            }
            r.apply(
                "w",
                Step {
                    event: e,
                    revision,
                    recorded_at,
                },
            )
            .unwrap();
        }
        r.version().cloned()
    }

    #[test]
    fn a_revision_or_an_instant_gives_the_version_then() {
        let events = [created("a"), renamed("a", "b"), renamed("b", "c")];
        let at = |p| replay_to(&events, &p).map(|v| (v.spec.name, v.revision));
        assert_eq!(at(Point::Revision(1)), Some(("a".into(), 1)));
        assert_eq!(at(Point::Revision(2)), Some(("b".into(), 2)));
        assert_eq!(at(Point::Time(2500)), Some(("b".into(), 2)));
        assert_eq!(at(Point::Time(999)), None, "before it existed");
        assert_eq!(at(Point::Revision(99)), Some(("c".into(), 3)));
    }

    #[test]
    fn deletes_restores_and_merges_are_replayed() {
        let events = [
            created("a"),
            Event::WorkflowDeleted(WorkflowDeletedV1 { name: "a".into() }),
            Event::WorkflowRestored(crate::events::WorkflowRestoredV1 {
                from_revision: 1,
                changes: vec![],
                undeleted: true,
            }),
            Event::RemoteMerged(RemoteMergedV1 {
                changes: vec![FieldChange {
                    field: "name".into(),
                    old: json!("a"),
                    new: json!("from b"),
                }],
                created_at: None,
                deleted: None,
                authors: vec![],
                heads: vec![],
                conflicts: vec![],
            }),
        ];
        let v = |n| replay_to(&events, &Point::Revision(n)).unwrap();
        assert!(v(2).deleted);
        assert!(!v(3).deleted);
        assert_eq!(v(4).spec.name, "from b");
        let d = diff(&v(2), &v(4));
        let fields: Vec<&str> = d.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["name", "deleted"]);
    }

    #[test]
    fn a_change_to_a_deleted_workflow_is_corrupt_history() {
        let events = [
            created("a"),
            Event::WorkflowDeleted(WorkflowDeletedV1 { name: "a".into() }),
            renamed("a", "b"),
        ];
        let mut r = Replay::new();
        let mut last = Ok(());
        for (i, e) in events.iter().enumerate() {
            last = r.apply(
                "w",
                Step {
                    event: e,
                    revision: i as u64 + 1,
                    recorded_at: 0,
                },
            );
        }
        assert!(last.unwrap_err().contains("deleted"));
    }

    #[test]
    fn points_are_read_strictly() {
        assert_eq!(Point::parse("at", "12").unwrap(), Point::Revision(12));
        assert_eq!(
            Point::parse("at", "2026-12-03T10:00:00.123Z").unwrap(),
            Point::Time(1_796_292_000_123)
        );
        let run = "0190a4b2-0000-7e4f-8a5b-000000000001";
        assert_eq!(
            Point::parse("at", &format!("run:{run}")).unwrap(),
            Point::Run(run.into())
        );
        for bad in ["0", "", "yesterday", "run:../x", "-3", "1.5"] {
            let e = Point::parse("at", bad).unwrap_err();
            assert_eq!(e.field, "at", "{bad}");
        }
    }
}
