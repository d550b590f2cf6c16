//! The bytes of `records.log`: the file header, entry frames with their
//! checksums, and a buffered reader that walks frames with positional reads.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! header  "onionlog" (8 bytes) | format version u32 (= 3)
//! frame   kind u8 | body length u32 | body | BLAKE2b-128(kind | length | body)
//! kind 1  record entry: seq u64 | expires u64 (bit 63 set: a release) | leaf hash [32] | name length u8 |
//!         record length u32 | attestation length u32 | name | record | attestation
//! kind 2  seq marker: seq u64 (the highest seq applied, kept across compaction)
//! kind 3  signed head: the head's canonical JSON (PROTOCOL.md §10.4)
//! kind 4  packed record entry: as kind 1, the record and attestation packed
//! kind 5  packed signed head: the head packed
//! ```
//!
//! Texts are written packed ([`super::packed`]: about half the bytes)
//! whenever they unpack to exactly the same text, and as text otherwise.
//! Version 2 differs only in knowing no packed kinds: a version 2 log is
//! read as it is, marked version 3 when opened, before anything is
//! appended to it ([`check_header`]), and its frames are packed when
//! compaction copies them.
//!
//! A record entry starts with what the Merkle tree needs of it (seq,
//! expires, the leaf hash of §10.2; a release, PROTOCOL.md §12.3, is marked
//! by the top bit of `expires`, which no valid record uses since every
//! integer is below 2^53), so the tree reads 53 bytes of a frame
//! instead of the whole record ([`read_leaf_at`]); what the index and the
//! garbage count need of it is a [`Summary`] ([`read_summary_at`]).
//!
//! The checksum is libsodium's `crypto_generichash` (BLAKE2b, unkeyed)
//! cut to 16 bytes: it catches torn writes and flipped bits, not a person
//! who can rewrite the file. This module does not know which entries are
//! live, keeps no index and takes no locks; [`super`] does that.

use super::entry::{live_until, Entry};
use super::packed::{self, Context};
use crate::head::SignedHead;
use crate::merkle::Hash;
use crate::name::RegisteredName;
use sodiumoxide::crypto::generichash;
use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// What a log starts with, so a wrong file is refused rather than "repaired".
const MAGIC: &[u8; 8] = b"onionlog";
/// The frame layout this code writes and reads; bumped when it changes.
const VERSION: u32 = 3;
/// The one older layout this code reads: it lacks only the packed kinds.
const UNPACKED_VERSION: u32 = 2;
/// Bytes of the file header; the first entry starts here.
pub(super) const HEADER_LEN: u64 = 12;
/// Kind byte of a record entry.
const KIND_RECORD: u8 = 1;
/// Kind byte of a seq marker.
const KIND_SEQ: u8 = 2;
/// Kind byte of a signed head.
const KIND_SIGNED_HEAD: u8 = 3;
/// Kind byte of a record entry with packed texts.
const KIND_PACKED_RECORD: u8 = 4;
/// Kind byte of a packed signed head.
const KIND_PACKED_HEAD: u8 = 5;

/// True for the kind byte of a record entry, packed or not.
fn is_record_kind(kind: u8) -> bool {
    matches!(kind, KIND_RECORD | KIND_PACKED_RECORD)
}

/// Bytes before a frame's body: kind and body length.
const FRAME_HEAD: usize = 5;
/// Bytes of a frame's checksum.
const SUM_LEN: usize = 16;
/// The bit of a stored `expires` that marks a release.
const RELEASE_BIT: u64 = 1 << 63;

/// Splits a stored `expires` into the record's `expires` and whether it is
/// a release.
fn split_expires(stored: u64) -> (u64, bool) {
    (stored & !RELEASE_BIT, stored & RELEASE_BIT != 0)
}

/// Largest body accepted; bounds what a corrupt length can make us allocate
/// (records are at most 8 KiB, so this leaves ample room).
const MAX_BODY: usize = 1 << 20;

/// The header a log must start with.
pub(super) fn header() -> [u8; HEADER_LEN as usize] {
    let mut bytes = [0u8; HEADER_LEN as usize];
    bytes[..8].copy_from_slice(MAGIC);
    bytes[8..].copy_from_slice(&VERSION.to_le_bytes());
    bytes
}

/// Checks a log's first bytes: `Ok(true)` for a version 2 log, whose
/// header must be rewritten (to [`header`]) before packed frames are
/// appended, so that an older program refuses the log instead of cutting
/// the frames it cannot read; `Err` says, for a person, why this is not a
/// log this program can read.
pub(super) fn check_header(bytes: &[u8; HEADER_LEN as usize]) -> Result<bool, HeaderError> {
    if bytes[..8] != MAGIC[..] {
        return Err(HeaderError::Magic);
    }
    match u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) {
        VERSION => Ok(false),
        UNPACKED_VERSION => Ok(true),
        version => Err(HeaderError::Version(version)),
    }
}

/// Why a file is not a log this program can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Not an onions record log at all: move it away.
    Magic,
    /// A log of another format version: use a matching onions.
    Version(u32),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Magic => {
                write!(f, "is not an onions record log (wrong magic); move it away")
            }
            HeaderError::Version(version) => write!(
                f,
                "has log format version {version}, this program reads {UNPACKED_VERSION} and {VERSION}; use a matching onions"
            ),
        }
    }
}

impl std::error::Error for HeaderError {}

/// BLAKE2b-128 of `bytes`: the per-frame checksum.
fn checksum(bytes: &[u8]) -> io::Result<[u8; SUM_LEN]> {
    let digest = generichash::hash(bytes, Some(SUM_LEN), None)
        .map_err(|()| io::Error::other("libsodium could not compute a BLAKE2b checksum"))?;
    let mut sum = [0u8; SUM_LEN];
    sum.copy_from_slice(digest.as_ref());
    Ok(sum)
}

/// Appends one frame (kind, length, body, checksum) to `out`.
fn push_frame(kind: u8, body: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    if body.len() > MAX_BODY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a log entry of {} bytes is over the {MAX_BODY}-byte limit",
                body.len()
            ),
        ));
    }
    let start = out.len();
    out.push(kind);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    let sum = checksum(&out[start..])?;
    out.extend_from_slice(&sum);
    Ok(())
}

/// Bytes of a record entry's body besides its name and texts: seq,
/// expiry, leaf hash, the name's length and the texts' lengths.
const RECORD_BODY_FIXED: usize = 8 + 8 + 32 + 1 + 4 + 4;

/// Bytes of a record's log frame besides its name, record text and
/// attestation text: what the disk costs a record over what it says (the
/// benchmark's disk profile shows it).
pub const RECORD_FRAMING: usize = NAME_AT + SUM_LEN;

/// Appends the frame of a record entry to `out`, its texts packed when
/// they pack; returns its length.
pub(super) fn push_record(entry: &Entry, out: &mut Vec<u8>) -> io::Result<u64> {
    match packed_texts(entry) {
        Some([record, attestation]) => {
            push_record_frame(KIND_PACKED_RECORD, entry, [&record, &attestation], out)
        }
        None => push_text_record(entry, out),
    }
}

/// Appends the frame of a record entry with its texts as text, as format
/// version 2 wrote every entry; returns its length.
pub(super) fn push_text_record(entry: &Entry, out: &mut Vec<u8>) -> io::Result<u64> {
    let texts = [entry.record.as_bytes(), entry.attestation.as_bytes()];
    push_record_frame(KIND_RECORD, entry, texts, out)
}

/// Bytes the record and attestation of `entry` take in its log frame,
/// packed when they pack: what the benchmark's disk profile shows.
pub fn stored_text_lens(entry: &Entry) -> [usize; 2] {
    packed_texts(entry).map_or([entry.record.len(), entry.attestation.len()], |texts| {
        texts.map(|text| text.len())
    })
}

/// `entry`'s record and attestation packed, or `None` when either does
/// not pack (both are then stored as text).
fn packed_texts(entry: &Entry) -> Option<[Vec<u8>; 2]> {
    let context = Context::entry(&entry.name, entry.seq);
    let record = packed::pack(&entry.record, &context)?;
    Some([record, packed::pack(&entry.attestation, &context)?])
}

/// Appends a record entry frame of `kind` whose texts are `texts` (record,
/// attestation) as they are to be stored; returns its length.
fn push_record_frame(
    kind: u8,
    entry: &Entry,
    [record, attestation]: [&[u8]; 2],
    out: &mut Vec<u8>,
) -> io::Result<u64> {
    let name = entry.name.as_str().as_bytes();
    let too_long = || io::Error::new(io::ErrorKind::InvalidInput, "a log entry is too long");
    let mut body =
        Vec::with_capacity(RECORD_BODY_FIXED + name.len() + record.len() + attestation.len());
    body.extend_from_slice(&entry.seq.to_le_bytes());
    let mark = if entry.release { RELEASE_BIT } else { 0 };
    body.extend_from_slice(&(entry.expires | mark).to_le_bytes());
    body.extend_from_slice(&entry.leaf);
    body.push(u8::try_from(name.len()).map_err(|_| too_long())?);
    for part in [record, attestation] {
        let len = u32::try_from(part.len()).map_err(|_| too_long())?;
        body.extend_from_slice(&len.to_le_bytes());
    }
    for part in [name, record, attestation] {
        body.extend_from_slice(part);
    }
    let start = out.len();
    push_frame(kind, &body, out)?;
    Ok((out.len() - start) as u64)
}

/// Appends a seq marker saying `seq` was applied to `out`.
pub(super) fn push_seq(seq: u64, out: &mut Vec<u8>) -> io::Result<()> {
    push_frame(KIND_SEQ, &seq.to_le_bytes(), out)
}

/// Appends a signed head, given as its canonical JSON, to `out`, packed
/// when it packs; returns the frame's length.
pub(super) fn push_signed_head(text: &str, out: &mut Vec<u8>) -> io::Result<u64> {
    let Some(bytes) = packed::pack(text, &Context::default()) else {
        return push_text_head(text, out);
    };
    let start = out.len();
    push_frame(KIND_PACKED_HEAD, &bytes, out)?;
    Ok((out.len() - start) as u64)
}

/// Appends a signed head as its canonical JSON, as format version 2 wrote
/// every head; returns the frame's length.
pub(super) fn push_text_head(text: &str, out: &mut Vec<u8>) -> io::Result<u64> {
    let start = out.len();
    push_frame(KIND_SIGNED_HEAD, text.as_bytes(), out)?;
    Ok((out.len() - start) as u64)
}

/// The frame to keep for `frame` when a log is rewritten: a record entry
/// stored as text is packed if it packs (how a version 2 log's entries
/// come to be packed); any other frame is kept as it is.
pub(super) fn repacked(frame: &Frame) -> io::Result<Cow<'_, [u8]>> {
    if frame.raw[0] != KIND_RECORD {
        return Ok(frame.raw().into());
    }
    let Content::Record(body) = frame.content() else {
        return Err(corrupt(frame.offset, "unreadable record entry"));
    };
    let entry = body
        .into_entry()
        .ok_or_else(|| corrupt(frame.offset, "unreadable record entry"))?;
    let mut out = Vec::with_capacity(frame.raw.len());
    push_record(&entry, &mut out)?;
    Ok(out.into())
}

/// Frame length from a frame's first bytes, or `None` if the length is
/// beyond [`MAX_BODY`] (only corruption writes that).
fn frame_len(head: &[u8]) -> Option<usize> {
    let len: [u8; 4] = head.get(1..FRAME_HEAD)?.try_into().ok()?;
    let body = u32::from_le_bytes(len) as usize;
    (body <= MAX_BODY).then_some(FRAME_HEAD + body + SUM_LEN)
}

/// The length of the whole frame that starts at `bytes[0]`, if a frame of
/// a known kind with a checksum that holds starts there: how replay finds
/// valid entries after a damaged one.
pub(super) fn frame_at(bytes: &[u8]) -> io::Result<Option<usize>> {
    if !matches!(
        bytes.first(),
        Some(&(KIND_RECORD | KIND_SEQ | KIND_SIGNED_HEAD | KIND_PACKED_RECORD | KIND_PACKED_HEAD))
    ) {
        return Ok(None);
    }
    let Some(len) = frame_len(bytes) else {
        return Ok(None);
    };
    match bytes.get(..len) {
        Some(raw) if sum_holds(raw)? => Ok(Some(len)),
        _ => Ok(None),
    }
}

/// True when a whole frame's checksum matches its contents.
fn sum_holds(raw: &[u8]) -> io::Result<bool> {
    let Some((content, sum)) = raw.split_last_chunk::<SUM_LEN>() else {
        return Ok(false);
    };
    Ok(checksum(content)? == *sum)
}

/// One whole frame whose checksum held, with where it starts in the file.
pub(super) struct Frame {
    /// Byte offset of the frame in the log.
    pub(super) offset: u64,
    /// The frame's bytes, checksum included (at least `FRAME_HEAD + SUM_LEN`).
    raw: Vec<u8>,
}

/// What a checked frame holds.
pub(super) enum Content<'a> {
    /// A record entry.
    Record(RecordBody<'a>),
    /// A seq marker.
    Seq(u64),
    /// A signed head, not yet unpacked or parsed (catch-up passes over
    /// heads without reading them).
    SignedHead(StoredHead<'a>),
    /// A known kind whose body does not parse: corruption.
    Malformed,
    /// A kind this version does not know (a newer program wrote it).
    Unknown(u8),
}

impl Frame {
    /// Length of the frame in bytes.
    pub(super) fn len(&self) -> u64 {
        self.raw.len() as u64
    }

    /// The frame's bytes exactly as stored, for copying during compaction.
    pub(super) fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Decodes the body according to the kind byte.
    pub(super) fn content(&self) -> Content<'_> {
        let body = &self.raw[FRAME_HEAD..self.raw.len() - SUM_LEN];
        match self.raw[0] {
            kind @ (KIND_RECORD | KIND_PACKED_RECORD) => {
                RecordBody::parse(body, kind == KIND_PACKED_RECORD)
                    .map_or(Content::Malformed, Content::Record)
            }
            KIND_SEQ => body.try_into().map_or(Content::Malformed, |seq| {
                Content::Seq(u64::from_le_bytes(seq))
            }),
            KIND_SIGNED_HEAD => std::str::from_utf8(body).map_or(Content::Malformed, |text| {
                Content::SignedHead(StoredHead::Plain(text))
            }),
            KIND_PACKED_HEAD => Content::SignedHead(StoredHead::Packed(body)),
            kind => Content::Unknown(kind),
        }
    }
}

/// A signed head as its frame stores it.
pub(super) enum StoredHead<'a> {
    /// Its canonical JSON.
    Plain(&'a str),
    /// Packed ([`super::packed`]).
    Packed(&'a [u8]),
}

impl StoredHead<'_> {
    /// The head, unpacked and parsed; `None` if packed bytes do not unpack
    /// or the text does not parse (corruption the checksum missed).
    pub(super) fn head(&self) -> Option<SignedHead> {
        match *self {
            StoredHead::Plain(text) => SignedHead::from_json(text).ok(),
            StoredHead::Packed(bytes) => {
                let text = packed::unpack(bytes, &Context::default())?;
                SignedHead::from_json(&text).ok()
            }
        }
    }
}

/// The fields of a record entry, borrowed from its frame; every field has
/// been checked (the name spelled per protocol §1, the texts UTF-8).
pub(super) struct RecordBody<'a> {
    /// Attestation seq.
    pub(super) seq: u64,
    /// The record's expiry, Unix seconds.
    pub(super) expires: u64,
    /// True for a release.
    pub(super) release: bool,
    /// The leaf hash of the record at its seq (PROTOCOL.md §10.2).
    pub(super) leaf: Hash,
    /// The registered name.
    pub(super) name: RegisteredName,
    /// The record and attestation as stored.
    pub(super) texts: Texts<'a>,
}

/// A record entry's record and attestation, as its frame stores them.
pub(super) enum Texts<'a> {
    /// Canonical JSON, checked to be UTF-8.
    Plain {
        /// The record.
        record: &'a str,
        /// The attestation.
        attestation: &'a str,
    },
    /// Packed ([`super::packed`]), unpacked when read.
    Packed {
        /// The record.
        record: &'a [u8],
        /// The attestation.
        attestation: &'a [u8],
    },
}

/// Splits a little-endian u64 off the front of `bytes`.
fn take_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (first, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*first), rest))
}

/// Splits a little-endian u32, as a length, off the front of `bytes`.
fn take_len(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (first, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*first) as usize, rest))
}

impl<'a> RecordBody<'a> {
    /// Parses a record body, whose texts are `packed` or not; `None` if any
    /// length or field is wrong.
    fn parse(body: &'a [u8], packed: bool) -> Option<Self> {
        let (seq, rest) = take_u64(body)?;
        let (stored, rest) = take_u64(rest)?;
        let (expires, release) = split_expires(stored);
        let (leaf, rest) = rest.split_first_chunk::<32>()?;
        let (&name_len, rest) = rest.split_first()?;
        let (record_len, rest) = take_len(rest)?;
        let (attestation_len, rest) = take_len(rest)?;
        let (name, rest) = rest.split_at_checked(usize::from(name_len))?;
        let (record, attestation) = rest.split_at_checked(record_len)?;
        if attestation.len() != attestation_len {
            return None;
        }
        let texts = if packed {
            Texts::Packed {
                record,
                attestation,
            }
        } else {
            Texts::Plain {
                record: std::str::from_utf8(record).ok()?,
                attestation: std::str::from_utf8(attestation).ok()?,
            }
        };
        Some(RecordBody {
            seq,
            expires,
            release,
            leaf: *leaf,
            name: RegisteredName::parse(std::str::from_utf8(name).ok()?).ok()?,
            texts,
        })
    }

    /// What packed texts of this entry may refer to.
    fn context(&self) -> Context<'_> {
        Context::entry(&self.name, self.seq)
    }

    /// The canonical record JSON, unpacked if need be; `None` if packed
    /// bytes do not unpack (corruption the checksum missed).
    pub(super) fn record_text(&self) -> Option<Cow<'a, str>> {
        match self.texts {
            Texts::Plain { record, .. } => Some(record.into()),
            Texts::Packed { record, .. } => packed::unpack(record, &self.context()).map(Into::into),
        }
    }

    /// The owned entry, its texts unpacked; `None` if packed bytes do not
    /// unpack.
    pub(super) fn into_entry(self) -> Option<Entry> {
        let (record, attestation) = match self.texts {
            Texts::Plain {
                record,
                attestation,
            } => (record.to_owned(), attestation.to_owned()),
            Texts::Packed {
                record,
                attestation,
            } => {
                let context = self.context();
                (
                    packed::unpack(record, &context)?,
                    packed::unpack(attestation, &context)?,
                )
            }
        };
        Some(Entry {
            seq: self.seq,
            expires: self.expires,
            release: self.release,
            leaf: self.leaf,
            name: self.name,
            record,
            attestation,
        })
    }
}

/// The error for a frame that should be sound (it was checked when written
/// or replayed) but is not: the disk changed under us.
pub(super) fn corrupt(offset: u64, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("log entry at byte {offset} is corrupt ({why}); restart to cut it"),
    )
}

/// Bytes read at once for a frame of unknown length: most record frames
/// fit, so a lookup reads its record with one system call.
const FRAME_GUESS: usize = 1024;

/// Reads and checks the frame at `offset` with positional reads: one read
/// of [`FRAME_GUESS`] bytes, and a second only for a longer frame.
pub(super) fn read_frame_at(file: &File, offset: u64) -> io::Result<Frame> {
    let mut raw = vec![0u8; FRAME_GUESS];
    let got = read_some_at(file, &mut raw, offset)?;
    if got < FRAME_HEAD {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            corrupt(offset, "short"),
        ));
    }
    let len = frame_len(&raw).ok_or_else(|| corrupt(offset, "length"))?;
    raw.resize(len, 0);
    if len > got {
        file.read_exact_at(&mut raw[got..], offset + got as u64)?;
    }
    if !sum_holds(&raw)? {
        return Err(corrupt(offset, "checksum"));
    }
    Ok(Frame { offset, raw })
}

/// Reads up to `buf.len()` bytes at `offset`, fewer only at the end of
/// the file.
fn read_some_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads the record entry at `offset` whole.
pub(super) fn read_entry_at(file: &File, offset: u64) -> io::Result<Entry> {
    match read_frame_at(file, offset)?.content() {
        Content::Record(body) => body
            .into_entry()
            .ok_or_else(|| corrupt(offset, "packed texts")),
        _ => Err(corrupt(offset, "not a record entry")),
    }
}

/// What the index and the garbage count need to know of a stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Summary {
    /// The entry's name.
    pub(super) name: RegisteredName,
    /// The record's expiry, Unix seconds.
    pub(super) expires: u64,
    /// True for a release, which is never in the live set.
    pub(super) release: bool,
    /// Bytes the entry's frame takes in the log.
    pub(super) len: u64,
}

impl Summary {
    /// The summary of a parsed record entry whose frame is `len` bytes.
    pub(super) fn of(body: &RecordBody<'_>, len: u64) -> Summary {
        Summary {
            name: body.name.clone(),
            expires: body.expires,
            release: body.release,
            len,
        }
    }

    /// When the entry leaves the live set (0 for a release).
    pub(super) fn live_until(&self) -> u64 {
        live_until(self.expires, self.release)
    }
}

/// Reads what the index needs of the record entry at `offset`.
pub(super) fn read_summary_at(file: &File, offset: u64) -> io::Result<Summary> {
    let frame = read_frame_at(file, offset)?;
    match frame.content() {
        Content::Record(body) => Ok(Summary::of(&body, frame.len())),
        _ => Err(corrupt(offset, "not a record entry")),
    }
}

/// What the Merkle tree needs of a record entry, read without the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LeafInfo {
    /// The attestation's seq.
    pub(super) seq: u64,
    /// When the entry leaves the live set: the record's expiry, or 0 for a
    /// release (PROTOCOL.md §12.3), which is never in it.
    pub(super) expires: u64,
    /// The leaf hash.
    pub(super) leaf: Hash,
}

impl LeafInfo {
    /// What the tree needs of `entry`, already read whole.
    pub(super) fn of(entry: &Entry) -> LeafInfo {
        LeafInfo {
            seq: entry.seq,
            expires: entry.live_until(),
            leaf: entry.leaf,
        }
    }
}

/// Bytes of a record frame up to the end of its leaf hash.
const LEAF_PART: usize = FRAME_HEAD + 48;

/// Reads seq, expiry and leaf hash of the record entry at `offset` with one
/// small read. The frame's checksum is not checked here: it was when the
/// frame was written or replayed, and the whole frame is checked whenever
/// its record is sent.
pub(super) fn read_leaf_at(file: &File, offset: u64) -> io::Result<LeafInfo> {
    let mut part = [0u8; LEAF_PART];
    file.read_exact_at(&mut part, offset)?;
    if !is_record_kind(part[0]) || frame_len(&part).is_none_or(|len| len < LEAF_PART + SUM_LEN) {
        return Err(corrupt(offset, "not a record entry"));
    }
    let body = &part[FRAME_HEAD..];
    let (seq, rest) = take_u64(body).ok_or_else(|| corrupt(offset, "short"))?;
    let (stored, rest) = take_u64(rest).ok_or_else(|| corrupt(offset, "short"))?;
    let (expires, release) = split_expires(stored);
    let expires = live_until(expires, release);
    let leaf: Hash = rest.try_into().map_err(|_| corrupt(offset, "short leaf"))?;
    Ok(LeafInfo { seq, expires, leaf })
}

/// Bytes of a record frame before its name.
const NAME_AT: usize = FRAME_HEAD + RECORD_BODY_FIXED;

/// True when the record entry at `offset` is for `name`, from one small
/// read (unchecked, as for [`read_leaf_at`]).
pub(super) fn name_is_at(file: &File, offset: u64, name: &RegisteredName) -> io::Result<bool> {
    let want = name.as_str().as_bytes();
    let mut part = vec![0u8; NAME_AT + want.len()];
    file.read_exact_at(&mut part, offset)?;
    if !is_record_kind(part[0]) {
        return Err(corrupt(offset, "not a record entry"));
    }
    Ok(usize::from(part[LEAF_PART]) == want.len() && &part[NAME_AT..] == want)
}

/// The name of the record entry at `offset`, from two small reads
/// (unchecked, as for [`read_leaf_at`]; the name is checked to be one).
pub(super) fn read_name_at(file: &File, offset: u64) -> io::Result<RegisteredName> {
    let mut part = [0u8; NAME_AT];
    file.read_exact_at(&mut part, offset)?;
    if !is_record_kind(part[0]) {
        return Err(corrupt(offset, "not a record entry"));
    }
    let mut name = vec![0u8; usize::from(part[LEAF_PART])];
    file.read_exact_at(&mut name, offset + NAME_AT as u64)?;
    std::str::from_utf8(&name)
        .ok()
        .and_then(|text| RegisteredName::parse(text).ok())
        .ok_or_else(|| corrupt(offset, "name"))
}

/// Why a frame ends the valid part of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bad {
    /// The file ends inside the frame (a torn write).
    Incomplete,
    /// The length field is beyond any frame this program writes.
    Length,
    /// The checksum does not match.
    Checksum,
}

impl Bad {
    /// A few words for the log line.
    pub(super) fn why(self) -> &'static str {
        match self {
            Bad::Incomplete => "incomplete entry",
            Bad::Length => "impossible length",
            Bad::Checksum => "checksum mismatch",
        }
    }
}

/// What [`Reader::next`] found.
pub(super) enum Next {
    /// A frame whose checksum held.
    Frame(Frame),
    /// The end of the range, on a frame boundary.
    End,
    /// A frame that ends the valid log, at [`Reader::pos`].
    Bad(Bad),
}

/// Bytes fetched per positional read while walking frames.
const CHUNK: usize = 64 * 1024;

/// Walks the frames between two offsets of a log, reading in chunks with
/// positional reads so other threads may read and append meanwhile.
pub(super) struct Reader<'a> {
    /// The log.
    file: &'a File,
    /// File offset of `buf[at]`: where the next frame starts.
    pos: u64,
    /// Where to stop (the end of the durable part).
    end: u64,
    /// Bytes read ahead, starting at file offset `pos - at`.
    buf: Vec<u8>,
    /// How much of `buf` was consumed.
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader of the frames from `start` up to `end`.
    pub(super) fn new(file: &'a File, start: u64, end: u64) -> Self {
        Reader {
            file,
            pos: start,
            end,
            buf: Vec::new(),
            at: 0,
        }
    }

    /// Where the next frame starts.
    pub(super) fn pos(&self) -> u64 {
        self.pos
    }

    /// Makes `n` bytes from `pos` available in `buf[at..]`; false if the
    /// range ends first.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        let have = self.buf.len() - self.at;
        if have >= n {
            return Ok(true);
        }
        let left = self.end - self.pos;
        if left < n as u64 {
            return Ok(false);
        }
        let want = (n.max(CHUNK) as u64).min(left) as usize;
        self.buf.drain(..self.at);
        self.at = 0;
        self.buf.resize(want, 0);
        self.file
            .read_exact_at(&mut self.buf[have..], self.pos + have as u64)?;
        Ok(true)
    }

    /// The next frame, the end, or why the log is bad from here on.
    pub(super) fn next(&mut self) -> io::Result<Next> {
        if self.pos >= self.end {
            return Ok(Next::End);
        }
        if !self.fill(FRAME_HEAD)? {
            return Ok(Next::Bad(Bad::Incomplete));
        }
        let Some(len) = frame_len(&self.buf[self.at..]) else {
            return Ok(Next::Bad(Bad::Length));
        };
        if !self.fill(len)? {
            return Ok(Next::Bad(Bad::Incomplete));
        }
        let raw = self.buf[self.at..self.at + len].to_vec();
        if !sum_holds(&raw)? {
            return Ok(Next::Bad(Bad::Checksum));
        }
        let frame = Frame {
            offset: self.pos,
            raw,
        };
        self.at += len;
        self.pos += len as u64;
        Ok(Next::Frame(frame))
    }
}
