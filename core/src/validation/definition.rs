//! Problems with the document's own definitions.

use std::collections::HashSet;

use super::patterns::{PatternError, DOCUMENT_LIMIT, SIZE_LIMIT};
use super::{custom_rules, formats, Checker};
use crate::config::{ConfigDocument, ConfigType, FieldDef, RunSpec};
use crate::error::FieldError;

const MAX_FIELDS: usize = 500;

pub(super) fn check(doc: &ConfigDocument, ctx: &Checker<'_>) -> Vec<FieldError> {
    let mut errors: Vec<FieldError> =
        super::bounds::too_many("fields", "fields", MAX_FIELDS, doc.fields.len())
            .into_iter()
            .collect();
    let mut seen = HashSet::new();
    for field in &doc.fields {
        let path = format!("fields.{}", field.key);
        if !is_valid_key(&field.key) {
            errors.push(FieldError::new(
                &path,
                "key_format",
                "a key starts with a letter or _ and has at most 64 letters, digits, _ or -",
            ));
        }
        if !seen.insert(field.key.as_str()) {
            errors.push(FieldError::new(
                &path,
                "duplicate",
                format!("the key \"{}\" is defined more than once", field.key),
            ));
        }
        check_field(field, &path, ctx, &mut errors);
    }
    for key in doc.values.keys() {
        if doc.field(key).is_none() {
            errors.push(FieldError::new(
                format!("values.{key}"),
                "undeclared",
                format!("no field named \"{key}\" is defined"),
            ));
        }
    }
    if let Some(run) = &doc.run {
        check_run(run, &mut errors);
    }
    if let Some(retention) = &doc.retention {
        errors.extend(retention.check("retention"));
    }
    errors
}

/// Keys become parts of paths (`values.<key>`) so they cannot hold dots.
pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    key.len() <= 64 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn check_field(f: &FieldDef, path: &str, ctx: &Checker<'_>, errors: &mut Vec<FieldError>) {
    let kind = f.kind;
    let mut not_for = |prop: &str, present: bool, allowed: &[ConfigType]| {
        if present && !allowed.contains(&kind) {
            let names: Vec<&str> = allowed.iter().map(|t| t.as_str()).collect();
            errors.push(FieldError::new(
                format!("{path}.{prop}"),
                "not_applicable",
                format!(
                    "\"{prop}\" applies to {} fields, not {}",
                    names.join("/"),
                    kind.as_str()
                ),
            ));
        }
    };
    use ConfigType::*;
    not_for("min", f.min.is_some(), &[Number]);
    not_for("max", f.max.is_some(), &[Number]);
    not_for("integer", f.integer, &[Number]);
    not_for("min_length", f.min_length.is_some(), &[Text, Secret]);
    not_for("max_length", f.max_length.is_some(), &[Text, Secret]);
    not_for("format", f.format.is_some(), &[Text, Secret]);
    not_for("pattern", f.pattern.is_some(), &[Text, Secret]);
    not_for("options", f.options.is_some(), &[Select]);
    not_for("schema", f.schema.is_some(), &[Json]);
    not_for("extensions", f.extensions.is_some(), &[File]);
    not_for("must_exist", f.must_exist, &[File]);
    not_for("rule", f.rule.is_some(), &[Text, Number]);
    if f.kind == Secret && f.default.is_some() {
        errors.push(FieldError::new(
            format!("{path}.default"),
            "secret_default",
            "a secret field has no default: the definition is stored and synced in clear",
        ));
    }

    if let (Some(min), Some(max)) = (f.min.as_ref(), f.max.as_ref()) {
        if min.as_f64() > max.as_f64() {
            errors.push(FieldError::new(
                format!("{path}.min"),
                "range",
                format!("min ({min}) is greater than max ({max})"),
            ));
        }
    }
    if let (Some(min), Some(max)) = (f.min_length, f.max_length) {
        if min > max {
            errors.push(FieldError::new(
                format!("{path}.min_length"),
                "range",
                format!("min_length ({min}) is greater than max_length ({max})"),
            ));
        }
    }
    if let Some(format) = &f.format {
        if formats::Format::parse(format).is_none() {
            errors.push(FieldError::new(
                format!("{path}.format"),
                "unknown_format",
                format!(
                    "unknown format \"{format}\"; expected one of {}",
                    formats::Format::NAMES.join(", ")
                ),
            ));
        }
    }
    if let Some(pattern) = &f.pattern {
        let problem = match ctx.pattern(pattern) {
            Ok(_) => None,
            Err(PatternError::Syntax(e)) => Some(format!("invalid regular expression: {e}")),
            Err(PatternError::TooLarge) => Some(format!(
                "the regular expression is too large: compiled it would exceed {} MiB; use a smaller repetition count or a narrower class (e.g. [A-Za-z0-9_] instead of \\w)",
                SIZE_LIMIT >> 20
            )),
            Err(PatternError::OverDocumentLimit) => Some(format!(
                "this document's patterns are too large together: compiled they would exceed {} MiB; reuse one pattern for several fields or simplify them",
                DOCUMENT_LIMIT >> 20
            )),
        };
        if let Some(message) = problem {
            errors.push(FieldError::new(
                format!("{path}.pattern"),
                "pattern",
                message,
            ));
        }
    }
    if let Some(options) = &f.options {
        let mut seen = HashSet::new();
        if options.is_empty() {
            errors.push(FieldError::new(
                format!("{path}.options"),
                "min_items",
                "a select field needs at least one option",
            ));
        }
        for o in options {
            if !seen.insert(o) {
                errors.push(FieldError::new(
                    format!("{path}.options"),
                    "duplicate",
                    format!("the option \"{o}\" is listed more than once"),
                ));
            }
        }
    } else if kind == Select {
        errors.push(FieldError::new(
            format!("{path}.options"),
            "required",
            "a select field needs a list of options",
        ));
    }
    if let Some(schema) = &f.schema {
        if let Err(e) = ctx.schema(schema) {
            errors.push(FieldError::new(
                format!("{path}.schema"),
                "schema",
                format!("invalid JSON Schema: {}", one_line(&e)),
            ));
        }
    }
    if let Some(exts) = &f.extensions {
        for e in exts {
            let e = e.trim_start_matches('.');
            if e.is_empty()
                || !e
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
            {
                errors.push(FieldError::new(
                    format!("{path}.extensions"),
                    "format",
                    format!("\"{e}\" is not a file extension"),
                ));
            }
        }
    }
    if let Some(rule) = &f.rule {
        if custom_rules::lookup(rule).is_none() {
            errors.push(FieldError::new(
                format!("{path}.rule"),
                "unknown_rule",
                format!(
                    "unknown rule \"{rule}\"; expected one of {}",
                    custom_rules::names().join(", ")
                ),
            ));
        }
    }
    if let Some(default) = &f.default {
        if !default.is_null() {
            let mut default_errors = Vec::new();
            super::check_value(
                f,
                default,
                &format!("{path}.default"),
                ctx,
                &mut default_errors,
            );
            errors.extend(default_errors);
        }
    }
    if matches!(&f.label, Some(l) if l.chars().count() > 200) {
        errors.push(FieldError::new(
            format!("{path}.label"),
            "max_length",
            "at most 200 characters",
        ));
    }
}

fn check_run(run: &RunSpec, errors: &mut Vec<FieldError>) {
    if run.command.is_empty() || run.command[0].trim().is_empty() {
        errors.push(FieldError::new(
            "run.command",
            "required",
            "the command needs at least a program name",
        ));
    }
    if let Some(t) = run.timeout_s {
        if t == 0 || t > RunSpec::MAX_TIMEOUT_S {
            errors.push(FieldError::new(
                "run.timeout_s",
                "range",
                format!("must be between 1 and {} seconds", RunSpec::MAX_TIMEOUT_S),
            ));
        }
    }
    // The operating system takes no NUL inside an argument, a directory or
    // an environment value: refused here, naming the part, rather than
    // when the job starts.
    const NUL: &str = "cannot contain a NUL character";
    for (i, arg) in run.command.iter().enumerate() {
        if arg.contains('\0') {
            errors.push(FieldError::new(format!("run.command[{i}]"), "format", NUL));
        }
    }
    if run.cwd.as_deref().is_some_and(|c| c.contains('\0')) {
        errors.push(FieldError::new("run.cwd", "format", NUL));
    }
    for (key, value) in &run.env {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            errors.push(FieldError::new(
                format!("run.env.{key}"),
                "format",
                "an environment variable name cannot be empty or contain = or NUL",
            ));
        } else if value.contains('\0') {
            errors.push(FieldError::new(format!("run.env.{key}"), "format", NUL));
        }
    }
    errors.extend(run.check_inherit_env());
    if let Some(schedule) = &run.schedule {
        errors.extend(schedule.check("run.schedule"));
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
