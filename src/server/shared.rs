//! What every thread of a server holds: [`Shared`] (the store, the
//! counters, a mirror's audit, the cosignature book, a witness's report)
//! and the [`Limits`] it enforces, with the helpers the two writer threads
//! (the Quorum's committer, a mirror's upstream thread) call on it.

use super::audit::Audit;
use super::cosigs::Book;
use super::metrics::Metrics;
use super::stats::{Stats, Timings};
use super::witness::report::Report;
use crate::keys::PublicKey;
use crate::store::Store;
use crate::transport::Endpoint;
use crate::wire::ServerRole;
use parking_lot::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The longest time without a new head, and the default of
/// `--head-interval` (PROTOCOL.md §10.4: at least every 60 s).
pub const HEAD_INTERVAL: Duration = Duration::from_secs(60);

/// The default of `--release-cooldown`: a day, long enough that every
/// mirror, witness and client cache has seen a release before anyone else
/// may claim the name (PROTOCOL.md §12.3).
pub const RELEASE_COOLDOWN: u64 = 24 * 60 * 60;

/// Every limit a server enforces. Each is a flag, logged when hit.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest request line, in bytes.
    pub max_message: usize,
    /// Most open connections.
    pub max_connections: usize,
    /// Most jobs waiting for a worker; past it requests get `busy`.
    pub worker_queue: usize,
    /// Most messages waiting to be sent to one subscriber; past it the
    /// subscriber is dropped (it catches up by seq when it returns).
    pub subscriber_queue: usize,
    /// How long a connection that is not a subscriber may stay silent.
    pub idle_timeout: Duration,
    /// Silence after which a subscriber gets a heartbeat.
    pub heartbeat: Duration,
    /// At the Quorum, the longest time between two signed heads.
    pub head_interval: Duration,
    /// At the Quorum, the least time a release must hold its name, in
    /// seconds (PROTOCOL.md §12.3: `expires >= issued + cooldown`).
    pub release_cooldown: u64,
    /// Silence from upstream after which a mirror reconnects.
    pub upstream_silence: Duration,
    /// Heads whose cosignatures are held; the oldest leaves first.
    pub cosigned_heads: usize,
    /// At a mirror that collects cosignatures, most pushes held back while
    /// a head waits for them; past it the head is given up and the pushes
    /// applied.
    pub held_pushes: usize,
    /// At a mirror that collects cosignatures, the longest a matched head
    /// waits for them before the mirror answers on without it.
    pub cosign_wait: Duration,
    /// Most leads of the reverse index one reverse lookup reads, so that
    /// an onion many names point at (anyone may point a subdomain at any
    /// onion) costs a bounded amount of work (PROTOCOL.md §12.5).
    pub max_reverse_leads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 16 * 1024,
            max_connections: 1024,
            worker_queue: 1024,
            subscriber_queue: 65536,
            idle_timeout: Duration::from_secs(120),
            heartbeat: Duration::from_secs(15),
            head_interval: HEAD_INTERVAL,
            release_cooldown: RELEASE_COOLDOWN,
            upstream_silence: Duration::from_secs(45),
            cosigned_heads: 64,
            held_pushes: 65536,
            cosign_wait: Duration::from_secs(5),
            max_reverse_leads: 1024,
        }
    }
}

/// State every thread of a server shares.
pub struct Shared {
    /// The durable live set.
    pub store: Store,
    /// Counters for status.
    pub stats: Stats,
    /// Counters for the Prometheus metrics.
    pub metrics: Metrics,
    /// How long heads take.
    pub timings: Timings,
    /// Least proof of work accepted.
    pub min_work: u64,
    /// Most leads one reverse lookup reads (`--max-reverse-leads`).
    pub max_reverse_leads: usize,
    /// Keys reported by status: the Quorum's own, or the trusted ones.
    pub quorum_keys: Vec<PublicKey>,
    /// The upstream, at a mirror.
    pub upstream: Option<Endpoint>,
    /// A mirror's audit of the heads it receives.
    pub audit: Option<Mutex<Audit>>,
    /// Cosignatures held for the newest heads.
    pub book: Mutex<Book>,
    /// At a witness, what it cosigned and refused, for status.
    pub witness: Option<Mutex<Report>>,
}

impl Shared {
    /// Quorum or mirror.
    pub fn role(&self) -> ServerRole {
        if self.upstream.is_some() {
            ServerRole::Mirror
        } else {
            ServerRole::Quorum
        }
    }

    /// A mirror's lag behind its upstream: records, and seconds since it
    /// last held them all (status and metrics).
    pub fn upstream_lag(&self) -> (u64, u64) {
        let stats = &self.stats;
        let records = stats
            .upstream_seq
            .load(Ordering::Relaxed)
            .saturating_sub(self.store.seq());
        if records == 0 {
            return (0, 0);
        }
        let since = stats.caught_up_at.load(Ordering::Relaxed);
        (records, crate::clock::now().saturating_sub(since))
    }
}

/// Compacts the store when more than half of it, and over 1 MiB, is
/// superseded records, old heads, or records past retention.
pub fn maybe_compact(store: &Store) {
    const MIN_GARBAGE: u64 = 1 << 20;
    let (garbage, total) = store.garbage();
    if garbage < MIN_GARBAGE || garbage * 2 < total {
        return;
    }
    match store.compact() {
        Ok(Some(r)) => log::info!(
            "compacted the log: {} -> {} bytes, {} names kept",
            r.before_bytes,
            r.after_bytes,
            r.live
        ),
        Ok(None) => log::debug!("compaction waits: records wait for a head"),
        Err(e) => log::error!("compaction failed (the old log is kept): {e}"),
    }
}

/// Notes that the upstream holds records up to `seq`, and when the mirror
/// held all of them.
pub fn note_upstream_seq(shared: &Shared, seq: u64) {
    let stats = &shared.stats;
    let known = stats
        .upstream_seq
        .fetch_max(seq, Ordering::Relaxed)
        .max(seq);
    if shared.store.seq() >= known {
        stats
            .caught_up_at
            .store(crate::clock::now(), Ordering::Relaxed);
    }
}
