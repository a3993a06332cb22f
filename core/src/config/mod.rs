//! The config document of a workflow: typed field definitions, cross-field
//! rules, the values, and optionally how the workflow runs.

mod document;
mod field;
mod parse;
mod run;

pub use crate::validation::custom_rules::duration_ms_wide;
pub use document::{ConfigDocument, CrossRule};
pub use field::{ConfigType, FieldDef};
pub use run::{RetentionPolicy, RunSpec};

pub(crate) use parse::json_type as parse_json_type;
