//! Per-workspace storage limits: how many documents a workspace may hold
//! and how many bytes it may store. What a workspace stores is counted as
//! samod writes and deletes it (`Counted`, a storage wrapper), starting from
//! what storage holds when the workspace loads.
//!
//! A full workspace keeps syncing what it has: devices still receive every
//! change, and a workspace at its document limit still takes changes to its
//! documents. What it refuses is growth: a new document past
//! `--max-docs-per-workspace`, any change once `--max-bytes-per-workspace`
//! is reached (the share policy then makes devices read-only peers, so the
//! server ignores what they send). A device is told why in one sentence:
//! when it connects (the `x-flowkeep-limit` header on the upgrade), and,
//! if it asked for notices (`x-flowkeep-limit-notices`), in a text message
//! as soon as the workspace reaches a limit while it is connected (`Notice`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use samod::storage::{Storage, StorageKey};
use samod::{DocumentId, PeerId, ShareConfig};
use tokio::sync::watch;

/// Response header that carries `Usage::refusal` to a connecting device.
pub const LIMIT_HEADER: &str = "x-flowkeep-limit";

/// Request header of a device that understands limit notices: text
/// messages `{"limit": sentence}` (or `{"limit": null}` once there is room
/// again) among samod's binary ones. Other clients (automerge-repo's) take
/// every message for a sync message, so they are sent none.
pub const NOTICES_HEADER: &str = "x-flowkeep-limit-notices";

/// The text message that tells a connected device where its workspace
/// stands now.
pub fn notice(room: &Room) -> String {
    serde_json::json!({ "limit": room.sentence() }).to_string()
}

#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub max_docs: u64,
    pub max_bytes: u64,
}

impl Default for Quota {
    /// 100,000 documents (workflows and run logs), 1 GiB.
    fn default() -> Self {
        Quota {
            max_docs: 100_000,
            max_bytes: 1 << 30,
        }
    }
}

/// Where a workspace stands against its quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Room {
    Free,
    /// No new document; changes to existing ones are taken.
    NoNewDocuments(String),
    /// No change at all.
    Full(String),
}

impl Room {
    /// What a device is told: why the workspace refuses something, if it does.
    pub fn sentence(&self) -> Option<&str> {
        match self {
            Room::Free => None,
            Room::NoNewDocuments(why) | Room::Full(why) => Some(why),
        }
    }
}

#[derive(Default)]
struct Counts {
    /// Bytes stored under each key (relative to the workspace).
    keys: HashMap<String, u64>,
    /// Keys stored per document.
    docs: HashMap<String, u32>,
    bytes: u64,
    /// New documents let in while there was room and not stored yet (a
    /// device is sending them), with when. They count against the document
    /// limit: the share policy decides on a document before any of it is
    /// stored, so without them a first sync that brings many new documents
    /// at once got every one of them past the limit.
    admitted: HashMap<String, Instant>,
}

/// How long a document let in but never stored (a device asked for one
/// nobody has, or left before sending it) counts against the limit.
const ADMITTED_FOR: Duration = Duration::from_secs(300);

impl Counts {
    /// Documents stored, or let in and on their way.
    fn documents(&self) -> usize {
        self.docs.len() + self.admitted.len()
    }

    fn knows(&self, doc: &str) -> bool {
        self.docs.contains_key(doc) || self.admitted.contains_key(doc)
    }

    fn forget_admitted_before(&mut self, now: Instant) {
        self.admitted
            .retain(|_, at| now.saturating_duration_since(*at) < ADMITTED_FOR);
    }
}

/// What one workspace stores, and whether it may store more.
pub struct Usage {
    workspace: String,
    quota: Quota,
    counts: Mutex<Counts>,
    room: watch::Sender<Room>,
}

/// The document a storage key belongs to (`<doc id>/…`); `None` for the
/// repo's own keys.
fn doc_of(key: &str) -> Option<&str> {
    key.split_once('/').map(|(doc, _)| doc)
}

/// A size as a person reads it in a sentence: bytes, KiB or MiB.
pub(crate) fn size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)),
    }
}

impl Usage {
    /// Usage of `workspace` (its name, for the sentences) from the sizes of
    /// the keys its storage holds now.
    pub fn new(
        workspace: &str,
        quota: Quota,
        sizes: impl IntoIterator<Item = (String, u64)>,
    ) -> Arc<Usage> {
        let mut counts = Counts::default();
        for (key, size) in sizes {
            if let Some(doc) = doc_of(&key) {
                *counts.docs.entry(doc.to_owned()).or_default() += 1;
            }
            counts.bytes += size;
            counts.keys.insert(key, size);
        }
        let usage = Usage {
            workspace: workspace.to_owned(),
            quota,
            counts: Mutex::new(Counts::default()),
            room: watch::channel(Room::Free).0,
        };
        let room = usage.room_for(&counts);
        *usage.counts.lock().unwrap_or_else(|p| p.into_inner()) = counts;
        usage.room.send_replace(room);
        Arc::new(usage)
    }

    fn room_for(&self, c: &Counts) -> Room {
        if c.bytes >= self.quota.max_bytes {
            Room::Full(format!(
                "workspace {} stores {}, this server's limit (--max-bytes-per-workspace {}): the server takes no \
                 more changes from any device; your changes stay on this device until the operator raises the limit",
                self.workspace,
                size(c.bytes),
                self.quota.max_bytes
            ))
        } else if c.documents() as u64 >= self.quota.max_docs {
            Room::NoNewDocuments(format!(
                "workspace {} holds {} documents, this server's limit (--max-docs-per-workspace {}): the server \
                 takes no new workflows or run logs; new ones stay on this device until the operator raises the limit",
                self.workspace,
                c.documents(),
                self.quota.max_docs
            ))
        } else {
            Room::Free
        }
    }

    fn update(&self, f: impl FnOnce(&mut Counts)) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut c);
        let room = self.room_for(&c);
        drop(c);
        self.room.send_if_modified(|r| {
            let changed = *r != room;
            *r = room;
            changed
        });
    }

    fn put(&self, key: &str, size: u64) {
        self.update(|c| {
            match c.keys.insert(key.to_owned(), size) {
                Some(old) => c.bytes = c.bytes.saturating_sub(old),
                None => {
                    if let Some(doc) = doc_of(key) {
                        *c.docs.entry(doc.to_owned()).or_default() += 1;
                        c.admitted.remove(doc);
                    }
                }
            }
            c.bytes += size;
        });
    }

    fn delete(&self, key: &str) {
        self.update(|c| {
            let Some(old) = c.keys.remove(key) else {
                return;
            };
            c.bytes = c.bytes.saturating_sub(old);
            if let Some(doc) = doc_of(key) {
                if let Some(n) = c.docs.get_mut(doc) {
                    *n -= 1;
                    if *n == 0 {
                        c.docs.remove(doc);
                    }
                }
            }
        });
    }

    /// Why the workspace refuses something now, for a connecting device.
    pub fn refusal(&self) -> Option<String> {
        self.room.borrow().sentence().map(str::to_owned)
    }

    /// Where the workspace stands, marked as seen, and each change from
    /// now on.
    pub fn watch(&self) -> watch::Receiver<Room> {
        let mut rx = self.room.subscribe();
        rx.borrow_and_update();
        rx
    }

    /// How many documents the workspace may hold.
    pub fn max_docs(&self) -> u64 {
        self.quota.max_docs
    }

    /// Whether the workspace holds `doc`, or has let it in on its way.
    pub fn knows(&self, doc: &str) -> bool {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .knows(doc)
    }

    /// Whether the workspace has stored `doc` (not merely let it in).
    pub fn holds(&self, doc: &str) -> bool {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .docs
            .contains_key(doc)
    }

    /// Takes out of `documents` those the workspace has stored (one look
    /// under one lock, for a set of up to a document limit's size).
    pub fn forget_stored(&self, documents: &mut std::collections::HashSet<String>) {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        documents.retain(|d| !c.docs.contains_key(d));
    }

    /// A device sends changes to `doc`: true when the workspace holds it or
    /// has room for it (it counts against the limit from now on, so a
    /// first sync that brings many new documents at once stops at the
    /// limit), false when it is a new document past the limit.
    pub fn admit(&self, doc: &str) -> bool {
        self.admit_at(doc, Instant::now())
    }

    fn admit_at(&self, doc: &str, now: Instant) -> bool {
        // Places of documents let in but never stored are given back first,
        // in their own update: if that makes room, the share policy hears
        // of it (a document refused before is decided again) even when the
        // one let in next fills the room again.
        self.update(|c| c.forget_admitted_before(now));
        let mut admitted = false;
        self.update(|c| {
            if c.knows(doc) {
                admitted = true;
                return;
            }
            if (c.documents() as u64) < self.quota.max_docs {
                c.admitted.insert(doc.to_owned(), now);
                admitted = true;
            }
        });
        admitted
    }

    /// What a peer may do with a document now.
    fn share(&self, doc: &str) -> ShareConfig {
        self.share_at(doc, Instant::now())
    }

    /// `share` at `now`. A document the workspace does not hold may be
    /// written while there is room; it counts once a device sends changes
    /// to it ([`Usage::admit`]), not when a device merely asks for it: a
    /// device asking for made-up documents filled the limit before.
    fn share_at(&self, doc: &str, now: Instant) -> ShareConfig {
        let full = matches!(*self.room.borrow(), Room::Full(_));
        let mut writes = false;
        if !full {
            self.update(|c| {
                c.forget_admitted_before(now);
                writes = c.knows(doc) || (c.documents() as u64) < self.quota.max_docs;
            });
        }
        // Devices ask for what they use; the server announces nothing.
        let config = if writes {
            ShareConfig::read_write()
        } else {
            ShareConfig::read_only()
        };
        config.with_announce(false)
    }

    /// The repo's share policy: read-write while there is room, read-only
    /// for what the quota refuses, updated when the room changes.
    pub fn share_policy(
        self: &Arc<Self>,
    ) -> impl Fn(DocumentId, PeerId) -> futures::stream::BoxStream<'static, ShareConfig>
           + Clone
           + Send
           + 'static {
        let usage = self.clone();
        move |doc_id: DocumentId, _peer: PeerId| {
            let usage = usage.clone();
            let doc = doc_id.to_string();
            let rx = usage.room.subscribe();
            Box::pin(futures::stream::unfold(
                (rx, usage, doc, true),
                |(mut rx, usage, doc, first)| async move {
                    if !first {
                        rx.changed().await.ok()?;
                    }
                    let config = usage.share(&doc);
                    Some((config, (rx, usage, doc, false)))
                },
            ))
        }
    }
}

/// A storage that keeps a workspace's `Usage` up to date.
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    usage: Arc<Usage>,
}

impl<S> Counted<S> {
    pub fn new(inner: S, usage: Arc<Usage>) -> Counted<S> {
        Counted { inner, usage }
    }
}

fn joined(key: &StorageKey) -> String {
    key.into_iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("/")
}

impl<S: Storage> Storage for Counted<S> {
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
        let (name, size) = (joined(&key), data.len() as u64);
        let (put, usage) = (self.inner.put(key, data), self.usage.clone());
        async move {
            put.await;
            usage.put(&name, size);
        }
    }

    fn delete(&self, key: StorageKey) -> impl Future<Output = ()> + Send {
        let name = joined(&key);
        let (delete, usage) = (self.inner.delete(key), self.usage.clone());
        async move {
            delete.await;
            usage.delete(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use samod::ShareAccess;

    fn writes(c: ShareConfig) -> bool {
        c.access == ShareAccess::ReadWrite
    }

    fn reads(c: ShareConfig) -> bool {
        c.access != ShareAccess::None
    }

    fn usage(max_docs: u64, max_bytes: u64, sizes: &[(&str, u64)]) -> Arc<Usage> {
        Usage::new(
            "team",
            Quota {
                max_docs,
                max_bytes,
            },
            sizes.iter().map(|(k, s)| (k.to_string(), *s)),
        )
    }

    #[test]
    fn documents_and_bytes_are_counted_from_storage_and_from_writes() {
        let u = usage(
            10,
            1000,
            &[
                ("storage-adapter-id", 10),
                ("a/snapshot/1", 100),
                ("a/incremental/2", 50),
                ("b/snapshot/1", 40),
            ],
        );
        let docs = |u: &Usage| u.counts.lock().unwrap().docs.len();
        let bytes = |u: &Usage| u.counts.lock().unwrap().bytes;
        assert_eq!((docs(&u), bytes(&u)), (2, 200));
        u.put("c/incremental/1", 30);
        u.put("a/snapshot/1", 120); // rewritten: counted once
        assert_eq!((docs(&u), bytes(&u)), (3, 250));
        u.delete("a/snapshot/1");
        u.delete("a/incremental/2");
        u.delete("a/incremental/2"); // twice: no effect
        assert_eq!(
            (docs(&u), bytes(&u)),
            (2, 80),
            "a is gone with its last key"
        );
        assert_eq!(u.refusal(), None);
    }

    #[test]
    fn at_the_document_limit_only_new_documents_are_refused() {
        let u = usage(2, 1000, &[("a/snapshot/1", 10)]);
        assert_eq!(u.share("b"), ShareConfig::read_write().with_announce(false));
        u.put("b/snapshot/1", 10);
        let why = u.refusal().expect("full of documents");
        assert!(
            why.contains("--max-docs-per-workspace 2") && why.contains("team"),
            "{why}"
        );
        assert!(
            writes(u.share("a")),
            "an existing document still takes changes"
        );
        assert!(!writes(u.share("c")), "a new one is refused");
        assert!(reads(u.share("c")), "and still read");
        u.delete("b/snapshot/1");
        assert!(writes(u.share("c")), "room again once one is gone");
    }

    #[test]
    fn sizes_read_as_a_person_writes_them() {
        assert_eq!(size(900), "900 bytes");
        assert_eq!(size(20_000), "19.5 KiB");
        assert_eq!(size(16 << 20), "16.0 MiB");
    }

    #[test]
    fn new_documents_count_from_when_they_are_let_in_not_when_stored() {
        let u = usage(3, 1000, &[("root/snapshot/1", 10)]);
        // A first sync brings many at once: each is let in as its changes
        // arrive, before any is stored.
        assert!(u.admit("a"));
        assert!(u.admit("b"));
        assert!(!u.admit("c"), "the third new one would pass the limit");
        assert!(!writes(u.share("c")));
        assert!(!writes(u.share("d")));
        let why = u.refusal().expect("at the limit");
        assert!(why.contains("holds 3 documents"), "{why}");
        assert!(
            writes(u.share("a")) && writes(u.share("b")),
            "those let in keep going while they are stored"
        );
        u.put("a/incremental/1", 10);
        u.put("b/incremental/1", 10);
        assert!(!writes(u.share("c")));
        assert_eq!(u.counts.lock().unwrap().documents(), 3);
    }

    #[test]
    fn a_document_let_in_but_never_stored_stops_counting() {
        let u = usage(2, 1000, &[("root/snapshot/1", 10)]);
        let t0 = Instant::now();
        assert!(u.admit_at("sent-then-gone", t0));
        assert!(!u.admit_at("next", t0 + Duration::from_secs(1)));
        assert!(!writes(u.share_at("next", t0 + Duration::from_secs(1))));
        let decisions = u.watch();
        assert!(
            u.admit_at("next", t0 + ADMITTED_FOR),
            "after {ADMITTED_FOR:?} it no longer holds a place"
        );
        assert!(u.refusal().is_some(), "and the new one holds it");
        assert!(
            decisions.has_changed().unwrap(),
            "the share policy hears that the room changed, to decide again"
        );
    }

    #[test]
    fn asking_for_documents_the_workspace_does_not_hold_takes_no_place() {
        let u = usage(2, 1000, &[("root/snapshot/1", 10)]);
        for i in 0..1000 {
            assert!(writes(u.share(&format!("made-up-{i}"))));
        }
        assert_eq!(u.refusal(), None, "nothing was sent to any of them");
        assert_eq!(u.counts.lock().unwrap().documents(), 1);
        assert!(u.admit("real"), "a document sent still finds its place");
        assert!(u.refusal().is_some());
    }

    #[test]
    fn at_the_byte_limit_no_change_is_taken_and_peers_are_told_at_once() {
        let u = usage(100, 100, &[("a/snapshot/1", 60)]);
        let policy = u.share_policy();
        let doc = DocumentId::try_from(vec![7u8; 16]).unwrap();
        let mut decisions = policy(doc, PeerId::from("device"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use futures::StreamExt;
            assert!(writes(decisions.next().await.unwrap()));
            u.put("a/incremental/2", 40);
            let next = decisions.next().await.unwrap();
            assert!(!writes(next) && reads(next), "read-only once full");
        });
        let why = u.refusal().unwrap();
        assert!(why.contains("--max-bytes-per-workspace 100"), "{why}");
        assert!(!writes(u.share("a")));
    }
}
