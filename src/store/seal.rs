//! Moving the tree to a new head: computing a head's root aside
//! ([`Store::prepare`]), making it current with the head durable
//! ([`Store::seal`]), moving the tree without a head ([`Store::advance`]),
//! and, at open, rebuilding the tree and checking it against the newest
//! head in the log ([`restore`]).
//!
//! Only the one writing thread (the Quorum's committer, a mirror's upstream
//! thread) prepares and seals; a sealing checks that nothing was written in
//! between.

use super::entry::Entry;
use super::state::{Current, State, View};
use super::tree::{Member, Node, Tree};
use super::{named, Change, Sealing, Store};
use crate::head::SignedHead;
use crate::merkle::LeafKey;
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;

impl Store {
    /// The root and size of the live set as of (`seq`, `time`) once every
    /// applied record and `extra` (not yet written: the Quorum's batch)
    /// count, computed without changing what readers see. `seq` must cover
    /// every applied and extra record, and `time` must not be below the
    /// tree's.
    pub fn prepare(&self, extra: &[Entry], seq: u64, time: u64) -> io::Result<Sealing> {
        let state = self.state.read();
        let newest = extra
            .iter()
            .map(|e| e.seq)
            .max()
            .unwrap_or(0)
            .max(state.seq);
        if seq < newest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a head at seq {seq} cannot cover records up to seq {newest}"),
            ));
        }
        if let Some((_, at)) = state.anchor {
            if time < at {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a head at time {time} is before the tree's time {at}"),
                ));
            }
        }
        let (replaced, members) = extras(&state, extra).map_err(|e| named(&self.path, e))?;
        let view = View::Newest {
            replaced: &replaced,
            extra: &members,
        };
        let change = plan(&state, &view, &members, time).map_err(|e| named(&self.path, e))?;
        let root = match &change {
            Change::Full(tree) => tree.root(),
            Change::Delta(delta) => state.tree.root_after(delta),
        };
        Ok(Sealing {
            seq,
            time,
            base: (state.generation, state.seq),
            change,
            root,
        })
    }

    /// Writes `entries` and `head` (whose root and size `sealing` computed)
    /// with one write, fsynced when `sync`, then makes them visible at once:
    /// the records, the tree as of the head, and the head as current.
    pub fn seal(
        &self,
        entries: &[Entry],
        sealing: Sealing,
        head: &SignedHead,
        sync: bool,
    ) -> io::Result<()> {
        let mut writer = self.writer.lock();
        writer.check().map_err(|e| named(&self.path, e))?;
        self.check_sealing(&sealing, head)?;
        let text: Arc<str> = head.canonical().into();
        let mut batch = self.batch(entries).map_err(|e| named(&self.path, e))?;
        super::format::push_signed_head(&text, &mut batch.bytes)
            .map_err(|e| named(&self.path, e))?;
        self.write(&batch, sync, &mut writer)
            .map_err(|e| named(&self.path, e))?;
        let mut state = self.state.write();
        let published = self.publish(&mut state, batch);
        if let Err(e) = published {
            writer.fail(&self.path, &e);
            return Err(named(&self.path, e));
        }
        settle(&mut state, sealing);
        state.seq = state.seq.max(head.seq);
        state.newest_head = Some(head.clone());
        state.current = Some(Current {
            head: head.clone(),
            text,
            id: head.id(),
        });
        Ok(())
    }

    /// Moves the tree to `sealing`'s (seq, time) without a head: what a
    /// mirror with no current head does when a head did not match, so that
    /// the next head is checked from there. Refused while there is a
    /// current head, which must stay answerable.
    pub fn advance(&self, sealing: Sealing) -> io::Result<()> {
        let _writer = self.writer.lock();
        let mut state = self.state.write();
        if state.current.is_some() {
            return Err(io::Error::other(
                "the tree cannot move away from the current head without a new one",
            ));
        }
        if (state.generation, state.seq) != sealing.base {
            return Err(io::Error::other(
                "the log changed since the head was prepared",
            ));
        }
        settle(&mut state, sealing);
        Ok(())
    }

    /// Checks that `sealing` was prepared on the state as it is and for
    /// `head`.
    fn check_sealing(&self, sealing: &Sealing, head: &SignedHead) -> io::Result<()> {
        let state = self.state.read();
        if (state.generation, state.seq) != sealing.base {
            return Err(io::Error::other(
                "the log changed since the head was prepared",
            ));
        }
        if (head.seq, head.time, head.root, head.size)
            != (sealing.seq, sealing.time, sealing.root(), sealing.size())
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the head does not state the prepared seq, time, root and size",
            ));
        }
        Ok(())
    }
}

/// Installs a prepared tree: records applied since the old anchor are now
/// covered.
fn settle(state: &mut State, sealing: Sealing) {
    match sealing.change {
        Change::Full(tree) => state.tree = tree,
        Change::Delta(delta) => {
            if state.tree.apply(delta) {
                log::info!(
                    "the tree deepened to 2^{} buckets for {} names, step by step",
                    state.tree.depth(),
                    state.slots.len()
                );
            }
        }
    }
    state.anchor = Some((sealing.seq, sealing.time));
    state.settle_overrides();
}

/// The members `extra` adds, sorted by key, and the offsets of the newest
/// records they replace. A name given twice counts once, with its last.
fn extras(state: &State, extra: &[Entry]) -> io::Result<(HashSet<u64>, Vec<Member>)> {
    let mut last: HashMap<&crate::name::RegisteredName, &Entry> = HashMap::new();
    for entry in extra {
        last.insert(&entry.name, entry);
    }
    let mut replaced = HashSet::new();
    let mut members = Vec::with_capacity(last.len());
    for entry in last.into_values() {
        if let Some((_, offset)) = state.find(&entry.name)? {
            replaced.insert(offset);
        }
        members.push(Member {
            key: LeafKey::of(&entry.name),
            leaf: entry.leaf,
            expires: entry.live_until(),
            offset: 0,
        });
    }
    members.sort_by_key(|m| m.key);
    Ok((replaced, members))
}

/// How the tree changes to stand at `time` in `view`: the buckets that
/// changed (and a step of deepening, when the set nears the next level), or
/// a whole new tree when there is none yet or the set outgrew the tree's
/// depth before the step-by-step deepening was done.
fn plan(state: &State, view: &View<'_>, extra: &[Member], time: u64) -> io::Result<Change> {
    let replaced = match view {
        View::Newest { replaced, .. } => replaced.len(),
        View::Anchored => 0,
    };
    // Every name once: a member of `extra` that renews a name replaces it.
    let names = state.slots.len() + extra.len() - replaced;
    let tree = &state.tree;
    let depth = Tree::depth_for(names).max(tree.depth());
    if state.anchor.is_none() || depth != tree.depth() {
        let started = std::time::Instant::now();
        let whole = Tree::build(depth, |b| {
            let members = state.members(depth, b, view, time)?;
            Ok::<_, io::Error>(Node::of_bucket(&members, depth))
        })?;
        if state.anchor.is_some() {
            // The writer waits for this, so a put or a push waits too.
            log::info!(
                "the tree deepened to 2^{depth} buckets for {names} names: rebuilt whole in {} ms",
                started.elapsed().as_millis()
            );
        }
        return Ok(Change::Full(whole));
    }
    let mut dirty: Vec<usize> = extra
        .iter()
        .map(|m| m.key.prefix64())
        .chain(state.overrides.values().map(|o| o.key))
        .map(|key| tree.bucket_of(key))
        .chain(tree.expiring(time))
        .collect();
    dirty.sort_unstable();
    dirty.dedup();
    let delta = tree.change(&dirty, names, |b| state.members(depth, b, view, time))?;
    if !tree.deepening() && delta.splits() {
        log::info!(
            "the tree starts deepening to 2^{} buckets at {names} names, a few buckets a head",
            depth + 1
        );
    }
    Ok(Change::Delta(delta))
}

/// After replay: rebuilds the tree as of the newest head in the log and
/// makes that head current when its root and size match. Otherwise the
/// tree waits for the next head and every record counts as newest.
pub(super) fn restore(state: &mut State) -> io::Result<Option<SignedHead>> {
    let Some(head) = state.newest_head.clone() else {
        state.anchor = None;
        state.settle_overrides();
        return Ok(None);
    };
    let depth = Tree::depth_for(state.slots.len());
    let view = View::Anchored;
    let tree = Tree::build(depth, |b| {
        let members = state.members(depth, b, &view, head.time)?;
        Ok::<_, io::Error>(Node::of_bucket(&members, depth))
    })?;
    let root = tree.root();
    if root.hash != head.root || u64::from(root.count) != head.size {
        log::warn!(
            "the replayed log does not give the root and size of its newest head (seq {}, time {}): \
             answering only once a new head matches",
            head.seq,
            head.time
        );
        state.anchor = None;
        state.settle_overrides();
        return Ok(None);
    }
    state.tree = tree;
    state.anchor = Some((head.seq, head.time));
    state.current = Some(Current::of(&head));
    Ok(Some(head))
}
