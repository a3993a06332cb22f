//! A relay repo (documents on demand, never announcing) that unloads idle
//! documents: with no idle time at all it unloads a document whenever it
//! has nothing in flight, so edits keep arriving while the document's old
//! actor stops and its new one loads. Every edit still reaches the other
//! peer and the relay's storage.
#![cfg(feature = "tokio")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use samod::storage::InMemoryStorage;
use samod::{DocHandle, PeerId, Repo, RepoEvent, RepoObserver, ShareConfig};

mod tincans;

#[derive(Clone, Default)]
struct Closed(Arc<AtomicUsize>);

impl RepoObserver for Closed {
    fn observe(&self, event: &RepoEvent) {
        if let RepoEvent::DocumentClosed { .. } = event {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn value(h: &DocHandle) -> Option<String> {
    h.with_document(|d| {
        d.get(ROOT, "n")
            .ok()
            .flatten()
            .and_then(|(v, _)| v.into_string().ok())
    })
}

fn set(h: &DocHandle, v: &str) {
    h.with_document(|d| {
        let mut tx = d.transaction();
        tx.put(ROOT, "n", v).unwrap();
        tx.commit();
    });
}

async fn until_value(h: &DocHandle, want: &str) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while value(h).as_deref() != Some(want) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never saw {want:?}, last {:?}", value(h)));
}

#[tokio::test]
async fn edits_cross_a_relay_that_keeps_unloading_the_document() {
    let closed = Closed::default();
    let relay_storage = InMemoryStorage::new();
    let relay = Repo::build_tokio()
        .with_peer_id(PeerId::from("relay"))
        .with_storage(relay_storage.clone())
        .with_share_policy(ShareConfig::read_write().with_announce(false))
        .with_documents_on_demand(true)
        .with_unload_idle_documents(Duration::ZERO)
        .with_observer(closed.clone())
        .load()
        .await;
    let alice = Repo::build_tokio()
        .with_peer_id(PeerId::from("alice"))
        .load()
        .await;
    let bob = Repo::build_tokio()
        .with_peer_id(PeerId::from("bob"))
        .load()
        .await;
    let _a = tincans::connect_repos(&alice, &relay).await;
    let _b = tincans::connect_repos(&bob, &relay).await;

    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    tx.put(ROOT, "n", "0").unwrap();
    tx.commit();
    let a = alice.create(doc).await.unwrap();
    let id = a.document_id().clone();
    let b = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Some(h)) = bob.find(id.clone()).await {
                break h;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("bob finds the document through the relay");
    until_value(&b, "0").await;

    // Each side edits in turn, sometimes at once, at intervals around the
    // relay's 100 ms scan for idle documents.
    for i in 1..=40u64 {
        let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        set(from, &i.to_string());
        if i % 5 == 0 {
            until_value(to, &i.to_string()).await;
        } else {
            tokio::time::sleep(Duration::from_millis(37 * (i % 7))).await;
        }
    }
    until_value(&a, "40").await;
    until_value(&b, "40").await;
    let unloads = closed.0.load(Ordering::SeqCst);
    assert!(
        unloads >= 5,
        "the relay unloaded the document {unloads} times"
    );

    // The relay's storage holds the last edit: a new peer reads it from there.
    alice.stop().await;
    bob.stop().await;
    relay.stop().await;
    let relay = Repo::build_tokio()
        .with_peer_id(PeerId::from("relay"))
        .with_storage(relay_storage)
        .load()
        .await;
    let h = relay.find(id).await.unwrap().expect("stored on the relay");
    assert_eq!(value(&h).as_deref(), Some("40"));
    relay.stop().await;
}
