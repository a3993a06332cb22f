//! Workspace settings and retention: the global policy is an event-sourced
//! setting; a workflow's own policy lives in its config document.

use flowkeep_core::commands::{
    ApplyRetention, GetSettings, Input, PruneReport, RunFilter, SetRetention, Settings,
};
use flowkeep_core::config::RetentionPolicy;
use flowkeep_core::events::{Event, SettingsUpdatedV1};
use flowkeep_core::workflow::FieldChange;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

use super::{ChangeKind, SettingsService};
use crate::{Error, Result};
use flowkeep_store::event_log::Expected;
use flowkeep_store::queries;

const SETTINGS_STREAM: &str = "settings";

impl SettingsService<'_> {
    pub fn get(&self, mut input: GetSettings) -> Result<Settings> {
        input.check()?;
        self.read(load_settings)
    }

    /// Sets (or, with an empty policy, removes) a workflow's retention
    /// policy, or the global one.
    pub fn set_retention(&self, mut input: SetRetention) -> Result<Settings> {
        input.check()?;
        let prefix = if input.workflow_id.is_some() {
            "policy"
        } else {
            "retention"
        };
        // Limits that overflow are malformed input (HTTP 400), not a policy.
        let overflow = input.policy.check_range(prefix);
        if !overflow.is_empty() {
            return Err(Error::InvalidInput(overflow));
        }
        let problems = input.policy.check(prefix);
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        match input.workflow_id {
            Some(id) => {
                let policy = input.policy;
                self.change_workflow(&id, None, ChangeKind::Config, |spec| {
                    spec.config.retention = (!policy.is_empty()).then(|| policy.clone());
                    Ok(())
                })?;
                self.read(load_settings)
            }
            None => self.write(|w| {
                let old = load_settings(w.conn)?.retention;
                let changes = policy_changes(&old, &input.policy);
                if !changes.is_empty() {
                    w.append(
                        SETTINGS_STREAM,
                        Expected::Any,
                        Event::SettingsUpdated(SettingsUpdatedV1 { changes }),
                    )?;
                }
                load_settings(w.conn)
            }),
        }
    }

    /// Applies each workflow's effective policy (its own, else the global
    /// one) now, each workflow in bounded batches like a manual prune.
    pub fn apply_retention(&self, input: ApplyRetention) -> Result<PruneReport> {
        self.apply_retention_with(input, &AtomicBool::new(false), &mut |_| {})
    }

    /// `apply_retention`, telling `on_batch` the runs deleted so far;
    /// setting `stop` ends it after the current batch.
    pub fn apply_retention_with(
        &self,
        mut input: ApplyRetention,
        stop: &AtomicBool,
        on_batch: &mut dyn FnMut(u64),
    ) -> Result<PruneReport> {
        input.check()?;
        let now = self.clock.now_ms();
        // Where each policy cuts, read first; a run recorded meanwhile only
        // makes a count limit keep one more.
        let cuts: Vec<RunFilter> = self.read(|c| {
            let global = load_settings(c)?.retention;
            let ids: Vec<String> = match &input.workflow_id {
                Some(id) => {
                    queries::workflows::get(c, id)?;
                    vec![id.clone()]
                }
                None => workflows_with_runs(c)?,
            };
            let mut cuts = Vec::new();
            for id in ids {
                // The policy this device approved: one changed on another
                // device deletes nothing here until it is approved.
                let own = queries::workflows::load(c, &id)?
                    .and_then(|l| l.workflow.approval.approved_spec.retention);
                let policy = own.unwrap_or_else(|| global.clone());
                if let Some(until) = policy_cut(c, &id, &policy, now)? {
                    cuts.push(RunFilter {
                        workflow_id: Some(id),
                        until: Some(until),
                        ..Default::default()
                    });
                }
            }
            Ok(cuts)
        })?;
        let mut deleted = 0;
        for cut in cuts {
            let before = deleted;
            deleted += self
                .runs()
                .prune_batched(&cut, "retention", stop, &mut |n| on_batch(before + n))?;
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        Ok(PruneReport { deleted })
    }
}

fn load_settings(c: &Connection) -> Result<Settings> {
    let get = |key: &str| -> Result<Option<Value>> {
        let raw: Option<String> = c
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        Ok(raw.map(|r| serde_json::from_str(&r)).transpose()?)
    };
    Ok(Settings {
        retention: RetentionPolicy {
            max_age: get("retention.max_age")?.and_then(|v| v.as_str().map(str::to_owned)),
            max_count: get("retention.max_count")?.and_then(|v| v.as_u64()),
        },
    })
}

fn policy_changes(old: &RetentionPolicy, new: &RetentionPolicy) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let pairs = [
        (
            "retention.max_age",
            Value::from(old.max_age.clone()),
            Value::from(new.max_age.clone()),
        ),
        (
            "retention.max_count",
            Value::from(old.max_count),
            Value::from(new.max_count),
        ),
    ];
    for (field, o, n) in pairs {
        if o != n {
            out.push(FieldChange {
                field: field.to_owned(),
                old: o,
                new: n,
            });
        }
    }
    out
}

/// Workflows (deleted or not) that have finished runs.
fn workflows_with_runs(c: &Connection) -> Result<Vec<String>> {
    let mut stmt = c.prepare("SELECT DISTINCT workflow_id FROM executions ORDER BY workflow_id")?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(ids)
}

/// Where a policy cuts: runs that started before the returned instant go.
/// Age is "now - max_age"; count is "the oldest run to keep" (runs sharing
/// that instant are all kept); with both, the later of the two.
fn policy_cut(
    c: &Connection,
    workflow_id: &str,
    policy: &RetentionPolicy,
    now: i64,
) -> Result<Option<i64>> {
    // A policy may come from another device or an older version: limits
    // whose arithmetic would overflow delete nothing rather than wrap into
    // "delete everything".
    let by_age = policy
        .max_age_ms()
        .filter(|&ms| ms > 0)
        .and_then(|ms| i64::try_from(ms).ok())
        .and_then(|ms| now.checked_sub(ms));
    let offset = policy
        .max_count
        .and_then(|keep| keep.checked_sub(1))
        .and_then(|n| i64::try_from(n).ok());
    let by_count = match offset {
        Some(offset) => c
            .prepare_cached(
                "SELECT started_at FROM executions WHERE workflow_id = ?1
                 AND status IN ('succeeded', 'failed', 'cancelled')
                 ORDER BY started_at DESC, id DESC LIMIT 1 OFFSET ?2",
            )?
            .query_row(rusqlite::params![workflow_id, offset], |r| r.get(0))
            .optional()?,
        None => None,
    };
    Ok(by_age.max(by_count))
}
