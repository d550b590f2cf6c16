//! The worker pool: parses request lines, answers lookups, reverse lookups
//! and status from the store, verifies puts (the expensive part) before the Quorum's
//! committer sees them, and reads catch-up batches for subscribers.
//!
//! Workers never touch sockets; every answer goes back to the event loop
//! through the [`Outbox`]. A bad line is an error reply, never a panic.

use super::cosigs::Refusal;
use super::events::{HeadMark, LoopEvent, Outbox, Outgoing, Reply};
use super::metrics::Lookup;
use super::quorum::PendingPut;
use super::shared::Shared;
use crate::clock;
use crate::cosign::Cosignature;
use crate::head::SignedHead;
use crate::merkle::Hash;
use crate::name::LookupName;
use crate::onion::OnionAddress;
use crate::record::Record;
use crate::store::{Answer, Feed, Names};
use crate::verify::{Verifier, QUORUM_MAX_SKEW};
use crate::wire::{
    self, Code, CosignStatus, Id, Request, Runtime, Status, UpstreamStatus, WireError,
    MAX_REVERSE_NAMES, PROTOCOL,
};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::Token;
use serde_json::Value;
use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Most bytes of records one catch-up batch carries.
const FEED_BYTES: usize = 256 * 1024;

/// One request line from a connection.
pub struct Line {
    /// The connection.
    pub conn: Token,
    /// Its session number, for the log.
    pub session: u64,
    /// The line, without its newline.
    pub line: Vec<u8>,
}

/// Work handed to the pool by the event loop.
pub enum Job {
    /// Request lines the loop read in one turn, from as many connections
    /// (one each): answered together, their replies sent back as one
    /// message, so a busy server pays one hand-off and one wake per batch
    /// rather than per request.
    Lines(Vec<Line>),
    /// The next catch-up batch for a subscriber.
    Feed {
        /// The connection.
        conn: Token,
        /// Its session number, for the log.
        session: u64,
        /// Highest seq the subscriber already has.
        after: u64,
        /// The id of the last head it was sent.
        sent: Option<Hash>,
    },
}

/// What one worker needs.
pub struct Worker {
    shared: Arc<Shared>,
    outbox: Outbox,
    committer: Option<Sender<PendingPut>>,
    /// Replies to the batch being answered, sent when it is done.
    replies: RefCell<Vec<Reply>>,
}

impl Worker {
    /// A worker over the server's shared state, answering through
    /// `outbox`; at the Quorum `committer` is the committer's queue, at a
    /// mirror `None`.
    pub fn new(
        shared: Arc<Shared>,
        outbox: Outbox,
        committer: Option<Sender<PendingPut>>,
    ) -> Worker {
        Worker {
            shared,
            outbox,
            committer,
            replies: RefCell::new(Vec::new()),
        }
    }

    /// Serves jobs until the event loop drops its sender.
    pub fn run(self, jobs: Receiver<Job>) {
        for job in jobs {
            match job {
                Job::Lines(lines) => {
                    let queued = &self.shared.stats.queued_lines;
                    queued.fetch_sub(lines.len(), Ordering::Relaxed);
                    for line in &lines {
                        self.on_line(line.conn, line.session, &line.line);
                    }
                }
                Job::Feed {
                    conn,
                    session,
                    after,
                    sent,
                } => self.on_feed(conn, session, after, sent),
            }
            self.send_replies();
        }
    }

    /// Holds a reply until the batch is answered.
    fn reply(&self, conn: Token, bytes: Vec<u8>, close: bool) {
        self.replies.borrow_mut().push(Reply { conn, bytes, close });
    }

    /// Sends the batch's replies to the loop in one message.
    fn send_replies(&self) {
        let replies = std::mem::take(&mut *self.replies.borrow_mut());
        self.outbox.send_replies(replies);
    }

    fn fail(&self, conn: Token, session: u64, err: WireError) {
        log::info!("session {session}: {err}");
        let line = self.shared.metrics.error_line(&err);
        self.reply(conn, line, err.closes_connection());
    }

    fn on_line(&self, conn: Token, session: u64, line: &[u8]) {
        let request = match Request::parse(line) {
            Ok(r) => r,
            Err(err) => return self.fail(conn, session, err),
        };
        match request {
            Request::Lookup { id, name } => self.lookup(conn, session, &id, &name),
            Request::Reverse { id, onion } => self.reverse(conn, session, &id, &onion),
            Request::Status { id } => self.reply(conn, self.status(&id), false),
            Request::Cosign {
                id,
                head,
                cosignature,
            } => self.cosign(conn, session, &id, &head, &cosignature),
            Request::Subscribe { id, from } => self.outbox.send(LoopEvent::Subscribed {
                conn,
                bytes: wire::subscribed_line(&id, self.shared.store.seq()),
                from,
            }),
            Request::Put { id, record } => match &self.committer {
                None => self.fail(
                    conn,
                    session,
                    self.refused_put(WireError::new(
                        &id,
                        Code::ReadOnly,
                        "this is a mirror; send claims to the Quorum",
                    )),
                ),
                Some(committer) => self.put(conn, session, id, &record, committer),
            },
        }
    }

    /// Counts a put refused with `err`'s code, and returns `err`.
    fn refused_put(&self, err: WireError) -> WireError {
        self.shared.metrics.put_refused(err.code);
        err
    }

    /// Answers a lookup against the current head, with its proof.
    fn lookup(&self, conn: Token, session: u64, id: &Id, name: &LookupName) {
        let metrics = &self.shared.metrics;
        let bytes = match self.shared.store.answer(&name.registered()) {
            Ok(Answer::Found { entry, proof, head }) => {
                metrics.lookup(Lookup::Found);
                log::debug!(
                    "session {session}: lookup {name} -> found seq {}",
                    entry.seq
                );
                let cosigs = self.shared.book.lock().text_for(&head);
                wire::found_line(
                    id,
                    &entry.record,
                    &entry.attestation,
                    &head,
                    &proof,
                    &cosigs,
                )
            }
            Ok(Answer::NotFound { proof, head }) => {
                metrics.lookup(Lookup::NotFound);
                log::debug!("session {session}: lookup {name} -> not found");
                let cosigs = self.shared.book.lock().text_for(&head);
                wire::not_found_line(id, &head, &proof, &cosigs)
            }
            Ok(Answer::NoHead) => {
                metrics.lookup(Lookup::NoHead);
                log::debug!("session {session}: lookup {name} -> no head yet");
                metrics.error_line(&WireError::new(
                    id,
                    Code::NoHead,
                    "this server has no head to answer against yet; ask another",
                ))
            }
            Err(e) => {
                metrics.lookup(Lookup::Error);
                log::error!("session {session}: lookup {name}: store read failed: {e}");
                metrics.error_line(&WireError::new(
                    id,
                    Code::Internal,
                    "storage error; try again",
                ))
            }
        };
        self.reply(conn, bytes, false);
    }

    /// Answers a reverse lookup against the current head (§12.5): the
    /// names pointing at `onion`, which the client confirms with lookups.
    fn reverse(&self, conn: Token, session: u64, id: &Id, onion: &OnionAddress) {
        let metrics = &self.shared.metrics;
        let bytes = match self.shared.store.names_pointing_at(
            onion,
            MAX_REVERSE_NAMES,
            self.shared.max_reverse_leads,
        ) {
            Ok(Names::Listed { names, more, cut }) => {
                if cut {
                    log::warn!(
                        "session {session}: reverse {onion}: more than {} leads in the index; \
                         answered from the first {0} (--max-reverse-leads)",
                        self.shared.max_reverse_leads
                    );
                }
                metrics.reverse(if names.is_empty() {
                    Lookup::NotFound
                } else {
                    Lookup::Found
                });
                log::debug!(
                    "session {session}: reverse {onion} -> {} names{}",
                    names.len(),
                    if more { " and more" } else { "" }
                );
                wire::names_line(id, onion, &names, more)
            }
            Ok(Names::NoHead) => {
                metrics.reverse(Lookup::NoHead);
                log::debug!("session {session}: reverse {onion} -> no head yet");
                metrics.error_line(&WireError::new(
                    id,
                    Code::NoHead,
                    "this server has no head to answer against yet; ask another",
                ))
            }
            Err(e) => {
                metrics.reverse(Lookup::Error);
                log::error!("session {session}: reverse {onion}: store read failed: {e}");
                metrics.error_line(&WireError::new(
                    id,
                    Code::Internal,
                    "storage error; try again",
                ))
            }
        };
        self.reply(conn, bytes, false);
    }

    /// Takes a witness's cosignature and pushes the head's list on when
    /// it changed.
    fn cosign(
        &self,
        conn: Token,
        session: u64,
        id: &Id,
        head: &SignedHead,
        cosignature: &Cosignature,
    ) {
        if let Some(audit) = &self.shared.audit {
            if audit.lock().observe(&self.shared.store, head) {
                let err = WireError::new(
                    id,
                    Code::BadRequest,
                    "the head conflicts with one this server holds; evidence kept",
                );
                return self.fail(conn, session, err);
            }
        }
        let (taken, line) = {
            let mut book = self.shared.book.lock();
            let taken = book.take(head, cosignature);
            let line = match &taken {
                Ok(t) if t.changed => book.push_line(head),
                _ => None,
            };
            (taken, line)
        };
        match taken {
            Ok(taken) => {
                log::debug!(
                    "session {session}: cosignature of head seq {} by {}: {} held",
                    head.seq,
                    cosignature.witness.to_base64(),
                    taken.count
                );
                if let Some(line) = line {
                    self.outbox.send(LoopEvent::Committed {
                        pushes: Arc::new(vec![Outgoing::Cosignatures { line }]),
                    });
                }
                self.reply(conn, wire::cosigned_line(id, taken.count as u64), false);
            }
            Err(refusal) => {
                let code = match refusal {
                    Refusal::BadSignature => Code::BadSignature,
                    Refusal::Head(_) | Refusal::Untrusted(_) => Code::BadRequest,
                };
                self.fail(conn, session, WireError::new(id, code, refusal.to_string()));
            }
        }
    }

    /// The status reply.
    fn status(&self, id: &Id) -> Vec<u8> {
        let shared = &self.shared;
        let audit = shared.audit.as_ref().map(|a| a.lock());
        let head = match &audit {
            Some(audit) => audit.newest().cloned(),
            None => shared.store.newest_head(),
        };
        let lag = shared.upstream_lag();
        let status = Status {
            role: shared.role(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: PROTOCOL,
            seq: shared.store.seq(),
            head,
            records: shared.store.live_count(clock::now()) as u64,
            subscribers: shared.stats.subscribers.load(Ordering::Relaxed) as u64,
            min_work: shared.min_work,
            quorum_keys: shared.quorum_keys.iter().map(|k| k.to_base64()).collect(),
            upstream: shared.upstream.as_ref().map(|u| UpstreamStatus {
                addr: u.to_string(),
                connected: shared.stats.upstream_connected.load(Ordering::Relaxed),
                alarm: shared.stats.upstream_alarm.lock().clone(),
                lag_records: lag.0,
                lag_secs: lag.1,
            }),
            audit: audit.map(|a| a.status(&shared.store)),
            head_timing: Some(shared.timings.report()),
            cosignatures: self.cosign_status(),
            runtime: Some(Runtime {
                uptime: clock::now().saturating_sub(shared.stats.started.load(Ordering::Relaxed)),
                connections: shared.stats.connections.load(Ordering::Relaxed) as u64,
            }),
        };
        status.to_line(id)
    }

    /// The `cosignatures` of status, when this server collects them or is
    /// a witness.
    fn cosign_status(&self) -> Option<CosignStatus> {
        let shared = &self.shared;
        let witness = shared.witness.as_ref().map(|w| w.lock().status());
        let (needed, current) = {
            let book = shared.book.lock();
            let current = shared.store.current_head().map_or(0, |h| book.count(&h));
            (book.needed(), current)
        };
        if needed == 0 && witness.is_none() && current == 0 {
            return None;
        }
        Some(CosignStatus {
            needed: needed as u64,
            current: current as u64,
            witness,
        })
    }

    /// Verifies a put here, in parallel with other workers, and hands it
    /// to the committer, which alone decides ownership.
    fn put(
        &self,
        conn: Token,
        session: u64,
        id: Id,
        value: &Value,
        committer: &Sender<PendingPut>,
    ) {
        let record = match Record::from_value(value) {
            Ok(r) => r,
            Err(e) => {
                let err = WireError::new(&id, Code::from_verify(e.code()), e.to_string());
                return self.fail(conn, session, self.refused_put(err));
            }
        };
        let verifier = Verifier {
            min_work: self.shared.min_work,
            trusted: Vec::new(),
            max_skew: Some(QUORUM_MAX_SKEW),
        };
        let spelled = match verifier.check_and_spell(&record, clock::now()) {
            Ok(spelled) => spelled,
            Err(e) => {
                let err = WireError::new(
                    &id,
                    Code::from_verify(e.code()),
                    format!("{}: {e}", record.name),
                );
                return self.fail(conn, session, self.refused_put(err));
            }
        };
        let put = PendingPut {
            conn,
            session,
            id,
            record,
            spelled,
        };
        match committer.try_send(put) {
            Ok(()) => {}
            Err(TrySendError::Full(put)) => {
                log::warn!("session {session}: commit queue full (--worker-queue); answered busy");
                let err = WireError::new(&put.id, Code::Busy, "server busy; try again shortly");
                self.fail(conn, session, self.refused_put(err));
            }
            Err(TrySendError::Disconnected(put)) => {
                let err = WireError::new(&put.id, Code::Internal, "server is stopping");
                self.fail(conn, session, self.refused_put(err));
            }
        }
    }

    /// Reads the next catch-up batch and hands it to the loop.
    fn on_feed(&self, conn: Token, session: u64, after: u64, sent: Option<Hash>) {
        match self.shared.store.feed(after, sent, FEED_BYTES) {
            Ok(feed) => {
                let (mut bytes, head) = feed_lines(&feed);
                if let Some((head, _)) = &feed.head {
                    if let Some(line) = self.shared.book.lock().push_line(head) {
                        bytes.extend_from_slice(&line);
                    }
                }
                self.outbox.send(LoopEvent::Feed {
                    conn,
                    bytes,
                    cursor: feed.cursor,
                    head,
                    complete: feed.complete,
                });
            }
            Err(e) => {
                log::error!("session {session}: reading the log for a subscriber failed: {e}");
                self.reply(conn, Vec::new(), true);
            }
        }
    }
}

/// A feed's push lines in stream order, and the mark of its head.
fn feed_lines(feed: &Feed) -> (Vec<u8>, Option<HeadMark>) {
    let text: usize = [&feed.before, &feed.after]
        .into_iter()
        .flatten()
        .map(|e| e.record.len() + e.attestation.len() + 64)
        .sum();
    let mut bytes = Vec::with_capacity(text + 512);
    for entry in &feed.before {
        bytes.extend_from_slice(&wire::record_line(
            entry.seq,
            &entry.record,
            &entry.attestation,
        ));
    }
    let mark = feed.head.as_ref().map(|(head, text)| {
        bytes.extend_from_slice(&wire::head_line(text));
        HeadMark::of(head)
    });
    for entry in &feed.after {
        bytes.extend_from_slice(&wire::record_line(
            entry.seq,
            &entry.record,
            &entry.attestation,
        ));
    }
    (bytes, mark)
}
