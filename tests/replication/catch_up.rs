//! Mirrors that start late: a subscriber is sent the newest record of
//! every name and nothing superseded, then the head; a late mirror of a
//! Quorum holding hundreds of records ends on the same live set and head.

use crate::checks::{
    assert_absent, assert_head_of, assert_same_heads, assert_serves, assert_signed_by,
    assert_the_proof, leaves, pushes_until_head, wait_subscribers,
};
use crate::UNREGISTERED;
use onions::wire::{Id, Reply, Request};
use testkit::checks::accepted;
use testkit::servers::{
    attested_seq, log_lines_with, onion_of, owner, print_key, record, Client, Server,
};
use testkit::TempDir;

#[test]
fn a_late_mirror_catches_up_with_the_newest_record_of_every_name() {
    let tmp = TempDir::new("replication-catch-up");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);

    // Six puts for three names; three of them are superseded.
    let (a, b, c) = (owner(11), owner(12), owner(13));
    let puts = [
        record(&a, "alpha.tor", 1, 0, &[]),
        record(&b, "beta.tor", 1, 0, &[]),
        record(&a, "alpha.tor", 2, 0, &[("www", &b)]),
        record(&c, "gamma.tor", 1, 0, &[("mail", &a)]),
        record(&b, "beta.tor", 2, 0, &[("www", &c)]),
        record(&a, "alpha.tor", 3, 0, &[("www", &c)]),
    ];
    let mut attestations = Vec::new();
    for (i, rec) in puts.iter().enumerate() {
        let reply = quorum.client().put(rec);
        assert_eq!(attested_seq(&reply, rec, &key), i as u64 + 1, "put {i}");
        attestations.push(accepted(&reply));
    }
    let status = quorum.status();
    assert_eq!(status.seq, 6, "{status}");
    assert_eq!(status.records, 3, "{status}");
    // The live set, by seq: gamma (4), beta (5), alpha (6).
    let live = [3usize, 4, 5];
    let mut tree = leaves(&live.map(|i| (&puts[i], i as u64 + 1)));

    // A subscriber from seq 1 is sent only the live records, in seq order,
    // then the head they make up, then what is accepted next with its head
    // and nothing in between.
    let mut sub = quorum.client();
    let subscribed = sub.request(&Request::Subscribe {
        id: Id::Text("sub".into()),
        from: 1,
    });
    assert_eq!(
        subscribed,
        Reply::Subscribed {
            id: Id::Text("sub".into()),
            seq: 6
        }
    );
    let (pushed, head) = pushes_until_head(&mut sub, 0, 6);
    assert_eq!(
        pushed.iter().map(|(seq, ..)| *seq).collect::<Vec<_>>(),
        vec![4, 5, 6],
        "superseded records must not be pushed: {pushed:?}"
    );
    for ((seq, rec, attestation), &i) in pushed.iter().zip(&live) {
        assert_eq!(*rec, puts[i], "seq {seq}");
        assert_eq!(*attestation, attestations[i], "seq {seq}");
    }
    assert_eq!(head.seq, 6);
    assert_signed_by(&head, &key, "the catch-up head");
    assert_head_of(&head, &tree, "the catch-up head");
    assert_eq!(Some(&head), quorum.status().head.as_ref());

    let delta = record(&c, "delta.tor", 1, 0, &[]);
    let reply = quorum.client().put(&delta);
    assert_eq!(attested_seq(&reply, &delta, &key), 7);
    let delta_attestation = accepted(&reply);
    let (next, head) = pushes_until_head(&mut sub, 6, 7);
    assert_eq!(next.len(), 1, "only seq 7 follows seq 6: {next:?}");
    assert_eq!(next[0].0, 7);
    assert_eq!(next[0].1, delta);
    assert_eq!(next[0].2, delta_attestation);
    tree.extend(leaves(&[(&delta, 7)]));
    assert_eq!(head.seq, 7);
    assert_signed_by(&head, &key, "the head after delta");
    assert_head_of(&head, &tree, "the head after delta");
    drop(sub);

    // A mirror started now, and a mirror of it, catch up with all of it
    // and stand on the same head.
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    let second = Server::mirror("127.0.0.3", &tmp.join("second"), mirror.addr, &key, &[]);
    let head = assert_same_heads(&[&quorum, &mirror, &second], 7, &key);
    assert_head_of(&head, &tree, "the head after catch-up");
    let quorum_records = quorum.status().records;
    assert_eq!(quorum_records, 4);
    for server in [&mirror, &second] {
        let status = server.status();
        assert_eq!(status.records, quorum_records, "{}: {status}", server.addr);
        assert_eq!(status.seq, 7, "{}: {status}", server.addr);
    }
    for server in [&quorum, &mirror, &second] {
        let at = server.addr;
        for (name, i, target) in [
            ("alpha.tor", 5, onion_of(&a)),
            ("www.alpha.tor", 5, onion_of(&c)),
            ("www.beta.tor", 4, onion_of(&c)),
            ("mail.gamma.tor", 3, onion_of(&a)),
        ] {
            let (_, proof) = assert_serves(server, name, &puts[i], &attestations[i], &key, &target);
            assert_the_proof(&proof, name, &tree, &format!("{name} on {at}"));
        }
        let (_, proof) = assert_serves(
            server,
            "delta.tor",
            &delta,
            &delta_attestation,
            &key,
            &onion_of(&c),
        );
        assert_the_proof(&proof, "delta.tor", &tree, &format!("delta.tor on {at}"));
        let (_, proof) = assert_absent(server, UNREGISTERED, &key);
        assert_the_proof(&proof, UNREGISTERED, &tree, &format!("absence on {at}"));
    }
    // The raw subscriber is gone; the mirror is the Quorum's one subscriber.
    wait_subscribers(&quorum, 1);
    wait_subscribers(&mirror, 1);
}

#[test]
fn a_late_mirror_catches_up_with_hundreds_of_records() {
    const NAMES: u64 = 200;
    let tmp = TempDir::new("replication-many");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let addr = quorum.addr;
    // Four operators put 50 names each, in parallel; every fifth name is
    // then updated once, so 40 records are superseded.
    std::thread::scope(|scope| {
        for part in 0..4u64 {
            scope.spawn(move || {
                let service = owner(50 + part as u8);
                let mut client = Client::connect(addr);
                for i in (part..NAMES).step_by(4) {
                    let name = format!("n{i}.tor");
                    let rec = record(&service, &name, 1, 0, &[]);
                    let reply = client.put(&rec);
                    assert!(matches!(reply, Reply::Accepted { .. }), "{name}: {reply}");
                    if i % 5 == 0 {
                        let rec = record(&service, &name, 2, 0, &[("www", &service)]);
                        let reply = client.put(&rec);
                        assert!(
                            matches!(reply, Reply::Accepted { .. }),
                            "{name} update: {reply}"
                        );
                    }
                }
            });
        }
    });
    let seq = NAMES + NAMES / 5;
    let status = quorum.status();
    assert_eq!(status.seq, seq, "{status}");
    assert_eq!(status.records, NAMES, "{status}");
    // Taking names in, its tree deepened at each power of two from 8 on,
    // the last time (2^5 buckets) before 128 names, and it said so each
    // time. From 2^2 buckets on, it did so a level ahead of need, a few
    // buckets with each head, and never by rebuilding the whole tree in
    // one batch: a batch (at most 4 puts here) cannot leap the stretch of
    // names where that begins (12 to 16 names for 2^2). Only the first
    // stretch (6 to 8 names) is narrow enough to leap.
    let log = quorum.log();
    let said = |parts: &[&str]| !log_lines_with(&quorum, parts).is_empty();
    for depth in 1..=5 {
        let deepened = format!("the tree deepened to 2^{depth} buckets for ");
        assert!(
            said(&[&deepened]),
            "no {deepened:?} in the Quorum's log:\n{log}"
        );
        if depth >= 2 {
            let starts = format!("the tree starts deepening to 2^{depth} buckets at ");
            assert!(
                said(&[&starts]),
                "no {starts:?} in the Quorum's log:\n{log}"
            );
            assert!(
                said(&[&deepened, "step by step"]),
                "2^{depth} not deepened step by step:\n{log}"
            );
        }
    }

    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    let second = Server::mirror("127.0.0.3", &tmp.join("second"), mirror.addr, &key, &[]);
    let head = assert_same_heads(&[&quorum, &mirror, &second], seq, &key);
    assert_eq!(head.size, NAMES);
    for server in [&mirror, &second] {
        let status = server.status();
        assert_eq!(status.records, NAMES, "{}: {status}", server.addr);
        assert_eq!(status.seq, seq, "{}: {status}", server.addr);
    }
    // Every name answers the same on all three, and the updated ones with
    // their second serial, proven against the same tree.
    for i in (0..NAMES).step_by(7) {
        let name = format!("n{i}.tor");
        let at_quorum = quorum.client().lookup(&name);
        let Reply::Found {
            record: rec,
            attestation,
            head,
            proof,
            ..
        } = &at_quorum
        else {
            panic!("{name}: {at_quorum}");
        };
        let serial = if i % 5 == 0 { 2 } else { 1 };
        assert_eq!(rec.serial, serial, "{at_quorum}");
        let service = owner(50 + (i % 4) as u8);
        for server in [&quorum, &mirror, &second] {
            let (answered, got_proof) =
                assert_serves(server, &name, rec, attestation, &key, &onion_of(&service));
            assert_eq!(
                (answered.seq, answered.root, answered.size),
                (head.seq, head.root, head.size),
                "{name} on {}",
                server.addr
            );
            assert_eq!(&got_proof, proof, "{name} on {}", server.addr);
        }
    }
}
