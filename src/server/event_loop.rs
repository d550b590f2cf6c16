//! The one thread that owns every socket: accepts, reads lines, hands them
//! to workers, writes replies and pushes, and enforces the connection
//! limits.
//!
//! It never blocks and never parses JSON: complete lines go to the worker
//! pool, answers come back as [`LoopEvent`]s with a [`Waker`]. A connection
//! has at most one request in flight, so replies go out in request order
//! and a client that pipelines waits in its own socket buffer.

use super::workers::Job;
use super::{HeadMark, Limits, LoopEvent, Outgoing, Shared};
use crate::wire::{self, Code, Id, WireError};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
/// The token of the loop's [`Waker`].
pub const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;
/// How often limits and heartbeats are checked.
const TICK: Duration = Duration::from_millis(200);
/// Longest wait for in-flight requests at shutdown.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// A catching-up subscriber is fed more once its unsent bytes fall below this.
const FEED_LOW_WATER: usize = 256 * 1024;
/// After a closing error reply, how long unread input is drained so the
/// close is orderly (a close with unread input sends a reset, which can
/// destroy the reply in flight).
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes drained while lingering.
const LINGER_BYTES: usize = 1 << 20;

/// A subscriber's place in the record stream.
struct Subscription {
    /// Highest seq sent (or skipped as not live).
    cursor: u64,
    /// The last head sent.
    head: Option<HeadMark>,
    /// Caught up: new records are pushed as they commit.
    live: bool,
    /// A catch-up read is with a worker.
    feeding: bool,
    /// When something was last queued for it.
    last_sent: Instant,
}

struct Conn {
    stream: TcpStream,
    session: u64,
    inbuf: Vec<u8>,
    out: VecDeque<Vec<u8>>,
    out_pos: usize,
    out_bytes: usize,
    busy: bool,
    close_after_flush: bool,
    /// Set once a closing reply is sent: input is drained until then.
    linger_until: Option<Instant>,
    drained: usize,
    eof: bool,
    last_active: Instant,
    sub: Option<Subscription>,
}

impl Conn {
    fn queue(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.out_bytes += bytes.len();
            self.out.push_back(bytes);
        }
    }
}

/// The event loop and everything it owns.
pub struct EventLoop {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    next_session: u64,
    jobs: Sender<Job>,
    events: Receiver<LoopEvent>,
    limits: Limits,
    shared: Arc<Shared>,
    /// Highest seq fanned out.
    applied: u64,
    /// The newest head fanned out that the server answers against: a
    /// catch-up is complete only once it sent that one.
    current: Option<HeadMark>,
}

impl EventLoop {
    /// Prepares the loop around a bound listener; `poll` must be the one
    /// the [`Waker`] (token [`WAKER`]) was made for.
    pub fn new(
        poll: Poll,
        mut listener: TcpListener,
        jobs: Sender<Job>,
        events: Receiver<LoopEvent>,
        limits: Limits,
        shared: Arc<Shared>,
    ) -> io::Result<EventLoop> {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let applied = shared.store.seq();
        let current = shared.store.current_head().as_ref().map(HeadMark::of);
        Ok(EventLoop {
            poll,
            listener: Some(listener),
            conns: HashMap::new(),
            next_token: FIRST_CONN,
            next_session: 1,
            jobs,
            events,
            limits,
            shared,
            applied,
            current,
        })
    }

    /// Runs until a stop is requested and in-flight work is done.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut last_tick = Instant::now();
        let mut drain_deadline: Option<Instant> = None;
        loop {
            if let Err(e) = self.poll.poll(&mut events, Some(TICK)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    token => self.on_ready(token, event.is_readable(), event.is_writable()),
                }
            }
            self.drain_events();
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.housekeeping();
            }
            if crate::signals::stop_requested() && drain_deadline.is_none() {
                drain_deadline = Some(Instant::now() + DRAIN_LIMIT);
                self.stop_accepting();
            }
            if let Some(deadline) = drain_deadline {
                if self.drained() || Instant::now() >= deadline {
                    log::info!("event loop stopped ({} connections open)", self.conns.len());
                    return Ok(());
                }
            }
        }
    }

    fn stop_accepting(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let busy = self.conns.values().filter(|c| c.busy).count();
        log::info!("stopping: no new connections; finishing {busy} requests in flight");
    }

    fn drained(&self) -> bool {
        self.conns
            .values()
            .all(|c| !c.busy && (c.sub.is_some() || c.out.is_empty()))
    }

    fn accept_all(&mut self) {
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
                last_active: Instant::now(),
                sub: None,
            },
        );
    }

    fn on_ready(&mut self, token: Token, readable: bool, writable: bool) {
        if writable {
            self.flush(token);
        }
        if readable {
            self.read(token);
        }
    }

    /// Reads what the socket has, unless a request is in flight (then the
    /// bytes wait in the kernel: per-connection backpressure).
    fn read(&mut self, token: Token) {
        let max = self.limits.max_message;
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if conn.linger_until.is_some() {
            return self.drain_input(token);
        }
        if conn.busy || conn.close_after_flush {
            return;
        }
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
        match self.jobs.try_send(Job::Line {
            conn: token,
            session,
            line,
        }) {
            Ok(()) => conn.busy = true,
            Err(TrySendError::Full(_)) => {
                log::warn!(
                    "session {session}: worker queue full ({} jobs, --worker-queue); answered busy",
                    self.limits.worker_queue
                );
                let err = WireError::new(&Id::Null, Code::Busy, "server busy; try again shortly");
                conn.queue(self.shared.metrics.error_line(&err));
                self.flush(token);
            }
            Err(TrySendError::Disconnected(_)) => {
                let err = WireError::new(&Id::Null, Code::Internal, "server is stopping");
                conn.queue(self.shared.metrics.error_line(&err));
                conn.close_after_flush = true;
                self.flush(token);
            }
        }
    }

    /// Writes queued bytes until the socket would block.
    fn flush(&mut self, token: Token) {
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
    fn drain_input(&mut self, token: Token) {
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

    fn close(&mut self, token: Token, why: &str) {
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

    fn drain_events(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            match event {
                LoopEvent::Reply { conn, bytes, close } => self.on_reply(conn, bytes, close),
                LoopEvent::Subscribed { conn, bytes, from } => {
                    self.on_subscribed(conn, bytes, from)
                }
                LoopEvent::Feed {
                    conn,
                    bytes,
                    cursor,
                    head,
                    complete,
                } => self.on_feed(conn, bytes, cursor, head, complete),
                LoopEvent::Committed { pushes } => self.on_committed(&pushes),
            }
        }
    }

    fn on_reply(&mut self, token: Token, bytes: Vec<u8>, close: bool) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        conn.busy = false;
        conn.last_active = Instant::now();
        conn.queue(bytes);
        conn.close_after_flush |= close;
        self.flush(token);
        self.read(token);
    }

    fn on_subscribed(&mut self, token: Token, bytes: Vec<u8>, from: u64) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        conn.busy = false;
        conn.inbuf.clear();
        conn.queue(bytes);
        conn.sub = Some(Subscription {
            cursor: from.saturating_sub(1),
            head: None,
            live: false,
            feeding: false,
            last_sent: Instant::now(),
        });
        self.shared
            .stats
            .subscribers
            .fetch_add(1, Ordering::Relaxed);
        log::info!("session {}: subscribed from seq {from}", conn.session);
        self.flush(token);
        self.maybe_feed(token);
    }

    /// Asks a worker for the next catch-up batch, if one is due.
    fn maybe_feed(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let Some(sub) = conn.sub.as_mut() else {
            return;
        };
        if sub.live || sub.feeding || conn.out_bytes > FEED_LOW_WATER {
            return;
        }
        let job = Job::Feed {
            conn: token,
            session: conn.session,
            after: sub.cursor,
            sent: sub.head.map(|h| h.id),
        };
        if self.jobs.try_send(job).is_ok() {
            sub.feeding = true;
        }
    }

    fn on_feed(
        &mut self,
        token: Token,
        bytes: Vec<u8>,
        cursor: u64,
        head: Option<HeadMark>,
        complete: bool,
    ) {
        let (applied, current) = (self.applied, self.current);
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let Some(sub) = conn.sub.as_mut() else {
            return;
        };
        sub.feeding = false;
        sub.cursor = sub.cursor.max(cursor);
        if head.is_some() {
            sub.head = head;
        }
        if !bytes.is_empty() {
            sub.last_sent = Instant::now();
        }
        if complete && sub.cursor >= applied && current.is_none_or(|c| sub.head == Some(c)) {
            sub.live = true;
            log::info!("session {}: caught up at seq {}", conn.session, sub.cursor);
        }
        conn.queue(bytes);
        self.flush(token);
    }

    fn on_committed(&mut self, pushes: &[Outgoing]) {
        for push in pushes {
            match push {
                Outgoing::Record { seq, .. } => self.applied = self.applied.max(*seq),
                Outgoing::Head { mark, current, .. } => {
                    if *current {
                        self.current = Some(*mark);
                    }
                }
                Outgoing::Cosignatures { .. } => {}
            }
        }
        let depth = self.limits.subscriber_queue;
        let mut lagging = Vec::new();
        let mut fed = Vec::new();
        for (token, conn) in self.conns.iter_mut() {
            let Some(sub) = conn.sub.as_mut() else {
                continue;
            };
            if !sub.live {
                lagging.push(*token);
                continue;
            }
            for push in pushes {
                let line = match push {
                    Outgoing::Record { seq, line } if *seq > sub.cursor => {
                        sub.cursor = *seq;
                        line
                    }
                    Outgoing::Head { mark, line, .. } if mark.follows(sub.head.as_ref()) => {
                        sub.head = Some(*mark);
                        line
                    }
                    Outgoing::Cosignatures { line } => line,
                    _ => continue,
                };
                sub.last_sent = Instant::now();
                conn.out_bytes += line.len();
                conn.out.push_back(line.clone());
            }
            fed.push(*token);
        }
        // Write first, then judge: a subscriber that reads promptly is not
        // dropped for a batch larger than its queue.
        for token in fed {
            self.flush(token);
            let behind = self.conns.get(&token).map_or(0, |c| c.out.len());
            if behind > depth {
                if let Some(conn) = self.conns.get(&token) {
                    log::warn!(
                        "session {}: subscriber {behind} messages behind (--subscriber-queue {depth}); dropped, it catches up by seq when it returns",
                        conn.session
                    );
                }
                self.shared.metrics.subscriber_dropped();
                self.close(token, "subscriber queue full");
            }
        }
        for token in lagging {
            self.maybe_feed(token);
        }
    }

    /// Idle timeouts, heartbeats, and retries of feeds that found the
    /// worker queue full.
    fn housekeeping(&mut self) {
        let idle = self.limits.idle_timeout;
        let heartbeat = self.limits.heartbeat;
        let mut idle_tokens = Vec::new();
        let mut beat_tokens = Vec::new();
        let lingering: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.linger_until.is_some())
            .map(|(t, _)| *t)
            .collect();
        for token in lingering {
            self.drain_input(token);
        }
        for (token, conn) in &self.conns {
            if conn.close_after_flush {
                continue;
            }
            match &conn.sub {
                None if !conn.busy && conn.last_active.elapsed() > idle => idle_tokens.push(*token),
                Some(sub) if conn.out.is_empty() && sub.last_sent.elapsed() >= heartbeat => {
                    beat_tokens.push(*token)
                }
                _ => {}
            }
        }
        for token in idle_tokens {
            if let Some(conn) = self.conns.get(&token) {
                log::info!(
                    "session {}: idle for {} s (--idle-timeout); closing",
                    conn.session,
                    idle.as_secs()
                );
            }
            self.close(token, "idle");
        }
        let seq = self.applied.max(self.shared.store.seq());
        for token in beat_tokens {
            if let Some(conn) = self.conns.get_mut(&token) {
                conn.queue(wire::heartbeat_line(seq));
                if let Some(sub) = conn.sub.as_mut() {
                    sub.last_sent = Instant::now();
                }
            }
            self.flush(token);
        }
        let waiting: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.sub.as_ref().is_some_and(|s| !s.live && !s.feeding))
            .map(|(t, _)| *t)
            .collect();
        for token in waiting {
            self.maybe_feed(token);
        }
    }
}

/// Creates the poll and its waker together, as mio requires.
pub fn poll_and_waker() -> io::Result<(Poll, Arc<Waker>)> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    Ok((poll, waker))
}
