//! What authentication to use ([`Auth`]) and what Tor offers
//! ([`AuthMethod`], [`ProtocolInfo`] parsed from `PROTOCOLINFO 1`): plain
//! values that a program builds from its flags and that the handshake
//! chooses from. The exchange itself is in `handshake`.

use super::quoting::{find, key_values, split_tokens, ParseError};
use super::reply::Reply;
use std::path::PathBuf;

/// How to authenticate to Tor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// HASHEDPASSWORD with this password (decode `TOR_CONTROL_PASSWD`'s hex
    /// first).
    Password(String),
    /// The cookie in this file: SAFECOOKIE when Tor offers it, else COOKIE.
    CookieFile(PathBuf),
    /// SAFECOOKIE with the cookie file Tor names in PROTOCOLINFO, else NULL
    /// (no authentication) when Tor allows it.
    Auto,
}

/// An authentication method of PROTOCOLINFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// No authentication configured.
    Null,
    /// `HashedControlPassword`.
    HashedPassword,
    /// The cookie file's bytes in hex.
    Cookie,
    /// The AUTHCHALLENGE exchange over the cookie.
    SafeCookie,
}

impl AuthMethod {
    /// The name PROTOCOLINFO uses.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Null => "NULL",
            AuthMethod::HashedPassword => "HASHEDPASSWORD",
            AuthMethod::Cookie => "COOKIE",
            AuthMethod::SafeCookie => "SAFECOOKIE",
        }
    }
}

/// What PROTOCOLINFO told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolInfo {
    /// Authentication methods, as Tor spells them (`SAFECOOKIE`, ...).
    pub methods: Vec<String>,
    /// The cookie file, when cookie authentication is on.
    pub cookie_file: Option<PathBuf>,
    /// Tor's version.
    pub tor_version: Option<String>,
}

impl ProtocolInfo {
    /// Whether Tor offers `method`.
    pub fn offers(&self, method: AuthMethod) -> bool {
        self.methods.iter().any(|m| m == method.name())
    }

    /// Parses the reply to `PROTOCOLINFO 1`.
    pub fn from_reply(reply: &Reply) -> Result<ProtocolInfo, ParseError> {
        let mut info = ProtocolInfo {
            methods: Vec::new(),
            cookie_file: None,
            tor_version: None,
        };
        for line in &reply.lines {
            if let Some(rest) = line.text.strip_prefix("AUTH ") {
                let pairs = key_values(&split_tokens(rest)?)?;
                let methods = find(&pairs, "METHODS").unwrap_or_default();
                info.methods = methods.split(',').map(str::to_owned).collect();
                info.cookie_file = find(&pairs, "COOKIEFILE").map(PathBuf::from);
            } else if let Some(rest) = line.text.strip_prefix("VERSION ") {
                let pairs = key_values(&split_tokens(rest)?)?;
                info.tor_version = find(&pairs, "Tor").map(str::to_owned);
            }
        }
        if info.methods.iter().all(String::is_empty) {
            return Err(ParseError::NoAuthMethods);
        }
        Ok(info)
    }
}
