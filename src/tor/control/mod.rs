//! A synchronous client for Tor's control port (control-spec §2–4).
//!
//! [`ControlConnection`] connects over TCP or a Unix socket, authenticates
//! ([`Auth`]: SAFECOOKIE, COOKIE, a password, or none), and sends one
//! command at a time. A reader thread owns the socket's read side: it
//! assembles reply lines (`250-` mid lines, `250+` data blocks ending in
//! `.`, the `250 ` end line) into [`Reply`]s, hands replies to the waiting
//! command, and sends asynchronous `6xx` messages to an event channel as
//! [`Event`]s (STREAM events parsed into [`StreamEvent`]). A line it does not
//! understand is logged and skipped; only a broken socket ends it.
//!
//! The client daemon's safety net lives here too, because a cleanup command
//! needs it as much as the daemon: [`ControlConnection::guard_tor_names`]
//! maps every `.tor` name to an invalid onion name, so that Tor fails a
//! `.tor` stream locally whenever no controller redirected it, and
//! [`ControlConnection::hand_back_streams`] undoes `__LeaveStreamsUnattached`
//! and attaches every stream still waiting for a controller.
//!
//! Inside, `address` and `auth` say where Tor listens and how to log in,
//! `error` holds every failure, `reply` and `event` what Tor sends,
//! `quoting` the protocol's text, `socket` the socket and the reader
//! thread, `connection` the connection itself, with its authentication in
//! `handshake` and its commands in `commands`. Everything public is
//! re-exported here, so `onions::tor::control::X` is the one path to it.

use std::time::Duration;

mod address;
mod auth;
mod commands;
mod connection;
mod error;
mod event;
mod handshake;
mod quoting;
mod reply;
mod socket;
#[cfg(test)]
mod tests;

pub use address::ControlAddr;
pub use auth::{Auth, AuthMethod, ProtocolInfo};
pub use commands::{is_tor_target, HandBack};
pub use connection::ControlConnection;
pub use error::ControlError;
pub use event::{Event, StreamEntry, StreamEvent, StreamId, StreamStatus};
pub use quoting::{quote, unquote, ParseError};
pub use reply::{Reply, ReplyLine};

/// Tor's usual control port on the local machine.
pub const DEFAULT_CONTROL: &str = "127.0.0.1:9051";

/// How long a command waits for its reply.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest line accepted from Tor; a longer one ends the connection.
pub const MAX_LINE_BYTES: u64 = 1024 * 1024;

/// The wildcard that [`ControlConnection::guard_tor_names`] maps: every
/// `.tor` name and `tor` itself.
pub const GUARD_FROM: &str = "*.tor";

/// Where the guard sends `.tor` names: not a valid v3 onion name, so Tor
/// refuses the stream itself (`REASON=TORPROTOCOL`) without a circuit.
pub const GUARD_TO: &str = "tor.invalid.onion";

/// CLOSESTREAM reason RESOLVEFAILED: the SOCKS client sees error 4.
pub const REASON_RESOLVEFAILED: u8 = 2;

/// CLOSESTREAM reason MISC.
pub const REASON_MISC: u8 = 1;

const SAFECOOKIE_SERVER_KEY: &[u8] = b"Tor safe cookie authentication server-to-controller hash";
const SAFECOOKIE_CLIENT_KEY: &[u8] = b"Tor safe cookie authentication controller-to-server hash";
const COOKIE_LEN: usize = 32;
const NONCE_LEN: usize = 32;
