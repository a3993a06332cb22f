//! Secrets in config documents: what a sealed value looks like, and masking.
//!
//! A `secret` field's value is stored, logged, synced and exported only
//! sealed: `fkenc:v1:<key id>:<base64 of nonce and ciphertext>`
//! (XChaCha20-Poly1305 under the workspace key, sealed and opened in
//! `flowkeep-app`; no crypto or randomness here). What people and programs
//! read shows `MASK` instead. The key id (8 hex digits of the key's hash)
//! says which key sealed it, so a device without that key can say so.

use serde_json::Value;

use crate::config::{ConfigDocument, ConfigType};
use crate::workflow::FieldChange;

/// The prefix of a sealed value.
pub const PREFIX: &str = "fkenc:v1:";
/// What a secret shows as wherever it is read (and, written back, means
/// "keep the value it has").
pub const MASK: &str = "••••";

/// Whether `s` is a sealed value (not clear text).
pub fn is_sealed(s: &str) -> bool {
    parts(s).is_some()
}

/// `(key id, payload)` of a sealed value.
pub fn parts(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix(PREFIX)?;
    let (kid, payload) = rest.split_once(':')?;
    let ok = kid.len() == 8
        && kid.bytes().all(|b| b.is_ascii_hexdigit())
        && !payload.is_empty()
        && payload
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
    ok.then_some((kid, payload))
}

/// The keys of a document's secret fields.
pub fn secret_keys(doc: &ConfigDocument) -> Vec<&str> {
    doc.fields
        .iter()
        .filter(|f| f.kind == ConfigType::Secret)
        .map(|f| f.key.as_str())
        .collect()
}

/// The secret fields' sealed values, as `(key, sealed value)`.
pub fn sealed_values(doc: &ConfigDocument) -> Vec<(&str, &str)> {
    doc.fields
        .iter()
        .filter(|f| f.kind == ConfigType::Secret)
        .filter_map(|f| match doc.values.get(&f.key) {
            Some(Value::String(v)) if is_sealed(v) => Some((f.key.as_str(), v.as_str())),
            _ => None,
        })
        .collect()
}

/// The document as people see it: every secret field's value (sealed or
/// not) replaced by `MASK`.
pub fn mask_document(doc: &mut ConfigDocument) {
    let keys: Vec<String> = secret_keys(doc).into_iter().map(str::to_owned).collect();
    for key in keys {
        if let Some(v) = doc.values.get_mut(&key) {
            if !v.is_null() {
                *v = Value::String(MASK.to_owned());
            }
        }
    }
}

/// Field changes as people see them: a secret value's old and new shown as
/// `MASK` (that it changed, and by whom, stays visible). `secret` tells
/// which `config.values.<key>` are secret; sealed values anywhere are
/// masked too (a whole `config.fields` change never holds values).
pub fn mask_changes(changes: &mut [FieldChange], secret: &dyn Fn(&str) -> bool) {
    for c in changes {
        let is_secret = c.field.strip_prefix("config.values.").is_some_and(secret);
        for v in [&mut c.old, &mut c.new] {
            if is_secret && !v.is_null() {
                *v = Value::String(MASK.to_owned());
            } else {
                mask_sealed(v);
            }
        }
    }
}

/// What people and programs read (a command's answer as JSON), masked:
/// sealed strings anywhere; every value of a secret field in a config
/// document (an object with `fields` and `values`), sealed or not (clear
/// text can sit there: a field just made a secret, or another device's
/// merge); and both sides of a value's change when either side is sealed (a
/// text value that became a secret shows neither its old clear text nor
/// its new value).
pub fn mask_output(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let (Some(Value::Array(fields)), Some(Value::Object(_))) =
                (m.get("fields"), m.get("values"))
            {
                let secret: Vec<String> = fields
                    .iter()
                    .filter(|f| f.get("type").and_then(Value::as_str) == Some("secret"))
                    .filter_map(|f| f.get("key")?.as_str().map(str::to_owned))
                    .collect();
                if let Some(Value::Object(values)) = m.get_mut("values") {
                    for key in secret {
                        values.get_mut(&key).into_iter().for_each(mask_value);
                    }
                }
            }
            let a_value = m
                .get("field")
                .and_then(Value::as_str)
                .is_some_and(|f| f.starts_with("config.values."));
            let sealed_side = ["old", "new"]
                .iter()
                .any(|side| m.get(*side).and_then(Value::as_str).is_some_and(is_sealed));
            if a_value && sealed_side {
                for side in ["old", "new"] {
                    m.get_mut(side).into_iter().for_each(mask_value);
                }
            }
            m.values_mut().for_each(mask_output);
        }
        Value::Array(items) => items.iter_mut().for_each(mask_output),
        Value::String(s) if is_sealed(s) => *s = MASK.to_owned(),
        _ => {}
    }
}

fn mask_value(v: &mut Value) {
    if !v.is_null() {
        *v = Value::String(MASK.to_owned());
    }
}

/// Replaces every sealed string inside `v` by `MASK`.
pub fn mask_sealed(v: &mut Value) {
    match v {
        Value::String(s) if is_sealed(s) => *s = MASK.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(mask_sealed),
        Value::Object(m) => m.values_mut().for_each(mask_sealed),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sealed_values_are_told_from_clear_text() {
        assert!(is_sealed("fkenc:v1:0a1b2c3d:AAAA+/=="));
        for clear in [
            "fkenc:v1:",
            "fkenc:v1:0a1b2c3d:",
            "fkenc:v1:xyz:AAAA",
            "fkenc:v1:0a1b2c3d:has space",
            "hunter2",
            "",
        ] {
            assert!(!is_sealed(clear), "{clear}");
        }
    }

    #[test]
    fn output_shows_no_secret_in_clear_whatever_its_shape() {
        let sealed = "fkenc:v1:0a1b2c3d:AAAA";
        let mut out = json!({
            "spec": {"config": {
                "fields": [{"key": "k", "type": "secret"}, {"key": "r", "type": "text"}],
                // Clear text in a secret field (a merge put it there).
                "values": {"k": "sk-live-clear", "r": "eu"}
            }},
            "changes": [
                // A text field made a secret: its old clear text too.
                {"field": "config.values.k", "old": "sk-live-old", "new": sealed},
                {"field": "config.values.r", "old": "us", "new": "eu"},
                {"field": "config.values.n", "old": null, "new": sealed},
                {"field": "name", "old": "a", "new": "b"}
            ],
            "elsewhere": [sealed, {"deep": sealed}]
        });
        mask_output(&mut out);
        assert_eq!(
            out["spec"]["config"]["values"],
            json!({"k": MASK, "r": "eu"})
        );
        assert_eq!(
            out["changes"][0],
            json!({"field": "config.values.k", "old": MASK, "new": MASK})
        );
        assert_eq!(
            out["changes"][1],
            json!({"field": "config.values.r", "old": "us", "new": "eu"})
        );
        assert_eq!(
            out["changes"][2],
            json!({"field": "config.values.n", "old": null, "new": MASK})
        );
        assert_eq!(out["changes"][3]["new"], "b");
        assert_eq!(out["elsewhere"], json!([MASK, {"deep": MASK}]));
        assert!(!out.to_string().contains("sk-live"));
    }

    #[test]
    fn masking_hides_secret_values_and_keeps_the_rest() {
        let mut doc = ConfigDocument::from_json(
            &json!({"fields": [{"key": "k", "type": "secret"}, {"key": "r", "type": "text"}],
                    "values": {"k": "fkenc:v1:0a1b2c3d:AAAA", "r": "eu"}}),
            &Default::default(),
        )
        .unwrap();
        mask_document(&mut doc);
        assert_eq!(doc.values["k"], json!(MASK));
        assert_eq!(doc.values["r"], json!("eu"));
        let mut changes = vec![
            FieldChange {
                field: "config.values.k".into(),
                old: json!("fkenc:v1:0a1b2c3d:AAAA"),
                new: json!("fkenc:v1:0a1b2c3d:BBBB"),
            },
            FieldChange {
                field: "config.values.r".into(),
                old: json!("eu"),
                new: json!("us"),
            },
        ];
        mask_changes(&mut changes, &|k| k == "k");
        assert_eq!(
            (&changes[0].old, &changes[0].new),
            (&json!(MASK), &json!(MASK))
        );
        assert_eq!(changes[1].new, json!("us"));
    }
}
