//! How a tool reaches a server, and one request/reply exchange over it.
//!
//! A [`Route`] is either Tor's SOCKS port (the default everywhere: servers
//! are usually onion services, and going direct would reveal who asks) or a
//! direct TCP connection, which a person must ask for. [`exchange`] sends one
//! request and reads one reply line, bounded in size and time, as
//! PROTOCOL.md §7 describes; [`crate::wire`] encodes and decodes them.

use crate::tor::socks;
use crate::wire::{DecodeError, Reply, Request, MAX_REPLY_LINE};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Tor's usual SOCKS port on the local machine.
pub const DEFAULT_SOCKS: &str = "127.0.0.1:9050";

/// Which way to reach a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Through Tor's SOCKS5 port at this address.
    Socks(SocketAddr),
    /// Straight over TCP (tests and local setups only).
    Direct,
}

/// A server address as `HOST:PORT`, where HOST may be a .onion name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Why a server address is not `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointError {
    /// No colon.
    NotHostPort(String),
    /// The port is not 1-65535.
    Port(String),
    /// Nothing before the colon.
    EmptyHost(String),
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::NotHostPort(text) => write!(f, "{text:?} is not HOST:PORT"),
            EndpointError::Port(text) => write!(f, "{text:?}: port must be 1-65535"),
            EndpointError::EmptyHost(text) => write!(f, "{text:?}: host is empty"),
        }
    }
}

impl std::error::Error for EndpointError {}

impl Endpoint {
    /// Parses `HOST:PORT`.
    pub fn parse(text: &str) -> Result<Endpoint, EndpointError> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| EndpointError::NotHostPort(text.to_owned()))?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| EndpointError::Port(text.to_owned()))?;
        if host.is_empty() {
            return Err(EndpointError::EmptyHost(text.to_owned()));
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// How long to wait for a Quorum or mirror, per step. Generous, since a
/// first connection to an onion service can take tens of seconds.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(120);

/// Why an exchange with a server failed.
#[derive(Debug)]
pub enum TransportError {
    /// Connecting (directly or through Tor) failed.
    Connect(String),
    /// The connection broke or timed out.
    Io(io::Error),
    /// The server closed the connection without replying.
    Closed,
    /// The reply was longer than [`MAX_REPLY_LINE`].
    BadReply(String),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Connect(why) => write!(f, "cannot connect: {why}"),
            TransportError::Io(e) => write!(f, "connection failed: {e}"),
            TransportError::Closed => write!(f, "the server closed the connection without a reply"),
            TransportError::BadReply(why) => write!(f, "the server sent a bad reply: {why}"),
        }
    }
}

impl std::error::Error for TransportError {}

impl From<io::Error> for TransportError {
    fn from(e: io::Error) -> Self {
        TransportError::Io(e)
    }
}

/// Opens a connection to `endpoint` along `route`.
pub fn connect(
    endpoint: &Endpoint,
    route: Route,
    timeout: Duration,
) -> Result<TcpStream, TransportError> {
    match route {
        Route::Socks(proxy) => socks::connect(proxy, &endpoint.host, endpoint.port, timeout)
            .map_err(|e| TransportError::Connect(format!("{endpoint} through Tor: {e}"))),
        Route::Direct => {
            let addrs = (endpoint.host.as_str(), endpoint.port)
                .to_socket_addrs()
                .map_err(|e| TransportError::Connect(format!("{endpoint}: {e}")))?;
            let mut last = None;
            for addr in addrs {
                match TcpStream::connect_timeout(&addr, timeout) {
                    Ok(stream) => return Ok(stream),
                    Err(e) => last = Some(e),
                }
            }
            Err(TransportError::Connect(match last {
                Some(e) => format!("{endpoint}: {e}"),
                None => format!("{endpoint}: no address"),
            }))
        }
    }
}

/// Sends one request and reads one reply line (without its newline).
pub fn exchange(
    stream: &mut TcpStream,
    request: &Request,
    timeout: Duration,
) -> Result<Vec<u8>, TransportError> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(&request.to_line())?;
    let mut reply = Vec::new();
    BufReader::new(Read::by_ref(stream).take(MAX_REPLY_LINE as u64 + 1))
        .read_until(b'\n', &mut reply)?;
    if reply.is_empty() {
        return Err(TransportError::Closed);
    }
    if reply.pop() != Some(b'\n') {
        return Err(TransportError::BadReply(format!(
            "no complete line within {MAX_REPLY_LINE} bytes"
        )));
    }
    Ok(reply)
}

/// Why a request to a server gave no reply to use.
#[derive(Debug)]
pub enum RequestError {
    /// The server could not be reached, or its reply was unreadable.
    Transport(TransportError),
    /// The reply is not a well-formed message.
    Malformed(DecodeError),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Transport(e) => e.fmt(f),
            RequestError::Malformed(e) => write!(f, "the server sent a bad reply: {e}"),
        }
    }
}

impl std::error::Error for RequestError {}

/// Sends one request to `server` along `route` and returns its reply,
/// whatever its type (an `error` reply included). `timeout` bounds the
/// connection and each read and write.
pub fn request(
    server: &Endpoint,
    route: Route,
    message: &Request,
    timeout: Duration,
) -> Result<Reply, RequestError> {
    let mut stream = connect(server, route, timeout).map_err(RequestError::Transport)?;
    let line = exchange(&mut stream, message, timeout).map_err(RequestError::Transport)?;
    Reply::parse(&line).map_err(RequestError::Malformed)
}
