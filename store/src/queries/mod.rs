//! Read-side queries over the projected tables.

pub mod file_bases;
pub mod runs;
pub mod versions;
pub mod workflows;
