//! Each command's events and projections, on a temp-file database.

mod common;

use common::*;
use flowkeep_app::{Error, Service};
use flowkeep_core::commands::*;
use flowkeep_core::run::RunStatus;
use serde_json::json;

fn create(svc: &Service, name: &str) -> flowkeep_core::workflow::Workflow {
    svc.workflows()
        .create(CreateWorkflow {
            name: name.into(),
            config: Some(etl_config()),
            ..Default::default()
        })
        .unwrap()
}

fn kinds(svc: &Service, stream: &str) -> Vec<String> {
    svc.workflows()
        .history(WorkflowHistory {
            workflow_id: stream.into(),
        })
        .unwrap()
        .into_iter()
        .map(|h| h.kind)
        .collect()
}

/// Asserts that `f` fails and leaves the event log and read tables as they were.
fn assert_unchanged<T: std::fmt::Debug>(
    svc: &Service,
    f: impl FnOnce() -> Result<T, Error>,
) -> Error {
    let events = svc.event_count().unwrap();
    let dump = svc.dump_read_tables().unwrap();
    let err = f().expect_err("the command should fail");
    assert_eq!(
        svc.event_count().unwrap(),
        events,
        "a rejected command appended events: {err}"
    );
    assert_eq!(
        svc.dump_read_tables().unwrap(),
        dump,
        "a rejected command changed the read tables: {err}"
    );
    err
}

fn invalid_fields(err: Error) -> Vec<(String, String)> {
    match err {
        Error::Invalid(f) | Error::InvalidInput(f) => {
            f.into_iter().map(|e| (e.field, e.code)).collect()
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn create_appends_one_event_and_projects_all_tables() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let wf = svc
        .workflows()
        .create(CreateWorkflow {
            name: "  Nightly ETL ".into(),
            description: Some("loads the warehouse".into()),
            tags: vec!["etl".into(), "nightly".into()],
            config: Some(etl_config()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(wf.spec.name, "Nightly ETL");
    assert_eq!(wf.spec.version, "1.0.0");
    assert_eq!(wf.revision, 1);
    assert_eq!(wf.created_at, T0);
    assert_eq!(svc.event_count().unwrap(), 1);
    assert_eq!(kinds(&svc, &wf.id), ["workflow.created"]);
    let dump = svc.dump_read_tables().unwrap();
    assert!(dump.contains(&format!("{}/retries", wf.id)), "{dump}");
    assert!(
        dump.contains("\"retries\"|\"3\"|\"number\""),
        "configs holds the value as JSON: {dump}"
    );
    assert!(
        dump.contains("\"mode\"|\"\\\"fast\\\"\"|\"select\""),
        "configs holds the value as JSON: {dump}"
    );
    assert!(
        dump.contains(&format!("\"etl\"|\"{}\"", wf.id)),
        "workflow_tags holds the tags: {dump}"
    );
    assert_eq!(
        svc.workflows()
            .get(WorkflowId { id: wf.id.clone() })
            .unwrap(),
        wf
    );
}

#[test]
fn update_records_field_level_old_and_new_values() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let wf = create(&svc, "a");
    let updated = svc
        .workflows()
        .update(UpdateWorkflow {
            id: wf.id.clone(),
            name: Some("b".into()),
            version: Some("1.1.0".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(updated.revision, 2);
    assert!(updated.updated_at > wf.updated_at);
    svc.configs()
        .set_value(SetConfigValue {
            workflow_id: wf.id.clone(),
            key: "retries".into(),
            value: json!("5"),
            expected_revision: None,
        })
        .unwrap();
    let history = svc
        .workflows()
        .history(WorkflowHistory {
            workflow_id: wf.id.clone(),
        })
        .unwrap();
    assert_eq!(history.len(), 3);
    let update = &history[1];
    assert_eq!(update.kind, "workflow.updated");
    assert_eq!(update.actor, "tester");
    assert_eq!(update.device_id, svc.device_id());
    assert_eq!(update.origin, "local");
    let fields: Vec<(&str, &serde_json::Value, &serde_json::Value)> = update
        .changes
        .iter()
        .map(|c| (c.field.as_str(), &c.old, &c.new))
        .collect();
    assert_eq!(
        fields,
        [
            ("name", &json!("a"), &json!("b")),
            ("version", &json!("1.0.0"), &json!("1.1.0"))
        ]
    );
    let set = &history[2];
    assert_eq!(set.kind, "config.updated");
    assert_eq!(set.changes.len(), 1);
    assert_eq!(
        (
            set.changes[0].field.as_str(),
            &set.changes[0].old,
            &set.changes[0].new
        ),
        ("config.values.retries", &json!(3), &json!(5))
    );
    // The created entry lists the initial values.
    assert!(history[0]
        .changes
        .iter()
        .any(|c| c.field == "config.values.mode" && c.new == json!("fast") && c.old.is_null()));
}

#[test]
fn an_update_that_changes_nothing_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let wf = create(&svc, "a");
    let same = svc
        .workflows()
        .update(UpdateWorkflow {
            id: wf.id.clone(),
            name: Some("a".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(same, wf);
    assert_eq!(svc.event_count().unwrap(), 1);
}

#[test]
fn bad_input_is_rejected_with_its_field_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let wf = create(&svc, "a");
    let id = wf.id.clone();

    let err = assert_unchanged(&svc, || {
        svc.workflows().create(CreateWorkflow {
            name: " ".into(),
            ..Default::default()
        })
    });
    assert_eq!(invalid_fields(err), [("name".into(), "length".into())]);

    let err = assert_unchanged(&svc, || {
        svc.workflows().create(CreateWorkflow {
            name: "x".repeat(201),
            ..Default::default()
        })
    });
    assert_eq!(invalid_fields(err), [("name".into(), "length".into())]);

    let err = assert_unchanged(&svc, || {
        svc.workflows().create(CreateWorkflow {
            name: "t".into(),
            config: Some(json!({"fields": [{"key": "f", "type": "colour"}]})),
            ..Default::default()
        })
    });
    assert_eq!(
        invalid_fields(err),
        [("fields.f.type".into(), "unknown_type".into())]
    );

    let err = assert_unchanged(&svc, || {
        svc.workflows().create(CreateWorkflow {
            name: "t".into(),
            config: Some(json!({"fields": [{"key": "f", "type": "text", "pattern": "(["}]})),
            ..Default::default()
        })
    });
    assert_eq!(
        invalid_fields(err),
        [("fields.f.pattern".into(), "pattern".into())]
    );

    let err = assert_unchanged(&svc, || {
        svc.configs().set_value(SetConfigValue {
            workflow_id: id.clone(),
            key: "retries".into(),
            value: json!("many"),
            expected_revision: None,
        })
    });
    assert_eq!(
        invalid_fields(err),
        [("values.retries".into(), "type".into())]
    );

    let err = assert_unchanged(&svc, || {
        svc.configs().set_value(SetConfigValue {
            workflow_id: id.clone(),
            key: "retries".into(),
            value: json!(11),
            expected_revision: None,
        })
    });
    assert_eq!(
        invalid_fields(err),
        [("values.retries".into(), "range".into())]
    );

    let err = assert_unchanged(&svc, || {
        svc.configs().set_value(SetConfigValue {
            workflow_id: id.clone(),
            key: "nope".into(),
            value: json!(1),
            expected_revision: None,
        })
    });
    assert_eq!(
        invalid_fields(err),
        [("values.nope".into(), "undeclared".into())]
    );

    let mut bad = etl_config();
    bad["values"] = json!({"retries": 11, "mode": "slow", "endpoint": "not a url"});
    let err = assert_unchanged(&svc, || {
        svc.configs().update(UpdateConfig {
            workflow_id: id.clone(),
            config: bad,
            expected_revision: None,
        })
    });
    let mut got = invalid_fields(err);
    got.sort();
    assert_eq!(
        got,
        [
            ("values.endpoint".into(), "format".into()),
            ("values.mode".into(), "options".into()),
            ("values.retries".into(), "range".into())
        ]
    );

    let err = assert_unchanged(&svc, || {
        svc.workflows().update(UpdateWorkflow {
            id: "missing".into(),
            name: Some("x".into()),
            ..Default::default()
        })
    });
    assert!(
        matches!(
            err,
            Error::NotFound {
                entity: "workflow",
                ..
            }
        ),
        "{err:?}"
    );

    let err = assert_unchanged(&svc, || {
        svc.workflows().update(UpdateWorkflow {
            id: id.clone(),
            expected_revision: Some(7),
            name: Some("x".into()),
            ..Default::default()
        })
    });
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("is at revision 1, not 7"), "{err}");

    let err = assert_unchanged(&svc, || {
        flowkeep_app::dispatch(&svc, "create_workflow", json!({"name": 5}))
    });
    assert_eq!(
        invalid_fields(err),
        [("input".into(), "invalid_input".into())]
    );
}

#[test]
fn delete_tombstones_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let wf = create(&svc, "a");
    svc.workflows()
        .delete(DeleteWorkflow {
            id: wf.id.clone(),
            expected_revision: Some(1),
        })
        .unwrap();
    assert!(matches!(
        svc.workflows().get(WorkflowId { id: wf.id.clone() }),
        Err(Error::NotFound { .. })
    ));
    assert!(svc
        .workflows()
        .list(ListWorkflows::default())
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        kinds(&svc, &wf.id),
        ["workflow.created", "workflow.deleted"]
    );
    // Deleting again is not found, and appends nothing.
    assert_unchanged(&svc, || {
        svc.workflows().delete(DeleteWorkflow {
            id: wf.id.clone(),
            expected_revision: None,
        })
    });
    assert!(
        !svc.dump_read_tables()
            .unwrap()
            .contains(&format!("{}/retries", wf.id)),
        "configs rows of a deleted workflow remain"
    );
}

#[test]
fn duplicate_copies_the_spec_under_a_new_id() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let wf = create(&svc, "Nightly");
    let copy = svc
        .workflows()
        .duplicate(DuplicateWorkflow {
            id: wf.id.clone(),
            name: None,
        })
        .unwrap();
    assert_ne!(copy.id, wf.id);
    assert_eq!(copy.spec.name, "Nightly (copy)");
    assert_eq!(copy.spec.config, wf.spec.config);
    let history = svc
        .workflows()
        .history(WorkflowHistory {
            workflow_id: copy.id.clone(),
        })
        .unwrap();
    assert_eq!(history[0].changes[0].field, "duplicated_from");
    assert_eq!(history[0].changes[0].new, json!(wf.id));
    let named = svc
        .workflows()
        .duplicate(DuplicateWorkflow {
            id: wf.id.clone(),
            name: Some("Other".into()),
        })
        .unwrap();
    assert_eq!(named.spec.name, "Other");
}

#[test]
fn list_searches_filters_sorts_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    for (i, name) in ["delta", "Alpha", "charlie", "bravo", "echo"]
        .iter()
        .enumerate()
    {
        svc.workflows()
            .create(CreateWorkflow {
                name: name.to_string(),
                description: Some(if i % 2 == 0 {
                    "loads the warehouse".into()
                } else {
                    "sends 100% of mail_x".into()
                }),
                tags: if i < 2 { vec!["hot".into()] } else { vec![] },
                ..Default::default()
            })
            .unwrap();
    }
    let names = |q: ListWorkflows| -> Vec<String> {
        svc.workflows()
            .list(q)
            .unwrap()
            .items
            .into_iter()
            .map(|w| w.name)
            .collect()
    };
    assert_eq!(
        names(ListWorkflows::default()),
        ["Alpha", "bravo", "charlie", "delta", "echo"],
        "case-insensitive name order"
    );
    assert_eq!(
        names(ListWorkflows {
            desc: true,
            ..Default::default()
        }),
        ["echo", "delta", "charlie", "bravo", "Alpha"]
    );
    assert_eq!(
        names(ListWorkflows {
            sort: WorkflowSort::Created,
            ..Default::default()
        }),
        ["delta", "Alpha", "charlie", "bravo", "echo"]
    );
    assert_eq!(
        names(ListWorkflows {
            sort: WorkflowSort::Updated,
            desc: true,
            ..Default::default()
        }),
        ["echo", "bravo", "charlie", "Alpha", "delta"]
    );
    assert_eq!(
        names(ListWorkflows {
            search: Some("WAREHOUSE".into()),
            ..Default::default()
        }),
        ["charlie", "delta", "echo"]
    );
    assert_eq!(
        names(ListWorkflows {
            search: Some("100%".into()),
            ..Default::default()
        }),
        ["Alpha", "bravo"],
        "% is literal"
    );
    assert_eq!(
        names(ListWorkflows {
            search: Some("l_x".into()),
            ..Default::default()
        }),
        ["Alpha", "bravo"],
        "_ is literal"
    );
    assert!(names(ListWorkflows {
        search: Some("l_y".into()),
        ..Default::default()
    })
    .is_empty());
    assert_eq!(
        names(ListWorkflows {
            tag: Some("hot".into()),
            ..Default::default()
        }),
        ["Alpha", "delta"]
    );

    for sort in [
        WorkflowSort::Name,
        WorkflowSort::Created,
        WorkflowSort::Updated,
    ] {
        for desc in [false, true] {
            let all = names(ListWorkflows {
                sort,
                desc,
                ..Default::default()
            });
            let mut paged = Vec::new();
            let mut cursor = None;
            loop {
                let page = svc
                    .workflows()
                    .list(ListWorkflows {
                        sort,
                        desc,
                        limit: Some(2),
                        cursor,
                        ..Default::default()
                    })
                    .unwrap();
                assert!(page.items.len() <= 2);
                paged.extend(page.items.into_iter().map(|w| w.name));
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(paged, all, "{sort:?} desc={desc}");
        }
    }
    let page = svc
        .workflows()
        .list(ListWorkflows {
            limit: Some(2),
            ..Default::default()
        })
        .unwrap();
    let err = svc
        .workflows()
        .list(ListWorkflows {
            sort: WorkflowSort::Created,
            cursor: page.next_cursor,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(invalid_fields(err), [("cursor".into(), "format".into())]);
}

#[test]
fn executions_move_forward_and_list_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, clock) = open(&dir);
    let wf = create(&svc, "a");
    let mut ids = Vec::new();
    for i in 0..7 {
        clock.set(T0 + i * 1000);
        let e = svc
            .runs()
            .start(StartRun {
                workflow_id: wf.id.clone(),
                trigger: Some("cli".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(e.status, RunStatus::Running);
        let status = if i % 3 == 0 {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        clock.set(T0 + i * 1000 + 250);
        let done = svc
            .runs()
            .finish(FinishRun {
                id: e.id.clone(),
                status,
                exit_code: Some(i),
                output: Some(json!({"i": i})),
                error: None,
            })
            .unwrap();
        assert_eq!(done.duration_ms, Some(250));
        assert_eq!(done.device_id, svc.device_id());
        ids.push(e.id);
    }
    // Finishing twice is a conflict and changes nothing.
    let err = assert_unchanged(&svc, || {
        svc.runs().finish(FinishRun {
            id: ids[0].clone(),
            status: RunStatus::Succeeded,
            exit_code: None,
            output: None,
            error: None,
        })
    });
    assert!(err.to_string().contains("already failed"), "{err}");

    let list = |filter: RunFilter, limit| {
        svc.runs()
            .list(ListRuns {
                filter,
                limit,
                cursor: None,
            })
            .unwrap()
    };
    let all = list(
        RunFilter {
            workflow_id: Some(wf.id.clone()),
            ..Default::default()
        },
        None,
    );
    assert_eq!(all.items.len(), 7);
    assert_eq!(all.items[0].id, ids[6], "newest first");
    let failed = list(
        RunFilter {
            status: Some(RunStatus::Failed),
            ..Default::default()
        },
        None,
    );
    assert_eq!(
        failed
            .items
            .iter()
            .map(|e| e.id.clone())
            .collect::<Vec<_>>(),
        [ids[6].clone(), ids[3].clone(), ids[0].clone()]
    );
    let ranged = list(
        RunFilter {
            since: Some(T0 + 2000),
            until: Some(T0 + 5000),
            ..Default::default()
        },
        None,
    );
    assert_eq!(ranged.items.len(), 3);

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = svc
            .runs()
            .list(ListRuns {
                filter: Default::default(),
                limit: Some(3),
                cursor,
            })
            .unwrap();
        seen.extend(page.items.into_iter().map(|e| e.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    svc.runs().delete(RunId { id: ids[1].clone() }).unwrap();
    assert!(matches!(
        svc.runs().get(RunId { id: ids[1].clone() }),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        svc.runs().list(ListRuns {
            filter: RunFilter {
                workflow_id: Some("nope".into()),
                ..Default::default()
            },
            ..Default::default()
        }),
        Err(Error::NotFound { .. })
    ));
    let err = assert_unchanged(&svc, || {
        svc.runs().start(StartRun {
            workflow_id: "nope".into(),
            ..Default::default()
        })
    });
    assert!(matches!(err, Error::NotFound { .. }));
}

#[test]
fn prune_deletes_finished_runs_before_a_date_as_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, clock) = open(&dir);
    let wf = create(&svc, "a");
    for i in 0..10 {
        clock.set(T0 + i * 1000);
        let e = svc
            .runs()
            .start(StartRun {
                workflow_id: wf.id.clone(),
                ..Default::default()
            })
            .unwrap();
        if i != 2 {
            svc.runs()
                .finish(FinishRun {
                    id: e.id,
                    status: RunStatus::Succeeded,
                    exit_code: Some(0),
                    output: None,
                    error: None,
                })
                .unwrap();
        }
    }
    let prune = RunFilter {
        workflow_id: Some(wf.id.clone()),
        status: None,
        since: None,
        until: Some(T0 + 5000),
    };
    assert_eq!(
        svc.runs().prune_preview(&prune).unwrap(),
        4,
        "runs 0,1,3,4; the running one (2) is kept"
    );
    let before = svc.event_count().unwrap();
    assert_eq!(svc.runs().prune(prune.clone()).unwrap().deleted, 4);
    assert_eq!(svc.event_count().unwrap(), before + 1);
    assert_eq!(svc.runs().count(RunFilter::default()).unwrap().count, 6);
    assert_eq!(svc.runs().prune(prune).unwrap().deleted, 0);
    assert_eq!(
        svc.event_count().unwrap(),
        before + 1,
        "an empty prune records nothing"
    );
}

#[test]
fn export_streams_each_format_with_csv_quoting() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let wf = create(&svc, "a");
    let tricky = "comma, \"quote\"\nnewline";
    for i in 0..3 {
        let e = svc
            .runs()
            .start(StartRun {
                workflow_id: wf.id.clone(),
                ..Default::default()
            })
            .unwrap();
        svc.runs()
            .finish(FinishRun {
                id: e.id,
                status: RunStatus::Failed,
                exit_code: Some(i),
                output: Some(json!({"note": tricky})),
                error: Some(tricky.into()),
            })
            .unwrap();
    }
    let export = |format| {
        let mut buf = Vec::new();
        let mut calls = 0;
        let n = svc
            .runs()
            .export(&RunFilter::default(), format, &mut buf, &mut |_| {
                calls += 1;
                Ok(())
            })
            .unwrap();
        assert!(calls >= 1, "progress is reported");
        (n, String::from_utf8(buf).unwrap())
    };
    let (n, json_text) = export(ExportFormat::Json);
    assert_eq!(n, 3);
    let parsed: Vec<serde_json::Value> = serde_json::from_str(&json_text).unwrap();
    assert_eq!(parsed.len(), 3);
    assert_eq!(parsed[0]["error"], json!(tricky));
    let (_, nd) = export(ExportFormat::Ndjson);
    assert_eq!(nd.lines().count(), 3);
    for line in nd.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    let (_, csv_text) = export(ExportFormat::Csv);
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][7], tricky, "error column survives quoting");
    // Times in CSV are ISO 8601 (UTC), as a spreadsheet reads them.
    let started = chrono::DateTime::parse_from_rfc3339(&rows[0][3]).expect("ISO 8601");
    let json_started = parsed
        .iter()
        .find(|r| r["id"].as_str() == Some(&rows[0][0]))
        .unwrap()["started_at"]
        .as_i64()
        .unwrap();
    assert_eq!(started.timestamp_millis(), json_started);
    assert!(rows[0][3].ends_with('Z'), "{}", &rows[0][3]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&rows[0][10]).unwrap()["note"],
        json!(tricky)
    );
    // An empty export is still valid JSON.
    let mut buf = Vec::new();
    let filter = RunFilter {
        status: Some(RunStatus::Cancelled),
        ..Default::default()
    };
    svc.runs()
        .export(&filter, ExportFormat::Json, &mut buf, &mut |_| Ok(()))
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Vec<serde_json::Value>>(&buf)
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn reopening_keeps_data_device_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let wf = create(&svc, "kept");
    let device = svc.device_id().to_owned();
    let dump = svc.dump_read_tables().unwrap();
    drop(svc);
    let (again, _) = open(&dir);
    assert_eq!(again.device_id(), device);
    assert_eq!(again.dump_read_tables().unwrap(), dump);
    assert_eq!(
        again
            .workflows()
            .get(WorkflowId { id: wf.id })
            .unwrap()
            .spec
            .name,
        "kept"
    );
}

#[test]
fn the_command_table_dispatches_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let out = flowkeep_app::dispatch(
        &svc,
        "create_workflow",
        json!({"name": "via table", "config": etl_config()}),
    )
    .unwrap();
    let id = out["id"].as_str().unwrap().to_owned();
    let got = flowkeep_app::dispatch(&svc, "get_config", json!({"workflow_id": id})).unwrap();
    assert_eq!(got["values"]["retries"], json!(3));
    let err = flowkeep_app::dispatch(&svc, "launch_rockets", json!({})).unwrap_err();
    assert!(matches!(
        err,
        Error::NotFound {
            entity: "command",
            ..
        }
    ));
    let names: Vec<&str> = flowkeep_app::COMMANDS.iter().map(|c| c.name).collect();
    for seed in [
        "create_workflow",
        "update_workflow",
        "delete_workflow",
        "get_workflow",
        "list_workflows",
        "get_config",
        "update_config",
        "validate_config",
        "list_runs",
        "get_run",
        "delete_run",
    ] {
        assert!(
            names.contains(&seed),
            "seed command {seed} missing from the table"
        );
    }
}

#[test]
fn validate_config_reports_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let wf = create(&svc, "a");
    let ok = svc
        .configs()
        .validate(ValidateConfig {
            workflow_id: wf.id.clone(),
            config: None,
        })
        .unwrap();
    assert!(ok.valid);
    let mut bad = etl_config();
    bad["values"]["retries"] = json!(99);
    let events = svc.event_count().unwrap();
    let report = svc
        .configs()
        .validate(ValidateConfig {
            workflow_id: wf.id.clone(),
            config: Some(bad),
        })
        .unwrap();
    assert!(!report.valid);
    assert_eq!(report.errors[0].field, "values.retries");
    assert_eq!(svc.event_count().unwrap(), events);
}

#[test]
fn import_records_finished_runs_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let a = create(&svc, "a");
    let b = create(&svc, "b");
    let run = |wf: &str, at: i64, status| ImportedRun {
        workflow_id: wf.to_owned(),
        status,
        started_at: at,
        completed_at: at + 40,
        exit_code: Some(0),
        output: None,
        error: None,
        trigger: None,
    };
    let report = svc
        .runs()
        .import(ImportRuns {
            runs: vec![
                run(&a.id, 1_000, RunStatus::Succeeded),
                run(&a.id, 2_000, RunStatus::Failed),
                run(&b.id, 3_000, RunStatus::Cancelled),
            ],
        })
        .unwrap();
    assert_eq!(report.imported, 3);
    let page = svc
        .runs()
        .list(ListRuns {
            filter: RunFilter {
                workflow_id: Some(a.id.clone()),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(
        (
            page.items[0].started_at,
            page.items[0].duration_ms,
            page.items[0].trigger.as_str()
        ),
        (2_000, Some(40), "import")
    );

    // One bad entry (unknown workflow) rejects all of them.
    let err = assert_unchanged(&svc, || {
        svc.runs().import(ImportRuns {
            runs: vec![
                run(&a.id, 5_000, RunStatus::Succeeded),
                run("ghost", 6_000, RunStatus::Succeeded),
            ],
        })
    });
    assert!(matches!(err, Error::NotFound { .. }));
    let mut backwards = run(&a.id, 9_000, RunStatus::Running);
    backwards.completed_at = 1;
    let err = assert_unchanged(&svc, || {
        svc.runs().import(ImportRuns {
            runs: vec![backwards],
        })
    });
    let mut got = invalid_fields(err);
    got.sort();
    assert_eq!(
        got,
        [
            ("runs[0].completed_at".into(), "range".into()),
            ("runs[0].status".into(), "options".into())
        ]
    );

    // Dates every other device takes from this one's log: from 1970 to a
    // day ahead of this clock (else they refuse the synced run).
    let mut early = run(&a.id, 9_000, RunStatus::Succeeded);
    early.started_at = -1;
    let mut late = run(&a.id, 9_000, RunStatus::Succeeded);
    late.completed_at = svc.now_ms() + 2 * 24 * 3600 * 1000;
    let err = assert_unchanged(&svc, || {
        svc.runs().import(ImportRuns {
            runs: vec![early, late],
        })
    });
    assert_eq!(
        invalid_fields(err),
        [
            ("runs[0].started_at".into(), "range".into()),
            ("runs[1].completed_at".into(), "range".into())
        ]
    );
}

#[test]
fn retention_by_age_and_count_global_and_per_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, clock) = open(&dir);
    let a = create(&svc, "a");
    let b = create(&svc, "b");
    let day = 86_400_000;
    // Ten finished runs a day apart for each workflow, plus one still running.
    let runs = |wf: &str| {
        (0..10)
            .map(|k| ImportedRun {
                workflow_id: wf.to_owned(),
                status: RunStatus::Succeeded,
                started_at: T0 + k * day,
                completed_at: T0 + k * day + 10,
                exit_code: Some(0),
                output: None,
                error: None,
                trigger: None,
            })
            .collect::<Vec<_>>()
    };
    // Imported as the history they are by then: a run is not recorded
    // ahead of this clock.
    clock.set(T0 + 10 * day);
    svc.runs().import(ImportRuns { runs: runs(&a.id) }).unwrap();
    svc.runs().import(ImportRuns { runs: runs(&b.id) }).unwrap();
    svc.runs()
        .start(StartRun {
            workflow_id: a.id.clone(),
            ..Default::default()
        })
        .unwrap();
    let count = |wf: &str| {
        svc.runs()
            .count(RunFilter {
                workflow_id: Some(wf.to_owned()),
                ..Default::default()
            })
            .unwrap()
            .count
    };

    // Global: keep 3 days. Runs started on days 0..=6 are older than that.
    let settings = svc
        .settings()
        .set_retention(SetRetention {
            workflow_id: None,
            policy: flowkeep_core::config::RetentionPolicy {
                max_age: Some("3d".into()),
                max_count: None,
            },
        })
        .unwrap();
    assert_eq!(settings.retention.max_age.as_deref(), Some("3d"));
    // b has its own policy: keep the newest 5, whatever their age.
    svc.settings()
        .set_retention(SetRetention {
            workflow_id: Some(b.id.clone()),
            policy: flowkeep_core::config::RetentionPolicy {
                max_age: None,
                max_count: Some(5),
            },
        })
        .unwrap();
    clock.set(T0 + 10 * day - 3_600_000); // an hour before day 7 turns 3 days old
    let report = svc
        .settings()
        .apply_retention(ApplyRetention { workflow_id: None })
        .unwrap();
    assert_eq!(count(&a.id), 4, "days 7, 8, 9 and the running one");
    assert_eq!(count(&b.id), 5, "b's own policy wins over the global one");
    assert_eq!(report.deleted, 7 + 5);
    // Pruning again deletes nothing and records nothing.
    let events = svc.event_count().unwrap();
    assert_eq!(
        svc.settings()
            .apply_retention(ApplyRetention { workflow_id: None })
            .unwrap()
            .deleted,
        0
    );
    assert_eq!(svc.event_count().unwrap(), events);
    // The running run is never pruned, even past every limit.
    clock.set(T0 + 100 * day);
    svc.settings()
        .apply_retention(ApplyRetention {
            workflow_id: Some(a.id.clone()),
        })
        .unwrap();
    assert_eq!(count(&a.id), 1);

    // Settings and policies are in the audit trail and survive a rebuild.
    let history = svc
        .workflows()
        .history(WorkflowHistory {
            workflow_id: b.id.clone(),
        })
        .unwrap();
    assert!(history
        .iter()
        .any(|h| h.changes.iter().any(|c| c.field == "config.retention")));
    let live = svc.dump_read_tables().unwrap();
    svc.rebuild_projections().unwrap();
    assert_eq!(svc.dump_read_tables().unwrap(), live);
    assert_eq!(
        svc.settings()
            .get(GetSettings {})
            .unwrap()
            .retention
            .max_age
            .as_deref(),
        Some("3d")
    );

    // Removing the global policy: an empty policy.
    svc.settings()
        .set_retention(SetRetention {
            workflow_id: None,
            policy: Default::default(),
        })
        .unwrap();
    assert!(svc
        .settings()
        .get(GetSettings {})
        .unwrap()
        .retention
        .is_empty());

    // Bad policies name their field and change nothing.
    let err = assert_unchanged(&svc, || {
        svc.settings().set_retention(SetRetention {
            workflow_id: None,
            policy: flowkeep_core::config::RetentionPolicy {
                max_age: Some("forever".into()),
                max_count: Some(0),
            },
        })
    });
    let mut got = invalid_fields(err);
    got.sort();
    assert_eq!(
        got,
        [
            ("retention.max_age".into(), "duration".into()),
            ("retention.max_count".into(), "range".into())
        ]
    );
}

#[test]
fn workflow_names_answers_many_ids_in_order_with_none_for_deleted_or_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = open(&dir);
    let a = create(&svc, "alpha");
    let b = create(&svc, "beta");
    svc.workflows()
        .delete(DeleteWorkflow {
            id: b.id.clone(),
            expected_revision: Some(1),
        })
        .unwrap();
    let names = svc
        .workflows()
        .names(WorkflowNamesInput {
            ids: vec![b.id.clone(), "nope".into(), a.id.clone()],
        })
        .unwrap();
    assert_eq!(
        names,
        vec![
            WorkflowName {
                id: b.id,
                name: None
            },
            WorkflowName {
                id: "nope".into(),
                name: None
            },
            WorkflowName {
                id: a.id,
                name: Some("alpha".into())
            },
        ]
    );

    let too_many = WorkflowNamesInput {
        ids: (0..501).map(|i| i.to_string()).collect(),
    };
    let err = svc.workflows().names(too_many).unwrap_err();
    assert_eq!(
        invalid_fields(err),
        [("ids".to_owned(), "length".to_owned())]
    );
}
