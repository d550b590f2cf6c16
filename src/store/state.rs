//! One generation of the log as readers see it: the open file, how much of
//! it is durable, the highest seq applied, the name index, the Merkle tree
//! and the head it stands at, a sparse seq index and the live bytes by
//! expiry hour.
//!
//! It applies entries that are already durable and answers questions from
//! memory and small reads; it does no writing and takes no locks (the
//! `Store` in [`super`] keeps one `State` behind its `RwLock` and swaps in
//! a new file and index when compaction rewrites the log).
//!
//! Two views of the live set live here. The index always points at each
//! name's newest record. The tree stands at an anchor (seq, time), usually
//! the current head: records applied after it wait in `overrides`, which
//! remembers, for each of them, the record its name had at the anchor, so
//! answers and catch-up can still be given as of the anchor.

use super::entry::Entry;
use super::format::{
    read_entry_at, read_leaf_at, Content, Frame, LeafInfo, RecordBody, Summary, HEADER_LEN,
};
use super::reverse::{stored_targets, ReverseIndex};
use super::slots::Slots;
use super::tree::{bucket_range, key_of_prefix, Member, Tree};
use crate::head::SignedHead;
use crate::merkle::{Hash, LeafKey};
use crate::name::RegisteredName;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io;
use std::sync::Arc;

/// How long after it expires a name's newest record is kept (PROTOCOL.md
/// §10.6, retention): 30 days and 600 s, measured by head time.
pub const RETENTION: u64 = 2_592_600;

/// One record entry in this many gets a (seq, offset) sample, so a
/// catch-up jumps near its start instead of scanning the whole log.
const SEQ_STRIDE: u64 = 256;
/// Width of the expiry buckets of the garbage count, in seconds.
const BUCKET: u64 = 3600;

/// The index key of `name`: the first 64 bits of its leaf key.
pub(super) fn slot_key(name: &RegisteredName) -> u64 {
    slot_key_of(&LeafKey::of(name))
}

/// [`slot_key`] of the name whose leaf key is `key`, for a caller that
/// holds it already (a lookup hashes its name once).
pub(super) fn slot_key_of(key: &LeafKey) -> u64 {
    let key = key.prefix64();
    #[cfg(test)]
    let key = key & KEY_MASK.with(std::cell::Cell::get);
    key
}

#[cfg(test)]
thread_local! {
    /// Tests cut index keys to their top bits with this mask, so that
    /// names share keys as two names with equal 64-bit prefixes would.
    pub(super) static KEY_MASK: std::cell::Cell<u64> = const { std::cell::Cell::new(u64::MAX) };
}

/// True when index keys may not tell members apart by themselves (tests
/// that cut keys): then every bucket reads whole leaf keys.
fn keys_cut() -> bool {
    #[cfg(test)]
    if KEY_MASK.with(std::cell::Cell::get) != u64::MAX {
        return true;
    }
    false
}

/// The bucket of an entry expiring at `expires`: every entry in bucket `b`
/// has expired once `now >= b * BUCKET`.
fn bucket(expires: u64) -> u64 {
    expires.div_ceil(BUCKET)
}

/// The record a name had at the tree's anchor, for a name whose newest
/// record came after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Override {
    /// Offset of the record at the anchor; 0 when the name had none.
    pub(super) anchored: u64,
    /// The first 64 bits of the name's leaf key.
    pub(super) key: u64,
}

/// The head the server answers against: the tree stands at its (seq,
/// time). Its canonical text is kept so replies copy it without encoding.
#[derive(Debug, Clone)]
pub(super) struct Current {
    /// The head.
    pub(super) head: SignedHead,
    /// Its canonical JSON.
    pub(super) text: Arc<str>,
    /// Its id.
    pub(super) id: Hash,
}

impl Current {
    /// The current-head record of `head`.
    pub(super) fn of(head: &SignedHead) -> Current {
        Current {
            text: head.canonical().into(),
            id: head.id(),
            head: head.clone(),
        }
    }
}

/// Which record of a name the tree is asked about.
pub(super) enum View<'a> {
    /// The records as of the tree's anchor.
    Anchored,
    /// The newest records, and records about to be written that replace
    /// them (the offsets of the index entries they replace, and themselves
    /// as members with offset 0).
    Newest {
        /// Offsets of the newest records that `extra` replaces.
        replaced: &'a HashSet<u64>,
        /// New members, sorted by key.
        extra: &'a [Member],
    },
}

/// The log file and everything kept in memory about it.
pub(super) struct State {
    /// The open log; readers clone it so a compaction's swap cannot pull
    /// the file from under a read in progress.
    pub(super) file: Arc<File>,
    /// End of the durable, applied part of the file.
    pub(super) end: u64,
    /// Highest seq applied; never goes down.
    pub(super) seq: u64,
    /// Bumped by each compaction, so a reader notices offsets changed.
    pub(super) generation: u64,
    /// Name → offset of its newest entry.
    pub(super) slots: Slots,
    /// Onion → names whose records pointed at it (a superset: answers
    /// confirm each name against its record as of the anchor).
    pub(super) reverse: ReverseIndex,
    /// The stored tree; meaningful only while `anchor` is set.
    pub(super) tree: Tree,
    /// The (seq, time) the tree stands at.
    pub(super) anchor: Option<(u64, u64)>,
    /// Newest offset → the record at the anchor, for names changed since.
    pub(super) overrides: HashMap<u64, Override>,
    /// The non-zero `anchored` offsets of `overrides`: records in the tree
    /// that are no longer their name's newest.
    pub(super) shadowed: HashSet<u64>,
    /// Bumped whenever the tree moves to another anchor or the file is
    /// swapped, so a reader of the state as of one head notices.
    pub(super) epoch: u64,
    /// The head answers use; when set, `anchor` is its (seq, time).
    pub(super) current: Option<Current>,
    /// The newest signed head in the log.
    pub(super) newest_head: Option<SignedHead>,
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
    /// The state of a log holding only its header, about to be built from
    /// a whole log (replay, compaction): its reverse index is settled by
    /// the builder once every record is in.
    pub(super) fn new(file: Arc<File>, slots: Slots, generation: u64) -> State {
        State {
            file,
            end: HEADER_LEN,
            seq: 0,
            generation,
            slots,
            reverse: ReverseIndex::unsettled(),
            tree: Tree::empty(0),
            anchor: None,
            overrides: HashMap::new(),
            shadowed: HashSet::new(),
            epoch: 0,
            current: None,
            newest_head: None,
            seqs: Vec::new(),
            records: 0,
            live_bytes: BTreeMap::new(),
            expiries: BTreeMap::new(),
        }
    }

    /// The index position and offset of `name`'s newest entry.
    pub(super) fn find(&self, name: &RegisteredName) -> io::Result<Option<(usize, u64)>> {
        let key = slot_key(name);
        for i in self.slots.equal(key) {
            let offset = self.slots.offset_at(i);
            if super::format::name_is_at(&self.file, offset, name)? {
                return Ok(Some((i, offset)));
            }
        }
        Ok(None)
    }

    /// `name`'s newest entry and its offset, the frame read whole (its
    /// checksum checked): for a lookup, one read where [`State::find`] and
    /// a later read of the record would take two. `key` is the name's
    /// leaf key.
    pub(super) fn find_entry(
        &self,
        name: &RegisteredName,
        key: &LeafKey,
    ) -> io::Result<Option<(u64, Entry)>> {
        for i in self.slots.equal(slot_key_of(key)) {
            let offset = self.slots.offset_at(i);
            let entry = read_entry_at(&self.file, offset)?;
            if entry.name == *name {
                return Ok(Some((offset, entry)));
            }
        }
        Ok(None)
    }

    /// True when the record entry `body` at `offset` is its name's newest.
    pub(super) fn is_newest_frame(&self, body: &RecordBody<'_>, offset: u64) -> bool {
        let key = slot_key(&body.name);
        self.slots
            .equal(key)
            .any(|i| self.slots.offset_at(i) == offset)
    }

    /// True when the record entry `body` at `offset` is its name's record
    /// as of the anchor (its newest, unless a newer one came after).
    pub(super) fn is_anchored(&self, body: &RecordBody<'_>, offset: u64) -> bool {
        if self.overrides.contains_key(&offset) {
            return false;
        }
        self.shadowed.contains(&offset) || self.is_newest_frame(body, offset)
    }

    /// Forgets the records waiting for a head: the tree now covers them.
    pub(super) fn settle_overrides(&mut self) {
        self.overrides.clear();
        self.shadowed.clear();
        self.epoch += 1;
    }

    /// The offset of the record that stands, in the live set as of the
    /// anchor at `time`, for the name whose index entry is at `newest`:
    /// its record at the anchor, when that has not expired by `time`. The
    /// one rule lookups and reverse lookups share. The leaf of the entry
    /// at `known.0`, if given (a lookup has read its record), is not read
    /// again.
    pub(super) fn live_at_anchor(
        &self,
        newest: u64,
        time: u64,
        known: Option<(u64, LeafInfo)>,
    ) -> io::Result<Option<u64>> {
        let Some(offset) = self.pick(newest, &View::Anchored) else {
            return Ok(None);
        };
        let expires = match known {
            Some((at, info)) if at == offset => info.expires,
            _ => read_leaf_at(&self.file, offset)?.expires,
        };
        Ok((expires > time).then_some(offset))
    }

    /// Applies a durable record entry at `offset` with first key bits
    /// `key`, pointing at the onions `targets`: it replaces the newest
    /// entry of the same name, whose summary `old` reads. While the tree is
    /// anchored, the name's anchored record is remembered. On error nothing
    /// changed.
    pub(super) fn apply(
        &mut self,
        (key, targets): (u64, &[u32]),
        summary: Summary,
        seq: u64,
        offset: u64,
        old: impl Fn(u64) -> io::Result<Summary>,
    ) -> io::Result<()> {
        let mut previous = None;
        for i in self.slots.equal(key) {
            let at = self.slots.offset_at(i);
            let summary_then = old(at)?;
            if summary_then.name == summary.name {
                previous = Some((i, at, summary_then));
                break;
            }
        }
        let before = match previous {
            Some((i, at, summary_then)) => {
                self.slots.set(i, offset);
                self.forget(&summary_then);
                at
            }
            None => {
                self.slots.insert(key, offset);
                0
            }
        };
        if self.anchor.is_some() {
            let anchored = self
                .overrides
                .remove(&before)
                .map_or(before, |o| o.anchored);
            if anchored != 0 {
                self.shadowed.insert(anchored);
            }
            self.overrides.insert(offset, Override { anchored, key });
        }
        self.reverse.add(key, targets);
        self.note(&summary, seq, offset);
        Ok(())
    }

    /// Adds an entry known to be the only one of its name (compaction),
    /// pointing at the onions `targets`.
    pub(super) fn add_new(
        &mut self,
        (key, targets): (u64, &[u32]),
        summary: &Summary,
        seq: u64,
        offset: u64,
    ) {
        self.slots.insert(key, offset);
        self.reverse.add(key, targets);
        self.note(summary, seq, offset);
    }

    /// Counts a new indexed entry: its bytes, a seq sample, the seq
    /// (which compaction sets first, so it only ever rises here).
    fn note(&mut self, summary: &Summary, seq: u64, offset: u64) {
        *self.live_bytes.entry(bucket(summary.expires)).or_insert(0) += summary.len;
        *self.expiries.entry(summary.live_until()).or_insert(0) += 1;
        if self.records % SEQ_STRIDE == 0 {
            self.seqs.push((seq, offset));
        }
        self.records += 1;
        self.seq = self.seq.max(seq);
    }

    /// Uncounts a superseded entry's bytes.
    fn forget(&mut self, old: &Summary) {
        let bucket = bucket(old.expires);
        if let Some(bytes) = self.live_bytes.get_mut(&bucket) {
            *bytes = bytes.saturating_sub(old.len);
            if *bytes == 0 {
                self.live_bytes.remove(&bucket);
            }
        }
        if let Some(count) = self.expiries.get_mut(&old.live_until()) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.expiries.remove(&old.live_until());
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
        self.slots.len().saturating_sub(expired as usize)
    }

    /// An offset at or before the first entry with seq > `after`.
    pub(super) fn start(&self, after: u64) -> u64 {
        let i = self.seqs.partition_point(|&(seq, _)| seq <= after);
        i.checked_sub(1)
            .and_then(|i| self.seqs.get(i))
            .map_or(HEADER_LEN, |&(_, offset)| offset)
    }

    /// The time before which a record's expiry lets compaction drop it:
    /// the retention rule of PROTOCOL.md §10.6 against the newest head.
    pub(super) fn retained_after(&self) -> u64 {
        self.newest_head
            .as_ref()
            .map_or(0, |h| h.time.saturating_sub(RETENTION))
    }

    /// (bytes of superseded entries, old heads and entries past retention,
    /// total bytes); entries leaving retention within the current hour are
    /// not yet counted.
    pub(super) fn garbage(&self) -> (u64, u64) {
        let live: u64 = self.live_bytes.values().sum();
        let gone: u64 = self
            .live_bytes
            .range(..=self.retained_after() / BUCKET)
            .map(|(_, b)| b)
            .sum();
        let dead = (self.end - HEADER_LEN).saturating_sub(live);
        (dead + gone, self.end)
    }

    /// The members of bucket `b` of a tree of bucket depth `depth` in
    /// `view`, unexpired at `time`, sorted by key. Keys are cut to 64 bits
    /// unless two members share those.
    pub(super) fn members(
        &self,
        depth: u32,
        b: usize,
        view: &View<'_>,
        time: u64,
    ) -> io::Result<Vec<Member>> {
        self.members_knowing(depth, b, view, time, None)
    }

    /// [`State::members`], taking the leaf of the entry at `known.0` from
    /// `known.1` instead of the log (a lookup has read its own record).
    pub(super) fn members_knowing(
        &self,
        depth: u32,
        b: usize,
        view: &View<'_>,
        time: u64,
        known: Option<(u64, LeafInfo)>,
    ) -> io::Result<Vec<Member>> {
        let (lo, hi) = bucket_range(depth, b);
        let mut members = Vec::new();
        for (key, newest) in self.slots.range(lo, hi) {
            let Some(offset) = self.pick(newest, view) else {
                continue;
            };
            let LeafInfo { expires, leaf, .. } = match known {
                Some((at, info)) if at == offset => info,
                _ => read_leaf_at(&self.file, offset)?,
            };
            if expires > time {
                members.push(Member {
                    key: key_of_prefix(key),
                    leaf,
                    expires,
                    offset,
                });
            }
        }
        if let View::Newest { extra, .. } = view {
            members.extend(
                extra
                    .iter()
                    .filter(|m| (lo..=hi).contains(&m.key.prefix64()) && m.expires > time),
            );
        }
        members.sort_by_key(|m| m.key);
        if keys_cut()
            || members
                .windows(2)
                .any(|w| w[0].key.prefix64() == w[1].key.prefix64())
        {
            self.widen_keys(&mut members)?;
        }
        Ok(members)
    }

    /// The record `view` takes for an index entry at `newest`.
    fn pick(&self, newest: u64, view: &View<'_>) -> Option<u64> {
        match view {
            View::Anchored => match self.overrides.get(&newest) {
                Some(o) => (o.anchored != 0).then_some(o.anchored),
                None => Some(newest),
            },
            View::Newest { replaced, .. } => (!replaced.contains(&newest)).then_some(newest),
        }
    }

    /// Gives every member read from the log its whole leaf key, for a
    /// bucket where 64 bits do not tell two members apart.
    fn widen_keys(&self, members: &mut [Member]) -> io::Result<()> {
        for member in members.iter_mut().filter(|m| m.offset != 0) {
            let name = super::format::read_summary_at(&self.file, member.offset)?.name;
            member.key = LeafKey::of(&name);
        }
        members.sort_by_key(|m| m.key);
        Ok(())
    }

    /// Applies one frame read back at open. `Ok(Err(why))` means the frame
    /// is corrupt and ends the valid log; `Err` is an I/O failure or an
    /// entry kind from a newer program, which must not be cut.
    pub(super) fn replay(&mut self, frame: &Frame) -> io::Result<Result<(), &'static str>> {
        match frame.content() {
            Content::Record(body) if body.seq > self.seq => {
                let file = Arc::clone(&self.file);
                let summary = Summary::of(&body, frame.len());
                let key = slot_key(&body.name);
                let targets = stored_targets(&body);
                self.apply((key, &targets), summary, body.seq, frame.offset, |at| {
                    super::format::read_summary_at(&file, at)
                })?;
            }
            Content::Seq(seq) if seq >= self.seq => self.seq = seq,
            Content::SignedHead(stored) => match stored.head() {
                Some(head) => self.replay_head(head),
                None => return Ok(Err("unreadable signed head")),
            },
            Content::Record(_) | Content::Seq(_) => return Ok(Err("seq not increasing")),
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

    /// A signed head met during replay: records after it wait in
    /// `overrides` as they did before the restart, with the head as their
    /// anchor until [`super::Store::open`] checks the tree against it.
    fn replay_head(&mut self, head: SignedHead) {
        self.anchor = Some((head.seq, head.time));
        self.settle_overrides();
        self.newest_head = Some(head);
    }
}
