//! Flowkeep's storage: the SQLite event log, the read tables projected from
//! it, the queries over them, and the service that runs commands. Every change
//! is an event appended in the same transaction as its projection rows.

mod bindings;
mod checkpointer;
mod clock;
mod command_table;
mod cursor;
mod db;
mod error;
mod event_log;
mod export;
mod migrate;
mod private;
mod projection;
mod queries;
mod runner;
mod service;
pub mod sync;

pub use bindings::BINDINGS_PATH;
pub use clock::{Clock, SystemClock};
pub use command_table::{call, dispatch, typescript_bindings, Command, CommandInfo, COMMANDS};
pub use cursor::check as check_cursor;
pub use db::{Durability, StoreOptions};
pub use error::{Error, Result};
pub use event_log::StoredEvent;
pub use runner::{OutputSink, OutputStream, RunRequest};
pub use service::{Change, Service, SyncProgress, PRUNE_BATCH, PRUNE_BATCH_MAX};
pub use sync::dialer::TokenDialer;
pub use sync::{SyncDevice, SyncDevices, SyncError, SyncOptions, SyncReport, SyncStatus};

/// The command types, one per entry of the command table.
pub mod commands {
    pub use crate::command_table::commands::*;
}
