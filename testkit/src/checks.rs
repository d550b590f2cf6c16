//! What tests check of a server's answers, the same in every test file:
//! the client's policy trusting one Quorum key, the leaf key of a name, the
//! attestation of an `accepted` reply, and a head signed by the Quorum.

use onions::attest::Attestation;
use onions::head::SignedHead;
use onions::keys::PublicKey;
use onions::lookup::{Policy, DEFAULT_MAX_HEAD_AGE};
use onions::merkle::LeafKey;
use onions::name::LookupName;
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
