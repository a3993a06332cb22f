//! Time travel: a workflow as it was at any revision, instant or run, what
//! differs between two versions, and putting one back (`workflow.restored`,
//! an ordinary change) — all from the workflow's own events, replayed with
//! the projection's `apply` (`flowkeep_core::versions`).

use flowkeep_core::commands::{
    DiffWorkflow, Input, RestoreWorkflow, UndeleteWorkflow, VersionRef, WorkflowAt, WorkflowDiff,
};
use flowkeep_core::events::{Event, WorkflowRestoredV1};
use flowkeep_core::versions::{self, Point, Replay, Step, WorkflowVersion};
use flowkeep_core::workflow::{self, Workflow};
use rusqlite::Connection;

use super::{check_revision, validate_config, WorkflowService};
use crate::{Error, Result};
use flowkeep_store::event_log::{self, Expected};
use flowkeep_store::queries;
use flowkeep_store::queries::versions::Before;

impl WorkflowService<'_> {
    /// The workflow as it was at `at`.
    pub fn get_at(&self, mut input: WorkflowAt) -> Result<WorkflowVersion> {
        input.check()?;
        let point = Point::parse("at", &input.at).map_err(invalid)?;
        self.read(|c| version_at(c, &input.id, &point))
    }

    /// Field by field, what differs from `from` to `to` (default: now).
    pub fn diff(&self, mut input: DiffWorkflow) -> Result<WorkflowDiff> {
        input.check()?;
        let from = Point::parse("from", &input.from).map_err(invalid)?;
        let to = input
            .to
            .as_deref()
            .map(|t| Point::parse("to", t).map_err(invalid))
            .transpose()?;
        self.read(|c| {
            let from = version_at(c, &input.id, &from)?;
            let to = match &to {
                Some(p) => version_at(c, &input.id, p)?,
                None => {
                    let latest = event_log::stream_version(c, &input.id)?;
                    version_at(c, &input.id, &Point::Revision(latest.max(1)))?
                }
            };
            Ok(WorkflowDiff {
                id: input.id.clone(),
                changes: versions::diff(&from, &to),
                from: VersionRef {
                    revision: from.revision,
                    recorded_at: from.updated_at,
                },
                to: VersionRef {
                    revision: to.revision,
                    recorded_at: to.updated_at,
                },
            })
        })
    }

    /// Sets the workflow back to its version at `to`, as one new event; a
    /// deleted workflow comes back as that version. Nothing is written when
    /// it already is that version.
    pub fn restore(&self, mut input: RestoreWorkflow) -> Result<Workflow> {
        input.check()?;
        let point = Point::parse("to", &input.to).map_err(invalid)?;
        self.write(|w| {
            let Some(now) = queries::workflows::load(w.conn, &input.id)? else {
                return Err(Error::workflow_not_found(&input.id));
            };
            check_revision(&now.workflow, input.expected_revision)?;
            let past = version_at(w.conn, &input.id, &point)?;
            if past.deleted {
                return Err(Error::invalid(
                    "to",
                    "deleted",
                    format!(
                        "at revision {} workflow {} was deleted: restore a revision before that",
                        past.revision, input.id
                    ),
                ));
            }
            restore_in(w, &now.workflow, now.deleted, &past)
        })
    }

    /// Brings a deleted workflow back as it was before it was deleted.
    pub fn undelete(&self, mut input: UndeleteWorkflow) -> Result<Workflow> {
        input.check()?;
        self.write(|w| {
            let Some(now) = queries::workflows::load(w.conn, &input.id)? else {
                return Err(Error::workflow_not_found(&input.id));
            };
            if !now.deleted {
                return Err(Error::invalid(
                    "id",
                    "not_deleted",
                    format!("workflow {} is not deleted", input.id),
                ));
            }
            check_revision(&now.workflow, input.expected_revision)?;
            let last_live = last_live(w.conn, &input.id)?
                .ok_or_else(|| Error::workflow_not_found(&input.id))?;
            restore_in(w, &now.workflow, true, &last_live)
        })
    }
}

fn invalid(e: flowkeep_core::FieldError) -> Error {
    Error::Invalid(vec![e])
}

/// Appends the `workflow.restored` event that makes `now` into `past`.
fn restore_in(
    w: &crate::service::Writer<'_>,
    now: &Workflow,
    deleted: bool,
    past: &WorkflowVersion,
) -> Result<Workflow> {
    let mut spec = past.spec.clone();
    workflow::normalize(&mut spec);
    let changes = workflow::diff(&now.spec, &spec);
    // What was allowed when that version was written may not be now (a
    // rule added since): brought back as it was, every other device would
    // refuse it. What the restore changes is checked as an edit of it
    // would be; what it leaves as it is, as an edit leaves it.
    let changed = |field: &str| {
        changes
            .iter()
            .any(|c| c.field == field || c.field.starts_with(&format!("{field}.")))
    };
    let mut errors =
        workflow::check_fields(&spec.name, &spec.description, &spec.version, &spec.tags);
    errors.retain(|e| changed(e.field.split(['.', '[']).next().unwrap_or_default()));
    if changed("config") {
        match validate_config(&spec.config) {
            Err(Error::Invalid(e)) => errors.extend(e),
            other => other?,
        }
    }
    if !errors.is_empty() {
        for e in &mut errors {
            e.message = format!(
                "revision {} holds what is no longer allowed: {}",
                past.revision, e.message
            );
        }
        return Err(Error::Invalid(errors));
    }
    if changes.is_empty() && !deleted {
        return Ok(now.clone());
    }
    let event = Event::WorkflowRestored(WorkflowRestoredV1 {
        from_revision: past.revision,
        changes,
        undeleted: deleted,
    });
    w.append(&now.id, Expected::Version(now.revision), event)?;
    Ok(queries::workflows::get(w.conn, &now.id)?)
}

/// The version at `point`: `NotFound` when the workflow, the revision or
/// the run does not exist, or the workflow did not exist yet at that time.
/// Replays from the newest snapshot at or before the point (the projection
/// keeps one every `SNAPSHOT_EVERY` revisions), reading only the events
/// between it and the point.
pub(crate) fn version_at(c: &Connection, id: &str, point: &Point) -> Result<WorkflowVersion> {
    let point = match point {
        Point::Run(run_id) => run_point(c, id, run_id)?,
        p => p.clone(),
    };
    let latest = event_log::stream_version(c, id)?;
    if latest == 0 {
        return Err(Error::workflow_not_found(id));
    }
    let before = match point {
        Point::Revision(n) if n > latest => {
            return Err(Error::NotFound {
                entity: "revision",
                id: format!("{n} of workflow {id} (it is at revision {latest})"),
            })
        }
        Point::Revision(n) => Before::Revision(n),
        Point::Time(t) => Before::Time(t),
        Point::Run(_) => unreachable!("resolved above"),
    };
    let snapshot = queries::versions::latest(c, id, &before)?;
    let from = snapshot.as_ref().map_or(0, |s| s.revision);
    let mut r = Replay::from(snapshot);
    event_log::for_each_in_stream(c, id, from, |e| {
        if versions::is_after(&point, e.stream_version, e.recorded_at) {
            return Ok(false);
        }
        replay_one(&mut r, id, &e)?;
        Ok(true)
    })?;
    match (r.version(), &point) {
        (Some(v), _) => Ok(v.clone()),
        (None, Point::Time(t)) => Err(Error::NotFound {
            entity: "version",
            id: format!(
                "of workflow {id} at {} (it was created later)",
                chrono::DateTime::from_timestamp_millis(*t)
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_else(|| t.to_string())
            ),
        }),
        (None, _) => Err(Error::workflow_not_found(id)),
    }
}

/// A run's version: the revision it recorded when this device ran it;
/// otherwise (a run from another device, whose revisions are numbered
/// there, or one recorded before runs kept it) the version at its start.
fn run_point(c: &Connection, workflow_id: &str, run_id: &str) -> Result<Point> {
    let run = queries::runs::get(c, run_id)?;
    if run.workflow_id != workflow_id {
        return Err(Error::NotFound {
            entity: "run",
            id: format!(
                "{run_id} of workflow {workflow_id} (it is a run of workflow {})",
                run.workflow_id
            ),
        });
    }
    let here = event_log::meta_get(c, "device_id")?;
    match run.workflow_revision {
        Some(r) if here.as_deref() == Some(run.device_id.as_str()) => Ok(Point::Revision(r)),
        _ => Ok(Point::Time(run.started_at)),
    }
}

/// One stored event of the workflow's stream, replayed.
fn replay_one(
    r: &mut Replay,
    id: &str,
    e: &event_log::StoredEvent,
) -> std::result::Result<(), flowkeep_store::Error> {
    r.apply(
        id,
        Step {
            event: &e.event,
            revision: e.stream_version,
            recorded_at: e.recorded_at,
        },
    )
    .map_err(|m| flowkeep_store::Error::Corrupt(format!("workflow {id}: {m}")))
}

/// The latest version of the workflow that was not deleted, from a replay
/// of its whole history (for `undelete`, which is rare).
fn last_live(c: &Connection, id: &str) -> Result<Option<WorkflowVersion>> {
    let mut r = Replay::new();
    let mut live = None;
    event_log::for_each_in_stream(c, id, 0, |e| {
        replay_one(&mut r, id, &e)?;
        if let Some(v) = r.version().filter(|v| !v.deleted) {
            live = Some(v.clone());
        }
        Ok(true)
    })?;
    Ok(live)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use flowkeep_core::commands::*;
    use flowkeep_core::events::{Event, RemoteMergedV1};
    use flowkeep_core::versions::WorkflowVersion;
    use flowkeep_core::workflow::{FieldChange, WorkflowSpec};
    use proptest::prelude::*;
    use serde_json::json;

    use crate::Service;
    use flowkeep_store::queries;

    #[derive(Debug, Clone)]
    enum Op {
        Rename(u8),
        SetN(i64),
        Tag(u8),
        Delete,
        Undelete,
        Restore(u8),
        /// A change from another device, merged here.
        Remote(u8, bool),
        Approve,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => any::<u8>().prop_map(Op::Rename),
            3 => (0i64..100).prop_map(Op::SetN),
            1 => any::<u8>().prop_map(Op::Tag),
            1 => Just(Op::Delete),
            1 => Just(Op::Undelete),
            2 => any::<u8>().prop_map(Op::Restore),
            2 => (any::<u8>(), any::<bool>()).prop_map(|(n, d)| Op::Remote(n, d)),
            1 => Just(Op::Approve),
        ]
    }

    /// What the read tables hold for the workflow: the part a version has.
    fn projected(svc: &Service, id: &str) -> (WorkflowSpec, bool, u64) {
        svc.read(|c| {
            let l = queries::workflows::load(c, id)?.unwrap();
            Ok((l.workflow.spec, l.deleted, l.workflow.revision))
        })
        .unwrap()
    }

    fn apply(svc: &Service, id: &str, op: &Op) {
        let wf = svc.workflows();
        // Refusals (a change to a deleted workflow, ...) are part of the
        // history being random: they must append nothing.
        let _ = match op {
            Op::Rename(n) => wf
                .update(UpdateWorkflow {
                    id: id.into(),
                    name: Some(format!("name {n}")),
                    ..Default::default()
                })
                .map(drop),
            Op::SetN(n) => svc
                .configs()
                .set_value(SetConfigValue {
                    workflow_id: id.into(),
                    key: "n".into(),
                    value: json!(n),
                    expected_revision: None,
                })
                .map(drop),
            Op::Tag(n) => wf
                .update(UpdateWorkflow {
                    id: id.into(),
                    tags: Some(vec![format!("t{}", n % 4)]),
                    ..Default::default()
                })
                .map(drop),
            Op::Delete => wf
                .delete(DeleteWorkflow {
                    id: id.into(),
                    expected_revision: None,
                })
                .map(drop),
            Op::Undelete => wf
                .undelete(UndeleteWorkflow {
                    id: id.into(),
                    expected_revision: None,
                })
                .map(drop),
            Op::Restore(n) => {
                let (_, _, rev) = projected(svc, id);
                wf.restore(RestoreWorkflow {
                    id: id.into(),
                    to: (u64::from(*n) % rev + 1).to_string(),
                    expected_revision: None,
                })
                .map(drop)
            }
            Op::Remote(n, delete) => {
                let (spec, deleted, _) = projected(svc, id);
                svc.write(|w| {
                    let event = Event::RemoteMerged(RemoteMergedV1 {
                        changes: vec![FieldChange {
                            field: "description".into(),
                            old: json!(spec.description),
                            new: json!(format!("from elsewhere {n}")),
                        }],
                        created_at: None,
                        deleted: (*delete != deleted).then_some(*delete),
                        authors: vec![],
                        heads: vec![],
                        conflicts: vec![],
                    });
                    w.append_remote(id, event, "bob", "0190a4b2-0000-7000-8000-000000000002")?;
                    Ok(())
                })
            }
            Op::Approve => wf
                .approve(ApproveWorkflow {
                    id: id.into(),
                    expected_revision: None,
                })
                .map(drop),
        };
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The version at revision N is what the read tables held right
        /// after event N, for random histories with deletes, restores and
        /// merges from other devices.
        #[test]
        fn the_version_at_a_revision_is_the_projection_after_it(ops in proptest::collection::vec(op(), 1..25)) {
            let svc = Service::open_in_memory(Default::default()).unwrap();
            let id = svc
                .workflows()
                .create(CreateWorkflow {
                    name: "w".into(),
                    config: Some(json!({"fields": [{"key": "n", "type": "number"}], "values": {"n": 1}})),
                    ..Default::default()
                })
                .unwrap()
                .id;
            let mut seen: BTreeMap<u64, (WorkflowSpec, bool)> = BTreeMap::new();
            let (spec, deleted, rev) = projected(&svc, &id);
            seen.insert(rev, (spec, deleted));
            for op in &ops {
                apply(&svc, &id, op);
                let (spec, deleted, rev) = projected(&svc, &id);
                seen.insert(rev, (spec, deleted));
            }
            let last = *seen.keys().last().unwrap();
            for (rev, (spec, deleted)) in &seen {
                let v: WorkflowVersion = svc
                    .workflows()
                    .get_at(WorkflowAt { id: id.clone(), at: rev.to_string() })
                    .unwrap();
                prop_assert_eq!(&v.spec, spec, "revision {}", rev);
                prop_assert_eq!(v.deleted, *deleted, "revision {}", rev);
                prop_assert_eq!(v.revision, *rev);
            }
            let past = svc.workflows().get_at(WorkflowAt { id: id.clone(), at: (last + 1).to_string() });
            let not_found = matches!(past, Err(crate::Error::NotFound { .. }));
            prop_assert!(not_found, "a revision after the last is not found");
        }
    }

    /// Snapshots are a cache: a version read through one is the version a
    /// replay of the whole history gives, at, around and between them.
    #[test]
    fn versions_read_through_snapshots_equal_a_full_replay() {
        use flowkeep_core::versions::{is_after, Point, Replay};
        use flowkeep_store::queries::versions::SNAPSHOT_EVERY;
        let svc = Service::open_in_memory(Default::default()).unwrap();
        let id = svc
            .workflows()
            .create(CreateWorkflow {
                name: "w".into(),
                config: Some(json!({"fields": [{"key": "n", "type": "number"}]})),
                ..Default::default()
            })
            .unwrap()
            .id;
        let last = 2 * SNAPSHOT_EVERY + 7;
        for i in 2..=last {
            if i == SNAPSHOT_EVERY + 3 {
                svc.workflows()
                    .delete(DeleteWorkflow {
                        id: id.clone(),
                        expected_revision: None,
                    })
                    .unwrap();
            } else if i == SNAPSHOT_EVERY + 4 {
                svc.workflows()
                    .undelete(UndeleteWorkflow {
                        id: id.clone(),
                        expected_revision: None,
                    })
                    .unwrap();
            } else {
                svc.configs()
                    .set_value(SetConfigValue {
                        workflow_id: id.clone(),
                        key: "n".into(),
                        value: json!(i),
                        expected_revision: None,
                    })
                    .unwrap();
            }
        }
        let snapshots: i64 = svc
            .read(|c| Ok(c.query_row("SELECT count(*) FROM version_snapshots", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(snapshots, 2);
        let full = |point: &Point| -> Option<WorkflowVersion> {
            svc.read(|c| {
                let mut r = Replay::new();
                for e in flowkeep_store::event_log::read_stream(c, &id)? {
                    if is_after(point, e.stream_version, e.recorded_at) {
                        break;
                    }
                    super::replay_one(&mut r, &id, &e).unwrap();
                }
                Ok(r.version().cloned())
            })
            .unwrap()
        };
        let s = SNAPSHOT_EVERY;
        for rev in [
            1,
            s - 1,
            s,
            s + 1,
            s + 3,
            s + 4,
            2 * s - 1,
            2 * s,
            2 * s + 1,
            last,
        ] {
            let got = svc
                .workflows()
                .get_at(WorkflowAt {
                    id: id.clone(),
                    at: rev.to_string(),
                })
                .unwrap();
            assert_eq!(Some(got), full(&Point::Revision(rev)), "revision {rev}");
        }
        // By time too: the instant of revision 2s + 1.
        let t = svc
            .read(|c| {
                Ok(c.query_row(
                    "SELECT recorded_at FROM events WHERE stream_id = ?1 AND stream_version = ?2",
                    rusqlite::params![id, (2 * s + 1) as i64],
                    |r| r.get::<_, i64>(0),
                )?)
            })
            .unwrap();
        let at = chrono::DateTime::from_timestamp_millis(t)
            .unwrap()
            .to_rfc3339();
        let got = svc
            .workflows()
            .get_at(WorkflowAt { id: id.clone(), at })
            .unwrap();
        assert_eq!(Some(got), full(&Point::Time(t)));
    }

    fn service_with_workflow_a() -> (Service, String) {
        let svc = Service::open_in_memory(Default::default()).unwrap();
        let id = svc
            .workflows()
            .create(CreateWorkflow {
                name: "a".into(),
                ..Default::default()
            })
            .unwrap()
            .id;
        (svc, id)
    }

    /// A value written before a rule existed (here a 300-character version
    /// string, allowed until versions were held to 256) is not brought back
    /// by a restore (every other device would refuse it); what a restore
    /// leaves as it is, is not checked, as with an edit.
    #[test]
    fn restore_checks_what_it_brings_back_as_an_edit_would() {
        let (svc, id) = service_with_workflow_a();
        let wf = svc.workflows();
        let long = "1.0.0-".to_owned() + &"x".repeat(300);
        // As it was written before the rule.
        let set_version = |old: &str, new: &str| {
            svc.write(|w| {
                let event = Event::WorkflowUpdated(flowkeep_core::events::WorkflowChangedV1 {
                    changes: vec![FieldChange {
                        field: "version".into(),
                        old: json!(old),
                        new: json!(new),
                    }],
                });
                w.append(&id, flowkeep_store::event_log::Expected::Any, event)?;
                Ok(())
            })
            .unwrap()
        };
        set_version("1.0.0", &long);
        wf.update(UpdateWorkflow {
            id: id.clone(),
            version: Some("2.0.0".into()),
            ..Default::default()
        })
        .unwrap();
        let n = svc.latest_seq().unwrap();

        let refused = wf.restore(RestoreWorkflow {
            id: id.clone(),
            to: "2".into(),
            expected_revision: None,
        });
        let Err(crate::Error::Invalid(errors)) = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(errors[0].field, "version", "{errors:?}");
        assert!(
            errors[0]
                .message
                .starts_with("revision 2 holds what is no longer allowed"),
            "{errors:?}"
        );
        assert_eq!(svc.latest_seq().unwrap(), n, "nothing written");
        let back = wf
            .restore(RestoreWorkflow {
                id: id.clone(),
                to: "1".into(),
                expected_revision: None,
            })
            .unwrap();
        assert_eq!(
            back.spec.version, "1.0.0",
            "an allowed version still comes back"
        );

        // What a restore leaves as it is is not checked, as an edit does not
        // check what it leaves: revision 5 keeps the long version and
        // restores only the description.
        set_version("1.0.0", &long);
        wf.update(UpdateWorkflow {
            id: id.clone(),
            description: Some("later".into()),
            ..Default::default()
        })
        .unwrap();
        let back = wf
            .restore(RestoreWorkflow {
                id: id.clone(),
                to: "5".into(),
                expected_revision: None,
            })
            .unwrap();
        assert_eq!((back.spec.description.as_str(), back.revision), ("", 7));
    }

    #[test]
    fn restore_appends_one_event_and_refuses_what_it_cannot_do() {
        let (svc, id) = service_with_workflow_a();
        let wf = svc.workflows();
        wf.update(UpdateWorkflow {
            id: id.clone(),
            name: Some("b".into()),
            ..Default::default()
        })
        .unwrap();
        let events = || svc.latest_seq().unwrap();
        let n = events();
        let stale = wf.restore(RestoreWorkflow {
            id: id.clone(),
            to: "1".into(),
            expected_revision: Some(1),
        });
        assert!(matches!(stale, Err(crate::Error::Conflict(_))), "{stale:?}");
        let missing = wf.restore(RestoreWorkflow {
            id: id.clone(),
            to: "9".into(),
            expected_revision: None,
        });
        assert!(
            matches!(missing, Err(crate::Error::NotFound { .. })),
            "{missing:?}"
        );
        let bad = wf.restore(RestoreWorkflow {
            id: id.clone(),
            to: "last week".into(),
            expected_revision: None,
        });
        assert!(matches!(bad, Err(crate::Error::Invalid(_))), "{bad:?}");
        assert_eq!(events(), n, "refusals append nothing");

        let back = wf
            .restore(RestoreWorkflow {
                id: id.clone(),
                to: "1".into(),
                expected_revision: Some(2),
            })
            .unwrap();
        assert_eq!((back.spec.name.as_str(), back.revision), ("a", 3));
        assert_eq!(events(), n + 1);
        // Already that version: nothing more.
        wf.restore(RestoreWorkflow {
            id: id.clone(),
            to: "1".into(),
            expected_revision: None,
        })
        .unwrap();
        assert_eq!(events(), n + 1);

        let d = wf
            .diff(DiffWorkflow {
                id: id.clone(),
                from: "2".into(),
                to: None,
            })
            .unwrap();
        assert_eq!((d.from.revision, d.to.revision), (2, 3));
        assert_eq!(d.changes.len(), 1);
        assert_eq!(
            (&d.changes[0].old, &d.changes[0].new),
            (&json!("b"), &json!("a"))
        );

        // Deleted, listed as such, and back with the same spec.
        wf.delete(DeleteWorkflow {
            id: id.clone(),
            expected_revision: None,
        })
        .unwrap();
        let deleted = wf
            .list(ListWorkflows {
                deleted: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(deleted.items.len(), 1);
        assert!(wf.list(ListWorkflows::default()).unwrap().items.is_empty());
        let to_deleted = wf.restore(RestoreWorkflow {
            id: id.clone(),
            to: "4".into(),
            expected_revision: None,
        });
        assert!(
            matches!(to_deleted, Err(crate::Error::Invalid(_))),
            "{to_deleted:?}"
        );
        let back = wf
            .undelete(UndeleteWorkflow {
                id: id.clone(),
                expected_revision: None,
            })
            .unwrap();
        assert_eq!(back.spec.name, "a");
        assert_eq!(wf.list(ListWorkflows::default()).unwrap().items.len(), 1);
        let again = wf.undelete(UndeleteWorkflow {
            id: id.clone(),
            expected_revision: None,
        });
        assert!(matches!(again, Err(crate::Error::Invalid(_))), "{again:?}");
    }
}
