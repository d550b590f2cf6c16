//! One connection's life in the loop: accepting it (or refusing it past
//! `--max-connections`), reading lines with per-connection backpressure,
//! handing each to a worker, writing replies, refusing over-long messages,
//! and closing, after draining a refused peer's input for a while so the
//! error reply is not destroyed by a reset.

use super::{Conn, EventLoop};
use crate::server::events::Reply;
use crate::server::workers::{Job, Line};
use crate::wire::{Code, Id, WireError};
use crossbeam_channel::TrySendError;
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// After a closing error reply, how long unread input is drained so the
/// close is orderly (a close with unread input sends a reset, which can
/// destroy the reply in flight).
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes drained while lingering.
const LINGER_BYTES: usize = 1 << 20;
/// Most request lines in one job: a larger turn is split so that the
/// first replies do not wait for the last requests.
const BATCH_LINES: usize = 16;

impl EventLoop {
    pub(super) fn accept_all(&mut self) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors or similar: keep serving the others.
                    log::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream, peer: std::net::SocketAddr) {
        let session = self.next_session;
        self.next_session += 1;
        if self.conns.len() >= self.limits.max_connections {
            log::warn!(
                "session {session}: refused {peer}: connection limit {} reached (--max-connections)",
                self.limits.max_connections
            );
            let refusal = WireError::new(
                &Id::Null,
                Code::Busy,
                "too many connections; try again later",
            );
            let _ = stream.write(&self.shared.metrics.error_line(&refusal));
            return;
        }
        let token = Token(self.next_token);
        self.next_token += 1;
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log::warn!("session {session}: cannot register {peer}: {e}");
            return;
        }
        log::debug!("session {session}: connected from {peer}");
        self.shared
            .stats
            .connections
            .fetch_add(1, Ordering::Relaxed);
        self.conns.insert(
            token,
            Conn {
                stream,
                session,
                inbuf: Vec::new(),
                out: VecDeque::new(),
                out_pos: 0,
                out_bytes: 0,
                busy: false,
                close_after_flush: false,
                linger_until: None,
                drained: 0,
                eof: false,
                unread: false,
                last_active: Instant::now(),
                sub: None,
            },
        );
    }

    pub(super) fn on_ready(&mut self, token: Token, event: &mio::event::Event) {
        if event.is_writable() {
            self.flush(token);
        }
        if event.is_readable() {
            // A read shorter than the buffer took all the socket held, and
            // more input will be a new event; only a peer's close (or an
            // error) already signalled needs the read that sees it.
            self.read(token, event.is_read_closed() || event.is_error());
        }
    }

    /// Reads what the socket has, unless a request is in flight (then the
    /// bytes wait in the kernel: per-connection backpressure). Stops at the
    /// first short read unless `to_the_end`: then it reads until the
    /// socket would block, as after an event taken while busy.
    pub(super) fn read(&mut self, token: Token, to_the_end: bool) {
        let max = self.limits.max_message;
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if conn.linger_until.is_some() {
            return self.drain_input(token);
        }
        if conn.busy || conn.close_after_flush {
            conn.unread = true;
            return;
        }
        conn.unread = false;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match conn.stream.read(&mut chunk) {
                Ok(0) => {
                    conn.eof = true;
                    break;
                }
                Ok(n) => {
                    conn.last_active = Instant::now();
                    if conn.sub.is_none() {
                        conn.inbuf.extend_from_slice(&chunk[..n]);
                    }
                    if conn.inbuf.len() > max + 1 {
                        conn.unread = true;
                        break;
                    }
                    if n < chunk.len() && !to_the_end {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let session = conn.session;
                    self.close(token, &format!("read failed: {e}"));
                    log::debug!("session {session}: read error {e}");
                    return;
                }
            }
        }
        self.process_input(token);
    }

    /// Dispatches the next complete line, or refuses an over-long one.
    fn process_input(&mut self, token: Token) {
        let max = self.limits.max_message;
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if conn.sub.is_some() {
            if conn.eof {
                self.close(token, "peer closed");
            }
            return;
        }
        if conn.busy || conn.close_after_flush {
            return;
        }
        while let Some(end) = conn.inbuf.iter().position(|&b| b == b'\n') {
            if end > max {
                return self.refuse_too_large(token);
            }
            let mut line: Vec<u8> = conn.inbuf.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return self.dispatch(token, line);
        }
        if conn.inbuf.len() > max {
            return self.refuse_too_large(token);
        }
        if conn.eof {
            // The peer is done sending; answer what it sent, then close.
            conn.close_after_flush = true;
            self.flush(token);
        }
    }

    fn refuse_too_large(&mut self, token: Token) {
        let max = self.limits.max_message;
        if let Some(conn) = self.conns.get_mut(&token) {
            log::warn!(
                "session {}: message over {max} bytes (--max-message); closing",
                conn.session
            );
            conn.inbuf.clear();
            let err = WireError::new(
                &Id::Null,
                Code::TooLarge,
                format!("a message is at most {max} bytes"),
            );
            conn.queue(self.shared.metrics.error_line(&err));
            conn.close_after_flush = true;
            self.flush(token);
        }
    }

    fn dispatch(&mut self, token: Token, line: Vec<u8>) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let session = conn.session;
        if crate::signals::stop_requested() {
            let err = WireError::new(
                &Id::Null,
                Code::Busy,
                "server is stopping; try again shortly",
            );
            conn.queue(self.shared.metrics.error_line(&err));
            conn.close_after_flush = true;
            return self.flush(token);
        }
        let queued = self.shared.stats.queued_lines.load(Ordering::Relaxed) + self.batch.len();
        if queued >= self.limits.worker_queue {
            log::warn!(
                "session {session}: worker queue full ({} lines, --worker-queue); answered busy",
                self.limits.worker_queue
            );
            let err = WireError::new(&Id::Null, Code::Busy, "server busy; try again shortly");
            conn.queue(self.shared.metrics.error_line(&err));
            return self.flush(token);
        }
        conn.busy = true;
        self.batch.push(Line {
            conn: token,
            session,
            line,
        });
    }

    /// Hands the lines read this turn to the workers, at most
    /// [`BATCH_LINES`] to a job and in at least as many jobs as there are
    /// workers, so that all of them answer.
    pub(super) fn send_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.batch);
        let jobs = lines.len().div_ceil(BATCH_LINES).max(self.workers);
        let size = lines.len().div_ceil(jobs);
        let mut lines = lines.into_iter();
        loop {
            let part: Vec<Line> = lines.by_ref().take(size).collect();
            if part.is_empty() {
                return;
            }
            let count = part.len();
            let queued = &self.shared.stats.queued_lines;
            queued.fetch_add(count, Ordering::Relaxed);
            let (part, stopping) = match self.jobs.try_send(Job::Lines(part)) {
                Ok(()) => continue,
                Err(TrySendError::Full(Job::Lines(part))) => (part, false),
                Err(TrySendError::Disconnected(Job::Lines(part))) => (part, true),
                Err(_) => unreachable!("a job comes back as it was sent"),
            };
            queued.fetch_sub(count, Ordering::Relaxed);
            for line in part {
                self.refuse_unsent(line.conn, stopping);
            }
        }
    }

    /// Answers a line the worker queue did not take: `busy`, or
    /// `internal` and close when the server is stopping.
    fn refuse_unsent(&mut self, token: Token, stopping: bool) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        conn.busy = false;
        let err = if stopping {
            conn.close_after_flush = true;
            WireError::new(&Id::Null, Code::Internal, "server is stopping")
        } else {
            log::warn!(
                "session {}: worker queue full (--worker-queue); answered busy",
                conn.session
            );
            WireError::new(&Id::Null, Code::Busy, "server busy; try again shortly")
        };
        conn.queue(self.shared.metrics.error_line(&err));
        self.flush(token);
    }

    /// Writes queued bytes until the socket would block.
    pub(super) fn flush(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        while let Some(front) = conn.out.front() {
            match conn.stream.write(&front[conn.out_pos..]) {
                Ok(0) => return self.close(token, "peer stopped reading"),
                Ok(n) => {
                    conn.out_pos += n;
                    conn.out_bytes -= n;
                    if conn.out_pos == front.len() {
                        conn.out.pop_front();
                        conn.out_pos = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.close(token, &format!("write failed: {e}")),
            }
        }
        if conn.close_after_flush {
            if conn.linger_until.is_none() {
                conn.linger_until = Some(Instant::now() + LINGER);
                let _ = conn.stream.shutdown(std::net::Shutdown::Write);
            }
            self.drain_input(token);
        } else if conn.sub.as_ref().is_some_and(|s| !s.live) {
            self.maybe_feed(token);
        }
    }

    /// Reads and discards input of a connection that is closing, until
    /// the peer closes, the linger time passes, or too much arrives.
    pub(super) fn drain_input(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match conn.stream.read(&mut chunk) {
                Ok(0) => return self.close(token, "closed"),
                Ok(n) => {
                    conn.drained += n;
                    if conn.drained > LINGER_BYTES {
                        return self.close(token, "closed after error reply (input discarded)");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close(token, "closed after error reply"),
            }
        }
        if conn.linger_until.is_some_and(|t| Instant::now() >= t) {
            self.close(token, "closed after error reply (linger time over)");
        }
    }

    pub(super) fn close(&mut self, token: Token, why: &str) {
        if let Some(mut conn) = self.conns.remove(&token) {
            self.shared
                .stats
                .connections
                .fetch_sub(1, Ordering::Relaxed);
            let _ = self.poll.registry().deregister(&mut conn.stream);
            if conn.sub.is_some() {
                self.shared
                    .stats
                    .subscribers
                    .fetch_sub(1, Ordering::Relaxed);
                log::info!("session {}: subscriber left: {why}", conn.session);
            } else {
                log::debug!("session {}: closed: {why}", conn.session);
            }
        }
    }

    /// Sends a worker's reply, then takes the connection's next request:
    /// from the socket when it signalled input while the request was in
    /// flight, else from what was already read (no system call).
    pub(super) fn on_reply(&mut self, reply: Reply) {
        let token = reply.conn;
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        conn.busy = false;
        conn.last_active = Instant::now();
        conn.queue(reply.bytes);
        conn.close_after_flush |= reply.close;
        self.flush(token);
        match self.conns.get(&token) {
            Some(conn) if conn.unread => self.read(token, true),
            Some(_) => self.process_input(token),
            None => {}
        }
    }
}
