//! Signed heads (PROTOCOL.md §10.4): the Quorum's statement of the root
//! and size of its live set as of (seq, time), and equivocation evidence
//! (§10.5), two heads of one key that cannot both be honest.
//!
//! Parsing is strict, as for attestations (`crate::attest`): exactly the
//! keys of the format, integers below 2^53, canonical Base64. Whether a
//! head's root matches a replica is the audit's business (`crate::server`),
//! and whether it is fresh enough the client's (`crate::lookup`).

use crate::canonical;
use crate::canonical::INT_LIMIT;
use crate::codec::{b64_decode_exact, b64_encode};
use crate::keys::{KeyBytes, PublicKey, Signature, SigningKey};
use crate::merkle::Hash;
use serde_json::{Map, Value};
use sodiumoxide::crypto::hash::sha256;
use std::fmt;

/// Domain separator of head signatures.
const SIGNATURE_CONTEXT: &str = "onions-head-v1\n";

/// Every key of a head.
const KEYS: [&str; 7] = ["quorum", "root", "seq", "sig", "size", "time", "v"];

/// The head format version.
const VERSION: u64 = 2;

/// Why a head (or evidence) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// Not an object, a key missing or extra, or a field of the wrong type.
    Shape(String),
    /// `quorum` is not one of the trusted keys.
    UntrustedKey(String),
    /// `sig` does not verify with `quorum`.
    BadSignature,
    /// Evidence whose heads do not prove misbehaviour.
    NotEvidence(String),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::Shape(why) => write!(f, "head is malformed: {why}"),
            HeadError::UntrustedKey(key) => write!(
                f,
                "head is signed by {key}, which is not a trusted Quorum key (--quorum-key)"
            ),
            HeadError::BadSignature => write!(f, "head signature does not verify"),
            HeadError::NotEvidence(why) => write!(f, "not equivocation evidence: {why}"),
        }
    }
}

impl std::error::Error for HeadError {}

/// A head signed by a Quorum key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedHead {
    /// The highest attestation seq covered.
    pub seq: u64,
    /// The time the live set is taken at, Unix seconds.
    pub time: u64,
    /// Entries in the live set.
    pub size: u64,
    /// The live set's root.
    pub root: Hash,
    /// The signing key, as sent.
    pub quorum: KeyBytes,
    /// The signature.
    pub sig: Signature,
}

impl SignedHead {
    /// Signs a head with the Quorum's key.
    pub fn sign(seq: u64, time: u64, size: u64, root: Hash, key: &SigningKey) -> SignedHead {
        let mut head = SignedHead {
            seq,
            time,
            size,
            root,
            quorum: key.public().into(),
            sig: Signature([0; 64]),
        };
        head.sig = key.sign(&head.signed_bytes());
        head
    }

    /// Parses a head, checking its shape (not its signature).
    pub fn from_value(value: &Value) -> Result<SignedHead, HeadError> {
        let shape = |why: &str| HeadError::Shape(why.to_owned());
        let map = value
            .as_object()
            .ok_or_else(|| shape("a head must be a JSON object"))?;
        if let Some(extra) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(HeadError::Shape(format!("unknown key {extra:?}")));
        }
        let int = |key: &str| {
            map.get(key)
                .and_then(Value::as_u64)
                .filter(|n| *n < INT_LIMIT)
                .ok_or_else(|| HeadError::Shape(format!("{key} must be an integer below 2^53")))
        };
        let text = |key: &str| {
            map.get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| HeadError::Shape(format!("{key} must be a string")))
        };
        if int("v")? != VERSION {
            return Err(shape("v must be 2"));
        }
        Ok(SignedHead {
            seq: int("seq")?,
            time: int("time")?,
            size: int("size")?,
            root: b64_decode_exact::<32>(text("root")?)
                .ok_or_else(|| shape("root must be canonical Base64 of 32 bytes"))?,
            quorum: KeyBytes::from_base64(text("quorum")?)
                .ok_or_else(|| shape("quorum must be canonical Base64 of a 32-byte key"))?,
            sig: Signature::from_base64(text("sig")?)
                .ok_or_else(|| shape("sig must be canonical Base64 of 64 bytes"))?,
        })
    }

    /// Parses a head from its JSON text.
    pub fn from_json(text: &str) -> Result<SignedHead, HeadError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| HeadError::Shape(format!("not JSON: {e}")))?;
        SignedHead::from_value(&value)
    }

    /// The head as JSON.
    pub fn to_value(&self) -> Value {
        canonical::with_sig(self.unsigned_map(), self.sig.to_base64())
    }

    /// The head's canonical JSON, `sig` included: what is sent and stored.
    pub fn canonical(&self) -> String {
        canonical::to_string(&self.to_value())
    }

    /// What `sig` signs: the context line and the head without `sig`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        canonical::signed_bytes(SIGNATURE_CONTEXT, self.unsigned_map())
    }

    /// The head id: SHA-256 of its canonical JSON.
    pub fn id(&self) -> Hash {
        sha256::hash(self.canonical().as_bytes()).0
    }

    /// True when `sig` verifies with `quorum` (trust is checked apart).
    pub fn signature_holds(&self) -> bool {
        self.quorum.verify(&self.signed_bytes(), &self.sig)
    }

    /// Checks that a trusted key signed this head.
    pub fn check_trusted(&self, trusted: &[PublicKey]) -> Result<(), HeadError> {
        let Some(key) = self.quorum.find_in(trusted) else {
            return Err(HeadError::UntrustedKey(self.quorum.to_base64()));
        };
        if !key.verify(&self.signed_bytes(), &self.sig) {
            return Err(HeadError::BadSignature);
        }
        Ok(())
    }

    /// True when the two heads, signed by one key, cannot both be honest
    /// (§10.5): a fork (same seq and time, another root or size) or a
    /// rollback (one higher in seq, the other in time).
    pub fn conflicts(&self, other: &SignedHead) -> bool {
        if self.quorum != other.quorum {
            return false;
        }
        let fork = (self.seq, self.time) == (other.seq, other.time)
            && (self.root, self.size) != (other.root, other.size);
        let rollback = (self.seq > other.seq && self.time < other.time)
            || (self.seq < other.seq && self.time > other.time);
        fork || rollback
    }

    /// The head without `sig`, as a map.
    fn unsigned_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("v".into(), VERSION.into());
        map.insert("seq".into(), self.seq.into());
        map.insert("time".into(), self.time.into());
        map.insert("size".into(), self.size.into());
        map.insert("root".into(), b64_encode(&self.root).into());
        map.insert("quorum".into(), self.quorum.to_base64().into());
        map
    }
}

/// Two conflicting heads of one key (§10.5): proof, to anyone, that the key
/// misbehaved.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Evidence {
    /// The heads, in ascending order of head id.
    pub heads: [SignedHead; 2],
}

impl Evidence {
    /// Evidence from two heads, when they conflict and both signatures
    /// hold.
    pub fn new(a: SignedHead, b: SignedHead) -> Option<Evidence> {
        if !a.conflicts(&b) || !a.signature_holds() || !b.signature_holds() {
            return None;
        }
        let heads = if a.id() <= b.id() { [a, b] } else { [b, a] };
        Some(Evidence { heads })
    }

    /// Parses evidence and checks that it proves what it claims.
    pub fn from_value(value: &Value) -> Result<Evidence, HeadError> {
        let not = |why: &str| HeadError::NotEvidence(why.to_owned());
        let map = value
            .as_object()
            .ok_or_else(|| not("must be a JSON object"))?;
        if map.len() != 2 || map.get("v").and_then(Value::as_u64) != Some(VERSION) {
            return Err(not("must have exactly v (= 2) and heads"));
        }
        let list = map
            .get("heads")
            .and_then(Value::as_array)
            .filter(|l| l.len() == 2)
            .ok_or_else(|| not("heads must hold exactly two heads"))?;
        let a = SignedHead::from_value(&list[0])?;
        let b = SignedHead::from_value(&list[1])?;
        if a.id() > b.id() {
            return Err(not("heads must be in ascending order of head id"));
        }
        if a.quorum != b.quorum {
            return Err(not("the heads are signed by different keys"));
        }
        if !a.signature_holds() || !b.signature_holds() {
            return Err(HeadError::BadSignature);
        }
        if !a.conflicts(&b) {
            return Err(not("the heads do not conflict"));
        }
        Ok(Evidence { heads: [a, b] })
    }

    /// The evidence as JSON.
    pub fn to_value(&self) -> Value {
        serde_json::json!({
            "v": VERSION,
            "heads": [self.heads[0].to_value(), self.heads[1].to_value()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        crate::keys::init().unwrap();
        SigningKey::from_seed(&[seed; 32])
    }

    fn head(seq: u64, time: u64, size: u64, root: u8) -> SignedHead {
        SignedHead::sign(seq, time, size, [root; 32], &key(42))
    }

    #[test]
    fn round_trips_and_signs() {
        let h = head(7, 1_764_000_300, 5, 1);
        assert!(h.signature_holds());
        assert_eq!(SignedHead::from_value(&h.to_value()).unwrap(), h);
        assert_eq!(SignedHead::from_json(&h.canonical()).unwrap(), h);
        let body = String::from_utf8(h.signed_bytes()).unwrap();
        assert!(body.starts_with("onions-head-v1\n{\"quorum\":"));
        assert!(!body.contains("\"sig\""));
        assert_eq!(h.id(), sha256::hash(h.canonical().as_bytes()).0);
        h.check_trusted(&[key(1).public(), key(42).public()])
            .unwrap();
    }

    #[test]
    fn trust_and_signature_are_checked() {
        let h = head(1, 10, 1, 1);
        assert!(matches!(
            h.check_trusted(&[key(1).public()]),
            Err(HeadError::UntrustedKey(_))
        ));
        let mut forged = h.clone();
        forged.size = 2;
        assert!(!forged.signature_holds());
        assert_eq!(
            forged.check_trusted(&[key(42).public()]),
            Err(HeadError::BadSignature)
        );
    }

    #[test]
    fn parsing_is_strict() {
        let good = head(1, 10, 1, 1).to_value();
        assert!(SignedHead::from_value(&good).is_ok());
        let bad_root = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQF=";
        let edits: [(&str, Value); 8] = [
            ("extra", 1.into()),
            ("v", 1.into()),
            ("seq", INT_LIMIT.into()),
            ("time", (-1).into()),
            ("size", 1.5.into()),
            ("root", bad_root.into()),
            ("quorum", b64_encode(&[1; 31]).into()),
            ("sig", b64_encode(&[0; 63]).into()),
        ];
        for (key, bad) in edits {
            let mut value = good.clone();
            value[key] = bad;
            assert!(SignedHead::from_value(&value).is_err(), "{key}");
        }
        for key in KEYS {
            let mut value = good.clone();
            value.as_object_mut().unwrap().remove(key);
            assert!(SignedHead::from_value(&value).is_err(), "without {key}");
        }
        assert!(SignedHead::from_json("[]").is_err());
        assert!(SignedHead::from_json("{").is_err());
    }

    #[test]
    fn conflicts_and_order() {
        let base = head(7, 100, 5, 1);
        let fork = head(7, 100, 4, 2);
        let rollback = head(8, 99, 5, 1);
        let later = head(7, 101, 5, 1);
        let other_key = SignedHead::sign(7, 100, 4, [2; 32], &key(1));
        assert!(base.conflicts(&fork) && fork.conflicts(&base));
        assert!(base.conflicts(&rollback) && rollback.conflicts(&base));
        assert!(base.conflicts(&head(7, 100, 6, 1)), "size alone forks");
        assert!(!base.conflicts(&base.clone()));
        assert!(!base.conflicts(&later) && !base.conflicts(&head(8, 100, 9, 3)));
        assert!(!base.conflicts(&other_key), "different keys never conflict");
    }

    #[test]
    fn evidence_is_built_and_checked() {
        let (a, b) = (head(7, 100, 5, 1), head(7, 100, 4, 2));
        let evidence = Evidence::new(a.clone(), b.clone()).unwrap();
        assert_eq!(Evidence::new(b.clone(), a.clone()), Some(evidence.clone()));
        assert!(evidence.heads[0].id() < evidence.heads[1].id());
        assert_eq!(
            Evidence::from_value(&evidence.to_value()),
            Ok(evidence.clone())
        );
        assert_eq!(Evidence::new(a.clone(), head(7, 101, 5, 1)), None);
        let mut forged = b.clone();
        forged.size = 3;
        assert_eq!(Evidence::new(a.clone(), forged), None);

        let [first, second] = evidence.heads.clone();
        let value = |heads: [&SignedHead; 2]| serde_json::json!({"v": 2, "heads": [heads[0].to_value(), heads[1].to_value()]});
        assert!(Evidence::from_value(&value([&second, &first])).is_err());
        assert!(Evidence::from_value(&value([&first, &first])).is_err());
        let mut extra = evidence.to_value();
        extra["x"] = 1.into();
        assert!(Evidence::from_value(&extra).is_err());
        let mut old = evidence.to_value();
        old["v"] = 1.into();
        assert!(Evidence::from_value(&old).is_err());
        let mut bad_sig = second.clone();
        bad_sig.sig.0[0] ^= 1;
        let pair = if first.id() < bad_sig.id() {
            [&first, &bad_sig]
        } else {
            [&bad_sig, &first]
        };
        assert_eq!(
            Evidence::from_value(&value(pair)),
            Err(HeadError::BadSignature)
        );
        let stranger = SignedHead::sign(7, 100, 4, [2; 32], &key(1));
        let pair = if a.id() < stranger.id() {
            [&a, &stranger]
        } else {
            [&stranger, &a]
        };
        assert!(Evidence::from_value(&value(pair)).is_err());
    }
}
