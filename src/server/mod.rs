//! `onions-server`: the Quorum (accepts, decides, attests) and the mirror
//! (replicates, answers), sharing one event loop, worker pool and store.
//!
//! Threads: one mio [`event_loop`] owns every socket; [`workers`] parse and
//! answer lines handed over a bounded crossbeam channel; at the Quorum one
//! [`quorum`] committer decides ownership, assigns seqs and group-commits;
//! at a mirror one [`upstream`] thread replicates. Whoever makes records
//! durable tells the loop, which fans them out to subscribers. With
//! `--metrics`, one [`metrics`] thread answers Prometheus scrapes over
//! HTTP on its own port. No async runtime.

pub mod audit;
pub mod cosigs;
pub mod event_loop;
pub mod metrics;
pub mod quorum;
pub mod recovery;
pub mod upstream;
pub mod witness;
pub mod workers;

use crate::cosign::Quorate;
use crate::head::SignedHead;
use crate::keys::{PublicKey, SigningKey};
use crate::merkle::Hash;
use crate::signals;
use crate::store::{OnDamage, Store};
use crate::transport::{Endpoint, Route};
use crate::wire::{HeadTiming, ServerRole};
use crossbeam_channel::Sender;
use mio::{Token, Waker};
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The port servers listen on when `--listen` names only an address.
pub const DEFAULT_PORT: u16 = 10053;

/// File in the state directory holding the Quorum's signing key, in Tor's
/// `hs_ed25519_secret_key` format.
pub const QUORUM_KEY_FILE: &str = "quorum_ed25519_secret_key";

/// What this server is.
pub enum Role {
    /// The naming authority: signs attestations with its key.
    Quorum {
        /// The key attestations are signed with.
        key: SigningKey,
    },
    /// A replica of an upstream server.
    Mirror {
        /// The Quorum or mirror to replicate from.
        upstream: Endpoint,
        /// Direct, or through Tor's SOCKS port (an onion upstream).
        route: Route,
        /// Quorum keys whose attestations are trusted.
        trusted: Vec<PublicKey>,
    },
}

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
    /// Silence from upstream after which a mirror reconnects.
    pub upstream_silence: Duration,
    /// Heads whose cosignatures are held; the oldest leaves first.
    pub cosigned_heads: usize,
    /// At a mirror that collects cosignatures, most pushes held back while
    /// a head waits for them; past it the head is given up and the pushes
    /// applied.
    pub held_pushes: usize,
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
            head_interval: quorum::HEAD_INTERVAL,
            upstream_silence: Duration::from_secs(45),
            cosigned_heads: 64,
            held_pushes: 65536,
        }
    }
}

/// Everything a server is started with.
pub struct Config {
    /// Quorum or mirror.
    pub role: Role,
    /// The one IPv4 address and port to listen on.
    pub listen: SocketAddr,
    /// Where the log (and the Quorum's key) live.
    pub state_dir: PathBuf,
    /// Least proof of work accepted, in bits.
    pub min_work: u64,
    /// Worker threads.
    pub workers: usize,
    /// The limits.
    pub limits: Limits,
    /// Witnesses whose cosignatures are collected, and how many a head
    /// needs before a mirror answers with it.
    pub witnesses: Quorate,
    /// At a witness, its key and where its cosignatures go.
    pub witness: Option<witness::Setup>,
    /// At the Quorum, a mirror to take lost records back from before
    /// signing anything (`--recover-from`).
    pub recover_from: Option<(Endpoint, Route)>,
    /// Where Prometheus metrics are served over HTTP (`--metrics`); never
    /// the protocol's address.
    pub metrics: Option<SocketAddr>,
}

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

/// What identifies a head in the stream: its seq, time and id. Heads are
/// sent to a subscriber only when newer than the last it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadMark {
    /// The head's seq.
    pub seq: u64,
    /// The head's time.
    pub time: u64,
    /// The head's id.
    pub id: Hash,
}

impl HeadMark {
    /// The mark of `head`.
    pub fn of(head: &SignedHead) -> HeadMark {
        HeadMark {
            seq: head.seq,
            time: head.time,
            id: head.id(),
        }
    }

    /// True when this head is another one, lower in neither seq nor time
    /// (protocol.md §10.6: what a server forwards).
    pub fn follows(&self, last: Option<&HeadMark>) -> bool {
        last.is_none_or(|l| self.seq >= l.seq && self.time >= l.time && self.id != l.id)
    }
}

/// One line to fan out to subscribers, in stream order.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A record push.
    Record {
        /// Its seq.
        seq: u64,
        /// The push line.
        line: Vec<u8>,
    },
    /// A head push.
    Head {
        /// Which head.
        mark: HeadMark,
        /// The push line.
        line: Vec<u8>,
        /// True when the server now answers against it (always at the
        /// Quorum; at a mirror when it matched the audit): catch-up sends
        /// the current head, so a subscriber whose catch-up ended on an
        /// older one reads again.
        current: bool,
    },
    /// A `cosignatures` push: sent to every live subscriber as it comes.
    Cosignatures {
        /// The push line.
        line: Vec<u8>,
    },
}

/// A message to the event loop from another thread.
pub enum LoopEvent {
    /// A reply line for a connection; `close` ends it once sent.
    Reply {
        /// The connection.
        conn: Token,
        /// The reply line.
        bytes: Vec<u8>,
        /// Close after sending.
        close: bool,
    },
    /// The connection is now a subscriber wanting seqs from `from`.
    Subscribed {
        /// The connection.
        conn: Token,
        /// The `subscribed` line.
        bytes: Vec<u8>,
        /// First seq wanted.
        from: u64,
    },
    /// Catch-up lines read from the store for a subscriber.
    Feed {
        /// The connection.
        conn: Token,
        /// Push lines in stream order.
        bytes: Vec<u8>,
        /// Highest seq this feed covers.
        cursor: u64,
        /// The head among the lines, if any.
        head: Option<HeadMark>,
        /// True when the feed reached the end of the store.
        complete: bool,
    },
    /// Records made durable and heads, as push lines, to fan out.
    Committed {
        /// In stream order.
        pushes: Arc<Vec<Outgoing>>,
    },
}

/// The way back into the event loop: a channel and the loop's waker.
#[derive(Clone)]
pub struct Outbox {
    tx: Sender<LoopEvent>,
    waker: Arc<Waker>,
}

impl Outbox {
    /// Wraps the loop's channel and waker.
    pub fn new(tx: Sender<LoopEvent>, waker: Arc<Waker>) -> Outbox {
        Outbox { tx, waker }
    }

    /// Sends an event and wakes the loop. A closed loop means shutdown is
    /// under way, and the event no longer matters.
    pub fn send(&self, event: LoopEvent) {
        if self.tx.send(event).is_ok() {
            if let Err(e) = self.waker.wake() {
                log::error!("cannot wake the event loop: {e}");
            }
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
    pub metrics: metrics::Metrics,
    /// How long heads take.
    pub timings: Timings,
    /// Least proof of work accepted.
    pub min_work: u64,
    /// Keys reported by status: the Quorum's own, or the trusted ones.
    pub quorum_keys: Vec<PublicKey>,
    /// The upstream, at a mirror.
    pub upstream: Option<Endpoint>,
    /// A mirror's audit of the heads it receives.
    pub audit: Option<Mutex<audit::Audit>>,
    /// Cosignatures held for the newest heads.
    pub book: Mutex<cosigs::Book>,
    /// At a witness, what it cosigned and refused, for status.
    pub witness: Option<Mutex<witness::Report>>,
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

/// Reads the Quorum key in `state_dir`, creating it (mode 0600) on first use.
pub fn load_or_create_quorum_key(state_dir: &Path) -> Result<SigningKey, String> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| format!("--state-dir {}: {e}", state_dir.display()))?;
    load_or_create_key_file(&state_dir.join(QUORUM_KEY_FILE), "Quorum")
}

/// Reads the `what` key (Quorum, witness) at `path`, creating it (mode
/// 0600) on first use.
pub fn load_or_create_key_file(path: &Path, what: &str) -> Result<SigningKey, String> {
    let read = |path: &Path| {
        SigningKey::read_tor_file(path).map_err(|e| format!("{}: {e}", path.display()))
    };
    match SigningKey::read_tor_file(path) {
        Ok(key) => Ok(key),
        Err(crate::keys::KeyError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            match create_key_file(path, what) {
                // Another process (a --print-key, say) created it first.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
                Err(e) => Err(format!(
                    "{}: cannot create the {what} key: {e}",
                    path.display()
                )),
                Ok(key) => Ok(key),
            }
        }
        Err(_) => read(path),
    }
}

fn create_key_file(path: &Path, what: &str) -> std::io::Result<SigningKey> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = SigningKey::generate();
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&key.to_tor_file_bytes())?;
    file.sync_all()?;
    drop(file);
    // hard_link refuses to replace an existing key, unlike rename, and
    // never exposes a half-written file.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked?;
    log::info!("created the {what} key {}", path.display());
    Ok(key)
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

/// Marks the upstream flag; a helper so call sites read as sentences.
pub fn set_upstream_connected(stats: &Stats, connected: bool) {
    stats.upstream_connected.store(connected, Ordering::Relaxed);
}

/// Runs a server until SIGTERM or SIGINT, then finishes in-flight work and
/// returns.
pub fn run(config: Config) -> Result<(), String> {
    signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let is_quorum = matches!(config.role, Role::Quorum { .. });
    let on_damage = if is_quorum && config.recover_from.is_none() {
        OnDamage::Refuse
    } else {
        OnDamage::Cut
    };
    let (store, report) = Store::open_with(&config.state_dir, on_damage).map_err(|e| {
        let damaged = e.get_ref().is_some_and(|i| i.is::<crate::store::DamageRefused>());
        if damaged {
            format!(
                "{e}; the Quorum will not hand those seqs out again: start it once with --recover-from MIRROR_HOST:PORT to take the records back from a mirror, or restore the log from a backup"
            )
        } else {
            format!("{}: cannot open the log: {e}", config.state_dir.display())
        }
    })?;
    log::info!(
        "log replayed: {} entries, {} names, seq {}, {}{}",
        report.entries_read,
        report.live,
        report.seq,
        match &report.head {
            Some(h) => format!("answering against head seq {} time {}", h.seq, h.time),
            None => "no head to answer against yet".to_owned(),
        },
        if report.truncated_bytes > 0 {
            format!(
                ", cut {} bytes of torn or corrupt tail",
                report.truncated_bytes
            )
        } else {
            String::new()
        }
    );
    let (quorum_keys, upstream, quorum_key) = match config.role {
        Role::Quorum { key } => (vec![key.public()], None, Some(key)),
        Role::Mirror {
            upstream,
            route,
            trusted,
        } => (trusted, Some((upstream, route)), None),
    };
    let (upstream, upstream_route) = match upstream {
        Some((endpoint, route)) => (Some(endpoint), route),
        None => (None, Route::Direct),
    };
    if let (Some(key), Some((from, route))) = (&quorum_key, &config.recover_from) {
        let needed = report.damage.map_or(0, |d| d.seq);
        let taken = recovery::recover(&store, key.public(), from, *route, needed)?;
        log::warn!(
            "took {taken} records back from {from}; the log now holds up to seq {}",
            store.seq()
        );
    }
    if let Some(key) = &quorum_key {
        let head = quorum::start(&store, key)?;
        log::info!(
            "signed head seq {} time {} size {}",
            head.seq,
            head.time,
            head.size
        );
    }
    let audit = upstream.is_some().then(|| {
        Mutex::new(audit::Audit::new(
            quorum_keys.clone(),
            &store,
            &config.state_dir,
        ))
    });
    let mut collected = config.witnesses.clone();
    if let Some(setup) = &config.witness {
        let own = setup.key.public();
        if !collected.trusted.contains(&own) {
            collected.trusted.push(own);
        }
    }
    let book = cosigs::Book::new(quorum_keys.clone(), collected, config.limits.cosigned_heads);
    let witness_report = match &config.witness {
        Some(setup) => Some(Mutex::new(witness::Report::load(
            &config.state_dir,
            &setup.key,
        )?)),
        None => None,
    };
    let stats = Stats::default();
    stats.started.store(crate::clock::now(), Ordering::Relaxed);
    let shared = Arc::new(Shared {
        store,
        stats,
        metrics: metrics::Metrics::default(),
        timings: Timings::default(),
        min_work: config.min_work,
        quorum_keys,
        upstream,
        audit,
        book: Mutex::new(book),
        witness: witness_report,
    });
    // Metrics first: once the protocol's port answers, so does this one.
    let metrics_listener = match config.metrics {
        Some(addr) => {
            metrics::check_addr(addr, config.listen)?;
            Some(metrics::bind(addr)?)
        }
        None => None,
    };
    let listener = mio::net::TcpListener::bind(config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let (poll, waker) =
        event_loop::poll_and_waker().map_err(|e| format!("cannot start the event loop: {e}"))?;
    let (event_tx, event_rx) = crossbeam_channel::unbounded();
    let outbox = Outbox::new(event_tx, waker);
    let (job_tx, job_rx) = crossbeam_channel::bounded(config.limits.worker_queue);
    let mut threads = Vec::new();
    let committer = quorum_key.map(|key| {
        let (claim_tx, claim_rx) = crossbeam_channel::bounded(config.limits.worker_queue);
        let (shared, outbox) = (shared.clone(), outbox.clone());
        let interval = config.limits.head_interval;
        threads.push(spawn("committer", move || {
            quorum::run(&shared, key, claim_rx, outbox, interval)
        }));
        claim_tx
    });
    for i in 0..config.workers.max(1) {
        let worker = workers::Worker {
            shared: shared.clone(),
            outbox: outbox.clone(),
            committer: committer.clone(),
        };
        let jobs = job_rx.clone();
        threads.push(spawn(&format!("worker-{i}"), move || worker.run(jobs)));
    }
    drop(committer);
    drop(job_rx);
    let cosigner_tx = config.witness.map(|setup| {
        let (tx, rx) = crossbeam_channel::unbounded();
        let cosigner = witness::Cosigner {
            shared: shared.clone(),
            setup,
            outbox: outbox.clone(),
        };
        threads.push(spawn("cosigner", move || cosigner.run(rx)));
        tx
    });
    if let Some(endpoint) = shared.upstream.clone() {
        let upstream = upstream::Upstream {
            shared: shared.clone(),
            outbox: outbox.clone(),
            endpoint,
            route: upstream_route,
            verifier: crate::verify::Verifier {
                min_work: config.min_work,
                trusted: shared.quorum_keys.clone(),
                max_skew: None,
            },
            silence: config.limits.upstream_silence,
            threads: config.workers.max(1),
            held_limit: config.limits.held_pushes,
            cosigner: cosigner_tx,
        };
        threads.push(spawn("upstream", move || upstream.run()));
    }
    drop(outbox);
    if let Some(listener) = metrics_listener {
        match listener.local_addr() {
            Ok(addr) => log::info!("metrics on http://{addr}/metrics"),
            Err(e) => log::warn!("metrics listener: {e}"),
        }
        let shared = shared.clone();
        threads.push(spawn("metrics", move || metrics::serve(listener, &shared)));
    }
    log::info!(
        "{} listening on {} (state {}, min work {})",
        shared.role().as_str(),
        config.listen,
        config.state_dir.display(),
        config.min_work
    );
    let event_loop =
        event_loop::EventLoop::new(poll, listener, job_tx, event_rx, config.limits, shared)
            .map_err(|e| format!("cannot start the event loop: {e}"))?;
    let result = event_loop
        .run()
        .map_err(|e| format!("event loop failed: {e}"));
    signals::request_stop();
    for thread in threads {
        let _ = thread.join();
    }
    log::info!("stopped");
    result
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(body)
        .unwrap_or_else(|e| panic!("cannot start thread {name}: {e}"))
}
