//! A relay repo (documents on demand, never announcing) that unloads idle
//! documents: with no idle time at all it asks the document's actor to
//! unload on every tick, so edits keep arriving while an actor is asked,
//! refuses, stops or loads again. Every edit still reaches the other peer
//! and the relay's storage.
#![cfg(feature = "tokio")]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use samod::storage::{InMemoryStorage, Storage, StorageKey};
use samod::{PeerId, Repo, RepoEvent, RepoObserver, ShareConfig};

mod doc_values;
mod tincans;

use doc_values::{set, until_value, value};

#[derive(Clone, Default)]
struct Closed(Arc<AtomicUsize>);

impl RepoObserver for Closed {
    fn observe(&self, event: &RepoEvent) {
        if let RepoEvent::DocumentClosed { .. } = event {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The relay's share policy: instant, or one that answers after 40 ms, so
/// that a newly loaded actor is often asked to unload while its check runs
/// (and refuses).
async fn relay(storage: InMemoryStorage, closed: Closed, slow_policy: bool) -> Repo {
    let policy = ShareConfig::read_write().with_announce(false);
    let builder = Repo::build_tokio()
        .with_peer_id(PeerId::from("relay"))
        .with_storage(storage)
        .with_documents_on_demand(true)
        .with_unload_idle_documents(Duration::ZERO)
        .with_observer(closed);
    if slow_policy {
        builder
            .with_share_policy(move |_, _| {
                futures::stream::once(async move {
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    policy
                })
            })
            .load()
            .await
    } else {
        builder.with_share_policy(policy).load().await
    }
}

#[tokio::test]
async fn edits_cross_a_relay_that_keeps_unloading_the_document() {
    edits_cross_a_relay(false).await;
}

#[tokio::test]
async fn edits_cross_a_relay_that_keeps_unloading_the_document_with_a_slow_policy() {
    edits_cross_a_relay(true).await;
}

async fn edits_cross_a_relay(slow_policy: bool) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let closed = Closed::default();
    let relay_storage = InMemoryStorage::new();
    let relay = relay(relay_storage.clone(), closed.clone(), slow_policy).await;
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
    until_value(&b, "n", "0").await;

    // Each side edits in turn, sometimes at once, at intervals around the
    // relay's 100 ms scan for idle documents; each edit its own key, so that
    // none hides another.
    let edit = |i: u64| format!("e{i}");
    for i in 1..=40u64 {
        let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        set(from, &edit(i), "x");
        if i % 5 == 0 {
            until_value(to, &edit(i), "x").await;
        } else {
            tokio::time::sleep(Duration::from_millis(37 * (i % 7))).await;
        }
    }
    for i in 1..=40u64 {
        until_value(&a, &edit(i), "x").await;
        until_value(&b, &edit(i), "x").await;
    }
    let unloads = closed.0.load(Ordering::SeqCst);
    assert!(
        unloads >= 5,
        "the relay unloaded the document {unloads} times"
    );

    // A local find while the relay keeps unloading gets a live handle (one
    // that is not stopping): an edit through it reaches both peers.
    let mut found = None;
    for _ in 0..20 {
        let h = relay.find(id.clone()).await.unwrap().expect("on the relay");
        assert_eq!(value(&h, "e40").as_deref(), Some("x"));
        found = Some(h);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    set(&found.unwrap(), "relay", "yes");
    until_value(&a, "relay", "yes").await;
    until_value(&b, "relay", "yes").await;

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
    assert_eq!(value(&h, "relay").as_deref(), Some("yes"));
    for i in 1..=40u64 {
        assert_eq!(value(&h, &edit(i)).as_deref(), Some("x"), "{}", edit(i));
    }
    relay.stop().await;
}

/// Storage that remembers the keys put into it.
#[derive(Clone, Default)]
struct Recording {
    inner: InMemoryStorage,
    puts: Arc<Mutex<Vec<StorageKey>>>,
}

impl Storage for Recording {
    async fn load(&self, key: StorageKey) -> Option<Vec<u8>> {
        self.inner.load(key).await
    }

    async fn load_range(&self, prefix: StorageKey) -> HashMap<StorageKey, Vec<u8>> {
        self.inner.load_range(prefix).await
    }

    async fn put(&self, key: StorageKey, data: Vec<u8>) {
        self.puts.lock().unwrap().push(key.clone());
        self.inner.put(key, data).await
    }

    async fn delete(&self, key: StorageKey) {
        self.inner.delete(key).await
    }
}

#[tokio::test]
async fn a_document_loaded_again_saves_only_what_is_new() {
    let closed = Closed::default();
    let storage = Recording::default();
    let relay = Repo::build_tokio()
        .with_peer_id(PeerId::from("relay"))
        .with_storage(storage.clone())
        .with_documents_on_demand(true)
        .with_unload_idle_documents(Duration::from_millis(100))
        .with_share_policy(ShareConfig::read_write().with_announce(false))
        .with_observer(closed.clone())
        .load()
        .await;
    let alice = Repo::build_tokio()
        .with_peer_id(PeerId::from("alice"))
        .load()
        .await;
    let _a = tincans::connect_repos(&alice, &relay).await;

    // Enough changes that saving them all at once writes a snapshot.
    let mut doc = Automerge::new();
    for i in 0..20 {
        let mut tx = doc.transaction();
        tx.put(ROOT, format!("k{i}"), "x").unwrap();
        tx.commit();
    }
    let a = alice.create(doc).await.unwrap();
    let id = a.document_id().clone();
    let incrementals = StorageKey::incremental_prefix(&id);
    tokio::time::timeout(Duration::from_secs(10), async {
        while storage.puts.lock().unwrap().is_empty() || closed.0.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the relay saves the document and unloads it");

    // One more change loads it on the relay again: that change is saved on
    // its own, and what was loaded is not written again.
    let before = storage.puts.lock().unwrap().len();
    set(&a, "after", "reload");
    tokio::time::timeout(Duration::from_secs(10), async {
        while storage.puts.lock().unwrap().len() == before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the relay saves the new change");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after: Vec<StorageKey> = storage.puts.lock().unwrap()[before..].to_vec();
    assert_eq!(after.len(), 1, "puts after the reload: {after:?}");
    assert!(
        incrementals.is_prefix_of(&after[0]),
        "puts after the reload: {after:?}"
    );

    alice.stop().await;
    relay.stop().await;
    let relay = Repo::build_tokio()
        .with_peer_id(PeerId::from("relay"))
        .with_storage(storage.inner)
        .load()
        .await;
    let h = relay.find(id).await.unwrap().expect("stored on the relay");
    assert_eq!(value(&h, "after").as_deref(), Some("reload"));
    assert_eq!(value(&h, "k19").as_deref(), Some("x"));
    relay.stop().await;
}

/// A peer asks the relay for documents nobody has; each is let go (the
/// relay unloads what it found nowhere), and then the peer that made them
/// offline connects. The one that asked gets each document with what it
/// holds, never as an empty document: an empty one would pass for found.
#[tokio::test]
async fn a_document_asked_for_before_it_existed_arrives_whole() {
    for slow_policy in [false, true, true, true] {
        let relay = relay(InMemoryStorage::new(), Closed::default(), slow_policy).await;
        let alice = Repo::build_tokio()
            .with_peer_id(PeerId::from("alice"))
            .load()
            .await;
        let bob = Repo::build_tokio()
            .with_peer_id(PeerId::from("bob"))
            .load()
            .await;
        let mut ids = Vec::new();
        for i in 0..20 {
            let mut doc = Automerge::new();
            let mut tx = doc.transaction();
            tx.put(ROOT, "n", format!("{i}")).unwrap();
            tx.commit();
            ids.push(bob.create(doc).await.unwrap().document_id().clone());
        }
        let _a = tincans::connect_repos(&alice, &relay).await;
        for id in &ids {
            assert!(
                alice.find(id.clone()).await.unwrap().is_none(),
                "nobody has it yet"
            );
        }
        let _b = tincans::connect_repos(&bob, &relay).await;
        for (i, id) in ids.iter().enumerate() {
            let h = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    if let Ok(Some(h)) = alice.find(id.clone()).await {
                        break h;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .expect("alice gets it once bob brings it");
            assert_eq!(
                value(&h, "n"),
                Some(i.to_string()),
                "document {i} found (slow policy {slow_policy})"
            );
        }
        alice.stop().await;
        bob.stop().await;
        relay.stop().await;
    }
}
