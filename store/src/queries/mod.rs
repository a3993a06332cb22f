//! Read-side queries over the projected tables.

pub mod runs;
pub mod workflows;
