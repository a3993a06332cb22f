//! Writing field-level changes into a workflow document. A change carries
//! the value the writer changed from (`old`) and to (`new`); for the parts
//! written finer than one value only the difference is written (the tags
//! added and removed, the definitions that changed), so what another device
//! changed elsewhere in the same part stays.

use std::collections::{BTreeSet, HashMap, HashSet};

use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use flowkeep_core::workflow::{field_value, FieldChange};
use serde_json::Value as Json;

use super::{entry_id, part, read, Part, Shape, PARTS, SCHEMA, SCHEMA_JSON_TEXT};

fn e(err: impl std::fmt::Display) -> String {
    err.to_string()
}

fn obj(doc: &impl ReadDoc, parent: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(parent, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// Applies field-level changes (paths as in `workflow::diff`) to a document,
/// upgrading a first-layout document first.
pub(crate) fn apply(tx: &mut impl Transactable, changes: &[FieldChange]) -> Result<(), String> {
    upgrade(tx)?;
    let config = obj(tx, &ROOT, "config").ok_or("the document has no config map")?;
    // Another client may have removed the map; values go into a new one.
    let values = match obj(tx, &config, "values") {
        Some(v) => v,
        None => tx.put_object(&config, "values", ObjType::Map).map_err(e)?,
    };
    for c in changes {
        match c.field.as_str() {
            "name" | "description" | "version" => tx
                .put(ROOT, c.field.as_str(), c.new.as_str().unwrap_or_default())
                .map_err(e)?,
            "deleted" => tx
                .put(ROOT, "deleted", c.new.as_bool().unwrap_or(false))
                .map_err(e)?,
            path => {
                if let Some(p) = part(path) {
                    let parent = if p.path == "tags" {
                        ROOT
                    } else {
                        config.clone()
                    };
                    write_part(tx, &parent, p, &c.old, &c.new)?;
                    continue;
                }
                let Some(key) = path.strip_prefix("config.values.") else {
                    return Err(format!("no document field for {path}"));
                };
                if c.new.is_null() {
                    delete_if_present(tx, &values, key)?;
                } else {
                    tx.put(&values, key, c.new.to_string()).map_err(e)?;
                }
            }
        }
    }
    Ok(())
}

/// Rewrites a first-layout document (parts as JSON text) in the current
/// layout, saying the same. `Ok(false)` when there was nothing to do; a
/// document that does not read is left for the reader to report.
pub(crate) fn upgrade(tx: &mut impl Transactable) -> Result<bool, String> {
    let schema = match tx.get(ROOT, "schema") {
        Ok(Some((Value::Scalar(s), _))) => s.as_i64(),
        _ => None,
    };
    if schema != Some(SCHEMA_JSON_TEXT) {
        return Ok(false);
    }
    let Ok(state) = read(tx) else {
        return Ok(false);
    };
    let config = obj(tx, &ROOT, "config").ok_or("the document has no config map")?;
    for p in &PARTS {
        let parent = if p.path == "tags" {
            ROOT
        } else {
            config.clone()
        };
        let whole = field_value(&state.spec, p.path);
        if matches!(tx.get(&parent, p.key), Ok(Some((Value::Scalar(_), _)))) || !whole.is_null() {
            write_part(tx, &parent, p, &Json::Null, &whole)?;
        }
    }
    tx.put(ROOT, "schema", SCHEMA).map_err(e)?;
    Ok(true)
}

fn delete_if_present(tx: &mut impl Transactable, o: &ObjId, key: &str) -> Result<(), String> {
    if tx.get(o, key).map_err(e)?.is_some() {
        tx.delete(o, key).map_err(e)?;
    }
    Ok(())
}

/// Every map under `key` (several when devices created it concurrently; see
/// the reader), the winner first.
fn maps_all(tx: &impl ReadDoc, parent: &ObjId, key: &str) -> Vec<ObjId> {
    let mut maps = Vec::new();
    if let Some(m) = obj(tx, parent, key) {
        maps.push(m);
    }
    for (v, id) in tx.get_all(parent, key).unwrap_or_default() {
        if v == Value::Object(ObjType::Map) && !maps.contains(&id) {
            maps.push(id);
        }
    }
    maps
}

/// Writes the difference from `old` to `new` into one part. A part with no
/// map yet (absent, or JSON text of the first layout) gets a new map that
/// holds all of `new`.
fn write_part(
    tx: &mut impl Transactable,
    parent: &ObjId,
    part: &Part,
    old: &Json,
    new: &Json,
) -> Result<(), String> {
    if new.is_null() {
        delete_if_present(tx, parent, part.key)?;
        if let Shape::Keyed { order } = part.shape {
            delete_if_present(tx, parent, order)?;
        }
        return Ok(());
    }
    let mut maps = maps_all(tx, parent, part.key);
    let old = if maps.is_empty() {
        maps.push(tx.put_object(parent, part.key, ObjType::Map).map_err(e)?);
        &Json::Null
    } else {
        old
    };
    match part.shape {
        Shape::Set => {
            let strings = |v: &Json| -> BTreeSet<String> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            };
            let (old, new) = (strings(old), strings(new));
            for m in &maps {
                for t in new.difference(&old) {
                    tx.put(m, t.as_str(), true).map_err(e)?;
                }
                for t in old.difference(&new) {
                    delete_if_present(tx, m, t)?;
                }
            }
        }
        Shape::Object => {
            let empty = serde_json::Map::new();
            let old = old.as_object().unwrap_or(&empty);
            let new = new
                .as_object()
                .ok_or_else(|| format!("{}: must be an object", part.path))?;
            for m in &maps {
                for (k, v) in new {
                    if old.get(k) != Some(v) {
                        tx.put(m, k.as_str(), v.to_string()).map_err(e)?;
                    }
                }
                for k in old.keys().filter(|k| !new.contains_key(*k)) {
                    delete_if_present(tx, m, k)?;
                }
            }
        }
        Shape::Keyed { order } => {
            let old_entries = keyed_entries(part, old)?;
            let new_entries = keyed_entries(part, new)?;
            let before: HashMap<&str, &Json> =
                old_entries.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let after: HashSet<&str> = new_entries.iter().map(|(k, _)| k.as_str()).collect();
            for m in &maps {
                for (k, v) in &new_entries {
                    if before.get(k.as_str()) != Some(v) {
                        tx.put(m, k.as_str(), v.to_string()).map_err(e)?;
                    }
                }
                for (k, _) in old_entries
                    .iter()
                    .filter(|(k, _)| !after.contains(k.as_str()))
                {
                    delete_if_present(tx, m, k)?;
                }
            }
            let ids = |es: &[(String, &Json)]| -> Vec<String> {
                es.iter().map(|(k, _)| k.clone()).collect()
            };
            write_order(tx, parent, order, &ids(&old_entries), &ids(&new_entries))?;
        }
    }
    Ok(())
}

/// The entries of a keyed part, each with its identity.
fn keyed_entries<'a>(part: &Part, whole: &'a Json) -> Result<Vec<(String, &'a Json)>, String> {
    whole
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|v| {
            entry_id(part, v)
                .map(|id| (id, v))
                .ok_or_else(|| format!("{}: an entry has no identity", part.path))
        })
        .collect()
}

/// Keeps the order list in step: removed identities leave it, added ones go
/// in after the entry they follow. When entries that stay were reordered the
/// list is written again (a concurrent addition elsewhere still shows: the
/// reader puts unlisted entries last).
fn write_order(
    tx: &mut impl Transactable,
    parent: &ObjId,
    key: &str,
    old: &[String],
    new: &[String],
) -> Result<(), String> {
    let list = match tx.get(parent, key).map_err(e)? {
        Some((Value::Object(ObjType::List), id)) => id,
        _ => {
            let list = tx.put_object(parent, key, ObjType::List).map_err(e)?;
            for (i, id) in new.iter().enumerate() {
                tx.insert(&list, i, id.as_str()).map_err(e)?;
            }
            return Ok(());
        }
    };
    let (in_old, in_new): (HashSet<&String>, HashSet<&String>) =
        (old.iter().collect(), new.iter().collect());
    let kept_old: Vec<&String> = old.iter().filter(|k| in_new.contains(k)).collect();
    let kept_new: Vec<&String> = new.iter().filter(|k| in_old.contains(k)).collect();
    if kept_old != kept_new {
        for i in (0..tx.length(&list)).rev() {
            tx.delete(&list, i).map_err(e)?;
        }
        for (i, id) in new.iter().enumerate() {
            tx.insert(&list, i, id.as_str()).map_err(e)?;
        }
        return Ok(());
    }
    let current = texts(tx, &list);
    for (i, t) in current.iter().enumerate().rev() {
        if t.as_ref()
            .is_some_and(|t| in_old.contains(t) && !in_new.contains(t))
        {
            tx.delete(&list, i).map_err(e)?;
        }
    }
    for (n, id) in new.iter().enumerate() {
        if in_old.contains(id) {
            continue;
        }
        let current = texts(tx, &list);
        let at = match n.checked_sub(1).map(|p| &new[p]) {
            None => 0,
            Some(prev) => current
                .iter()
                .position(|t| t.as_ref() == Some(prev))
                .map_or(current.len(), |i| i + 1),
        };
        tx.insert(&list, at, id.as_str()).map_err(e)?;
    }
    Ok(())
}

/// The elements of a list of strings (`None` for anything else).
fn texts(doc: &impl ReadDoc, list: &ObjId) -> Vec<Option<String>> {
    (0..doc.length(list))
        .map(|i| match doc.get(list, i) {
            Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Str(t) => Some(t.to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
