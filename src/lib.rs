//! onions: a naming system for Tor onion services.
//!
//! A person types `example.tor`; the onion service that signed a record for
//! that name, and whose record the Quorum attested, is reached. This crate
//! holds the protocol (names, addresses, records, proof of work,
//! attestations, verification), the pieces the programs share, and the
//! programs' logic; the binaries in `src/bin/` only parse flags and call
//! in. See `ARCHITECTURE.md` for the map.

#![deny(missing_docs)]

pub mod allocator;
pub mod attest;
pub mod backoff;
pub mod canonical;
pub mod cli;
pub mod client;
pub mod clock;
pub mod codec;
pub mod cosign;
pub mod evidence;
pub mod head;
pub mod keys;
pub mod logging;
pub mod lookup;
pub mod merkle;
pub mod name;
pub mod onion;
pub mod operator;
pub mod record;
pub mod server;
pub mod signals;
pub mod status_text;
pub mod store;
pub mod tor;
pub mod transfer;
pub mod transport;
pub mod verify;
pub mod wire;
pub mod work;
