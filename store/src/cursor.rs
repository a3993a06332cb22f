//! Opaque keyset cursors: the sort key and id of the last row of a page,
//! tagged with the sort they belong to.

use serde_json::Value;

use flowkeep_core::FieldError;

use crate::{Error, Result};

pub fn encode(sort: &str, key: Value, id: &str) -> String {
    let raw = serde_json::to_vec(&serde_json::json!([sort, key, id])).expect("json");
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `cursor` could be a cursor of some listing (which one is only
/// known to the listing): for front ends that reject junk early.
pub fn check(cursor: &str) -> Result<()> {
    let v = bytes(cursor).and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    match v.as_ref().and_then(Value::as_array).map(Vec::as_slice) {
        Some([Value::String(_), _, Value::String(_)]) => Ok(()),
        _ => Err(invalid()),
    }
}

fn invalid() -> Error {
    Error::InvalidInput(vec![FieldError::new(
        "cursor",
        "format",
        "invalid cursor: not a cursor from a previous page of this listing",
    )])
}

/// The bytes the hex text stands for; `None` for anything else.
fn bytes(cursor: &str) -> Option<Vec<u8>> {
    let hex = cursor.as_bytes();
    if !hex.len().is_multiple_of(2) || hex.len() > 4096 {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    hex.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// Returns the sort key and id, or an "invalid cursor" error naming
/// `cursor` if the cursor is damaged or belongs to another sort order. Any
/// text is safe here: a cursor is user input (a URL, an argument).
pub fn decode(cursor: &str, sort: &str) -> Result<(Value, String)> {
    let bytes = bytes(cursor).ok_or_else(invalid)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    match v.as_array().map(Vec::as_slice) {
        Some([Value::String(s), key, Value::String(id)]) if s == sort => {
            Ok((key.clone(), id.clone()))
        }
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_and_rejects() {
        let c = encode("name", json!("Backup"), "id-1");
        assert_eq!(
            decode(&c, "name").unwrap(),
            (json!("Backup"), "id-1".to_owned())
        );
        assert!(decode(&c, "created").is_err(), "a cursor of another sort");
        assert!(decode("zz", "name").is_err());
        assert!(decode("abc", "name").is_err());
        let Err(Error::InvalidInput(f)) = decode("00", "name") else {
            panic!()
        };
        assert_eq!(f[0].field, "cursor");
        assert!(f[0].message.contains("invalid cursor"));
    }

    #[test]
    fn any_text_is_an_error_never_a_panic() {
        for junk in [
            "ünïcodé",
            "aüb",
            "üü",
            "\u{fffd}\u{fffd}",
            "a\u{10ffff}",
            "+1",
            "-1",
            " 1",
            "0x",
            "",
            "5b5d",
        ] {
            let Err(Error::InvalidInput(f)) = decode(junk, "name") else {
                panic!("{junk:?} accepted")
            };
            assert_eq!(f[0].field, "cursor");
            assert!(check(junk).is_err(), "{junk:?}");
        }
        assert!(check(&encode("created", json!(5), "x")).is_ok());
        let c = encode("name", json!("ü"), "id-ü");
        assert_eq!(decode(&c.to_uppercase(), "name").unwrap().1, "id-ü");
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(s in "\\PC*") {
            let _ = decode(&s, "name");
            let _ = check(&s);
        }
    }
}
