//! Workflows as files: export, import, and what an import must never do
//! (write half, write twice, lose an edit made here).

use std::path::Path;

use flowkeep_app::{Service, StoreOptions};
use flowkeep_core::commands::*;
use flowkeep_core::files::Prefer;
use serde_json::json;

fn open(dir: &Path) -> Service {
    Service::open(&dir.join("flowkeep.db"), StoreOptions::default()).unwrap()
}

fn create(svc: &Service, name: &str, config: serde_json::Value) -> String {
    svc.workflows()
        .create(CreateWorkflow {
            name: name.into(),
            description: Some(format!("about {name}")),
            tags: vec!["etl".into(), "nightly".into()],
            config: Some(config),
            ..Default::default()
        })
        .unwrap()
        .id
}

fn etl() -> serde_json::Value {
    json!({
        "run": {"command": ["python3", "-c", "print(1)"], "timeout_s": 60},
        "fields": [
            {"key": "greeting", "type": "text", "required": true},
            {"key": "n", "type": "number", "min": 0, "max": 100},
            {"key": "mode", "type": "select", "options": ["fast", "safe"]}
        ],
        "values": {"greeting": "hello", "n": 7, "mode": "fast"}
    })
}

fn export(svc: &Service, dir: &Path) -> Vec<String> {
    svc.workflows()
        .export_files(ExportWorkflows {
            dir: dir.display().to_string(),
            ..Default::default()
        })
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.file)
        .collect()
}

fn import(svc: &Service, dir: &Path) -> flowkeep_app::Result<WorkflowImport> {
    svc.workflows().import_files(ImportWorkflows {
        dir: Some(dir.display().to_string()),
        ..Default::default()
    })
}

fn read_dir(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn value(svc: &Service, id: &str, key: &str) -> serde_json::Value {
    svc.configs()
        .get(GetConfig {
            workflow_id: id.into(),
        })
        .unwrap()
        .config
        .values[key]
        .clone()
}

fn set(svc: &Service, id: &str, key: &str, v: &str) {
    svc.configs()
        .set_value(SetConfigValue {
            workflow_id: id.into(),
            key: key.into(),
            value: json!(v),
            expected_revision: None,
        })
        .unwrap();
}

fn edit_file(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} not in {text}");
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn export_import_export_gives_the_same_bytes_and_reimport_writes_nothing() {
    let (a, b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let one = open(a.path());
    create(&one, "Alpha ETL", etl());
    create(
        &one,
        "Beta",
        json!({"fields": [{"key": "target", "type": "text"}], "values": {"target": "x"}}),
    );
    create(&one, "beta", json!({}));
    let first = out.path().join("first");
    let names = export(&one, &first);
    assert_eq!(names.len(), 3);
    assert!(
        names.contains(&"alpha-etl.flowkeep.yaml".to_owned()),
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| n.starts_with("beta-")).count(),
        2,
        "{names:?}"
    );
    let again = out.path().join("again");
    export(&one, &again);
    assert_eq!(
        read_dir(&first),
        read_dir(&again),
        "two exports, the same bytes"
    );

    let before = one.event_count().unwrap();
    let report = import(&one, &first).unwrap();
    assert!(report
        .items
        .iter()
        .all(|i| i.action == ImportAction::Unchanged));
    assert_eq!(
        one.event_count().unwrap(),
        before,
        "an unchanged export imports as nothing"
    );

    let two = open(b.path());
    let report = import(&two, &first).unwrap();
    assert_eq!(
        report
            .items
            .iter()
            .filter(|i| i.action == ImportAction::Create)
            .count(),
        3
    );
    let n = two.event_count().unwrap();
    import(&two, &first).unwrap();
    assert_eq!(two.event_count().unwrap(), n, "importing twice writes once");
    let third = out.path().join("third");
    export(&two, &third);
    assert_eq!(
        read_dir(&first),
        read_dir(&third),
        "export → import → export"
    );

    // A one-field edit is a one-line diff.
    let id = report
        .items
        .iter()
        .find(|i| i.name == "Alpha ETL")
        .unwrap()
        .workflow_id
        .clone();
    set(&two, &id, "greeting", "changed");
    let fourth = out.path().join("fourth");
    export(&two, &fourth);
    let old = std::fs::read_to_string(first.join("alpha-etl.flowkeep.yaml")).unwrap();
    let new = std::fs::read_to_string(fourth.join("alpha-etl.flowkeep.yaml")).unwrap();
    let differ = old.lines().zip(new.lines()).filter(|(a, b)| a != b).count();
    assert_eq!((differ, old.lines().count()), (1, new.lines().count()));
}

#[test]
fn one_changed_file_is_one_ordinary_event_and_a_dry_run_writes_nothing() {
    let (a, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let svc = open(a.path());
    let id = create(&svc, "Alpha ETL", etl());
    create(&svc, "Other", json!({}));
    export(&svc, out.path());
    let file = out.path().join("alpha-etl.flowkeep.yaml");
    edit_file(&file, "hello", "from-the-file");
    edit_file(&file, "- nightly", "- weekly");
    let n = svc.event_count().unwrap();
    let plan = svc
        .workflows()
        .import_files(ImportWorkflows {
            dir: Some(out.path().display().to_string()),
            dry_run: true,
            ..Default::default()
        })
        .unwrap();
    assert!(!plan.applied);
    let item = plan.items.iter().find(|i| i.workflow_id == id).unwrap();
    assert_eq!(item.action, ImportAction::Update);
    let fields: Vec<&str> = item.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["tags", "config.values.greeting"]);
    assert_eq!(svc.event_count().unwrap(), n, "a dry run writes nothing");

    import(&svc, out.path()).unwrap();
    assert_eq!(svc.event_count().unwrap(), n + 1);
    assert_eq!(value(&svc, &id, "greeting"), json!("from-the-file"));
    let history = svc
        .workflows()
        .history(WorkflowHistory {
            workflow_id: id.clone(),
        })
        .unwrap();
    assert_eq!(history.last().unwrap().kind, "workflow.updated");
}

#[test]
fn three_way_one_side_merges_both_sides_conflict_unless_a_side_is_preferred() {
    let (a, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let svc = open(a.path());
    let id = create(&svc, "Alpha ETL", etl());
    let other = create(
        &svc,
        "Other",
        json!({"fields": [{"key": "t", "type": "text"}], "values": {"t": "a"}}),
    );
    export(&svc, out.path());
    let file = out.path().join("alpha-etl.flowkeep.yaml");

    // Different fields on each side: both kept.
    svc.configs()
        .set_value(SetConfigValue {
            workflow_id: id.clone(),
            key: "n".into(),
            value: json!(8),
            expected_revision: None,
        })
        .unwrap();
    edit_file(&file, "hello", "file-1");
    import(&svc, out.path()).unwrap();
    assert_eq!(
        (value(&svc, &id, "greeting"), value(&svc, &id, "n")),
        (json!("file-1"), json!(8))
    );

    // The same field on both sides: a conflict showing both; that workflow
    // is left as it is, the others are imported.
    set(&svc, &id, "greeting", "local-2");
    edit_file(&file, "file-1", "file-2");
    edit_file(&out.path().join("other.flowkeep.yaml"), "t: a", "t: b");
    let n = svc.event_count().unwrap();
    let report = import(&svc, out.path()).unwrap();
    let item = report.items.iter().find(|i| i.workflow_id == id).unwrap();
    assert_eq!(item.action, ImportAction::Conflict);
    assert_eq!(item.conflicts.len(), 1);
    let c = &item.conflicts[0];
    assert_eq!(
        (c.field.as_str(), &c.local, &c.file, &c.base),
        (
            "config.values.greeting",
            &json!("local-2"),
            &json!("file-2"),
            &json!("file-1")
        )
    );
    assert_eq!(value(&svc, &id, "greeting"), json!("local-2"));
    assert_eq!(value(&svc, &other, "t"), json!("b"));
    assert_eq!(svc.event_count().unwrap(), n + 1, "only the other workflow");

    for (prefer, want) in [(Prefer::Local, "local-2"), (Prefer::File, "file-3")] {
        svc.workflows()
            .import_files(ImportWorkflows {
                dir: Some(out.path().display().to_string()),
                prefer: Some(prefer),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(value(&svc, &id, "greeting"), json!(want), "{prefer:?}");
        if prefer == Prefer::Local {
            // Settled: the file is the base now, so it is no conflict again.
            set(&svc, &id, "greeting", "local-3");
            let r = import(&svc, out.path()).unwrap();
            assert!(
                r.items.iter().all(|i| i.action == ImportAction::Unchanged),
                "{r:?}"
            );
            edit_file(&file, "file-2", "file-3");
        }
    }
}

#[test]
fn an_invalid_file_anywhere_changes_nothing_and_every_problem_has_file_line_and_field() {
    let (a, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let svc = open(a.path());
    let id = create(&svc, "Alpha ETL", etl());
    export(&svc, out.path());
    edit_file(
        &out.path().join("alpha-etl.flowkeep.yaml"),
        "hello",
        "changed",
    );
    std::fs::write(
        out.path().join("broken.flowkeep.yaml"),
        "name: [unclosed\n  id: {\n",
    )
    .unwrap();
    std::fs::write(
        out.path().join("bad-values.flowkeep.yaml"),
        "# hand written\nname: Bad\ncolour: red\nconfig:\n  fields:\n  - key: n\n    type: number\n    max: 5\n  values:\n    n: 9\n",
    )
    .unwrap();
    let n = svc.event_count().unwrap();
    let err = import(&svc, out.path()).unwrap_err();
    let flowkeep_app::Error::Invalid(errors) = err else {
        panic!("{err:?}")
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert!(
        fields.contains(&"bad-values.flowkeep.yaml:3: colour"),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"bad-values.flowkeep.yaml:10: config.values.n"),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("broken.flowkeep.yaml:")),
        "{fields:?}"
    );
    assert_eq!(svc.event_count().unwrap(), n);
    assert_eq!(
        value(&svc, &id, "greeting"),
        json!("hello"),
        "the valid file was not imported either"
    );

    // A deleted workflow, a repeated id, a missing folder: refused, nothing written.
    std::fs::remove_file(out.path().join("broken.flowkeep.yaml")).unwrap();
    std::fs::remove_file(out.path().join("bad-values.flowkeep.yaml")).unwrap();
    std::fs::copy(
        out.path().join("alpha-etl.flowkeep.yaml"),
        out.path().join("copy.flowkeep.yaml"),
    )
    .unwrap();
    let err = import(&svc, out.path()).unwrap_err().to_string();
    assert!(err.contains("also in"), "{err}");
    std::fs::remove_file(out.path().join("copy.flowkeep.yaml")).unwrap();
    svc.workflows()
        .delete(DeleteWorkflow {
            id: id.clone(),
            expected_revision: None,
        })
        .unwrap();
    let n = svc.event_count().unwrap();
    let err = import(&svc, out.path()).unwrap_err().to_string();
    assert!(err.contains("undelete"), "{err}");
    assert!(import(&svc, &out.path().join("nowhere")).is_err());
    assert_eq!(svc.event_count().unwrap(), n);
}

#[test]
fn a_hand_written_file_with_comments_and_anchors_creates_a_workflow_and_name_matching_updates() {
    let (a, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let svc = open(a.path());
    std::fs::write(
        out.path().join("mine.flowkeep.yaml"),
        "\
# Written by hand: no id, so the import creates it.
name: Hand made
tags: [ops]
config:
  fields:
    - &text {key: region, type: text}
    - {<<: *text, key: zone}
  values:
    region: eu-1   # where it runs
    zone: b
",
    )
    .unwrap();
    let r = import(&svc, out.path()).unwrap();
    assert_eq!(r.items[0].action, ImportAction::Create);
    assert_eq!(
        r.created_without_id, 1,
        "the import says the file has no id"
    );
    let id = r.items[0].workflow_id.clone();
    assert_eq!(value(&svc, &id, "zone"), json!("b"));
    let by_name = |svc: &Service| {
        svc.workflows().import_files(ImportWorkflows {
            dir: Some(out.path().display().to_string()),
            match_by: MatchBy::Name,
            ..Default::default()
        })
    };
    let n = svc.event_count().unwrap();
    let r = by_name(&svc).unwrap();
    assert_eq!(
        (r.items[0].action, &r.items[0].workflow_id),
        (ImportAction::Unchanged, &id)
    );
    assert_eq!(r.created_without_id, 0);
    edit_file(&out.path().join("mine.flowkeep.yaml"), "zone: b", "zone: c");
    by_name(&svc).unwrap();
    assert_eq!(svc.event_count().unwrap(), n + 1);
    assert_eq!(value(&svc, &id, "zone"), json!("c"));
    // Without an id, matching by id creates another workflow; then the name
    // is ambiguous and matching by name refuses.
    let again = import(&svc, out.path()).unwrap();
    assert_eq!(again.items[0].action, ImportAction::Create);
    assert_ne!(again.items[0].workflow_id, id);
    let err = by_name(&svc).unwrap_err();
    assert!(err.to_string().contains("named"), "{err}");
}
