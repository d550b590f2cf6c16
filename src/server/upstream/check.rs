//! Checking pushed lines: the [`Checker`] the upstream thread and the
//! [`VerifyPool`] share (PROTOCOL.md §9 for records; heads are audited in
//! order by the upstream thread), and what a checked line is.

use super::UpstreamError;
use crate::canonical;
use crate::cosign::Cosignature;
use crate::head::SignedHead;
use crate::store::Entry;
use crate::verify::Verifier;
use crate::wire::Push;
use crossbeam_channel::Sender;
use std::ops::Range;
use std::sync::Arc;

/// What checks a pushed line: shared by the upstream thread and the pool.
pub(super) struct Checker {
    /// The checks of PROTOCOL.md §9.
    pub(super) verifier: Verifier,
}

impl Checker {
    /// Parses and verifies one pushed line: records completely
    /// (PROTOCOL.md §9, expired ones included, §10.8); heads are audited in
    /// order by the upstream thread.
    pub(super) fn check_line(&self, line: &[u8]) -> Result<Checked, UpstreamError> {
        let push = Push::parse(line)
            .map_err(UpstreamError::BadLine)?
            .map_err(UpstreamError::Refused)?;
        match push {
            Push::Heartbeat { seq } => Ok(Checked::Heartbeat(seq)),
            Push::Head(head) => Ok(Checked::Head(Box::new(head))),
            Push::Cosignatures { head, cosignatures } => {
                Ok(Checked::Cosignatures(Box::new(head), cosignatures))
            }
            Push::Record {
                seq,
                record,
                attestation,
            } => {
                if attestation.seq != seq {
                    return Err(UpstreamError::AttestationSeq {
                        seq,
                        attested: attestation.seq,
                    });
                }
                self.verifier
                    .check_replica(&record, &attestation)
                    .map_err(|why| UpstreamError::Unverified {
                        seq,
                        name: record.name.to_string(),
                        why,
                    })?;
                let text = canonical::to_string(&attestation.to_value());
                Ok(Checked::Record(Box::new(Entry::new(seq, &record, text))))
            }
        }
    }
}

/// A slice of a batch for a pool thread, and where to send its results.
type Job = (
    Arc<Vec<Vec<u8>>>,
    Range<usize>,
    Sender<(usize, Vec<Result<Checked, UpstreamError>>)>,
);

/// Threads that live as long as the upstream thread and check slices of
/// large batches (catch-up), so verification uses every core without
/// starting threads for each batch.
pub(super) struct VerifyPool {
    checker: Arc<Checker>,
    jobs: Option<Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl VerifyPool {
    pub(super) fn start(checker: &Arc<Checker>, size: usize) -> VerifyPool {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let threads = (0..size)
            .filter_map(|i| {
                let (queue, checker) = (queue.clone(), checker.clone());
                std::thread::Builder::new()
                    .name(format!("verify-{i}"))
                    .spawn(move || {
                        for (lines, range, reply) in queue {
                            let start = range.start;
                            let results =
                                lines[range].iter().map(|l| checker.check_line(l)).collect();
                            let _ = reply.send((start, results));
                        }
                    })
                    .map_err(|e| log::warn!("cannot start a verification thread: {e}"))
                    .ok()
            })
            .collect();
        VerifyPool {
            checker: checker.clone(),
            jobs: Some(jobs),
            threads,
        }
    }

    /// Checks every line, a large batch split between this thread and the
    /// pool; results in line order.
    pub(super) fn check_all(&self, lines: Vec<Vec<u8>>) -> Vec<Result<Checked, UpstreamError>> {
        let parts = (self.threads.len() + 1).min(lines.len() / 64).max(1);
        let chunk = lines.len().div_ceil(parts).max(1);
        let lines = Arc::new(lines);
        let ranges: Vec<Range<usize>> = (0..lines.len())
            .step_by(chunk)
            .map(|start| start..(start + chunk).min(lines.len()))
            .collect();
        let (reply, results) = crossbeam_channel::unbounded();
        let mut parts_done = Vec::with_capacity(ranges.len());
        let mut sent = 0;
        for (i, range) in ranges.into_iter().enumerate() {
            let job = (lines.clone(), range.clone(), reply.clone());
            let queued = i > 0
                && self
                    .jobs
                    .as_ref()
                    .is_some_and(|jobs| jobs.send(job).is_ok());
            if queued {
                sent += 1;
            } else {
                let start = range.start;
                parts_done.push((
                    start,
                    lines[range]
                        .iter()
                        .map(|l| self.checker.check_line(l))
                        .collect(),
                ));
            }
        }
        drop(reply);
        let inline = parts_done.len();
        parts_done.extend(results.iter().take(sent));
        if parts_done.len() - inline < sent {
            return vec![Err(UpstreamError::VerifierFailed)];
        }
        parts_done.sort_by_key(|(start, _)| *start);
        parts_done.into_iter().flat_map(|(_, r)| r).collect()
    }
}

impl Drop for VerifyPool {
    fn drop(&mut self) {
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One checked line from upstream.
pub(super) enum Checked {
    /// A heartbeat: upstream is alive and holds records up to this seq.
    Heartbeat(u64),
    /// A verified record, to store.
    Record(Box<Entry>),
    /// A head, to audit.
    Head(Box<SignedHead>),
    /// Cosignatures of a head, to hold and pass on.
    Cosignatures(Box<SignedHead>, Vec<Cosignature>),
}
