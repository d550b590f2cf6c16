//! A mirror's upstream thread: subscribes to the Quorum or another mirror
//! from its own seq + 1, verifies every pushed record and attestation,
//! applies them durably in batches, audits every pushed head
//! ([`super::audit`]), and hands records and heads to the event loop to
//! fan out.
//!
//! On a drop, an error, a lie, or too long a silence it reconnects with
//! exponential backoff (0.5 s doubling to 60 s, with jitter), logging each
//! try. Lookups keep being answered from the store meanwhile.
//!
//! A session has a second thread, which reads pushed lines in batches and
//! hands each to the verification pool, a few batches ahead of this one,
//! which applies them in order: batches are checked on every core at
//! once, beside the fsyncs.
//!
//! `error` says why a session ended, `check` verifies pushed lines,
//! `lines` reads them with a silence limit.
use super::audit::Verdict;
use super::events::{HeadMark, LoopEvent, Outbox, Outgoing};
use super::shared::{maybe_compact, note_upstream_seq, Shared};
use super::stats::set_upstream_connected;
use crate::backoff::{jittered, Backoff};
use crate::cosign::Cosignature;
use crate::head::SignedHead;
use crate::store::{Entry, Sealing};
use crate::transport::{self, Endpoint, Route};
use crate::verify::Verifier;
use crate::wire::{self, Id, Request};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod check;
mod error;
mod lines;

use check::{Checked, CheckedLines, Checker, VerifyPool};
use crossbeam_channel::Receiver;
pub use error::UpstreamError;
use lines::{subscribed_seq, Lines};

/// Waits before reconnecting: 0.5 s doubling to 60 s.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
/// How often a blocked read wakes to check for shutdown.
const READ_SLICE: Duration = Duration::from_millis(500);
/// How long to wait for the upstream to accept (through Tor, reaching an
/// onion service can take tens of seconds).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// Most records applied with one fsync.
const MAX_BATCH: usize = 4096;
/// Batches read and not yet applied: enough to keep the cores of a small
/// machine verifying, few enough to bound memory on one (each is at most
/// [`MAX_BATCH`] lines, and in practice what one read buffered, up to
/// 256 KiB).
const BATCHES_AHEAD: usize = 3;

/// What the upstream thread needs.
pub struct Upstream {
    /// Shared server state.
    pub shared: Arc<Shared>,
    /// The way to the event loop, for fan-out.
    pub outbox: Outbox,
    /// Where to replicate from.
    pub endpoint: Endpoint,
    /// Direct, or through Tor's SOCKS port.
    pub route: Route,
    /// Checks every pushed record and attestation.
    pub verifier: Verifier,
    /// Silence after which the session is given up.
    pub silence: Duration,
    /// Threads that verify batches of pushes (catch-up) in parallel.
    pub threads: usize,
    /// Most pushes held back while a head waits for cosignatures.
    pub held_limit: usize,
    /// Longest wait of a head for its cosignatures.
    pub cosign_wait: Duration,
    /// At a witness, the cosigner's queue of matched heads.
    pub cosigner: Option<crossbeam_channel::Sender<SignedHead>>,
}

impl Upstream {
    /// Replicates until a stop is requested.
    pub fn run(self) {
        let checker = Arc::new(Checker {
            verifier: self.verifier.clone(),
        });
        let pool = VerifyPool::start(&checker, self.threads);
        let mut backoff = BACKOFF;
        let mut attempt = 0u64;
        while !crate::signals::stop_requested() {
            attempt += 1;
            log::info!(
                "upstream {}: connecting (attempt {attempt}) from seq {}",
                self.endpoint,
                self.shared.store.seq() + 1
            );
            if let Err(e) = self.session(&mut backoff, &pool) {
                if let UpstreamError::Behind { .. } = e {
                    log::error!("UPSTREAM ALARM: {}: {e}", self.endpoint);
                    *self.shared.stats.upstream_alarm.lock() = Some(e.to_string());
                }
                log::warn!("upstream {}: {e}", self.endpoint);
            }
            set_upstream_connected(&self.shared.stats, false);
            if crate::signals::stop_requested() {
                break;
            }
            let wait = jittered(backoff.next_wait());
            log::info!(
                "upstream {}: reconnecting in {:.1} s",
                self.endpoint,
                wait.as_secs_f64()
            );
            crate::signals::sleep_unless_stopped(wait);
        }
    }

    /// One subscription, until it fails or a stop is requested. A session
    /// that got as far as `subscribed` resets the backoff.
    fn session(&self, backoff: &mut Backoff, pool: &VerifyPool) -> Result<(), UpstreamError> {
        let mut stream = transport::connect(&self.endpoint, self.route, CONNECT_TIMEOUT)?;
        let from = self.shared.store.seq() + 1;
        let request = Request::Subscribe {
            id: Id::Number(1),
            from,
        }
        .to_line();
        stream
            .write_all(&request)
            .map_err(UpstreamError::Subscribe)?;
        stream
            .set_read_timeout(Some(READ_SLICE))
            .map_err(UpstreamError::Socket)?;
        let mut reader = Lines::new(stream);
        let Some(reply) = reader.next_line(self.silence)? else {
            return Ok(());
        };
        let upstream_seq = subscribed_seq(&reply)?;
        if upstream_seq < from - 1 {
            return Err(UpstreamError::Behind {
                upstream: upstream_seq,
                ours: from - 1,
            });
        }
        *self.shared.stats.upstream_alarm.lock() = None;
        note_upstream_seq(&self.shared, upstream_seq);
        set_upstream_connected(&self.shared.stats, true);
        backoff.reset();
        log::info!(
            "upstream {}: subscribed from seq {from}; upstream seq {upstream_seq}",
            self.endpoint
        );
        let mut gate = Gate {
            pending: None,
            since: Instant::now(),
            held: VecDeque::new(),
            last_head: 0,
        };
        let socket = reader.socket().try_clone().map_err(UpstreamError::Socket)?;
        std::thread::scope(|scope| {
            let (ahead, batches) = crossbeam_channel::bounded(BATCHES_AHEAD);
            let silence = self.silence;
            std::thread::Builder::new()
                .name("upstream-read".into())
                .spawn_scoped(scope, move || read_ahead(reader, pool, silence, &ahead))
                .map_err(UpstreamError::ReaderThread)?;
            let mut result = Ok(());
            for batch in &batches {
                result = checked(batch).and_then(|batch| self.take_batch(batch, &mut gate));
                if result.is_err() {
                    break;
                }
            }
            // Ends the reading thread: its next send fails, or its read.
            drop(batches);
            let _ = socket.shutdown(std::net::Shutdown::Both);
            result
        })
    }

    /// Applies the checked lines of a batch in order: runs of records with
    /// one fsync each, each head after the records before it, and
    /// cosignatures as they come. If a line is bad, the good ones before it
    /// are applied and the session ends with the reason.
    fn take_batch(
        &self,
        checked: Vec<Result<Checked, UpstreamError>>,
        gate: &mut Gate,
    ) -> Result<(), UpstreamError> {
        let mut batch: Vec<Entry> = Vec::new();
        let mut failure = None;
        for result in checked {
            match result {
                Ok(item) => {
                    if let Err(e) = self.take(item, gate, &mut batch) {
                        failure = Some(e);
                        break;
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        self.apply(batch)?;
        failure.map_or(Ok(()), Err)
    }

    /// Takes one checked line: records join `batch` (or wait in the gate
    /// while a head waits for cosignatures), heads and cosignatures are
    /// dealt with after the records before them are applied.
    fn take(
        &self,
        item: Checked,
        gate: &mut Gate,
        batch: &mut Vec<Entry>,
    ) -> Result<(), UpstreamError> {
        match item {
            Checked::Heartbeat(seq) => {
                note_upstream_seq(&self.shared, seq);
                Ok(())
            }
            Checked::Record(_) | Checked::Head(_) if gate.pending.is_some() => {
                gate.held.push_back(item);
                self.give_up_if_due(gate, batch)
            }
            Checked::Record(entry) => {
                let after = batch
                    .last()
                    .map_or(self.shared.store.seq(), |e| e.seq)
                    .max(gate.last_head);
                if entry.seq <= after {
                    return Err(UpstreamError::OutOfOrder {
                        seq: entry.seq,
                        after,
                    });
                }
                batch.push(*entry);
                Ok(())
            }
            Checked::Head(head) => {
                self.apply(std::mem::take(batch))?;
                gate.last_head = gate.last_head.max(head.seq);
                self.on_head(&head, gate);
                Ok(())
            }
            Checked::Cosignatures(head, list) => {
                self.apply(std::mem::take(batch))?;
                self.on_cosignatures(&head, &list, gate, batch)
            }
        }
    }

    /// Audits a head; a match is cosigned at a witness, and becomes current
    /// at once at a witness or when it has the cosignatures this server
    /// collects, or else waits for them in the gate.
    fn on_head(&self, head: &SignedHead, gate: &mut Gate) {
        let Some(audit) = &self.shared.audit else {
            return;
        };
        let mut audit = audit.lock();
        let (forward, verdict) = audit.receive(&self.shared.store, head, &self.shared.timings);
        let mut current = false;
        if let Verdict::Matched(sealing) = verdict {
            if let Some(cosigner) = &self.cosigner {
                let _ = cosigner.send(head.clone());
            }
            // A witness never waits: it must check every head as it comes
            // to cosign it, so it answers with the newest it matched.
            let book = self.shared.book.lock();
            let (servable, superseded) = (book.servable(head), book.newer_servable(head));
            drop(book);
            if self.cosigner.is_some() || servable {
                current = audit.seal(&self.shared.store, sealing, head);
            } else if superseded {
                log::debug!(
                    "head seq {} time {} not waited for: a newer head has its cosignatures",
                    head.seq,
                    head.time
                );
            } else {
                gate.pending = Some((head.clone(), sealing));
                gate.since = Instant::now();
            }
        }
        drop(audit);
        if forward || current {
            self.outbox.send(LoopEvent::Committed {
                pushes: Arc::new(vec![Outgoing::Head {
                    mark: HeadMark::of(head),
                    line: wire::head_line(&head.canonical()),
                    current,
                }]),
            });
        }
        if current {
            maybe_compact(&self.shared.store);
        }
    }

    /// Takes pushed cosignatures into the book and passes them on; makes
    /// the waiting head current once it has enough, or skips to a held
    /// head that has. A head first seen here (a subscriber that joined
    /// after it was pushed) is audited like a pushed one when it covers
    /// exactly what is applied.
    fn on_cosignatures(
        &self,
        head: &SignedHead,
        list: &[Cosignature],
        gate: &mut Gate,
        batch: &mut Vec<Entry>,
    ) -> Result<(), UpstreamError> {
        // A head that conflicts with one held is kept as evidence, and its
        // cosignatures are still passed on, so that the servers below see
        // both heads too; the audit never makes it current.
        if let Some(audit) = &self.shared.audit {
            audit.lock().observe(&self.shared.store, head);
        }
        let line = {
            let mut book = self.shared.book.lock();
            if book.take_all(head, list) {
                book.push_line(head)
            } else {
                None
            }
        };
        if let Some(line) = line {
            self.outbox.send(LoopEvent::Committed {
                pushes: Arc::new(vec![Outgoing::Cosignatures { line }]),
            });
        }
        let book = self.shared.book.lock();
        let pending_ready = gate.pending.as_ref().is_some_and(|(h, _)| book.servable(h));
        let unseen = gate.pending.is_none()
            && head.seq == self.shared.store.seq()
            && head.seq >= gate.last_head
            && self.shared.store.current_head().as_ref() != Some(head)
            && book.servable(head);
        drop(book);
        if pending_ready {
            self.seal_pending(gate);
            return self.release(gate, batch);
        }
        if gate.pending.is_some() {
            return self.give_up_if_due(gate, batch);
        }
        if unseen {
            gate.last_head = head.seq;
            self.on_head(head, gate);
        }
        Ok(())
    }

    /// Gives the waiting head up, and takes the held pushes, when waiting
    /// longer cannot help or has lasted too long: a newer head already has
    /// its cosignatures (a mirror catching up, whose old heads' lists are
    /// gone), more than `--held-pushes` pushes wait, or it waited more than
    /// `--cosign-wait`.
    fn give_up_if_due(&self, gate: &mut Gate, batch: &mut Vec<Entry>) -> Result<(), UpstreamError> {
        let Some((head, _)) = &gate.pending else {
            return Ok(());
        };
        let why = if self.shared.book.lock().newer_servable(head) {
            log::debug!(
                "head seq {} given up: a newer head has its cosignatures",
                head.seq
            );
            return self.give_up(gate, batch);
        } else if gate.held.len() > self.held_limit {
            format!(
                "{} pushes wait for it (--held-pushes {})",
                gate.held.len(),
                self.held_limit
            )
        } else if gate.since.elapsed() > self.cosign_wait {
            format!("it waited {} s (--cosign-wait)", self.cosign_wait.as_secs())
        } else {
            return Ok(());
        };
        log::warn!(
            "head seq {} did not gather its cosignatures: {why}; answering on without it",
            head.seq
        );
        self.give_up(gate, batch)
    }

    /// Drops the waiting head and takes the held pushes.
    fn give_up(&self, gate: &mut Gate, batch: &mut Vec<Entry>) -> Result<(), UpstreamError> {
        gate.pending = None;
        self.release(gate, batch)
    }

    /// Makes the waiting head current.
    fn seal_pending(&self, gate: &mut Gate) {
        let (Some((head, sealing)), Some(audit)) = (gate.pending.take(), &self.shared.audit) else {
            return;
        };
        if audit.lock().seal(&self.shared.store, sealing, &head) {
            self.outbox.send(LoopEvent::Committed {
                pushes: Arc::new(vec![Outgoing::Head {
                    mark: HeadMark::of(&head),
                    line: wire::head_line(&head.canonical()),
                    current: true,
                }]),
            });
            maybe_compact(&self.shared.store);
        }
    }

    /// Takes the held pushes again, in order, now that no head waits (one
    /// may wait again among them).
    fn release(&self, gate: &mut Gate, batch: &mut Vec<Entry>) -> Result<(), UpstreamError> {
        let held = std::mem::take(&mut gate.held);
        for item in held {
            self.take(item, gate, batch)?;
        }
        Ok(())
    }

    /// Makes records durable and fans them out.
    fn apply(&self, batch: Vec<Entry>) -> Result<(), UpstreamError> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(report) = &self.shared.witness {
            super::witness::check_ownership(&self.shared.store, &batch, report);
        }
        self.shared
            .store
            .append(&batch)
            .map_err(UpstreamError::Append)?;
        if let Some(last) = batch.last() {
            note_upstream_seq(&self.shared, last.seq);
        }
        let pushes = batch
            .iter()
            .map(|e| Outgoing::Record {
                seq: e.seq,
                line: wire::record_line(e.seq, &e.record, &e.attestation),
            })
            .collect();
        self.outbox.send(LoopEvent::Committed {
            pushes: Arc::new(pushes),
        });
        Ok(())
    }
}

/// A batch of pushed lines being checked by the pool, or why reading
/// stopped.
type CheckedBatch = Result<Receiver<CheckedLines>, UpstreamError>;

/// Reads batches of pushed lines and hands each to the verification
/// pool, up to [`BATCHES_AHEAD`] ahead of the thread that applies them in
/// order (so batches are checked on every core at once, and beside the
/// fsync of the batch before), until a stop is requested, reading fails,
/// or the applying thread has gone.
fn read_ahead(
    mut reader: Lines,
    pool: &VerifyPool,
    silence: Duration,
    ahead: &crossbeam_channel::Sender<CheckedBatch>,
) {
    loop {
        let batch = match reader.next_line(silence) {
            Ok(Some(first)) => read_batch(&mut reader, first, silence).map(|l| pool.submit(l)),
            Ok(None) => return,
            Err(e) => Err(e),
        };
        let failed = batch.is_err();
        if ahead.send(batch).is_err() || failed {
            return;
        }
    }
}

/// The checked lines of a batch, once the pool has them.
fn checked(batch: CheckedBatch) -> Result<CheckedLines, UpstreamError> {
    batch?.recv().map_err(|_| UpstreamError::VerifierFailed)
}

/// `first` and the lines already buffered after it, up to [`MAX_BATCH`].
fn read_batch(
    reader: &mut Lines,
    first: Vec<u8>,
    silence: Duration,
) -> Result<Vec<Vec<u8>>, UpstreamError> {
    let mut lines = vec![first];
    while lines.len() < MAX_BATCH && reader.has_buffered_line() {
        match reader.next_line(silence)? {
            Some(line) => lines.push(line),
            None => break,
        }
    }
    Ok(lines)
}

/// What a session holds back while a matched head waits for the
/// cosignatures this server collects: the head and its prepared tree, and
/// every record and head pushed after it (applying them would move the
/// replica past the head).
struct Gate {
    /// The matched head waiting for cosignatures.
    pending: Option<(SignedHead, Sealing)>,
    /// Since when it waits.
    since: Instant,
    /// Pushes after it, in order.
    held: VecDeque<Checked>,
    /// The highest head seq taken in this session.
    last_head: u64,
}
