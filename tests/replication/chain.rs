//! A put reaches a mirror and a mirror of that mirror: the first head of
//! an empty tree, the claim answered alike everywhere with the one proof
//! of each name, refused by a client trusting another key, and an update
//! that replaces it everywhere.

use crate::checks::{
    assert_absent, assert_head_of, assert_same_heads, assert_serves, assert_status,
    assert_the_proof, leaves, wait_subscribers,
};
use crate::{REPLICATE_LIMIT, UNREGISTERED};
use onions::attest::Attestation;
use onions::head::SignedHead;
use onions::keys::SigningKey;
use onions::lookup::{check_reply, LookupError};
use onions::merkle::{Leaf, Proof, EMPTY};
use onions::name::LookupName;
use onions::onion::OnionAddress;
use onions::record::Record;
use onions::wire::{Id, Reply, ServerRole};
use std::net::SocketAddr;
use testkit::checks::{accepted, policy, verifier};
use testkit::servers::{attested_seq, onion_of, owner, print_key, record, Server};
use testkit::TempDir;

#[test]
fn a_put_reaches_a_mirror_and_a_mirror_of_the_mirror() {
    let tmp = TempDir::new("replication-chain");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    let second = Server::mirror("127.0.0.3", &tmp.join("second"), mirror.addr, &key, &[]);
    let chain = [&quorum, &mirror, &second];
    mirror.wait_upstream_up(REPLICATE_LIMIT);
    second.wait_upstream_up(REPLICATE_LIMIT);
    wait_subscribers(&quorum, 1);
    wait_subscribers(&mirror, 1);

    // Before any put, every server stands on the Quorum's first head: seq
    // 0, the empty tree; every name is proven absent.
    let empty = assert_same_heads(&chain, 0, &key);
    assert_head_of(&empty, &[], "the first head");
    assert_eq!(empty.root, EMPTY);
    for server in chain {
        for name in ["chain.tor", UNREGISTERED] {
            let answer = assert_absent(server, name, &key);
            assert_against(server.addr, name, answer, &empty, &[]);
        }
    }
    assert_chain_status(&chain, 0, 0, &key);

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
    let names = [
        ("chain.tor", onion_of(&service)),
        ("www.chain.tor", onion_of(&www)),
        ("a.b.chain.tor", onion_of(&deep)),
    ];
    let tree = (&head, live.as_slice());
    assert_chain_answers(&chain, &names, (&first, &attestation), &key, tree);
    assert_chain_status(&chain, 1, 1, &key);

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
    let names = [
        ("chain.tor", onion_of(&service)),
        ("www.chain.tor", onion_of(&newer_www)),
    ];
    let tree = (&head, live.as_slice());
    assert_chain_answers(&chain, &names, (&update, &attestation), &key, tree);
    // The dropped subdomain: the live record no longer has it.
    for server in chain {
        let at = server.addr;
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
    }
    // One live record per name: the update replaced the first.
    assert_chain_status(&chain, 2, 1, &key);
}

/// Checks the status of each server of `chain` (the Quorum, its mirror and
/// the mirror's mirror) at `seq` with `records` live records: every server
/// but the last has one subscriber, and each mirror follows the server
/// before it.
fn assert_chain_status(chain: &[&Server; 3], seq: u64, records: u64, key: &str) {
    let [quorum, mirror, second] = *chain;
    assert_status(quorum, ServerRole::Quorum, seq, records, 1, key, None);
    let upstream = Some(quorum.addr);
    assert_status(mirror, ServerRole::Mirror, seq, records, 1, key, upstream);
    let upstream = Some(mirror.addr);
    assert_status(second, ServerRole::Mirror, seq, records, 0, key, upstream);
}

/// Checks that every server of `chain` answers each (name, target) of
/// `names` with `put` (the record and its attestation) and proves
/// [`UNREGISTERED`] absent, all against the head of `tree` and with the one
/// proof of each name over its live set.
fn assert_chain_answers(
    chain: &[&Server],
    names: &[(&str, OnionAddress)],
    (record, attestation): (&Record, &Attestation),
    key: &str,
    (head, live): (&SignedHead, &[Leaf]),
) {
    for server in chain {
        for (name, target) in names {
            let answer = assert_serves(server, name, record, attestation, key, target);
            assert_against(server.addr, name, answer, head, live);
        }
        let answer = assert_absent(server, UNREGISTERED, key);
        assert_against(server.addr, UNREGISTERED, answer, head, live);
    }
}

/// Checks that `answer` (a head and a proof), about `name` from the server
/// at `at`, came against `head` with the one proof of `name` over `live`.
fn assert_against(
    at: SocketAddr,
    name: &str,
    (answered, proof): (SignedHead, Proof),
    head: &SignedHead,
    live: &[Leaf],
) {
    assert_eq!(
        (answered.seq, answered.root, answered.size),
        (head.seq, head.root, head.size),
        "{name} on {at}"
    );
    assert_the_proof(&proof, name, live, &format!("{name} on {at}"));
}
