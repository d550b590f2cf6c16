//! Tests of the store against real files in the system's temporary
//! directory: durability, recovery from torn and corrupt tails, names that
//! share index keys, the tree against the reference root, proofs, catch-up
//! order, compaction with retention, and concurrent readers. Not a
//! benchmark.

use super::*;
use crate::keys::SigningKey;
use crate::merkle::{Leaf, EMPTY};
use crate::record::RecordId;
use sodiumoxide::crypto::hash::sha256;
use std::collections::BTreeMap;
use std::fs;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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

/// The live set (protocol.md §10.1) as of (seq, time) of everything in
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

#[test]
fn store_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Store>();
}

#[test]
fn append_then_get_round_trips() {
    let dir = TempDir::new("round");
    let (store, report) = open(&dir);
    assert_eq!((report.entries_read, report.live, report.seq), (0, 0, 0));
    let a = entry(1, LATER, "alpha");
    store.append(std::slice::from_ref(&a)).unwrap();
    assert_eq!(store.get(&a.name, NOW).unwrap(), Some(a.clone()));
    assert_eq!(store.get(&name("beta.tor"), NOW).unwrap(), None);
    assert_eq!(
        store.get(&a.name, LATER).unwrap(),
        None,
        "expired at its expiry"
    );
    assert_eq!((store.seq(), store.live_count(0)), (1, 1));
}

#[test]
fn append_refuses_seq_not_above_the_last_and_applies_nothing() {
    let dir = TempDir::new("order");
    let (store, _) = open(&dir);
    store.append(&[entry(5, LATER, "a")]).unwrap();
    let len = file_len(&dir);
    for bad in [
        vec![entry(5, LATER, "b")],
        vec![entry(7, LATER, "b"), entry(6, LATER, "c")],
    ] {
        let err = store.append(&bad).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
    assert_eq!(
        (store.seq(), store.live_count(0), file_len(&dir)),
        (5, 1, len)
    );
    assert_eq!(store.get(&name("b.tor"), NOW).unwrap(), None);
}

#[test]
fn a_newer_entry_supersedes_by_name() {
    let dir = TempDir::new("supersede");
    let (store, _) = open(&dir);
    store
        .append(&[entry(1, LATER, "a"), entry(2, LATER, "b")])
        .unwrap();
    assert_eq!(store.garbage().0, 0);
    store
        .append(&[entry(3, LATER, "a"), entry(4, LATER, "a")])
        .unwrap();
    assert_eq!(store.get(&name("a.tor"), NOW).unwrap().unwrap().seq, 4);
    assert_eq!(store.live_count(0), 2);
    let (garbage, total) = store.garbage();
    assert!(garbage > 0 && garbage < total, "{garbage} of {total}");
    assert_eq!(seqs(&everything(&store)), [2, 4]);
}

#[test]
fn reopening_replays_the_same_state() {
    let dir = TempDir::new("reopen");
    let before = {
        let (store, _) = open(&dir);
        for seq in 1..=40 {
            let label = format!("n{}", seq % 13);
            store.append(&[entry(seq, LATER + seq, &label)]).unwrap();
        }
        everything(&store)
    };
    let (store, report) = open(&dir);
    assert_eq!(
        report,
        OpenReport {
            entries_read: 40,
            live: 13,
            seq: 40,
            truncated_bytes: 0,
            head: None,
            damage: None,
        }
    );
    assert_eq!(everything(&store), before);
    for e in &before {
        assert_eq!(store.get(&e.name, NOW).unwrap().as_ref(), Some(e));
    }
}

#[test]
fn a_torn_tail_is_cut_and_the_log_goes_on() {
    let dir = TempDir::new("torn");
    let (store, _) = open(&dir);
    store.append(&[entry(1, LATER, "a")]).unwrap();
    store.append(&[entry(2, LATER, "b")]).unwrap();
    let good = file_len(&dir);
    store.append(&[entry(3, LATER, "c")]).unwrap();
    let full = file_len(&dir);
    drop(store);
    let file = OpenOptions::new().write(true).open(dir.log()).unwrap();
    file.set_len(full - 7).unwrap();
    let (store, report) = open(&dir);
    assert_eq!(report.truncated_bytes, full - 7 - good);
    assert_eq!((report.entries_read, report.live, report.seq), (2, 2, 2));
    assert_eq!(file_len(&dir), good);
    assert_eq!(store.get(&name("c.tor"), NOW).unwrap(), None);
    store.append(&[entry(3, LATER, "d")]).unwrap();
    drop(store);
    let (store, report) = open(&dir);
    assert_eq!((report.truncated_bytes, report.live, report.seq), (0, 3, 3));
    assert_eq!(store.get(&name("d.tor"), NOW).unwrap().unwrap().seq, 3);
}

#[test]
fn a_flipped_byte_in_the_last_entry_is_cut() {
    let dir = TempDir::new("flip");
    let (store, _) = open(&dir);
    store.append(&[entry(1, LATER, "a")]).unwrap();
    let good = file_len(&dir);
    store.append(&[entry(2, LATER, "b")]).unwrap();
    let full = file_len(&dir);
    drop(store);
    let mut bytes = fs::read(dir.log()).unwrap();
    bytes[(good + (full - good) / 2) as usize] ^= 0x04;
    fs::write(dir.log(), &bytes).unwrap();
    let (store, report) = open(&dir);
    assert_eq!(report.truncated_bytes, full - good);
    assert_eq!((report.entries_read, report.seq), (1, 1));
    assert_eq!(store.get(&name("b.tor"), NOW).unwrap(), None);
    assert!(store.get(&name("a.tor"), NOW).unwrap().is_some());
}

#[test]
fn damage_in_the_middle_is_refused_or_cut_and_reported() {
    let dir = TempDir::new("middle");
    let (store, _) = open(&dir);
    store.append(&[entry(1, LATER, "a")]).unwrap();
    let good = file_len(&dir);
    store.append(&[entry(2, LATER, "b")]).unwrap();
    let second = file_len(&dir);
    for seq in 3..=6 {
        store
            .append(&[entry(seq, LATER, &format!("n{seq}"))])
            .unwrap();
    }
    let full = file_len(&dir);
    drop(store);
    let mut bytes = fs::read(dir.log()).unwrap();
    bytes[(good + (second - good) / 2) as usize] ^= 0x04;
    fs::write(dir.log(), &bytes).unwrap();

    let Err(refused) = Store::open_with(&dir.0, OnDamage::Refuse) else {
        panic!("damage in the middle is refused");
    };
    let inner = refused
        .get_ref()
        .and_then(|e| e.downcast_ref::<DamageRefused>());
    let damage = inner.expect("the refusal says what follows").damage;
    assert_eq!((damage.at, damage.resumes_at), (good, second));
    assert_eq!((damage.frames, damage.seq), (4, 6));
    assert_eq!(file_len(&dir), full, "nothing is cut when refused");

    let (store, report) = open(&dir);
    assert_eq!(report.damage, Some(damage));
    assert_eq!((report.seq, report.truncated_bytes), (1, full - good));
    assert!(store.get(&name("n6.tor"), NOW).unwrap().is_none());
}

#[test]
fn a_foreign_file_is_refused_not_cut() {
    let dir = TempDir::new("foreign");
    fs::write(dir.log(), b"this is not a log at all").unwrap();
    let err = Store::open(&dir.0).err().unwrap();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("records.log"), "{err}");
    assert_eq!(file_len(&dir), 24);
}

#[test]
fn a_log_cut_short_at_creation_gets_its_header() {
    let dir = TempDir::new("empty");
    fs::write(dir.log(), b"onio").unwrap();
    let (store, report) = open(&dir);
    assert_eq!((report.entries_read, report.truncated_bytes), (0, 0));
    store.append(&[entry(1, LATER, "a")]).unwrap();
    drop(store);
    assert_eq!(open(&dir).1.live, 1);
}

#[test]
fn a_feed_without_a_head_keeps_order_newest_and_budget() {
    let dir = TempDir::new("after");
    let (store, _) = open(&dir);
    let batch: Vec<Entry> = (1..=1000)
        .map(|seq| {
            let expires = if seq % 10 == 0 { NOW } else { LATER };
            entry(seq, expires, &format!("n{}", seq % 300))
        })
        .collect();
    store.append(&batch).unwrap();
    let all = everything(&store);
    let want: Vec<u64> = (701..=1000).collect();
    assert_eq!(
        seqs(&all),
        want,
        "the newest per name, expired ones too, ascending"
    );
    let tail = store.feed(900, None, usize::MAX).unwrap();
    assert_eq!(seqs(&tail.after), want[want.len() - 100..]);
    assert_eq!(tail.cursor, 1000);
    let size = all[0].record.len() + all[0].attestation.len();
    let some = store.feed(0, None, 3 * size + 1).unwrap();
    assert_eq!(
        (seqs(&some.after), some.complete),
        (want[..3].to_vec(), false)
    );
    assert_eq!(some.cursor, 703);
    assert_eq!(seqs(&store.feed(0, None, 1).unwrap().after), want[..1]);
    let done = store.feed(1000, None, usize::MAX).unwrap();
    assert!(done.after.is_empty() && done.complete && done.head.is_none());
}

/// The reference live set as leaves, as of (seq, time).
fn reference_leaves(log: &[Entry], seq: u64, time: u64) -> Vec<Leaf> {
    let mut newest: BTreeMap<&RegisteredName, &Entry> = BTreeMap::new();
    for e in log.iter().filter(|e| e.seq <= seq) {
        newest.insert(&e.name, e);
    }
    newest
        .values()
        .filter(|e| e.expires > time)
        .map(|e| leaf_of(e))
        .collect()
}

/// A random walk of claims, renewals and expiries, some written with
/// their head (as at the Quorum) and some appended first and covered by a
/// later head (as at a mirror), some across a restart: every head's root
/// and size, and every answer's proof, are those of the reference.
#[test]
fn heads_and_proofs_follow_the_reference_through_random_changes() {
    for seed in [12345u64, 777, 20_261_205] {
        let dir = TempDir::new("roots");
        let mut store = open(&dir).0;
        let (mut log, mut x, mut seq, mut time) = (Vec::new(), seed, 0, NOW);
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..30u64 {
            let batch: Vec<Entry> = (0..1 + next() % 60)
                .map(|_| {
                    seq += 1;
                    let n = next();
                    entry(seq, time + 1 + n % 400, &format!("n{}", n % 211))
                })
                .collect();
            let head = if round % 3 == 0 {
                store.append(&batch).unwrap();
                seal_at(&store, &[], seq, time)
            } else {
                seal_at(&store, &batch, seq, time)
            };
            log.extend(batch);
            let live = reference_leaves(&log, seq, time);
            assert_eq!(
                head.root,
                merkle::reference_root(&live),
                "seed {seed} round {round}"
            );
            assert_eq!(head.size, live.len() as u64);
            for _ in 0..5 {
                let asked = name(&format!("n{}.tor", next() % 230));
                let key = LeafKey::of(&asked);
                let proof = match store.answer(&asked).unwrap() {
                    Answer::Found { proof, .. } | Answer::NotFound { proof, .. } => proof,
                    Answer::NoHead => panic!("no head after a seal"),
                };
                assert_eq!(proof, merkle::reference_proof(&live, &key), "{asked}");
            }
            if round % 10 == 9 {
                drop(store);
                let (again, report) = open(&dir);
                assert_eq!(report.head, Some(head), "restored after a restart");
                store = again;
            }
            time += 37;
        }
        let head = seal_at(&store, &[], seq, time + 1000);
        assert_eq!((head.root, head.size), (EMPTY, 0), "everything expired");
    }
}

#[test]
fn answers_carry_proofs_that_verify_against_the_head() {
    let dir = TempDir::new("answers");
    let (store, _) = open(&dir);
    assert!(matches!(
        store.answer(&name("a.tor")).unwrap(),
        Answer::NoHead
    ));
    let batch: Vec<Entry> = (1..=60)
        .map(|seq| entry(seq, NOW + 100 + seq, &format!("n{seq}")))
        .collect();
    let head = seal_at(&store, &batch, 60, NOW);
    for e in &batch {
        let Answer::Found {
            entry,
            proof,
            head: text,
        } = store.answer(&e.name).unwrap()
        else {
            panic!("{} not found", e.name);
        };
        assert_eq!(&entry, e);
        assert_eq!(&*text, head.canonical());
        let leaf = leaf_of(e);
        proof
            .verify_presence(&leaf.key, &leaf.record, leaf.seq, &head.root)
            .unwrap();
        assert_eq!(proof, merkle::reference_proof(&leafs(&batch), &leaf.key));
    }
    for label in ["absent", "n61", "other"] {
        let Answer::NotFound { proof, .. } = store.answer(&name(&format!("{label}.tor"))).unwrap()
        else {
            panic!("{label} found");
        };
        let key = LeafKey::of(&name(&format!("{label}.tor")));
        proof.verify_absence(&key, &head.root).unwrap();
        assert_eq!(proof, merkle::reference_proof(&leafs(&batch), &key));
    }
}

fn leafs(entries: &[Entry]) -> Vec<Leaf> {
    entries.iter().map(leaf_of).collect()
}

#[test]
fn records_after_the_head_wait_for_the_next_one() {
    let dir = TempDir::new("wait");
    let (store, _) = open(&dir);
    let first = [entry(1, LATER, "a"), entry(2, LATER, "b")];
    let head = seal_at(&store, &first, 2, NOW);
    store
        .append(&[entry(3, LATER, "a"), entry(4, LATER, "c")])
        .unwrap();
    let Answer::Found { entry: a, .. } = store.answer(&name("a.tor")).unwrap() else {
        panic!()
    };
    assert_eq!(a.seq, 1, "a's record as of the head");
    assert!(matches!(
        store.answer(&name("c.tor")).unwrap(),
        Answer::NotFound { .. }
    ));
    let feed = store.feed(0, None, usize::MAX).unwrap();
    assert_eq!(seqs(&feed.before), [1, 2]);
    assert_eq!(feed.head.as_ref().map(|h| &h.0), Some(&head));
    assert_eq!(seqs(&feed.after), [3, 4]);
    let dropped = store.prepare(&[], 4, NOW + 1).unwrap();
    assert_ne!(dropped.root(), head.root);
    drop(dropped);
    assert_eq!(
        store.current_head(),
        Some(head.clone()),
        "a prepared head changes nothing"
    );
    assert!(store
        .advance(store.prepare(&[], 4, NOW + 1).unwrap())
        .is_err());
    drop(store);
    let (store, report) = open(&dir);
    assert_eq!(
        report.head,
        Some(head.clone()),
        "taken again after a restart"
    );
    let next = seal_at(&store, &[], 4, NOW + 2);
    let mut log = first.to_vec();
    log.extend([entry(3, LATER, "a"), entry(4, LATER, "c")]);
    assert_eq!((next.root, next.size), reference(&log, 4, NOW + 2));
    let Answer::Found { entry: a, .. } = store.answer(&name("a.tor")).unwrap() else {
        panic!()
    };
    assert_eq!(a.seq, 3);
}

#[test]
fn a_seal_needs_the_prepared_root_and_advance_needs_no_current_head() {
    let dir = TempDir::new("nomatch");
    let (store, _) = open(&dir);
    store.append(&[entry(1, LATER, "a")]).unwrap();
    let sealing = store.prepare(&[], 1, NOW).unwrap();
    let wrong = SignedHead::sign(1, NOW, 7, [3; 32], &key());
    assert!(
        store.seal(&[], sealing, &wrong, true).is_err(),
        "root and size must be the prepared ones"
    );
    store.advance(store.prepare(&[], 1, NOW).unwrap()).unwrap();
    assert!(matches!(
        store.answer(&name("a.tor")).unwrap(),
        Answer::NoHead
    ));
}

#[test]
fn names_sharing_index_keys_stay_apart() {
    state::KEY_MASK.with(|m| m.set(0xff00_0000_0000_0000));
    let dir = TempDir::new("collide");
    let (store, _) = open(&dir);
    let mut log: Vec<Entry> = (1..=40)
        .map(|seq| entry(seq, LATER, &format!("n{seq}")))
        .collect();
    let head = seal_at(&store, &log, 40, NOW);
    assert_eq!((head.root, head.size), reference(&log, 40, NOW));
    let more = [
        entry(41, LATER, "n3"),
        entry(42, NOW + 5, "n7"),
        entry(43, LATER, "x"),
    ];
    store.append(&more).unwrap();
    log.extend(more.iter().cloned());
    let next = seal_at(&store, &[], 43, NOW + 10);
    assert_eq!((next.root, next.size), reference(&log, 43, NOW + 10));
    for label in ["n3", "n9", "x"] {
        let Answer::Found { entry, proof, .. } =
            store.answer(&name(&format!("{label}.tor"))).unwrap()
        else {
            panic!("{label}");
        };
        let leaf = leaf_of(&entry);
        proof
            .verify_presence(&leaf.key, &leaf.record, leaf.seq, &next.root)
            .unwrap();
    }
    drop(store);
    let (store, report) = open(&dir);
    assert_eq!(report.head, Some(next));
    assert_eq!(store.get(&name("n3.tor"), NOW).unwrap().unwrap().seq, 41);
    state::KEY_MASK.with(|m| m.set(u64::MAX));
}

#[test]
fn compaction_keeps_newest_records_until_retention_and_the_head() {
    let dir = TempDir::new("compact");
    let (store, _) = open(&dir);
    let mut log = Vec::new();
    for seq in 1..=600 {
        let expires = if seq % 7 == 0 { NOW - 7200 } else { LATER };
        log.push(entry(seq, expires, &format!("n{}", seq % 50)));
    }
    store.append(&log).unwrap();
    let head = seal_at(&store, &[], 600, NOW);
    let kept = everything(&store);
    let report = store.compact().unwrap().unwrap();
    assert!(report.after_bytes < report.before_bytes / 5, "{report:?}");
    assert_eq!(report.after_bytes, file_len(&dir));
    assert_eq!(report.live, 50, "expired records are kept within retention");
    assert_eq!(everything(&store), kept);
    assert_eq!(store.current_head(), Some(head.clone()));
    let late = NOW - 7200 + RETENTION;
    let later = seal_at(&store, &[], 600, late);
    store.compact().unwrap().unwrap();
    let past: Vec<u64> = kept
        .iter()
        .filter(|e| e.expires == NOW - 7200)
        .map(|e| e.seq)
        .collect();
    assert!(!past.is_empty());
    assert!(everything(&store).iter().all(|e| !past.contains(&e.seq)));
    drop(store);
    let (store, report) = open(&dir);
    assert_eq!((report.seq, report.head), (600, Some(later)));
    assert_eq!(report.live, 50 - past.len());
    store.append(&[entry(601, LATER, "n1")]).unwrap();
    assert_eq!(store.get(&name("n1.tor"), NOW).unwrap().unwrap().seq, 601);
    assert!(
        store.compact().unwrap().is_none(),
        "waits while a record waits for a head"
    );
}

#[test]
fn the_seq_survives_compaction_that_drops_its_record() {
    let dir = TempDir::new("seq");
    let (store, _) = open(&dir);
    store
        .append(&[entry(1, LATER, "a"), entry(2, 500, "b")])
        .unwrap();
    seal_at(&store, &[], 2, 500 + RETENTION);
    let report = store.compact().unwrap().unwrap();
    assert_eq!((report.live, store.seq()), (1, 2));
    drop(store);
    let (store, report) = open(&dir);
    assert_eq!((report.live, report.seq), (1, 2));
    assert!(report.head.is_some());
    assert!(store.append(&[entry(2, LATER, "c")]).is_err());
    store.append(&[entry(3, LATER, "c")]).unwrap();
    assert_eq!(store.seq(), 3);
}

#[test]
fn an_unfinished_compaction_is_removed_at_open() {
    let dir = TempDir::new("leftover");
    drop(open(&dir));
    fs::write(dir.0.join(COMPACT_FILE), b"half").unwrap();
    let (_store, report) = open(&dir);
    assert_eq!(report.truncated_bytes, 0);
    assert!(!dir.0.join(COMPACT_FILE).exists());
}

#[test]
fn readers_see_consistent_answers_during_seals_and_compaction() {
    let dir = TempDir::new("threads");
    let store = Arc::new(open(&dir).0);
    seal_at(&store, &[], 0, NOW);
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (store, done) = (Arc::clone(&store), Arc::clone(&done));
            std::thread::spawn(move || read_until(&store, &done))
        })
        .collect();
    for batch in 0..200u64 {
        let entries: Vec<Entry> = (1..=10)
            .map(|i| {
                let seq = batch * 10 + i;
                entry(seq, LATER, &format!("n{}", seq % 37))
            })
            .collect();
        seal_at(&store, &entries, batch * 10 + 10, NOW + batch);
        if batch % 50 == 49 {
            store.compact().unwrap();
        }
    }
    done.store(true, Ordering::Relaxed);
    let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
    assert_eq!((store.seq(), store.live_count(0)), (2000, 37));
}

/// Reads until `done`, checking every answer against the head it came
/// with; returns how many rounds ran.
fn read_until(store: &Store, done: &AtomicBool) -> usize {
    let mut reads = 0;
    while !done.load(Ordering::Relaxed) {
        for i in 0..37 {
            let asked = name(&format!("n{i}.tor"));
            match store.answer(&asked).unwrap() {
                Answer::Found { entry, proof, head } => {
                    let head = SignedHead::from_json(&head).unwrap();
                    let leaf = leaf_of(&entry);
                    assert_eq!(entry.name, asked);
                    proof
                        .verify_presence(&leaf.key, &leaf.record, leaf.seq, &head.root)
                        .unwrap();
                    assert!(entry.seq <= head.seq);
                }
                Answer::NotFound { proof, head } => {
                    let head = SignedHead::from_json(&head).unwrap();
                    proof
                        .verify_absence(&LeafKey::of(&asked), &head.root)
                        .unwrap();
                }
                Answer::NoHead => panic!("a head was sealed before reading"),
            }
        }
        let feed = store.feed(0, None, usize::MAX).unwrap();
        let all = [feed.before, feed.after].concat();
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        reads += 1;
    }
    reads
}

#[test]
fn the_live_count_leaves_out_expired_and_superseded_records() {
    let dir = TempDir::new("live-count");
    let (store, _) = open(&dir);
    store
        .append(&[
            entry(1, NOW + 10, "a"),
            entry(2, NOW + 20, "b"),
            entry(3, NOW + 20, "c"),
        ])
        .unwrap();
    assert_eq!(store.live_count(NOW), 3);
    assert_eq!(store.live_count(NOW + 10), 2, "a expired at NOW + 10");
    assert_eq!(store.live_count(NOW + 20), 0);
    store.append(&[entry(4, NOW + 30, "a")]).unwrap();
    assert_eq!(store.live_count(NOW + 10), 3, "a was claimed again");
    assert_eq!(store.live_count(NOW + 25), 1);
    drop(store);
    let (store, _) = open(&dir);
    assert_eq!(store.live_count(NOW + 10), 3, "the same after replay");
}

#[test]
fn fsyncs_of_appends_and_heads_are_timed_and_unsynced_seals_are_not() {
    let dir = TempDir::new("fsync-times");
    let (store, _) = open(&dir);
    assert_eq!(store.fsync_latency().count, 0);
    store.append(&[entry(1, LATER, "one")]).unwrap();
    assert_eq!(store.fsync_latency().count, 1);
    seal_at(&store, &[entry(2, LATER, "two")], 2, NOW);
    let timed = store.fsync_latency();
    assert_eq!(timed.count, 2);
    assert!(timed.cumulative.windows(2).all(|w| w[0] <= w[1]));
    assert!(timed.cumulative.iter().all(|&c| c <= timed.count));
    assert!(timed.sum_ns > 0);
    // A mirror's seal of a matched head is not fsynced, and not timed.
    let sealing = store.prepare(&[], 2, NOW + 1).unwrap();
    let head = SignedHead::sign(2, NOW + 1, sealing.size(), sealing.root(), &key());
    store.seal(&[], sealing, &head, false).unwrap();
    assert_eq!(store.fsync_latency().count, 2);
}
