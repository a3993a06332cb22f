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
