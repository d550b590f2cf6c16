//! What tests check of a server's answers, the same in every test file:
//! the client's policy trusting one Quorum key, the leaf key of a name, the
//! attestation of an `accepted` reply, a head signed by the Quorum, and
//! `found` and `not_found` answers with proofs that hold.

use crate::servers::attested_seq;
use onions::attest::Attestation;
use onions::head::SignedHead;
use onions::keys::PublicKey;
use onions::lookup::{Policy, DEFAULT_MAX_HEAD_AGE};
use onions::merkle::LeafKey;
use onions::name::LookupName;
use onions::record::Record;
use onions::verify::Verifier;
use onions::wire::Reply;

/// A client's verifier trusting only `key` (Base64), with no work minimum.
pub fn verifier(key: &str) -> Verifier {
    Verifier {
        min_work: 0,
        trusted: vec![PublicKey::from_base64(key).expect("a Base64 Quorum key")],
        max_skew: None,
    }
}

/// A client's policy: [`verifier`] and the default oldest head.
pub fn policy(key: &str) -> Policy {
    Policy {
        verifier: verifier(key),
        max_head_age: DEFAULT_MAX_HEAD_AGE,
        witnesses: Default::default(),
    }
}

/// The leaf key of the registered name of the lookup name `name`.
pub fn leaf_key(name: &str) -> LeafKey {
    LeafKey::of(&LookupName::parse(name).unwrap().registered())
}

/// The attestation of an `accepted` reply; anything else fails the test.
pub fn accepted(reply: &Reply) -> Attestation {
    match reply {
        Reply::Accepted { attestation, .. } => attestation.clone(),
        other => panic!("expected accepted, got {other}"),
    }
}

/// Checks that `head` is signed, and by the Quorum key `key`.
pub fn assert_signed(head: &SignedHead, key: &str) {
    assert_eq!(head.quorum.to_base64(), key, "head signed by another key");
    assert!(head.signature_holds(), "head signature does not hold");
}

/// Checks that `reply` answers a lookup of `name` with `not_found`, a head
/// signed by `key` and an absence proof that holds against the head's root
/// (protocol.md §10.6, §10.7); returns the head.
pub fn assert_absent(reply: &Reply, name: &str, key: &str) -> SignedHead {
    let Reply::NotFound { head, proof, .. } = reply else {
        panic!("lookup {name}: expected not_found: {reply}");
    };
    assert_signed(head, key);
    proof
        .verify_absence(&leaf_key(name), &head.root)
        .unwrap_or_else(|e| panic!("the absence proof of {name} does not hold: {e}"));
    head.clone()
}

/// Checks that `reply` answers a lookup of `name` with `record`, attested
/// by `key` at a seq the head covers, a head signed by `key` and a presence
/// proof that holds against the head's root; returns the seq.
pub fn assert_found(reply: &Reply, name: &str, record: &Record, key: &str) -> u64 {
    let Reply::Found {
        record: got,
        head,
        proof,
        ..
    } = reply
    else {
        panic!("lookup {name}: expected found: {reply}");
    };
    assert_eq!(got, record, "lookup {name}");
    let seq = attested_seq(reply, record, key);
    assert_signed(head, key);
    assert!(seq <= head.seq, "seq {seq} answered against {head:?}");
    proof
        .verify_presence(&leaf_key(name), &record.id(), seq, &head.root)
        .unwrap_or_else(|e| panic!("the presence proof of {name} does not hold: {e}"));
    seq
}
