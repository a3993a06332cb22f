//! What changed since a point in the event log: enough for a live view to
//! know what to read again, whichever process wrote it (the CLI, a job, a
//! sync merge).

use serde::Serialize;

use super::Service;
use crate::Result;

/// One event, as a live view needs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The event's place in this device's log.
    pub seq: i64,
    /// `workflow.updated`, `execution.finished`, `remote.merged`, ...
    pub kind: String,
    /// The workflow it concerns, when it concerns one.
    pub workflow_id: Option<String>,
    /// The run it concerns, for `execution.*` events.
    pub run_id: Option<String>,
}

impl Service {
    /// The newest event's seq (0 for an empty log).
    pub fn latest_seq(&self) -> Result<i64> {
        self.read(
            |c| Ok(c.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))?),
        )
    }

    /// The events after `after`, oldest first, at most `limit`.
    pub fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>> {
        self.read(|c| {
            // Runs name their workflow in the payload, except a finish,
            // which names only the run.
            let mut stmt = c.prepare_cached(
                "SELECT seq, kind, stream_id,
                        json_extract(payload, '$.workflow_id'),
                        (SELECT workflow_id FROM executions WHERE id = events.stream_id)
                 FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(rusqlite::params![after, limit], |r| {
                let kind: String = r.get(1)?;
                let stream: String = r.get(2)?;
                let in_payload: Option<String> = r.get(3).ok().flatten();
                let of_run: Option<String> = r.get(4)?;
                let run = kind.starts_with("execution.");
                let workflow_id = if run {
                    in_payload.or(of_run)
                } else if kind.starts_with("workflow.")
                    || kind.starts_with("config.")
                    || kind.starts_with("remote.")
                {
                    Some(stream.clone())
                } else {
                    in_payload
                };
                Ok(Change {
                    seq: r.get(0)?,
                    kind,
                    workflow_id,
                    run_id: run.then_some(stream),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use flowkeep_core::commands::*;
    use flowkeep_core::run::RunStatus;

    use crate::Service;

    #[test]
    fn changes_name_the_workflow_and_run_they_concern() {
        let svc = Service::open_in_memory(Default::default()).unwrap();
        let start = svc.latest_seq().unwrap();
        let wf = svc
            .workflows()
            .create(CreateWorkflow {
                name: "w".into(),
                ..Default::default()
            })
            .unwrap();
        let run = svc
            .runs()
            .start(StartRun {
                workflow_id: wf.id.clone(),
                ..Default::default()
            })
            .unwrap();
        svc.runs()
            .finish(FinishRun {
                id: run.id.clone(),
                status: RunStatus::Succeeded,
                exit_code: Some(0),
                output: None,
                error: None,
            })
            .unwrap();
        let changes = svc.changes_since(start, 10).unwrap();
        let seen: Vec<(&str, Option<&str>, Option<&str>)> = changes
            .iter()
            .map(|c| {
                (
                    c.kind.as_str(),
                    c.workflow_id.as_deref(),
                    c.run_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("workflow.created", Some(wf.id.as_str()), None),
                (
                    "execution.started",
                    Some(wf.id.as_str()),
                    Some(run.id.as_str())
                ),
                (
                    "execution.finished",
                    Some(wf.id.as_str()),
                    Some(run.id.as_str())
                ),
            ]
        );
        assert_eq!(svc.latest_seq().unwrap(), changes[2].seq);
        assert!(svc.changes_since(changes[2].seq, 10).unwrap().is_empty());
        assert_eq!(svc.changes_since(start, 1).unwrap().len(), 1, "bounded");
    }
}
