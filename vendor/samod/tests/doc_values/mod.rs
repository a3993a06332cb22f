//! Reading and writing one root key of a document through its handle, for
//! the tests of our patches (`unload_idle.rs`, `actor_failure.rs`).

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{ROOT, ReadDoc};
use samod::DocHandle;

pub fn value(h: &DocHandle, key: &str) -> Option<String> {
    h.with_document(|d| {
        d.get(ROOT, key)
            .ok()
            .flatten()
            .and_then(|(v, _)| v.into_string().ok())
    })
}

pub fn set(h: &DocHandle, key: &str, v: &str) {
    h.with_document(|d| {
        let mut tx = d.transaction();
        tx.put(ROOT, key, v).unwrap();
        tx.commit();
    });
}

pub async fn until_value(h: &DocHandle, key: &str, want: &str) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while value(h, key).as_deref() != Some(want) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never saw {key} = {want:?}, saw {:?}", value(h, key)));
}
