//! Flowkeep's domain: workflows, typed config documents and their validation,
//! executions, the commands that change them and the events that record the
//! changes. This crate does no IO: no files, no clock, no database. Callers pass
//! in what the outside world knows (the time, whether a file exists).

pub mod actor;
pub mod commands;
pub mod config;
pub mod error;
pub mod events;
pub mod files;
pub mod remote;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod validation;
pub mod versions;
pub mod workflow;

pub use error::{Error, ErrorBody, ErrorCode, FieldError};
