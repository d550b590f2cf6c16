//! [`Snapshot`]: everything one scrape shows, read at once from the
//! counters, the store, `Stats`, a mirror's upstream and audit, and a
//! witness's report. Plain values, so the text can be written (and
//! tested) without a running server.

use crate::clock;
use crate::server::shared::Shared;
use crate::store::LatencySnapshot;
use crate::wire::{ServerRole, CODES};
use std::sync::atomic::{AtomicU64, Ordering};

/// A mirror's upstream, as scraped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpstreamSnapshot {
    /// Whether the upstream session is up.
    pub connected: bool,
    /// Records the upstream holds that this mirror does not.
    pub lag_records: u64,
    /// Seconds since the mirror last held everything (0 when it does).
    pub lag_secs: u64,
}

/// A mirror's audit, as scraped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditSnapshot {
    /// Heads audited since start.
    pub checked: u64,
    /// Of those, how many did not match.
    pub mismatches: u64,
    /// Whether it holds evidence of two conflicting heads.
    pub evidence: bool,
}

/// Everything one scrape shows, read at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Quorum or mirror.
    pub role: ServerRole,
    /// When (Unix seconds) the server started.
    pub started: u64,
    /// Lookups by [`Lookup`](super::Lookup) (in `Lookup::ALL` order).
    pub lookups: [u64; 4],
    /// Reverse lookups by [`Lookup`](super::Lookup), in the same order.
    pub reverses: [u64; 4],
    /// Puts: accepted, then refused by code.
    pub puts: [u64; CODES.len() + 1],
    /// `error` replies by code.
    pub errors: [u64; CODES.len()],
    /// Open connections.
    pub connections: u64,
    /// Current subscribers.
    pub subscribers: u64,
    /// Subscribers dropped for a full queue.
    pub subscribers_dropped: u64,
    /// Highest seq in the log.
    pub seq: u64,
    /// The head's seq and time: the Quorum's newest, a mirror's current.
    pub head: Option<(u64, u64)>,
    /// Names whose newest record has not expired.
    pub live_records: u64,
    /// At a mirror, its upstream.
    pub upstream: Option<UpstreamSnapshot>,
    /// The store's fsyncs.
    pub fsync: LatencySnapshot,
    /// At a mirror, its audit.
    pub audit: Option<AuditSnapshot>,
    /// At a witness, cosignatures made and heads refused since start.
    pub witness: Option<(u64, u64)>,
}

/// Reads every counter of an array at once.
pub(super) fn load<const N: usize>(counters: &[AtomicU64; N]) -> [u64; N] {
    std::array::from_fn(|i| counters[i].load(Ordering::Relaxed))
}

impl Snapshot {
    /// Reads everything `shared` holds. Locks the audit and a witness's
    /// report one at a time, briefly, as status does.
    pub fn of(shared: &Shared) -> Snapshot {
        let metrics = &shared.metrics;
        let stats = &shared.stats;
        let store = &shared.store;
        let role = shared.role();
        let head = match role {
            ServerRole::Quorum => store.newest_head(),
            ServerRole::Mirror => store.current_head(),
        };
        let upstream = shared.upstream.as_ref().map(|_| {
            let (lag_records, lag_secs) = shared.upstream_lag();
            UpstreamSnapshot {
                connected: stats.upstream_connected.load(Ordering::Relaxed),
                lag_records,
                lag_secs,
            }
        });
        let audit = shared.audit.as_ref().map(|audit| {
            let audit = audit.lock();
            AuditSnapshot {
                checked: audit.checked(),
                mismatches: audit.mismatches(),
                evidence: audit.holds_evidence(),
            }
        });
        let witness = shared.witness.as_ref().map(|report| {
            let report = report.lock();
            (report.made, report.refused)
        });
        Snapshot {
            role,
            started: stats.started.load(Ordering::Relaxed),
            lookups: load(&metrics.lookups),
            reverses: load(&metrics.reverses),
            puts: load(&metrics.puts),
            errors: load(&metrics.errors),
            connections: stats.connections.load(Ordering::Relaxed) as u64,
            subscribers: stats.subscribers.load(Ordering::Relaxed) as u64,
            subscribers_dropped: metrics.subscribers_dropped.load(Ordering::Relaxed),
            seq: store.seq(),
            head: head.map(|h| (h.seq, h.time)),
            live_records: store.live_count(clock::now()) as u64,
            upstream,
            fsync: store.fsync_latency(),
            audit,
            witness,
        }
    }
}
