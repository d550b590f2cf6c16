//! Stopping servers with SIGTERM or SIGINT, as a service manager or a
//! person at a terminal would (the `signals` module), on real
//! `onions-server` processes with real state directories.
//!
//! The story: a Quorum on 127.0.0.1 holds records, a mirror on 127.0.0.2 is
//! subscribed to it, and a client sits idle on a connection. The Quorum is
//! told to stop: it exits 0 promptly, says in its log that it stopped, and
//! the idle client sees its connection end. The mirror keeps answering
//! lookups from its replica meanwhile. The Quorum is started again on the
//! same state directory: every record is still there with its attestation,
//! proven against a head no older than the last one, the seq carries on
//! where it was (the next put gets seq + 1), and the mirror reconnects and
//! catches up. Finally the mirror is told to stop and exits 0 as well. The
//! same again with SIGINT.
//!
//! Then the corners: a stopped mirror restarts from its own seq, answers
//! at once with the head it had, and fetches only what it missed; a mirror
//! whose upstream never answers has no head to answer with and still stops
//! cleanly; and a Quorum stopped while four operators are busy putting
//! answers every put it took in hand, keeps every record it answered, and
//! nothing else.

use onions::attest::Attestation;
use onions::lookup::{check_reply, Resolution};
use onions::name::LookupName;
use onions::record::Record;
use onions::wire::{AuditState, Code, Id, Reply, Request};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use testkit::checks::{accepted, policy};
use testkit::servers::{attested_seq, owner, print_key, put_request, record, wait_until, Server};
use testkit::TempDir;

/// How long replication or a reconnection may take.
const LIMIT: Duration = Duration::from_secs(30);

/// Lines of `log` that report a finished stop.
fn stops_logged(log: &str) -> usize {
    log.lines().filter(|l| l.ends_with(" stopped")).count()
}

/// Looks `name` up on `server` and checks that the answer is `found` with
/// `attestation` and verifies, head and proof included, for a client
/// trusting `key`; returns the record.
fn assert_found(server: &Server, name: &str, attestation: &Attestation, key: &str) -> Record {
    let reply = server.client().lookup(name);
    let Reply::Found {
        record,
        attestation: got,
        ..
    } = &reply
    else {
        panic!("lookup {name} on {}: {reply}", server.addr);
    };
    assert_eq!(got, attestation, "lookup {name} on {}", server.addr);
    let record = record.clone();
    let resolution = check_reply(
        reply,
        &LookupName::parse(name).unwrap(),
        &policy(key),
        onions::clock::now(),
    )
    .unwrap_or_else(|e| panic!("lookup {name} on {} does not verify: {e}", server.addr));
    assert!(
        matches!(resolution, Resolution::Found(_)),
        "lookup {name} on {}: {resolution:?}",
        server.addr
    );
    record
}

/// Whether `server`'s upstream session is up.
fn connected(server: &Server) -> bool {
    server.status().upstream.is_some_and(|u| u.connected)
}

/// Runs the whole story, stopping both servers with `signal`.
fn stop_and_restart(signal: libc::c_int, label: &str) {
    let tmp = TempDir::new(label);
    let mut quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let records = [
        record(&owner(1), "first.tor", 1, 0, &[("www", &owner(3))]),
        record(&owner(2), "second.tor", 1, 0, &[]),
    ];
    let mut attestations = Vec::new();
    for (i, rec) in records.iter().enumerate() {
        let reply = quorum.client().put(rec);
        assert_eq!(attested_seq(&reply, rec, &key), i as u64 + 1);
        attestations.push(accepted(&reply));
    }
    let mut mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    mirror.wait_head(2, LIMIT);
    wait_until("the mirror to subscribe", LIMIT, || {
        quorum.status().subscribers == 1
    });
    // A client that asked once and now sits idle.
    let mut idle = quorum.client();
    let reply = idle.request(&Request::Status {
        id: Id::Text("idle".into()),
    });
    let Reply::Status { id, status } = reply else {
        panic!("status answered with {reply}");
    };
    assert_eq!(id, Id::Text("idle".into()));
    assert_eq!(status.seq, 2, "{status}");
    let before = status.head.expect("the Quorum holds a head");
    assert_eq!(before.seq, 2);

    let status = quorum.stop_with(signal);
    assert_eq!(
        status.code(),
        Some(0),
        "the Quorum should exit 0 on signal {signal}, got {status}:\n{}",
        quorum.log()
    );
    assert_eq!(stops_logged(&quorum.log()), 1, "{}", quorum.log());
    assert!(idle.read().is_none(), "the idle client's connection ends");

    // The mirror serves from its replica while the Quorum is away.
    assert_found(&mirror, "www.first.tor", &attestations[0], &key);
    wait_until("the mirror to notice its upstream is gone", LIMIT, || {
        !connected(&mirror)
    });

    // Started again on the same state: the records and the head are back;
    // the head it signs at start is no lower in seq or time than the last
    // one, over the same live set.
    quorum.restart();
    let status = quorum.status();
    assert_eq!(status.seq, 2, "{status}");
    assert_eq!(status.records, 2, "{status}");
    let after = status.head.expect("the Quorum signs a head at start");
    assert_eq!(after.seq, 2, "{after:?}");
    assert!(after.time >= before.time, "{after:?} after {before:?}");
    assert_eq!((after.root, after.size), (before.root, before.size));
    assert!(!after.conflicts(&before), "{after:?} and {before:?}");
    for (rec, attestation) in records.iter().zip(&attestations) {
        let found = assert_found(&quorum, rec.name.as_str(), attestation, &key);
        assert_eq!(found, *rec);
    }
    let third = record(&owner(4), "third.tor", 1, 0, &[]);
    let reply = quorum.client().put(&third);
    assert_eq!(
        attested_seq(&reply, &third, &key),
        3,
        "seq + 1 after restart"
    );
    // The Quorum signs with the same key as before.
    assert_eq!(print_key(&quorum.state), key);

    // The mirror reconnects by itself and catches up.
    mirror.wait_head(3, LIMIT);
    assert_found(&mirror, "third.tor", &accepted(&reply), &key);
    wait_until("the mirror to resubscribe", LIMIT, || {
        quorum.status().subscribers == 1
    });

    let status = mirror.stop_with(signal);
    assert_eq!(
        status.code(),
        Some(0),
        "the mirror should exit 0 on signal {signal}, got {status}:\n{}",
        mirror.log()
    );
    assert_eq!(stops_logged(&mirror.log()), 1, "{}", mirror.log());
    // The Quorum notices its subscriber left and carries on.
    wait_until("the Quorum to drop the mirror", LIMIT, || {
        quorum.status().subscribers == 0
    });
    let status = quorum.status();
    assert_eq!(status.seq, 3, "{status}");
}

#[test]
fn sigterm_stops_quorum_and_mirror_cleanly() {
    stop_and_restart(libc::SIGTERM, "shutdown-term");
}

#[test]
fn sigint_stops_quorum_and_mirror_cleanly() {
    stop_and_restart(libc::SIGINT, "shutdown-int");
}

#[test]
fn a_stopped_mirror_restarts_from_its_own_head() {
    let tmp = TempDir::new("shutdown-mirror");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let mut mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    let first = record(&owner(5), "kept.tor", 1, 0, &[]);
    let reply = quorum.client().put(&first);
    assert_eq!(attested_seq(&reply, &first, &key), 1);
    let kept = accepted(&reply);
    mirror.wait_head(1, LIMIT);

    let status = mirror.terminate();
    assert_eq!(status.code(), Some(0), "{status}:\n{}", mirror.log());
    // Accepted while the mirror is down.
    let second = record(&owner(6), "missed.tor", 1, 0, &[]);
    let reply = quorum.client().put(&second);
    assert_eq!(attested_seq(&reply, &second, &key), 2);
    let missed = accepted(&reply);

    mirror.restart();
    // What it had is there at once (with the head it had matched, taken
    // again at start); what it missed arrives.
    let status = mirror.status();
    assert!(status.seq >= 1, "{status}");
    assert!(
        status
            .audit
            .as_ref()
            .and_then(|a| a.matched.as_ref())
            .is_some_and(|h| h.seq >= 1),
        "{status}"
    );
    assert_found(&mirror, "kept.tor", &kept, &key);
    mirror.wait_head(2, LIMIT);
    assert_found(&mirror, "missed.tor", &missed, &key);
    assert_eq!(mirror.status().records, 2);
    assert!(
        mirror.log().contains("from seq 2"),
        "the mirror resubscribes from its own head + 1:\n{}",
        mirror.log()
    );
}

#[test]
fn a_mirror_without_its_upstream_still_stops_cleanly() {
    let tmp = TempDir::new("shutdown-orphan");
    // Nothing listens here: the mirror keeps retrying with backoff.
    let nowhere: SocketAddr = format!("127.0.0.1:{}", testkit::free_port_on("127.0.0.1"))
        .parse()
        .unwrap();
    let key = onions::keys::SigningKey::from_seed(&[7; 32])
        .public()
        .to_base64();
    let mut mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), nowhere, &key, &[]);
    wait_until("the mirror to retry its upstream", LIMIT, || {
        mirror.log().matches("reconnecting in").count() >= 2
    });
    let status = mirror.status();
    assert!(
        status.upstream.as_ref().is_some_and(|u| !u.connected),
        "{status}"
    );
    assert_eq!(status.seq, 0, "{status}");
    // It never had a head, so it answers no lookup.
    assert!(status.head.is_none(), "{status}");
    assert_eq!(
        status.audit.as_ref().map(|a| a.state),
        Some(AuditState::None),
        "{status}"
    );
    let lookup = mirror.client().lookup("any.tor");
    assert!(
        matches!(&lookup, Reply::Error(e) if e.code == Code::NoHead),
        "{lookup}"
    );

    let status = mirror.stop_with(libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{status}:\n{}", mirror.log());
    assert_eq!(stops_logged(&mirror.log()), 1, "{}", mirror.log());
}

/// Puts `records` one after another on one connection until the server
/// closes it; returns each record that was answered, with its reply.
fn put_until_closed(
    addr: SocketAddr,
    records: &[Record],
    answered: &AtomicUsize,
) -> Vec<(Record, Reply)> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(testkit::servers::REPLY_LIMIT))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut replies = Vec::new();
    for rec in records {
        if reader
            .get_mut()
            .write_all(&put_request(rec).to_line())
            .is_err()
        {
            break;
        }
        let mut reply = String::new();
        match reader.read_line(&mut reply) {
            Ok(n) if n > 0 && reply.ends_with('\n') => {
                let reply = Reply::parse(reply.as_bytes())
                    .unwrap_or_else(|e| panic!("a torn reply {reply:?}: {e}"));
                replies.push((rec.clone(), reply));
                answered.fetch_add(1, Ordering::SeqCst);
            }
            Ok(0) => break,
            Ok(_) => panic!("a torn reply at shutdown: {reply:?}"),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no reply within the limit: {e}"),
        }
    }
    replies
}

#[test]
fn puts_in_flight_at_sigterm_are_answered_and_kept() {
    let tmp = TempDir::new("shutdown-in-flight");
    let mut quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let addr = quorum.addr;
    let batches: Vec<Vec<Record>> = (0..4u8)
        .map(|t| {
            (0..150)
                .map(|i| record(&owner(60 + t), &format!("busy{t}-{i}.tor"), 1, 0, &[]))
                .collect()
        })
        .collect();
    let answered = AtomicUsize::new(0);
    let (status, replies) = std::thread::scope(|scope| {
        let handles: Vec<_> = batches
            .iter()
            .map(|batch| scope.spawn(|| put_until_closed(addr, batch, &answered)))
            .collect();
        // Stop the Quorum while the four operators are busy putting.
        wait_until("some puts to be answered", LIMIT, || {
            answered.load(Ordering::SeqCst) >= 20
        });
        let status = quorum.stop_with(libc::SIGTERM);
        let replies: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        (status, replies)
    });
    assert_eq!(status.code(), Some(0), "{status}:\n{}", quorum.log());
    assert_eq!(stops_logged(&quorum.log()), 1, "{}", quorum.log());
    // A put that arrives after the signal is told the server is stopping;
    // every other reply is an acceptance.
    let (replies, refused): (Vec<_>, Vec<_>) = replies
        .into_iter()
        .partition(|(_, reply)| matches!(reply, Reply::Accepted { .. }));
    for (rec, reply) in &refused {
        assert!(
            matches!(reply, Reply::Error(e) if e.code == Code::Busy && e.message.contains("stopping")),
            "{}: {reply}",
            rec.name
        );
    }
    let mut seqs: Vec<u64> = replies
        .iter()
        .map(|(rec, reply)| attested_seq(reply, rec, &key))
        .collect();
    seqs.sort_unstable();
    let expected: Vec<u64> = (1..=replies.len() as u64).collect();
    assert_eq!(seqs, expected, "accepted seqs run 1..=n without gaps");

    // Every accepted record survived, and nothing that was not answered.
    quorum.restart();
    let status = quorum.status();
    let count = replies.len() as u64;
    assert_eq!(
        status.seq, count,
        "every record made durable was answered before the exit: {status}"
    );
    // The head it signs at start covers exactly those records.
    let head = status
        .head
        .as_ref()
        .expect("the Quorum signs a head at start");
    assert_eq!((head.seq, head.size), (count, count), "{status}");
    for (rec, reply) in &replies {
        let found = assert_found(&quorum, rec.name.as_str(), &accepted(reply), &key);
        assert_eq!(found, *rec);
    }
    let next = record(&owner(70), "after-stop.tor", 1, 0, &[]);
    let reply = quorum.client().put(&next);
    assert_eq!(attested_seq(&reply, &next, &key), replies.len() as u64 + 1);
}
