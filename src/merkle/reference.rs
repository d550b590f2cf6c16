//! The naive implementation: the root ([`reference_root`]) and the proof
//! ([`reference_proof`]) of a set of leaves straight from the definitions
//! of §10.2–10.3, with no sorting tricks or stored nodes. Tests hold the
//! store's tree and [`subtree_hash`](super::subtree_hash) against it.

use super::{node_hash, Hash, Leaf, LeafKey, Proof, Terminal, EMPTY};

/// The root of a set of leaves (any order, distinct keys), straight from
/// the definition of §10.2.
pub fn reference_root(leaves: &[Leaf]) -> Hash {
    let mut sorted = leaves.to_vec();
    sorted.sort_by_key(|l| l.key);
    reference_node(&sorted, 0)
}

/// node(p) for the leaves under one prefix of length `depth`, by the
/// definition.
fn reference_node(leaves: &[Leaf], depth: usize) -> Hash {
    if leaves.is_empty() {
        return EMPTY;
    }
    if leaves.len() == 1 {
        return leaves[0].hash();
    }
    let left: Vec<Leaf> = leaves
        .iter()
        .copied()
        .filter(|l| !l.key.bit(depth))
        .collect();
    let right: Vec<Leaf> = leaves
        .iter()
        .copied()
        .filter(|l| l.key.bit(depth))
        .collect();
    node_hash(
        &reference_node(&left, depth + 1),
        &reference_node(&right, depth + 1),
    )
}

/// The one proof of §10.3 for `key` over a set of leaves, by the
/// definition: presence when the key is in the set, else absence.
pub fn reference_proof(leaves: &[Leaf], key: &LeafKey) -> Proof {
    let mut under: Vec<Leaf> = leaves.to_vec();
    let mut siblings = Vec::new();
    let mut depth = 0;
    while under.len() > 1 {
        let (on, off): (Vec<Leaf>, Vec<Leaf>) = under
            .iter()
            .partition(|l| l.key.bit(depth) == key.bit(depth));
        let mut off = off;
        off.sort_by_key(|l| l.key);
        siblings.push(reference_node(&off, depth + 1));
        under = on;
        depth += 1;
    }
    let terminal = match under.first() {
        None => Some(Terminal::Empty),
        Some(leaf) if leaf.key == *key => None,
        Some(leaf) => Some(Terminal::Leaf(*leaf)),
    };
    Proof { siblings, terminal }
}
