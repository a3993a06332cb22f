//! Read-side queries over the projected tables.

pub mod executions;
pub mod workflows;
