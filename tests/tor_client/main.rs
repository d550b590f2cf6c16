//! The client daemon, `onions-client`, as a browser bundle runs it: a real
//! tor (no network: one bridge on a closed loopback port), a real Quorum on
//! 127.0.0.1 and mirror on 127.0.0.2 (reached with `--direct`), SOCKS
//! clients asking tor for names, and the daemon's log in a file.
//!
//! What the daemon did is read from Tor itself: a control connection of the
//! test's own subscribes to STREAM events (Tor sends them to every
//! controller that asked) and asks `GETINFO stream-status`. A `.tor` stream
//! redirected to an onion cannot connect without a network, but Tor reports
//! its new target (in `stream-status` while the client waits, and in the
//! CLOSED event when the client hangs up). Tor sends no REMAP event for
//! REDIRECTSTREAM.
//!
//! Whether the daemon handed a stream back (ATTACHSTREAM) shows in Tor's
//! answer to an ATTACHSTREAM of the test's own: 555 "not managed by
//! controller" once the stream left CONTROLLER_WAIT. The daemon handles
//! streams in the order Tor reports them and attaches a non-`.tor` stream
//! before it reads the next event, so once a later stream shows the
//! daemon's work, an earlier one was handled too.
//!
//! The tests, by concern:
//!
//! - `auth`: the ways the daemon authenticates to tor's control port;
//! - `redirects`: registered names, their subdomains and their
//!   `.tor.onion` and trailing-dot spellings are redirected to their
//!   onions, a transferred name to its new one; other streams are handed
//!   straight back;
//! - `refusals`: unknown and invalid names, and DNS resolves of names, are
//!   closed with RESOLVEFAILED;
//! - `restarts`: a tor restart, a SIGTERM, a kill -9 followed by
//!   `--release` or by a new daemon;
//! - `daemon_away`: with the daemon gone, `.tor`, `.tor.onion` and
//!   trailing-dot names fail inside Tor;
//! - `liars`: lying and stale mirrors are never followed.

mod auth;
mod checks;
mod daemon_away;
mod fixtures;
mod liars;
mod redirects;
mod refusals;
mod restarts;

use onions::onion::OnionAddress;
use std::time::Duration;
use testkit::servers::owner;

/// How long a mirror may take to replicate the test's records.
const REPLICATE_LIMIT: Duration = Duration::from_secs(30);

/// Seeds of the service keys: example.tor's owner, its `www` subdomain,
/// other.tor's and third.tor's owners, and the lying mirror's attacker.
const EXAMPLE: u8 = 1;
const WWW: u8 = 2;
const OTHER: u8 = 3;
const THIRD: u8 = 4;
const MOVED: u8 = 5;
const ATTACKER: u8 = 0xa7;

/// A valid v3 onion address that is not a `.tor` name.
const PLAIN_ONION: &str = "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion";

/// The onion address of the service key with `seed`, as Tor writes it.
fn onion_of(seed: u8) -> String {
    OnionAddress::from_key(owner(seed).public()).to_string()
}

// At the crate root, so that a liar started as `liar_process --exact`
// finds it by that very name.
testkit::liar_entry!();
