//! The log: appends and their seq rule, supersession by name, replay at
//! reopening, torn and damaged tails cut or refused, foreign and
//! half-created files, a feed without a head, the live count, and the
//! timing of fsyncs.

use super::*;

#[test]
fn store_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Store>();
}

#[test]
fn a_record_frame_is_its_framing_name_and_texts() {
    let e = entry(7, 100, "framed");
    let mut out = Vec::new();
    let len = super::super::format::push_record(&e, &mut out).unwrap();
    let [record, attestation] = stored_text_lens(&e);
    assert!(record < e.record.len() && attestation < e.attestation.len());
    let said = e.name.as_str().len() + record + attestation;
    assert_eq!(len as usize, RECORD_FRAMING + said);
    assert_eq!(out.len() as u64, len);
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
fn a_version_2_log_with_a_head_is_read_marked_3_and_packed_by_compaction() {
    let dir = TempDir::new("version-2");
    let old = [entry(1, LATER, "a"), entry(2, LATER, "b")];
    let (root, size) = reference(&old, 2, NOW);
    let head = SignedHead::sign(2, NOW, size, root, &key());
    let mut bytes = b"onionlog\x02\0\0\0".to_vec();
    for e in &old {
        format::push_text_record(e, &mut bytes).unwrap();
    }
    format::push_text_head(&head.canonical(), &mut bytes).unwrap();
    format::push_seq(2, &mut bytes).unwrap();
    fs::write(dir.log(), &bytes).unwrap();
    let (store, report) = open(&dir);
    assert_eq!((report.live, report.seq, report.truncated_bytes), (2, 2, 0));
    assert_eq!(store.current_head().as_ref(), Some(&head), "its text head");
    assert_eq!(&fs::read(dir.log()).unwrap()[8..12], &3u32.to_le_bytes());
    let newer = seal_at(&store, &[entry(3, LATER, "c")], 3, NOW);
    drop(store);
    let (store, report) = open(&dir);
    assert_eq!((report.live, report.seq), (3, 3));
    store.compact().unwrap().expect("compacted");
    let all = [&old[0], &old[1], &entry(3, LATER, "c")];
    let mut packed = format::header().to_vec();
    for e in all {
        format::push_record(e, &mut packed).unwrap();
        assert_eq!(store.get(&e.name, NOW).unwrap().as_ref(), Some(e));
    }
    format::push_signed_head(&newer.canonical(), &mut packed).unwrap();
    format::push_seq(3, &mut packed).unwrap();
    assert_eq!(fs::read(dir.log()).unwrap(), packed, "every frame packed");
    drop(store);
    assert_eq!(open(&dir).1.live, 3);
}

#[test]
fn a_newer_log_format_is_refused_with_its_version() {
    let dir = TempDir::new("version-4");
    fs::write(dir.log(), b"onionlog\x04\0\0\0").unwrap();
    let err = Store::open(&dir.0).err().unwrap();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("version 4"), "{err}");
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
