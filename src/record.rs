//! The record (PROTOCOL.md §4): an onion service's signed claim on a name.
//!
//! A [`Record`] is built from JSON only through [`Record::from_value`],
//! which checks its shape and every field's spelling; the rules that tie
//! fields together or need cryptography (lifetime, size, signature, proof
//! of work, expiry) live in [`crate::verify`], the one place every accepting
//! path goes through. This module also produces the exact bytes that are
//! signed, worked on and hashed.

use crate::canonical;
use crate::codec;
use crate::keys::{Signature, SigningKey};
use crate::name::{NameError, RegisteredName, SubdomainKey};
use crate::onion::{OnionAddress, OnionError};
use crate::transfer::{Transfer, TransferError};
use serde::Deserialize;
use serde_json::{Map, Value};
use sodiumoxide::crypto::hash::sha256;
use std::collections::BTreeMap;
use std::fmt;

/// The record format version this code speaks.
pub const VERSION: u64 = 1;
/// Most subdomains one record may carry.
pub const MAX_SUBDOMAINS: usize = 32;
/// Longest `contact`, in characters.
pub const MAX_CONTACT_LEN: usize = 128;
/// Longest lifetime, `expires - issued`, in seconds (30 days).
pub const MAX_LIFETIME: u64 = 30 * 24 * 60 * 60;
/// Largest record, as canonical JSON, in bytes.
pub const MAX_RECORD_BYTES: usize = 8 * 1024;
/// Highest proof-of-work difficulty, in bits.
pub const MAX_WORK: u64 = 64;

/// Domain separator of record signatures.
const SIGNATURE_CONTEXT: &str = "onions-record-v1\n";

/// Keys a record may carry besides [`KEYS`] (PROTOCOL.md §12.1), at most
/// one of them.
const OPTIONAL_KEYS: [&str; 2] = ["release", "transfer"];

/// Every key every record carries, in canonical order.
const KEYS: [&str; 11] = [
    "contact",
    "expires",
    "issued",
    "name",
    "nonce",
    "onion",
    "serial",
    "sig",
    "subdomains",
    "v",
    "work",
];

/// Which rule a record broke. [`RecordError::code`] gives the wire code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// Not a JSON object, a key missing or extra, or a field of the wrong type.
    Shape(String),
    /// `v` is not 1.
    Version(u64),
    /// `name` is not a registered name.
    Name(NameError),
    /// `onion`, or the address of a subdomain, is not a valid v3 address.
    Onion {
        /// Which field held the address (`onion` or `subdomains.KEY`).
        field: String,
        /// What was wrong with it.
        error: OnionError,
    },
    /// A subdomain key is not one or more valid labels.
    Subdomain(String, NameError),
    /// More than [`MAX_SUBDOMAINS`] subdomains.
    TooManySubdomains(usize),
    /// `contact` is too long or not printable ASCII.
    Contact,
    /// `serial` is 0.
    Serial,
    /// `expires` is not after `issued`, or more than 30 days after it.
    Lifetime {
        /// The record's `issued`.
        issued: u64,
        /// The record's `expires`.
        expires: u64,
    },
    /// `work` is above [`MAX_WORK`].
    WorkRange(u64),
    /// The canonical record is larger than [`MAX_RECORD_BYTES`].
    TooLarge(usize),
    /// `issued` is further in the future than the verifier allows.
    IssuedInFuture {
        /// The record's `issued`.
        issued: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// The record expired.
    Expired {
        /// The record's `expires`.
        expires: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// `sig` is not a valid signature of the record by the `onion` key.
    BadSignature,
    /// `work` is below the verifier's minimum.
    WorkBelowMinimum {
        /// The record's `work`.
        work: u64,
        /// The verifier's minimum.
        min: u64,
    },
    /// The proof-of-work digest does not have `work` leading zero bits.
    WorkNotDone(u64),
    /// The transfer statement the record carries is malformed, forged or
    /// does not fit the record (PROTOCOL.md §12.2).
    Transfer(TransferError),
    /// A release carries subdomains (PROTOCOL.md §12.3).
    ReleaseSubdomains,
}

impl RecordError {
    /// The protocol's error code for this failure (PROTOCOL.md §8).
    pub fn code(&self) -> &'static str {
        match self {
            RecordError::Expired { .. } => "expired",
            RecordError::BadSignature => "bad_signature",
            RecordError::WorkBelowMinimum { .. } | RecordError::WorkNotDone(_) => {
                "insufficient_work"
            }
            RecordError::Transfer(_) => "bad_transfer",
            _ => "bad_record",
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Shape(why) => write!(f, "record is malformed: {why}"),
            RecordError::Version(v) => {
                write!(f, "record version {v} is not supported (only {VERSION})")
            }
            RecordError::Name(e) => write!(f, "record name is invalid: {e}"),
            RecordError::Onion { field, error } => write!(f, "record field {field}: {error}"),
            RecordError::Subdomain(key, e) => write!(f, "subdomain {key:?} is invalid: {e}"),
            RecordError::TooManySubdomains(n) => {
                write!(
                    f,
                    "record has {n} subdomains, at most {MAX_SUBDOMAINS} are allowed"
                )
            }
            RecordError::Contact => write!(
                f,
                "contact must be at most {MAX_CONTACT_LEN} printable ASCII characters"
            ),
            RecordError::Serial => write!(f, "serial must be at least 1"),
            RecordError::Lifetime { issued, expires } => write!(
                f,
                "expires ({expires}) must be after issued ({issued}) and at most 30 days later"
            ),
            RecordError::WorkRange(w) => {
                write!(f, "work is {w} bits, at most {MAX_WORK} are allowed")
            }
            RecordError::TooLarge(n) => {
                write!(
                    f,
                    "record is {n} bytes, at most {MAX_RECORD_BYTES} are allowed"
                )
            }
            RecordError::IssuedInFuture { issued, now } => write!(
                f,
                "issued ({issued}) is {} s ahead of this clock ({now}); check the signer's clock",
                issued - now
            ),
            RecordError::Expired { expires, now } => {
                write!(
                    f,
                    "record expired at {expires} (now {now}); renew it with a new serial"
                )
            }
            RecordError::BadSignature => {
                write!(
                    f,
                    "signature does not verify with the key of the onion address"
                )
            }
            RecordError::WorkBelowMinimum { work, min } => write!(
                f,
                "record carries {work} bits of work, at least {min} are required"
            ),
            RecordError::WorkNotDone(w) => {
                write!(
                    f,
                    "proof of work does not hold: the digest has fewer than {w} leading zero bits"
                )
            }
            RecordError::Transfer(e) => e.fmt(f),
            RecordError::ReleaseSubdomains => {
                write!(f, "a release carries no subdomains")
            }
        }
    }
}

impl std::error::Error for RecordError {}

/// A record's canonical JSON and its id, built once by [`Record::spell`]:
/// verification reads both (the size rule, the attestation's binding) and a
/// server stores them, so a record a server takes in is spelled one time.
#[derive(Clone)]
pub struct Spelled {
    text: String,
    id: RecordId,
}

impl Spelled {
    /// The canonical JSON.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Its SHA-256, the record's id.
    pub fn id(&self) -> RecordId {
        self.id
    }

    /// The canonical JSON, for storing.
    pub fn into_text(self) -> String {
        self.text
    }
}

/// SHA-256 of a record's canonical JSON, all keys included.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(pub [u8; 32]);

impl RecordId {
    /// The id of the record whose canonical JSON is `text`: for callers
    /// that already hold that text (a stored record, or one a worker
    /// spelled once), so it is not built again.
    pub fn of_canonical(text: &str) -> RecordId {
        RecordId(sha256::hash(text.as_bytes()).0)
    }

    /// The id as Base64, as attestations carry it.
    pub fn to_base64(&self) -> String {
        codec::b64_encode(&self.0)
    }

    /// Parses canonical Base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Option<Self> {
        codec::b64_decode_exact::<32>(text).map(RecordId)
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({})", self.to_base64())
    }
}

/// A claim on a registered name, with every field parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The registered name claimed.
    pub name: RegisteredName,
    /// The owner's address; its key signs the record.
    pub onion: OnionAddress,
    /// Subdomain key to address.
    pub subdomains: BTreeMap<SubdomainKey, OnionAddress>,
    /// Free text for people, such as an OpenPGP fingerprint.
    pub contact: String,
    /// Raised by the owner on every update.
    pub serial: u64,
    /// Unix seconds when signed.
    pub issued: u64,
    /// Unix seconds when the claim lapses.
    pub expires: u64,
    /// Proof-of-work difficulty, in bits.
    pub work: u64,
    /// Proof-of-work nonce.
    pub nonce: u64,
    /// The owner's signature.
    pub sig: Signature,
    /// The statement by which the previous owner handed the name to this
    /// record's onion (PROTOCOL.md §12.2); `None` in an ordinary record.
    pub transfer: Option<Transfer>,
    /// True for a release: the owner gives the name up, and the record
    /// holds it only for the cool-down until `expires` (§12.3).
    pub release: bool,
}

/// The parts of a record an owner chooses; see [`Record::from_claim`].
#[derive(Debug, Clone)]
pub struct Claim {
    /// The registered name claimed.
    pub name: RegisteredName,
    /// Subdomain key to address.
    pub subdomains: BTreeMap<SubdomainKey, OnionAddress>,
    /// Free text for people.
    pub contact: String,
    /// Serial, above the last one this key used.
    pub serial: u64,
    /// Unix seconds when signed.
    pub issued: u64,
    /// Unix seconds when the claim lapses.
    pub expires: u64,
    /// Proof-of-work difficulty, in bits.
    pub work: u64,
}

impl Record {
    /// Builds an unsigned record from a claim; the caller finds the nonce
    /// (see [`crate::work`]) and then calls [`Record::sign_with`].
    pub fn from_claim(claim: Claim, key: &SigningKey) -> Record {
        Record {
            name: claim.name,
            onion: OnionAddress::from_key(key.public()),
            subdomains: claim.subdomains,
            contact: claim.contact,
            serial: claim.serial,
            issued: claim.issued,
            expires: claim.expires,
            work: claim.work,
            nonce: 0,
            sig: Signature([0u8; 64]),
            transfer: None,
            release: false,
        }
    }

    /// Signs the record (all fields but `sig`) with the owner's key.
    pub fn sign_with(&mut self, key: &SigningKey) {
        self.sig = key.sign(&self.signed_bytes());
    }

    /// Parses a record from JSON, checking its shape and each field.
    pub fn from_value(value: &Value) -> Result<Record, RecordError> {
        let map = value
            .as_object()
            .ok_or_else(|| RecordError::Shape("a record must be a JSON object".into()))?;
        check_keys(map)?;
        let version = int(map, "v")?;
        if version != VERSION {
            return Err(RecordError::Version(version));
        }
        let name = RegisteredName::parse(string(map, "name")?).map_err(RecordError::Name)?;
        let onion_text = string(map, "onion")?;
        let onion = address(onion_text, "onion")?;
        let subdomains = subdomains(map, &name, (onion_text, onion))?;
        let contact = string(map, "contact")?;
        if contact.len() > MAX_CONTACT_LEN || !canonical::is_printable_ascii(contact) {
            return Err(RecordError::Contact);
        }
        let sig = Signature::from_base64(string(map, "sig")?)
            .ok_or_else(|| RecordError::Shape("sig must be Base64 of 64 bytes".into()))?;
        let (transfer, release) = life_keys(map)?;
        Ok(Record {
            name,
            onion,
            subdomains,
            contact: contact.to_owned(),
            serial: int(map, "serial")?,
            issued: int(map, "issued")?,
            expires: int(map, "expires")?,
            work: int(map, "work")?,
            nonce: int(map, "nonce")?,
            sig,
            transfer,
            release,
        })
    }

    /// Parses a record from JSON text.
    pub fn from_json(text: &str) -> Result<Record, RecordError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| RecordError::Shape(format!("not valid JSON: {e}")))?;
        Record::from_value(&value)
    }

    /// The record as a JSON value, all keys included.
    pub fn to_value(&self) -> Value {
        canonical::with_sig(self.unsigned_map(), self.sig.to_base64())
    }

    /// The record's canonical JSON, all keys included.
    pub fn canonical(&self) -> String {
        canonical::to_string(&self.to_value())
    }

    /// What `sig` signs: the context line and the record without `sig`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        canonical::signed_bytes(SIGNATURE_CONTEXT, self.unsigned_map())
    }

    /// The canonical record without `sig` and `nonce`, which the proof of
    /// work commits to.
    pub fn work_body(&self) -> String {
        let mut map = self.unsigned_map();
        map.remove("nonce");
        canonical::to_string(&Value::Object(map))
    }

    /// `SHA-256(canonical(record))`.
    pub fn id(&self) -> RecordId {
        RecordId::of_canonical(&self.canonical())
    }

    /// The canonical JSON and the id together, each built once.
    pub fn spell(&self) -> Spelled {
        let text = self.canonical();
        Spelled {
            id: RecordId::of_canonical(&text),
            text,
        }
    }

    fn unsigned_map(&self) -> Map<String, Value> {
        let subdomains: Map<String, Value> = self
            .subdomains
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_string().into()))
            .collect();
        let mut map = Map::new();
        map.insert("v".into(), VERSION.into());
        map.insert("name".into(), self.name.as_str().into());
        map.insert("onion".into(), self.onion.to_string().into());
        map.insert("subdomains".into(), Value::Object(subdomains));
        map.insert("contact".into(), self.contact.as_str().into());
        map.insert("serial".into(), self.serial.into());
        map.insert("issued".into(), self.issued.into());
        map.insert("expires".into(), self.expires.into());
        map.insert("work".into(), self.work.into());
        map.insert("nonce".into(), self.nonce.into());
        if let Some(transfer) = &self.transfer {
            map.insert("transfer".into(), transfer.to_value());
        }
        if self.release {
            map.insert("release".into(), true.into());
        }
        map
    }
}

/// The address fields of a record's JSON, read without the rest and
/// borrowed from it (they hold no escapes in a valid record).
#[derive(Deserialize)]
struct Pointers<'a> {
    /// The owner's address.
    onion: &'a str,
    /// Subdomain key to address.
    #[serde(borrow)]
    subdomains: BTreeMap<&'a str, &'a str>,
}

/// The keys of the onions a stored record points at: its `onion` and each
/// subdomain's, each once, in ascending byte order. Reads only those two
/// fields of the canonical JSON and checks nothing else: the record was
/// verified when it was stored, and a full parse checks every key point,
/// which costs as much as a signature each (the store's reverse index
/// reads every record of its log at open).
pub fn pointed_keys(text: &str) -> Result<Vec<[u8; 32]>, RecordError> {
    let pointers: Pointers = serde_json::from_str(text)
        .map_err(|e| RecordError::Shape(format!("no onion and subdomains: {e}")))?;
    let mut keys = Vec::with_capacity(1 + pointers.subdomains.len());
    for (field, text) in std::iter::once(("onion", &pointers.onion))
        .chain(pointers.subdomains.values().map(|v| ("subdomains", v)))
    {
        keys.push(
            OnionAddress::unchecked_key(text).ok_or_else(|| RecordError::Onion {
                field: field.to_owned(),
                error: OnionError::Format,
            })?,
        );
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// Refuses missing and unknown keys, naming them.
fn check_keys(map: &Map<String, Value>) -> Result<(), RecordError> {
    let known = |k: &str| KEYS.contains(&k) || OPTIONAL_KEYS.contains(&k);
    if let Some(extra) = map.keys().find(|k| !known(k)) {
        return Err(RecordError::Shape(format!("unknown key {extra:?}")));
    }
    if let Some(missing) = KEYS.iter().find(|k| !map.contains_key(**k)) {
        return Err(RecordError::Shape(format!("missing key {missing:?}")));
    }
    Ok(())
}

/// The optional keys of §12.1: a transfer statement, or `"release":true`,
/// never both.
fn life_keys(map: &Map<String, Value>) -> Result<(Option<Transfer>, bool), RecordError> {
    let transfer = map
        .get("transfer")
        .map(|v| Transfer::from_value(v).map_err(RecordError::Transfer))
        .transpose()?;
    let release = match map.get("release") {
        None => false,
        Some(Value::Bool(true)) => true,
        Some(_) => {
            return Err(RecordError::Shape(
                "release must be true when present".into(),
            ))
        }
    };
    if release && transfer.is_some() {
        return Err(RecordError::Shape(
            "a record carries transfer or release, not both".into(),
        ));
    }
    Ok((transfer, release))
}

/// An integer field, below 2^53.
fn int(map: &Map<String, Value>, key: &str) -> Result<u64, RecordError> {
    map.get(key)
        .and_then(Value::as_u64)
        .filter(|n| *n < canonical::INT_LIMIT)
        .ok_or_else(|| RecordError::Shape(format!("{key} must be an integer from 0 to 2^53 - 1")))
}

/// A string field.
fn string<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a str, RecordError> {
    map.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| RecordError::Shape(format!("{key} must be a string")))
}

/// A v3 address held in `field`.
fn address(text: &str, field: &str) -> Result<OnionAddress, RecordError> {
    OnionAddress::parse(text).map_err(|error| RecordError::Onion {
        field: field.to_owned(),
        error,
    })
}

/// The `subdomains` object: valid keys under `name`, valid addresses.
/// An address spelled as the owner's `onion` (already parsed: `owner`) or
/// as an earlier subdomain's is taken from it, not checked again: a
/// record often points its subdomains at its own onion, and each check
/// of a key point costs about as much as a signature.
fn subdomains<'a>(
    map: &'a Map<String, Value>,
    name: &RegisteredName,
    owner: (&'a str, OnionAddress),
) -> Result<BTreeMap<SubdomainKey, OnionAddress>, RecordError> {
    let object = map
        .get("subdomains")
        .and_then(Value::as_object)
        .ok_or_else(|| RecordError::Shape("subdomains must be an object".into()))?;
    if object.len() > MAX_SUBDOMAINS {
        return Err(RecordError::TooManySubdomains(object.len()));
    }
    let mut parsed = vec![owner];
    let mut out = BTreeMap::new();
    for (key, value) in object {
        let sub =
            SubdomainKey::parse(key, name).map_err(|e| RecordError::Subdomain(key.clone(), e))?;
        let text = value
            .as_str()
            .ok_or_else(|| RecordError::Shape(format!("subdomain {key:?} must map to a string")))?;
        let onion = match parsed.iter().find(|(seen, _)| *seen == text) {
            Some(&(_, onion)) => onion,
            None => {
                let onion = address(text, &format!("subdomains.{key}"))?;
                parsed.push((text, onion));
                onion
            }
        };
        out.insert(sub, onion);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key seeded with `seed`.
    fn key(seed: u8) -> SigningKey {
        SigningKey::from_seed(&[seed; 32])
    }

    /// The onion of [`key`]`(seed)`.
    fn onion(seed: u8) -> OnionAddress {
        OnionAddress::from_key(key(seed).public())
    }

    /// `example.tor` held by key 1, each subdomain pointing at the onion
    /// of the key with its seed, as canonical JSON.
    fn example(subdomains: &[(&str, u8)]) -> String {
        let name = RegisteredName::parse("example.tor").unwrap();
        let subdomains = subdomains
            .iter()
            .map(|&(label, seed)| (SubdomainKey::parse(label, &name).unwrap(), onion(seed)))
            .collect();
        let claim = Claim {
            name,
            subdomains,
            contact: "x".into(),
            serial: 1,
            issued: 1,
            expires: 2,
            work: 0,
        };
        Record::from_claim(claim, &key(1)).canonical()
    }

    #[test]
    fn each_address_spelled_in_a_record_is_checked_once() {
        crate::keys::init().unwrap();
        let text = example(&[("www", 1), ("blog", 2), ("me", 1), ("shop", 2)]);
        let checks = || crate::keys::POINT_CHECKS.with(std::cell::Cell::get);
        let before = checks();
        let parsed = Record::from_json(&text).unwrap();
        assert_eq!(checks() - before, 2, "one check for each of two addresses");
        assert_eq!(parsed.onion, onion(1));
        let pointed: Vec<(String, OnionAddress)> = parsed
            .subdomains
            .iter()
            .map(|(sub, onion)| (sub.to_string(), *onion))
            .collect();
        let want = [("blog", 2), ("me", 1), ("shop", 2), ("www", 1)]
            .map(|(label, seed)| (label.to_string(), onion(seed)));
        assert_eq!(pointed, want);
        // A subdomain spelled otherwise than the owner's onion is checked,
        // and refused when its key is not a valid point.
        let bad = text.replacen(&onion(2).to_string(), &bad_address(), 1);
        let refused = Record::from_json(&bad).unwrap_err();
        assert!(
            matches!(&refused, RecordError::Onion { field, error: OnionError::Key } if field == "subdomains.blog"),
            "{refused:?}"
        );
    }

    /// A well-formed v3 address (checksum and version right) whose key is
    /// a point of small order.
    fn bad_address() -> String {
        let mut key = [0u8; 32];
        key[0] = 1;
        let mut text = String::new();
        crate::onion::spell_into(&key, crate::onion::checksum(&key), &mut text);
        text
    }

    #[test]
    fn pointed_keys_reads_the_owner_and_every_subdomain_once() {
        crate::keys::init().unwrap();
        let text = example(&[("www", 2), ("blog", 2), ("me", 1)]);
        let mut want = vec![*key(1).public().as_bytes(), *key(2).public().as_bytes()];
        want.sort_unstable();
        assert_eq!(pointed_keys(&text), Ok(want));
        assert!(pointed_keys(r#"{"onion":"x.onion","subdomains":{}}"#).is_err());
        assert!(pointed_keys(r#"{"name":"a.tor"}"#).is_err());
    }
}
