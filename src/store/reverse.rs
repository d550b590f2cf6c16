//! The reverse index and reverse lookups (PROTOCOL.md §12.5): which
//! registered names point at an onion, as of the current head.
//!
//! The index is a set of pairs (the first 24 bits of an onion's key, the
//! first 24 bits of a name's index key), one for each onion a record of the
//! name points at (its owner and each subdomain's address), in 6 bytes a
//! pair: most pairs sit in one sorted array, the newest in a small ordered
//! set merged into it now and then. Pairs are only ever added: a record
//! that stops pointing at an onion leaves its pair behind until the next
//! compaction or open rebuilds the index from the log. So a pair is only a
//! lead: every answer reads the name's record as of the current head (the
//! one a lookup answers with, by the same rule) and keeps the name only
//! when that record, unexpired at the head's time, holds the onion. Short
//! prefixes cost no exactness, only a rare extra read; and no more reads
//! than names pointing at the onion can cause, since anyone may point a
//! subdomain at any onion. Reading the leads and confirming them is
//! `read`'s ([`Store::names_pointing_at`](super::Store::names_pointing_at)).

use super::format::{RecordBody, Texts};
use super::packed;
use crate::name::RegisteredName;
use crate::onion::OnionAddress;
use crate::record;
use std::collections::BTreeSet;

/// Fewest fresh pairs before they are merged into the sorted array.
const MIN_FRESH: usize = 4096;
/// The fresh pairs may grow to the array's length over this before a
/// merge, so merging costs a constant per pair however large the index.
const FRESH_SHARE: usize = 16;

/// A reverse lookup's answer as of the current head (PROTOCOL.md §12.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    /// The server has no current head to answer with.
    NoHead,
    /// The names that point at the onion.
    Listed {
        /// Registered names, ascending, at most as many as asked for.
        names: Vec<RegisteredName>,
        /// True when more names point at the onion (or may: see `cut`).
        more: bool,
        /// True when the index held more leads for the onion than the
        /// reader's limit, so only that many were read (in the index's
        /// order, not by name) and `names` are the first of those.
        cut: bool,
    },
}

/// One pair: the 48-bit number (onion prefix, name prefix) as three
/// big-endian 16-bit words, so that pairs compare as their numbers do in
/// 6 bytes.
type Pair = [u16; 3];

/// Bits of an onion's key and of a name's index key that a pair keeps:
/// at 2^20 names, a prefix leads to about 1/16 of a name it does not mean.
const PREFIX_BITS: u32 = 24;

/// The first [`PREFIX_BITS`] bits of an onion's key, as the index keeps it.
pub(super) fn onion_prefix(key: &[u8; 32]) -> u32 {
    prefix_of([key[0], key[1], key[2]])
}

/// The prefix of the first three bytes of an onion's key.
fn prefix_of(bytes: [u8; 3]) -> u32 {
    u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]])
}

/// The first [`PREFIX_BITS`] bits of a name's index key, as the index
/// keeps it.
fn name_prefix(slot_key: u64) -> u32 {
    (slot_key >> (64 - PREFIX_BITS)) as u32
}

/// The index keys (lowest, highest) that the name prefix `name` stands for.
pub(super) fn name_keys(name: u32) -> (u64, u64) {
    let lo = u64::from(name) << (64 - PREFIX_BITS);
    (lo, lo | (u64::MAX >> PREFIX_BITS))
}

/// The pair of an onion prefix and a name prefix.
fn pair(onion: u32, name: u32) -> Pair {
    let n = (u64::from(onion) << PREFIX_BITS) | u64::from(name);
    [(n >> 32) as u16, (n >> 16) as u16, n as u16]
}

/// The name prefix of a pair.
fn name_of(p: &Pair) -> u32 {
    (u32::from(p[1] & 0xff) << 16) | u32::from(p[2])
}

/// The onion prefixes a stored record's canonical JSON points at, each
/// once. A record that cannot be read so (it was verified when stored, so
/// only a bug writes one) is logged and left out of the index: reverse
/// answers are hints, and its lookups still work.
pub(super) fn targets_of(record: &str) -> Vec<u32> {
    if let Some(targets) = scanned_targets(record) {
        return targets;
    }
    match record::pointed_keys(record) {
        Ok(keys) => keys.iter().map(onion_prefix).collect(),
        Err(e) => {
            log::warn!("a stored record is left out of the reverse index: {e}");
            Vec::new()
        }
    }
}

/// The onion prefixes of a stored entry's record: from the addresses of a
/// packed record without unpacking it, else as [`targets_of`] reads them.
pub(super) fn stored_targets(body: &RecordBody<'_>) -> Vec<u32> {
    let keys = match body.texts {
        Texts::Plain { record, .. } => return targets_of(record),
        Texts::Packed { record, .. } => packed::pointed_keys(record),
    };
    if let Some(keys) = keys {
        let mut targets: Vec<u32> = keys.iter().map(onion_prefix).collect();
        targets.sort_unstable();
        targets.dedup();
        return targets;
    }
    match body.record_text() {
        Some(text) => targets_of(&text),
        None => {
            log::warn!("a stored record does not unpack; it is left out of the reverse index");
            Vec::new()
        }
    }
}

/// The onion prefixes of a record in canonical form (PROTOCOL.md §3: keys
/// sorted, no white space), read without parsing it, since every record of
/// the log is read at open: the first `"onion":"` is the owner's (no key
/// sorted before it holds an object), then the values of the
/// `"subdomains":{` object after it (labels and addresses hold no quotes
/// or escapes). `None` for anything else, which [`targets_of`] parses.
fn scanned_targets(text: &str) -> Option<Vec<u32>> {
    let (owner, rest) = text.split_once("\"onion\":\"")?.1.split_once('"')?;
    let mut targets = vec![prefix_of(OnionAddress::unchecked_key_prefix(owner)?)];
    let mut rest = rest.split_once("\"subdomains\":{")?.1;
    while !rest.starts_with('}') {
        let (_, value) = rest.strip_prefix('"')?.split_once("\":\"")?;
        let (address, after) = value.split_once('"')?;
        targets.push(prefix_of(OnionAddress::unchecked_key_prefix(address)?));
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    targets.sort_unstable();
    targets.dedup();
    Some(targets)
}

/// The pairs: a sorted array and the fresh ones not yet merged into it.
///
/// An index built from a whole log (at open, or by compaction) starts
/// unsettled: pairs are only pushed onto the array, which
/// [`ReverseIndex::settle`] sorts once at the end, so building costs one
/// sort and no more memory than the array itself.
#[derive(Debug, Default)]
pub(super) struct ReverseIndex {
    /// Sorted, without duplicates, once settled; before, in log order.
    base: Vec<Pair>,
    /// Pairs added since the last merge, none of them in `base`.
    fresh: BTreeSet<Pair>,
    /// True while the index is being built from a log.
    building: bool,
}

impl ReverseIndex {
    /// Notes that the record of the name with index key `slot_key` points
    /// at the onions with prefixes `targets`.
    pub(super) fn add(&mut self, slot_key: u64, targets: &[u32]) {
        let name = name_prefix(slot_key);
        if self.building {
            self.base
                .extend(targets.iter().map(|&onion| pair(onion, name)));
            return;
        }
        for &onion in targets {
            let p = pair(onion, name);
            if self.base.binary_search(&p).is_err() {
                self.fresh.insert(p);
            }
        }
        if self.fresh.len() > MIN_FRESH.max(self.base.len() / FRESH_SHARE) {
            self.merge();
        }
    }

    /// An index being built from a log, until [`ReverseIndex::settle`].
    pub(super) fn unsettled() -> ReverseIndex {
        ReverseIndex {
            building: true,
            ..ReverseIndex::default()
        }
    }

    /// Ends building: sorts the pairs gathered, drops repeats and frees
    /// the array's spare room.
    pub(super) fn settle(&mut self) {
        if !self.building {
            return;
        }
        self.base.sort_unstable();
        self.base.dedup();
        self.base.shrink_to_fit();
        self.building = false;
    }

    /// Moves the fresh pairs into the sorted array, in place from its end:
    /// the array grows by exactly their number, and no second copy of it
    /// is ever held.
    fn merge(&mut self) {
        let fresh = std::mem::take(&mut self.fresh);
        let mut read = self.base.len();
        self.base.reserve_exact(fresh.len());
        self.base.resize(read + fresh.len(), [0; 3]);
        let mut write = self.base.len();
        for f in fresh.into_iter().rev() {
            while read > 0 && self.base[read - 1] > f {
                read -= 1;
                write -= 1;
                self.base[write] = self.base[read];
            }
            write -= 1;
            self.base[write] = f;
        }
    }

    /// The name prefixes paired with the onion prefix `onion`, ascending,
    /// each once.
    pub(super) fn names_of(&self, onion: u32) -> Vec<u32> {
        debug_assert!(!self.building, "a reverse index is read only once settled");
        let (lo, hi) = (pair(onion, 0), pair(onion, (1 << PREFIX_BITS) - 1));
        let start = self.base.partition_point(|p| *p < lo);
        let end = self.base.partition_point(|p| *p <= hi);
        let mut names: Vec<u32> = self.base[start..end]
            .iter()
            .chain(self.fresh.range(lo..=hi))
            .map(name_of)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Pairs held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.base.len() + self.fresh.len()
    }

    /// Heap bytes: the array's, and an estimate of the ordered set's (its
    /// nodes hold 11 pairs and are about two thirds full), for the test of
    /// its size a pair.
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.base.capacity() * std::mem::size_of::<Pair>() + self.fresh.len() * 12
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_found_once_across_the_array_and_the_fresh_set() {
        let mut index = ReverseIndex::default();
        for i in 0..20_000u64 {
            index.add(i << 40, &[(i % 7) as u32, 99]);
        }
        assert!(!index.base.is_empty(), "merged at least once");
        assert!(!index.fresh.is_empty(), "and some still fresh");
        index.add(5 << 40, &[5, 99]);
        let of_five: Vec<u32> = index.names_of(5);
        assert_eq!(of_five.len(), (0..20_000).filter(|i| i % 7 == 5).count());
        assert!(of_five.windows(2).all(|w| w[0] < w[1]));
        assert!(of_five.iter().all(|n| n % 7 == 5));
        assert_eq!(index.names_of(99).len(), 20_000);
        assert!(index.names_of(100).is_empty());
        assert_eq!(index.len(), 20_000 * 2);
    }

    #[test]
    fn a_pair_added_twice_is_held_once() {
        let mut index = ReverseIndex::default();
        index.add(7 << 40, &[1]);
        index.merge();
        index.add(7 << 40, &[1]);
        index.add((7 << 40) | 5, &[1]);
        assert_eq!(index.len(), 1);
        assert_eq!(index.names_of(1), vec![7]);
    }

    #[test]
    fn an_index_built_from_a_log_answers_as_one_built_pair_by_pair() {
        let mut built = ReverseIndex::unsettled();
        let mut grown = ReverseIndex::default();
        for i in 0..30_000u64 {
            let targets = [(i % 11) as u32, (i % 5) as u32 + 100];
            built.add(i << 40 | i, &targets);
            grown.add(i << 40 | i, &targets);
            grown.add(i << 40 | i, &targets[..1]);
        }
        built.settle();
        assert_eq!(built.len(), grown.len());
        for onion in [0, 3, 10, 100, 104, 105] {
            assert_eq!(
                built.names_of(onion),
                grown.names_of(onion),
                "onion {onion}"
            );
        }
        assert_eq!(built.base.capacity(), built.base.len(), "no spare room");
    }

    #[test]
    fn scanning_a_record_finds_what_parsing_it_finds() {
        use crate::keys::SigningKey;
        use crate::name::SubdomainKey;
        use crate::record::{Claim, Record};
        use std::collections::BTreeMap;
        crate::keys::init().unwrap();
        let key = |seed: u8| SigningKey::from_seed(&[seed; 32]);
        let onion = |seed: u8| OnionAddress::from_key(key(seed).public());
        let name = RegisteredName::parse("example.tor").unwrap();
        let sub = |label: &str| SubdomainKey::parse(label, &name).unwrap();
        let subdomain_sets = [
            vec![],
            vec![("www", 1)],
            vec![("onion", 2), ("subdomains", 3), ("www", 2), ("a", 4)],
        ];
        for (i, set) in subdomain_sets.into_iter().enumerate() {
            let claim = Claim {
                name: name.clone(),
                subdomains: set
                    .iter()
                    .map(|(l, s)| (sub(l), onion(*s)))
                    .collect::<BTreeMap<_, _>>(),
                contact: r#"a "onion":"x" and "subdomains":{} in a contact"#.into(),
                serial: 1,
                issued: 1,
                expires: 2,
                work: 0,
            };
            let text = Record::from_claim(claim, &key(1)).canonical();
            let parsed: Vec<u32> = record::pointed_keys(&text)
                .unwrap()
                .iter()
                .map(onion_prefix)
                .collect();
            let mut sorted = parsed.clone();
            sorted.sort_unstable();
            assert_eq!(scanned_targets(&text), Some(sorted), "record {i}: {text}");
        }
        assert_eq!(scanned_targets(r#"{"name":"a.tor"}"#), None);
        assert_eq!(targets_of(r#"{"name":"a.tor"}"#), Vec::<u32>::new());
    }

    #[test]
    fn takes_about_six_bytes_a_pair() {
        let mut index = ReverseIndex::default();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let n = 1usize << 16;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            index.add(x, &[(x >> 7) as u32 & 0xff_ffff]);
        }
        let per_pair = index.heap_bytes() as f64 / n as f64;
        assert!(per_pair < 7.5, "{per_pair} bytes a pair");
    }
}
