//! `change_workflow` validates outside the write transaction: other writers
//! commit while a change is validated, and the revision is checked again
//! when the change is written. A hook that runs on the changing thread
//! between validation and the write makes "validation in progress" last as
//! long as a test needs, without timing anything.

use std::cell::RefCell;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use flowkeep_core::commands::{CreateWorkflow, SetConfigValue, WorkflowId};
use serde_json::{json, Value};

use super::Service;
use crate::Error;
use flowkeep_store::db::StoreOptions;

thread_local! {
    static AFTER_VALIDATE: RefCell<Option<Box<dyn FnMut()>>> = RefCell::new(None);
}

/// Called by `change_workflow` once a change is validated, before its write
/// transaction. The hook is taken out while it runs, so a change it makes
/// itself does not run it again.
pub(super) fn after_validate() {
    if let Some(mut hook) = AFTER_VALIDATE.with(|h| h.borrow_mut().take()) {
        hook();
        AFTER_VALIDATE.with(|h| {
            h.borrow_mut().get_or_insert(hook);
        });
    }
}

fn set_hook(hook: impl FnMut() + 'static) {
    AFTER_VALIDATE.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
}

fn clear_hook() {
    AFTER_VALIDATE.with(|h| *h.borrow_mut() = None);
}

/// Long enough that only a writer that is really blocked misses it.
const STUCK: Duration = Duration::from_secs(60);

fn open(dir: &tempfile::TempDir) -> Arc<Service> {
    let svc = Service::open(
        &dir.path().join("flowkeep.db"),
        StoreOptions {
            actor: "tester".into(),
            ..Default::default()
        },
    )
    .unwrap();
    Arc::new(svc)
}

fn create(svc: &Service, name: &str) -> String {
    svc.workflows()
        .create(CreateWorkflow {
            name: name.into(),
            config: Some(json!({
                "fields": [{"key": "a", "type": "number"}, {"key": "b", "type": "number"}],
                "values": {"a": 1, "b": 1}
            })),
            ..Default::default()
        })
        .unwrap()
        .id
}

fn set(id: &str, key: &str, value: i64, expected_revision: Option<u64>) -> SetConfigValue {
    SetConfigValue {
        workflow_id: id.to_owned(),
        key: key.to_owned(),
        value: json!(value),
        expected_revision,
    }
}

fn values(svc: &Service, id: &str) -> (u64, Value, Value) {
    let wf = svc
        .workflows()
        .get(WorkflowId { id: id.to_owned() })
        .unwrap();
    let v = &wf.spec.config.values;
    (wf.revision, v["a"].clone(), v["b"].clone())
}

/// The streams of the events in the order they were committed.
fn commit_order(svc: &Service) -> Vec<String> {
    svc.read(|c| {
        let mut stmt = c.prepare("SELECT stream_id FROM events ORDER BY seq")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })
    .unwrap()
}

#[test]
fn a_create_commits_while_another_change_is_being_validated() {
    let dir = tempfile::tempdir().unwrap();
    let svc = open(&dir);
    let slow = create(&svc, "slow");
    let (validating_tx, validating) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let updater = {
        let (svc, slow) = (svc.clone(), slow.clone());
        std::thread::spawn(move || {
            set_hook(move || {
                validating_tx.send(()).unwrap();
                // Validation "takes" until the main thread says go (or gives up).
                let _ = go_rx.recv();
            });
            svc.configs().set_value(set(&slow, "a", 2, None))
        })
    };
    validating
        .recv_timeout(STUCK)
        .expect("the update validated");

    // Another writer, on its own thread: it must not wait for the update.
    let (created_tx, created) = mpsc::channel();
    {
        let svc = svc.clone();
        std::thread::spawn(move || created_tx.send(create(&svc, "meanwhile")));
    }
    let meanwhile = created
        .recv_timeout(STUCK)
        .expect("a create was blocked by a change being validated");
    go.send(()).unwrap();
    let updated = updater.join().unwrap().unwrap();
    assert_eq!(updated.config.values["a"], json!(2));

    let order = commit_order(&svc);
    assert_eq!(order, vec![slow.clone(), meanwhile, slow], "{order:?}");
}

#[test]
fn a_revision_that_moved_during_validation_is_a_conflict_when_one_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let svc = open(&dir);
    let id = create(&svc, "w");
    let (revision, _, _) = values(&svc, &id);
    {
        let (svc, id) = (svc.clone(), id.clone());
        // While the change is validated, someone else's change commits.
        set_hook(move || {
            svc.configs().set_value(set(&id, "b", 9, None)).unwrap();
        });
    }
    let got = svc.configs().set_value(set(&id, "a", 2, Some(revision)));
    clear_hook();
    match got {
        Err(Error::Conflict(m)) => assert!(m.contains("expected revision"), "{m}"),
        other => panic!("want a conflict, got {other:?}"),
    }
    assert_eq!(values(&svc, &id), (revision + 1, json!(1), json!(9)));
}

#[test]
fn a_revision_that_moved_during_validation_is_edited_and_validated_again() {
    let dir = tempfile::tempdir().unwrap();
    let svc = open(&dir);
    let id = create(&svc, "w");
    let (revision, _, _) = values(&svc, &id);
    let validations = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let (svc, id, validations) = (svc.clone(), id.clone(), validations.clone());
        set_hook(move || {
            let n = validations.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n == 0 {
                svc.configs().set_value(set(&id, "b", 9, None)).unwrap();
            }
        });
    }
    let got = svc.configs().set_value(set(&id, "a", 2, None));
    clear_hook();
    let got = got.unwrap();
    assert_eq!(got.revision, revision + 2);
    assert_eq!(validations.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Both changes are kept: the edit was made again on the new state.
    assert_eq!(values(&svc, &id), (revision + 2, json!(2), json!(9)));
}

#[test]
fn an_edit_made_again_is_validated_again() {
    let dir = tempfile::tempdir().unwrap();
    let svc = open(&dir);
    let text = |pattern: Option<&str>| {
        let mut field = json!({"key": "a", "type": "text"});
        if let Some(p) = pattern {
            field["pattern"] = json!(p);
        }
        json!({"fields": [field], "values": {"a": "xx"}})
    };
    let id = svc
        .workflows()
        .create(CreateWorkflow {
            name: "w".into(),
            config: Some(text(None)),
            ..Default::default()
        })
        .unwrap()
        .id;
    {
        let (svc, id) = (svc.clone(), id.clone());
        // "yy" is valid where the change was first made; meanwhile "a" gets
        // a pattern that refuses it. Only the second validation can know.
        set_hook(move || {
            svc.configs()
                .update(flowkeep_core::commands::UpdateConfig {
                    workflow_id: id.clone(),
                    config: text(Some("^x+$")),
                    expected_revision: None,
                })
                .unwrap();
        });
    }
    let got = svc.configs().set_value(SetConfigValue {
        workflow_id: id.clone(),
        key: "a".into(),
        value: json!("yy"),
        expected_revision: None,
    });
    clear_hook();
    match got {
        Err(Error::Invalid(errors)) => assert_eq!(
            (errors[0].field.as_str(), errors[0].code.as_str()),
            ("values.a", "pattern")
        ),
        other => panic!("want the new pattern to refuse the value, got {other:?}"),
    }
    let wf = svc.workflows().get(WorkflowId { id }).unwrap();
    assert_eq!(wf.spec.config.values["a"], json!("xx"));
    assert_eq!(wf.spec.config.fields[0].pattern.as_deref(), Some("^x+$"));
}

#[test]
fn a_workflow_that_never_stops_changing_ends_in_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let svc = open(&dir);
    let id = create(&svc, "w");
    let (revision, _, _) = values(&svc, &id);
    {
        let (svc, id) = (svc.clone(), id.clone());
        let mut n = 0;
        set_hook(move || {
            n += 1;
            svc.configs()
                .set_value(set(&id, "b", 100 + n, None))
                .unwrap();
        });
    }
    let got = svc.configs().set_value(set(&id, "a", 2, None));
    clear_hook();
    assert!(matches!(got, Err(Error::Conflict(_))), "{got:?}");
    let attempts = super::CHANGE_ATTEMPTS as u64;
    assert_eq!(
        values(&svc, &id),
        (revision + attempts, json!(1), json!(100 + attempts as i64))
    );
}
