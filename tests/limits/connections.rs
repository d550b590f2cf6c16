//! Limits on connections: `--max-message` (a longer line is
//! `too_large` and closes it), `--max-connections` (one too many gets
//! `busy`, and room is made again), and `--idle-timeout` (a silent
//! client is closed, a silent subscriber is not).

use crate::wire::{
    assert_logged, error_of, lines, next_push, read_until_closed, reply_of, status_request,
    subscribe_request,
};
use crate::{LIMIT, QUORUM_IP};
use onions::merkle::{leaf_hash, LeafKey};
use onions::wire::{Code, Id, Push, Reply, ServerRole};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use testkit::checks::{assert_absent, assert_signed};
use testkit::servers::{
    attested_seq, log_lines_with, owner, print_key, record, state_dir, Client, Server,
};
use testkit::TempDir;

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
