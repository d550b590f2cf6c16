//! A witness (PROTOCOL.md §11): a mirror that also cosigns the heads its
//! audit matched, with a key of its own.
//!
//! The upstream thread hands every matched head to the cosigner thread
//! here. The cosigner refuses a head lower in seq or time than the last
//! one it cosigned, or in conflict with it (§10.5), and refuses everything
//! once the Quorum broke an ownership rule; otherwise it writes the head it
//! is about to cosign to `witness_state.json` with an fsync before anyone
//! can see a cosignature, so that a kill -9 can never make it sign two
//! conflicting heads. Then it holds its cosignatures in the server's book,
//! pushes them to its subscribers and sends them to each `--cosign-to`
//! server. At least every `--cosign-interval` it cosigns its last head
//! again with a fresh time, so that answers stay fresh while the Quorum is
//! silent or away.
//!
//! Inside, this file holds the cosigner thread, the senders to
//! `--cosign-to` servers and the ownership check of applied records;
//! `report` holds the [`Report`]: the last head cosigned, kept durable in
//! `witness_state.json`, and what `status` shows.

use super::events::{LoopEvent, Outbox, Outgoing};
use super::shared::Shared;
use crate::cosign::Cosignature;
use crate::evidence::{EvidenceFile, OwnershipEvidence};
use crate::head::{Evidence, SignedHead};
use crate::keys::SigningKey;
use crate::name::RegisteredName;
use crate::store::{Entry, Store};
use crate::transport::{self, Endpoint, Route, TransportError};
use crate::wire::{DecodeError, Id, Reply, Request};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) mod report;

use report::STATE_FILE;
pub use report::{BadState, Report, StateError};

/// The file in the state directory holding the witness key.
pub const WITNESS_KEY_FILE: &str = "witness_ed25519_secret_key";
/// The longest wait for a `--cosign-to` server to connect or answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// The default of `--cosign-interval`.
pub const COSIGN_INTERVAL: Duration = Duration::from_secs(60);

/// How a witness is set up.
pub struct Setup {
    /// Its own key.
    pub key: SigningKey,
    /// Servers its cosignatures are sent to (`--cosign-to`; default: its
    /// upstream).
    pub cosign_to: Vec<Endpoint>,
    /// Direct, or through Tor's SOCKS port.
    pub route: Route,
    /// Longest time between two cosignatures of its last head.
    pub interval: Duration,
}

/// The cosigner thread: cosigns matched heads as they come and its last
/// head again every interval, until the channel closes.
pub struct Cosigner {
    /// Shared server state (the book, the report).
    pub shared: Arc<Shared>,
    /// How the witness is set up.
    pub setup: Setup,
    /// For pushing cosignatures to subscribers.
    pub outbox: Outbox,
}

impl Cosigner {
    /// Runs until the upstream thread drops its sender.
    pub fn run(self, heads: Receiver<SignedHead>) {
        let mut senders: Vec<Sender> = self.setup.cosign_to.iter().map(Sender::new).collect();
        let mut due = Instant::now() + self.setup.interval;
        loop {
            let wait = due.saturating_duration_since(Instant::now());
            let mut batch = match heads.recv_timeout(wait) {
                Ok(head) => vec![head],
                Err(RecvTimeoutError::Timeout) => Vec::new(),
                Err(RecvTimeoutError::Disconnected) => return,
            };
            batch.extend(heads.try_iter());
            if batch.is_empty() {
                batch.extend(self.last_head());
            }
            let made = self.cosign(batch);
            if !made.is_empty() {
                due = Instant::now() + self.setup.interval;
                self.publish(&made, &mut senders);
            } else if Instant::now() >= due {
                due = Instant::now() + self.setup.interval;
            }
        }
    }

    /// The last head cosigned, to cosign again.
    fn last_head(&self) -> Option<SignedHead> {
        let report = self.shared.witness.as_ref()?.lock();
        report.last.as_ref().map(|(h, _)| h.clone())
    }

    /// Checks `heads` in order and cosigns those that pass, the newest made
    /// durable first; returns the cosignatures made.
    fn cosign(&self, heads: Vec<SignedHead>) -> Vec<(SignedHead, Cosignature)> {
        let Some(report) = &self.shared.witness else {
            return Vec::new();
        };
        let mut report = report.lock();
        let now = crate::clock::now().max(report.last.as_ref().map_or(0, |(_, t)| *t));
        let mut passed: Vec<SignedHead> = Vec::new();
        for head in heads {
            let refusal = match passed.last() {
                Some(prev) if head.conflicts(prev) || head.seq < prev.seq => Some(format!(
                    "head seq {} conflicts with one just cosigned",
                    head.seq
                )),
                _ => report.refusal(&head),
            };
            match refusal {
                None => passed.push(head),
                Some(why) => self.refuse(&mut report, &head, &why),
            }
        }
        let Some(newest) = passed.last() else {
            return Vec::new();
        };
        if let Err(e) = report.commit(newest, now) {
            log::error!("witness: cannot record the head it cosigns, so it cosigns nothing: {e}");
            report.alarm = Some(format!("cannot write {STATE_FILE}: {e}"));
            return Vec::new();
        }
        report.made += passed.len() as u64;
        passed
            .into_iter()
            .map(|head| {
                let cosig = Cosignature::sign(&head, now, &self.setup.key);
                (head, cosig)
            })
            .collect()
    }

    /// Counts and logs a refused head; a conflict is evidence.
    fn refuse(&self, report: &mut Report, head: &SignedHead, why: &str) {
        report.refused += 1;
        let conflicting = report
            .last
            .as_ref()
            .filter(|(last, _)| head.conflicts(last))
            .map(|(last, _)| last.clone());
        match conflicting.and_then(|last| Evidence::new(head.clone(), last)) {
            Some(evidence) => report.keep_evidence(
                &format!("the Quorum signed conflicting heads: {why}"),
                &EvidenceFile::Equivocation(Box::new(evidence)),
            ),
            None => {
                log::warn!("witness: not cosigning: {why}");
                if !report.halted {
                    report.alarm = Some(why.to_owned());
                }
            }
        }
    }

    /// Holds the cosignatures in the book, pushes them to subscribers and
    /// sends them to every `--cosign-to` server.
    fn publish(&self, made: &[(SignedHead, Cosignature)], senders: &mut [Sender]) {
        let mut pushes = Vec::new();
        {
            let mut book = self.shared.book.lock();
            for (head, cosig) in made {
                if let Err(e) = book.take(head, cosig) {
                    log::error!("witness: its own cosignature was not taken: {e}");
                }
                pushes.extend(
                    book.push_line(head)
                        .map(|line| Outgoing::Cosignatures { line }),
                );
            }
        }
        self.outbox.send(LoopEvent::Committed {
            pushes: Arc::new(pushes),
        });
        for sender in senders {
            sender.send(made, self.setup.route);
        }
    }
}

/// One `--cosign-to` server and the connection to it, kept open.
struct Sender {
    endpoint: Endpoint,
    conn: Option<BufReader<TcpStream>>,
    /// Whether the last try failed, so a down server is logged once.
    failing: bool,
}

impl Sender {
    fn new(endpoint: &Endpoint) -> Sender {
        Sender {
            endpoint: endpoint.clone(),
            conn: None,
            failing: false,
        }
    }

    /// Sends every cosignature, pipelined, and reads the replies.
    fn send(&mut self, made: &[(SignedHead, Cosignature)], route: Route) {
        match self.try_send(made, route) {
            Ok(()) => {
                if self.failing {
                    log::info!("witness: {} takes cosignatures again", self.endpoint);
                }
                self.failing = false;
            }
            Err(e) => {
                self.conn = None;
                if !self.failing {
                    log::warn!(
                        "witness: cannot send cosignatures to {}: {e}",
                        self.endpoint
                    );
                }
                self.failing = true;
            }
        }
    }

    fn try_send(
        &mut self,
        made: &[(SignedHead, Cosignature)],
        route: Route,
    ) -> Result<(), SendError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                let stream = transport::connect(&self.endpoint, route, SEND_TIMEOUT)?;
                stream.set_read_timeout(Some(SEND_TIMEOUT))?;
                BufReader::new(stream)
            }
        };
        let conn = self.conn.insert(conn);
        let mut lines = Vec::new();
        for (n, (head, cosig)) in made.iter().enumerate() {
            lines.extend(
                Request::Cosign {
                    id: Id::Number(n as u64),
                    head: head.clone(),
                    cosignature: cosig.clone(),
                }
                .to_line(),
            );
        }
        conn.get_mut().write_all(&lines)?;
        for _ in made {
            let mut line = Vec::new();
            conn.read_until(b'\n', &mut line)?;
            if line.is_empty() {
                return Err(SendError::Closed);
            }
            match Reply::parse(&line) {
                Ok(Reply::Cosigned { .. }) => {}
                Ok(Reply::Error(e)) => {
                    log::warn!("witness: {} refused a cosignature: {e}", self.endpoint)
                }
                Ok(other) => return Err(SendError::UnexpectedReply(other.kind())),
                Err(e) => return Err(SendError::BadReply(e)),
            }
        }
        Ok(())
    }
}

/// Why cosignatures could not be sent to a server that collects them.
#[derive(Debug)]
enum SendError {
    /// Connecting failed.
    Connect(TransportError),
    /// The connection broke.
    Io(std::io::Error),
    /// The server closed the connection.
    Closed,
    /// The server answered `cosign` with another kind of reply.
    UnexpectedReply(&'static str),
    /// The server's reply cannot be read.
    BadReply(DecodeError),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "{e}"),
            SendError::Io(e) => write!(f, "{e}"),
            SendError::Closed => write!(f, "closed the connection"),
            SendError::UnexpectedReply(kind) => write!(f, "answered cosign with {kind}"),
            SendError::BadReply(e) => write!(f, "bad reply to cosign: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

impl From<TransportError> for SendError {
    fn from(e: TransportError) -> Self {
        SendError::Connect(e)
    }
}

impl From<std::io::Error> for SendError {
    fn from(e: std::io::Error) -> Self {
        SendError::Io(e)
    }
}

/// Checks every record of `batch`, before it is applied, against the
/// record its name had (in the store or earlier in the batch): a broken
/// ownership rule (§6) is evidence, and the witness cosigns nothing more.
pub fn check_ownership(store: &Store, batch: &[Entry], report: &Mutex<Report>) {
    let mut earlier: HashMap<&RegisteredName, Entry> = HashMap::new();
    for entry in batch {
        let before = match earlier.get(&entry.name) {
            Some(e) => Some(e.clone()),
            None => match store.get(&entry.name, 0) {
                Ok(found) => found,
                Err(e) => {
                    log::error!(
                        "witness: cannot read the record before seq {}: {e}",
                        entry.seq
                    );
                    None
                }
            },
        };
        if let Some(before) = before {
            if let Some(evidence) = OwnershipEvidence::between(&before, entry) {
                let what = format!(
                    "the Quorum broke an ownership rule ({}) for {} at seq {} (earlier seq {}); this witness cosigns nothing more",
                    evidence.rule.as_str(),
                    entry.name,
                    entry.seq,
                    before.seq
                );
                let mut report = report.lock();
                report.halted = true;
                report.keep_evidence(&what, &EvidenceFile::Ownership(Box::new(evidence)));
            }
        }
        earlier.insert(&entry.name, entry.clone());
    }
}
