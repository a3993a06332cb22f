//! Patterns through the real commands: a config with 50 `\w{120}` fields is
//! accepted and edited; a pattern too large to compile is refused with the
//! field and the rule, and changes nothing.

mod common;

use common::*;
use flowkeep_app::Error;
use flowkeep_core::commands::*;
use serde_json::{json, Value};

fn fifty(pattern: &str, fill: &str) -> Value {
    let fields: Vec<Value> = (0..50)
        .map(|i| json!({"key": format!("p{i}"), "type": "text", "pattern": pattern}))
        .collect();
    let values: serde_json::Map<String, Value> = (0..50)
        .map(|i| (format!("p{i}"), json!(fill.repeat(120))))
        .collect();
    json!({"fields": fields, "values": values})
}

#[test]
fn fifty_unicode_word_patterns_are_accepted_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let wf = svc
        .workflows()
        .create(CreateWorkflow {
            name: "rx".into(),
            config: Some(fifty(r"\w{120}", "a")),
            ..Default::default()
        })
        .unwrap();
    let out = svc
        .configs()
        .set_value(SetConfigValue {
            workflow_id: wf.id.clone(),
            key: "p1".into(),
            value: json!("é".repeat(120)),
            expected_revision: Some(wf.revision),
        })
        .unwrap();
    assert_eq!(out.revision, wf.revision + 1);
    let err = svc
        .configs()
        .set_value(SetConfigValue {
            workflow_id: wf.id.clone(),
            key: "p2".into(),
            value: json!("too short"),
            expected_revision: None,
        })
        .unwrap_err();
    match err {
        Error::Invalid(e) => assert_eq!(
            (e[0].field.as_str(), e[0].code.as_str()),
            ("values.p2", "pattern")
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_pattern_too_large_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let wf = svc
        .workflows()
        .create(CreateWorkflow {
            name: "rx".into(),
            config: Some(fifty("^[a-z]+$", "a")),
            ..Default::default()
        })
        .unwrap();
    let events = svc.event_count().unwrap();
    let dump = svc.dump_read_tables().unwrap();
    for config in [fifty(r"\w{1000}", "a"), fifty(r"(\w{100}){100}", "a")] {
        let err = svc
            .configs()
            .update(UpdateConfig {
                workflow_id: wf.id.clone(),
                config,
                expected_revision: None,
            })
            .unwrap_err();
        let Error::Invalid(errors) = err else {
            panic!("{err:?}")
        };
        // One error per field, on its definition; the values are not
        // checked against a pattern that does not compile.
        assert_eq!(errors.len(), 50, "{errors:?}");
        assert_eq!(
            (errors[0].field.as_str(), errors[0].code.as_str()),
            ("fields.p0.pattern", "pattern")
        );
        assert!(
            errors[0].message.contains("too large"),
            "{}",
            errors[0].message
        );
    }
    let err = svc
        .workflows()
        .create(CreateWorkflow {
            name: "rx2".into(),
            config: Some(fifty(r"\w{1000}", "a")),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert_eq!(svc.event_count().unwrap(), events);
    assert_eq!(svc.dump_read_tables().unwrap(), dump);
}
