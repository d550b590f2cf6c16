//! [`ControlAddr`]: where Tor's control port listens, TCP or a Unix socket,
//! parsed from `HOST:PORT`, `unix:/path` or a socket path. A value of its
//! own because a program reads it from flags and `TOR_CONTROL_*` variables
//! well before it connects.

use super::quoting::ParseError;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// Where Tor's control port listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlAddr {
    /// A TCP address (`ControlPort 127.0.0.1:9051`).
    Tcp(SocketAddr),
    /// A Unix socket (`ControlPort unix:/path`, `TOR_CONTROL_IPC_PATH`).
    Unix(PathBuf),
}

impl ControlAddr {
    /// Parses `HOST:PORT`, `unix:/path` or an absolute socket path.
    pub fn parse(text: &str) -> Result<ControlAddr, ParseError> {
        if let Some(path) = text.strip_prefix("unix:") {
            return Ok(ControlAddr::Unix(PathBuf::from(path)));
        }
        if text.starts_with('/') {
            return Ok(ControlAddr::Unix(PathBuf::from(text)));
        }
        let mut addrs = text
            .to_socket_addrs()
            .map_err(|e| ParseError::ControlAddr {
                text: text.to_owned(),
                why: e.to_string(),
            })?;
        addrs
            .next()
            .map(ControlAddr::Tcp)
            .ok_or_else(|| ParseError::NoAddress(text.to_owned()))
    }
}

impl fmt::Display for ControlAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlAddr::Tcp(addr) => write!(f, "{addr}"),
            ControlAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}
