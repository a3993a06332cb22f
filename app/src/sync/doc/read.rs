//! Reading a workflow document without trusting it: every property of the
//! wrong type is a problem (never a silent default), and conflicts keep
//! every value. Reads both layouts (see `super`): a document written before
//! schema 2, and the past states of any document, hold parts as JSON text.

use std::collections::HashSet;

use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use flowkeep_core::events::FieldConflict;
use flowkeep_core::remote;
use flowkeep_core::workflow::WorkflowSpec;
use serde_json::Value as Json;

use super::{
    entry_id, DocState, Part, Shape, KIND, MAX_CONFLICT_VALUES, MAX_ENTRIES, PARTS, SCHEMA,
    SCHEMA_JSON_TEXT,
};

/// A scalar as JSON; anything else (an object, bytes, a counter, ...) is
/// named instead, for the message.
pub(super) fn scalar_json(v: &Value<'_>) -> Result<Json, &'static str> {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(t) => Ok(Json::String(t.to_string())),
            ScalarValue::Int(i) => Ok(Json::from(*i)),
            ScalarValue::Uint(u) => Ok(Json::from(*u)),
            ScalarValue::F64(f) => Ok(Json::from(*f)),
            ScalarValue::Boolean(b) => Ok(Json::Bool(*b)),
            ScalarValue::Null => Ok(Json::Null),
            ScalarValue::Bytes(_) => Err("bytes"),
            ScalarValue::Counter(_) => Err("a counter"),
            ScalarValue::Timestamp(_) => Err("a timestamp"),
            ScalarValue::Unknown { .. } => Err("an unknown scalar"),
        },
        Value::Object(ObjType::Map) => Err("a map"),
        Value::Object(ObjType::List) => Err("a list"),
        Value::Object(_) => Err("a text object"),
    }
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The winning value of a part and, when devices wrote parts of it
/// concurrently, each other whole value it could have had.
struct Contested {
    winner: Json,
    others: Vec<Json>,
}

struct Reader<'a, D> {
    doc: &'a D,
    conflicts: Vec<FieldConflict>,
    problems: Vec<String>,
}

impl<D: ReadDoc> Reader<'_, D> {
    /// The winning scalar and the other values devices set concurrently.
    /// `None` when absent or not a scalar.
    fn scalar_all(&mut self, o: &ObjId, key: &str, path: &str) -> Option<(Json, Vec<Json>)> {
        let all = match self.doc.get_all(o, key) {
            Ok(all) => all,
            Err(err) => {
                self.problems.push(format!("{path}: {err}"));
                return None;
            }
        };
        let winner = match self.doc.get(o, key) {
            Ok(Some((v, _))) => v,
            Ok(None) => return None,
            Err(err) => {
                self.problems.push(format!("{path}: {err}"));
                return None;
            }
        };
        let winner = match scalar_json(&winner) {
            Ok(j) => j,
            Err(kind) => {
                self.problems
                    .push(format!("{path}: must be a value, got {kind}"));
                return None;
            }
        };
        let mut others = Vec::new();
        for (v, _) in &all {
            // Thousands of devices (actors) writing one key concurrently
            // must not cost thousands of values, each compared with the
            // others: a few show that it is contested.
            if others.len() == MAX_CONFLICT_VALUES {
                break;
            }
            match scalar_json(v) {
                Ok(j) if j != winner && !others.contains(&j) => others.push(j),
                Ok(_) => {}
                Err(kind) => {
                    self.problems
                        .push(format!("{path}: a conflicting value is {kind}"));
                    return None;
                }
            }
        }
        Some((winner, others))
    }

    /// The winning scalar; concurrent other values become a conflict.
    fn scalar(&mut self, o: &ObjId, key: &str, path: &str) -> Option<Json> {
        let (winner, others) = self.scalar_all(o, key, path)?;
        self.conflict(path, &winner, others);
        Some(winner)
    }

    fn conflict(&mut self, path: &str, winner: &Json, others: Vec<Json>) {
        if !others.is_empty() {
            let mut values = vec![winner.clone()];
            values.extend(others);
            self.conflicts.push(FieldConflict {
                field: path.to_owned(),
                values,
            });
        }
    }

    fn typed<T>(
        &mut self,
        o: &ObjId,
        key: &str,
        path: &str,
        expected: &str,
        get: impl Fn(&Json) -> Option<T>,
    ) -> Option<T> {
        let v = self.scalar(o, key, path)?;
        let out = get(&v);
        if out.is_none() {
            self.problems
                .push(format!("{path}: must be {expected}, got {}", json_kind(&v)));
        }
        out
    }

    fn text(&mut self, o: &ObjId, key: &str, path: &str) -> Option<String> {
        self.typed(o, key, path, "a string", |v| v.as_str().map(str::to_owned))
    }

    /// JSON text stored in the document, parsed (bounded in size and depth),
    /// with the other values devices wrote concurrently, parsed too.
    fn json_all(&mut self, o: &ObjId, key: &str, path: &str) -> Option<Contested> {
        let (winner, others) = self.scalar_all(o, key, path)?;
        let mut parse = |v: &Json| match v.as_str() {
            Some(t) => remote::parse_json_text(t, remote::MAX_CONFIG_BYTES)
                .map_err(|m| self.problems.push(format!("{path}: {m}")))
                .ok(),
            None => {
                self.problems
                    .push(format!("{path}: must be JSON text, got {}", json_kind(v)));
                None
            }
        };
        let winner = parse(&winner)?;
        let others = others.iter().map(&mut parse).collect::<Option<Vec<_>>>()?;
        Some(Contested { winner, others })
    }

    /// JSON text; concurrent other values become a conflict.
    fn json(&mut self, o: &ObjId, key: &str, path: &str) -> Option<Json> {
        let Contested { winner, others } = self.json_all(o, key, path)?;
        self.conflict(path, &winner, others);
        Some(winner)
    }

    /// The object under `key`, if it is one of `kind`; anything else there is
    /// a problem.
    fn object(&mut self, o: &ObjId, key: &str, path: &str, kind: ObjType) -> Option<ObjId> {
        match self.doc.get(o, key) {
            Ok(Some((Value::Object(k), id))) if k == kind => Some(id),
            Ok(Some((v, _))) => {
                let got = scalar_json(&v).map(|j| json_kind(&j)).unwrap_or_else(|k| k);
                let want = if kind == ObjType::Map {
                    "a map"
                } else {
                    "a list"
                };
                self.problems
                    .push(format!("{path}: must be {want}, got {got}"));
                None
            }
            Ok(None) => None,
            Err(err) => {
                self.problems.push(format!("{path}: {err}"));
                None
            }
        }
    }

    fn map(&mut self, o: &ObjId, key: &str, path: &str, required: bool) -> Option<ObjId> {
        let found = self.object(o, key, path, ObjType::Map);
        if found.is_none() && required && matches!(self.doc.get(o, key), Ok(None)) {
            self.problems.push(format!("{path}: is missing"));
        }
        found
    }

    /// Every map under `key`, the winner first: two devices that each
    /// created the part's map concurrently (each upgrading the same first
    /// layout document, say) hold two, and neither's entries may be lost.
    fn maps_all(&mut self, o: &ObjId, key: &str, path: &str) -> Vec<ObjId> {
        let mut maps = match self.doc.get(o, key) {
            Ok(Some((Value::Object(ObjType::Map), id))) => vec![id],
            _ => vec![],
        };
        match self.doc.get_all(o, key) {
            Ok(all) => {
                for (v, id) in all {
                    if v == Value::Object(ObjType::Map) && !maps.contains(&id) {
                        maps.push(id);
                    }
                }
            }
            Err(err) => self.problems.push(format!("{path}: {err}")),
        }
        maps
    }

    /// A part of the workflow, in either layout. `None` when absent.
    fn part(&mut self, parent: &ObjId, part: &Part) -> Option<Json> {
        let maps = self.maps_all(parent, part.key, part.path);
        if maps.is_empty() {
            // The first layout: JSON text (anything else is reported).
            return self.json(parent, part.key, part.path);
        }
        match part.shape {
            Shape::Set => self.set(&maps, part),
            Shape::Keyed { order } => self.keyed(parent, &maps, part, order),
            Shape::Object => self.fields_of(&maps, part),
        }
    }

    /// Every key of every map, each once: the first map that has it
    /// supplies its value.
    fn entries(&mut self, maps: &[ObjId], part: &Part) -> Option<Vec<(String, ObjId)>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for m in maps {
            if self.doc.length(m) > MAX_ENTRIES {
                self.problems
                    .push(format!("{}: more than {MAX_ENTRIES} entries", part.path));
                return None;
            }
            for k in self.doc.keys(m) {
                if seen.insert(k.clone()) {
                    out.push((k, m.clone()));
                }
            }
        }
        if out.len() > MAX_ENTRIES {
            self.problems
                .push(format!("{}: more than {MAX_ENTRIES} entries", part.path));
            return None;
        }
        Some(out)
    }

    fn too_big(&mut self, part: &Part, bytes: usize) -> bool {
        let over = bytes > remote::MAX_CONFIG_BYTES;
        if over {
            self.problems.push(format!(
                "{}: more than {} bytes",
                part.path,
                remote::MAX_CONFIG_BYTES
            ));
        }
        over
    }

    /// A set: the keys of its map(s), in order.
    fn set(&mut self, maps: &[ObjId], part: &Part) -> Option<Json> {
        let mut keys: Vec<String> = self
            .entries(maps, part)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        if self.too_big(part, keys.iter().map(String::len).sum()) {
            return None;
        }
        keys.sort();
        Some(Json::Array(keys.into_iter().map(Json::String).collect()))
    }

    /// The identities the order list names, each once (two devices that
    /// added the same entry each listed it).
    fn order(&mut self, parent: &ObjId, order_key: &str, part: &Part) -> Option<Vec<String>> {
        let path = format!("{}_order", part.path);
        let mut order = Vec::new();
        let Some(list) = self.object(parent, order_key, &path, ObjType::List) else {
            return Some(order);
        };
        let len = self.doc.length(&list);
        if len > MAX_ENTRIES {
            self.problems
                .push(format!("{path}: more than {MAX_ENTRIES} entries"));
            return None;
        }
        let mut seen = HashSet::new();
        for i in 0..len {
            match self.doc.get(&list, i) {
                Ok(Some((Value::Scalar(s), _))) if s.as_str().is_some() => {
                    let k = s.as_str().unwrap_or_default().to_owned();
                    if seen.insert(k.clone()) {
                        order.push(k);
                    }
                }
                _ => {
                    self.problems.push(format!("{path}: must hold strings"));
                    return None;
                }
            }
        }
        Some(order)
    }

    /// Entries keyed by their identity, in the order the order list gives
    /// (an entry the list does not name comes last, by key: two devices
    /// that each add one both keep theirs).
    fn keyed(
        &mut self,
        parent: &ObjId,
        maps: &[ObjId],
        part: &Part,
        order_key: &str,
    ) -> Option<Json> {
        let order = self.order(parent, order_key, part)?;
        let mut entries = self.entries(maps, part)?;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let rank: std::collections::HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        // Stable: unlisted entries keep their key order, after the listed.
        entries.sort_by_key(|(k, _)| rank.get(k.as_str()).copied().unwrap_or(usize::MAX));
        let mut winners = Vec::with_capacity(entries.len());
        let mut contested = Vec::new();
        let mut bytes = 0usize;
        for (i, (k, map)) in entries.iter().enumerate() {
            let path = format!("{}.{k}", part.path);
            let Contested { winner, others } = self.json_all(map, k, &path)?;
            bytes += winner.to_string().len();
            if self.too_big(part, bytes) {
                return None;
            }
            if entry_id(part, &winner).as_deref() != Some(k.as_str()) {
                self.problems.push(format!(
                    "{path}: holds an entry whose identity is not {}",
                    remote::quote(k)
                ));
                return None;
            }
            if !others.is_empty() {
                contested.push((i, others));
            }
            winners.push(winner);
        }
        // Conflicts are reported for the part as a whole, as a local edit
        // writes it: each other value is the winner with one entry swapped.
        let whole = Json::Array(winners);
        let mut others = Vec::new();
        // Each other value is a copy of the whole part: a few of them.
        for (i, v) in contested
            .into_iter()
            .flat_map(|(i, values)| values.into_iter().map(move |v| (i, v)))
            .take(MAX_CONFLICT_VALUES)
        {
            let mut alt = whole.clone();
            alt[i] = v;
            others.push(alt);
        }
        self.conflict(part.path, &whole, others);
        Some(whole)
    }

    /// An object stored field by field, each field's value as JSON text.
    fn fields_of(&mut self, maps: &[ObjId], part: &Part) -> Option<Json> {
        let mut entries = self.entries(maps, part)?;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut winner = serde_json::Map::new();
        let mut contested = Vec::new();
        let mut bytes = 0usize;
        for (k, map) in entries {
            let path = format!("{}.{k}", part.path);
            let Contested { winner: v, others } = self.json_all(&map, &k, &path)?;
            bytes += k.len() + v.to_string().len();
            if self.too_big(part, bytes) {
                return None;
            }
            if !others.is_empty() {
                contested.push((k.clone(), others));
            }
            winner.insert(k, v);
        }
        let whole = Json::Object(winner);
        let mut others = Vec::new();
        for (k, v) in contested
            .into_iter()
            .flat_map(|(k, values)| values.into_iter().map(move |v| (k.clone(), v)))
            .take(MAX_CONFLICT_VALUES)
        {
            let mut alt = whole.clone();
            alt[&k] = v;
            others.push(alt);
        }
        self.conflict(part.path, &whole, others);
        Some(whole)
    }
}

/// What a workflow document says, or every problem with its shape (types,
/// JSON text, nesting). Never panics, whatever the document holds; the
/// content rules (sizes, ids) are `checked`'s.
pub(crate) fn read(doc: &impl ReadDoc) -> Result<DocState, String> {
    let mut r = Reader {
        doc,
        conflicts: Vec::new(),
        problems: Vec::new(),
    };
    let kind = r.text(&ROOT, "type", "type");
    if kind.as_deref() != Some(KIND) {
        return Err(match kind {
            Some(k) => format!("not a workflow document (type {})", remote::quote(&k)),
            None if r.problems.is_empty() => "not a workflow document (no type)".to_owned(),
            None => r.problems.join("; "),
        });
    }
    if let Some(schema) = r.typed(&ROOT, "schema", "schema", "an integer", Json::as_i64) {
        if schema != SCHEMA && schema != SCHEMA_JSON_TEXT {
            r.problems.push(format!(
                "schema: {schema} is not one this version of flowkeep reads"
            ));
        }
    }
    let id = r.text(&ROOT, "id", "id");
    if id.is_none() && r.problems.is_empty() {
        r.problems.push("id: is missing".to_owned());
    }
    let name = r.text(&ROOT, "name", "name").unwrap_or_default();
    let description = r
        .text(&ROOT, "description", "description")
        .unwrap_or_default();
    let version = r.text(&ROOT, "version", "version").unwrap_or_default();
    let deleted = r
        .typed(&ROOT, "deleted", "deleted", "true or false", Json::as_bool)
        .unwrap_or(false);
    let created_at = r
        .typed(
            &ROOT,
            "created_at",
            "created_at",
            "an integer",
            Json::as_i64,
        )
        .unwrap_or(0);
    let [tags_part, config_parts @ ..] = &PARTS;
    let tags = match r.part(&ROOT, tags_part) {
        None => vec![],
        Some(v) => match serde_json::from_value::<Vec<String>>(v) {
            Ok(t) => t,
            Err(_) => {
                r.problems
                    .push("tags: must be an array of strings".to_owned());
                vec![]
            }
        },
    };
    let mut config = serde_json::Map::new();
    if let Some(config_obj) = r.map(&ROOT, "config", "config", true) {
        for part in config_parts {
            if let Some(v) = r.part(&config_obj, part) {
                if !v.is_null() {
                    config.insert(part.key.to_owned(), v);
                }
            }
        }
        let mut values = serde_json::Map::new();
        if let Some(values_obj) = r.map(&config_obj, "values", "config.values", false) {
            // Bounded like every other part, before any value is parsed.
            let mut bytes = 0usize;
            if doc.length(&values_obj) > MAX_ENTRIES {
                r.problems
                    .push(format!("config.values: more than {MAX_ENTRIES} entries"));
            } else {
                for key in doc.keys(&values_obj) {
                    let path = format!("config.values.{key}");
                    if let Some(v) = r.json(&values_obj, &key, &path) {
                        bytes += key.len() + v.to_string().len();
                        if bytes > remote::MAX_CONFIG_BYTES {
                            r.problems.push(format!(
                                "config.values: more than {} bytes",
                                remote::MAX_CONFIG_BYTES
                            ));
                            break;
                        }
                        if !v.is_null() {
                            values.insert(key, v);
                        }
                    }
                }
            }
        }
        config.insert("values".to_owned(), Json::Object(values));
    }
    if !r.problems.is_empty() {
        return Err(remote::clip(
            &r.problems.join("; "),
            remote::MAX_REASON_CHARS,
        ));
    }
    let config = serde_json::from_value(Json::Object(config))
        .map_err(|err| remote::clip(&format!("config: {err}"), remote::MAX_REASON_CHARS))?;
    let mut conflicts = r.conflicts;
    // Bookkeeping fields are not the user's conflicts.
    conflicts.retain(|c| {
        c.field != "created_at" && c.field != "id" && c.field != "type" && c.field != "schema"
    });
    Ok(DocState {
        id: id.unwrap_or_default(),
        spec: WorkflowSpec {
            name,
            description,
            version,
            tags,
            config,
        },
        created_at,
        deleted,
        conflicts,
    })
}
