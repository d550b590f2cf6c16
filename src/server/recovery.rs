//! Taking lost records back from a mirror (`--recover-from`): what a
//! Quorum whose log was damaged in the middle, or restored from an old
//! backup, does before it signs anything, so that it never hands out again
//! a seq its mirrors already hold.
//!
//! Every mirror holds the records with the Quorum's own attestations, which
//! verify by themselves: the Quorum subscribes to the mirror from its own
//! seq + 1, checks each record and that the attestation is its own, and
//! appends them durably, until it holds everything the mirror held.

use crate::keys::PublicKey;
use crate::store::{Entry, Store};
use crate::transport::{self, Endpoint, Route, TransportError};
use crate::verify::{Verifier, VerifyError};
use crate::wire::{DecodeError, Id, Push, Reply, Request, WireError};
use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::time::Duration;

/// Records appended with one fsync.
const BATCH: usize = 1024;
/// The longest wait for the mirror to connect or send the next line.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why taking records back failed, and from which mirror.
#[derive(Debug)]
pub struct RecoveryError {
    /// The mirror (`--recover-from`).
    pub from: Endpoint,
    /// What went wrong.
    pub why: RecoveryFailure,
}

/// What went wrong while taking records back.
#[derive(Debug)]
pub enum RecoveryFailure {
    /// Connecting to the mirror failed.
    Connect(TransportError),
    /// Setting up the connection or sending the subscription failed.
    Io(io::Error),
    /// The mirror closed the connection.
    Closed,
    /// Reading from the mirror failed.
    Read(io::Error),
    /// The reply to `subscribe` cannot be read.
    BadSubscribeReply(DecodeError),
    /// The mirror answered `subscribe` with another reply.
    UnexpectedReply(Box<Reply>),
    /// The mirror holds fewer records than the log held: try another.
    NotFarEnough {
        /// The mirror's seq.
        held: u64,
        /// The seq the log held.
        needed: u64,
    },
    /// A record came with the attestation of another seq.
    AttestationSeq(u64),
    /// A record fails verification against the Quorum's own key.
    Unverified {
        /// Its seq.
        seq: u64,
        /// Why.
        why: VerifyError,
    },
    /// A pushed line is an error.
    Refused(WireError),
    /// A pushed line cannot be read.
    BadLine(DecodeError),
    /// The store cannot take the records.
    Append(io::Error),
}

impl fmt::Display for RecoveryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryFailure::Connect(e) => write!(f, "{e}"),
            RecoveryFailure::Io(e) => write!(f, "{e}"),
            RecoveryFailure::Closed => write!(f, "closed the connection"),
            RecoveryFailure::Read(e) => write!(f, "read failed: {e}"),
            RecoveryFailure::BadSubscribeReply(e) => write!(f, "bad reply to subscribe: {e}"),
            RecoveryFailure::UnexpectedReply(reply) => {
                write!(f, "answered subscribe with {reply}")
            }
            RecoveryFailure::NotFarEnough { held, needed } => write!(
                f,
                "it holds records up to seq {held}, but the log held up to seq {needed}; try a mirror that is further along"
            ),
            RecoveryFailure::AttestationSeq(seq) => {
                write!(f, "sent seq {seq} with the attestation of another")
            }
            RecoveryFailure::Unverified { seq, why } => {
                write!(f, "sent seq {seq} that fails verification: {why}")
            }
            RecoveryFailure::Refused(e) => write!(f, "refused: {e}"),
            RecoveryFailure::BadLine(e) => write!(f, "sent a bad line: {e}"),
            RecoveryFailure::Append(e) => write!(f, "cannot append to the log: {e}"),
        }
    }
}

impl std::error::Error for RecoveryFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecoveryFailure::Connect(e) => Some(e),
            RecoveryFailure::Io(e) | RecoveryFailure::Read(e) | RecoveryFailure::Append(e) => {
                Some(e)
            }
            _ => None,
        }
    }
}

impl fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--recover-from {}: {}", self.from, self.why)
    }
}

impl std::error::Error for RecoveryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.why)
    }
}

/// Takes back from the mirror at `from` every record after the store's
/// seq, checked against the Quorum's own key `own`, and refuses when the
/// mirror holds less than `needed`. Returns how many were taken.
pub fn recover(
    store: &Store,
    own: PublicKey,
    from: &Endpoint,
    route: Route,
    needed: u64,
) -> Result<u64, RecoveryError> {
    let fail = |why: RecoveryFailure| RecoveryError {
        from: from.clone(),
        why,
    };
    let stream =
        transport::connect(from, route, TIMEOUT).map_err(|e| fail(RecoveryFailure::Connect(e)))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| fail(RecoveryFailure::Io(e)))?;
    let mut reader = BufReader::new(stream);
    let start = store.seq() + 1;
    let request = Request::Subscribe {
        id: Id::Number(1),
        from: start,
    };
    reader
        .get_mut()
        .write_all(&request.to_line())
        .map_err(|e| fail(RecoveryFailure::Io(e)))?;
    let held = match Reply::parse(&read_line(&mut reader).map_err(fail)?) {
        Ok(Reply::Subscribed { seq, .. }) => seq,
        Ok(other) => return Err(fail(RecoveryFailure::UnexpectedReply(Box::new(other)))),
        Err(e) => return Err(fail(RecoveryFailure::BadSubscribeReply(e))),
    };
    if held < needed {
        return Err(fail(RecoveryFailure::NotFarEnough { held, needed }));
    }
    let verifier = Verifier {
        min_work: 0,
        trusted: vec![own],
        max_skew: None,
    };
    let mut batch = Vec::new();
    let mut taken = 0;
    while store.seq().max(batch.last().map_or(0, |e: &Entry| e.seq)) < held {
        let line = read_line(&mut reader).map_err(fail)?;
        match Push::parse(&line) {
            Ok(Ok(Push::Record {
                seq,
                record,
                attestation,
            })) => {
                if attestation.seq != seq {
                    return Err(fail(RecoveryFailure::AttestationSeq(seq)));
                }
                let spelled = verifier
                    .check_replica(&record, &attestation)
                    .map_err(|why| fail(RecoveryFailure::Unverified { seq, why }))?;
                let text = crate::canonical::to_string(&attestation.to_value());
                batch.push(Entry::spelled(seq, &record, spelled, text));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(fail(RecoveryFailure::Refused(e))),
            Err(e) => return Err(fail(RecoveryFailure::BadLine(e))),
        }
        if batch.len() >= BATCH {
            taken += append(store, &mut batch).map_err(fail)?;
        }
    }
    taken += append(store, &mut batch).map_err(fail)?;
    Ok(taken)
}

/// Appends and empties `batch`; returns how many.
fn append(store: &Store, batch: &mut Vec<Entry>) -> Result<u64, RecoveryFailure> {
    let n = batch.len() as u64;
    store.append(batch).map_err(RecoveryFailure::Append)?;
    batch.clear();
    Ok(n)
}

/// One line without its newline.
fn read_line(reader: &mut BufReader<std::net::TcpStream>) -> Result<Vec<u8>, RecoveryFailure> {
    let mut line = Vec::new();
    match reader.read_until(b'\n', &mut line) {
        Ok(0) => Err(RecoveryFailure::Closed),
        Ok(_) => {
            line.pop();
            Ok(line)
        }
        Err(e) => Err(RecoveryFailure::Read(e)),
    }
}
