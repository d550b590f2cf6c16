//! The in-memory index of the log: for each registered name, the file
//! offset of its newest record, in about 19–24 bytes a name, kept in the
//! order of the names' leaf keys (PROTOCOL.md §10.2).
//!
//! A slot holds the first 64 bits of the name's leaf key and an offset.
//! Slots live in one open-addressed table whose home position is monotone
//! in the key, and every insert keeps the occupied slots sorted: so a name
//! is found by probing from its home, and the names of one subtree of the
//! Merkle tree (a key range) are found by scanning one stretch of the
//! table. Names whose 64-bit prefixes are equal sit side by side; the
//! caller tells them apart by reading the name from the log. Records stay
//! on disk: this module never reads them. Locking is the caller's business.

use std::ops::Range;

/// One slot; `offset == 0` marks it empty (offset 0 is the file header,
/// never an entry).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Slot {
    /// The first 64 bits of the name's leaf key.
    key: u64,
    /// Where the name's newest entry starts in the log.
    offset: u64,
}

/// Fewest home positions a table has.
const MIN_CAP: usize = 64;
/// Most filled slots per 100 home positions before the table grows.
const MAX_LOAD: usize = 85;

/// Name key → offset, sorted by key. Open addressing with linear probing,
/// where each key sits at or after its home and no empty slot lies between
/// a key's home and the key; no removal (compaction builds a new table).
/// Positions past the home range (`cap`) catch the last cluster.
pub(super) struct Slots {
    /// The slots: `cap` home positions and an overflow tail.
    slots: Vec<Slot>,
    /// Home positions.
    cap: usize,
    /// Filled slots.
    len: usize,
}

/// Slots after the home range for the cluster that runs past its end.
fn tail_for(cap: usize) -> usize {
    64 + cap / 32
}

impl Slots {
    /// An empty table with room for `n` names.
    pub(super) fn with_capacity(n: usize) -> Slots {
        let cap = (n.saturating_mul(100) / MAX_LOAD + 1).max(MIN_CAP);
        Slots {
            slots: vec![Slot::default(); cap + tail_for(cap)],
            cap,
            len: 0,
        }
    }

    /// Names in the table.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Where `key` would sit in an empty table: monotone in the key.
    fn home(&self, key: u64) -> usize {
        ((u128::from(key) * self.cap as u128) >> 64) as usize
    }

    /// The positions holding `key`, in order (usually one, or none: then
    /// the empty range sits where `key` would be inserted).
    pub(super) fn equal(&self, key: u64) -> Range<usize> {
        let mut i = self.home(key);
        while self.occupied(i) && self.slots[i].key < key {
            i += 1;
        }
        let start = i;
        while self.occupied(i) && self.slots[i].key == key {
            i += 1;
        }
        start..i
    }

    /// True when position `i` holds a name.
    fn occupied(&self, i: usize) -> bool {
        self.slots.get(i).is_some_and(|s| s.offset != 0)
    }

    /// The offset at position `i` (one returned by [`Slots::equal`]).
    pub(super) fn offset_at(&self, i: usize) -> u64 {
        self.slots[i].offset
    }

    /// Points the name at position `i` to a new offset.
    pub(super) fn set(&mut self, i: usize, offset: u64) {
        self.slots[i].offset = offset;
    }

    /// Adds a name with `key` at `offset`, after any names with the same
    /// key.
    pub(super) fn insert(&mut self, key: u64, offset: u64) {
        if (self.len + 1) * 100 > self.cap * MAX_LOAD {
            self.grow();
        }
        let at = self.equal(key).end;
        let Some(free) = (at..self.slots.len()).find(|&i| !self.occupied(i)) else {
            self.grow();
            return self.insert(key, offset);
        };
        self.slots.copy_within(at..free, at + 1);
        self.slots[at] = Slot { key, offset };
        self.len += 1;
    }

    /// Moves every slot into a table with a quarter more home positions.
    fn grow(&mut self) {
        let cap = self.cap + self.cap / 4;
        let mut bigger = Slots {
            slots: vec![Slot::default(); cap + tail_for(cap)],
            cap,
            len: 0,
        };
        let mut next = 0;
        for slot in self.slots.iter().filter(|s| s.offset != 0) {
            let at = bigger.home(slot.key).max(next);
            if at >= bigger.slots.len() {
                bigger.slots.resize(at + tail_for(cap), Slot::default());
            }
            bigger.slots[at] = *slot;
            bigger.len += 1;
            next = at + 1;
        }
        *self = bigger;
    }

    /// Every (key, offset) with `lo <= key <= hi`, ascending by key.
    pub(super) fn range(&self, lo: u64, hi: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let last_home = self.home(hi);
        let mut i = self.home(lo);
        std::iter::from_fn(move || loop {
            let slot = *self.slots.get(i)?;
            i += 1;
            if slot.offset == 0 {
                if i > last_home {
                    return None;
                }
                continue;
            }
            if slot.key > hi {
                return None;
            }
            if slot.key >= lo {
                return Some((slot.key, slot.offset));
            }
        })
    }

    /// Every (key, offset), ascending by key.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.offset != 0)
            .map(|s| (s.key, s.offset))
    }

    /// Heap bytes the table holds, for the test of its size a name.
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stream of 64-bit keys.
    fn keys(n: usize, seed: u64) -> Vec<u64> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect()
    }

    #[test]
    fn stays_sorted_and_finds_every_key_through_growth() {
        let mut slots = Slots::with_capacity(0);
        let ks = keys(5000, 7);
        for (i, k) in ks.iter().enumerate() {
            slots.insert(*k, i as u64 + 1);
        }
        assert_eq!(slots.len(), ks.len());
        let all: Vec<u64> = slots.iter().map(|(k, _)| k).collect();
        let mut sorted = ks.clone();
        sorted.sort_unstable();
        assert_eq!(all, sorted);
        for (i, k) in ks.iter().enumerate() {
            let found = slots.equal(*k);
            assert_eq!(found.len(), 1);
            assert_eq!(slots.offset_at(found.start), i as u64 + 1);
        }
        assert!(slots.equal(12345).is_empty());
    }

    #[test]
    fn equal_keys_sit_together_and_ranges_are_exact() {
        let mut slots = Slots::with_capacity(0);
        let ks = keys(2000, 99);
        for (i, k) in ks.iter().enumerate() {
            slots.insert(*k, 2 * i as u64 + 1);
            if i % 100 == 0 {
                slots.insert(*k, 2 * i as u64 + 2);
            }
        }
        assert_eq!(slots.equal(ks[0]).len(), 2);
        assert_eq!(slots.equal(ks[1]).len(), 1);
        let (lo, hi) = (u64::MAX / 4, u64::MAX / 2);
        let got: Vec<u64> = slots.range(lo, hi).map(|(k, _)| k).collect();
        let mut want: Vec<u64> = slots
            .iter()
            .map(|(k, _)| k)
            .filter(|k| (lo..=hi).contains(k))
            .collect();
        want.sort_unstable();
        assert_eq!(got, want);
        assert!(!got.is_empty());
    }

    #[test]
    fn keys_crowded_at_the_top_overflow_into_the_tail() {
        let mut slots = Slots::with_capacity(0);
        for i in 0..1000u64 {
            slots.insert(u64::MAX - i, i + 1);
        }
        assert_eq!(slots.range(u64::MAX - 999, u64::MAX).count(), 1000);
        assert_eq!(slots.equal(u64::MAX - 500).len(), 1);
    }

    #[test]
    fn takes_about_twenty_bytes_a_name() {
        let mut slots = Slots::with_capacity(0);
        for (i, k) in keys(1 << 16, 3).into_iter().enumerate() {
            slots.insert(k, i as u64 + 1);
        }
        let per_name = slots.heap_bytes() / (1 << 16);
        assert!(per_name <= 26, "{per_name} bytes a name");
    }
}
