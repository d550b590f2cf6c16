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
//!
//! This file is the entry and the run, phase by phase ([`run`]); the
//! settings are in [`settings`], the private network in [`network`], the
//! Quorum and mirror in [`servers`], one timed fetch through Tor in
//! [`fetch`], the five kinds of fetch of a round in [`kinds`], the
//! benchmark's own control connection in [`control`], and the printed
//! results in [`report`].

mod control;
mod fetch;
mod kinds;
mod network;
mod report;
mod servers;
mod settings;

use control::Control;
use fetch::{ms, Fetch, Series};
use kinds::{Kind, Target, KINDS};
use network::Network;
use servers::{print_key, wait_caught_up};
use settings::Settings;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testkit::process::{self, Proc};
use testkit::stats::percentile;
use testkit::{free_port_on, TempDir};

/// Fetches of each kind before the measured rounds, not counted.
const WARMUP: usize = 3;
/// The onion services' port, as scripts/tornet/start sets it.
const SERVICE_PORT: u16 = 10053;
/// How long a server or the daemon may take to start.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long one claim may take.
const CLAIM_LIMIT: Duration = Duration::from_secs(120);
/// How long the mirror may take to replicate every claim.
const REPLICATE_LIMIT: Duration = Duration::from_secs(60);
/// Pause after each fetch, so that one fetch's traffic does not slow the
/// next (a `.onion` fetch right after a lookup on the mirror takes tens of
/// milliseconds longer, daemon or not).
const PAUSE: Duration = Duration::from_millis(200);

fn main() {
    process::install_panic_hook(network::stop_network_on_panic);
    let settings = Settings::from_env();
    settings.print();
    let report = run(&settings);
    report.print(&settings);
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

/// The run: the network, the servers, the claims, the daemon, the
/// warm-up and the measured rounds; then everything stopped.
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
