//! Rules over several fields: `less_than`, `required_if`, `one_of_required`.

use serde_json::Value;

use crate::config::{ConfigDocument, ConfigType, CrossRule};
use crate::error::FieldError;

/// Most cross-field rules a document may have: far more than any config
/// needs, and under what a synced document may list (10,000 entries).
const MAX_RULES: usize = 1_000;

pub(super) fn check(doc: &ConfigDocument, errors: &mut Vec<FieldError>) {
    if let Some(e) = super::bounds::too_many("rules", "rules", MAX_RULES, doc.rules.len()) {
        errors.push(e);
        return;
    }
    // A synced document keeps one entry per distinct rule, so a second
    // copy would vanish on every other device.
    let mut seen = std::collections::HashMap::new();
    for (i, rule) in doc.rules.iter().enumerate() {
        let path = format!("rules[{i}]");
        let text = serde_json::to_string(rule).unwrap_or_default();
        if let Some(first) = seen.get(&text) {
            errors.push(FieldError::new(
                &path,
                "duplicate",
                format!("the same rule as rules[{first}]"),
            ));
            continue;
        }
        seen.insert(text, i);
        if check_definition(doc, rule, &path, errors) {
            check_values(doc, rule, errors);
        }
    }
}

/// Returns whether the rule is well formed, so its values can be checked.
fn check_definition(
    doc: &ConfigDocument,
    rule: &CrossRule,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> bool {
    let before = errors.len();
    let need_field = |name: &str, prop: &str, errors: &mut Vec<FieldError>| match doc.field(name) {
        Some(f) => Some(f.kind),
        None => {
            errors.push(FieldError::new(
                format!("{path}.{prop}"),
                "unknown_field",
                format!("the rule names \"{name}\", which is not a defined field"),
            ));
            None
        }
    };
    match rule.rule.as_str() {
        "less_than" => {
            if rule.fields.len() != 2 {
                errors.push(FieldError::new(
                    format!("{path}.fields"),
                    "arity",
                    "less_than takes exactly two fields: [smaller, larger]",
                ));
            } else {
                for name in &rule.fields {
                    if let Some(kind) = need_field(name, "fields", errors) {
                        if kind != ConfigType::Number {
                            errors.push(FieldError::new(
                                format!("{path}.fields"),
                                "type",
                                format!(
                                    "less_than compares number fields; \"{name}\" is {}",
                                    kind.as_str()
                                ),
                            ));
                        }
                    }
                }
            }
        }
        "required_if" => {
            match &rule.field {
                Some(f) => {
                    need_field(f, "field", errors);
                }
                None => errors.push(FieldError::new(
                    format!("{path}.field"),
                    "required",
                    "required_if needs \"field\"",
                )),
            }
            match &rule.if_field {
                Some(f) => {
                    need_field(f, "if_field", errors);
                }
                None => errors.push(FieldError::new(
                    format!("{path}.if_field"),
                    "required",
                    "required_if needs \"if_field\"",
                )),
            }
            if rule.equals.is_none() {
                errors.push(FieldError::new(
                    format!("{path}.equals"),
                    "required",
                    "required_if needs \"equals\"",
                ));
            }
        }
        "one_of_required" => {
            if rule.fields.len() < 2 {
                errors.push(FieldError::new(
                    format!("{path}.fields"),
                    "arity",
                    "one_of_required takes at least two fields",
                ));
            }
            for name in &rule.fields {
                need_field(name, "fields", errors);
            }
        }
        other => errors.push(FieldError::new(
            format!("{path}.rule"),
            "unknown_rule",
            format!(
                "unknown rule \"{other}\"; expected one of less_than, required_if, one_of_required"
            ),
        )),
    }
    errors.len() == before
}

fn present<'a>(doc: &'a ConfigDocument, key: &str) -> Option<&'a Value> {
    let field = doc.field(key)?;
    doc.effective_value(field)
        .filter(|v| !matches!(v, Value::String(s) if s.is_empty()))
}

fn check_values(doc: &ConfigDocument, rule: &CrossRule, errors: &mut Vec<FieldError>) {
    match rule.rule.as_str() {
        "less_than" => {
            let (a, b) = (&rule.fields[0], &rule.fields[1]);
            let va = present(doc, a).and_then(Value::as_number);
            let vb = present(doc, b).and_then(Value::as_number);
            if let (Some(x), Some(y)) = (va, vb) {
                if super::values::compare_numbers(x, y) != Some(std::cmp::Ordering::Less) {
                    errors.push(FieldError::new(
                        format!("values.{a}"),
                        "less_than",
                        format!("must be less than {b} ({y}), got {x}"),
                    ));
                }
            }
        }
        "required_if" => {
            let (Some(field), Some(if_field), Some(equals)) =
                (&rule.field, &rule.if_field, &rule.equals)
            else {
                return;
            };
            if present(doc, if_field) == Some(equals) && present(doc, field).is_none() {
                errors.push(FieldError::new(
                    format!("values.{field}"),
                    "required_if",
                    format!("is required when {if_field} is {equals}"),
                ));
            }
        }
        "one_of_required" if rule.fields.iter().all(|f| present(doc, f).is_none()) => {
            errors.push(FieldError::new(
                format!("values.{}", rule.fields[0]),
                "one_of_required",
                format!("at least one of {} needs a value", rule.fields.join(", ")),
            ));
        }
        _ => {}
    }
}
