//! Replication, end to end, with real `onions-server` processes: a Quorum on
//! 127.0.0.1, a mirror of it on 127.0.0.2 and a mirror of that mirror on
//! 127.0.0.3, over real sockets and real state directories.
//!
//! The story: an operator puts a record to the Quorum and gets an
//! attestation that verifies against the Quorum's printed key. The record
//! travels down the chain, and every server answers lookups of the name and
//! of its subdomains with the very same record and attestation, proven
//! against the head it answers with, which a client verifies as protocol.md
//! §9 and §10.7 demand; a name nobody registered gets an absence proof
//! against the same head. Every server of the chain stands on a head of
//! the same seq, root and size. An update (same key, higher serial)
//! replaces it everywhere. A mirror that starts late catches up with the
//! newest record of every name and nothing superseded, then the head. A
//! mirror told to trust the wrong key refuses everything, says why and
//! answers `no_head`, while the Quorum carries on. A late mirror of a
//! Quorum holding hundreds of records (some superseded) ends with the same
//! live set and the same head. A record that expires leaves the live set on
//! every server: once a head is signed after its expiry, lookups get an
//! absence proof, a mirror started afterwards keeps it out of its live set
//! too, `status` stops counting it, and another key may claim the name.
//! Finally the operator's own tool, `onions-hs`, claims a name, looks its
//! subdomain up on a mirror and verifies the claim file.

use onions::attest::Attestation;
use onions::head::SignedHead;
use onions::keys::{PublicKey, SigningKey};
use onions::lookup::{check_reply, LookupError, Policy, Resolution, DEFAULT_MAX_HEAD_AGE};
use onions::merkle::{reference_proof, reference_root, Leaf, LeafKey, Proof, EMPTY};
use onions::name::{LookupName, RegisteredName};
use onions::onion::OnionAddress;
use onions::record::Record;
use onions::verify::Verifier;
use onions::wire::{AuditState, Code, Id, Push, Reply, Request, ServerRole, UpstreamStatus};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use testkit::servers::{attested_seq, owner, print_key, record, wait_until, Client, Server};
use testkit::{assert_one_line_failure, run_hs, TempDir};

/// How long replication may take to reach a server.
const REPLICATE_LIMIT: Duration = Duration::from_secs(20);

/// A client's verifier trusting only `key` (Base64), with no work minimum.
fn verifier(key: &str) -> Verifier {
    Verifier {
        min_work: 0,
        trusted: vec![PublicKey::from_base64(key).expect("a Base64 Quorum key")],
        max_skew: None,
    }
}

/// A client's policy: [`verifier`] and the default oldest head.
fn policy(key: &str) -> Policy {
    Policy {
        verifier: verifier(key),
        max_head_age: DEFAULT_MAX_HEAD_AGE,
        witnesses: Default::default(),
    }
}

/// The v3 address of a service key.
fn onion_of(key: &SigningKey) -> OnionAddress {
    OnionAddress::from_key(key.public())
}

/// The leaf key of the registered name of `name`.
fn leaf_key(name: &str) -> LeafKey {
    LeafKey::of(&LookupName::parse(name).unwrap().registered())
}

/// The attestation of an `accepted` reply.
fn accepted(reply: &Reply) -> Attestation {
    match reply {
        Reply::Accepted { attestation, .. } => attestation.clone(),
        other => panic!("expected accepted, got {other}"),
    }
}

/// Checks that `head` is signed by the Quorum key `key`.
fn assert_signed_by(head: &SignedHead, key: &str, what: &str) {
    head.check_trusted(&verifier(key).trusted)
        .unwrap_or_else(|e| panic!("{what}: the head is not the Quorum's: {e}"));
}

/// Looks `name` up on `server` and checks that the answer is `found` with
/// exactly `record` and `attestation`, that its presence proof verifies
/// against the head it carries, which the Quorum key `key` signed, that the
/// whole answer verifies for a client trusting `key`, and that the name
/// points at `target`. Returns the head and the proof.
fn assert_serves(
    server: &Server,
    name: &str,
    record: &Record,
    attestation: &Attestation,
    key: &str,
    target: &OnionAddress,
) -> (SignedHead, Proof) {
    let at = server.addr;
    let reply = server.client().lookup(name);
    let Reply::Found {
        id,
        record: got,
        attestation: got_attestation,
        head,
        proof,
        ..
    } = reply.clone()
    else {
        panic!("lookup {name} on {at}: expected found, got {reply}");
    };
    assert_eq!(id, Id::Number(2), "lookup {name} on {at}: {reply}");
    assert_eq!(
        &got, record,
        "lookup {name} on {at} answered another record"
    );
    assert_eq!(
        &got_attestation, attestation,
        "lookup {name} on {at} answered another attestation"
    );
    assert_signed_by(&head, key, &format!("lookup {name} on {at}"));
    assert!(
        attestation.seq <= head.seq,
        "lookup {name} on {at}: attested at {} after its head {}",
        attestation.seq,
        head.seq
    );
    proof
        .verify_presence(&leaf_key(name), &record.id(), attestation.seq, &head.root)
        .unwrap_or_else(|e| panic!("lookup {name} on {at}: presence proof: {e}"));
    let lookup_name = LookupName::parse(name).unwrap();
    let resolution = check_reply(reply, &lookup_name, &policy(key), onions::clock::now())
        .unwrap_or_else(|e| panic!("lookup {name} on {at} does not verify: {e}"));
    let Resolution::Found(answer) = resolution else {
        panic!("lookup {name} on {at}: not a live answer: {resolution:?}");
    };
    assert_eq!(
        &answer.target, target,
        "lookup {name} on {at} points elsewhere"
    );
    assert_eq!(answer.record, *record);
    assert_eq!(answer.head, head);
    (head, proof)
}

/// Looks `name` up on `server` and checks that the answer is `not_found`
/// with an absence proof that verifies against the head it carries, which
/// the Quorum key `key` signed, and that a client trusting `key` takes it
/// for "not registered". Returns the head and the proof.
fn assert_absent(server: &Server, name: &str, key: &str) -> (SignedHead, Proof) {
    let at = server.addr;
    let reply = server.client().lookup(name);
    let Reply::NotFound {
        id, head, proof, ..
    } = reply.clone()
    else {
        panic!("lookup {name} on {at}: expected not_found, got {reply}");
    };
    assert_eq!(id, Id::Number(2), "lookup {name} on {at}: {reply}");
    assert_signed_by(&head, key, &format!("lookup {name} on {at}"));
    proof
        .verify_absence(&leaf_key(name), &head.root)
        .unwrap_or_else(|e| panic!("lookup {name} on {at}: absence proof: {e}"));
    let lookup_name = LookupName::parse(name).unwrap();
    let resolution = check_reply(reply, &lookup_name, &policy(key), onions::clock::now())
        .unwrap_or_else(|e| panic!("lookup {name} on {at} does not verify: {e}"));
    assert!(
        matches!(&resolution, Resolution::Absent(h) if *h == head),
        "lookup {name} on {at}: {resolution:?}"
    );
    (head, proof)
}

/// The live set's leaves: each (record, seq).
fn leaves(live: &[(&Record, u64)]) -> Vec<Leaf> {
    live.iter()
        .map(|(r, seq)| Leaf {
            key: LeafKey::of(&r.name),
            record: r.id(),
            seq: *seq,
        })
        .collect()
}

/// Checks that `head` is the head of exactly the live set `live`: its size,
/// and its root recomputed from the definition (protocol.md §10.2).
fn assert_head_of(head: &SignedHead, live: &[Leaf], what: &str) {
    assert_eq!(head.size, live.len() as u64, "{what}: size of {head:?}");
    assert_eq!(
        head.root,
        reference_root(live),
        "{what}: the head's root is not the live set's"
    );
}

/// Checks that `proof` is the one proof (§10.3) of `name` over `live`.
fn assert_the_proof(proof: &Proof, name: &str, live: &[Leaf], what: &str) {
    assert_eq!(
        *proof,
        reference_proof(live, &leaf_key(name)),
        "{what}: not the one proof of {name}"
    );
}

/// Waits until every server answers against a head of exactly `seq`, and
/// checks that those heads, signed by `key`, have one root and one size.
/// Returns the first server's.
fn assert_same_heads(servers: &[&Server], seq: u64, key: &str) -> SignedHead {
    let heads: Vec<(SocketAddr, SignedHead)> = servers
        .iter()
        .map(|s| (s.addr, s.wait_head(seq, REPLICATE_LIMIT)))
        .collect();
    let (_, first) = &heads[0];
    for (at, head) in &heads {
        assert_signed_by(head, key, &format!("current head of {at}"));
        assert_eq!(head.seq, seq, "{at}: current head {head:?}");
        assert_eq!(
            (head.root, head.size),
            (first.root, first.size),
            "{at}: current head differs from {}'s: {heads:?}",
            servers[0].addr
        );
    }
    first.clone()
}

/// Checks every field protocol §8 and §10.6 require of a status reply:
/// `seq` is the highest seq applied; the newest head is at it and signed by
/// `key`; a mirror's audit has matched a head at it and raised no alarm.
fn assert_status(
    server: &Server,
    role: ServerRole,
    seq: u64,
    records: u64,
    subscribers: u64,
    key: &str,
    upstream: Option<SocketAddr>,
) {
    let status = server.status();
    let at = server.addr;
    assert_eq!(status.role, role, "{at}: {status}");
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"), "{at}: {status}");
    assert_eq!(status.protocol, 2, "{at}: {status}");
    assert_eq!(status.seq, seq, "{at}: {status}");
    assert_eq!(status.records, records, "{at}: {status}");
    assert_eq!(status.subscribers, subscribers, "{at}: {status}");
    assert_eq!(status.min_work, 0, "{at}: {status}");
    assert_eq!(status.quorum_keys, vec![key.to_owned()], "{at}: {status}");
    let head = status
        .head
        .as_ref()
        .unwrap_or_else(|| panic!("{at}: no head: {status}"));
    assert_eq!(head.seq, seq, "{at}: {status}");
    assert_signed_by(head, key, &format!("status of {at}"));
    match upstream {
        Some(addr) => {
            assert_eq!(
                status.upstream,
                Some(UpstreamStatus {
                    addr: addr.to_string(),
                    connected: true,
                    alarm: None,
                    lag_records: 0,
                    lag_secs: 0,
                }),
                "{at}: {status}"
            );
            let audit = status
                .audit
                .as_ref()
                .unwrap_or_else(|| panic!("{at}: a mirror reports its audit: {status}"));
            assert_eq!(audit.state, AuditState::Ok, "{at}: {status}");
            assert_eq!(
                audit.matched.as_ref().map(|h| h.seq),
                Some(seq),
                "{at}: {status}"
            );
            assert_eq!(audit.mismatches, 0, "{at}: {status}");
            assert!(audit.last_mismatch.is_none(), "{at}: {status}");
            assert!(audit.evidence.is_none(), "{at}: {status}");
        }
        None => {
            assert!(
                status.upstream.is_none(),
                "{at}: the Quorum has no upstream: {status}"
            );
            assert!(
                status.audit.is_none(),
                "{at}: the Quorum does not audit itself: {status}"
            );
        }
    }
}

/// Waits until `server` reports `count` subscribers.
fn wait_subscribers(server: &Server, count: u64) {
    wait_until(
        &format!("{} to report {count} subscribers", server.addr),
        REPLICATE_LIMIT,
        || server.status().subscribers == count,
    );
}

/// Waits until a mirror's upstream session is up.
fn wait_connected(mirror: &Server) {
    wait_until(
        &format!("mirror {} to connect upstream", mirror.addr),
        REPLICATE_LIMIT,
        || mirror.status().upstream.is_some_and(|u| u.connected),
    );
}

/// A name nobody registers in these tests.
const UNREGISTERED: &str = "nobody.tor";

#[test]
fn a_put_reaches_a_mirror_and_a_mirror_of_the_mirror() {
    let tmp = TempDir::new("replication-chain");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    let second = Server::mirror("127.0.0.3", &tmp.join("second"), mirror.addr, &key, &[]);
    let chain = [&quorum, &mirror, &second];
    wait_connected(&mirror);
    wait_connected(&second);
    wait_subscribers(&quorum, 1);
    wait_subscribers(&mirror, 1);

    // Before any put, every server stands on the Quorum's first head: seq
    // 0, the empty tree; every name is proven absent.
    let empty = assert_same_heads(&chain, 0, &key);
    assert_head_of(&empty, &[], "the first head");
    assert_eq!(empty.root, EMPTY);
    for server in chain {
        for name in ["chain.tor", UNREGISTERED] {
            let (head, proof) = assert_absent(server, name, &key);
            assert_eq!((head.seq, head.root, head.size), (0, EMPTY, 0), "{name}");
            assert_the_proof(&proof, name, &[], &format!("{name} on {}", server.addr));
        }
    }
    assert_status(&quorum, ServerRole::Quorum, 0, 0, 1, &key, None);
    assert_status(
        &mirror,
        ServerRole::Mirror,
        0,
        0,
        1,
        &key,
        Some(quorum.addr),
    );
    assert_status(
        &second,
        ServerRole::Mirror,
        0,
        0,
        0,
        &key,
        Some(mirror.addr),
    );

    // The claim: the owner's key, two subdomains (one of two labels).
    let (service, www, deep) = (owner(1), owner(2), owner(3));
    let first = record(
        &service,
        "chain.tor",
        1,
        0,
        &[("www", &www), ("a.b", &deep)],
    );
    let reply = quorum.client().put(&first);
    assert!(
        matches!(&reply, Reply::Accepted { id, .. } if *id == Id::Number(1)),
        "{reply}"
    );
    assert_eq!(attested_seq(&reply, &first, &key), 1);
    let attestation = accepted(&reply);
    assert_eq!(attestation.quorum.to_base64(), key);
    verifier(&key)
        .check_answer(&first, &attestation, onions::clock::now())
        .expect("the Quorum's attestation verifies with its printed key");

    // Every server answers against a head at seq 1 of the same one-entry
    // tree, with the one proof of each name.
    let live = leaves(&[(&first, 1)]);
    let head = assert_same_heads(&chain, 1, &key);
    assert_head_of(&head, &live, "the head after the first put");
    for server in chain {
        let a = &attestation;
        let at = server.addr;
        for (name, target) in [
            ("chain.tor", onion_of(&service)),
            ("www.chain.tor", onion_of(&www)),
            ("a.b.chain.tor", onion_of(&deep)),
        ] {
            let (answered, proof) = assert_serves(server, name, &first, a, &key, &target);
            assert_eq!(
                (answered.seq, answered.root, answered.size),
                (head.seq, head.root, head.size),
                "{name} on {at}"
            );
            assert_the_proof(&proof, name, &live, &format!("{name} on {at}"));
        }
        let (answered, proof) = assert_absent(server, UNREGISTERED, &key);
        assert_eq!((answered.seq, answered.root), (1, head.root), "{at}");
        assert_the_proof(&proof, UNREGISTERED, &live, &format!("absence on {at}"));
    }
    assert_status(&quorum, ServerRole::Quorum, 1, 1, 1, &key, None);
    assert_status(
        &mirror,
        ServerRole::Mirror,
        1,
        1,
        1,
        &key,
        Some(quorum.addr),
    );
    assert_status(
        &second,
        ServerRole::Mirror,
        1,
        1,
        0,
        &key,
        Some(mirror.addr),
    );

    // The same answers do not verify for a client trusting another key.
    let stranger = SigningKey::from_seed(&[99; 32]).public().to_base64();
    for name in ["chain.tor", UNREGISTERED] {
        let reply = second.client().lookup(name);
        let refused = check_reply(
            reply,
            &LookupName::parse(name).unwrap(),
            &policy(&stranger),
            onions::clock::now(),
        );
        assert!(
            matches!(refused, Err(LookupError::Forged(_))),
            "{name}: an answer with a head of an untrusted key must be refused: {refused:?}"
        );
    }

    // An update by the same key with a higher serial replaces it everywhere.
    let newer_www = owner(4);
    let update = record(&service, "chain.tor", 2, 0, &[("www", &newer_www)]);
    let reply = quorum.client().put(&update);
    assert_eq!(attested_seq(&reply, &update, &key), 2);
    let attestation = accepted(&reply);
    let live = leaves(&[(&update, 2)]);
    let head = assert_same_heads(&chain, 2, &key);
    assert_head_of(&head, &live, "the head after the update");
    for server in chain {
        let a = &attestation;
        let at = server.addr;
        for (name, target) in [
            ("chain.tor", onion_of(&service)),
            ("www.chain.tor", onion_of(&newer_www)),
        ] {
            let (answered, proof) = assert_serves(server, name, &update, a, &key, &target);
            assert_eq!(
                (answered.seq, answered.root, answered.size),
                (head.seq, head.root, head.size),
                "{name} on {at}"
            );
            assert_the_proof(&proof, name, &live, &format!("{name} on {at}"));
        }
        // The dropped subdomain: the live record no longer has it.
        let reply = server.client().lookup("a.b.chain.tor");
        assert!(
            matches!(&reply, Reply::Found { record, .. } if record.serial == 2),
            "{at}: {reply}"
        );
        let gone = check_reply(
            reply,
            &LookupName::parse("a.b.chain.tor").unwrap(),
            &policy(&key),
            onions::clock::now(),
        );
        assert!(
            matches!(gone, Err(LookupError::NoSubdomain(_))),
            "{at}: a.b.chain.tor should be gone after the update: {gone:?}"
        );
        let (answered, proof) = assert_absent(server, UNREGISTERED, &key);
        assert_eq!((answered.seq, answered.root), (2, head.root), "{at}");
        assert_the_proof(&proof, UNREGISTERED, &live, &format!("absence on {at}"));
    }
    // One live record per name: the update replaced the first.
    assert_status(&quorum, ServerRole::Quorum, 2, 1, 1, &key, None);
    assert_status(
        &mirror,
        ServerRole::Mirror,
        2,
        1,
        1,
        &key,
        Some(quorum.addr),
    );
    assert_status(
        &second,
        ServerRole::Mirror,
        2,
        1,
        0,
        &key,
        Some(mirror.addr),
    );
}

/// The next push on a subscriber connection; a refusal or a line that is
/// not a push fails the test.
fn next_push(client: &mut Client) -> Option<Push> {
    let line = client.read_line()?;
    match Push::parse(&line) {
        Ok(Ok(push)) => Some(push),
        Ok(Err(refusal)) => panic!("the subscription was refused: {refusal}"),
        Err(e) => panic!("a bad push {:?}: {e}", String::from_utf8_lossy(&line)),
    }
}

/// Reads pushes from a subscriber connection until a head with `seq` or
/// more arrives; returns the records read, in order, as (seq, record,
/// attestation), and that head. Checks the order of protocol.md §10.6:
/// records ascend, all above `after`, and a head comes after every record
/// it covers and before any it does not.
fn pushes_until_head(
    client: &mut Client,
    after: u64,
    seq: u64,
) -> (Vec<(u64, Record, Attestation)>, SignedHead) {
    let mut records: Vec<(u64, Record, Attestation)> = Vec::new();
    let mut last = after;
    let mut covered = after;
    loop {
        let push = next_push(client).unwrap_or_else(|| {
            panic!("the subscription closed before a head at seq {seq}: {records:?}")
        });
        match push {
            Push::Heartbeat { .. } | Push::Cosignatures { .. } => {}
            Push::Record {
                seq: this,
                record,
                attestation,
            } => {
                assert!(
                    this > last && this > covered,
                    "record seq {this} after seq {last} and a head at {covered}"
                );
                last = this;
                records.push((this, record, attestation));
            }
            Push::Head(head) => {
                assert!(
                    head.seq >= last,
                    "a head at seq {} came after record seq {last}",
                    head.seq
                );
                covered = head.seq;
                if head.seq >= seq {
                    return (records, head);
                }
            }
        }
    }
}

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
fn a_mirror_trusting_the_wrong_key_applies_nothing() {
    let tmp = TempDir::new("replication-wrong-key");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let first = record(&owner(21), "trusted.tor", 1, 0, &[]);
    let reply = quorum.client().put(&first);
    assert_eq!(attested_seq(&reply, &first, &key), 1);

    let wrong = SigningKey::from_seed(&[22; 32]).public().to_base64();
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &wrong, &[]);
    wait_until(
        "the mirror to log why it refuses the Quorum's records",
        REPLICATE_LIMIT,
        || {
            let log = mirror.log();
            log.contains("not a trusted Quorum key") && log.contains(&key)
        },
    );
    // Nothing applied, no head taken, so nothing to answer with.
    let assert_empty = |when: &str| {
        let status = mirror.status();
        assert_eq!(status.seq, 0, "{when}: {status}");
        assert_eq!(status.records, 0, "{when}: {status}");
        assert_eq!(status.quorum_keys, vec![wrong.clone()], "{when}: {status}");
        assert!(status.head.is_none(), "{when}: {status}");
        let audit = status.audit.as_ref().expect("a mirror reports its audit");
        assert_eq!(audit.state, AuditState::None, "{when}: {status}");
        assert!(audit.matched.is_none(), "{when}: {status}");
        assert_eq!(audit.checked, 0, "{when}: {status}");
        let lookup = mirror.client().lookup("trusted.tor");
        assert!(
            matches!(&lookup, Reply::Error(e) if e.code == Code::NoHead),
            "{when}: {lookup}"
        );
    };
    assert_empty("at first");

    // The Quorum carries on: it accepts and answers as before.
    let second = record(&owner(23), "carry-on.tor", 1, 0, &[]);
    let reply = quorum.client().put(&second);
    assert_eq!(attested_seq(&reply, &second, &key), 2);
    assert_serves(
        &quorum,
        "carry-on.tor",
        &second,
        &accepted(&reply),
        &key,
        &onion_of(&owner(23)),
    );
    // And the mirror still has nothing, now that more was offered.
    wait_until(
        "the mirror to refuse again after reconnecting",
        REPLICATE_LIMIT,
        || mirror.log().matches("not a trusted Quorum key").count() >= 2,
    );
    assert_empty("after reconnecting");
}

/// The record and attestation of a claim file, with the attestation
/// checked against the record and the Quorum key `key`.
fn claim_file(path: &std::path::Path, key: &str) -> (Record, Attestation) {
    let document: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let claimed = Record::from_value(&document["record"]).expect("the claim file's record");
    let attestation =
        Attestation::from_value(&document["attestation"]).expect("the claim file's attestation");
    assert_eq!(attestation.quorum.to_base64(), key);
    assert_eq!(attestation.record, claimed.id());
    assert!(attestation.signature_holds());
    (claimed, attestation)
}

#[test]
fn onions_hs_claims_looks_up_and_verifies() {
    onions::keys::init().unwrap();
    let tmp = TempDir::new("replication-onions-hs");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);

    let service = SigningKey::from_seed(&[31; 32]);
    let key_file = tmp.join("hs_ed25519_secret_key");
    std::fs::write(&key_file, service.to_tor_file_bytes()).unwrap();
    let www = onion_of(&owner(32));
    let out = tmp.join("claim.json");
    let claim = |sub: &OnionAddress| {
        run_hs([
            "claim".to_owned(),
            "hs-e2e.tor".to_owned(),
            "--key".to_owned(),
            key_file.display().to_string(),
            "--sub".to_owned(),
            format!("www={sub}"),
            "--work".to_owned(),
            "2".to_owned(),
            "--quorum".to_owned(),
            quorum.addr.to_string(),
            "--direct".to_owned(),
            "--state".to_owned(),
            tmp.join("hs.state").display().to_string(),
            "--out".to_owned(),
            out.display().to_string(),
        ])
    };
    let (status, stdout, stderr) = claim(&www);
    assert!(
        status.success(),
        "claim failed ({status})\nstdout: {stdout}\nstderr: {stderr}\nquorum log:\n{}",
        quorum.log()
    );
    let (claimed, attestation) = claim_file(&out, &key);
    assert_eq!(claimed.name.as_str(), "hs-e2e.tor");
    assert_eq!(claimed.onion, onion_of(&service));
    assert_eq!((claimed.serial, claimed.work), (1, 2));
    assert_eq!(attestation.seq, 1);

    // The Quorum and the mirror serve exactly what the claim file holds.
    assert_same_heads(&[&quorum, &mirror], 1, &key);
    for server in [&quorum, &mirror] {
        assert_serves(server, "www.hs-e2e.tor", &claimed, &attestation, &key, &www);
    }
    let server = mirror.addr.to_string();
    let lookup = |name: &str| {
        run_hs([
            "lookup",
            name,
            "--server",
            &server,
            "--direct",
            "--quorum-key",
            &key,
        ])
    };
    let (status, stdout, stderr) = lookup("www.hs-e2e.tor");
    assert!(status.success(), "lookup failed: {stderr}");
    assert_eq!(stdout, format!("www.hs-e2e.tor -> {www}\n"));
    let (status, stdout, stderr) = lookup("hs-e2e.tor");
    assert!(status.success(), "lookup failed: {stderr}");
    assert_eq!(stdout, format!("hs-e2e.tor -> {}\n", onion_of(&service)));

    let file = out.display().to_string();
    let (status, stdout, stderr) = run_hs(["verify", &file, "--quorum-key", &key]);
    assert!(status.success(), "verify failed: {stderr}");
    assert!(
        stdout.starts_with("valid, attested at seq 1"),
        "verify said {stdout:?}"
    );
    let stranger = SigningKey::from_seed(&[33; 32]).public().to_base64();
    let refused = run_hs(["verify", &file, "--quorum-key", &stranger]);
    assert_one_line_failure(
        "verify against an untrusted key",
        &refused,
        &["claim.json", "not a trusted Quorum key"],
    );

    // Claiming again updates: the serial book gives serial 2, and the
    // mirror's answer for the subdomain follows.
    let moved = onion_of(&owner(34));
    let (status, _, stderr) = claim(&moved);
    assert!(status.success(), "second claim failed: {stderr}");
    let (updated, attestation) = claim_file(&out, &key);
    assert_eq!(updated.serial, 2);
    assert_eq!(attestation.seq, 2);
    mirror.wait_head(2, REPLICATE_LIMIT);
    let (status, stdout, stderr) = lookup("WWW.hs-e2e.tor");
    assert!(status.success(), "lookup failed: {stderr}");
    assert_eq!(stdout, format!("www.hs-e2e.tor -> {moved}\n"));
}

/// A record for `name` by `key` that expires `secs` seconds from now.
fn short_lived(key: &SigningKey, name: &str, secs: u64) -> Record {
    let issued = onions::clock::now();
    let claim = onions::record::Claim {
        name: RegisteredName::parse(name).unwrap(),
        subdomains: Default::default(),
        contact: String::new(),
        serial: 1,
        issued,
        expires: issued + secs,
        work: 0,
    };
    onions::operator::finish_record(claim, key, 1, Duration::from_millis(50), &mut |_| {}).unwrap()
}

/// Waits until `server` answers against a head covering `seq` signed at or
/// after `time`, and returns it.
fn wait_head_after(server: &Server, seq: u64, time: u64) -> SignedHead {
    let mut found = None;
    wait_until(
        &format!(
            "{} to answer against a head at seq {seq} from time {time}",
            server.addr
        ),
        REPLICATE_LIMIT,
        || {
            found = server
                .current_head()
                .filter(|h| h.seq >= seq && h.time >= time);
            found.is_some()
        },
    );
    found.unwrap()
}

#[test]
fn an_expired_record_leaves_the_live_set_everywhere() {
    let tmp = TempDir::new("replication-expiry");
    // A head every second, so that one is signed soon after the expiry:
    // answers are given as of a head, and a record leaves the live set at
    // the first head whose time is past its expiry (protocol.md §10.1).
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--head-interval", "1"]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    let brief = short_lived(&owner(41), "brief.tor", 3);
    let lasting = record(&owner(42), "lasting.tor", 1, 0, &[]);
    assert_eq!(attested_seq(&quorum.client().put(&brief), &brief, &key), 1);
    let reply = quorum.client().put(&lasting);
    assert_eq!(attested_seq(&reply, &lasting, &key), 2);
    let lasting_attestation = accepted(&reply);
    mirror.wait_head(2, REPLICATE_LIMIT);

    // Once it expires, no server answers with it: each proves it absent
    // against a head signed after the expiry, where only lasting.tor lives.
    wait_until("brief.tor to expire", Duration::from_secs(10), || {
        onions::clock::now() > brief.expires
    });
    let live = leaves(&[(&lasting, 2)]);
    let check_expired = |server: &Server| {
        let at = server.addr;
        let current = wait_head_after(server, 2, brief.expires);
        assert_head_of(&current, &live, &format!("{at} after the expiry"));
        let (head, proof) = assert_absent(server, "brief.tor", &key);
        assert!(head.time >= brief.expires, "{at}: {head:?}");
        assert_the_proof(&proof, "brief.tor", &live, &format!("brief.tor on {at}"));
        assert_serves(
            server,
            "lasting.tor",
            &lasting,
            &lasting_attestation,
            &key,
            &onion_of(&owner(42)),
        );
    };
    check_expired(&quorum);
    check_expired(&mirror);
    // A mirror that starts now is sent the expired record too (it keeps it
    // in case it supersedes one, protocol.md §10.8), yet its live set, and
    // so its head, holds lasting.tor only.
    let late = Server::mirror("127.0.0.3", &tmp.join("late"), quorum.addr, &key, &[]);
    late.wait_head(2, REPLICATE_LIMIT);
    check_expired(&late);
    // Both the Quorum and the late mirror still keep it and send it on in
    // a catch-up (retention, protocol.md §10.6), before the head that
    // leaves it out.
    for server in [&quorum, &late] {
        let mut sub = server.client();
        let subscribed = sub.request(&Request::Subscribe {
            id: Id::Number(9),
            from: 1,
        });
        assert!(
            matches!(subscribed, Reply::Subscribed { seq: 2, .. }),
            "{}: {subscribed}",
            server.addr
        );
        let (pushed, head) = pushes_until_head(&mut sub, 0, 2);
        let pushed: Vec<(u64, &Record)> = pushed.iter().map(|(s, r, _)| (*s, r)).collect();
        assert_eq!(
            pushed,
            vec![(1, &brief), (2, &lasting)],
            "{}: catch-up",
            server.addr
        );
        assert!(head.time >= brief.expires, "{}: {head:?}", server.addr);
        assert_head_of(&head, &live, &format!("catch-up head of {}", server.addr));
    }
    // `records` is the live count (protocol §8), and expired records leave
    // the live set (§6): one live record, on every server alike.
    let counts: Vec<(SocketAddr, u64)> = [&quorum, &mirror, &late]
        .iter()
        .map(|s| (s.addr, s.status().records))
        .collect();

    // The name is free again: another key may claim it, everywhere.
    let rival = record(&owner(43), "brief.tor", 1, 0, &[]);
    let reply = quorum.client().put(&rival);
    assert_eq!(attested_seq(&reply, &rival, &key), 3);
    let rival_attestation = accepted(&reply);
    mirror.wait_head(3, REPLICATE_LIMIT);
    late.wait_head(3, REPLICATE_LIMIT);
    let live = leaves(&[(&lasting, 2), (&rival, 3)]);
    for server in [&quorum, &mirror, &late] {
        let (head, proof) = assert_serves(
            server,
            "brief.tor",
            &rival,
            &rival_attestation,
            &key,
            &onion_of(&owner(43)),
        );
        assert_head_of(&head, &live, &format!("{} after the rival", server.addr));
        assert_the_proof(&proof, "brief.tor", &live, "rival");
    }

    assert!(
        counts.iter().all(|(_, records)| *records == 1),
        "status records must count only live records once brief.tor expired \
         (Quorum, mirror, late mirror): {counts:?}"
    );
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
