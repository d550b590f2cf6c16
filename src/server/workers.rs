//! The worker pool: parses request lines, answers lookups and status from
//! the store, verifies puts (the expensive part) before the Quorum's
//! committer sees them, and reads catch-up batches for subscribers.
//!
//! Workers never touch sockets; every answer goes back to the event loop
//! through the [`Outbox`]. A bad line is an error reply, never a panic.

use super::quorum::Claim;
use super::{LoopEvent, Outbox, Shared};
use crate::clock;
use crate::record::Record;
use crate::verify::{Verifier, QUORUM_MAX_SKEW};
use crate::wire::{self, Code, Request, WireError};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::Token;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Most bytes of records one catch-up batch carries.
const FEED_BYTES: usize = 256 * 1024;

/// Work handed to the pool by the event loop.
pub enum Job {
    /// One request line from a connection.
    Line {
        /// The connection.
        conn: Token,
        /// Its session number, for the log.
        session: u64,
        /// The line, without its newline.
        line: Vec<u8>,
    },
    /// The next catch-up batch for a subscriber.
    Feed {
        /// The connection.
        conn: Token,
        /// Its session number, for the log.
        session: u64,
        /// Highest seq the subscriber already has.
        after: u64,
    },
}

/// What one worker needs.
#[derive(Clone)]
pub struct Worker {
    /// Shared server state.
    pub shared: Arc<Shared>,
    /// The way back to the event loop.
    pub outbox: Outbox,
    /// At the Quorum, the committer's queue; `None` at a mirror.
    pub committer: Option<Sender<Claim>>,
}

impl Worker {
    /// Serves jobs until the event loop drops its sender.
    pub fn run(self, jobs: Receiver<Job>) {
        for job in jobs {
            match job {
                Job::Line {
                    conn,
                    session,
                    line,
                } => self.on_line(conn, session, &line),
                Job::Feed {
                    conn,
                    session,
                    after,
                } => self.on_feed(conn, session, after),
            }
        }
    }

    fn reply(&self, conn: Token, bytes: Vec<u8>, close: bool) {
        self.outbox.send(LoopEvent::Reply { conn, bytes, close });
    }

    fn fail(&self, conn: Token, session: u64, err: WireError) {
        log::info!("session {session}: {err}");
        self.reply(conn, err.to_line(), err.closes_connection());
    }

    fn on_line(&self, conn: Token, session: u64, line: &[u8]) {
        let request = match Request::parse(line) {
            Ok(r) => r,
            Err(err) => return self.fail(conn, session, err),
        };
        match request {
            Request::Lookup { id, name } => self.lookup(conn, session, &id, &name),
            Request::Status { id } => self.reply(conn, self.status(&id), false),
            Request::Subscribe { id, from } => self.outbox.send(LoopEvent::Subscribed {
                conn,
                bytes: wire::subscribed_line(&id, self.shared.store.head()),
                from,
            }),
            Request::Put { id, record } => match &self.committer {
                None => self.fail(
                    conn,
                    session,
                    WireError::new(
                        &id,
                        Code::ReadOnly,
                        "this is a mirror; send claims to the Quorum",
                    ),
                ),
                Some(committer) => self.put(conn, session, id, &record, committer),
            },
        }
    }

    fn lookup(&self, conn: Token, session: u64, id: &Value, name: &crate::name::LookupName) {
        match self.shared.store.get(&name.registered(), clock::now()) {
            Ok(Some(entry)) => {
                log::info!(
                    "session {session}: lookup {name} -> found seq {}",
                    entry.seq
                );
                self.reply(
                    conn,
                    wire::found_line(id, &entry.record, &entry.attestation),
                    false,
                );
            }
            Ok(None) => {
                log::debug!("session {session}: lookup {name} -> not found");
                let err = WireError::new(
                    id,
                    Code::NotFound,
                    format!("{} is not registered", name.registered()),
                );
                self.reply(conn, err.to_line(), false);
            }
            Err(e) => {
                log::error!("session {session}: lookup {name}: store read failed: {e}");
                self.fail(
                    conn,
                    session,
                    WireError::new(id, Code::Internal, "storage error; try again"),
                );
            }
        }
    }

    fn status(&self, id: &Value) -> Vec<u8> {
        let shared = &self.shared;
        let mut status = json!({
            "type": "status",
            "id": id,
            "role": shared.role_name(),
            "version": env!("CARGO_PKG_VERSION"),
            "head": shared.store.head(),
            "records": shared.store.live_count(clock::now()),
            "subscribers": shared.stats.subscribers.load(Ordering::Relaxed),
            "min_work": shared.min_work,
            "quorum_keys": shared.quorum_keys.iter().map(|k| k.to_base64()).collect::<Vec<_>>(),
        });
        if let Some(upstream) = &shared.upstream {
            status["upstream"] = json!({
                "addr": upstream.to_string(),
                "connected": shared.stats.upstream_connected.load(Ordering::Relaxed),
            });
        }
        wire::line(&status)
    }

    /// Verifies a claim here, in parallel with other workers, and hands it
    /// to the committer, which alone decides ownership.
    fn put(&self, conn: Token, session: u64, id: Value, value: &Value, committer: &Sender<Claim>) {
        let record = match Record::from_value(value) {
            Ok(r) => r,
            Err(e) => {
                return self.fail(
                    conn,
                    session,
                    WireError::new(&id, Code::from_verify(e.code()), e.to_string()),
                )
            }
        };
        let verifier = Verifier {
            min_work: self.shared.min_work,
            trusted: Vec::new(),
            max_skew: Some(QUORUM_MAX_SKEW),
        };
        if let Err(e) = verifier.check_record(&record, clock::now()) {
            let err = WireError::new(
                &id,
                Code::from_verify(e.code()),
                format!("{}: {e}", record.name),
            );
            return self.fail(conn, session, err);
        }
        let claim = Claim {
            conn,
            session,
            id,
            record,
        };
        match committer.try_send(claim) {
            Ok(()) => {}
            Err(TrySendError::Full(claim)) => {
                log::warn!("session {session}: commit queue full (--worker-queue); answered busy");
                self.fail(
                    conn,
                    session,
                    WireError::new(&claim.id, Code::Busy, "server busy; try again shortly"),
                );
            }
            Err(TrySendError::Disconnected(claim)) => {
                self.fail(
                    conn,
                    session,
                    WireError::new(&claim.id, Code::Internal, "server is stopping"),
                );
            }
        }
    }

    fn on_feed(&self, conn: Token, session: u64, after: u64) {
        let head = self.shared.store.head();
        match self
            .shared
            .store
            .read_after(after, clock::now(), FEED_BYTES)
        {
            Ok(entries) => {
                // A batch ends at the byte budget or at the head; only an
                // empty read proves the subscriber has everything.
                let complete = entries.is_empty();
                let cursor = entries.last().map_or(after.max(head), |e| e.seq);
                let bytes_read: usize = entries
                    .iter()
                    .map(|e| e.record.len() + e.attestation.len())
                    .sum();
                let mut bytes = Vec::with_capacity(bytes_read + entries.len() * 64);
                for entry in &entries {
                    bytes.extend_from_slice(&wire::push_line(
                        entry.seq,
                        &entry.record,
                        &entry.attestation,
                    ));
                }
                self.outbox.send(LoopEvent::Feed {
                    conn,
                    bytes,
                    cursor,
                    complete,
                });
            }
            Err(e) => {
                log::error!("session {session}: reading the log for a subscriber failed: {e}");
                self.reply(conn, Vec::new(), true);
            }
        }
    }
}
