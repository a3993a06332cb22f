//! How much a peer's automerge bytes grow once inflated, measured before
//! automerge reads them.
//!
//! Automerge inflates DEFLATE-compressed data (a compressed change chunk,
//! the compressed columns of a document or bundle chunk) with no bound on
//! the result, and DEFLATE reaches about 1,000:1: a sync message under any
//! sensible size limit could ask for many GiB and end the process. A chunk
//! says only its compressed length, so each compressed part is inflated
//! here into nothing, counting, and stops once past the budget; automerge
//! reads only what passed. Walks the chunk layout automerge parses
//! (`storage/chunk.rs`, `storage/document.rs`, `storage/bundle/storage.rs`
//! in automerge 0.12): bytes that do not read as chunks are refused too,
//! as automerge would refuse them.

use std::io::Read;

/// At most this many bytes come of inflating what one sync message
/// carries: past what a workspace's document reaches in normal use (a
/// save of it deflates its columns, typically a few times over), far below
/// what would exhaust a machine.
pub const MAX_INFLATED_BYTES: u64 = 256 * 1024 * 1024;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED_CHANGE: u8 = 2;
const BUNDLE: u8 = 3;
/// A column specification's bit for a deflated column.
const DEFLATED: u64 = 0b1000;
const HASH_LEN: u64 = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InflateError {
    #[error("not automerge chunks: {0}")]
    Malformed(&'static str),
    #[error("compressed data inflating past {limit} bytes")]
    TooLarge { limit: u64 },
}

/// A sync message's changes, joined as automerge joins them before it
/// loads them: an error if their compressed parts inflate past
/// [`MAX_INFLATED_BYTES`]. Bytes that stop reading as chunks end the walk
/// without an error: automerge stops loading at the same chunk (keeping
/// those before it) and inflates nothing after it, so a message it would
/// partly apply is not refused here.
pub fn check_sync_changes(joined: &[u8]) -> Result<(), InflateError> {
    check_sync_changes_within(joined, MAX_INFLATED_BYTES)
}

fn check_sync_changes_within(joined: &[u8], limit: u64) -> Result<(), InflateError> {
    let mut budget = limit;
    match check(joined, &mut budget) {
        Err(e @ InflateError::TooLarge { .. }) => Err(e),
        Ok(()) | Err(InflateError::Malformed(_)) => Ok(()),
    }
}

/// Checks `bytes` (automerge chunks one after another), taking what its
/// compressed parts inflate to from `budget`; an error once that would go
/// below zero (the budget is then spent), or if the bytes are not chunks.
pub fn check(bytes: &[u8], budget: &mut u64) -> Result<(), InflateError> {
    let limit = *budget;
    let mut c = Cursor(bytes);
    while !c.0.is_empty() {
        if c.take(4)? != MAGIC {
            return Err(InflateError::Malformed("bad magic bytes"));
        }
        c.take(4)?; // checksum
        let kind = c.take(1)?[0];
        let len = c.uleb()?;
        let data = c.take(len)?;
        match kind {
            // Automerge refuses compressed columns in a change chunk.
            CHANGE => {}
            COMPRESSED_CHANGE => inflate(data, budget, limit)?,
            DOCUMENT => document(Cursor(data), budget, limit)?,
            BUNDLE => bundle(Cursor(data), budget, limit)?,
            _ => return Err(InflateError::Malformed("unknown chunk type")),
        }
    }
    Ok(())
}

/// Actors, heads, change and op column metadata, then their data.
fn document(mut c: Cursor<'_>, budget: &mut u64, limit: u64) -> Result<(), InflateError> {
    actors(&mut c)?;
    hashes(&mut c)?;
    let changes = columns(&mut c)?;
    let ops = columns(&mut c)?;
    column_data(&mut c, &changes, budget, limit)?;
    column_data(&mut c, &ops, budget, limit)
}

/// Dependencies, actors, then change and op columns, each its metadata
/// followed by its data.
fn bundle(mut c: Cursor<'_>, budget: &mut u64, limit: u64) -> Result<(), InflateError> {
    hashes(&mut c)?;
    actors(&mut c)?;
    let changes = columns(&mut c)?;
    column_data(&mut c, &changes, budget, limit)?;
    let ops = columns(&mut c)?;
    column_data(&mut c, &ops, budget, limit)
}

fn actors(c: &mut Cursor<'_>) -> Result<(), InflateError> {
    for _ in 0..c.uleb()? {
        let len = c.uleb()?;
        c.take(len)?;
    }
    Ok(())
}

fn hashes(c: &mut Cursor<'_>) -> Result<(), InflateError> {
    let n = c.uleb()?;
    let len = n
        .checked_mul(HASH_LEN)
        .ok_or(InflateError::Malformed("too many hashes"))?;
    c.take(len)?;
    Ok(())
}

/// (specification, length) of each column.
fn columns(c: &mut Cursor<'_>) -> Result<Vec<(u64, u64)>, InflateError> {
    let n = c.uleb()?;
    // Each column takes at least two bytes to describe.
    if n > c.0.len() as u64 / 2 {
        return Err(InflateError::Malformed("more columns than bytes"));
    }
    (0..n).map(|_| Ok((c.uleb()?, c.uleb()?))).collect()
}

fn column_data(
    c: &mut Cursor<'_>,
    columns: &[(u64, u64)],
    budget: &mut u64,
    limit: u64,
) -> Result<(), InflateError> {
    for &(spec, len) in columns {
        let data = c.take(len)?;
        if spec & DEFLATED != 0 {
            inflate(data, budget, limit)?;
        }
    }
    Ok(())
}

/// Inflates `data` into nothing, at most one byte past the budget.
fn inflate(data: &[u8], budget: &mut u64, limit: u64) -> Result<(), InflateError> {
    let mut inflated = flate2::read::DeflateDecoder::new(data).take(budget.saturating_add(1));
    let n = std::io::copy(&mut inflated, &mut std::io::sink())
        .map_err(|_| InflateError::Malformed("bad compressed data"))?;
    if n > *budget {
        *budget = 0;
        return Err(InflateError::TooLarge { limit });
    }
    *budget -= n;
    Ok(())
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], InflateError> {
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.0.len())
            .ok_or(InflateError::Malformed("a length past the end"))?;
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    /// An unsigned LEB128 of at most 64 bits.
    fn uleb(&mut self) -> Result<u64, InflateError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = self.take(1)?[0];
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err(InflateError::Malformed("a number past 64 bits"));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(InflateError::Malformed("a number past 64 bits"))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use automerge::transaction::Transactable;
    use automerge::{Automerge, ROOT};

    use super::*;

    fn deflated(len: usize) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![0u8; len]).unwrap();
        e.finish().unwrap()
    }

    fn chunk(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([0; 4]);
        out.push(kind);
        leb(&mut out, data.len() as u64);
        out.extend(data);
        out
    }

    fn leb(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A document chunk with no actors or heads, one deflated change
    /// column holding `column`, and no op columns.
    fn document_with(column: &[u8]) -> Vec<u8> {
        let mut data = Vec::new();
        leb(&mut data, 0); // actors
        leb(&mut data, 0); // heads
        leb(&mut data, 1); // change columns
        leb(&mut data, (1 << 4) | DEFLATED);
        leb(&mut data, column.len() as u64);
        leb(&mut data, 0); // op columns
        data.extend(column);
        chunk(DOCUMENT, &data)
    }

    fn edited(n: usize) -> Automerge {
        let mut doc = Automerge::new();
        for i in 0..n {
            let mut tx = doc.transaction();
            tx.put(ROOT, format!("k{i}"), "some text that repeats, ".repeat(40))
                .unwrap();
            tx.commit();
        }
        doc
    }

    #[test]
    fn what_automerge_itself_writes_passes_and_is_counted() {
        let doc = edited(50);
        let saved = doc.save();
        let mut budget = MAX_INFLATED_BYTES;
        check(&saved, &mut budget).unwrap();
        assert!(budget < MAX_INFLATED_BYTES, "its deflated columns count");
        // Changes as sync sends them (uncompressed), one after another.
        let changes: Vec<u8> = doc
            .get_changes(&[])
            .iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect();
        let mut budget = MAX_INFLATED_BYTES;
        check(&changes, &mut budget).unwrap();
        assert_eq!(budget, MAX_INFLATED_BYTES, "nothing in them is compressed");
        // Compressed change chunks (what `Change::bytes` writes).
        let mut budget = MAX_INFLATED_BYTES;
        for mut c in doc.get_changes(&[]) {
            check(c.bytes().as_ref(), &mut budget).unwrap();
        }
    }

    #[test]
    fn a_compressed_change_inflating_past_the_budget_is_refused_early() {
        // 16 MiB of zeros in about 16 KiB.
        let bomb = chunk(COMPRESSED_CHANGE, &deflated(16 << 20));
        assert!(bomb.len() < 32 << 10);
        let mut budget = 1 << 20;
        assert_eq!(
            check(&bomb, &mut budget),
            Err(InflateError::TooLarge { limit: 1 << 20 })
        );
        let mut budget = 17 << 20;
        check(&bomb, &mut budget).unwrap();
        assert_eq!(budget, 1 << 20);
    }

    #[test]
    fn a_document_column_inflating_past_the_budget_is_refused() {
        let doc = document_with(&deflated(8 << 20));
        let mut budget = 4 << 20;
        assert!(matches!(
            check(&doc, &mut budget),
            Err(InflateError::TooLarge { .. })
        ));
        // The budget is one for all the chunks of a message.
        let two = [
            document_with(&deflated(3 << 20)),
            document_with(&deflated(3 << 20)),
        ]
        .concat();
        let mut budget = 4 << 20;
        assert!(check(&two, &mut budget).is_err());
        let mut budget = 6 << 20;
        check(&two, &mut budget).unwrap();
    }

    #[test]
    fn bytes_that_are_not_chunks_are_refused() {
        let good = chunk(CHANGE, b"abc");
        for bad in [
            b"not a chunk".to_vec(),
            good[..good.len() - 1].to_vec(),
            chunk(9, b""),
            chunk(COMPRESSED_CHANGE, b"\xff\xff not deflate"),
            // More columns than the chunk has bytes.
            chunk(DOCUMENT, &[0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            // A length LEB128 past 64 bits.
            [&MAGIC[..], &[0; 4], &[CHANGE], &[0xff; 11]].concat(),
        ] {
            let mut budget = MAX_INFLATED_BYTES;
            assert!(
                matches!(check(&bad, &mut budget), Err(InflateError::Malformed(_))),
                "{bad:?}"
            );
        }
        let mut budget = MAX_INFLATED_BYTES;
        check(&[], &mut budget).unwrap();
        // Where automerge would stop loading, so does the check of a sync
        // message: it refuses only what inflates too far.
        let partial = [good.clone(), b"\x85\x6f\x4a".to_vec()].concat();
        assert_eq!(check_sync_changes(&partial), Ok(()));
    }

    #[test]
    fn a_sync_message_is_refused_only_past_the_bound() {
        let doc = document_with(&deflated(2 << 20));
        assert_eq!(
            check_sync_changes_within(&doc, 1 << 20),
            Err(InflateError::TooLarge { limit: 1 << 20 })
        );
        assert_eq!(check_sync_changes_within(&doc, 2 << 20), Ok(()));
        // Chunks after one that does not read are not inflated by automerge.
        let after_garbage = [b"garbage".to_vec(), doc].concat();
        assert_eq!(check_sync_changes_within(&after_garbage, 1 << 20), Ok(()));
    }
}
