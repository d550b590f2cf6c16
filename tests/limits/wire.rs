//! What the tests here read and check on the wire: a socket read until
//! the server closes it, lines decoded as replies and pushes, errors, the
//! requests they send, and a flag in the log.

use onions::wire::{Id, Push, Reply, Request, WireError};
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use testkit::servers::{log_lines_with, Client, Server};

/// Asserts that `server`'s log has a line naming `flag`.
pub(crate) fn assert_logged(server: &Server, flag: &str) {
    assert!(
        !log_lines_with(server, &[flag]).is_empty(),
        "the log never names {flag}:\n{}",
        server.log()
    );
}

/// Reads from `stream` until the server closes it (bounded in time and
/// size); returns what came before the close. Fails if it stays open.
pub(crate) fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("read failed: {e}"),
        }
        assert!(
            Instant::now() < deadline && got.len() < 256 << 20,
            "the server kept the connection open for {within:?} ({} bytes read)",
            got.len()
        );
    }
}

/// The complete lines in `bytes` (a cut-off last line is ignored).
pub(crate) fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let complete = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(&bytes[..0], |end| &bytes[..end]);
    complete
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

/// `line` decoded as a reply; anything else fails the test.
pub(crate) fn reply_of(line: &[u8]) -> Reply {
    Reply::parse(line).unwrap_or_else(|e| {
        panic!(
            "the server sent a bad reply {:?}: {e}",
            String::from_utf8_lossy(line)
        )
    })
}

/// `line` decoded as a subscription push; anything else (an error
/// included) fails the test.
pub(crate) fn push_of(line: &[u8]) -> Push {
    match Push::parse(line) {
        Ok(Ok(push)) => push,
        other => panic!(
            "the server pushed {:?}: {other:?}",
            String::from_utf8_lossy(line)
        ),
    }
}

/// The next push on a subscription; fails if the server closed it.
pub(crate) fn next_push(subscriber: &mut Client) -> Push {
    push_of(&subscriber.read_line().expect("the subscriber was closed"))
}

/// The error in `reply`; anything else fails the test.
pub(crate) fn error_of(reply: &Reply) -> &WireError {
    match reply {
        Reply::Error(error) => error,
        other => panic!("expected an error, got {other}"),
    }
}

/// A `status` request.
pub(crate) fn status_request(id: &str) -> Request {
    Request::Status {
        id: Id::Text(id.into()),
    }
}

/// A `subscribe` request from `from`.
pub(crate) fn subscribe_request(id: &str, from: u64) -> Request {
    Request::Subscribe {
        id: Id::Text(id.into()),
        from,
    }
}
