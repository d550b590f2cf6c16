//! What the fuzz targets `objects` and `reply_push` trust (declared as
//! `crate::trust` by whatever includes them): the keys and times of the protocol's
//! worked examples (`tests/data/vectors*.json`), so that the seed corpus's
//! answers verify and mutations of them reach every check.

use onions::cosign::Quorate;
use onions::keys::PublicKey;
use onions::lookup::Policy;
use onions::verify::Verifier;
use std::sync::OnceLock;

/// The Quorum key of the worked examples.
pub const QUORUM: &str = "GX9rI+FshTLGq8g4+s1ep4m+DHaykgM0A5v6iz02jWE=";
/// The three witnesses of `vectors-witness.json`.
pub const WITNESSES: [&str; 3] = [
    "Zr5+Myx6RTMyvZ0Kf32wVfXF7xoGraZtmLOftoEMRzo=",
    "C1E62bSSQBXKCQLtB5BE06xdvsIwbwaUjBDajrbjny0=",
    "kaKKC3Q4FZOk2UaVeSCJJq/IrYLIg5t2RDWbnrqaSzo=",
];
/// The examples' "now": their head is 60 s old.
pub const NOW: u64 = 1_764_000_360;

fn key(text: &str) -> PublicKey {
    PublicKey::from_base64(text).unwrap_or_else(|| panic!("{text} is a valid key"))
}

/// Verifiers trusting the examples' Quorum: a mirror's (no clock skew
/// rule) and the Quorum's (`issued` at most 600 s ahead). Built once:
/// checking a key costs as much as a signature.
pub fn verifiers() -> &'static [Verifier; 2] {
    static VERIFIERS: OnceLock<[Verifier; 2]> = OnceLock::new();
    VERIFIERS.get_or_init(|| {
        [None, Some(600)].map(|max_skew| Verifier {
            min_work: 4,
            trusted: vec![key(QUORUM)],
            max_skew,
        })
    })
}

/// Clients' policies: the examples' Quorum, heads up to 600 s old, and
/// none, then two of the three witnesses.
pub fn policies() -> &'static [Policy; 2] {
    static POLICIES: OnceLock<[Policy; 2]> = OnceLock::new();
    POLICIES.get_or_init(|| {
        [0, 2].map(|needed| Policy {
            verifier: verifiers()[0].clone(),
            max_head_age: 600,
            witnesses: Quorate {
                trusted: WITNESSES.iter().map(|k| key(k)).collect(),
                needed,
            },
        })
    })
}
