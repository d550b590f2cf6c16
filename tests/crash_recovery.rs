//! What survives a crash, and how the servers find each other again.
//!
//! design.md promises that a record is on disk (fsync) before the Quorum
//! answers `accepted` and before a mirror counts it as applied, that a torn
//! or corrupt log tail is cut off and logged rather than kept, and that a
//! mirror keeps serving what it has while it reconnects to its upstream
//! with growing backoff. These tests hold the real programs to that:
//!
//! - the Quorum is killed with SIGKILL while four clients stream claims at
//!   it; after a restart every answered claim is still there with the very
//!   seq it was given, the seqs have no gap, the next claim continues the
//!   sequence, and a mirror chain (127.0.0.2, and a mirror of it on
//!   127.0.0.3) reconnects and converges on the same head and live set;
//! - a mirror is killed with SIGKILL while it replicates; after a restart it
//!   still serves everything it had reported applied, and it catches up
//!   with the claims made while it was down;
//! - a mirror that comes back after a long absence (here: a new one) copies
//!   a backlog larger than one catch-up batch completely;
//! - a log whose last entry was cut short, or had a byte flipped, is cut
//!   back to the last sound entry with a warning; the server serves the
//!   entries before it, and the lost seq is handed out again;
//! - a mirror whose upstream is down keeps retrying with growing waits,
//!   answers lookups from its own log meanwhile, and replicates once the
//!   upstream is back.
//!
//! Real `onions-server` processes on loopback, real sockets, real files;
//! every wait is bounded and every process is stopped by its PID.

mod common;

use common::servers::{
    attested_seq, log_lines_with, print_key, record, wait_until, Client, Server,
};
use common::TempDir;
use onions::keys::SigningKey;
use onions::record::Record;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const QUORUM_IP: &str = "127.0.0.1";
const MIRROR_IP: &str = "127.0.0.2";
const SUB_MIRROR_IP: &str = "127.0.0.3";

/// Flags that make servers notice a lost peer within seconds.
const QUICK: &[&str] = &["--upstream-silence", "3", "--heartbeat", "1"];

/// How long replication may take to converge after a restart.
const CONVERGE_LIMIT: Duration = Duration::from_secs(20);

/// A key of its own for every record, from a tag and a number.
fn owner_key(tag: u8, n: u32) -> SigningKey {
    onions::keys::init().unwrap();
    let mut seed = [0x5a; 32];
    seed[0] = tag;
    seed[1..5].copy_from_slice(&n.to_le_bytes());
    SigningKey::from_seed(&seed)
}

/// A work-0 record for `name`, by a key no other record uses.
fn claim(tag: u8, n: u32, name: &str) -> Record {
    record(&owner_key(tag, n), name, 1, 0, &[])
}

/// The state directory `name` inside `tmp`, created.
fn state_dir(tmp: &TempDir, name: &str) -> std::path::PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir(&dir).unwrap();
    dir
}

/// A record the Quorum answered `accepted`, with the seq it attested.
#[derive(Clone)]
struct Accepted {
    record: Record,
    seq: u64,
}

/// What one streaming client saw.
struct StreamEnd {
    /// The connection died before every record was answered.
    cut: bool,
}

/// Starts a thread that puts `records` on one connection, as fast as the
/// Quorum answers, adding each acceptance to `accepted`. It stops early
/// when the connection dies; any answer other than `accepted` fails the
/// test (through the join).
fn stream_puts(
    addr: std::net::SocketAddr,
    key: String,
    records: Vec<Record>,
    accepted: Arc<Mutex<Vec<Accepted>>>,
) -> JoinHandle<StreamEnd> {
    std::thread::spawn(move || {
        let Some(mut client) = Client::try_connect(addr) else {
            return StreamEnd { cut: true };
        };
        for record in records {
            let Some(reply) = client.try_put(&record) else {
                return StreamEnd { cut: true };
            };
            assert_eq!(reply["type"], "accepted", "put {}: {reply}", record.name);
            let seq = attested_seq(&reply, &record, &key);
            accepted.lock().unwrap().push(Accepted { record, seq });
        }
        StreamEnd { cut: false }
    })
}

/// A `status` field as a number.
fn stat(server: &Server, field: &str) -> u64 {
    let status = server.status();
    status[field]
        .as_u64()
        .unwrap_or_else(|| panic!("status without {field}: {status}"))
}

/// Looks `record.name` up over `client` and checks the answer is that very
/// record with an attestation of `seq` by `key`; `at` names the server in
/// failure messages.
fn assert_found(client: &mut Client, record: &Record, seq: u64, key: &str, at: &str) {
    let reply = client.lookup(record.name.as_str());
    assert_eq!(
        reply["type"], "found",
        "{at}: lookup {}: {reply}",
        record.name
    );
    assert_eq!(
        reply["record"],
        record.to_value(),
        "{at}: {} changed",
        record.name
    );
    assert_eq!(
        attested_seq(&reply, record, key),
        seq,
        "{at}: {} has another seq",
        record.name
    );
}

/// Waits until `mirror` reports the same head and live count as `quorum`.
fn wait_converged(mirror: &Server, quorum: &Server, what: &str) {
    let (head, records) = (stat(quorum, "head"), stat(quorum, "records"));
    let deadline = Instant::now() + CONVERGE_LIMIT;
    loop {
        let status = mirror.status();
        if status["head"].as_u64() == Some(head) && status["records"].as_u64() == Some(records) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: Quorum head {head}, records {records}; \
             mirror status {status}; mirror log:\n{}\nQuorum log (no puts or lookups):\n{}",
            mirror.log(),
            quorum
                .log()
                .lines()
                .filter(|l| !l.contains(": put ") && !l.contains(": lookup "))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `mirror` says its upstream session is up.
fn wait_upstream_up(mirror: &Server) {
    wait_until(
        &format!("mirror {} to connect upstream", mirror.addr),
        CONVERGE_LIMIT,
        || mirror.status()["upstream"]["connected"] == json!(true),
    );
}

#[test]
fn quorum_killed_mid_stream_loses_no_accepted_record_and_mirrors_reconnect() {
    let tmp = TempDir::new("crash-quorum");
    let qstate = state_dir(&tmp, "quorum");
    let key = print_key(&qstate);
    let mut quorum = Server::quorum(QUORUM_IP, &qstate, &["--heartbeat", "1"]);
    let mirror = Server::mirror(MIRROR_IP, &state_dir(&tmp, "m1"), quorum.addr, &key, QUICK);
    let sub_mirror = Server::mirror(
        SUB_MIRROR_IP,
        &state_dir(&tmp, "m2"),
        mirror.addr,
        &key,
        QUICK,
    );
    wait_upstream_up(&mirror);
    wait_upstream_up(&sub_mirror);

    // Four clients, each with its own names and keys, made in advance.
    const CLIENTS: u8 = 4;
    const PER_CLIENT: u32 = 500;
    let batches: Vec<Vec<Record>> = (0..CLIENTS)
        .map(|c| {
            (0..PER_CLIENT)
                .map(|i| claim(c, i, &format!("crash-{c}-{i}.tor")))
                .collect()
        })
        .collect();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let streams: Vec<_> = batches
        .into_iter()
        .map(|records| stream_puts(quorum.addr, key.clone(), records, accepted.clone()))
        .collect();

    // Kill -9 as soon as some claims have been answered.
    let deadline = Instant::now() + Duration::from_secs(30);
    while accepted.lock().unwrap().len() < 40 {
        assert!(
            Instant::now() < deadline,
            "the Quorum accepted too little in 30 s:\n{}",
            quorum.log()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    quorum.kill9();
    let cut = streams
        .into_iter()
        .map(|s| s.join().expect("a streaming client failed").cut)
        .filter(|&cut| cut)
        .count();
    let accepted = accepted.lock().unwrap().clone();
    assert!(
        cut > 0,
        "the kill came after every client had finished; nothing was cut"
    );
    let max_seq = accepted.iter().map(|a| a.seq).max().unwrap();
    let mut seqs: Vec<u64> = accepted.iter().map(|a| a.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), accepted.len(), "two acceptances shared a seq");

    quorum.restart();
    let head = stat(&quorum, "head");
    eprintln!(
        "killed after {} acceptances (highest seq {max_seq}); head after restart {head}",
        accepted.len()
    );
    assert!(
        head >= max_seq,
        "head {head} after restart is below the accepted seq {max_seq}"
    );
    // Every name is distinct and unexpired, so every seq up to the head is
    // a live record: no gap, no reuse.
    assert_eq!(
        stat(&quorum, "records"),
        head,
        "live records after restart do not match the head"
    );
    let mut client = quorum.client();
    for a in &accepted {
        assert_found(&mut client, &a.record, a.seq, &key, "restarted Quorum");
    }

    // The sequence continues after the crash.
    let after = claim(9, 0, "after-crash.tor");
    let reply = client.put(&after);
    assert_eq!(reply["type"], "accepted", "{reply}");
    assert_eq!(attested_seq(&reply, &after, &key), head + 1);

    // The mirror chain reconnects and converges on the restarted Quorum.
    wait_converged(&mirror, &quorum, "the mirror to converge");
    wait_converged(&sub_mirror, &quorum, "the mirror's mirror to converge");
    assert!(
        log_lines_with(&mirror, &["upstream", "subscribed from seq"]).len() >= 2,
        "the mirror never resubscribed:\n{}",
        mirror.log()
    );
    let mut far = sub_mirror.client();
    assert_found(&mut far, &after, head + 1, &key, "mirror of mirror");
    for a in accepted.iter().step_by(7) {
        assert_found(&mut far, &a.record, a.seq, &key, "mirror of mirror");
    }
}

#[test]
fn mirror_killed_while_replicating_keeps_what_it_applied_and_catches_up() {
    let tmp = TempDir::new("crash-mirror");
    let qstate = state_dir(&tmp, "quorum");
    let key = print_key(&qstate);
    let quorum = Server::quorum(QUORUM_IP, &qstate, &["--heartbeat", "1"]);
    let mut mirror = Server::mirror(MIRROR_IP, &state_dir(&tmp, "m1"), quorum.addr, &key, QUICK);
    wait_upstream_up(&mirror);

    let accepted = Arc::new(Mutex::new(Vec::new()));
    let streams: Vec<_> = (0..2u8)
        .map(|c| {
            let records = (0..300)
                .map(|i| claim(20 + c, i, &format!("mk-{c}-{i}.tor")))
                .collect();
            stream_puts(quorum.addr, key.clone(), records, accepted.clone())
        })
        .collect();

    // Kill -9 the mirror once it has applied some of the stream.
    wait_until("the mirror to apply 30 records", CONVERGE_LIMIT, || {
        stat(&mirror, "head") >= 30
    });
    let applied = stat(&mirror, "head");
    mirror.kill9();

    // More claims while it is down.
    let mut client = quorum.client();
    let mut while_down = Vec::new();
    for i in 0..20 {
        let record = claim(29, i, &format!("while-down-{i}.tor"));
        let reply = client.put(&record);
        assert_eq!(reply["type"], "accepted", "{reply}");
        let seq = attested_seq(&reply, &record, &key);
        while_down.push(Accepted { record, seq });
    }
    for stream in streams {
        assert!(
            !stream.join().expect("a streaming client failed").cut,
            "the Quorum dropped a client"
        );
    }
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 600);

    // Right after the restart: everything it had reported applied is there.
    mirror.restart();
    let head = stat(&mirror, "head");
    assert!(head >= applied, "mirror head {head} fell below {applied}");
    let mut at_mirror = mirror.client();
    for a in accepted.iter().filter(|a| a.seq <= applied) {
        assert_found(&mut at_mirror, &a.record, a.seq, &key, "restarted mirror");
    }

    // Then it catches up with the Quorum, including what came meanwhile.
    wait_converged(&mirror, &quorum, "the restarted mirror to catch up");
    assert_eq!(stat(&mirror, "records"), stat(&mirror, "head"));
    for a in while_down.iter().chain(accepted.iter().step_by(5)) {
        assert_found(&mut at_mirror, &a.record, a.seq, &key, "caught-up mirror");
    }
}

#[test]
fn mirror_returning_after_a_long_absence_catches_up_past_one_feed_batch() {
    // A catch-up is fed in batches of about 256 KiB; 1,000 records of about
    // 550 bytes need at least three of them.
    let tmp = TempDir::new("late-mirror");
    let qstate = state_dir(&tmp, "quorum");
    let key = print_key(&qstate);
    let quorum = Server::quorum(QUORUM_IP, &qstate, &["--heartbeat", "1"]);
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let streams: Vec<_> = (0..4u8)
        .map(|c| {
            let records = (0..250)
                .map(|i| claim(60 + c, i, &format!("late-{c}-{i}.tor")))
                .collect();
            stream_puts(quorum.addr, key.clone(), records, accepted.clone())
        })
        .collect();
    for stream in streams {
        assert!(!stream.join().expect("a streaming client failed").cut);
    }
    assert_eq!(stat(&quorum, "head"), 1000);

    let mirror = Server::mirror(MIRROR_IP, &state_dir(&tmp, "m1"), quorum.addr, &key, QUICK);
    wait_converged(&mirror, &quorum, "a new mirror to copy 1,000 records");
    let accepted = accepted.lock().unwrap().clone();
    let mut at_mirror = mirror.client();
    for a in accepted.iter().step_by(9) {
        assert_found(&mut at_mirror, &a.record, a.seq, &key, "late mirror");
    }
}

/// One frame of `records.log` (layout in src/store/format.rs): kind byte,
/// body length (u32 little-endian), body, 16-byte checksum.
struct Frame {
    offset: u64,
    kind: u8,
    body_len: u64,
}

/// Walks the frames of a log that is known to be sound.
fn frames(log: &Path) -> Vec<Frame> {
    let bytes = std::fs::read(log).unwrap();
    assert_eq!(
        &bytes[..8],
        b"onionlog",
        "{} has no log header",
        log.display()
    );
    let mut at = 12usize;
    let mut frames = Vec::new();
    while at < bytes.len() {
        let body_len = u32::from_le_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        frames.push(Frame {
            offset: at as u64,
            kind: bytes[at],
            body_len: body_len as u64,
        });
        at += 5 + body_len + 16;
    }
    assert_eq!(at, bytes.len(), "{} ends inside a frame", log.display());
    frames
}

/// Puts `n` records at a fresh Quorum, stops it cleanly, damages the last
/// log entry with `damage`, restarts it, and checks that exactly that entry
/// is cut (with a warning), the ones before it are served, and its seq is
/// handed out again.
fn damaged_tail_is_cut(label: &str, damage: impl FnOnce(&Path, &Frame)) {
    const N: u32 = 6;
    let tmp = TempDir::new(label);
    let state = state_dir(&tmp, "quorum");
    let key = print_key(&state);
    let mut quorum = Server::quorum(QUORUM_IP, &state, &[]);
    let records: Vec<Record> = (0..N)
        .map(|i| claim(40, i, &format!("{label}-{i}.tor")))
        .collect();
    let mut client = quorum.client();
    for (i, record) in records.iter().enumerate() {
        let reply = client.put(record);
        assert_eq!(attested_seq(&reply, record, &key), i as u64 + 1, "{reply}");
    }
    drop(client);
    assert!(
        quorum.terminate().success(),
        "SIGTERM exit:\n{}",
        quorum.log()
    );

    let log = state.join("records.log");
    let all = frames(&log);
    let last = all.last().expect("the log has entries");
    assert_eq!(last.kind, 1, "the last entry should be the last record");
    assert_eq!(
        all.iter().filter(|f| f.kind == 1).count(),
        N as usize,
        "one record entry per put"
    );
    let cut_at = last.offset;
    damage(&log, last);

    quorum.restart();
    let warnings = log_lines_with(&quorum, &["WARN", "torn or corrupt tail"]);
    assert_eq!(
        warnings.len(),
        1,
        "expected one warning about the cut tail:\n{}",
        quorum.log()
    );
    assert!(
        warnings[0].contains("records.log"),
        "the warning names the file: {}",
        warnings[0]
    );
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        cut_at,
        "the log is cut right before the damaged entry"
    );
    assert_eq!(stat(&quorum, "head"), u64::from(N) - 1);
    assert_eq!(stat(&quorum, "records"), u64::from(N) - 1);
    let mut client = quorum.client();
    let (kept, lost) = records.split_at(N as usize - 1);
    for (i, record) in kept.iter().enumerate() {
        assert_found(&mut client, record, i as u64 + 1, &key, "after the cut");
    }
    let reply = client.lookup(lost[0].name.as_str());
    assert_eq!(
        reply["code"], "not_found",
        "the cut record is gone: {reply}"
    );

    // The lost seq is handed out again, to the same claim made anew.
    let reply = client.put(&lost[0]);
    assert_eq!(reply["type"], "accepted", "{reply}");
    assert_eq!(attested_seq(&reply, &lost[0], &key), u64::from(N));
    drop(client);

    // The cut was durable: a clean restart finds nothing more to cut.
    assert!(quorum.terminate().success());
    quorum.restart();
    assert_eq!(
        log_lines_with(&quorum, &["WARN", "torn or corrupt tail"]).len(),
        1,
        "a clean log was cut again:\n{}",
        quorum.log()
    );
    assert_eq!(stat(&quorum, "head"), u64::from(N));
    assert_found(
        &mut quorum.client(),
        &lost[0],
        u64::from(N),
        &key,
        "second restart",
    );
}

#[test]
fn torn_last_entry_is_cut_and_its_seq_reused() {
    damaged_tail_is_cut("torn", |log, _| {
        let len = std::fs::metadata(log).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(log).unwrap();
        file.set_len(len - 10).unwrap();
    });
}

#[test]
fn flipped_byte_in_last_entry_is_cut_and_its_seq_reused() {
    damaged_tail_is_cut("flipped", |log, last| {
        let mut bytes = std::fs::read(log).unwrap();
        let at = (last.offset + 5 + last.body_len / 2) as usize;
        bytes[at] ^= 0x01;
        std::fs::write(log, bytes).unwrap();
    });
}

/// The waits a mirror announced with "reconnecting in X s", in order.
fn reconnect_waits(mirror: &Server) -> Vec<f64> {
    log_lines_with(mirror, &["upstream", "reconnecting in"])
        .iter()
        .filter_map(|line| {
            let rest = line.split("reconnecting in ").nth(1)?;
            rest.split(' ').next()?.parse().ok()
        })
        .collect()
}

#[test]
fn mirror_with_upstream_down_retries_serves_its_log_and_replicates_later() {
    let tmp = TempDir::new("upstream-down");
    let qstate = state_dir(&tmp, "quorum");
    let key = print_key(&qstate);
    let mut quorum = Server::quorum(QUORUM_IP, &qstate, &[]);
    let mut mirror = Server::mirror(MIRROR_IP, &state_dir(&tmp, "m1"), quorum.addr, &key, QUICK);
    let mut client = quorum.client();
    let mut known = Vec::new();
    for i in 0..3 {
        let record = claim(50, i, &format!("before-{i}.tor"));
        let reply = client.put(&record);
        let seq = attested_seq(&reply, &record, &key);
        known.push(Accepted { record, seq });
    }
    drop(client);
    mirror.wait_head(3, CONVERGE_LIMIT);

    // Both stop; the mirror comes back first, to an upstream that is down.
    assert!(mirror.terminate().success());
    assert!(quorum.terminate().success());
    let before = reconnect_waits(&mirror).len();
    mirror.restart();
    wait_until(
        "the mirror to retry its upstream 3 times",
        Duration::from_secs(30),
        || reconnect_waits(&mirror).len() >= before + 3,
    );
    let waits = reconnect_waits(&mirror)[before..].to_vec();
    // Jitter scales each wait by [0.5, 1.5), but the third base wait is
    // four times the first, so it is always longer.
    assert!(
        waits[2] > waits[0],
        "the backoff does not grow: {waits:?}\n{}",
        mirror.log()
    );
    assert!(
        log_lines_with(&mirror, &["upstream", "connecting (attempt 3)"]).len() == 1,
        "each attempt is logged:\n{}",
        mirror.log()
    );

    // Meanwhile it answers from its own log and says it is cut off.
    let status = mirror.status();
    assert_eq!(status["upstream"]["connected"], json!(false), "{status}");
    assert_eq!(status["head"], 3, "{status}");
    let mut at_mirror = mirror.client();
    for a in &known {
        assert_found(&mut at_mirror, &a.record, a.seq, &key, "cut-off mirror");
    }

    // The upstream returns; a new claim reaches the mirror.
    quorum.restart();
    let record = claim(50, 9, "after-return.tor");
    let reply = quorum.client().put(&record);
    assert_eq!(attested_seq(&reply, &record, &key), 4, "{reply}");
    mirror.wait_head(4, CONVERGE_LIMIT);
    wait_upstream_up(&mirror);
    assert_found(&mut at_mirror, &record, 4, &key, "reconnected mirror");
    let reply: Value = at_mirror.lookup(known[0].record.name.as_str());
    assert_eq!(reply["type"], "found");
}
