//! Opening a log: creating it with its header, refusing a file that is not
//! ours, dropping an unfinished compaction, replaying the entries into a
//! fresh [`State`] and cutting a torn or corrupt tail.
//!
//! Only what happens at start; appending and compacting are in [`super`].

use super::format::{check_header, header, Next, Reader, HEADER_LEN};
use super::slots::Slots;
use super::state::State;
use super::{OpenReport, COMPACT_FILE};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

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
        check_header(&bytes).map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
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

/// Replays every entry of `file` (at `path`) into a new state, cutting the
/// log at the first entry that is incomplete, corrupt or out of order.
pub(super) fn replay(file: File, path: &Path) -> io::Result<(State, OpenReport)> {
    let len = file.metadata()?.len();
    let file = Arc::new(file);
    let mut state = State::new(Arc::clone(&file), Slots::with_capacity(0), 0);
    let (entries_read, cut) = replay_frames(&mut state, Reader::new(&file, HEADER_LEN, len))?;
    let truncated_bytes = match cut {
        Some((at, why)) => cut_tail(&file, path, (at, len), why, entries_read)?,
        None => 0,
    };
    let report = OpenReport {
        entries_read,
        live: state.slots.len(),
        seq: state.seq,
        truncated_bytes,
        head: None,
    };
    Ok((state, report))
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
