//! The sparse Merkle tree of protocol.md §10.2–10.3: leaf keys, leaf and
//! node hashes, subtree hashes over sorted entries, and proofs of presence
//! and absence with their one strict encoding and their check.
//!
//! This module is arithmetic over entries handed to it: it does not store a
//! tree (the store keeps the top of one, `crate::store`), read files or
//! decide which records are live. [`reference_root`] and
//! [`reference_proof`] apply the definitions directly; they are the second
//! implementation tests hold the store's tree against.

use crate::codec::{b64_decode_exact, b64_encode};
use crate::name::RegisteredName;
use crate::record::{RecordId, INT_LIMIT};
use serde_json::{json, Map, Value};
use sodiumoxide::crypto::hash::sha256;
use std::fmt;

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

/// Where an absence proof ends.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Terminal {
    /// An empty subtree.
    Empty,
    /// The one entry of the subtree, whose key is not the one asked.
    Leaf(Leaf),
}

/// A proof (protocol.md §10.3): the siblings from the root down; a
/// presence proof has no terminal.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Proof {
    /// Sibling i is the child at depth i + 1 off the path; the proof's
    /// depth is their number.
    pub siblings: Vec<Hash>,
    /// `None` for presence; the end of the path for absence.
    pub terminal: Option<Terminal>,
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofError {
    /// The JSON breaks the format of §10.3.
    Shape(String),
    /// A presence proof was given where absence is shown, or the reverse.
    WrongKind,
    /// The terminal entry is the key asked for, or lies off its path.
    NotThisKey,
    /// The path does not lead to the root.
    RootMismatch,
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProofError::Shape(why) => write!(f, "proof is malformed: {why}"),
            ProofError::WrongKind => write!(
                f,
                "proof is of presence where absence is asked, or the reverse"
            ),
            ProofError::NotThisKey => {
                write!(f, "proof's terminal entry is not another key on the path")
            }
            ProofError::RootMismatch => write!(f, "proof does not lead to the head's root"),
        }
    }
}

impl std::error::Error for ProofError {}

impl Proof {
    /// Parses a proof, exactly as §10.3 step 1 allows.
    pub fn from_value(value: &Value) -> Result<Proof, ProofError> {
        let shape = |why: &str| ProofError::Shape(why.to_owned());
        let map = value
            .as_object()
            .ok_or_else(|| shape("a proof must be an object"))?;
        if let Some(extra) = map
            .keys()
            .find(|k| !["depth", "siblings", "terminal"].contains(&k.as_str()))
        {
            return Err(ProofError::Shape(format!("unknown key {extra:?}")));
        }
        let depth = map
            .get("depth")
            .and_then(Value::as_u64)
            .filter(|d| *d <= MAX_DEPTH as u64)
            .ok_or_else(|| shape("depth must be an integer from 0 to 256"))?;
        let list = map
            .get("siblings")
            .and_then(Value::as_array)
            .ok_or_else(|| shape("siblings must be an array"))?;
        if list.len() as u64 != depth {
            return Err(shape("siblings must hold exactly depth hashes"));
        }
        let siblings = list
            .iter()
            .map(|s| s.as_str().and_then(b64_decode_exact::<32>))
            .collect::<Option<Vec<Hash>>>()
            .ok_or_else(|| shape("each sibling must be canonical Base64 of 32 bytes"))?;
        let terminal = map.get("terminal").map(terminal_of).transpose()?;
        Ok(Proof { siblings, terminal })
    }

    /// The proof as JSON.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("depth".into(), self.siblings.len().into());
        let siblings: Vec<Value> = self.siblings.iter().map(|s| b64_encode(s).into()).collect();
        map.insert("siblings".into(), siblings.into());
        match &self.terminal {
            None => {}
            Some(Terminal::Empty) => {
                map.insert("terminal".into(), json!({"empty": true}));
            }
            Some(Terminal::Leaf(leaf)) => {
                map.insert(
                    "terminal".into(),
                    json!({
                        "key": leaf.key.to_base64(),
                        "record": leaf.record.to_base64(),
                        "seq": leaf.seq,
                    }),
                );
            }
        }
        Value::Object(map)
    }

    /// Writes the proof's canonical JSON into `out` (the same text as
    /// `canonical::to_string(&self.to_value())`, without building a value).
    pub fn write_json(&self, out: &mut String) {
        out.push_str("{\"depth\":");
        push_int(out, self.siblings.len() as u64);
        out.push_str(",\"siblings\":[");
        for (i, sibling) in self.siblings.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(&b64_encode(sibling));
            out.push('"');
        }
        out.push(']');
        match &self.terminal {
            None => {}
            Some(Terminal::Empty) => out.push_str(",\"terminal\":{\"empty\":true}"),
            Some(Terminal::Leaf(leaf)) => {
                out.push_str(",\"terminal\":{\"key\":\"");
                out.push_str(&leaf.key.to_base64());
                out.push_str("\",\"record\":\"");
                out.push_str(&leaf.record.to_base64());
                out.push_str("\",\"seq\":");
                push_int(out, leaf.seq);
                out.push('}');
            }
        }
        out.push('}');
    }

    /// Checks that this proves the entry (key, record, seq) is in the tree
    /// with `root`.
    pub fn verify_presence(
        &self,
        key: &LeafKey,
        record: &RecordId,
        seq: u64,
        root: &Hash,
    ) -> Result<(), ProofError> {
        self.check_depth()?;
        if self.terminal.is_some() {
            return Err(ProofError::WrongKind);
        }
        self.climb(key, leaf_hash(key, record, seq), root)
    }

    /// Checks that this proves no entry with `key` is in the tree with
    /// `root`.
    pub fn verify_absence(&self, key: &LeafKey, root: &Hash) -> Result<(), ProofError> {
        self.check_depth()?;
        let start = match &self.terminal {
            None => return Err(ProofError::WrongKind),
            Some(Terminal::Empty) => EMPTY,
            Some(Terminal::Leaf(leaf)) => {
                if leaf.key == *key || !leaf.key.shares_prefix(key, self.siblings.len()) {
                    return Err(ProofError::NotThisKey);
                }
                leaf.hash()
            }
        };
        self.climb(key, start, root)
    }

    /// Refuses a proof built in code with more siblings than a key has
    /// bits (parsing already does): the walk would run off the key.
    fn check_depth(&self) -> Result<(), ProofError> {
        if self.siblings.len() > MAX_DEPTH {
            return Err(ProofError::Shape(format!(
                "depth {} is more than 256",
                self.siblings.len()
            )));
        }
        Ok(())
    }

    /// Hashes from the terminal up to the root along `key` (§10.3, 3–4).
    fn climb(&self, key: &LeafKey, start: Hash, root: &Hash) -> Result<(), ProofError> {
        let mut h = start;
        for (i, sibling) in self.siblings.iter().enumerate().rev() {
            h = if key.bit(i) {
                node_hash(sibling, &h)
            } else {
                node_hash(&h, sibling)
            };
        }
        if h == *root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        }
    }
}

/// Appends an integer in decimal, as canonical JSON writes it.
fn push_int(out: &mut String, n: u64) {
    use std::fmt::Write;
    // Writing into a String cannot fail.
    let _ = write!(out, "{n}");
}

/// Parses a terminal: exactly `{"empty":true}` or `{"key","record","seq"}`.
fn terminal_of(value: &Value) -> Result<Terminal, ProofError> {
    let shape = |why: &str| ProofError::Shape(why.to_owned());
    let map = value
        .as_object()
        .ok_or_else(|| shape("terminal must be an object"))?;
    if map.len() == 1 && map.get("empty") == Some(&Value::Bool(true)) {
        return Ok(Terminal::Empty);
    }
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    if keys.len() != 3 || !["key", "record", "seq"].iter().all(|k| keys.contains(k)) {
        return Err(shape(
            "terminal must be {\"empty\":true} or have exactly key, record and seq",
        ));
    }
    let text = |k: &str| map.get(k).and_then(Value::as_str);
    Ok(Terminal::Leaf(Leaf {
        key: text("key")
            .and_then(LeafKey::from_base64)
            .ok_or_else(|| shape("terminal key must be canonical Base64 of 32 bytes"))?,
        record: text("record")
            .and_then(RecordId::from_base64)
            .ok_or_else(|| shape("terminal record must be canonical Base64 of 32 bytes"))?,
        seq: map
            .get("seq")
            .and_then(Value::as_u64)
            .filter(|s| (1..INT_LIMIT).contains(s))
            .ok_or_else(|| shape("terminal seq must be an integer from 1 to 2^53-1"))?,
    }))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u8) -> Leaf {
        Leaf {
            key: LeafKey(sha256::hash(&[i]).0),
            record: RecordId([i; 32]),
            seq: u64::from(i) + 1,
        }
    }

    #[test]
    fn bits_and_prefixes() {
        let mut key = LeafKey([0; 32]);
        key.0[0] = 0b1010_0000;
        key.0[8] = 0xff;
        assert!(key.bit(0) && !key.bit(1) && key.bit(2) && !key.bit(3));
        assert_eq!(key.prefix64(), 0xa000_0000_0000_0000);
        let mut other = key;
        other.0[0] = 0b1011_0000;
        assert!(key.shares_prefix(&other, 3) && !key.shares_prefix(&other, 4));
        assert!(key.shares_prefix(&key, 256));
    }

    #[test]
    fn both_ways_of_computing_agree_and_proofs_verify() {
        let leaves: Vec<Leaf> = (0..50).map(leaf).collect();
        let mut pairs: Vec<(LeafKey, Hash)> = leaves.iter().map(|l| (l.key, l.hash())).collect();
        pairs.sort_by_key(|p| p.0);
        let root = reference_root(&leaves);
        assert_eq!(subtree_hash(&pairs, 0), root);
        for l in &leaves {
            let proof = reference_proof(&leaves, &l.key);
            proof
                .verify_presence(&l.key, &l.record, l.seq, &root)
                .unwrap();
            assert!(proof
                .verify_presence(&l.key, &l.record, l.seq + 1, &root)
                .is_err());
            assert_eq!(Proof::from_value(&proof.to_value()).unwrap(), proof);
            let mut text = String::new();
            proof.write_json(&mut text);
            assert_eq!(text, crate::canonical::to_string(&proof.to_value()));
        }
        let absent = leaf(200).key;
        let proof = reference_proof(&leaves, &absent);
        proof.verify_absence(&absent, &root).unwrap();
        let path = subtree_path(&pairs, 0, &absent);
        assert_eq!(path.siblings, proof.siblings);
    }

    #[test]
    fn small_sets() {
        let one = leaf(1);
        assert_eq!(reference_root(&[]), EMPTY);
        assert_eq!(subtree_hash(&[], 0), EMPTY);
        assert_eq!(reference_root(&[one]), one.hash());
        assert_eq!(subtree_hash(&[(one.key, one.hash())], 0), one.hash());
        let empty = reference_proof(&[], &one.key);
        assert_eq!(
            empty,
            Proof {
                siblings: vec![],
                terminal: Some(Terminal::Empty)
            }
        );
        empty.verify_absence(&one.key, &EMPTY).unwrap();
        let alone = reference_proof(&[one], &one.key);
        assert_eq!(
            alone,
            Proof {
                siblings: vec![],
                terminal: None
            }
        );
        alone
            .verify_presence(&one.key, &one.record, one.seq, &one.hash())
            .unwrap();
        let other = reference_proof(&[one], &leaf(2).key);
        assert_eq!(other.terminal, Some(Terminal::Leaf(one)));
        other.verify_absence(&leaf(2).key, &one.hash()).unwrap();
    }

    #[test]
    fn subtrees_below_the_root() {
        // Keys sharing their first 10 bits, as a bucket below depth 10.
        let mut leaves: Vec<Leaf> = (0..40u8)
            .map(|i| {
                let mut l = leaf(i);
                l.key.0[0] = 0xa5;
                l.key.0[1] = (l.key.0[1] & 0x3f) | 0x80;
                l
            })
            .collect();
        leaves.sort_by_key(|l| l.key);
        let pairs: Vec<KeyedLeaf> = leaves.iter().map(|l| (l.key, l.hash())).collect();
        // Every sibling above the bucket is Z: climbing from the bucket's
        // hash past ten empty siblings gives the root.
        let root = reference_root(&leaves);
        assert_eq!(subtree_hash(&pairs, 0), root);
        let bucket = subtree_hash(&pairs, 10);
        let climbed = Proof {
            siblings: vec![EMPTY; 10],
            terminal: None,
        }
        .climb(&leaves[0].key, bucket, &root);
        assert_eq!(climbed, Ok(()));
        for (i, l) in leaves.iter().enumerate() {
            let path = subtree_path(&pairs, 10, &l.key);
            assert_eq!(path.end, PathEnd::Entry(i));
            let whole = reference_proof(&leaves, &l.key);
            assert_eq!(whole.siblings[..10], [EMPTY; 10]);
            assert_eq!(whole.siblings[10..], path.siblings[..]);
            let mut inner = Proof {
                siblings: path.siblings,
                terminal: None,
            };
            inner.siblings.splice(0..0, [EMPTY; 10]);
            inner
                .verify_presence(&l.key, &l.record, l.seq, &root)
                .unwrap();
        }
        let mut absent = leaf(99).key;
        absent.0[0] = 0xa5;
        absent.0[1] = (absent.0[1] & 0x3f) | 0x80;
        let path = subtree_path(&pairs, 10, &absent);
        let whole = reference_proof(&leaves, &absent);
        assert_eq!(whole.siblings[10..], path.siblings[..]);
        match (path.end, whole.terminal) {
            (PathEnd::Empty, Some(Terminal::Empty)) => {}
            (PathEnd::Entry(i), Some(Terminal::Leaf(t))) => assert_eq!(leaves[i], t),
            other => panic!("path and reference disagree: {other:?}"),
        }
    }

    #[test]
    fn absence_terminals_are_checked() {
        let leaves: Vec<Leaf> = (0..8).map(leaf).collect();
        let root = reference_root(&leaves);
        let present = leaves[3];
        let proof = reference_proof(&leaves, &present.key);
        // Dressing a presence proof as absence with its own leaf fails.
        let own = Proof {
            siblings: proof.siblings.clone(),
            terminal: Some(Terminal::Leaf(present)),
        };
        assert_eq!(
            own.verify_absence(&present.key, &root),
            Err(ProofError::NotThisKey)
        );
        assert_eq!(
            proof.verify_absence(&present.key, &root),
            Err(ProofError::WrongKind)
        );
        // Another key's terminal whose leaf lies off the path fails too.
        let mut off = present;
        off.key.0[0] ^= 0x80;
        let moved = Proof {
            siblings: proof.siblings.clone(),
            terminal: Some(Terminal::Leaf(off)),
        };
        assert_eq!(
            moved.verify_absence(&present.key, &root),
            Err(ProofError::NotThisKey)
        );
        let deep = Proof {
            siblings: vec![EMPTY; 257],
            terminal: Some(Terminal::Empty),
        };
        assert!(matches!(
            deep.verify_absence(&present.key, &root),
            Err(ProofError::Shape(_))
        ));
    }

    #[test]
    fn parsing_is_strict() {
        let z = b64_encode(&EMPTY);
        let k = b64_encode(&[7; 32]);
        let ok = [
            json!({"depth": 0, "siblings": []}),
            json!({"depth": 1, "siblings": [z], "terminal": {"empty": true}}),
            json!({"depth": 0, "siblings": [], "terminal": {"key": k, "record": k, "seq": 1}}),
            json!({"depth": 0, "siblings": [],
                   "terminal": {"key": k, "record": k, "seq": INT_LIMIT - 1}}),
        ];
        for value in ok {
            let proof = Proof::from_value(&value).unwrap();
            assert_eq!(proof.to_value(), value);
        }
        let bad = [
            json!([]),
            json!({"siblings": []}),
            json!({"depth": 0}),
            json!({"depth": 0, "siblings": [], "extra": 1}),
            json!({"depth": 1, "siblings": []}),
            json!({"depth": 0, "siblings": [z]}),
            json!({"depth": -1, "siblings": []}),
            json!({"depth": 0.0, "siblings": []}),
            json!({"depth": 257, "siblings": vec![z.clone(); 257]}),
            json!({"depth": 1, "siblings": [b64_encode(&[0; 31])]}),
            json!({"depth": 1, "siblings": ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="]}),
            json!({"depth": 1, "siblings": [1]}),
            json!({"depth": 0, "siblings": [], "terminal": null}),
            json!({"depth": 0, "siblings": [], "terminal": {}}),
            json!({"depth": 0, "siblings": [], "terminal": {"empty": false}}),
            json!({"depth": 0, "siblings": [], "terminal": {"empty": 1}}),
            json!({"depth": 0, "siblings": [], "terminal": {"empty": true, "seq": 1}}),
            json!({"depth": 0, "siblings": [], "terminal": {"key": k, "record": k}}),
            json!({"depth": 0, "siblings": [], "terminal": {"key": k, "record": k, "seq": 0}}),
            json!({"depth": 0, "siblings": [],
                   "terminal": {"key": k, "record": k, "seq": INT_LIMIT}}),
            json!({"depth": 0, "siblings": [],
                   "terminal": {"key": k, "record": k, "seq": 1, "x": 1}}),
            json!({"depth": 0, "siblings": [], "terminal": {"key": z, "record": 1, "seq": 1}}),
        ];
        for value in bad {
            assert!(
                matches!(Proof::from_value(&value), Err(ProofError::Shape(_))),
                "accepted {value}"
            );
        }
        let full = Proof::from_value(&json!({"depth": 256, "siblings": vec![z; 256]})).unwrap();
        assert_eq!(full.siblings.len(), MAX_DEPTH);
    }
}
