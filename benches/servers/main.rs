//! Benchmark of the real servers: release `onions-server` processes on
//! loopback, measured against references run on the same machine in the
//! same run, so that the ratios, not the noisy absolute numbers, tell
//! whether the servers are as fast as they should be. Every message goes
//! through the typed protocol module `onions::wire` (protocol v2):
//!
//! 1. mirror lookups per second over 50 unpipelined connections driven by
//!    one polling thread as redis-benchmark's are, every answer carrying
//!    its head and proof (one in 32 decoded by `Reply::parse`), against
//!    `redis-benchmark -t get -c 50 -n 200000` on a `redis-server` this
//!    benchmark starts (the sides alternate; medians are compared), with
//!    a thread per connection measured beside it; `-t get` asks for a key
//!    nobody set, so row 1b holds the same lookups against `GET` of a key
//!    holding as many bytes as the median `found` reply line;
//! 2. the mirror's CPU time per lookup (utime + stime from /proc) against
//!    redis-server's per GET;
//! 3. the mirrors' resident memory (VmRSS, VmHWM) once they hold every
//!    record and their tree;
//! 4. the size of `records.log` (and of the whole state directory);
//! 5. the Quorum's durable ingest rate (8 connections, one put in flight on
//!    each) against the machine's bound for one verification and one
//!    signature per record, on all cores, and, at the end of the run with
//!    the mirrors stopped, the rate of renewals of live names (5b) and of
//!    new names over 64 connections (5c), whose batches grow;
//! 6. a fresh mirror's catch-up (until it answers against a head covering
//!    every record) against the bound for two verifications per record;
//! 7. propagation of a put through the Quorum, mirror A and mirror B: when
//!    each pushes the record, pushes a head covering it, and answers a
//!    lookup of it with `found` (a head covering it matched its audit;
//!    asked from the record's push on);
//! 8. bytes of a proof on the wire (presence and absence) against the
//!    protocol's reference means (PROTOCOL.md §10.9), every sampled answer
//!    checked by `onions::lookup::check_reply`;
//! 9. the Quorum's time from a decided batch to its head signed and durable
//!    and a mirror's time to audit a head (status `head_timing`), against
//!    an fsync and a signature, and against recomputing the root in this
//!    process;
//! 10. start-up: a caught-up mirror, then the Quorum, stopped with SIGTERM
//!     and started again, timed until it answers a lookup with `found`.
//!
//! The Quorum listens on 127.0.0.1, mirror A on 127.0.0.2 (upstream: the
//! Quorum), mirror B on 127.0.0.3 (upstream: A). State directories live in
//! one temporary directory removed at the end; every process is stopped by
//! its PID at the end, also when the benchmark panics. Every wait has a
//! deadline. The binaries are `target/release/onions-server` under the
//! crate's directory: build them first (`scripts/bench-servers` does).
//!
//! `ONIONS_BENCH_RECORDS` sets the number of records (default 2^20);
//! `ONIONS_BENCH_LOG_LEVEL`, if set, is given to every server as
//! `--log-level` (default: the servers' own, `info`);
//! `ONIONS_BENCH_SERVER`, if set, is the `onions-server` binary to run
//! instead (for example one built with symbols, to profile). Arguments,
//! such as cargo's `--bench`, are ignored.
//!
//! This file is the entry: the run's phases in order ([`Bench::run`]) and
//! the results table's frame ([`Report`]). Each phase lives in a module of
//! its own with the rows it prints: [`settings`], [`server`] (a running
//! `onions-server`), [`records`] (signing the put lines), [`bound`] (the
//! machine's verify and sign rates), [`ingest`] (5), [`heads`] (9 and its
//! baselines), [`catch_up`] (6), [`proofs`] (8), [`lookups`] (1 and 2,
//! against the redis baseline), [`footprint`] (3 and 4), [`propagation`]
//! (7), [`startup`] (10); [`table`] lays the rows out; [`polled`] is the
//! lookup load of rows 1 and 2; [`profile`] the `profile` notes (CPU by
//! thread, context switches and system calls per operation) under rows 1–2,
//! 5 and 6.

mod bound;
mod catch_up;
mod footprint;
mod heads;
mod ingest;
mod lookups;
mod polled;
mod profile;
mod proofs;
mod propagation;
mod records;
mod server;
mod settings;
mod startup;
mod table;

use bound::CryptoRates;
use catch_up::CatchUp;
use footprint::Memory;
use heads::{HeadBaselines, Timings};
use ingest::Ingest;
use lookups::LookupRun;
use proofs::ProofSizes;
use propagation::Propagation;
use server::Server;
use settings::{scale_text, Settings};
use startup::Restart;
use std::io::Write;
use std::time::Instant;
use testkit::process;
use testkit::records::Maker;
use testkit::redis::Redis;
use testkit::TempDir;

/// The scale the goals are stated at.
const GOAL_SCALE: usize = 1 << 20;

fn main() {
    onions::keys::init().unwrap_or_else(|e| settings::fail(e));
    process::install_panic_hook(|| {});
    let settings = Settings::from_env();
    settings.print();
    let mut bench = Bench::new(settings);
    let report = bench.run();
    drop(bench);
    report.print();
}

// ------------------------------------------------------------------- bench

/// The run: its settings, scratch directory and every process it started.
/// Fields drop in order: servers and redis stop before the directory goes.
struct Bench {
    quorum: Option<Server>,
    mirror_a: Option<Server>,
    mirror_b: Option<Server>,
    redis: Option<Redis>,
    /// The phases ended so far, with their wall times.
    phases: Vec<Phase>,
    settings: Settings,
    started: Instant,
    dir: TempDir,
}

/// One timed phase, printed as it ends.
struct Phase {
    name: String,
    secs: f64,
}

impl Bench {
    fn new(settings: Settings) -> Bench {
        Bench {
            quorum: None,
            mirror_a: None,
            mirror_b: None,
            redis: None,
            phases: Vec::new(),
            settings,
            started: Instant::now(),
            dir: TempDir::new("bench-servers"),
        }
    }

    /// Prints the end of a phase with its wall time.
    fn phase(&mut self, name: &str, since: Instant, detail: &str) {
        let secs = since.elapsed().as_secs_f64();
        println!(
            "[{:>7.1} s] {name}: {secs:.1} s{}{detail} [load {}]",
            self.started.elapsed().as_secs_f64(),
            if detail.is_empty() { "" } else { "; " },
            process::load_average()
        );
        let _ = std::io::stdout().flush();
        self.phases.push(Phase {
            name: name.into(),
            secs,
        });
    }

    fn quorum(&self) -> &Server {
        self.quorum.as_ref().expect("started")
    }

    fn mirror_a(&self) -> &Server {
        self.mirror_a.as_ref().expect("started")
    }

    /// Every phase in turn; what they measured.
    fn run(&mut self) -> Report {
        let n = self.settings.records;
        let maker = Maker::new(records::SEED_TAG);
        let (chunks, puts) = self.sign_records(&maker);
        let mut rates = CryptoRates::default();
        self.crypto_rates(&maker, &mut rates, "verify/sign rates (1 of 2)");
        let quorum = self.quorum_ingest(chunks);
        let (seqs, baselines) = self.head_baselines(&quorum);
        self.crypto_rates(&maker, &mut rates, "verify/sign rates (2 of 2)");
        let catch_up_a = self.catch_up_a(&quorum.key);
        let proofs = self.proof_sizes(&seqs, &quorum.policy);
        let (onions_runs, redis_runs, memory_after_lookups, lookup_profile) =
            self.lookups(&quorum.policy, proofs.median_found_line());
        let catch_up_b = self.catch_up_b(&quorum.key);
        let disk = self.disk();
        let (propagation, propagation_heads) = self.propagation(&puts);
        let (restart_a, restart_quorum) = self.restarts();
        let t = Instant::now();
        stop([&mut self.mirror_b, &mut self.mirror_a]);
        self.phase("stop mirrors", t, "");
        let renewals = self.quorum_renewals(&maker);
        let wide_ingest = self.quorum_wide_ingest(&maker);

        let t = Instant::now();
        stop([&mut self.quorum]);
        self.phase("stop the Quorum", t, "");

        Report {
            records: n,
            cores: self.settings.cores,
            phases: std::mem::take(&mut self.phases),
            rates,
            ingest: quorum.ingest,
            renewals,
            wide_ingest,
            quorum_cpu: quorum.cpu,
            ingest_profile: quorum.profile,
            quorum_memory: quorum.memory,
            catch_up_a,
            catch_up_b,
            onions_runs,
            redis_runs,
            memory_after_lookups,
            lookup_profile,
            disk,
            proofs,
            baselines,
            quorum_ingest_heads: quorum.heads,
            propagation_heads,
            propagation,
            restart_a,
            restart_quorum,
        }
    }
}

/// Stops each server still running, checking first that it did not die.
fn stop<const N: usize>(servers: [&mut Option<Server>; N]) {
    for server in servers {
        if let Some(mut s) = server.take() {
            s.proc.check_running();
            let _ = s.proc.stop();
        }
    }
}

// ------------------------------------------------------------------ report

/// Everything the table shows.
struct Report {
    records: usize,
    cores: usize,
    phases: Vec<Phase>,
    rates: CryptoRates,
    ingest: Ingest,
    renewals: ingest::Puts,
    wide_ingest: ingest::Puts,
    quorum_cpu: f64,
    ingest_profile: profile::Profile,
    quorum_memory: Memory,
    catch_up_a: CatchUp,
    catch_up_b: CatchUp,
    onions_runs: Vec<LookupRun>,
    redis_runs: lookups::RedisRuns,
    memory_after_lookups: Memory,
    lookup_profile: profile::Profile,
    disk: [(u64, u64); 3],
    proofs: ProofSizes,
    baselines: HeadBaselines,
    quorum_ingest_heads: Timings,
    propagation_heads: [Timings; 3],
    propagation: Propagation,
    restart_a: Restart,
    restart_quorum: Restart,
}

impl Report {
    /// The phases' wall times, then the results table, row by row.
    fn print(&self) {
        let n = self.records as f64;
        let per_goal = GOAL_SCALE as f64 / n;
        println!();
        println!("phase wall times");
        for p in &self.phases {
            println!("  {:<42} {:>8.1} s", p.name, p.secs);
        }
        let total: f64 = self.phases.iter().map(|p| p.secs).sum();
        println!("  {:<42} {total:>8.1} s", "total");
        println!();
        println!(
            "results at {} records{}, {} cores (goals are stated at 2^20 records); load average at the end {}",
            self.records,
            scale_text(self.records),
            self.cores,
            process::load_average()
        );
        println!(
            "{:<3}{:<50} {:>15}  {:<46} {:>7}  {:<15} met",
            "#", "figure", "onions", "baseline", "ratio", "goal"
        );
        self.print_lookups();
        self.print_memory();
        self.print_disk(n, per_goal);
        self.print_ingest();
        self.print_renewals();
        self.print_wide_ingest();
        self.print_catch_up(n);
        self.print_propagation();
        self.print_proofs();
        self.print_heads();
        self.print_restarts();
    }
}
