//! One generation of the log as readers see it: the open file, how much of
//! it is durable, the highest seq applied, the name index, a sparse seq
//! index and the live bytes by expiry hour.
//!
//! It applies entries that are already durable and answers questions from
//! memory; it does no writing and takes no locks (the `Store` in
//! [`super`] keeps one `State` behind its `RwLock` and swaps in a new one
//! when compaction rewrites the file).

use super::format::{read_head_at, Content, Frame, HEADER_LEN};
use super::index::{Head, Index, NameHasher};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::sync::Arc;

/// One record entry in this many gets a (seq, offset) sample, so a
/// catch-up jumps near its start instead of scanning the whole log.
const SEQ_STRIDE: u64 = 256;
/// Width of the expiry buckets of the garbage count, in seconds.
const BUCKET: u64 = 3600;

/// The bucket of an entry expiring at `expires`: every entry in bucket `b`
/// has expired once `now >= b * BUCKET`.
fn bucket(expires: u64) -> u64 {
    expires.div_ceil(BUCKET)
}

/// The log file and everything kept in memory about it.
pub(super) struct State {
    /// The open log; readers clone it so a compaction's swap cannot pull
    /// the file from under a read in progress.
    pub(super) file: Arc<File>,
    /// End of the durable, applied part of the file.
    pub(super) end: u64,
    /// Highest seq applied; never goes down.
    pub(super) head: u64,
    /// Bumped by each compaction, so a reader notices offsets changed.
    pub(super) generation: u64,
    /// Name → offset of its live entry.
    pub(super) index: Index,
    /// (seq, offset) of every [`SEQ_STRIDE`]th record entry in the file.
    seqs: Vec<(u64, u64)>,
    /// Record entries in the file.
    records: u64,
    /// Frame bytes of indexed entries, by expiry bucket.
    live_bytes: BTreeMap<u64, u64>,
    /// Indexed entries by their exact `expires`, so the live count at any
    /// moment leaves out the expired ones (about 13 bytes per distinct
    /// second in the worst case; records made in the same second share one).
    expiries: BTreeMap<u64, u32>,
}

impl State {
    /// The state of a log holding only its header.
    pub(super) fn new(file: Arc<File>, index: Index, generation: u64) -> State {
        State {
            file,
            end: HEADER_LEN,
            head: 0,
            generation,
            index,
            seqs: Vec::new(),
            records: 0,
            live_bytes: BTreeMap::new(),
            expiries: BTreeMap::new(),
        }
    }

    /// Applies a durable record entry at `offset`: it replaces the entry
    /// of the same name, whose head `old_head` reads. On error the index
    /// is unchanged.
    pub(super) fn apply(
        &mut self,
        hash: u64,
        head: Head,
        seq: u64,
        offset: u64,
        old_head: impl Fn(u64) -> io::Result<Head>,
    ) -> io::Result<()> {
        if let Some(old) = self.index.insert(hash, &head.name, offset, old_head)? {
            self.forget(&old);
        }
        self.note(&head, seq, offset);
        Ok(())
    }

    /// Adds an entry known to be the only one of its name (compaction).
    pub(super) fn add_new(&mut self, hash: u64, head: &Head, seq: u64, offset: u64) {
        self.index.insert_new(hash, &head.name, offset);
        self.note(head, seq, offset);
    }

    /// Counts a new live entry: its bytes, a seq sample, the head (which
    /// compaction sets first, so it only ever rises here).
    fn note(&mut self, head: &Head, seq: u64, offset: u64) {
        *self.live_bytes.entry(bucket(head.expires)).or_insert(0) += head.len;
        *self.expiries.entry(head.expires).or_insert(0) += 1;
        if self.records % SEQ_STRIDE == 0 {
            self.seqs.push((seq, offset));
        }
        self.records += 1;
        self.head = self.head.max(seq);
    }

    /// Uncounts a superseded entry's bytes.
    fn forget(&mut self, old: &Head) {
        let bucket = bucket(old.expires);
        if let Some(bytes) = self.live_bytes.get_mut(&bucket) {
            *bytes = bytes.saturating_sub(old.len);
            if *bytes == 0 {
                self.live_bytes.remove(&bucket);
            }
        }
        if let Some(count) = self.expiries.get_mut(&old.expires) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.expiries.remove(&old.expires);
            }
        }
    }

    /// Indexed entries that have not expired at `now` (`expires > now`).
    pub(super) fn live_count(&self, now: u64) -> usize {
        let expired: u64 = self
            .expiries
            .range(..=now)
            .map(|(_, n)| u64::from(*n))
            .sum();
        self.index.len().saturating_sub(expired as usize)
    }

    /// An offset at or before the first entry with seq > `after`.
    pub(super) fn start(&self, after: u64) -> u64 {
        let i = self.seqs.partition_point(|&(seq, _)| seq <= after);
        i.checked_sub(1)
            .and_then(|i| self.seqs.get(i))
            .map_or(HEADER_LEN, |&(_, offset)| offset)
    }

    /// (bytes of superseded or expired entries, total bytes); entries
    /// expiring within the current hour are not yet counted.
    pub(super) fn garbage(&self, now: u64) -> (u64, u64) {
        let live: u64 = self.live_bytes.values().sum();
        let expired: u64 = self.live_bytes.range(..=now / BUCKET).map(|(_, b)| b).sum();
        let dead = (self.end - HEADER_LEN).saturating_sub(live);
        (dead + expired, self.end)
    }

    /// Applies one frame read back at open. `Ok(Err(why))` means the frame
    /// is corrupt and ends the valid log; `Err` is an I/O failure or an
    /// entry kind from a newer program, which must not be cut.
    pub(super) fn replay(
        &mut self,
        frame: &Frame,
        hasher: &NameHasher,
    ) -> io::Result<Result<(), &'static str>> {
        match frame.content() {
            Content::Record(body) if body.seq > self.head => {
                let file = Arc::clone(&self.file);
                let head = Head::of(&body, frame.len());
                let hash = hasher.hash(&body.name);
                self.apply(hash, head, body.seq, frame.offset, |at| {
                    read_head_at(&file, at)
                })?;
            }
            Content::Head(seq) if seq >= self.head => self.head = seq,
            Content::Record(_) | Content::Head(_) => return Ok(Err("seq not increasing")),
            Content::Malformed => return Ok(Err("malformed entry")),
            Content::Unknown(kind) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "entry kind {kind} at byte {} was written by a newer onions; upgrade",
                        frame.offset
                    ),
                ))
            }
        }
        self.end = frame.offset + frame.len();
        Ok(Ok(()))
    }
}
