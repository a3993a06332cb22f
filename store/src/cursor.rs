//! Opaque keyset cursors: the sort key and id of the last row of a page,
//! tagged with the sort they belong to.

use serde_json::Value;

use crate::{Error, Result};

pub(crate) fn encode(sort: &str, key: Value, id: &str) -> String {
    let raw = serde_json::to_vec(&serde_json::json!([sort, key, id])).expect("json");
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Returns the sort key and id, or an error naming `cursor` if the cursor is
/// damaged or belongs to another sort order.
pub(crate) fn decode(cursor: &str, sort: &str) -> Result<(Value, String)> {
    let bad = || {
        Error::invalid(
            "cursor",
            "format",
            "not a cursor from a previous page of this listing",
        )
    };
    if !cursor.len().is_multiple_of(2) || cursor.len() > 4096 {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    match v.as_array().map(Vec::as_slice) {
        Some([Value::String(s), key, Value::String(id)]) if s == sort => {
            Ok((key.clone(), id.clone()))
        }
        _ => Err(bad()),
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
        let Err(Error::Invalid(f)) = decode("00", "name") else {
            panic!()
        };
        assert_eq!(f[0].field, "cursor");
    }
}
