//! Checking pushed lines: the [`Checker`] and the [`VerifyPool`] that
//! runs it on every core (PROTOCOL.md §9 for records; heads are audited in
//! order by the upstream thread), and what a checked line is.

use super::UpstreamError;
use crate::canonical;
use crate::cosign::Cosignature;
use crate::head::SignedHead;
use crate::store::Entry;
use crate::verify::Verifier;
use crate::wire::Push;
use crossbeam_channel::{Receiver, SendError, Sender};
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
                let spelled =
                    self.verifier
                        .check_replica(&record, &attestation)
                        .map_err(|why| UpstreamError::Unverified {
                            seq,
                            name: record.name.to_string(),
                            why,
                        })?;
                let text = canonical::to_string(&attestation.to_value());
                let entry = Entry::spelled(seq, &record, spelled, text);
                Ok(Checked::Record(Box::new(entry)))
            }
        }
    }
}

/// Largest batch checked by the thread that read it rather than the pool.
const INLINE_LINES: usize = 2;

/// Each checked line of a batch, in line order.
pub(super) type CheckedLines = Vec<Result<Checked, UpstreamError>>;

/// A batch for a pool thread, and where to send its results.
type Job = (Vec<Vec<u8>>, Sender<CheckedLines>);

/// Threads that live as long as the upstream thread and check whole
/// batches, several at once while catching up, so verification uses
/// every core without starting threads for each batch.
pub(super) struct VerifyPool {
    checker: Arc<Checker>,
    jobs: Option<Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl VerifyPool {
    /// Starts `size` threads (at least one is wanted; with none, batches
    /// are checked by the thread that submits them).
    pub(super) fn start(checker: &Arc<Checker>, size: usize) -> VerifyPool {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let threads = (0..size)
            .filter_map(|i| {
                let (queue, checker) = (queue.clone(), checker.clone());
                std::thread::Builder::new()
                    .name(format!("verify-{i}"))
                    .spawn(move || {
                        for (lines, reply) in queue {
                            let _ =
                                reply.send(lines.iter().map(|l| checker.check_line(l)).collect());
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

    /// Hands a batch to the pool; its checked lines arrive on the returned
    /// receiver, in line order (nothing arrives if its thread died). A
    /// batch of at most [`INLINE_LINES`] (a live push, not a catch-up) is
    /// checked here at once: one hand-off less on the way to subscribers.
    pub(super) fn submit(&self, lines: Vec<Vec<u8>>) -> Receiver<CheckedLines> {
        let (reply, result) = crossbeam_channel::bounded(1);
        let job = match &self.jobs {
            Some(jobs) if !self.threads.is_empty() && lines.len() > INLINE_LINES => {
                match jobs.send((lines, reply)) {
                    Ok(()) => return result,
                    Err(SendError(job)) => job,
                }
            }
            _ => (lines, reply),
        };
        let (lines, reply) = job;
        let _ = reply.send(lines.iter().map(|l| self.checker.check_line(l)).collect());
        result
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
