//! One fetch through Tor's SOCKS port, timed: a raw SOCKS5 CONNECT with
//! the host name left to Tor, then `GET / HTTP/1.1`, from the start of the
//! TCP connect to the first byte of the response; also the lookup a client
//! would do by hand on the mirror's `.onion` before fetching the page; and
//! the samples of one kind of fetch.

use crate::SERVICE_PORT;
use onions::name::LookupName;
use onions::wire::{Id, Reply, Request};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long one fetch may take, in all.
const FETCH_LIMIT: Duration = Duration::from_secs(60);
/// Largest page read.
const MAX_PAGE: u64 = 1 << 20;
/// What the test page (TORNET_ONION) says.
pub const PAGE_TEXT: &str = "served by the onion service";

/// One fetch: time to the page's SOCKS reply and to the first response
/// byte (and, done by hand, to the mirror's reply).
#[derive(Clone, Copy)]
pub struct Fetch {
    /// To the SOCKS reply.
    pub socks: Duration,
    /// To the first byte of the response.
    pub ttfb: Duration,
    /// To the mirror's reply, for a lookup done by hand.
    pub lookup: Option<Duration>,
}

/// A deadline's time left, or an error once it has passed.
fn left(deadline: Instant) -> Result<Duration, String> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("no answer within {FETCH_LIMIT:?}"))
}

/// A SOCKS5 CONNECT to `host:port` through Tor, the host name resolved by
/// Tor.
fn socks_connect(
    proxy: SocketAddr,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect_timeout(&proxy, Duration::from_secs(5))
        .map_err(|e| format!("SOCKS port {proxy}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    let io = |e: std::io::Error| format!("SOCKS: {e}");
    stream.write_all(&[5, 1, 0]).map_err(io)?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).map_err(io)?;
    if choice != [5, 0] {
        return Err(format!("SOCKS: the proxy chose {choice:?}, not no-auth"));
    }
    let len = u8::try_from(host.len()).map_err(|_| format!("{host}: too long for SOCKS"))?;
    let mut request = vec![5, 1, 0, 3, len];
    request.extend_from_slice(host.as_bytes());
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).map_err(io)?;
    stream
        .set_read_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).map_err(io)?;
    if reply[1] != 0 {
        return Err(format!("SOCKS error {} for {host}", reply[1]));
    }
    let rest = match reply[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len).map_err(io)?;
            usize::from(len[0]) + 2
        }
        other => return Err(format!("SOCKS: address type {other} in the reply")),
    };
    let mut bound = vec![0u8; rest];
    stream.read_exact(&mut bound).map_err(io)?;
    Ok(stream)
}

/// GET http://HOST/ through Tor's SOCKS port; checks that the page holds
/// `expect`. Times run from now.
pub fn fetch(proxy: SocketAddr, host: &str, expect: &str) -> Result<Fetch, String> {
    fetch_from(Instant::now(), proxy, host, expect)
}

/// [`fetch`], its times running from `start`.
fn fetch_from(
    start: Instant,
    proxy: SocketAddr,
    host: &str,
    expect: &str,
) -> Result<Fetch, String> {
    let deadline = start + FETCH_LIMIT;
    let mut stream = socks_connect(proxy, host, 80, deadline)?;
    let socks = start.elapsed();
    let get = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(get.as_bytes())
        .map_err(|e| format!("HTTP: {e}"))?;
    stream
        .set_read_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    let mut first = [0u8; 1];
    let n = stream.read(&mut first).map_err(|e| format!("HTTP: {e}"))?;
    let ttfb = start.elapsed();
    if n == 0 {
        return Err("HTTP: closed without a response".into());
    }
    let mut page = first.to_vec();
    stream
        .set_read_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    (&mut stream)
        .take(MAX_PAGE)
        .read_to_end(&mut page)
        .map_err(|e| format!("HTTP: {e}"))?;
    let page = String::from_utf8_lossy(&page);
    if !page.starts_with("HTTP/1.") || !page.contains(expect) {
        return Err(format!(
            "unexpected response: {:?}",
            &page[..page.len().min(200)]
        ));
    }
    Ok(Fetch {
        socks,
        ttfb,
        lookup: None,
    })
}

/// What a client doing the lookup itself would pay at least: ask the
/// mirror's `.onion` for `name` through Tor (one request line, one reply
/// line, which must decode as `found`; not verified), then fetch `http://ONION/`. Times run from the
/// start of the lookup.
pub fn fetch_by_hand(
    proxy: SocketAddr,
    mirror: &str,
    name: &str,
    onion: &str,
) -> Result<Fetch, String> {
    let start = Instant::now();
    let deadline = start + FETCH_LIMIT;
    let stream = socks_connect(proxy, mirror, SERVICE_PORT, deadline)?;
    let request = Request::Lookup {
        id: Id::Number(1),
        name: LookupName::from_user(name).map_err(|e| format!("{name}: {e}"))?,
    };
    (&stream)
        .write_all(&request.to_line())
        .map_err(|e| format!("mirror: {e}"))?;
    stream
        .set_read_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    BufReader::new(&stream)
        .take(onions::wire::MAX_REPLY_LINE as u64)
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("mirror: {e}"))?;
    let lookup = start.elapsed();
    match Reply::parse(&line) {
        Ok(Reply::Found { .. }) => {}
        Ok(other) => return Err(format!("mirror answered {other} for {name}")),
        Err(e) => {
            return Err(format!(
                "mirror sent {:?}: {e}",
                String::from_utf8_lossy(&line)
            ))
        }
    }
    drop(stream);
    let mut fetched = fetch_from(start, proxy, onion, PAGE_TEXT)?;
    fetched.lookup = Some(lookup);
    Ok(fetched)
}

/// Samples of one kind of fetch, and its failures.
#[derive(Default)]
pub struct Series {
    /// The fetches that succeeded.
    pub fetches: Vec<Fetch>,
    /// Why the others failed, host first.
    pub failures: Vec<String>,
}

impl Series {
    /// Records the fetch of `host`: its times, or its failure.
    pub fn add(&mut self, host: &str, result: Result<Fetch, String>) -> Option<Fetch> {
        match result {
            Ok(f) => {
                self.fetches.push(f);
                Some(f)
            }
            Err(e) => {
                self.failures.push(format!("{host}: {e}"));
                None
            }
        }
    }

    /// The times to first byte, ms.
    pub fn ttfb_ms(&self) -> Vec<f64> {
        self.fetches.iter().map(|f| ms(f.ttfb)).collect()
    }

    /// The times to the SOCKS reply, ms.
    pub fn socks_ms(&self) -> Vec<f64> {
        self.fetches.iter().map(|f| ms(f.socks)).collect()
    }

    /// The times to the mirror's reply of the lookups by hand, ms.
    pub fn lookup_ms(&self) -> Vec<f64> {
        self.fetches
            .iter()
            .filter_map(|f| f.lookup.map(ms))
            .collect()
    }
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
