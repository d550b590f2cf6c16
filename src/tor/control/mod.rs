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
//! The guard is three wildcards ([`GUARDS_FROM`]), because Tor matches a
//! mapping against the host exactly as the application spelled it. Checked
//! with Tor 0.4.9.11: Tor accepts a host with one trailing dot from a SOCKS
//! client (`example.tor.`, a fully qualified name; two dots are refused at
//! the SOCKS request, `CLOSED ... REASON=SOCKS_PROTOCOL`) and never strips
//! the dot: the NEW and CONTROLLER_WAIT events and `stream-status` show
//! `example.tor.:80`. `*.tor` does not match such a host, and
//! `example.tor.onion.` is not a `.onion` host to Tor (its last label is
//! empty), so Tor does not refuse it either: with `*.tor` alone both wait
//! for an exit circuit under their own names, as any hostname does.
//! `MAPADDRESS *.tor.=tor.invalid.onion` and `*.tor.onion.=...` are
//! accepted (so are the same `MapAddress` lines in torrc), match the name
//! and its subdomains in any case (`www.example.tor.`, `Example.TOR.`, and
//! `tor.` itself), and fail them just as `*.tor` fails `example.tor`: REMAP
//! to `tor.invalid.onion`, then FAILED with TORPROTOCOL on no circuit.
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

/// The wildcard for a `.tor` name written with the trailing dot of a fully
/// qualified name (`example.tor.`, and `tor.`): Tor keeps the dot, so
/// [`GUARD_FROM`] does not match it.
pub const GUARD_FROM_ROOTED: &str = "*.tor.";

/// The wildcard for `NAME.tor.onion.`: with its trailing dot such a host is
/// no `.onion` host to Tor, which would send it to an exit.
pub const GUARD_FROM_ONION_ROOTED: &str = "*.tor.onion.";

/// Every wildcard the guard maps to [`GUARD_TO`]: a `.tor` name in every
/// spelling Tor would otherwise send to an exit. torrc's `MapAddress`
/// lines list the same three.
pub const GUARDS_FROM: [&str; 3] = [GUARD_FROM, GUARD_FROM_ROOTED, GUARD_FROM_ONION_ROOTED];

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
