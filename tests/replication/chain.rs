//! A put reaches a mirror and a mirror of that mirror: the first head of
//! an empty tree, the claim answered alike everywhere with the one proof
//! of each name, refused by a client trusting another key, and an update
//! that replaces it everywhere.

use crate::checks::{
    assert_absent, assert_head_of, assert_same_heads, assert_serves, assert_status,
    assert_the_proof, leaves, wait_subscribers,
};
use crate::{REPLICATE_LIMIT, UNREGISTERED};
use onions::keys::SigningKey;
use onions::lookup::{check_reply, LookupError};
use onions::merkle::EMPTY;
use onions::name::LookupName;
use onions::wire::{Id, Reply, ServerRole};
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
