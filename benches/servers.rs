//! Benchmark of the real servers: release `onions-server` processes on
//! loopback, measured against references run on the same machine in the
//! same run, so that the ratios, not the noisy absolute numbers, tell
//! whether the servers are as fast as they should be:
//!
//! 1. mirror lookups per second over 50 unpipelined connections, against
//!    `redis-benchmark -t get -c 50 -n 200000` on a `redis-server` this
//!    benchmark starts (the two alternate; medians are compared);
//! 2. the mirror's CPU time per lookup (utime + stime from /proc);
//! 3. the mirror's resident memory once it holds every record;
//! 4. the size of `records.log` in each state directory;
//! 5. the Quorum's durable ingest rate (8 connections, one put in flight on
//!    each) against the machine's bound for one verification and one
//!    signature per record, on all cores;
//! 6. a fresh mirror's catch-up rate against the bound for two
//!    verifications per record, on all cores;
//! 7. put-to-push latency through the Quorum, mirror A and mirror B.
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
//! `--log-level` (default: the servers' own, `info`). Arguments, such as
//! cargo's `--bench`, are ignored.

mod common;

use common::{free_port_on, Proc};
use onions::attest::Attestation;
use onions::keys::SigningKey;
use onions::name::{RegisteredName, SubdomainKey};
use onions::onion::OnionAddress;
use onions::record::{Claim, Record};
use serde_json::{json, Value};
use sodiumoxide::crypto::sign::ed25519;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
/// Records put one at a time for the propagation latency.
const PROPAGATION_SAMPLES: usize = 200;
/// Rounds of the verify/sign rate measurement (order reversed every other).
const CRYPTO_ROUNDS: u32 = 4;
/// Time of one round of one crypto case.
const CRYPTO_ROUND: Duration = Duration::from_millis(500);
/// How long a server or redis may take to start listening.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long a process may take to stop after SIGTERM before SIGKILL.
/// How long a catching-up mirror's head may stay put before it is called
/// stalled.
const STALL_LIMIT: Duration = Duration::from_secs(60);
/// How long one reply or push may take.
const REPLY_LIMIT: Duration = Duration::from_secs(60);
/// How long one redis-benchmark run may take.
const REDIS_RUN_LIMIT: Duration = Duration::from_secs(300);
/// Tries of one put that keeps being answered `busy`.
const BUSY_RETRIES: u32 = 1000;
/// Pause between status polls.
const POLL: Duration = Duration::from_millis(20);
/// The seed of owner keys is this tag after the owner number.
const SEED_TAG: &[u8; 24] = b"onions-bench-servers-key";

fn main() {
    onions::keys::init().unwrap_or_else(|e| fail(e));
    common::install_panic_hook(|| {});
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
        let server_bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/onions-server");
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
        let scale = if self.records.is_power_of_two() {
            format!(" (2^{})", self.records.trailing_zeros())
        } else {
            String::new()
        };
        println!(
            "onions servers benchmark: {} records{scale}, {} cores, server log level {}",
            self.records,
            self.cores,
            self.log_level.as_deref().unwrap_or("default (info)")
        );
        println!("server binary: {}", self.server_bin.display());
        if let Some(newer) = newer_source(&self.server_bin) {
            println!(
                "WARNING: {} is newer than the server binary; run `cargo build --release --bins`",
                newer.display()
            );
        }
        println!();
    }
}

/// Where `tool` is on PATH, if anywhere.
fn find_on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// A source file under `src/` modified after `binary`.
fn newer_source(binary: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pending = vec![root.join("src")];
    let mut files = Vec::new();
    // Bounded: the source tree is small; stop after a few thousand entries.
    for _ in 0..10_000 {
        let Some(dir) = pending.pop() else {
            break;
        };
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.into_iter().find(|f| {
        std::fs::metadata(f)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t > built)
    })
}

/// Prints `message` and exits with a failure status (only before any
/// process is started: exiting skips the guards).
fn fail(message: &str) -> ! {
    eprintln!("bench servers: {message}");
    std::process::exit(2)
}

/// Waits (bounded) until `addr` accepts connections, failing if `proc` exits.
fn wait_listening(proc: &mut Proc, addr: SocketAddr) {
    let deadline = Instant::now() + START_LIMIT;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        proc.check_running();
        assert!(
            Instant::now() < deadline,
            "{} did not listen on {addr} within {START_LIMIT:?}; its log ends:\n{}",
            proc.what,
            proc.log_tail()
        );
        std::thread::sleep(POLL);
    }
}

/// A running `onions-server`.
struct Server {
    proc: Proc,
    addr: SocketAddr,
    state: PathBuf,
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
        let log = state.with_extension("log");
        let mut proc = Proc::spawn(command, &format!("{label} on {addr}"), &log);
        wait_listening(&mut proc, addr);
        Server {
            proc,
            addr,
            state: state.to_owned(),
        }
    }

    /// The server's status reply.
    fn status(&self) -> Value {
        LineConn::connect(self.addr).request(&json!({"type": "status", "id": "bench"}))
    }

    /// The status `head`.
    fn head(&self) -> u64 {
        let status = self.status();
        status["head"]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: status without head: {status}", self.proc.what))
    }

    /// Waits (bounded by `limit`) until the status head reaches `head`.
    /// Fails if the head stays put for [`STALL_LIMIT`], which is longer than
    /// a mirror's default upstream silence limit (45 s), so a mirror that
    /// could recover by reconnecting would have done so.
    fn wait_head(&mut self, head: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut last = (0, Instant::now());
        loop {
            self.proc.check_running();
            let now = self.head();
            if now >= head {
                return;
            }
            if now > last.0 {
                last = (now, Instant::now());
            }
            assert!(
                last.1.elapsed() < STALL_LIMIT,
                "{} stalled: its head stayed at {now} for {STALL_LIMIT:?} while waiting for {head} \
                 (its upstream has them); its log ends:\n{}",
                self.proc.what,
                self.proc.log_tail()
            );
            assert!(
                Instant::now() < deadline,
                "{} at head {now} waiting for {head} after {limit:?}; its log ends:\n{}",
                self.proc.what,
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
}

/// The Quorum key of the state directory `state`, from `--print-key`.
fn print_key(settings: &Settings, state: &Path) -> String {
    std::fs::create_dir_all(state)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", state.display()));
    let out_path = state.with_extension("key");
    let mut command = Command::new(&settings.server_bin);
    command.arg("--print-key").arg("--state-dir").arg(state);
    let mut proc = Proc::spawn(command, "onions-server --print-key", &out_path);
    let deadline = Instant::now() + START_LIMIT;
    let status = loop {
        if let Some(status) = proc.exited() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "--print-key ran over {START_LIMIT:?}"
        );
        std::thread::sleep(POLL);
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(status.success(), "--print-key failed ({status}): {text}");
    text.trim().to_owned()
}

// ----------------------------------------------------------------- clients

/// A line-protocol connection with a bounded wait for each line.
struct LineConn {
    reader: BufReader<TcpStream>,
    line: Vec<u8>,
}

impl LineConn {
    fn connect(addr: SocketAddr) -> LineConn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(REPLY_LIMIT))
            .expect("set a read timeout");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        LineConn {
            reader: BufReader::with_capacity(64 * 1024, stream),
            line: Vec::with_capacity(4096),
        }
    }

    /// A second handle on the socket, to shut it down from elsewhere.
    fn handle(&self) -> TcpStream {
        self.reader.get_ref().try_clone().expect("clone a socket")
    }

    fn send(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("send to server: {e}"));
    }

    /// The next line, without its newline.
    fn read_line(&mut self) -> Result<&[u8], String> {
        self.line.clear();
        match self.reader.read_until(b'\n', &mut self.line) {
            Ok(0) => Err("the server closed the connection".into()),
            Ok(_) if self.line.last() == Some(&b'\n') => {
                self.line.pop();
                Ok(&self.line)
            }
            Ok(_) => Err("the server closed the connection mid-line".into()),
            Err(e) => Err(format!("no line within {REPLY_LIMIT:?}: {e}")),
        }
    }

    /// The next line as JSON.
    fn read_value(&mut self) -> Result<Value, String> {
        let line = self.read_line()?;
        serde_json::from_slice(line).map_err(|e| {
            format!(
                "server sent non-JSON {:?}: {e}",
                String::from_utf8_lossy(line)
            )
        })
    }

    fn request(&mut self, request: &Value) -> Value {
        let mut line = serde_json::to_vec(request).expect("JSON encodes");
        line.push(b'\n');
        self.send(&line);
        self.read_value().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Subscribes from `from`; returns the `subscribed` head.
    fn subscribe(&mut self, from: u64) -> u64 {
        let reply = self.request(&json!({"type": "subscribe", "id": 1, "from": from}));
        assert_eq!(reply["type"], "subscribed", "subscribe refused: {reply}");
        reply["head"].as_u64().expect("subscribed carries head")
    }
}

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

    /// Appends the put line of record `i` to `out`.
    fn push_put(&self, i: usize, key: &SigningKey, out: &mut Vec<u8>) {
        let record = self.record(i, key).canonical();
        writeln!(out, "{{\"type\":\"put\",\"id\":{i},\"record\":{record}}}")
            .expect("writing to a Vec");
    }

    /// Put lines of records `first..first + count`, signed on `cores`
    /// threads, as chunks of [`CHUNK`] records in ascending order.
    fn put_chunks(&self, first: usize, count: usize, cores: usize) -> Vec<Vec<u8>> {
        let chunks = count.div_ceil(CHUNK);
        let next = AtomicUsize::new(0);
        let mut done: Vec<(usize, Vec<u8>)> = std::thread::scope(|scope| {
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
                            let mut bytes = Vec::with_capacity((end - start) * 600);
                            for i in start..end {
                                let owner = i / NAMES_PER_KEY;
                                if key.as_ref().is_none_or(|(o, _)| *o != owner) {
                                    key = Some((owner, Maker::owner(i)));
                                }
                                let (_, k) = key.as_ref().expect("set above");
                                self.push_put(i, k, &mut bytes);
                            }
                            mine.push((c, bytes));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a signing thread"))
                .collect()
        });
        done.sort_by_key(|(c, _)| *c);
        done.into_iter().map(|(_, bytes)| bytes).collect()
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
}

impl CryptoRates {
    fn verify(&self) -> f64 {
        self.verify_ops as f64 / self.verify_secs.max(1e-9)
    }

    fn sign(&self) -> f64 {
        self.sign_ops as f64 / self.sign_secs.max(1e-9)
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
    let mut rates = CryptoRates::default();
    for round in 0..CRYPTO_ROUNDS {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for verifying in order {
            if verifying {
                let (ops, secs) = on_all_cores(cores, CRYPTO_ROUND, &verify);
                rates.verify_ops += ops;
                rates.verify_secs += secs;
            } else {
                let (ops, secs) = on_all_cores(cores, CRYPTO_ROUND, &sign);
                rates.sign_ops += ops;
                rates.sign_secs += secs;
            }
        }
    }
    rates
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
}

/// Puts every line of `chunks` over [`INGEST_CONNS`] connections, one
/// request in flight on each, chunk `c` on connection `c % INGEST_CONNS`.
fn ingest(addr: SocketAddr, chunks: &[Vec<u8>]) -> Ingest {
    let barrier = Barrier::new(INGEST_CONNS + 1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..INGEST_CONNS)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut conn = LineConn::connect(addr);
                    let mut seen = Ingest::default();
                    barrier.wait();
                    for chunk in chunks.iter().skip(t).step_by(INGEST_CONNS) {
                        for line in lines(chunk) {
                            put_one(&mut conn, line, &mut seen);
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
        }
        total.secs = start.elapsed().as_secs_f64();
        total
    })
}

/// Sends one put, retrying (bounded) while the Quorum answers `busy`.
fn put_one(conn: &mut LineConn, line: &[u8], seen: &mut Ingest) {
    for _ in 0..BUSY_RETRIES {
        conn.send(line);
        let reply = conn.read_line().unwrap_or_else(|e| panic!("put: {e}"));
        if reply.starts_with(b"{\"type\":\"accepted\"") {
            seen.accepted += 1;
            return;
        }
        let value: Value = serde_json::from_slice(reply).unwrap_or(Value::Null);
        if value["code"] == "busy" {
            seen.busy += 1;
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        seen.refused += 1;
        if seen.first_refusal.is_none() {
            seen.first_refusal = Some(String::from_utf8_lossy(reply).into_owned());
        }
        return;
    }
    panic!("a put was answered busy {BUSY_RETRIES} times");
}

// ----------------------------------------------------------------- lookups

/// One lookup run: (lookups, wall seconds).
fn onions_lookups(addr: SocketAddr, records: usize, run: usize) -> (u64, f64) {
    let per_conn = LOOKUPS_PER_RUN / LOOKUP_CONNS;
    let barrier = Barrier::new(LOOKUP_CONNS + 1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..LOOKUP_CONNS)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut conn = LineConn::connect(addr);
                    let mut rng = XorShift::new((run * LOOKUP_CONNS + t) as u64);
                    let mut request = Vec::with_capacity(128);
                    let mut expect = Vec::with_capacity(64);
                    barrier.wait();
                    for n in 0..per_conn {
                        let i = rng.below(records);
                        request.clear();
                        writeln!(
                            request,
                            "{{\"type\":\"lookup\",\"id\":{n},\"name\":\"{}\"}}",
                            Maker::name(i)
                        )
                        .expect("writing to a Vec");
                        conn.send(&request);
                        let reply = conn.read_line().unwrap_or_else(|e| panic!("lookup: {e}"));
                        expect.clear();
                        write!(expect, "{{\"type\":\"found\",\"id\":{n},\"record\":")
                            .expect("writing to a Vec");
                        assert!(
                            reply.starts_with(&expect),
                            "lookup of {} answered {}",
                            Maker::name(i),
                            String::from_utf8_lossy(reply)
                        );
                        if n == 0 {
                            let value: Value = serde_json::from_slice(reply).expect("a JSON reply");
                            assert_eq!(value["record"]["name"], Maker::name(i).as_str());
                        }
                    }
                    per_conn as u64
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let ops = threads
            .into_iter()
            .map(|t| t.join().expect("a lookup thread"))
            .sum();
        (ops, start.elapsed().as_secs_f64())
    })
}

/// xorshift64*: cheap, good enough to pick names.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((u128::from(x) * n as u128) >> 64) as usize
    }
}

/// A `redis-server` with no persistence on 127.0.0.1.
struct Redis {
    proc: Proc,
    port: u16,
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
        wait_listening(&mut proc, addr);
        Redis { proc, port }
    }

    /// One `redis-benchmark -t get -c 50 -n 200000 -q` run: GETs per second.
    fn get_run(&mut self, dir: &Path) -> f64 {
        self.proc.check_running();
        let out = dir.join("redis-benchmark.out");
        let mut command = Command::new("redis-benchmark");
        command
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-t", "get", "-c", &LOOKUP_CONNS.to_string()])
            .args(["-n", &LOOKUPS_PER_RUN.to_string(), "-q"]);
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
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        assert!(
            status.success(),
            "redis-benchmark failed ({status}): {text}"
        );
        parse_redis_rate(&text)
            .unwrap_or_else(|| panic!("no \"GET: N requests per second\" in {text:?}"))
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

/// Where a put's record showed up: the index of a hop and when.
type Arrival = (usize, usize, Instant);

/// Hops of the propagation measurement, in the order they are reported.
const HOPS: [&str; 3] = ["Quorum push", "mirror A push", "mirror B push"];

/// Latencies from sending each put: the `accepted` reply and each hop's push.
struct Propagation {
    accepted: Vec<Duration>,
    hops: [Vec<Duration>; 3],
}

/// Puts `puts` (records `first..`) one at a time at the Quorum and times
/// the reply and the pushes of subscribers to the Quorum, A and B; the
/// next put goes once B has pushed the previous one.
fn propagation(servers: [&Server; 3], puts: &[Vec<u8>], first: usize) -> Propagation {
    let samples = puts.len();
    let mut subs: Vec<LineConn> = servers
        .iter()
        .map(|s| {
            let head = s.head();
            let mut conn = LineConn::connect(s.addr);
            conn.subscribe(head + 1);
            conn
        })
        .collect();
    let shutter = Shutter(subs.iter().map(LineConn::handle).collect());
    let (tx, rx) = mpsc::channel::<Arrival>();
    let mut put_at = vec![None; samples];
    let mut accepted = Vec::with_capacity(samples);
    let mut hops: [Vec<Option<Duration>>; 3] = std::array::from_fn(|_| vec![None; samples]);
    std::thread::scope(|scope| {
        for (hop, conn) in subs.iter_mut().enumerate() {
            let tx = tx.clone();
            scope.spawn(move || read_pushes(conn, hop, first, samples, &tx));
        }
        drop(tx);
        let mut quorum = LineConn::connect(servers[0].addr);
        for (j, line) in puts.iter().enumerate() {
            let sent = Instant::now();
            put_at[j] = Some(sent);
            quorum.send(line);
            let reply = quorum.read_line().unwrap_or_else(|e| panic!("put: {e}"));
            assert!(
                reply.starts_with(b"{\"type\":\"accepted\""),
                "put refused: {}",
                String::from_utf8_lossy(reply)
            );
            accepted.push(sent.elapsed());
            let deadline = Instant::now() + REPLY_LIMIT;
            while hops[2][j].is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                let (hop, k, at) = rx
                    .recv_timeout(left)
                    .unwrap_or_else(|e| panic!("no push from mirror B for sample {j}: {e}"));
                let since = put_at[k].map(|t| at.saturating_duration_since(t));
                hops[hop][k] = since;
            }
        }
        // The other hops pushed before B did; collect what is queued.
        while let Ok((hop, k, at)) = rx.recv_timeout(Duration::from_secs(5)) {
            hops[hop][k] = put_at[k].map(|t| at.saturating_duration_since(t));
            if hops.iter().all(|h| h.iter().all(Option::is_some)) {
                break;
            }
        }
        drop(shutter);
    });
    let hops = hops.map(|h| {
        h.into_iter()
            .map(|d| d.expect("every hop pushed every record"))
            .collect()
    });
    Propagation { accepted, hops }
}

/// Reads `samples` record pushes from a subscription, reporting each.
fn read_pushes(
    conn: &mut LineConn,
    hop: usize,
    first: usize,
    samples: usize,
    tx: &mpsc::Sender<Arrival>,
) {
    let mut seen = 0;
    let deadline = Instant::now() + REPLY_LIMIT * 4;
    while seen < samples && Instant::now() < deadline {
        let Ok(value) = conn.read_value() else {
            return;
        };
        let at = Instant::now();
        if value["type"] != "record" {
            continue;
        }
        let name = value["record"]["name"].as_str().unwrap_or_default();
        let index = name
            .strip_prefix("bench-")
            .and_then(|n| n.strip_suffix(".tor"))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|i| i.checked_sub(first))
            .filter(|k| *k < samples);
        if let Some(k) = index {
            seen += 1;
            if tx.send((hop, k, at)).is_err() {
                return;
            }
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

/// Everything the table shows.
struct Report {
    records: usize,
    cores: usize,
    phases: Vec<Phase>,
    rates: CryptoRates,
    ingest: Ingest,
    quorum_cpu: f64,
    catch_up_a: f64,
    catch_up_a_cpu: f64,
    catch_up_a_feed_cpu: f64,
    catch_up_b: f64,
    catch_up_b_cpu: f64,
    catch_up_b_feed_cpu: f64,
    onions_runs: Vec<f64>,
    redis_runs: Vec<f64>,
    lookup_cpu: f64,
    lookups: u64,
    rss_caught_up: u64,
    rss_after_lookups: u64,
    rss_b: u64,
    disk: [u64; 3],
    propagation: Propagation,
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
            dir: TempDir::new(),
        }
    }

    /// Prints the end of a phase with its wall time.
    fn phase(&self, phases: &mut Vec<Phase>, name: &str, since: Instant, detail: &str) {
        let secs = since.elapsed().as_secs_f64();
        println!(
            "[{:>7.1} s] {name}: {secs:.1} s{}{detail}",
            self.started.elapsed().as_secs_f64(),
            if detail.is_empty() { "" } else { "; " }
        );
        let _ = std::io::stdout().flush();
        phases.push(Phase {
            name: name.into(),
            secs,
        });
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
            .flat_map(|c| lines(c))
            .map(<[u8]>::to_vec)
            .collect();
        let bytes: usize = chunks.iter().map(Vec::len).sum();
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
        let quorum_dir = self.dir.path.join("quorum");
        let key = print_key(&self.settings, &quorum_dir);
        let quorum = Server::start(
            &self.settings,
            "Quorum",
            "127.0.0.1",
            &quorum_dir,
            &["--role", "quorum", "--min-work", "0"],
        );
        let cpu_before = quorum.proc.cpu_secs();
        let t_ingest = Instant::now();
        let ingest = ingest(quorum.addr, &chunks);
        let quorum_cpu = quorum.proc.cpu_secs() - cpu_before;
        let ingest_wall = t_ingest.elapsed();
        drop(chunks);
        let quorum_head = quorum.head();
        self.quorum = Some(quorum);
        assert_eq!(
            ingest.refused,
            0,
            "the Quorum refused puts, first: {}",
            ingest.first_refusal.as_deref().unwrap_or("")
        );
        assert_eq!(quorum_head, n as u64, "the Quorum's head after ingest");
        self.phase(
            &mut phases,
            "Quorum ingest",
            t,
            &format!(
                "{} accepted in {:.1} s ({:.0}/s), {} busy retries, Quorum CPU {:.1} s",
                ingest.accepted,
                ingest_wall.as_secs_f64(),
                ingest.accepted as f64 / ingest.secs,
                ingest.busy,
                quorum_cpu
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
        let feed_cpu = self.quorum.as_ref().expect("started").proc.cpu_secs();
        let upstream = self.quorum.as_ref().expect("started").addr.to_string();
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
            &self.dir.path.join("mirror-a"),
            &a_args,
        );
        mirror_a.wait_head(quorum_head, catch_limit);
        let catch_up_a = t.elapsed().as_secs_f64();
        let catch_up_a_cpu = mirror_a.proc.cpu_secs();
        let catch_up_a_feed_cpu = self.quorum.as_ref().expect("started").proc.cpu_secs() - feed_cpu;
        let rss_caught_up = mirror_a.proc.status_kib("VmRSS") * 1024;
        self.phase(
            &mut phases,
            "mirror A catch-up from the Quorum",
            t,
            &format!(
                "mirror CPU {catch_up_a_cpu:.1} s, Quorum CPU {catch_up_a_feed_cpu:.1} s, RSS {:.1} MiB",
                mib(rss_caught_up)
            ),
        );
        let a_addr = mirror_a.addr;
        self.mirror_a = Some(mirror_a);

        let t = Instant::now();
        self.redis = Some(Redis::start(&self.dir.path));
        let mut onions_runs = Vec::new();
        let mut redis_runs = Vec::new();
        let mut lookup_cpu = 0.0;
        let mut lookups = 0;
        for round in 0..LOOKUP_ROUNDS {
            for side in [round % 2, 1 - round % 2] {
                if side == 0 {
                    let redis = self.redis.as_mut().expect("started");
                    let rate = redis.get_run(&self.dir.path);
                    println!("           redis GET run: {rate:.0}/s");
                    redis_runs.push(rate);
                } else {
                    let mirror = self.mirror_a.as_mut().expect("started");
                    mirror.proc.check_running();
                    let cpu = mirror.proc.cpu_secs();
                    let (ops, secs) = onions_lookups(a_addr, n, round);
                    lookup_cpu += mirror.proc.cpu_secs() - cpu;
                    lookups += ops;
                    let rate = ops as f64 / secs;
                    println!("           onions lookup run: {rate:.0}/s ({ops} in {secs:.1} s)");
                    onions_runs.push(rate);
                }
            }
        }
        self.redis = None;
        let rss_after_lookups = self
            .mirror_a
            .as_ref()
            .expect("started")
            .proc
            .status_kib("VmRSS")
            * 1024;
        self.phase(
            &mut phases,
            "lookups: onions vs redis, alternating",
            t,
            &format!("mirror RSS after {:.1} MiB", mib(rss_after_lookups)),
        );

        let t = Instant::now();
        let feed_cpu = self.mirror_a.as_ref().expect("started").proc.cpu_secs();
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
            &self.dir.path.join("mirror-b"),
            &b_args,
        );
        mirror_b.wait_head(quorum_head, catch_limit);
        let catch_up_b = t.elapsed().as_secs_f64();
        let catch_up_b_cpu = mirror_b.proc.cpu_secs();
        let catch_up_b_feed_cpu =
            self.mirror_a.as_ref().expect("started").proc.cpu_secs() - feed_cpu;
        let rss_b = mirror_b.proc.status_kib("VmRSS") * 1024;
        self.mirror_b = Some(mirror_b);
        self.phase(
            &mut phases,
            "mirror B catch-up from mirror A",
            t,
            &format!(
                "mirror B CPU {catch_up_b_cpu:.1} s, mirror A CPU {catch_up_b_feed_cpu:.1} s, RSS {:.1} MiB",
                mib(rss_b)
            ),
        );

        let disk = [&self.quorum, &self.mirror_a, &self.mirror_b]
            .map(|s| s.as_ref().expect("started").log_bytes());

        let t = Instant::now();
        let servers =
            [&self.quorum, &self.mirror_a, &self.mirror_b].map(|s| s.as_ref().expect("started"));
        let propagation = propagation(servers, &puts, n);
        self.phase(
            &mut phases,
            "propagation Quorum -> A -> B",
            t,
            &format!("{} puts", puts.len()),
        );

        let t = Instant::now();
        for server in [&mut self.mirror_b, &mut self.mirror_a, &mut self.quorum] {
            if let Some(mut s) = server.take() {
                s.proc.check_running();
                s.proc.stop();
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
            catch_up_a,
            catch_up_a_cpu,
            catch_up_a_feed_cpu,
            catch_up_b,
            catch_up_b_cpu,
            catch_up_b_feed_cpu,
            onions_runs,
            redis_runs,
            lookup_cpu,
            lookups,
            rss_caught_up,
            rss_after_lookups,
            rss_b,
            disk,
            propagation,
        }
    }
}

fn rates_detail(rates: &CryptoRates) -> String {
    format!(
        "ed25519 verify {:.0}/s, expanded-key sign {:.0}/s on all cores so far",
        rates.verify(),
        rates.sign()
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

/// The nearest-rank `p`th percentile, in milliseconds.
fn percentile_ms(values: &[Duration], p: usize) -> f64 {
    let mut v = values.to_vec();
    v.sort();
    let rank = (v.len() * p).div_ceil(100).max(1);
    v.get(rank - 1).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
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
            "results at {} records, {} cores (goals are stated at 2^20 records)",
            self.records, self.cores
        );
        println!(
            "{:<3}{:<44} {:>14}  {:<40} {:>7}  {:<10} met",
            "#", "figure", "onions", "baseline", "ratio", "goal"
        );
        let row = |num: &str,
                   what: &str,
                   value: String,
                   base: String,
                   ratio: Option<f64>,
                   goal: &str,
                   met: Option<bool>| {
            println!(
                "{num:<3}{what:<44} {value:>14}  {base:<40} {:>7}  {goal:<10} {}",
                ratio.map_or(String::new(), |r| format!("{r:.3}")),
                match met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "",
                }
            );
        };

        let onions = median(&self.onions_runs);
        let redis = median(&self.redis_runs);
        let ratio = onions / redis;
        row(
            "1",
            &format!(
                "mirror lookups/s, {LOOKUP_CONNS} conns (median of {})",
                self.onions_runs.len()
            ),
            format!("{onions:.0}/s"),
            format!(
                "redis GET {redis:.0}/s (median of {})",
                self.redis_runs.len()
            ),
            Some(ratio),
            ">= 1.0",
            Some(ratio >= 1.0),
        );
        let runs = |v: &[f64]| {
            v.iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "   runs: onions {}; redis {}",
            runs(&self.onions_runs),
            runs(&self.redis_runs)
        );

        let cpu_us = self.lookup_cpu / self.lookups as f64 * 1e6;
        row(
            "2",
            "mirror CPU per lookup",
            format!("{cpu_us:.2} us"),
            format!("{} lookups, {:.1} CPU s", self.lookups, self.lookup_cpu),
            None,
            "<= 10 us",
            Some(cpu_us <= 10.0),
        );

        let goal_rss = 64u64 << 20;
        row(
            "3",
            "mirror A RSS after catch-up",
            format!("{:.1} MiB", mib(self.rss_caught_up)),
            String::new(),
            None,
            "<= 64 MiB",
            Some(self.rss_caught_up <= goal_rss),
        );
        row(
            "",
            "mirror A RSS after the lookup load",
            format!("{:.1} MiB", mib(self.rss_after_lookups)),
            String::new(),
            None,
            "<= 64 MiB",
            Some(self.rss_after_lookups <= goal_rss),
        );
        row(
            "",
            "mirror B RSS after catch-up",
            format!("{:.1} MiB", mib(self.rss_b)),
            String::new(),
            None,
            "<= 64 MiB",
            Some(self.rss_b <= goal_rss),
        );

        for (i, (who, bytes)) in ["Quorum", "mirror A", "mirror B"]
            .iter()
            .zip(self.disk)
            .enumerate()
        {
            row(
                if i == 0 { "4" } else { "" },
                &format!("records.log, {who}"),
                format!("{:.1} MiB", mib(bytes)),
                format!(
                    "{:.0} B/record; {:.1} MiB per 2^20",
                    bytes as f64 / n,
                    mib(bytes) * per_goal
                ),
                None,
                "",
                None,
            );
        }

        let ingest_rate = self.ingest.accepted as f64 / self.ingest.secs;
        let bound = self.rates.quorum_bound();
        row(
            "5",
            &format!("Quorum durable ingest, {INGEST_CONNS} conns"),
            format!("{ingest_rate:.0}/s"),
            format!("1/(1/verify + 1/sign) = {bound:.0}/s"),
            Some(ingest_rate / bound),
            ">= 0.75",
            Some(ingest_rate / bound >= 0.75),
        );
        println!(
            "   verify {:.0}/s, sign {:.0}/s on {} cores; Quorum CPU {:.1} us/put ({:.2} cores busy); bound CPU {:.1} us/put",
            self.rates.verify(),
            self.rates.sign(),
            self.cores,
            self.quorum_cpu / self.ingest.accepted as f64 * 1e6,
            self.quorum_cpu / self.ingest.secs,
            self.cores as f64 / bound * 1e6,
        );

        let mirror_bound = self.rates.mirror_bound();
        let rate_a = n / self.catch_up_a;
        row(
            "6",
            "mirror A catch-up from the Quorum",
            format!("{rate_a:.0}/s"),
            format!("verify / 2 = {mirror_bound:.0}/s"),
            Some(rate_a / mirror_bound),
            ">= 0.75",
            Some(rate_a / mirror_bound >= 0.75),
        );
        println!(
            "   {:.1} s; mirror CPU {:.1} us/record ({:.2} cores busy), feeding Quorum {:.1} us/record; bound CPU {:.1} us/record",
            self.catch_up_a,
            self.catch_up_a_cpu / n * 1e6,
            self.catch_up_a_cpu / self.catch_up_a,
            self.catch_up_a_feed_cpu / n * 1e6,
            self.cores as f64 / mirror_bound * 1e6
        );
        let rate_b = n / self.catch_up_b;
        row(
            "",
            "mirror B catch-up from mirror A",
            format!("{rate_b:.0}/s"),
            format!("verify / 2 = {mirror_bound:.0}/s"),
            Some(rate_b / mirror_bound),
            "",
            None,
        );
        println!(
            "   {:.1} s; mirror B CPU {:.1} us/record ({:.2} cores busy), feeding mirror A {:.1} us/record",
            self.catch_up_b,
            self.catch_up_b_cpu / n * 1e6,
            self.catch_up_b_cpu / self.catch_up_b,
            self.catch_up_b_feed_cpu / n * 1e6,
        );

        let p = &self.propagation;
        row(
            "7",
            "propagation put -> mirror B push, p50",
            format!("{:.2} ms", percentile_ms(&p.hops[2], 50)),
            format!("{} samples", p.hops[2].len()),
            None,
            "",
            None,
        );
        row(
            "",
            "propagation put -> mirror B push, p90",
            format!("{:.2} ms", percentile_ms(&p.hops[2], 90)),
            String::new(),
            None,
            "",
            None,
        );
        let mut steps = vec![format!(
            "accepted reply {:.2}/{:.2}",
            percentile_ms(&p.accepted, 50),
            percentile_ms(&p.accepted, 90)
        )];
        for (name, hop) in HOPS.iter().zip(&p.hops) {
            steps.push(format!(
                "{name} {:.2}/{:.2}",
                percentile_ms(hop, 50),
                percentile_ms(hop, 90)
            ));
        }
        println!("   from the put, p50/p90 ms: {}", steps.join(", "));
    }
}

// ------------------------------------------------------------------- files

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "onions-bench-servers-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
