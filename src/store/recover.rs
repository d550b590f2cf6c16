//! Opening a log ([`Store::open`]): creating it with its header, refusing
//! a file that is not ours, dropping an unfinished compaction, replaying
//! the entries into a fresh [`State`], cutting a torn or corrupt tail, and
//! taking the newest head back when the rebuilt tree gives its root.
//!
//! Only what happens at start, with what it reports ([`OpenReport`],
//! [`Damage`]) and how damage in the middle is met ([`OnDamage`],
//! [`DamageRefused`]); appending and compacting are elsewhere.

use super::format::{check_header, frame_at, header, Content, Frame, Next, Reader, HEADER_LEN};
use super::latency::Latency;
use super::seal;
use super::slots::Slots;
use super::state::State;
use super::{named, Store, Writer};
use crate::head::SignedHead;
use parking_lot::{Mutex, RwLock};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Name of the log in the state directory.
pub(super) const LOG_FILE: &str = "records.log";
/// Name of a compaction's output until it is renamed over the log.
pub(super) const COMPACT_FILE: &str = "records.log.compact";

/// What [`Store::open`] found, for the server's start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Entries (records, markers and heads) replayed from the log.
    pub entries_read: u64,
    /// Names in the index afterwards.
    pub live: usize,
    /// Highest seq applied.
    pub seq: u64,
    /// Bytes of torn or corrupt tail cut off (0 after a clean stop).
    pub truncated_bytes: u64,
    /// The newest head in the log, when the rebuilt tree matched it: the
    /// server answers against it again at once.
    pub head: Option<SignedHead>,
    /// When valid entries followed a damaged one and were cut with it:
    /// what was lost.
    pub damage: Option<Damage>,
}

/// Damage in the middle of a log: valid entries follow a bad one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Where the bad entry starts.
    pub at: u64,
    /// Where the first valid entry after it starts.
    pub resumes_at: u64,
    /// Valid entries from there to the end.
    pub frames: u64,
    /// The highest seq they name: what the log held before the damage.
    pub seq: u64,
}

/// Opening refused: the log is damaged in the middle (see [`OnDamage`]).
#[derive(Debug, Clone)]
pub struct DamageRefused {
    /// The log.
    pub path: PathBuf,
    /// What is wrong with the entry at `damage.at`.
    pub why: &'static str,
    /// Where and what follows.
    pub damage: Damage,
}

impl std::fmt::Display for DamageRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.damage;
        write!(
            f,
            "{}: damaged at byte {} ({}), and {} valid entries up to seq {} follow from byte {}",
            self.path.display(),
            d.at,
            self.why,
            d.frames,
            d.seq,
            d.resumes_at
        )
    }
}

impl std::error::Error for DamageRefused {}

/// What opening does with damage in the middle of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDamage {
    /// Cut there, like a torn tail, and report what was cut (a mirror
    /// fetches it again from upstream; a Quorum recovers it from a mirror).
    Cut,
    /// Refuse to open, cutting nothing: the Quorum must not hand out the
    /// seqs of entries it still holds.
    Refuse,
}

impl Store {
    /// Opens (creating if absent) the log `records.log` in `dir`, replays
    /// it, cuts a torn or corrupt tail (with a warning giving byte counts),
    /// rebuilds the tree and checks it against the newest head in the log.
    pub fn open(dir: &Path) -> io::Result<(Store, OpenReport)> {
        Store::open_with(dir, OnDamage::Cut)
    }

    /// Opens the log in `dir` like [`Store::open`], with `on_damage`
    /// deciding what damage in the middle of the log does.
    pub fn open_with(dir: &Path, on_damage: OnDamage) -> io::Result<(Store, OpenReport)> {
        let path = dir.join(LOG_FILE);
        let opened = remove_leftover(dir)
            .and_then(|()| open_log(&path, dir))
            .and_then(|file| replay(file, &path, on_damage));
        let (mut state, mut report) = opened.map_err(|e| {
            if e.get_ref().is_some_and(|inner| inner.is::<DamageRefused>()) {
                e
            } else {
                named(&path, e)
            }
        })?;
        report.head = seal::restore(&mut state).map_err(|e| named(&path, e))?;
        let store = Store {
            path,
            dir: dir.to_owned(),
            writer: Mutex::new(Writer { broken: false }),
            state: RwLock::new(state),
            fsyncs: Latency::default(),
        };
        Ok((store, report))
    }
}

/// Makes a rename or creation in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes the output of a compaction that a crash interrupted: the log
/// itself is still the whole truth until the rename.
pub(super) fn remove_leftover(dir: &Path) -> io::Result<()> {
    let tmp = dir.join(COMPACT_FILE);
    match fs::remove_file(&tmp) {
        Ok(()) => {
            log::warn!("{}: removed an unfinished compaction", tmp.display());
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens the log at `path`, creating it (with its header) if absent.
pub(super) fn open_log(path: &Path, dir: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let len = file.metadata()?.len();
    if len < HEADER_LEN {
        start_log(&file, len, dir)?;
    } else {
        let mut bytes = [0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut bytes, 0)?;
        let unpacked =
            check_header(&bytes).map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
        if unpacked {
            file.write_all_at(&header(), 0)?;
            file.sync_data()?;
            log::info!(
                "{}: log format 2 marked 3 (its entries are packed at the next compaction)",
                path.display()
            );
        }
    }
    Ok(file)
}

/// Writes the header of a new log, or of one whose creation a crash cut
/// short (its few bytes are a prefix of the header); refuses anything else.
fn start_log(file: &File, len: u64, dir: &Path) -> io::Result<()> {
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0)?;
    if !header().starts_with(&bytes) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "is not an onions record log (too short, wrong magic); move it away",
        ));
    }
    file.write_all_at(&header(), 0)?;
    file.sync_all()?;
    sync_dir(dir)
}

/// How far past a bad frame replay looks for valid ones: a record frame
/// is at most a few KiB, so entries that survive damage start well within.
const DAMAGE_SCAN: u64 = 16 << 20;

/// Replays every entry of `file` (at `path`) into a new state, cutting the
/// log at the first entry that is incomplete, corrupt or out of order. When
/// valid entries follow the bad one (damage in the middle, not a torn
/// tail), `on_damage` says whether to cut them too or refuse to open.
pub(super) fn replay(
    file: File,
    path: &Path,
    on_damage: OnDamage,
) -> io::Result<(State, OpenReport)> {
    let len = file.metadata()?.len();
    let file = Arc::new(file);
    let mut state = State::new(Arc::clone(&file), Slots::with_capacity(0), 0);
    let (entries_read, cut) = replay_frames(&mut state, Reader::new(&file, HEADER_LEN, len))?;
    state.reverse.settle();
    let mut damage = None;
    let truncated_bytes = match cut {
        Some((at, why)) => {
            damage = later_frames(&file, at, len)?;
            if let (Some(damage), OnDamage::Refuse) = (damage, on_damage) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    DamageRefused {
                        path: path.to_owned(),
                        why,
                        damage,
                    },
                ));
            }
            cut_tail(&file, path, (at, len), why, entries_read)?
        }
        None => 0,
    };
    let report = OpenReport {
        entries_read,
        live: state.slots.len(),
        seq: state.seq,
        truncated_bytes,
        head: None,
        damage,
    };
    Ok((state, report))
}

/// Valid frames after the bad one at `at`, if any: where they resume, how
/// many there are and the highest seq they name.
fn later_frames(file: &File, at: u64, len: u64) -> io::Result<Option<Damage>> {
    let window = (len - at).min(DAMAGE_SCAN) as usize;
    let mut bytes = vec![0u8; window];
    file.read_exact_at(&mut bytes, at)?;
    let Some(skip) = (1..window).find_map(|i| match frame_at(&bytes[i..]) {
        Ok(Some(_)) => Some(Ok(i)),
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    }) else {
        return Ok(None);
    };
    let resumes_at = at + skip? as u64;
    let mut reader = Reader::new(file, resumes_at, len);
    let mut damage = Damage {
        at,
        resumes_at,
        frames: 0,
        seq: 0,
    };
    while let Next::Frame(frame) = reader.next()? {
        damage.frames += 1;
        damage.seq = damage.seq.max(frame_seq(&frame));
    }
    Ok(Some(damage))
}

/// The seq a frame names (a record's, a marker's, a head's), or 0.
fn frame_seq(frame: &Frame) -> u64 {
    match frame.content() {
        Content::Record(body) => body.seq,
        Content::Seq(seq) => seq,
        Content::SignedHead(stored) => stored.head().map_or(0, |h| h.seq),
        Content::Malformed | Content::Unknown(_) => 0,
    }
}

/// Applies frames until the end or the first bad one; returns how many
/// were applied and, if the log must be cut, where and why.
fn replay_frames(
    state: &mut State,
    mut reader: Reader<'_>,
) -> io::Result<(u64, Option<(u64, &'static str)>)> {
    let mut applied = 0;
    loop {
        let frame = match reader.next()? {
            Next::Frame(frame) => frame,
            Next::End => return Ok((applied, None)),
            Next::Bad(bad) => return Ok((applied, Some((reader.pos(), bad.why())))),
        };
        match state.replay(&frame)? {
            Ok(()) => applied += 1,
            Err(why) => return Ok((applied, Some((frame.offset, why)))),
        }
    }
}

/// Truncates the log to `at` (of `len` bytes), durably, and says so.
fn cut_tail(
    file: &File,
    path: &Path,
    (at, len): (u64, u64),
    why: &str,
    kept: u64,
) -> io::Result<u64> {
    file.set_len(at)?;
    file.sync_all()?;
    log::warn!(
        "{}: cut {} bytes of torn or corrupt tail at byte {at} ({why}); kept {kept} entries",
        path.display(),
        len - at
    );
    Ok(len - at)
}
