//! The socket under a connection, TCP or Unix, and the reader thread that
//! owns its read side: it reads lines up to [`MAX_LINE_BYTES`], assembles
//! them into replies, and sends `6xx` messages to the event channel and the
//! rest to the command waiting for its reply. It ends when the socket
//! breaks, a line is too long, or the connection is dropped.

use super::event::Event;
use super::reply::{Assembler, Reply};
use super::{ControlAddr, MAX_LINE_BYTES};
use crossbeam_channel::Sender;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// The control socket, TCP or Unix.
#[derive(Debug)]
pub(super) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    pub(super) fn connect(addr: &ControlAddr, timeout: Duration) -> io::Result<Socket> {
        match addr {
            ControlAddr::Tcp(sa) => TcpStream::connect_timeout(sa, timeout).map(Socket::Tcp),
            ControlAddr::Unix(path) => UnixStream::connect(path).map(Socket::Unix),
        }
    }

    pub(super) fn try_clone(&self) -> io::Result<Socket> {
        match self {
            Socket::Tcp(s) => s.try_clone().map(Socket::Tcp),
            Socket::Unix(s) => s.try_clone().map(Socket::Unix),
        }
    }

    pub(super) fn shutdown(&self) {
        let _ = match self {
            Socket::Tcp(s) => s.shutdown(Shutdown::Both),
            Socket::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    pub(super) fn set_write_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_write_timeout(Some(timeout)),
            Socket::Unix(s) => s.set_write_timeout(Some(timeout)),
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.flush(),
            Socket::Unix(s) => s.flush(),
        }
    }
}

/// Reads messages until the socket ends: events to `events`, the rest to
/// `replies`.
pub(super) fn read_loop(socket: Socket, replies: Sender<Reply>, events: Sender<Event>) {
    let mut reader = BufReader::new(socket);
    let mut assembler = Assembler::default();
    while let Some(line) = read_line(&mut reader) {
        let Some(reply) = assembler.push(&line) else {
            continue;
        };
        if (600..700).contains(&reply.code()) {
            // Nobody listening for events is fine; replies still flow.
            let _ = events.send(Event::from_reply(reply));
        } else if replies.send(reply).is_err() {
            return;
        }
    }
}

/// One line without CRLF; `None` at the end of the stream, on an error, or
/// when a line is longer than [`MAX_LINE_BYTES`].
fn read_line(reader: &mut impl BufRead) -> Option<String> {
    let mut buf = Vec::new();
    match reader.take(MAX_LINE_BYTES).read_until(b'\n', &mut buf) {
        Ok(0) => return None,
        Ok(_) => {}
        Err(e) => {
            log::debug!("tor control: read failed: {e}");
            return None;
        }
    }
    if buf.last() != Some(&b'\n') {
        log::warn!(
            "tor control: no complete line ({} bytes, limit {MAX_LINE_BYTES}); closing",
            buf.len()
        );
        return None;
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}
