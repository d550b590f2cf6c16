//! Prometheus metrics (`--metrics IP:PORT`): the counters the other
//! threads bump as things happen, the text of one scrape (exposition
//! format 0.0.4), and the small HTTP server that answers `GET /metrics`.
//!
//! Counters are atomics in [`Metrics`], held in [`Shared`]; gauges are read
//! when scraped from what the server already keeps (the store, `Stats`,
//! the audit, a witness's report), so nothing is counted twice. The HTTP
//! side is one thread with a non-blocking std listener polled every
//! [`POLL`], never the protocol's event loop: it answers one connection at
//! a time, each read within [`READ_LIMIT`] and [`REQUEST_LIMIT`] bytes, and
//! stops within a poll of a stop request.
//!
//! Inside, this file holds the counters ([`Metrics`], [`Lookup`]);
//! `snapshot` reads everything one scrape shows at once ([`Snapshot`]),
//! `exposition` writes it as text, and `http` is the listener thread and
//! its requests. Everything public is re-exported here, so
//! `onions::server::metrics::X` is the one path to it.
//!
//! [`Shared`]: super::Shared

use crate::wire::{Code, WireError, CODES};
use std::sync::atomic::{AtomicU64, Ordering};

mod exposition;
mod http;
mod snapshot;
#[cfg(test)]
mod tests;

pub use exposition::render;
pub use http::{
    bind, check_addr, route, serve, MetricsAddrError, Route, POLL, READ_LIMIT, REQUEST_LIMIT,
};
pub use snapshot::{AuditSnapshot, Snapshot, UpstreamSnapshot};

/// What a lookup came to; for a reverse lookup, `Found` is a list of one
/// name or more and `NotFound` an empty one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A record, with its presence proof.
    Found,
    /// An absence proof.
    NotFound,
    /// No head to answer against yet.
    NoHead,
    /// The store failed.
    Error,
}

impl Lookup {
    /// Every result, in the order counted.
    const ALL: [Lookup; 4] = [
        Lookup::Found,
        Lookup::NotFound,
        Lookup::NoHead,
        Lookup::Error,
    ];

    /// The `result` label.
    fn as_str(self) -> &'static str {
        match self {
            Lookup::Found => "found",
            Lookup::NotFound => "not_found",
            Lookup::NoHead => "no_head",
            Lookup::Error => "error",
        }
    }
}

/// Where `code` is counted: its place in [`CODES`].
fn code_index(code: Code) -> usize {
    CODES.iter().position(|c| *c == code).unwrap_or(0)
}

/// Counters bumped where things happen; only atomics, never a lock.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Lookups by [`Lookup`].
    lookups: [AtomicU64; Lookup::ALL.len()],
    /// Reverse lookups by [`Lookup`].
    reverses: [AtomicU64; Lookup::ALL.len()],
    /// Puts: accepted first, then refused by code (in [`CODES`] order).
    puts: [AtomicU64; CODES.len() + 1],
    /// `error` replies by code (in [`CODES`] order).
    errors: [AtomicU64; CODES.len()],
    /// Subscribers dropped for a full queue.
    subscribers_dropped: AtomicU64,
}

impl Metrics {
    /// Counts a lookup's result.
    pub fn lookup(&self, result: Lookup) {
        let i = Lookup::ALL.iter().position(|r| *r == result).unwrap_or(0);
        self.lookups[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a reverse lookup's result.
    pub fn reverse(&self, result: Lookup) {
        let i = Lookup::ALL.iter().position(|r| *r == result).unwrap_or(0);
        self.reverses[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a put answered `accepted` (a repeat of the live record too).
    pub fn put_accepted(&self) {
        self.puts[0].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a put refused with `code`.
    pub fn put_refused(&self, code: Code) {
        self.puts[1 + code_index(code)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an `error` reply with `code`.
    pub fn error(&self, code: Code) {
        self.errors[code_index(code)].fetch_add(1, Ordering::Relaxed);
    }

    /// The `error` reply line of `err`, counted: every error the server
    /// sends goes through here.
    pub fn error_line(&self, err: &WireError) -> Vec<u8> {
        self.error(err.code);
        err.to_line()
    }

    /// Counts a subscriber dropped for a full queue.
    pub fn subscriber_dropped(&self) {
        self.subscribers_dropped.fetch_add(1, Ordering::Relaxed);
    }
}
