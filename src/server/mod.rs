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
//!
//! This file is the wiring: what a server is started with ([`Config`],
//! [`Role`]), its keys, and [`run`], which opens the store and starts the
//! threads. What the threads share is in `shared` ([`Shared`],
//! [`Limits`]), `stats` ([`Stats`], [`Timings`]) and `events` (what they
//! send the event loop: [`LoopEvent`], [`Outbox`], [`Outgoing`],
//! [`HeadMark`]), all re-exported here.

pub mod audit;
pub mod cosigs;
pub mod event_loop;
mod events;
pub mod metrics;
pub mod quorum;
pub mod recovery;
mod shared;
mod stats;
pub mod upstream;
pub mod witness;
pub mod workers;

pub use events::{HeadMark, LoopEvent, Outbox, Outgoing};
pub use shared::{
    maybe_compact, note_upstream_seq, Limits, Shared, HEAD_INTERVAL, RELEASE_COOLDOWN,
};
pub use stats::{set_upstream_connected, Stats, Timings};

use crate::cosign::Quorate;
use crate::keys::{PublicKey, SigningKey};
use crate::signals;
use crate::store::{OnDamage, Store};
use crate::transport::{Endpoint, Route};
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

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

/// Why a server key cannot be read or created.
#[derive(Debug)]
pub enum KeyFileError {
    /// The state directory cannot be created.
    StateDir(PathBuf, std::io::Error),
    /// The key file exists but cannot be read as a key.
    Read(PathBuf, crate::keys::KeyError),
    /// The key file was missing and cannot be created.
    Create {
        /// The key file.
        path: PathBuf,
        /// Whose key (Quorum, witness).
        what: String,
        /// What creating it said.
        error: std::io::Error,
    },
}

impl std::fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyFileError::StateDir(dir, e) => write!(f, "--state-dir {}: {e}", dir.display()),
            KeyFileError::Read(path, e) => write!(f, "{}: {e}", path.display()),
            KeyFileError::Create { path, what, error } => write!(
                f,
                "{}: cannot create the {what} key: {error}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for KeyFileError {}

/// Reads the Quorum key in `state_dir`, creating it (mode 0600) on first use.
pub fn load_or_create_quorum_key(state_dir: &Path) -> Result<SigningKey, KeyFileError> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| KeyFileError::StateDir(state_dir.to_owned(), e))?;
    load_or_create_key_file(&state_dir.join(QUORUM_KEY_FILE), "Quorum")
}

/// Reads the `what` key (Quorum, witness) at `path`, creating it (mode
/// 0600) on first use.
pub fn load_or_create_key_file(path: &Path, what: &str) -> Result<SigningKey, KeyFileError> {
    let read = |path: &Path| {
        SigningKey::read_tor_file(path).map_err(|e| KeyFileError::Read(path.to_owned(), e))
    };
    match SigningKey::read_tor_file(path) {
        Ok(key) => Ok(key),
        Err(crate::keys::KeyError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            match create_key_file(path, what) {
                // Another process (a --print-key, say) created it first.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
                Err(error) => Err(KeyFileError::Create {
                    path: path.to_owned(),
                    what: what.to_owned(),
                    error,
                }),
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

/// Why a server could not start, or stopped with an error.
#[derive(Debug)]
pub enum ServerError {
    /// The signal handlers cannot be installed.
    Signals(std::io::Error),
    /// The Quorum's log is damaged in the middle and it refuses to hand
    /// those seqs out again: start once with `--recover-from`, or restore
    /// the log from a backup.
    DamageRefused(std::io::Error),
    /// The log cannot be opened.
    OpenLog(PathBuf, std::io::Error),
    /// Taking records back from a mirror failed.
    Recovery(recovery::RecoveryError),
    /// The first head cannot be signed and written.
    FirstHead(quorum::StartError),
    /// A witness's state file cannot be read back.
    WitnessState(witness::StateError),
    /// Metrics cannot be served at `--metrics`.
    Metrics(metrics::MetricsAddrError),
    /// The protocol's address cannot be listened on.
    Listen(SocketAddr, std::io::Error),
    /// The event loop cannot start.
    EventLoopStart(std::io::Error),
    /// The event loop failed.
    EventLoop(std::io::Error),
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::Signals(e) => write!(f, "cannot install signal handlers: {e}"),
            ServerError::DamageRefused(e) => write!(
                f,
                "{e}; the Quorum will not hand those seqs out again: start it once with --recover-from MIRROR_HOST:PORT to take the records back from a mirror, or restore the log from a backup"
            ),
            ServerError::OpenLog(dir, e) => {
                write!(f, "{}: cannot open the log: {e}", dir.display())
            }
            ServerError::Recovery(e) => write!(f, "{e}"),
            ServerError::FirstHead(e) => write!(f, "{e}"),
            ServerError::WitnessState(e) => write!(f, "{e}"),
            ServerError::Metrics(e) => write!(f, "{e}"),
            ServerError::Listen(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            ServerError::EventLoopStart(e) => write!(f, "cannot start the event loop: {e}"),
            ServerError::EventLoop(e) => write!(f, "event loop failed: {e}"),
        }
    }
}

impl std::error::Error for ServerError {}

/// Runs a server until SIGTERM or SIGINT, then finishes in-flight work and
/// returns.
pub fn run(config: Config) -> Result<(), ServerError> {
    signals::install().map_err(ServerError::Signals)?;
    let is_quorum = matches!(config.role, Role::Quorum { .. });
    let on_damage = if is_quorum && config.recover_from.is_none() {
        OnDamage::Refuse
    } else {
        OnDamage::Cut
    };
    let (store, report) = Store::open_with(&config.state_dir, on_damage).map_err(|e| {
        let damaged = e
            .get_ref()
            .is_some_and(|i| i.is::<crate::store::DamageRefused>());
        if damaged {
            ServerError::DamageRefused(e)
        } else {
            ServerError::OpenLog(config.state_dir.clone(), e)
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
        let taken = recovery::recover(&store, key.public(), from, *route, needed)
            .map_err(ServerError::Recovery)?;
        log::warn!(
            "took {taken} records back from {from}; the log now holds up to seq {}",
            store.seq()
        );
    }
    if let Some(key) = &quorum_key {
        let head = quorum::start(&store, key).map_err(ServerError::FirstHead)?;
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
        Some(setup) => Some(Mutex::new(
            witness::Report::load(&config.state_dir, &setup.key)
                .map_err(ServerError::WitnessState)?,
        )),
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
        max_reverse_leads: config.limits.max_reverse_leads,
        quorum_keys,
        upstream,
        audit,
        book: Mutex::new(book),
        witness: witness_report,
    });
    // Metrics first: once the protocol's port answers, so does this one.
    let metrics_listener = match config.metrics {
        Some(addr) => {
            metrics::check_addr(addr, config.listen).map_err(ServerError::Metrics)?;
            Some(metrics::bind(addr).map_err(ServerError::Metrics)?)
        }
        None => None,
    };
    let listener = mio::net::TcpListener::bind(config.listen)
        .map_err(|e| ServerError::Listen(config.listen, e))?;
    let (poll, waker) = event_loop::poll_and_waker().map_err(ServerError::EventLoopStart)?;
    let (outbox, inbox) = events::channel(waker);
    let (job_tx, job_rx) = crossbeam_channel::bounded(config.limits.worker_queue);
    let mut threads = Vec::new();
    let committer = quorum_key.map(|key| {
        let (put_tx, put_rx) = crossbeam_channel::bounded(config.limits.worker_queue);
        let (shared, outbox) = (shared.clone(), outbox.clone());
        let rules = quorum::Rules {
            head_interval: config.limits.head_interval,
            release_cooldown: config.limits.release_cooldown,
        };
        threads.push(spawn("committer", move || {
            quorum::run(&shared, key, put_rx, outbox, rules)
        }));
        put_tx
    });
    for i in 0..config.workers.max(1) {
        let worker = workers::Worker::new(shared.clone(), outbox.clone(), committer.clone());
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
            cosign_wait: config.limits.cosign_wait,
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
    let event_loop = event_loop::EventLoop::new(
        poll,
        listener,
        job_tx,
        config.workers.max(1),
        inbox,
        config.limits,
        shared,
    )
    .map_err(ServerError::EventLoopStart)?;
    let result = event_loop.run().map_err(ServerError::EventLoop);
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

/// True for a read error after which a thread simply reads again: its
/// read timeout passed (`WouldBlock` or `TimedOut`, by platform) or a
/// signal interrupted the call. The threads that read from a socket wake
/// so to check for a stop request and their own time limits.
fn read_again(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
    matches!(error.kind(), WouldBlock | TimedOut | Interrupted)
}
