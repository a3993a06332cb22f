//! Read-side queries over the projected tables.

pub(crate) mod executions;
pub(crate) mod workflows;
