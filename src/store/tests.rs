//! Tests of the store against real files in the system's temporary
//! directory: durability, recovery from torn and corrupt tails, collisions,
//! compaction and concurrent readers. Not a benchmark.

use super::*;
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

/// An entry whose texts say where they came from.
fn entry(seq: u64, expires: u64, label: &str) -> Entry {
    Entry {
        seq,
        expires,
        name: name(&format!("{label}.tor")),
        record: format!("{{\"name\":\"{label}.tor\",\"serial\":{seq}}}"),
        attestation: format!("{{\"seq\":{seq}}}"),
    }
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
    assert_eq!((report.entries_read, report.live, report.head), (0, 0, 0));
    let a = entry(1, LATER, "alpha");
    store.append(std::slice::from_ref(&a)).unwrap();
    assert_eq!(store.get(&a.name, NOW).unwrap(), Some(a.clone()));
    assert_eq!(store.get(&name("beta.tor"), NOW).unwrap(), None);
    assert_eq!(
        store.get(&a.name, LATER).unwrap(),
        None,
        "expired at its expiry"
    );
    assert_eq!((store.head(), store.live_count(0)), (1, 1));
}

#[test]
fn append_refuses_seq_not_above_head_and_applies_nothing() {
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
        (store.head(), store.live_count(0), file_len(&dir)),
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
    assert_eq!(store.garbage(NOW).0, 0);
    store
        .append(&[entry(3, LATER, "a"), entry(4, LATER, "a")])
        .unwrap();
    assert_eq!(store.get(&name("a.tor"), NOW).unwrap().unwrap().seq, 4);
    assert_eq!(store.live_count(0), 2);
    let (garbage, total) = store.garbage(NOW);
    assert!(garbage > 0 && garbage < total, "{garbage} of {total}");
    assert_eq!(seqs(&store.read_after(0, NOW, usize::MAX).unwrap()), [2, 4]);
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
        store.read_after(0, NOW, usize::MAX).unwrap()
    };
    let (store, report) = open(&dir);
    assert_eq!(
        report,
        OpenReport {
            entries_read: 40,
            live: 13,
            head: 40,
            truncated_bytes: 0
        }
    );
    assert_eq!(store.read_after(0, NOW, usize::MAX).unwrap(), before);
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
    assert_eq!((report.entries_read, report.live, report.head), (2, 2, 2));
    assert_eq!(file_len(&dir), good);
    assert_eq!(store.get(&name("c.tor"), NOW).unwrap(), None);
    store.append(&[entry(3, LATER, "d")]).unwrap();
    drop(store);
    let (store, report) = open(&dir);
    assert_eq!(
        (report.truncated_bytes, report.live, report.head),
        (0, 3, 3)
    );
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
    assert_eq!((report.entries_read, report.head), (1, 1));
    assert_eq!(store.get(&name("b.tor"), NOW).unwrap(), None);
    assert!(store.get(&name("a.tor"), NOW).unwrap().is_some());
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
fn read_after_keeps_order_liveness_and_budget() {
    let dir = TempDir::new("after");
    let (store, _) = open(&dir);
    let batch: Vec<Entry> = (1..=1000)
        .map(|seq| {
            let expires = if seq % 10 == 0 { NOW } else { LATER };
            entry(seq, expires, &format!("n{}", seq % 300))
        })
        .collect();
    store.append(&batch).unwrap();
    let all = store.read_after(0, NOW, usize::MAX).unwrap();
    let want: Vec<u64> = (701..=1000).filter(|s| s % 10 != 0).collect();
    assert_eq!(
        seqs(&all),
        want,
        "the newest per name, unexpired, ascending"
    );
    assert_eq!(
        seqs(&store.read_after(900, NOW, usize::MAX).unwrap()),
        want[want.len() - 90..]
    );
    let size = all[0].record.len() + all[0].attestation.len();
    let some = store.read_after(0, NOW, 3 * size + 1).unwrap();
    assert_eq!(seqs(&some), want[..3]);
    assert_eq!(seqs(&store.read_after(0, NOW, 1).unwrap()), want[..1]);
    assert!(store.read_after(1000, NOW, usize::MAX).unwrap().is_empty());
}

#[test]
fn colliding_hashes_keep_names_apart() {
    let dir = TempDir::new("collide");
    let hasher = || NameHasher::constant(42);
    let (store, _) = Store::open_with(&dir.0, hasher()).unwrap();
    store
        .append(&[
            entry(1, LATER, "a"),
            entry(2, LATER, "b"),
            entry(3, LATER, "c"),
        ])
        .unwrap();
    store
        .append(&[entry(4, LATER, "b"), entry(5, LATER, "a")])
        .unwrap();
    let check = |store: &Store| {
        assert_eq!(store.live_count(0), 3);
        for (label, seq) in [("a", 5), ("b", 4), ("c", 3)] {
            let got = store.get(&name(&format!("{label}.tor")), NOW).unwrap();
            assert_eq!(got.map(|e| e.seq), Some(seq), "{label}");
        }
        assert_eq!(store.get(&name("d.tor"), NOW).unwrap(), None);
        assert_eq!(
            seqs(&store.read_after(0, NOW, usize::MAX).unwrap()),
            [3, 4, 5]
        );
    };
    check(&store);
    drop(store);
    let (store, _) = Store::open_with(&dir.0, hasher()).unwrap();
    check(&store);
    store.compact(NOW).unwrap();
    check(&store);
    drop(store);
    check(&Store::open_with(&dir.0, hasher()).unwrap().0);
}

#[test]
fn compaction_keeps_exactly_the_live_unexpired_set() {
    let dir = TempDir::new("compact");
    let (store, _) = open(&dir);
    for seq in 1..=600 {
        let expires = if seq % 7 == 0 { NOW - 7200 } else { LATER };
        store
            .append(&[entry(seq, expires, &format!("n{}", seq % 50))])
            .unwrap();
    }
    let live = store.read_after(0, NOW, usize::MAX).unwrap();
    let (garbage, total) = store.garbage(NOW);
    let report = store.compact(NOW).unwrap();
    assert_eq!(report.before_bytes, total);
    assert_eq!(report.after_bytes, file_len(&dir));
    assert!(report.after_bytes < report.before_bytes / 5, "{report:?}");
    assert!(
        report.after_bytes >= total - garbage,
        "{report:?} {garbage}"
    );
    assert_eq!(report.live, live.len());
    assert_eq!(store.live_count(0), live.len());
    assert_eq!(store.read_after(0, NOW, usize::MAX).unwrap(), live);
    assert!(!dir.0.join(COMPACT_FILE).exists());
    store.append(&[entry(601, LATER, "n1")]).unwrap();
    drop(store);
    let (store, report) = open(&dir);
    assert_eq!(
        (report.live, report.head, report.truncated_bytes),
        (live.len(), 601, 0)
    );
    assert_eq!(store.get(&name("n1.tor"), NOW).unwrap().unwrap().seq, 601);
}

#[test]
fn head_survives_compaction_that_drops_its_record() {
    let dir = TempDir::new("head");
    let (store, _) = open(&dir);
    store
        .append(&[entry(1, LATER, "a"), entry(2, 500, "b")])
        .unwrap();
    let report = store.compact(NOW).unwrap();
    assert_eq!((report.live, store.head()), (1, 2));
    assert!(store.garbage(NOW).0 < 64, "only the head marker is garbage");
    drop(store);
    let (store, report) = open(&dir);
    assert_eq!((report.live, report.head), (1, 2));
    assert_eq!(store.get(&name("b.tor"), 0).unwrap(), None);
    assert!(store.append(&[entry(2, LATER, "c")]).is_err());
    store.append(&[entry(3, LATER, "c")]).unwrap();
    assert_eq!(store.head(), 3);
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
fn readers_see_consistent_data_during_appends_and_compaction() {
    let dir = TempDir::new("threads");
    let store = Arc::new(open(&dir).0);
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
        store.append(&entries).unwrap();
        if batch % 50 == 49 {
            store.compact(NOW).unwrap();
        }
    }
    done.store(true, Ordering::Relaxed);
    let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
    assert_eq!((store.head(), store.live_count(0)), (2000, 37));
}

/// Reads until `done`, checking every answer; returns how many reads ran.
fn read_until(store: &Store, done: &AtomicBool) -> usize {
    let mut reads = 0;
    while !done.load(Ordering::Relaxed) {
        let floor = store.head();
        let all = store.read_after(0, NOW, usize::MAX).unwrap();
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(all
            .iter()
            .all(|e| *e == entry(e.seq, LATER, e.name.label())));
        for e in &all {
            let got = store.get(&e.name, NOW).unwrap().unwrap();
            assert!(got.seq >= e.seq && got.name == e.name);
            assert!(got.seq <= store.head());
        }
        assert!(store.head() >= floor);
        reads += 1;
    }
    reads
}

#[test]
fn the_index_stays_near_twenty_bytes_a_name() {
    let hasher = NameHasher::random();
    let mut index = Index::with_capacity(0);
    let n = 100_000u64;
    for i in 0..n {
        let name = name(&format!("n{i}.tor"));
        index
            .insert(hasher.hash(&name), &name, 12 + i * 100, |_| unreachable!())
            .unwrap();
    }
    let per_name = index.heap_bytes() as f64 / n as f64;
    assert!(per_name <= 24.0, "{per_name} bytes a name");
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
