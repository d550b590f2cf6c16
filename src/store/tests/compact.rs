//! Compaction: what it keeps (newest records until retention, the head,
//! the seq), a leftover unfinished compaction, and readers that keep
//! getting consistent, proven answers while seals and compactions run.

use super::*;

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
