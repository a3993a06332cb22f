//! Every rule, accepted and rejected, with the field path of its message.

use serde_json::{json, Value};

use crate::config::ConfigDocument;
use crate::error::FieldError;
use crate::validation::ValidationContext;

fn check(doc: Value) -> Vec<FieldError> {
    match ConfigDocument::from_json(&doc, &ValidationContext::default()) {
        Ok(_) => vec![],
        Err(e) => e,
    }
}

/// (field, code) pairs, the part of an error a program relies on.
fn codes(doc: Value) -> Vec<(String, String)> {
    check(doc).into_iter().map(|e| (e.field, e.code)).collect()
}

fn one_field(field: Value, value: Value) -> Vec<(String, String)> {
    codes(json!({"fields": [field], "values": {"f": value}}))
}

fn pair(field: &str, code: &str) -> (String, String) {
    (field.to_owned(), code.to_owned())
}

#[test]
fn the_design_example_is_valid() {
    let doc = json!({
      "fields": [
        {"key": "retries", "type": "number", "label": "Retries", "required": true, "integer": true, "min": 0, "max": 10, "default": 3},
        {"key": "mode", "type": "select", "options": ["fast", "safe"], "required": true},
        {"key": "endpoint", "type": "text", "format": "url", "max_length": 2048},
        {"key": "enabled", "type": "boolean", "default": true},
        {"key": "params", "type": "json", "schema": {"type": "object"}},
        {"key": "input", "type": "file", "extensions": ["csv", "json"], "must_exist": false},
        {"key": "schedule", "type": "text", "rule": "cron"},
        {"key": "min_batch", "type": "number"},
        {"key": "max_batch", "type": "number"}
      ],
      "rules": [{"rule": "less_than", "fields": ["min_batch", "max_batch"]}],
      "values": {"retries": 3, "mode": "fast", "endpoint": "https://example.org/hook", "schedule": "0 3 * * *",
                 "min_batch": 1, "max_batch": 100, "params": {"a": 1}, "input": "in.csv"}
    });
    assert_eq!(check(doc.clone()), vec![]);
    let parsed = ConfigDocument::from_json(&doc, &ValidationContext::default()).unwrap();
    // The document round-trips: what is stored is what was given.
    assert_eq!(parsed.to_json()["fields"][0], doc["fields"][0]);
}

#[test]
fn required() {
    let f = json!({"key": "f", "type": "text", "required": true});
    assert_eq!(one_field(f.clone(), json!("x")), vec![]);
    assert_eq!(
        one_field(f.clone(), Value::Null),
        vec![pair("values.f", "required")]
    );
    assert_eq!(
        one_field(f.clone(), json!("")),
        vec![pair("values.f", "required")]
    );
    assert_eq!(
        codes(json!({"fields": [f]})),
        vec![pair("values.f", "required")]
    );
    // A default satisfies required.
    let with_default = json!({"key": "f", "type": "number", "required": true, "default": 2});
    assert_eq!(codes(json!({"fields": [with_default]})), vec![]);
    // Optional and absent is fine.
    assert_eq!(
        codes(json!({"fields": [{"key": "f", "type": "text"}]})),
        vec![]
    );
}

#[test]
fn type_of_each_kind() {
    let cases = [
        ("text", json!("s"), json!(5), "must be text, got a number"),
        (
            "number",
            json!(1.5),
            json!("5"),
            "must be a number, got a string",
        ),
        (
            "boolean",
            json!(false),
            json!("yes"),
            "must be true or false, got a string",
        ),
        (
            "file",
            json!("a.txt"),
            json!(true),
            "must be a file path, got a boolean",
        ),
    ];
    for (kind, good, bad, message) in cases {
        let f = json!({"key": "f", "type": kind});
        assert_eq!(one_field(f.clone(), good), vec![], "{kind} good");
        let errs = check(json!({"fields": [f], "values": {"f": bad}}));
        assert_eq!(
            errs,
            vec![FieldError::new("values.f", "type", message)],
            "{kind}"
        );
    }
    let select = json!({"key": "f", "type": "select", "options": ["a"]});
    assert_eq!(one_field(select, json!(1)), vec![pair("values.f", "type")]);
    // json accepts any JSON value when it has no schema.
    assert_eq!(
        one_field(json!({"key": "f", "type": "json"}), json!([1, {"a": null}])),
        vec![]
    );
}

#[test]
fn range_and_integer() {
    let f = json!({"key": "f", "type": "number", "integer": true, "min": 0, "max": 10});
    assert_eq!(one_field(f.clone(), json!(0)), vec![]);
    assert_eq!(one_field(f.clone(), json!(10)), vec![]);
    let errs = check(json!({"fields": [f.clone()], "values": {"f": 11}}));
    assert_eq!(
        errs,
        vec![FieldError::new(
            "values.f",
            "range",
            "must be between 0 and 10, got 11"
        )]
    );
    assert_eq!(
        one_field(f.clone(), json!(-1)),
        vec![pair("values.f", "range")]
    );
    assert_eq!(one_field(f, json!(2.5)), vec![pair("values.f", "integer")]);
    let only_min = json!({"key": "f", "type": "number", "min": 1.5});
    assert_eq!(
        check(json!({"fields": [only_min], "values": {"f": 1}}))[0].message,
        "must be at least 1.5, got 1"
    );
    let only_max = json!({"key": "f", "type": "number", "max": 3});
    assert_eq!(
        check(json!({"fields": [only_max], "values": {"f": 4}}))[0].message,
        "must be at most 3, got 4"
    );
}

#[test]
fn text_lengths_count_characters() {
    let f = json!({"key": "f", "type": "text", "min_length": 2, "max_length": 3});
    assert_eq!(
        one_field(f.clone(), json!("żółw")),
        vec![pair("values.f", "max_length")]
    );
    assert_eq!(one_field(f.clone(), json!("żó")), vec![]);
    assert_eq!(
        one_field(f, json!("a")),
        vec![pair("values.f", "min_length")]
    );
}

#[test]
fn format() {
    let f = json!({"key": "f", "type": "text", "format": "email"});
    assert_eq!(one_field(f.clone(), json!("a@example.org")), vec![]);
    let errs = check(json!({"fields": [f], "values": {"f": "nope"}}));
    assert_eq!(
        errs,
        vec![FieldError::new(
            "values.f",
            "format",
            "must be an email address like name@example.org"
        )]
    );
}

#[test]
fn pattern() {
    let f = json!({"key": "f", "type": "text", "pattern": "^[a-z]+-\\d+$"});
    assert_eq!(one_field(f.clone(), json!("job-12")), vec![]);
    let errs = check(json!({"fields": [f], "values": {"f": "Job 12"}}));
    assert_eq!(errs[0].field, "values.f");
    assert_eq!(errs[0].code, "pattern");
    assert!(errs[0].message.contains("^[a-z]+-\\d+$"));
}

#[test]
fn a_pattern_too_large_to_compile_is_rejected_on_its_definition() {
    // Unicode \w repeated 1,000 times compiles past the size limit.
    let errs = check(json!({
        "fields": [{"key": "f", "type": "text", "pattern": "\\w{1000}"}],
        "values": {"f": "abc"}
    }));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        (errs[0].field.as_str(), errs[0].code.as_str()),
        ("fields.f.pattern", "pattern")
    );
    assert!(errs[0].message.contains("too large"), "{}", errs[0].message);
    // A syntax error still says what is wrong.
    let errs = check(json!({"fields": [{"key": "f", "type": "text", "pattern": "(a"}]}));
    assert_eq!(errs[0].field, "fields.f.pattern");
    assert!(
        errs[0].message.starts_with("invalid regular expression"),
        "{}",
        errs[0].message
    );
}

#[test]
fn fifty_fields_with_one_pattern_compile_it_once() {
    use crate::validation::patterns::compiles_on_this_thread;
    // Unique to this test, so no other test has put it in the shared cache;
    // the counter counts only this thread's compilations.
    let pattern = "^once-[a-z]{3}-\\w{2}$";
    let fields: Vec<Value> = (0..50)
        .map(|i| json!({"key": format!("p{i}"), "type": "text", "pattern": pattern, "default": "once-abc-x1"}))
        .collect();
    let values: serde_json::Map<String, Value> = (0..50)
        .map(|i| {
            (
                format!("p{i}"),
                json!(if i == 7 { "nope" } else { "once-xyz-ab" }),
            )
        })
        .collect();
    let doc = json!({"fields": fields, "values": values});
    let before = compiles_on_this_thread();
    let errs = check(doc.clone());
    assert_eq!(
        errs.iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect::<Vec<_>>(),
        vec![("values.p7", "pattern")]
    );
    assert_eq!(
        compiles_on_this_thread() - before,
        1,
        "50 definitions, defaults and values"
    );
    check(doc);
    assert_eq!(
        compiles_on_this_thread() - before,
        1,
        "a second validation uses the cache"
    );
}

#[test]
fn a_document_s_patterns_are_limited_together() {
    // Five distinct patterns the size of \w{120}: four fit the document's
    // limit. (The same texts as the patterns module's test: compiled once.)
    let fields: Vec<Value> = (0..5)
        .map(|i| json!({"key": format!("p{i}"), "type": "text", "pattern": format!("\\w{{120}}(?:doc-limit-{i})?")}))
        .collect();
    let errs = check(json!({"fields": fields}));
    assert_eq!(
        errs.iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect::<Vec<_>>(),
        vec![("fields.p4.pattern", "pattern")]
    );
    assert!(errs[0].message.contains("together"), "{}", errs[0].message);
}

#[test]
fn unicode_word_120_is_a_valid_pattern() {
    let f = json!({"key": "f", "type": "text", "pattern": "\\w{120}"});
    assert_eq!(one_field(f.clone(), json!("é".repeat(120))), vec![]);
    assert_eq!(
        one_field(f, json!("short")),
        vec![pair("values.f", "pattern")]
    );
}

#[test]
fn schema_patterns_are_size_limited() {
    // JSON Schema's \w is ASCII (ECMA); a nested repetition is what grows.
    let errs = codes(json!({"fields": [{"key": "f", "type": "json",
        "schema": {"type": "string", "pattern": "(x|a{1000}){1000}"}}]}));
    assert_eq!(errs, vec![pair("fields.f.schema", "schema")]);
    let ok =
        json!({"key": "f", "type": "json", "schema": {"type": "string", "pattern": "^[a-z]+$"}});
    assert_eq!(one_field(ok.clone(), json!("abc")), vec![]);
    assert_eq!(
        one_field(ok, json!("ABC")),
        vec![pair("values.f", "schema")]
    );
}

#[test]
fn options() {
    let f = json!({"key": "f", "type": "select", "options": ["fast", "safe"]});
    assert_eq!(one_field(f.clone(), json!("safe")), vec![]);
    let errs = check(json!({"fields": [f], "values": {"f": "slow"}}));
    assert_eq!(
        errs,
        vec![FieldError::new(
            "values.f",
            "options",
            "\"slow\" is not one of: fast, safe"
        )]
    );
}

#[test]
fn json_schema_errors_point_inside_the_value() {
    let f = json!({"key": "f", "type": "json", "schema": {
        "type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "maximum": 5}}}});
    assert_eq!(one_field(f.clone(), json!({"n": 3})), vec![]);
    assert_eq!(
        one_field(f.clone(), json!({"n": 9})),
        vec![pair("values.f.n", "schema")]
    );
    assert_eq!(
        one_field(f.clone(), json!({})),
        vec![pair("values.f", "schema")]
    );
    assert_eq!(one_field(f, json!([1])), vec![pair("values.f", "schema")]);
}

#[test]
fn file_extension_and_existence() {
    let f = json!({"key": "f", "type": "file", "extensions": ["csv", ".JSON"], "must_exist": true});
    let doc = |v: &str| json!({"fields": [f.clone()], "values": {"f": v}});
    let exists = |p: &str| p == "/data/in.csv";
    let ctx = ValidationContext::with_file_check(&exists);
    let run = |d: Value| {
        ConfigDocument::from_json(&d, &ctx)
            .err()
            .unwrap_or_default()
    };
    assert_eq!(run(doc("/data/in.csv")), vec![]);
    let errs = run(doc("/data/in.txt"));
    let got: Vec<&str> = errs.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(got, ["extension", "must_exist"]);
    assert_eq!(errs[0].message, "must be a file ending in .csv, ..JSON");
    assert_eq!(
        run(doc("/data/OUT.json"))
            .iter()
            .map(|e| e.code.as_str())
            .collect::<Vec<_>>(),
        ["must_exist"]
    );
    assert_eq!(run(doc(".csv"))[0].code, "extension");
    // Without a file check (no IO available), must_exist is not judged.
    assert_eq!(codes(doc("/nowhere/x.csv")), vec![]);
}

#[test]
fn named_custom_rules() {
    let cron = json!({"key": "f", "type": "text", "rule": "cron"});
    assert_eq!(one_field(cron.clone(), json!("*/15 * * * *")), vec![]);
    assert_eq!(
        one_field(cron, json!("every day")),
        vec![pair("values.f", "cron")]
    );
    let port = json!({"key": "f", "type": "number", "rule": "port"});
    assert_eq!(one_field(port.clone(), json!(5432)), vec![]);
    assert_eq!(
        one_field(port, json!(70000)),
        vec![pair("values.f", "port")]
    );
    let duration = json!({"key": "f", "type": "text", "rule": "duration"});
    assert_eq!(one_field(duration.clone(), json!("1h30m")), vec![]);
    assert_eq!(
        one_field(duration, json!("90 minutes")),
        vec![pair("values.f", "duration")]
    );
    let semver = json!({"key": "f", "type": "text", "rule": "semver"});
    assert_eq!(one_field(semver.clone(), json!("2.0.0")), vec![]);
    assert_eq!(
        one_field(semver, json!("2.0")),
        vec![pair("values.f", "semver")]
    );
}

fn nums(a: &str, b: &str) -> Value {
    json!([{"key": a, "type": "number"}, {"key": b, "type": "number"}])
}

/// A synced document keeps one entry per distinct rule and lists at most
/// 10,000: a copy of a rule, or past a thousand of them, is refused here
/// rather than lost or refused on every other device.
#[test]
fn rules_are_distinct_and_at_most_a_thousand() {
    let rule = json!({"rule": "less_than", "fields": ["lo", "hi"]});
    let other = json!({"rule": "less_than", "fields": ["hi", "lo"]});
    let doc = |rules: Value| json!({"fields": nums("lo", "hi"), "rules": rules});
    assert_eq!(codes(doc(json!([rule, other]))), vec![]);
    let errs = check(doc(json!([rule, other, rule])));
    assert_eq!(
        errs,
        vec![FieldError::new(
            "rules[2]",
            "duplicate",
            "the same rule as rules[0]"
        )]
    );
    let many: Vec<Value> = (0..1_001)
        .map(|i| json!({"rule": "required_if", "field": "lo", "if_field": "hi", "equals": i}))
        .collect();
    assert_eq!(codes(doc(json!(many))), vec![pair("rules", "max_items")]);
}

#[test]
fn less_than() {
    let rules = json!([{"rule": "less_than", "fields": ["lo", "hi"]}]);
    let doc = |lo: i64, hi: i64| json!({"fields": nums("lo", "hi"), "rules": rules, "values": {"lo": lo, "hi": hi}});
    assert_eq!(codes(doc(1, 2)), vec![]);
    let errs = check(doc(2, 2));
    assert_eq!(
        errs,
        vec![FieldError::new(
            "values.lo",
            "less_than",
            "must be less than hi (2), got 2"
        )]
    );
    // Not judged while one side has no value.
    assert_eq!(
        codes(json!({"fields": nums("lo", "hi"), "rules": rules, "values": {"lo": 5}})),
        vec![]
    );
}

#[test]
fn required_if() {
    let fields = json!([{"key": "mode", "type": "select", "options": ["fast", "safe"]}, {"key": "cert", "type": "file"}]);
    let rules =
        json!([{"rule": "required_if", "field": "cert", "if_field": "mode", "equals": "safe"}]);
    let doc = |values: Value| json!({"fields": fields, "rules": rules, "values": values});
    assert_eq!(codes(doc(json!({"mode": "fast"}))), vec![]);
    assert_eq!(codes(doc(json!({"mode": "safe", "cert": "c.pem"}))), vec![]);
    let errs = check(doc(json!({"mode": "safe"})));
    assert_eq!(
        errs,
        vec![FieldError::new(
            "values.cert",
            "required_if",
            "is required when mode is \"safe\""
        )]
    );
}

#[test]
fn one_of_required() {
    let fields = json!([{"key": "url", "type": "text"}, {"key": "path", "type": "file"}]);
    let rules = json!([{"rule": "one_of_required", "fields": ["url", "path"]}]);
    let doc = |values: Value| json!({"fields": fields, "rules": rules, "values": values});
    assert_eq!(codes(doc(json!({"path": "a"}))), vec![]);
    let errs = check(doc(json!({"url": ""})));
    assert_eq!(
        errs,
        vec![FieldError::new(
            "values.url",
            "one_of_required",
            "at least one of url, path needs a value"
        )]
    );
}

#[test]
fn malformed_cross_rules() {
    let fields = nums("a", "b");
    let cases = [
        (
            json!({"rule": "less_than", "fields": ["a"]}),
            "rules[0].fields",
            "arity",
        ),
        (
            json!({"rule": "less_than", "fields": ["a", "zz"]}),
            "rules[0].fields",
            "unknown_field",
        ),
        (
            json!({"rule": "required_if", "field": "a", "if_field": "b"}),
            "rules[0].equals",
            "required",
        ),
        (
            json!({"rule": "one_of_required", "fields": ["a"]}),
            "rules[0].fields",
            "arity",
        ),
        (
            json!({"rule": "sum_is_ten", "fields": ["a", "b"]}),
            "rules[0].rule",
            "unknown_rule",
        ),
        (
            json!({"rule": "less_than", "fields": ["a", "b"], "colour": 1}),
            "rules[0]",
            "invalid",
        ),
    ];
    for (rule, field, code) in cases {
        let got = codes(json!({"fields": fields, "rules": [rule.clone()]}));
        assert_eq!(got, vec![pair(field, code)], "{rule}");
    }
    let text = json!([{"key": "a", "type": "text"}, {"key": "b", "type": "number"}]);
    let got =
        codes(json!({"fields": text, "rules": [{"rule": "less_than", "fields": ["a", "b"]}]}));
    assert_eq!(got, vec![pair("rules[0].fields", "type")]);
}

#[test]
fn the_document_itself_is_validated() {
    let cases = [
        (
            json!({"fields": [{"key": "f", "type": "colour"}]}),
            "fields.f.type",
            "unknown_type",
        ),
        (
            json!({"fields": [{"key": "f"}]}),
            "fields.f.type",
            "required",
        ),
        (
            json!({"fields": [{"key": "f", "type": 3}]}),
            "fields.f.type",
            "type",
        ),
        (
            json!({"fields": [{"key": "f", "type": "text"}, {"key": "f", "type": "number"}]}),
            "fields.f",
            "duplicate",
        ),
        (
            json!({"fields": [{"key": "1st", "type": "text"}]}),
            "fields.1st",
            "key_format",
        ),
        (
            json!({"fields": [{"key": "a.b", "type": "text"}]}),
            "fields.a.b",
            "key_format",
        ),
        (
            json!({"fields": [{"key": "f", "type": "number", "min": 5, "max": 1}]}),
            "fields.f.min",
            "range",
        ),
        (
            json!({"fields": [{"key": "f", "type": "text", "min_length": 5, "max_length": 1}]}),
            "fields.f.min_length",
            "range",
        ),
        (
            json!({"fields": [{"key": "f", "type": "text", "pattern": "(unclosed"}]}),
            "fields.f.pattern",
            "pattern",
        ),
        (
            json!({"fields": [{"key": "f", "type": "text", "format": "colour"}]}),
            "fields.f.format",
            "unknown_format",
        ),
        (
            json!({"fields": [{"key": "f", "type": "text", "rule": "palindrome"}]}),
            "fields.f.rule",
            "unknown_rule",
        ),
        (
            json!({"fields": [{"key": "f", "type": "select"}]}),
            "fields.f.options",
            "required",
        ),
        (
            json!({"fields": [{"key": "f", "type": "select", "options": []}]}),
            "fields.f.options",
            "min_items",
        ),
        (
            json!({"fields": [{"key": "f", "type": "select", "options": ["a", "a"]}]}),
            "fields.f.options",
            "duplicate",
        ),
        (
            json!({"fields": [{"key": "f", "type": "json", "schema": {"type": "colour"}}]}),
            "fields.f.schema",
            "schema",
        ),
        (
            json!({"fields": [{"key": "f", "type": "file", "extensions": ["c sv"]}]}),
            "fields.f.extensions",
            "format",
        ),
        (
            json!({"fields": [{"key": "f", "type": "text", "min": 1}]}),
            "fields.f.min",
            "not_applicable",
        ),
        (
            json!({"fields": [{"key": "f", "type": "number", "options": ["a"]}]}),
            "fields.f.options",
            "not_applicable",
        ),
        (
            json!({"fields": [{"key": "f", "type": "boolean", "must_exist": true}]}),
            "fields.f.must_exist",
            "not_applicable",
        ),
        (
            json!({"fields": [{"key": "f", "type": "number", "max": 3, "default": 9}]}),
            "fields.f.default",
            "range",
        ),
        (
            json!({"fields": [{"key": "f", "type": "text", "colour": "red"}]}),
            "fields.f",
            "invalid",
        ),
        (
            json!({"fields": [], "values": {"ghost": 1}}),
            "values.ghost",
            "undeclared",
        ),
        (json!({"fields": {}}), "fields", "type"),
        (json!({"values": []}), "values", "type"),
        (
            json!({"fields": [], "extra": 1}),
            "extra",
            "unknown_property",
        ),
        (json!({"run": {"command": []}}), "run.command", "required"),
        (
            json!({"run": {"command": ["sh", "a\0b"]}}),
            "run.command[1]",
            "format",
        ),
        (
            json!({"run": {"command": ["sh"], "cwd": "/tmp\0x"}}),
            "run.cwd",
            "format",
        ),
        (
            json!({"run": {"command": ["sh"], "env": {"A": "x\0y"}}}),
            "run.env.A",
            "format",
        ),
        (
            json!({"run": {"command": ["x"], "timeout_s": 0}}),
            "run.timeout_s",
            "range",
        ),
        (
            json!({"run": {"command": ["x"], "timeout_s": 86401}}),
            "run.timeout_s",
            "range",
        ),
        (
            json!({"run": {"command": ["x"], "shell": true}}),
            "run",
            "invalid",
        ),
        (json!([1, 2]), "config", "type"),
        (
            json!({"retention": {"max_age": "soon"}}),
            "retention.max_age",
            "duration",
        ),
        (
            json!({"retention": {"max_count": 0}}),
            "retention.max_count",
            "range",
        ),
        (json!({"retention": {"keep": 3}}), "retention", "invalid"),
    ];
    for (doc, field, code) in cases {
        assert_eq!(codes(doc.clone()), vec![pair(field, code)], "{doc}");
    }
    let msg = &check(json!({"fields": [{"key": "f", "type": "colour"}]}))[0].message;
    assert_eq!(
        msg,
        "unknown config type \"colour\"; expected one of text, number, boolean, select, json, file, secret"
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let doc = json!({
        "fields": [
            {"key": "retries", "type": "number", "required": true, "integer": true, "min": 0, "max": 10},
            {"key": "mode", "type": "select", "options": ["fast", "safe"], "required": true},
            {"key": "endpoint", "type": "text", "format": "url"},
            {"key": "bad", "type": "text", "pattern": "["}
        ],
        "values": {"retries": 11, "mode": "slow", "endpoint": "not a url", "bad": "x", "ghost": true}
    });
    let mut got = codes(doc);
    got.sort();
    assert_eq!(
        got,
        vec![
            pair("fields.bad.pattern", "pattern"),
            pair("values.endpoint", "format"),
            pair("values.ghost", "undeclared"),
            pair("values.mode", "options"),
            pair("values.retries", "range"),
        ]
    );
}

#[test]
fn a_valid_run_spec_is_kept() {
    let doc = json!({"run": {"command": ["python3", "job.py"], "cwd": "/tmp", "env": {"A": "1"}, "timeout_s": 600}});
    let parsed = ConfigDocument::from_json(&doc, &ValidationContext::default()).unwrap();
    assert_eq!(parsed.run.unwrap().command, ["python3", "job.py"]);
}

#[test]
fn coercion_from_command_line_text() {
    use crate::config::{ConfigType, FieldDef};
    let n = FieldDef::new("n", ConfigType::Number);
    assert_eq!(n.coerce_text("5"), json!(5));
    assert_eq!(n.coerce_text("2.5"), json!(2.5));
    assert_eq!(n.coerce_text("five"), json!("five"));
    let b = FieldDef::new("b", ConfigType::Boolean);
    assert_eq!(b.coerce_text("true"), json!(true));
    assert_eq!(b.coerce_text("off"), json!(false));
    let j = FieldDef::new("j", ConfigType::Json);
    assert_eq!(j.coerce_text("{\"a\":1}"), json!({"a": 1}));
    let t = FieldDef::new("t", ConfigType::Text);
    assert_eq!(t.coerce_text("5"), json!("5"));
}

#[test]
fn a_schemas_patterns_share_the_documents_budget() {
    let schema_of = |n: usize| {
        let props: serde_json::Map<String, Value> = (0..n)
            .map(|i| {
                (
                    format!("a{i}"),
                    json!({"type": "string", "pattern": format!("\\p{{L}}{{{}}}", 40 + i)}),
                )
            })
            .collect();
        json!({"type": "object", "properties": props})
    };
    let few = json!({"fields": [{"key": "f", "type": "json", "schema": schema_of(2)}]});
    assert_eq!(codes(few), vec![]);
    let many = json!({"fields": [{"key": "f", "type": "json", "schema": schema_of(200)}]});
    let errs = check(many);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        (errs[0].field.as_str(), errs[0].code.as_str()),
        ("fields.f.schema", "schema")
    );
    assert!(
        errs[0]
            .message
            .contains("together compile to more than 32 MiB"),
        "{}",
        errs[0].message
    );
}

#[test]
fn patterns_sit_anywhere_in_a_schema() {
    let mut found = Vec::new();
    super::schema_patterns(
        &json!({"items": [{"pattern": "^a"}], "patternProperties": {"^x-": {}},
                "properties": {"pattern": {"type": "string"}}}),
        &mut found,
    );
    found.sort();
    assert_eq!(found, ["^a", "^x-"]);
}

#[test]
fn integers_past_2_pow_53_compare_exactly() {
    let field = json!({"key": "f", "type": "number", "integer": true, "max": 9007199254740992u64});
    assert_eq!(one_field(field.clone(), json!(9007199254740992u64)), vec![]);
    assert_eq!(
        one_field(field.clone(), json!(9007199254740993u64)),
        vec![pair("values.f", "range")]
    );
    assert_eq!(
        one_field(
            json!({"key": "f", "type": "number", "integer": true}),
            json!(1e300)
        ),
        vec![pair("values.f", "integer")]
    );
    let too_large = check(json!({
        "fields": [{"key": "f", "type": "number", "integer": true}],
        "values": {"f": 1e22}
    }));
    assert!(
        too_large[0].message.starts_with("is too large"),
        "{too_large:?}"
    );
    let pair_of = |a: u64, b: u64| {
        codes(json!({
            "fields": [{"key": "a", "type": "number"}, {"key": "b", "type": "number"}],
            "rules": [{"rule": "less_than", "fields": ["a", "b"]}],
            "values": {"a": a, "b": b}
        }))
    };
    assert_eq!(pair_of(9007199254740992, 9007199254740993), vec![]);
    assert_eq!(
        pair_of(9007199254740993, 9007199254740993),
        vec![pair("values.a", "less_than")]
    );
}

#[test]
fn no_message_about_a_secret_holds_its_value() {
    // A rule or format that does not apply to secrets is refused with the
    // definition; the value is not judged by it (its message quoted it).
    for rule in ["port", "cron", "duration", "semver"] {
        let errors = check(json!({
            "fields": [{"key": "f", "type": "secret", "rule": rule}],
            "values": {"f": "LEAKME7"}
        }));
        assert_eq!(
            errors
                .iter()
                .map(|e| (e.field.as_str(), e.code.as_str()))
                .collect::<Vec<_>>(),
            [("fields.f.rule", "not_applicable")],
            "{rule}: {errors:?}"
        );
    }
    // Every rule that does apply, failing.
    let errors = check(json!({
        "fields": [
            {"key": "a", "type": "secret", "min_length": 20},
            {"key": "b", "type": "secret", "max_length": 2},
            {"key": "c", "type": "secret", "format": "email"},
            {"key": "d", "type": "secret", "pattern": "^[0-9]+$"}
        ],
        "values": {"a": "LEAKME7", "b": "LEAKME7", "c": "LEAKME7", "d": "LEAKME7"}
    }));
    assert_eq!(errors.len(), 4, "{errors:?}");
    for e in &errors {
        assert!(!e.message.contains("LEAKME7"), "{e:?}");
    }
    // A secret that happens to be part of a message's words leaves the
    // message whole (masking it there would show where it is).
    let errors = check(json!({
        "fields": [{"key": "a", "type": "secret", "min_length": 20}],
        "values": {"a": "ters"}
    }));
    assert_eq!(errors[0].message, "must be at least 20 characters, got 4");
}
