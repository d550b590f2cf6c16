//! Reading the upstream: its reply to `subscribe`, then pushed lines with
//! a silence limit, waking to honour a stop request.

use crate::wire::Reply;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::UpstreamError;

/// Longest line accepted from upstream (a push carries at most an 8 KiB
/// record and its attestation, or a head).
pub(super) const MAX_LINE: usize = 64 * 1024;

/// The upstream's seq from its reply to `subscribe`.
pub(super) fn subscribed_seq(reply: &[u8]) -> Result<u64, UpstreamError> {
    match Reply::parse(reply).map_err(UpstreamError::BadSubscribeReply)? {
        Reply::Subscribed { seq, .. } => Ok(seq),
        Reply::Error(e) => Err(UpstreamError::SubscribeRefused(e)),
        other => Err(UpstreamError::UnexpectedReply(other.kind())),
    }
}

/// Reads newline-terminated lines with a silence limit, waking regularly
/// to honour a stop request.
pub(super) struct Lines {
    reader: BufReader<TcpStream>,
    partial: Vec<u8>,
}

impl Lines {
    pub(super) fn new(stream: TcpStream) -> Lines {
        Lines {
            reader: BufReader::with_capacity(256 * 1024, stream),
            partial: Vec::new(),
        }
    }

    /// The socket, for the thread that must end a read in progress.
    pub(super) fn socket(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub(super) fn has_buffered_line(&self) -> bool {
        self.reader.buffer().contains(&b'\n')
    }

    /// The next line without its newline; `None` if a stop was requested.
    pub(super) fn next_line(
        &mut self,
        silence: Duration,
    ) -> Result<Option<Vec<u8>>, UpstreamError> {
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
                Err(e) if crate::server::read_again(&e) => {}
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
