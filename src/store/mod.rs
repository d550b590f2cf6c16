//! The durable log of a server's live set, shared by the Quorum and mirrors
//! (design.md "Storage" and "State").
//!
//! Every accepted or replicated record is appended to `records.log` with
//! a per-entry checksum and fsynced before anyone sees it; on open the log
//! is replayed and a torn or corrupt tail cut; compaction rewrites it with
//! only the live, unexpired entries (write new, fsync, rename). Memory
//! holds only an index from name to file offset (about 20 bytes a name),
//! so a mirror with a million records fits a Raspberry Pi; records are
//! read back from the file with positional reads.
//!
//! This module does not verify records or decide ownership (the server
//! does that before appending) and never parses JSON: it stores the texts
//! it is given.
//!
//! Locks: readers (`get`, `read_after`) take the read side of one
//! `RwLock` briefly; `append` and `compact` first take one `Mutex`, so
//! only they ever take the write side, and only to publish durable work.

mod format;
mod index;
mod recover;
mod state;
#[cfg(test)]
mod tests;

use crate::name::RegisteredName;
use format::{corrupt, push_head, push_record, read_entry_at, read_head_at, Content, Frame};
use format::{Next, Reader, RecordBody, HEADER_LEN};
use index::{Head, Index, NameHasher};
use parking_lot::{Mutex, RwLock};
use state::State;
use std::collections::{hash_map, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Name of the log in the state directory.
const LOG_FILE: &str = "records.log";
/// Name of a compaction's output until it is renamed over the log.
const COMPACT_FILE: &str = "records.log.compact";
/// Write buffer of compaction.
const COPY_BUFFER: usize = 256 * 1024;

/// One accepted record as stored: what the server needs to answer and push
/// without parsing JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The attestation's seq: the record's position in the Quorum's log.
    pub seq: u64,
    /// The record's `expires` (Unix seconds), so expired records are skipped.
    pub expires: u64,
    /// The registered name the record claims: the index key.
    pub name: RegisteredName,
    /// Canonical JSON of the record, sent as is.
    pub record: String,
    /// Canonical JSON of the attestation, sent as is.
    pub attestation: String,
}

/// What [`Store::open`] found, for the server's start-up log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenReport {
    /// Entries (records and head markers) replayed from the log.
    pub entries_read: u64,
    /// Live entries in the index afterwards.
    pub live: usize,
    /// Highest seq applied.
    pub head: u64,
    /// Bytes of torn or corrupt tail cut off (0 after a clean stop).
    pub truncated_bytes: u64,
}

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

/// The log of a server's live set and its index. `Send + Sync`: the event
/// loop's workers share it as `Arc<Store>`.
pub struct Store {
    /// The log, `DIR/records.log`.
    path: PathBuf,
    /// The state directory, fsynced after renames.
    dir: PathBuf,
    /// Keys the index.
    hasher: NameHasher,
    /// Serializes appends and compaction.
    writer: Mutex<Writer>,
    /// What readers see; written only by the holder of `writer`.
    state: RwLock<State>,
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

/// Record entries encoded for one append, with the heads the index will
/// need (read before writing, so applying needs no I/O under the lock).
struct Batch {
    /// The log.
    file: Arc<File>,
    /// Where the batch is written: the current end.
    end: u64,
    /// Every frame, written with one call.
    bytes: Vec<u8>,
    /// Each entry's index data.
    items: Vec<Item>,
    /// Heads by offset: of the entries each item replaces and of the items.
    known: HashMap<u64, Head>,
}

impl Batch {
    /// Encodes `entry` and reads the head of the entry it will replace.
    fn add(&mut self, entry: &Entry, hash: u64, state: &State) -> io::Result<()> {
        if let Some(at) = state.index.find(hash, &entry.name) {
            if let hash_map::Entry::Vacant(slot) = self.known.entry(at) {
                slot.insert(read_head_at(&state.file, at)?);
            }
        }
        let offset = self.end + self.bytes.len() as u64;
        let len = push_record(entry, &mut self.bytes)?;
        let head = Head {
            name: entry.name.clone(),
            expires: entry.expires,
            len,
        };
        self.known.insert(offset, head.clone());
        let seq = entry.seq;
        self.items.push(Item {
            hash,
            seq,
            offset,
            head,
        });
        Ok(())
    }
}

/// One entry of a [`Batch`].
struct Item {
    /// The name's index key.
    hash: u64,
    /// Its seq.
    seq: u64,
    /// Where its frame starts.
    offset: u64,
    /// Name, expiry and length.
    head: Head,
}

/// Entries gathered by [`Store::read_after`] within its byte budget.
struct Gather {
    /// What is gathered so far, in ascending seq.
    entries: Vec<Entry>,
    /// Record and attestation bytes gathered.
    bytes: usize,
    /// The budget.
    max_bytes: usize,
}

impl Gather {
    /// Adds `body` unless it would exceed the budget of a non-empty batch.
    fn take(&mut self, body: RecordBody<'_>) -> bool {
        let size = body.text_len();
        if !self.entries.is_empty() && self.bytes + size > self.max_bytes {
            return false;
        }
        self.bytes += size;
        self.entries.push(body.into_entry());
        true
    }
}

/// How one pass of [`Store::read_after`] ended.
enum Scan {
    /// The budget or the durable end was reached.
    Done,
    /// A compaction swapped the file; scan again from the last entry.
    Moved,
}

/// Checks that `entries` go up in seq from above `head`.
fn check_order(entries: &[Entry], head: u64) -> io::Result<()> {
    let mut last = head;
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

/// The record in `frame`, `None` for a head marker.
fn record_of(frame: &Frame) -> io::Result<Option<RecordBody<'_>>> {
    match frame.content() {
        Content::Record(body) => Ok(Some(body)),
        Content::Head(_) => Ok(None),
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
    /// Opens (creating if absent) the log `records.log` in `dir`, replays
    /// it, cuts a torn or corrupt tail (with a warning giving byte counts),
    /// and returns the report.
    pub fn open(dir: &Path) -> io::Result<(Store, OpenReport)> {
        Self::open_with(dir, NameHasher::random())
    }

    /// [`Store::open`] with a given hasher (tests force collisions).
    fn open_with(dir: &Path, hasher: NameHasher) -> io::Result<(Store, OpenReport)> {
        let path = dir.join(LOG_FILE);
        let opened = recover::remove_leftover(dir)
            .and_then(|()| recover::open_log(&path, dir))
            .and_then(|file| recover::replay(file, &path, &hasher));
        let (state, report) = opened.map_err(|e| named(&path, e))?;
        let store = Store {
            path,
            dir: dir.to_owned(),
            hasher,
            writer: Mutex::new(Writer { broken: false }),
            state: RwLock::new(state),
        };
        Ok((store, report))
    }

    /// Highest seq ever applied (never goes down, even after compaction
    /// drops that record): the `head` of protocol §8.
    pub fn head(&self) -> u64 {
        self.state.read().head
    }

    /// Number of live records at `now`: neither superseded nor expired.
    pub fn live_count(&self, now: u64) -> usize {
        self.state.read().live_count(now)
    }

    /// The live entry for `name` if any and not expired at `now`
    /// (`expires > now`).
    pub fn get(&self, name: &RegisteredName, now: u64) -> io::Result<Option<Entry>> {
        let hash = self.hasher.hash(name);
        let found = {
            let state = self.state.read();
            let offset = state.index.find(hash, name);
            offset.map(|offset| (Arc::clone(&state.file), offset))
        };
        let Some((file, offset)) = found else {
            return Ok(None);
        };
        let entry = read_entry_at(&file, offset).map_err(|e| named(&self.path, e))?;
        Ok((entry.name == *name && entry.expires > now).then_some(entry))
    }

    /// Appends `entries` (ascending seq, each above the head) with one
    /// write and one fsync (group commit), then applies them to the index,
    /// each replacing the live entry of its name. Readers see them only
    /// after the fsync. On a failed write or fsync nothing is applied and
    /// the file is cut back to where it was.
    pub fn append(&self, entries: &[Entry]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut writer = self.writer.lock();
        writer.check().map_err(|e| named(&self.path, e))?;
        let batch = self.prepare(entries).map_err(|e| named(&self.path, e))?;
        self.write(&batch, &mut writer)
            .map_err(|e| named(&self.path, e))?;
        self.publish(batch).map_err(|e| {
            writer.fail(&self.path, &e);
            named(&self.path, e)
        })
    }

    /// Encodes `entries` and reads the heads of the entries they replace.
    fn prepare(&self, entries: &[Entry]) -> io::Result<Batch> {
        let state = self.state.read();
        check_order(entries, state.head)?;
        let mut batch = Batch {
            file: Arc::clone(&state.file),
            end: state.end,
            bytes: Vec::new(),
            items: Vec::with_capacity(entries.len()),
            known: HashMap::new(),
        };
        for entry in entries {
            batch.add(entry, self.hasher.hash(&entry.name), &state)?;
        }
        Ok(batch)
    }

    /// Writes and fsyncs `batch`; on failure cuts the file back to its old
    /// end, and stops all writing if even that fails.
    fn write(&self, batch: &Batch, writer: &mut Writer) -> io::Result<()> {
        let file = &batch.file;
        let written = file
            .write_all_at(&batch.bytes, batch.end)
            .and_then(|()| file.sync_data());
        if let Err(e) = written {
            if let Err(undo) = file.set_len(batch.end).and_then(|()| file.sync_all()) {
                writer.fail(&self.path, &undo);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Makes a durable batch visible: the new end and the index at once.
    fn publish(&self, batch: Batch) -> io::Result<()> {
        let Batch {
            file,
            end,
            bytes,
            items,
            known,
        } = batch;
        let old_head = |at: u64| {
            known
                .get(&at)
                .cloned()
                .map_or_else(|| read_head_at(&file, at), Ok)
        };
        let mut state = self.state.write();
        state.end = end + bytes.len() as u64;
        for item in items {
            state.apply(item.hash, item.head, item.seq, item.offset, old_head)?;
        }
        Ok(())
    }

    /// Live, unexpired entries with seq > `after`, ascending by seq,
    /// stopping before the record and attestation text would pass
    /// `max_bytes` (but with at least one entry if any exists): what a
    /// subscriber is fed and caught up with. Each entry was live when read;
    /// if a compaction swaps the file meanwhile, the scan goes on from the
    /// last entry taken, so a name may then appear again with a newer seq.
    pub fn read_after(&self, after: u64, now: u64, max_bytes: usize) -> io::Result<Vec<Entry>> {
        let mut gather = Gather {
            entries: Vec::new(),
            bytes: 0,
            max_bytes,
        };
        let mut from = after;
        while let Scan::Moved = self
            .scan(from, now, &mut gather)
            .map_err(|e| named(&self.path, e))?
        {
            from = gather.entries.last().map_or(after, |e| e.seq);
        }
        Ok(gather.entries)
    }

    /// One pass of [`Store::read_after`] over the current file.
    fn scan(&self, after: u64, now: u64, gather: &mut Gather) -> io::Result<Scan> {
        let (file, start, end, generation) = {
            let state = self.state.read();
            let file = Arc::clone(&state.file);
            (file, state.start(after), state.end, state.generation)
        };
        let mut reader = Reader::new(&file, start, end);
        while let Some(frame) = next_sound(&mut reader)? {
            let Some(body) = record_of(&frame)? else {
                continue;
            };
            if body.seq <= after || body.expires <= now {
                continue;
            }
            let Some(live) = self.is_live(generation, &body, frame.offset) else {
                return Ok(Scan::Moved);
            };
            if live && !gather.take(body) {
                return Ok(Scan::Done);
            }
        }
        Ok(Scan::Done)
    }

    /// Whether the entry at `offset` is its name's live one; `None` if a
    /// compaction replaced generation `generation` meanwhile.
    fn is_live(&self, generation: u64, body: &RecordBody<'_>, offset: u64) -> Option<bool> {
        let hash = self.hasher.hash(&body.name);
        let state = self.state.read();
        (state.generation == generation).then(|| state.index.maps(hash, &body.name, offset))
    }

    /// Rewrites the log with only live, unexpired entries and a head
    /// marker (so the head survives), crash-safely: write
    /// `records.log.compact`, fsync it, rename it over `records.log`, fsync
    /// the directory. Readers keep using the old file until the swap;
    /// appends wait.
    pub fn compact(&self, now: u64) -> io::Result<CompactReport> {
        let mut writer = self.writer.lock();
        writer.check().map_err(|e| named(&self.path, e))?;
        let tmp = self.dir.join(COMPACT_FILE);
        let copied = self
            .copy_live(&tmp, now)
            .and_then(|fresh| fs::rename(&tmp, &self.path).map(|()| fresh));
        let fresh = copied.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            named(&tmp, e)
        })?;
        let (after_bytes, live) = (fresh.end, fresh.index.len());
        let synced = recover::sync_dir(&self.dir);
        let before_bytes = self.swap(fresh);
        if let Err(e) = synced {
            writer.fail(&self.dir, &e);
            return Err(named(&self.dir, e));
        }
        Ok(CompactReport {
            before_bytes,
            after_bytes,
            live,
        })
    }

    /// Writes the live, unexpired entries to `tmp` and returns the state
    /// of that file, built while copying.
    fn copy_live(&self, tmp: &Path, now: u64) -> io::Result<State> {
        let state = self.state.read();
        let file = Arc::new(create(tmp)?);
        let capacity = Index::with_capacity(state.index.len());
        let mut fresh = State::new(Arc::clone(&file), capacity, state.generation + 1);
        let mut out = BufWriter::with_capacity(COPY_BUFFER, &*file);
        out.write_all(&format::header())?;
        fresh.head = state.head;
        let mut reader = Reader::new(&state.file, HEADER_LEN, state.end);
        while let Some(frame) = next_sound(&mut reader)? {
            let Some(body) = record_of(&frame)? else {
                continue;
            };
            let hash = self.hasher.hash(&body.name);
            if body.expires > now && state.index.maps(hash, &body.name, frame.offset) {
                out.write_all(frame.raw())?;
                let offset = fresh.end;
                fresh.add_new(hash, &Head::of(&body, frame.len()), body.seq, offset);
                fresh.end += frame.len();
            }
        }
        drop(state);
        finish(out, fresh)
    }

    /// Installs a compacted state; returns the old file's size. The old
    /// state is dropped after the lock is released.
    fn swap(&self, fresh: State) -> u64 {
        let mut state = self.state.write();
        let old = std::mem::replace(&mut *state, fresh);
        drop(state);
        old.end
    }

    /// (Bytes of superseded or expired entries, approximately; total bytes
    /// of the log), so the server can decide when to compact.
    pub fn garbage(&self, now: u64) -> (u64, u64) {
        self.state.read().garbage(now)
    }
}

/// Ends a compacted file: the head marker, then flush and fsync.
fn finish(mut out: BufWriter<&File>, mut fresh: State) -> io::Result<State> {
    let head = fresh.head;
    let mut marker = Vec::new();
    push_head(head, &mut marker)?;
    out.write_all(&marker)?;
    out.flush()?;
    drop(out);
    fresh.file.sync_all()?;
    fresh.end += marker.len() as u64;
    Ok(fresh)
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
