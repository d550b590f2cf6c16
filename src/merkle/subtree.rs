//! The fast side of the tree's arithmetic: node(p) of §10.2 over entries
//! sorted by key ([`subtree_hash`]) and the path for a key through such a
//! subtree ([`subtree_path`]), at any depth, so the store can hash and
//! prove one bucket below the top of its tree.

use super::{node_hash, Hash, LeafKey, EMPTY};

/// An entry as the subtree functions take it: (leaf key, leaf hash).
pub type KeyedLeaf = (LeafKey, Hash);

/// Splits entries sorted by key, all sharing their first `depth` bits, at
/// bit `depth`: (left, right).
fn split(entries: &[KeyedLeaf], depth: usize) -> (&[KeyedLeaf], &[KeyedLeaf]) {
    let mid = entries.partition_point(|(k, _)| !k.bit(depth));
    entries.split_at(mid)
}

/// node(p) (§10.2) of the subtree at the common `depth`-bit prefix of
/// `entries`: (leaf key, leaf hash) sorted ascending by key, distinct.
pub fn subtree_hash(entries: &[(LeafKey, Hash)], depth: usize) -> Hash {
    match entries {
        [] => EMPTY,
        [(_, leaf)] => *leaf,
        _ => {
            let (left, right) = split(entries, depth);
            node_hash(
                &subtree_hash(left, depth + 1),
                &subtree_hash(right, depth + 1),
            )
        }
    }
}

/// Where the path for a key ends inside a subtree.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SubtreePath {
    /// The siblings from the subtree's depth down.
    pub siblings: Vec<Hash>,
    /// How the path ends.
    pub end: PathEnd,
}

/// The terminal of a path inside a subtree.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PathEnd {
    /// An empty subtree.
    Empty,
    /// The one entry there: `entries[i]` (the key itself or another).
    Entry(usize),
}

/// The path for `key` through the subtree of `entries` (as for
/// [`subtree_hash`]; `key` shares their first `depth` bits).
pub fn subtree_path(entries: &[(LeafKey, Hash)], depth: usize, key: &LeafKey) -> SubtreePath {
    let mut siblings = Vec::new();
    let (mut slice, mut offset, mut d) = (entries, 0usize, depth);
    loop {
        match slice.len() {
            0 => {
                return SubtreePath {
                    siblings,
                    end: PathEnd::Empty,
                }
            }
            1 => {
                return SubtreePath {
                    siblings,
                    end: PathEnd::Entry(offset),
                }
            }
            _ => {}
        }
        let (left, right) = split(slice, d);
        if key.bit(d) {
            siblings.push(subtree_hash(left, d + 1));
            offset += left.len();
            slice = right;
        } else {
            siblings.push(subtree_hash(right, d + 1));
            slice = left;
        }
        d += 1;
    }
}
