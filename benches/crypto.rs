//! Benchmark of proof of work and verification against raw libsodium.
//!
//! The crate's cryptography is libsodium underneath: Argon2id for the proof
//! of work (protocol.md §4) and ed25519 for records and attestations. This
//! measures what the crate adds on top, so that a costly wrapper (extra
//! copies, canonical JSON rebuilt too often, a slow search loop) shows as a
//! ratio falling below 1.0:
//!
//! - Argon2id tries per second on one core: `work::digest` against
//!   `crypto_pwhash` called directly with the same parameters;
//! - `work::solve` tries per second on all cores, in total and per core
//!   against one core's `work::digest`;
//! - verifications per second: `check_record` at work 0 (bound by the
//!   signature) and at work 8 (bound by Argon2id), and `check_answer`
//!   (record and attestation, two signatures), against raw ed25519 verify.
//!
//! Every case runs once in each of several rounds, the order reversed every
//! other round, so that machine noise (frequency scaling, other load) falls
//! on all cases alike. `ONIONS_BENCH_SECONDS` sets each case's total time
//! (default 2); arguments, such as cargo's `--bench`, are ignored.

use onions::attest::Attestation;
use onions::keys::SigningKey;
use onions::name::{RegisteredName, SubdomainKey};
use onions::onion::OnionAddress;
use onions::record::{Claim, Record};
use onions::verify::Verifier;
use onions::work;
use sodiumoxide::crypto::sign::ed25519;
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_ulonglong};
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

/// Rounds each case's time is split into.
const ROUNDS: u32 = 4;
/// Seconds per case when `ONIONS_BENCH_SECONDS` is unset or empty.
const DEFAULT_SECONDS: f64 = 2.0;
/// Difficulty of each measured search: about 1024 tries, well under a second
/// on two cores. A round finishes the search it is in, so short searches keep
/// rounds close to their budget.
const SOLVE_WORK: u64 = 10;
/// How often a search reports progress while it is measured.
const REPORT_INTERVAL: Duration = Duration::from_millis(5);
/// libsodium's identifier of Argon2id v1.3, as `crypto_pwhash` takes it.
const ARGON2ID13: c_int = libsodium_sys::crypto_pwhash_ALG_ARGON2ID13 as c_int;

/// A case's measurement: given a time budget, it works for about that long
/// and says how much it did.
type Runner<'a> = Box<dyn FnMut(Duration) -> Sample + 'a>;

/// Operations done in a measured time.
#[derive(Clone, Copy, Default)]
struct Sample {
    ops: u64,
    secs: f64,
}

impl Sample {
    /// Operations per second.
    fn rate(self) -> f64 {
        self.ops as f64 / self.secs.max(1e-9)
    }
}

/// A case's result over all rounds.
#[derive(Clone, Copy)]
struct Stats {
    /// Operations per second over all rounds together.
    rate: f64,
    /// Highest less lowest per-round rate, as a fraction of `rate`.
    spread: f64,
}

impl Stats {
    /// Combines the rounds of one case.
    fn from_rounds(rounds: &[Sample]) -> Stats {
        let ops = rounds.iter().map(|s| s.ops).sum();
        let secs = rounds.iter().map(|s| s.secs).sum();
        let rate = Sample { ops, secs }.rate();
        let rates = rounds.iter().map(|s| s.rate());
        let max = rates.clone().fold(f64::MIN, f64::max);
        let min = rates.fold(f64::MAX, f64::min);
        Stats {
            rate,
            spread: (max - min) / rate.max(1e-9),
        }
    }

    /// The rate shared out over `cores`.
    fn per_core(self, cores: usize) -> Stats {
        Stats {
            rate: self.rate / cores as f64,
            ..self
        }
    }
}

/// The records, attestation and policy the verification cases check.
struct Fixture {
    verifier: Verifier,
    plain: Record,
    worked: Record,
    attestation: Attestation,
    now: u64,
}

impl Fixture {
    /// Signs a record at work 0 and one at work 8 (solved on `cores`), and
    /// has a Quorum key attest the first.
    fn new(cores: usize) -> Fixture {
        let owner = SigningKey::from_seed(&[1; 32]);
        let quorum = SigningKey::from_seed(&[2; 32]);
        let www = OnionAddress::from_key(SigningKey::from_seed(&[3; 32]).public());
        let now = onions::clock::now();
        let plain = signed_record(&owner, www, now, 0, cores);
        let worked = signed_record(&owner, www, now, 8, cores);
        let attestation = Attestation::sign(plain.id(), 1, now, &quorum);
        let verifier = Verifier {
            min_work: 0,
            trusted: vec![quorum.public()],
            max_skew: None,
        };
        Fixture {
            verifier,
            plain,
            worked,
            attestation,
            now,
        }
    }
}

/// A record shaped like protocol.md's example (one subdomain, a 40-character
/// contact, a week's lifetime), its work done and signed by `key`.
fn signed_record(key: &SigningKey, www: OnionAddress, now: u64, work: u64, cores: usize) -> Record {
    let name = RegisteredName::parse("example.tor").expect("example.tor is a valid name");
    let sub = SubdomainKey::parse("www", &name).expect("www is a valid subdomain");
    let claim = Claim {
        name,
        subdomains: BTreeMap::from([(sub, www)]),
        contact: "0123456789ABCDEF0123456789ABCDEF01234567".into(),
        serial: 1,
        issued: now - 60,
        expires: now + 7 * 24 * 60 * 60,
        work,
    };
    let mut record = Record::from_claim(claim, key);
    let input = work::input(&record.work_body());
    record.nonce = work::solve(&input, work, cores, REPORT_INTERVAL, &mut |_| {})
        .expect("a nonce for small work is always found");
    record.sign_with(key);
    record
}

/// Argon2id through `crypto_pwhash` directly, with `work::digest`'s
/// parameters and password layout (`input || nonce_be8`).
fn raw_digest(input: &[u8; 32], nonce: u64) -> [u8; 32] {
    let mut password = [0u8; 40];
    password[..32].copy_from_slice(input);
    password[32..].copy_from_slice(&nonce.to_be_bytes());
    let mut out = [0u8; 32];
    // SAFETY: `out` holds `outlen` bytes, `password` holds `passwdlen`
    // bytes, and the salt is the 16 bytes libsodium reads.
    let rc = unsafe {
        libsodium_sys::crypto_pwhash(
            out.as_mut_ptr(),
            out.len() as c_ulonglong,
            password.as_ptr().cast::<c_char>(),
            password.len() as c_ulonglong,
            work::SALT.as_ptr(),
            work::OPSLIMIT as c_ulonglong,
            work::MEMLIMIT,
            ARGON2ID13,
        )
    };
    assert_eq!(rc, 0, "crypto_pwhash failed");
    out
}

/// A runner that calls `op` until the budget is spent.
fn repeat<'a>(mut op: impl FnMut() + 'a) -> Runner<'a> {
    Box::new(move |budget| {
        let start = Instant::now();
        let mut ops = 0;
        while start.elapsed() < budget {
            op();
            ops += 1;
        }
        Sample {
            ops,
            secs: start.elapsed().as_secs_f64(),
        }
    })
}

/// A runner that searches, on `cores` threads, for nonces of fresh inputs
/// until the budget is spent, counting the tries of every search.
fn searches<'a>(cores: usize) -> Runner<'a> {
    let mut seed = 0u64;
    Box::new(move |budget| {
        let start = Instant::now();
        let mut total = Sample::default();
        while start.elapsed() < budget {
            seed += 1;
            let one = search(&work::input(&seed.to_string()), cores);
            total.ops += one.ops;
            total.secs += one.secs;
        }
        total
    })
}

/// One search, measured at its last progress report, where the tries and
/// the elapsed time are read together. Each thread has counted the try it
/// is working on, so `cores` tries are taken off as not yet done.
fn search(input: &[u8; 32], cores: usize) -> Sample {
    let mut last = Sample::default();
    let mut report = |p: work::Progress| {
        last = Sample {
            ops: p.tries.saturating_sub(cores as u64),
            secs: p.elapsed.as_secs_f64(),
        };
    };
    work::solve(input, SOLVE_WORK, cores, REPORT_INTERVAL, &mut report)
        .expect("a nonce for small work is always found");
    last
}

/// Runs every runner once per round for `budget`, reversing the order every
/// other round, and combines each runner's rounds.
fn interleave<const N: usize>(budget: Duration, runners: &mut [Runner<'_>; N]) -> [Stats; N] {
    let mut rounds: [Vec<Sample>; N] = std::array::from_fn(|_| Vec::new());
    for round in 0..ROUNDS {
        let mut order: Vec<usize> = (0..N).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            rounds[i].push(runners[i](budget));
        }
    }
    rounds.map(|r| Stats::from_rounds(&r))
}

/// Runners for the proof-of-work cases: raw Argon2id, `work::digest` and
/// `work::solve` on `cores`.
fn work_runners<'a>(cores: usize) -> [Runner<'a>; 3] {
    let input = work::input("onions bench");
    assert_eq!(
        raw_digest(&input, 0),
        work::digest(&input, 0),
        "raw crypto_pwhash and work::digest must compute the same digest"
    );
    let (mut raw_nonce, mut our_nonce) = (0u64, 0u64);
    [
        repeat(move || {
            raw_nonce += 1;
            black_box(raw_digest(&input, raw_nonce));
        }),
        repeat(move || {
            our_nonce += 1;
            black_box(work::digest(&input, our_nonce));
        }),
        searches(cores),
    ]
}

/// Runners for the verification cases: raw ed25519 verify of the plain
/// record's signature, `check_record` of the plain record, `check_answer`
/// of it with its attestation, and `check_record` of the worked record.
fn verify_runners(f: &Fixture) -> [Runner<'_>; 4] {
    let message = f.plain.signed_bytes();
    let key = ed25519::PublicKey(*f.plain.onion.key().as_bytes());
    let sig = ed25519::Signature::from(f.plain.sig.0);
    [
        repeat(move || assert!(ed25519::verify_detached(&sig, &message, &key))),
        repeat(|| {
            f.verifier
                .check_record(&f.plain, f.now)
                .expect("the work 0 record verifies");
        }),
        repeat(|| {
            f.verifier
                .check_answer(&f.plain, &f.attestation, f.now)
                .expect("the answer verifies");
        }),
        repeat(|| {
            f.verifier
                .check_record(&f.worked, f.now)
                .expect("the work 8 record verifies");
        }),
    ]
}

/// One line of the table: a case, its result, and optionally its rate as a
/// fraction of a baseline's.
struct Row {
    name: String,
    stats: Stats,
    ratio: Option<(f64, &'static str)>,
}

impl Row {
    /// A row with no baseline.
    fn base(name: &str, stats: Stats) -> Row {
        Row {
            name: name.into(),
            stats,
            ratio: None,
        }
    }

    /// A row compared with `baseline` operations per second.
    fn versus(name: &str, stats: Stats, baseline: f64, what: &'static str) -> Row {
        Row {
            name: name.into(),
            stats,
            ratio: Some((stats.rate / baseline, what)),
        }
    }

    /// Prints the row under [`print_header`]'s columns.
    fn print(&self) {
        let line = format!(
            "{:<36} {:>11.1} {:>6.1}%",
            self.name,
            self.stats.rate,
            self.stats.spread * 100.0
        );
        match self.ratio {
            Some((ratio, what)) => println!("{line}  {ratio:.3} x {what}"),
            None => println!("{line}"),
        }
    }
}

/// Prints the run's settings and the column titles.
fn print_header(seconds: f64, cores: usize) {
    println!("onions crypto benchmark: {seconds} s per case in {ROUNDS} alternating rounds, {cores} cores");
    println!("spread: (highest - lowest) per-round rate / overall rate\n");
    println!("{:<36} {:>11} {:>7}  ratio", "case", "per second", "spread");
}

/// Prints a row per case, with its ratio to its baseline where it has one.
/// `stats` are in the order of [`work_runners`] then [`verify_runners`].
fn print_rows(stats: [Stats; 7], cores: usize) {
    let [raw_argon, digest, solve, raw_verify, plain, answer, worked] = stats;
    let rows = [
        Row::base("Argon2id, raw crypto_pwhash, 1 core", raw_argon),
        Row::versus("work::digest, 1 core", digest, raw_argon.rate, "raw"),
        Row::base(&format!("work::solve, {cores} cores"), solve),
        Row::versus(
            "work::solve, per core",
            solve.per_core(cores),
            digest.rate,
            "work::digest",
        ),
        Row::base("ed25519 verify, raw libsodium", raw_verify),
        Row::versus("check_record, work 0", plain, raw_verify.rate, "raw verify"),
        Row::versus(
            "check_answer, work 0",
            answer,
            raw_verify.rate / 2.0,
            "raw verify / 2 (verification bound)",
        ),
        Row::versus(
            "check_record, work 8",
            worked,
            raw_argon.rate,
            "raw Argon2id",
        ),
    ];
    for row in &rows {
        row.print();
    }
}

/// Each case's total time in seconds, from `ONIONS_BENCH_SECONDS`.
fn seconds() -> f64 {
    let text = std::env::var("ONIONS_BENCH_SECONDS").unwrap_or_default();
    if text.is_empty() {
        return DEFAULT_SECONDS;
    }
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or_else(|| fail("ONIONS_BENCH_SECONDS must be a positive number of seconds"))
}

/// Prints `message` and exits with a failure status.
fn fail(message: &str) -> ! {
    eprintln!("bench crypto: {message}");
    std::process::exit(2)
}

/// Sets up, runs every case interleaved with every other, and prints.
fn main() {
    onions::keys::init().unwrap_or_else(|e| fail(e));
    let seconds = seconds();
    let budget = Duration::from_secs_f64(seconds / f64::from(ROUNDS));
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let fixture = Fixture::new(cores);
    print_header(seconds, cores);
    let [raw_argon, digest, solve] = work_runners(cores);
    let [raw_verify, plain, answer, worked] = verify_runners(&fixture);
    let mut runners = [raw_argon, digest, solve, raw_verify, plain, answer, worked];
    print_rows(interleave(budget, &mut runners), cores);
}
