//! The whole system, end to end, on a private Tor network on loopback
//! (`scripts/tornet/start`: three authorities, three relays, a tor for the
//! onion services, a client tor): one story, told in phases that share the
//! one network, since a network takes 15-50 s to start.
//!
//! 1. The network starts; a Quorum (127.0.0.1, `--min-work 4`) and a mirror
//!    (127.0.0.2) run behind onion services of their own, and a lying
//!    mirror (127.0.0.3) behind a third. The servers start first, so that
//!    their ports can be handed to the network; the liar (a process of its
//!    own) denies registered names with forged proofs of absence, and
//!    otherwise replays a genuine answer for another name, `other.tor`,
//!    claimed directly with a key of the test's own, or answers with
//!    records of its own keys.
//! 2. The test page's operator claims `example.tor` (with `www` pointing at
//!    the second service) with the key Tor made for the service, sending the
//!    claim to the Quorum's onion through Tor; the mirror replicates it.
//! 3. `onions-client` attaches to the client tor, asking the lying mirror
//!    first and the honest one second, both through Tor.
//! 4. curl, through the client's SOCKS port with the name sent to Tor,
//!    loads `http://example.tor/` and `http://www.example.tor/`, and the
//!    same names spelled `http://example.tor.onion/` and
//!    `http://www.example.tor.onion/` (PROTOCOL.md §12.6);
//!    `http://unknown.tor/` fails. The liar was asked and set aside; every
//!    redirect went to the honest onions.
//! 5. Headless Firefox ESR, set up as Tor Browser is (SOCKS5 with remote
//!    DNS, no fixups), screenshots `http://example.tor/` and
//!    `http://example.tor.onion/`: the page's green background fills the
//!    picture, not an error page.
//! 6. Leaks: with the daemon up, stopped by SIGTERM, killed with -9 (then
//!    `onions-client --release`), and restarted, a `.tor` fetch either loads
//!    the right page or fails at once inside Tor (the `*.tor` guard), and a
//!    plain `.onion` fetch always works (after `--release`, for the kill -9;
//!    before it, it hangs in CONTROLLER_WAIT: the hang `--release` fixes).
//!    With the daemon stopped and the guard mapping removed too, a
//!    `.tor.onion` fetch still fails at once inside Tor: Tor refuses the
//!    host itself, no mapping and no stream on a circuit.
//!
//! Throughout, a control connection of the test's own records every STREAM
//! event of the client tor: no event ever shows a `.tor` name on a circuit
//! or sent out. Every process is stopped by its PID and every wait is
//! bounded; the test's files are kept (and their place printed) if it fails.
//!
//! The story's phases are in `phases`; `story` holds what they share (the
//! servers, the network, the event log) and the fetches they check,
//! `firefox` the headless browser and its screenshots, `helpers` the rest.

mod clock;
mod env_file;
mod firefox;
mod helpers;
mod phases;
mod story;

use std::time::Duration;

/// Proof of work of both claims, and the Quorum's minimum.
const WORK: &str = "4";

/// The port the Quorum, mirror and liar services listen on as onions.
const SERVICE_PORT: u16 = 10053;

/// The pages' texts and background colours (see scripts/tornet/start).
const TEST_PAGE: &str = "served by the onion service";
const WWW_PAGE: &str = "served by the www onion service";
const TEST_COLOR: &str = "12a05a";
const WWW_COLOR: &str = "2a5db0";

/// Seed of the key that owns other.tor (the liar's genuine answer).
const OTHER: u8 = 3;

/// Seed of the lying mirror's attacker key (see testkit/src/liar/).
const ATTACKER: u8 = 0xa7;

/// How long a fetch that should work may take (the first one through a new
/// onion service builds circuits and fetches descriptors).
const FETCH_LIMIT: Duration = Duration::from_secs(60);

/// A `.tor` fetch while the daemon is away must fail at least this fast:
/// inside Tor, with no circuit.
const LOCAL_FAILURE: Duration = Duration::from_secs(5);

/// How long a stream is watched hanging in CONTROLLER_WAIT.
const HANG_SHOWN: Duration = Duration::from_secs(3);

/// How long an onion service may take to become reachable.
const REACH_LIMIT: Duration = Duration::from_secs(60);

/// How long the mirror may take to replicate a claim.
const REPLICATE_LIMIT: Duration = Duration::from_secs(30);

// At the crate root, so that a liar started as `liar_process --exact`
// finds it by that very name.
testkit::liar_entry!();
