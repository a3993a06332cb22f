//! A document whose actor panics (a peer's change that trips automerge, a
//! bug) stops alone: the repo's other documents keep syncing, the next
//! message about it loads it again from storage, and the repo still stops.
//! The panic is provoked through an observer, which runs inside the actor.
#![cfg(feature = "tokio")]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use samod::{
    ConnectionId, ConnectionState, DocHandle, DocumentId, PeerId, Repo, RepoEvent, RepoObserver,
    ShareConfig,
};

mod doc_values;
mod tincans;

use doc_values::{set, until_value, value};

/// Panics once, inside the actor, when the relay receives a sync message
/// about the armed document (from the armed connection, if one is named).
#[derive(Clone, Default)]
struct Trap {
    armed: Arc<Mutex<Option<(DocumentId, Option<ConnectionId>)>>>,
    sprung: Arc<AtomicBool>,
    /// `DocumentFailed` events seen.
    failed: Arc<AtomicUsize>,
}

impl RepoObserver for Trap {
    fn observe(&self, event: &RepoEvent) {
        if let RepoEvent::DocumentFailed { .. } = event {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        if let RepoEvent::SyncMessageReceived {
            document_id,
            connection_id,
            ..
        } = event
        {
            let mut armed = self.armed.lock().unwrap();
            if armed.as_ref().is_some_and(|(doc, conn)| {
                doc == document_id && conn.is_none_or(|c| c == *connection_id)
            }) {
                *armed = None;
                drop(armed);
                self.sprung.store(true, Ordering::SeqCst);
                panic!("trap: a change this actor cannot take");
            }
        }
    }
}

async fn found(repo: &Repo, id: &DocumentId) -> DocHandle {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Some(h)) = repo.find(id.clone()).await {
                break h;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("found through the relay")
}

async fn created(repo: &Repo) -> DocHandle {
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    tx.put(ROOT, "n", "0").unwrap();
    tx.commit();
    repo.create(doc).await.unwrap()
}

#[tokio::test]
async fn a_document_whose_actor_panics_stops_alone_and_loads_again_on_its_next_change() {
    // As the sync server runs it: every actor on the async runtime, in one
    // task for all of them.
    stops_alone(false).await;
}

/// On rayon, a panic left to unwind out of a job aborts the process.
#[cfg(feature = "threadpool")]
#[tokio::test]
async fn on_a_threadpool_a_document_whose_actor_panics_stops_alone() {
    stops_alone(true).await;
}

async fn stops_alone(threadpool: bool) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let trap = Trap::default();
    // Documents on demand, never announcing, as the sync server's repos.
    let builder = Repo::build_tokio()
        .with_peer_id(PeerId::from("relay"))
        .with_share_policy(ShareConfig::read_write().with_announce(false))
        .with_documents_on_demand(true)
        .with_observer(trap.clone());
    #[cfg(feature = "threadpool")]
    let builder = if threadpool {
        builder.with_concurrency(samod::ConcurrencyConfig::Threadpool(
            rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap(),
        ))
    } else {
        builder
    };
    #[cfg(not(feature = "threadpool"))]
    assert!(!threadpool, "needs the threadpool feature");
    let relay = builder.load().await;
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

    let (ax, ay) = (created(&alice).await, created(&alice).await);
    let bx = found(&bob, ax.document_id()).await;
    let by = found(&bob, ay.document_id()).await;
    until_value(&bx, "n", "0").await;
    until_value(&by, "n", "0").await;

    // Only alice's message (bob's last ones about x may still be on their
    // way): what she sent is then what the failed actor took with it.
    let from_alice = relay
        .connected_peers()
        .0
        .into_iter()
        .find(|c| {
            matches!(&c.state, ConnectionState::Connected { their_peer_id }
                if *their_peer_id == PeerId::from("alice"))
        })
        .expect("alice is connected")
        .id;
    *trap.armed.lock().unwrap() = Some((ax.document_id().clone(), Some(from_alice)));
    set(&ax, "n", "1");
    tokio::time::timeout(Duration::from_secs(10), async {
        while trap.failed.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the relay's actor for x received alice's change, panicked, and was reported failed");

    // The other document, served in the same task, still syncs both ways.
    set(&ay, "n", "1");
    until_value(&by, "n", "1").await;
    set(&by, "n", "2");
    until_value(&ay, "n", "2").await;

    // The change the failed actor took with it comes again with the next
    // one: a new actor loads x and asks alice for what it lacks, and bob,
    // who used x before, is synced without asking again.
    set(&ax, "n", "2");
    until_value(&bx, "n", "2").await;
    set(&bx, "m", "from bob");
    until_value(&ax, "m", "from bob").await;
    assert_eq!(trap.failed.load(Ordering::SeqCst), 1, "one failure");

    tokio::time::timeout(Duration::from_secs(10), async {
        alice.stop().await;
        bob.stop().await;
        relay.stop().await;
    })
    .await
    .expect("every repo stops");
}

/// A local `find` that waits on an actor that fails ends, as unavailable,
/// instead of waiting for ever.
#[tokio::test]
async fn a_find_waiting_on_an_actor_that_panics_ends() {
    let trap = Trap::default();
    let relay = Repo::build_tokio()
        .with_peer_id(PeerId::from("relay"))
        .with_observer(trap.clone())
        .load()
        .await;
    // Alice does not announce her document: the relay's `find` asks her
    // for it, and her answer reaches its actor while the find waits.
    let alice = Repo::build_tokio()
        .with_peer_id(PeerId::from("alice"))
        .with_share_policy(ShareConfig::read_write().with_announce(false))
        .load()
        .await;
    let _a = tincans::connect_repos(&alice, &relay).await;
    let ax = created(&alice).await;
    *trap.armed.lock().unwrap() = Some((ax.document_id().clone(), None));

    let found = tokio::time::timeout(
        Duration::from_secs(10),
        relay.find(ax.document_id().clone()),
    )
    .await
    .expect("the find ends")
    .expect("the repo runs");
    assert!(trap.sprung.load(Ordering::SeqCst), "the actor panicked");
    assert!(found.is_none(), "reported as not found here");

    // The repo still works: the next find loads it again.
    let h = tokio::time::timeout(
        Duration::from_secs(10),
        relay.find(ax.document_id().clone()),
    )
    .await
    .expect("the find ends")
    .expect("the repo runs")
    .expect("found on alice");
    until_value(&h, "n", "0").await;
    tokio::time::timeout(Duration::from_secs(10), async {
        alice.stop().await;
        relay.stop().await;
    })
    .await
    .expect("every repo stops");
}

/// A caller's closure that panics while it changes a document (through the
/// actor, `with_document_async`) fails that document's actor, not the
/// process: the guard of the change it left open used to panic again while
/// the first panic unwound, which aborts.
#[tokio::test]
async fn a_closure_that_panics_inside_a_change_fails_its_document_alone() {
    let trap = Trap::default();
    let repo = Repo::build_tokio()
        .with_peer_id(PeerId::from("alice"))
        .with_observer(trap.clone())
        .load()
        .await;
    let (x, y) = (created(&repo).await, created(&repo).await);
    let outcome = x
        .with_document_async(|d| {
            let mut tx = d.transaction();
            tx.put(ROOT, "n", "half").unwrap();
            panic!("a caller's bug, mid-change");
        })
        .await;
    assert!(outcome.is_err(), "the change is not reported done");
    assert_eq!(trap.failed.load(Ordering::SeqCst), 1);

    let edited = y
        .with_document_async(|d| {
            let mut tx = d.transaction();
            tx.put(ROOT, "n", "1").unwrap();
            tx.commit();
        })
        .await;
    assert!(edited.is_ok(), "the other document still takes changes");
    assert_eq!(value(&y, "n").as_deref(), Some("1"));
    tokio::time::timeout(Duration::from_secs(10), repo.stop())
        .await
        .expect("the repo stops");
}

/// A handle to a document whose actor failed tells its caller so instead
/// of panicking (the lock the panic poisoned): an application that keeps
/// handles (a device's sync) reports the document and goes on. Its
/// streams and waits end, and it is never reported stored.
#[tokio::test]
async fn a_handle_to_a_failed_document_reports_it_instead_of_panicking() {
    let trap = Trap::default();
    let repo = Repo::build_tokio()
        .with_peer_id(PeerId::from("alice"))
        .with_observer(trap.clone())
        .load()
        .await;
    let (x, y) = (created(&repo).await, created(&repo).await);
    assert_eq!(
        x.try_with_document(|d| d.get_heads().len()).ok(),
        Some(1),
        "a live document is read"
    );
    assert!(x.stored().await.is_ok());
    let listening = x.changes();
    // Waits that nothing answers (no such connection) until the actor fails.
    let nobody = ConnectionId::from(u32::MAX);
    let ours_there = tokio::spawn(x.they_have_our_changes(nobody));
    let theirs_here = tokio::spawn(x.we_have_their_changes(nobody));
    tokio::task::yield_now().await;
    assert!(!ours_there.is_finished() && !theirs_here.is_finished());

    let _ = x
        .with_document_async(|d| {
            let mut tx = d.transaction();
            tx.put(ROOT, "n", "half").unwrap();
            panic!("a caller's bug, mid-change");
        })
        .await;
    assert_eq!(trap.failed.load(Ordering::SeqCst), 1);

    assert!(x.try_with_document(|d| d.get_heads()).is_err());
    assert!(
        x.stored().await.is_err(),
        "what a failed actor held is never reported stored"
    );
    assert!(ends(listening).await);
    assert!(ends(x.changes()).await, "a new one too");
    assert!(ends(x.ephemera()).await);
    let (peers, peer_changes) = x.peers();
    assert!(peers.is_empty());
    assert!(ends(peer_changes).await);
    x.broadcast(vec![1]);
    // The waits end, the ones that waited and new ones alike (a caller asks
    // `try_with_document` to know why).
    for wait in [ours_there, theirs_here] {
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("a wait on a failed document ends")
            .expect("without a panic");
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        x.they_have_our_changes(nobody).await;
        x.we_have_their_changes(nobody).await;
    })
    .await
    .expect("new waits end at once");

    assert_eq!(
        y.try_with_document(|d| {
            let mut tx = d.transaction();
            tx.put(ROOT, "n", "1").unwrap();
            tx.commit();
        })
        .ok(),
        Some(()),
        "the other document still takes changes"
    );
    assert_eq!(value(&y, "n").as_deref(), Some("1"));
    tokio::time::timeout(Duration::from_secs(10), repo.stop())
        .await
        .expect("the repo stops");
}

/// Whether `s` ends (rather than yields, or waits for ever).
async fn ends(s: impl futures::Stream) -> bool {
    use futures::StreamExt;
    tokio::time::timeout(Duration::from_secs(10), Box::pin(s).next())
        .await
        .expect("the stream ends or yields")
        .is_none()
}
