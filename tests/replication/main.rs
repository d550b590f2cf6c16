//! Replication, end to end, with real `onions-server` processes: a Quorum on
//! 127.0.0.1, a mirror of it on 127.0.0.2 and a mirror of that mirror on
//! 127.0.0.3, over real sockets and real state directories.
//!
//! The story: an operator puts a record to the Quorum and gets an
//! attestation that verifies against the Quorum's printed key. The record
//! travels down the chain, and every server answers lookups of the name and
//! of its subdomains with the very same record and attestation, proven
//! against the head it answers with, which a client verifies as protocol.md
//! §9 and §10.7 demand; a name nobody registered gets an absence proof
//! against the same head. Every server of the chain stands on a head of
//! the same seq, root and size. An update (same key, higher serial)
//! replaces it everywhere. A mirror that starts late catches up with the
//! newest record of every name and nothing superseded, then the head. A
//! mirror told to trust the wrong key refuses everything, says why and
//! answers `no_head`, while the Quorum carries on. A late mirror of a
//! Quorum holding hundreds of records (some superseded) ends with the same
//! live set and the same head. A record that expires leaves the live set on
//! every server: once a head is signed after its expiry, lookups get an
//! absence proof, a mirror started afterwards keeps it out of its live set
//! too, `status` stops counting it, and another key may claim the name.
//! Finally the operator's own tool, `onions-hs`, claims a name, looks its
//! subdomain up on a mirror and verifies the claim file.

mod catch_up;
mod chain;
mod checks;
mod expiry;
mod onions_hs;
mod wrong_key;

use std::time::Duration;

/// How long replication may take to reach a server.
const REPLICATE_LIMIT: Duration = Duration::from_secs(20);

/// A name nobody registers in these tests.
const UNREGISTERED: &str = "nobody.tor";
