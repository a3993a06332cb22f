//! Validation of config documents: the definitions themselves (unknown type,
//! duplicate key, min > max, bad regex, ...) and the values against them
//! (required, type, format, range, pattern, options, schema, file, custom and
//! cross-field rules). Every function collects all problems; none stops early.

pub mod bounds;
mod cache;
mod cross_field;
pub mod custom_rules;
mod definition;
pub mod formats;
pub mod patterns;
mod values;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cache::BoundedCache;
pub use cache::CacheStats;

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
    // An oversized document is reported for that alone: checking the rest
    // would only cost time.
    let mut errors = bounds::check(doc);
    if errors.iter().any(|e| e.field == "config") {
        return errors;
    }
    let checker = Checker::new(doc, ctx);
    errors.extend(definition::check(doc, &checker));
    values::check(doc, &checker, &mut errors);
    cross_field::check(doc, &mut errors);
    errors
}

type Schema = Result<Arc<jsonschema::Validator>, String>;

/// Compiled JSON Schemas by their text: about 16 MiB (by a rough weight),
/// at most 256.
static SCHEMAS: LazyLock<BoundedCache<Schema>> = LazyLock::new(|| BoundedCache::new(16 << 20, 256));

/// One validation's context and what it compiled. A field's `pattern` and
/// `schema` serve its definition check, its default and its value; each
/// distinct one is compiled (or taken from the cache) once per validation,
/// whatever the caches evict meanwhile.
pub(crate) struct Checker<'a> {
    pub(crate) file_exists: Option<&'a dyn Fn(&str) -> bool>,
    patterns: HashMap<String, patterns::Compiled>,
    schemas: RefCell<HashMap<String, Schema>>,
}

impl<'a> Checker<'a> {
    fn new(doc: &ConfigDocument, ctx: &ValidationContext<'a>) -> Self {
        // A JSON Schema's `pattern`s are compiled when it is built, so they
        // share the document's budget with the fields' own: else a schema
        // of thousands of large patterns would cost gigabytes.
        let mut in_schemas = Vec::new();
        for schema in doc.fields.iter().filter_map(|f| f.schema.as_ref()) {
            schema_patterns(schema, &mut in_schemas);
        }
        let fields = doc.fields.iter().filter_map(|f| f.pattern.as_deref());
        Checker {
            file_exists: ctx.file_exists,
            patterns: patterns::compile_all(fields.chain(in_schemas.iter().map(String::as_str))),
            schemas: RefCell::default(),
        }
    }

    pub(crate) fn pattern(&self, pattern: &str) -> patterns::Compiled {
        match self.patterns.get(pattern) {
            Some(c) => c.clone(),
            // Every pattern of the document was compiled up front; only a
            // caller checking a field from elsewhere gets here.
            None => patterns::compile(pattern).compiled,
        }
    }

    /// A JSON Schema's validator, or why it is not one. Its `pattern`
    /// keywords get the same size limits as a field's `pattern`.
    pub(crate) fn schema(&self, schema: &serde_json::Value) -> Schema {
        let key = schema.to_string();
        if let Some(v) = self.schemas.borrow().get(&key) {
            return v.clone();
        }
        let mut own = Vec::new();
        schema_patterns(schema, &mut own);
        for p in &own {
            match self.patterns.get(p) {
                Some(Err(patterns::PatternError::TooLarge)) => {
                    return Err(format!(
                        "pattern {}: compiles to more than {} MiB",
                        crate::remote::quote(p),
                        patterns::SIZE_LIMIT >> 20
                    ))
                }
                Some(Err(patterns::PatternError::OverDocumentLimit)) => {
                    return Err(format!(
                        "pattern {}: the document's patterns together compile to more than {} MiB",
                        crate::remote::quote(p),
                        patterns::DOCUMENT_LIMIT >> 20
                    ))
                }
                // A syntax error is the schema library's to word; fine.
                _ => {}
            }
        }
        let built = SCHEMAS.get_or_build(&key, || {
            // The `regex` engine (no look-around), which the budget above
            // measures: a `fancy_regex` pattern's parts could hide from it.
            let built = jsonschema::options()
                .with_pattern_options(
                    jsonschema::PatternOptions::regex()
                        .size_limit(patterns::SIZE_LIMIT)
                        .dfa_size_limit(patterns::DFA_SIZE_LIMIT),
                )
                .build(schema)
                .map(Arc::new)
                .map_err(|e| e.to_string());
            // A compiled schema is several times its text.
            (built, (64 << 10) + 16 * key.len())
        });
        self.schemas.borrow_mut().insert(key, built.clone());
        built
    }
}

/// The regular expressions in a JSON Schema (`pattern`, the keys of
/// `patternProperties`), wherever they sit in it.
fn schema_patterns(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::String(p)) = m.get("pattern") {
                out.push(p.clone());
            }
            if let Some(serde_json::Value::Object(props)) = m.get("patternProperties") {
                out.extend(props.keys().cloned());
            }
            m.values().for_each(|x| schema_patterns(x, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|x| schema_patterns(x, out)),
        _ => {}
    }
}

pub(crate) use values::check_value;

#[cfg(test)]
mod tests;
