//! Why a mirror's session with its upstream ended, in three groups: the
//! connection failed, the upstream is behind, or it sent something wrong.

use super::lines::MAX_LINE;
use crate::transport::TransportError;
use crate::verify::VerifyError;
use crate::wire::{DecodeError, WireError};
use std::fmt;
use std::io;
use std::time::Duration;

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
    /// The thread reading ahead of the one applying could not start.
    ReaderThread(io::Error),
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
            UpstreamError::ReaderThread(e) => write!(f, "cannot start the reading thread: {e}"),
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
            | UpstreamError::Append(e)
            | UpstreamError::ReaderThread(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TransportError> for UpstreamError {
    fn from(e: TransportError) -> Self {
        UpstreamError::Connect(e)
    }
}
