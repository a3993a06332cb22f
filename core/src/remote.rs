//! Checks for data that arrives from another device by sync, made before any
//! of it is merged. Remote data gets the rules a local command gets (types,
//! sizes, ids), plus what only remote data can get wrong: a run record that
//! claims another log, another device or this device. Pure functions over
//! plain values; the sync client reads the documents and calls them, and
//! whatever fails is recorded as rejected instead of merged.
//!
//! A merged config may still break its own value rules: values and rules
//! merge per key from several devices, so a state no device wrote can break
//! them. That is flagged on the workflow (`validation_errors`), not rejected,
//! or two valid concurrent edits would block the workflow everywhere. What a
//! single device writes as a whole (field definitions, run spec, retention)
//! must be valid as it stands.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::commands::{FinishRun, StartRun};
use crate::config::{ConfigDocument, CrossRule, FieldDef, RetentionPolicy, RunSpec};
use crate::error::FieldError;
use crate::run::Run;
use crate::validation::{bounds, ValidationContext};
use crate::workflow::check_fields;
use crate::workflow::{FieldConflict, WorkflowSpec};

/// Largest config document (as JSON) a workflow may carry; the local HTTP
/// API's request limit is the same size.
pub const MAX_CONFIG_BYTES: usize = 2 * 1024 * 1024;
/// Deepest nesting of one JSON value (a config value, the field definitions,
/// a run's output). Stored events wrap values a few levels deeper and must
/// stay under serde_json's recursion limit of 128 to be read back.
pub const MAX_JSON_DEPTH: usize = 64;
/// A run's output as synced: the sender replaces anything longer by a short
/// summary, so a longer one was not written by flowkeep.
pub const MAX_SYNCED_OUTPUT_BYTES: usize = 4096;
/// A run record as JSON text, checked before it is parsed.
pub const MAX_RUN_RECORD_BYTES: usize = 64 * 1024;
/// `error` of a finished run (as `finish_run` allows).
pub const MAX_ERROR_CHARS: usize = 10_000;
/// `trigger` of a run (as `start_run` allows).
pub const MAX_TRIGGER_CHARS: usize = 50;
/// An author name taken from a commit message.
pub const MAX_ACTOR_CHARS: usize = crate::actor::MAX_CHARS;
/// A rejection's reason as recorded.
pub const MAX_REASON_CHARS: usize = 600;
/// Remote text quoted in a reason.
const QUOTE_CHARS: usize = 60;

/// An id as flowkeep writes it: a UUID in its canonical lowercase,
/// hyphenated form. Anything else (`../x`, a URN, braces) is refused, so
/// an id that passes is safe as a file name.
pub fn parse_id(s: &str) -> Option<uuid::Uuid> {
    let id = uuid::Uuid::try_parse(s).ok()?;
    (id.hyphenated().to_string() == s).then_some(id)
}

/// `YYYY-MM` of a time in ms, as execution-log keys use it (`0000-00` when
/// out of range).
pub fn month_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m").to_string())
        .unwrap_or_else(|| "0000-00".into())
}

/// The key of an execution-log document: `<workflow_id>/<device_id>/<YYYY-MM>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKey {
    pub workflow_id: String,
    pub device_id: String,
    pub month: String,
}

impl LogKey {
    pub fn new(workflow_id: &str, device_id: &str, started_at: i64) -> LogKey {
        LogKey {
            workflow_id: workflow_id.to_owned(),
            device_id: device_id.to_owned(),
            month: month_of(started_at),
        }
    }

    /// A key whose ids are UUIDs and whose month looks like one.
    pub fn parse(key: &str) -> Result<LogKey, String> {
        let bad = |why: &str| format!("execution-log key {}: {why}", quote(key));
        let mut parts = key.split('/');
        let (Some(wf), Some(dev), Some(month), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected <workflow id>/<device id>/<YYYY-MM>"));
        };
        if parse_id(wf).is_none() {
            return Err(bad("the workflow id is not a UUID"));
        }
        if parse_id(dev).is_none() {
            return Err(bad("the device id is not a UUID"));
        }
        let digits = month.trim_start_matches(['+', '-']);
        let ok = month.len() <= 10
            && digits
                .split_once('-')
                .is_some_and(|(y, m)| y.len() >= 4 && m.len() == 2 && is_digits(y) && is_digits(m));
        if !ok {
            return Err(bad("the month is not YYYY-MM"));
        }
        Ok(LogKey {
            workflow_id: wf.to_owned(),
            device_id: dev.to_owned(),
            month: month.to_owned(),
        })
    }
}

impl std::fmt::Display for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.workflow_id, self.device_id, self.month)
    }
}

fn is_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// How deeply a JSON value nests (a scalar is 1). Iterative: the value may
/// come from anywhere.
pub fn json_depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|x| (x, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// JSON text from a document: at most `max_bytes`, well formed, and nested
/// at most `MAX_JSON_DEPTH` deep.
pub fn parse_json_text(text: &str, max_bytes: usize) -> Result<Value, String> {
    if text.len() > max_bytes {
        return Err(format!("{} bytes of JSON; at most {max_bytes}", text.len()));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    bounds::depth(&v)?;
    Ok(v)
}

/// Remote text for a message: cut short, control characters escaped, quoted.
pub fn quote(s: &str) -> String {
    let n = s.chars().count();
    let head: String = s.chars().take(QUOTE_CHARS).collect();
    if n > QUOTE_CHARS {
        format!("\"{}\"… ({n} characters)", head.escape_debug())
    } else {
        format!("\"{}\"", head.escape_debug())
    }
}

/// Problems as one line for a rejection's reason, cut to `MAX_REASON_CHARS`.
pub fn describe(errors: &[FieldError]) -> String {
    let text = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ");
    clip(&text, MAX_REASON_CHARS)
}

/// At most `max` characters, marked when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The author a commit message claims, made safe to record: a device id that
/// is not a UUID becomes `None`, a long actor name is cut, and control
/// characters (a line break that would fake a line of history, a
/// terminal's escape) are dropped.
pub fn claimed_author(device_id: &str, actor: &str) -> (Option<String>, String) {
    let device = parse_id(device_id).map(|_| device_id.to_owned());
    (device, crate::actor::from_system(actor).unwrap_or_default())
}

/// A config value's key: what a field key may be (a letter or `_`, then up
/// to 63 letters, digits, `_` or `-`).
fn is_field_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && key.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Every problem with a workflow document's content. `key` is the id the
/// workspace root lists it under, `id` the one the document holds.
pub fn check_workflow(
    key: &str,
    id: &str,
    spec: &WorkflowSpec,
    conflicts: &[FieldConflict],
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if parse_id(key).is_none() {
        errors.push(FieldError::new(
            "id",
            "uuid",
            format!("workflow id {} is not a UUID", quote(key)),
        ));
    } else if id != key {
        errors.push(FieldError::new(
            "id",
            "mismatch",
            format!(
                "the document holds workflow {} but is listed as {key}",
                quote(id)
            ),
        ));
    }
    errors.extend(check_fields(
        &spec.name,
        &spec.description,
        &spec.version,
        &spec.tags,
    ));
    errors.extend(check_config(&spec.config));
    for c in conflicts {
        for v in &c.values {
            for mut e in check_value_at(&c.field, v) {
                e.message = format!("a conflicting value: {}", e.message);
                errors.push(e);
            }
        }
    }
    errors.dedup();
    errors
}

/// A config document as a whole: its size, how deeply its parts nest, and
/// the parts one device writes as a whole (field definitions, run spec,
/// retention), which must be valid as they stand. Value keys must be keys.
pub fn check_config(config: &ConfigDocument) -> Vec<FieldError> {
    // The bounds a device holds its own user to, under this document's
    // paths; a value under a key that is no key is reported as that alone
    // (its key is another client's text, quoted).
    let mut errors: Vec<FieldError> = bounds::check(config)
        .into_iter()
        .filter(|e| e.field.strip_prefix("values.").is_none_or(is_field_key))
        .map(|e| match e.field.as_str() {
            "config" => e,
            path => FieldError::new(format!("config.{path}"), &e.code, e.message),
        })
        .collect();
    if errors.iter().any(|e| e.field == "config") {
        return errors;
    }
    for key in config.values.keys().filter(|k| !is_field_key(k)) {
        errors.push(FieldError::new(
            "config.values",
            "key_format",
            format!("{} is not a field key", quote(key)),
        ));
    }
    if !errors.is_empty() {
        return errors;
    }
    // The definitions alone: no values and no rules, which merge per key.
    let definitions = ConfigDocument {
        fields: config.fields.clone(),
        rules: vec![],
        values: Map::new(),
        run: config.run.clone(),
        retention: config.retention.clone(),
    };
    // No file checks: whether a path exists is this device's business.
    for e in definitions.validate(&ValidationContext::default()) {
        let whole = ["fields", "run", "retention"]
            .iter()
            .any(|p| e.field == *p || e.field.starts_with(&format!("{p}.")));
        if whole {
            errors.push(FieldError::new(
                format!("config.{}", e.field),
                &e.code,
                e.message,
            ));
        }
    }
    errors
}

/// One value of a field edited concurrently (`field` as in `FieldConflict`).
fn check_value_at(field: &str, v: &Value) -> Vec<FieldError> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let not = |expected: &str| {
        vec![FieldError::new(
            field,
            "type",
            format!(
                "must be {expected}, got {}",
                crate::config::parse_json_type(v)
            ),
        )]
    };
    match field {
        "name" => match text(v) {
            Some(s) => check_fields(&s, "", "1.0.0", &[]),
            None => not("a string"),
        },
        "description" => match text(v) {
            Some(s) => check_fields("n", &s, "1.0.0", &[]),
            None => not("a string"),
        },
        "version" => match text(v) {
            Some(s) => check_fields("n", "", &s, &[]),
            None => not("a string"),
        },
        "tags" => match serde_json::from_value::<Vec<String>>(v.clone()) {
            Ok(tags) => check_fields("n", "", "1.0.0", &tags),
            Err(_) => not("an array of strings"),
        },
        "deleted" if v.is_boolean() => vec![],
        "deleted" => not("true or false"),
        "config.fields" => typed::<Vec<FieldDef>>(field, v),
        "config.rules" => typed::<Vec<CrossRule>>(field, v),
        "config.run" => typed::<Option<RunSpec>>(field, v),
        "config.retention" => typed::<Option<RetentionPolicy>>(field, v),
        path => match path.strip_prefix("config.values.") {
            Some(key) if is_field_key(key) => {
                let mut errors = sized(field, v, MAX_CONFIG_BYTES);
                if let Err(m) = bounds::depth(v) {
                    errors.push(FieldError::new(field, "depth", m));
                }
                errors
            }
            Some(key) => vec![FieldError::new(
                "config.values",
                "key_format",
                format!("{} is not a field key", quote(key)),
            )],
            None => vec![FieldError::new(
                "conflicts",
                "unknown_field",
                format!("{} is not a workflow field", quote(path)),
            )],
        },
    }
}

fn sized(field: &str, v: &Value, max: usize) -> Vec<FieldError> {
    let size = serde_json::to_vec(v).map_or(usize::MAX, |b| b.len());
    if size > max {
        vec![FieldError::new(
            field,
            "size",
            format!("{size} bytes of JSON; at most {max}"),
        )]
    } else {
        vec![]
    }
}

/// A part of the config as a value: its size, depth and shape.
fn typed<T: DeserializeOwned>(field: &str, v: &Value) -> Vec<FieldError> {
    let mut errors = sized(field, v, MAX_CONFIG_BYTES);
    if let Err(m) = bounds::depth(v) {
        errors.push(FieldError::new(field, "depth", m));
    }
    if errors.is_empty() {
        if let Err(e) = serde_json::from_value::<T>(v.clone()) {
            errors.push(FieldError::new(field, "type", clip(&e.to_string(), 200)));
        }
    }
    errors
}

/// A run record's field: name, whether required, its type check, and what
/// the check expects (for the message).
type FieldShape = (&'static str, bool, fn(&Value) -> bool, &'static str);

/// Where a run record was found: the log it came in, its key in that log,
/// and the device doing the checking.
#[derive(Debug, Clone, Copy)]
pub struct RunOrigin<'a> {
    pub log: &'a LogKey,
    pub key: &'a str,
    pub this_device: &'a str,
    /// Now, on this device (Unix ms): a run cannot have started or ended
    /// more than `MAX_CLOCK_AHEAD_MS` after it.
    pub now_ms: i64,
}

/// How far ahead of this device's clock another device's may run before
/// its run records are refused as from the future.
pub const MAX_CLOCK_AHEAD_MS: i64 = 24 * 3600 * 1000;

/// A run record (JSON text) from another device's execution log: its shape,
/// its sizes, and that it belongs where it was found. Returns the run, or
/// every problem.
pub fn check_run(text: &str, origin: RunOrigin<'_>) -> Result<Run, Vec<FieldError>> {
    let one = |field: &str, code: &str, m: String| Err(vec![FieldError::new(field, code, m)]);
    let value = match parse_json_text(text, MAX_RUN_RECORD_BYTES) {
        Ok(v) => v,
        Err(m) => return one("run", "format", m),
    };
    let Some(obj) = value.as_object() else {
        return one(
            "run",
            "type",
            format!(
                "must be a JSON object, got {}",
                crate::config::parse_json_type(&value)
            ),
        );
    };
    let mut errors = Vec::new();
    let is_int = |v: &Value| v.as_i64().is_some();
    let int_or_null = |v: &Value| v.is_null() || v.as_i64().is_some();
    let str_or_null = |v: &Value| v.is_null() || v.is_string();
    let shape: [FieldShape; 13] = [
        ("id", true, Value::is_string, "a string"),
        ("workflow_id", true, Value::is_string, "a string"),
        ("device_id", true, Value::is_string, "a string"),
        ("status", true, Value::is_string, "a string"),
        ("trigger", true, Value::is_string, "a string"),
        ("started_at", true, is_int, "an integer"),
        ("completed_at", false, int_or_null, "an integer or null"),
        ("duration_ms", false, int_or_null, "an integer or null"),
        ("exit_code", false, int_or_null, "an integer or null"),
        ("error", false, str_or_null, "a string or null"),
        ("output", false, |_| true, "JSON"),
        (
            "workflow_revision",
            false,
            |v| v.is_null() || v.as_u64().is_some(),
            "a whole number or null",
        ),
        (
            "config_hash",
            false,
            |v| {
                v.is_null()
                    || v.as_str().is_some_and(|h| {
                        (1..=64).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit())
                    })
            },
            "up to 64 hex digits or null",
        ),
    ];
    for (field, required, ok, expected) in shape {
        match obj.get(field) {
            None if required => errors.push(FieldError::new(field, "required", "is missing")),
            None => {}
            Some(v) if !ok(v) => errors.push(FieldError::new(
                field,
                "type",
                format!(
                    "must be {expected}, got {}",
                    crate::config::parse_json_type(v)
                ),
            )),
            Some(_) => {}
        }
    }
    if let Some(s) = obj.get("status").and_then(Value::as_str) {
        if crate::run::RunStatus::parse(s).is_none() {
            errors.push(FieldError::new(
                "status",
                "one_of",
                format!("{} is not a run status", quote(s)),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let run: Run = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => return one("run", "type", clip(&e.to_string(), 200)),
    };
    let log = origin.log;
    // Output has its own, smaller bound when synced (checked below).
    errors.extend(crate::run::check_outcome("", run.exit_code, None));
    if run.id != origin.key {
        errors.push(FieldError::new(
            "id",
            "mismatch",
            format!(
                "the record is stored under {} but says it is run {}",
                quote(origin.key),
                quote(&run.id)
            ),
        ));
    }
    if parse_id(&run.id).is_none() {
        errors.push(FieldError::new(
            "id",
            "uuid",
            format!("run id {} is not a UUID", quote(&run.id)),
        ));
    }
    if run.workflow_id != log.workflow_id {
        errors.push(FieldError::new(
            "workflow_id",
            "mismatch",
            format!(
                "run of workflow {} in the log of workflow {}",
                quote(&run.workflow_id),
                log.workflow_id
            ),
        ));
    }
    if run.device_id == origin.this_device {
        errors.push(FieldError::new(
            "device_id",
            "this_device",
            "claims to be a run of this device, which did not record it",
        ));
    } else if run.device_id != log.device_id {
        errors.push(FieldError::new(
            "device_id",
            "mismatch",
            format!(
                "run of device {} in the log of device {}",
                quote(&run.device_id),
                log.device_id
            ),
        ));
    }
    if month_of(run.started_at) != log.month {
        errors.push(FieldError::new(
            "started_at",
            "mismatch",
            format!(
                "started in {}, in the log of {}",
                month_of(run.started_at),
                quote(&log.month)
            ),
        ));
    }
    // Times are real dates, not after tomorrow here: a run from year 2999
    // would stay the newest forever (and take every place a retention
    // count keeps), and one from past what a date can be would make
    // `completed_at - started_at` overflow the duration every listing reads.
    let latest = origin.now_ms.saturating_add(MAX_CLOCK_AHEAD_MS);
    for (field, t) in [
        ("started_at", Some(run.started_at)),
        ("completed_at", run.completed_at),
    ] {
        match t {
            Some(t) if t < 0 => errors.push(FieldError::new(field, "range", "is before 1970")),
            Some(t) if t > latest => errors.push(FieldError::new(
                field,
                "range",
                "is more than a day ahead of this device's clock",
            )),
            _ => {}
        }
    }
    if let Some(done) = run.completed_at {
        if done < run.started_at {
            errors.push(FieldError::new(
                "completed_at",
                "range",
                "is before started_at",
            ));
        }
    }
    if run.duration_ms.is_some_and(|d| d < 0) {
        errors.push(FieldError::new(
            "duration_ms",
            "range",
            "must not be negative",
        ));
    }
    if let Some(out) = &run.output {
        errors.extend(sized("output", out, MAX_SYNCED_OUTPUT_BYTES));
    }
    let start = StartRun {
        workflow_id: run.workflow_id.clone(),
        status: None,
        trigger: Some(run.trigger.clone()),
    };
    let finish = FinishRun {
        id: run.id.clone(),
        status: run.status,
        exit_code: run.exit_code,
        output: None,
        error: run.error.clone(),
    };
    for result in [
        validator::Validate::validate(&start),
        validator::Validate::validate(&finish),
    ] {
        if let Err(e) = result {
            errors.extend(crate::commands::field_errors(&e));
        }
    }
    if errors.is_empty() {
        Ok(run)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WF: &str = "0190a4b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b";
    const DEV: &str = "0190a4b2-7c3d-7e4f-8a5b-000000000002";
    const ME: &str = "0190a4b2-7c3d-7e4f-8a5b-000000000001";
    const RUN: &str = "0190a4b2-7c3d-7e4f-8a5b-0000000000aa";
    // 2024-07-01T00:00:00Z
    const JULY: i64 = 1_719_792_000_000;
    /// Now, in these tests: a month after the runs.
    const NOW: i64 = JULY + 31 * 24 * 3600 * 1000;

    fn spec() -> WorkflowSpec {
        serde_json::from_value(json!({
            "name": "etl", "description": "d", "version": "1.0.0", "tags": ["a"],
            "config": {"fields": [{"key": "n", "type": "number", "max": 10}],
                       "values": {"n": 1},
                       "run": {"command": ["true"], "timeout_s": 5},
                       "retention": {"max_count": 3}}
        }))
        .unwrap()
    }

    fn fields(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect()
    }

    #[test]
    fn ids_must_be_canonical_uuids() {
        assert!(parse_id(WF).is_some());
        for bad in [
            "../../victim",
            "",
            "0190A4B2-7C3D-7E4F-8A5B-6C7D8E9F0A1B",
            "0190a4b27c3d7e4f8a5b6c7d8e9f0a1b",
            "urn:uuid:0190a4b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b",
            "{0190a4b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b}",
            "0190a4b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b/..",
        ] {
            assert!(parse_id(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn log_keys_are_parsed_strictly() {
        let key = LogKey::new(WF, DEV, JULY);
        assert_eq!(key.to_string(), format!("{WF}/{DEV}/2024-07"));
        assert_eq!(LogKey::parse(&key.to_string()).unwrap(), key);
        for bad in [
            format!("{WF}/../2024-07"),
            format!("../../x/{DEV}/2024-07"),
            format!("{WF}/{DEV}/2024-07/extra"),
            format!("{WF}/{DEV}"),
            format!("{WF}/{DEV}/july"),
            format!("{WF}/{DEV}/2024-7"),
        ] {
            let err = LogKey::parse(&bad).unwrap_err();
            assert!(err.starts_with("execution-log key"), "{err}");
        }
        assert_eq!(LogKey::new(WF, DEV, i64::MAX).month, "0000-00");
        assert!(LogKey::parse(&format!("{WF}/{DEV}/0000-00")).is_ok());
    }

    #[test]
    fn a_valid_workflow_passes() {
        assert_eq!(check_workflow(WF, WF, &spec(), &[]), vec![]);
    }

    #[test]
    fn workflow_limits_are_the_local_ones() {
        let mut s = spec();
        s.name = "x".repeat(10 * 1024 * 1024);
        s.description = "d".repeat(10_001);
        s.version = "one".into();
        s.tags = (0..21).map(|i| format!("t{i}")).collect();
        let errors = check_workflow(WF, WF, &s, &[]);
        assert_eq!(
            fields(&errors),
            [
                ("description", "length"),
                ("name", "length"),
                ("tags", "length"),
                ("version", "format")
            ]
        );
        assert!(
            errors.iter().all(|e| e.message.len() < 200),
            "no remote text echoed whole: {errors:?}"
        );
        // The same limits a local create enforces, at the boundary.
        let mut s = spec();
        s.name = "n".repeat(200);
        s.description = "d".repeat(10_000);
        s.tags = (0..20).map(|i| format!("t{i}")).collect();
        assert_eq!(check_workflow(WF, WF, &s, &[]), vec![]);
        s.name = "   ".into();
        assert_eq!(
            fields(&check_workflow(WF, WF, &s, &[])),
            [("name", "length")]
        );
        s.name = "ok".into();
        s.tags = vec!["has space".into()];
        assert_eq!(
            fields(&check_workflow(WF, WF, &s, &[])),
            [("tags", "format")]
        );
        // Text that would drive the reader's terminal.
        s.tags = vec![];
        s.name = "job\u{1b}]0;owned\u{7}".into();
        s.description = "two\nlines, then \u{1b}[2J".into();
        assert_eq!(
            fields(&check_workflow(WF, WF, &s, &[])),
            [("description", "format"), ("name", "format")]
        );
    }

    #[test]
    fn the_ids_of_a_workflow_document_must_agree() {
        assert_eq!(
            fields(&check_workflow("../../x", "../../x", &spec(), &[])),
            [("id", "uuid")]
        );
        let other = "0190a4b2-7c3d-7e4f-8a5b-6c7d8e9f0a1c";
        let errors = check_workflow(WF, other, &spec(), &[]);
        assert_eq!(fields(&errors), [("id", "mismatch")]);
        assert!(errors[0].message.contains(other));
    }

    #[test]
    fn deep_or_large_config_values_are_refused() {
        let mut deep = json!(1);
        for _ in 0..MAX_JSON_DEPTH {
            deep = json!([deep]);
        }
        let mut s = spec();
        s.config.values.insert("n".into(), deep);
        assert_eq!(
            fields(&check_workflow(WF, WF, &s, &[])),
            [("config.values.n", "depth")]
        );
        let mut s = spec();
        s.config
            .values
            .insert("n".into(), json!("x".repeat(MAX_CONFIG_BYTES)));
        assert_eq!(
            fields(&check_workflow(WF, WF, &s, &[])),
            [("config", "size")]
        );
        let mut s = spec();
        s.config.values.insert("../x".into(), json!(1));
        assert_eq!(
            fields(&check_workflow(WF, WF, &s, &[])),
            [("config.values", "key_format")]
        );
    }

    #[test]
    fn definitions_must_be_valid_but_merged_values_are_only_flagged() {
        let mut s = spec();
        // A value that breaks its field's rule, and one for a field another
        // device removed: what a merge of two valid edits can produce.
        s.config.values.insert("n".into(), json!(99));
        s.config.values.insert("gone".into(), json!(1));
        assert_eq!(check_workflow(WF, WF, &s, &[]), vec![]);

        let mut s = spec();
        s.config.run = Some(RunSpec {
            command: vec![],
            ..serde_json::from_value(json!({"command": ["x"]})).unwrap()
        });
        s.config.retention = Some(RetentionPolicy {
            max_age: None,
            max_count: Some(0),
        });
        s.config.fields[0].key = "bad key".into();
        let got = fields(&check_workflow(WF, WF, &s, &[]))
            .into_iter()
            .map(|(f, _)| f.to_owned())
            .collect::<Vec<_>>();
        assert!(
            got.iter().any(|f| f.starts_with("config.fields")),
            "{got:?}"
        );
        assert!(got.iter().any(|f| f.starts_with("config.run")), "{got:?}");
        assert!(
            got.iter().any(|f| f.starts_with("config.retention")),
            "{got:?}"
        );
    }

    #[test]
    fn conflicting_values_get_the_same_checks() {
        let ok = FieldConflict {
            field: "name".into(),
            values: vec![json!("etl"), json!("other")],
        };
        assert_eq!(check_workflow(WF, WF, &spec(), &[ok]), vec![]);
        let cases = [
            ("name", json!("x".repeat(201)), ("name", "length")),
            ("name", json!(5), ("name", "type")),
            ("tags", json!("nope"), ("tags", "type")),
            ("deleted", json!("yes"), ("deleted", "type")),
            ("config.run", json!({"command": 5}), ("config.run", "type")),
            (
                "config.values.n",
                json!("x".repeat(MAX_CONFIG_BYTES + 1)),
                ("config.values.n", "size"),
            ),
            (
                "config.values.a b",
                json!(1),
                ("config.values", "key_format"),
            ),
            ("owner", json!(1), ("conflicts", "unknown_field")),
        ];
        for (field, bad, want) in cases {
            let c = FieldConflict {
                field: field.into(),
                values: vec![bad],
            };
            let errors = check_workflow(WF, WF, &spec(), &[c]);
            assert_eq!(fields(&errors), [want], "{field}");
            assert!(errors[0].message.starts_with("a conflicting value"));
        }
    }

    fn record(overrides: Value) -> String {
        let mut v = json!({
            "id": RUN, "workflow_id": WF, "device_id": DEV, "status": "succeeded",
            "output": {"result": {"rows": 1}}, "started_at": JULY + 1000,
            "completed_at": JULY + 2000, "duration_ms": 1000, "exit_code": 0,
            "error": null, "trigger": "cli"
        });
        for (k, x) in overrides.as_object().unwrap() {
            if x.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = x.clone();
            }
        }
        v.to_string()
    }

    fn check(text: &str) -> Result<Run, Vec<FieldError>> {
        let log = LogKey::new(WF, DEV, JULY);
        check_run(
            text,
            RunOrigin {
                log: &log,
                key: RUN,
                this_device: ME,
                now_ms: NOW,
            },
        )
    }

    fn problems(overrides: Value) -> Vec<(String, String)> {
        check(&record(overrides))
            .unwrap_err()
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect()
    }

    fn p(f: &str, c: &str) -> (String, String) {
        (f.to_owned(), c.to_owned())
    }

    #[test]
    fn run_times_are_real_dates_and_not_from_the_future() {
        assert_eq!(
            problems(json!({"completed_at": i64::MAX})),
            [p("completed_at", "range")],
            "would overflow the duration every listing reads"
        );
        assert_eq!(
            problems(json!({"completed_at": NOW + MAX_CLOCK_AHEAD_MS + 1})),
            [p("completed_at", "range")]
        );
        assert!(
            check(&record(json!({"completed_at": NOW + MAX_CLOCK_AHEAD_MS}))).is_ok(),
            "a clock a little ahead is fine"
        );
        assert!(problems(json!({"started_at": -1, "completed_at": 5}))
            .contains(&p("started_at", "range")));
    }

    #[test]
    fn a_claimed_actor_holds_no_control_character() {
        let (device, actor) = claimed_author("not-a-uuid", "mallory\n2026-01-01  alice\u{1b}[2J");
        assert_eq!(device, None);
        assert_eq!(actor, "mallory2026-01-01  alice[2J");
    }

    #[test]
    fn a_valid_run_record_passes() {
        let run = check(&record(json!({}))).unwrap();
        assert_eq!(run.id, RUN);
        assert_eq!(run.output, Some(json!({"result": {"rows": 1}})));
    }

    #[test]
    fn run_records_must_belong_to_their_log() {
        assert_eq!(
            problems(json!({"id": "../../victim"})),
            [p("id", "mismatch"), p("id", "uuid")]
        );
        assert_eq!(
            problems(json!({"device_id": ME})),
            [p("device_id", "this_device")]
        );
        let other = "0190a4b2-7c3d-7e4f-8a5b-000000000003";
        assert_eq!(
            problems(json!({"device_id": other})),
            [p("device_id", "mismatch")]
        );
        assert_eq!(
            problems(json!({"workflow_id": other})),
            [p("workflow_id", "mismatch")]
        );
        assert_eq!(
            problems(json!({"started_at": JULY - 1, "completed_at": JULY})),
            [p("started_at", "mismatch")]
        );
    }

    #[test]
    fn run_records_have_types_and_sizes() {
        assert_eq!(
            problems(json!({"status": 5, "started_at": "soon", "trigger": null})),
            [
                p("status", "type"),
                p("trigger", "required"),
                p("started_at", "type")
            ]
        );
        assert_eq!(
            problems(json!({"status": "exploded"})),
            [p("status", "one_of")]
        );
        assert_eq!(
            problems(json!({"output": {"stdout_tail": "x".repeat(MAX_SYNCED_OUTPUT_BYTES)}})),
            [p("output", "size")]
        );
        assert_eq!(
            problems(json!({"error": "e".repeat(MAX_ERROR_CHARS + 1)})),
            [p("error", "length")]
        );
        assert_eq!(
            problems(json!({"trigger": "t".repeat(MAX_TRIGGER_CHARS + 1)})),
            [p("trigger", "length")]
        );
        assert_eq!(
            problems(json!({"completed_at": JULY, "duration_ms": -1})),
            [p("completed_at", "range"), p("duration_ms", "range")]
        );
        // Just within the limits.
        check(&record(json!({
            "error": "e".repeat(MAX_ERROR_CHARS),
            "trigger": "t".repeat(MAX_TRIGGER_CHARS),
        })))
        .unwrap();
        let big = "x".repeat(MAX_RUN_RECORD_BYTES + 1);
        assert_eq!(
            fields(&check(&big).unwrap_err()),
            [("run", "format")],
            "too large to parse"
        );
        assert_eq!(fields(&check("[1]").unwrap_err()), [("run", "type")]);
        assert_eq!(fields(&check("{nope").unwrap_err()), [("run", "format")]);
        let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(fields(&check(&deep).unwrap_err()), [("run", "format")]);
    }

    #[test]
    fn reasons_are_short_and_escaped() {
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        let q = quote(&"y".repeat(1000));
        assert!(q.len() < 100 && q.ends_with("(1000 characters)"), "{q}");
        let many: Vec<FieldError> = (0..100)
            .map(|i| FieldError::new(format!("f{i}"), "c", "m".repeat(50)))
            .collect();
        assert!(describe(&many).chars().count() <= MAX_REASON_CHARS);
        assert_eq!(
            claimed_author("../x", &"a".repeat(500)),
            (None, "a".repeat(MAX_ACTOR_CHARS - 1) + "…")
        );
        assert_eq!(
            claimed_author(DEV, " bob "),
            (Some(DEV.to_owned()), "bob".into())
        );
    }

    #[test]
    fn json_depth_counts_levels() {
        assert_eq!(json_depth(&json!(1)), 1);
        assert_eq!(json_depth(&json!({"a": [1, {"b": 2}]})), 4);
        assert!(parse_json_text("[[[1]]]", 100).is_ok());
        assert!(parse_json_text("[1]", 2).unwrap_err().contains("at most 2"));
    }
}
