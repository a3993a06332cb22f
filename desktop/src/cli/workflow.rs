//! `flowkeep workflow …` and `flowkeep config …`.

use flowkeep_app::commands::*;
use flowkeep_app::{call, Service};
use flowkeep_core::commands::*;

use super::args::{ConfigCmd, MatchArg, PreferArg, SortArg, WorkflowCmd};
use serde_json::Value;

use super::{done, json_arg, render, Out, Rendered};

pub(super) fn workflow(svc: &Service, c: WorkflowCmd) -> Out {
    match c {
        WorkflowCmd::Create {
            name,
            description,
            version,
            tags,
            config,
        } => {
            let config = config
                .as_deref()
                .map(|c| json_arg("config", c))
                .transpose()?;
            let wf = call::<CreateWorkflowCmd>(
                svc,
                CreateWorkflow {
                    name,
                    description,
                    version,
                    tags,
                    config,
                },
            )?;
            done(
                &wf,
                format!("Created workflow {}\n{}", wf.id, render::workflow(&wf)),
            )
        }
        WorkflowCmd::Update {
            id,
            name,
            description,
            version,
            tags,
            clear_tags,
            config,
            expected_revision,
        } => {
            let config = config
                .as_deref()
                .map(|c| json_arg("config", c))
                .transpose()?;
            let tags = if clear_tags {
                Some(vec![])
            } else if tags.is_empty() {
                None
            } else {
                Some(tags)
            };
            let input = UpdateWorkflow {
                id,
                expected_revision,
                name,
                description,
                version,
                tags,
                config,
            };
            let wf = call::<UpdateWorkflowCmd>(svc, input)?;
            done(&wf, render::workflow(&wf))
        }
        WorkflowCmd::Get { id, at: None } => {
            let wf = call::<GetWorkflowCmd>(svc, WorkflowId { id })?;
            done(&wf, render::workflow(&wf))
        }
        WorkflowCmd::Get { id, at: Some(at) } => {
            let at = point_arg("at", &at)?;
            let v = call::<WorkflowAtCmd>(svc, WorkflowAt { id, at })?;
            done(&v, render::workflow_version(&v))
        }
        WorkflowCmd::Diff { id, from, to } => {
            let from = point_arg("from", &from)?;
            let to = to.map(|t| point_arg("to", &t)).transpose()?;
            let d = call::<DiffWorkflowCmd>(svc, DiffWorkflow { id, from, to })?;
            done(&d, render::workflow_diff(&d))
        }
        WorkflowCmd::Restore {
            id,
            to,
            expected_revision,
        } => {
            let to = point_arg("to", &to)?;
            let before = call::<GetWorkflowCmd>(svc, WorkflowId { id: id.clone() }).ok();
            let wf = call::<RestoreWorkflowCmd>(
                svc,
                RestoreWorkflow {
                    id,
                    to: to.clone(),
                    expected_revision,
                },
            )?;
            let said = if before.is_some_and(|b| b.revision == wf.revision) {
                format!(
                    "Workflow {} already is the version at {to}; nothing restored.\n",
                    wf.id
                )
            } else {
                format!(
                    "Restored workflow {} to the version at {to} (now revision {}).\n",
                    wf.id, wf.revision
                )
            };
            done(&wf, format!("{said}{}", render::workflow(&wf)))
        }
        WorkflowCmd::Export {
            dir,
            search,
            tag,
            ids,
        } => {
            let out = call::<ExportWorkflowsCmd>(
                svc,
                ExportWorkflows {
                    dir,
                    search,
                    tag,
                    ids,
                },
            )?;
            done(&out, render::exported(&out))
        }
        WorkflowCmd::Import {
            dir,
            files,
            match_by,
            prefer,
            dry_run,
        } => {
            let report = call::<ImportWorkflowsCmd>(
                svc,
                ImportWorkflows {
                    dir,
                    files,
                    match_by: match match_by {
                        MatchArg::Id => MatchBy::Id,
                        MatchArg::Name => MatchBy::Name,
                    },
                    prefer: prefer.map(|p| match p {
                        PreferArg::File => flowkeep_core::files::Prefer::File,
                        PreferArg::Local => flowkeep_core::files::Prefer::Local,
                    }),
                    dry_run,
                },
            )?;
            let conflicted = report
                .items
                .iter()
                .any(|i| i.action == ImportAction::Conflict);
            let out = done(&report, render::imported(&report))?;
            // Conflicts stop those workflows: say so in the exit code.
            Ok(out.map(|r| {
                if conflicted {
                    Rendered { exit: 5, ..r }
                } else {
                    r
                }
            }))
        }
        WorkflowCmd::Undelete {
            id,
            expected_revision,
        } => {
            let wf = call::<UndeleteWorkflowCmd>(
                svc,
                UndeleteWorkflow {
                    id,
                    expected_revision,
                },
            )?;
            done(
                &wf,
                format!(
                    "Brought back workflow {} (revision {}), with its history and runs.\n{}",
                    wf.id,
                    wf.revision,
                    render::workflow(&wf)
                ),
            )
        }
        WorkflowCmd::Delete {
            id,
            expected_revision,
        } => {
            let d = call::<DeleteWorkflowCmd>(
                svc,
                DeleteWorkflow {
                    id,
                    expected_revision,
                },
            )?;
            done(
                &d,
                format!("Deleted workflow {} (its history is kept).\n", d.id),
            )
        }
        WorkflowCmd::Approve {
            id,
            expected_revision,
        } => {
            let before = call::<GetWorkflowCmd>(svc, WorkflowId { id: id.clone() })?;
            let wf = call::<ApproveWorkflowCmd>(
                svc,
                ApproveWorkflow {
                    id,
                    expected_revision,
                },
            )?;
            let text = if before.approval.approved {
                format!("Workflow {} was already approved on this device.\n", wf.id)
            } else {
                format!(
                    "Approved on this device: what workflow {} runs now.\n{}",
                    wf.id,
                    render::workflow(&wf)
                )
            };
            done(&wf, text)
        }
        WorkflowCmd::Duplicate { id, name } => {
            let wf = call::<DuplicateWorkflowCmd>(svc, DuplicateWorkflow { id, name })?;
            done(
                &wf,
                format!("Created workflow {}\n{}", wf.id, render::workflow(&wf)),
            )
        }
        WorkflowCmd::List {
            search,
            tag,
            sort,
            desc,
            limit,
            cursor,
            deleted,
        } => {
            let sort = match sort {
                SortArg::Name => WorkflowSort::Name,
                SortArg::Created => WorkflowSort::Created,
                SortArg::Updated => WorkflowSort::Updated,
            };
            let page = call::<ListWorkflowsCmd>(
                svc,
                ListWorkflows {
                    search,
                    tag,
                    sort,
                    desc,
                    limit: Some(limit),
                    cursor,
                    deleted,
                },
            )?;
            done(&page, render::workflow_list(&page))
        }
    }
}

pub(super) fn config(svc: &Service, c: ConfigCmd) -> Out {
    match c {
        ConfigCmd::Get { workflow, reveal } => {
            let c = call::<GetConfigCmd>(
                svc,
                GetConfig {
                    workflow_id: workflow.clone(),
                },
            )?;
            if !reveal {
                return done(&c, render::config(&c));
            }
            let r = call::<RevealConfigCmd>(
                svc,
                RevealConfig {
                    workflow_id: workflow,
                },
            )?;
            let mut shown = c.clone();
            shown.config.values = r.values.clone();
            let mut text = render::config(&shown);
            for e in &r.unavailable {
                text.push_str(&format!("{}: {}\n", e.field, e.message));
            }
            done(&r, text)
        }
        ConfigCmd::Set {
            workflow,
            key,
            value,
            expected_revision,
        } => {
            let input = SetConfigValue {
                workflow_id: workflow,
                key,
                value: Value::String(value),
                expected_revision,
            };
            let c = call::<SetConfigValueCmd>(svc, input)?;
            done(&c, render::config(&c))
        }
        ConfigCmd::Unset {
            workflow,
            key,
            expected_revision,
        } => {
            let input = SetConfigValue {
                workflow_id: workflow,
                key,
                value: Value::Null,
                expected_revision,
            };
            let c = call::<SetConfigValueCmd>(svc, input)?;
            done(&c, render::config(&c))
        }
        ConfigCmd::Update {
            workflow,
            config,
            expected_revision,
        } => {
            let config = json_arg("config", &config)?;
            let c = call::<UpdateConfigCmd>(
                svc,
                UpdateConfig {
                    workflow_id: workflow,
                    config,
                    expected_revision,
                },
            )?;
            done(&c, render::config(&c))
        }
        ConfigCmd::Validate { workflow, config } => {
            let config = config
                .as_deref()
                .map(|c| json_arg("config", c))
                .transpose()?;
            let report = call::<ValidateConfigCmd>(
                svc,
                ValidateConfig {
                    workflow_id: workflow,
                    config,
                },
            )?;
            let mut out = Rendered::ok(
                serde_json::to_value(&report).expect("report"),
                render::validation(&report),
            );
            if !report.valid {
                out.exit = flowkeep_core::ErrorCode::ValidationFailed.exit_code() as u8;
            }
            Ok(Some(out))
        }
    }
}

/// A point in a workflow's history as the CLI takes it: a revision (a bare
/// number), `run:<ID>`, an RFC 3339 time, or the other date forms other
/// commands take (2026-11-01 at local midnight, `7d` for seven days ago),
/// passed on as RFC 3339.
fn point_arg(field: &str, text: &str) -> Result<String, flowkeep_core::FieldError> {
    let t = text.trim();
    let is_revision = !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if is_revision || t.starts_with("run:") || chrono::DateTime::parse_from_rfc3339(t).is_ok() {
        return Ok(t.to_owned());
    }
    let ms = super::time_arg::parse(field, t, chrono::Utc::now().timestamp_millis())?;
    Ok(chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| t.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn points_take_the_date_forms_other_commands_take() {
        assert_eq!(super::point_arg("at", " 12 ").unwrap(), "12");
        assert_eq!(super::point_arg("at", "run:x").unwrap(), "run:x");
        let t = "2026-12-03T10:00:00Z";
        assert_eq!(super::point_arg("at", t).unwrap(), t);
        let ago = super::point_arg("at", "7d").unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(&ago).is_ok(), "{ago}");
        assert!(chrono::DateTime::parse_from_rfc3339(
            &super::point_arg("at", "2026-11-01").unwrap()
        )
        .is_ok());
        assert_eq!(super::point_arg("at", "last week").unwrap_err().field, "at");
    }
}
