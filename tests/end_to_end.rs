//! The whole system, end to end, on a private Tor network on loopback
//! (`scripts/tornet/start`: three authorities, three relays, a tor for the
//! onion services, a client tor): one story, told in phases that share the
//! one network, since a network takes 15-50 s to start.
//!
//! 1. The network starts; a Quorum (127.0.0.1, `--min-work 4`) and a mirror
//!    (127.0.0.2) run behind onion services of their own, and a lying
//!    mirror (127.0.0.3) behind a third. The servers start first, so that
//!    their ports can be handed to the network; the liar (a process of its
//!    own) denies registered names with forged proofs of absence, and
//!    otherwise replays a genuine answer for another name, `other.tor`,
//!    claimed directly with a key of the test's own, or answers with
//!    records of its own keys.
//! 2. The test page's operator claims `example.tor` (with `www` pointing at
//!    the second service) with the key Tor made for the service, sending the
//!    claim to the Quorum's onion through Tor; the mirror replicates it.
//! 3. `onions-client` attaches to the client tor, asking the lying mirror
//!    first and the honest one second, both through Tor.
//! 4. curl, through the client's SOCKS port with the name sent to Tor,
//!    loads `http://example.tor/` and `http://www.example.tor/`, and the
//!    same names spelled `http://example.tor.onion/` and
//!    `http://www.example.tor.onion/` (PROTOCOL.md §12.6);
//!    `http://unknown.tor/` fails. The liar was asked and set aside; every
//!    redirect went to the honest onions.
//! 5. Headless Firefox ESR, set up as Tor Browser is (SOCKS5 with remote
//!    DNS, no fixups), screenshots `http://example.tor/` and
//!    `http://example.tor.onion/`: the page's green background fills the
//!    picture, not an error page.
//! 6. Leaks: with the daemon up, stopped by SIGTERM, killed with -9 (then
//!    `onions-client --release`), and restarted, a `.tor` fetch either loads
//!    the right page or fails at once inside Tor (the `*.tor` guard), and a
//!    plain `.onion` fetch always works (after `--release`, for the kill -9;
//!    before it, it hangs in CONTROLLER_WAIT: the hang `--release` fixes).
//!    With the daemon stopped and the guard mapping removed too, a
//!    `.tor.onion` fetch still fails at once inside Tor: Tor refuses the
//!    host itself, no mapping and no stream on a circuit.
//!
//! Throughout, a control connection of the test's own records every STREAM
//! event of the client tor: no event ever shows a `.tor` name on a circuit
//! or sent out. Every process is stopped by its PID and every wait is
//! bounded; the test's files are kept (and their place printed) if it fails.

use onions::name::Host;
use onions::onion::OnionAddress;
use onions::tor::control::{StreamId, StreamStatus, GUARD_FROM, GUARD_TO};
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testkit::liar::{Forgery, Liar};
use testkit::servers::{owner, print_key, Server};
use testkit::streams::Watcher;
use testkit::tor::{release, Daemon, SocksReply, SocksRequest};
use testkit::tornet::{
    curl, describe_event, free_base_port, require_program, run, spawn, spawn_curl, statuses, Ports,
    Run, Tornet,
};
use testkit::TempDir;

/// Proof of work of both claims, and the Quorum's minimum.
const WORK: &str = "4";

/// The port the Quorum, mirror and liar services listen on as onions.
const SERVICE_PORT: u16 = 10053;

/// The pages' texts and background colours (see scripts/tornet/start).
const TEST_PAGE: &str = "served by the onion service";
const WWW_PAGE: &str = "served by the www onion service";
const TEST_COLOR: &str = "12a05a";
const WWW_COLOR: &str = "2a5db0";

/// Seed of the key that owns other.tor (the liar's genuine answer).
const OTHER: u8 = 3;

/// Seed of the lying mirror's attacker key (see common/liar.rs).
const ATTACKER: u8 = 0xa7;

/// How long a fetch that should work may take (the first one through a new
/// onion service builds circuits and fetches descriptors).
const FETCH_LIMIT: Duration = Duration::from_secs(60);

/// A `.tor` fetch while the daemon is away must fail at least this fast:
/// inside Tor, with no circuit.
const LOCAL_FAILURE: Duration = Duration::from_secs(5);

/// How long a stream is watched hanging in CONTROLLER_WAIT.
const HANG_SHOWN: Duration = Duration::from_secs(3);

/// How long an onion service may take to become reachable.
const REACH_LIMIT: Duration = Duration::from_secs(60);

/// How long the mirror may take to replicate a claim.
const REPLICATE_LIMIT: Duration = Duration::from_secs(30);

/// How long Firefox may take for a screenshot before it is killed (it
/// takes 1-3 s here; on a network error page `--screenshot` never
/// finishes, so that failure shows as a kill at this limit).
const FIREFOX_LIMIT: Duration = Duration::from_secs(60);

/// How long decoding a screenshot may take.
const DECODE_LIMIT: Duration = Duration::from_secs(60);

/// The phases' names, for the timing table.
struct Clock {
    began: Instant,
    current: Option<(String, Instant)>,
    done: Vec<(String, Duration)>,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            began: Instant::now(),
            current: None,
            done: Vec::new(),
        }
    }

    /// Ends the running phase (printing its time) and begins `name`.
    fn phase(&mut self, name: &str) {
        self.end();
        eprintln!("\n=== phase {name}");
        self.current = Some((name.to_owned(), Instant::now()));
    }

    fn end(&mut self) {
        if let Some((name, at)) = self.current.take() {
            let took = at.elapsed();
            eprintln!("=== phase {name}: {:.1} s", took.as_secs_f64());
            self.done.push((name, took));
        }
    }

    fn report(&mut self) {
        self.end();
        eprintln!("\nend-to-end timings:");
        for (name, took) in &self.done {
            eprintln!("  {:>6.1} s  {name}", took.as_secs_f64());
        }
        eprintln!("  {:>6.1} s  in all", self.began.elapsed().as_secs_f64());
    }
}

/// What every phase uses.
struct Story {
    // Dropped in this order: the liar, the servers, the event log, the
    // network (stopped by PID), and the files last.
    liar: Liar,
    quorum: Server,
    mirror: Server,
    log: Watcher,
    net: Tornet,
    /// The Quorum's key, Base64.
    key: String,
    /// The test page's onion, the www page's onion.
    onion: String,
    onion2: String,
    socks: SocketAddr,
    /// Where programs' outputs go.
    runs: PathBuf,
    scratch: TempDir,
}

impl Story {
    /// `--control`/`--cookie` of the client tor, as the daemon and
    /// `--release` take them.
    fn access(&self) -> Vec<String> {
        strings(&[
            "--control",
            self.net.get("TORNET_CONTROL"),
            "--cookie",
            self.net.get("TORNET_COOKIE"),
        ])
    }

    /// Starts `onions-client` (log in `log_name`) asking the liar first,
    /// the honest mirror second, both as onions through the client's SOCKS
    /// port; waits until it has attached.
    fn start_daemon(&self, log_name: &str) -> Daemon {
        let liar = format!("{}:{SERVICE_PORT}", self.net.get("TORNET_LIAR_ONION"));
        let mirror = format!("{}:{SERVICE_PORT}", self.net.get("TORNET_MIRROR_ONION"));
        let mut args = self.access();
        args.extend(strings(&[
            "--mirror",
            &liar,
            "--mirror",
            &mirror,
            "--quorum-key",
            &self.key,
            "--socks",
            &self.socks.to_string(),
        ]));
        let mut daemon = Daemon::start(&self.scratch.join(log_name), &args, &[]);
        daemon.wait_log(
            &[&format!(
                "attached to tor at {}",
                self.net.get("TORNET_CONTROL")
            )],
            1,
        );
        daemon
    }

    /// `__LeaveStreamsUnattached` as the client tor has it now.
    fn leave_streams_unattached(&self) -> String {
        self.log
            .conn
            .get_conf("__LeaveStreamsUnattached")
            .expect("GETCONF __LeaveStreamsUnattached")
            .join(",")
    }

    /// Fetches `http://host/` (a `.tor` or `.tor.onion` name) with the
    /// daemon up: the page holds `page`; Tor reported one stream to `host`,
    /// the daemon logged its lookup name redirected to `onion`, and Tor's
    /// SUCCEEDED event shows the stream connected to `onion` (never to the
    /// name).
    fn fetch_named(&mut self, daemon: &mut Daemon, host: &str, onion: &str, page: &str) {
        let mark = self.log.mark();
        let url = format!("http://{host}/");
        let got = curl(&self.runs, self.socks, &url, FETCH_LIMIT);
        assert!(
            got.success() && got.stdout.contains(page),
            "curl {url} should load {page:?}: {}\ndaemon log:\n{}\nevents:\n{}",
            got.describe(),
            daemon.log(),
            self.log.dump_from(mark)
        );
        let id = self.log.new_stream_to(mark, host);
        let name = lookup_name(host);
        let line = daemon.wait_log(&[&format!("stream {id}: {name} -> ")], 1)[0].clone();
        assert!(
            line.contains(&format!(" -> {onion} ")),
            "stream {id} ({host}) should go to {onion}: {line}"
        );
        let connected = self
            .log
            .wait_event(&id, "SUCCEEDED", |e| e.status == StreamStatus::Succeeded);
        assert_eq!(
            (connected.target_host.as_str(), connected.target_port),
            (onion, 80),
            "{host}: Tor connected stream {id} to the redirect target"
        );
        let events = self.log.events_of(&id);
        assert!(
            statuses(&events).contains(&StreamStatus::ControllerWait),
            "{host}: the daemon took the stream: {events:#?}"
        );
        self.log.assert_no_leak(&url);
        eprintln!(
            "  {url} -> {onion}: {page:?} in {:.2} s (stream {id})",
            got.took.as_secs_f64()
        );
    }

    /// Fetches `http://host/` (a `.tor` name) with the daemon away: curl
    /// fails within [`LOCAL_FAILURE`], and Tor's events show the guard at
    /// work: REMAP to the invalid onion name, FAILED with TORPROTOCOL,
    /// CLOSED, all on circuit 0; and no controller was asked
    /// (`__LeaveStreamsUnattached` is off).
    fn fails_locally(&mut self, host: &str) {
        let mark = self.log.mark();
        let url = format!("http://{host}/");
        let got = curl(&self.runs, self.socks, &url, Duration::from_secs(20));
        assert!(
            !got.success() && got.took < LOCAL_FAILURE,
            "curl {url} should fail at once with the daemon away: {}\nevents:\n{}",
            got.describe(),
            self.log.dump_from(mark)
        );
        let id = self.log.new_stream_to(mark, host);
        self.assert_guarded(&id, host);
        let events = self.log.events_of(&id);
        assert!(
            !statuses(&events).contains(&StreamStatus::ControllerWait),
            "{host}: no controller should be asked: {events:#?}"
        );
        eprintln!(
            "  {url} failed inside Tor in {:.2} s (curl exit {:?}: {})",
            got.took.as_secs_f64(),
            got.code(),
            got.stderr.trim()
        );
    }

    /// Stream `id` (to `host`) failed inside Tor through the guard.
    fn assert_guarded(&mut self, id: &StreamId, host: &str) {
        let events = self.log.wait_closed(id);
        let after_new: Vec<StreamStatus> = statuses(&events)
            .into_iter()
            .filter(|s| !matches!(s, StreamStatus::New | StreamStatus::ControllerWait))
            .collect();
        assert_eq!(
            after_new,
            vec![
                StreamStatus::Remap,
                StreamStatus::Failed,
                StreamStatus::Closed
            ],
            "{host}: {events:#?}"
        );
        let remap = events.iter().find(|e| e.status == StreamStatus::Remap);
        assert_eq!(
            remap.map(|e| e.target_host.as_str()),
            Some(GUARD_TO),
            "{host}: {events:#?}"
        );
        let failed = events.iter().find(|e| e.status == StreamStatus::Failed);
        assert_eq!(
            failed.and_then(|e| e.reason()),
            Some("TORPROTOCOL"),
            "{host}: {events:#?}"
        );
        assert!(
            events.iter().all(|e| !e.on_circuit()),
            "{host}: on a circuit: {events:#?}"
        );
        self.log.assert_no_leak(host);
    }

    /// Fetches `http://host/` (a `.tor.onion` name) with the daemon away
    /// and no guard mapping: curl fails within [`LOCAL_FAILURE`] and Tor's
    /// events show Tor refusing the host itself: no REMAP (no mapping
    /// touched it), no controller asked, FAILED with TORPROTOCOL, CLOSED,
    /// nothing on a circuit or sent out.
    fn refused_by_tor(&mut self, host: &str) {
        let mark = self.log.mark();
        let url = format!("http://{host}/");
        let got = curl(&self.runs, self.socks, &url, Duration::from_secs(20));
        assert!(
            !got.success() && got.took < LOCAL_FAILURE,
            "curl {url} should fail at once with neither daemon nor guard: {}\nevents:\n{}",
            got.describe(),
            self.log.dump_from(mark)
        );
        let id = self.log.new_stream_to(mark, host);
        let events = self.log.wait_closed(&id);
        assert_eq!(
            statuses(&events),
            vec![
                StreamStatus::New,
                StreamStatus::Failed,
                StreamStatus::Closed
            ],
            "{host}: {events:#?}"
        );
        let failed = events.iter().find(|e| e.status == StreamStatus::Failed);
        assert_eq!(
            failed.and_then(|e| e.reason()),
            Some("TORPROTOCOL"),
            "{host}: {events:#?}"
        );
        assert!(
            events.iter().all(|e| !e.on_circuit()),
            "{host}: on a circuit: {events:#?}"
        );
        self.log.assert_no_leak(host);
        let shown: Vec<String> = events.iter().map(describe_event).collect();
        eprintln!(
            "  {url} failed inside Tor in {:.2} s without a guard (curl exit {:?}: {}); \
             stream {id}:\n    {}",
            got.took.as_secs_f64(),
            got.code(),
            got.stderr.trim(),
            shown.join("\n    ")
        );
    }

    /// Removes the `*.tor` guard mapping from the client tor (MAPADDRESS of
    /// an address to itself removes its mapping), or puts it back.
    fn set_guard(&self, on: bool) {
        let to = if on { GUARD_TO } else { GUARD_FROM };
        self.log
            .conn
            .map_address(GUARD_FROM, to)
            .unwrap_or_else(|e| panic!("MAPADDRESS {GUARD_FROM}={to}: {e}"));
        let guarded = self.log.conn.tor_names_guarded().expect("address-mappings");
        assert_eq!(
            guarded,
            on,
            "the guard mapping is {}",
            if on { "back" } else { "gone" }
        );
    }

    /// Fetches the test page by its plain `.onion` address (no name
    /// involved): it loads. `daemon_up`: whether a controller took the
    /// stream (CONTROLLER_WAIT) or Tor attached it itself.
    fn plain_works(&mut self, daemon_up: bool) {
        let mark = self.log.mark();
        let onion = self.onion.clone();
        let url = format!("http://{onion}/");
        let got = curl(&self.runs, self.socks, &url, FETCH_LIMIT);
        assert!(
            got.success() && got.stdout.contains(TEST_PAGE),
            "curl {url} should load: {}\nevents:\n{}",
            got.describe(),
            self.log.dump_from(mark)
        );
        let id = self.log.new_stream_to(mark, &onion);
        self.log
            .wait_event(&id, "SUCCEEDED", |e| e.status == StreamStatus::Succeeded);
        let waited = statuses(&self.log.events_of(&id)).contains(&StreamStatus::ControllerWait);
        assert_eq!(
            waited,
            daemon_up,
            "{url}: CONTROLLER_WAIT only while a daemon attaches streams:\n{}",
            self.log.dump_from(mark)
        );
        eprintln!(
            "  {url} loads in {:.2} s ({})",
            got.took.as_secs_f64(),
            if daemon_up {
                "the daemon attached it"
            } else {
                "Tor attached it itself"
            }
        );
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// The lookup name the daemon logs for `host` (`X.tor` or `X.tor.onion`).
fn lookup_name(host: &str) -> String {
    match Host::classify(host) {
        Host::Name(name) => name.to_string(),
        other => panic!("{host:?} is not a lookup name: {other:?}"),
    }
}

/// The onion address of the key with `seed`.
fn onion_of(seed: u8) -> String {
    OnionAddress::from_key(owner(seed).public()).to_string()
}

/// Every `stream N: NAME -> ONION` line of a daemon's log, as
/// (N, NAME, ONION).
fn redirects(log: &str) -> Vec<(String, String, String)> {
    log.lines()
        .filter_map(|line| {
            let rest = &line[line.find(" stream ")? + " stream ".len()..];
            let (id, rest) = rest.split_once(": ")?;
            let (name, rest) = rest.split_once(" -> ")?;
            let onion = rest.split(' ').next()?;
            Some((id.to_owned(), name.to_owned(), onion.to_owned()))
        })
        .collect()
}

/// Every redirect in `daemon`'s log went where the genuine record says.
fn assert_honest_redirects(daemon: &Daemon, allowed: &[(&str, &str)]) -> usize {
    let log = daemon.log();
    let all = redirects(&log);
    for (id, name, onion) in &all {
        assert!(
            allowed.iter().any(|(n, o)| n == name && o == onion),
            "stream {id}: {name} was sent to {onion}, not to its genuine onion \
             {allowed:?}\n{log}"
        );
    }
    all.len()
}

/// Connects to `host:port` through `socks` until Tor grants it (bounded by
/// [`REACH_LIMIT`]); returns how long it took. Sends nothing, so the lying
/// mirror does not count it as a lookup.
fn reach(socks: SocketAddr, host: &str, port: u16) -> Duration {
    let began = Instant::now();
    loop {
        let mut probe = SocksRequest::connect(socks, host, port);
        let reply = probe.reply_within(Duration::from_secs(20));
        if reply == SocksReply::Granted {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < REACH_LIMIT,
            "{host}:{port} not reachable through {socks} within {REACH_LIMIT:?}: {reply:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Runs `onions-hs` with `args`; it must exit 0. Returns its stdout and
/// stderr.
fn hs_ok(args: &[&str]) -> (String, String) {
    let (status, stdout, stderr) = testkit::run_hs(args);
    assert!(
        status.success(),
        "onions-hs {args:?}: {status}\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

// ---------------------------------------------------------------- firefox

/// A Firefox profile set up as Tor Browser's is for names: every request
/// through the SOCKS port with the host name sent to Tor (remote DNS, no
/// proxy exceptions, not even localhost), no search-engine or `www.`
/// fixups of a `.tor` name, and no background traffic of its own.
fn firefox_profile(dir: &Path, socks: SocketAddr) {
    std::fs::create_dir_all(dir).expect("profile directory");
    let prefs: Vec<(&str, String)> = vec![
        ("network.proxy.type", "1".into()),
        ("network.proxy.socks", format!("\"{}\"", socks.ip())),
        ("network.proxy.socks_port", socks.port().to_string()),
        ("network.proxy.socks_version", "5".into()),
        ("network.proxy.socks_remote_dns", "true".into()),
        ("network.proxy.no_proxies_on", "\"\"".into()),
        ("network.proxy.allow_hijacking_localhost", "true".into()),
        ("network.proxy.failover_direct", "false".into()),
        ("browser.fixup.domainsuffixwhitelist.tor", "true".into()),
        ("browser.fixup.alternate.enabled", "false".into()),
        ("keyword.enabled", "false".into()),
        ("network.dns.blockDotOnion", "false".into()),
        ("network.trr.mode", "5".into()),
        ("network.dns.disablePrefetch", "true".into()),
        ("network.prefetch-next", "false".into()),
        ("network.http.speculative-parallel-limit", "0".into()),
        ("app.update.enabled", "false".into()),
        ("app.update.auto", "false".into()),
        ("datareporting.healthreport.uploadEnabled", "false".into()),
        ("datareporting.policy.dataSubmissionEnabled", "false".into()),
        ("toolkit.telemetry.enabled", "false".into()),
        ("toolkit.telemetry.unified", "false".into()),
        ("toolkit.telemetry.archive.enabled", "false".into()),
        ("browser.safebrowsing.malware.enabled", "false".into()),
        ("browser.safebrowsing.phishing.enabled", "false".into()),
        ("browser.safebrowsing.downloads.enabled", "false".into()),
        (
            "browser.safebrowsing.downloads.remote.enabled",
            "false".into(),
        ),
        ("browser.safebrowsing.blockedURIs.enabled", "false".into()),
        (
            "browser.safebrowsing.provider.mozilla.updateURL",
            "\"\"".into(),
        ),
        ("network.captive-portal-service.enabled", "false".into()),
        ("network.connectivity-service.enabled", "false".into()),
        ("extensions.update.enabled", "false".into()),
        ("extensions.getAddons.cache.enabled", "false".into()),
        ("extensions.blocklist.enabled", "false".into()),
        ("browser.search.update", "false".into()),
        ("browser.shell.checkDefaultBrowser", "false".into()),
        (
            "browser.startup.homepage_override.mstone",
            "\"ignore\"".into(),
        ),
        ("browser.aboutwelcome.enabled", "false".into()),
        ("browser.newtabpage.enabled", "false".into()),
        ("browser.region.update.enabled", "false".into()),
        ("dom.push.connection.enabled", "false".into()),
        ("services.settings.server", "\"http://127.0.0.1:9/\"".into()),
        ("media.gmp-manager.updateEnabled", "false".into()),
    ];
    let text: String = prefs
        .iter()
        .map(|(key, value)| format!("user_pref(\"{key}\", {value});\n"))
        .collect();
    std::fs::write(dir.join("user.js"), text).expect("user.js");
}

/// Decodes a PNG (8-bit RGB or RGBA, as Firefox writes screenshots) with
/// python3's zlib and prints `WIDTH HEIGHT MATCHING TOP_RGB TOP_COUNT`:
/// the pixels within a tolerance of the wanted colour, and the commonest
/// colour.
const PNG_COUNT: &str = r#"
import struct, sys, zlib
from collections import Counter
path, want, tol = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3])
data = open(path, 'rb').read()
if data[:8] != b'\x89PNG\r\n\x1a\n':
    sys.exit(path + ': not a PNG file')
pos, idat, head = 8, [], None
while pos + 8 <= len(data):
    size, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + size]
    pos += 12 + size
    if kind == b'IHDR':
        head = struct.unpack('>IIBBBBB', body)
    elif kind == b'IDAT':
        idat.append(body)
    elif kind == b'IEND':
        break
if head is None:
    sys.exit(path + ': no IHDR')
width, height, depth, ctype, _, _, interlace = head
if depth != 8 or ctype not in (2, 6) or interlace:
    sys.exit(f'{path}: unsupported PNG (depth {depth}, colour type {ctype}, interlace {interlace})')
bpp = 3 if ctype == 2 else 4
stride = width * bpp
raw = zlib.decompress(b''.join(idat))
prev = bytearray(stride)
counts = Counter()
for y in range(height):
    start = y * (stride + 1)
    kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
    if kind == 1:
        for i in range(bpp, stride):
            line[i] = (line[i] + line[i - bpp]) & 255
    elif kind == 2:
        for i in range(stride):
            line[i] = (line[i] + prev[i]) & 255
    elif kind == 3:
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + (left + prev[i]) // 2) & 255
    elif kind == 4:
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    elif kind != 0:
        sys.exit(f'{path}: bad filter type {kind} in row {y}')
    for x in range(0, stride, bpp):
        counts[bytes(line[x:x + 3])] += 1
    prev = line
match = sum(n for rgb, n in counts.items() if all(abs(rgb[i] - want[i]) <= tol for i in range(3)))
top, top_n = counts.most_common(1)[0]
print(width, height, match, top.hex(), top_n)
"#;

/// A screenshot's pixels: (total, those of `color` ± 8, the commonest
/// colour in hex).
fn count_color(dir: &Path, png: &Path, color: &str) -> (u64, u64, String) {
    let got = run(
        dir,
        "python3",
        [
            OsStr::new("-c"),
            OsStr::new(PNG_COUNT),
            png.as_os_str(),
            OsStr::new(color),
            OsStr::new("8"),
        ],
        DECODE_LIMIT,
    );
    assert!(
        got.success(),
        "decoding {} with python3: {}",
        png.display(),
        got.describe()
    );
    let fields: Vec<&str> = got.stdout.split_whitespace().collect();
    let number = |i: usize| -> u64 {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| panic!("python3 printed {:?}", got.stdout))
    };
    let total = number(0) * number(1);
    (total, number(2), fields.get(3).unwrap_or(&"?").to_string())
}

/// Screenshots `http://host/` with headless Firefox ESR set up as Tor Browser is;
/// the picture must be mostly `color` (the page's background), which an
/// error page is not. Returns the screenshot's path.
fn screenshot(story: &mut Story, daemon: &Daemon, host: &str, color: &str) -> PathBuf {
    let dir = story.scratch.join(format!("firefox-{host}"));
    let profile = dir.join("profile");
    firefox_profile(&profile, story.socks);
    let shot = story.scratch.join(format!("{host}.png"));
    let url = format!("http://{host}/");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("a home for firefox");
    let mark = story.log.mark();
    let firefox = spawn(
        &dir,
        "firefox-esr",
        [
            OsStr::new("--headless"),
            OsStr::new("--no-remote"),
            OsStr::new("--profile"),
            profile.as_os_str(),
            OsStr::new("--screenshot"),
            shot.as_os_str(),
            OsStr::new("--window-size=1024,768"),
            OsStr::new(&url),
        ],
        &[
            ("HOME", home.as_os_str()),
            ("MOZ_HEADLESS", OsStr::new("1")),
        ],
        true,
    )
    .finish(FIREFOX_LIMIT);
    let kept = std::env::temp_dir().join(format!(
        "onions-end-to-end-{}-{host}.png",
        std::process::id()
    ));
    let keep = || {
        let _ = std::fs::copy(&shot, &kept);
        kept.display().to_string()
    };
    assert!(
        firefox.success() && shot.is_file(),
        "firefox-esr --screenshot {url}: {}\n(headless Firefox takes no screenshot of a \
         network error page: it waits until killed)\nscreenshot (if any) copied to {}\n\
         daemon log:\n{}",
        firefox.describe(),
        keep(),
        daemon.log()
    );
    let (total, matching, top) = count_color(&dir, &shot, color);
    assert!(
        matching * 2 > total,
        "the screenshot of {url} is not the page (background #{color}): {matching} of {total} \
         pixels match, the commonest colour is #{top}: an error page? Screenshot copied to {}\n\
         daemon log:\n{}",
        keep(),
        daemon.log()
    );
    // Firefox's streams for the name: the daemon redirected them to the
    // page's service, and none left as a name.
    let ids = story.log.new_streams_to(mark, host);
    let log = daemon.log();
    let lookup = lookup_name(host);
    let handled: Vec<(String, String, String)> = redirects(&log)
        .into_iter()
        .filter(|(id, name, _)| *name == lookup && ids.iter().any(|i| i.as_str() == id))
        .collect();
    assert!(
        !handled.is_empty(),
        "no daemon log line redirects Firefox's streams {ids:?} for {host}:\n{log}"
    );
    story.log.assert_no_leak(&format!("firefox {url}"));
    eprintln!(
        "  firefox {url}: {:.1} s, {matching} of {total} pixels #{color}; streams {:?} -> {}",
        firefox.took.as_secs_f64(),
        ids.iter().map(StreamId::as_str).collect::<Vec<_>>(),
        handled[0].2
    );
    shot
}

// ------------------------------------------------------------------ story

#[test]
fn a_name_typed_in_a_browser_reaches_its_onion_service_and_never_leaks() {
    for (program, package) in [
        ("tor", "tor"),
        ("curl", "curl"),
        ("python3", "python3"),
        ("firefox-esr", "firefox-esr"),
    ] {
        require_program(program, package);
    }
    let mut clock = Clock::new();
    let scratch = TempDir::keeping("end-to-end");
    let runs = scratch.join("runs");
    std::fs::create_dir(&runs).expect("runs directory");

    // ---------------------------------------------------------------- 1
    clock.phase("1: servers, the lying mirror and the private Tor network start");
    let quorum = Server::quorum("127.0.0.1", &scratch.join("quorum"), &["--min-work", WORK]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &scratch.join("mirror"), quorum.addr, &key, &[]);
    // other.tor, claimed directly with a key of the test's own (written as
    // Tor writes a service key): the genuine answer the liar replays.
    let other_key = scratch.join("other_hs_ed25519_secret_key");
    std::fs::write(&other_key, owner(OTHER).to_tor_file_bytes()).expect("other.tor's key");
    let quorum_addr = quorum.addr.to_string();
    let other_state = scratch.join("other.state");
    hs_ok(&[
        "claim",
        "other.tor",
        "--key",
        &other_key.to_string_lossy(),
        "--work",
        WORK,
        "--quorum",
        &quorum_addr,
        "--direct",
        "--state",
        &other_state.to_string_lossy(),
        "--out",
        &scratch.join("other.json").to_string_lossy(),
    ]);
    mirror.wait_head(1, REPLICATE_LIMIT);
    let liar = Liar::mirror(
        "127.0.0.3",
        &scratch.join("liar.log"),
        mirror.addr,
        "other.tor",
        &[],
        &[Forgery::Deny, Forgery::OtherName, Forgery::Foreign],
    );
    let (base, http) = free_base_port();
    let ports = Ports {
        base,
        http,
        quorum: quorum.addr.port(),
        mirror: mirror.addr.port(),
        liar: liar.addr.port(),
    };
    eprintln!(
        "  Quorum {}, mirror {}, liar {}; network ports {ports:?}",
        quorum.addr, mirror.addr, liar.addr
    );
    let net = Tornet::start(&scratch.join("tornet"), ports);
    eprintln!(
        "  scripts/tornet/start: ready in {:.1} s\n{}",
        net.took.as_secs_f64(),
        net.start_output.trim_end()
    );
    let log = net.watcher();
    let mut story = Story {
        key,
        onion: net.get("TORNET_ONION").to_owned(),
        onion2: net.get("TORNET_ONION2").to_owned(),
        socks: net.socks(),
        runs,
        liar,
        quorum,
        mirror,
        log,
        net,
        scratch,
    };
    for (what, var) in [
        ("the Quorum", "TORNET_QUORUM_ONION"),
        ("the mirror", "TORNET_MIRROR_ONION"),
        ("the lying mirror", "TORNET_LIAR_ONION"),
    ] {
        let onion = story.net.get(var).to_owned();
        let took = reach(story.socks, &onion, SERVICE_PORT);
        eprintln!(
            "  {what} is reachable as {onion}:{SERVICE_PORT} ({:.1} s)",
            took.as_secs_f64()
        );
    }

    // ---------------------------------------------------------------- 2
    clock.phase("2: the operator claims example.tor through Tor");
    let claim_file = story.scratch.join("example.json");
    let quorum_onion = format!("{}:{SERVICE_PORT}", story.net.get("TORNET_QUORUM_ONION"));
    let www = format!("www={}", story.onion2);
    let (_, said) = hs_ok(&[
        "claim",
        "example.tor",
        "--key",
        story.net.get("TORNET_HS_KEY"),
        "--sub",
        &www,
        "--work",
        WORK,
        "--quorum",
        &quorum_onion,
        "--socks",
        &story.socks.to_string(),
        "--state",
        &story.scratch.join("example.state").to_string_lossy(),
        "--out",
        &claim_file.to_string_lossy(),
    ]);
    assert!(
        said.contains(&format!(
            "accepted: example.tor -> {} at seq 2",
            story.onion
        )),
        "{said}"
    );
    eprintln!("  onions-hs: {}", said.trim());
    hs_ok(&[
        "verify",
        &claim_file.to_string_lossy(),
        "--quorum-key",
        &story.key,
        "--min-work",
        WORK,
    ]);
    assert_eq!(story.quorum.status().seq, 2);
    story.mirror.wait_head(2, REPLICATE_LIMIT);
    assert_eq!(story.mirror.status().seq, 2);
    let mirror_onion = format!("{}:{SERVICE_PORT}", story.net.get("TORNET_MIRROR_ONION"));
    let (found, _) = hs_ok(&[
        "lookup",
        "www.example.tor",
        "--server",
        &mirror_onion,
        "--socks",
        &story.socks.to_string(),
        "--quorum-key",
        &story.key,
    ]);
    assert!(found.contains(&story.onion2), "{found}");
    eprintln!("  the mirror replicated it (head 2) and answers over Tor");

    // A volunteer's mirror that knows the Quorum only as an onion service
    // replicates through Tor's SOCKS port.
    let quorum_onion = format!("{}:{SERVICE_PORT}", story.net.get("TORNET_QUORUM_ONION"));
    let socks = story.socks.to_string();
    let onion_mirror = Server::mirror_of(
        "127.0.0.4",
        &story.scratch.join("onion-mirror"),
        &quorum_onion,
        &story.key,
        &["--upstream-socks", &socks],
    );
    onion_mirror.wait_head(2, REPLICATE_LIMIT);
    assert!(onion_mirror.status().upstream.is_some_and(|u| u.connected));
    eprintln!("  a mirror following the Quorum's onion address through Tor has head 2");

    // ---------------------------------------------------------------- 3
    clock.phase("3: onions-client attaches to the client tor (the liar listed first)");
    let mut daemon = story.start_daemon("daemon-1.log");
    assert_eq!(story.leave_streams_unattached(), "1");
    assert!(story
        .log
        .conn
        .tor_names_guarded()
        .expect("address-mappings"));
    let lies_before = story.liar.lies();

    // ---------------------------------------------------------------- 4
    clock.phase(
        "4: curl loads example.tor and www.example.tor, also as .tor.onion; unknown.tor fails",
    );
    let (onion, onion2) = (story.onion.clone(), story.onion2.clone());
    story.fetch_named(&mut daemon, "example.tor", &onion, TEST_PAGE);
    story.fetch_named(&mut daemon, "www.example.tor", &onion2, WWW_PAGE);
    story.fetch_named(&mut daemon, "example.tor.onion", &onion, TEST_PAGE);
    story.fetch_named(&mut daemon, "www.example.tor.onion", &onion2, WWW_PAGE);
    let mark = story.log.mark();
    let unknown = curl(&story.runs, story.socks, "http://unknown.tor/", FETCH_LIMIT);
    assert!(
        !unknown.success() && unknown.stderr.contains("SOCKS"),
        "curl http://unknown.tor/ should fail with a SOCKS error: {}",
        unknown.describe()
    );
    let id = story.log.new_stream_to(mark, "unknown.tor");
    let events = story.log.wait_closed(&id);
    let closed = events.last().expect("CLOSED");
    assert_eq!(closed.reason(), Some("RESOLVEFAILED"), "{events:#?}");
    assert!(events.iter().all(|e| !e.on_circuit()), "{events:#?}");
    daemon.wait_log(
        &[&format!(
            "stream {id}: unknown.tor not resolved: not registered (proven absent)"
        )],
        1,
    );
    eprintln!(
        "  http://unknown.tor/ refused: curl exit {:?}: {}",
        unknown.code(),
        unknown.stderr.trim()
    );
    let lies = story.liar.lies() - lies_before;
    assert!(
        lies > 0,
        "the lying mirror was never asked:\n{}",
        daemon.log()
    );
    let liar_onion = story.net.get("TORNET_LIAR_ONION").to_owned();
    let set_aside = daemon.wait_log(
        &[
            &format!("mirror {liar_onion}:{SERVICE_PORT} lied about"),
            "not asking it for 600 s",
        ],
        1,
    );
    let honest = [
        ("example.tor", onion.as_str()),
        ("www.example.tor", onion2.as_str()),
    ];
    let count = assert_honest_redirects(&daemon, &honest);
    assert!(!daemon.log().contains(&onion_of(ATTACKER)));
    eprintln!(
        "  the liar answered {lies} time(s) and was set aside: {}\n  all {count} redirects \
         went to the genuine onions",
        set_aside[0].trim()
    );
    story.log.assert_no_leak("phase 4");

    // ---------------------------------------------------------------- 5
    clock.phase(
        "5: headless Firefox ESR, set up as Tor Browser, shows example.tor (and .tor.onion)",
    );
    screenshot(&mut story, &daemon, "example.tor", TEST_COLOR);
    screenshot(&mut story, &daemon, "www.example.tor", WWW_COLOR);
    screenshot(&mut story, &daemon, "example.tor.onion", TEST_COLOR);
    assert_honest_redirects(&daemon, &honest);

    // ---------------------------------------------------------------- 6
    clock.phase("6a: leaks: daemon up");
    story.fetch_named(&mut daemon, "example.tor", &onion, TEST_PAGE);
    story.plain_works(true);

    clock.phase("6b: leaks: daemon stopped with SIGTERM");
    let status = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    daemon.wait_log(&["stopping: stream attachment handed back to tor"], 1);
    assert_eq!(story.leave_streams_unattached(), "0");
    assert!(story
        .log
        .conn
        .tor_names_guarded()
        .expect("address-mappings"));
    story.fails_locally("example.tor");
    story.fails_locally("www.example.tor");
    story.plain_works(false);

    clock.phase("6b': leaks: daemon stopped and the guard mapping removed: .tor.onion");
    story.set_guard(false);
    story.refused_by_tor("example.tor.onion");
    story.refused_by_tor("www.example.tor.onion");
    story.set_guard(true);

    clock.phase("6c: leaks: daemon restarted, then killed with -9, then --release");
    let mut daemon = story.start_daemon("daemon-2.log");
    story.fetch_named(&mut daemon, "example.tor", &onion, TEST_PAGE);
    daemon.kill9();
    assert_eq!(
        story.leave_streams_unattached(),
        "1",
        "nobody reset it after kill -9: new streams wait for a controller"
    );
    // Both kinds of stream now hang, waiting for a controller that is gone.
    let mark = story.log.mark();
    let plain_url = format!("http://{onion}/");
    let mut plain = spawn_curl(&story.runs, story.socks, &plain_url, FETCH_LIMIT);
    let plain_id = story.log.new_stream_to(mark, &onion);
    let mut named = spawn_curl(&story.runs, story.socks, "http://example.tor/", FETCH_LIMIT);
    let named_id = story.log.new_stream_to(mark, "example.tor");
    for id in [&plain_id, &named_id] {
        story.log.wait_event(id, "CONTROLLER_WAIT", |e| {
            e.status == StreamStatus::ControllerWait
        });
    }
    std::thread::sleep(HANG_SHOWN);
    assert!(
        plain.is_running() && named.is_running(),
        "both fetches should hang until --release:\n{}",
        story.log.dump_from(mark)
    );
    for id in [&plain_id, &named_id] {
        let last = story.log.events_of(id).last().cloned().expect("events");
        assert_eq!(
            last.status,
            StreamStatus::ControllerWait,
            "stream {id} still waits: {}",
            describe_event(&last)
        );
    }
    eprintln!(
        "  after kill -9: http://{onion}/ and http://example.tor/ both hang in CONTROLLER_WAIT \
         ({:.0} s watched)",
        HANG_SHOWN.as_secs_f64()
    );
    let (status, text) = release(story.scratch.path(), &story.access(), &[]);
    assert_eq!(status.code(), Some(0), "{text}");
    // Both waiting streams are handed back: the plain one attached, the
    // `.tor` one failed inside Tor by the guard; each one's fate also shows
    // in Tor's events below.
    assert!(
        text.contains(
            "2 waiting streams handed back (1 attached, 1 .tor streams failed inside tor)"
        ),
        "onions-client --release said {text:?}"
    );
    assert_eq!(story.leave_streams_unattached(), "0");
    let plain_run: Run = plain.finish(FETCH_LIMIT + Duration::from_secs(10));
    assert!(
        plain_run.success() && plain_run.stdout.contains(TEST_PAGE),
        "after --release the waiting plain fetch completes: {}\n{}",
        plain_run.describe(),
        story.log.dump_from(mark)
    );
    let named_run = named.finish(Duration::from_secs(20));
    assert!(
        !named_run.success(),
        "the waiting .tor fetch fails after --release: {}",
        named_run.describe()
    );
    story.assert_guarded(&named_id, "example.tor");
    eprintln!(
        "  onions-client --release handed back both waiting streams; the plain fetch \
         loaded, the .tor one failed inside Tor (curl exit {:?})",
        named_run.code()
    );
    story.fails_locally("example.tor");
    story.plain_works(false);

    clock.phase("6d: leaks: daemon restarted");
    let mut daemon = story.start_daemon("daemon-3.log");
    story.fetch_named(&mut daemon, "example.tor", &onion, TEST_PAGE);
    story.fetch_named(&mut daemon, "www.example.tor", &onion2, WWW_PAGE);
    story.plain_works(true);
    assert_honest_redirects(&daemon, &honest);
    assert_eq!(daemon.terminate().code(), Some(0), "{}", daemon.log());
    for name in ["daemon-1.log", "daemon-2.log"] {
        let log = std::fs::read_to_string(story.scratch.join(name)).unwrap_or_default();
        for (id, host, target) in redirects(&log) {
            assert!(
                honest.iter().any(|(n, o)| *n == host && *o == target),
                "{name}: stream {id}: {host} -> {target}"
            );
        }
    }

    // ------------------------------------------------------------- the end
    clock.phase("end: no .tor name ever left the client; the network stops");
    story.log.assert_no_leak("the whole story");
    let tor_streams = story
        .log
        .seen
        .iter()
        .filter(|e| {
            e.status == StreamStatus::New && onions::tor::control::is_tor_target(&e.target_host)
        })
        .count();
    eprintln!(
        "  {} STREAM events, {tor_streams} .tor streams, none on a circuit as a name",
        story.log.seen.len()
    );
    let stopped = story.net.stop();
    eprintln!("  {}", stopped.trim_end().replace('\n', "\n  "));
    clock.report();
}

/// `DIR/env` is shell: single-quoted values, a quote written as `'\''`.
#[test]
fn the_network_env_file_is_unquoted() {
    let env = testkit::tornet::parse_env(
        "TORNET_DIR='/tmp/x'\nTORNET_CONTROL_PASSWORD='it'\\''s'\nTORNET_PIDS='1 2 3'\n",
    )
    .expect("parses");
    assert_eq!(env["TORNET_DIR"], "/tmp/x");
    assert_eq!(env["TORNET_CONTROL_PASSWORD"], "it's");
    assert_eq!(env["TORNET_PIDS"], "1 2 3");
    assert!(testkit::tornet::parse_env("KEY=bare\n").is_err());
    assert!(testkit::tornet::parse_env("KEY='open\n").is_err());
}

testkit::liar_entry!();
