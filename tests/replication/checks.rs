//! What the tests here check of every server of a chain: the answers to
//! lookups (record, attestation, head and proof, as a client verifies
//! them), heads over exactly a live set, status, and the order of a
//! subscription's pushes.

use crate::REPLICATE_LIMIT;
use onions::attest::Attestation;
use onions::head::SignedHead;
use onions::lookup::{check_reply, Resolution};
use onions::merkle::{reference_proof, reference_root, Leaf, LeafKey, Proof};
use onions::name::LookupName;
use onions::onion::OnionAddress;
use onions::record::Record;
use onions::wire::{AuditState, Id, Push, Reply, ServerRole, UpstreamStatus};
use std::net::SocketAddr;
use testkit::checks::{leaf_key, policy, verifier};
use testkit::servers::{wait_until, Client, Server};

/// Checks that `head` is signed by the Quorum key `key`.
pub(crate) fn assert_signed_by(head: &SignedHead, key: &str, what: &str) {
    head.check_trusted(&verifier(key).trusted)
        .unwrap_or_else(|e| panic!("{what}: the head is not the Quorum's: {e}"));
}

/// Looks `name` up on `server` and checks that the answer is `found` with
/// exactly `record` and `attestation`, that its presence proof verifies
/// against the head it carries, which the Quorum key `key` signed, that the
/// whole answer verifies for a client trusting `key`, and that the name
/// points at `target`. Returns the head and the proof.
pub(crate) fn assert_serves(
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
pub(crate) fn assert_absent(server: &Server, name: &str, key: &str) -> (SignedHead, Proof) {
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
pub(crate) fn leaves(live: &[(&Record, u64)]) -> Vec<Leaf> {
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
pub(crate) fn assert_head_of(head: &SignedHead, live: &[Leaf], what: &str) {
    assert_eq!(head.size, live.len() as u64, "{what}: size of {head:?}");
    assert_eq!(
        head.root,
        reference_root(live),
        "{what}: the head's root is not the live set's"
    );
}

/// Checks that `proof` is the one proof (§10.3) of `name` over `live`.
pub(crate) fn assert_the_proof(proof: &Proof, name: &str, live: &[Leaf], what: &str) {
    assert_eq!(
        *proof,
        reference_proof(live, &leaf_key(name)),
        "{what}: not the one proof of {name}"
    );
}

/// Waits until every server answers against a head of exactly `seq`, and
/// checks that those heads, signed by `key`, have one root and one size.
/// Returns the first server's.
pub(crate) fn assert_same_heads(servers: &[&Server], seq: u64, key: &str) -> SignedHead {
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
pub(crate) fn assert_status(
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
pub(crate) fn wait_subscribers(server: &Server, count: u64) {
    wait_until(
        &format!("{} to report {count} subscribers", server.addr),
        REPLICATE_LIMIT,
        || server.status().subscribers == count,
    );
}

/// The next push on a subscriber connection; a refusal or a line that is
/// not a push fails the test.
pub(crate) fn next_push(client: &mut Client) -> Option<Push> {
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
pub(crate) fn pushes_until_head(
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
