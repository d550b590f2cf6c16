//! What witnesses (PROTOCOL.md §11) cost, on loopback, against the same
//! servers without witnesses in the same run:
//!
//! 1. propagation: from sending a put to the Quorum to the first lookup at
//!    mirror B answered `found` on a head with 2 valid trusted cosignatures
//!    (polled every 100 µs, each answer checked by `check_reply`), p50 and
//!    p90 of 200 puts one at a time, the two chains alternating;
//! 2. lookups/s over 50 unpipelined connections of random registered names
//!    at mirror B (cosigned answers) and mirror B' (none), against
//!    `redis-benchmark -t get -c 50 -n 200000` (alternating, 3 runs each,
//!    medians).
//!
//! With witnesses: a Quorum on 127.0.0.1 (`--head-interval 1`, trusting the
//! witness keys); witnesses on 127.0.0.11-13 replicating it and sending it
//! their cosignatures; mirror A (127.0.0.2) under witness 0 and B
//! (127.0.0.3) under A, both requiring 2 of the 3. Without: a Quorum on
//! 127.0.0.4 (`--head-interval 1`), A' on .5 and B' on .6. Both Quorums
//! first take the same 10,000 records. Processes are stopped by PID (killed
//! on a panic), the temporary directory removed, every wait bounded. The
//! binary is `target/release/onions-server` or `ONIONS_BENCH_SERVER`.
//!
//! This file is the entry: the run's parameters and its phases in order
//! ([`Bench::run`]). The servers are in [`chain`], the registration before
//! the measurements in [`ingest`], figure 1 in [`propagation`], figure 2
//! in [`lookups`] (against testkit's redis baseline), and the table's
//! layout in [`table`].

mod chain;
mod ingest;
mod lookups;
mod propagation;
mod table;

use chain::Chain;
use lookups::{lookup_run, LookupRun};
use propagation::{propagate, Sample};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testkit::line::LineConn;
use testkit::process;
use testkit::records::Maker;
use testkit::redis::{Get, Redis};
use testkit::TempDir;

const NAMES: usize = 10_000; // registered before the measurements
const SEED_TAG: &[u8; 24] = b"onions-bench-witness-key"; // owner seeds: number, then this
const INGEST_CONNS: usize = 8; // registration connections, one put in flight on each
const PROPAGATION_SAMPLES: usize = 200; // puts timed one at a time on each chain
const ANSWER_POLL: Duration = Duration::from_micros(100); // between lookups of a new name
const NEEDED: usize = 2; // cosignatures required of the three witnesses
const LOOKUP_CONNS: usize = 50; // connections of a lookup run, as redis-benchmark's -c
const LOOKUPS_PER_RUN: usize = 200_000; // as redis-benchmark's -n
const LOOKUP_ROUNDS: usize = 3; // runs of each side, alternating
/// A lookup run decodes one reply in this many (each connection's first is
/// checked in full), so that the load generator leaves the cores to the
/// servers, as in benches/servers.
const DECODE_SAMPLE: usize = 32;
const START_LIMIT: Duration = Duration::from_secs(30); // until a server listens
const REPLY_LIMIT: Duration = Duration::from_secs(30); // one reply; one put until found at B
const CATCH_UP_LIMIT: Duration = Duration::from_secs(600); // mirrors holding every name
const BUSY_RETRIES: u32 = 1000; // tries of a put answered `busy`
const POLL: Duration = Duration::from_millis(20); // between status polls
const STALL_LIMIT: Duration = Duration::from_secs(120); // catching up with no progress
const PROPAGATION_GOAL_MS: f64 = 10.0; // p50 with witnesses
const LOOKUP_GOAL: f64 = 0.95; // lookups/s with witnesses over without

fn main() {
    onions::keys::init().unwrap_or_else(|e| fail(e));
    process::install_panic_hook(|| {});
    let bin = testkit::bench_server();
    if !bin.is_file() {
        let bin = bin.display();
        fail(&format!("{bin} is missing"));
    }
    if let Some(tool) = testkit::redis::missing_tool() {
        fail(&format!("`{tool}` is not on PATH"));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("onions witnesses benchmark: {NAMES} names, {cores} cores");
    println!("server binary: {}", bin.display());
    println!("load average at start: {}\n", process::load_average());
    let mut bench = Bench {
        chains: Vec::new(),
        bin,
        started: Instant::now(),
        dir: TempDir::new("bench-witnesses"),
    };
    let report = bench.run();
    drop(bench);
    report.print();
}

/// Prints `message` and exits (only before any process is started).
fn fail(message: &str) -> ! {
    eprintln!(
        "bench witnesses: {message}; scripts/bench-witnesses installs redis-server and builds"
    );
    std::process::exit(2)
}

// ------------------------------------------------------------------- bench

/// The run and every process it started. Fields drop in order: the
/// servers stop by their PIDs before the directory is removed.
struct Bench {
    /// With witnesses, then without.
    chains: Vec<Chain>,
    bin: PathBuf,
    started: Instant,
    dir: TempDir,
}

/// Everything the table shows; each pair is with witnesses, without.
struct Report {
    samples: [Vec<Sample>; 2],
    lookups: [Vec<LookupRun>; 2],
    redis: Vec<f64>,
}

impl Bench {
    /// Prints the end of a phase with its wall time.
    fn phase(&self, what: &str, since: Instant) {
        let at = self.started.elapsed().as_secs_f64();
        let (secs, load) = (since.elapsed().as_secs_f64(), process::load_average());
        println!("[{at:>6.1} s] {what}: {secs:.1} s [load {load}]");
        let _ = std::io::stdout().flush();
    }

    /// Every phase in turn; what they measured.
    fn run(&mut self) -> Report {
        let dir = self.dir.path().to_owned();
        let t = Instant::now();
        let lines = Maker::new(SEED_TAG).put_lines(0..NAMES + PROPAGATION_SAMPLES);
        let (names, puts) = lines.split_at(NAMES);
        self.phase(&format!("sign {} records", lines.len()), t);

        let t = Instant::now();
        let bin = &self.bin;
        let chains = [(true, [1, 2, 3]), (false, [4, 5, 6])];
        self.chains = (chains.into_iter())
            .map(|(w, ips)| Chain::start(bin, &dir, w, ips))
            .collect();
        self.phase("start a Quorum, 3 witnesses, A, B; a Quorum, A', B'", t);

        for side in 0..2 {
            let t = Instant::now();
            let chain = &mut self.chains[side];
            let rate = ingest::ingest(chain.quorum.addr, names);
            let ingested = Instant::now();
            chain.wait_caught_up(NAMES as u64);
            let (what, later) = (&chain.quorum.proc.what, ingested.elapsed().as_secs_f64());
            let what = format!(
                "{NAMES} puts to the {what}, {rate:.0}/s; A and B caught up {later:.1} s later"
            );
            self.phase(&what, t);
        }

        let t = Instant::now();
        let mut samples: [Vec<Sample>; 2] = Default::default();
        let connect = |addr| LineConn::connect(addr, REPLY_LIMIT);
        let mut conns: Vec<(LineConn, LineConn)> = (self.chains.iter())
            .map(|c| (connect(c.quorum.addr), connect(c.b.addr)))
            .collect();
        for (j, put) in puts.iter().enumerate() {
            let name = Maker::name(NAMES + j);
            for side in [j % 2, 1 - j % 2] {
                let sample = propagate(&mut conns[side], put, &name, &self.chains[side].policy);
                samples[side].push(sample);
            }
        }
        drop(conns);
        self.phase("propagation, one put at a time, the chains alternating", t);

        let t = Instant::now();
        let mut redis_server = Redis::start(&dir);
        let mut lookups: [Vec<LookupRun>; 2] = Default::default();
        let mut redis = Vec::new();
        for round in 0..LOOKUP_ROUNDS {
            let mut sides = [0, 1, 2];
            sides.rotate_left(round % 3);
            for side in sides {
                if side == 2 {
                    let run =
                        redis_server.get_run(&dir, Get::Missing, LOOKUP_CONNS, LOOKUPS_PER_RUN);
                    redis.push(run.rate);
                } else {
                    let Chain { b, policy, .. } = &mut self.chains[side];
                    lookups[side].push(lookup_run(b, (round * 3 + side) as u64, policy));
                }
            }
        }
        drop(redis_server);
        self.phase("lookups at B, at B', redis GET, alternating", t);

        for w in &self.chains[0].witnesses {
            let witness = w.status().cosignatures.and_then(|c| c.witness);
            let alarm = witness.map(|w| w.alarm);
            assert!(matches!(alarm, Some(None)), "{}: {alarm:?}", w.proc.what);
        }
        let t = Instant::now();
        self.chains.clear();
        self.phase("stop servers", t);
        Report {
            samples,
            lookups,
            redis,
        }
    }
}

impl Report {
    /// The results table: figure 1, then figure 2.
    fn print(&self) {
        let load = process::load_average();
        println!("\nresults; load average at the end {load}");
        let head = ["#", "figure", "witnesses", "baseline", "ratio", "goal"];
        let [num, what, value, base, ratio, goal] = head;
        println!("{num:<3}{what:<48} {value:>12}  {base:<38} {ratio:>7}  {goal:<9} met");
        self.print_propagation();
        self.print_lookups();
    }
}
