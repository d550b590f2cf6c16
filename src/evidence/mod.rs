//! Evidence that the Quorum misbehaved (PROTOCOL.md §11.6), as files that
//! anyone can check offline: two conflicting heads (§10.5), or two records
//! of one name that the ownership rules (§6) forbid together.
//!
//! A witness runs [`OwnershipEvidence::check`] on every record it applies
//! against the record the name had before; servers keep what they find
//! with [`write_file`]; `onions-hs evidence` reads a file back with
//! [`EvidenceFile::from_json`] and [`EvidenceFile::verify`]. Valid evidence
//! needs no trust in any key: it convicts the key that signed it.
//!
//! `ownership` holds the rules two records break together and the
//! evidence of it; this file holds what both kinds share: the file, its
//! errors and its checking.

use crate::attest::AttestError;
use crate::head::{Evidence, HeadError};
use crate::keys::KeyBytes;
use crate::name::RegisteredName;
use crate::record::RecordError;
use serde_json::Value;
use sodiumoxide::crypto::hash::sha256;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

mod ownership;
#[cfg(test)]
mod tests;

pub use ownership::{Attested, OwnershipEvidence, Rule};

/// Why evidence does not parse, or proves nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceError {
    /// A stored record or attestation is not JSON.
    StoredJson(String),
    /// The file is not JSON.
    NotJson(String),
    /// The evidence is not a JSON object.
    NotObject,
    /// An entry of `records` is not a JSON object.
    RecordNotObject,
    /// An entry of `records` has a key it must not have.
    UnknownKey(String),
    /// A seq that is not an integer below 2^53.
    Seq,
    /// An entry of `records` lacks `record` or `attestation`.
    Missing {
        /// The key missing.
        key: &'static str,
        /// The entry's seq.
        seq: u64,
    },
    /// A record that does not parse.
    Record {
        /// Its seq.
        seq: u64,
        /// Why.
        why: RecordError,
    },
    /// An attestation that does not parse.
    Attestation {
        /// Its seq.
        seq: u64,
        /// Why.
        why: AttestError,
    },
    /// Ownership evidence whose keys are not exactly v, kind, rule, records.
    Shape,
    /// An unknown rule.
    Rule,
    /// Not exactly two records.
    RecordCount,
    /// Equivocation evidence whose heads do not parse.
    Heads(HeadError),
    /// An unknown kind.
    UnknownKind(String),
    /// The attestation of a record is for another seq.
    AttestedSeq {
        /// The record's seq.
        seq: u64,
        /// The attestation's seq.
        attested: u64,
    },
    /// The attestation at this seq names another record.
    OtherRecord(u64),
    /// The attestation at this seq does not verify.
    Signature(u64),
    /// The two attestations are signed by different keys.
    DifferentKeys,
    /// The records are of two names.
    TwoNames(RegisteredName, RegisteredName),
    /// The earlier record does not come first.
    Order {
        /// The earlier record's seq.
        earlier: u64,
        /// The later record's seq.
        later: u64,
    },
    /// The records break another rule than the one named.
    WrongRule {
        /// The rule they break.
        broken: Rule,
        /// The rule named.
        named: Rule,
    },
    /// The records break no rule.
    NoRule,
    /// A head's signature does not verify.
    HeadSignature,
    /// The heads do not conflict.
    NoConflict,
}

impl fmt::Display for EvidenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvidenceError::StoredJson(why) => write!(f, "{why}"),
            EvidenceError::NotJson(why) => write!(f, "not JSON: {why}"),
            EvidenceError::NotObject => write!(f, "evidence must be a JSON object"),
            EvidenceError::RecordNotObject => write!(f, "each of records must be a JSON object"),
            EvidenceError::UnknownKey(key) => write!(f, "unknown key {key:?} in records"),
            EvidenceError::Seq => write!(f, "seq must be an integer below 2^53"),
            EvidenceError::Missing { key, seq } => write!(f, "{key} missing at seq {seq}"),
            EvidenceError::Record { seq, why } => write!(f, "record at seq {seq}: {why}"),
            EvidenceError::Attestation { seq, why } => {
                write!(f, "attestation at seq {seq}: {why}")
            }
            EvidenceError::Shape => write!(
                f,
                "ownership evidence has exactly v (2), kind (\"ownership\"), rule and records"
            ),
            EvidenceError::Rule => write!(f, "rule must be name_taken, stale_serial or duplicate"),
            EvidenceError::RecordCount => write!(f, "records must hold exactly two records"),
            EvidenceError::Heads(e) => write!(f, "{e}"),
            EvidenceError::UnknownKind(kind) => write!(
                f,
                "unknown kind {kind}: evidence is two heads (no kind) or \"ownership\""
            ),
            EvidenceError::AttestedSeq { seq, attested } => write!(
                f,
                "the record at seq {seq} has an attestation for seq {attested}"
            ),
            EvidenceError::OtherRecord(seq) => {
                write!(f, "the attestation at seq {seq} names another record")
            }
            EvidenceError::Signature(seq) => {
                write!(f, "the attestation at seq {seq} does not verify")
            }
            EvidenceError::DifferentKeys => {
                write!(f, "the two attestations are signed by different keys")
            }
            EvidenceError::TwoNames(a, b) => write!(f, "the records are of two names, {a} and {b}"),
            EvidenceError::Order { earlier, later } => write!(
                f,
                "the earlier record (seq {earlier}) must come first, below the later (seq {later})"
            ),
            EvidenceError::WrongRule { broken, named } => {
                write!(f, "the records break {broken}, not {named}")
            }
            EvidenceError::NoRule => write!(f, "the two records break no ownership rule"),
            EvidenceError::HeadSignature => write!(f, "a head's signature does not verify"),
            EvidenceError::NoConflict => write!(
                f,
                "the two heads do not conflict, or are signed by different keys"
            ),
        }
    }
}

impl std::error::Error for EvidenceError {}

/// The content of an evidence file, of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceFile {
    /// Two conflicting heads of one key (§10.5).
    Equivocation(Box<Evidence>),
    /// Two records the ownership rules forbid together.
    Ownership(Box<OwnershipEvidence>),
}

/// What valid evidence proves: which Quorum key misbehaved, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conviction {
    /// The Quorum key that signed both halves.
    pub quorum: KeyBytes,
    /// What it did, in words, with the seqs (and heads) involved.
    pub offence: String,
}

impl fmt::Display for Conviction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quorum key {} {}", self.quorum.to_base64(), self.offence)
    }
}

impl EvidenceFile {
    /// The kind, as file names spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            EvidenceFile::Equivocation(_) => "equivocation",
            EvidenceFile::Ownership(_) => "ownership",
        }
    }

    /// Parses an evidence file's text, strictly; it is not verified yet
    /// (equivocation evidence is, by [`Evidence::from_value`]).
    pub fn from_json(text: &str) -> Result<EvidenceFile, EvidenceError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| EvidenceError::NotJson(e.to_string()))?;
        let map = value.as_object().ok_or(EvidenceError::NotObject)?;
        match map.get("kind") {
            None => Evidence::from_value(&value)
                .map(|e| EvidenceFile::Equivocation(Box::new(e)))
                .map_err(EvidenceError::Heads),
            Some(kind) if kind.as_str() == Some("ownership") => Ok(EvidenceFile::Ownership(
                Box::new(OwnershipEvidence::from_map(map)?),
            )),
            Some(other) => Err(EvidenceError::UnknownKind(other.to_string())),
        }
    }

    /// The evidence as its file holds it.
    pub fn to_value(&self) -> Value {
        match self {
            EvidenceFile::Equivocation(evidence) => evidence.to_value(),
            EvidenceFile::Ownership(evidence) => evidence.to_value(),
        }
    }

    /// Checks the evidence; returns what it proves, or why it proves
    /// nothing.
    pub fn verify(&self) -> Result<Conviction, EvidenceError> {
        match self {
            EvidenceFile::Equivocation(evidence) => verify_equivocation(evidence),
            EvidenceFile::Ownership(evidence) => Ok(Conviction {
                quorum: evidence.verify()?,
                offence: evidence.offence(),
            }),
        }
    }
}

/// Checks two heads again (their fields are public, so they may have been
/// built rather than parsed) and says how they conflict.
fn verify_equivocation(evidence: &Evidence) -> Result<Conviction, EvidenceError> {
    let [a, b] = &evidence.heads;
    if !a.signature_holds() || !b.signature_holds() {
        return Err(EvidenceError::HeadSignature);
    }
    if !a.conflicts(b) {
        return Err(EvidenceError::NoConflict);
    }
    let offence = if (a.seq, a.time) == (b.seq, b.time) {
        format!(
            "signed two different heads for seq {} time {}: sizes {} and {}, roots {} and {} (a fork)",
            a.seq,
            a.time,
            a.size,
            b.size,
            crate::codec::b64_encode(&a.root),
            crate::codec::b64_encode(&b.root)
        )
    } else {
        format!(
            "signed head seq {} at time {} and head seq {} at time {}: one is higher in seq, the other in time (a rollback)",
            a.seq, a.time, b.seq, b.time
        )
    };
    Ok(Conviction {
        quorum: a.quorum,
        offence,
    })
}

/// Writes `evidence` to `evidence-<kind>-<unix time>-<hash>.json` in
/// `state_dir` (hash: the first 8 hex digits of the content's SHA-256),
/// durably: a sibling file is written and synced, renamed, and the
/// directory synced. The same evidence twice is one file: the existing one
/// is returned.
pub fn write_file(state_dir: &Path, evidence: &EvidenceFile) -> io::Result<PathBuf> {
    let text = format!("{}\n", crate::canonical::to_string(&evidence.to_value()));
    let kind = evidence.kind();
    let hash: String = sha256::hash(text.as_bytes()).0[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Some(existing) = same_file(state_dir, kind, &hash, text.as_bytes())? {
        return Ok(existing);
    }
    let path = state_dir.join(format!(
        "evidence-{kind}-{}-{hash}.json",
        crate::clock::now()
    ));
    crate::operator::write_atomically(&path, text.as_bytes())?;
    std::fs::File::open(state_dir)?.sync_all()?;
    Ok(path)
}

/// An evidence file in `dir` of `kind` whose name ends in `hash` and whose
/// content is `bytes`.
fn same_file(dir: &Path, kind: &str, hash: &str, bytes: &[u8]) -> io::Result<Option<PathBuf>> {
    let prefix = format!("evidence-{kind}-");
    let suffix = format!("-{hash}.json");
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let named = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(&suffix));
        if named && std::fs::read(&path).is_ok_and(|b| b == bytes) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}
