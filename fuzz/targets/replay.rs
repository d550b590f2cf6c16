//! Fuzz target `replay`: log replay over damaged files.
//!
//! A real log (records, signed heads, records waiting for a head) is built
//! once per process with `Store::open`, `append` and `seal`. Each input
//! damages a copy of it and the result is opened as `records.log` in a
//! fresh directory, at a Quorum (`OnDamage::Refuse`) and at a mirror
//! (`OnDamage::Cut`). Opening may fail, but never panic; what opens must
//! answer (`seq`, `current_head`, `answer`, `get`, `feed`), a log that was
//! cut opens again as it was left, and after a record and a head are
//! written to it and it is compacted, its seq has not gone down.
//!
//! An input is `mode | at (u16, little-endian) | payload`. `at` picks a
//! byte of the log after its 12-byte header (modulo its length);
//! `mode & 3` says what the payload does there: 0 overwrites, 1 is
//! inserted, 2 replaces the rest of the log, 3 is XORed in. With
//! `mode & 0x80` every frame's checksum is then recomputed, so that the
//! damage reaches the checks behind the checksums.

use onions::attest::Attestation;
use onions::head::SignedHead;
use onions::keys::SigningKey;
use onions::name::RegisteredName;
use onions::record::{Claim, Record};
use onions::store::{DamageRefused, Entry, OnDamage, Store};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Bytes of a log's header ("onionlog", format version).
const HEADER_LEN: usize = 12;
/// Bytes before a frame's body: kind and body length.
const FRAME_HEAD: usize = 5;
/// Bytes of a frame's checksum (BLAKE2b-128).
const SUM_LEN: usize = 16;
/// Largest frame body a log holds.
const MAX_BODY: usize = 1 << 20;
/// The time the logs start at, Unix seconds.
const T0: u64 = 1_764_000_000;
/// "Now" for lookups.
const NOW: u64 = T0 + 3_600;
/// Names the logs hold, and one they never do.
const NAMES: [&str; 6] = [
    "alfa.tor",
    "bravo.tor",
    "charlie.tor",
    "delta.tor",
    "echo.tor",
    "zulu.tor",
];

/// Runs one input; panics only on a finding.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some((at, payload)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let bytes = damage(base(), mode, usize::from(u16::from_le_bytes(*at)), payload);
    let dir = Scratch::new();
    open_as_quorum(&dir.0, &bytes);
    open_as_mirror(&dir.0, &bytes);
}

/// `log` with `payload` applied at `at` as `mode` says (see the module's
/// documentation).
pub fn damage(log: &[u8], mode: u8, at: usize, payload: &[u8]) -> Vec<u8> {
    let at = HEADER_LEN + at % (log.len() - HEADER_LEN + 1);
    let mut bytes = log.to_vec();
    match mode & 3 {
        0 => {
            let end = at + payload.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[at..end].copy_from_slice(payload);
        }
        1 => {
            bytes.splice(at..at, payload.iter().copied());
        }
        2 => {
            bytes.truncate(at);
            bytes.extend_from_slice(payload);
        }
        _ => {
            for (byte, flip) in bytes[at..].iter_mut().zip(payload) {
                *byte ^= flip;
            }
        }
    }
    if mode & 0x80 != 0 {
        reseal(&mut bytes);
    }
    bytes
}

/// Recomputes the checksum of every whole frame from the header on.
fn reseal(bytes: &mut [u8]) {
    let mut at = HEADER_LEN;
    while let Some(head) = bytes.get(at..at + FRAME_HEAD) {
        let body = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let end = at + FRAME_HEAD + body;
        if body > MAX_BODY || end + SUM_LEN > bytes.len() {
            return;
        }
        let sum = sodiumoxide::crypto::generichash::hash(&bytes[at..end], Some(SUM_LEN), None)
            .expect("BLAKE2b-128 of a frame");
        bytes[end..end + SUM_LEN].copy_from_slice(sum.as_ref());
        at = end + SUM_LEN;
    }
}

/// Opening at a Quorum: damage in the middle is refused, never cut.
fn open_as_quorum(dir: &Path, bytes: &[u8]) {
    write_log(dir, bytes);
    if let Ok((store, report)) = Store::open_with(dir, OnDamage::Refuse) {
        assert!(
            report.damage.is_none(),
            "a Quorum opened a log damaged in the middle: {report:?}"
        );
        answers(&store);
    }
}

/// Opening at a mirror: damage is cut. A cut log opens again as it was
/// left; writing to it and compacting it never makes its seq go down.
fn open_as_mirror(dir: &Path, bytes: &[u8]) {
    write_log(dir, bytes);
    let (store, report) = match Store::open(dir) {
        Ok(opened) => opened,
        Err(e) => {
            let refused = e.get_ref().is_some_and(|inner| inner.is::<DamageRefused>());
            assert!(!refused, "a mirror refused to cut damage: {e}");
            return;
        }
    };
    answers(&store);
    let seen = state(&store);
    drop(store);
    let (store, again) = Store::open(dir).expect("a log opens again after it was cut");
    assert_eq!(
        (again.truncated_bytes, again.damage),
        (0, None),
        "a log cut once is cut for good (first open: {report:?})"
    );
    assert_eq!(state(&store), seen, "a log opens again as it was left");
    if write(&store).is_ok() {
        answers(&store);
    }
    let _ = store.compact();
    let seq = store.seq();
    drop(store);
    if let Ok((store, _)) = Store::open(dir) {
        assert!(
            store.seq() >= seq,
            "the seq went down from {seq} on reopening"
        );
        answers(&store);
    }
}

/// What a reopened log must show again.
fn state(store: &Store) -> (u64, Option<SignedHead>, Option<SignedHead>, usize) {
    (
        store.seq(),
        store.current_head(),
        store.newest_head(),
        store.live_count(NOW),
    )
}

/// Every read a server makes of an open store; errors are answers too.
fn answers(store: &Store) {
    let _ = (store.garbage(), state(store));
    for name in names() {
        let _ = store.answer(name);
        let _ = store.get(name, NOW);
    }
    let (mut cursor, mut sent) = (0, None);
    for _ in 0..8 {
        let Ok(feed) = store.feed(cursor, sent, 4096) else {
            return;
        };
        if let Some((head, _)) = &feed.head {
            sent = Some(head.id());
        }
        if feed.complete || feed.cursor == cursor && feed.head.is_none() {
            return;
        }
        cursor = feed.cursor;
    }
}

/// What a server does next: one more record, and a head over it.
fn write(store: &Store) -> io::Result<()> {
    let seq = store.seq().saturating_add(1);
    let time = store
        .current_head()
        .map_or(T0, |h| h.time)
        .max(T0)
        .saturating_add(600);
    let entry = entry(seq, &record(9, "alfa.tor", seq, time - 60), time - 30);
    store.append(std::slice::from_ref(&entry))?;
    let sealing = store.prepare(&[], seq, time)?;
    let head = SignedHead::sign(seq, time, sealing.size(), sealing.root(), quorum());
    store.seal(&[], sealing, &head, true)
}

/// The log inputs damage: [`real_logs`]'s first.
pub fn base() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| real_logs().swap_remove(0).1)
}

/// Logs written by the store itself, by name: `base` (records, two
/// heads, a record waiting for a head), `compacted` (superseded records
/// dropped, a seq marker), `long` (25 records, a head after every five,
/// each name superseded again and again).
pub fn real_logs() -> Vec<(&'static str, Vec<u8>)> {
    let _ = onions::keys::init();
    let dir = Scratch::new();
    let build = |name: &'static str, steps: &dyn Fn(&Store) -> io::Result<()>| {
        let _ = fs::remove_file(dir.0.join("records.log"));
        let (store, _) = Store::open(&dir.0).expect("a new log opens");
        steps(&store).unwrap_or_else(|e| panic!("building the {name} log: {e}"));
        drop(store);
        let bytes = fs::read(dir.0.join("records.log")).expect("the log reads back");
        (name, bytes)
    };
    vec![
        build("base", &|store| {
            first_heads(store)?;
            store.append(&[entry(6, &record(5, "echo.tor", 1, T0 + 250), T0 + 260)])
        }),
        build("compacted", &|store| {
            first_heads(store)?;
            store.compact().map(drop)
        }),
        build("long", &|store| {
            for batch in 0..5u64 {
                let entries: Vec<Entry> = (1..=5u64)
                    .map(|i| {
                        let seq = batch * 5 + i;
                        let name = NAMES[(seq % 5) as usize];
                        let owner = (seq % 5) as u8 + 1;
                        let issued = T0 + seq * 10;
                        entry(seq, &record(owner, name, seq, issued), issued + 5)
                    })
                    .collect();
                seal(store, &entries, batch * 5 + 5, T0 + (batch + 1) * 100)?;
            }
            Ok(())
        }),
    ]
}

/// Three records and a head; two more (one superseding) and a head.
fn first_heads(store: &Store) -> io::Result<()> {
    let first: Vec<Entry> = [(1, "alfa.tor"), (2, "bravo.tor"), (3, "charlie.tor")]
        .iter()
        .map(|&(seq, name)| entry(seq, &record(seq as u8, name, 1, T0 + seq), T0 + 60))
        .collect();
    store.append(&first)?;
    seal(store, &[], 3, T0 + 100)?;
    let second = [
        entry(4, &record(2, "bravo.tor", 2, T0 + 150), T0 + 160),
        entry(5, &record(4, "delta.tor", 1, T0 + 170), T0 + 180),
    ];
    seal(store, &second, 5, T0 + 200)
}

/// Writes `entries` and a head at (`seq`, `time`) over them.
fn seal(store: &Store, entries: &[Entry], seq: u64, time: u64) -> io::Result<()> {
    let sealing = store.prepare(entries, seq, time)?;
    let head = SignedHead::sign(seq, time, sealing.size(), sealing.root(), quorum());
    store.seal(entries, sealing, &head, true)
}

/// The Quorum key the logs' attestations and heads are signed with.
fn quorum() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_seed(&[77; 32]))
}

/// A week-long record of `name` by owner number `owner`, signed, without
/// work (the store checks neither).
fn record(owner: u8, name: &str, serial: u64, issued: u64) -> Record {
    let key = SigningKey::from_seed(&[owner; 32]);
    let claim = Claim {
        name: RegisteredName::parse(name).expect("a valid name"),
        subdomains: BTreeMap::new(),
        contact: String::new(),
        serial,
        issued,
        expires: issued + 7 * 86_400,
        work: 0,
    };
    let mut record = Record::from_claim(claim, &key);
    record.sign_with(&key);
    record
}

/// `record` attested at `seq`, accepted at `accepted`.
fn entry(seq: u64, record: &Record, accepted: u64) -> Entry {
    let attestation = Attestation::sign(record.id(), seq, accepted, quorum());
    let text = onions::canonical::to_string(&attestation.to_value());
    Entry::new(seq, record, text)
}

/// [`NAMES`], parsed once.
fn names() -> &'static [RegisteredName] {
    static PARSED: OnceLock<Vec<RegisteredName>> = OnceLock::new();
    PARSED.get_or_init(|| {
        NAMES
            .iter()
            .map(|n| RegisteredName::parse(n).expect("a valid name"))
            .collect()
    })
}

/// Writes `bytes` as the only file of `dir`.
fn write_log(dir: &Path, bytes: &[u8]) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).expect("a scratch directory");
    fs::write(dir.join("records.log"), bytes).expect("the log is written");
}

/// A fresh directory, removed when dropped: under `$ONIONS_FUZZ_TMP` if
/// set, else in memory (`/dev/shm`) when there is one, else the temp dir.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let base = std::env::var_os("ONIONS_FUZZ_TMP")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
            .unwrap_or_else(std::env::temp_dir);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("onions-fuzz-replay-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
