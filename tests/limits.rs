//! Every limit a server enforces, hit on purpose.
//!
//! design.md gives each limit a flag with a sane default, says each is
//! logged when hit, and that hitting one never stops the server from
//! serving everyone else. Each test here starts a real `onions-server`
//! with one limit set small, drives real sockets past it, and checks three
//! things: the offending peer gets what the protocol promises (an error
//! line, a close, or a drop), the server's log names the flag, and the
//! server goes on answering:
//!
//! - `--max-message`: a line longer than the limit is `too_large` and
//!   closes its connection; a line exactly at the limit is answered;
//! - `--max-connections`: the connection past the limit gets `busy` and is
//!   closed; once others close, new ones are let in;
//! - `--idle-timeout`: a silent client is closed, a silent subscriber is
//!   not (it gets heartbeats);
//! - `--worker-queue`: a burst of claims that need proof-of-work checks is
//!   partly answered `busy`, never anything else, and nothing is lost;
//! - `--subscriber-queue`: a subscriber that stops reading is dropped while
//!   a healthy mirror keeps up and claims keep being accepted; reconnecting
//!   from its last seq gets it every record;
//! - and no flag at all: a mirror holding 1,000 idle connections while
//!   clients vanish mid-message 200 times stays up and keeps answering.
//!
//! Real processes on 127.0.0.1 (Quorum) and 127.0.0.2 (mirror); every wait
//! and every loop is bounded; every process is stopped by its PID.

use onions::head::SignedHead;
use onions::keys::SigningKey;
use onions::merkle::{leaf_hash, LeafKey};
use onions::name::{LookupName, RegisteredName, SubdomainKey};
use onions::onion::OnionAddress;
use onions::record::{Claim, Record};
use onions::wire::{Code, Id, Push, Reply, Request, ServerRole, WireError};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use testkit::servers::{
    attested_seq, log_lines_with, owner, print_key, record, wait_until, Client, Server,
};
use testkit::TempDir;

const QUORUM_IP: &str = "127.0.0.1";
const MIRROR_IP: &str = "127.0.0.2";

/// How long a limit's effect may take to show.
const LIMIT: Duration = Duration::from_secs(20);

/// The state directory `name` inside `tmp`, created.
fn state_dir(tmp: &TempDir, name: &str) -> PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir(&dir).unwrap();
    dir
}

/// A key no other record in these tests uses.
fn owner_key(tag: u8, n: u32) -> SigningKey {
    onions::keys::init().unwrap();
    let mut seed = [0xa5; 32];
    seed[0] = tag;
    seed[1..5].copy_from_slice(&n.to_le_bytes());
    SigningKey::from_seed(&seed)
}

/// Asserts that `server`'s log has a line naming `flag`.
fn assert_logged(server: &Server, flag: &str) {
    assert!(
        !log_lines_with(server, &[flag]).is_empty(),
        "the log never names {flag}:\n{}",
        server.log()
    );
}

/// Reads from `stream` until the server closes it (bounded in time and
/// size); returns what came before the close. Fails if it stays open.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("read failed: {e}"),
        }
        assert!(
            Instant::now() < deadline && got.len() < 256 << 20,
            "the server kept the connection open for {within:?} ({} bytes read)",
            got.len()
        );
    }
}

/// The complete lines in `bytes` (a cut-off last line is ignored).
fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let complete = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(&bytes[..0], |end| &bytes[..end]);
    complete
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

/// `line` decoded as a reply; anything else fails the test.
fn reply_of(line: &[u8]) -> Reply {
    Reply::parse(line).unwrap_or_else(|e| {
        panic!(
            "the server sent a bad reply {:?}: {e}",
            String::from_utf8_lossy(line)
        )
    })
}

/// `line` decoded as a subscription push; anything else (an error
/// included) fails the test.
fn push_of(line: &[u8]) -> Push {
    match Push::parse(line) {
        Ok(Ok(push)) => push,
        other => panic!(
            "the server pushed {:?}: {other:?}",
            String::from_utf8_lossy(line)
        ),
    }
}

/// The next push on a subscription; fails if the server closed it.
fn next_push(subscriber: &mut Client) -> Push {
    push_of(&subscriber.read_line().expect("the subscriber was closed"))
}

/// The error in `reply`; anything else fails the test.
fn error_of(reply: &Reply) -> &WireError {
    match reply {
        Reply::Error(error) => error,
        other => panic!("expected an error, got {other}"),
    }
}

/// Checks that `head` is signed, and by the Quorum key `key`.
fn assert_signed(head: &SignedHead, key: &str) {
    assert_eq!(head.quorum.to_base64(), key, "head signed by another key");
    assert!(head.signature_holds(), "head signature does not hold");
}

/// Checks that `reply` answers a lookup of the unregistered `name` with
/// `not_found` and an absence proof that holds against the root of its
/// head, signed by `key` (protocol.md §10.6).
fn assert_absent(reply: &Reply, name: &str, key: &str) {
    let Reply::NotFound { head, proof, .. } = reply else {
        panic!("lookup {name}: {reply}");
    };
    assert_signed(head, key);
    let leaf = LeafKey::of(&RegisteredName::parse(name).unwrap());
    proof
        .verify_absence(&leaf, &head.root)
        .unwrap_or_else(|e| panic!("the absence proof of {name} does not hold: {e:?}"));
}

/// Checks that `reply` answers a lookup with `record`, attested by `key`,
/// and a presence proof that holds against the root of its head, also
/// signed by `key`.
fn assert_found(reply: &Reply, record: &Record, key: &str) {
    let Reply::Found {
        record: got,
        head,
        proof,
        ..
    } = reply
    else {
        panic!("lookup {}: {reply}", record.name);
    };
    assert_eq!(got, record);
    let seq = attested_seq(reply, record, key);
    assert_signed(head, key);
    assert!(seq <= head.seq, "seq {seq} answered against head {head:?}");
    proof
        .verify_presence(&LeafKey::of(&record.name), &record.id(), seq, &head.root)
        .unwrap_or_else(|e| panic!("the proof of {} does not hold: {e:?}", record.name));
}

/// A `status` request.
fn status_request(id: &str) -> Request {
    Request::Status {
        id: Id::Text(id.into()),
    }
}

/// A `subscribe` request from `from`.
fn subscribe_request(id: &str, from: u64) -> Request {
    Request::Subscribe {
        id: Id::Text(id.into()),
        from,
    }
}

#[test]
fn max_message_refuses_longer_lines_and_keeps_serving() {
    const MAX: usize = 1024;
    let tmp = TempDir::new("max-message");
    let state = state_dir(&tmp, "quorum");
    let key = print_key(&state);
    let quorum = Server::quorum(QUORUM_IP, &state, &["--max-message", "1024"]);
    // A status request padded with JSON whitespace to `len` bytes, then \n.
    let padded = |len: usize| {
        let mut line = status_request("pad").to_line();
        assert_eq!(line.pop(), Some(b'\n'));
        line.resize(len, b' ');
        line.push(b'\n');
        line
    };

    // Exactly at the limit: answered, and the connection stays usable.
    let mut client = quorum.client();
    client.send_raw(&padded(MAX));
    let reply = client.read().expect("a reply to a line at the limit");
    assert!(
        matches!(&reply, Reply::Status { id, .. } if *id == Id::Text("pad".into())),
        "{reply}"
    );
    assert_absent(&client.lookup("nobody.tor"), "nobody.tor", &key);

    // One byte over, with its newline: too_large, then closed.
    let mut client = quorum.client();
    client.send_raw(&padded(MAX + 1));
    let reply = client.read().expect("an error before the close");
    assert_eq!(error_of(&reply).code, Code::TooLarge, "{reply}");
    assert!(client.read().is_none(), "the connection was not closed");

    // Far over and no newline at all: refused without waiting for one.
    let mut client = quorum.client();
    client.send_raw(&[b'x'; 3 * MAX]);
    let reply = client.read().expect("an error before the close");
    assert_eq!(error_of(&reply).code, Code::TooLarge, "{reply}");
    assert!(client.read().is_none(), "the connection was not closed");

    assert_logged(&quorum, "--max-message");
    assert_eq!(quorum.status().role, ServerRole::Quorum);
}

#[test]
fn max_connections_refuses_one_too_many_and_recovers() {
    const MAX: usize = 20;
    let tmp = TempDir::new("max-connections");
    let state = state_dir(&tmp, "quorum");
    let key = print_key(&state);
    let quorum = Server::quorum(QUORUM_IP, &state, &["--max-connections", "20"]);
    // Opens a connection that the server answers; the harness's own
    // short-lived connections may still be counted for a moment, so a
    // refusal is retried (bounded).
    let admitted = || {
        let deadline = Instant::now() + LIMIT;
        loop {
            let mut client = quorum.client();
            match client.try_request(&status_request("c")) {
                Some(Reply::Status { .. }) => return client,
                other => assert!(
                    Instant::now() < deadline,
                    "no connection admitted within {LIMIT:?}; last answer {other:?}"
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut open: Vec<Client> = (0..MAX).map(|_| admitted()).collect();

    // The 21st is told busy and closed.
    let mut extra = TcpStream::connect(quorum.addr).unwrap();
    let said = read_until_closed(&mut extra, LIMIT);
    let said: Vec<Reply> = lines(&said).into_iter().map(reply_of).collect();
    assert_eq!(said.len(), 1, "expected one refusal line: {said:?}");
    assert_eq!(error_of(&said[0]).code, Code::Busy, "{}", said[0]);
    assert_logged(&quorum, "--max-connections");

    // The admitted ones still work; closing some lets new ones in.
    for client in &mut open {
        let reply = client.request(&status_request("1"));
        assert!(matches!(reply, Reply::Status { .. }), "{reply}");
    }
    open.truncate(MAX - 5);
    let mut newcomers: Vec<Client> = (0..5).map(|_| admitted()).collect();
    assert_absent(&newcomers[4].lookup("nobody.tor"), "nobody.tor", &key);
}

#[test]
fn idle_timeout_closes_silent_clients_but_not_silent_subscribers() {
    let tmp = TempDir::new("idle");
    let quorum = Server::quorum(
        QUORUM_IP,
        &state_dir(&tmp, "quorum"),
        &["--idle-timeout", "1", "--heartbeat", "1"],
    );
    let key = print_key(&quorum.state);
    let mut subscriber = quorum.client();
    let reply = subscriber.request(&subscribe_request("sub", 1));
    assert!(matches!(reply, Reply::Subscribed { seq: 0, .. }), "{reply}");
    // Catch-up of an empty Quorum: no records, then its head (§10.6).
    let Push::Head(first) = next_push(&mut subscriber) else {
        panic!("the catch-up did not end with the head");
    };
    assert_signed(&first, &key);
    assert_eq!((first.seq, first.size), (0, 0), "{first:?}");
    let mut idle = TcpStream::connect(quorum.addr).unwrap();

    // The silent client is closed without a word.
    let said = read_until_closed(&mut idle, LIMIT);
    assert!(said.is_empty(), "an idle client was sent {said:?}");
    assert_logged(&quorum, "--idle-timeout");
    assert!(
        !log_lines_with(&quorum, &["idle for", "closing"]).is_empty(),
        "the log says why:\n{}",
        quorum.log()
    );

    // The subscriber, just as silent, outlives the timeout several times
    // over, fed by heartbeats, and still gets new records.
    for _ in 0..3 {
        let beat = next_push(&mut subscriber);
        assert_eq!(beat, Push::Heartbeat { seq: 0 });
    }
    assert_eq!(quorum.status().subscribers, 1);
    let record = record(&owner(1), "still-here.tor", 1, 0, &[]);
    assert_eq!(
        attested_seq(&quorum.client().put(&record), &record, &key),
        1
    );
    let mut pushes = (0..20)
        .map(|_| next_push(&mut subscriber))
        .filter(|push| !matches!(push, Push::Heartbeat { .. }));
    let push = pushes.next().expect("only heartbeats after a put");
    let Push::Record {
        seq, record: got, ..
    } = &push
    else {
        panic!("expected the record, got {push:?}");
    };
    assert_eq!((*seq, got), (1, &record));
    // Then the head that covers it: a set of one entry has that entry's
    // leaf hash as its root (§10.2).
    let push = pushes.next().expect("no head after the record");
    let Push::Head(head) = &push else {
        panic!("expected the head of seq 1, got {push:?}");
    };
    assert_signed(head, &key);
    assert_eq!((head.seq, head.size), (1, 1), "{head:?}");
    assert_eq!(
        head.root,
        leaf_hash(&LeafKey::of(&record.name), &record.id(), 1)
    );
    assert!(head.time >= first.time, "{head:?} after {first:?}");
}

/// A work-`work` record for `name`, by a key of its own.
fn worked(tag: u8, n: u32, name: &str, work: u64) -> Record {
    let key = owner_key(tag, n);
    let issued = onions::clock::now();
    let claim = Claim {
        name: RegisteredName::parse(name).unwrap(),
        subdomains: BTreeMap::new(),
        contact: String::new(),
        serial: 1,
        issued,
        expires: issued + 86_400,
        work,
    };
    onions::operator::finish_record(claim, &key, 1, Duration::from_millis(1), &mut |_| {}).unwrap()
}

#[test]
fn worker_queue_answers_busy_under_a_burst_and_loses_nothing() {
    const CLIENTS: usize = 30;
    const ROUNDS: usize = 10;
    let tmp = TempDir::new("worker-queue");
    let state = state_dir(&tmp, "quorum");
    let key = print_key(&state);
    let quorum = Server::quorum(
        QUORUM_IP,
        &state,
        &["--workers", "1", "--worker-queue", "1"],
    );
    // Checking any non-zero work costs the one worker an Argon2id call;
    // work 3 keeps making them cheap here.
    let records: Vec<Record> = (0..CLIENTS as u32)
        .map(|i| worked(70, i, &format!("burst-{i}.tor"), 3))
        .collect();

    // Bursts: every client sends its claim at once. A claim answered busy
    // is sent again in the next burst; an accepted one is answered the
    // same way again (a repeat of the live record).
    let mut busy = 0;
    for _ in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let burst: Vec<_> = records
            .iter()
            .cloned()
            .map(|record| {
                let mut client = quorum.client();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let reply = client.try_put(&record);
                    (record, reply)
                })
            })
            .collect();
        for thread in burst {
            let (record, reply) = thread.join().unwrap();
            let reply = reply.unwrap_or_else(|| panic!("no answer to {}", record.name));
            match &reply {
                Reply::Accepted { .. } => {
                    attested_seq(&reply, &record, &key);
                }
                Reply::Error(e) if e.code == Code::Busy => busy += 1,
                _ => panic!("put {}: neither accepted nor busy: {reply}", record.name),
            }
        }
        if busy > 0 {
            break;
        }
    }
    assert!(
        busy > 0,
        "{ROUNDS} bursts of {CLIENTS} never filled the queue"
    );
    assert_logged(&quorum, "--worker-queue");

    // The server keeps serving: one at a time, every claim gets in.
    let mut client = quorum.client();
    for record in &records {
        let reply = client.put(record);
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    }
    let status = quorum.status();
    assert_eq!(status.records, CLIENTS as u64, "{status}");
    assert_eq!(status.seq, CLIENTS as u64, "{status}");
    let head = status.head.as_ref().expect("no head");
    assert_eq!(
        (head.seq, head.size),
        (CLIENTS as u64, CLIENTS as u64),
        "{status}"
    );
    for record in &records {
        assert_found(&client.lookup(record.name.as_str()), record, &key);
    }
}

/// A TCP connection to `addr` whose receive buffer is as small as the
/// kernel allows: a reader on a slow link, so that what it does not read
/// backs up at the server quickly.
fn connect_with_small_window(addr: SocketAddr) -> TcpStream {
    let SocketAddr::V4(v4) = addr else {
        panic!("{addr} is not IPv4")
    };
    // SAFETY: a fresh socket owned by `fd` from here on; the option and
    // address are plain values of the sizes passed.
    unsafe {
        let raw = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(raw >= 0, "socket: {}", std::io::Error::last_os_error());
        let fd = OwnedFd::from_raw_fd(raw);
        let size: libc::c_int = 4096;
        let set = libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(set, 0, "SO_RCVBUF: {}", std::io::Error::last_os_error());
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let connected = libc::connect(
            fd.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(
            connected,
            0,
            "connect {addr}: {}",
            std::io::Error::last_os_error()
        );
        TcpStream::from(fd)
    }
}

/// A record near the 8 KiB limit: 24 subdomains whose keys are four
/// 58-character labels, and a 128-character contact (about 7.8 KB of
/// JSON). Long keys make bytes cheaply: each address costs a check.
fn big_record(n: u32, subs: &[(String, OnionAddress)], contact: &str) -> Record {
    let key = owner_key(80, n);
    let name = RegisteredName::parse(&format!("big-{n}.tor")).unwrap();
    let subdomains = subs
        .iter()
        .map(|(label, onion)| (SubdomainKey::parse(label, &name).unwrap(), *onion))
        .collect();
    let issued = onions::clock::now();
    let claim = Claim {
        name,
        subdomains,
        contact: contact.to_owned(),
        serial: 1,
        issued,
        expires: issued + 86_400,
        work: 0,
    };
    onions::operator::finish_record(claim, &key, 1, Duration::from_millis(1), &mut |_| {}).unwrap()
}

/// The session number in a log line `... session N: ...`.
fn session_of(line: &str) -> u64 {
    line.split("session ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no session in {line:?}"))
}

#[test]
fn slow_subscriber_is_dropped_without_holding_back_others_and_catches_up() {
    let tmp = TempDir::new("subscriber-queue");
    let qstate = state_dir(&tmp, "quorum");
    let key = print_key(&qstate);
    let quorum = Server::quorum(
        QUORUM_IP,
        &qstate,
        &["--subscriber-queue", "8", "--heartbeat", "1"],
    );
    let mirror = Server::mirror(
        MIRROR_IP,
        &state_dir(&tmp, "mirror"),
        quorum.addr,
        &key,
        &["--upstream-silence", "3"],
    );
    wait_until("the mirror to subscribe", LIMIT, || {
        mirror.status().upstream.is_some_and(|u| u.connected)
    });

    // The slow subscriber asks for everything, then never reads.
    let mut slow = connect_with_small_window(quorum.addr);
    slow.write_all(&subscribe_request("slow", 1).to_line())
        .unwrap();
    wait_until("both subscribers to be counted", LIMIT, || {
        quorum.status().subscribers == 2
    });
    let subscribed = log_lines_with(&quorum, &["subscribed from seq 1"]);
    assert_eq!(subscribed.len(), 2, "{subscribed:?}");
    let (mirror_session, slow_session) = (session_of(&subscribed[0]), session_of(&subscribed[1]));

    // Big claims from four clients until the server gives up on it. The
    // kernel takes a few MB first (the server's send buffer grows to 4 MiB
    // here), so this takes some hundreds of claims; bounded: 4 x 1,250
    // claims or 30 s.
    let subs: Vec<(String, OnionAddress)> = (0..24u8)
        .map(|i| {
            let label = |c: &str| c.repeat(58);
            let key = format!(
                "s{i:02}{}.{}.{}.{}",
                "x".repeat(55),
                label("y"),
                label("z"),
                label("w")
            );
            (key, OnionAddress::from_key(owner(100 + i).public()))
        })
        .collect();
    let contact = "c".repeat(128);
    let dropped = Arc::new(AtomicBool::new(false));
    let putters: Vec<_> = (0..4u32)
        .map(|c| {
            let (addr, key, subs, contact, dropped) = (
                quorum.addr,
                key.clone(),
                subs.clone(),
                contact.clone(),
                dropped.clone(),
            );
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut accepted = 0u32;
                // Keep going a little after the drop: claims still get in.
                let mut after_drop = 0;
                for i in 0..1250 {
                    if dropped.load(Ordering::Relaxed) {
                        after_drop += 1;
                        if after_drop > 10 {
                            break;
                        }
                    }
                    let record = big_record(c * 10_000 + i, &subs, &contact);
                    let reply = client.put(&record);
                    assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
                    attested_seq(&reply, &record, &key);
                    accepted += 1;
                }
                accepted
            })
        })
        .collect();
    let drop_line = format!("session {slow_session}: subscriber");
    let deadline = Instant::now() + Duration::from_secs(30);
    while log_lines_with(&quorum, &[&drop_line, "--subscriber-queue 8"]).is_empty()
        && Instant::now() < deadline
        && putters.iter().any(|p| !p.is_finished())
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    dropped.store(true, Ordering::Relaxed);
    let accepted: u32 = putters.into_iter().map(|p| p.join().unwrap()).sum();
    assert!(
        !log_lines_with(&quorum, &[&drop_line, "--subscriber-queue 8", "dropped"]).is_empty(),
        "the slow subscriber (session {slow_session}) was not dropped after {accepted} claims:\n{}",
        log_lines_with(&quorum, &["subscriber"]).join("\n")
    );
    let head = quorum.status().seq;
    assert_eq!(head, u64::from(accepted));
    let quorum_head = quorum.wait_head(head, LIMIT);
    assert_eq!((quorum_head.seq, quorum_head.size), (head, head));

    // Nobody else was dropped, and the mirror has everything.
    assert!(
        log_lines_with(&quorum, &[&format!("session {mirror_session}: subscriber")]).is_empty(),
        "the healthy mirror was dropped too:\n{}",
        log_lines_with(&quorum, &["subscriber"]).join("\n")
    );
    mirror.wait_seq(head, LIMIT);
    let mirror_head = mirror.wait_head(head, LIMIT);
    assert_eq!(mirror.status().records, head);
    assert_eq!(
        (mirror_head.seq, mirror_head.root, mirror_head.size),
        (head, quorum_head.root, quorum_head.size),
        "the mirror's head disagrees with the Quorum's"
    );
    assert_eq!(quorum.status().subscribers, 1);

    // What the slow subscriber did get is in order from seq 1, each head
    // in its place: right after the records it covers.
    let got = read_until_closed(&mut slow, LIMIT);
    let got = lines(&got);
    let first = got.first().map(|l| reply_of(l));
    assert!(
        matches!(first, Some(Reply::Subscribed { seq: 0, .. })),
        "{first:?}"
    );
    let mut seqs = Vec::new();
    let mut heads = 0;
    for line in &got[1..] {
        match push_of(line) {
            Push::Record { seq, .. } => seqs.push(seq),
            Push::Head(h) => {
                assert_head_in_place(&h, &seqs, &key);
                heads += 1;
            }
            other => panic!("unexpected push {other:?}"),
        }
    }
    assert!(heads > 0, "the slow subscriber got no head");
    assert!(seqs.iter().enumerate().all(|(i, &s)| s == i as u64 + 1));
    let last = seqs.last().copied().unwrap_or(0);
    assert!(last < head, "the slow subscriber got everything anyway");

    // It comes back from its last seq and catches up completely, ending
    // with the Quorum's current head.
    let mut back = Client::connect(quorum.addr);
    let reply = back.request(&subscribe_request("back", last + 1));
    assert!(
        matches!(reply, Reply::Subscribed { seq, .. } if seq == head),
        "{reply}"
    );
    let deadline = Instant::now() + LIMIT;
    while seqs.len() < head as usize {
        match next_push(&mut back) {
            Push::Record { seq, .. } => seqs.push(seq),
            Push::Head(h) => assert_head_in_place(&h, &seqs, &key),
            Push::Cosignatures { .. } => panic!("no witness here, so no cosignatures"),
            Push::Heartbeat { seq } => panic!(
                "the server went quiet (heartbeat, seq {seq}) after sending up to seq {}; \
                 seqs {}..={head} never came",
                seqs.last().unwrap(),
                seqs.last().unwrap() + 1
            ),
        }
        assert!(Instant::now() < deadline, "catch-up too slow");
    }
    assert!(
        seqs.iter().enumerate().all(|(i, &s)| s == i as u64 + 1),
        "seqs out of order or missing"
    );
    match next_push(&mut back) {
        Push::Head(h) => {
            assert_head_in_place(&h, &seqs, &key);
            assert_eq!((h.root, h.size), (quorum_head.root, quorum_head.size));
        }
        other => panic!("the catch-up did not end with the head: {other:?}"),
    }
}

/// Checks that `head`, pushed after the records of `seqs` (in order from
/// 1), is signed by `key` and stands where §10.6 puts it: after every
/// record with seq at most its own and before any above it, so its seq is
/// the last seq pushed.
fn assert_head_in_place(head: &SignedHead, seqs: &[u64], key: &str) {
    assert_signed(head, key);
    assert_eq!(
        head.seq,
        seqs.last().copied().unwrap_or(0),
        "head {head:?} out of place"
    );
}

/// Raises this process's soft limit on open files to the hard limit (the
/// servers it starts inherit it); returns the new soft limit.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain calls with a valid pointer to a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let want = limit.rlim_max.min(65_536);
        if limit.rlim_cur < want {
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = want;
            }
        }
    }
    // `rlim_t` is narrower on some 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    let soft = limit.rlim_cur as u64;
    soft
}

/// Makes dropping `stream` send a reset instead of a clean close.
fn reset_on_drop(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a plain value of the size passed.
    let set = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
}

/// Asserts every stream is still open and has been sent nothing.
fn assert_all_open(streams: &[TcpStream], when: &str) {
    let mut byte = [0u8; 1];
    for (i, stream) in streams.iter().enumerate() {
        stream.set_nonblocking(true).unwrap();
        match (&*stream).read(&mut byte) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Ok(0) => panic!("{when}: idle connection {i} was closed"),
            other => panic!("{when}: idle connection {i} got {other:?}"),
        }
    }
}

#[test]
fn mirror_survives_a_thousand_idle_connections_and_abrupt_disconnects() {
    // Each process needs a descriptor per connection plus a few dozen; if
    // the hard limit leaves less than that, fewer connections are opened.
    let fds = raise_fd_limit();
    let idle_count = 1000.min(fds.saturating_sub(200) as usize);
    assert!(idle_count >= 100, "only {fds} open files allowed");

    let tmp = TempDir::new("many");
    let qstate = state_dir(&tmp, "quorum");
    let key = print_key(&qstate);
    let quorum = Server::quorum(QUORUM_IP, &qstate, &[]);
    let mut mirror = Server::mirror(
        MIRROR_IP,
        &state_dir(&tmp, "mirror"),
        quorum.addr,
        &key,
        &["--max-connections", "1200"],
    );
    let records: Vec<Record> = (0..3)
        .map(|i| record(&owner(30 + i), &format!("busy-day-{i}.tor"), 1, 0, &[]))
        .collect();
    let mut client = quorum.client();
    for record in &records {
        let reply = client.put(record);
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    }
    mirror.wait_head(3, LIMIT);

    let idle: Vec<TcpStream> = (0..idle_count)
        .map(|i| {
            TcpStream::connect(mirror.addr)
                .unwrap_or_else(|e| panic!("idle connection {i} of {idle_count}: {e}"))
        })
        .collect();
    assert_eq!(mirror.status().seq, 3);
    assert_all_open(&idle, "after connecting");

    // 200 clients that vanish mid-message, four ways.
    let lookup = Request::Lookup {
        id: Id::Number(7),
        name: LookupName::from_user("busy-day-0.tor").unwrap(),
    }
    .to_line();
    let half = &lookup[..lookup.len() - 8];
    for i in 0..200 {
        let mut stream = TcpStream::connect(mirror.addr).unwrap();
        match i % 4 {
            // Half a line, then gone.
            0 => stream.write_all(half).unwrap(),
            // Half a line, then end of sending: the server closes too.
            1 => {
                stream.write_all(half).unwrap();
                stream.shutdown(Shutdown::Write).unwrap();
                let said = read_until_closed(&mut stream, LIMIT);
                let said: Vec<Reply> = lines(&said).into_iter().map(reply_of).collect();
                assert!(
                    said.iter().all(|r| matches!(r, Reply::Error(_))),
                    "half a line was answered {said:?}"
                );
            }
            // A whole request and half of another, never reading the answer.
            2 => {
                stream.write_all(&status_request("1").to_line()).unwrap();
                stream.write_all(half).unwrap();
            }
            // Half a line, then a reset instead of a close.
            _ => {
                stream.write_all(half).unwrap();
                reset_on_drop(&stream);
            }
        }
    }

    // Still up, still answering, still holding every idle connection.
    let status = mirror.status();
    assert_eq!(status.seq, 3, "{status}");
    assert_eq!(
        status.upstream.as_ref().map(|u| u.connected),
        Some(true),
        "{status}"
    );
    let mut asker = mirror.client();
    for record in &records {
        assert_found(&asker.lookup(record.name.as_str()), record, &key);
    }
    assert_all_open(&idle, "after the disconnects");
    assert!(mirror.is_running());
    assert!(
        !mirror.log().contains("panicked"),
        "the mirror panicked:\n{}",
        mirror.log()
    );
    assert!(
        log_lines_with(&mirror, &["--max-connections"]).is_empty(),
        "a connection was refused"
    );

    // And new records still reach it.
    let late = record(&owner(39), "busy-day-late.tor", 1, 0, &[]);
    assert_eq!(attested_seq(&client.put(&late), &late, &key), 4);
    mirror.wait_head(4, LIMIT);
    drop(idle);
}
