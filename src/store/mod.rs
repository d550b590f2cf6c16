//! The durable log of a server's live set, and the Merkle tree over it,
//! shared by the Quorum and mirrors.
//!
//! Every accepted or replicated record is appended to `records.log` with
//! a per-entry checksum and fsynced before anyone sees it; so is every
//! signed head the server answers with (PROTOCOL.md §10.4). On open the log
//! is replayed, a torn or corrupt tail cut, and the tree rebuilt and checked
//! against the newest head in the log; compaction rewrites the log with
//! only what must be kept (write new, fsync, rename). Memory holds only
//! the index from name to file offset (about 20 bytes a name), the top
//! of the tree (10–20 bytes a name) and the reverse index (about 6 bytes
//! for each onion a name points at), so a mirror with a million records
//! fits a Raspberry Pi; records and leaf hashes are read back from the file
//! with positional reads.
//!
//! The tree stands at an anchor (seq, time): the server's current head.
//! Records applied after it wait until a head covers them ([`Store::prepare`]
//! computes that head's root aside, [`Store::seal`] makes it current), so
//! lookups ([`Store::answer`]), reverse lookups
//! ([`Store::names_pointing_at`]) and catch-up ([`Store::feed`]) are always
//! answered as of the current head, lookups with proofs against its root.
//!
//! This module does not verify records, decide ownership or sign: the
//! server does that before appending. It reads no record's JSON beyond
//! the addresses the reverse index needs (see `reverse`).
//!
//! Locks: readers take the read side of one `RwLock` briefly; writers
//! (`append`, `seal`, `advance`, `compact`) first take one `Mutex`, so only
//! they ever take the write side, and only to publish durable work.

mod compact;
mod entry;
mod format;
mod latency;
mod packed;
mod read;
mod recover;
mod reverse;
mod seal;
mod slots;
mod state;
#[cfg(test)]
mod tests;
mod tree;

use crate::head::SignedHead;
use crate::merkle::{Hash, Proof};
use crate::name::RegisteredName;
pub use entry::Entry;
use format::{corrupt, push_record, read_entry_at, read_summary_at};
pub use format::{stored_text_lens, RECORD_FRAMING};
use format::{Content, Frame, Next, Reader, RecordBody, Summary};
pub use latency::{Latency, LatencySnapshot, BUCKETS as LATENCY_BUCKETS};
use parking_lot::{Mutex, RwLock};
pub use recover::{Damage, DamageRefused, OnDamage, OpenReport};
pub use reverse::Names;
use state::State;
pub use state::RETENTION;
use std::collections::{hash_map, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tree::{Node, Tree};

/// What [`Store::compact`] did, for the server's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactReport {
    /// Log size before.
    pub before_bytes: u64,
    /// Log size after.
    pub after_bytes: u64,
    /// Entries kept.
    pub live: usize,
}

/// A lookup's answer as of the current head (PROTOCOL.md §10.6).
#[derive(Debug, Clone)]
pub enum Answer {
    /// The server has no current head to answer with.
    NoHead,
    /// The name's entry, with its presence proof.
    Found {
        /// The record and attestation.
        entry: Entry,
        /// Presence proof against the head's root.
        proof: Proof,
        /// The head's canonical JSON.
        head: Arc<str>,
    },
    /// The name has no entry: an absence proof.
    NotFound {
        /// Absence proof against the head's root.
        proof: Proof,
        /// The head's canonical JSON.
        head: Arc<str>,
    },
}

/// A head's root and size computed aside by [`Store::prepare`], to be made
/// current by [`Store::seal`] or [`Store::advance`] or dropped.
#[derive(Debug)]
pub struct Sealing {
    /// The head's seq.
    seq: u64,
    /// The head's time.
    time: u64,
    /// The store's generation and seq when prepared: sealing checks them.
    base: (u64, u64),
    /// The tree's change.
    change: Change,
    /// The root node after the change.
    root: Node,
}

impl Sealing {
    /// The root of the live set as of the head's (seq, time).
    pub fn root(&self) -> Hash {
        self.root.hash
    }

    /// The size of the live set as of the head's (seq, time).
    pub fn size(&self) -> u64 {
        u64::from(self.root.count)
    }
}

/// How a sealing changes the tree.
#[derive(Debug)]
enum Change {
    /// Some buckets and their ancestors.
    Delta(tree::Delta),
    /// A whole new tree (the first, or a deeper one).
    Full(Tree),
}

/// One catch-up batch for a subscriber (PROTOCOL.md §10.6): records, and
/// the current head in its place when the batch reaches it.
#[derive(Debug, Clone, Default)]
pub struct Feed {
    /// Records before the head, ascending by seq.
    pub before: Vec<Entry>,
    /// The current head, when this batch reaches its place.
    pub head: Option<(SignedHead, Arc<str>)>,
    /// Records after the head, ascending by seq.
    pub after: Vec<Entry>,
    /// The highest seq the subscriber has once this batch is sent.
    pub cursor: u64,
    /// True when nothing the store holds is left to send.
    pub complete: bool,
}

/// The log of a server's live set, its index and tree. `Send + Sync`: the
/// event loop's workers share it as `Arc<Store>`.
pub struct Store {
    /// The log, `DIR/records.log`.
    path: PathBuf,
    /// The state directory, fsynced after renames.
    dir: PathBuf,
    /// Serializes appends, seals and compaction.
    writer: Mutex<Writer>,
    /// What readers see; written only by the holder of `writer`.
    state: RwLock<State>,
    /// How long the fsyncs of appends and heads take.
    fsyncs: Latency,
}

/// What the appenders' mutex guards: whether a failure left memory and
/// file possibly out of step, so that further writes must stop.
struct Writer {
    /// Set after a failure that could not be undone.
    broken: bool,
}

impl Writer {
    /// Refuses to write once broken.
    fn check(&self) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "an earlier write failed and could not be undone; restart to replay the log",
            ));
        }
        Ok(())
    }

    /// Stops all further writes after `error`.
    fn fail(&mut self, path: &Path, error: &io::Error) {
        log::error!(
            "{}: {error}; refusing further writes until restart",
            path.display()
        );
        self.broken = true;
    }
}

/// Entries encoded for one write, with the summaries the index will need
/// (read before writing, so applying needs no I/O under the lock).
struct Batch {
    /// The log.
    file: Arc<File>,
    /// Where the batch is written: the current end.
    end: u64,
    /// Every frame, written with one call.
    bytes: Vec<u8>,
    /// Each record entry's index data.
    items: Vec<Item>,
    /// Summaries by offset: of the entries each item replaces and of the items.
    known: HashMap<u64, Summary>,
}

impl Batch {
    /// Encodes `entry` and reads the summaries of the entries with the same
    /// first key bits (one of which it may replace).
    fn add(&mut self, entry: &Entry, state: &State) -> io::Result<()> {
        let key = state::slot_key(&entry.name);
        for i in state.slots.equal(key) {
            let at = state.slots.offset_at(i);
            if let hash_map::Entry::Vacant(slot) = self.known.entry(at) {
                slot.insert(read_summary_at(&state.file, at)?);
            }
        }
        let offset = self.end + self.bytes.len() as u64;
        let len = push_record(entry, &mut self.bytes)?;
        let targets = reverse::targets_of(&entry.record);
        let summary = Summary {
            name: entry.name.clone(),
            expires: entry.expires,
            release: entry.release,
            len,
        };
        self.known.insert(offset, summary.clone());
        self.items.push(Item {
            key,
            targets,
            seq: entry.seq,
            offset,
            summary,
        });
        Ok(())
    }
}

/// One record entry of a [`Batch`].
struct Item {
    /// The first 64 bits of the name's leaf key.
    key: u64,
    /// The onions its record points at, for the reverse index.
    targets: Vec<u32>,
    /// Its seq.
    seq: u64,
    /// Where its frame starts.
    offset: u64,
    /// Name, expiry and length.
    summary: Summary,
}

/// Checks that `entries` go up in seq from above `seq`.
fn check_order(entries: &[Entry], seq: u64) -> io::Result<()> {
    let mut last = seq;
    for entry in entries {
        if entry.seq <= last {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("entry seq {} does not follow {last}", entry.seq),
            ));
        }
        last = entry.seq;
    }
    Ok(())
}

/// The next frame of a log already checked at open; a bad one is an error.
fn next_sound(reader: &mut Reader<'_>) -> io::Result<Option<Frame>> {
    match reader.next()? {
        Next::Frame(frame) => Ok(Some(frame)),
        Next::End => Ok(None),
        Next::Bad(bad) => Err(corrupt(reader.pos(), bad.why())),
    }
}

/// The record in `frame`, `None` for a marker or a head.
fn record_of(frame: &Frame) -> io::Result<Option<RecordBody<'_>>> {
    match frame.content() {
        Content::Record(body) => Ok(Some(body)),
        Content::Seq(_) | Content::SignedHead(_) => Ok(None),
        Content::Malformed | Content::Unknown(_) => Err(corrupt(frame.offset, "unreadable")),
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Highest seq ever applied (never goes down, even after compaction
    /// drops that record): the `seq` of protocol §10.6's status.
    pub fn seq(&self) -> u64 {
        self.state.read().seq
    }

    /// Number of names whose newest record has not expired at `now`.
    pub fn live_count(&self, now: u64) -> usize {
        self.state.read().live_count(now)
    }

    /// The head lookups are answered against, if any.
    pub fn current_head(&self) -> Option<SignedHead> {
        self.state.read().current.as_ref().map(|c| c.head.clone())
    }

    /// The newest signed head written to the log, current or not.
    pub fn newest_head(&self) -> Option<SignedHead> {
        self.state.read().newest_head.clone()
    }

    /// How long the fsyncs of appended records and heads took so far.
    pub fn fsync_latency(&self) -> LatencySnapshot {
        self.fsyncs.snapshot()
    }

    /// The newest entry for `name` if it has not expired at `now`
    /// (`expires > now`), whether or not a head covers it yet: what the
    /// Quorum decides ownership against.
    pub fn get(&self, name: &RegisteredName, now: u64) -> io::Result<Option<Entry>> {
        let found = {
            let state = self.state.read();
            let found = state.find(name).map_err(|e| named(&self.path, e))?;
            found.map(|(_, offset)| (Arc::clone(&state.file), offset))
        };
        let Some((file, offset)) = found else {
            return Ok(None);
        };
        let entry = read_entry_at(&file, offset).map_err(|e| named(&self.path, e))?;
        Ok((entry.expires > now).then_some(entry))
    }

    /// Appends `entries` (ascending seq, each above the store's seq) with
    /// one write and one fsync (group commit), then applies them to the
    /// index, each replacing the newest entry of its name. They wait for a
    /// head ([`Store::seal`]) before lookups see them. On a failed write or
    /// fsync nothing is applied and the file is cut back to where it was.
    pub fn append(&self, entries: &[Entry]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut writer = self.writer.lock();
        writer.check().map_err(|e| named(&self.path, e))?;
        let batch = self.batch(entries).map_err(|e| named(&self.path, e))?;
        self.write(&batch, true, &mut writer)
            .map_err(|e| named(&self.path, e))?;
        let mut state = self.state.write();
        self.publish(&mut state, batch).map_err(|e| {
            writer.fail(&self.path, &e);
            named(&self.path, e)
        })
    }

    /// Encodes `entries` and reads the summaries of the entries they replace.
    fn batch(&self, entries: &[Entry]) -> io::Result<Batch> {
        let state = self.state.read();
        check_order(entries, state.seq)?;
        let mut batch = Batch {
            file: Arc::clone(&state.file),
            end: state.end,
            bytes: Vec::new(),
            items: Vec::with_capacity(entries.len()),
            known: HashMap::new(),
        };
        for entry in entries {
            batch.add(entry, &state)?;
        }
        Ok(batch)
    }

    /// Writes `batch` and, when `sync`, fsyncs it; on failure cuts the file
    /// back to its old end, and stops all writing if even that fails.
    fn write(&self, batch: &Batch, sync: bool, writer: &mut Writer) -> io::Result<()> {
        let file = &batch.file;
        let written = file.write_all_at(&batch.bytes, batch.end).and_then(|()| {
            if sync {
                let started = std::time::Instant::now();
                let synced = file.sync_data();
                self.fsyncs.observe(started.elapsed());
                synced
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            if let Err(undo) = file.set_len(batch.end).and_then(|()| file.sync_all()) {
                writer.fail(&self.path, &undo);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Makes a written batch visible: the new end and the index at once.
    fn publish(&self, state: &mut State, batch: Batch) -> io::Result<()> {
        let Batch {
            file,
            end,
            bytes,
            items,
            known,
        } = batch;
        let old = |at: u64| {
            known
                .get(&at)
                .cloned()
                .map_or_else(|| read_summary_at(&file, at), Ok)
        };
        state.end = end + bytes.len() as u64;
        for item in items {
            let targets = (item.key, item.targets.as_slice());
            state.apply(targets, item.summary, item.seq, item.offset, old)?;
        }
        Ok(())
    }
}

/// Creates (or empties) a file to read and write.
fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// `error`, prefixed with the file it concerns.
fn named(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}
