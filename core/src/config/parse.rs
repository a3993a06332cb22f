//! From untrusted JSON to a `ConfigDocument`, reporting structural problems by
//! path instead of serde's first error.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ConfigDocument, ConfigType, CrossRule, FieldDef, RetentionPolicy, RunSpec};
use crate::error::FieldError;

const TOP_LEVEL: [&str; 5] = ["fields", "rules", "values", "run", "retention"];

pub(super) fn parse_document(value: &Value) -> Result<ConfigDocument, Vec<FieldError>> {
    let Some(obj) = value.as_object() else {
        return Err(vec![FieldError::new(
            "config",
            "type",
            format!("must be a JSON object, got {}", json_type(value)),
        )]);
    };
    let mut errors = Vec::new();
    for key in obj.keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            errors.push(FieldError::new(
                key.clone(),
                "unknown_property",
                format!("unknown property; expected one of {}", TOP_LEVEL.join(", ")),
            ));
        }
    }
    let mut doc = ConfigDocument::default();
    match obj.get("fields") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(f) = parse_field(i, item, &mut errors) {
                    doc.fields.push(f);
                }
            }
        }
        Some(other) => errors.push(type_error("fields", "an array", other)),
    }
    match obj.get("rules") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(r) = parse_as::<CrossRule>(&format!("rules[{i}]"), item, &mut errors) {
                    doc.rules.push(r);
                }
            }
        }
        Some(other) => errors.push(type_error("rules", "an array", other)),
    }
    match obj.get("values") {
        None | Some(Value::Null) => {}
        Some(Value::Object(values)) => {
            doc.values = values.clone();
        }
        Some(other) => errors.push(type_error("values", "an object", other)),
    }
    match obj.get("run") {
        None | Some(Value::Null) => {}
        Some(v @ Value::Object(_)) => doc.run = parse_as::<RunSpec>("run", v, &mut errors),
        Some(other) => errors.push(type_error("run", "an object", other)),
    }
    match obj.get("retention") {
        None | Some(Value::Null) => {}
        Some(v @ Value::Object(_)) => {
            doc.retention = parse_as::<RetentionPolicy>("retention", v, &mut errors)
        }
        Some(other) => errors.push(type_error("retention", "an object", other)),
    }
    if errors.is_empty() {
        Ok(doc)
    } else {
        Err(errors)
    }
}

fn parse_field(i: usize, item: &Value, errors: &mut Vec<FieldError>) -> Option<FieldDef> {
    let Some(obj) = item.as_object() else {
        errors.push(type_error(&format!("fields[{i}]"), "an object", item));
        return None;
    };
    let path = match obj.get("key").and_then(Value::as_str) {
        Some(k) if !k.is_empty() => format!("fields.{k}"),
        _ => format!("fields[{i}]"),
    };
    match obj.get("type") {
        Some(Value::String(t)) if ConfigType::parse(t).is_some() => {}
        Some(Value::String(t)) => {
            errors.push(FieldError::new(
                format!("{path}.type"),
                "unknown_type",
                format!(
                    "unknown config type \"{t}\"; expected one of {}",
                    type_names()
                ),
            ));
            return None;
        }
        Some(other) => {
            errors.push(type_error(&format!("{path}.type"), "a string", other));
            return None;
        }
        None => {
            errors.push(FieldError::new(
                format!("{path}.type"),
                "required",
                format!("a field needs a type: one of {}", type_names()),
            ));
            return None;
        }
    }
    parse_as::<FieldDef>(&path, item, errors)
}

fn parse_as<T: DeserializeOwned>(
    path: &str,
    item: &Value,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    match serde_json::from_value::<T>(item.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(FieldError::new(path, "invalid", e.to_string()));
            None
        }
    }
}

fn type_names() -> String {
    ConfigType::ALL.map(|t| t.as_str()).join(", ")
}

fn type_error(path: &str, expected: &str, got: &Value) -> FieldError {
    FieldError::new(
        path,
        "type",
        format!("must be {expected}, got {}", json_type(got)),
    )
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
