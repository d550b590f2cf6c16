//! Rows 1 and 2: mirror lookups per second over [`LOOKUP_CONNS`]
//! unpipelined connections, and the mirror's CPU time per lookup, against
//! `redis-benchmark -t get` on the redis baseline (testkit's [`Redis`]);
//! the sides alternate and their medians are compared. The rows' own load
//! has redis-benchmark's shape (one thread polling every connection,
//! [`polled`](crate::polled)); a thread per connection, the shape of
//! earlier runs, is measured beside it.

use crate::footprint::Memory;
use crate::profile::{Profile, Snapshot};
use crate::server::REPLY_LIMIT;
use crate::table::{median, mib, row, Row};
use crate::{Bench, Report};
use onions::lookup::{check_reply, Policy, Resolution};
use onions::name::LookupName;
use onions::wire::Reply;
use std::net::SocketAddr;
use std::sync::Barrier;
use std::time::Instant;
use testkit::line::{lookup_request, LineConn};
use testkit::process;
use testkit::records::Maker;
use testkit::redis::{Get, Redis, RedisRun};
use testkit::XorShift;

/// Connections (one thread each) of a lookup run, as redis-benchmark's -c.
const LOOKUP_CONNS: usize = 50;
/// Lookups of one run, as redis-benchmark's -n.
const LOOKUPS_PER_RUN: usize = 200_000;
/// Runs of each side of the lookup comparison, alternating.
const LOOKUP_ROUNDS: usize = 3;
/// The lighter lookup client decodes one reply in this many (the other
/// decodes every one).
const DECODE_SAMPLE: usize = 32;
/// The redis key of the baseline whose replies are as long as a lookup's.
const SIZED_KEY: &str = "reply-sized";

/// The redis runs of the phase.
pub struct RedisRuns {
    /// `-t get`: rows 1 and 2's baseline, each reply a nil.
    pub missing: Vec<RedisRun>,
    /// `GET` of a value of `bytes` bytes, the median `found` reply line.
    pub sized: Vec<RedisRun>,
    /// That value's length.
    pub bytes: usize,
}

/// What a side's redis runs give the table.
struct RedisSummary {
    /// Each run's GETs per second.
    rates: Vec<f64>,
    /// redis-server's CPU per GET, in microseconds.
    server_us: f64,
    /// redis-benchmark's CPU per GET, in microseconds.
    client_us: f64,
}

impl RedisSummary {
    /// The summary of `runs`, each of [`LOOKUPS_PER_RUN`] GETs.
    fn of(runs: &[RedisRun]) -> RedisSummary {
        let gets = (runs.len() * LOOKUPS_PER_RUN) as f64;
        let per_get = |cpu: f64| cpu / gets * 1e6;
        RedisSummary {
            rates: runs.iter().map(|r| r.rate).collect(),
            server_us: per_get(runs.iter().map(|r| r.server_cpu).sum()),
            client_us: per_get(runs.iter().map(|r| r.client_cpu).sum()),
        }
    }
}

/// How a lookup run's load is driven.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// One thread polling every connection, as redis-benchmark.
    Polled,
    /// A thread per connection.
    Threads,
}

/// One lookup run and what it cost this process and the mirror.
pub struct LookupRun {
    /// How the load was driven.
    shape: Shape,
    /// One reply in this many was decoded.
    decode_every: usize,
    /// The mirror's CPU seconds during the run.
    mirror_cpu: f64,
    ops: u64,
    secs: f64,
    /// This benchmark's CPU seconds during the run (the 50 clients).
    client_cpu: f64,
}

/// Checks the answer `line` to the `n`-th lookup of a connection, of
/// `name`, as both loads do: the first in full, as a client does
/// (`check_reply`); of the others, one in `decode_every` is decoded with
/// `Reply::parse` and must be `found` for `name`; the rest are only read
/// as lines.
pub(crate) fn check_answer(
    line: &[u8],
    n: usize,
    name: &str,
    policy: &Policy,
    decode_every: usize,
) {
    if n % decode_every != 0 {
        return;
    }
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let reply = Reply::parse(line).unwrap_or_else(|e| {
        panic!(
            "lookup of {name}: the server sent {:?}, not a reply: {e}",
            String::from_utf8_lossy(line)
        )
    });
    if n == 0 {
        let lookup = LookupName::from_user(name).expect("a valid name");
        match check_reply(reply, &lookup, policy, onions::clock::now()) {
            Ok(Resolution::Found(_)) => {}
            other => panic!("lookup of {name}: {other:?}"),
        }
        return;
    }
    match reply {
        Reply::Found { record, .. } if record.name.as_str() == name => {}
        other => panic!("lookup of {name} answered {other}"),
    }
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
                        let line = conn
                            .read_line()
                            .unwrap_or_else(|e| panic!("lookup of {name}: {e}"));
                        check_answer(line, n, &name, policy, decode_every);
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
            shape: Shape::Threads,
            decode_every,
            mirror_cpu: 0.0,
            ops,
            secs: start.elapsed().as_secs_f64(),
            client_cpu: process::own_cpu_secs() - cpu,
        }
    })
}

impl Shape {
    /// How the rows name it.
    fn words(self) -> &'static str {
        match self {
            Shape::Polled => "one polling thread",
            Shape::Threads => "a thread per conn",
        }
    }
}

/// A run of the polled load ([`crate::polled::run`]) decoding one reply
/// in [`DECODE_SAMPLE`].
fn polled_lookups(addr: SocketAddr, records: usize, run: usize, policy: &Policy) -> LookupRun {
    let cpu = process::own_cpu_secs();
    let (ops, secs) = crate::polled::run(
        addr,
        records,
        (LOOKUP_CONNS, LOOKUPS_PER_RUN),
        run as u64,
        policy,
        DECODE_SAMPLE,
    );
    LookupRun {
        shape: Shape::Polled,
        decode_every: DECODE_SAMPLE,
        mirror_cpu: 0.0,
        ops,
        secs,
        client_cpu: process::own_cpu_secs() - cpu,
    }
}

impl Bench {
    /// Phase "lookups: onions vs redis, alternating": [`LOOKUP_ROUNDS`]
    /// rounds of a redis GET run of a missing key, one of a value of
    /// `reply_bytes` (a lookup's reply line), and three mirror A runs
    /// (polled, decoding one reply in [`DECODE_SAMPLE`]; a thread per
    /// connection, decoding as many; a thread per connection, decoding
    /// every reply), the order rotating; the runs, and mirror A's memory
    /// after them.
    pub fn lookups(
        &mut self,
        policy: &Policy,
        reply_bytes: usize,
    ) -> (Vec<LookupRun>, RedisRuns, Memory, Profile) {
        let n = self.settings.records;
        let a_addr = self.mirror_a().addr;
        let t = Instant::now();
        let before = Snapshot::of(&self.mirror_a().proc);
        let mut redis = Redis::start(self.dir.path());
        redis.set(SIZED_KEY, reply_bytes);
        self.redis = Some(redis);
        let mut onions_runs = Vec::new();
        let mut redis_runs = RedisRuns {
            missing: Vec::new(),
            sized: Vec::new(),
            bytes: reply_bytes,
        };
        for round in 0..LOOKUP_ROUNDS {
            let mut sides = [0, 1, 2, 3, 4];
            sides.rotate_left(round % 5);
            for side in sides {
                if side == 0 || side == 4 {
                    let (get, what, runs) = if side == 0 {
                        (Get::Missing, "GET".to_string(), &mut redis_runs.missing)
                    } else {
                        let what = format!("GET of {reply_bytes} B");
                        (Get::Key(SIZED_KEY), what, &mut redis_runs.sized)
                    };
                    let redis = self.redis.as_mut().expect("started");
                    let run = redis.get_run(self.dir.path(), get, LOOKUP_CONNS, LOOKUPS_PER_RUN);
                    println!(
                        "           redis {what} run: {:.0}/s (redis-server CPU {:.2} s, redis-benchmark CPU {:.2} s)",
                        run.rate, run.server_cpu, run.client_cpu
                    );
                    runs.push(run);
                } else {
                    let decode_every = if side == 3 { 1 } else { DECODE_SAMPLE };
                    let mirror = self.mirror_a.as_mut().expect("started");
                    mirror.proc.check_running();
                    let cpu = mirror.proc.cpu_secs();
                    let seed = round * 5 + side;
                    let mut run = if side == 1 {
                        polled_lookups(a_addr, n, seed, policy)
                    } else {
                        onions_lookups(a_addr, n, seed, policy, decode_every)
                    };
                    run.mirror_cpu = mirror.proc.cpu_secs() - cpu;
                    println!(
                        "           onions lookup run, {}, 1 in {decode_every} decoded: {:.0}/s ({} in {:.1} s; mirror CPU {:.2} s, client CPU {:.2} s)",
                        run.shape.words(),
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
        let profile = Profile::since(&before, &self.mirror_a().proc);
        let memory_after_lookups = self.mirror_a().memory();
        self.phase(
            "lookups: onions vs redis, alternating",
            t,
            &format!(
                "mirror VmRSS after {:.1} MiB, VmHWM {:.1} MiB",
                mib(memory_after_lookups.rss),
                mib(memory_after_lookups.hwm)
            ),
        );
        (onions_runs, redis_runs, memory_after_lookups, profile)
    }
}

impl Report {
    /// Rows 1 and 2, for the lighter client and then the one decoding
    /// every reply.
    pub fn print_lookups(&self) {
        let RedisSummary {
            rates: redis,
            server_us: redis_us,
            client_us: redis_client_us,
        } = RedisSummary::of(&self.redis_runs.missing);
        let runs = |v: &[f64]| {
            v.iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let kinds = [
            (Shape::Polled, DECODE_SAMPLE),
            (Shape::Threads, DECODE_SAMPLE),
            (Shape::Threads, 1),
        ];
        for (i, (shape, decode_every)) in kinds.into_iter().enumerate() {
            let mine: Vec<&LookupRun> = self
                .onions_runs
                .iter()
                .filter(|r| r.shape == shape && r.decode_every == decode_every)
                .collect();
            let rates: Vec<f64> = mine.iter().map(|r| r.ops as f64 / r.secs).collect();
            let ops: u64 = mine.iter().map(|r| r.ops).sum();
            let client: f64 = mine.iter().map(|r| r.client_cpu).sum();
            let server: f64 = mine.iter().map(|r| r.mirror_cpu).sum();
            let ratio = median(&rates) / median(&redis);
            let client_text = if decode_every == 1 {
                format!("{}, every reply decoded", shape.words())
            } else {
                format!("{}, 1 in {decode_every} decoded", shape.words())
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
                redis_client_us,
                self.cores
            );
            let cpu_us = server / ops as f64 * 1e6;
            row(Row {
                num: if i == 0 { "2" } else { "" },
                what: &format!("mirror CPU per lookup with proof, {client_text}"),
                value: format!("{cpu_us:.2} us"),
                base: format!("redis-server {redis_us:.2} us/GET"),
                ratio: Some(cpu_us / redis_us),
                goal: if i == 0 { "<= 10 us" } else { "" },
                met: (i == 0).then_some(cpu_us <= 10.0),
            });
            println!("   {ops} lookups, {server:.1} mirror CPU s");
            if i == 0 {
                self.print_sized_baseline(median(&rates), cpu_us);
            }
        }
        self.print_lookup_profile();
    }

    /// Row 1b: the polled lookups against redis answering a value as long
    /// as their median reply line, which rows 1 and 2's nil replies are
    /// not.
    fn print_sized_baseline(&self, rate: f64, cpu_us: f64) {
        let RedisSummary {
            rates, server_us, ..
        } = RedisSummary::of(&self.redis_runs.sized);
        let bytes = self.redis_runs.bytes;
        row(Row {
            num: "1b",
            what: "the same against redis GET of a reply-sized value",
            value: format!("{rate:.0}/s"),
            base: format!("GET of {bytes} B {:.0}/s", median(&rates)),
            ratio: Some(rate / median(&rates)),
            goal: "",
            met: None,
        });
        println!(
            "   redis-server {server_us:.2} us/GET of {bytes} B (the median found reply line) against {cpu_us:.2} us/lookup here; \
             rows 1 and 2's GET asks for a key nobody set, answered with a 5-byte nil"
        );
    }

    /// The `profile` note of rows 1–2: mirror A over every lookup run
    /// of the phase.
    fn print_lookup_profile(&self) {
        let ops: u64 = self.onions_runs.iter().map(|r| r.ops).sum();
        self.lookup_profile
            .print("lookups (all runs)", "lookup", ops);
    }
}
