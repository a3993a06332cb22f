//! Flowkeep's application: the command table and the service that runs each
//! command (validate, then append events through `flowkeep-store`), the
//! runner, exports, and the sync client. Storage and queries live in
//! `flowkeep-store`; nothing here knows a front end.

pub mod agent;
mod bindings;
mod clock;
mod command_table;
mod error;
mod export;
pub mod files;
mod runner;
pub mod secrets;
mod service;
pub mod sync;

pub use bindings::BINDINGS_PATH;
pub use clock::{Clock, SystemClock};
pub use command_table::{call, dispatch, typescript_bindings, Command, CommandInfo, COMMANDS};
pub use error::{Error, Result};
pub use flowkeep_store::{check_cursor, Durability, StoreOptions, StoredEvent};
pub use runner::{OnStart, OutputSink, OutputStream, RunRequest};
pub use service::{
    Change, ConfigService, RunService, ScheduleService, Service, SettingsService, SyncProgress,
    SyncService, WorkflowService, PRUNE_BATCH, PRUNE_BATCH_MAX,
};
pub use sync::dialer::TokenDialer;
pub use sync::{SyncDevice, SyncDevices, SyncError, SyncOptions, SyncReport, SyncStatus};

/// The command types, one per entry of the command table.
pub mod commands {
    pub use crate::command_table::commands::*;
}
