//! Benchmark of name resolution inside Tor: what a `.tor` name costs a
//! browser, against the same page fetched by its `.onion` address, measured
//! side by side in one run on one private Tor network on loopback
//! (`scripts/tornet/start`):
//!
//! 1. time to first byte (TTFB) of `http://example.tor/` (a cached name:
//!    the daemon answers from its cache) against `http://ONION/`, the same
//!    page of the same onion service; the ratio of medians and of p90s
//!    (goal: at most 1.05);
//! 2. the same for a name the daemon has never seen (`n0.tor`, `n1.tor`,
//!    ...: distinct registered names pointing to the same service), which
//!    it looks up on the mirror's `.onion` through Tor and verifies;
//! 3. the daemon's resolution time, cached and uncached: the `.tor` TTFB
//!    less the `.onion` TTFB of the same round (median of those paired
//!    differences, and the difference of the medians);
//! 4. what the daemon costs every other stream: `.onion` TTFB while the
//!    daemon attaches streams (`__LeaveStreamsUnattached`, as for every
//!    stream while it runs) against `.onion` TTFB with that setting turned
//!    off for the one fetch by the benchmark's own control connection, so
//!    that Tor attaches the stream itself, as with no daemon;
//! 5. the network's share of an uncached name: the benchmark asks the
//!    mirror's `.onion` for the round's name itself (one request, one reply,
//!    decoded as `found` by `onions::wire::Reply::parse` but not verified),
//!    then fetches `http://ONION/`, timed from the start of
//!    the lookup; the uncached `.tor` fetch less this is what the daemon
//!    adds beyond the unavoidable lookup.
//!
//! Each round fetches one page of each of the five kinds, the order
//! rotating from round to round so no kind always goes first, with a pause
//! after each fetch so one fetch's traffic does not slow the next (on this
//! network a `.onion` fetch started right after a lookup on the mirror
//! takes tens of milliseconds longer, with or without the daemon).
//!
//! A fetch is a raw SOCKS5 CONNECT with the host name left to Tor, then
//! `GET / HTTP/1.1`; TTFB runs from the start of the TCP connect to the
//! SOCKS port until the first byte of the HTTP response. Every fetch uses
//! the default SOCKS isolation, so Tor reuses the rendezvous circuit to the
//! service for all of them: `.tor` and `.onion` fetches ride the same
//! circuit, and the difference is the daemon's work. The daemon's own
//! lookups reuse its circuit to the mirror's onion service the same way.
//!
//! The Quorum (127.0.0.1), the mirror (127.0.0.2) and `onions-client` are
//! release binaries under `target/release` (build them first:
//! `scripts/bench-resolution` does), started as children of this benchmark;
//! names are claimed with `onions-hs claim --direct` for speed. Every
//! process is stopped by its PID at the end, also on a panic; the network
//! by `scripts/tornet/stop`, which stops it by the PIDs it recorded. Every
//! wait has a deadline, and all traffic stays on 127.0.0.0/8.
//!
//! Environment (all optional):
//! - `ONIONS_BENCH_FETCHES`: rounds (fetches of each kind), default 50;
//! - `ONIONS_BENCH_WORK`: proof of work of each claim in bits, and the
//!   Quorum's minimum, default 10 (each claim takes about half a second);
//! - `TORNET_BASE_PORT`: first of the private network's 50 ports, default
//!   16100 (the demo uses 16000, the tests 17000); `TORNET_HTTP_PORT`: its
//!   web servers' port, default `TORNET_BASE_PORT` + 80.
//!
//! Arguments, such as cargo's `--bench`, are ignored.

use onions::name::LookupName;
use onions::wire::{Id, Reply, Request, Status};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use testkit::line::LineConn;
use testkit::process::{self, Proc};
use testkit::servers::answering_head;
use testkit::{free_port_on, TempDir};

/// The release binaries used.
const PROGRAMS: [&str; 3] = ["onions-server", "onions-client", "onions-hs"];
/// Rounds when `ONIONS_BENCH_FETCHES` is unset or empty.
const DEFAULT_FETCHES: usize = 50;
/// Most rounds accepted.
const MAX_FETCHES: usize = 1000;
/// Proof of work when `ONIONS_BENCH_WORK` is unset or empty.
const DEFAULT_WORK: u64 = 10;
/// Most proof of work accepted (each bit doubles a claim's time).
const MAX_WORK: u64 = 16;
/// The private network's first port when `TORNET_BASE_PORT` is unset.
const DEFAULT_BASE_PORT: u16 = 16100;
/// Fetches of each kind before the measured rounds, not counted.
const WARMUP: usize = 3;
/// The goal for the `.tor` / `.onion` TTFB ratio.
const GOAL_RATIO: f64 = 1.05;
/// The onion services' port, as scripts/tornet/start sets it.
const SERVICE_PORT: u16 = 10053;
/// How long the private network may take to be ready (its own limit,
/// TORNET_WAIT, is 120 s).
const TORNET_LIMIT: Duration = Duration::from_secs(300);
/// How long a server or the daemon may take to start.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long a process may take to stop after SIGTERM before SIGKILL.
/// How long one claim may take.
const CLAIM_LIMIT: Duration = Duration::from_secs(120);
/// How long the mirror may take to replicate every claim.
const REPLICATE_LIMIT: Duration = Duration::from_secs(60);
/// Pause after each fetch, so that one fetch's traffic does not slow the
/// next (a `.onion` fetch right after a lookup on the mirror takes tens of
/// milliseconds longer, daemon or not).
const PAUSE: Duration = Duration::from_millis(200);
/// How long one fetch may take, in all.
const FETCH_LIMIT: Duration = Duration::from_secs(60);
/// Largest page read.
const MAX_PAGE: u64 = 1 << 20;
/// Pause between polls.
const POLL: Duration = Duration::from_millis(50);
/// What the test page (TORNET_ONION) says.
const PAGE_TEXT: &str = "served by the onion service";

fn main() {
    process::install_panic_hook(stop_network_on_panic);
    let settings = Settings::from_env();
    settings.print();
    let report = run(&settings);
    report.print(&settings);
}

// ---------------------------------------------------------------- settings

/// What a run uses: from the environment, checked before any work.
struct Settings {
    fetches: usize,
    work: u64,
    base_port: u16,
    http_port: u16,
    bin: PathBuf,
    scripts: PathBuf,
}

impl Settings {
    fn from_env() -> Settings {
        let fetches = env_number(
            "ONIONS_BENCH_FETCHES",
            DEFAULT_FETCHES as u64,
            1,
            MAX_FETCHES as u64,
        );
        let work = env_number("ONIONS_BENCH_WORK", DEFAULT_WORK, 0, MAX_WORK);
        let base_port = env_number("TORNET_BASE_PORT", DEFAULT_BASE_PORT.into(), 1024, 65486);
        let http_port = env_number("TORNET_HTTP_PORT", base_port + 80, 1024, 65535);
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bin = root.join("target/release");
        for program in PROGRAMS {
            if !bin.join(program).is_file() {
                fail(&format!(
                    "{} is missing: build it with `cargo build --release --bins` \
                     (scripts/bench-resolution does)",
                    bin.join(program).display()
                ));
            }
        }
        let scripts = root.join("scripts/tornet");
        Settings {
            fetches: fetches as usize,
            work,
            base_port: base_port as u16,
            http_port: http_port as u16,
            bin,
            scripts,
        }
    }

    fn print(&self) {
        println!(
            "onions resolution benchmark: {} rounds of one fetch of each kind, claims at work {}",
            self.fetches, self.work
        );
        println!(
            "private Tor network on loopback: ports {}-{}, web servers on port {}",
            self.base_port,
            self.base_port + 49,
            self.http_port
        );
        println!("binaries: {}", self.bin.display());
        for program in PROGRAMS {
            if let Some(newer) = testkit::newer_source(&self.bin.join(program)) {
                println!(
                    "WARNING: {} is newer than {program}; run `cargo build --release --bins`",
                    newer.display()
                );
            }
        }
        println!();
    }

    fn program(&self, name: &str) -> Command {
        Command::new(self.bin.join(name))
    }
}

/// A whole number from the environment, `default` when unset or empty.
fn env_number(key: &str, default: u64, min: u64, max: u64) -> u64 {
    match std::env::var(key).unwrap_or_default() {
        text if text.is_empty() => default,
        text => text
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .unwrap_or_else(|| {
                fail(&format!(
                    "{key}={text:?}: expected a number from {min} to {max}"
                ))
            }),
    }
}

/// Prints `message` and exits with a failure status (only before any
/// process is started: exiting skips the guards).
fn fail(message: &str) -> ! {
    eprintln!("bench resolution: {message}");
    std::process::exit(2)
}

// --------------------------------------------------------------- processes

/// The private network's directory while it runs, for the panic hook.
static NETWORK: Mutex<Option<(PathBuf, PathBuf)>> = Mutex::new(None);

/// Stops the private network, if one runs, when the benchmark panics.
fn stop_network_on_panic() {
    if let Ok(mut network) = NETWORK.lock() {
        if let Some((scripts, dir)) = network.take() {
            stop_network(&scripts, &dir);
        }
    }
}

// ----------------------------------------------------------------- network

/// The private Tor network, stopped by `scripts/tornet/stop` when dropped.
struct Network {
    scripts: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
    ready_secs: f64,
}

impl Network {
    /// Runs `scripts/tornet/start DIR` (bounded by [`TORNET_LIMIT`]), its
    /// Quorum and mirror services forwarding to the given ports.
    fn start(settings: &Settings, dir: &Path, quorum_port: u16, mirror_port: u16) -> Network {
        let started = Instant::now();
        *NETWORK.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((settings.scripts.clone(), dir.to_owned()));
        let mut network = Network {
            scripts: settings.scripts.clone(),
            dir: dir.to_owned(),
            env: Vec::new(),
            ready_secs: 0.0,
        };
        let mut command = Command::new(settings.scripts.join("start"));
        command
            .arg(dir)
            .env("TORNET_BASE_PORT", settings.base_port.to_string())
            .env("TORNET_HTTP_PORT", settings.http_port.to_string())
            .env("TORNET_QUORUM_PORT", quorum_port.to_string())
            .env("TORNET_MIRROR_PORT", mirror_port.to_string())
            .env("TORNET_LIAR_PORT", mirror_port.to_string());
        let log = dir.with_extension("start.log");
        let proc = Proc::spawn(command, "scripts/tornet/start", &log);
        let output = proc.finish(TORNET_LIMIT);
        for line in output.lines().filter(|l| l.starts_with("tornet: ")) {
            println!("  {line}");
        }
        let text = std::fs::read_to_string(dir.join("env"))
            .unwrap_or_else(|e| panic!("{}/env: {e}", dir.display()));
        network.env = parse_env(&text);
        network.ready_secs = started.elapsed().as_secs_f64();
        network
    }

    fn get(&self, key: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{}/env has no {key}", self.dir.display()))
    }

    fn socks(&self) -> SocketAddr {
        let text = self.get("TORNET_SOCKS");
        text.parse()
            .unwrap_or_else(|e| panic!("TORNET_SOCKS={text:?}: {e}"))
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if NETWORK
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some()
        {
            stop_network(&self.scripts, &self.dir);
        }
    }
}

/// `scripts/tornet/stop DIR`: by the PIDs in DIR/pids, bounded inside.
fn stop_network(scripts: &Path, dir: &Path) {
    let status = Command::new(scripts.join("stop"))
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!(
            "bench resolution: scripts/tornet/stop {} failed ({s})",
            dir.display()
        ),
        Err(e) => eprintln!("bench resolution: cannot run scripts/tornet/stop: {e}"),
    }
}

/// DIR/env: `KEY='VALUE'` lines, a quote inside written `'\''`.
fn parse_env(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (key, quoted) = line.split_once('=')?;
            let inner = quoted.strip_prefix('\'')?.strip_suffix('\'')?;
            Some((key.to_owned(), inner.replace("'\\''", "'")))
        })
        .collect()
}

// ----------------------------------------------------------------- servers

/// `onions-server --print-key` for the state directory `state`.
fn print_key(settings: &Settings, state: &Path) -> String {
    testkit::servers::print_key_with(settings.program("onions-server"), state)
}

/// Waits (bounded) until the server at `addr` has applied records up to
/// `seq` and answers lookups against a head covering it (a mirror's head
/// that matched its audit, the Quorum's newest).
fn wait_caught_up(server: &mut Proc, addr: SocketAddr, seq: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        server.check_running();
        let (applied, answering) = match status(addr) {
            Ok(status) => {
                let answering = answering_head(&status).map_or(0, |h| h.seq);
                (status.seq, answering)
            }
            Err(_) => (0, 0),
        };
        if applied >= seq && answering >= seq {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} at seq {applied}, answering against a head of seq {answering}, not {seq}, \
             after {limit:?}; its log ends:\n{}",
            server.what,
            server.log_tail()
        );
        std::thread::sleep(POLL);
    }
}

/// One request to the server at `addr`, its reply decoded.
fn request(addr: SocketAddr, request: &Request) -> Result<Reply, String> {
    LineConn::try_connect(addr, Duration::from_secs(5), Duration::from_secs(10))?
        .try_request(request)
}

/// The server's status.
fn status(addr: SocketAddr) -> Result<Status, String> {
    match request(
        addr,
        &Request::Status {
            id: Id::Text("bench".into()),
        },
    )? {
        Reply::Status { status, .. } => Ok(*status),
        other => Err(format!("status answered {other}")),
    }
}

// ------------------------------------------------------------------ fetches

/// One fetch: time to the page's SOCKS reply and to the first response
/// byte (and, done by hand, to the mirror's reply).
#[derive(Clone, Copy)]
struct Fetch {
    socks: Duration,
    ttfb: Duration,
    lookup: Option<Duration>,
}

/// A deadline's time left, or an error once it has passed.
fn left(deadline: Instant) -> Result<Duration, String> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("no answer within {FETCH_LIMIT:?}"))
}

/// A SOCKS5 CONNECT to `host:port` through Tor, the host name resolved by
/// Tor.
fn socks_connect(
    proxy: SocketAddr,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect_timeout(&proxy, Duration::from_secs(5))
        .map_err(|e| format!("SOCKS port {proxy}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    let io = |e: std::io::Error| format!("SOCKS: {e}");
    stream.write_all(&[5, 1, 0]).map_err(io)?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).map_err(io)?;
    if choice != [5, 0] {
        return Err(format!("SOCKS: the proxy chose {choice:?}, not no-auth"));
    }
    let len = u8::try_from(host.len()).map_err(|_| format!("{host}: too long for SOCKS"))?;
    let mut request = vec![5, 1, 0, 3, len];
    request.extend_from_slice(host.as_bytes());
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).map_err(io)?;
    stream
        .set_read_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).map_err(io)?;
    if reply[1] != 0 {
        return Err(format!("SOCKS error {} for {host}", reply[1]));
    }
    let rest = match reply[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len).map_err(io)?;
            usize::from(len[0]) + 2
        }
        other => return Err(format!("SOCKS: address type {other} in the reply")),
    };
    let mut bound = vec![0u8; rest];
    stream.read_exact(&mut bound).map_err(io)?;
    Ok(stream)
}

/// GET http://HOST/ through Tor's SOCKS port; checks that the page holds
/// `expect`. Times run from now.
fn fetch(proxy: SocketAddr, host: &str, expect: &str) -> Result<Fetch, String> {
    fetch_from(Instant::now(), proxy, host, expect)
}

/// [`fetch`], its times running from `start`.
fn fetch_from(
    start: Instant,
    proxy: SocketAddr,
    host: &str,
    expect: &str,
) -> Result<Fetch, String> {
    let deadline = start + FETCH_LIMIT;
    let mut stream = socks_connect(proxy, host, 80, deadline)?;
    let socks = start.elapsed();
    let get = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(get.as_bytes())
        .map_err(|e| format!("HTTP: {e}"))?;
    stream
        .set_read_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    let mut first = [0u8; 1];
    let n = stream.read(&mut first).map_err(|e| format!("HTTP: {e}"))?;
    let ttfb = start.elapsed();
    if n == 0 {
        return Err("HTTP: closed without a response".into());
    }
    let mut page = first.to_vec();
    stream
        .set_read_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    (&mut stream)
        .take(MAX_PAGE)
        .read_to_end(&mut page)
        .map_err(|e| format!("HTTP: {e}"))?;
    let page = String::from_utf8_lossy(&page);
    if !page.starts_with("HTTP/1.") || !page.contains(expect) {
        return Err(format!(
            "unexpected response: {:?}",
            &page[..page.len().min(200)]
        ));
    }
    Ok(Fetch {
        socks,
        ttfb,
        lookup: None,
    })
}

/// What a client doing the lookup itself would pay at least: ask the
/// mirror's `.onion` for `name` through Tor (one request line, one reply
/// line, which must decode as `found`; not verified), then fetch `http://ONION/`. Times run from the
/// start of the lookup.
fn fetch_by_hand(
    proxy: SocketAddr,
    mirror: &str,
    name: &str,
    onion: &str,
) -> Result<Fetch, String> {
    let start = Instant::now();
    let deadline = start + FETCH_LIMIT;
    let stream = socks_connect(proxy, mirror, SERVICE_PORT, deadline)?;
    let request = Request::Lookup {
        id: Id::Number(1),
        name: LookupName::from_user(name).map_err(|e| format!("{name}: {e}"))?,
    };
    (&stream)
        .write_all(&request.to_line())
        .map_err(|e| format!("mirror: {e}"))?;
    stream
        .set_read_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    BufReader::new(&stream)
        .take(onions::wire::MAX_REPLY_LINE as u64)
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("mirror: {e}"))?;
    let lookup = start.elapsed();
    match Reply::parse(&line) {
        Ok(Reply::Found { .. }) => {}
        Ok(other) => return Err(format!("mirror answered {other} for {name}")),
        Err(e) => {
            return Err(format!(
                "mirror sent {:?}: {e}",
                String::from_utf8_lossy(&line)
            ))
        }
    }
    drop(stream);
    let mut fetched = fetch_from(start, proxy, onion, PAGE_TEXT)?;
    fetched.lookup = Some(lookup);
    Ok(fetched)
}

/// Samples of one kind of fetch, and its failures.
#[derive(Default)]
struct Series {
    fetches: Vec<Fetch>,
    failures: Vec<String>,
}

impl Series {
    fn add(&mut self, host: &str, result: Result<Fetch, String>) -> Option<Fetch> {
        match result {
            Ok(f) => {
                self.fetches.push(f);
                Some(f)
            }
            Err(e) => {
                self.failures.push(format!("{host}: {e}"));
                None
            }
        }
    }

    fn ttfb_ms(&self) -> Vec<f64> {
        self.fetches.iter().map(|f| ms(f.ttfb)).collect()
    }

    fn socks_ms(&self) -> Vec<f64> {
        self.fetches.iter().map(|f| ms(f.socks)).collect()
    }

    fn lookup_ms(&self) -> Vec<f64> {
        self.fetches
            .iter()
            .filter_map(|f| f.lookup.map(ms))
            .collect()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The nearest-rank percentile `p` (0-100) of `values`.
fn percentile(values: &[f64], p: usize) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

// --------------------------------------------------------------------- run

/// The kinds of fetch of one round.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// `http://ONION/`, the daemon attaching the stream (as for every
    /// stream while it runs).
    Onion,
    /// `http://ONION/` with `__LeaveStreamsUnattached` off for the fetch:
    /// Tor attaches the stream itself, as with no daemon.
    Plain,
    /// `http://example.tor/`, answered from the daemon's cache.
    Cached,
    /// `http://nI.tor/`, a name the daemon has not seen.
    Uncached,
    /// The round's `nI.tor` asked of the mirror by the benchmark itself,
    /// then `http://ONION/`: the network's share of an uncached name.
    ByHand,
}

const KINDS: [Kind; 5] = [
    Kind::Onion,
    Kind::Plain,
    Kind::Cached,
    Kind::Uncached,
    Kind::ByHand,
];

impl Kind {
    fn index(self) -> usize {
        KINDS
            .iter()
            .position(|k| *k == self)
            .expect("every kind is listed")
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Onion => ".onion (the daemon attaches it)",
            Kind::Plain => ".onion (tor attaches it, as without)",
            Kind::Cached => "example.tor (cached)",
            Kind::Uncached => "nI.tor (uncached, a new name each)",
            Kind::ByHand => "mirror lookup by hand, then .onion",
        }
    }
}

/// The benchmark's view of the network, for fetches.
struct Target<'a> {
    proxy: SocketAddr,
    control: &'a Control,
    onion: &'a str,
    mirror: &'a str,
}

impl Target<'_> {
    /// One fetch of `kind`; `name` is the round's uncached name.
    fn fetch(&self, kind: Kind, name: &str) -> (String, Result<Fetch, String>) {
        let result = match kind {
            Kind::Onion => fetch(self.proxy, self.onion, PAGE_TEXT),
            Kind::Plain => {
                self.control.leave_streams_unattached(false);
                let result = fetch(self.proxy, self.onion, PAGE_TEXT);
                self.control.leave_streams_unattached(true);
                result
            }
            Kind::Cached => fetch(self.proxy, "example.tor", PAGE_TEXT),
            Kind::Uncached => fetch(self.proxy, name, PAGE_TEXT),
            Kind::ByHand => fetch_by_hand(self.proxy, self.mirror, name, self.onion),
        };
        let host = match kind {
            Kind::Onion | Kind::Plain => self.onion.to_owned(),
            Kind::Cached => "example.tor".to_owned(),
            Kind::Uncached => name.to_owned(),
            Kind::ByHand => format!("{name} by hand"),
        };
        (host, result)
    }
}

/// Everything measured.
struct Report {
    network_secs: f64,
    claims: usize,
    claim_secs: f64,
    measure_secs: f64,
    /// Indexed by [`Kind::index`].
    series: [Series; 5],
    /// `.tor` TTFB less the same round's `.onion` TTFB, ms.
    cached_delta: Vec<f64>,
    uncached_delta: Vec<f64>,
    /// `.onion` TTFB with the daemon attaching less without, same round, ms.
    attach_delta: Vec<f64>,
    /// Uncached TTFB less the same round's lookup by hand and fetch, ms.
    by_hand_delta: Vec<f64>,
    /// From the daemon's log: uncached names resolved on the mirror, and
    /// example.tor answers from the cache.
    from_mirror: usize,
    from_cache: usize,
}

fn run(settings: &Settings) -> Report {
    let tmp = TempDir::new("bench-resolution");
    let quorum_addr: SocketAddr = format!("127.0.0.1:{}", free_port_on("127.0.0.1"))
        .parse()
        .expect("an address");
    let mirror_addr: SocketAddr = format!("127.0.0.2:{}", free_port_on("127.0.0.2"))
        .parse()
        .expect("an address");

    println!("== the private Tor network (scripts/tornet/start)");
    let net = Network::start(
        settings,
        &tmp.join("net"),
        quorum_addr.port(),
        mirror_addr.port(),
    );
    let proxy = net.socks();
    let onion = net.get("TORNET_ONION").to_owned();

    println!("== the Quorum on {quorum_addr} and the mirror on {mirror_addr}");
    let key = print_key(settings, &tmp.join("quorum"));
    let mut command = settings.program("onions-server");
    command
        .args(["--role", "quorum", "--listen"])
        .arg(quorum_addr.to_string())
        .arg("--state-dir")
        .arg(tmp.join("quorum"))
        .arg("--min-work")
        .arg(settings.work.to_string());
    let mut quorum = Proc::spawn(command, "the Quorum", &tmp.join("quorum.log"));
    quorum.wait_log("quorum listening", START_LIMIT);
    let mut command = settings.program("onions-server");
    command
        .args(["--role", "mirror", "--listen"])
        .arg(mirror_addr.to_string())
        .arg("--state-dir")
        .arg(tmp.join("mirror"))
        .arg("--upstream")
        .arg(quorum_addr.to_string())
        .arg("--quorum-key")
        .arg(&key);
    let mut mirror = Proc::spawn(command, "the mirror", &tmp.join("mirror.log"));
    mirror.wait_log("subscribed from seq", START_LIMIT);

    let uncached_names: Vec<String> = (0..settings.fetches).map(|i| format!("n{i}.tor")).collect();
    let warm_names: Vec<String> = (0..WARMUP).map(|i| format!("warm{i}.tor")).collect();
    let mut names = vec!["example.tor".to_owned()];
    names.extend(warm_names.iter().cloned());
    names.extend(uncached_names.iter().cloned());
    println!(
        "== {} claims with onions-hs --direct, all -> {onion} (work {})",
        names.len(),
        settings.work
    );
    let claims_started = Instant::now();
    for (i, name) in names.iter().enumerate() {
        let mut command = settings.program("onions-hs");
        command
            .args(["claim", name.as_str(), "--key", net.get("TORNET_HS_KEY")])
            .args(["--work", &settings.work.to_string(), "--contact", "bench"])
            .arg("--state")
            .arg(tmp.join("serials"))
            .args(["--quorum", &quorum_addr.to_string(), "--direct"]);
        Proc::spawn(
            command,
            &format!("onions-hs claim {name}"),
            &tmp.join("claim.log"),
        )
        .finish(CLAIM_LIMIT);
        if (i + 1) % 10 == 0 || i + 1 == names.len() {
            println!(
                "  {} of {} claimed ({:.1} s)",
                i + 1,
                names.len(),
                claims_started.elapsed().as_secs_f64()
            );
        }
    }
    let claim_secs = claims_started.elapsed().as_secs_f64();
    wait_caught_up(
        &mut mirror,
        mirror_addr,
        names.len() as u64,
        REPLICATE_LIMIT,
    );
    println!("  the mirror holds all {}", names.len());

    println!("== onions-client on the client tor, resolving on the mirror's .onion");
    let measure_started = Instant::now();
    let mut command = settings.program("onions-client");
    command
        .arg("--control")
        .arg(net.get("TORNET_CONTROL"))
        .arg("--cookie")
        .arg(net.get("TORNET_COOKIE"))
        .arg("--mirror")
        .arg(format!("{}:{SERVICE_PORT}", net.get("TORNET_MIRROR_ONION")))
        .arg("--quorum-key")
        .arg(&key)
        .arg("--socks")
        .arg(proxy.to_string())
        .arg("--min-work")
        .arg(settings.work.to_string());
    let client_log = tmp.join("client.log");
    let mut client = Proc::spawn(command, "onions-client", &client_log);
    client.wait_log("attached to tor", START_LIMIT);
    let control = Control::open(net.get("TORNET_CONTROL"), net.get("TORNET_COOKIE"));

    let target = Target {
        proxy,
        control: &control,
        onion: &onion,
        mirror: net.get("TORNET_MIRROR_ONION"),
    };

    println!("== warm-up: {WARMUP} fetches of each kind, not counted");
    let mut warm = Series::default();
    for name in &warm_names {
        for kind in KINDS {
            let (host, result) = target.fetch(kind, name);
            warm.add(&host, result);
            std::thread::sleep(PAUSE);
        }
    }
    for failure in &warm.failures {
        println!("  warm-up fetch failed: {failure}");
    }

    println!(
        "== {} rounds of {} fetches, {PAUSE:?} apart, the order rotating",
        settings.fetches,
        KINDS.len()
    );
    let mut series: [Series; 5] = Default::default();
    let (mut cached_delta, mut uncached_delta, mut attach_delta, mut by_hand_delta) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (round, name) in uncached_names.iter().enumerate() {
        client.check_running();
        let mut got: [Option<Fetch>; 5] = [None; 5];
        for k in 0..KINDS.len() {
            let kind = KINDS[(round + k) % KINDS.len()];
            let (host, result) = target.fetch(kind, name);
            got[kind.index()] = series[kind.index()].add(&host, result);
            std::thread::sleep(PAUSE);
        }
        let ttfb = |kind: Kind| got[kind.index()].map(|f| ms(f.ttfb));
        if let Some(o) = ttfb(Kind::Onion) {
            cached_delta.extend(ttfb(Kind::Cached).map(|t| t - o));
            uncached_delta.extend(ttfb(Kind::Uncached).map(|t| t - o));
            attach_delta.extend(ttfb(Kind::Plain).map(|t| o - t));
        }
        if let (Some(u), Some(h)) = (ttfb(Kind::Uncached), ttfb(Kind::ByHand)) {
            by_hand_delta.push(u - h);
        }
        if (round + 1) % 10 == 0 {
            let median = |kind: Kind| percentile(&series[kind.index()].ttfb_ms(), 50);
            println!(
                "  round {}: TTFB medians so far .onion {:.1} ms (tor attaching {:.1}), \
                 example.tor {:.1}, nI.tor {:.1}, by hand {:.1}",
                round + 1,
                median(Kind::Onion),
                median(Kind::Plain),
                median(Kind::Cached),
                median(Kind::Uncached),
                median(Kind::ByHand)
            );
        }
        let failures: usize = series.iter().map(|s| s.failures.len()).sum();
        assert!(
            failures <= settings.fetches / 5 + 3,
            "too many failed fetches ({failures}): {:?}\nthe daemon's log ends:\n{}",
            series.iter().map(|s| &s.failures).collect::<Vec<_>>(),
            client.log_tail()
        );
    }
    let measure_secs = measure_started.elapsed().as_secs_f64();
    drop(control);
    client.stop();

    let log = std::fs::read_to_string(&client_log).unwrap_or_default();
    let from_mirror = uncached_names
        .iter()
        .filter(|n| {
            log.lines()
                .any(|l| l.contains(&format!(": {n} -> {onion} (mirror ")))
        })
        .count();
    let from_cache = log
        .lines()
        .filter(|l| l.contains(&format!(": example.tor -> {onion} (cache)")))
        .count();

    drop(client);
    drop(mirror);
    drop(quorum);
    println!("== stopping everything");
    let network_secs = net.ready_secs;
    drop(net);
    Report {
        network_secs,
        claims: names.len(),
        claim_secs,
        measure_secs,
        series,
        cached_delta,
        uncached_delta,
        attach_delta,
        by_hand_delta,
        from_mirror,
        from_cache,
    }
}

/// The benchmark's own control connection to the client tor (cookie
/// authentication), to turn `__LeaveStreamsUnattached` off and on around
/// a fetch.
struct Control {
    reader: Mutex<BufReader<TcpStream>>,
}

impl Control {
    fn open(addr: &str, cookie: &str) -> Control {
        let addr: SocketAddr = addr
            .parse()
            .unwrap_or_else(|e| panic!("TORNET_CONTROL={addr:?}: {e}"));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("tor's control port {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set a read timeout");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        let control = Control {
            reader: Mutex::new(BufReader::new(stream)),
        };
        let bytes = std::fs::read(cookie).unwrap_or_else(|e| panic!("{cookie}: {e}"));
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        control.command(&format!("AUTHENTICATE {hex}"));
        control
    }

    /// Sends `line`; panics unless Tor answers `250 OK`.
    fn command(&self, line: &str) {
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("tor control: {e}"));
        let mut reply = String::new();
        (&mut *reader)
            .take(4096)
            .read_line(&mut reply)
            .unwrap_or_else(|e| panic!("tor control: no reply to {line:?}: {e}"));
        let verb = line.split(' ').next().unwrap_or(line);
        assert!(
            reply.starts_with("250 OK"),
            "tor control: {verb} answered {reply:?}"
        );
    }

    fn leave_streams_unattached(&self, on: bool) {
        self.command(&format!(
            "SETCONF __LeaveStreamsUnattached={}",
            if on { 1 } else { 0 }
        ));
    }
}

// ------------------------------------------------------------------ report

impl Report {
    fn print(&self, settings: &Settings) {
        let s = |kind: Kind| &self.series[kind.index()];
        let t = |kind: Kind| s(kind).ttfb_ms();
        println!();
        println!(
            "network ready in {:.1} s; {} claims in {:.1} s; measured for {:.1} s",
            self.network_secs, self.claims, self.claim_secs, self.measure_secs
        );
        println!();
        println!(
            "time to first byte of http://HOST/ through Tor's SOCKS port, ms \
             (from the TCP connect to the first response byte; socks: to the SOCKS reply)"
        );
        println!(
            "  {:<38} {:>4} {:>4} {:>8} {:>8} {:>8} {:>8} {:>9}",
            "fetch", "ok", "fail", "median", "p90", "min", "max", "socks p50"
        );
        for kind in KINDS {
            let ttfb = t(kind);
            println!(
                "  {:<38} {:>4} {:>4} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2}",
                kind.label(),
                s(kind).fetches.len(),
                s(kind).failures.len(),
                percentile(&ttfb, 50),
                percentile(&ttfb, 90),
                percentile(&ttfb, 0),
                percentile(&ttfb, 100),
                percentile(&s(kind).socks_ms(), 50)
            );
        }
        println!();
        println!("ratios of TTFB, same run, interleaved");
        println!("  {:<38} {:>8} {:>8}   goal", "", "median", "p90");
        let verdict = |r: f64| if r <= GOAL_RATIO { "met" } else { "MISSED" };
        let ratio = |a: Kind, b: Kind, p| percentile(&t(a), p) / percentile(&t(b), p);
        for (label, a, b, goal) in [
            (
                "example.tor (cached) / .onion",
                Kind::Cached,
                Kind::Onion,
                true,
            ),
            (
                "example.tor (cached) / .onion by tor",
                Kind::Cached,
                Kind::Plain,
                false,
            ),
            (
                "nI.tor (uncached) / .onion",
                Kind::Uncached,
                Kind::Onion,
                false,
            ),
            (
                "nI.tor (uncached) / by hand",
                Kind::Uncached,
                Kind::ByHand,
                false,
            ),
            (
                ".onion: daemon / tor attaching",
                Kind::Onion,
                Kind::Plain,
                false,
            ),
        ] {
            let (m, p) = (ratio(a, b, 50), ratio(a, b, 90));
            let goal = if goal {
                format!(
                    "<= {GOAL_RATIO:.2}x: median {}, p90 {}",
                    verdict(m),
                    verdict(p)
                )
            } else {
                String::new()
            };
            println!("  {label:<38} {m:>7.3}x {p:>7.3}x   {goal}");
        }
        println!();
        println!(
            "the daemon's time per stream, ms: TTFB less the baseline's TTFB of the same round"
        );
        println!(
            "  {:<46} {:>4} {:>8} {:>8} {:>17}",
            "", "n", "median", "p90", "diff. of medians"
        );
        for (label, deltas, a, b) in [
            (
                "cached name (vs .onion)",
                &self.cached_delta,
                Kind::Cached,
                Kind::Onion,
            ),
            (
                "uncached name (vs .onion)",
                &self.uncached_delta,
                Kind::Uncached,
                Kind::Onion,
            ),
            (
                "uncached name (vs lookup by hand + .onion)",
                &self.by_hand_delta,
                Kind::Uncached,
                Kind::ByHand,
            ),
            (
                "any stream, attached (vs tor attaching)",
                &self.attach_delta,
                Kind::Onion,
                Kind::Plain,
            ),
        ] {
            println!(
                "  {:<46} {:>4} {:>8.2} {:>8.2} {:>17.2}",
                label,
                deltas.len(),
                percentile(deltas, 50),
                percentile(deltas, 90),
                percentile(&t(a), 50) - percentile(&t(b), 50)
            );
        }
        let by_hand = s(Kind::ByHand);
        println!(
            "  (by hand: the mirror's reply came after {:.2} ms (median), {:.2} ms (p90), \
             not verified)",
            percentile(&by_hand.lookup_ms(), 50),
            percentile(&by_hand.lookup_ms(), 90)
        );
        println!();
        println!(
            "the daemon's log: {} of {} uncached names resolved on the mirror; example.tor answered \
             from the cache {} times (expected {}: every fetch but the first warm-up)",
            self.from_mirror,
            settings.fetches,
            self.from_cache,
            settings.fetches + WARMUP - 1
        );
        for kind in KINDS {
            for f in s(kind).failures.iter().take(5) {
                println!("failed fetch: {f}");
            }
        }
    }
}

// ------------------------------------------------------------------- files
