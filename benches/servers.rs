//! Benchmark of the real servers: release `onions-server` processes on
//! loopback, measured against references run on the same machine in the
//! same run, so that the ratios, not the noisy absolute numbers, tell
//! whether the servers are as fast as they should be. Every message goes
//! through the typed protocol module `onions::wire` (protocol v2):
//!
//! 1. mirror lookups per second over 50 unpipelined connections, every
//!    answer carrying its head and proof and decoded by `Reply::parse`,
//!    against `redis-benchmark -t get -c 50 -n 200000` on a `redis-server`
//!    this benchmark starts (the two alternate; medians are compared);
//! 2. the mirror's CPU time per lookup (utime + stime from /proc) against
//!    redis-server's per GET;
//! 3. the mirrors' resident memory (VmRSS, VmHWM) once they hold every
//!    record and their tree;
//! 4. the size of `records.log` (and of the whole state directory);
//! 5. the Quorum's durable ingest rate (8 connections, one put in flight on
//!    each) against the machine's bound for one verification and one
//!    signature per record, on all cores;
//! 6. a fresh mirror's catch-up (until it answers against a head covering
//!    every record) against the bound for two verifications per record;
//! 7. propagation of a put through the Quorum, mirror A and mirror B: when
//!    each pushes the record, pushes a head covering it, and answers a
//!    lookup of it with `found` (a head covering it matched its audit);
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

use onions::attest::Attestation;
use onions::keys::{PublicKey, SigningKey};
use onions::lookup::{check_reply, Policy, Resolution};
use onions::merkle::{self, Hash, LeafKey};
use onions::name::{LookupName, RegisteredName, SubdomainKey};
use onions::onion::OnionAddress;
use onions::record::{Claim, Record, RecordId};
use onions::verify::Verifier;
use onions::wire::{Code, HeadTiming, Id, Push, Reply, Request, Status};
use sodiumoxide::crypto::sign::ed25519;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Barrier};
use std::time::{Duration, Instant};
use testkit::line::LineConn;
use testkit::process::{self, Proc};
use testkit::servers::answering_head;
use testkit::{free_port_on, TempDir, XorShift};

/// Records when `ONIONS_BENCH_RECORDS` is unset or empty: 2^20.
const DEFAULT_RECORDS: usize = 1 << 20;
/// Most records accepted, to keep memory and time bounded.
const MAX_RECORDS: usize = 1 << 24;
/// The scale the goals are stated at.
const GOAL_SCALE: usize = 1 << 20;
/// Names one owner key claims: names are first come, first served per
/// name, so one key may hold many, and few keys means few key derivations.
const NAMES_PER_KEY: usize = 1024;
/// Records signed as one unit of parallel work (a multiple of
/// [`NAMES_PER_KEY`], so a unit derives whole keys).
const CHUNK: usize = 4096;
/// Connections the Quorum's ingest runs over, one put in flight on each.
const INGEST_CONNS: usize = 8;
/// Connections (one thread each) of a lookup run, as redis-benchmark's -c.
const LOOKUP_CONNS: usize = 50;
/// Lookups of one run, as redis-benchmark's -n.
const LOOKUPS_PER_RUN: usize = 200_000;
/// Runs of each side of the lookup comparison, alternating.
const LOOKUP_ROUNDS: usize = 3;
/// The lighter lookup client decodes one reply in this many (the other
/// decodes every one).
const DECODE_SAMPLE: usize = 32;
/// Registered names looked up for the proof sizes.
const PROOF_FOUND_SAMPLES: usize = 10_000;
/// Unregistered names looked up for the absence proof sizes.
const PROOF_ABSENT_SAMPLES: usize = 2_000;
/// PROTOCOL.md §10.9: the reference's mean presence proof as canonical
/// JSON, in bytes, at 2^10, 2^16 and 2^20 entries.
const REFERENCE_PROOF: [(u32, f64); 3] = [(10, 557.0), (16, 841.0), (20, 1027.0)];
/// PROTOCOL.md §10.9: an absence proof is about this much longer.
const ABSENCE_EXTRA: f64 = 35.0;
/// Records put one at a time for the propagation latency.
const PROPAGATION_SAMPLES: usize = 200;
/// Pause between two lookups of a name not answerable yet.
const ANSWER_POLL: Duration = Duration::from_micros(100);
/// Rounds of the verify/sign rate measurement (order reversed every other).
const CRYPTO_ROUNDS: u32 = 4;
/// Time of one round of one crypto case.
const CRYPTO_ROUND: Duration = Duration::from_millis(500);
/// Appends and fdatasyncs timed for the fsync baseline.
const FSYNC_ROUNDS: usize = 50;
/// Paths hashed for the path baseline.
const PATH_ROUNDS: u32 = 20_000;
/// How long a server or redis may take to start listening.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long a restarted server may take to answer a lookup.
const RESTART_LIMIT: Duration = Duration::from_secs(300);
/// Pause between tries while a restarted server is not answering yet.
const RESTART_POLL: Duration = Duration::from_millis(2);
/// The start-up goal (until a lookup is answered `found`), at 2^20.
const STARTUP_GOAL: f64 = 5.0;
/// How long a catching-up mirror's seq and answering head may stay put
/// before it is called stalled: longer than a mirror's default upstream
/// silence limit (45 s), so a mirror that could recover by reconnecting
/// would have done so.
const STALL_LIMIT: Duration = Duration::from_secs(60);
/// How long one reply or push may take.
const REPLY_LIMIT: Duration = Duration::from_secs(60);
/// How long one redis-benchmark run may take.
const REDIS_RUN_LIMIT: Duration = Duration::from_secs(300);
/// Tries of one put that keeps being answered `busy`.
const BUSY_RETRIES: u32 = 1000;
/// Pause between status polls.
const POLL: Duration = Duration::from_millis(20);
/// Onion addresses in each record (the owner's and one subdomain's):
/// parsing a record checks each one's point.
const ADDRESSES: f64 = 2.0;
/// The seed of owner keys is this tag after the owner number.
const SEED_TAG: &[u8; 24] = b"onions-bench-servers-key";
/// The goal for a mirror's resident memory at 2^20 records.
const GOAL_RSS: u64 = 64 << 20;

fn main() {
    onions::keys::init().unwrap_or_else(|e| fail(e));
    process::install_panic_hook(|| {});
    let settings = Settings::from_env();
    settings.print();
    let mut bench = Bench::new(settings);
    let report = bench.run();
    drop(bench);
    report.print();
}

// ---------------------------------------------------------------- settings

/// What a run uses: from the environment, checked before any work.
struct Settings {
    records: usize,
    cores: usize,
    server_bin: PathBuf,
    log_level: Option<String>,
}

impl Settings {
    fn from_env() -> Settings {
        let records = match std::env::var("ONIONS_BENCH_RECORDS").unwrap_or_default() {
            text if text.is_empty() => DEFAULT_RECORDS,
            text => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_RECORDS).contains(n))
                .unwrap_or_else(|| {
                    fail(&format!(
                        "ONIONS_BENCH_RECORDS={text:?}: expected a number of records from 1 to {MAX_RECORDS}"
                    ))
                }),
        };
        let log_level = std::env::var("ONIONS_BENCH_LOG_LEVEL")
            .ok()
            .filter(|l| !l.is_empty());
        let server_bin = std::env::var_os("ONIONS_BENCH_SERVER")
            .filter(|s| !s.is_empty())
            .map_or_else(
                || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/onions-server"),
                PathBuf::from,
            );
        if !server_bin.is_file() {
            fail(&format!(
                "{} is missing: build it with `cargo build --release --bins` (scripts/bench-servers does)",
                server_bin.display()
            ));
        }
        for tool in ["redis-server", "redis-benchmark"] {
            if find_on_path(tool).is_none() {
                fail(&format!(
                    "`{tool}` is not on PATH: install Debian's redis-server package \
                     (apt-get install -y redis-server; scripts/bench-servers does)"
                ));
            }
        }
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Settings {
            records,
            cores,
            server_bin,
            log_level,
        }
    }

    fn print(&self) {
        println!(
            "onions servers benchmark (protocol {}): {} records{}, {} cores, server log level {}",
            onions::wire::PROTOCOL,
            self.records,
            scale_text(self.records),
            self.cores,
            self.log_level.as_deref().unwrap_or("default (info)")
        );
        println!("server binary: {}", self.server_bin.display());
        println!(
            "load average at start: {} (other work on the machine skews every figure)",
            process::load_average()
        );
        if let Some(newer) = testkit::newer_source(&self.server_bin) {
            println!(
                "WARNING: {} is newer than the server binary; run `cargo build --release --bins`",
                newer.display()
            );
        }
        println!();
    }
}

/// " (2^k)" for a power of two, else nothing.
fn scale_text(n: usize) -> String {
    if n.is_power_of_two() {
        format!(" (2^{})", n.trailing_zeros())
    } else {
        String::new()
    }
}

/// Where `tool` is on PATH, if anywhere.
fn find_on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// Prints `message` and exits with a failure status (only before any
/// process is started: exiting skips the guards).
fn fail(message: &str) -> ! {
    eprintln!("bench servers: {message}");
    std::process::exit(2)
}

// ----------------------------------------------------------------- servers

/// The `head_timing` of a status (zero when the server sends none).
fn timing(status: &Status) -> HeadTiming {
    status.head_timing.unwrap_or_default()
}

/// A running `onions-server`.
struct Server {
    proc: Proc,
    addr: SocketAddr,
    state: PathBuf,
    label: String,
    role_args: Vec<String>,
}

impl Server {
    /// Starts a server of `role_args` on `ip` with its state in `state`.
    fn start(
        settings: &Settings,
        label: &str,
        ip: &str,
        state: &Path,
        role_args: &[&str],
    ) -> Server {
        std::fs::create_dir_all(state)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", state.display()));
        let addr: SocketAddr = format!("{ip}:{}", free_port_on(ip))
            .parse()
            .expect("an IPv4 socket address");
        let role_args: Vec<String> = role_args.iter().map(|a| (*a).to_owned()).collect();
        let proc = spawn_server(
            settings,
            &format!("{label} on {addr}"),
            addr,
            state,
            &role_args,
            &state.with_extension("log"),
        );
        let mut server = Server {
            proc,
            addr,
            state: state.to_owned(),
            label: label.to_owned(),
            role_args,
        };
        server.proc.wait_listening(addr, START_LIMIT);
        server
    }

    /// The server's status.
    fn status(&self) -> Status {
        let request = Request::Status {
            id: Id::Text("bench".into()),
        };
        match LineConn::connect(self.addr, REPLY_LIMIT).request(&request) {
            Reply::Status { status, .. } => *status,
            other => panic!("{}: status answered {other}", self.proc.what),
        }
    }

    /// Waits (bounded by `limit`) until the server has applied records up
    /// to `seq` and answers against a head covering it. Fails if neither
    /// moves for [`STALL_LIMIT`].
    fn wait_caught_up(&mut self, seq: u64, limit: Duration) -> Status {
        let deadline = Instant::now() + limit;
        let mut last = ((0, 0), Instant::now());
        loop {
            self.proc.check_running();
            let status = self.status();
            let answering = answering_head(&status).map_or(0, |h| h.seq);
            if status.seq >= seq && answering >= seq {
                return status;
            }
            if (status.seq, answering) != last.0 {
                last = ((status.seq, answering), Instant::now());
            }
            assert!(
                last.1.elapsed() < STALL_LIMIT,
                "{} stalled: seq {} and answering head seq {answering} stayed put for \
                 {STALL_LIMIT:?} while waiting for {seq} (its upstream has them); status {status}; \
                 its log ends:\n{}",
                self.proc.what,
                status.seq,
                self.proc.log_tail()
            );
            assert!(
                Instant::now() < deadline,
                "{} at seq {} (answering head seq {answering}) waiting for {seq} after {limit:?}; \
                 status {status}; its log ends:\n{}",
                self.proc.what,
                status.seq,
                self.proc.log_tail()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Bytes of `records.log`.
    fn log_bytes(&self) -> u64 {
        let path = self.state.join("records.log");
        std::fs::metadata(&path)
            .map(|m| m.len())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Bytes of every file in the state directory.
    fn dir_bytes(&self) -> u64 {
        std::fs::read_dir(&self.state)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    }

    /// VmRSS and VmHWM, in bytes.
    fn memory(&self) -> Memory {
        Memory {
            rss: self.proc.status_kib("VmRSS") * 1024,
            hwm: self.proc.status_kib("VmHWM") * 1024,
        }
    }

    /// Stops the server with SIGTERM, starts it again on the same address
    /// and state, and times it until it answers a lookup of `name` (a
    /// registered name it holds) with `found`.
    fn restart(&mut self, settings: &Settings, name: &str) -> Restart {
        let before = answering_head(&self.status()).cloned();
        let t = Instant::now();
        let exit = self.proc.stop();
        let stop = t.elapsed().as_secs_f64();
        let started = Instant::now();
        self.proc = spawn_server(
            settings,
            &format!("{} on {} (restarted)", self.label, self.addr),
            self.addr,
            &self.state,
            &self.role_args,
            &self.state.with_extension("restart.log"),
        );
        let request = Request::Lookup {
            id: Id::Number(1),
            name: LookupName::from_user(name).expect("a valid name"),
        };
        let deadline = started + RESTART_LIMIT;
        let mut conn: Option<LineConn> = None;
        let mut listening = None;
        let mut refusals = 0u64;
        let head = loop {
            self.proc.check_running();
            assert!(
                Instant::now() < deadline,
                "{} did not answer {name} within {RESTART_LIMIT:?} of its restart; its log ends:\n{}",
                self.proc.what,
                self.proc.log_tail()
            );
            let Some(c) = conn.as_mut() else {
                match LineConn::try_connect(self.addr, Duration::from_millis(200), REPLY_LIMIT) {
                    Ok(c) => {
                        listening.get_or_insert(started.elapsed().as_secs_f64());
                        conn = Some(c);
                    }
                    Err(_) => std::thread::sleep(RESTART_POLL),
                }
                continue;
            };
            match c.try_request(&request) {
                Ok(Reply::Found { record, head, .. }) => {
                    assert_eq!(record.name.as_str(), name, "the restarted server's answer");
                    break head;
                }
                Ok(Reply::Error(e)) if e.code.is_transient() => {
                    refusals += 1;
                    std::thread::sleep(RESTART_POLL);
                }
                Ok(other) => panic!(
                    "{} answered the lookup of {name} with {other} after its restart",
                    self.proc.what
                ),
                Err(_) => {
                    conn = None;
                    std::thread::sleep(RESTART_POLL);
                }
            }
        };
        let found = started.elapsed().as_secs_f64();
        let status = self.status();
        Restart {
            exit: exit.map_or_else(|| "not seen".to_owned(), |s| s.to_string()),
            stop,
            listening: listening.unwrap_or(found),
            found,
            refusals,
            restored: before.as_ref() == Some(&head),
            head_seq: head.seq,
            seq: status.seq,
            memory: self.memory(),
        }
    }
}

/// Starts `onions-server` with `role_args` on `addr`, its state in `state`.
fn spawn_server(
    settings: &Settings,
    what: &str,
    addr: SocketAddr,
    state: &Path,
    role_args: &[String],
    log: &Path,
) -> Proc {
    let mut command = Command::new(&settings.server_bin);
    command
        .args(role_args)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--state-dir")
        .arg(state);
    if let Some(level) = &settings.log_level {
        command.arg("--log-level").arg(level);
    }
    Proc::spawn(command, what, log)
}

/// The Quorum key of the state directory `state`, from `--print-key`.
fn print_key(settings: &Settings, state: &Path) -> String {
    std::fs::create_dir_all(state)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", state.display()));
    testkit::servers::print_key_with(Command::new(&settings.server_bin), state)
}

/// What a client checks answers against: the run's Quorum key, work 0.
fn policy(key: &str) -> Policy {
    let key = PublicKey::from_base64(key)
        .unwrap_or_else(|| panic!("--print-key gave {key:?}, not a Base64 key"));
    Policy {
        verifier: Verifier {
            min_work: 0,
            trusted: vec![key],
            max_skew: None,
        },
        max_head_age: onions::lookup::DEFAULT_MAX_HEAD_AGE,
        witnesses: Default::default(),
    }
}

/// A lookup request for `name`.
fn lookup_request(id: u64, name: &str) -> Request {
    Request::Lookup {
        id: Id::Number(id),
        name: LookupName::from_user(name).expect("a valid name"),
    }
}

// ----------------------------------------------------------------- clients

/// A line-protocol connection with a bounded wait for each line.
/// Shuts the sockets down when dropped, so threads blocked reading them
/// end at once when the benchmark stops early.
struct Shutter(Vec<TcpStream>);

impl Drop for Shutter {
    fn drop(&mut self) {
        for stream in &self.0 {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

// ----------------------------------------------------------------- records

/// Signs records `bench-I.tor`, shaped like protocol.md's example (one
/// subdomain, a 40-character contact, a week's lifetime), work 0.
#[derive(Clone)]
struct Maker {
    www: OnionAddress,
    now: u64,
}

/// Put lines of consecutive records, and their record ids.
struct Chunk {
    /// The number of the first record.
    first: usize,
    /// One put line per record, newline included.
    lines: Vec<u8>,
    /// The record ids, in the same order.
    ids: Vec<RecordId>,
}

impl Maker {
    fn new() -> Maker {
        Maker {
            www: OnionAddress::from_key(SigningKey::from_seed(&[3; 32]).public()),
            now: onions::clock::now(),
        }
    }

    /// The registered name of record `i`.
    fn name(i: usize) -> String {
        format!("bench-{i}.tor")
    }

    /// The key owning record `i`.
    fn owner(i: usize) -> SigningKey {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&((i / NAMES_PER_KEY) as u64).to_le_bytes());
        seed[8..].copy_from_slice(SEED_TAG);
        SigningKey::from_seed(&seed)
    }

    /// Record `i`, signed by `key`.
    fn record(&self, i: usize, key: &SigningKey) -> Record {
        let name = RegisteredName::parse(&Maker::name(i)).expect("a valid name");
        let sub = SubdomainKey::parse("www", &name).expect("www is a valid subdomain");
        let claim = Claim {
            name,
            subdomains: BTreeMap::from([(sub, self.www)]),
            contact: "0123456789ABCDEF0123456789ABCDEF01234567".into(),
            serial: 1,
            issued: self.now - 60,
            expires: self.now + 7 * 24 * 60 * 60,
            work: 0,
        };
        // Work 0 holds for any nonce, so the nonce stays 0.
        let mut record = Record::from_claim(claim, key);
        record.sign_with(key);
        record
    }

    /// Put lines of records `first..first + count`, signed on `cores`
    /// threads, as chunks of [`CHUNK`] records in ascending order.
    fn put_chunks(&self, first: usize, count: usize, cores: usize) -> Vec<Chunk> {
        let chunks = count.div_ceil(CHUNK);
        let next = AtomicUsize::new(0);
        let mut done: Vec<Chunk> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..cores)
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        let mut key: Option<(usize, SigningKey)> = None;
                        loop {
                            let c = next.fetch_add(1, Ordering::Relaxed);
                            if c >= chunks {
                                return mine;
                            }
                            let start = first + c * CHUNK;
                            let end = (start + CHUNK).min(first + count);
                            let mut chunk = Chunk {
                                first: start,
                                lines: Vec::with_capacity((end - start) * 640),
                                ids: Vec::with_capacity(end - start),
                            };
                            for i in start..end {
                                let owner = i / NAMES_PER_KEY;
                                if key.as_ref().is_none_or(|(o, _)| *o != owner) {
                                    key = Some((owner, Maker::owner(i)));
                                }
                                let (_, k) = key.as_ref().expect("set above");
                                let record = self.record(i, k);
                                chunk.ids.push(record.id());
                                let put = Request::Put {
                                    id: Id::Number(i as u64),
                                    record: record.to_value(),
                                };
                                chunk.lines.extend_from_slice(&put.to_line());
                            }
                            mine.push(chunk);
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a signing thread"))
                .collect()
        });
        done.sort_by_key(|c| c.first);
        done
    }
}

/// The lines of a chunk, newline included.
fn lines(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    chunk.split_inclusive(|&b| b == b'\n')
}

// ------------------------------------------------------------ crypto bound

/// Per-second rates of one verification and one signature on all cores.
#[derive(Clone, Copy, Default)]
struct CryptoRates {
    verify_ops: u64,
    verify_secs: f64,
    sign_ops: u64,
    sign_secs: f64,
    /// `PublicKey::from_bytes` (libsodium's point check, which parsing an
    /// onion address does for each address of a record).
    point_ops: u64,
    point_secs: f64,
}

impl CryptoRates {
    fn verify(&self) -> f64 {
        self.verify_ops as f64 / self.verify_secs.max(1e-9)
    }

    fn sign(&self) -> f64 {
        self.sign_ops as f64 / self.sign_secs.max(1e-9)
    }

    fn point(&self) -> f64 {
        self.point_ops as f64 / self.point_secs.max(1e-9)
    }

    /// The Quorum's bound counting, besides, the point checks of parsing
    /// a record's `addresses` onion addresses.
    fn quorum_bound_parsed(&self, addresses: f64) -> f64 {
        1.0 / (1.0 / self.verify() + 1.0 / self.sign() + addresses / self.point())
    }

    /// A mirror's bound counting, besides, the point checks of parsing a
    /// record's `addresses` onion addresses.
    fn mirror_bound_parsed(&self, addresses: f64) -> f64 {
        1.0 / (2.0 / self.verify() + addresses / self.point())
    }

    /// The Quorum's bound: one verification and one signature per record.
    fn quorum_bound(&self) -> f64 {
        1.0 / (1.0 / self.verify() + 1.0 / self.sign())
    }

    /// A mirror's bound: two verifications per record.
    fn mirror_bound(&self) -> f64 {
        self.verify() / 2.0
    }

    fn add(&mut self, other: CryptoRates) {
        self.verify_ops += other.verify_ops;
        self.verify_secs += other.verify_secs;
        self.sign_ops += other.sign_ops;
        self.sign_secs += other.sign_secs;
        self.point_ops += other.point_ops;
        self.point_secs += other.point_secs;
    }
}

/// Operations of `op` on `cores` threads for `budget`: (ops, wall seconds).
fn on_all_cores(cores: usize, budget: Duration, op: &(dyn Fn() + Sync)) -> (u64, f64) {
    let barrier = Barrier::new(cores + 1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..cores)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let mut ops = 0u64;
                    while start.elapsed() < budget {
                        op();
                        ops += 1;
                    }
                    ops
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let ops = threads
            .into_iter()
            .map(|t| t.join().expect("a crypto thread"))
            .sum();
        (ops, start.elapsed().as_secs_f64())
    })
}

/// Raw libsodium ed25519 verify of a record and our expanded-key sign of
/// an attestation, each on all cores, in alternating rounds.
fn crypto_rates(maker: &Maker, cores: usize) -> CryptoRates {
    let owner = Maker::owner(0);
    let record = maker.record(0, &owner);
    let message = record.signed_bytes();
    let public = ed25519::PublicKey(*record.onion.key().as_bytes());
    let sig = ed25519::Signature::from(record.sig.0);
    let quorum = SigningKey::from_seed(&[2; 32]);
    let attestation = Attestation::sign(record.id(), 1, maker.now, &quorum).signed_bytes();
    let verify = || assert!(ed25519::verify_detached(&sig, &message, &public));
    let sign = || {
        std::hint::black_box(quorum.sign(std::hint::black_box(&attestation)));
    };
    let owner_key = *record.onion.key().as_bytes();
    let point = || {
        assert!(PublicKey::from_bytes(std::hint::black_box(owner_key)).is_some());
    };
    let mut rates = CryptoRates::default();
    for round in 0..CRYPTO_ROUNDS {
        let mut order = [0, 1, 2];
        order.rotate_left(round as usize % 3);
        for case in order {
            match case {
                0 => {
                    let (ops, secs) = on_all_cores(cores, CRYPTO_ROUND, &verify);
                    rates.verify_ops += ops;
                    rates.verify_secs += secs;
                }
                1 => {
                    let (ops, secs) = on_all_cores(cores, CRYPTO_ROUND, &sign);
                    rates.sign_ops += ops;
                    rates.sign_secs += secs;
                }
                _ => {
                    let (ops, secs) = on_all_cores(cores, CRYPTO_ROUND, &point);
                    rates.point_ops += ops;
                    rates.point_secs += secs;
                }
            }
        }
    }
    rates
}

// ------------------------------------------------------- head baselines

/// What a head's work is compared with, measured in this process.
struct HeadBaselines {
    /// Median time of appending 4 KiB to a file in the run's directory and
    /// fdatasyncing it, seconds.
    fsync: f64,
    /// One leaf hash and `depth` node hashes, seconds: the least work of
    /// a head that changes one entry.
    path: f64,
    /// The node hashes of [`HeadBaselines::path`].
    depth: u32,
    /// From (leaf key, record id, seq) of every record to the root: leaf
    /// hashes, a sort and the subtree hashes, on one core, seconds.
    from_scratch: f64,
}

/// Median time of a 4 KiB append plus fdatasync in `dir`.
fn fsync_secs(dir: &Path) -> f64 {
    let path = dir.join("fsync-probe");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let block = vec![0x5a_u8; 4096];
    let mut times = Vec::with_capacity(FSYNC_ROUNDS);
    for _ in 0..FSYNC_ROUNDS {
        let t = Instant::now();
        file.write_all(&block)
            .and_then(|()| file.sync_data())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        times.push(t.elapsed().as_secs_f64());
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    median(&times)
}

/// Time of one leaf hash and `depth` node hashes, on one core.
fn path_secs(depth: u32) -> f64 {
    let mut h: Hash = [7; 32];
    let sibling: Hash = [9; 32];
    let t = Instant::now();
    for r in 0..PATH_ROUNDS {
        h = merkle::leaf_hash(&LeafKey(h), &RecordId(h), u64::from(r));
        for _ in 0..depth {
            h = merkle::node_hash(&h, &sibling);
        }
    }
    std::hint::black_box(h);
    t.elapsed().as_secs_f64() / f64::from(PATH_ROUNDS)
}

/// The root of the live set the ingest made (every record `i` with
/// `ids[i]` at `seqs[i]`, none expired) computed here from scratch, and
/// how long the hashing took (leaf keys not counted).
fn root_from_scratch(ids: &[RecordId], seqs: &[u64]) -> (Hash, f64) {
    let keys: Vec<LeafKey> = (0..ids.len())
        .map(|i| LeafKey::of(&RegisteredName::parse(&Maker::name(i)).expect("a valid name")))
        .collect();
    let t = Instant::now();
    let mut entries: Vec<(LeafKey, Hash)> = keys
        .iter()
        .zip(ids.iter().zip(seqs))
        .map(|(key, (id, seq))| (*key, merkle::leaf_hash(key, id, *seq)))
        .collect();
    entries.sort_unstable_by_key(|(k, _)| *k);
    let root = merkle::subtree_hash(&entries, 0);
    (root, t.elapsed().as_secs_f64())
}

// ------------------------------------------------------------------ ingest

/// What the ingest connections saw.
#[derive(Default)]
struct Ingest {
    accepted: u64,
    refused: u64,
    busy: u64,
    first_refusal: Option<String>,
    secs: f64,
    /// (record number, attested seq) of every accepted put.
    seqs: Vec<(usize, u64)>,
}

/// Puts every line of `chunks` over [`INGEST_CONNS`] connections, one
/// request in flight on each, chunk `c` on connection `c % INGEST_CONNS`.
fn ingest(addr: SocketAddr, chunks: &[Chunk]) -> Ingest {
    let barrier = Barrier::new(INGEST_CONNS + 1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..INGEST_CONNS)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut conn = LineConn::connect(addr, REPLY_LIMIT);
                    let mut seen = Ingest::default();
                    barrier.wait();
                    for chunk in chunks.iter().skip(t).step_by(INGEST_CONNS) {
                        for (j, line) in lines(&chunk.lines).enumerate() {
                            if let Some(seq) = put_one(&mut conn, line, &mut seen) {
                                seen.seqs.push((chunk.first + j, seq));
                            }
                        }
                    }
                    seen
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut total = Ingest::default();
        for thread in threads {
            let seen = thread.join().expect("an ingest thread");
            total.accepted += seen.accepted;
            total.refused += seen.refused;
            total.busy += seen.busy;
            total.first_refusal = total.first_refusal.or(seen.first_refusal);
            total.seqs.extend(seen.seqs);
        }
        total.secs = start.elapsed().as_secs_f64();
        total
    })
}

/// Sends one put, retrying (bounded) while the Quorum answers `busy`;
/// the attested seq when it is accepted.
fn put_one(conn: &mut LineConn, line: &[u8], seen: &mut Ingest) -> Option<u64> {
    for _ in 0..BUSY_RETRIES {
        conn.send(line);
        match conn.read_reply().unwrap_or_else(|e| panic!("put: {e}")) {
            Reply::Accepted { attestation, .. } => {
                seen.accepted += 1;
                return Some(attestation.seq);
            }
            Reply::Error(e) if e.code == Code::Busy => {
                seen.busy += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            other => {
                seen.refused += 1;
                seen.first_refusal.get_or_insert_with(|| other.to_string());
                return None;
            }
        }
    }
    panic!("a put was answered busy {BUSY_RETRIES} times");
}

// ------------------------------------------------------------------ proofs

/// Proof sizes on the wire, from a sample of lookups.
#[derive(Default)]
struct ProofSizes {
    /// Bytes of the canonical JSON of `proof` in `found` replies.
    found: Vec<f64>,
    /// The same in `not_found` replies.
    absent: Vec<f64>,
    /// Bytes of the whole `found` and `not_found` lines.
    found_lines: Vec<f64>,
    absent_lines: Vec<f64>,
    /// Siblings of the proofs, found and not found.
    found_depth: Vec<f64>,
    absent_depth: Vec<f64>,
    /// Absence proofs ending in an empty subtree (the rest end in a leaf).
    absent_empty: usize,
    /// Time spent in `Reply::parse` for the sampled replies, seconds.
    decode_secs: f64,
    /// Time spent in `check_reply` for them, seconds.
    check_secs: f64,
}

/// Looks up [`PROOF_FOUND_SAMPLES`] random registered names and
/// [`PROOF_ABSENT_SAMPLES`] unregistered ones on `addr`; checks every
/// answer as a client does (signatures, freshness, the proof against the
/// head's root), that the record is the one the ingest was answered with
/// (same seq), and that the line carries the proof as canonical JSON; and
/// measures the proofs.
fn proof_sizes(addr: SocketAddr, seqs: &[u64], policy: &Policy) -> ProofSizes {
    let mut conn = LineConn::connect(addr, REPLY_LIMIT);
    let mut rng = XorShift::new(0x5eed);
    let mut sizes = ProofSizes::default();
    let total = PROOF_FOUND_SAMPLES + PROOF_ABSENT_SAMPLES;
    for n in 0..total {
        let registered = n < PROOF_FOUND_SAMPLES;
        let (name, i) = if registered {
            let i = rng.below(seqs.len());
            (Maker::name(i), i)
        } else {
            (format!("nobody-{n}.tor"), 0)
        };
        let request = lookup_request(n as u64, &name);
        conn.send(&request.to_line());
        let line = conn
            .read_line()
            .unwrap_or_else(|e| panic!("lookup of {name}: {e}"))
            .to_vec();
        let t = Instant::now();
        let reply = Reply::parse(&line).unwrap_or_else(|e| {
            panic!(
                "lookup of {name}: undecodable reply {:?}: {e}",
                String::from_utf8_lossy(&line)
            )
        });
        sizes.decode_secs += t.elapsed().as_secs_f64();
        let proof = match &reply {
            Reply::Found { proof, .. } | Reply::NotFound { proof, .. } => proof.clone(),
            other => panic!("lookup of {name} answered {other}"),
        };
        let mut text = String::new();
        proof.write_json(&mut text);
        let needle = format!("\"proof\":{text}");
        assert!(
            line.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the reply to {name} does not carry its proof as canonical JSON: {}",
            String::from_utf8_lossy(&line)
        );
        let lookup = LookupName::from_user(&name).expect("a valid name");
        let t = Instant::now();
        let resolution = check_reply(reply, &lookup, policy, onions::clock::now())
            .unwrap_or_else(|e| panic!("the answer for {name} fails a client's checks: {e}"));
        sizes.check_secs += t.elapsed().as_secs_f64();
        let depth = proof.siblings.len() as f64;
        match resolution {
            Resolution::Found(answer) if registered => {
                assert_eq!(
                    answer.attestation.seq, seqs[i],
                    "{name} answered with another seq than its put"
                );
                sizes.found.push(text.len() as f64);
                sizes.found_lines.push(line.len() as f64 + 1.0);
                sizes.found_depth.push(depth);
            }
            Resolution::Absent(_) if !registered => {
                if proof.terminal == Some(merkle::Terminal::Empty) {
                    sizes.absent_empty += 1;
                }
                sizes.absent.push(text.len() as f64);
                sizes.absent_lines.push(line.len() as f64 + 1.0);
                sizes.absent_depth.push(depth);
            }
            other => panic!(
                "{name} ({}) resolved to {other:?}",
                if registered {
                    "registered"
                } else {
                    "not registered"
                }
            ),
        }
    }
    sizes
}

/// The reference's mean presence proof at the scale nearest `n`:
/// (log2 of that scale, bytes).
fn reference_proof(n: usize) -> (u32, f64) {
    let log = (n.max(1) as f64).log2();
    REFERENCE_PROOF
        .into_iter()
        .min_by(|a, b| {
            (f64::from(a.0) - log)
                .abs()
                .total_cmp(&(f64::from(b.0) - log).abs())
        })
        .expect("a reference")
}

// ----------------------------------------------------------------- lookups

/// One lookup run and what it cost this process and the mirror.
struct LookupRun {
    /// One reply in this many was decoded.
    decode_every: usize,
    /// The mirror's CPU seconds during the run.
    mirror_cpu: f64,
    ops: u64,
    secs: f64,
    /// This benchmark's CPU seconds during the run (the 50 clients).
    client_cpu: f64,
}

/// One lookup run: [`LOOKUPS_PER_RUN`] lookups of random registered names
/// over [`LOOKUP_CONNS`] connections. The first reply of each connection
/// is checked in full as a client does (`check_reply`); of the others,
/// one in `decode_every` is decoded with `Reply::parse` and must be
/// `found` for the name asked, the rest are only read as lines (so that
/// on a small machine the load generator does not take the cores the
/// mirror needs: decoding a `found` reply costs about two ed25519
/// verifications, see the point check rate).
fn onions_lookups(
    addr: SocketAddr,
    records: usize,
    run: usize,
    policy: &Policy,
    decode_every: usize,
) -> LookupRun {
    let per_conn = LOOKUPS_PER_RUN / LOOKUP_CONNS;
    let barrier = Barrier::new(LOOKUP_CONNS + 1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..LOOKUP_CONNS)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut conn = LineConn::connect(addr, REPLY_LIMIT);
                    let mut rng = XorShift::new((run * LOOKUP_CONNS + t) as u64);
                    barrier.wait();
                    for n in 0..per_conn {
                        let name = Maker::name(rng.below(records));
                        conn.send(&lookup_request(n as u64, &name).to_line());
                        if n % decode_every != 0 {
                            if let Err(e) = conn.read_line() {
                                panic!("lookup of {name}: {e}");
                            }
                            continue;
                        }
                        let reply = conn
                            .read_reply()
                            .unwrap_or_else(|e| panic!("lookup of {name}: {e}"));
                        if n == 0 {
                            let lookup = LookupName::from_user(&name).expect("a valid name");
                            match check_reply(reply, &lookup, policy, onions::clock::now()) {
                                Ok(Resolution::Found(_)) => {}
                                other => panic!("lookup of {name}: {other:?}"),
                            }
                            continue;
                        }
                        match reply {
                            Reply::Found { record, .. } if record.name.as_str() == name => {}
                            other => panic!("lookup of {name} answered {other}"),
                        }
                    }
                    per_conn as u64
                })
            })
            .collect();
        let cpu = process::own_cpu_secs();
        barrier.wait();
        let start = Instant::now();
        let ops = threads
            .into_iter()
            .map(|t| t.join().expect("a lookup thread"))
            .sum();
        LookupRun {
            decode_every,
            mirror_cpu: 0.0,
            ops,
            secs: start.elapsed().as_secs_f64(),
            client_cpu: process::own_cpu_secs() - cpu,
        }
    })
}

/// xorshift64*: cheap, good enough to pick names.
/// A `redis-server` with no persistence on 127.0.0.1.
struct Redis {
    proc: Proc,
    port: u16,
}

/// One redis-benchmark run.
struct RedisRun {
    rate: f64,
    /// redis-server's CPU seconds during the run.
    server_cpu: f64,
    /// redis-benchmark's CPU seconds (it is reaped in between).
    client_cpu: f64,
}

impl Redis {
    fn start(dir: &Path) -> Redis {
        let port = free_port_on("127.0.0.1");
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .current_dir(dir);
        let mut proc = Proc::spawn(
            command,
            &format!("redis-server on 127.0.0.1:{port}"),
            &dir.join("redis.log"),
        );
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        proc.wait_listening(addr, START_LIMIT);
        Redis { proc, port }
    }

    /// One `redis-benchmark -t get -c 50 -n 200000 -q` run.
    fn get_run(&mut self, dir: &Path) -> RedisRun {
        self.proc.check_running();
        let out = dir.join("redis-benchmark.out");
        let mut command = Command::new("redis-benchmark");
        command
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-t", "get", "-c", &LOOKUP_CONNS.to_string()])
            .args(["-n", &LOOKUPS_PER_RUN.to_string(), "-q"]);
        let server_cpu = self.proc.cpu_secs();
        let client_cpu = process::children_cpu_secs();
        let mut run = Proc::spawn(command, "redis-benchmark", &out);
        let deadline = Instant::now() + REDIS_RUN_LIMIT;
        let status = loop {
            if let Some(status) = run.exited() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "redis-benchmark ran over {REDIS_RUN_LIMIT:?}"
            );
            std::thread::sleep(POLL);
        };
        let client_cpu = process::children_cpu_secs() - client_cpu;
        let server_cpu = self.proc.cpu_secs() - server_cpu;
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        assert!(
            status.success(),
            "redis-benchmark failed ({status}): {text}"
        );
        let rate = parse_redis_rate(&text)
            .unwrap_or_else(|| panic!("no \"GET: N requests per second\" in {text:?}"));
        RedisRun {
            rate,
            server_cpu,
            client_cpu,
        }
    }
}

/// The rate of `GET: 123456.79 requests per second, p50=...` in
/// redis-benchmark's `-q` output (progress lines end with `\r`).
fn parse_redis_rate(text: &str) -> Option<f64> {
    text.split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .filter_map(|l| l.split_once("GET:"))
        .filter_map(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .next_back()
}

// ------------------------------------------------------------- propagation

/// The servers of the propagation measurement, in the order reported.
const HOPS: [&str; 3] = ["Quorum", "mirror A", "mirror B"];

/// What is timed at each server for each put.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Seen {
    /// A subscriber to the server received the record's push.
    Record = 0,
    /// A subscriber received a head push covering the record's seq.
    Head = 1,
    /// A lookup of the name at the server was answered `found` (polled
    /// every [`ANSWER_POLL`]): a head covering it is the one it answers
    /// with (at a mirror: it matched the mirror's audit).
    Answer = 2,
}

/// Where a put's record showed up: server, what, sample, when.
type Arrival = (usize, Seen, usize, Instant);

/// Latencies from sending each put: the `accepted` reply, and per server
/// and [`Seen`] (indexed by its value).
struct Propagation {
    accepted: Vec<Duration>,
    times: [[Vec<Duration>; 3]; 3],
}

impl Propagation {
    fn of(&self, hop: usize, seen: Seen) -> &[Duration] {
        &self.times[hop][seen as usize]
    }
}

/// Puts `puts` (records `first..`) one at a time at the Quorum and times
/// the reply, and at the Quorum, A and B the record push, the covering
/// head push and the first `found` answer; the next put goes once every
/// one of those came for the previous one.
fn propagation(servers: [&Server; 3], puts: &[Vec<u8>], first: usize) -> Propagation {
    let samples = puts.len();
    let names: Vec<String> = (0..samples).map(|k| Maker::name(first + k)).collect();
    let mut subs: Vec<LineConn> = servers
        .iter()
        .map(|s| {
            let seq = s.status().seq;
            let mut conn = LineConn::connect(s.addr, REPLY_LIMIT);
            conn.subscribe(seq + 1);
            conn
        })
        .collect();
    let shutter = Shutter(subs.iter().map(LineConn::handle).collect());
    let (tx, rx) = mpsc::channel::<Arrival>();
    let mut put_at: Vec<Option<Instant>> = vec![None; samples];
    let mut accepted = Vec::with_capacity(samples);
    let mut times: [[Vec<Option<Duration>>; 3]; 3] =
        std::array::from_fn(|_| std::array::from_fn(|_| vec![None; samples]));
    std::thread::scope(|scope| {
        for (hop, conn) in subs.iter_mut().enumerate() {
            let tx = tx.clone();
            scope.spawn(move || read_pushes(conn, hop, first, samples, &tx));
        }
        let mut askers = Vec::new();
        for (hop, server) in servers.iter().enumerate() {
            let (ask_tx, ask_rx) = mpsc::channel::<(usize, Instant)>();
            askers.push(ask_tx);
            let tx = tx.clone();
            let (addr, names) = (server.addr, &names);
            scope.spawn(move || poll_answers(addr, hop, names, &ask_rx, &tx));
        }
        drop(tx);
        let mut quorum = LineConn::connect(servers[0].addr, REPLY_LIMIT);
        for (j, line) in puts.iter().enumerate() {
            let sent = Instant::now();
            put_at[j] = Some(sent);
            for asker in &askers {
                asker.send((j, sent)).expect("an answer poller runs");
            }
            quorum.send(line);
            match quorum.read_reply().unwrap_or_else(|e| panic!("put: {e}")) {
                Reply::Accepted { .. } => {}
                other => panic!("put refused: {other}"),
            }
            accepted.push(sent.elapsed());
            let deadline = Instant::now() + REPLY_LIMIT;
            while times.iter().flatten().any(|t| t[j].is_none()) {
                let left = deadline.saturating_duration_since(Instant::now());
                let (hop, seen, k, at) = rx.recv_timeout(left).unwrap_or_else(|e| {
                    let mut missing = Vec::new();
                    for (h, hop) in times.iter().enumerate() {
                        for s in [Seen::Record, Seen::Head, Seen::Answer] {
                            if hop[s as usize][j].is_none() {
                                missing.push(format!("{} {s:?}", HOPS[h]));
                            }
                        }
                    }
                    panic!("sample {j}: nothing more within {REPLY_LIMIT:?} ({e}); missing: {missing:?}")
                });
                times[hop][seen as usize][k] = put_at[k].map(|t| at.saturating_duration_since(t));
            }
        }
        drop(askers);
        drop(shutter);
    });
    let times = times.map(|hop| {
        hop.map(|t| {
            t.into_iter()
                .map(|d| d.expect("every sample was seen everywhere"))
                .collect()
        })
    });
    Propagation { accepted, times }
}

/// The sample a record of this name is, if any.
fn sample_of(name: &str, first: usize, samples: usize) -> Option<usize> {
    name.strip_prefix("bench-")
        .and_then(|n| n.strip_suffix(".tor"))
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|i| i.checked_sub(first))
        .filter(|k| *k < samples)
}

/// Reads pushes from a subscription, reporting each sample's record push
/// and the first head push that covers its seq.
fn read_pushes(
    conn: &mut LineConn,
    hop: usize,
    first: usize,
    samples: usize,
    tx: &mpsc::Sender<Arrival>,
) {
    let mut covered = 0;
    let mut pending: Vec<(usize, u64)> = Vec::new();
    let deadline = Instant::now() + REPLY_LIMIT * 4;
    while covered < samples && Instant::now() < deadline {
        let Ok(push) = conn.read_push() else {
            return;
        };
        let at = Instant::now();
        match push {
            Push::Record { seq, record, .. } => {
                if let Some(k) = sample_of(record.name.as_str(), first, samples) {
                    pending.push((k, seq));
                    if tx.send((hop, Seen::Record, k, at)).is_err() {
                        return;
                    }
                }
            }
            Push::Head(head) => {
                let mut still = Vec::with_capacity(pending.len());
                for (k, seq) in pending.drain(..) {
                    if seq > head.seq {
                        still.push((k, seq));
                        continue;
                    }
                    covered += 1;
                    if tx.send((hop, Seen::Head, k, at)).is_err() {
                        return;
                    }
                }
                pending = still;
            }
            Push::Heartbeat { .. } | Push::Cosignatures { .. } => {}
        }
    }
}

/// For each sample it is told of, looks its name up at `addr` until the
/// answer is `found`, and reports when.
fn poll_answers(
    addr: SocketAddr,
    hop: usize,
    names: &[String],
    asks: &mpsc::Receiver<(usize, Instant)>,
    tx: &mpsc::Sender<Arrival>,
) {
    let mut conn = LineConn::connect(addr, REPLY_LIMIT);
    let mut id = 0u64;
    while let Ok((k, sent)) = asks.recv() {
        let name = &names[k];
        loop {
            id += 1;
            match conn.request(&lookup_request(id, name)) {
                Reply::Found { record, .. } if record.name.as_str() == name => {
                    if tx.send((hop, Seen::Answer, k, Instant::now())).is_err() {
                        return;
                    }
                    break;
                }
                Reply::NotFound { .. } => {}
                Reply::Error(e) if e.code.is_transient() => {}
                other => panic!("{}: lookup of {name} answered {other}", HOPS[hop]),
            }
            assert!(
                sent.elapsed() < REPLY_LIMIT,
                "{}: {name} not answerable within {REPLY_LIMIT:?}",
                HOPS[hop]
            );
            std::thread::sleep(ANSWER_POLL);
        }
    }
}

// ------------------------------------------------------------------- bench

/// The run: its settings, scratch directory and every process it started.
/// Fields drop in order: servers and redis stop before the directory goes.
struct Bench {
    quorum: Option<Server>,
    mirror_a: Option<Server>,
    mirror_b: Option<Server>,
    redis: Option<Redis>,
    settings: Settings,
    started: Instant,
    dir: TempDir,
}

/// One timed phase, printed as it ends.
struct Phase {
    name: String,
    secs: f64,
}

/// VmRSS and VmHWM of a process, bytes.
#[derive(Clone, Copy)]
struct Memory {
    rss: u64,
    hwm: u64,
}

/// A server stopped and started again.
struct Restart {
    /// How the old process ended.
    exit: String,
    /// SIGTERM to exit, seconds.
    stop: f64,
    /// Start to the first accepted connection, seconds.
    listening: f64,
    /// Start to the first `found` answer, seconds.
    found: f64,
    /// `no_head` (or other transient) refusals before it.
    refusals: u64,
    /// The answer's head is the one it answered with before the stop.
    restored: bool,
    head_seq: u64,
    /// Its status seq then.
    seq: u64,
    memory: Memory,
}

/// The head timings of one server over one stretch: (before, after).
type Timings = (HeadTiming, HeadTiming);

/// Mean microseconds of the heads timed between `t.0` and `t.1`.
fn mean_us(t: &Timings) -> f64 {
    let count = t.1.count.saturating_sub(t.0.count);
    t.1.total_us.saturating_sub(t.0.total_us) as f64 / count.max(1) as f64
}

/// Everything the table shows.
struct Report {
    records: usize,
    cores: usize,
    phases: Vec<Phase>,
    rates: CryptoRates,
    ingest: Ingest,
    quorum_cpu: f64,
    quorum_memory: Memory,
    catch_up_a: f64,
    catch_up_a_cpu: f64,
    catch_up_a_feed_cpu: f64,
    catch_up_b: f64,
    catch_up_b_cpu: f64,
    catch_up_b_feed_cpu: f64,
    onions_runs: Vec<LookupRun>,
    redis_runs: Vec<RedisRun>,
    memory_caught_up: Memory,
    memory_after_lookups: Memory,
    memory_b: Memory,
    disk: [(u64, u64); 3],
    proofs: ProofSizes,
    baselines: HeadBaselines,
    quorum_ingest_heads: Timings,
    a_catch_up_heads: Timings,
    b_catch_up_heads: Timings,
    propagation_heads: [Timings; 3],
    propagation: Propagation,
    restart_a: Restart,
    restart_quorum: Restart,
}

impl Bench {
    fn new(settings: Settings) -> Bench {
        Bench {
            quorum: None,
            mirror_a: None,
            mirror_b: None,
            redis: None,
            settings,
            started: Instant::now(),
            dir: TempDir::new("bench-servers"),
        }
    }

    /// Prints the end of a phase with its wall time.
    fn phase(&self, phases: &mut Vec<Phase>, name: &str, since: Instant, detail: &str) {
        let secs = since.elapsed().as_secs_f64();
        println!(
            "[{:>7.1} s] {name}: {secs:.1} s{}{detail} [load {}]",
            self.started.elapsed().as_secs_f64(),
            if detail.is_empty() { "" } else { "; " },
            process::load_average()
        );
        let _ = std::io::stdout().flush();
        phases.push(Phase {
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

    fn run(&mut self) -> Report {
        let n = self.settings.records;
        let cores = self.settings.cores;
        let mut phases = Vec::new();
        let maker = Maker::new();

        let t = Instant::now();
        let chunks = maker.put_chunks(0, n, cores);
        let extra = maker.put_chunks(n, PROPAGATION_SAMPLES, cores);
        let puts: Vec<Vec<u8>> = extra
            .iter()
            .flat_map(|c| lines(&c.lines))
            .map(<[u8]>::to_vec)
            .collect();
        let bytes: usize = chunks.iter().map(|c| c.lines.len()).sum();
        self.phase(
            &mut phases,
            "sign records",
            t,
            &format!(
                "{n} put lines, {:.0} MiB, on {cores} threads",
                bytes as f64 / (1 << 20) as f64
            ),
        );

        let t = Instant::now();
        let mut rates = crypto_rates(&maker, cores);
        self.phase(
            &mut phases,
            "verify/sign rates (1 of 2)",
            t,
            &rates_detail(&rates),
        );

        let t = Instant::now();
        let quorum_dir = self.dir.join("quorum");
        let key = print_key(&self.settings, &quorum_dir);
        let policy = policy(&key);
        let quorum = Server::start(
            &self.settings,
            "Quorum",
            "127.0.0.1",
            &quorum_dir,
            &["--role", "quorum", "--min-work", "0"],
        );
        let timing_before = timing(&quorum.status());
        let cpu_before = quorum.proc.cpu_secs();
        let t_ingest = Instant::now();
        let ingest = ingest(quorum.addr, &chunks);
        let quorum_cpu = quorum.proc.cpu_secs() - cpu_before;
        let ingest_wall = t_ingest.elapsed();
        let ids: Vec<RecordId> = chunks.iter().flat_map(|c| c.ids.iter().copied()).collect();
        drop(chunks);
        let quorum_status = quorum.status();
        let quorum_memory = quorum.memory();
        let quorum_threads = quorum.proc.thread_cpu_text();
        self.quorum = Some(quorum);
        assert_eq!(
            ingest.refused,
            0,
            "the Quorum refused puts, first: {}",
            ingest.first_refusal.as_deref().unwrap_or("")
        );
        assert_eq!(quorum_status.seq, n as u64, "the Quorum's seq after ingest");
        let quorum_head = quorum_status
            .head
            .clone()
            .unwrap_or_else(|| panic!("the Quorum has no head after ingest: {quorum_status}"));
        assert_eq!(
            (quorum_head.seq, quorum_head.size),
            (n as u64, n as u64),
            "the Quorum's head after ingest covers every record"
        );
        let quorum_ingest_heads = (timing_before, timing(&quorum_status));
        self.phase(
            &mut phases,
            "Quorum ingest",
            t,
            &format!(
                "{} accepted in {:.1} s ({:.0}/s), {} busy retries, Quorum CPU {:.1} s ({quorum_threads}), {} heads",
                ingest.accepted,
                ingest_wall.as_secs_f64(),
                ingest.accepted as f64 / ingest.secs,
                ingest.busy,
                quorum_cpu,
                quorum_ingest_heads.1.count - quorum_ingest_heads.0.count
            ),
        );

        let t = Instant::now();
        let mut seqs = vec![0u64; n];
        for &(i, seq) in &ingest.seqs {
            seqs[i] = seq;
        }
        let (root, from_scratch) = root_from_scratch(&ids, &seqs);
        assert!(
            root == quorum_head.root,
            "the Quorum's head after ingest has another root than the accepted records give \
             (computed here from every attested seq): head {quorum_head:?}"
        );
        let depth = n.max(2).ilog2() + 1;
        let baselines = HeadBaselines {
            fsync: fsync_secs(self.dir.path()),
            path: path_secs(depth),
            depth,
            from_scratch,
        };
        self.phase(
            &mut phases,
            "head baselines",
            t,
            &format!(
                "root from scratch {:.3} s (equals the Quorum's head), fdatasync {:.3} ms, \
                 path of {depth} hashes {:.2} us",
                baselines.from_scratch,
                baselines.fsync * 1e3,
                baselines.path * 1e6
            ),
        );

        let t = Instant::now();
        rates.add(crypto_rates(&maker, cores));
        self.phase(
            &mut phases,
            "verify/sign rates (2 of 2)",
            t,
            &rates_detail(&rates),
        );

        let catch_limit = Duration::from_secs(120) + Duration::from_millis(5) * n as u32;
        let t = Instant::now();
        let feed_cpu = self.quorum().proc.cpu_secs();
        let upstream = self.quorum().addr.to_string();
        let a_args = [
            "--role",
            "mirror",
            "--upstream",
            &upstream,
            "--quorum-key",
            &key,
        ];
        let mut mirror_a = Server::start(
            &self.settings,
            "mirror A",
            "127.0.0.2",
            &self.dir.join("mirror-a"),
            &a_args,
        );
        let a_status = mirror_a.wait_caught_up(n as u64, catch_limit);
        let catch_up_a = t.elapsed().as_secs_f64();
        let catch_up_a_cpu = mirror_a.proc.cpu_secs();
        let catch_up_a_feed_cpu = self.quorum().proc.cpu_secs() - feed_cpu;
        let memory_caught_up = mirror_a.memory();
        let a_catch_up_heads = (HeadTiming::default(), timing(&a_status));
        self.phase(
            &mut phases,
            "mirror A catch-up from the Quorum",
            t,
            &format!(
                "mirror CPU {catch_up_a_cpu:.1} s ({}), Quorum CPU {catch_up_a_feed_cpu:.1} s, \
                 VmRSS {:.1} MiB, VmHWM {:.1} MiB, {} heads audited",
                mirror_a.proc.thread_cpu_text(),
                mib(memory_caught_up.rss),
                mib(memory_caught_up.hwm),
                a_catch_up_heads.1.count
            ),
        );
        let a_addr = mirror_a.addr;
        self.mirror_a = Some(mirror_a);

        let t = Instant::now();
        let proofs = proof_sizes(a_addr, &seqs, &policy);
        self.phase(
            &mut phases,
            "proof sizes at mirror A",
            t,
            &format!(
                "{} found and {} not_found answers, each passing check_reply",
                proofs.found.len(),
                proofs.absent.len()
            ),
        );

        let t = Instant::now();
        self.redis = Some(Redis::start(self.dir.path()));
        let mut onions_runs = Vec::new();
        let mut redis_runs = Vec::new();
        for round in 0..LOOKUP_ROUNDS {
            let mut sides = [0, 1, 2];
            sides.rotate_left(round % 3);
            for side in sides {
                if side == 0 {
                    let redis = self.redis.as_mut().expect("started");
                    let run = redis.get_run(self.dir.path());
                    println!(
                        "           redis GET run: {:.0}/s (redis-server CPU {:.2} s, redis-benchmark CPU {:.2} s)",
                        run.rate, run.server_cpu, run.client_cpu
                    );
                    redis_runs.push(run);
                } else {
                    let decode_every = if side == 1 { DECODE_SAMPLE } else { 1 };
                    let mirror = self.mirror_a.as_mut().expect("started");
                    mirror.proc.check_running();
                    let cpu = mirror.proc.cpu_secs();
                    let mut run =
                        onions_lookups(a_addr, n, round * 3 + side, &policy, decode_every);
                    run.mirror_cpu = mirror.proc.cpu_secs() - cpu;
                    println!(
                        "           onions lookup run, 1 in {decode_every} decoded: {:.0}/s ({} in {:.1} s; mirror CPU {:.2} s, client CPU {:.2} s)",
                        run.ops as f64 / run.secs,
                        run.ops,
                        run.secs,
                        run.mirror_cpu,
                        run.client_cpu
                    );
                    onions_runs.push(run);
                }
            }
        }
        self.redis = None;
        let memory_after_lookups = self.mirror_a().memory();
        self.phase(
            &mut phases,
            "lookups: onions vs redis, alternating",
            t,
            &format!(
                "mirror VmRSS after {:.1} MiB, VmHWM {:.1} MiB",
                mib(memory_after_lookups.rss),
                mib(memory_after_lookups.hwm)
            ),
        );

        let t = Instant::now();
        let feed_cpu = self.mirror_a().proc.cpu_secs();
        let upstream = a_addr.to_string();
        let b_args = [
            "--role",
            "mirror",
            "--upstream",
            &upstream,
            "--quorum-key",
            &key,
        ];
        let mut mirror_b = Server::start(
            &self.settings,
            "mirror B",
            "127.0.0.3",
            &self.dir.join("mirror-b"),
            &b_args,
        );
        let b_status = mirror_b.wait_caught_up(n as u64, catch_limit);
        let catch_up_b = t.elapsed().as_secs_f64();
        let catch_up_b_cpu = mirror_b.proc.cpu_secs();
        let catch_up_b_feed_cpu = self.mirror_a().proc.cpu_secs() - feed_cpu;
        let memory_b = mirror_b.memory();
        let b_catch_up_heads = (HeadTiming::default(), timing(&b_status));
        self.mirror_b = Some(mirror_b);
        self.phase(
            &mut phases,
            "mirror B catch-up from mirror A",
            t,
            &format!(
                "mirror B CPU {catch_up_b_cpu:.1} s ({}), mirror A CPU {catch_up_b_feed_cpu:.1} s, \
                 VmRSS {:.1} MiB, VmHWM {:.1} MiB, {} heads audited",
                self.mirror_b.as_ref().expect("started").proc.thread_cpu_text(),
                mib(memory_b.rss),
                mib(memory_b.hwm),
                b_catch_up_heads.1.count
            ),
        );

        let disk = [&self.quorum, &self.mirror_a, &self.mirror_b].map(|s| {
            let s = s.as_ref().expect("started");
            (s.log_bytes(), s.dir_bytes())
        });

        let t = Instant::now();
        let servers =
            [&self.quorum, &self.mirror_a, &self.mirror_b].map(|s| s.as_ref().expect("started"));
        let before = servers.map(|s| timing(&s.status()));
        let propagation = propagation(servers, &puts, n);
        let after = servers.map(|s| timing(&s.status()));
        let propagation_heads = [0, 1, 2].map(|i| (before[i], after[i]));
        self.phase(
            &mut phases,
            "propagation Quorum -> A -> B",
            t,
            &format!("{} puts", puts.len()),
        );

        let total = (n + PROPAGATION_SAMPLES) as u64;
        let t = Instant::now();
        let settings = &self.settings;
        let mirror_a = self.mirror_a.as_mut().expect("started");
        mirror_a.wait_caught_up(total, REPLY_LIMIT);
        let restart_a = mirror_a.restart(settings, &Maker::name(n / 2));
        mirror_a.wait_caught_up(total, REPLY_LIMIT);
        self.phase(
            &mut phases,
            "mirror A stopped and started again",
            t,
            &format!("answered found {:.3} s after its start", restart_a.found),
        );

        let t = Instant::now();
        let quorum = self.quorum.as_mut().expect("started");
        let restart_quorum = quorum.restart(settings, &Maker::name(n / 3));
        self.phase(
            &mut phases,
            "Quorum stopped and started again",
            t,
            &format!(
                "answered found {:.3} s after its start",
                restart_quorum.found
            ),
        );

        let t = Instant::now();
        for server in [&mut self.mirror_b, &mut self.mirror_a, &mut self.quorum] {
            if let Some(mut s) = server.take() {
                s.proc.check_running();
                let _ = s.proc.stop();
            }
        }
        self.phase(&mut phases, "stop servers", t, "");

        Report {
            records: n,
            cores,
            phases,
            rates,
            ingest,
            quorum_cpu,
            quorum_memory,
            catch_up_a,
            catch_up_a_cpu,
            catch_up_a_feed_cpu,
            catch_up_b,
            catch_up_b_cpu,
            catch_up_b_feed_cpu,
            onions_runs,
            redis_runs,
            memory_caught_up,
            memory_after_lookups,
            memory_b,
            disk,
            proofs,
            baselines,
            quorum_ingest_heads,
            a_catch_up_heads,
            b_catch_up_heads,
            propagation_heads,
            propagation,
            restart_a,
            restart_quorum,
        }
    }
}

fn rates_detail(rates: &CryptoRates) -> String {
    format!(
        "ed25519 verify {:.0}/s, expanded-key sign {:.0}/s, point check {:.0}/s on all cores so far",
        rates.verify(),
        rates.sign(),
        rates.point()
    )
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::max)
}

/// The nearest-rank `p`th percentile, in milliseconds.
fn percentile_ms(values: &[Duration], p: usize) -> f64 {
    let mut v = values.to_vec();
    v.sort();
    let rank = (v.len() * p).div_ceil(100).max(1);
    v.get(rank - 1).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// One row of the results table.
struct Row<'a> {
    num: &'a str,
    what: &'a str,
    value: String,
    base: String,
    ratio: Option<f64>,
    goal: &'a str,
    met: Option<bool>,
}

fn row(r: Row<'_>) {
    println!(
        "{:<3}{:<50} {:>15}  {:<46} {:>7}  {:<15} {}",
        r.num,
        r.what,
        r.value,
        r.base,
        r.ratio.map_or(String::new(), |x| format!("{x:.3}")),
        r.goal,
        match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        }
    );
}

/// A row with no goal or ratio.
fn note(num: &str, what: &str, value: String, base: String) {
    row(Row {
        num,
        what,
        value,
        base,
        ratio: None,
        goal: "",
        met: None,
    });
}

impl Report {
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
        self.print_rates(n);
        self.print_propagation();
        self.print_proofs();
        self.print_heads();
        self.print_restarts();
    }

    fn print_lookups(&self) {
        let redis: Vec<f64> = self.redis_runs.iter().map(|r| r.rate).collect();
        let redis_gets = (self.redis_runs.len() * LOOKUPS_PER_RUN) as f64;
        let redis_client: f64 = self.redis_runs.iter().map(|r| r.client_cpu).sum();
        let redis_server: f64 = self.redis_runs.iter().map(|r| r.server_cpu).sum();
        let redis_us = redis_server / redis_gets * 1e6;
        let runs = |v: &[f64]| {
            v.iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (i, decode_every) in [DECODE_SAMPLE, 1].into_iter().enumerate() {
            let mine: Vec<&LookupRun> = self
                .onions_runs
                .iter()
                .filter(|r| r.decode_every == decode_every)
                .collect();
            let rates: Vec<f64> = mine.iter().map(|r| r.ops as f64 / r.secs).collect();
            let ops: u64 = mine.iter().map(|r| r.ops).sum();
            let client: f64 = mine.iter().map(|r| r.client_cpu).sum();
            let server: f64 = mine.iter().map(|r| r.mirror_cpu).sum();
            let ratio = median(&rates) / median(&redis);
            let client_text = if decode_every == 1 {
                "every reply decoded".to_owned()
            } else {
                format!("1 reply in {decode_every} decoded")
            };
            row(Row {
                num: if i == 0 { "1" } else { "" },
                what: &format!("mirror lookups/s with proofs, {LOOKUP_CONNS} conns, {client_text}"),
                value: format!("{:.0}/s", median(&rates)),
                base: format!(
                    "redis GET {:.0}/s (median of {})",
                    median(&redis),
                    redis.len()
                ),
                ratio: Some(ratio),
                goal: if i == 0 { ">= 1.0" } else { "" },
                met: (i == 0).then_some(ratio >= 1.0),
            });
            println!(
                "   median of {} runs: {}; redis {}; client CPU here {:.2} us/lookup, redis-benchmark's {:.2} us/GET \
                 (both on the same {} cores as the servers)",
                rates.len(),
                runs(&rates),
                runs(&redis),
                client / ops as f64 * 1e6,
                redis_client / redis_gets * 1e6,
                self.cores
            );
            let cpu_us = server / ops as f64 * 1e6;
            row(Row {
                num: if i == 0 { "2" } else { "" },
                what: &format!("mirror CPU per lookup with proof, {client_text}"),
                value: format!("{cpu_us:.2} us"),
                base: format!("redis-server {redis_us:.2} us/GET"),
                ratio: Some(cpu_us / redis_us),
                goal: "<= 10 us",
                met: Some(cpu_us <= 10.0),
            });
            println!("   {ops} lookups, {server:.1} mirror CPU s");
        }
    }

    fn print_memory(&self) {
        let goal = "<= 64 MiB";
        for (i, (what, m)) in [
            ("mirror A after catch-up", self.memory_caught_up),
            ("mirror A after the lookup load", self.memory_after_lookups),
            ("mirror B after catch-up", self.memory_b),
            ("mirror A after its restart", self.restart_a.memory),
        ]
        .into_iter()
        .enumerate()
        {
            for (field, bytes) in [("VmRSS", m.rss), ("VmHWM", m.hwm)] {
                row(Row {
                    num: if i == 0 && field == "VmRSS" { "3" } else { "" },
                    what: &format!("{what}, {field}"),
                    value: format!("{:.1} MiB", mib(bytes)),
                    base: String::new(),
                    ratio: None,
                    goal,
                    met: Some(bytes <= GOAL_RSS),
                });
            }
        }
        note(
            "",
            "Quorum after ingest, VmRSS / VmHWM",
            format!("{:.1} MiB", mib(self.quorum_memory.rss)),
            format!("VmHWM {:.1} MiB", mib(self.quorum_memory.hwm)),
        );
    }

    fn print_disk(&self, n: f64, per_goal: f64) {
        for (i, (who, (log, dir))) in ["Quorum", "mirror A", "mirror B"]
            .iter()
            .zip(self.disk)
            .enumerate()
        {
            note(
                if i == 0 { "4" } else { "" },
                &format!("records.log, {who}"),
                format!("{:.1} MiB", mib(log)),
                format!(
                    "{:.0} B/record; {:.1} MiB per 2^20; dir {:.1} MiB",
                    log as f64 / n,
                    mib(log) * per_goal,
                    mib(dir)
                ),
            );
        }
    }

    fn print_rates(&self, n: f64) {
        let ingest_rate = self.ingest.accepted as f64 / self.ingest.secs;
        let bound = self.rates.quorum_bound();
        row(Row {
            num: "5",
            what: &format!("Quorum durable ingest, {INGEST_CONNS} conns"),
            value: format!("{ingest_rate:.0}/s"),
            base: format!("1/(1/verify + 1/sign) = {bound:.0}/s"),
            ratio: Some(ingest_rate / bound),
            goal: ">= 0.75",
            met: Some(ingest_rate / bound >= 0.75),
        });
        println!(
            "   verify {:.0}/s, sign {:.0}/s, point check {:.0}/s on {} cores; Quorum CPU {:.1} us/put ({:.2} cores busy); bound CPU {:.1} us/put",
            self.rates.verify(),
            self.rates.sign(),
            self.rates.point(),
            self.cores,
            self.quorum_cpu / self.ingest.accepted as f64 * 1e6,
            self.quorum_cpu / self.ingest.secs,
            self.cores as f64 / bound * 1e6,
        );
        let parsed = self.rates.quorum_bound_parsed(ADDRESSES);
        println!(
            "   counting also the point checks of parsing each record's {ADDRESSES} onion addresses: \
             bound {parsed:.0}/s, ratio {:.3}",
            ingest_rate / parsed
        );

        let mirror_bound = self.rates.mirror_bound();
        let rate_a = n / self.catch_up_a;
        row(Row {
            num: "6",
            what: "mirror A catch-up from the Quorum",
            value: format!("{rate_a:.0}/s"),
            base: format!("verify / 2 = {mirror_bound:.0}/s"),
            ratio: Some(rate_a / mirror_bound),
            goal: ">= 0.75",
            met: Some(rate_a / mirror_bound >= 0.75),
        });
        println!(
            "   {:.1} s until it answers against a head covering every record; mirror CPU {:.1} us/record \
             ({:.2} cores busy), feeding Quorum {:.1} us/record; bound CPU {:.1} us/record",
            self.catch_up_a,
            self.catch_up_a_cpu / n * 1e6,
            self.catch_up_a_cpu / self.catch_up_a,
            self.catch_up_a_feed_cpu / n * 1e6,
            self.cores as f64 / mirror_bound * 1e6
        );
        let parsed = self.rates.mirror_bound_parsed(ADDRESSES);
        println!(
            "   counting also the point checks of parsing each record's {ADDRESSES} onion addresses: \
             bound {parsed:.0}/s ({:.1} us CPU/record), ratio {:.3}",
            self.cores as f64 / parsed * 1e6,
            rate_a / parsed
        );
        let rate_b = n / self.catch_up_b;
        row(Row {
            num: "",
            what: "mirror B catch-up from mirror A",
            value: format!("{rate_b:.0}/s"),
            base: format!("verify / 2 = {mirror_bound:.0}/s"),
            ratio: Some(rate_b / mirror_bound),
            goal: "",
            met: None,
        });
        println!(
            "   {:.1} s; mirror B CPU {:.1} us/record ({:.2} cores busy), feeding mirror A {:.1} us/record",
            self.catch_up_b,
            self.catch_up_b_cpu / n * 1e6,
            self.catch_up_b_cpu / self.catch_up_b,
            self.catch_up_b_feed_cpu / n * 1e6,
        );
    }

    fn print_propagation(&self) {
        let p = &self.propagation;
        let samples = format!(
            "{} puts, one at a time; answer polled every {} us",
            p.accepted.len(),
            ANSWER_POLL.as_micros()
        );
        for (i, (seen, what)) in [
            (Seen::Answer, "answerable at mirror B (lookup found)"),
            (Seen::Record, "mirror B record push arrives"),
        ]
        .into_iter()
        .enumerate()
        {
            for pct in [50, 90] {
                note(
                    if i == 0 && pct == 50 { "7" } else { "" },
                    &format!("propagation put -> {what}, p{pct}"),
                    format!("{:.2} ms", percentile_ms(p.of(2, seen), pct)),
                    if i == 0 && pct == 50 {
                        samples.clone()
                    } else {
                        String::new()
                    },
                );
            }
        }
        let pair =
            |v: &[Duration]| format!("{:.2}/{:.2}", percentile_ms(v, 50), percentile_ms(v, 90));
        println!(
            "   from the put, p50/p90 ms: accepted reply {}",
            pair(&p.accepted)
        );
        for (seen, what) in [
            (Seen::Record, "record push received from"),
            (Seen::Head, "head push covering it from"),
            (Seen::Answer, "lookup answered found by"),
        ] {
            let steps: Vec<String> = HOPS
                .iter()
                .enumerate()
                .map(|(h, name)| format!("{name} {}", pair(p.of(h, seen))))
                .collect();
            println!("   {what}: {}", steps.join(", "));
        }
    }

    fn print_proofs(&self) {
        let p = &self.proofs;
        let (scale, reference) = reference_proof(self.records);
        for (i, (what, sizes, lines, depth, reference)) in [
            (
                "presence",
                &p.found,
                &p.found_lines,
                &p.found_depth,
                reference,
            ),
            (
                "absence",
                &p.absent,
                &p.absent_lines,
                &p.absent_depth,
                reference + ABSENCE_EXTRA,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let avg = mean(sizes);
            row(Row {
                num: if i == 0 { "8" } else { "" },
                what: &format!("proof bytes, {what} ({} answers), mean", sizes.len()),
                value: format!("{avg:.1} B"),
                base: format!(
                    "reference {}{reference:.0} B at 2^{scale}",
                    if i == 0 { "" } else { "~" }
                ),
                ratio: Some(avg / reference),
                goal: "",
                met: None,
            });
            note(
                "",
                &format!("proof bytes, {what}, median / max"),
                format!("{:.0} B", median(sizes)),
                format!(
                    "max {:.0} B; siblings mean {:.2}, max {:.0}",
                    max(sizes),
                    mean(depth),
                    max(depth)
                ),
            );
            note(
                "",
                &format!("whole reply line, {what}, median / max"),
                format!("{:.0} B", median(lines)),
                format!("max {:.0} B", max(lines)),
            );
        }
        let answers = (p.found.len() + p.absent.len()) as f64;
        println!(
            "   absence proofs ending in an empty subtree: {} of {}; every answer passed check_reply \
             ({:.1} us each) and carried the proof as canonical JSON; Reply::parse {:.1} us per answer",
            p.absent_empty,
            p.absent.len(),
            p.check_secs / answers * 1e6,
            p.decode_secs / answers * 1e6
        );
    }

    fn print_heads(&self) {
        let b = &self.baselines;
        let sign = self.cores as f64 / self.rates.sign();
        let quorum_base = b.fsync + sign + b.path;
        let q = &self.quorum_ingest_heads;
        let q_mean = mean_us(q);
        row(Row {
            num: "9",
            what: &format!(
                "Quorum batch -> head signed, durable: mean ({} heads)",
                q.1.count - q.0.count
            ),
            value: format!("{:.3} ms", q_mean / 1e3),
            base: format!(
                "fdatasync {:.3} + sign {:.3} + path {:.3} ms",
                b.fsync * 1e3,
                sign * 1e3,
                b.path * 1e3
            ),
            ratio: Some(q_mean / 1e6 / quorum_base),
            goal: "",
            met: None,
        });
        note(
            "",
            "Quorum batch -> head signed, durable: max",
            format!("{:.3} ms", q.1.max_us as f64 / 1e3),
            format!(
                "over the ingest of {} records ({:.0} records a head)",
                self.records,
                self.records as f64 / (q.1.count - q.0.count).max(1) as f64
            ),
        );
        let pq = &self.propagation_heads[0];
        note(
            "",
            "Quorum batch -> head, one-record batches: mean",
            format!("{:.3} ms", mean_us(pq) / 1e3),
            format!(
                "{} heads during the propagation puts",
                pq.1.count - pq.0.count
            ),
        );
        for (who, catch_up, prop) in [
            ("A", &self.a_catch_up_heads, &self.propagation_heads[1]),
            ("B", &self.b_catch_up_heads, &self.propagation_heads[2]),
        ] {
            let c_mean = mean_us(catch_up);
            row(Row {
                num: "",
                what: &format!(
                    "mirror {who} audit at catch-up: mean ({} heads)",
                    catch_up.1.count
                ),
                value: format!("{:.3} ms", c_mean / 1e3),
                base: format!("root from scratch here {:.3} ms", b.from_scratch * 1e3),
                ratio: Some(c_mean / 1e6 / b.from_scratch),
                goal: "",
                met: None,
            });
            note(
                "",
                &format!("mirror {who} audit at catch-up: max"),
                format!("{:.3} ms", catch_up.1.max_us as f64 / 1e3),
                String::new(),
            );
            let p_mean = mean_us(prop);
            row(Row {
                num: "",
                what: &format!(
                    "mirror {who} audit, one-record heads: mean ({})",
                    prop.1.count - prop.0.count
                ),
                value: format!("{:.3} ms", p_mean / 1e3),
                base: format!("path of {} hashes {:.4} ms", b.depth, b.path * 1e3),
                ratio: Some(p_mean / 1e6 / b.path),
                goal: "",
                met: None,
            });
            note(
                "",
                &format!("mirror {who} audit: max over the run"),
                format!("{:.3} ms", prop.1.max_us as f64 / 1e3),
                String::new(),
            );
        }
        println!(
            "   (status head_timing; the root from scratch is leaf hashes, a sort and subtree hashes of every \
             record on one core in this process, and equalled the Quorum's root)"
        );
    }

    fn print_restarts(&self) {
        for (i, (who, r, goal)) in [
            ("mirror A", &self.restart_a, true),
            ("Quorum", &self.restart_quorum, false),
        ]
        .into_iter()
        .enumerate()
        {
            row(Row {
                num: if i == 0 { "10" } else { "" },
                what: &format!("{who} start-up: start -> lookup answered found"),
                value: format!("{:.3} s", r.found),
                base: format!("listening after {:.3} s", r.listening),
                ratio: None,
                goal: if goal { "<= 5 s" } else { "" },
                met: goal.then_some(r.found <= STARTUP_GOAL),
            });
            println!(
                "   {who}: SIGTERM -> exit {:.3} s ({}); {} refusals (no_head) before the answer; \
                 answered with {} (seq {}; status seq {}); VmRSS {:.1} MiB, VmHWM {:.1} MiB then",
                r.stop,
                r.exit,
                r.refusals,
                if r.restored {
                    "the head it held before the stop, restored from its log"
                } else {
                    "a head received or signed after the start"
                },
                r.head_seq,
                r.seq,
                mib(r.memory.rss),
                mib(r.memory.hwm)
            );
        }
    }
}

// ------------------------------------------------------------------- files
