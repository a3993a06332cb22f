//! The config document of a workflow: typed field definitions, cross-field
//! rules, the values, and optionally how the workflow runs.

mod document;
mod field;
mod parse;
mod run;

pub use document::{ConfigDocument, CrossRule};
pub use field::{ConfigType, FieldDef};
pub use run::{duration_ms_wide, RetentionPolicy, RunSpec};

pub(crate) use parse::json_type as parse_json_type;
