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
//!
//! As the set grows, the tree deepens a level ahead of need, a few buckets
//! at each change ([`Tree::change`]): from three quarters of the way to the
//! next power of two on, each change also splits some buckets into the
//! next level's two, and once every bucket is split the tree takes that
//! level as its own. So no single change reads the whole set, which a
//! rebuild at the threshold would (about 1-2 s at 2^20 names, all of it in
//! one head's batch).

use crate::merkle::{self, Hash, LeafKey, EMPTY};
use std::ops::Range;

/// Deepest bucket level used (2^24 buckets: more than 2^26 names).
const MAX_DEPTH: u32 = 24;
/// Fewest buckets for which a whole tree is built on more than one thread.
const PARALLEL_BUCKETS: usize = 4096;
/// Fewest buckets split by each change while the tree deepens, so that
/// heads which add no names (a quiet Quorum's interval heads) still finish
/// it.
const MIN_SPLITS: usize = 16;

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
/// root, each level ascending, and the deepening's step, if one is under way.
#[derive(Debug, Default)]
pub(super) struct Delta {
    /// Every changed node.
    changes: Vec<(usize, Node)>,
    /// The next level's nodes this change sets.
    split: Option<Split>,
}

impl Delta {
    /// True when this change takes a step of deepening.
    pub(super) fn splits(&self) -> bool {
        self.split.is_some()
    }
}

/// A change's part in deepening the tree: the next level's nodes under the
/// buckets it split, and under those already split that it changed.
#[derive(Debug)]
struct Split {
    /// (bucket of the next level, its node).
    nodes: Vec<(usize, Node)>,
    /// Buckets split once this change is applied: every bucket below it.
    done: usize,
}

/// The next level, while the tree deepens: the two nodes under each bucket
/// below `done` (the rest are not computed yet).
#[derive(Debug, Clone)]
struct Deeper {
    /// Node `2b` and `2b + 1` lie under bucket `b`.
    level: Vec<Node>,
    /// Buckets split so far.
    done: usize,
}

/// The nodes down to the buckets.
#[derive(Debug, Clone)]
pub(super) struct Tree {
    /// Bucket depth: buckets are the nodes at this depth.
    depth: u32,
    /// Node `i` has children `2i` and `2i + 1`; the root is 1; buckets
    /// are `2^depth ..= 2^(depth+1) - 1`. Index 0 is unused.
    nodes: Vec<Node>,
    /// The level below the buckets, while it is being computed.
    deeper: Option<Deeper>,
}

impl Tree {
    /// A tree of depth `depth` with every bucket empty.
    pub(super) fn empty(depth: u32) -> Tree {
        Tree {
            depth,
            nodes: vec![Node::EMPTY; 2usize << depth],
            deeper: None,
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

    /// The change that recomputes the `dirty` buckets (ascending, distinct)
    /// from `members` (a bucket's members, sorted by key) and, for a set
    /// of `names` names, takes the next step of deepening: reading the
    /// members of a few more buckets to split them. A bucket already split
    /// is split again when it changes.
    pub(super) fn change<E>(
        &self,
        dirty: &[usize],
        names: usize,
        members: impl Fn(usize) -> Result<Vec<Member>, E>,
    ) -> Result<Delta, E> {
        self.change_splitting(dirty, names, MIN_SPLITS, members)
    }

    /// [`Tree::change`], splitting at least `min_splits` buckets a change
    /// while the tree deepens.
    fn change_splitting<E>(
        &self,
        dirty: &[usize],
        names: usize,
        min_splits: usize,
        members: impl Fn(usize) -> Result<Vec<Member>, E>,
    ) -> Result<Delta, E> {
        let splits = self.splits(names, min_splits);
        // Every bucket below the end of this step is split once it is
        // applied: those split before, and those this step splits.
        let split_to = splits.as_ref().map_or(0, |s| s.end);
        let mut nodes = Vec::with_capacity(dirty.len());
        let mut level = Vec::new();
        for &b in dirty {
            let own = members(b)?;
            nodes.push((b, Node::of_bucket(&own, self.depth)));
            if b < split_to {
                level.extend(self.split_bucket(b, &own));
            }
        }
        for b in splits.clone().unwrap_or_default() {
            if dirty.binary_search(&b).is_err() {
                level.extend(self.split_bucket(b, &members(b)?));
            }
        }
        let mut delta = self.delta(nodes);
        delta.split = splits.map(|s| Split {
            nodes: level,
            done: s.end,
        });
        Ok(delta)
    }

    /// The buckets the next change splits: none until the set is three
    /// quarters of the way to the size that calls for the next level
    /// ([`Tree::depth_for`]); then enough to be done at fifteen sixteenths
    /// of it, and at least `min_splits` a change.
    fn splits(&self, names: usize, min_splits: usize) -> Option<Range<usize>> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        let start = 3usize << (self.depth + 1);
        let done = match &self.deeper {
            Some(deeper) => deeper.done,
            None if names >= start => 0,
            None => return None,
        };
        // The next level is due at 2^(depth+3) names: splitting all
        // 2^depth buckets over the 3 * 2^(depth-1) names from `start` on
        // is two buckets for every three names.
        let due = names.saturating_sub(start).saturating_mul(2) / 3;
        let end = due.max(done + min_splits).min(self.buckets());
        Some(done..end)
    }

    /// The next level's nodes under bucket `b`, whose members are `own`:
    /// `(2b, left)` and `(2b + 1, right)`.
    fn split_bucket(&self, b: usize, own: &[Member]) -> [(usize, Node); 2] {
        let depth = self.depth as usize;
        let half = own.partition_point(|m| !m.key.bit(depth));
        let (left, right) = own.split_at(half);
        [
            (2 * b, Node::of_bucket(left, self.depth + 1)),
            (2 * b + 1, Node::of_bucket(right, self.depth + 1)),
        ]
    }

    /// True while the tree is deepening.
    pub(super) fn deepening(&self) -> bool {
        self.deeper.is_some()
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
    fn delta(&self, buckets: Vec<(usize, Node)>) -> Delta {
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
        Delta {
            changes,
            split: None,
        }
    }

    /// The root once `delta` is applied.
    pub(super) fn root_after(&self, delta: &Delta) -> Node {
        match delta.changes.last() {
            Some(&(1, node)) => node,
            _ => self.root(),
        }
    }

    /// Applies changes computed by [`Tree::change`] or [`Tree::delta`] on
    /// this tree; when the last bucket is split, the tree takes the next
    /// level as its buckets. True when it did.
    pub(super) fn apply(&mut self, delta: Delta) -> bool {
        for (i, node) in delta.changes {
            self.nodes[i] = node;
        }
        let Some(split) = delta.split else {
            return false;
        };
        let buckets = self.buckets();
        let deeper = self.deeper.get_or_insert_with(|| Deeper {
            level: vec![Node::EMPTY; 2 * buckets],
            done: 0,
        });
        for (b, node) in split.nodes {
            deeper.level[b] = node;
        }
        deeper.done = split.done;
        if deeper.done < buckets {
            return false;
        }
        // The nodes above the buckets stay where they are: node i's
        // children are 2i and 2i + 1 at any depth.
        let level = std::mem::take(&mut deeper.level);
        self.deeper = None;
        self.nodes.extend_from_slice(&level);
        self.depth += 1;
        true
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
    fn a_tree_deepened_step_by_step_stays_the_reference_and_ends_a_level_down() {
        let mut leaves: Vec<Leaf> = (0..40).map(leaf).collect();
        let whole = |depth: u32, leaves: &[Leaf]| {
            Tree::build::<()>(depth, |b| {
                Ok(Node::of_bucket(&members_in(depth, leaves, b), depth))
            })
            .unwrap()
        };
        let mut tree = whole(3, &leaves);
        let (mut next, mut steps) = (40u64, 0);
        while tree.depth() == 3 {
            assert!(steps < 40, "still at depth 3 with {} names", leaves.len());
            // Three names come, one record is replaced and one name goes.
            let mut changed: Vec<LeafKey> = Vec::new();
            for _ in 0..3 {
                leaves.push(leaf(next));
                changed.push(leaves.last().unwrap().key);
                next += 1;
            }
            let renewed = (next as usize * 7) % leaves.len();
            leaves[renewed].record = RecordId([next as u8 ^ 0x5a; 32]);
            changed.push(leaves[renewed].key);
            if next % 2 == 0 {
                changed.push(leaves.remove((next as usize * 3) % leaves.len()).key);
            }
            let mut dirty: Vec<usize> = changed
                .iter()
                .map(|k| tree.bucket_of(k.prefix64()))
                .collect();
            dirty.sort_unstable();
            dirty.dedup();
            let delta = tree
                .change_splitting::<()>(&dirty, leaves.len(), 1, |b| Ok(members_in(3, &leaves, b)))
                .unwrap();
            steps += usize::from(delta.splits());
            assert_eq!(
                tree.root_after(&delta).hash,
                merkle::reference_root(&leaves)
            );
            tree.apply(delta);
            assert_eq!(tree.root().hash, merkle::reference_root(&leaves));
        }
        // Splitting began at 48 names and was done before the 64 that call
        // for depth 4, over several changes; every node is what a whole
        // build at depth 4 gives.
        assert!(steps > 1, "deepened in {steps} change");
        assert!(leaves.len() < 64, "deepened at {} names", leaves.len());
        assert!(!tree.deepening());
        assert_eq!(tree.nodes, whole(4, &leaves).nodes);
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
