//! Witnesses (PROTOCOL.md §11) on 127.0.0.x: a Quorum, three witnesses
//! and a mirror that collects two cosignatures, clients that require two.
//!
//! - answers carry heads with two trusted cosignatures and clients accept
//!   them; with one witness left, answers go stale and clients say why;
//! - with the Quorum stopped for longer than the head age limit, lookups
//!   keep working on the witnesses' fresh cosignatures; a put waits for it;
//! - a Quorum that hands a live name to another key: the witness refuses to
//!   cosign and writes evidence that `onions-hs evidence` accepts;
//! - a witness killed with SIGKILL while heads stream in never cosigns two
//!   conflicting heads (every cosignature it ever sent is recorded);
//! - an equivocating Quorum (a liar with its key showing one witness a
//!   split view): the minority head never gathers two cosignatures, no
//!   client accepts an answer under it, and evidence files appear where
//!   both heads were seen.

mod answers;
mod equivocation;
mod evidence;
mod handover;
mod killed_witness;
mod network;
mod recorder;

use std::time::Duration;

/// How long replication and cosigning may take.
const LIMIT: Duration = Duration::from_secs(30);

// At the crate root, so that a liar started as `liar_process --exact`
// finds it by that very name.
testkit::liar_entry!();
