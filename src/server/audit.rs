//! A mirror's audit (PROTOCOL.md §10.8): every head its upstream pushes is
//! checked against the mirror's own replica before the mirror answers with
//! it.
//!
//! A head signed by a trusted Quorum key whose root and size the replica
//! gives as of the head's (seq, time) becomes the current head. One that
//! does not match raises an alarm (an error log line naming both roots,
//! and `status`), and the mirror goes on answering with the last head that
//! matched. Two heads of one key that conflict (§10.5) are kept as
//! evidence. Whether a head is forwarded to subscribers does not depend on
//! the audit: each subscriber audits for itself.
//!
//! The upstream thread owns the checking; `status` reads the result.

use super::events::HeadMark;
use super::stats::Timings;
use crate::evidence::EvidenceFile;
use crate::head::{Evidence, SignedHead};
use crate::keys::PublicKey;
use crate::store::{Sealing, Store};
use crate::wire::{AuditState, AuditStatus, Mismatch};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What became of one pushed head.
#[derive(Debug)]
pub enum Verdict {
    /// Not well formed or not signed by a trusted key: dropped.
    Refused(String),
    /// It conflicts with a head the mirror holds: evidence kept, dropped.
    Conflict,
    /// Older than what the mirror holds or has applied: not audited.
    Stale,
    /// The replica gives its root and size: it may become the current
    /// head by sealing this ([`Audit::seal`]).
    Matched(Sealing),
    /// The replica gives another root or size: alarm.
    Mismatched,
}

/// The audit's state across heads.
#[derive(Debug)]
pub struct Audit {
    /// Quorum keys whose heads are audited.
    trusted: Vec<PublicKey>,
    /// The newest well-formed, trusted head received, matched or not.
    newest: Option<SignedHead>,
    /// The last head forwarded to subscribers.
    forwarded: Option<HeadMark>,
    /// Heads audited since start.
    checked: u64,
    /// Of those, how many did not match.
    mismatches: u64,
    /// The newest that did not match, with the replica's root and size.
    last_mismatch: Option<Mismatch>,
    /// The first equivocation evidence seen.
    evidence: Option<Evidence>,
    /// none, ok or alarm.
    state: AuditState,
    /// The state directory, where evidence files go.
    dir: PathBuf,
}

impl Audit {
    /// The audit of a mirror trusting `trusted`, whose store may have taken
    /// its last current head again at start; evidence goes to `dir`.
    pub fn new(trusted: Vec<PublicKey>, store: &Store, dir: &Path) -> Audit {
        let restored = store.current_head();
        Audit {
            trusted,
            state: if restored.is_some() {
                AuditState::Ok
            } else {
                AuditState::None
            },
            forwarded: restored.as_ref().map(HeadMark::of),
            newest: restored,
            checked: 0,
            mismatches: 0,
            last_mismatch: None,
            evidence: None,
            dir: dir.to_owned(),
        }
    }

    /// The newest trusted head received (or restored), matched or not.
    pub fn newest(&self) -> Option<&SignedHead> {
        self.newest.as_ref()
    }

    /// Heads audited since start.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Audited heads that did not match.
    pub fn mismatches(&self) -> u64 {
        self.mismatches
    }

    /// True when it holds evidence of two conflicting heads.
    pub fn holds_evidence(&self) -> bool {
        self.evidence.is_some()
    }

    /// What status reports.
    pub fn status(&self, store: &Store) -> AuditStatus {
        AuditStatus {
            state: self.state,
            matched: store.current_head(),
            checked: self.checked,
            mismatches: self.mismatches,
            last_mismatch: self.last_mismatch.clone(),
            evidence: self.evidence.clone(),
        }
    }

    /// Makes a matched head current: the replica as of it is recorded.
    pub fn seal(&mut self, store: &Store, sealing: Sealing, head: &SignedHead) -> bool {
        if let Err(e) = store.seal(&[], sealing, head, false) {
            log::error!("cannot record head seq {}: {e}", head.seq);
            return false;
        }
        self.state = AuditState::Ok;
        log::debug!("head seq {} time {} is current", head.seq, head.time);
        true
    }

    /// Keeps evidence when a head seen outside the stream (with
    /// cosignatures) conflicts with one held; true then.
    pub fn observe(&mut self, store: &Store, head: &SignedHead) -> bool {
        if head.check_trusted(&self.trusted).is_err() {
            return false;
        }
        let current = store.current_head();
        self.conflict(head, current.as_ref())
    }

    /// Checks a pushed head against the replica in `store`; returns
    /// whether to forward it to subscribers, and the verdict.
    pub fn receive(
        &mut self,
        store: &Store,
        head: &SignedHead,
        timings: &Timings,
    ) -> (bool, Verdict) {
        if let Err(e) = head.check_trusted(&self.trusted) {
            log::warn!("upstream sent a head that is refused: {e}");
            return (false, Verdict::Refused(e.to_string()));
        }
        let mark = HeadMark::of(head);
        let forward = mark.follows(self.forwarded.as_ref());
        if forward {
            self.forwarded = Some(mark);
        }
        (forward, self.judge(store, head, timings))
    }

    /// The audit proper, for a trusted head.
    fn judge(&mut self, store: &Store, head: &SignedHead, timings: &Timings) -> Verdict {
        let current = store.current_head();
        if self.conflict(head, current.as_ref()) {
            return Verdict::Conflict;
        }
        let applied = store.seq();
        let lower = self
            .newest
            .as_ref()
            .is_some_and(|n| head.seq < n.seq || head.time < n.time);
        if head.seq < applied || lower || current.as_ref() == Some(head) {
            log::info!(
                "head seq {} time {} not audited: this mirror holds newer (applied seq {applied})",
                head.seq,
                head.time
            );
            return Verdict::Stale;
        }
        self.newest = Some(head.clone());
        let started = Instant::now();
        let verdict = self.recompute(store, head, current.is_none());
        timings.record(started.elapsed());
        verdict
    }

    /// Keeps evidence when `head` conflicts with the newest or current
    /// head; true then.
    fn conflict(&mut self, head: &SignedHead, current: Option<&SignedHead>) -> bool {
        let held = [self.newest.as_ref(), current];
        let Some(other) = held.into_iter().flatten().find(|h| head.conflicts(h)) else {
            return false;
        };
        log::error!(
            "AUDIT ALARM: the Quorum signed two conflicting heads: seq {} time {} and seq {} time {}; evidence kept in status",
            head.seq,
            head.time,
            other.seq,
            other.time
        );
        if let Some(evidence) = Evidence::new(head.clone(), other.clone()) {
            let file = EvidenceFile::Equivocation(Box::new(evidence.clone()));
            match crate::evidence::write_file(&self.dir, &file) {
                Ok(path) => log::error!("evidence written to {}", path.display()),
                Err(e) => log::error!("cannot write evidence to {}: {e}", self.dir.display()),
            }
            self.evidence.get_or_insert(evidence);
        }
        self.state = AuditState::Alarm;
        true
    }

    /// Recomputes the root as of the head and compares; a match is ready
    /// to seal. With no current head to keep, the tree moves on even on a
    /// mismatch, so the next head is checked from there.
    fn recompute(&mut self, store: &Store, head: &SignedHead, free: bool) -> Verdict {
        let sealing = match store.prepare(&[], head.seq, head.time) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot audit head seq {}: {e}", head.seq);
                return Verdict::Refused(e.to_string());
            }
        };
        self.checked += 1;
        let (root, size) = (sealing.root(), sealing.size());
        if (root, size) == (head.root, head.size) {
            log::debug!("head seq {} time {} matched", head.seq, head.time);
            return Verdict::Matched(sealing);
        }
        self.mismatches += 1;
        self.state = AuditState::Alarm;
        log::error!(
            "AUDIT ALARM: head {} (seq {}, time {}) states root {} size {}, but this replica gives root {} size {}; still answering with the last head that matched",
            crate::codec::b64_encode(&head.id()),
            head.seq,
            head.time,
            crate::codec::b64_encode(&head.root),
            head.size,
            crate::codec::b64_encode(&root),
            size
        );
        self.last_mismatch = Some(Mismatch {
            head: head.clone(),
            root,
            size,
        });
        if free {
            if let Err(e) = store.advance(sealing) {
                log::error!("cannot move the tree to head seq {}: {e}", head.seq);
            }
        }
        Verdict::Mismatched
    }
}
