//! The services a `Service` offers, each named after what it serves:
//! `svc.workflows()`, `svc.configs()`, `svc.runs()`, `svc.settings()`,
//! `svc.sync()`. Each is a borrow of the one `Service`, which holds what
//! they share (the database, the clock, who and which device acts), so they
//! cost nothing to make and see the same state.

use std::ops::Deref;

use super::Service;

macro_rules! facets {
    ($( $(#[$doc:meta])* $accessor:ident -> $ty:ident; )*) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Copy)]
            pub struct $ty<'a>(&'a Service);

            impl Deref for $ty<'_> {
                type Target = Service;
                fn deref(&self) -> &Service {
                    self.0
                }
            }
        )*

        impl Service {
            $(
                $(#[$doc])*
                pub fn $accessor(&self) -> $ty<'_> {
                    $ty(self)
                }
            )*
        }
    };
}

facets! {
    /// Workflows: create, edit, copy, delete, list, approve, their history.
    workflows -> WorkflowService;
    /// A workflow's configuration: read, replace, set one value, validate.
    configs -> ConfigService;
    /// Runs: run a workflow, record, list, count, import, export, delete, prune.
    runs -> RunService;
    /// Schedules: list, hand to a device, preview; what the agent records.
    schedules -> ScheduleService;
    /// Settings: the global retention policy and applying it.
    settings -> SettingsService;
    /// Sync with other devices: set up, join, status, one session, watch.
    sync -> SyncService;
}
