//! The counters `status` reports: [`Stats`], updated by whoever knows
//! them, and [`Timings`], how long heads take. Plain atomics (and one
//! small lock for a mirror's alarm), read without stopping anyone.

use crate::wire::HeadTiming;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Counters the status reply reports, updated by whoever knows them.
#[derive(Debug, Default)]
pub struct Stats {
    /// Current subscribers.
    pub subscribers: AtomicUsize,
    /// Whether a mirror's upstream session is up.
    pub upstream_connected: AtomicBool,
    /// Why a mirror does not replicate from its upstream (it is behind
    /// this mirror), for status.
    pub upstream_alarm: Mutex<Option<String>>,
    /// The highest seq the upstream said it holds.
    pub upstream_seq: AtomicU64,
    /// When (Unix seconds) the mirror last held everything its upstream
    /// had.
    pub caught_up_at: AtomicU64,
    /// When (Unix seconds) the server started.
    pub started: AtomicU64,
    /// Open connections.
    pub connections: AtomicUsize,
    /// Request lines handed to the worker pool and not yet taken by a
    /// worker; `--worker-queue` bounds it.
    pub queued_lines: AtomicUsize,
}

/// How long heads take, for status and the benchmarks: at the Quorum from a
/// decided batch to its head signed and durable, at a mirror the audit of a
/// pushed head (its root recomputed and compared).
#[derive(Debug, Default)]
pub struct Timings {
    /// Heads timed.
    count: AtomicU64,
    /// Their microseconds, summed.
    total_us: AtomicU64,
    /// The longest, in microseconds.
    max_us: AtomicU64,
}

impl Timings {
    /// Counts one head that took `took`.
    pub fn record(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total_us.fetch_add(micros, Ordering::Relaxed);
        self.max_us.fetch_max(micros, Ordering::Relaxed);
    }

    /// What status reports.
    pub fn report(&self) -> HeadTiming {
        HeadTiming {
            count: self.count.load(Ordering::Relaxed),
            total_us: self.total_us.load(Ordering::Relaxed),
            max_us: self.max_us.load(Ordering::Relaxed),
        }
    }
}

/// Marks the upstream flag; a helper so call sites read as sentences.
pub fn set_upstream_connected(stats: &Stats, connected: bool) {
    stats.upstream_connected.store(connected, Ordering::Relaxed);
}
