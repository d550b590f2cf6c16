//! The in-memory index of the log: which file offset holds the live entry
//! of each registered name, in about 16–20 bytes a name.
//!
//! Names are found by a 64-bit keyed SipHash (a per-process random key, so
//! no one can choose names that collide). The main table stores only
//! (hash, offset); the rare second name with an already-present hash goes
//! to a small overflow map keyed by the name itself. Records stay on disk:
//! this module never reads them, except through the `old_head` callback
//! that [`Index::insert`] is given to tell a superseded entry from a
//! collision. Locking is the caller's business.

use super::format::RecordBody;
use crate::name::RegisteredName;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io;

/// Hashes names for the index.
pub(super) struct NameHasher {
    /// The per-process random SipHash key.
    keys: RandomState,
    /// A fixed hash for every name, so tests can force collisions.
    #[cfg(test)]
    constant: Option<u64>,
}

impl NameHasher {
    /// A hasher with a fresh random key.
    pub(super) fn random() -> Self {
        NameHasher {
            keys: RandomState::new(),
            #[cfg(test)]
            constant: None,
        }
    }

    /// A hasher that gives every name `hash`: every insert collides.
    #[cfg(test)]
    pub(super) fn constant(hash: u64) -> Self {
        NameHasher {
            keys: RandomState::new(),
            constant: Some(hash),
        }
    }

    /// The index key of `name`.
    pub(super) fn hash(&self, name: &RegisteredName) -> u64 {
        #[cfg(test)]
        if let Some(hash) = self.constant {
            return hash;
        }
        self.keys.hash_one(name.as_str())
    }
}

/// What the index and the garbage count need to know of a stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    /// The entry's name.
    pub(super) name: RegisteredName,
    /// The record's expiry, Unix seconds.
    pub(super) expires: u64,
    /// Bytes the entry's frame takes in the log.
    pub(super) len: u64,
}

impl Head {
    /// The head of a parsed record entry whose frame is `len` bytes.
    pub(super) fn of(body: &RecordBody<'_>, len: u64) -> Head {
        Head {
            name: body.name.clone(),
            expires: body.expires,
            len,
        }
    }
}

/// One slot of [`Table`]; `offset == 0` marks it empty (offset 0 is the
/// file header, never an entry).
#[derive(Clone, Copy, Default)]
struct Slot {
    /// The name's keyed hash.
    hash: u64,
    /// Where the entry starts in the log.
    offset: u64,
}

/// Fewest slots a table has.
const MIN_SLOTS: usize = 64;
/// Most filled slots per 100 before the table grows (linear probing stays
/// short below this).
const MAX_LOAD: usize = 85;

/// Slots for `n` entries at most [`MAX_LOAD`] full.
fn slots_for(n: usize) -> usize {
    (n.saturating_mul(100) / MAX_LOAD + 1).max(MIN_SLOTS)
}

/// Open addressing, linear probing, no removal (compaction rebuilds the
/// index instead). Slots are placed by multiply-shift, so the table can
/// grow by a quarter at a time rather than double: that keeps it at 16
/// bytes a slot and 19–24 bytes an entry.
struct Table {
    /// The slots; always at least one empty.
    slots: Vec<Slot>,
    /// Filled slots.
    len: usize,
}

impl Table {
    /// An empty table with room for `n` entries.
    fn with_capacity(n: usize) -> Table {
        Table {
            slots: vec![Slot::default(); slots_for(n)],
            len: 0,
        }
    }

    /// The slot holding `hash`, or the empty slot where it would go.
    fn position(&self, hash: u64) -> usize {
        let n = self.slots.len();
        let mut i = ((u128::from(hash) * n as u128) >> 64) as usize;
        loop {
            let slot = self.slots[i];
            if slot.offset == 0 || slot.hash == hash {
                return i;
            }
            i = if i + 1 == n { 0 } else { i + 1 };
        }
    }

    /// The offset stored under `hash`.
    fn get(&self, hash: u64) -> Option<u64> {
        let slot = self.slots[self.position(hash)];
        (slot.offset != 0).then_some(slot.offset)
    }

    /// Stores `offset` under `hash`, replacing what was there.
    fn set(&mut self, hash: u64, offset: u64) {
        let mut i = self.position(hash);
        if self.slots[i].offset == 0 {
            if (self.len + 1) * 100 > self.slots.len() * MAX_LOAD {
                self.grow();
                i = self.position(hash);
            }
            self.len += 1;
        }
        self.slots[i] = Slot { hash, offset };
    }

    /// Moves every entry into a table a quarter larger.
    fn grow(&mut self) {
        let size = self.slots.len() + self.slots.len() / 4;
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size]);
        for slot in old.into_iter().filter(|s| s.offset != 0) {
            let i = self.position(slot.hash);
            self.slots[i] = slot;
        }
    }

    /// Heap bytes the table holds.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
    }
}

/// Name → offset of its live entry.
pub(super) struct Index {
    /// Hash → offset, for every name but the colliding ones.
    table: Table,
    /// Names whose hash was already in `table` under another name.
    overflow: HashMap<RegisteredName, u64>,
}

impl Index {
    /// An empty index with room for `n` names.
    pub(super) fn with_capacity(n: usize) -> Index {
        Index {
            table: Table::with_capacity(n),
            overflow: HashMap::new(),
        }
    }

    /// Names in the index.
    pub(super) fn len(&self) -> usize {
        self.table.len + self.overflow.len()
    }

    /// Where `name`'s entry may be: its overflow offset, else the offset
    /// under its hash, which may hold another name (the caller checks).
    pub(super) fn find(&self, hash: u64, name: &RegisteredName) -> Option<u64> {
        self.overflow
            .get(name)
            .copied()
            .or_else(|| self.table.get(hash))
    }

    /// True when the entry of `name` at `offset` is the live one.
    pub(super) fn maps(&self, hash: u64, name: &RegisteredName, offset: u64) -> bool {
        self.table.get(hash) == Some(offset) || self.overflow.get(name) == Some(&offset)
    }

    /// Points `name` at `offset`, reading the head of the entry now under
    /// its hash with `old_head` to tell a supersede from a collision.
    /// Returns the head of the entry it superseded. On error nothing changed.
    pub(super) fn insert(
        &mut self,
        hash: u64,
        name: &RegisteredName,
        offset: u64,
        old_head: impl Fn(u64) -> io::Result<Head>,
    ) -> io::Result<Option<Head>> {
        if let Some(&previous) = self.overflow.get(name) {
            let old = old_head(previous)?;
            self.overflow.insert(name.clone(), offset);
            return Ok(Some(old));
        }
        let Some(previous) = self.table.get(hash) else {
            self.table.set(hash, offset);
            return Ok(None);
        };
        let old = old_head(previous)?;
        if old.name == *name {
            self.table.set(hash, offset);
            return Ok(Some(old));
        }
        self.overflow.insert(name.clone(), offset);
        Ok(None)
    }

    /// Adds `name`, known not to be in the index yet (compaction copies
    /// one entry per name), without reading anything.
    pub(super) fn insert_new(&mut self, hash: u64, name: &RegisteredName, offset: u64) {
        if self.table.get(hash).is_some() {
            self.overflow.insert(name.clone(), offset);
        } else {
            self.table.set(hash, offset);
        }
    }

    /// Approximate heap bytes (the table exactly, the overflow roughly).
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        let per_overflow = std::mem::size_of::<(RegisteredName, u64)>() + 1 + 16;
        self.table.heap_bytes() + self.overflow.capacity() * per_overflow
    }
}
