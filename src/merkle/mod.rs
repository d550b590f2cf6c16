//! The sparse Merkle tree of PROTOCOL.md §10.2–10.3: leaf keys, leaf and
//! node hashes, subtree hashes over sorted entries, and proofs of presence
//! and absence with their one strict encoding and their check.
//!
//! This module is arithmetic over entries handed to it: it does not store a
//! tree (the store keeps the top of one, `crate::store`), read files or
//! decide which records are live. [`reference_root`] and
//! [`reference_proof`] apply the definitions directly; they are the second
//! implementation tests hold the store's tree against.
//!
//! Inside, this file holds the tree's values: [`LeafKey`], [`Leaf`] and
//! the two hash functions. `proof` holds [`Proof`] with its parsing,
//! encodings and checks, `subtree` the fast subtree hashes and paths over
//! sorted entries, and `reference` the naive implementation. Everything
//! public is re-exported here, so `onions::merkle::X` is the one path to
//! it.

use crate::codec::{b64_decode_exact, b64_encode};
use crate::name::RegisteredName;
use crate::record::RecordId;
use sodiumoxide::crypto::hash::sha256;
use std::fmt;

mod proof;
mod reference;
mod subtree;
#[cfg(test)]
mod tests;

pub use proof::{Proof, ProofError, Terminal};
pub use reference::{reference_proof, reference_root};
pub use subtree::{subtree_hash, subtree_path, KeyedLeaf, PathEnd, SubtreePath};

/// A SHA-256 output: a node, leaf or root hash.
pub type Hash = [u8; 32];

/// Z: the hash of an empty subtree.
pub const EMPTY: Hash = [0; 32];

/// Domain separator of leaf keys.
const LEAF_KEY_CONTEXT: &[u8] = b"onions-leaf-key\n";

/// Most siblings a proof can have: one per bit of a key.
pub const MAX_DEPTH: usize = 256;

/// Where a name sits in the tree: `SHA-256("onions-leaf-key\n" || name)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeafKey(pub [u8; 32]);

impl LeafKey {
    /// The leaf key of a registered name.
    pub fn of(name: &RegisteredName) -> LeafKey {
        let mut state = sha256::State::new();
        state.update(LEAF_KEY_CONTEXT);
        state.update(name.as_str().as_bytes());
        LeafKey(state.finalize().0)
    }

    /// Bit `i` (bit 0 is the most significant bit of byte 0): which child
    /// the path takes at depth `i`.
    pub fn bit(&self, i: usize) -> bool {
        (self.0[i / 8] >> (7 - i % 8)) & 1 == 1
    }

    /// The first 64 bits, big-endian: the key's place in an index.
    pub fn prefix64(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(first)
    }

    /// True when the first `bits` bits of both keys are equal.
    pub fn shares_prefix(&self, other: &LeafKey, bits: usize) -> bool {
        let whole = bits / 8;
        if self.0[..whole] != other.0[..whole] {
            return false;
        }
        let rest = bits % 8;
        rest == 0 || (self.0[whole] ^ other.0[whole]) >> (8 - rest) == 0
    }

    /// The key as Base64.
    pub fn to_base64(&self) -> String {
        b64_encode(&self.0)
    }

    /// Parses canonical Base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Option<LeafKey> {
        b64_decode_exact::<32>(text).map(LeafKey)
    }
}

impl fmt::Debug for LeafKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeafKey({})", self.to_base64())
    }
}

/// The leaf hash of an entry: `SHA-256(0x00 || K || record id || seq)`.
pub fn leaf_hash(key: &LeafKey, record: &RecordId, seq: u64) -> Hash {
    let mut state = sha256::State::new();
    state.update(&[0x00]);
    state.update(&key.0);
    state.update(&record.0);
    state.update(&seq.to_be_bytes());
    state.finalize().0
}

/// The hash of a node with two non-trivial children:
/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut state = sha256::State::new();
    state.update(&[0x01]);
    state.update(left);
    state.update(right);
    state.finalize().0
}

/// One entry of the live set as the tree sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Leaf {
    /// The name's leaf key.
    pub key: LeafKey,
    /// The record's id.
    pub record: RecordId,
    /// The record's attestation seq.
    pub seq: u64,
}

impl Leaf {
    /// The entry's leaf hash.
    pub fn hash(&self) -> Hash {
        leaf_hash(&self.key, &self.record, self.seq)
    }
}
