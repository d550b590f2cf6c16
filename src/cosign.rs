//! Cosignatures (PROTOCOL.md §11): a witness's signed statement that it
//! checked a head against its own replica, at a time of its own.
//!
//! The statement is small and fixed: the witness's key, its time, and a
//! signature over a context line, that time and the head id. A witness
//! re-signs the same head with a newer time while nothing new happens, so
//! a client judges freshness by the time of the k-th newest cosignature it
//! trusts ([`Quorate::check`]), not by the head's own time.

use crate::canonical::INT_LIMIT;
use crate::codec::b64_encode;
use crate::head::SignedHead;
use crate::keys::{KeyBytes, PublicKey, Signature, SigningKey};
use crate::merkle::Hash;
use serde_json::{Map, Value};
use std::fmt;

/// Domain separator of cosignatures.
const CONTEXT: &str = "onions-cosignature-v1\n";

/// Every key of a cosignature.
const KEYS: [&str; 3] = ["sig", "time", "witness"];

/// The most cosignatures one message may carry (PROTOCOL.md §11.3).
pub const MAX_COSIGNATURES: usize = 64;

/// Why a cosignature, or a set of them, was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CosignError {
    /// Not an object, a key missing or extra, or a field of the wrong type.
    Shape(String),
    /// Fewer than the required number of valid cosignatures by trusted
    /// witnesses.
    TooFew {
        /// Valid cosignatures by distinct trusted witnesses.
        valid: usize,
        /// How many are required.
        needed: usize,
    },
}

impl fmt::Display for CosignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CosignError::Shape(why) => write!(f, "cosignature is malformed: {why}"),
            CosignError::TooFew { valid, needed } => write!(
                f,
                "the head carries {valid} valid cosignatures by trusted witnesses, {needed} are required (--witnesses)"
            ),
        }
    }
}

impl std::error::Error for CosignError {}

/// One witness's cosignature of one head.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Cosignature {
    /// The witness's public key, as sent.
    pub witness: KeyBytes,
    /// The witness's time when it signed, Unix seconds.
    pub time: u64,
    /// The signature over [`Cosignature::message`].
    pub sig: Signature,
}

impl Cosignature {
    /// The witness holding `key` cosigns `head` at `time`.
    pub fn sign(head: &SignedHead, time: u64, key: &SigningKey) -> Cosignature {
        Cosignature {
            witness: key.public().into(),
            time,
            sig: key.sign(&Cosignature::message(&head.id(), time)),
        }
    }

    /// What a cosignature of the head with id `head_id` at `time` signs:
    /// the context line, then `time T` and `head ID` lines (ID in Base64).
    pub fn message(head_id: &Hash, time: u64) -> Vec<u8> {
        format!("{CONTEXT}time {time}\nhead {}\n", b64_encode(head_id)).into_bytes()
    }

    /// True when the signature verifies for the head with id `head_id`
    /// (whether the witness is trusted is checked apart).
    pub fn holds_for(&self, head_id: &Hash) -> bool {
        self.witness
            .verify(&Cosignature::message(head_id, self.time), &self.sig)
    }

    /// Parses a cosignature, checking its shape (not its signature).
    pub fn from_value(value: &Value) -> Result<Cosignature, CosignError> {
        let shape = |why: &str| CosignError::Shape(why.to_owned());
        let map = value
            .as_object()
            .ok_or_else(|| shape("a cosignature must be a JSON object"))?;
        if let Some(extra) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(CosignError::Shape(format!("unknown key {extra:?}")));
        }
        let text = |key: &str| {
            map.get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| CosignError::Shape(format!("{key} must be a string")))
        };
        Ok(Cosignature {
            witness: KeyBytes::from_base64(text("witness")?)
                .ok_or_else(|| shape("witness must be canonical Base64 of a 32-byte key"))?,
            time: map
                .get("time")
                .and_then(Value::as_u64)
                .filter(|n| *n < INT_LIMIT)
                .ok_or_else(|| shape("time must be an integer below 2^53"))?,
            sig: Signature::from_base64(text("sig")?)
                .ok_or_else(|| shape("sig must be canonical Base64 of 64 bytes"))?,
        })
    }

    /// Parses a JSON array of cosignatures, at most [`MAX_COSIGNATURES`].
    pub fn list_from_value(value: &Value) -> Result<Vec<Cosignature>, CosignError> {
        let items = value
            .as_array()
            .ok_or_else(|| CosignError::Shape("cosignatures must be an array".into()))?;
        if items.len() > MAX_COSIGNATURES {
            return Err(CosignError::Shape(format!(
                "more than {MAX_COSIGNATURES} cosignatures"
            )));
        }
        items.iter().map(Cosignature::from_value).collect()
    }

    /// The cosignature as JSON.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("witness".into(), self.witness.to_base64().into());
        map.insert("time".into(), self.time.into());
        map.insert("sig".into(), self.sig.to_base64().into());
        Value::Object(map)
    }

    /// A list of cosignatures as a JSON array.
    pub fn list_to_value(list: &[Cosignature]) -> Value {
        Value::Array(list.iter().map(Cosignature::to_value).collect())
    }
}

/// What a verifier requires of a head's cosignatures: `needed` valid ones
/// by distinct keys among `trusted`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Quorate {
    /// Witness keys whose cosignatures count.
    pub trusted: Vec<PublicKey>,
    /// How many must have cosigned (0: no witnesses required).
    pub needed: usize,
}

impl Quorate {
    /// The default of `--witnesses` for `configured` trusted keys: a
    /// majority of them.
    pub fn majority(configured: usize) -> usize {
        configured / 2 + usize::from(configured > 0)
    }

    /// True when no cosignature is required.
    pub fn is_off(&self) -> bool {
        self.needed == 0
    }

    /// Checks `cosignatures` of the head with id `head_id`: returns the
    /// time of the `needed`-th newest valid cosignature by a distinct
    /// trusted witness (the time the answer is fresh as of), or `None`
    /// when none is needed.
    pub fn check(
        &self,
        head_id: &Hash,
        cosignatures: &[Cosignature],
    ) -> Result<Option<u64>, CosignError> {
        if self.is_off() {
            return Ok(None);
        }
        let mut newest: Vec<(KeyBytes, u64)> = Vec::new();
        for cosig in cosignatures {
            let Some(key) = cosig.witness.find_in(&self.trusted) else {
                continue;
            };
            if !key.verify(&Cosignature::message(head_id, cosig.time), &cosig.sig) {
                continue;
            }
            match newest.iter_mut().find(|(k, _)| *k == cosig.witness) {
                Some((_, time)) => *time = (*time).max(cosig.time),
                None => newest.push((cosig.witness, cosig.time)),
            }
        }
        if newest.len() < self.needed {
            return Err(CosignError::TooFew {
                valid: newest.len(),
                needed: self.needed,
            });
        }
        let mut times: Vec<u64> = newest.into_iter().map(|(_, t)| t).collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        Ok(Some(times[self.needed - 1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> SignedHead {
        SignedHead::sign(7, 1_000, 3, [9; 32], &SigningKey::from_seed(&[1; 32]))
    }

    fn witness(n: u8) -> SigningKey {
        SigningKey::from_seed(&[n + 10; 32])
    }

    #[test]
    fn a_cosignature_round_trips_and_verifies_for_its_head_only() {
        let head = head();
        let cosig = Cosignature::sign(&head, 1_005, &witness(0));
        let back = Cosignature::from_value(&cosig.to_value()).unwrap();
        assert_eq!(back, cosig);
        assert!(back.holds_for(&head.id()));
        let other = SignedHead::sign(8, 1_000, 3, [9; 32], &SigningKey::from_seed(&[1; 32]));
        assert!(!back.holds_for(&other.id()));
        let mut later = back.clone();
        later.time += 1;
        assert!(!later.holds_for(&head.id()), "the time is signed");
    }

    #[test]
    fn strict_shape() {
        let cosig = Cosignature::sign(&head(), 1, &witness(0)).to_value();
        let mut extra = cosig.clone();
        extra["head"] = "x".into();
        assert!(Cosignature::from_value(&extra).is_err());
        let mut missing = cosig.clone();
        missing.as_object_mut().unwrap().remove("time");
        assert!(Cosignature::from_value(&missing).is_err());
        let mut big = cosig;
        big["time"] = INT_LIMIT.into();
        assert!(Cosignature::from_value(&big).is_err());
        let many = Value::Array(vec![Value::Null; MAX_COSIGNATURES + 1]);
        assert!(Cosignature::list_from_value(&many).is_err());
    }

    #[test]
    fn quorate_counts_distinct_trusted_valid_witnesses() {
        let head = head();
        let id = head.id();
        let keys: Vec<SigningKey> = (0..3).map(witness).collect();
        let policy = Quorate {
            trusted: keys.iter().map(SigningKey::public).collect(),
            needed: 2,
        };
        let one = Cosignature::sign(&head, 100, &keys[0]);
        let again = Cosignature::sign(&head, 200, &keys[0]);
        assert_eq!(
            policy.check(&id, &[one.clone(), again.clone()]),
            Err(CosignError::TooFew {
                valid: 1,
                needed: 2
            }),
            "one witness twice counts once"
        );
        let stranger = Cosignature::sign(&head, 300, &witness(9));
        let mut forged = Cosignature::sign(&head, 300, &keys[1]);
        forged.time = 301;
        assert!(policy.check(&id, &[one.clone(), stranger, forged]).is_err());
        let two = Cosignature::sign(&head, 150, &keys[1]);
        let three = Cosignature::sign(&head, 120, &keys[2]);
        assert_eq!(policy.check(&id, &[one, again, two, three]), Ok(Some(150)));
        assert_eq!(Quorate::default().check(&id, &[]), Ok(None));
    }

    #[test]
    fn majority() {
        assert_eq!(
            [0, 1, 2, 3, 4, 5].map(Quorate::majority),
            [0, 1, 2, 2, 3, 3]
        );
    }
}
