//! Validation of config documents: the definitions themselves (unknown type,
//! duplicate key, min > max, bad regex, ...) and the values against them
//! (required, type, format, range, pattern, options, schema, file, custom and
//! cross-field rules). Every function collects all problems; none stops early.

mod cross_field;
pub mod custom_rules;
mod definition;
pub mod formats;
mod values;

use crate::config::ConfigDocument;
use crate::error::FieldError;

/// What validation needs from the outside world. `core` does no IO, so the
/// caller decides how (or whether) a file's existence is checked.
#[derive(Default)]
pub struct ValidationContext<'a> {
    /// Answers `must_exist` for file fields; `None` skips that check.
    pub file_exists: Option<&'a dyn Fn(&str) -> bool>,
}

impl<'a> ValidationContext<'a> {
    pub fn with_file_check(file_exists: &'a dyn Fn(&str) -> bool) -> Self {
        ValidationContext {
            file_exists: Some(file_exists),
        }
    }
}

pub(crate) fn validate_document(
    doc: &ConfigDocument,
    ctx: &ValidationContext<'_>,
) -> Vec<FieldError> {
    let mut errors = definition::check(doc, ctx);
    values::check(doc, ctx, &mut errors);
    cross_field::check(doc, &mut errors);
    errors
}

pub(crate) use values::check_value;

#[cfg(test)]
mod tests;
