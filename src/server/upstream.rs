//! A mirror's upstream thread: subscribes to the Quorum or another mirror
//! from its own seq + 1, verifies every pushed record and attestation,
//! applies them durably in batches, audits every pushed head
//! ([`super::audit`]), and hands records and heads to the event loop to
//! fan out.
//!
//! On a drop, an error, a lie, or too long a silence it reconnects with
//! exponential backoff (0.5 s doubling to 60 s, with jitter), logging each
//! try. Lookups keep being answered from the store meanwhile.

use super::audit::Verdict;
use super::events::{HeadMark, LoopEvent, Outbox, Outgoing};
use super::shared::{maybe_compact, note_upstream_seq, Shared};
use super::stats::set_upstream_connected;
use crate::backoff::{jittered, Backoff};
use crate::canonical;
use crate::cosign::Cosignature;
use crate::head::SignedHead;
use crate::store::{Entry, Sealing};
use crate::transport::{self, Endpoint, Route, TransportError};
use crate::verify::{Verifier, VerifyError};
use crate::wire::{self, DecodeError, Id, Push, Reply, Request, WireError};
use crossbeam_channel::Sender;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Waits before reconnecting: 0.5 s doubling to 60 s.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
/// How often a blocked read wakes to check for shutdown.
const READ_SLICE: Duration = Duration::from_millis(500);
/// How long to wait for the upstream to accept (through Tor, reaching an
/// onion service can take tens of seconds).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// Most records applied with one fsync.
const MAX_BATCH: usize = 4096;
/// Longest line accepted from upstream (a push carries at most an 8 KiB
/// record and its attestation, or a head).
const MAX_LINE: usize = 64 * 1024;

/// Why a session with the upstream ended. The variants fall in three
/// groups: the connection failed ([`UpstreamError::Connect`] through
/// [`UpstreamError::Silent`]: reconnecting may help), the upstream is
/// behind this mirror ([`UpstreamError::Behind`]: an operator must act), or
/// the upstream sent something wrong (the rest: it is faulty or lying).
#[derive(Debug)]
pub enum UpstreamError {
    /// Connecting (directly or through Tor) failed.
    Connect(TransportError),
    /// Sending the subscription failed.
    Subscribe(io::Error),
    /// The socket could not be set up.
    Socket(io::Error),
    /// The upstream closed the connection.
    Closed,
    /// Reading from the upstream failed.
    Read(io::Error),
    /// Nothing came for longer than the silence limit.
    Silent(Duration),
    /// The upstream holds fewer records than this mirror: it lost records
    /// this mirror holds. Not replicating from it until it is back.
    Behind {
        /// The upstream's seq.
        upstream: u64,
        /// This mirror's seq.
        ours: u64,
    },
    /// The reply to `subscribe` cannot be read.
    BadSubscribeReply(DecodeError),
    /// The upstream refused `subscribe`.
    SubscribeRefused(WireError),
    /// The upstream answered `subscribe` with another kind of reply.
    UnexpectedReply(&'static str),
    /// A line longer than any push.
    LineTooLong,
    /// A pushed line cannot be read.
    BadLine(DecodeError),
    /// A pushed line is an error.
    Refused(WireError),
    /// A record's seq does not follow the ones before it.
    OutOfOrder {
        /// The record's seq.
        seq: u64,
        /// The highest seq taken before it.
        after: u64,
    },
    /// A record came with an attestation for another seq.
    AttestationSeq {
        /// The record's seq.
        seq: u64,
        /// The seq the attestation is for.
        attested: u64,
    },
    /// A pushed record fails verification.
    Unverified {
        /// Its seq.
        seq: u64,
        /// Its name.
        name: String,
        /// Why.
        why: VerifyError,
    },
    /// The store cannot take the records.
    Append(io::Error),
    /// A verification thread died.
    VerifierFailed,
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Connect(e) => write!(f, "{e}"),
            UpstreamError::Subscribe(e) => write!(f, "cannot subscribe: {e}"),
            UpstreamError::Socket(e) => write!(f, "{e}"),
            UpstreamError::Closed => write!(f, "upstream closed the connection"),
            UpstreamError::Read(e) => write!(f, "read failed: {e}"),
            UpstreamError::Silent(silence) => write!(
                f,
                "silent for {} s; giving up this connection",
                silence.as_secs()
            ),
            UpstreamError::Behind { upstream, ours } => write!(
                f,
                "upstream is at seq {upstream}, below this mirror's seq {ours}: it lost records this mirror holds; not replicating from it until it is back at seq {ours} (a Quorum takes them back with --recover-from)"
            ),
            UpstreamError::BadSubscribeReply(e) => write!(f, "bad reply to subscribe: {e}"),
            UpstreamError::SubscribeRefused(e) => write!(f, "refused subscribe: {e}"),
            UpstreamError::UnexpectedReply(kind) => write!(f, "answered subscribe with {kind}"),
            UpstreamError::LineTooLong => write!(f, "sent a line over {MAX_LINE} bytes"),
            UpstreamError::BadLine(e) => write!(f, "sent a bad line: {e}"),
            UpstreamError::Refused(e) => write!(f, "refused: {e}"),
            UpstreamError::OutOfOrder { seq, after } => {
                write!(f, "sent seq {seq} after seq {after}")
            }
            UpstreamError::AttestationSeq { seq, attested } => write!(
                f,
                "sent seq {seq} with an attestation for seq {attested}"
            ),
            UpstreamError::Unverified { seq, name, why } => write!(
                f,
                "sent a record that fails verification at seq {seq} ({name}): {why}"
            ),
            UpstreamError::Append(e) => write!(f, "cannot append to the log: {e}"),
            UpstreamError::VerifierFailed => write!(f, "a verification thread failed"),
        }
    }
}

impl std::error::Error for UpstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpstreamError::Connect(e) => Some(e),
            UpstreamError::Subscribe(e)
            | UpstreamError::Socket(e)
            | UpstreamError::Read(e)
            | UpstreamError::Append(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TransportError> for UpstreamError {
    fn from(e: TransportError) -> Self {
        UpstreamError::Connect(e)
    }
}

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
    /// Threads that verify a large batch of pushes (catch-up) in parallel.
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
        let pool = VerifyPool::start(&checker, self.threads.saturating_sub(1));
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
        while let Some(first) = reader.next_line(self.silence)? {
            let mut lines = vec![first];
            while lines.len() < MAX_BATCH && reader.has_buffered_line() {
                match reader.next_line(self.silence)? {
                    Some(line) => lines.push(line),
                    None => break,
                }
            }
            self.take_batch(pool.check_all(lines), &mut gate)?;
        }
        Ok(())
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

/// What checks a pushed line: shared by the upstream thread and the pool.
struct Checker {
    /// The checks of PROTOCOL.md §9.
    verifier: Verifier,
}

impl Checker {
    /// Parses and verifies one pushed line: records completely
    /// (PROTOCOL.md §9, expired ones included, §10.8); heads are audited in
    /// order by the upstream thread.
    fn check_line(&self, line: &[u8]) -> Result<Checked, UpstreamError> {
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
struct VerifyPool {
    checker: Arc<Checker>,
    jobs: Option<Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl VerifyPool {
    fn start(checker: &Arc<Checker>, size: usize) -> VerifyPool {
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
    fn check_all(&self, lines: Vec<Vec<u8>>) -> Vec<Result<Checked, UpstreamError>> {
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
enum Checked {
    /// A heartbeat: upstream is alive and holds records up to this seq.
    Heartbeat(u64),
    /// A verified record, to store.
    Record(Box<Entry>),
    /// A head, to audit.
    Head(Box<SignedHead>),
    /// Cosignatures of a head, to hold and pass on.
    Cosignatures(Box<SignedHead>, Vec<Cosignature>),
}

/// The upstream's seq from its reply to `subscribe`.
fn subscribed_seq(reply: &[u8]) -> Result<u64, UpstreamError> {
    match Reply::parse(reply).map_err(UpstreamError::BadSubscribeReply)? {
        Reply::Subscribed { seq, .. } => Ok(seq),
        Reply::Error(e) => Err(UpstreamError::SubscribeRefused(e)),
        other => Err(UpstreamError::UnexpectedReply(other.kind())),
    }
}

/// Reads newline-terminated lines with a silence limit, waking regularly
/// to honour a stop request.
struct Lines {
    reader: BufReader<TcpStream>,
    partial: Vec<u8>,
}

impl Lines {
    fn new(stream: TcpStream) -> Lines {
        Lines {
            reader: BufReader::with_capacity(256 * 1024, stream),
            partial: Vec::new(),
        }
    }

    fn has_buffered_line(&self) -> bool {
        self.reader.buffer().contains(&b'\n')
    }

    /// The next line without its newline; `None` if a stop was requested.
    fn next_line(&mut self, silence: Duration) -> Result<Option<Vec<u8>>, UpstreamError> {
        let started = Instant::now();
        loop {
            if crate::signals::stop_requested() {
                return Ok(None);
            }
            match self.reader.read_until(b'\n', &mut self.partial) {
                Ok(0) => return Err(UpstreamError::Closed),
                Ok(_) if self.partial.last() == Some(&b'\n') => {
                    let mut line = std::mem::take(&mut self.partial);
                    line.pop();
                    return Ok(Some(line));
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(UpstreamError::Read(e)),
            }
            if self.partial.len() > MAX_LINE {
                return Err(UpstreamError::LineTooLong);
            }
            if started.elapsed() >= silence {
                return Err(UpstreamError::Silent(silence));
            }
        }
    }
}
