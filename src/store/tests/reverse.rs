//! Reverse lookups: names pointing at an onion as owner or by a
//! subdomain, answered as of the current head only (records waiting for a
//! head, superseded and expired ones left out), ascending and capped, and
//! the index rebuilt exactly at open and by compaction.

use super::*;
use crate::onion::OnionAddress;

/// The address of the key with `seed`.
fn onion(seed: u8) -> OnionAddress {
    crate::keys::init().unwrap();
    OnionAddress::from_key(SigningKey::from_seed(&[seed; 32]).public())
}

/// An entry for `label.tor` owned by onion `owner`, with subdomains to the
/// onions of `subs`, whose record text holds what the index reads.
fn pointing(seq: u64, expires: u64, label: &str, owner: u8, subs: &[(&str, u8)]) -> Entry {
    let subdomains: serde_json::Map<String, serde_json::Value> = subs
        .iter()
        .map(|(sub, seed)| ((*sub).to_owned(), onion(*seed).to_string().into()))
        .collect();
    let record = crate::canonical::to_string(&serde_json::json!({
        "name": format!("{label}.tor"),
        "onion": onion(owner).to_string(),
        "serial": seq,
        "subdomains": subdomains,
    }));
    Entry {
        record,
        ..entry(seq, expires, label)
    }
}

/// The names pointing at the onion with `seed`, at most `max`, reading
/// at most `max_leads` leads; and `more` and `cut`.
fn names_reading(
    store: &Store,
    seed: u8,
    max: usize,
    max_leads: usize,
) -> (Vec<String>, bool, bool) {
    match store
        .names_pointing_at(&onion(seed), max, max_leads)
        .unwrap()
    {
        Names::Listed { names, more, cut } => {
            (names.iter().map(|n| n.to_string()).collect(), more, cut)
        }
        Names::NoHead => panic!("no head"),
    }
}

/// The names pointing at the onion with `seed`, at most `max`, every lead
/// read.
fn names(store: &Store, seed: u8, max: usize) -> (Vec<String>, bool) {
    let (names, more, cut) = names_reading(store, seed, max, usize::MAX);
    assert!(!cut);
    (names, more)
}

/// The names, when they are no more than 16.
fn all(store: &Store, seed: u8) -> Vec<String> {
    let (names, more) = names(store, seed, 16);
    assert!(!more);
    names
}

#[test]
fn owners_and_subdomains_are_answered_as_of_the_head() {
    let dir = TempDir::new("reverse");
    let (store, _) = open(&dir);
    let log = [
        pointing(1, LATER, "example", 1, &[("www", 2), ("blog", 2)]),
        pointing(2, LATER, "other", 3, &[("mirror", 2), ("self", 3)]),
        pointing(3, NOW - 1, "lapsed", 2, &[]),
    ];
    store.append(&log).unwrap();
    assert_eq!(
        store.names_pointing_at(&onion(1), 16, 1024).unwrap(),
        Names::NoHead
    );
    seal_at(&store, &[], 3, NOW);
    assert_eq!(all(&store, 1), ["example.tor"]);
    assert_eq!(all(&store, 2), ["example.tor", "other.tor"]);
    assert_eq!(all(&store, 3), ["other.tor"]);
    assert!(all(&store, 4).is_empty());
}

#[test]
fn changes_show_only_once_a_head_covers_them() {
    let dir = TempDir::new("reverse-moves");
    let (store, _) = open(&dir);
    seal_at(
        &store,
        &[pointing(1, LATER, "example", 1, &[("www", 2)])],
        1,
        NOW,
    );
    store
        .append(&[
            pointing(2, LATER, "example", 1, &[("www", 3)]),
            pointing(3, LATER, "new", 2, &[]),
        ])
        .unwrap();
    assert_eq!(all(&store, 2), ["example.tor"], "as of the head");
    assert!(all(&store, 3).is_empty(), "the move waits for a head");
    seal_at(&store, &[], 3, NOW + 1);
    assert_eq!(all(&store, 2), ["new.tor"], "the old www is gone");
    assert_eq!(all(&store, 3), ["example.tor"]);
    seal_at(&store, &[pointing(4, NOW + 5, "new", 2, &[])], 4, NOW + 5);
    assert!(all(&store, 2).is_empty(), "expired at the head's time");
}

#[test]
fn at_most_max_names_ascending_and_more_when_there_are() {
    let dir = TempDir::new("reverse-cap");
    let (store, _) = open(&dir);
    let log: Vec<Entry> = (1..=20)
        .map(|seq| pointing(seq, LATER, &format!("n{:02}", 21 - seq), 7, &[]))
        .collect();
    seal_at(&store, &log, 20, NOW);
    let (first, more) = names(&store, 7, 16);
    let want: Vec<String> = (1..=16).map(|i| format!("n{i:02}.tor")).collect();
    assert_eq!((first, more), (want, true));
    let (exact, more) = names(&store, 7, 20);
    assert_eq!((exact.len(), more), (20, false));
}

#[test]
fn past_max_leads_the_answer_comes_from_the_leads_read() {
    let dir = TempDir::new("reverse-leads");
    let (store, _) = open(&dir);
    let log: Vec<Entry> = (1..=20)
        .map(|seq| pointing(seq, LATER, &format!("n{seq:02}"), 7, &[]))
        .collect();
    seal_at(&store, &log, 20, NOW);
    let every: Vec<String> = (1..=20).map(|i| format!("n{i:02}.tor")).collect();
    let (some, more, cut) = names_reading(&store, 7, 16, 5);
    assert_eq!((some.len(), more, cut), (5, true, true), "{some:?}");
    assert!(some.windows(2).all(|w| w[0] < w[1]), "{some:?}");
    assert!(some.iter().all(|n| every.contains(n)), "{some:?}");
    assert!(!names_reading(&store, 7, 16, 20).2, "exactly enough");
    assert_eq!(names_reading(&store, 7, 32, 20), (every, false, false));
}

#[test]
fn open_and_compaction_rebuild_the_index_without_stale_pairs() {
    let dir = TempDir::new("reverse-rebuild");
    let (store, _) = open(&dir);
    let mut log = Vec::new();
    for seq in 1..=30u64 {
        let sub = 10 + (seq % 5) as u8;
        log.push(pointing(
            seq,
            LATER,
            &format!("n{}", seq % 6),
            1,
            &[("www", sub)],
        ));
    }
    seal_at(&store, &log, 30, NOW);
    let before: Vec<Vec<String>> = (10..15).map(|s| all(&store, s)).collect();
    let pairs = store.state.read().reverse.len();
    assert!(pairs > 6 * 2, "stale pairs stay until rebuilt: {pairs}");
    drop(store);
    let (store, _) = open(&dir);
    assert_eq!((10..15).map(|s| all(&store, s)).collect::<Vec<_>>(), before);
    store.compact().unwrap().unwrap();
    assert_eq!((10..15).map(|s| all(&store, s)).collect::<Vec<_>>(), before);
    assert_eq!(all(&store, 1).len(), 6);
    let pairs = store.state.read().reverse.len();
    assert_eq!(pairs, 6 + 6, "one owner pair and one www pair a name");
}

#[test]
fn names_sharing_index_keys_are_told_apart_by_their_records() {
    state::KEY_MASK.with(|m| m.set(0xff00_0000_0000_0000));
    let dir = TempDir::new("reverse-collide");
    let (store, _) = open(&dir);
    let log: Vec<Entry> = (1..=40u64)
        .map(|seq| pointing(seq, LATER, &format!("n{seq}"), (seq % 2) as u8 + 1, &[]))
        .collect();
    seal_at(&store, &log, 40, NOW);
    let odd = all_of(&store, 2, 40);
    let mut want: Vec<String> = (1..=40)
        .filter(|s| s % 2 == 1)
        .map(|s| format!("n{s}.tor"))
        .collect();
    want.sort();
    assert_eq!(odd, want);
    state::KEY_MASK.with(|m| m.set(u64::MAX));
}

/// Every name pointing at the onion with `seed`, when they are at most `max`.
fn all_of(store: &Store, seed: u8, max: usize) -> Vec<String> {
    let (names, more) = names(store, seed, max);
    assert!(!more);
    names
}
