//! A SOCKS5 client (RFC 1928) for reaching servers through Tor.
//!
//! Only what Tor needs: no authentication, CONNECT, and the target given as
//! a host name so that Tor (not this machine) resolves it; that is what
//! lets a Quorum or mirror be a `.onion` address and keeps names out of
//! local DNS. Not a general proxy library.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Why a SOCKS connection failed.
#[derive(Debug)]
pub enum SocksError {
    /// Nothing answers at the proxy address.
    Unreachable(SocketAddr, io::Error),
    /// The connection to the proxy broke or timed out.
    Io(io::Error),
    /// The proxy is not a SOCKS5 proxy that allows no-auth.
    Handshake(&'static str),
    /// The proxy refused the CONNECT, with RFC 1928's reply code.
    Refused(u8),
    /// The host name is longer than SOCKS5's 255 bytes.
    HostTooLong,
}

impl fmt::Display for SocksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocksError::Unreachable(proxy, e) => write!(
                f,
                "Tor's SOCKS port {proxy} does not answer ({e}); is tor running? (--socks sets the port)"
            ),
            SocksError::Io(e) => write!(f, "{e}"),
            SocksError::Handshake(why) => write!(f, "SOCKS5 handshake failed: {why}"),
            SocksError::Refused(code) => write!(f, "Tor could not connect: {}", reply_text(*code)),
            SocksError::HostTooLong => write!(f, "host name is longer than 255 bytes"),
        }
    }
}

impl std::error::Error for SocksError {}

impl From<io::Error> for SocksError {
    fn from(e: io::Error) -> Self {
        SocksError::Io(e)
    }
}

/// RFC 1928 reply codes in words (Tor uses 1, 4, 5, 6 and its own 0xF0+).
fn reply_text(code: u8) -> &'static str {
    match code {
        1 => "general failure (circuit or descriptor problem)",
        2 => "not allowed by the ruleset",
        3 => "network unreachable",
        4 => "host unreachable (onion service not found or offline?)",
        5 => "connection refused by the destination",
        6 => "TTL expired (timed out)",
        7 => "command not supported",
        8 => "address type not supported",
        0xf0..=0xf7 => "onion service unreachable or its descriptor is missing",
        _ => "unknown SOCKS error",
    }
}

/// Connects to `host:port` through the SOCKS5 proxy at `proxy`.
pub fn connect(
    proxy: SocketAddr,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, SocksError> {
    let host_len = u8::try_from(host.len()).map_err(|_| SocksError::HostTooLong)?;
    let mut stream = TcpStream::connect_timeout(&proxy, timeout)
        .map_err(|e| SocksError::Unreachable(proxy, e))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(&[5, 1, 0])?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice)?;
    if choice[0] != 5 {
        return Err(SocksError::Handshake("the proxy does not speak SOCKS5"));
    }
    if choice[1] != 0 {
        return Err(SocksError::Handshake("the proxy wants authentication"));
    }
    let mut request = vec![5, 1, 0, 3, host_len];
    request.extend_from_slice(host.as_bytes());
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request)?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head)?;
    if head[0] != 5 {
        return Err(SocksError::Handshake("malformed reply"));
    }
    if head[1] != 0 {
        return Err(SocksError::Refused(head[1]));
    }
    let skip = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len)?;
            usize::from(len[0]) + 2
        }
        _ => return Err(SocksError::Handshake("unknown address type in reply")),
    };
    let mut bound = vec![0u8; skip];
    stream.read_exact(&mut bound)?;
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(None)?;
    Ok(stream)
}
