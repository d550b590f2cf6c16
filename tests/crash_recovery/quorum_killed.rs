//! The Quorum killed with SIGKILL while four clients stream claims at it:
//! after a restart every answered claim is there with its seq, heads go
//! on from where they were, and a mirror chain converges on it.

use crate::checks::{assert_continues, assert_found, assert_signed, wait_converged};
use crate::claims::{claim, stream_puts};
use crate::{CONVERGE_LIMIT, MIRROR_IP, QUICK, QUORUM_IP, SUB_MIRROR_IP};
use onions::head::SignedHead;
use onions::record::Record;
use onions::wire::{Id, Push, Reply, Request};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use testkit::servers::{attested_seq, log_lines_with, print_key, state_dir, Server};
use testkit::TempDir;

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
    mirror.wait_upstream_up(CONVERGE_LIMIT);
    sub_mirror.wait_upstream_up(CONVERGE_LIMIT);
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
