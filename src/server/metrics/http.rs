//! The `metrics` thread's HTTP side: a non-blocking std listener polled
//! every [`POLL`], one connection at a time, a request head read within
//! [`READ_LIMIT`] and [`REQUEST_LIMIT`], [`route`] deciding between the
//! scrape, 404 and 400, and a refused client's input drained before the
//! close. Also the check that `--metrics` is not the protocol's address.

use super::exposition::CONTENT_TYPE;
use super::render;
use crate::server::shared::Shared;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// How often the listener is polled, and so how soon the thread stops.
pub const POLL: Duration = Duration::from_millis(100);
/// Longest time a client may take to send its request.
pub const READ_LIMIT: Duration = Duration::from_secs(2);
/// Longest request (request line and headers), in bytes.
pub const REQUEST_LIMIT: usize = 8192;
/// Longest time a reply may take to write.
const WRITE_LIMIT: Duration = Duration::from_secs(5);
/// After refusing a request, how long unread input is drained so the
/// close is orderly (a close with unread input resets the connection and
/// can destroy the reply).
const LINGER: Duration = Duration::from_secs(1);
/// Most bytes drained while lingering.
const LINGER_BYTES: usize = 1 << 20;

/// What to answer an HTTP request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics`: the scrape.
    Metrics,
    /// Another path: 404.
    NotFound,
    /// Not GET, a malformed request line, or over the limit: 400, and why.
    Bad(&'static str),
}

/// Reads a request line (without its line end) and decides the answer.
pub fn route(line: &[u8]) -> Route {
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::Bad("the request line is not text");
    };
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Route::Bad("a request line is METHOD TARGET HTTP/VERSION");
    };
    if !version.starts_with("HTTP/1.") || version.len() != "HTTP/1.1".len() {
        return Route::Bad("only HTTP/1.x is served");
    }
    if !target.starts_with('/') || target.chars().any(|c| c.is_ascii_control()) {
        return Route::Bad("the target is not a path");
    }
    if method != "GET" {
        return Route::Bad("only GET is served");
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path == "/metrics" {
        Route::Metrics
    } else {
        Route::NotFound
    }
}

/// What a client sent, read within the limits.
enum Received {
    /// The request line and headers, up to the blank line (or the end of
    /// input, or the time limit).
    Head(Vec<u8>),
    /// More than [`REQUEST_LIMIT`] bytes before the blank line.
    TooLong,
}

/// Reads a request head: until the blank line after the headers, the
/// peer's end of input, [`REQUEST_LIMIT`] or [`READ_LIMIT`].
fn read_head(stream: &mut TcpStream) -> io::Result<Received> {
    let deadline = Instant::now() + READ_LIMIT;
    let mut head = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        if head.len() > REQUEST_LIMIT {
            return Ok(Received::TooLong);
        }
        if header_end(&head) {
            return Ok(Received::Head(head));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || crate::signals::stop_requested() {
            return Ok(Received::Head(head));
        }
        stream.set_read_timeout(Some(left.min(POLL)))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(Received::Head(head)),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if crate::server::read_again(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// True once `head` holds the blank line that ends a request's headers.
fn header_end(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

/// A whole HTTP/1.1 response that closes the connection.
pub(super) fn response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Answers one connection.
fn handle(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    let prepared = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_write_timeout(Some(WRITE_LIMIT)));
    if let Err(e) = prepared {
        log::warn!("metrics: {peer}: {e}");
        return;
    }
    let head = match read_head(&mut stream) {
        Ok(head) => head,
        Err(e) => {
            log::debug!("metrics: {peer}: read failed: {e}");
            return;
        }
    };
    let route = match head {
        Received::TooLong => Route::Bad("the request is over 8192 bytes"),
        Received::Head(head) if head.is_empty() => {
            log::debug!("metrics: {peer}: closed without a request");
            return;
        }
        Received::Head(head) => match head.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let line = &head[..end];
                route(line.strip_suffix(b"\r").unwrap_or(line))
            }
            None => Route::Bad("the request line did not end"),
        },
    };
    let (reply, refused) = match route {
        Route::Metrics => (response("200 OK", CONTENT_TYPE, &render(shared)), false),
        Route::NotFound => (
            response(
                "404 Not Found",
                "text/plain; charset=utf-8",
                "not found: metrics are at /metrics\n",
            ),
            false,
        ),
        Route::Bad(why) => {
            log::info!("metrics: {peer}: bad request: {why}");
            (
                response(
                    "400 Bad Request",
                    "text/plain; charset=utf-8",
                    &format!("bad request: {why}\n"),
                ),
                true,
            )
        }
    };
    if let Err(e) = stream.write_all(&reply) {
        log::debug!("metrics: {peer}: write failed: {e}");
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    if refused {
        linger(&mut stream);
    }
}

/// Reads and discards what a refused client still sends, until it closes,
/// [`LINGER`] passes or [`LINGER_BYTES`] arrive, so that closing does not
/// reset the connection under the reply.
fn linger(stream: &mut TcpStream) {
    let deadline = Instant::now() + LINGER;
    let mut drained = 0;
    let mut chunk = [0u8; 8192];
    while drained <= LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left.min(POLL))).is_err() {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => drained += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if crate::signals::stop_requested() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Why metrics cannot be served at the `--metrics` address.
#[derive(Debug)]
pub enum MetricsAddrError {
    /// Port 0: a port must be given.
    NoPort(SocketAddr),
    /// The protocol's own address (`--listen`): use another port.
    SameAsListen {
        /// The `--metrics` address.
        metrics: SocketAddr,
        /// The `--listen` address.
        listen: SocketAddr,
    },
    /// The address cannot be listened on.
    Bind(SocketAddr, io::Error),
    /// The listener cannot be made non-blocking.
    Setup(SocketAddr, io::Error),
}

impl fmt::Display for MetricsAddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsAddrError::NoPort(metrics) => write!(f, "--metrics {metrics}: give a port"),
            MetricsAddrError::SameAsListen { metrics, listen } => write!(
                f,
                "--metrics {metrics}: that is the protocol's address (--listen {listen}); serve metrics on another port"
            ),
            MetricsAddrError::Bind(addr, e) => write!(f, "cannot listen on --metrics {addr}: {e}"),
            MetricsAddrError::Setup(addr, e) => write!(f, "--metrics {addr}: {e}"),
        }
    }
}

impl std::error::Error for MetricsAddrError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MetricsAddrError::Bind(_, e) | MetricsAddrError::Setup(_, e) => Some(e),
            _ => None,
        }
    }
}

/// Checks a `--metrics` address against the protocol's `--listen`: never
/// the same port on the same address, or on a wildcard address that
/// covers the other.
pub fn check_addr(metrics: SocketAddr, listen: SocketAddr) -> Result<(), MetricsAddrError> {
    if metrics.port() == 0 {
        return Err(MetricsAddrError::NoPort(metrics));
    }
    let overlaps = metrics.ip() == listen.ip()
        || metrics.ip().is_unspecified()
        || listen.ip().is_unspecified();
    if metrics.port() == listen.port() && overlaps {
        return Err(MetricsAddrError::SameAsListen { metrics, listen });
    }
    Ok(())
}

/// Binds the metrics listener, non-blocking so that [`serve`] can poll it.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, MetricsAddrError> {
    let listener = TcpListener::bind(addr).map_err(|e| MetricsAddrError::Bind(addr, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| MetricsAddrError::Setup(addr, e))?;
    Ok(listener)
}

/// Answers scrapes on `listener` until a stop is requested.
pub fn serve(listener: TcpListener, shared: &Shared) {
    while !crate::signals::stop_requested() {
        match listener.accept() {
            Ok((stream, peer)) => handle(stream, peer, shared),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of descriptors or similar: try again shortly.
                log::warn!("metrics: accept failed: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
    log::debug!("metrics: stopped");
}
