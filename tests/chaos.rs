//! Chaos on loopback: a Quorum and three mirrors (two under it, one under
//! a mirror), each on its own tmpfs, under a steady load of puts and
//! verified lookups, while one server at a time is killed with SIGKILL,
//! stopped with SIGSTOP for a few seconds, or has its disk filled. At the
//! end every server runs again and the invariants are checked and printed:
//!
//! - every record answered `accepted` is present, at its seq, everywhere;
//! - the mirrors converged to the Quorum's seq and head;
//! - no seq names two records;
//! - no lookup answer failed verification, and no name acknowledged under
//!   a head was denied under that head.
//!
//! `chaos_briefly` runs with the other tests (15 s); `scripts/chaos`
//! runs `chaos` (ignored otherwise) for `ONIONS_CHAOS_SECS` (default 600).
//! Mounting tmpfs needs root, as for tests/full_disk.rs.

use onions::lookup::{check_reply, LookupError, Policy, Resolution};
use onions::name::LookupName;
use onions::record::Record;
use onions::verify::Verifier;
use onions::wire::Reply;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::servers::{owner, print_key, record, Client, Server};
use testkit::TempDir;

/// How long the servers may take to converge once the chaos stops.
const CONVERGE: Duration = Duration::from_secs(180);

/// One acknowledged record.
#[derive(Clone)]
struct Acked {
    record: Record,
    seq: u64,
}

/// What the run saw.
#[derive(Default)]
struct Counts {
    kills: AtomicU64,
    stops: AtomicU64,
    full_disks: AtomicU64,
    puts_refused: AtomicU64,
    lookups_ok: AtomicU64,
    lookups_behind: AtomicU64,
    lies: Mutex<Vec<String>>,
}

/// A tmpfs mounted for one server's state, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256m", "tmpfs"])
            .arg(path)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "cannot mount a tmpfs at {}",
            path.display()
        );
        Tmpfs(path.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` to the last byte.
fn fill(dir: &Path) {
    let Ok(mut file) = std::fs::File::create(dir.join("filler")) else {
        return;
    };
    let mut chunk = 1 << 20;
    while chunk > 0 {
        match file.write(&vec![0u8; chunk]) {
            Ok(0) | Err(_) => chunk /= 2,
            Ok(_) => {}
        }
    }
}

/// A small deterministic random source.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn signal(server: &Server, sig: libc::c_int) {
    // SAFETY: a signal to our own child process.
    unsafe { libc::kill(server.pid() as libc::pid_t, sig) };
}

#[test]
fn chaos_briefly() {
    run(Duration::from_secs(15));
}

#[test]
#[ignore = "long; run by scripts/chaos"]
fn chaos() {
    let secs = std::env::var("ONIONS_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    run(Duration::from_secs(secs));
}

fn run(length: Duration) {
    assert!(
        is_root(),
        "the chaos run mounts tmpfs file systems and needs root"
    );
    let tmp = TempDir::new("chaos");
    let states: Vec<PathBuf> = ["quorum", "m1", "m2", "m3"]
        .iter()
        .map(|n| tmp.join(n))
        .collect();
    let _mounts: Vec<Tmpfs> = states.iter().map(|s| Tmpfs::mount(s)).collect();
    let quick = ["--upstream-silence", "3", "--heartbeat", "1"];
    let mut flags = vec!["--head-interval", "1"];
    flags.extend(quick);
    let quorum = Server::quorum("127.0.0.1", &states[0], &flags);
    let key = print_key(&states[0]);
    let m1 = Server::mirror("127.0.0.2", &states[1], quorum.addr, &key, &quick);
    let m2 = Server::mirror("127.0.0.3", &states[2], m1.addr, &key, &quick);
    let m3 = Server::mirror("127.0.0.4", &states[3], quorum.addr, &key, &quick);
    let servers = Arc::new(Mutex::new(vec![quorum, m1, m2, m3]));
    let addrs: Vec<_> = servers.lock().unwrap().iter().map(|s| s.addr).collect();
    let policy = Policy {
        verifier: Verifier {
            min_work: 0,
            trusted: onions::cli::quorum_keys(std::slice::from_ref(&key)).unwrap(),
            max_skew: None,
        },
        max_head_age: 600,
        witnesses: Default::default(),
    };
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    std::thread::scope(|scope| {
        for writer in 0..2u64 {
            let (acked, counts, stop) = (acked.clone(), counts.clone(), stop.clone());
            let quorum = addrs[0];
            scope.spawn(move || put_load(writer, quorum, &acked, &counts, &stop));
        }
        for reader in 0..2u64 {
            let (acked, counts, stop) = (acked.clone(), counts.clone(), stop.clone());
            let (addrs, policy) = (addrs.clone(), policy.clone());
            scope.spawn(move || lookup_load(reader, &addrs, &policy, &acked, &counts, &stop));
        }
        let seed = std::env::var("ONIONS_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| onions::clock::now() | 1);
        println!("chaos: seed {seed} (ONIONS_CHAOS_SEED repeats this run's actions)");
        let mut rng = Rng(seed);
        while started.elapsed() < length {
            chaos_step(&mut rng, &servers, &states, &counts);
        }
        stop.store(true, Ordering::Relaxed);
    });
    let servers = servers.lock().unwrap();
    for state in &states {
        let _ = std::fs::remove_file(state.join("filler"));
    }
    check(&servers, &acked.lock().unwrap(), &counts, &policy, started);
}

/// One chaos action on one server, then a pause.
fn chaos_step(rng: &mut Rng, servers: &Mutex<Vec<Server>>, states: &[PathBuf], counts: &Counts) {
    std::thread::sleep(Duration::from_millis(500 + rng.below(2500)));
    let target = rng.below(4) as usize;
    match rng.below(3) {
        0 => {
            let mut all = servers.lock().unwrap();
            all[target].kill9();
            std::thread::sleep(Duration::from_millis(rng.below(1000)));
            all[target].restart();
            counts.kills.fetch_add(1, Ordering::Relaxed);
        }
        1 => {
            let all = servers.lock().unwrap();
            signal(&all[target], libc::SIGSTOP);
            std::thread::sleep(Duration::from_millis(1000 + rng.below(4000)));
            signal(&all[target], libc::SIGCONT);
            counts.stops.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            let _all = servers.lock().unwrap();
            fill(&states[target]);
            std::thread::sleep(Duration::from_millis(2000 + rng.below(4000)));
            let _ = std::fs::remove_file(states[target].join("filler"));
            counts.full_disks.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Puts fresh names to the Quorum, each until it is acknowledged.
fn put_load(
    writer: u64,
    quorum: std::net::SocketAddr,
    acked: &Mutex<Vec<Acked>>,
    counts: &Counts,
    stop: &AtomicBool,
) {
    let mut n = 0u64;
    let mut client = None;
    let mut pending: Option<Record> = None;
    while !stop.load(Ordering::Relaxed) {
        let rec = pending.take().unwrap_or_else(|| {
            n += 1;
            record(
                &owner((n % 200) as u8 + 1),
                &format!("w{writer}n{n}.tor"),
                1,
                0,
                &[],
            )
        });
        if client.is_none() {
            client = Client::try_connect(quorum);
        }
        let reply = client.as_mut().and_then(|c| c.try_put(&rec));
        match reply {
            Some(Reply::Accepted { attestation, .. }) => {
                assert_eq!(attestation.record, rec.id());
                acked.lock().unwrap().push(Acked {
                    record: rec,
                    seq: attestation.seq,
                });
            }
            Some(_) => {
                counts.puts_refused.fetch_add(1, Ordering::Relaxed);
                pending = Some(rec);
                std::thread::sleep(Duration::from_millis(50));
            }
            None => {
                client = None;
                pending = Some(rec);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Looks acknowledged names up at random servers, checking every answer.
fn lookup_load(
    reader: u64,
    addrs: &[std::net::SocketAddr],
    policy: &Policy,
    acked: &Mutex<Vec<Acked>>,
    counts: &Counts,
    stop: &AtomicBool,
) {
    let mut rng = Rng(0x1234_5678 + reader);
    while !stop.load(Ordering::Relaxed) {
        let pick = {
            let all = acked.lock().unwrap();
            (!all.is_empty()).then(|| all[rng.below(all.len() as u64) as usize].clone())
        };
        let Some(want) = pick else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let addr = addrs[rng.below(addrs.len() as u64) as usize];
        let reply = Client::try_connect(addr).and_then(|mut c| {
            c.try_request(&onions::wire::Request::Lookup {
                id: 1.into(),
                name: LookupName::from_user(want.record.name.as_str()).unwrap(),
            })
        });
        let Some(reply) = reply else {
            counts.lookups_behind.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let name = LookupName::from_user(want.record.name.as_str()).unwrap();
        match check_reply(reply, &name, policy, onions::clock::now()) {
            Ok(Resolution::Found(a)) if a.record.id() == want.record.id() => {
                counts.lookups_ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Resolution::Absent(head)) if head.seq < want.seq => {
                counts.lookups_behind.fetch_add(1, Ordering::Relaxed);
            }
            Ok(other) => counts.lies.lock().unwrap().push(format!(
                "{addr}: {} (seq {}) answered {other:?}",
                want.record.name, want.seq
            )),
            Err(e) if e.server_lied() => counts
                .lies
                .lock()
                .unwrap()
                .push(format!("{addr}: {}: {e}", want.record.name)),
            Err(LookupError::Refused(_) | LookupError::StaleHead { .. } | _) => {
                counts.lookups_behind.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Waits for convergence, checks the invariants and prints them.
fn check(servers: &[Server], acked: &[Acked], counts: &Counts, policy: &Policy, started: Instant) {
    let quorum_seq = servers[0].status().seq;
    let deadline = Instant::now() + CONVERGE;
    let head = loop {
        let head = servers[0].current_head().expect("the Quorum has a head");
        let converged = servers[1..].iter().all(|m| {
            let status = m.status();
            status.seq == quorum_seq
                && status
                    .audit
                    .and_then(|a| a.matched)
                    .is_some_and(|h| h.seq == head.seq)
        });
        if converged && head.seq >= quorum_seq {
            break head;
        }
        assert!(
            Instant::now() < deadline,
            "the mirrors did not converge to seq {quorum_seq}: {:?}",
            servers.iter().map(|s| s.status().seq).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut by_seq: HashMap<u64, onions::record::RecordId> = HashMap::new();
    for a in acked {
        if let Some(other) = by_seq.insert(a.seq, a.record.id()) {
            assert_eq!(other, a.record.id(), "seq {} names two records", a.seq);
        }
    }
    let mut lost = Vec::new();
    for server in servers {
        let mut client = server.client();
        for a in acked {
            let name = LookupName::from_user(a.record.name.as_str()).unwrap();
            let reply = client.lookup(a.record.name.as_str());
            match check_reply(reply, &name, policy, onions::clock::now()) {
                Ok(Resolution::Found(f))
                    if f.record.id() == a.record.id() && f.attestation.seq == a.seq => {}
                other => lost.push(format!(
                    "{}: {} seq {}: {other:?}",
                    server.addr, a.record.name, a.seq
                )),
            }
        }
    }
    let lies = counts.lies.lock().unwrap();
    println!(
        "chaos: {:.0} s; records acknowledged {}; kills {}; stops {}; full disks {}; puts refused {}; lookups verified {}, behind or unavailable {}, failed verification {}; converged at seq {} head time {}; lost {}",
        started.elapsed().as_secs_f64(),
        acked.len(),
        counts.kills.load(Ordering::Relaxed),
        counts.stops.load(Ordering::Relaxed),
        counts.full_disks.load(Ordering::Relaxed),
        counts.puts_refused.load(Ordering::Relaxed),
        counts.lookups_ok.load(Ordering::Relaxed),
        counts.lookups_behind.load(Ordering::Relaxed),
        lies.len(),
        head.seq,
        head.time,
        lost.len()
    );
    assert!(lies.is_empty(), "answers failed verification: {lies:#?}");
    assert!(lost.is_empty(), "acknowledged records lost: {lost:#?}");
    assert!(!acked.is_empty(), "records were acknowledged");
}
