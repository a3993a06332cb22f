//! What a peer's automerge bytes grow to once automerge reads them,
//! measured before it does.
//!
//! Two kinds of growth, each bounded per sync message:
//! - DEFLATE: automerge inflates compressed data (a compressed change
//!   chunk, the compressed columns of a document or bundle chunk) with no
//!   bound on the result, and DEFLATE reaches about 1,000:1. Each
//!   compressed part is inflated here as it is read, counting.
//! - Run-length encoding: a column's run says "this value, n times" in a
//!   few bytes for any n up to 2^63, and automerge decodes a change's or a
//!   document's columns one value at a time (and builds an operation for
//!   each when it rebuilds a document): twenty bytes can ask for years of
//!   work or any amount of memory. The values each column describes are
//!   counted here from its runs' lengths.
//! - Clocks: automerge's change graph keeps, every 16 changes, a clock with
//!   an entry for every actor, and rewrites them all when an actor is
//!   added: changes times actors, which a few MiB of tiny changes each by
//!   a new actor take to tens of GB. Distinct actors and changes are
//!   counted here.
//!
//! Walks the chunk layout automerge parses (`storage/chunk.rs`,
//! `storage/change.rs`, `storage/document.rs`, `storage/bundle/storage.rs`,
//! `columnar/encoding/{rle,boolean,delta}.rs` in automerge 0.12). Where the
//! bytes stop reading as automerge writes them, the walk stops with
//! [`InflateError::Malformed`]. A sync message is then refused whole:
//! automerge inflates a chunk's compressed parts before it reads them and
//! goes on to the chunks after one it cannot read, so the bytes past that
//! point would reach it unmeasured, and nothing automerge writes reads as
//! malformed here.

use std::io::Read;

/// At most this many bytes come of inflating what one sync message
/// carries: past what a workspace's document reaches in normal use (a
/// save of it deflates its columns, typically a few times over), far below
/// what would exhaust a machine.
pub const MAX_INFLATED_BYTES: u64 = 256 * 1024 * 1024;

/// At most this many items, the things automerge decodes one at a time,
/// in one sync message: the rows of a change's or a document's columns
/// (operations, changes), and the entries of its lists (columns, actors,
/// dependencies). Flowkeep's largest document (a workflow with a 2 MiB
/// config and a long history) is a small fraction of it; automerge holds
/// each operation in tens of bytes, so this keeps a message's cost within
/// what a machine has.
pub const MAX_ITEMS: u64 = 16 * 1024 * 1024;

/// What one compressed part (a compressed change, a deflated column)
/// costs in items, besides what it holds: inflating one has a fixed cost
/// (buffers and dictionary, about 90 KB here and 43 KB in automerge), so
/// bytes of empty ones must not be cheap. Automerge writes a couple of
/// dozen per saved document, and sync sends changes uncompressed; at most
/// 256 fit in a message.
pub const COMPRESSED_PART_ITEMS: u64 = 64 * 1024;

/// At most this many columns in one set: automerge writes about a dozen.
const MAX_COLUMNS: u64 = 1024;

/// At most this many distinct actors in one sync message.
pub const MAX_ACTORS: u64 = 1024 * 1024;

/// At most this many changes times distinct actors in one sync message:
/// what automerge's clocks cost, at four bytes an entry every 16 changes,
/// stays within 256 MiB (a million changes by a thousand actors pass).
pub const MAX_CLOCK_ENTRIES: u64 = 1 << 30;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED_CHANGE: u8 = 2;
const BUNDLE: u8 = 3;
/// A column specification's bit for a deflated column.
const DEFLATED: u64 = 0b1000;
/// A column specification's low bits: its type.
const COLUMN_TYPE: u64 = 0b111;
const BOOLEAN: u64 = 4;
const STRING: u64 = 5;
/// Raw values, their lengths given by another column: no runs.
const VALUE: u64 = 7;
const HASH_LEN: u64 = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InflateError {
    #[error("not automerge chunks: {0}")]
    Malformed(&'static str),
    #[error("compressed data inflating past {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("columns and lists describing more than {limit} items")]
    TooManyItems { limit: u64 },
    #[error("more than {limit} distinct actors")]
    TooManyActors { limit: u64 },
    #[error("changes times actors past {limit}")]
    TooManyClockEntries { limit: u64 },
}

/// What one sync message may still cost: bytes to inflate, items to
/// decode, changes times actors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    inflated: Inflated,
    items: Items,
    clocks: Clocks,
}

impl Default for Budget {
    /// [`MAX_INFLATED_BYTES`] and [`MAX_ITEMS`].
    fn default() -> Self {
        Self::within(MAX_INFLATED_BYTES, MAX_ITEMS)
    }
}

impl Budget {
    pub fn within(inflated: u64, items: u64) -> Self {
        Self {
            inflated: Inflated {
                left: inflated,
                limit: inflated,
            },
            items: Items {
                left: items,
                limit: items,
                compressed_parts: 0,
            },
            clocks: Clocks::default(),
        }
    }

    /// Bytes inflated so far.
    pub fn inflated(&self) -> u64 {
        self.inflated.limit - self.inflated.left
    }

    /// Items decoded so far, [`COMPRESSED_PART_ITEMS`] for each compressed
    /// part among them.
    pub fn items(&self) -> u64 {
        self.items.limit - self.items.left
    }

    /// Compressed parts inflated so far.
    pub fn compressed_parts(&self) -> u64 {
        self.items.compressed_parts
    }

    /// Distinct actors and changes seen so far.
    pub fn actors_and_changes(&self) -> (u64, u64) {
        (self.clocks.actors.len() as u64, self.clocks.changes)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Inflated {
    left: u64,
    limit: u64,
}

impl Inflated {
    fn spend(&mut self, n: u64) -> Result<(), InflateError> {
        if n > self.left {
            self.left = 0;
            return Err(InflateError::TooLarge { limit: self.limit });
        }
        self.left -= n;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Items {
    left: u64,
    limit: u64,
    compressed_parts: u64,
}

impl Items {
    /// An error if `n` items are more than are left.
    fn allow(&self, n: u64) -> Result<(), InflateError> {
        if n > self.left {
            return Err(InflateError::TooManyItems { limit: self.limit });
        }
        Ok(())
    }

    fn spend(&mut self, n: u64) -> Result<(), InflateError> {
        self.allow(n).inspect_err(|_| self.left = 0)?;
        self.left -= n;
        Ok(())
    }

    /// The fixed cost of one more compressed part.
    fn compressed_part(&mut self) -> Result<(), InflateError> {
        self.compressed_parts += 1;
        self.spend(COMPRESSED_PART_ITEMS)
    }
}

/// Distinct actors (by a 64-bit hash of their bytes: a collision only
/// counts two as one) and changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Clocks {
    actors: std::collections::HashSet<u64>,
    changes: u64,
}

impl Clocks {
    /// Reads an actor id of `len` bytes and counts it.
    fn actor<S: Source>(&mut self, s: &mut S, len: u64) -> Result<(), InflateError> {
        // FNV-1a: what matters is that equal ids hash equal.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for _ in 0..len {
            h = (h ^ u64::from(s.byte()?)).wrapping_mul(0x0100_0000_01b3);
        }
        self.actors.insert(h);
        if self.actors.len() as u64 > MAX_ACTORS {
            return Err(InflateError::TooManyActors { limit: MAX_ACTORS });
        }
        Ok(())
    }

    /// Counts `n` changes; an error once changes times actors is past
    /// [`MAX_CLOCK_ENTRIES`].
    fn changes(&mut self, n: u64) -> Result<(), InflateError> {
        self.changes = self.changes.saturating_add(n);
        if self.changes.saturating_mul(self.actors.len() as u64) > MAX_CLOCK_ENTRIES {
            return Err(InflateError::TooManyClockEntries {
                limit: MAX_CLOCK_ENTRIES,
            });
        }
        Ok(())
    }
}

/// A sync message's changes, joined as automerge joins them before it
/// loads them: an error if they cost more than a [`Budget::default`], or
/// stop reading as automerge writes chunks (see the module's doc).
pub fn check_sync_changes(joined: &[u8]) -> Result<(), InflateError> {
    check(joined, &mut Budget::default())
}

/// Checks `bytes` (automerge chunks one after another), taking what they
/// cost from `budget`; an error once that would go below zero (that part
/// of the budget is then spent), or if the bytes are not chunks.
pub fn check(bytes: &[u8], budget: &mut Budget) -> Result<(), InflateError> {
    let mut c = bytes;
    while !c.is_empty() {
        if take(&mut c, 4)? != MAGIC {
            return Err(InflateError::Malformed("bad magic bytes"));
        }
        take(&mut c, 4)?; // checksum
        let kind = c.byte()?;
        let len = uleb(&mut c)?;
        let mut data = take(&mut c, len)?;
        match kind {
            CHANGE => change(&mut data, &mut budget.items, &mut budget.clocks)?,
            COMPRESSED_CHANGE => {
                budget.items.compressed_part()?;
                let mut inflated = Inflate::new(data, &mut budget.inflated);
                change(&mut inflated, &mut budget.items, &mut budget.clocks)?;
                inflated.rest()?;
            }
            DOCUMENT => document(data, budget)?,
            BUNDLE => bundle(data, budget)?,
            _ => return Err(InflateError::Malformed("unknown chunk type")),
        }
    }
    Ok(())
}

/// A change's body: dependencies, actor, sequence number, first op,
/// time, message, other actors, then its op columns' metadata and data
/// (never compressed: automerge refuses that) and extra bytes.
fn change<S: Source>(
    s: &mut S,
    items: &mut Items,
    clocks: &mut Clocks,
) -> Result<(), InflateError> {
    items.spend(1)?; // the change itself
    for _ in 0..uleb(s)? {
        items.spend(1)?;
        s.skip(HASH_LEN)?;
    }
    let len = uleb(s)?;
    clocks.actor(s, len)?;
    uleb(s)?; // sequence number
    uleb(s)?; // first op
    sleb(s)?; // time
    let len = uleb(s)?;
    s.skip(len)?; // message
    actors(s, items, clocks)?;
    clocks.changes(1)?;
    let ops = columns(s, items)?;
    let mut rows = 0;
    for &(spec, len) in &ops {
        if spec & DEFLATED != 0 {
            return Err(InflateError::Malformed("a compressed column in a change"));
        }
        rows = rows.max(values(
            &mut Take {
                s: &mut *s,
                left: len,
            },
            spec,
            items,
        )?);
    }
    items.spend(rows)
}

/// Actors, heads, change and op column metadata, then their data.
fn document(mut c: &[u8], budget: &mut Budget) -> Result<(), InflateError> {
    actors(&mut c, &mut budget.items, &mut budget.clocks)?;
    hashes(&mut c, &mut budget.items)?;
    let changes = columns(&mut c, &mut budget.items)?;
    let ops = columns(&mut c, &mut budget.items)?;
    let rows = column_data(&mut c, &changes, budget)?;
    budget.clocks.changes(rows)?;
    column_data(&mut c, &ops, budget).map(drop)
}

/// Dependencies, actors, then change and op columns, each its metadata
/// followed by its data.
fn bundle(mut c: &[u8], budget: &mut Budget) -> Result<(), InflateError> {
    hashes(&mut c, &mut budget.items)?;
    actors(&mut c, &mut budget.items, &mut budget.clocks)?;
    let changes = columns(&mut c, &mut budget.items)?;
    let rows = column_data(&mut c, &changes, budget)?;
    budget.clocks.changes(rows)?;
    let ops = columns(&mut c, &mut budget.items)?;
    column_data(&mut c, &ops, budget).map(drop)
}

fn actors<S: Source>(
    s: &mut S,
    items: &mut Items,
    clocks: &mut Clocks,
) -> Result<(), InflateError> {
    for _ in 0..uleb(s)? {
        items.spend(1)?;
        let len = uleb(s)?;
        clocks.actor(s, len)?;
    }
    Ok(())
}

fn hashes(c: &mut &[u8], items: &mut Items) -> Result<(), InflateError> {
    let n = uleb(c)?;
    let len = n
        .checked_mul(HASH_LEN)
        .ok_or(InflateError::Malformed("too many hashes"))?;
    take(c, len)?;
    items.spend(n)
}

/// (specification, length) of each column.
fn columns<S: Source>(s: &mut S, items: &mut Items) -> Result<Vec<(u64, u64)>, InflateError> {
    let n = uleb(s)?;
    if n > MAX_COLUMNS {
        return Err(InflateError::Malformed(
            "more columns than automerge writes",
        ));
    }
    let mut columns = Vec::new();
    for _ in 0..n {
        items.spend(1)?;
        columns.push((uleb(s)?, uleb(s)?));
    }
    Ok(columns)
}

/// The data of one set of columns, which describe the same rows: the
/// longest counts. Returns the rows.
fn column_data(
    c: &mut &[u8],
    columns: &[(u64, u64)],
    budget: &mut Budget,
) -> Result<u64, InflateError> {
    let mut rows = 0;
    for &(spec, len) in columns {
        let data = take(c, len)?;
        let n = if spec & DEFLATED != 0 {
            budget.items.compressed_part()?;
            let mut inflated = Inflate::new(data, &mut budget.inflated);
            values(&mut inflated, spec, &budget.items)?
        } else {
            values(&mut { data }, spec, &budget.items)?
        };
        rows = rows.max(n);
    }
    budget.items.spend(rows)?;
    Ok(rows)
}

/// How many values a column describes, read to its end: the sum of its
/// runs' lengths; an error once past the items left.
fn values<S: Source>(col: &mut S, spec: u64, items: &Items) -> Result<u64, InflateError> {
    let mut n: u64 = 0;
    let mut add = |k: u64| {
        n = n.saturating_add(k);
        items.allow(n)
    };
    match spec & COLUMN_TYPE {
        VALUE => col.rest()?,
        // Run lengths, alternately of false and true.
        BOOLEAN => {
            while col.peek()?.is_some() {
                add(uleb(col)?)?;
            }
        }
        // Run-length encoded (a delta column is too, of the deltas): a
        // positive count and the value it repeats, a negative count and
        // that many values, or zero and a count of nulls.
        kind => {
            let string = kind == STRING;
            while col.peek()?.is_some() {
                match sleb(col)? {
                    count if count > 0 => {
                        add(count.unsigned_abs())?;
                        skip_value(col, string)?;
                    }
                    count if count < 0 => {
                        add(count.unsigned_abs())?;
                        for _ in 0..count.unsigned_abs() {
                            skip_value(col, string)?;
                        }
                    }
                    _ => add(uleb(col)?)?,
                }
            }
        }
    }
    Ok(n)
}

fn skip_value<S: Source>(col: &mut S, string: bool) -> Result<(), InflateError> {
    if string {
        let len = uleb(col)?;
        return col.skip(len);
    }
    // A signed or unsigned LEB128, whichever the column holds: its bytes.
    for _ in 0..10 {
        if col.byte()? & 0x80 == 0 {
            return Ok(());
        }
    }
    Err(InflateError::Malformed("a number past 64 bits"))
}

fn take<'a>(c: &mut &'a [u8], n: u64) -> Result<&'a [u8], InflateError> {
    let n = usize::try_from(n)
        .ok()
        .filter(|n| *n <= c.len())
        .ok_or(InflateError::Malformed("a length past the end"))?;
    let (taken, rest) = c.split_at(n);
    *c = rest;
    Ok(taken)
}

/// An unsigned LEB128 of at most 64 bits, as the `leb128` crate automerge
/// uses reads one (its structure parser refuses more, never less).
fn uleb<S: Source>(s: &mut S) -> Result<u64, InflateError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let byte = s.byte()?;
        if i == 9 && byte > 1 {
            return Err(InflateError::Malformed("a number past 64 bits"));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    unreachable!("the tenth byte has no continuation bit")
}

/// A signed LEB128 of at most 64 bits, as the `leb128` crate reads one.
fn sleb<S: Source>(s: &mut S) -> Result<i64, InflateError> {
    let mut value: i64 = 0;
    for i in 0..10 {
        let byte = s.byte()?;
        if i == 9 && byte != 0 && byte != 0x7f {
            return Err(InflateError::Malformed("a number past 64 bits"));
        }
        value |= i64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let shift = 7 * (i + 1);
            if shift < 64 && byte & 0x40 != 0 {
                value |= !0 << shift;
            }
            return Ok(value);
        }
    }
    unreachable!("the tenth byte has no continuation bit")
}

/// Bytes read one at a time, from a slice or as they are inflated.
trait Source {
    /// The next byte, not taken; `None` at the end.
    fn peek(&mut self) -> Result<Option<u8>, InflateError>;
    /// Takes the byte [`Source::peek`] returned.
    fn bump(&mut self);

    fn byte(&mut self) -> Result<u8, InflateError> {
        let b = self
            .peek()?
            .ok_or(InflateError::Malformed("a length past the end"))?;
        self.bump();
        Ok(b)
    }

    fn skip(&mut self, n: u64) -> Result<(), InflateError> {
        for _ in 0..n {
            self.byte()?;
        }
        Ok(())
    }

    /// Reads to the end.
    fn rest(&mut self) -> Result<(), InflateError> {
        while self.peek()?.is_some() {
            self.bump();
        }
        Ok(())
    }
}

impl Source for &[u8] {
    fn peek(&mut self) -> Result<Option<u8>, InflateError> {
        Ok(self.first().copied())
    }

    fn bump(&mut self) {
        *self = &self[1..];
    }

    fn skip(&mut self, n: u64) -> Result<(), InflateError> {
        take(self, n).map(drop)
    }

    fn rest(&mut self) -> Result<(), InflateError> {
        *self = &[];
        Ok(())
    }
}

/// The next `left` bytes of `s`.
struct Take<'s, S> {
    s: &'s mut S,
    left: u64,
}

impl<S: Source> Source for Take<'_, S> {
    fn peek(&mut self) -> Result<Option<u8>, InflateError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.s
            .peek()?
            .map(Some)
            .ok_or(InflateError::Malformed("a length past the end"))
    }

    fn bump(&mut self) {
        self.left -= 1;
        self.s.bump();
    }

    fn skip(&mut self, n: u64) -> Result<(), InflateError> {
        if n > self.left {
            return Err(InflateError::Malformed("a length past the end"));
        }
        self.left -= n;
        self.s.skip(n)
    }

    fn rest(&mut self) -> Result<(), InflateError> {
        self.skip(self.left)
    }
}

/// Deflated bytes, inflated as they are read, each taken from the
/// bytes a budget lets inflate: [`InflateError::TooLarge`] once past them
/// (at most a buffer's worth is inflated past them).
struct Inflate<'a, 'b> {
    decoder: flate2::read::DeflateDecoder<&'a [u8]>,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    budget: &'b mut Inflated,
}

impl<'a, 'b> Inflate<'a, 'b> {
    fn new(data: &'a [u8], budget: &'b mut Inflated) -> Self {
        Self {
            decoder: flate2::read::DeflateDecoder::new(data),
            buf: vec![0; 16 * 1024],
            pos: 0,
            end: 0,
            budget,
        }
    }

    /// Inflates more once what was inflated is read; false at the end.
    fn fill(&mut self) -> Result<bool, InflateError> {
        if self.pos < self.end {
            return Ok(true);
        }
        let n = self
            .decoder
            .read(&mut self.buf)
            .map_err(|_| InflateError::Malformed("bad compressed data"))?;
        self.budget.spend(n as u64)?;
        self.pos = 0;
        self.end = n;
        Ok(n > 0)
    }
}

impl Source for Inflate<'_, '_> {
    fn peek(&mut self) -> Result<Option<u8>, InflateError> {
        Ok(if self.fill()? {
            Some(self.buf[self.pos])
        } else {
            None
        })
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    fn skip(&mut self, mut n: u64) -> Result<(), InflateError> {
        while n > 0 {
            if !self.fill()? {
                return Err(InflateError::Malformed("a length past the end"));
            }
            let k = n.min((self.end - self.pos) as u64);
            self.pos += k as usize;
            n -= k;
        }
        Ok(())
    }

    fn rest(&mut self) -> Result<(), InflateError> {
        while self.fill()? {
            self.pos = self.end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use automerge::transaction::Transactable;
    use automerge::{Automerge, ObjType, ROOT, ScalarValue};

    use super::*;

    /// An action column's specification (column 2, run-length encoded
    /// integers), and a key-string column's (column 1, strings).
    const ACTION: u64 = (2 << 4) | 2;
    const KEY_STR: u64 = (1 << 4) | STRING;
    const INSERT: u64 = (3 << 4) | BOOLEAN;

    fn deflated(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn zeros(len: usize) -> Vec<u8> {
        deflated(&vec![0u8; len])
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

    fn sleb_bytes(mut v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0) {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    /// A change body (no dependencies, a 16-byte actor, no message) with
    /// the given op columns.
    fn change_body(columns: &[(u64, Vec<u8>)]) -> Vec<u8> {
        change_by(&[7; 16], columns)
    }

    /// A change body by `actor`, otherwise as [`change_body`].
    fn change_by(actor: &[u8], columns: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut data = vec![0];
        leb(&mut data, actor.len() as u64);
        data.extend(actor);
        data.extend([1, 1, 0, 0, 0]); // seq, start op, time, message, other actors
        leb(&mut data, columns.len() as u64);
        for (spec, bytes) in columns {
            leb(&mut data, *spec);
            leb(&mut data, bytes.len() as u64);
        }
        for (_, bytes) in columns {
            data.extend(bytes);
        }
        data
    }

    /// A document chunk with no actors or heads, the given change columns
    /// and no op columns.
    fn document_with(columns: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut data = Vec::new();
        leb(&mut data, 0); // actors
        leb(&mut data, 0); // heads
        leb(&mut data, columns.len() as u64);
        for (spec, bytes) in columns {
            leb(&mut data, *spec);
            leb(&mut data, bytes.len() as u64);
        }
        leb(&mut data, 0); // op columns
        for (_, bytes) in columns {
            data.extend(bytes);
        }
        chunk(DOCUMENT, &data)
    }

    /// A document chunk whose one change column is `column` deflated.
    fn document_deflating(spec: u64, column: &[u8]) -> Vec<u8> {
        document_with(&[(spec | DEFLATED, deflated(column))])
    }

    /// A document chunk with one deflated raw-value column: `len` zeros.
    fn document_of_zeros(len: usize) -> Vec<u8> {
        document_with(&[((1 << 4) | VALUE | DEFLATED, zeros(len))])
    }

    /// One run: `value` repeated `count` times.
    fn run(count: i64, value: u64) -> Vec<u8> {
        let mut out = sleb_bytes(count);
        leb(&mut out, value);
        out
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

    fn checked(bytes: &[u8]) -> Budget {
        let mut budget = Budget::default();
        check(bytes, &mut budget).unwrap();
        budget
    }

    /// Items counted, less the fixed cost of compressed parts.
    fn decoded(budget: &Budget) -> u64 {
        budget.items() - budget.compressed_parts() * COMPRESSED_PART_ITEMS
    }

    #[test]
    fn what_automerge_itself_writes_passes_and_is_counted() {
        let doc = edited(50);
        let saved = checked(&doc.save());
        assert!(saved.inflated() > 0, "its deflated columns count");
        assert!(saved.compressed_parts() > 0);
        // 50 changes and 50 ops, and the lists that describe them.
        assert!((100..200).contains(&decoded(&saved)), "{saved:?}");
        assert_eq!(saved.actors_and_changes(), (1, 50));
        // Changes as sync sends them (uncompressed), one after another:
        // each its op, its column list and its dependency.
        let changes: Vec<u8> = doc
            .get_changes(&[])
            .iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect();
        let sent = checked(&changes);
        assert_eq!(sent.inflated(), 0, "nothing in them is compressed");
        assert!((100..1_000).contains(&sent.items()), "{sent:?}");
        assert_eq!(sent.actors_and_changes(), (1, 50));
        // Compressed change chunks (what `Change::bytes` writes).
        let mut budget = Budget::default();
        for mut c in doc.get_changes(&[]) {
            check(c.bytes().as_ref(), &mut budget).unwrap();
        }
        assert_eq!(budget.compressed_parts(), 50);
        assert_eq!(decoded(&budget), sent.items());
    }

    #[test]
    fn what_automerge_js_writes_passes_and_loads() {
        // Written by automerge JS 3.5.0, the writer automerge-repo clients
        // use (fixtures/automerge-js-3.5.0/generate.mjs): two actors'
        // map, list, text, counter and nested edits, merged; its save, its
        // 404 changes, and what its sync sends a peer that has nothing.
        let dir = "fixtures/automerge-js-3.5.0";
        let saved = include_bytes!("../fixtures/automerge-js-3.5.0/saved.bin");
        let changes = include_bytes!("../fixtures/automerge-js-3.5.0/changes.bin");
        let synced = include_bytes!("../fixtures/automerge-js-3.5.0/sync-changes.bin");
        for (name, bytes) in [
            ("saved", &saved[..]),
            ("changes", changes),
            ("synced", synced),
        ] {
            assert_eq!(check_sync_changes(bytes), Ok(()), "{dir}/{name}.bin");
            let (actors, changes) = checked(bytes).actors_and_changes();
            assert!(actors >= 2 && changes >= 404, "{name}: {actors}, {changes}");
        }
        // The bytes are what automerge 0.12 reads as one document.
        let doc = Automerge::load(saved).unwrap();
        let mut from_changes = Automerge::new();
        from_changes.load_incremental(changes).unwrap();
        assert_eq!(doc.get_heads(), from_changes.get_heads());
        assert_eq!(doc.get_changes(&[]).len(), 404);
    }

    #[test]
    fn runs_count_the_values_they_stand_for_as_automerge_does() {
        // 100,000 equal values in one list: a few hundred bytes that
        // automerge reads as 100,000 operations.
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        let list = tx.put_object(ROOT, "list", ObjType::List).unwrap();
        // One splice: inserting one at a time is quadratic in a debug build.
        tx.splice(&list, 0, 0, (0..100_000).map(|_| ScalarValue::Null))
            .unwrap();
        tx.commit();
        let change = doc.get_last_local_change().unwrap();
        assert_eq!(change.len(), 100_001);
        let bytes = change.raw_bytes().to_vec();
        assert!(bytes.len() < 1_000, "{} bytes", bytes.len());
        let counted = checked(&bytes).items();
        assert!((100_001..100_100).contains(&counted), "{counted}");
        // Past the items left, refused; as a saved document too.
        let mut budget = Budget::within(MAX_INFLATED_BYTES, 50_000);
        assert_eq!(
            check(&bytes, &mut budget),
            Err(InflateError::TooManyItems { limit: 50_000 })
        );
        let mut budget = Budget::within(MAX_INFLATED_BYTES, 50_000);
        assert_eq!(
            check(&doc.save(), &mut budget),
            Err(InflateError::TooManyItems { limit: 50_000 })
        );
        // Strings in runs (a map's keys) are read past, not counted as
        // runs.
        let keys = edited(300).save();
        assert!((600..700).contains(&decoded(&checked(&keys))));
    }

    #[test]
    fn a_run_asking_for_more_items_than_a_message_may_is_refused_unwalked() {
        let huge = 1_i64 << 60;
        let mut nulls = vec![0];
        leb(&mut nulls, 1 << 60);
        let mut booleans = Vec::new();
        leb(&mut booleans, 0);
        leb(&mut booleans, 1 << 60);
        let mut strings = sleb_bytes(huge);
        strings.extend([3, b'k', b'e', b'y']);
        let bombs = [
            (ACTION, run(huge, 1)),
            (ACTION, run(i64::MAX, 1)),
            (ACTION, nulls),
            // A literal run: the values it announces are counted before
            // they are read.
            (ACTION, sleb_bytes(i64::MIN)),
            (INSERT, booleans),
            (KEY_STR, strings),
        ];
        for (spec, column) in bombs {
            let body = change_body(&[(spec, column.clone())]);
            for bytes in [
                chunk(CHANGE, &body),
                chunk(COMPRESSED_CHANGE, &deflated(&body)),
                document_with(&[(spec, column.clone())]),
                document_deflating(spec, &column),
            ] {
                let mut budget = Budget::default();
                assert_eq!(
                    check(&bytes, &mut budget),
                    Err(InflateError::TooManyItems { limit: MAX_ITEMS }),
                    "{spec:b}: {column:?}"
                );
            }
        }
        // The entries of lists count too: a change's dependencies, 32
        // bytes each, a million in a few KiB once deflated; a document's
        // actors, a byte each.
        let mut deps = Vec::new();
        leb(&mut deps, 1 << 40);
        deps.extend(vec![0; 32 << 20]);
        let mut actors = Vec::new();
        leb(&mut actors, 1 << 40);
        actors.extend(vec![0; 1 << 20]);
        for bytes in [
            chunk(COMPRESSED_CHANGE, &deflated(&deps)),
            chunk(DOCUMENT, &actors),
        ] {
            // Past what the compressed part itself costs.
            let limit = COMPRESSED_PART_ITEMS + (1 << 10);
            let mut budget = Budget::within(MAX_INFLATED_BYTES, limit);
            assert_eq!(
                check(&bytes, &mut budget),
                Err(InflateError::TooManyItems { limit })
            );
        }
    }

    #[test]
    fn a_compressed_change_inflating_past_the_budget_is_refused_early() {
        // 16 MiB of zeros in about 16 KiB.
        let bomb = chunk(COMPRESSED_CHANGE, &zeros(16 << 20));
        assert!(bomb.len() < 32 << 10);
        let mut budget = Budget::within(1 << 20, MAX_ITEMS);
        assert_eq!(
            check(&bomb, &mut budget),
            Err(InflateError::TooLarge { limit: 1 << 20 })
        );
        // Zeros read as an empty change with extra bytes.
        let mut budget = Budget::within(17 << 20, MAX_ITEMS);
        check(&bomb, &mut budget).unwrap();
        assert_eq!(budget.inflated(), 16 << 20);
    }

    #[test]
    fn a_document_column_inflating_past_the_budget_is_refused() {
        let doc = document_of_zeros(8 << 20);
        let mut budget = Budget::within(4 << 20, MAX_ITEMS);
        assert!(matches!(
            check(&doc, &mut budget),
            Err(InflateError::TooLarge { .. })
        ));
        // The budget is one for all the chunks of a message.
        let two = [document_of_zeros(3 << 20), document_of_zeros(3 << 20)].concat();
        let mut budget = Budget::within(4 << 20, MAX_ITEMS);
        assert!(check(&two, &mut budget).is_err());
        let mut budget = Budget::within(6 << 20, MAX_ITEMS);
        check(&two, &mut budget).unwrap();
    }

    #[test]
    fn bytes_that_are_not_chunks_are_refused() {
        let good = chunk(CHANGE, &change_body(&[]));
        checked(&good);
        for bad in [
            b"not a chunk".to_vec(),
            good[..good.len() - 1].to_vec(),
            chunk(9, b""),
            chunk(COMPRESSED_CHANGE, b"\xff\xff not deflate"),
            // More columns than the chunk has bytes.
            chunk(DOCUMENT, &[0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            // A length LEB128 past 64 bits.
            [&MAGIC[..], &[0; 4], &[CHANGE], &[0xff; 11]].concat(),
            // A column whose run stops short of its value.
            chunk(CHANGE, &change_body(&[(ACTION, vec![5])])),
            // A compressed column in a change.
            chunk(
                CHANGE,
                &change_body(&[(ACTION | DEFLATED, deflated(&run(2, 1)))]),
            ),
        ] {
            let mut budget = Budget::default();
            assert!(
                matches!(check(&bad, &mut budget), Err(InflateError::Malformed(_))),
                "{bad:?}"
            );
        }
        checked(&[]);
        // Values are read past whether signed or unsigned.
        checked(&chunk(CHANGE, &change_body(&[(ACTION, run(1, u64::MAX))])));
    }

    #[test]
    fn a_sync_message_is_refused_past_the_bound_or_where_it_stops_reading_as_chunks() {
        let bomb = chunk(CHANGE, &change_body(&[(ACTION, run(1 << 40, 1))]));
        assert_eq!(
            check_sync_changes(&bomb),
            Err(InflateError::TooManyItems { limit: MAX_ITEMS })
        );
        // Automerge inflates a compressed change whole before it reads it:
        // one that stops reading early is refused, not let through.
        let mut body = change_body(&[(ACTION, vec![5])]);
        body.extend(vec![0; 4 << 20]);
        let early = chunk(COMPRESSED_CHANGE, &deflated(&body));
        assert!(early.len() < 64 << 10);
        assert!(matches!(
            check_sync_changes(&early),
            Err(InflateError::Malformed(_))
        ));
        // Automerge goes on to the chunks after one it cannot read: so
        // does not the check, which refuses the message.
        let good = chunk(CHANGE, &change_body(&[]));
        for unreadable in [
            b"garbage".to_vec(),
            b"\x85\x6f\x4a".to_vec(),
            chunk(CHANGE, &change_body(&[((20 << 4) | 2, vec![5])])),
        ] {
            let message = [good.clone(), unreadable, bomb.clone()].concat();
            assert!(
                matches!(
                    check_sync_changes(&message),
                    Err(InflateError::Malformed(_))
                ),
                "{message:?}"
            );
        }
        assert_eq!(check_sync_changes(&good), Ok(()));
    }

    #[test]
    fn changes_times_actors_is_bounded_as_automerge_keeps_clocks() {
        // 40,000 changes, each by its own actor: about 1.4 MB that
        // automerge would keep 1.6 billion clock entries for.
        let by_each: Vec<u8> = (0..40_000u32)
            .flat_map(|i| chunk(CHANGE, &change_by(&i.to_be_bytes(), &[])))
            .collect();
        assert!(by_each.len() < 2 << 20);
        assert_eq!(
            check_sync_changes(&by_each),
            Err(InflateError::TooManyClockEntries {
                limit: MAX_CLOCK_ENTRIES
            })
        );
        // The same changes by a few actors pass.
        let by_few: Vec<u8> = (0..40_000u32)
            .flat_map(|i| chunk(CHANGE, &change_by(&(i % 16).to_be_bytes(), &[])))
            .collect();
        let mut budget = Budget::default();
        check(&by_few, &mut budget).unwrap();
        assert_eq!(budget.actors_and_changes(), (16, 40_000));
        // Actors alone are bounded too (a document listing them).
        let mut actors = Vec::new();
        leb(&mut actors, MAX_ACTORS + 1);
        for i in 0..=MAX_ACTORS as u32 {
            actors.push(4);
            actors.extend(i.to_be_bytes());
        }
        assert_eq!(
            check_sync_changes(&chunk(DOCUMENT, &actors)),
            Err(InflateError::TooManyActors { limit: MAX_ACTORS })
        );
    }

    #[test]
    fn compressed_parts_and_columns_cost_more_than_their_bytes() {
        // Hundreds of empty deflated columns: a few KiB, each costing an
        // inflater.
        let empty = deflated(b"");
        let columns: Vec<_> = (0..300)
            .map(|i| (((i + 1) << 4) | VALUE | DEFLATED, empty.clone()))
            .collect();
        assert_eq!(
            check_sync_changes(&document_with(&columns)),
            Err(InflateError::TooManyItems { limit: MAX_ITEMS })
        );
        // A few dozen, as automerge writes, pass.
        check_sync_changes(&document_with(&columns[..30])).unwrap();
        // More columns than automerge writes are not read.
        let columns: Vec<_> = (0..2_000).map(|i| ((i << 4) | VALUE, Vec::new())).collect();
        assert!(matches!(
            check_sync_changes(&document_with(&columns)),
            Err(InflateError::Malformed(_))
        ));
    }

    #[test]
    fn numbers_read_as_the_leb128_crate_reads_them() {
        for v in [0, 1, 63, 64, -1, -64, -65, 1 << 40, i64::MAX, i64::MIN] {
            assert_eq!(sleb(&mut &sleb_bytes(v)[..]), Ok(v), "{v}");
        }
        for v in [0, 127, 128, 1 << 40, u64::MAX] {
            let mut bytes = Vec::new();
            leb(&mut bytes, v);
            assert_eq!(uleb(&mut &bytes[..]), Ok(v), "{v}");
        }
        // Padded with continuation bytes, as the crate accepts.
        assert_eq!(uleb(&mut &[0x81, 0x80, 0x00][..]), Ok(1));
        assert_eq!(sleb(&mut &[0xff, 0xff, 0x7f][..]), Ok(-1));
        // Past 64 bits.
        let past = |last: u8| [[0xff; 9].as_slice(), &[last]].concat();
        assert!(uleb(&mut &past(2)[..]).is_err());
        assert!(sleb(&mut &past(1)[..]).is_err());
    }
}
