//! The mirror's resident memory under qemu-arm (armv7, cortex-a7) at a
//! given number of live records, against a native x86_64 mirror holding
//! the same records.
//!
//! A native release Quorum (`target/release/onions-server`) on 127.0.0.1
//! is filled with `ONIONS_ARMHF_RECORDS` (default 2^16) distinct work-0
//! records over a few connections, as benches/servers makes them. Then
//! a native mirror (127.0.0.3) and the armv7 mirror under qemu-arm
//! (127.0.0.2) each catch up with it in turn; once a mirror has applied
//! every record and answers against a head covering them (its status
//! `seq` and its audit's matched head reach the Quorum's seq), VmRSS and
//! VmHWM of its process (for the armv7 one: the qemu-arm process, which
//! includes qemu's own memory) are read from /proc/PID/status, and again
//! after 10,000 lookups against it, each answered `found` with its proof.
//! Messages go through the typed protocol module `onions::wire`.
//!
//! Environment (scripts/pkg/bench-armhf-rss sets them):
//! `ONIONS_ARMHF_SERVER` the armv7 onions-server (required);
//! `ONIONS_ARMHF_QEMU` the emulator command line, words split on spaces
//! (default `qemu-arm -cpu cortex-a7 -L /usr/arm-linux-gnueabihf`);
//! `ONIONS_ARMHF_RECORDS` the number of records;
//! `ONIONS_ARMHF_CATCHUP_SECS` the longest wait for the armv7 mirror's
//! catch-up (default 1200).
//!
//! Every process is a child stopped by its PID (SIGTERM, then SIGKILL) by
//! a guard, and killed by the kernel if this program dies (PDEATHSIG);
//! the temporary directory is removed at the end; every wait is bounded.

use onions::wire::{Code, Reply, Status};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::line::{lookup_request, LineConn};
use testkit::process::{self, Proc};
use testkit::records::Maker;
use testkit::servers::answering_head;
use testkit::{TempDir, XorShift};

const DEFAULT_RECORDS: usize = 1 << 16;
const PUT_CONNS: usize = 8;
const LOOKUPS: usize = 10_000;
const LOOKUP_CONNS: usize = 4;
const START_LIMIT: Duration = Duration::from_secs(60);
const REPLY_LIMIT: Duration = Duration::from_secs(120);
/// A catching-up mirror whose head stays put this long is called stalled.
const STALL_LIMIT: Duration = Duration::from_secs(180);
const NATIVE_CATCHUP: Duration = Duration::from_secs(300);
const BUSY_RETRIES: u32 = 1000;
const POLL: Duration = Duration::from_millis(100);
const SEED_TAG: &[u8; 24] = b"onions-bench-armhf-rss-k";

fn main() {
    onions::keys::init().unwrap_or_else(|e| fail(&format!("{e:?}")));
    process::install_panic_hook(|| {});
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let native = root.join("target/release/onions-server");
    let arm = PathBuf::from(
        std::env::var("ONIONS_ARMHF_SERVER")
            .unwrap_or_else(|_| fail("ONIONS_ARMHF_SERVER (the armv7 onions-server) is unset")),
    );
    let qemu: Vec<String> = std::env::var("ONIONS_ARMHF_QEMU")
        .ok()
        .filter(|q| !q.trim().is_empty())
        .unwrap_or_else(|| "qemu-arm -cpu cortex-a7 -L /usr/arm-linux-gnueabihf".into())
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let records = match std::env::var("ONIONS_ARMHF_RECORDS").unwrap_or_default() {
        t if t.is_empty() => DEFAULT_RECORDS,
        t => t
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1 << 20).contains(n))
            .unwrap_or_else(|| fail(&format!("ONIONS_ARMHF_RECORDS={t:?}: expected 1 to 2^20"))),
    };
    let catchup = Duration::from_secs(
        std::env::var("ONIONS_ARMHF_CATCHUP_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1200),
    );
    for bin in [&native, &arm] {
        if !bin.is_file() {
            fail(&format!("{} is missing", bin.display()));
        }
    }
    let scale = if records.is_power_of_two() {
        format!(" (2^{})", records.trailing_zeros())
    } else {
        String::new()
    };
    println!("armhf mirror RSS: {records} records{scale}");
    println!("native server: {}", native.display());
    println!(
        "armv7 server:  {} under `{}`",
        arm.display(),
        qemu.join(" ")
    );

    let tmp = TempDir::new("armhf-rss");
    let qstate = tmp.join("q");
    let key = print_key(&native, &qstate);
    let quorum = Server::start(
        "quorum",
        Command::new(&native),
        "127.0.0.1",
        &qstate,
        &["--role", "quorum", "--min-work", "0"],
    );

    let t = Instant::now();
    let lines = make_puts(records);
    let signed = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (accepted, refused, first_refusal) = fill(quorum.addr, &lines);
    drop(lines);
    let head = quorum.status().seq;
    println!(
        "quorum filled: {accepted} accepted, {refused} refused, seq {head} \
         (signing {signed:.1} s, puts {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    if let Some(r) = first_refusal {
        panic!("a put was refused: {r}");
    }
    assert_eq!(accepted as usize, records, "every record accepted");

    let upstream = quorum.addr.to_string();
    let mirror_args = [
        "--role",
        "mirror",
        "--upstream",
        upstream.as_str(),
        "--quorum-key",
        key.as_str(),
    ];
    let native_m = measure(
        "native x86_64 mirror",
        Command::new(&native),
        "127.0.0.3",
        &tmp.join("m-native"),
        &mirror_args,
        head,
        records,
        NATIVE_CATCHUP,
    );
    let mut qemu_cmd = Command::new(&qemu[0]);
    qemu_cmd.args(&qemu[1..]).arg(&arm);
    let arm_m = measure(
        "armv7 mirror under qemu-arm",
        qemu_cmd,
        "127.0.0.2",
        &tmp.join("m-armv7"),
        &mirror_args,
        head,
        records,
        catchup,
    );
    drop(quorum);

    println!();
    println!("results at {records} live records{scale} (KiB from /proc/PID/status):");
    println!(
        "  {:<30} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "", "catch-up s", "VmRSS", "VmHWM", "VmRSS+10k", "VmHWM+10k"
    );
    for m in [&native_m, &arm_m] {
        println!(
            "  {:<30} {:>10.1} {:>10} {:>10} {:>10} {:>10}",
            m.what, m.catchup_secs, m.caught.0, m.caught.1, m.looked.0, m.looked.1
        );
    }
    let ratio = |a: u64, b: u64| a as f64 / b as f64;
    println!(
        "  armv7/native ratio: VmRSS {:.2}, VmHWM {:.2}, after lookups VmRSS {:.2}, VmHWM {:.2}",
        ratio(arm_m.caught.0, native_m.caught.0),
        ratio(arm_m.caught.1, native_m.caught.1),
        ratio(arm_m.looked.0, native_m.looked.0),
        ratio(arm_m.looked.1, native_m.looked.1)
    );
    println!(
        "  per record after lookups: native {:.0} B, armv7 (qemu-arm process) {:.0} B",
        native_m.looked.0 as f64 * 1024.0 / records as f64,
        arm_m.looked.0 as f64 * 1024.0 / records as f64
    );
    println!(
        "  {LOOKUPS} lookups took {:.2} s native, {:.2} s under qemu-arm",
        native_m.lookup_secs, arm_m.lookup_secs
    );
    println!("  (the qemu-arm figures include qemu's own memory: its translated-code cache and the rest)");
}

fn fail(message: &str) -> ! {
    eprintln!("bench armhf_rss: {message}");
    std::process::exit(2)
}

// --------------------------------------------------------------- measuring

struct Measured {
    what: &'static str,
    catchup_secs: f64,
    /// (VmRSS, VmHWM) in KiB once caught up.
    caught: (u64, u64),
    /// The same after the lookups.
    looked: (u64, u64),
    lookup_secs: f64,
}

#[allow(clippy::too_many_arguments)]
fn measure(
    what: &'static str,
    command: Command,
    ip: &str,
    state: &Path,
    args: &[&str],
    head: u64,
    records: usize,
    limit: Duration,
) -> Measured {
    let t = Instant::now();
    let mut mirror = Server::start(what, command, ip, state, args);
    mirror.wait_caught_up(head, limit);
    let catchup_secs = t.elapsed().as_secs_f64();
    // Let a just-caught-up mirror settle (its last batch written out).
    std::thread::sleep(Duration::from_secs(2));
    let caught = memory(
        &mirror,
        what,
        &format!("caught up to seq {head} in {catchup_secs:.1} s"),
    );
    let t = Instant::now();
    lookups(mirror.addr, records);
    let lookup_secs = t.elapsed().as_secs_f64();
    let looked = memory(
        &mirror,
        what,
        &format!("after {LOOKUPS} lookups ({lookup_secs:.2} s)"),
    );
    drop(mirror);
    Measured {
        what,
        catchup_secs,
        caught,
        looked,
        lookup_secs,
    }
}

/// The (VmRSS, VmHWM) of `mirror` in KiB, printed with the mirror's
/// label `what` and `when` they were read.
fn memory(mirror: &Server, what: &str, when: &str) -> (u64, u64) {
    let kib = (
        mirror.proc.status_kib("VmRSS"),
        mirror.proc.status_kib("VmHWM"),
    );
    println!(
        "{what} (pid {}): {when}; VmRSS {} KiB, VmHWM {} KiB",
        mirror.proc.pid(),
        kib.0,
        kib.1
    );
    kib
}

/// [`LOOKUPS`] lookups of random names over [`LOOKUP_CONNS`] connections,
/// each answered `found` for the name asked.
fn lookups(addr: SocketAddr, records: usize) {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..LOOKUP_CONNS)
            .map(|t| {
                scope.spawn(move || {
                    let mut conn = LineConn::connect(addr, REPLY_LIMIT);
                    let mut rng = XorShift::new(t as u64 + 1);
                    for n in 0..LOOKUPS / LOOKUP_CONNS {
                        let name = Maker::name(rng.below(records));
                        match conn.request(&lookup_request(n as u64, &name)) {
                            Reply::Found { record, .. } if record.name.as_str() == name => {}
                            other => panic!("lookup of {name} answered {other}"),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a lookup thread");
        }
    });
}

// ----------------------------------------------------------------- records

/// Put lines of records 0..count, made by testkit's [`Maker`] as
/// benches/servers makes them (one subdomain, a 40-character contact, a
/// week's lifetime, work 0), on every core.
fn make_puts(count: usize) -> Vec<Vec<u8>> {
    let maker = Maker::new(SEED_TAG);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = count.div_ceil(cores);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..cores)
            .map(|c| {
                let maker = &maker;
                scope.spawn(move || maker.put_lines((c * per)..((c + 1) * per).min(count)))
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a signing thread"))
            .collect()
    })
}

/// Puts every line over [`PUT_CONNS`] connections, one in flight on each;
/// (accepted, refused, the first refusal).
fn fill(addr: SocketAddr, lines: &[Vec<u8>]) -> (u64, u64, Option<String>) {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..PUT_CONNS)
            .map(|t| {
                scope.spawn(move || {
                    let mut conn = LineConn::connect(addr, REPLY_LIMIT);
                    let (mut ok, mut bad, mut first) = (0u64, 0u64, None);
                    'lines: for line in lines.iter().skip(t).step_by(PUT_CONNS) {
                        for _ in 0..BUSY_RETRIES {
                            conn.send(line);
                            match conn.read_reply().unwrap_or_else(|e| panic!("put: {e}")) {
                                Reply::Accepted { .. } => {
                                    ok += 1;
                                    continue 'lines;
                                }
                                Reply::Error(e) if e.code == Code::Busy => {
                                    std::thread::sleep(Duration::from_millis(1));
                                }
                                other => {
                                    bad += 1;
                                    first.get_or_insert_with(|| other.to_string());
                                    continue 'lines;
                                }
                            }
                        }
                        panic!("a put was answered busy {BUSY_RETRIES} times");
                    }
                    (ok, bad, first)
                })
            })
            .collect();
        let mut total = (0, 0, None);
        for t in threads {
            let (ok, bad, first) = t.join().expect("a put thread");
            total.0 += ok;
            total.1 += bad;
            total.2 = total.2.or(first);
        }
        total
    })
}

struct Server {
    proc: Proc,
    addr: SocketAddr,
}

impl Server {
    fn start(label: &str, mut command: Command, ip: &str, state: &Path, args: &[&str]) -> Server {
        command.args(args);
        let (proc, addr) = Proc::start_server(command, label, ip, state, START_LIMIT);
        Server { proc, addr }
    }

    fn status(&self) -> Status {
        LineConn::connect(self.addr, REPLY_LIMIT)
            .try_status()
            .unwrap_or_else(|e| panic!("{}: {e}", self.proc.what))
    }

    /// Waits until the server has applied records up to `seq` and answers
    /// against a head covering it (a mirror's audit matched it): at most
    /// `limit`, and at most [`STALL_LIMIT`] without progress.
    fn wait_caught_up(&mut self, seq: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut last = ((0, 0), Instant::now());
        let mut said = Instant::now();
        loop {
            self.proc.check_running();
            let status = self.status();
            let answering = answering_head(&status).map_or(0, |h| h.seq);
            let now = (status.seq, answering);
            if now.0 >= seq && now.1 >= seq {
                return;
            }
            if now != last.0 {
                last = (now, Instant::now());
            }
            if said.elapsed() > Duration::from_secs(60) {
                println!(
                    "  {}: seq {} of {seq}, answering head seq {}",
                    self.proc.what, now.0, now.1
                );
                said = Instant::now();
            }
            assert!(
                last.1.elapsed() < STALL_LIMIT,
                "{} stalled at seq {} of {seq} (answering head seq {}): {status}\n{}",
                self.proc.what,
                now.0,
                now.1,
                self.proc.log_tail()
            );
            assert!(
                Instant::now() < deadline,
                "{} at seq {} of {seq} (answering head seq {}) after {limit:?}: {status}\n{}",
                self.proc.what,
                now.0,
                now.1,
                self.proc.log_tail()
            );
            std::thread::sleep(POLL * 5);
        }
    }
}

/// The Quorum key of `state`, from the native `--print-key`.
fn print_key(bin: &Path, state: &Path) -> String {
    std::fs::create_dir_all(state).unwrap_or_else(|e| panic!("{}: {e}", state.display()));
    testkit::servers::print_key_with(Command::new(bin), state)
}
