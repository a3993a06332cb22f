//! Run-log documents: the runs one device recorded for one workflow in
//! one month (bounded documents). Each run is a key of `runs` holding the
//! run as JSON text; a device only ever writes its own logs, so a record
//! conflicts only when a change the device sent did not reach its own disk
//! and the next one was written without it (`push.rs` `mend_own_log`
//! writes it again on top). Large output is cut down in the synced copy and
//! stays whole on the device that ran it.

use automerge::transaction::Transactable;
use automerge::{ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use flowkeep_core::remote::{self, LogKey};
use flowkeep_core::run::Run;
use serde_json::{json, Value as Json};

pub(crate) const KIND: &str = "flowkeep.execution-log";
/// Output JSON longer than this is replaced by a short summary when synced
/// (other devices refuse a longer one).
const MAX_SYNCED_OUTPUT: usize = remote::MAX_SYNCED_OUTPUT_BYTES;

pub(crate) fn log_key(workflow_id: &str, device_id: &str, started_at: i64) -> String {
    LogKey::new(workflow_id, device_id, started_at).to_string()
}

pub(crate) fn init(tx: &mut impl Transactable, key: &str) -> Result<(), String> {
    let e = |err: automerge::AutomergeError| err.to_string();
    tx.put(ROOT, "type", KIND).map_err(e)?;
    tx.put(ROOT, "schema", 1i64).map_err(e)?;
    tx.put(ROOT, "log", key).map_err(e)?;
    tx.put_object(ROOT, "runs", ObjType::Map).map_err(e)?;
    Ok(())
}

fn runs(doc: &impl ReadDoc) -> Option<ObjId> {
    match doc.get(ROOT, "runs").ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// The synced form of a run: its output cut down if large, or nested deeper
/// than a record other devices read (the record wraps it once more).
pub(crate) fn record(e: &Run) -> Json {
    let mut v = serde_json::to_value(e).expect("an execution serializes");
    if let Some(out) = &e.output {
        let too_deep = remote::json_depth(&v) > remote::MAX_JSON_DEPTH;
        if too_deep || out.to_string().len() > MAX_SYNCED_OUTPUT {
            let result = out
                .get("result")
                .filter(|r| r.to_string().len() <= MAX_SYNCED_OUTPUT / 2)
                .filter(|r| remote::json_depth(r) + 2 <= remote::MAX_JSON_DEPTH)
                .cloned();
            v["output"] = json!({"truncated": true, "result": result, "note": "the whole output is on the device that ran it"});
        }
    }
    v
}

pub(crate) fn put(tx: &mut impl Transactable, e: &Run) -> Result<(), String> {
    let obj = runs(tx).ok_or("the log document has no runs map")?;
    tx.put(&obj, e.id.as_str(), record(e).to_string())
        .map_err(|err| err.to_string())
}

/// The shape of a log document from elsewhere: its type, the key it says it
/// is (which must be the one the workspace lists it under), its runs map.
pub(crate) fn check(doc: &impl ReadDoc, key: &str) -> Result<(), String> {
    let prop = |k: &str| match doc.get(ROOT, k) {
        Ok(Some((v, _))) => text(&v),
        _ => None,
    };
    if prop("type").as_deref() != Some(KIND) {
        return Err("not an execution-log document".to_owned());
    }
    match prop("log") {
        Some(k) if k == key => {}
        Some(k) => {
            return Err(format!(
                "the document is log {} but is listed as {key}",
                remote::quote(&k)
            ))
        }
        None => return Err("log: must be a string".to_owned()),
    }
    if runs(doc).is_none() {
        return Err("runs: must be a map".to_owned());
    }
    Ok(())
}

fn text(v: &Value<'_>) -> Option<String> {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(t) => Some(t.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Records whose text changed since `since` (all of them when `since` is
/// empty), by key: the JSON text, or why there is none. Nothing is trusted
/// yet: the caller checks each record.
pub(crate) fn changed_since(
    doc: &impl ReadDoc,
    since: &[ChangeHash],
) -> Vec<(String, Result<String, String>)> {
    let Some(obj) = runs(doc) else { return vec![] };
    doc.keys(&obj)
        .filter_map(|k| {
            let now = match doc.get(&obj, &k) {
                Ok(Some((v, _))) => v,
                Ok(None) => return None,
                Err(e) => return Some((k, Err(e.to_string()))),
            };
            if !since.is_empty() {
                if let Ok(Some((before, _))) = doc.get_at(&obj, &k, since) {
                    if before == now {
                        return None;
                    }
                }
            }
            match text(&now) {
                Some(t) => Some((k, Ok(t))),
                None => Some((k, Err("the record is not JSON text".to_owned()))),
            }
        })
        .collect()
}

/// The change that wrote a record's current value: whose upload the
/// server can vouch for.
pub(crate) fn written_in(doc: &automerge::Automerge, run_key: &str) -> Option<ChangeHash> {
    let obj = runs(doc)?;
    let (_, id) = doc.get(&obj, run_key).ok()??;
    doc.hash_for_opid(&id)
}

/// Runs whose record holds values written concurrently.
pub(crate) fn contested(doc: &impl ReadDoc) -> Vec<String> {
    let Some(obj) = runs(doc) else { return vec![] };
    doc.keys(&obj)
        .filter(|k| doc.get_all(&obj, k).is_ok_and(|v| v.len() > 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::Automerge;

    const KEY: &str =
        "0190a4b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b/0190a4b2-7c3d-7e4f-8a5b-000000000002/2024-07";

    fn log() -> Automerge {
        let mut d = Automerge::new();
        d.transact::<_, _, String>(|tx| init(tx, KEY)).unwrap();
        d
    }

    /// A run whose output nests as deep as a device records is cut down as
    /// a large one is, so the record stays one other devices read.
    #[test]
    fn a_record_whose_output_nests_deeper_than_others_read_is_cut_down() {
        let nested = |levels: usize| (1..levels).fold(json!(1), |v, _| json!([v]));
        let run = |output: Json| Run {
            id: "0190a4b2-7c3d-7e4f-8a5b-000000000009".into(),
            workflow_id: "0190a4b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b".into(),
            status: flowkeep_core::run::RunStatus::Succeeded,
            output: Some(output),
            started_at: 1,
            completed_at: Some(2),
            duration_ms: Some(1),
            exit_code: Some(0),
            error: None,
            trigger: "cli".into(),
            device_id: "0190a4b2-7c3d-7e4f-8a5b-000000000002".into(),
            workflow_revision: Some(1),
            config_hash: None,
            occurrence: None,
        };
        let reads = |v: &Json| {
            remote::parse_json_text(&v.to_string(), remote::MAX_RUN_RECORD_BYTES).is_ok()
        };
        let fits = json!({"result": nested(remote::MAX_JSON_DEPTH - 2)});
        let v = record(&run(fits.clone()));
        assert_eq!(v["output"], fits, "kept as it is");
        assert!(reads(&v));

        let deep = json!({"result": nested(remote::MAX_JSON_DEPTH - 1), "stdout_tail": "…"});
        assert!(!reads(&serde_json::to_value(run(deep.clone())).unwrap()));
        let v = record(&run(deep));
        assert_eq!(v["output"]["truncated"], true);
        assert_eq!(v["output"]["result"], Json::Null, "too deep to keep");
        assert!(reads(&v), "{v}");
    }

    #[test]
    fn a_log_must_say_it_is_the_log_it_is_listed_as() {
        let d = log();
        check(&d, KEY).unwrap();
        let other = KEY.replace("2024-07", "2024-08");
        assert!(check(&d, &other).unwrap_err().contains("is listed as"));
        let mut d = log();
        d.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(ROOT, "runs", 1i64))
            .unwrap();
        assert_eq!(check(&d, KEY).unwrap_err(), "runs: must be a map");
        assert!(check(&Automerge::new(), KEY).is_err());
    }

    #[test]
    fn records_are_handed_over_raw_and_only_when_changed() {
        let mut d = log();
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            let runs = runs(tx).unwrap();
            tx.put(&runs, "a", "{}")?;
            tx.put(&runs, "b", 5i64)?;
            Ok(())
        })
        .unwrap();
        let since = d.get_heads();
        let mut all = changed_since(&d, &[]);
        all.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            all,
            [
                ("a".to_owned(), Ok("{}".to_owned())),
                (
                    "b".to_owned(),
                    Err("the record is not JSON text".to_owned())
                )
            ]
        );
        assert!(
            changed_since(&d, &since).is_empty(),
            "nothing changed since"
        );
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            let runs = runs(tx).unwrap();
            tx.put(&runs, "b", "[]")
        })
        .unwrap();
        assert_eq!(
            changed_since(&d, &since),
            [("b".to_owned(), Ok("[]".to_owned()))]
        );
        assert_eq!(written_in(&d, "b"), Some(d.get_heads()[0]));
        assert_eq!(written_in(&d, "a"), Some(since[0]));
        assert_eq!(written_in(&d, "nope"), None);
    }

    #[test]
    fn a_record_written_on_two_copies_at_once_is_contested_until_written_again() {
        let mut d = log();
        let mut other = d.fork();
        for (doc, text) in [(&mut d, "running"), (&mut other, "finished")] {
            doc.transact::<_, _, automerge::AutomergeError>(|tx| {
                let runs = runs(tx).unwrap();
                tx.put(&runs, "r", text)?;
                tx.put(&runs, text, "{}")
            })
            .unwrap();
        }
        d.merge(&mut other).unwrap();
        assert_eq!(contested(&d), ["r"]);
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            let runs = runs(tx).unwrap();
            tx.put(&runs, "r", "finished")
        })
        .unwrap();
        assert!(contested(&d).is_empty());
    }
}
