//! A rebuild from the event log reproduces the live read tables exactly,
//! after long random sequences of commands (valid and invalid ones).

mod common;

use common::*;
use flowkeep_app::Service;
use flowkeep_core::commands::*;
use flowkeep_core::run::RunStatus;
use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone)]
enum Op {
    Create {
        name: u8,
        tags: u8,
        config: bool,
    },
    Rename {
        wf: u8,
        name: u8,
    },
    Describe {
        wf: u8,
        text: u8,
    },
    Tag {
        wf: u8,
        tags: u8,
    },
    SetRetries {
        wf: u8,
        value: i8,
    },
    SetMode {
        wf: u8,
        safe: bool,
    },
    AddField {
        wf: u8,
        key: u8,
    },
    DropFields {
        wf: u8,
    },
    Delete {
        wf: u8,
    },
    Duplicate {
        wf: u8,
    },
    Start {
        wf: u8,
    },
    Finish {
        exec: u8,
        status: u8,
    },
    DeleteExec {
        exec: u8,
    },
    Prune {
        back_ms: u16,
        per_workflow: Option<u8>,
    },
    Import {
        wf: u8,
        n: u8,
    },
    Retention {
        wf: Option<u8>,
        count: u8,
        age_s: u8,
    },
    Tick {
        ms: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(name, tags, config)| Op::Create { name, tags, config }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(wf, name)| Op::Rename { wf, name }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(wf, text)| Op::Describe { wf, text }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(wf, tags)| Op::Tag { wf, tags }),
        3 => (any::<u8>(), -3i8..14).prop_map(|(wf, value)| Op::SetRetries { wf, value }),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(wf, safe)| Op::SetMode { wf, safe }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(wf, key)| Op::AddField { wf, key }),
        1 => any::<u8>().prop_map(|wf| Op::DropFields { wf }),
        1 => any::<u8>().prop_map(|wf| Op::Delete { wf }),
        1 => any::<u8>().prop_map(|wf| Op::Duplicate { wf }),
        4 => any::<u8>().prop_map(|wf| Op::Start { wf }),
        4 => (any::<u8>(), any::<u8>()).prop_map(|(exec, status)| Op::Finish { exec, status }),
        1 => any::<u8>().prop_map(|exec| Op::DeleteExec { exec }),
        1 => (any::<u16>(), proptest::option::of(any::<u8>())).prop_map(|(back_ms, per_workflow)| Op::Prune { back_ms, per_workflow }),
        1 => (any::<u8>(), 0u8..5).prop_map(|(wf, n)| Op::Import { wf, n }),
        1 => (proptest::option::of(any::<u8>()), 0u8..6, 0u8..8)
            .prop_map(|(wf, count, age_s)| Op::Retention { wf, count, age_s }),
        2 => any::<u16>().prop_map(|ms| Op::Tick { ms }),
    ]
}

fn pick(ids: &[String], i: u8) -> String {
    if ids.is_empty() {
        "missing".to_owned()
    } else {
        ids[i as usize % ids.len()].clone()
    }
}

fn tags(bits: u8) -> Vec<String> {
    ["a", "b", "c", "d"]
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, t)| t.to_string())
        .collect()
}

/// Runs the ops; errors are expected (invalid values, deleted ids) and must
/// leave no trace, which the rebuild comparison also checks.
fn run(svc: &Service, clock: &TestClock, ops: &[Op]) -> (usize, usize) {
    let (mut ok, mut rejected) = (0, 0);
    let mut wfs: Vec<String> = Vec::new();
    let mut execs: Vec<String> = Vec::new();
    let mut now = T0;
    for op in ops {
        now += 7;
        clock.set(now);
        let result: Result<(), flowkeep_app::Error> = match op.clone() {
            Op::Create {
                name,
                tags: t,
                config,
            } => svc
                .workflows()
                .create(CreateWorkflow {
                    name: format!("wf {name}"),
                    tags: tags(t),
                    config: config.then(etl_config),
                    ..Default::default()
                })
                .map(|w| wfs.push(w.id)),
            Op::Rename { wf, name } => svc
                .workflows()
                .update(UpdateWorkflow {
                    id: pick(&wfs, wf),
                    name: Some(format!("name {name}")),
                    ..Default::default()
                })
                .map(drop),
            Op::Describe { wf, text } => svc
                .workflows()
                .update(UpdateWorkflow {
                    id: pick(&wfs, wf),
                    description: Some("d".repeat(text as usize)),
                    ..Default::default()
                })
                .map(drop),
            Op::Tag { wf, tags: t } => svc
                .workflows()
                .update(UpdateWorkflow {
                    id: pick(&wfs, wf),
                    tags: Some(tags(t)),
                    ..Default::default()
                })
                .map(drop),
            Op::SetRetries { wf, value } => svc
                .configs()
                .set_value(SetConfigValue {
                    workflow_id: pick(&wfs, wf),
                    key: "retries".into(),
                    value: json!(value),
                    expected_revision: None,
                })
                .map(drop),
            Op::SetMode { wf, safe } => svc
                .configs()
                .set_value(SetConfigValue {
                    workflow_id: pick(&wfs, wf),
                    key: "mode".into(),
                    value: json!(if safe { "safe" } else { "fast" }),
                    expected_revision: None,
                })
                .map(drop),
            Op::AddField { wf, key } => {
                let id = pick(&wfs, wf);
                svc.configs()
                    .get(GetConfig {
                        workflow_id: id.clone(),
                    })
                    .and_then(|c| {
                        let mut doc = serde_json::to_value(&c.config).unwrap();
                        doc["fields"].as_array_mut().unwrap().push(
                        json!({"key": format!("k{}", key % 8), "type": "number", "default": key}),
                    );
                        svc.configs()
                            .update(UpdateConfig {
                                workflow_id: id,
                                config: doc,
                                expected_revision: Some(c.revision),
                            })
                            .map(drop)
                    })
            }
            Op::DropFields { wf } => svc
                .configs()
                .update(UpdateConfig {
                    workflow_id: pick(&wfs, wf),
                    config: json!({"fields": [], "values": {}}),
                    expected_revision: None,
                })
                .map(drop),
            Op::Delete { wf } => svc
                .workflows()
                .delete(DeleteWorkflow {
                    id: pick(&wfs, wf),
                    expected_revision: None,
                })
                .map(drop),
            Op::Duplicate { wf } => svc
                .workflows()
                .duplicate(DuplicateWorkflow {
                    id: pick(&wfs, wf),
                    name: None,
                })
                .map(|w| wfs.push(w.id)),
            Op::Start { wf } => svc
                .runs()
                .start(StartRun {
                    workflow_id: pick(&wfs, wf),
                    ..Default::default()
                })
                .map(|e| execs.push(e.id)),
            Op::Finish { exec, status } => {
                let status = [
                    RunStatus::Succeeded,
                    RunStatus::Failed,
                    RunStatus::Cancelled,
                    RunStatus::Running,
                ][status as usize % 4];
                svc.runs()
                    .finish(FinishRun {
                        id: pick(&execs, exec),
                        status,
                        exit_code: Some(1),
                        output: Some(json!({"n": exec})),
                        error: None,
                    })
                    .map(drop)
            }
            Op::DeleteExec { exec } => svc
                .runs()
                .delete(RunId {
                    id: pick(&execs, exec),
                })
                .map(drop),
            Op::Prune {
                back_ms,
                per_workflow,
            } => svc
                .runs()
                .prune(RunFilter {
                    workflow_id: per_workflow.map(|w| pick(&wfs, w)),
                    status: None,
                    since: None,
                    until: Some(now - back_ms as i64),
                })
                .map(drop),
            Op::Import { wf, n } => svc
                .runs()
                .import(ImportRuns {
                    runs: (0..n as i64)
                        .map(|k| ImportedRun {
                            workflow_id: pick(&wfs, wf.wrapping_add(k as u8)),
                            status: RunStatus::Failed,
                            started_at: now - 5_000 + k,
                            completed_at: now - 4_000,
                            exit_code: Some(2),
                            output: None,
                            error: Some("imported".into()),
                            trigger: None,
                        })
                        .collect(),
                })
                .map(drop),
            Op::Retention { wf, count, age_s } => {
                let workflow_id = wf.map(|w| pick(&wfs, w));
                let policy = flowkeep_core::config::RetentionPolicy {
                    max_age: (age_s > 0).then(|| format!("{age_s}s")),
                    max_count: (count > 0).then_some(count as u64),
                };
                svc.settings()
                    .set_retention(SetRetention {
                        workflow_id: workflow_id.clone(),
                        policy,
                    })
                    .and_then(|_| {
                        svc.settings()
                            .apply_retention(ApplyRetention { workflow_id })
                    })
                    .map(drop)
            }
            Op::Tick { ms } => {
                now += ms as i64;
                Ok(())
            }
        };
        match result {
            Ok(()) => ok += 1,
            Err(_) => rejected += 1,
        }
    }
    (ok, rejected)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn rebuild_equals_live_projection(ops in proptest::collection::vec(op(), 1000..1200)) {
        let dir = tempfile::tempdir().unwrap();
        let (svc, clock) = open(&dir);
        let (ok, _rejected) = run(&svc, &clock, &ops);
        prop_assert!(ok > 300, "too few commands succeeded to mean anything: {ok}");
        let live = svc.dump_read_tables().unwrap();
        let events = svc.event_count().unwrap();
        let replayed = svc.rebuild_projections().unwrap();
        prop_assert_eq!(replayed, events);
        let rebuilt = svc.dump_read_tables().unwrap();
        prop_assert!(live == rebuilt, "rebuild differs from live projection");
        prop_assert_eq!(svc.event_count().unwrap(), events, "rebuild appended events");
    }
}

#[test]
fn a_fixed_long_sequence_exercises_every_path() {
    // Deterministic companion of the property: every op kind succeeds at
    // least once, so the property is not vacuous for any event kind.
    let dir = tempfile::tempdir().unwrap();
    let (svc, clock) = open(&dir);
    let mut ops = Vec::new();
    for i in 0..1000u32 {
        let b = (i % 251) as u8;
        ops.push(match i % 15 {
            0 | 14 => Op::Create {
                name: b,
                tags: b,
                config: true,
            },
            1 => Op::Rename { wf: b, name: b },
            2 => Op::Describe {
                wf: b,
                text: b % 40,
            },
            3 => Op::Tag { wf: b, tags: b },
            4 => Op::SetRetries {
                wf: b,
                value: (b % 12) as i8,
            },
            5 => Op::SetMode {
                wf: b,
                safe: b.is_multiple_of(2),
            },
            6 => Op::AddField { wf: b, key: b },
            7 => Op::Start { wf: b },
            8 => Op::Finish { exec: b, status: b },
            9 => Op::Start {
                wf: b.wrapping_add(1),
            },
            10 => Op::Duplicate { wf: b },
            11 => Op::DeleteExec { exec: b },
            12 => {
                if i % 45 == 12 {
                    Op::Delete { wf: b }
                } else {
                    Op::Import { wf: b, n: 3 }
                }
            }
            _ if i % 30 == 13 => Op::Retention {
                wf: (i % 60 == 43).then_some(b),
                count: 2,
                age_s: 0,
            },
            _ => Op::Prune {
                back_ms: 3000,
                per_workflow: None,
            },
        });
    }
    run(&svc, &clock, &ops);
    let history_kinds = |kind: &str| -> i64 {
        let c = rusqlite::Connection::open(dir.path().join("flowkeep.db")).unwrap();
        c.query_row("SELECT count(*) FROM events WHERE kind = ?1", [kind], |r| {
            r.get(0)
        })
        .unwrap()
    };
    for kind in [
        "workflow.created",
        "workflow.updated",
        "config.updated",
        "workflow.deleted",
        "execution.started",
        "execution.finished",
        "execution.recorded",
        "execution.deleted",
        "executions.pruned",
        "settings.updated",
    ] {
        assert!(history_kinds(kind) > 0, "no {kind} event in the sequence");
    }
    let live = svc.dump_read_tables().unwrap();
    svc.rebuild_projections().unwrap();
    assert_eq!(svc.dump_read_tables().unwrap(), live);
}
