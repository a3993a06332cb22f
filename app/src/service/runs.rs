use flowkeep_core::commands::{
    Deleted, FinishRun, ImportReport, ImportRuns, Input, ListRuns, Page, PruneReport, RunCount,
    RunFilter, RunId, StartRun,
};
use flowkeep_core::events::{
    Event, RunDeletedV1, RunFinishedV1, RunRecordedV1, RunStartedV1, RunsPrunedV1,
};
use flowkeep_core::run::{Run, RunStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{params_from_iter, Connection};

use super::{RunService, Writer};
use crate::{Error, Result};
use flowkeep_store::event_log::Expected;
use flowkeep_store::queries;

impl RunService<'_> {
    /// Records the start of a run (`running`, or `queued`).
    pub fn start(&self, input: StartRun) -> Result<Run> {
        self.start_occurrence(input, None)
    }

    /// `start`, for a schedule's occurrence: refused with a conflict when
    /// the occurrence is already recorded (by another agent, before a
    /// restart), checked in the transaction that records the start.
    pub(crate) fn start_occurrence(
        &self,
        mut input: StartRun,
        occurrence: Option<i64>,
    ) -> Result<Run> {
        input.check()?;
        let status = input.status.unwrap_or(RunStatus::Running);
        if status.is_terminal() {
            return Err(Error::invalid(
                "status",
                "options",
                "a run starts as queued or running",
            ));
        }
        let id = uuid::Uuid::now_v7().to_string();
        self.write(|w| {
            // Checked in the same transaction that records the start: every
            // front end and runner starts runs here.
            let wf = queries::workflows::get(w.conn, &input.workflow_id)?;
            super::ensure_approved(w.conn, &wf)?;
            if let Some(o) = occurrence {
                if super::schedules::is_recorded(w.conn, &wf.id, o)? {
                    return Err(Error::Conflict(format!(
                        "occurrence {o} of workflow {} is already recorded",
                        wf.id
                    )));
                }
            }
            let event = Event::RunStarted(RunStartedV1 {
                workflow_id: input.workflow_id.clone(),
                status,
                started_at: w.now,
                trigger: input.trigger.clone().unwrap_or_else(|| "manual".to_owned()),
                workflow_revision: Some(wf.revision),
                config_hash: Some(flowkeep_core::run::config_hash(
                    &wf.spec.config.effective_values(),
                )),
                occurrence,
            });
            w.append(&id, Expected::NoStream, event)?;
            Ok(queries::runs::get(w.conn, &id)?)
        })
    }

    /// Records how a run ended. Status only moves forward: finishing a run
    /// twice is a conflict.
    pub fn finish(&self, mut input: FinishRun) -> Result<Run> {
        input.check()?;
        let mut problems =
            flowkeep_core::run::check_outcome("", input.exit_code, input.output.as_ref());
        if !input.status.is_terminal() {
            problems.insert(
                0,
                flowkeep_core::FieldError::new(
                    "status",
                    "options",
                    "a run finishes as succeeded, failed, cancelled or skipped",
                ),
            );
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        self.write(|w| {
            let current = queries::runs::get(w.conn, &input.id)?;
            if !current.status.can_move_to(input.status) {
                return Err(Error::Conflict(format!(
                    "run {} is already {}; status only moves forward",
                    current.id, current.status
                )));
            }
            let event = Event::RunFinished(RunFinishedV1 {
                status: input.status,
                completed_at: w.now.max(current.started_at),
                exit_code: input.exit_code,
                output: input.output.clone(),
                error: input.error.clone(),
            });
            w.append(&input.id, Expected::Any, event)?;
            Ok(queries::runs::get(w.conn, &input.id)?)
        })
    }

    /// Records finished runs in bulk, in one transaction, each as one
    /// `execution.recorded` event. Any invalid entry rejects the whole import.
    pub fn import(&self, mut input: ImportRuns) -> Result<ImportReport> {
        input.check()?;
        let mut problems = Vec::new();
        for (i, e) in input.runs.iter().enumerate() {
            if !e.status.is_terminal() {
                problems.push(flowkeep_core::FieldError::new(
                    format!("runs[{i}].status"),
                    "options",
                    "an imported run is succeeded, failed, cancelled or skipped",
                ));
            }
            problems.extend(flowkeep_core::run::check_outcome(
                &format!("runs[{i}]."),
                e.exit_code,
                e.output.as_ref(),
            ));
            // From 1970 to a day ahead of this clock: what every other device
            // takes from this one's log (`remote::check_run`), and far inside
            // what a date can be (past it, `completed_at - started_at` would
            // not fit a duration column and every listing would fail).
            let latest = self
                .now_ms()
                .saturating_add(flowkeep_core::remote::MAX_CLOCK_AHEAD_MS);
            for (name, t) in [
                ("started_at", e.started_at),
                ("completed_at", e.completed_at),
            ] {
                if !(0..=latest).contains(&t) {
                    problems.push(flowkeep_core::FieldError::new(
                        format!("runs[{i}].{name}"),
                        "range",
                        "a date from 1970 to a day ahead of now, in Unix milliseconds",
                    ));
                }
            }
            if e.completed_at < e.started_at {
                problems.push(flowkeep_core::FieldError::new(
                    format!("runs[{i}].completed_at"),
                    "range",
                    "must not be before started_at",
                ));
            }
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let count = input.runs.len() as u64;
        self.write(|w| {
            let mut known = std::collections::HashSet::new();
            for e in input.runs {
                if !known.contains(&e.workflow_id) {
                    queries::workflows::get(w.conn, &e.workflow_id)?;
                    known.insert(e.workflow_id.clone());
                }
                let id = uuid::Uuid::now_v7().to_string();
                let recorded = Event::RunRecorded(RunRecordedV1 {
                    workflow_id: e.workflow_id,
                    status: e.status,
                    started_at: e.started_at,
                    completed_at: e.completed_at,
                    trigger: e.trigger.unwrap_or_else(|| "import".to_owned()),
                    exit_code: e.exit_code,
                    output: e.output,
                    error: e.error,
                    // What an imported run ran is not known.
                    workflow_revision: None,
                    config_hash: None,
                    occurrence: None,
                });
                w.append(&id, Expected::NoStream, recorded)?;
            }
            Ok(ImportReport { imported: count })
        })
    }

    pub fn get(&self, mut input: RunId) -> Result<Run> {
        input.check()?;
        self.read(|c| Ok(queries::runs::get(c, &input.id)?))
    }

    pub fn list(&self, mut input: ListRuns) -> Result<Page<Run>> {
        input.check()?;
        self.read(|c| {
            if let Some(w) = &input.filter.workflow_id {
                // A deleted workflow's runs stay listable; an unknown id is an error.
                if queries::workflows::load(c, w)?.is_none() {
                    return Err(Error::workflow_not_found(w));
                }
            }
            Ok(queries::runs::list(
                c,
                &input.filter,
                input.limit,
                input.cursor.as_deref(),
            )?)
        })
    }

    /// How many runs the filter matches (`count_runs`).
    pub fn count(&self, mut input: RunFilter) -> Result<RunCount> {
        input.check()?;
        let count = self.read(|c| Ok(queries::runs::count(c, &input)?))?;
        Ok(RunCount { count })
    }

    pub fn delete(&self, mut input: RunId) -> Result<Deleted> {
        input.check()?;
        let deleted = self.write(|w| {
            let current = queries::runs::get(w.conn, &input.id)?;
            w.append(
                &input.id,
                Expected::Any,
                Event::RunDeleted(RunDeletedV1 {
                    workflow_id: current.workflow_id,
                }),
            )?;
            Ok(Deleted {
                id: input.id.clone(),
                deleted: true,
            })
        })?;
        self.remove_run_dirs(std::slice::from_ref(&input.id));
        Ok(deleted)
    }

    /// How many finished runs a prune with this filter would delete.
    pub fn prune_preview(&self, input: &RunFilter) -> Result<u64> {
        self.read(|c| count_prunable(c, input))
    }

    /// Deletes the finished runs a filter matches (`until` required), in
    /// batches.
    pub fn prune(&self, input: RunFilter) -> Result<PruneReport> {
        self.runs()
            .prune_with(input, &AtomicBool::new(false), &mut |_| {})
    }

    /// `prune_runs` in bounded batches, each its own transaction and
    /// `executions.pruned` event (its filter with the batch's bound), so no
    /// other writer waits for more than one batch; the first deletes about
    /// `PRUNE_BATCH` runs, the next ones as many as take about 40 ms here. `on_batch` gets the runs deleted so far; setting `stop`
    /// ends it after the current batch, keeping what was committed.
    pub fn prune_with(
        &self,
        mut input: RunFilter,
        stop: &AtomicBool,
        on_batch: &mut dyn FnMut(u64),
    ) -> Result<PruneReport> {
        input.check()?;
        input.prune_until()?;
        if let Some(wf) = &input.workflow_id {
            if self
                .read(|c| Ok(queries::workflows::load(c, wf)?))?
                .is_none()
            {
                return Err(Error::workflow_not_found(wf));
            }
        }
        let deleted = self.prune_batched(&input, "manual", stop, &mut |n| on_batch(n))?;
        Ok(PruneReport { deleted })
    }

    /// Deletes what `input` matches in batches (see `prune_with`);
    /// returns how many. `on_batch` gets the count so far.
    pub(crate) fn prune_batched(
        &self,
        input: &RunFilter,
        reason: &str,
        stop: &AtomicBool,
        on_batch: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        let mut deleted = 0;
        let mut size = PRUNE_BATCH;
        loop {
            let bound = self.read(|c| batch_bound(c, input, size))?;
            let batch = RunFilter {
                until: bound.or(input.until),
                ..input.clone()
            };
            let t = Instant::now();
            let pruned = self.write(|w| prune_in(w, &batch, reason))?;
            let took = t.elapsed();
            size = next_batch_size(size, took);
            deleted += self.pruned(pruned).deleted;
            on_batch(deleted);
            if bound.is_none() || stop.load(Ordering::Relaxed) {
                return Ok(deleted);
            }
            // The batch's pages go back into the database file now, so the
            // WAL starts again before the next batch. Left to the background
            // checkpointer, with other writes every few ms the WAL never
            // started again; it grew to the backstop, and a batch's commit
            // then checkpointed it holding the write lock (150-580 ms
            // instead of 25; README, "Performance").
            self.checkpoint_now();
            // A writer waiting for the lock gets it before the next batch
            // (the lock is not fair).
            std::thread::sleep(took.min(PRUNE_BATCH_TIME));
        }
    }

    /// The report of a committed prune, once its run directories are gone.
    pub(crate) fn pruned(&self, pruned: Pruned) -> PruneReport {
        self.remove_run_dirs(&pruned.local_ids);
        PruneReport {
            deleted: pruned.deleted,
        }
    }
}

/// How many runs the first prune transaction deletes: ~20 µs a run here,
/// so a batch holds the write lock for tens of milliseconds.
pub const PRUNE_BATCH: u64 = 2_000;
/// What one prune transaction aims to take: later batches grow or shrink
/// so that each takes about this long on this machine, whatever its disk.
const PRUNE_BATCH_TIME: Duration = Duration::from_millis(40);
const PRUNE_BATCH_MIN: u64 = 100;
pub const PRUNE_BATCH_MAX: u64 = 20_000;

/// The size of the next batch after one of `size` runs took `took`: scaled
/// toward `PRUNE_BATCH_TIME`, at most doubling (one fast batch proves
/// little), within bounds.
fn next_batch_size(size: u64, took: Duration) -> u64 {
    let took_us = took.as_micros().max(1) as u64;
    let target_us = PRUNE_BATCH_TIME.as_micros() as u64;
    let scaled = size.saturating_mul(target_us) / took_us;
    scaled
        .min(size.saturating_mul(2))
        .clamp(PRUNE_BATCH_MIN, PRUNE_BATCH_MAX)
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[test]
    fn batches_grow_and_shrink_toward_the_target_time_within_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(next_batch_size(2_000, ms(40)), 2_000, "on target");
        assert_eq!(next_batch_size(2_000, ms(80)), 1_000, "too slow: halved");
        assert_eq!(next_batch_size(2_000, ms(400)), 200);
        assert_eq!(next_batch_size(2_000, ms(10_000)), PRUNE_BATCH_MIN);
        assert_eq!(
            next_batch_size(2_000, ms(1)),
            4_000,
            "fast: at most doubled"
        );
        assert_eq!(next_batch_size(PRUNE_BATCH_MAX, ms(1)), PRUNE_BATCH_MAX);
        assert_eq!(next_batch_size(2_000, Duration::ZERO), 4_000);
    }
}

/// The `until` bound that deletes the oldest `batch` runs the prune would
/// delete (more when several started at the same instant), or `None` when
/// no more than `batch` are left.
fn batch_bound(c: &Connection, input: &RunFilter, batch: u64) -> Result<Option<i64>> {
    let (where_sql, args) = queries::runs::prune_filter_sql(input);
    let nth: Option<i64> = c
        .prepare_cached(&format!(
            "SELECT started_at FROM executions {where_sql} ORDER BY started_at, id LIMIT 1 OFFSET {}",
            batch.saturating_sub(1)
        ))?
        .query_map(params_from_iter(args), |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?
        .first()
        .copied();
    // Only a bound below `until` makes a batch; runs at the last instant
    // of a batch go with it (started_at + 1).
    let until = input.prune_until()?;
    Ok(nth.and_then(|t| t.checked_add(1)).filter(|&b| b < until))
}

/// What a prune deleted: how many runs, and which of them ran on this
/// device (only those can have a run directory here).
#[derive(Default)]
pub(crate) struct Pruned {
    pub deleted: u64,
    pub local_ids: Vec<String>,
}

/// Appends one `executions.pruned` event for the matching finished runs, if
/// there are any, inside the caller's transaction. The caller removes the
/// run directories once the transaction committed (`Service::pruned`).
pub(crate) fn prune_in(w: &Writer<'_>, input: &RunFilter, reason: &str) -> Result<Pruned> {
    let until = input.prune_until()?;
    let (where_sql, args) = queries::runs::prune_filter_sql(input);
    let mut pruned = Pruned::default();
    {
        let mut stmt = w
            .conn
            .prepare_cached(&format!("SELECT id, device_id FROM executions {where_sql}"))?;
        let mut rows = stmt.query(params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            pruned.deleted += 1;
            if r.get_ref(1)?.as_str().ok() == Some(w.device_id) {
                pruned.local_ids.push(r.get(0)?);
            }
        }
    }
    let deleted = pruned.deleted;
    if deleted > 0 {
        let event = Event::RunsPruned(RunsPrunedV1 {
            workflow_id: input.workflow_id.clone(),
            status: input.status,
            since: input.since,
            before: until,
            deleted,
            reason: Some(reason.to_owned()),
        });
        w.append(
            &format!("prune/{}", uuid::Uuid::now_v7()),
            Expected::NoStream,
            event,
        )?;
    }
    Ok(pruned)
}

fn count_prunable(c: &rusqlite::Connection, input: &RunFilter) -> Result<u64> {
    let (where_sql, args) = queries::runs::prune_filter_sql(input);
    let n: i64 = c
        .prepare_cached(&format!("SELECT count(*) FROM executions {where_sql}"))?
        .query_row(params_from_iter(args), |r| r.get(0))?;
    Ok(n as u64)
}
