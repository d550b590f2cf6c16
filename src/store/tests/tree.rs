//! Heads and the tree: roots and proofs held against the reference
//! through random changes and restarts, answers that verify, records
//! waiting for the next head, the seal's preconditions, and names whose
//! index keys collide.

use super::*;

/// A random walk of claims, renewals, releases and expiries, some written with
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
                    let mut e = entry(seq, time + 1 + n % 400, &format!("n{}", n % 211));
                    e.release = n % 7 == 0;
                    e
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

/// A release (PROTOCOL.md §12.3) holds its name at the Quorum until it
/// expires but is never in the live set: absent from the tree, the answer
/// and the live count, across a restart and a compaction.
#[test]
fn a_release_holds_its_name_outside_the_live_set() {
    let dir = TempDir::new("release");
    let store = open(&dir).0;
    let claim = entry(1, LATER, "gone");
    let mut release = entry(2, LATER, "gone");
    release.release = true;
    let other = entry(3, LATER, "kept");
    seal_at(&store, std::slice::from_ref(&claim), 1, NOW);
    assert_eq!(store.live_count(NOW), 1);
    let head = seal_at(&store, &[release.clone(), other.clone()], 3, NOW + 1);
    let log = [claim, release.clone(), other];
    assert_eq!(head.root, reference(&log, 3, NOW + 1).0);
    assert_eq!(head.size, 1, "only the other name is live");
    let check = |store: &Store| {
        assert_eq!(store.live_count(NOW + 1), 1);
        let held = store.get(&name("gone.tor"), NOW + 1).unwrap().unwrap();
        assert!(held.release, "the release holds the name");
        assert!(matches!(
            store.answer(&name("gone.tor")).unwrap(),
            Answer::NotFound { .. }
        ));
        assert!(store.get(&name("gone.tor"), LATER).unwrap().is_none());
    };
    check(&store);
    drop(store);
    let store = open(&dir).0;
    check(&store);
    store.compact().unwrap();
    check(&store);
    let kept = everything(&store);
    assert!(kept.contains(&release), "compaction keeps the release");
}
