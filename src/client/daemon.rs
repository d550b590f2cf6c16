//! The control-port side of the client: take over stream attachment, route
//! streams to names (`NAME.tor` or `NAME.tor.onion`, either with or without
//! the trailing dot of a fully qualified name) through the resolver's
//! threads, and give everything back when stopping.
//!
//! The control thread never waits on a mirror: lookups run on a small pool
//! and their results come back over a channel, so one slow mirror never
//! stalls other streams. On a lost control connection the daemon
//! reconnects with backoff; the guard mapping keeps `.tor` names from
//! leaking meanwhile.

use super::resolve::{ResolveError, Resolver, Source};
use crate::backoff::Backoff;
use crate::clock;
use crate::name::{Host, LookupName};
use crate::onion::OnionAddress;
use crate::signals;
use crate::tor::control::{
    Auth, ControlAddr, ControlConnection, ControlError, Event, HandBack, StreamId, StreamStatus,
    GUARDS_FROM, GUARD_TO, REASON_RESOLVEFAILED,
};
use crossbeam_channel::{select, Receiver, Sender, TrySendError};
use std::collections::HashSet;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// How long to wait for Tor's control port to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Waits before reconnecting to Tor: 0.25 s doubling to 10 s.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
/// How often the control loop checks for a stop request.
const TICK: Duration = Duration::from_millis(200);

/// How the daemon reaches Tor.
#[derive(Debug, Clone)]
pub struct TorAccess {
    /// The control port or socket.
    pub control: ControlAddr,
    /// How to authenticate.
    pub auth: Auth,
}

/// What the daemon is started with.
pub struct DaemonConfig {
    /// Tor's control port.
    pub tor: TorAccess,
    /// Threads doing lookups.
    pub lookup_threads: usize,
    /// Most streams waiting for a lookup thread; past it a `.tor` stream is
    /// closed at once (logged).
    pub lookup_queue: usize,
}

/// A `.tor` stream waiting for its name.
struct Job {
    stream: StreamId,
    name: LookupName,
    port: u16,
}

/// A lookup's outcome for a stream.
struct Outcome {
    stream: StreamId,
    name: LookupName,
    result: Result<(OnionAddress, Source), ResolveError>,
}

/// Why the daemon stopped with an error.
#[derive(Debug)]
pub enum DaemonError {
    /// The signal handlers cannot be installed.
    Signals(io::Error),
    /// A lookup thread cannot be started.
    Thread(io::Error),
    /// Tor refused the credentials, or the cookie cannot be used: retrying
    /// cannot help until the configuration is fixed.
    Control {
        /// The control port.
        control: ControlAddr,
        /// What Tor or the connection said.
        error: ControlError,
    },
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Signals(e) => write!(f, "cannot install signal handlers: {e}"),
            DaemonError::Thread(e) => write!(f, "cannot start a lookup thread: {e}"),
            DaemonError::Control { control, error } => write!(f, "tor control {control}: {error}"),
        }
    }
}

impl std::error::Error for DaemonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DaemonError::Signals(e) | DaemonError::Thread(e) => Some(e),
            DaemonError::Control { error, .. } => Some(error),
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT, then hands streams back to Tor.
pub fn run(config: DaemonConfig, resolver: Resolver) -> Result<(), DaemonError> {
    signals::install().map_err(DaemonError::Signals)?;
    let resolver = Arc::new(resolver);
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(config.lookup_queue.max(1));
    let (out_tx, out_rx) = crossbeam_channel::unbounded::<Outcome>();
    let mut threads = Vec::new();
    for i in 0..config.lookup_threads.max(1) {
        let (jobs, outcomes, resolver) = (job_rx.clone(), out_tx.clone(), resolver.clone());
        let thread = std::thread::Builder::new()
            .name(format!("lookup-{i}"))
            .spawn(move || lookup_loop(&resolver, &jobs, &outcomes))
            .map_err(DaemonError::Thread)?;
        threads.push(thread);
    }
    drop(out_tx);
    let mut backoff = BACKOFF;
    let mut result = Ok(());
    while !signals::stop_requested() {
        match session(&config, &job_tx, &out_rx, &mut backoff) {
            Ok(()) => break,
            Err(Failure::Fatal(error)) => {
                result = Err(DaemonError::Control {
                    control: config.tor.control.clone(),
                    error,
                });
                break;
            }
            Err(e) => log::warn!("tor control {}: {e}", config.tor.control),
        }
        let wait = backoff.next_wait();
        log::info!("reconnecting to tor in {:.1} s", wait.as_secs_f64());
        signals::sleep_unless_stopped(wait);
    }
    drop(job_tx);
    for thread in threads {
        let _ = thread.join();
    }
    log::info!("stopped");
    result
}

/// Connects, guards `.tor` names and hands waiting streams back: what a
/// supervisor runs after the daemon exits in any way (`--release`).
pub fn release(tor: &TorAccess) -> Result<HandBack, ControlError> {
    let conn = ControlConnection::open(&tor.control, &tor.auth, CONNECT_TIMEOUT)?;
    conn.guard_tor_names()?;
    conn.hand_back_streams()
}

fn lookup_loop(resolver: &Resolver, jobs: &Receiver<Job>, outcomes: &Sender<Outcome>) {
    for job in jobs {
        let result = resolver.resolve(&job.name, clock::now());
        if let Err(e) = &result {
            log::debug!(
                "stream {}: {}:{} not resolved: {e}",
                job.stream,
                job.name,
                job.port
            );
        }
        let outcome = Outcome {
            stream: job.stream,
            name: job.name,
            result,
        };
        if outcomes.send(outcome).is_err() {
            return;
        }
    }
}

/// Why a control session ended.
enum Failure {
    /// Tor refused our credentials: retrying cannot help.
    Fatal(ControlError),
    /// The connection failed; try again after a pause.
    Retry(ControlError),
    /// The event stream ended: the connection closed.
    Dropped,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Fatal(e) | Failure::Retry(e) => write!(f, "{e}"),
            Failure::Dropped => write!(f, "the control connection closed (did tor restart?)"),
        }
    }
}

/// One control session; `Ok` when a stop was requested and streams were
/// handed back.
fn session(
    config: &DaemonConfig,
    jobs: &Sender<Job>,
    outcomes: &Receiver<Outcome>,
    backoff: &mut Backoff,
) -> Result<(), Failure> {
    let conn = take_over(&config.tor).map_err(|e| match e {
        ControlError::AuthFailed { .. } | ControlError::CookieFile { .. } => Failure::Fatal(e),
        e => Failure::Retry(e),
    })?;
    backoff.reset();
    let events = conn.events();
    resume_waiting(&conn, jobs).map_err(Failure::Retry)?;
    // Tor names a stream's purpose only on NEWRESOLVE, not on the
    // CONTROLLER_WAIT that follows, so resolves are remembered here.
    let mut resolves: HashSet<StreamId> = HashSet::new();
    loop {
        select! {
            recv(events) -> event => match event {
                Ok(Event::Stream(stream)) => match stream.status {
                    StreamStatus::NewResolve => {
                        resolves.insert(stream.id);
                    }
                    StreamStatus::Closed | StreamStatus::Failed => {
                        resolves.remove(&stream.id);
                    }
                    StreamStatus::ControllerWait => {
                        let resolve = resolves.contains(&stream.id);
                        on_waiting(&conn, jobs, stream.id, &stream.target_host, stream.target_port, resolve);
                    }
                    _ => {}
                },
                Ok(_) => {}
                Err(_) => return Err(Failure::Dropped),
            },
            recv(outcomes) -> outcome => {
                if let Ok(outcome) = outcome {
                    finish(&conn, outcome);
                }
            }
            default(TICK) => {}
        }
        if signals::stop_requested() {
            let handed = conn.hand_back_streams().map_err(Failure::Retry)?;
            log::info!("stopping: stream attachment handed back to tor; {handed}");
            return Ok(());
        }
    }
}

/// Authenticates, makes sure the guard is in place, and takes over stream
/// attachment.
fn take_over(tor: &TorAccess) -> Result<ControlConnection, ControlError> {
    let conn = ControlConnection::open(&tor.control, &tor.auth, CONNECT_TIMEOUT)?;
    conn.guard_tor_names()?;
    for from in conn.unguarded()? {
        log::warn!(
            "tor does not report the {from} guard mapping; add `MapAddress {from} {GUARD_TO}` to torrc"
        );
    }
    // A torrc with part of the guard was written for fewer spellings (before
    // the trailing-dot ones): after a Tor restart the rest is missing until
    // the daemon is back. A torrc with none of it is the bundle's way.
    let missing = conn.unguarded_in_torrc()?;
    if missing.len() < GUARDS_FROM.len() {
        for from in missing {
            log::warn!(
                "torrc guards some .tor spellings but not {from}; add `MapAddress {from} {GUARD_TO}` \
                 so that it holds from the moment tor starts"
            );
        }
    }
    conn.set_events(&["STREAM"])?;
    conn.set_conf(&[("__LeaveStreamsUnattached", "1")])?;
    log::info!("attached to tor at {}; resolving .tor names", tor.control);
    Ok(conn)
}

/// Handles streams left waiting by a predecessor that died.
fn resume_waiting(conn: &ControlConnection, jobs: &Sender<Job>) -> Result<(), ControlError> {
    let waiting: Vec<_> = conn
        .stream_status()?
        .into_iter()
        .filter(|e| e.may_wait_for_controller())
        .collect();
    if !waiting.is_empty() {
        log::info!("taking over {} streams that were waiting", waiting.len());
    }
    for entry in waiting {
        let resolve = entry.status == StreamStatus::NewResolve;
        on_waiting(
            conn,
            jobs,
            entry.id,
            &entry.target_host,
            entry.target_port,
            resolve,
        );
    }
    Ok(())
}

/// A stream waits for this controller: a name (`X.tor` or `X.tor.onion`,
/// perhaps with one trailing dot) goes to a lookup thread, an invalid one
/// (two trailing dots included) is closed, anything else goes straight back
/// to Tor.
fn on_waiting(
    conn: &ControlConnection,
    jobs: &Sender<Job>,
    stream: StreamId,
    host: &str,
    port: u16,
    resolve: bool,
) {
    let name = match Host::classify(host) {
        Host::Other => return command(conn.attach_stream(&stream, 0), &stream, "attach"),
        _ if resolve => {
            log::info!(
                "stream {stream}: DNS resolve of {host} refused: .tor names resolve only on connect"
            );
            return close(conn, &stream);
        }
        Host::Invalid(e) => {
            log::info!("stream {stream}: {host:?} is not a valid .tor name ({e}); closed");
            return close(conn, &stream);
        }
        Host::Name(name) => name,
    };
    let job = Job {
        stream: stream.clone(),
        name,
        port,
    };
    match jobs.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => {
            log::warn!(
                "stream {stream}: lookup queue full (--lookup-queue); {} closed",
                job.name
            );
            close(conn, &stream);
        }
    }
}

/// Redirects a resolved stream and attaches it, or closes it.
fn finish(conn: &ControlConnection, outcome: Outcome) {
    let stream = &outcome.stream;
    match outcome.result {
        Ok((onion, source)) => {
            let via = match source {
                Source::Cache => "cache".to_owned(),
                Source::Mirror(m) => format!("mirror {m}"),
            };
            log::info!("stream {stream}: {} -> {onion} ({via})", outcome.name);
            match conn.redirect_stream(stream, &onion.to_string()) {
                Ok(()) => command(conn.attach_stream(stream, 0), stream, "attach"),
                Err(e) => {
                    log::info!("stream {stream}: redirect refused ({e}); closed");
                    close(conn, stream);
                }
            }
        }
        Err(e) => {
            log::info!(
                "stream {stream}: {} not resolved: {e}; closed",
                outcome.name
            );
            close(conn, stream);
        }
    }
}

/// Closes a stream with RESOLVEFAILED: the application sees SOCKS error 4.
fn close(conn: &ControlConnection, stream: &StreamId) {
    command(
        conn.close_stream(stream, REASON_RESOLVEFAILED),
        stream,
        "close",
    );
}

/// Logs a refused stream command: the stream may have ended meanwhile.
fn command(result: Result<(), ControlError>, stream: &StreamId, what: &str) {
    if let Err(e) = result {
        log::debug!("stream {stream}: {what} refused: {e}");
    }
}
