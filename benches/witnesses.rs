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

use onions::keys::{PublicKey, SigningKey};
use onions::lookup::{check_reply, LookupError, Policy, Resolution, Witnessed};
use onions::name::{LookupName, RegisteredName, SubdomainKey};
use onions::onion::OnionAddress;
use onions::record::{Claim, Record};
use onions::wire::{Code, Id, Reply, Request, Status};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant, UNIX_EPOCH};
use testkit::free_port_on;
use testkit::line::LineConn;
use testkit::process::{self, Proc};
use testkit::servers::answering_head;

const NAMES: usize = 10_000; // registered before the measurements
const NAMES_PER_KEY: usize = 1024; // names one owner key claims
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
/// servers, as in benches/servers.rs.
const DECODE_SAMPLE: usize = 32;
const START_LIMIT: Duration = Duration::from_secs(30); // until a server or redis listens
const REPLY_LIMIT: Duration = Duration::from_secs(30); // one reply; one put until found at B
const CATCH_UP_LIMIT: Duration = Duration::from_secs(600); // mirrors holding every name
const REDIS_RUN_LIMIT: Duration = Duration::from_secs(300); // one redis-benchmark run
const BUSY_RETRIES: u32 = 1000; // tries of a put answered `busy`
const POLL: Duration = Duration::from_millis(20); // between status polls
const STALL_LIMIT: Duration = Duration::from_secs(120); // catching up with no progress
const PROPAGATION_GOAL_MS: f64 = 10.0; // p50 with witnesses
const LOOKUP_GOAL: f64 = 0.95; // lookups/s with witnesses over without

fn main() {
    onions::keys::init().unwrap_or_else(|e| fail(e));
    process::install_panic_hook(|| {});
    let bin = std::env::var_os("ONIONS_BENCH_SERVER")
        .filter(|s| !s.is_empty())
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/onions-server"),
            PathBuf::from,
        );
    if !bin.is_file() {
        let bin = bin.display();
        fail(&format!("{bin} is missing"));
    }
    for tool in ["redis-server", "redis-benchmark"] {
        let path = std::env::var_os("PATH").unwrap_or_default();
        if !std::env::split_paths(&path).any(|d| d.join(tool).is_file()) {
            fail(&format!("`{tool}` is not on PATH"));
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("onions witnesses benchmark: {NAMES} names, {cores} cores");
    println!("server binary: {}", bin.display());
    println!("load average at start: {}\n", process::load_average());
    let pid = std::process::id();
    let nanos = UNIX_EPOCH.elapsed().map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("onions-bench-witnesses-{pid}-{nanos}"));
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let (chains, started) = (Vec::new(), Instant::now());
    let mut bench = Bench {
        chains,
        bin,
        started,
        dir,
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

// ----------------------------------------------------------------- servers

/// Flags from text with no spaces inside any one of them.
fn flags(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// A running `onions-server`.
struct Server {
    proc: Proc,
    addr: SocketAddr,
}

impl Server {
    /// Starts `bin` with `args` on a free port of 127.0.0.`ip`, its state
    /// in `state` (named after it), and waits (bounded) until it listens.
    fn start(bin: &Path, state: &Path, ip: u8, args: &[String]) -> Server {
        let mut command = Command::new(bin);
        command.args(args);
        let name = state.file_name().unwrap_or_default().to_string_lossy();
        let (proc, addr) =
            Proc::start_server(command, &name, &format!("127.0.0.{ip}"), state, START_LIMIT);
        Server { proc, addr }
    }

    fn status(&self) -> Status {
        match LineConn::connect(self.addr, REPLY_LIMIT)
            .request(&Request::Status { id: Id::Number(0) })
        {
            Reply::Status { status, .. } => *status,
            other => panic!("{}: status answered {other}", self.proc.what),
        }
    }

    /// The seq up to which the server has applied records and answers
    /// against a head covering them.
    fn answering(&self) -> u64 {
        let status = self.status();
        answering_head(&status).map_or(0, |h| h.seq.min(status.seq))
    }
}

/// The public key `onions-server --print-key ARGS` prints (creating the
/// key), its output going to `out`.
fn print_key(bin: &Path, out: &Path, args: &[&Path]) -> PublicKey {
    let mut command = Command::new(bin);
    command.arg("--print-key").args(args);
    let text = Proc::spawn(command, "onions-server --print-key", out).finish(START_LIMIT);
    let key = text.lines().last().unwrap_or("").trim();
    PublicKey::from_base64(key).unwrap_or_else(|| panic!("--print-key gave {text:?}"))
}

/// A Quorum, its witnesses (none for the baseline), and mirrors A and B,
/// with what a client of B checks. Stopped from B up when dropped.
struct Chain {
    b: Server,
    a: Server,
    witnesses: Vec<Server>,
    quorum: Server,
    policy: Policy,
}

impl Chain {
    /// Starts a chain: with `witnessed`, three witnesses between the
    /// Quorum and mirror A. `ips`: the last byte of the Quorum's, A's and
    /// B's 127.0.0.x.
    fn start(bin: &Path, dir: &Path, witnessed: bool, ips: [u8; 3]) -> Chain {
        let tag = if witnessed { "witnessed" } else { "plain" };
        let state = |what: &str| dir.join(format!("{tag}-{what}"));
        let quorum_state = state("quorum");
        let out = quorum_state.with_extension("key");
        let quorum_key = print_key(bin, &out, &[Path::new("--state-dir"), &quorum_state]);
        let n = if witnessed { 3 } else { 0 };
        let key_files: Vec<PathBuf> = (0..n).map(|i| state(&format!("w{i}.key"))).collect();
        let max_head_age = onions::lookup::DEFAULT_MAX_HEAD_AGE;
        let mut policy = Policy {
            max_head_age,
            ..Policy::default()
        };
        policy.verifier.trusted = vec![quorum_key];
        policy.witnesses.needed = if witnessed { NEEDED } else { 0 };
        for file in &key_files {
            let args = ["--role", "mirror", "--witness-key"].map(Path::new);
            let args = [&args[..], &[file, Path::new("--state-dir"), dir]].concat();
            let key = print_key(bin, &file.with_extension("out"), &args);
            policy.witnesses.trusted.push(key);
        }
        let trust: String = (policy.witnesses.trusted.iter())
            .map(|k| format!(" --trust-witness {}", k.to_base64()))
            .collect();
        let args = flags(&format!(
            "--role quorum --min-work 0 --head-interval 1{trust}"
        ));
        let quorum = Server::start(bin, &quorum_state, ips[0], &args);
        let key = policy.verifier.trusted[0].to_base64();
        let mirror = |up: SocketAddr, more: &str| {
            flags(&format!(
                "--role mirror --upstream {up} --quorum-key {key}{more}"
            ))
        };
        let witnesses: Vec<Server> = (key_files.iter().enumerate())
            .map(|(i, file)| {
                let mut args = mirror(quorum.addr, &trust);
                args.extend(["--witness-key".into(), file.display().to_string()]);
                Server::start(bin, &state(&format!("witness{i}")), 11 + i as u8, &args)
            })
            .collect();
        let mut gate = trust.clone();
        if witnessed {
            gate.push_str(&format!(" --witnesses {NEEDED}"));
        }
        let above_a = witnesses.first().map_or(quorum.addr, |w| w.addr);
        let a = Server::start(bin, &state("mirror-A"), ips[1], &mirror(above_a, &gate));
        let b = Server::start(bin, &state("mirror-B"), ips[2], &mirror(a.addr, &gate));
        Chain {
            b,
            a,
            witnesses,
            quorum,
            policy,
        }
    }

    /// Waits (bounded) until A and B answer against heads covering `seq`;
    /// on a stall or at the deadline, fails with every server's status and
    /// the end of its log.
    fn wait_caught_up(&mut self, seq: u64) {
        let (deadline, mut last) = (Instant::now() + CATCH_UP_LIMIT, (0, Instant::now()));
        loop {
            let servers = [&mut self.quorum, &mut self.a, &mut self.b];
            for s in servers.into_iter().chain(&mut self.witnesses) {
                s.proc.check_running();
            }
            let answering = self.a.answering().min(self.b.answering());
            if answering >= seq {
                return;
            }
            if answering != last.0 {
                last = (answering, Instant::now());
            }
            if last.1.elapsed() > STALL_LIMIT || Instant::now() > deadline {
                let servers = [&self.quorum, &self.a, &self.b];
                let mut text = String::new();
                for s in servers.into_iter().chain(&self.witnesses) {
                    let (what, log) = (&s.proc.what, s.proc.log_tail());
                    text.push_str(&format!("\n--- {what}: {}\n{log}", s.status()));
                }
                panic!("A and B answer up to seq {answering}, not {seq}:{text}");
            }
            std::thread::sleep(POLL);
        }
    }
}

// ----------------------------------------------------------------- clients

fn lookup_request(id: u64, name: &str) -> Request {
    let name = LookupName::from_user(name).expect("a valid name");
    Request::Lookup {
        id: Id::Number(id),
        name,
    }
}

// ----------------------------------------------------------------- records

fn name_of(i: usize) -> String {
    format!("bench-{i}.tor")
}

/// Put lines of records `0..count`, each for `bench-I.tor` with one
/// subdomain and a week's lifetime, work 0 (as benches/servers.rs makes
/// them).
fn put_lines(count: usize) -> Vec<Vec<u8>> {
    let now = onions::clock::now();
    let www = OnionAddress::from_key(SigningKey::from_seed(&[3; 32]).public());
    let mut key: Option<(usize, SigningKey)> = None;
    (0..count)
        .map(|i| {
            let owner = i / NAMES_PER_KEY;
            if key.as_ref().is_none_or(|(o, _)| *o != owner) {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(owner as u64).to_le_bytes());
                seed[8..].copy_from_slice(SEED_TAG);
                key = Some((owner, SigningKey::from_seed(&seed)));
            }
            let (_, key) = key.as_ref().expect("set above");
            let name = RegisteredName::parse(&name_of(i)).expect("a valid name");
            let sub = SubdomainKey::parse("www", &name).expect("a valid label");
            let claim = Claim {
                name,
                subdomains: BTreeMap::from([(sub, www)]),
                contact: "0123456789ABCDEF0123456789ABCDEF01234567".into(),
                serial: 1,
                issued: now - 60,
                expires: now + 7 * 24 * 60 * 60,
                work: 0,
            };
            // Work 0 holds for any nonce, so the nonce stays 0.
            let mut record = Record::from_claim(claim, key);
            record.sign_with(key);
            let (id, record) = (Id::Number(i as u64), record.to_value());
            Request::Put { id, record }.to_line()
        })
        .collect()
}

/// Puts every line over [`INGEST_CONNS`] connections, one in flight on
/// each, retrying (bounded) while answered `busy`; returns puts/s.
fn ingest(addr: SocketAddr, lines: &[Vec<u8>]) -> f64 {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..INGEST_CONNS {
            scope.spawn(move || {
                let mut conn = LineConn::connect(addr, REPLY_LIMIT);
                for line in lines.iter().skip(t).step_by(INGEST_CONNS) {
                    for tries in 0.. {
                        conn.send(line);
                        match conn.read_reply().unwrap_or_else(|e| panic!("{e}")) {
                            Reply::Accepted { .. } => break,
                            Reply::Error(e) if e.code == Code::Busy && tries < BUSY_RETRIES => {
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            other => panic!("a put to {addr} was answered {other}"),
                        }
                    }
                }
            });
        }
    });
    lines.len() as f64 / start.elapsed().as_secs_f64()
}

// ------------------------------------------------------------- propagation

/// One put timed until mirror B answers it.
struct Sample {
    latency: Duration,
    /// Lookups until the `found` answer, and those among them short of
    /// cosignatures or stale.
    polls: u64,
    short: u64,
    /// Valid trusted cosignatures on the `found` answer's head.
    cosigned: usize,
}

/// Sends `put` for `name` on the first connection (to the Quorum) and
/// looks `name` up on the second (at mirror B) every [`ANSWER_POLL`] until
/// an answer passes `check_reply` as `found`.
fn propagate(conns: &mut (LineConn, LineConn), put: &[u8], name: &str, policy: &Policy) -> Sample {
    let (quorum, b) = conns;
    let lookup = LookupName::from_user(name).expect("a valid name");
    let sent = Instant::now();
    quorum.send(put);
    let (mut polls, mut short) = (0, 0);
    let sample = loop {
        polls += 1;
        let reply = b.request(&lookup_request(polls, name));
        let latency = sent.elapsed();
        let found = matches!(reply, Reply::Found { .. });
        let witnessed = found.then(|| Witnessed::of_reply(&reply, &policy.witnesses));
        let cosigned = witnessed.flatten().map_or(0, |w| w.valid);
        match check_reply(reply, &lookup, policy, onions::clock::now()) {
            Ok(Resolution::Found(_)) => {
                break Sample {
                    latency,
                    polls,
                    short,
                    cosigned,
                }
            }
            Ok(Resolution::Absent(_)) => {}
            Err(LookupError::Refused(e)) if e.code.is_transient() => {}
            Err(LookupError::TooFewCosignatures(_) | LookupError::StaleHead { .. }) => short += 1,
            other => panic!("mirror B's answer for {name}: {other:?}"),
        }
        assert!(
            sent.elapsed() < REPLY_LIMIT,
            "{name} not found at mirror B in {REPLY_LIMIT:?}"
        );
        std::thread::sleep(ANSWER_POLL);
    };
    match quorum.read_reply().unwrap_or_else(|e| panic!("{e}")) {
        Reply::Accepted { .. } => sample,
        other => panic!("the put of {name} was answered {other}"),
    }
}

// ----------------------------------------------------------------- lookups

/// One lookup run at a mirror: lookups/s, reply bytes per lookup (newline
/// included), the mirror's CPU microseconds per lookup.
struct LookupRun {
    rate: f64,
    bytes: f64,
    cpu_us: f64,
}

/// [`LOOKUPS_PER_RUN`] lookups of random registered names over
/// [`LOOKUP_CONNS`] connections. The first reply of each connection is
/// checked as a client does; one in [`DECODE_SAMPLE`] is decoded and must
/// be `found` for the name asked, with at least [`NEEDED`] cosignatures
/// when `policy` requires them; the rest are read as lines.
fn lookup_run(mirror: &mut Server, seed: u64, policy: &Policy) -> LookupRun {
    mirror.proc.check_running();
    let addr = mirror.addr;
    let cosigned = !policy.witnesses.is_off();
    let per_conn = LOOKUPS_PER_RUN / LOOKUP_CONNS;
    let barrier = Barrier::new(LOOKUP_CONNS + 1);
    let cpu = mirror.proc.cpu_secs();
    let (secs, bytes) = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..LOOKUP_CONNS as u64)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut conn = LineConn::connect(addr, REPLY_LIMIT);
                    // An LCG, good enough to pick names.
                    let mut rng = seed << 32 | t;
                    let mut bytes = 0u64;
                    barrier.wait();
                    for n in 0..per_conn {
                        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        let name = name_of((rng >> 33) as usize % NAMES);
                        conn.send(&lookup_request(n as u64, &name).to_line());
                        let line = conn.read_line().unwrap_or_else(|e| panic!("{e}"));
                        bytes += line.len() as u64 + 1;
                        if n % DECODE_SAMPLE != 0 {
                            continue;
                        }
                        let reply = Reply::parse(line).expect("a reply");
                        if n == 0 {
                            let lookup = LookupName::from_user(&name).expect("a valid name");
                            match check_reply(reply, &lookup, policy, onions::clock::now()) {
                                Ok(Resolution::Found(_)) => continue,
                                other => panic!("lookup of {name} at {addr}: {other:?}"),
                            }
                        }
                        let ok = match &reply {
                            Reply::Found {
                                record,
                                cosignatures: c,
                                ..
                            } => record.name.as_str() == name && (!cosigned || c.len() >= NEEDED),
                            _ => false,
                        };
                        assert!(ok, "lookup of {name} at {addr} answered {reply}");
                    }
                    bytes
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let bytes: u64 = threads
            .into_iter()
            .map(|t| t.join().expect("a lookup thread"))
            .sum();
        (start.elapsed().as_secs_f64(), bytes)
    });
    let ops = (per_conn * LOOKUP_CONNS) as f64;
    let cpu_us = (mirror.proc.cpu_secs() - cpu) / ops * 1e6;
    LookupRun {
        rate: ops / secs,
        bytes: bytes as f64 / ops,
        cpu_us,
    }
}

/// Starts a `redis-server` with no persistence on 127.0.0.1 (its port).
fn start_redis(dir: &Path) -> (Proc, u16) {
    let port = free_port_on("127.0.0.1");
    let mut command = Command::new("redis-server");
    command.args(flags(&format!("--port {port} --bind 127.0.0.1")));
    command
        .args(["--save", "", "--appendonly", "no"])
        .current_dir(dir);
    let what = format!("redis-server on 127.0.0.1:{port}");
    let mut proc = Proc::spawn(command, &what, &dir.join("redis.log"));
    proc.wait_listening(([127, 0, 0, 1], port).into(), START_LIMIT);
    (proc, port)
}

/// One `redis-benchmark -t get -c 50 -n 200000 -q` run: GETs per second.
fn redis_get_rate(port: u16, dir: &Path) -> f64 {
    let mut command = Command::new("redis-benchmark");
    command.args(flags(&format!(
        "-h 127.0.0.1 -p {port} -t get -c {LOOKUP_CONNS} -n {LOOKUPS_PER_RUN} -q"
    )));
    let out = dir.join("redis-benchmark.out");
    let text = Proc::spawn(command, "redis-benchmark", &out).finish(REDIS_RUN_LIMIT);
    // `GET: 123456.79 requests per second, p50=...`; progress lines end in \r.
    text.split(['\r', '\n'])
        .filter_map(|l| l.split_once("GET:"))
        .filter_map(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no \"GET: N requests per second\" in {text:?}"))
}

// ------------------------------------------------------------------- bench

/// The run and every process it started, stopped by their PIDs before
/// the directory is removed when it drops.
struct Bench {
    /// With witnesses, then without.
    chains: Vec<Chain>,
    bin: PathBuf,
    started: Instant,
    dir: PathBuf,
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.chains.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Everything the table shows; each pair is with witnesses, without.
struct Report {
    samples: [Vec<Sample>; 2],
    lookups: [Vec<LookupRun>; 2],
    redis: Vec<f64>,
}

impl Bench {
    fn phase(&self, what: &str, since: Instant) {
        let at = self.started.elapsed().as_secs_f64();
        let (secs, load) = (since.elapsed().as_secs_f64(), process::load_average());
        println!("[{at:>6.1} s] {what}: {secs:.1} s [load {load}]");
        let _ = std::io::stdout().flush();
    }

    fn run(&mut self) -> Report {
        let dir = self.dir.clone();
        let t = Instant::now();
        let lines = put_lines(NAMES + PROPAGATION_SAMPLES);
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
            let rate = ingest(chain.quorum.addr, names);
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
            let name = name_of(NAMES + j);
            for side in [j % 2, 1 - j % 2] {
                let sample = propagate(&mut conns[side], put, &name, &self.chains[side].policy);
                samples[side].push(sample);
            }
        }
        drop(conns);
        self.phase("propagation, one put at a time, the chains alternating", t);

        let t = Instant::now();
        let (mut redis_proc, port) = start_redis(&dir);
        let mut lookups: [Vec<LookupRun>; 2] = Default::default();
        let mut redis = Vec::new();
        for round in 0..LOOKUP_ROUNDS {
            let mut sides = [0, 1, 2];
            sides.rotate_left(round % 3);
            for side in sides {
                if side == 2 {
                    redis_proc.check_running();
                    redis.push(redis_get_rate(port, &dir));
                } else {
                    let Chain { b, policy, .. } = &mut self.chains[side];
                    lookups[side].push(lookup_run(b, (round * 3 + side) as u64, policy));
                }
            }
        }
        drop(redis_proc);
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

// ------------------------------------------------------------------ report

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n => (v[(n - 1) / 2] + v[n / 2]) / 2.0,
    }
}

/// The nearest-rank `p`th percentile of the samples' latencies, in ms.
fn percentile_ms(samples: &[Sample], p: usize) -> f64 {
    let mut v: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    v.sort();
    let rank = (v.len() * p).div_ceil(100).max(1);
    v.get(rank - 1).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// One row of the results table, laid out as benches/servers.rs's:
/// number, figure, value, baseline, ratio, and the goal with whether it
/// is met.
fn row(cells: [&str; 4], ratio: f64, goal: Option<(&str, bool)>) {
    let [num, what, value, base] = cells;
    let (goal, met) = goal.map_or(("", ""), |(g, met)| (g, if met { "yes" } else { "NO" }));
    println!("{num:<3}{what:<48} {value:>12}  {base:<38} {ratio:>7.3}  {goal:<9} {met}");
}

fn join<T>(values: &[T], show: impl Fn(&T) -> String) -> String {
    values.iter().map(show).collect::<Vec<_>>().join(", ")
}

impl Report {
    fn print(&self) {
        let load = process::load_average();
        println!("\nresults; load average at the end {load}");
        let head = ["#", "figure", "witnesses", "baseline", "ratio", "goal"];
        let [num, what, value, base, ratio, goal] = head;
        println!("{num:<3}{what:<48} {value:>12}  {base:<38} {ratio:>7}  {goal:<9} met");
        let [with, without] = &self.samples;
        for p in [50, 90] {
            let (w, o) = (percentile_ms(with, p), percentile_ms(without, p));
            let what = format!("put -> found at mirror B, {NEEDED} cosignatures, p{p}");
            let (value, base) = (format!("{w:.2} ms"), format!("no witnesses {o:.2} ms"));
            let goal = (p == 50).then_some(("<= 10 ms", w <= PROPAGATION_GOAL_MS));
            let num = if p == 50 { "1" } else { "" };
            row([num, &what, &value, &base], w / o, goal);
        }
        let sum = |s: &[Sample], f: fn(&Sample) -> u64| s.iter().map(f).sum::<u64>();
        let cosigned: Vec<usize> = with.iter().map(|s| s.cosigned).collect();
        println!(
            "   {PROPAGATION_SAMPLES} puts per chain, alternating; max {:.2} vs {:.2} ms; {} vs {} lookups, \
             each through check_reply ({} short of cosignatures or stale); the found answers carried \
             {} to {} valid trusted cosignatures",
            percentile_ms(with, 100),
            percentile_ms(without, 100),
            sum(with, |s| s.polls),
            sum(without, |s| s.polls),
            sum(with, |s| s.short),
            cosigned.iter().min().unwrap_or(&0),
            cosigned.iter().max().unwrap_or(&0),
        );
        let redis = median(&self.redis);
        let base = format!("redis GET {redis:.0}/s");
        let rates = |i: usize| self.lookups[i].iter().map(|r| r.rate).collect::<Vec<f64>>();
        let [at_b, at_plain] = [0, 1].map(|i| median(&rates(i)));
        let (b, plain) = (format!("{at_b:.0}/s"), format!("{at_plain:.0}/s"));
        let cells = ["2", "lookups/s at mirror B (cosigned)", &b, &base];
        row(cells, at_b / redis, None);
        let cells = ["", "lookups/s at mirror B' (no witnesses)", &plain, &base];
        row(cells, at_plain / redis, None);
        let ratio = at_b / at_plain;
        let base = format!("no witnesses {plain}");
        let cells = ["", "lookups/s, with witnesses / without", &b, &base];
        row(cells, ratio, Some((">= 0.95", ratio >= LOOKUP_GOAL)));
        let mean = |i: usize, f: fn(&LookupRun) -> f64| {
            self.lookups[i].iter().map(f).sum::<f64>() / self.lookups[i].len().max(1) as f64
        };
        let rate = |r: &f64| format!("{r:.0}");
        println!(
            "   medians of {LOOKUP_ROUNDS} runs, alternating: B {}; B' {}; redis {}; reply {:.0} vs {:.0} B; \
             mirror CPU {:.2} vs {:.2} us/lookup; 1 reply in {DECODE_SAMPLE} decoded, each \
             connection's first checked in full",
            join(&rates(0), rate),
            join(&rates(1), rate),
            join(&self.redis, rate),
            mean(0, |r| r.bytes),
            mean(1, |r| r.bytes),
            mean(0, |r| r.cpu_us),
            mean(1, |r| r.cpu_us),
        );
    }
}
