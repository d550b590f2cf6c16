//! Reading the live set as of the current head: a lookup's answer with its
//! proof ([`Store::answer`]) and a subscriber's catch-up ([`Store::feed`]),
//! both as PROTOCOL.md §10.6 orders them, and the names pointing at an
//! onion ([`Store::names_pointing_at`], §12.5), led by the reverse index.

use super::entry::Entry;
use super::format::{read_entry_at, read_name_at, LeafInfo, Reader, RecordBody};
use super::reverse::{name_keys, onion_prefix, Names};
use super::state::{State, View};
use super::tree::{Member, Stop};
use super::{corrupt, named, next_sound, record_of, Answer, Feed, Store};
use crate::merkle::{self, Hash, Leaf, LeafKey, PathEnd, Proof, Terminal};
use crate::name::RegisteredName;
use crate::onion::OnionAddress;
use crate::record::{self, RecordId};
use sodiumoxide::crypto::hash::sha256;
use std::io;
use std::sync::Arc;

/// Entries gathered for a feed within its byte budget.
struct Gather {
    /// What is gathered so far, in ascending seq.
    entries: Vec<Entry>,
    /// Record and attestation bytes gathered.
    bytes: usize,
    /// The budget.
    max_bytes: usize,
}

impl Gather {
    /// Adds the entry of `body` (at `offset`) unless it would exceed the
    /// budget of a non-empty batch.
    fn take(&mut self, body: RecordBody<'_>, offset: u64) -> io::Result<bool> {
        let entry = body
            .into_entry()
            .ok_or_else(|| corrupt(offset, "packed texts"))?;
        let size = entry.record.len() + entry.attestation.len();
        if !self.entries.is_empty() && self.bytes + size > self.max_bytes {
            return Ok(false);
        }
        self.bytes += size;
        self.entries.push(entry);
        Ok(true)
    }

    /// The seq of the last entry gathered, or `or`.
    fn last_seq(&self, or: u64) -> u64 {
        self.entries.last().map_or(or, |e| e.seq)
    }
}

/// How one pass over the log ended.
enum Scan {
    /// Every entry up to the limit, or to the durable end, was seen; the
    /// store's seq when the pass began.
    Done(u64),
    /// The budget is spent.
    Full,
    /// A compaction swapped the file, or the tree moved to another head:
    /// the pass must start again.
    Moved,
}

/// Which entries a pass keeps.
type Keep = fn(&State, &RecordBody<'_>, u64) -> bool;

impl Store {
    /// The answer to a lookup of `name` against the current head: its
    /// record with a presence proof, or an absence proof (PROTOCOL.md
    /// §10.3, §10.6).
    pub fn answer(&self, name: &RegisteredName) -> io::Result<Answer> {
        let state = self.state.read();
        let (Some(current), Some((_, time))) = (&state.current, state.anchor) else {
            return Ok(Answer::NoHead);
        };
        let head = Arc::clone(&current.text);
        let key = LeafKey::of(name);
        let own = own_entry(&state, name, &key, time).map_err(|e| named(&self.path, e))?;
        let known = own.as_ref().map(|(at, entry)| (*at, LeafInfo::of(entry)));
        let (siblings, end) = path(&state, &key, time, known).map_err(|e| named(&self.path, e))?;
        let read = |offset| read_entry_at(&state.file, offset).map_err(|e| named(&self.path, e));
        match (own, end) {
            (Some((own, entry)), Some(end)) if own == end.offset => Ok(Answer::Found {
                entry,
                proof: Proof {
                    siblings,
                    terminal: None,
                },
                head,
            }),
            (None, None) => Ok(Answer::NotFound {
                proof: Proof {
                    siblings,
                    terminal: Some(Terminal::Empty),
                },
                head,
            }),
            (None, Some(end)) => {
                let other = read(end.offset)?;
                let leaf = Leaf {
                    key: LeafKey::of(&other.name),
                    record: RecordId(sha256::hash(other.record.as_bytes()).0),
                    seq: other.seq,
                };
                Ok(Answer::NotFound {
                    proof: Proof {
                        siblings,
                        terminal: Some(Terminal::Leaf(leaf)),
                    },
                    head,
                })
            }
            (Some(_), _) => Err(named(
                &self.path,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the tree and the index disagree about {name}; restart to rebuild"),
                ),
            )),
        }
    }

    /// The next catch-up batch for a subscriber that has every record it
    /// needs up to `cursor` and was last sent the head with id `sent`:
    /// records of the current head's state, then that head, then records
    /// applied since, within about `max_bytes` of record text.
    pub fn feed(&self, cursor: u64, sent: Option<Hash>, max_bytes: usize) -> io::Result<Feed> {
        loop {
            if let Some(feed) = self.try_feed(cursor, sent, max_bytes)? {
                return Ok(feed);
            }
        }
    }

    /// One attempt at [`Store::feed`]; `None` when the head changed while
    /// its state was being read.
    fn try_feed(
        &self,
        cursor: u64,
        sent: Option<Hash>,
        max_bytes: usize,
    ) -> io::Result<Option<Feed>> {
        let (current, epoch) = {
            let state = self.state.read();
            (state.current.clone(), state.epoch)
        };
        let mut gather = Gather {
            entries: Vec::new(),
            bytes: 0,
            max_bytes,
        };
        let mut feed = Feed {
            cursor,
            ..Feed::default()
        };
        let mut after = cursor;
        if let Some(current) = current {
            let seq = current.head.seq;
            let before_head = after < seq;
            if before_head {
                match self.scan(after, seq, Some(epoch), &mut gather, State::is_anchored)? {
                    Scan::Moved => return Ok(None),
                    Scan::Full => {
                        feed.cursor = gather.last_seq(after);
                        feed.before = gather.entries;
                        return Ok(Some(feed));
                    }
                    Scan::Done(_) => {}
                }
            }
            if before_head || sent != Some(current.id) {
                feed.head = Some((current.head, current.text));
            }
            after = after.max(seq);
        }
        let split = gather.entries.len();
        let complete = loop {
            let from = gather.last_seq(after).max(after);
            match self.scan(from, u64::MAX, None, &mut gather, State::is_newest_frame)? {
                Scan::Moved => continue,
                Scan::Full => break false,
                Scan::Done(seq) => {
                    after = after.max(seq);
                    break true;
                }
            }
        };
        feed.cursor = gather.last_seq(after).max(after);
        feed.after = gather.entries.split_off(split);
        feed.before = gather.entries;
        feed.complete = complete;
        Ok(Some(feed))
    }

    /// One pass over the record entries with `from < seq <= upto`, keeping
    /// those `keep` accepts. With `epoch`, the pass ends as moved when the
    /// tree leaves that epoch.
    fn scan(
        &self,
        from: u64,
        upto: u64,
        epoch: Option<u64>,
        gather: &mut Gather,
        keep: Keep,
    ) -> io::Result<Scan> {
        let (file, start, end, generation, seq) = {
            let state = self.state.read();
            if epoch.is_some_and(|e| e != state.epoch) {
                return Ok(Scan::Moved);
            }
            let file = Arc::clone(&state.file);
            (
                file,
                state.start(from),
                state.end,
                state.generation,
                state.seq,
            )
        };
        let mut reader = Reader::new(&file, start, end);
        while let Some(frame) = next_sound(&mut reader).map_err(|e| named(&self.path, e))? {
            let Some(body) = record_of(&frame).map_err(|e| named(&self.path, e))? else {
                continue;
            };
            if body.seq <= from {
                continue;
            }
            if body.seq > upto {
                break;
            }
            let kept = {
                let state = self.state.read();
                if state.generation != generation || epoch.is_some_and(|e| e != state.epoch) {
                    return Ok(Scan::Moved);
                }
                keep(&state, &body, frame.offset)
            };
            if kept
                && !gather
                    .take(body, frame.offset)
                    .map_err(|e| named(&self.path, e))?
            {
                return Ok(Scan::Full);
            }
        }
        Ok(Scan::Done(seq))
    }
}

/// `name`'s record as of the anchor, with its offset, when it is in the
/// tree at `time`; `key` is its leaf key. Its newest record is read whole
/// once, and is the answer's record unless a newer one waits for a head.
fn own_entry(
    state: &State,
    name: &RegisteredName,
    key: &LeafKey,
    time: u64,
) -> io::Result<Option<(u64, Entry)>> {
    let Some((newest, entry)) = state.find_entry(name, key)? else {
        return Ok(None);
    };
    let known = Some((newest, LeafInfo::of(&entry)));
    let Some(offset) = state.live_at_anchor(newest, time, known)? else {
        return Ok(None);
    };
    let entry = if offset == newest {
        entry
    } else {
        read_entry_at(&state.file, offset)?
    };
    Ok(Some((offset, entry)))
}

/// The siblings on the path to `key` in the tree as of the anchor, and the
/// one member at its end, if any; the leaf of the entry at `known.0`, if
/// given, is not read again.
fn path(
    state: &State,
    key: &LeafKey,
    time: u64,
    known: Option<(u64, LeafInfo)>,
) -> io::Result<(Vec<Hash>, Option<Member>)> {
    let (mut siblings, stop) = state.tree.walk(key);
    let depth = state.tree.depth();
    let members = |b| state.members_knowing(depth, b, &View::Anchored, time, known);
    let end = match stop {
        Stop::Empty => None,
        Stop::Single(b) => match members(b)?.as_slice() {
            [one] => Some(*one),
            _ => return Err(disagree(b)),
        },
        Stop::Bucket(b) => {
            let members = members(b)?;
            let leaves: Vec<(LeafKey, Hash)> = members.iter().map(|m| (m.key, m.leaf)).collect();
            let inside = merkle::subtree_path(&leaves, depth as usize, key);
            siblings.extend(inside.siblings);
            match inside.end {
                PathEnd::Empty => None,
                PathEnd::Entry(i) => Some(members.get(i).copied().ok_or_else(|| disagree(b))?),
            }
        }
    };
    Ok((siblings, end))
}

/// The error for a bucket whose members do not match the stored tree.
fn disagree(bucket: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bucket {bucket} of the tree does not match the log; restart to rebuild"),
    )
}

impl Store {
    /// The registered names whose entry in the live set as of the current
    /// head points at `onion` (its owner's address or a subdomain's):
    /// ascending, at most `max`, and whether more do (PROTOCOL.md §12.5).
    /// Each name is confirmed against the very record a lookup of it would
    /// answer with, so stale leads in the index never show. At most
    /// `max_leads` of the index's leads are read, so that an onion many
    /// names point at costs a bounded amount of reading (`cut` says when).
    pub fn names_pointing_at(
        &self,
        onion: &OnionAddress,
        max: usize,
        max_leads: usize,
    ) -> io::Result<Names> {
        let state = self.state.read();
        let (Some(_), Some((_, time))) = (&state.current, state.anchor) else {
            return Ok(Names::NoHead);
        };
        let listed = candidates(&state, onion, time, max_leads)
            .and_then(|(leads, cut)| confirm(&state, onion, leads, max, cut))
            .map_err(|e| named(&self.path, e))?;
        Ok(listed)
    }
}

/// The names the first `max_leads` leads of the index for `onion` lead to
/// that are in the live set as of the anchor at `time`, with the offsets
/// of their records there, ascending by name; and whether leads were left
/// unread.
fn candidates(
    state: &State,
    onion: &OnionAddress,
    time: u64,
    max_leads: usize,
) -> io::Result<(Vec<(RegisteredName, u64)>, bool)> {
    let mut leads = Vec::new();
    let mut read = 0;
    let mut cut = false;
    'leads: for name in state.reverse.names_of(onion_prefix(onion.key().as_bytes())) {
        let (lo, hi) = name_keys(name);
        for (_, newest) in state.slots.range(lo, hi) {
            if read == max_leads {
                cut = true;
                break 'leads;
            }
            read += 1;
            if let Some(offset) = state.live_at_anchor(newest, time, None)? {
                leads.push((read_name_at(&state.file, offset)?, offset));
            }
        }
    }
    leads.sort_unstable();
    leads.dedup();
    Ok((leads, cut))
}

/// The first `max` of `leads` whose records point at `onion`, and whether
/// another does (or may: `cut`, leads were left unread).
fn confirm(
    state: &State,
    onion: &OnionAddress,
    leads: Vec<(RegisteredName, u64)>,
    max: usize,
    cut: bool,
) -> io::Result<Names> {
    let want = onion.key().as_bytes();
    let mut names = Vec::new();
    for (name, offset) in leads {
        let entry = read_entry_at(&state.file, offset)?;
        let points = record::pointed_keys(&entry.record).is_ok_and(|keys| keys.contains(want));
        if !points {
            continue;
        }
        if names.len() == max {
            return Ok(Names::Listed {
                names,
                more: true,
                cut,
            });
        }
        names.push(name);
    }
    Ok(Names::Listed {
        names,
        more: cut,
        cut,
    })
}
