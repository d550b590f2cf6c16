//! Every limit a server enforces, hit on purpose.
//!
//! Every limit has a flag with a sane default (README.md), is logged
//! when hit, and never stops the server from serving everyone else when
//! it is hit. Each test here starts a real `onions-server`
//! with one limit set small, drives real sockets past it, and checks three
//! things: the offending peer gets what the protocol promises (an error
//! line, a close, or a drop), the server's log names the flag, and the
//! server goes on answering:
//!
//! - `--max-message`: a line longer than the limit is `too_large` and
//!   closes its connection; a line exactly at the limit is answered;
//! - `--max-connections`: the connection past the limit gets `busy` and is
//!   closed; once others close, new ones are let in;
//! - `--idle-timeout`: a silent client is closed, a silent subscriber is
//!   not (it gets heartbeats);
//! - `--worker-queue`: a burst of claims that need proof-of-work checks is
//!   partly answered `busy`, never anything else, and nothing is lost;
//! - `--subscriber-queue`: a subscriber that stops reading is dropped while
//!   a healthy mirror keeps up and claims keep being accepted; reconnecting
//!   from its last seq gets it every record;
//! - and no flag at all: a mirror holding 1,000 idle connections while
//!   clients vanish mid-message 200 times stays up and keeps answering.
//!
//! Real processes on 127.0.0.1 (Quorum) and 127.0.0.2 (mirror); every wait
//! and every loop is bounded; every process is stopped by its PID.

mod connections;
mod many_connections;
mod subscriber_queue;
mod wire;
mod worker_queue;

use std::time::Duration;

const QUORUM_IP: &str = "127.0.0.1";
const MIRROR_IP: &str = "127.0.0.2";

/// How long a limit's effect may take to show.
const LIMIT: Duration = Duration::from_secs(20);

/// The fill byte of these tests' owner keys
/// ([`testkit::servers::owner_key`]), no other test file's.
const KEYS: u8 = 0xa5;
