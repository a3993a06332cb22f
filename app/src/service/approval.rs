//! Per-device approval of what runs. A workflow's run spec and retention
//! policy decide what a job does and what gets deleted on this device, so a
//! change to them that arrived from another device takes effect here only
//! once this device approves it (`workflow.approved`, an audited event that
//! is never synced). Starting a run of an unapproved spec is refused.

use flowkeep_core::commands::{ApproveWorkflow, Input};
use flowkeep_core::events::{Event, WorkflowApprovedV1};
use flowkeep_core::workflow::{FieldChange, Workflow};
use rusqlite::Connection;

use super::{check_revision, WorkflowService};
use crate::{Error, Result};
use flowkeep_store::event_log::{self, Expected};
use flowkeep_store::queries;

impl WorkflowService<'_> {
    /// Approves the run spec and retention policy the workflow has now.
    /// Approving what is already approved appends nothing.
    pub fn approve(&self, mut input: ApproveWorkflow) -> Result<Workflow> {
        input.check()?;
        self.write(|w| {
            let wf = queries::workflows::get(w.conn, &input.id)?;
            check_revision(&wf, input.expected_revision)?;
            if wf.approval.approved {
                return Ok(wf);
            }
            let event = Event::WorkflowApproved(WorkflowApprovedV1 {
                run: wf.spec.config.run.clone(),
                retention: wf.spec.config.retention.clone(),
            });
            w.append(&wf.id, Expected::Version(wf.revision), event)?;
            Ok(queries::workflows::get(w.conn, &wf.id)?)
        })
    }
}

/// `Ok` when the workflow's run spec and retention are approved here;
/// otherwise the refusal, saying who changed what, where and when.
pub(crate) fn ensure_approved(conn: &Connection, wf: &Workflow) -> Result<()> {
    if wf.approval.approved {
        return Ok(());
    }
    let changes = wf.approval.approved_spec.unapproved_changes(&wf.spec);
    Err(Error::NotApproved(refusal(conn, wf, &changes)?))
}

fn refusal(conn: &Connection, wf: &Workflow, changes: &[FieldChange]) -> Result<String> {
    let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
    let mut msg = format!(
        "workflow \"{}\" ({}) will not run on this device: its {} changed on another device and this device has not approved the change.",
        wf.spec.name,
        wf.id,
        describe(&fields)
    );
    if let Some(by) = last_remote_change(conn, &wf.id, &fields)? {
        msg.push_str(&format!(" Changed by {by}."));
    }
    for c in changes {
        msg.push_str(&format!("\n  {}: {} → {}", c.field, c.old, c.new));
    }
    msg.push_str(&format!(
        "\nReview it, then approve it with `flowkeep workflow approve {}` (or Approve in the app).",
        wf.id
    ));
    Ok(msg)
}

fn describe(fields: &[&str]) -> String {
    let names: Vec<&str> = fields
        .iter()
        .map(|f| match *f {
            "config.run" => "run spec (config.run)",
            "config.retention" => "retention policy (config.retention)",
            other => other,
        })
        .collect();
    names.join(" and ")
}

/// "alice on device D at 2026-…": the authors of the latest merge that
/// changed one of `fields`.
fn last_remote_change(conn: &Connection, id: &str, fields: &[&str]) -> Result<Option<String>> {
    let events = event_log::read_stream(conn, id)?;
    for e in events.iter().rev() {
        let Event::RemoteMerged(p) = &e.event else {
            continue;
        };
        if !p.changes.iter().any(|c| fields.contains(&c.field.as_str())) {
            continue;
        }
        let when = chrono::DateTime::from_timestamp_millis(e.recorded_at)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| e.recorded_at.to_string());
        let who: Vec<String> = if p.authors.is_empty() {
            vec![format!("{} on device {}", e.actor, e.device_id)]
        } else {
            p.authors
                .iter()
                .map(|a| format!("{} on device {}", a.actor, a.device_id))
                .collect()
        };
        return Ok(Some(format!("{} (merged here {when})", who.join(", "))));
    }
    Ok(None)
}
