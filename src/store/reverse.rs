//! The reverse index and reverse lookups (PROTOCOL.md §12.5): which
//! registered names point at an onion, as of the current head.
//!
//! The index is a set of pairs (the first 32 bits of an onion's key, the
//! first 32 bits of a name's index key), one for each onion a record of the
//! name points at (its owner and each subdomain's address), in 8 bytes a
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

use crate::name::RegisteredName;
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
        /// True when more names point at the onion.
        more: bool,
    },
}

/// The first 32 bits of an onion's key, as the index keeps it.
pub(super) fn onion_prefix(key: &[u8; 32]) -> u32 {
    u32::from_be_bytes([key[0], key[1], key[2], key[3]])
}

/// The first 32 bits of a name's index key, as the index keeps it.
fn name_prefix(slot_key: u64) -> u32 {
    (slot_key >> 32) as u32
}

/// One pair as a number whose order is the pairs' order.
fn pair(onion: u32, name: u32) -> u64 {
    (u64::from(onion) << 32) | u64::from(name)
}

/// The onion prefixes a stored record's canonical JSON points at. A record
/// that cannot be read so (it was verified when stored, so only a bug
/// writes one) is logged and left out of the index: reverse answers are
/// hints, and its lookups still work.
pub(super) fn targets_of(record: &str) -> Vec<u32> {
    match record::pointed_keys(record) {
        Ok(keys) => keys.iter().map(onion_prefix).collect(),
        Err(e) => {
            log::warn!("a stored record is left out of the reverse index: {e}");
            Vec::new()
        }
    }
}

/// The pairs: a sorted array and the fresh ones not yet merged into it.
#[derive(Debug, Default)]
pub(super) struct ReverseIndex {
    /// Sorted, without duplicates.
    base: Vec<u64>,
    /// Pairs added since the last merge, none of them in `base`.
    fresh: BTreeSet<u64>,
}

impl ReverseIndex {
    /// Notes that the record of the name with index key `slot_key` points
    /// at the onions with prefixes `targets`.
    pub(super) fn add(&mut self, slot_key: u64, targets: &[u32]) {
        let name = name_prefix(slot_key);
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

    /// Moves the fresh pairs into the sorted array, which is rebuilt at
    /// its exact size.
    fn merge(&mut self) {
        let mut merged = Vec::with_capacity(self.base.len() + self.fresh.len());
        let mut fresh = std::mem::take(&mut self.fresh).into_iter().peekable();
        for &p in &self.base {
            while let Some(f) = fresh.next_if(|f| *f < p) {
                merged.push(f);
            }
            merged.push(p);
        }
        merged.extend(fresh);
        self.base = merged;
    }

    /// The name prefixes paired with the onion prefix `onion`, ascending,
    /// each once.
    pub(super) fn names_of(&self, onion: u32) -> Vec<u32> {
        let (lo, hi) = (pair(onion, 0), pair(onion, u32::MAX));
        let start = self.base.partition_point(|p| *p < lo);
        let end = self.base.partition_point(|p| *p <= hi);
        let mut names: Vec<u32> = self.base[start..end]
            .iter()
            .chain(self.fresh.range(lo..=hi))
            .map(|p| *p as u32)
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
    /// nodes hold 11 pairs and are about two thirds full).
    pub(super) fn heap_bytes(&self) -> usize {
        self.base.capacity() * std::mem::size_of::<u64>() + self.fresh.len() * 14
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_found_once_across_the_array_and_the_fresh_set() {
        let mut index = ReverseIndex::default();
        for i in 0..20_000u64 {
            index.add(i << 32, &[(i % 7) as u32, 99]);
        }
        assert!(!index.base.is_empty(), "merged at least once");
        assert!(!index.fresh.is_empty(), "and some still fresh");
        index.add(5 << 32, &[5, 99]);
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
        index.add(7 << 32, &[1]);
        index.merge();
        index.add(7 << 32, &[1]);
        index.add((7 << 32) | 5, &[1]);
        assert_eq!(index.len(), 1);
        assert_eq!(index.names_of(1), vec![7]);
    }

    #[test]
    fn takes_about_eight_bytes_a_pair() {
        let mut index = ReverseIndex::default();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let n = 1usize << 16;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            index.add(x, &[(x >> 7) as u32]);
        }
        let per_pair = index.heap_bytes() as f64 / n as f64;
        assert!(per_pair < 10.0, "{per_pair} bytes a pair");
    }
}
