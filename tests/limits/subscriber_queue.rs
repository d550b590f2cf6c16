//! `--subscriber-queue`: a subscriber that stops reading is dropped
//! while a healthy mirror keeps up and claims keep being accepted;
//! reconnecting from its last seq gets it every record.

use crate::wire::{lines, next_push, push_of, read_until_closed, reply_of, subscribe_request};
use crate::{KEYS, LIMIT, MIRROR_IP, QUORUM_IP};
use onions::head::SignedHead;
use onions::name::{RegisteredName, SubdomainKey};
use onions::onion::OnionAddress;
use onions::record::{Claim, Record};
use onions::wire::{Push, Reply};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::checks::assert_signed;
use testkit::servers::{
    attested_seq, log_lines_with, owner, owner_key, print_key, state_dir, wait_until, Client,
    Server,
};
use testkit::TempDir;

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
    let key = owner_key(KEYS, 80, n);
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
            // Sent whenever the socket had drained for a heartbeat's
            // interval, which a loaded machine can let happen before the
            // subscriber falls behind.
            Push::Heartbeat { .. } => {}
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
