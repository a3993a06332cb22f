//! Which device brought each change. A change's commit message names the
//! device that made it, but that is a claim any device of the workspace can
//! write. The server knows which device each connection authenticated as,
//! so it reads the change hashes in every sync message a device sends,
//! before samod applies it, and keeps the first device that uploaded each
//! change (`uploads` table). A device merging changes asks `/uploads` for
//! theirs, and its history shows that device next to the claimed one.
//!
//! Decoding never fails a connection: what does not read is passed on to
//! samod untouched (which decides what to do with it) and not recorded.

use std::collections::BTreeSet;
use std::str::FromStr;

use automerge::{sync, Automerge, Change};

/// Longest document id read: samod's are 16 bytes and a checksum in
/// base58 (about 28 characters), the legacy UUID form 36.
const MAX_DOCUMENT_ID_CHARS: usize = 64;

/// Most change hashes one `/uploads` request may ask about.
pub const MAX_ASKED: usize = 100_000;

/// What one device→server message brings to a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brought {
    /// The document, as samod writes its id.
    pub document: String,
    /// The changes it carries, by hash in hex, each once.
    pub changes: Vec<String>,
    /// Whether every chunk of changes was read. One that was not cannot be
    /// vouched for, so the message goes no further (`http.rs`): automerge
    /// reads what sync sends (single changes, changes one after another in
    /// one chunk, a whole document), which is what is read here.
    pub complete: bool,
}

/// The changes a `sync` or `request` message carries to its document;
/// `None` for any other message, one without changes, one that does not
/// read, or one that names no valid document (a device's message is read
/// here before samod has checked anything, so a made-up id must not be
/// copied once per change it lists).
pub fn brought(frame: &[u8]) -> Option<Brought> {
    // Automerge has panicked on input it could not read (upstream issues);
    // this runs in the task that drives every connection of the workspace.
    // Such a frame goes on to samod, whose document actor fails alone.
    std::panic::catch_unwind(|| read_brought(frame)).unwrap_or_else(|_| {
        tracing::warn!("automerge panicked reading a device's sync message");
        None
    })
}

fn read_brought(frame: &[u8]) -> Option<Brought> {
    read_brought_within(frame, samod::inflate_bound::Budget::default())
}

/// [`read_brought`] costing automerge at most `budget`.
fn read_brought_within(frame: &[u8], mut budget: samod::inflate_bound::Budget) -> Option<Brought> {
    let (document, data) = sync_payload(frame)?;
    let message = sync::Message::decode(&data).ok()?;
    // No changes: nothing to vouch for.
    message.changes.iter().next()?;
    // Automerge inflates compressed parts and expands runs without a
    // bound: what would not pass samod's check is not read here either,
    // and goes no further.
    if message
        .changes
        .iter()
        .any(|c| samod::inflate_bound::check(c, &mut budget).is_err())
    {
        return Some(Brought {
            document,
            changes: Vec::new(),
            complete: false,
        });
    }
    let mut hashes = BTreeSet::new();
    let mut complete = true;
    for chunk in message.changes.iter() {
        match split_chunks(chunk) {
            Some(parts) => {
                for (kind, part) in parts {
                    complete &= read_chunk(kind, part, &mut hashes);
                }
            }
            None => complete = false,
        }
    }
    Some(Brought {
        document,
        changes: hashes.into_iter().map(|h| h.to_string()).collect(),
        complete,
    })
}

/// Adds the hashes of the changes in one automerge chunk; false when it
/// does not read.
fn read_chunk(kind: u8, part: &[u8], hashes: &mut BTreeSet<automerge::ChangeHash>) -> bool {
    match kind {
        CHUNK_CHANGE | CHUNK_COMPRESSED_CHANGE => match Change::from_bytes(part.to_vec()) {
            Ok(change) => {
                hashes.insert(change.hash());
                true
            }
            Err(_) => false,
        },
        // A whole document (the newer sync format sends one in a single
        // chunk when the peer has nothing), or a bundle of changes.
        _ => match Automerge::load(part) {
            Ok(doc) => {
                hashes.extend(doc.get_changes(&[]).into_iter().map(|c| c.hash()));
                true
            }
            Err(_) => false,
        },
    }
}

/// The start of every automerge chunk.
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED_CHANGE: u8 = 2;

/// Automerge chunks one after another (the newer sync format sends a
/// device's changes so, in one piece): each its type and its bytes, header
/// included; `None` when the bytes are not such chunks. A chunk is the
/// magic bytes, a 4-byte checksum, its type, its length (LEB128) and then
/// that many bytes.
fn split_chunks(mut bytes: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 9 || bytes[..4] != CHUNK_MAGIC {
            return None;
        }
        let kind = bytes[8];
        let (len, len_bytes) = uleb128(&bytes[9..])?;
        let total = 9usize
            .checked_add(len_bytes)?
            .checked_add(usize::try_from(len).ok()?)?;
        if total > bytes.len() {
            return None;
        }
        out.push((kind, &bytes[..total]));
        bytes = &bytes[total..];
    }
    Some(out)
}

/// An unsigned LEB128 number and how many bytes it took.
fn uleb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The document id and the automerge sync message of an automerge-repo
/// `sync` or `request` message (a CBOR map).
fn sync_payload(frame: &[u8]) -> Option<(String, Vec<u8>)> {
    match message_parts(frame)? {
        (kind, document, Some(data)) if kind == "sync" || kind == "request" => {
            Some((document, data.to_vec()))
        }
        _ => None,
    }
}

/// A document a message is about, and how.
#[derive(Debug, PartialEq, Eq)]
pub enum Named {
    /// A `request`: the device does not have the document.
    Asked(String),
    /// Any other (`sync`, `ephemeral`, `doc-unavailable`, …): a `sync` is
    /// sent for a document the device has, its own new ones included.
    Sent(String),
}

/// The document a message is about.
pub fn named(frame: &[u8]) -> Option<Named> {
    match message_parts(frame)? {
        (kind, document, _) if kind == "request" => Some(Named::Asked(document)),
        (_, document, _) => Some(Named::Sent(document)),
    }
}

/// An automerge-repo message's type, document id and data, when it has a
/// type and a document id.
fn message_parts(frame: &[u8]) -> Option<(String, String, Option<&[u8]>)> {
    let mut d = minicbor::Decoder::new(frame);
    let len = d.map().ok()??;
    let (mut kind, mut document, mut data) = (None, None, None);
    for _ in 0..len {
        match d.str().ok()? {
            "type" => kind = Some(d.str().ok()?.to_owned()),
            // As samod reads it: text, or the id's bytes. Looked at only
            // when it could be one (decoding base58 takes time that grows
            // with the square of its length).
            "documentId" => {
                document = match d.datatype().ok()? {
                    minicbor::data::Type::String => {
                        let text = d.str().ok()?;
                        (text.len() <= MAX_DOCUMENT_ID_CHARS)
                            .then(|| samod::DocumentId::from_str(text).ok())
                            .flatten()
                    }
                    minicbor::data::Type::Bytes => {
                        samod::DocumentId::try_from(d.bytes().ok()?.to_vec()).ok()
                    }
                    _ => {
                        d.skip().ok()?;
                        None
                    }
                }
                .map(|id| id.to_string())
            }
            "data" => data = Some(d.bytes().ok()?),
            _ => d.skip().ok()?,
        }
    }
    Some((kind?, document?, data))
}

/// A change hash as `/uploads` accepts it: 64 lowercase hex digits.
pub fn is_change_hash(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::sync::SyncDoc;
    use automerge::transaction::Transactable;

    /// An automerge-repo message as a client sends it.
    fn frame(kind: &str, document: &str, data: &[u8]) -> Vec<u8> {
        let mut e = minicbor::Encoder::new(Vec::new());
        e.map(5).unwrap();
        e.str("type").unwrap().str(kind).unwrap();
        e.str("senderId").unwrap().str("peer-a").unwrap();
        e.str("targetId").unwrap().str("server").unwrap();
        e.str("documentId").unwrap().str(document).unwrap();
        e.str("data").unwrap().bytes(data).unwrap();
        e.into_writer()
    }

    fn doc_with_two_changes() -> Automerge {
        let mut doc = Automerge::new();
        for v in ["one", "two"] {
            let mut tx = doc.transaction();
            tx.put(automerge::ROOT, "k", v).unwrap();
            tx.commit();
        }
        doc
    }

    /// `(document, hash)` for each change a message brings, when it was
    /// read whole.
    fn changes_in(frame: &[u8]) -> Vec<(String, String)> {
        brought(frame)
            .filter(|b| b.complete)
            .map(|b| {
                b.changes
                    .into_iter()
                    .map(|h| (b.document.clone(), h))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A document id as samod writes one.
    fn doc1() -> String {
        samod::DocumentId::try_from(vec![7u8; 16])
            .unwrap()
            .to_string()
    }

    fn hashes(doc: &Automerge) -> Vec<(String, String)> {
        doc.get_changes(&[])
            .iter()
            .map(|c| (doc1(), c.hash().to_string()))
            .collect()
    }

    #[test]
    fn the_changes_a_sync_message_carries_are_named_by_hash() {
        let mut doc = doc_with_two_changes();
        let mut peer = Automerge::new();
        let (mut at_doc, mut at_peer) = (sync::State::new(), sync::State::new());
        // Run the protocol until the peer has everything, keeping what the
        // sending side put on the wire.
        let mut seen = Vec::new();
        for _ in 0..5 {
            if let Some(m) = peer.generate_sync_message(&mut at_peer) {
                doc.receive_sync_message(&mut at_doc, m).unwrap();
            }
            if let Some(m) = doc.generate_sync_message(&mut at_doc) {
                seen.extend(changes_in(&frame("sync", &doc1(), &m.clone().encode())));
                peer.receive_sync_message(&mut at_peer, m).unwrap();
            }
        }
        assert_eq!(peer.get_heads(), doc.get_heads());
        seen.sort();
        let mut want = hashes(&doc);
        want.sort();
        assert_eq!(seen, want);
    }

    /// A compressed part that would inflate past the bound, or runs that
    /// stand for more operations than it allows, are not read (automerge
    /// would inflate or expand them whole), and the message goes no
    /// further.
    #[test]
    fn changes_costing_past_the_bound_are_not_read() {
        use samod::inflate_bound::{Budget, MAX_INFLATED_BYTES, MAX_ITEMS};
        let doc = doc_with_two_changes();
        let m = |changes: Vec<u8>| {
            let m = sync::Message {
                heads: doc.get_heads(),
                need: vec![],
                have: vec![],
                changes: changes.into(),
                flags: None,
                version: sync::MessageVersion::V2,
            };
            frame("request", &doc1(), &m.encode())
        };
        let saved = doc.save();
        let read = read_brought_within(&m(saved.clone()), Budget::within(1 << 20, 1_000)).unwrap();
        assert!(read.complete && read.changes.len() == 2);
        // A change of 4 MiB of one letter, as automerge compresses it.
        let mut big = Automerge::new();
        let mut tx = big.transaction();
        tx.put(automerge::ROOT, "k", "a".repeat(4 << 20)).unwrap();
        tx.commit();
        let mut change = big.get_changes(&[])[0].clone();
        let bomb = change.bytes().into_owned();
        assert!(bomb.len() < 64 << 10 && bomb[8] == 2, "a compressed chunk");
        let refused = read_brought_within(
            &m([saved.clone(), bomb].concat()),
            Budget::within(1 << 20, MAX_ITEMS),
        )
        .unwrap();
        assert!(!refused.complete && refused.changes.is_empty());
        assert_eq!(refused.document, doc1());
        // 10,000 operations in a few hundred bytes, against 1,000 items.
        let mut many = Automerge::new();
        let mut tx = many.transaction();
        let list = tx
            .put_object(automerge::ROOT, "l", automerge::ObjType::List)
            .unwrap();
        // One splice: inserting one at a time is quadratic in a debug build.
        tx.splice(
            &list,
            0,
            0,
            (0..10_000).map(|_| automerge::ScalarValue::Null),
        )
        .unwrap();
        tx.commit();
        let runs = many.get_changes(&[])[0].raw_bytes().to_vec();
        assert!(runs.len() < 1_000);
        let refused = read_brought_within(
            &m([saved, runs].concat()),
            Budget::within(MAX_INFLATED_BYTES, 1_000),
        )
        .unwrap();
        assert!(!refused.complete && refused.changes.is_empty());
    }

    #[test]
    fn a_whole_document_in_one_chunk_is_read_too() {
        let doc = doc_with_two_changes();
        let m = sync::Message {
            heads: doc.get_heads(),
            need: vec![],
            have: vec![],
            changes: doc.save().into(),
            flags: None,
            version: sync::MessageVersion::V2,
        };
        let mut seen = changes_in(&frame("request", &doc1(), &m.encode()));
        seen.sort();
        let mut want = hashes(&doc);
        want.sort();
        assert_eq!(seen, want);
    }

    #[test]
    fn other_messages_and_garbage_carry_nothing() {
        let doc = doc_with_two_changes();
        let changes: Vec<Vec<u8>> = doc
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        let m = sync::Message {
            heads: vec![],
            need: vec![],
            have: vec![],
            changes: changes.into(),
            flags: None,
            version: sync::MessageVersion::V1,
        };
        assert!(changes_in(&frame("ephemeral", &doc1(), &m.clone().encode())).is_empty());
        assert!(changes_in(b"not cbor at all").is_empty());
        assert!(changes_in(&frame("sync", &doc1(), b"not a sync message")).is_empty());
        assert!(changes_in(&[]).is_empty());
    }

    #[test]
    fn a_change_listed_many_times_or_under_a_made_up_document_is_read_once_or_not_at_all() {
        let doc = doc_with_two_changes();
        let one = doc.get_changes(&[])[0].raw_bytes().to_vec();
        let m = sync::Message {
            heads: vec![],
            need: vec![],
            have: vec![],
            changes: vec![one; 10_000].into(),
            flags: None,
            version: sync::MessageVersion::V1,
        };
        let data = m.encode();
        assert_eq!(changes_in(&frame("sync", &doc1(), &data)).len(), 1);
        for made_up in ["doc1".to_owned(), "x".repeat(1 << 20), String::new()] {
            assert!(changes_in(&frame("sync", &made_up, &data)).is_empty());
        }
    }

    #[test]
    fn changes_one_after_another_in_one_chunk_are_each_read() {
        // The newer sync format's way of sending several changes, here the
        // two after the first (loaded as a document they lack their
        // dependency, so only reading each change finds them).
        let mut doc = doc_with_two_changes();
        let first = vec![doc.get_changes(&[])[0].hash()];
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "k", "three").unwrap();
        tx.commit();
        let later = doc.get_changes(&first);
        assert_eq!(later.len(), 2);
        let joined: Vec<u8> = later.iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
        // Neither as one change nor as a document: what was read before.
        assert!(Change::from_bytes(joined.clone()).is_err());
        assert!(Automerge::load(&joined).is_err());
        let m = sync::Message {
            heads: doc.get_heads(),
            need: vec![],
            have: vec![],
            changes: vec![joined.clone()].into(),
            flags: None,
            version: sync::MessageVersion::V2,
        };
        let mut seen = changes_in(&frame("sync", &doc1(), &m.encode()));
        seen.sort();
        let mut want: Vec<(String, String)> = later
            .iter()
            .map(|c| (doc1(), c.hash().to_string()))
            .collect();
        want.sort();
        assert_eq!(seen, want);

        // Cut short, or followed by bytes that are no chunk: not complete.
        for bad in [
            &joined[..joined.len() - 1],
            &[joined.as_slice(), b"junk"].concat(),
        ] {
            let m = sync::Message {
                heads: vec![],
                need: vec![],
                have: vec![],
                changes: vec![bad.to_vec()].into(),
                flags: None,
                version: sync::MessageVersion::V2,
            };
            let b = brought(&frame("sync", &doc1(), &m.encode())).unwrap();
            assert!(!b.complete, "{b:?}");
        }
    }

    #[test]
    fn a_document_id_sent_as_bytes_is_read_as_samod_reads_it() {
        let doc = doc_with_two_changes();
        let m = sync::Message {
            heads: vec![],
            need: vec![],
            have: vec![],
            changes: doc.save().into(),
            flags: None,
            version: sync::MessageVersion::V2,
        };
        let mut e = minicbor::Encoder::new(Vec::new());
        e.map(3).unwrap();
        e.str("type").unwrap().str("sync").unwrap();
        e.str("documentId").unwrap().bytes(&[7u8; 16]).unwrap();
        e.str("data").unwrap().bytes(&m.encode()).unwrap();
        let b = brought(&e.into_writer()).unwrap();
        assert_eq!(b.document, doc1());
        assert_eq!(b.changes.len(), 2);
    }

    #[test]
    fn a_message_names_the_document_it_asks_for_or_syncs() {
        let empty = Automerge::new()
            .generate_sync_message(&mut sync::State::new())
            .unwrap()
            .encode();
        assert_eq!(
            named(&frame("request", &doc1(), &empty)),
            Some(Named::Asked(doc1()))
        );
        for kind in ["sync", "ephemeral", "doc-unavailable"] {
            assert_eq!(
                named(&frame(kind, &doc1(), &empty)),
                Some(Named::Sent(doc1()))
            );
        }
        assert_eq!(named(&frame("sync", "not an id", &empty)), None);
    }

    #[test]
    fn only_full_lowercase_hashes_are_asked_about() {
        assert!(is_change_hash(&"a1".repeat(32)));
        assert!(!is_change_hash(&"A1".repeat(32)));
        assert!(!is_change_hash("a1"));
        assert!(!is_change_hash(&"g1".repeat(32)));
    }
}
