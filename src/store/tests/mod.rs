//! Tests of the store against real files in the system's temporary
//! directory: durability, recovery from torn and corrupt tails, names that
//! share index keys, the tree against the reference root, proofs, catch-up
//! order, compaction with retention, and concurrent readers. Not a
//! benchmark.
//!
//! This file holds what the tests share: temporary directories, entries
//! with true leaves, the reference live set and sealing as the Quorum
//! does. `log_file` tests appending, replay and recovery, `tree` heads,
//! proofs and the index, `compact` compaction and readers beside it,
//! `reverse` reverse lookups and their index.

use super::recover::{COMPACT_FILE, LOG_FILE};
use super::*;
use crate::keys::SigningKey;
use crate::merkle::{self, Leaf, LeafKey, EMPTY};
use crate::record::RecordId;
use sodiumoxide::crypto::hash::sha256;
use std::collections::BTreeMap;
use std::fs;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

mod compact;
mod log_file;
mod reverse;
mod tree;

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("onions-store-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn log(&self) -> PathBuf {
        self.0.join(LOG_FILE)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn name(text: &str) -> RegisteredName {
    RegisteredName::parse(text).unwrap()
}

/// An entry whose texts say where they came from, with its true leaf.
fn entry(seq: u64, expires: u64, label: &str) -> Entry {
    let name = name(&format!("{label}.tor"));
    let record = format!("{{\"name\":\"{label}.tor\",\"serial\":{seq}}}");
    let id = RecordId(sha256::hash(record.as_bytes()).0);
    Entry {
        seq,
        expires,
        release: false,
        leaf: merkle::leaf_hash(&LeafKey::of(&name), &id, seq),
        name,
        record,
        attestation: format!("{{\"seq\":{seq}}}"),
    }
}

/// The tree's leaf of an entry.
fn leaf_of(e: &Entry) -> Leaf {
    Leaf {
        key: LeafKey::of(&e.name),
        record: RecordId(sha256::hash(e.record.as_bytes()).0),
        seq: e.seq,
    }
}

/// The live set (PROTOCOL.md §10.1) as of (seq, time) of everything in
/// `log`, computed directly: its root and size.
fn reference(log: &[Entry], seq: u64, time: u64) -> (Hash, u64) {
    let live = reference_leaves(log, seq, time);
    (merkle::reference_root(&live), live.len() as u64)
}

fn key() -> SigningKey {
    crate::keys::init().unwrap();
    SigningKey::from_seed(&[9; 32])
}

/// Seals `entries` (written with the head) at (seq, time), as the Quorum does.
fn seal_at(store: &Store, entries: &[Entry], seq: u64, time: u64) -> SignedHead {
    let sealing = store.prepare(entries, seq, time).unwrap();
    let head = SignedHead::sign(seq, time, sealing.size(), sealing.root(), &key());
    store.seal(entries, sealing, &head, true).unwrap();
    head
}

fn open(dir: &TempDir) -> (Store, OpenReport) {
    Store::open(&dir.0).unwrap()
}

fn file_len(dir: &TempDir) -> u64 {
    fs::metadata(dir.log()).unwrap().len()
}

fn seqs(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

/// Every record a subscriber from seq 1 is sent, and the heads among them.
fn everything(store: &Store) -> Vec<Entry> {
    let feed = store.feed(0, None, usize::MAX).unwrap();
    assert!(feed.complete);
    [feed.before, feed.after].concat()
}

const NOW: u64 = 1_000_000;
const LATER: u64 = 10_000_000;

/// The reference live set as leaves, as of (seq, time).
fn reference_leaves(log: &[Entry], seq: u64, time: u64) -> Vec<Leaf> {
    let mut newest: BTreeMap<&RegisteredName, &Entry> = BTreeMap::new();
    for e in log.iter().filter(|e| e.seq <= seq) {
        newest.insert(&e.name, e);
    }
    newest
        .values()
        .filter(|e| e.live_until() > time)
        .map(|e| leaf_of(e))
        .collect()
}
