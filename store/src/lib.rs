//! Flowkeep's storage: the SQLite database (migrations, the writer lock, the
//! background checkpointer), the event log, the read tables projected from it
//! and the queries over them. Every change is an event appended in the same
//! transaction as its projection rows; what decides on a change lives in
//! `flowkeep-app`.

mod checkpointer;
pub mod cursor;
pub mod db;
mod error;
pub mod event_log;
mod migrate;
pub mod private;
pub mod projection;
pub mod queries;

pub use cursor::check as check_cursor;
pub use db::{Db, Durability, StoreOptions};
pub use error::{summarize, Error, Result};
pub use event_log::StoredEvent;
