//! A line-protocol client for the benchmarks: large buffers, no Nagle, a
//! bounded wait for each line, and errors as values (a benchmark decides
//! what a failed reply means). The tests' client that fails the test on any
//! error is [`crate::servers::Client`].

use onions::name::LookupName;
use onions::wire::{Id, Push, Reply, Request, Status};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A connection speaking the line protocol.
pub struct LineConn {
    reader: BufReader<TcpStream>,
    line: Vec<u8>,
    reply_limit: Duration,
}

impl LineConn {
    /// Connects to `addr`; each line may then take up to `reply_limit`.
    pub fn connect(addr: SocketAddr, reply_limit: Duration) -> LineConn {
        LineConn::try_connect(addr, Duration::from_secs(5), reply_limit)
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
    }

    /// Connects to `addr`, waiting at most `timeout` for the connection.
    pub fn try_connect(
        addr: SocketAddr,
        timeout: Duration,
        reply_limit: Duration,
    ) -> Result<LineConn, String> {
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(reply_limit))
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(LineConn {
            reader: BufReader::with_capacity(64 * 1024, stream),
            line: Vec::with_capacity(4096),
            reply_limit,
        })
    }

    /// A second handle on the socket, to shut it down from elsewhere.
    pub fn handle(&self) -> TcpStream {
        self.reader.get_ref().try_clone().expect("clone a socket")
    }

    /// Sends raw bytes.
    pub fn try_send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.reader
            .get_mut()
            .write_all(bytes)
            .map_err(|e| format!("send to server: {e}"))
    }

    /// Sends raw bytes; a failure fails the caller.
    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes).unwrap_or_else(|e| panic!("{e}"));
    }

    /// The next line, without its newline.
    pub fn read_line(&mut self) -> Result<&[u8], String> {
        self.line.clear();
        match self.reader.read_until(b'\n', &mut self.line) {
            Ok(0) => Err("the server closed the connection".into()),
            Ok(_) if self.line.last() == Some(&b'\n') => {
                self.line.pop();
                Ok(&self.line)
            }
            Ok(_) => Err("the server closed the connection mid-line".into()),
            Err(e) => Err(format!("no line within {:?}: {e}", self.reply_limit)),
        }
    }

    /// The next line as a reply.
    pub fn read_reply(&mut self) -> Result<Reply, String> {
        let line = self.read_line()?;
        reply_of(line)
    }

    /// The next line as a push on a subscription.
    pub fn read_push(&mut self) -> Result<Push, String> {
        let line = self.read_line()?;
        push_of(line)
    }

    /// The next push with the instant its line had been read, before it was
    /// decoded: decoding a record checks its keys, which a benchmark timing
    /// when pushes arrive must not count.
    pub fn read_push_at(&mut self) -> Result<(Push, Instant), String> {
        self.read_line()?;
        let at = Instant::now();
        Ok((push_of(&self.line)?, at))
    }

    /// Sends one request and reads the reply.
    pub fn try_request(&mut self, request: &Request) -> Result<Reply, String> {
        self.try_send(&request.to_line())?;
        self.read_reply()
    }

    /// Sends one request; its reply with the instant the reply's line had
    /// been read, before it was decoded (see [`LineConn::read_push_at`]).
    pub fn request_at(&mut self, request: &Request) -> (Reply, Instant) {
        let timed = self.try_send(&request.to_line()).and_then(|()| {
            self.read_line()?;
            let at = Instant::now();
            Ok((reply_of(&self.line)?, at))
        });
        timed.unwrap_or_else(|e| panic!("{e}"))
    }

    /// The same; a failure fails the caller.
    pub fn request(&mut self, request: &Request) -> Reply {
        self.try_request(request).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Asks for the server's status.
    pub fn try_status(&mut self) -> Result<Status, String> {
        match self.try_request(&Request::Status {
            id: Id::Text("bench".into()),
        })? {
            Reply::Status { status, .. } => Ok(*status),
            other => Err(format!("status answered {other}")),
        }
    }

    /// Subscribes from `from`; returns the `subscribed` seq.
    pub fn subscribe(&mut self, from: u64) -> u64 {
        match self.request(&Request::Subscribe {
            id: Id::Number(1),
            from,
        }) {
            Reply::Subscribed { seq, .. } => seq,
            other => panic!("subscribe refused: {other}"),
        }
    }
}

/// A lookup request for `name` (a name as a person writes it: a valid
/// one, or the caller fails).
pub fn lookup_request(id: u64, name: &str) -> Request {
    Request::Lookup {
        id: Id::Number(id),
        name: LookupName::from_user(name).expect("a valid name"),
    }
}

/// `line` decoded as a reply.
fn reply_of(line: &[u8]) -> Result<Reply, String> {
    Reply::parse(line).map_err(|e| {
        format!(
            "the server sent {:?}, not a reply: {e}",
            String::from_utf8_lossy(line)
        )
    })
}

/// `line` decoded as a push on a subscription.
fn push_of(line: &[u8]) -> Result<Push, String> {
    match Push::parse(line) {
        Ok(Ok(push)) => Ok(push),
        Ok(Err(e)) => Err(format!("the subscription was refused: {e}")),
        Err(e) => Err(format!(
            "the server sent {:?}, not a push: {e}",
            String::from_utf8_lossy(line)
        )),
    }
}
