//! The one thread that owns every socket: accepts, reads lines, hands them
//! to workers, writes replies and pushes, and enforces the connection
//! limits.
//!
//! It never blocks and never parses JSON: complete lines go to the worker
//! pool, answers come back as [`LoopEvent`]s with a [`Waker`]. A connection
//! has at most one request in flight, so replies go out in request order
//! and a client that pipelines waits in its own socket buffer.
//!
//! Inside, this file holds the loop itself: its state (each connection
//! and subscription too), the poll, the events from other threads,
//! housekeeping (idle timeouts, heartbeats) and the stop. `connection` is
//! one connection's life: accepting, reading and dispatching lines,
//! writing, refusing and closing; `subscribers` is the record stream:
//! catch-up feeds and fanning out what was committed. [`EventLoop`] is one
//! type; each file adds its own `impl` block over the state defined here.

use super::events::{HeadMark, Inbox, LoopEvent};
use super::shared::{Limits, Shared};
use super::workers::{Job, Line};
use crate::wire;
use crossbeam_channel::Sender;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod connection;
mod subscribers;

const LISTENER: Token = Token(0);
/// The token of the loop's [`Waker`].
pub const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;
/// How often limits and heartbeats are checked.
const TICK: Duration = Duration::from_millis(200);
/// Longest wait for in-flight requests at shutdown.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// The event loop and everything it owns.
pub struct EventLoop {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    next_session: u64,
    jobs: Sender<Job>,
    /// Lines read this turn, handed to the workers at its end.
    batch: Vec<Line>,
    /// How many workers share the jobs.
    workers: usize,
    events: Inbox,
    limits: Limits,
    shared: Arc<Shared>,
    /// Highest seq fanned out.
    applied: u64,
    /// The newest head fanned out that the server answers against: a
    /// catch-up is complete only once it sent that one.
    current: Option<HeadMark>,
}

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

/// One open connection: its socket, what it sent and what waits to be
/// written, and its subscription if it asked for the record stream.
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
    /// The socket signalled input that was not read (a request was in
    /// flight, or the buffer was full): read it once the reply is out.
    unread: bool,
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

impl EventLoop {
    /// Prepares the loop around a bound listener; `poll` must be the one
    /// the [`Waker`] (token [`WAKER`]) was made for, and `workers` the
    /// number of threads taking `jobs`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        poll: Poll,
        mut listener: TcpListener,
        jobs: Sender<Job>,
        workers: usize,
        events: Inbox,
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
            batch: Vec::new(),
            workers: workers.max(1),
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
                    token => self.on_ready(token, event),
                }
            }
            self.drain_events();
            self.send_batch();
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

    fn drain_events(&mut self) {
        self.events.rearm();
        while let Some(event) = self.events.next() {
            match event {
                LoopEvent::Reply(reply) => self.on_reply(reply),
                LoopEvent::Replies(replies) => {
                    for reply in replies {
                        self.on_reply(reply);
                    }
                }
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
