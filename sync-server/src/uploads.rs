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

/// The changes one device→server message carries: `(document id, change
/// hash in hex)`, each once, empty for any message that is not a sync
/// message with changes (or does not read, or names no valid document: a
/// device's message is read here before samod has checked anything, so a
/// made-up id must not be copied once per change it lists).
pub fn changes_in(frame: &[u8]) -> Vec<(String, String)> {
    let Some((document, data)) = sync_payload(frame) else {
        return Vec::new();
    };
    // Looked at only when it could be one (decoding base58 takes time
    // that grows with the square of its length).
    if document.len() > MAX_DOCUMENT_ID_CHARS {
        return Vec::new();
    }
    let Ok(document) = samod::DocumentId::from_str(&document) else {
        return Vec::new();
    };
    let Ok(message) = sync::Message::decode(&data) else {
        return Vec::new();
    };
    let mut hashes = BTreeSet::new();
    for chunk in message.changes.iter() {
        match Change::from_bytes(chunk.to_vec()) {
            Ok(change) => {
                hashes.insert(change.hash());
            }
            // A whole document (the newer sync format sends one in a
            // single chunk when the peer has nothing).
            Err(_) => {
                if let Ok(doc) = Automerge::load(chunk) {
                    hashes.extend(doc.get_changes(&[]).into_iter().map(|c| c.hash()));
                }
            }
        }
    }
    let document = document.to_string();
    hashes
        .into_iter()
        .map(|h| (document.clone(), h.to_string()))
        .collect()
}

/// The document a `request` message asks for (a device that does not have
/// it), when it names a valid one.
pub fn requested_document(frame: &[u8]) -> Option<String> {
    let (kind, document, _) = message_parts(frame)?;
    if kind != "request" || document.len() > MAX_DOCUMENT_ID_CHARS {
        return None;
    }
    samod::DocumentId::from_str(&document)
        .ok()
        .map(|d| d.to_string())
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

/// An automerge-repo message's type, document id and data, when it has a
/// type and a document id.
fn message_parts(frame: &[u8]) -> Option<(String, String, Option<&[u8]>)> {
    let mut d = minicbor::Decoder::new(frame);
    let len = d.map().ok()??;
    let (mut kind, mut document, mut data) = (None, None, None);
    for _ in 0..len {
        match d.str().ok()? {
            "type" => kind = Some(d.str().ok()?.to_owned()),
            "documentId" => {
                document = match d.datatype().ok()? {
                    minicbor::data::Type::String => Some(d.str().ok()?.to_owned()),
                    _ => {
                        d.skip().ok()?;
                        None
                    }
                }
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
    fn only_full_lowercase_hashes_are_asked_about() {
        assert!(is_change_hash(&"a1".repeat(32)));
        assert!(!is_change_hash(&"A1".repeat(32)));
        assert!(!is_change_hash("a1"));
        assert!(!is_change_hash(&"g1".repeat(32)));
    }
}
