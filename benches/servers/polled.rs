//! The lookup load shaped as `redis-benchmark`'s: one thread drives every
//! connection through one mio poll, each connection with one request in
//! flight. A client thread per connection makes the server pay, on each
//! reply it writes, for waking that thread (the kernel wakes the reader
//! inside the writer's `send`); redis-benchmark's one thread is mostly
//! awake already. Rows 1 and 2 compare like with like.

use crate::lookups::check_answer;
use crate::server::REPLY_LIMIT;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use onions::lookup::Policy;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;
use testkit::line::lookup_request;
use testkit::records::Maker;
use testkit::XorShift;

/// One connection of the polled load.
struct Client {
    stream: TcpStream,
    rng: XorShift,
    /// Bytes read and not yet a whole line.
    buf: Vec<u8>,
    /// Requests sent so far.
    sent: usize,
    /// The name of the request in flight.
    asked: String,
}

impl Client {
    fn connect(addr: SocketAddr, seed: u64) -> Client {
        let std = std::net::TcpStream::connect(addr)
            .unwrap_or_else(|e| panic!("cannot connect to the mirror at {addr}: {e}"));
        std.set_nodelay(true).expect("TCP_NODELAY");
        std.set_nonblocking(true).expect("non-blocking socket");
        Client {
            stream: TcpStream::from_std(std),
            rng: XorShift::new(seed),
            buf: Vec::with_capacity(4096),
            sent: 0,
            asked: String::new(),
        }
    }

    /// Sends the next lookup of a random name among `records`. A request
    /// is a hundred bytes and the socket holds no other, so it is written
    /// whole at once.
    fn send_next(&mut self, records: usize) {
        self.asked = Maker::name(self.rng.below(records));
        let line = lookup_request(self.sent as u64, &self.asked).to_line();
        match self.stream.write(&line) {
            Ok(n) if n == line.len() => self.sent += 1,
            other => panic!("lookup of {}: short or failed write: {other:?}", self.asked),
        }
    }

    /// Reads what the socket holds; the whole replies it completes.
    fn read_replies(&mut self) -> Vec<Vec<u8>> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the mirror closed a lookup connection"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("lookup of {}: read failed: {e}", self.asked),
            }
        }
        let mut lines = Vec::new();
        while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
            lines.push(self.buf.drain(..=end).collect());
        }
        lines
    }
}

/// `lookups` lookups of random names among `records`, spread over `conns`
/// connections driven by this one thread; returns (lookups, seconds).
pub fn run(
    addr: SocketAddr,
    records: usize,
    (conns, lookups): (usize, usize),
    seed: u64,
    policy: &Policy,
    decode_every: usize,
) -> (u64, f64) {
    let per_conn = lookups / conns;
    let mut poll = Poll::new().expect("a poll");
    let mut clients: Vec<Client> = (0..conns)
        .map(|t| Client::connect(addr, seed * conns as u64 + t as u64))
        .collect();
    for (t, client) in clients.iter_mut().enumerate() {
        poll.registry()
            .register(&mut client.stream, Token(t), Interest::READABLE)
            .expect("register a lookup connection");
    }
    let start = Instant::now();
    for client in &mut clients {
        client.send_next(records);
    }
    let mut done = 0;
    let mut answered = 0u64;
    let mut events = Events::with_capacity(conns);
    while done < conns {
        poll.poll(&mut events, Some(REPLY_LIMIT))
            .expect("poll the lookup connections");
        assert!(
            !events.is_empty(),
            "no lookup answered within {REPLY_LIMIT:?}"
        );
        for event in &events {
            let client = &mut clients[event.token().0];
            for line in client.read_replies() {
                let n = client.sent - 1;
                check_answer(&line, n, &client.asked, policy, decode_every);
                answered += 1;
                if client.sent < per_conn {
                    client.send_next(records);
                } else {
                    done += 1;
                }
            }
        }
    }
    (answered, start.elapsed().as_secs_f64())
}
