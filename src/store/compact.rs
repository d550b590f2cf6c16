//! Compaction: rewriting the log with only what must be kept, crash-safely
//! (write `records.log.compact`, fsync it, rename it over `records.log`,
//! fsync the directory).
//!
//! Kept: each name's newest record until the retention rule of PROTOCOL.md
//! §10.6 lets it go (its `expires` + 30 days and 600 s is at most the
//! newest head's time), the newest signed head in its place among the
//! records, and a seq marker so the highest seq applied survives. Nothing
//! is compacted while records wait for a head, since the tree's state
//! still needs the records they replaced.

use super::format::{self, push_seq, push_signed_head, Reader, Summary, HEADER_LEN};
use super::recover::{self, COMPACT_FILE};
use super::reverse::stored_targets;
use super::slots::Slots;
use super::state::State;
use super::tree::Tree;
use super::{create, named, next_sound, record_of, CompactReport, Store};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

/// Write buffer of compaction.
const COPY_BUFFER: usize = 256 * 1024;

impl Store {
    /// Rewrites the log with only what must be kept. Readers keep using
    /// the old file until the swap; appends wait. Returns `None` when
    /// records wait for a head (nothing is done then).
    pub fn compact(&self) -> io::Result<Option<CompactReport>> {
        let mut writer = self.writer.lock();
        writer.check().map_err(|e| named(&self.path, e))?;
        if !self.state.read().overrides.is_empty() {
            return Ok(None);
        }
        let tmp = self.dir.join(COMPACT_FILE);
        let copied = self
            .copy_kept(&tmp)
            .and_then(|fresh| fs::rename(&tmp, &self.path).map(|()| fresh));
        let fresh = copied.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            named(&tmp, e)
        })?;
        let (after_bytes, live) = (fresh.end, fresh.slots.len());
        let synced = recover::sync_dir(&self.dir);
        let before_bytes = self.swap(fresh);
        if let Err(e) = synced {
            writer.fail(&self.dir, &e);
            return Err(named(&self.dir, e));
        }
        Ok(Some(CompactReport {
            before_bytes,
            after_bytes,
            live,
        }))
    }

    /// Writes what must be kept to `tmp` and returns the state of that
    /// file, built while copying.
    fn copy_kept(&self, tmp: &Path) -> io::Result<State> {
        let state = self.state.read();
        let file = Arc::new(create(tmp)?);
        let slots = Slots::with_capacity(state.slots.len());
        let mut fresh = State::new(Arc::clone(&file), slots, state.generation + 1);
        let mut out = BufWriter::with_capacity(COPY_BUFFER, &*file);
        out.write_all(&format::header())?;
        fresh.seq = state.seq;
        let retained_after = state.retained_after();
        let mut head = state.newest_head.as_ref();
        let mut reader = Reader::new(&state.file, HEADER_LEN, state.end);
        while let Some(frame) = next_sound(&mut reader)? {
            let Some(body) = record_of(&frame)? else {
                continue;
            };
            if !(body.expires > retained_after && state.is_newest_frame(&body, frame.offset)) {
                continue;
            }
            if let Some(h) = head.filter(|h| h.seq < body.seq) {
                fresh.end += write_head(&mut out, &h.canonical())?;
                head = None;
            }
            let kept = format::repacked(&frame)?;
            out.write_all(&kept)?;
            let key = super::state::slot_key(&body.name);
            let offset = fresh.end;
            let targets = stored_targets(&body);
            let summary = Summary::of(&body, kept.len() as u64);
            fresh.add_new((key, &targets), &summary, body.seq, offset);
            fresh.end += kept.len() as u64;
        }
        if let Some(h) = head {
            fresh.end += write_head(&mut out, &h.canonical())?;
        }
        drop(state);
        finish(out, fresh)
    }

    /// Installs a compacted file and index, keeping the tree and heads;
    /// returns the old file's size. The old state is dropped after the lock
    /// is released.
    fn swap(&self, mut fresh: State) -> u64 {
        let mut state = self.state.write();
        fresh.tree = std::mem::replace(&mut state.tree, Tree::empty(0));
        fresh.anchor = state.anchor;
        fresh.current = state.current.take();
        fresh.newest_head = state.newest_head.take();
        fresh.epoch = state.epoch + 1;
        let old = std::mem::replace(&mut *state, fresh);
        drop(state);
        old.end
    }

    /// (Bytes that compaction would drop, approximately; total bytes of the
    /// log), so the server can decide when to compact.
    pub fn garbage(&self) -> (u64, u64) {
        self.state.read().garbage()
    }
}

/// Writes a signed head frame; returns its length.
fn write_head(out: &mut BufWriter<&File>, text: &str) -> io::Result<u64> {
    let mut frame = Vec::new();
    let len = push_signed_head(text, &mut frame)?;
    out.write_all(&frame)?;
    Ok(len)
}

/// Ends a compacted file: the seq marker, then flush and fsync.
fn finish(mut out: BufWriter<&File>, mut fresh: State) -> io::Result<State> {
    let mut marker = Vec::new();
    push_seq(fresh.seq, &mut marker)?;
    out.write_all(&marker)?;
    out.flush()?;
    drop(out);
    fresh.file.sync_all()?;
    fresh.end += marker.len() as u64;
    fresh.reverse.settle();
    Ok(fresh)
}
