//! What survives a crash, and how the servers find each other again.
//!
//! The servers promise that a record is on disk (fsync) before the Quorum
//! answers `accepted` and before a mirror counts it as applied, that a torn
//! or corrupt log tail is cut off and logged rather than kept, and that a
//! mirror keeps serving what it has while it reconnects to its upstream
//! with growing backoff. protocol.md §10.4 adds that a head is durable
//! before anyone sees it and that heads never go back, not even across a
//! crash. These tests hold the real programs to that:
//!
//! - the Quorum is killed with SIGKILL while four clients stream claims at
//!   it; after a restart every answered claim is still there with the very
//!   seq it was given, proven against the head in the answer, the seqs have
//!   no gap, the Quorum's head is not below any head it had pushed before
//!   the kill, the next claim continues the sequence, and a mirror chain
//!   (127.0.0.2, and a mirror of it on 127.0.0.3) reconnects and converges
//!   on the same seq, live set, and head root and size;
//! - a mirror is killed with SIGKILL while it replicates; after a restart it
//!   answers again with a head not below the one it answered with before,
//!   still holds everything it had reported applied, and catches up with
//!   the claims made while it was down, ending on the Quorum's root;
//! - a mirror that comes back after a long absence (here: a new one) copies
//!   a backlog larger than one catch-up batch completely;
//! - a log whose last record entry was cut short, or had a byte flipped, is
//!   cut back to the last sound entry with a warning; the server serves the
//!   entries before it (and proves the lost one absent), and the lost seq
//!   is handed out again;
//! - a mirror whose upstream is down keeps retrying with growing waits,
//!   answers lookups from its own log and its last head meanwhile, and
//!   replicates once the upstream is back.
//!
//! Real `onions-server` processes on loopback, real sockets, real files;
//! every wait is bounded and every process is stopped by its PID.

mod checks;
mod claims;
mod mirrors;
mod quorum_killed;
mod torn_tail;
mod upstream_down;

use std::time::Duration;

const QUORUM_IP: &str = "127.0.0.1";
const MIRROR_IP: &str = "127.0.0.2";
const SUB_MIRROR_IP: &str = "127.0.0.3";

/// Flags that make servers notice a lost peer within seconds.
const QUICK: &[&str] = &["--upstream-silence", "3", "--heartbeat", "1"];

/// How long replication may take to converge after a restart.
const CONVERGE_LIMIT: Duration = Duration::from_secs(20);

/// The fill byte of these tests' owner keys
/// ([`testkit::servers::owner_key`]), no other test file's.
const KEYS: u8 = 0x5a;
