//! Secrets: never in clear in the store, the log, the server or the job's
//! record; masked in every answer; opened for the job and on request; a
//! device without the key syncs on and says so.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use flowkeep_app::{call, commands::*, RunRequest, Service, StoreOptions};
use flowkeep_core::commands::*;
use serde_json::json;

mod support;
use support::TestServer;

const SECRET: &str = "fk-secret-5f0c9a1e77d2";

fn open(dir: &Path) -> Service {
    Service::open(&dir.join("flowkeep.db"), StoreOptions::default()).unwrap()
}

fn vault(svc: &Service, out: &Path) -> String {
    let script = format!("cat \"$FLOWKEEP_CONFIG\" > {}; echo token=$(grep -o 'fk-secret-[0-9a-f]*' \"$FLOWKEEP_CONFIG\")", out.display());
    call::<CreateWorkflowCmd>(
        svc,
        CreateWorkflow {
            name: "vault".into(),
            config: Some(json!({
                "run": {"command": ["sh", "-c", script]},
                "fields": [
                    {"key": "api_key", "type": "secret", "required": true, "pattern": "^fk-secret-"},
                    {"key": "region", "type": "text"}
                ],
                "values": {"api_key": SECRET, "region": "eu-1"}
            })),
            ..Default::default()
        },
    )
    .unwrap()
    .id
}

/// Every file under `dir` that holds `needle`.
fn holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in walk(dir) {
        if std::fs::read(&e)
            .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .unwrap_or(false)
        {
            out.push(e.display().to_string());
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn run(svc: &Service, id: &str) -> flowkeep_app::Result<flowkeep_core::run::Run> {
    svc.runs().run(
        RunRequest {
            workflow_id: id.into(),
            overrides: vec![],
            trigger: "test".into(),
            on_start: None,
            occurrence: None,
        },
        &AtomicBool::new(false),
        Arc::new(|_, _| {}),
    )
}

#[test]
fn a_secret_is_sealed_at_rest_masked_in_answers_and_opened_for_the_job_only() {
    let dir = tempfile::tempdir().unwrap();
    let got = tempfile::tempdir().unwrap();
    let svc = open(dir.path());
    let id = vault(&svc, &got.path().join("job.json"));

    // Every answer masks it; the history says it was set, not what to.
    let config = call::<GetConfigCmd>(
        &svc,
        GetConfig {
            workflow_id: id.clone(),
        },
    )
    .unwrap();
    assert_eq!(config.config.values["api_key"], json!("••••"));
    assert_eq!(config.config.values["region"], json!("eu-1"));
    let wf = call::<GetWorkflowCmd>(&svc, WorkflowId { id: id.clone() }).unwrap();
    let history = call::<WorkflowHistoryCmd>(
        &svc,
        WorkflowHistory {
            workflow_id: id.clone(),
        },
    )
    .unwrap();
    for answer in [
        serde_json::to_string(&config).unwrap(),
        serde_json::to_string(&wf).unwrap(),
        serde_json::to_string(&history).unwrap(),
    ] {
        assert!(
            !answer.contains(SECRET) && !answer.contains("fkenc:"),
            "{answer}"
        );
    }
    let revealed = call::<RevealConfigCmd>(
        &svc,
        RevealConfig {
            workflow_id: id.clone(),
        },
    )
    .unwrap();
    assert_eq!(revealed.values["api_key"], json!(SECRET));

    // Writing •••• back (the app's form) keeps it; the same clear text is no change.
    let n = svc.event_count().unwrap();
    let mut doc = serde_json::to_value(&config.config).unwrap();
    call::<UpdateConfigCmd>(
        &svc,
        UpdateConfig {
            workflow_id: id.clone(),
            config: doc.clone(),
            expected_revision: None,
        },
    )
    .unwrap();
    doc["values"]["api_key"] = json!(SECRET);
    call::<UpdateConfigCmd>(
        &svc,
        UpdateConfig {
            workflow_id: id.clone(),
            config: doc,
            expected_revision: None,
        },
    )
    .unwrap();
    assert_eq!(
        svc.event_count().unwrap(),
        n,
        "an unchanged secret is no change"
    );

    // A value breaking the rules is refused without being echoed.
    let err = call::<SetConfigValueCmd>(
        &svc,
        SetConfigValue {
            workflow_id: id.clone(),
            key: "api_key".into(),
            value: json!("wrong-XQ7"),
            expected_revision: None,
        },
    )
    .unwrap_err();
    let body = serde_json::to_string(&err.body()).unwrap();
    assert!(
        body.contains("api_key") && !body.contains("wrong-XQ7"),
        "{body}"
    );

    // The job gets it; its record (config.json, output, tails) does not.
    let done = run(&svc, &id).unwrap();
    let job = std::fs::read_to_string(got.path().join("job.json")).unwrap();
    assert!(job.contains(SECRET), "the job read {job}");
    let record = serde_json::to_string(&done).unwrap();
    assert!(record.contains("token=••••"), "{record}");
    assert!(!record.contains(SECRET));
    assert_eq!(
        holding(dir.path(), SECRET),
        Vec::<String>::new(),
        "nothing in the data dir holds it in clear"
    );
    // Nor does a workflow export: the file holds it sealed.
    let exported = tempfile::tempdir().unwrap();
    svc.workflows()
        .export_files(ExportWorkflows {
            dir: exported.path().join("wf").display().to_string(),
            ..Default::default()
        })
        .unwrap();
    let text = std::fs::read_to_string(exported.path().join("wf/vault.flowkeep.yaml")).unwrap();
    assert!(text.contains("api_key: fkenc:v1:"), "{text}");
    assert!(holding(exported.path(), SECRET).is_empty());
}

#[test]
fn a_device_without_the_key_syncs_and_says_so_then_opens_it_once_given_the_key() {
    let server = TestServer::start();
    let token = server.workspace("team");
    let (da, db, got) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = open(da.path());
    let b = open(db.path());
    let id = vault(&a, &got.path().join("job.json"));
    let join = a.sync().init(&server.url, &token).unwrap().join;
    b.sync().join(&join, &token).unwrap();
    assert!(
        holding(server.dir(), SECRET).is_empty(),
        "the server holds only sealed values"
    );

    // B has the workflow (masked like anywhere) but not the key.
    let r = call::<RevealConfigCmd>(
        &b,
        RevealConfig {
            workflow_id: id.clone(),
        },
    )
    .unwrap();
    assert_eq!(r.values["api_key"], json!(null));
    assert!(
        r.unavailable[0]
            .message
            .contains("secret not available on this device"),
        "{:?}",
        r.unavailable
    );
    b.workflows()
        .approve(ApproveWorkflow {
            id: id.clone(),
            expected_revision: None,
        })
        .unwrap();
    let refused = run(&b, &id).unwrap_err().to_string();
    assert!(
        refused.contains("not available on this device"),
        "{refused}"
    );
    // It still syncs: an edit on B of another field reaches A.
    call::<SetConfigValueCmd>(
        &b,
        SetConfigValue {
            workflow_id: id.clone(),
            key: "region".into(),
            value: json!("us-2"),
            expected_revision: None,
        },
    )
    .unwrap();
    b.sync().now().unwrap();
    a.sync().now().unwrap();
    let on_a = call::<RevealConfigCmd>(
        &a,
        RevealConfig {
            workflow_id: id.clone(),
        },
    )
    .unwrap();
    assert_eq!(
        (
            on_a.values["region"].clone(),
            on_a.values["api_key"].clone()
        ),
        (json!("us-2"), json!(SECRET))
    );

    // Given the key (printed on A, added on B), B opens it and runs the job.
    let key = call::<SecretKeyCmd>(&a, SecretKey::default())
        .unwrap()
        .key
        .unwrap();
    call::<SecretKeyCmd>(
        &b,
        SecretKey {
            key: Some(key),
            ..Default::default()
        },
    )
    .unwrap();
    let r = call::<RevealConfigCmd>(
        &b,
        RevealConfig {
            workflow_id: id.clone(),
        },
    )
    .unwrap();
    assert_eq!(r.values["api_key"], json!(SECRET));
    run(&b, &id).unwrap();

    // Rotation seals again under a new key, as ordinary events; still opens.
    let n = a.event_count().unwrap();
    let rotated = call::<RotateSecretsCmd>(&a, RotateSecrets {}).unwrap();
    assert_eq!((rotated.workflows, rotated.values), (1, 1));
    assert!(a.event_count().unwrap() > n);
    let r = call::<RevealConfigCmd>(
        &a,
        RevealConfig {
            workflow_id: id.clone(),
        },
    )
    .unwrap();
    assert_eq!(r.values["api_key"], json!(SECRET));
}

/// A secret is checked in clear and stored sealed, about 4/3 its length:
/// one that fits in clear but not sealed is refused as it is written, on
/// create and on edit, and nothing is stored (every other device would
/// refuse the synced config, and this device could not read its own
/// document back).
#[test]
fn a_secret_too_large_once_sealed_is_refused_when_written() {
    let dir = tempfile::tempdir().unwrap();
    let svc = open(dir.path());
    let config = |token: &str| {
        json!({
            "fields": [{"key": "token", "type": "secret"}],
            "values": {"token": token}
        })
    };
    // Under the 2 MiB a config may take in clear; over it sealed.
    let large = "k".repeat(1_600_000);
    let refused = |result: flowkeep_app::Result<()>| match result {
        Err(flowkeep_app::Error::Invalid(errors)) => {
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(
                (errors[0].field.as_str(), errors[0].code.as_str()),
                ("config", "size")
            );
            assert!(
                errors[0].message.contains("sealed"),
                "{}",
                errors[0].message
            );
        }
        other => panic!("accepted: {other:?}"),
    };
    refused(
        call::<CreateWorkflowCmd>(
            &svc,
            CreateWorkflow {
                name: "big".into(),
                config: Some(config(&large)),
                ..Default::default()
            },
        )
        .map(|_| ()),
    );
    assert!(
        holding(dir.path(), "kkkkkkkkkkkkkkkk").is_empty(),
        "nothing stored"
    );

    let id = call::<CreateWorkflowCmd>(
        &svc,
        CreateWorkflow {
            name: "small".into(),
            config: Some(config(SECRET)),
            ..Default::default()
        },
    )
    .unwrap()
    .id;
    refused(
        call::<UpdateConfigCmd>(
            &svc,
            UpdateConfig {
                workflow_id: id.clone(),
                config: config(&large),
                expected_revision: None,
            },
        )
        .map(|_| ()),
    );
    let kept = call::<RevealConfigCmd>(&svc, RevealConfig { workflow_id: id }).unwrap();
    assert_eq!(
        kept.values["token"],
        json!(SECRET),
        "the edit changed nothing"
    );
}
