//! The attestation (PROTOCOL.md §5): the Quorum's signed statement that it
//! accepted a record at a position in its log.
//!
//! Building one needs the Quorum's [`SigningKey`]; checking one needs the
//! set of Quorum keys a mirror or client was configured to trust. The
//! checks a verifier runs on the pair (record, attestation) are in
//! [`crate::verify`].

use crate::canonical;
use crate::canonical::INT_LIMIT;
use crate::keys::{KeyBytes, Signature, SigningKey};
use crate::record::RecordId;
use serde_json::{Map, Value};
use std::fmt;

/// Domain separator of attestation signatures.
const SIGNATURE_CONTEXT: &str = "onions-attestation-v1\n";

/// Every key of an attestation, in canonical order.
const KEYS: [&str; 5] = ["accepted", "quorum", "record", "seq", "sig"];

/// Why an attestation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttestError {
    /// Not an object, a key missing or extra, or a field of the wrong type.
    Shape(String),
    /// `quorum` is not one of the keys this verifier trusts.
    UntrustedKey(String),
    /// `record` is not the id of the record it came with.
    WrongRecord,
    /// `sig` does not verify with `quorum`.
    BadSignature,
}

impl AttestError {
    /// The protocol's error code for this failure (PROTOCOL.md §8).
    pub fn code(&self) -> &'static str {
        match self {
            AttestError::Shape(_) | AttestError::WrongRecord => "bad_record",
            AttestError::UntrustedKey(_) | AttestError::BadSignature => "bad_signature",
        }
    }
}

impl fmt::Display for AttestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttestError::Shape(why) => write!(f, "attestation is malformed: {why}"),
            AttestError::UntrustedKey(key) => write!(
                f,
                "attestation is signed by {key}, which is not a trusted Quorum key (--quorum-key)"
            ),
            AttestError::WrongRecord => write!(f, "attestation is for a different record"),
            AttestError::BadSignature => write!(f, "attestation signature does not verify"),
        }
    }
}

impl std::error::Error for AttestError {}

/// A parsed attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// Position of the record in the Quorum's log, from 1.
    pub seq: u64,
    /// Unix seconds when the Quorum accepted the record.
    pub accepted: u64,
    /// The id of the attested record.
    pub record: RecordId,
    /// The Quorum key that signed, as sent: it is trusted only once it
    /// matches a configured key (see [`crate::verify`]).
    pub quorum: KeyBytes,
    /// The Quorum's signature.
    pub sig: Signature,
}

impl Attestation {
    /// Signs a new attestation for `record` at `seq` with the Quorum's key.
    pub fn sign(record: RecordId, seq: u64, accepted: u64, key: &SigningKey) -> Attestation {
        let mut attestation = Attestation {
            seq,
            accepted,
            record,
            quorum: key.public().into(),
            sig: Signature([0u8; 64]),
        };
        attestation.sig = key.sign(&attestation.signed_bytes());
        attestation
    }

    /// What `sig` signs: the context line and the attestation without `sig`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        canonical::signed_bytes(SIGNATURE_CONTEXT, self.unsigned_map())
    }

    /// True when `sig` verifies with `quorum` (trust is checked separately).
    pub fn signature_holds(&self) -> bool {
        self.quorum.verify(&self.signed_bytes(), &self.sig)
    }

    /// The attestation as JSON.
    pub fn to_value(&self) -> Value {
        canonical::with_sig(self.unsigned_map(), self.sig.to_base64())
    }

    /// Parses an attestation from JSON, checking its shape.
    pub fn from_value(value: &Value) -> Result<Attestation, AttestError> {
        let shape = |why: &str| AttestError::Shape(why.to_owned());
        let map = value
            .as_object()
            .ok_or_else(|| shape("an attestation must be a JSON object"))?;
        if let Some(extra) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(AttestError::Shape(format!("unknown key {extra:?}")));
        }
        let int = |key: &str| {
            map.get(key)
                .and_then(Value::as_u64)
                .filter(|n| *n < INT_LIMIT)
                .ok_or_else(|| AttestError::Shape(format!("{key} must be an integer below 2^53")))
        };
        let text = |key: &str| {
            map.get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| AttestError::Shape(format!("{key} must be a string")))
        };
        let seq = int("seq")?;
        if seq == 0 {
            return Err(shape("seq starts at 1"));
        }
        Ok(Attestation {
            seq,
            accepted: int("accepted")?,
            record: RecordId::from_base64(text("record")?)
                .ok_or_else(|| shape("record must be Base64 of a 32-byte record id"))?,
            quorum: KeyBytes::from_base64(text("quorum")?)
                .ok_or_else(|| shape("quorum must be Base64 of a 32-byte key"))?,
            sig: Signature::from_base64(text("sig")?)
                .ok_or_else(|| shape("sig must be Base64 of 64 bytes"))?,
        })
    }

    fn unsigned_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("seq".into(), self.seq.into());
        map.insert("accepted".into(), self.accepted.into());
        map.insert("record".into(), self.record.to_base64().into());
        map.insert("quorum".into(), self.quorum.to_base64().into());
        map
    }
}
