//! `DocHandle::stored`: resolves only once the writes for every change the
//! document held when it was called have completed.
#![cfg(feature = "tokio")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use samod::storage::{InMemoryStorage, Storage, StorageKey};
use samod::{DocHandle, PeerId, Repo};
use tokio::sync::watch;

/// In-memory storage whose writes wait while the gate is shut: every
/// write, or (with a marker) those whose data holds the marker.
#[derive(Clone)]
struct Gated {
    inner: InMemoryStorage,
    open: watch::Sender<bool>,
    marker: Option<&'static [u8]>,
    waiting: Arc<Mutex<usize>>,
}

impl Gated {
    fn new(marker: Option<&'static [u8]>) -> Gated {
        Gated {
            inner: InMemoryStorage::new(),
            open: watch::channel(true).0,
            marker,
            waiting: Arc::default(),
        }
    }

    fn waiting(&self) -> usize {
        *self.waiting.lock().unwrap()
    }

    fn gate(&self, data: Option<&[u8]>) -> impl Future<Output = ()> + Send + 'static + use<> {
        let held = match (self.marker, data) {
            (None, _) => true,
            (Some(m), Some(d)) => d.windows(m.len()).any(|w| w == m),
            (Some(_), None) => false,
        };
        let mut open = self.open.subscribe();
        let waiting = self.waiting.clone();
        async move {
            if !held {
                return;
            }
            *waiting.lock().unwrap() += 1;
            let _ = open.wait_for(|o| *o).await;
            *waiting.lock().unwrap() -= 1;
        }
    }
}

impl Storage for Gated {
    fn load(&self, key: StorageKey) -> impl Future<Output = Option<Vec<u8>>> + Send {
        self.inner.load(key)
    }

    fn load_range(
        &self,
        prefix: StorageKey,
    ) -> impl Future<Output = HashMap<StorageKey, Vec<u8>>> + Send {
        self.inner.load_range(prefix)
    }

    fn put(&self, key: StorageKey, data: Vec<u8>) -> impl Future<Output = ()> + Send {
        let (gate, inner) = (self.gate(Some(&data)), self.inner.clone());
        async move {
            gate.await;
            inner.put(key, data).await
        }
    }

    fn delete(&self, key: StorageKey) -> impl Future<Output = ()> + Send {
        let (gate, inner) = (self.gate(None), self.inner.clone());
        async move {
            gate.await;
            inner.delete(key).await
        }
    }
}

fn set(h: &DocHandle, key: &str, v: &str) {
    h.with_document(|d| {
        let mut tx = d.transaction();
        tx.put(ROOT, key, v).unwrap();
        tx.commit();
    });
}

/// The document as a fresh repo would load it from `storage`.
async fn on_disk(storage: &InMemoryStorage, h: &DocHandle) -> Automerge {
    let repo = Repo::build_tokio()
        .with_peer_id(PeerId::from("reader"))
        .with_storage(storage.clone())
        .load()
        .await;
    let found = repo
        .find(h.document_id().clone())
        .await
        .unwrap()
        .expect("the document is on disk");
    let doc = found.with_document(|d| d.clone());
    repo.stop().await;
    doc
}

#[tokio::test]
async fn stored_waits_for_the_writes_of_every_change_made_before_it() {
    let storage = Gated::new(None);
    let repo = Repo::build_tokio()
        .with_peer_id(PeerId::from("writer"))
        .with_storage(storage.clone())
        .load()
        .await;
    let h = repo.create(Automerge::new()).await.unwrap();
    h.stored().await.expect("nothing to wait for");

    storage.open.send_replace(false);
    set(&h, "a", "1");
    set(&h, "b", "2");
    let heads = h.with_document(|d| d.get_heads());
    let stored = tokio::spawn(h.stored());
    tokio::time::timeout(Duration::from_secs(5), async {
        while storage.waiting() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("both writes reach the storage");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stored.is_finished(), "resolved while its writes waited");

    storage.open.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), stored)
        .await
        .expect("resolves once the writes complete")
        .unwrap()
        .unwrap();
    let disk = on_disk(&storage.inner, &h).await;
    assert_eq!(disk.get_heads(), heads, "what it waited for is on disk");
    repo.stop().await;
}

#[tokio::test]
async fn a_change_made_after_the_call_is_not_waited_for() {
    let storage = Gated::new(Some(b"HOLD-THIS-WRITE"));
    let repo = Repo::build_tokio()
        .with_peer_id(PeerId::from("writer"))
        .with_storage(storage.clone())
        .load()
        .await;
    let h = repo.create(Automerge::new()).await.unwrap();
    h.stored().await.unwrap();
    storage.open.send_replace(false);

    set(&h, "a", "1");
    let first = h.stored();
    set(&h, "b", "HOLD-THIS-WRITE");
    let second = tokio::spawn(h.stored());
    tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .expect("not held by a write issued after the call")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(storage.waiting(), 1, "the second change's write is held");
    assert!(!second.is_finished(), "resolved while its write was held");

    storage.open.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("resolves once the held write completes")
        .unwrap()
        .unwrap();
    repo.stop().await;
}
