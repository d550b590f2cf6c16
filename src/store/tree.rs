//! The stored part of the sparse Merkle tree (PROTOCOL.md §10.2) over a
//! server's live set: every node down to a fixed depth, in one array.
//!
//! The tree is cut at depth `depth` into `2^depth` buckets, the subtrees
//! under each `depth`-bit prefix of the leaf keys. The array holds, for
//! each node down to the buckets, its hash, how many entries lie under it
//! and the earliest `expires` among them (40 bytes a node). What lies
//! inside a bucket (a handful of entries: `depth` is chosen so that a
//! bucket holds 4 to 8 on average) is not stored: it is recomputed from the
//! leaf hashes kept in the log when a bucket changes or a proof passes
//! through it. So the tree costs about 10–20 bytes a name, and a proof
//! reads a few small pieces of the log.
//!
//! This module knows nothing of files or names: the caller hands it the
//! members of a bucket ([`Member`]) and changed buckets; it keeps the
//! nodes above them and walks proofs. Changes are computed aside
//! ([`Delta`]) and applied only once the caller decides to, so a server can
//! check a head against a changed tree and keep the old one if the check
//! fails.

use crate::merkle::{self, Hash, LeafKey, EMPTY};

/// Deepest bucket level used (2^24 buckets: more than 2^26 names).
const MAX_DEPTH: u32 = 24;
/// Fewest buckets for which a whole tree is built on more than one thread.
const PARALLEL_BUCKETS: usize = 4096;

/// One stored node: the hash of its subtree and what the tree needs to
/// know of the entries under it without reading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Node {
    /// node(p) of PROTOCOL.md §10.2.
    pub(super) hash: Hash,
    /// Entries under the node.
    pub(super) count: u32,
    /// The earliest `expires` under the node (clamped to u32; `u32::MAX`
    /// when empty): a bucket whose entries may have expired at time T is
    /// found by descending where this is at most T.
    pub(super) min_expires: u32,
}

impl Node {
    /// The node of an empty subtree.
    pub(super) const EMPTY: Node = Node {
        hash: EMPTY,
        count: 0,
        min_expires: u32::MAX,
    };

    /// The parent of two nodes: a subtree of one entry is that entry's leaf
    /// hash at any depth, so a single child passes its hash up unchanged.
    fn parent(left: &Node, right: &Node) -> Node {
        let hash = match (left.count, right.count) {
            (0, 0) => EMPTY,
            (1, 0) => left.hash,
            (0, 1) => right.hash,
            _ => merkle::node_hash(&left.hash, &right.hash),
        };
        Node {
            hash,
            count: left.count.saturating_add(right.count),
            min_expires: left.min_expires.min(right.min_expires),
        }
    }

    /// The node of a bucket at `depth` holding `members`, sorted by key.
    pub(super) fn of_bucket(members: &[Member], depth: u32) -> Node {
        let leaves: Vec<(LeafKey, Hash)> = members.iter().map(|m| (m.key, m.leaf)).collect();
        Node {
            hash: merkle::subtree_hash(&leaves, depth as usize),
            count: u32::try_from(members.len()).unwrap_or(u32::MAX),
            min_expires: members
                .iter()
                .map(|m| clamp(m.expires))
                .min()
                .unwrap_or(u32::MAX),
        }
    }
}

/// `expires` as stored in a node: times past 2106 become the largest
/// u32, which is earlier than the real time, so such a bucket is merely
/// looked at once too often.
fn clamp(expires: u64) -> u32 {
    u32::try_from(expires).unwrap_or(u32::MAX)
}

/// One entry of a bucket as the tree needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Member {
    /// Its leaf key; only the first 64 bits are real when no two members
    /// of the bucket share them (the rest are zero and never looked at).
    pub(super) key: LeafKey,
    /// Its leaf hash.
    pub(super) leaf: Hash,
    /// Its record's expiry.
    pub(super) expires: u64,
    /// Where its record is in the log (0 for a record not written yet).
    pub(super) offset: u64,
}

/// Where a walk from the root towards a key stops in the stored nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// An empty subtree.
    Empty,
    /// A subtree of one entry, which lies in this bucket.
    Single(usize),
    /// A bucket of two or more entries: the walk goes on inside it.
    Bucket(usize),
}

/// Changed nodes, computed aside: `(index, node)` from the buckets up to the
/// root, each level ascending.
#[derive(Debug, Default)]
pub(super) struct Delta {
    /// Every changed node.
    changes: Vec<(usize, Node)>,
}

/// The nodes down to the buckets.
#[derive(Debug, Clone)]
pub(super) struct Tree {
    /// Bucket depth: buckets are the nodes at this depth.
    depth: u32,
    /// Node `i` has children `2i` and `2i + 1`; the root is 1; buckets
    /// are `2^depth ..= 2^(depth+1) - 1`. Index 0 is unused.
    nodes: Vec<Node>,
}

impl Tree {
    /// A tree of depth `depth` with every bucket empty.
    pub(super) fn empty(depth: u32) -> Tree {
        Tree {
            depth,
            nodes: vec![Node::EMPTY; 2usize << depth],
        }
    }

    /// The bucket depth that keeps 4 to 8 entries a bucket for `n` names.
    pub(super) fn depth_for(n: usize) -> u32 {
        (n.max(1).ilog2().saturating_sub(2)).min(MAX_DEPTH)
    }

    /// Bucket depth.
    pub(super) fn depth(&self) -> u32 {
        self.depth
    }

    /// Number of buckets.
    pub(super) fn buckets(&self) -> usize {
        1usize << self.depth
    }

    /// The bucket of a key with these first 64 bits.
    pub(super) fn bucket_of(&self, prefix: u64) -> usize {
        prefix.checked_shr(64 - self.depth).unwrap_or(0) as usize
    }

    /// The root node: the live set's root hash and size.
    pub(super) fn root(&self) -> Node {
        self.nodes[1]
    }

    /// A tree of depth `depth` from every bucket's node. A whole tree is
    /// built at open and at a mirror's first head, each bucket reading its
    /// members from the log, so a large one is built on every core: the
    /// buckets are cut into one run a thread.
    pub(super) fn build<E: Send>(
        depth: u32,
        bucket: impl Fn(usize) -> Result<Node, E> + Sync,
    ) -> Result<Tree, E> {
        let mut tree = Tree::empty(depth);
        let first = tree.buckets();
        let threads = if first < PARALLEL_BUCKETS {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        let run = first.div_ceil(threads);
        let fill = |start: usize, nodes: &mut [Node]| -> Result<(), E> {
            for (i, node) in nodes.iter_mut().enumerate() {
                *node = bucket(start + i)?;
            }
            Ok(())
        };
        std::thread::scope(|scope| {
            let mut runs = tree.nodes[first..].chunks_mut(run).enumerate();
            let (_, mine) = runs.next().expect("a tree has at least one bucket");
            let others: Vec<_> = runs
                .map(|(k, nodes)| scope.spawn(move || fill(k * run, nodes)))
                .collect();
            let result = fill(0, mine);
            others.into_iter().fold(result, |result, other| {
                let theirs = other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                result.and(theirs)
            })
        })?;
        for i in (1..first).rev() {
            tree.nodes[i] = Node::parent(&tree.nodes[2 * i], &tree.nodes[2 * i + 1]);
        }
        Ok(tree)
    }

    /// Buckets holding an entry whose `expires` is at most `time`.
    pub(super) fn expiring(&self, time: u64) -> Vec<usize> {
        let mut found = Vec::new();
        let mut stack = vec![1usize];
        let first = self.buckets();
        while let Some(i) = stack.pop() {
            if self.nodes[i].count == 0 || u64::from(self.nodes[i].min_expires) > time {
                continue;
            }
            if i >= first {
                found.push(i - first);
            } else {
                stack.extend([2 * i, 2 * i + 1]);
            }
        }
        found.sort_unstable();
        found
    }

    /// The nodes that change when `buckets` (bucket, new node; ascending,
    /// distinct) replace the stored ones.
    pub(super) fn delta(&self, buckets: Vec<(usize, Node)>) -> Delta {
        let first = self.buckets();
        let mut level: Vec<(usize, Node)> =
            buckets.into_iter().map(|(b, n)| (first + b, n)).collect();
        let mut changes = level.clone();
        while level.first().is_some_and(|(i, _)| *i > 1) {
            let mut parents = Vec::with_capacity(level.len());
            let mut k = 0;
            while k < level.len() {
                let (i, node) = level[k];
                let (left, right) = if i % 2 == 0 {
                    match level.get(k + 1) {
                        Some(&(j, right)) if j == i + 1 => {
                            k += 1;
                            (node, right)
                        }
                        _ => (node, self.nodes[i + 1]),
                    }
                } else {
                    (self.nodes[i - 1], node)
                };
                parents.push((i / 2, Node::parent(&left, &right)));
                k += 1;
            }
            changes.extend_from_slice(&parents);
            level = parents;
        }
        Delta { changes }
    }

    /// The root once `delta` is applied.
    pub(super) fn root_after(&self, delta: &Delta) -> Node {
        match delta.changes.last() {
            Some(&(1, node)) => node,
            _ => self.root(),
        }
    }

    /// Applies changes computed by [`Tree::delta`] on this tree.
    pub(super) fn apply(&mut self, delta: Delta) {
        for (i, node) in delta.changes {
            self.nodes[i] = node;
        }
    }

    /// Walks from the root along `key`: the siblings passed (PROTOCOL.md
    /// §10.3, from the root down) and where the stored nodes stop.
    pub(super) fn walk(&self, key: &LeafKey) -> (Vec<Hash>, Stop) {
        let first = self.buckets();
        let mut siblings = Vec::with_capacity(self.depth as usize + 8);
        let mut i = 1usize;
        let mut depth = 0usize;
        loop {
            match self.nodes[i].count {
                0 => return (siblings, Stop::Empty),
                1 => return (siblings, Stop::Single(self.only_bucket(i) - first)),
                _ if i >= first => return (siblings, Stop::Bucket(i - first)),
                _ => {}
            }
            let bit = usize::from(key.bit(depth));
            siblings.push(self.nodes[2 * i + 1 - bit].hash);
            i = 2 * i + bit;
            depth += 1;
        }
    }

    /// The bucket node under `i` that holds the one entry under `i`.
    fn only_bucket(&self, mut i: usize) -> usize {
        while i < self.buckets() {
            i = if self.nodes[2 * i].count > 0 {
                2 * i
            } else {
                2 * i + 1
            };
        }
        i
    }
}

/// The first 64 bits of the smallest and largest keys in bucket `b` of a
/// tree of bucket depth `depth`.
pub(super) fn bucket_range(depth: u32, b: usize) -> (u64, u64) {
    let span = u64::MAX.checked_shr(depth).unwrap_or(0);
    let lo = (b as u64).checked_shl(64 - depth).unwrap_or(0);
    (lo, lo | span)
}

/// The leaf key whose first 64 bits are `prefix` and the rest zero: what a
/// bucket sorts and splits by when its members' prefixes differ.
pub(super) fn key_of_prefix(prefix: u64) -> LeafKey {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&prefix.to_be_bytes());
    LeafKey(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::Leaf;
    use crate::record::RecordId;

    fn leaf(i: u64) -> Leaf {
        let mut key = [0u8; 32];
        let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for byte in key.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *byte = x as u8;
        }
        Leaf {
            key: LeafKey(key),
            record: RecordId([i as u8; 32]),
            seq: i + 1,
        }
    }

    fn members_in(depth: u32, leaves: &[Leaf], b: usize) -> Vec<Member> {
        let (lo, hi) = bucket_range(depth, b);
        let mut members: Vec<Member> = leaves
            .iter()
            .filter(|l| (lo..=hi).contains(&l.key.prefix64()))
            .map(|l| Member {
                key: l.key,
                leaf: l.hash(),
                expires: 100 + l.seq,
                offset: 0,
            })
            .collect();
        members.sort_by_key(|m| m.key);
        members
    }

    #[test]
    fn built_and_changed_trees_give_the_reference_root() {
        for n in [0usize, 1, 2, 3, 17, 200] {
            let leaves: Vec<Leaf> = (0..n as u64).map(leaf).collect();
            let depth = Tree::depth_for(n);
            let tree = Tree::build::<()>(depth, |b| {
                Ok(Node::of_bucket(&members_in(depth, &leaves, b), depth))
            })
            .unwrap();
            assert_eq!(tree.root().hash, merkle::reference_root(&leaves), "n = {n}");
            assert_eq!(tree.root().count as usize, n);
            if n < 3 {
                continue;
            }
            let kept: Vec<Leaf> = leaves.iter().copied().filter(|l| l.seq % 3 != 0).collect();
            let mut changed: Vec<usize> = leaves
                .iter()
                .filter(|l| l.seq % 3 == 0)
                .map(|l| tree.bucket_of(l.key.prefix64()))
                .collect();
            changed.sort_unstable();
            changed.dedup();
            let buckets = changed
                .into_iter()
                .map(|b| (b, Node::of_bucket(&members_in(depth, &kept, b), depth)))
                .collect();
            let delta = tree.delta(buckets);
            let root = tree.root_after(&delta);
            let mut after = tree.clone();
            after.apply(delta);
            assert_eq!(root, after.root());
            assert_eq!(root.hash, merkle::reference_root(&kept), "n = {n}");
            assert_eq!(root.count as usize, kept.len());
        }
    }

    #[test]
    fn expiring_finds_exactly_the_buckets_with_an_early_expiry() {
        let leaves: Vec<Leaf> = (0..64).map(leaf).collect();
        let depth = Tree::depth_for(64);
        let tree = Tree::build::<()>(depth, |b| {
            Ok(Node::of_bucket(&members_in(depth, &leaves, b), depth))
        })
        .unwrap();
        let early: Vec<usize> = {
            let mut b: Vec<usize> = leaves
                .iter()
                .filter(|l| 100 + l.seq <= 110)
                .map(|l| tree.bucket_of(l.key.prefix64()))
                .collect();
            b.sort_unstable();
            b.dedup();
            b
        };
        assert_eq!(tree.expiring(110), early);
        assert!(tree.expiring(100).is_empty());
    }
}
