//! Schedules: list them, hand one to a device, preview when one falls, and
//! what the agent (`crate::agent`) reads and records.

use flowkeep_core::commands::Input;
use flowkeep_core::commands::{
    ListSchedules, OwnSchedule, PreviewSchedule, SchedulePreview, ScheduleRow, ScheduledRun,
};
use flowkeep_core::events::{Event, RunRecordedV1};
use flowkeep_core::run::RunStatus;
use flowkeep_core::schedule::Schedule;
use flowkeep_core::workflow::Workflow;
use flowkeep_core::FieldError;
use rusqlite::{params, Connection, OptionalExtension};

use super::{ChangeKind, ScheduleService};
use crate::{Error, Result};
use flowkeep_store::event_log::Expected;

/// A schedule as the agent needs it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub workflow_id: String,
    pub name: String,
    pub schedule: Schedule,
    /// Since when the schedule is in effect as it is (Unix ms).
    pub since: i64,
    /// Whether this device approved the run spec in effect.
    pub approved: bool,
    /// The latest occurrence recorded for the workflow (any device).
    pub last_occurrence: Option<i64>,
}

impl Entry {
    /// Where the next plan starts: nothing before the schedule took effect
    /// or at/before an occurrence already recorded.
    pub fn cursor(&self) -> i64 {
        self.last_occurrence
            .map_or(self.since, |o| o.max(self.since))
    }
}

impl ScheduleService<'_> {
    pub fn list(&self, mut input: ListSchedules) -> Result<Vec<ScheduleRow>> {
        input.check()?;
        let entries = self.read(|c| {
            if let Some(id) = &input.workflow_id {
                flowkeep_store::queries::workflows::get(c, id)?;
            }
            entries(c, input.workflow_id.as_deref())
        })?;
        let now = self.now_ms();
        let me = self.device_id();
        let mut rows = Vec::with_capacity(entries.len());
        for e in entries {
            let last_run = self.read(|c| last_run(c, &e.workflow_id))?;
            let compiled = e.schedule.compile().ok();
            let from = e.cursor().max(now);
            let next_run = compiled.as_ref().and_then(|c| {
                c.next_after(from - 1)
                    .map(|o| o + flowkeep_core::schedule::jitter_of(&e.schedule, &e.workflow_id, o))
            });
            let owner = e.schedule.owner.clone();
            let owned_here = owner.as_deref() == Some(me);
            let state = state(&e, owned_here, compiled.is_some());
            rows.push(ScheduleRow {
                describe: e.schedule.describe(),
                missed: e.schedule.missed,
                overlap: e.schedule.overlap,
                workflow_id: e.workflow_id,
                name: e.name,
                next_run: if e.schedule.paused { None } else { next_run },
                last_run,
                owner,
                owned_here,
                state,
                since: e.since,
                schedule: e.schedule,
            });
        }
        rows.sort_by(|a, b| {
            (a.next_run.is_none(), a.next_run, &a.name).cmp(&(
                b.next_run.is_none(),
                b.next_run,
                &b.name,
            ))
        });
        Ok(rows)
    }

    /// Hands the schedule to `device_id` (this device by default). Taking it
    /// here needs the run spec approved here: owning means running.
    pub fn own(&self, mut input: OwnSchedule) -> Result<Workflow> {
        input.check()?;
        let me = self.device_id().to_owned();
        let to = input.device_id.clone().unwrap_or_else(|| me.clone());
        let wf = self.read(|c| {
            Ok(flowkeep_store::queries::workflows::get(
                c,
                &input.workflow_id,
            )?)
        })?;
        if wf
            .spec
            .config
            .run
            .as_ref()
            .and_then(|r| r.schedule.as_ref())
            .is_none()
        {
            return Err(Error::invalid(
                "workflow_id",
                "no_schedule",
                format!("workflow {} has no schedule (config.run.schedule)", wf.id),
            ));
        }
        if to == me && !wf.approval.approved {
            return Err(Error::invalid(
                "workflow_id",
                "unapproved",
                format!(
                    "the run spec of workflow {} changed on another device and is not approved here: review it with `flowkeep workflow approve {}` first",
                    wf.id, wf.id
                ),
            ));
        }
        self.change_workflow(
            &input.workflow_id,
            input.expected_revision,
            ChangeKind::Config,
            |spec| {
                if let Some(s) = spec.config.run.as_mut().and_then(|r| r.schedule.as_mut()) {
                    s.owner = Some(to.clone());
                }
                Ok(())
            },
        )
    }

    pub fn preview(&self, mut input: PreviewSchedule) -> Result<SchedulePreview> {
        input.check()?;
        let schedule: Schedule = serde_json::from_value(input.schedule.clone()).map_err(|e| {
            Error::Invalid(vec![FieldError::new("schedule", "invalid", e.to_string())])
        })?;
        let problems = schedule.check("schedule");
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let c = schedule
            .compile()
            .map_err(|e| Error::invalid("schedule", "invalid", e))?;
        let from = input.from.unwrap_or_else(|| self.now_ms());
        Ok(SchedulePreview {
            times: c
                .after(from - 1)
                .take(input.count.unwrap_or(5) as usize)
                .collect(),
            describe: schedule.describe(),
        })
    }

    /// Every live workflow's schedule.
    pub(crate) fn entries(&self) -> Result<Vec<Entry>> {
        self.read(|c| entries(c, None))
    }

    /// The entries of these workflows (gone ones are left out).
    pub(crate) fn entries_of(&self, ids: &[String]) -> Result<Vec<Entry>> {
        self.read(|c| {
            let mut out = Vec::new();
            for id in ids {
                out.extend(entries(c, Some(id))?);
            }
            Ok(out)
        })
    }

    /// Workflows whose schedule or approval may have changed since event
    /// `seq` (not runs: the agent's own records do not make it reload), and
    /// the latest event's seq.
    pub(crate) fn changed_since(&self, seq: i64) -> Result<(Vec<String>, i64)> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT DISTINCT stream_id FROM events WHERE seq > ?1
                 AND kind NOT LIKE 'execution%'",
            )?;
            let ids = stmt
                .query_map([seq], |r| r.get(0))?
                .collect::<std::result::Result<Vec<String>, _>>()?;
            let last: i64 =
                c.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))?;
            Ok((ids, last))
        })
    }

    /// Records an occurrence as `skipped` with `reason`, unless it is
    /// already recorded. Returns whether this call recorded it.
    pub(crate) fn skip(&self, workflow_id: &str, occurrence: i64, reason: &str) -> Result<bool> {
        let id = uuid::Uuid::now_v7().to_string();
        self.write(|w| {
            if is_recorded(w.conn, workflow_id, occurrence)? {
                return Ok(false);
            }
            let event = Event::RunRecorded(RunRecordedV1 {
                workflow_id: workflow_id.to_owned(),
                status: RunStatus::Skipped,
                started_at: w.now,
                completed_at: w.now,
                trigger: "schedule".to_owned(),
                exit_code: None,
                output: None,
                error: Some(flowkeep_core::run::clip_error(reason)),
                workflow_revision: None,
                config_hash: None,
                occurrence: Some(occurrence),
            });
            w.append(&id, Expected::NoStream, event)?;
            Ok(true)
        })
    }

    /// Ids of this device's runs of the workflow still going.
    pub(crate) fn going(&self, workflow_id: &str) -> Result<Vec<String>> {
        let me = self.device_id().to_owned();
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id FROM executions WHERE workflow_id = ?1 AND device_id = ?2
                 AND status IN ('running', 'queued')",
            )?;
            let ids = stmt
                .query_map(params![workflow_id, me], |r| r.get(0))?
                .collect::<std::result::Result<Vec<String>, _>>()?;
            Ok(ids)
        })
    }
}

/// Whether any device recorded this occurrence of the workflow.
pub(crate) fn is_recorded(c: &Connection, workflow_id: &str, occurrence: i64) -> Result<bool> {
    Ok(c.prepare_cached(
        "SELECT 1 FROM executions WHERE workflow_id = ?1 AND occurrence = ?2 LIMIT 1",
    )?
    .query_row(params![workflow_id, occurrence], |_| Ok(()))
    .optional()?
    .is_some())
}

fn entries(c: &Connection, only: Option<&str>) -> Result<Vec<Entry>> {
    let mut stmt = c.prepare_cached(
        "SELECT s.workflow_id, w.name, s.schedule, s.since, w.approved,
           (SELECT max(occurrence) FROM executions x WHERE x.workflow_id = s.workflow_id
              AND x.occurrence IS NOT NULL)
         FROM schedules s JOIN workflows w ON w.id = s.workflow_id AND w.deleted = 0
         WHERE ?1 IS NULL OR s.workflow_id = ?1",
    )?;
    let rows = stmt.query_map([only], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, bool>(4)?,
            r.get::<_, Option<i64>>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (workflow_id, name, text, since, approved, last_occurrence) = row?;
        // Stored by the projection from a validated config; a row that no
        // longer reads (an older version's schedule) is left out, not fatal.
        let Ok(schedule) = serde_json::from_str::<Schedule>(&text) else {
            tracing::warn!(workflow = %workflow_id, "a stored schedule does not read; skipped");
            continue;
        };
        out.push(Entry {
            workflow_id,
            name,
            schedule,
            since,
            approved,
            last_occurrence,
        });
    }
    Ok(out)
}

fn last_run(c: &Connection, workflow_id: &str) -> Result<Option<ScheduledRun>> {
    Ok(c.prepare_cached(
        "SELECT id, occurrence, status FROM executions
             WHERE workflow_id = ?1 AND occurrence IS NOT NULL
             ORDER BY occurrence DESC LIMIT 1",
    )?
    .query_row([workflow_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
        ))
    })
    .optional()?
    .and_then(|(run_id, occurrence, status)| {
        Some(ScheduledRun {
            run_id,
            occurrence,
            status: RunStatus::parse(&status)?,
        })
    }))
}

fn state(e: &Entry, owned_here: bool, valid: bool) -> String {
    if !valid {
        return "invalid".to_owned();
    }
    if e.schedule.paused {
        return "paused".to_owned();
    }
    match &e.schedule.owner {
        None => "no owner: runs nowhere (flowkeep schedule own)".to_owned(),
        Some(o) if !owned_here => format!("runs on {o}"),
        Some(_) if !e.approved => "waiting for approval here".to_owned(),
        Some(_) => "runs here".to_owned(),
    }
}
