//! How large a config document may be and how deeply its JSON may nest,
//! whoever wrote it. Every device refuses more from another
//! (`remote::check_config`), and a value nested near serde_json's
//! recursion limit makes the event that records it unreadable, so a
//! device holds its own user's edits to the same bounds: else the
//! workflow would never sync, or its history would stop reading back.

use serde_json::Value;

use crate::config::ConfigDocument;
use crate::error::FieldError;
use crate::remote::{json_depth, MAX_CONFIG_BYTES, MAX_JSON_DEPTH};

/// Problems with `doc`'s size and depth, under local paths (`values.k`,
/// `fields`, …; the whole document is `config`). A document over the size
/// limit is reported for that alone.
pub fn check(doc: &ConfigDocument) -> Vec<FieldError> {
    let size = serde_json::to_vec(doc).map_or(usize::MAX, |v| v.len());
    if size > MAX_CONFIG_BYTES {
        return vec![FieldError::new(
            "config",
            "size",
            format!("the config document is {size} bytes; at most {MAX_CONFIG_BYTES}"),
        )];
    }
    let mut errors = Vec::new();
    for (key, v) in &doc.values {
        if let Err(m) = depth(v) {
            errors.push(FieldError::new(format!("values.{key}"), "depth", m));
        }
    }
    let parts = [
        ("fields", serde_json::to_value(&doc.fields)),
        ("rules", serde_json::to_value(&doc.rules)),
        ("run", serde_json::to_value(&doc.run)),
        ("retention", serde_json::to_value(&doc.retention)),
    ];
    for (path, v) in parts {
        if let Err(m) = v.map_err(|e| e.to_string()).and_then(|v| depth(&v)) {
            errors.push(FieldError::new(path, "depth", m));
        }
    }
    errors
}

/// `max_items` on `path` when a list of `what` holds more than `max`.
pub(super) fn too_many(path: &str, what: &str, max: usize, got: usize) -> Option<FieldError> {
    (got > max).then(|| {
        FieldError::new(
            path,
            "max_items",
            format!("at most {max} {what} are allowed, got {got}"),
        )
    })
}

/// A JSON value nested at most `MAX_JSON_DEPTH` deep.
pub fn depth(v: &Value) -> Result<(), String> {
    let depth = json_depth(v);
    if depth > MAX_JSON_DEPTH {
        return Err(format!(
            "nested {depth} levels deep; at most {MAX_JSON_DEPTH}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validation::ValidationContext;

    fn nested(levels: usize) -> Value {
        (1..levels).fold(json!(1), |v, _| json!([v]))
    }

    fn fields(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect()
    }

    fn doc(v: Value) -> ConfigDocument {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_value_or_schema_nested_past_the_limit_is_refused_where_it_is() {
        assert_eq!(json_depth(&nested(MAX_JSON_DEPTH)), MAX_JSON_DEPTH);
        let at_limit = doc(json!({
            "fields": [{"key": "j", "type": "json"}],
            "values": {"j": nested(MAX_JSON_DEPTH)}
        }));
        assert!(at_limit.validate(&ValidationContext::default()).is_empty());

        // A schema of `items` in `items`: valid, and one level deeper in
        // the field definitions than it is on its own.
        let schema = (1..MAX_JSON_DEPTH).fold(json!({}), |s, _| json!({ "items": s }));
        let deep = doc(json!({
            "fields": [
                {"key": "j", "type": "json", "schema": schema},
                {"key": "n", "type": "number", "required": true}
            ],
            "values": {"j": nested(MAX_JSON_DEPTH + 1)}
        }));
        let errors = deep.validate(&ValidationContext::default());
        let found = fields(&errors);
        assert!(found.contains(&("values.j", "depth")), "{found:?}");
        assert!(found.contains(&("fields", "depth")), "{found:?}");
        assert!(
            found.contains(&("values.n", "required")),
            "the other problems are reported with them: {found:?}"
        );
        let message = &errors[0].message;
        assert!(message.contains("65 levels deep; at most 64"), "{message}");
    }

    #[test]
    fn a_document_larger_than_sync_carries_is_refused_as_a_whole() {
        let big = doc(json!({
            "fields": [{"key": "t", "type": "text"}],
            "values": {"t": "x".repeat(MAX_CONFIG_BYTES)}
        }));
        let errors = big.validate(&ValidationContext::default());
        assert_eq!(fields(&errors), [("config", "size")]);
    }
}
