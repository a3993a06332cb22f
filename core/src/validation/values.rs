//! Values against their field definitions.

use serde_json::Value;

use super::{custom_rules, formats::Format, Checker};
use crate::config::parse_json_type as json_type;
use crate::config::{ConfigDocument, ConfigType, FieldDef};
use crate::error::FieldError;

pub(super) fn check(doc: &ConfigDocument, ctx: &Checker<'_>, errors: &mut Vec<FieldError>) {
    for field in &doc.fields {
        let path = format!("values.{}", field.key);
        // A default is judged once, on its definition; here only set values.
        let own = doc.values.get(&field.key).filter(|v| !v.is_null());
        match own {
            None if field.default.is_some() => {}
            None => {
                if field.required {
                    errors.push(FieldError::new(path, "required", "a value is required"));
                }
            }
            Some(Value::String(s)) if s.is_empty() && field.required => {
                errors.push(FieldError::new(path, "required", "a value is required"));
            }
            Some(value) => check_value(field, value, &path, ctx, errors),
        }
    }
}

/// Checks one non-null value against its field: type, then the type's rules.
pub(crate) fn check_value(
    f: &FieldDef,
    value: &Value,
    path: &str,
    ctx: &Checker<'_>,
    errors: &mut Vec<FieldError>,
) {
    let type_error = |expected: &str| {
        FieldError::new(
            path,
            "type",
            format!("must be {expected}, got {}", json_type(value)),
        )
    };
    match f.kind {
        ConfigType::Text => {
            let Some(s) = value.as_str() else {
                return errors.push(type_error("text"));
            };
            check_text(f, s, path, ctx, errors);
        }
        ConfigType::Number => {
            let Some(n) = value.as_f64() else {
                return errors.push(type_error("a number"));
            };
            check_number(f, value, n, path, errors);
        }
        ConfigType::Boolean => {
            if !value.is_boolean() {
                errors.push(type_error("true or false"));
            }
        }
        ConfigType::Select => {
            let Some(s) = value.as_str() else {
                return errors.push(type_error("one of the options"));
            };
            let options = f.options.as_deref().unwrap_or_default();
            if !options.iter().any(|o| o == s) {
                errors.push(FieldError::new(
                    path,
                    "options",
                    format!("\"{s}\" is not one of: {}", options.join(", ")),
                ));
            }
        }
        ConfigType::Secret => {
            let Some(s) = value.as_str() else {
                return errors.push(FieldError::new(
                    path,
                    "type",
                    format!("must be text, got {}", json_type(value)),
                ));
            };
            // Sealed, it can only be checked where it was written (before
            // sealing): the rules judge the clear text. The mask stands for
            // the value the secret has, checked when it was set.
            if !crate::secret::is_sealed(s) && s != crate::secret::MASK {
                let mut found = Vec::new();
                check_text(f, s, path, ctx, &mut found);
                // Never echo a secret: only messages known not to quote the
                // value are kept (a format's own message might quote it).
                errors.extend(found.into_iter().map(|mut e| {
                    match e.code.as_str() {
                        "min_length" | "max_length" | "pattern" => {}
                        "format" => {
                            e.message =
                                format!("is not a valid {}", f.format.as_deref().unwrap_or("value"))
                        }
                        _ => e.message = "is not a valid value".to_owned(),
                    }
                    e
                }));
            }
        }
        ConfigType::Json => check_json(f, value, path, ctx, errors),
        ConfigType::File => {
            let Some(s) = value.as_str() else {
                return errors.push(type_error("a file path"));
            };
            check_file(f, s, path, ctx, errors);
        }
    }
    // A rule on another type is refused with the definition
    // (`not_applicable`); judging the value by it anyway would only add
    // noise, and on a secret echo its clear text.
    let rule_applies = matches!(f.kind, ConfigType::Text | ConfigType::Number);
    if let Some(rule) = f
        .rule
        .as_deref()
        .filter(|_| rule_applies)
        .and_then(custom_rules::lookup)
    {
        if let Err(message) = (rule.check)(value) {
            errors.push(FieldError::new(path, rule.name, message));
        }
    }
}

fn check_text(f: &FieldDef, s: &str, path: &str, ctx: &Checker<'_>, errors: &mut Vec<FieldError>) {
    let len = s.chars().count() as u64;
    if let Some(min) = f.min_length {
        if len < min {
            errors.push(FieldError::new(
                path,
                "min_length",
                format!("must be at least {min} characters, got {len}"),
            ));
        }
    }
    if let Some(max) = f.max_length {
        if len > max {
            errors.push(FieldError::new(
                path,
                "max_length",
                format!("must be at most {max} characters, got {len}"),
            ));
        }
    }
    if let Some(format) = f.format.as_deref().and_then(Format::parse) {
        if let Err(message) = format.check(s) {
            errors.push(FieldError::new(path, "format", message));
        }
    }
    // A pattern that does not compile was already reported on its definition.
    if let Some(Ok(re)) = f.pattern.as_deref().map(|p| ctx.pattern(p)) {
        if !re.is_match(s) {
            errors.push(FieldError::new(
                path,
                "pattern",
                format!("must match the pattern {}", re.as_str()),
            ));
        }
    }
}

/// Two JSON numbers in order: exactly when both are integers (as f64, two
/// beyond 2^53 that differ can compare equal), else as f64.
pub(crate) fn compare_numbers(
    a: &serde_json::Number,
    b: &serde_json::Number,
) -> Option<std::cmp::Ordering> {
    let int = |v: &serde_json::Number| {
        v.as_i64()
            .map(i128::from)
            .or_else(|| v.as_u64().map(i128::from))
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// The largest whole number an f64 holds exactly.
const EXACT_F64: f64 = 9_007_199_254_740_992.0;

fn check_number(f: &FieldDef, value: &Value, n: f64, path: &str, errors: &mut Vec<FieldError>) {
    let whole = value.is_i64() || value.is_u64() || (n.fract() == 0.0 && n.abs() <= EXACT_F64);
    if f.integer && !whole {
        // 1e22 is whole, but past what the number type holds exactly.
        let message = if n.fract() == 0.0
            && n.is_finite()
            && !(i64::MIN as f64..=u64::MAX as f64).contains(&n)
        {
            format!(
                "is too large for a whole number (from {} to {}), got {value}",
                i64::MIN,
                u64::MAX
            )
        } else {
            format!("must be a whole number, got {value}")
        };
        errors.push(FieldError::new(path, "integer", message));
    }
    use std::cmp::Ordering::{Greater, Less};
    let Some(value_n) = value.as_number() else {
        return;
    };
    let below = f
        .min
        .as_ref()
        .is_some_and(|m| compare_numbers(value_n, m) == Some(Less));
    let above = f
        .max
        .as_ref()
        .is_some_and(|m| compare_numbers(value_n, m) == Some(Greater));
    let out_of_range = below || above;
    if out_of_range {
        let message = match (&f.min, &f.max) {
            (Some(lo), Some(hi)) => format!("must be between {lo} and {hi}, got {value}"),
            (Some(lo), None) => format!("must be at least {lo}, got {value}"),
            (None, Some(hi)) => format!("must be at most {hi}, got {value}"),
            (None, None) => unreachable!("out of range needs a bound"),
        };
        errors.push(FieldError::new(path, "range", message));
    }
}

fn check_json(
    f: &FieldDef,
    value: &Value,
    path: &str,
    ctx: &Checker<'_>,
    errors: &mut Vec<FieldError>,
) {
    let Some(schema) = &f.schema else { return };
    // A schema that does not compile was already reported on its definition.
    let Ok(validator) = ctx.schema(schema) else {
        return;
    };
    for e in validator.iter_errors(value) {
        let at = e.instance_path().to_string();
        errors.push(FieldError::new(
            format!("{path}{}", at.replace('/', ".")),
            "schema",
            e.to_string(),
        ));
    }
}

fn check_file(f: &FieldDef, s: &str, path: &str, ctx: &Checker<'_>, errors: &mut Vec<FieldError>) {
    if s.trim().is_empty() || s.contains('\0') {
        errors.push(FieldError::new(path, "format", "must be a file path"));
        return;
    }
    if let Some(exts) = &f.extensions {
        let name = s
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(s)
            .to_ascii_lowercase();
        let ok = exts.iter().any(|e| {
            let e = e.trim_start_matches('.').to_ascii_lowercase();
            name.len() > e.len() + 1 && name.ends_with(&format!(".{e}"))
        });
        if !ok {
            errors.push(FieldError::new(
                path,
                "extension",
                format!("must be a file ending in .{}", exts.join(", .")),
            ));
        }
    }
    if f.must_exist {
        if let Some(exists) = ctx.file_exists {
            if !exists(s) {
                errors.push(FieldError::new(
                    path,
                    "must_exist",
                    format!("no file at {s}"),
                ));
            }
        }
    }
}
