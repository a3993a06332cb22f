//! `flowkeep schedule …`: list schedules, hand one to a device, preview.

use flowkeep_app::commands::*;
use flowkeep_app::{call, Service};
use flowkeep_core::commands::*;

use super::args::ScheduleCmd;
use super::{done, json_arg, render, Out};

pub fn schedule(svc: &Service, cmd: ScheduleCmd) -> Out {
    match cmd {
        ScheduleCmd::List { workflow } => {
            let rows = call::<ListSchedulesCmd>(
                svc,
                ListSchedules {
                    workflow_id: workflow,
                },
            )?;
            done(&rows, render::schedule_list(&rows, svc.device_id()))
        }
        ScheduleCmd::Own {
            workflow,
            device,
            expected_revision,
        } => {
            let wf = call::<OwnScheduleCmd>(
                svc,
                OwnSchedule {
                    workflow_id: workflow,
                    device_id: device.clone(),
                    expected_revision,
                },
            )?;
            let who = device.unwrap_or_else(|| "this device".to_owned());
            done(
                &wf,
                format!(
                    "The schedule of {} ({}) now runs on {who} (revision {}).\n",
                    wf.spec.name, wf.id, wf.revision
                ),
            )
        }
        ScheduleCmd::Preview { schedule, count } => {
            let p = call::<PreviewScheduleCmd>(
                svc,
                PreviewSchedule {
                    schedule: json_arg("schedule", &schedule)?,
                    count,
                    from: None,
                },
            )?;
            done(&p, render::schedule_preview(&p))
        }
    }
}
