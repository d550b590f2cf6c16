//! What survives a crash, and how the servers find each other again.
//!
//! design.md promises that a record is on disk (fsync) before the Quorum
//! answers `accepted` and before a mirror counts it as applied, that a torn
//! or corrupt log tail is cut off and logged rather than kept, and that a
//! mirror keeps serving what it has while it reconnects to its upstream
//! with growing backoff. protocol.md §10.4 adds that a head is durable
//! before anyone sees it and that heads never go back, not even across a
//! crash. These tests hold the real programs to that:
//!
//! - the Quorum is killed with SIGKILL while four clients stream claims at
//!   it; after a restart every answered claim is still there with the very
//!   seq it was given, proven against the head in the answer, the seqs have
//!   no gap, the Quorum's head is not below any head it had pushed before
//!   the kill, the next claim continues the sequence, and a mirror chain
//!   (127.0.0.2, and a mirror of it on 127.0.0.3) reconnects and converges
//!   on the same seq, live set, and head root and size;
//! - a mirror is killed with SIGKILL while it replicates; after a restart it
//!   answers again with a head not below the one it answered with before,
//!   still holds everything it had reported applied, and catches up with
//!   the claims made while it was down, ending on the Quorum's root;
//! - a mirror that comes back after a long absence (here: a new one) copies
//!   a backlog larger than one catch-up batch completely;
//! - a log whose last record entry was cut short, or had a byte flipped, is
//!   cut back to the last sound entry with a warning; the server serves the
//!   entries before it (and proves the lost one absent), and the lost seq
//!   is handed out again;
//! - a mirror whose upstream is down keeps retrying with growing waits,
//!   answers lookups from its own log and its last head meanwhile, and
//!   replicates once the upstream is back.
//!
//! Real `onions-server` processes on loopback, real sockets, real files;
//! every wait is bounded and every process is stopped by its PID.

use onions::head::SignedHead;
use onions::keys::SigningKey;
use onions::merkle::LeafKey;
use onions::record::Record;
use onions::wire::{Id, Push, Reply, Request};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use testkit::servers::{
    attested_seq, log_lines_with, print_key, record, wait_until, Client, Server,
};
use testkit::TempDir;

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
    addr: SocketAddr,
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
            assert!(
                matches!(reply, Reply::Accepted { .. }),
                "put {}: {reply}",
                record.name
            );
            let seq = attested_seq(&reply, &record, &key);
            accepted.lock().unwrap().push(Accepted { record, seq });
        }
        StreamEnd { cut: false }
    })
}

/// Checks that `head` is signed, and by the Quorum key `key`.
fn assert_signed(head: &SignedHead, key: &str, at: &str) {
    assert_eq!(
        head.quorum.to_base64(),
        key,
        "{at}: head signed by another key"
    );
    assert!(head.signature_holds(), "{at}: head signature does not hold");
}

/// Looks `record.name` up over `client` and checks the answer is that very
/// record with an attestation of `seq` by `key`, proven present by a proof
/// that holds against the root of the answer's head, itself signed by
/// `key`; `at` names the server in failure messages. Returns the head.
fn assert_found(client: &mut Client, record: &Record, seq: u64, key: &str, at: &str) -> SignedHead {
    let reply = client.lookup(record.name.as_str());
    let Reply::Found {
        record: got,
        head,
        proof,
        ..
    } = &reply
    else {
        panic!("{at}: lookup {}: {reply}", record.name);
    };
    assert_eq!(got, record, "{at}: {} changed", record.name);
    assert_eq!(
        attested_seq(&reply, record, key),
        seq,
        "{at}: {} has another seq",
        record.name
    );
    assert_signed(head, key, at);
    assert!(
        seq <= head.seq,
        "{at}: {} (seq {seq}) answered against head seq {}",
        record.name,
        head.seq
    );
    proof
        .verify_presence(&LeafKey::of(&record.name), &record.id(), seq, &head.root)
        .unwrap_or_else(|e| {
            panic!(
                "{at}: the proof of {} (seq {seq}) does not hold against head seq {}: {e:?}",
                record.name, head.seq
            )
        });
    head.clone()
}

/// Checks that `after`, a server's head after a restart, continues from
/// `before`, a head seen before the crash: lower neither in seq nor in
/// time, and not in conflict with it (§10.4, §10.5).
fn assert_continues(after: &SignedHead, before: &SignedHead, what: &str) {
    assert!(
        after.seq >= before.seq && after.time >= before.time,
        "{what}: head seq {} time {} after the restart is below head seq {} time {} seen before",
        after.seq,
        after.time,
        before.seq,
        before.time
    );
    assert!(
        !after.conflicts(before),
        "{what}: head after the restart conflicts with one seen before: {after:?} / {before:?}"
    );
}

/// The Quorum's log without puts and lookups, for failure messages.
fn quiet_log(server: &Server) -> String {
    server
        .log()
        .lines()
        .filter(|l| !l.contains(": put ") && !l.contains(": lookup "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until `mirror` reports the same seq and live count as `quorum`,
/// then until both answer against heads of that seq, and checks that the
/// two heads agree on root and size. Returns the mirror's head.
fn wait_converged(mirror: &Server, quorum: &Server, what: &str) -> SignedHead {
    let at_quorum = quorum.status();
    let (seq, records) = (at_quorum.seq, at_quorum.records);
    let deadline = Instant::now() + CONVERGE_LIMIT;
    loop {
        let status = mirror.status();
        if status.seq == seq && status.records == records {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: Quorum seq {seq}, records {records}; \
             mirror status {status}; mirror log:\n{}\nQuorum log (no puts or lookups):\n{}",
            mirror.log(),
            quiet_log(quorum)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mirror_head = mirror.wait_head(seq, CONVERGE_LIMIT);
    let quorum_head = quorum
        .current_head()
        .unwrap_or_else(|| panic!("the Quorum has no head: {}", quorum.status()));
    assert_eq!(
        (mirror_head.seq, quorum_head.seq),
        (seq, seq),
        "{what}: heads not at seq {seq}"
    );
    assert_eq!(
        (mirror_head.root, mirror_head.size),
        (quorum_head.root, quorum_head.size),
        "{what}: the mirror's head at seq {seq} disagrees with the Quorum's: \
         mirror {mirror_head:?}, Quorum {quorum_head:?}"
    );
    assert_eq!(
        quorum_head.size, records,
        "{what}: head size is not the live count"
    );
    mirror_head
}

/// Waits until `mirror` says its upstream session is up.
fn wait_upstream_up(mirror: &Server) {
    wait_until(
        &format!("mirror {} to connect upstream", mirror.addr),
        CONVERGE_LIMIT,
        || mirror.status().upstream.is_some_and(|u| u.connected),
    );
}

/// Subscribes to `addr` and starts a thread that collects every head
/// pushed there until the connection ends (a killed server). The
/// subscription is in place when this returns.
fn watch_heads(addr: SocketAddr) -> JoinHandle<Vec<SignedHead>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let subscribe = Request::Subscribe {
        id: Id::Text("watch".into()),
        from: 1,
    };
    stream.write_all(&subscribe.to_line()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).unwrap();
    let reply = Reply::parse(&line);
    assert!(
        matches!(reply, Ok(Reply::Subscribed { .. })),
        "subscribe: {reply:?}"
    );
    std::thread::spawn(move || {
        let mut heads = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(_) if line.last() == Some(&b'\n') => {}
                // Closed, reset or cut mid-line: the server is gone.
                _ => return heads,
            }
            match Push::parse(&line) {
                Ok(Ok(Push::Head(head))) => heads.push(head),
                Ok(Ok(_)) => {}
                other => panic!("bad push {:?}: {other:?}", String::from_utf8_lossy(&line)),
            }
        }
    })
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
    let watcher = watch_heads(quorum.addr);

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
    let mut seen: Vec<SignedHead> = quorum.current_head().into_iter().collect();
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

    // Every head that left the Quorum before the kill: pushed to a plain
    // subscriber, and held by each mirror (their newest and current).
    let pushed = watcher.join().expect("the head watcher failed");
    assert!(!pushed.is_empty(), "the Quorum pushed no head");
    for pair in pushed.windows(2) {
        assert_continues(&pair[1], &pair[0], "heads pushed before the kill");
    }
    for server in [&mirror, &sub_mirror] {
        let status = server.status();
        seen.extend(status.head);
        seen.extend(status.audit.and_then(|a| a.matched));
    }
    seen.extend(pushed);
    for head in &seen {
        assert_signed(head, &key, "a head seen before the kill");
    }

    quorum.restart();
    let status = quorum.status();
    let seq = status.seq;
    let head = status.head.expect("the restarted Quorum has no head");
    eprintln!(
        "killed after {} acceptances (highest seq {max_seq}); seq after restart {seq}, \
         head seq {} time {}; {} heads seen before the kill",
        accepted.len(),
        head.seq,
        head.time,
        seen.len()
    );
    assert!(
        seq >= max_seq,
        "seq {seq} after restart is below the accepted seq {max_seq}"
    );
    // Every name is distinct and unexpired, so every seq up to the last is
    // a live record: no gap, no reuse.
    assert_eq!(
        status.records, seq,
        "live records after restart do not match the seq"
    );
    // It signed a head over its replayed log before answering, and heads
    // go on from where they were.
    assert_signed(&head, &key, "restarted Quorum");
    assert_eq!(
        (head.seq, head.size),
        (seq, seq),
        "the restarted Quorum's head does not cover its log"
    );
    for before in &seen {
        assert_continues(&head, before, "restarted Quorum");
    }
    let mut client = quorum.client();
    for a in &accepted {
        let answered = assert_found(&mut client, &a.record, a.seq, &key, "restarted Quorum");
        assert_continues(&answered, &head, "restarted Quorum's answers");
    }

    // The sequence continues after the crash.
    let after = claim(9, 0, "after-crash.tor");
    let reply = client.put(&after);
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    assert_eq!(attested_seq(&reply, &after, &key), seq + 1);

    // The mirror chain reconnects and converges on the restarted Quorum,
    // down to the root of the head each answers with.
    let near = wait_converged(&mirror, &quorum, "the mirror to converge");
    let far_head = wait_converged(&sub_mirror, &quorum, "the mirror's mirror to converge");
    assert_eq!(
        (near.root, near.size),
        (far_head.root, far_head.size),
        "the two mirrors disagree at seq {}",
        seq + 1
    );
    for server in [&mirror, &sub_mirror] {
        for before in &seen {
            assert_continues(&server.current_head().unwrap(), before, "a mirror");
        }
    }
    assert!(
        log_lines_with(&mirror, &["upstream", "subscribed from seq"]).len() >= 2,
        "the mirror never resubscribed:\n{}",
        mirror.log()
    );
    for (server, at) in [(&mirror, "mirror"), (&sub_mirror, "mirror of mirror")] {
        let mut client = server.client();
        assert_found(&mut client, &after, seq + 1, &key, at);
        for a in &accepted {
            assert_found(&mut client, &a.record, a.seq, &key, at);
        }
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

    // Kill -9 the mirror once it has applied some of the stream and
    // answers with a head; note both as it reports them.
    let mut last_status = None;
    wait_until(
        "the mirror to apply 30 records under a head",
        CONVERGE_LIMIT,
        || {
            let status = mirror.status();
            let ready = status.seq >= 30
                && status
                    .audit
                    .as_ref()
                    .and_then(|a| a.matched.as_ref())
                    .is_some_and(|h| h.seq >= 1);
            last_status = Some(status);
            ready
        },
    );
    let status = last_status.unwrap();
    let applied = status.seq;
    let before = status.audit.and_then(|a| a.matched).unwrap();
    assert_signed(&before, &key, "the mirror's head before the kill");
    mirror.kill9();

    // More claims while it is down.
    let mut client = quorum.client();
    let mut while_down = Vec::new();
    for i in 0..20 {
        let record = claim(29, i, &format!("while-down-{i}.tor"));
        let reply = client.put(&record);
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
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

    // Right after the restart: everything it had reported applied is
    // there, and it answers at once with a head that continues the one it
    // answered with before (its last matched head, taken again from its
    // log), so everything that head covers is found and proven.
    mirror.restart();
    let status = mirror.status();
    assert!(
        status.seq >= applied,
        "mirror seq {} fell below {applied}",
        status.seq
    );
    let restored = status
        .audit
        .and_then(|a| a.matched)
        .unwrap_or_else(|| panic!("the restarted mirror has no head:\n{}", mirror.log()));
    assert_signed(&restored, &key, "the restarted mirror's head");
    assert_continues(&restored, &before, "restarted mirror");
    let mut at_mirror = mirror.client();
    for a in accepted.iter().filter(|a| a.seq <= restored.seq) {
        let head = assert_found(&mut at_mirror, &a.record, a.seq, &key, "restarted mirror");
        assert_continues(&head, &before, "restarted mirror's answers");
    }
    // What it applied above that head is answered once a head covers it.
    mirror.wait_head(applied, CONVERGE_LIMIT);
    for a in accepted.iter().filter(|a| a.seq <= applied) {
        assert_found(&mut at_mirror, &a.record, a.seq, &key, "restarted mirror");
    }

    // Then it catches up with the Quorum, including what came meanwhile,
    // and its head agrees with the Quorum's.
    let head = wait_converged(&mirror, &quorum, "the restarted mirror to catch up");
    assert_continues(&head, &before, "caught-up mirror");
    let status = mirror.status();
    assert_eq!(status.records, status.seq);
    for a in while_down.iter().chain(&accepted) {
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
    assert_eq!(quorum.status().seq, 1000);

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

/// Kind byte of a record entry (src/store/format.rs).
const KIND_RECORD: u8 = 1;
/// Kind byte of a signed head.
const KIND_SIGNED_HEAD: u8 = 3;

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
/// record entry of the log with `damage`, restarts it, and checks that the
/// log is cut right before that entry (with a warning), the records before
/// it are served, it is proven absent, and its seq is handed out again.
///
/// The Quorum writes each batch's records and their head with one write
/// (§10.4), so the last record entry is followed by its head; a torn or
/// corrupt record takes the head after it along, as a torn write would.
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
    let head_before = quorum.current_head().unwrap();
    assert_eq!(head_before.seq, u64::from(N));
    drop(client);
    assert!(
        quorum.terminate().success(),
        "SIGTERM exit:\n{}",
        quorum.log()
    );

    let log = state.join("records.log");
    let all = frames(&log);
    let (at, last) = all
        .iter()
        .enumerate()
        .rfind(|(_, f)| f.kind == KIND_RECORD)
        .expect("the log has record entries");
    assert!(
        all[at + 1..].iter().all(|f| f.kind == KIND_SIGNED_HEAD),
        "only heads follow the last record entry"
    );
    assert!(
        at + 1 < all.len(),
        "the last record entry is followed by its head"
    );
    assert_eq!(
        all.iter().filter(|f| f.kind == KIND_RECORD).count(),
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
    // The restarted Quorum signs its head right after opening the log, so
    // the log is the cut one plus that head.
    let after_cut = frames(&log);
    assert_eq!(
        after_cut.iter().filter(|f| f.offset < cut_at).count(),
        at,
        "entries before the damaged one were lost"
    );
    assert!(
        after_cut
            .iter()
            .filter(|f| f.offset >= cut_at)
            .all(|f| f.kind == KIND_SIGNED_HEAD),
        "the log is cut right before the damaged entry"
    );
    let status = quorum.status();
    assert_eq!(status.seq, u64::from(N) - 1);
    assert_eq!(status.records, u64::from(N) - 1);
    let head = status.head.expect("the restarted Quorum has no head");
    assert_signed(&head, &key, "after the cut");
    assert_eq!((head.seq, head.size), (u64::from(N) - 1, u64::from(N) - 1));
    let mut client = quorum.client();
    let (kept, lost) = records.split_at(N as usize - 1);
    for (i, record) in kept.iter().enumerate() {
        assert_found(&mut client, record, i as u64 + 1, &key, "after the cut");
    }
    let reply = client.lookup(lost[0].name.as_str());
    let Reply::NotFound { head, proof, .. } = &reply else {
        panic!("the cut record is gone: {reply}");
    };
    assert_signed(head, &key, "after the cut");
    proof
        .verify_absence(&LeafKey::of(&lost[0].name), &head.root)
        .unwrap_or_else(|e| panic!("the absence proof of the cut record does not hold: {e:?}"));

    // The lost seq is handed out again, to the same claim made anew.
    let reply = client.put(&lost[0]);
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
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
    assert_eq!(quorum.status().seq, u64::from(N));
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
    damaged_tail_is_cut("torn", |log, last| {
        // The write stopped 10 bytes before the record's end.
        let file = std::fs::OpenOptions::new().write(true).open(log).unwrap();
        file.set_len(last.offset + 5 + last.body_len + 16 - 10)
            .unwrap();
    });
}

/// A flipped byte in the last record, whose head follows intact, is not a
/// torn tail: the head shows that the write completed, so the record was
/// acknowledged and may be on mirrors. The Quorum refuses to cut it and
/// hand its seq out again, on one line naming the fix.
#[test]
fn flipped_byte_in_the_last_record_before_its_head_is_refused() {
    let tmp = TempDir::new("flipped");
    let state = state_dir(&tmp, "quorum");
    let mut quorum = Server::quorum(QUORUM_IP, &state, &[]);
    let mut client = quorum.client();
    for i in 0..3 {
        let reply = client.put(&claim(40, i, &format!("flipped-{i}.tor")));
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    }
    drop(client);
    let addr = quorum.addr;
    assert!(quorum.terminate().success());
    let log = state.join("records.log");
    let last = frames(&log)
        .into_iter()
        .rfind(|f| f.kind == KIND_RECORD)
        .expect("the log has record entries");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[(last.offset + 5 + last.body_len / 2) as usize] ^= 0x01;
    std::fs::write(&log, &bytes).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_onions-server"))
        .args(["--role", "quorum", "--min-work", "0", "--listen"])
        .arg(format!(
            "{}:{}",
            addr.ip(),
            testkit::free_port_on(QUORUM_IP)
        ))
        .arg("--state-dir")
        .arg(&state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let status = testkit::ChildGuard::new(child, "the Quorum on a damaged log")
        .wait_within(CONVERGE_LIMIT)
        .expect("the Quorum refuses its damaged log and exits");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(err.contains("--recover-from"), "{err}");
    assert_eq!(std::fs::read(&log).unwrap(), bytes, "nothing was cut");
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
    let before = mirror.wait_head(3, CONVERGE_LIMIT);

    // Both stop; the mirror comes back first, to an upstream that is down.
    assert!(mirror.terminate().success());
    assert!(quorum.terminate().success());
    let retries_before = reconnect_waits(&mirror).len();
    mirror.restart();
    wait_until(
        "the mirror to retry its upstream 3 times",
        Duration::from_secs(30),
        || reconnect_waits(&mirror).len() >= retries_before + 3,
    );
    let waits = reconnect_waits(&mirror)[retries_before..].to_vec();
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

    // Meanwhile it answers from its own log, against the head it matched
    // before the stop, and says it is cut off.
    let status = mirror.status();
    assert_eq!(
        status.upstream.as_ref().map(|u| u.connected),
        Some(false),
        "{status}"
    );
    assert_eq!(status.seq, 3, "{status}");
    let restored = status.audit.as_ref().and_then(|a| a.matched.clone());
    let restored = restored.unwrap_or_else(|| panic!("no head after the restart: {status}"));
    assert_continues(&restored, &before, "restarted mirror");
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
    assert_found(
        &mut at_mirror,
        &known[0].record,
        known[0].seq,
        &key,
        "reconnected mirror",
    );
}
