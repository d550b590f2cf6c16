//! Evidence that the Quorum misbehaved (PROTOCOL.md §11.6), as files that
//! anyone can check offline: two conflicting heads (§10.5), or two records
//! of one name that the ownership rules (§6) forbid together.
//!
//! A witness runs [`OwnershipEvidence::check`] on every record it applies
//! against the record the name had before; servers keep what they find
//! with [`write_file`]; `onions-hs evidence` reads a file back with
//! [`EvidenceFile::from_json`] and [`EvidenceFile::verify`]. Valid evidence
//! needs no trust in any key: it convicts the key that signed it.

use crate::attest::{AttestError, Attestation};
use crate::head::{Evidence, HeadError};
use crate::keys::KeyBytes;
use crate::name::RegisteredName;
use crate::record::{Record, RecordError, INT_LIMIT};
use crate::store::Entry;
use serde_json::{json, Map, Value};
use sodiumoxide::crypto::hash::sha256;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The ownership rule (§6) two records of one name break together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Another onion took the name while the earlier record was live.
    NameTaken,
    /// The same onion's serial did not go up while the earlier record was
    /// live.
    StaleSerial,
    /// The same record was attested under two seqs.
    Duplicate,
}

impl Rule {
    /// Every rule, for parsing.
    const ALL: [Rule; 3] = [Rule::NameTaken, Rule::StaleSerial, Rule::Duplicate];

    /// The rule as evidence files spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::NameTaken => "name_taken",
            Rule::StaleSerial => "stale_serial",
            Rule::Duplicate => "duplicate",
        }
    }

    fn parse(text: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// One attested record at its seq, as in a `record` push: one side of
/// ownership evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attested {
    /// Its seq.
    pub seq: u64,
    /// The record.
    pub record: Record,
    /// Its attestation.
    pub attestation: Attestation,
}

impl Attested {
    /// Every key of an attested record in a file.
    const KEYS: [&'static str; 3] = ["attestation", "record", "seq"];

    /// The attested record of a stored entry, so that a witness can check
    /// what its store holds.
    pub fn of_entry(entry: &Entry) -> Result<Attested, EvidenceError> {
        let parse = |text: &str| {
            serde_json::from_str::<Value>(text)
                .map_err(|e| EvidenceError::StoredJson(e.to_string()))
        };
        Attested::from_parts(
            entry.seq,
            &parse(&entry.record)?,
            &parse(&entry.attestation)?,
        )
    }

    fn from_parts(
        seq: u64,
        record: &Value,
        attestation: &Value,
    ) -> Result<Attested, EvidenceError> {
        Ok(Attested {
            seq,
            record: Record::from_value(record).map_err(|why| EvidenceError::Record { seq, why })?,
            attestation: Attestation::from_value(attestation)
                .map_err(|why| EvidenceError::Attestation { seq, why })?,
        })
    }

    fn to_value(&self) -> Value {
        json!({
            "seq": self.seq,
            "record": self.record.to_value(),
            "attestation": self.attestation.to_value(),
        })
    }

    /// Parses `{"seq", "record", "attestation"}`, nothing more.
    fn from_value(value: &Value) -> Result<Attested, EvidenceError> {
        let map = value.as_object().ok_or(EvidenceError::RecordNotObject)?;
        if let Some(extra) = map.keys().find(|k| !Attested::KEYS.contains(&k.as_str())) {
            return Err(EvidenceError::UnknownKey(extra.clone()));
        }
        let seq = map
            .get("seq")
            .and_then(Value::as_u64)
            .filter(|n| *n < INT_LIMIT)
            .ok_or(EvidenceError::Seq)?;
        let part = |key: &'static str| map.get(key).ok_or(EvidenceError::Missing { key, seq });
        Attested::from_parts(seq, part("record")?, part("attestation")?)
    }

    /// The attestation names this record and this seq, and its signature
    /// holds.
    fn check(&self) -> Result<(), EvidenceError> {
        let seq = self.seq;
        if self.attestation.seq != seq {
            return Err(EvidenceError::AttestedSeq {
                seq,
                attested: self.attestation.seq,
            });
        }
        if self.attestation.record != self.record.id() {
            return Err(EvidenceError::OtherRecord(seq));
        }
        if !self.attestation.signature_holds() {
            return Err(EvidenceError::Signature(seq));
        }
        Ok(())
    }
}

/// Two records of one registered name, attested by one Quorum key, that
/// §6 forbids together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnershipEvidence {
    /// The rule broken.
    pub rule: Rule,
    /// The record with the lower seq (E).
    pub earlier: Attested,
    /// The record with the higher seq (L).
    pub later: Attested,
}

impl OwnershipEvidence {
    /// The rule that accepting `later` broke given `earlier`, the record of
    /// the same name at a lower seq, if any: what a witness checks of
    /// every record it applies against the record the name had before.
    /// Signatures are not checked here ([`OwnershipEvidence::verify`] does).
    pub fn check(earlier: &Attested, later: &Attested) -> Option<Rule> {
        let (e, l) = (&earlier.record, &later.record);
        if e.name != l.name || earlier.seq >= later.seq {
            return None;
        }
        if e.id() == l.id() {
            return Some(Rule::Duplicate);
        }
        if e.expires <= later.attestation.accepted {
            return None;
        }
        if e.onion != l.onion {
            return Some(Rule::NameTaken);
        }
        (l.serial <= e.serial).then_some(Rule::StaleSerial)
    }

    /// Evidence that `later` broke `rule` given `earlier`; see
    /// [`OwnershipEvidence::check`] for when it does.
    pub fn new(rule: Rule, earlier: Attested, later: Attested) -> OwnershipEvidence {
        OwnershipEvidence {
            rule,
            earlier,
            later,
        }
    }

    /// The evidence, if the stored `later` broke a rule given `earlier`:
    /// a witness's check of two entries of its store.
    pub fn between(earlier: &Entry, later: &Entry) -> Option<OwnershipEvidence> {
        let earlier = Attested::of_entry(earlier).ok()?;
        let later = Attested::of_entry(later).ok()?;
        let rule = OwnershipEvidence::check(&earlier, &later)?;
        Some(OwnershipEvidence::new(rule, earlier, later))
    }

    /// The evidence as its file holds it.
    pub fn to_value(&self) -> Value {
        json!({
            "v": 2,
            "kind": "ownership",
            "rule": self.rule.as_str(),
            "records": [self.earlier.to_value(), self.later.to_value()],
        })
    }

    /// Parses ownership evidence strictly (exactly the keys of §11.6); it
    /// is not verified yet.
    pub fn from_value(value: &Value) -> Result<OwnershipEvidence, EvidenceError> {
        let map = value.as_object().ok_or(EvidenceError::NotObject)?;
        OwnershipEvidence::from_map(map)
    }

    fn from_map(map: &Map<String, Value>) -> Result<OwnershipEvidence, EvidenceError> {
        let shape_holds = map.len() == 4
            && map.get("v").and_then(Value::as_u64) == Some(2)
            && map.get("kind").and_then(Value::as_str) == Some("ownership");
        if !shape_holds {
            return Err(EvidenceError::Shape);
        }
        let rule = map
            .get("rule")
            .and_then(Value::as_str)
            .and_then(Rule::parse)
            .ok_or(EvidenceError::Rule)?;
        let records = map
            .get("records")
            .and_then(Value::as_array)
            .filter(|r| r.len() == 2)
            .ok_or(EvidenceError::RecordCount)?;
        Ok(OwnershipEvidence::new(
            rule,
            Attested::from_value(&records[0])?,
            Attested::from_value(&records[1])?,
        ))
    }

    /// Checks everything the evidence claims: both attestations name their
    /// record and seq and verify with one key, the records are of one name
    /// in seq order, and together they break the rule named. Returns the
    /// key convicted.
    pub fn verify(&self) -> Result<KeyBytes, EvidenceError> {
        let (e, l) = (&self.earlier, &self.later);
        e.check()?;
        l.check()?;
        if e.attestation.quorum != l.attestation.quorum {
            return Err(EvidenceError::DifferentKeys);
        }
        if e.record.name != l.record.name {
            return Err(EvidenceError::TwoNames(
                e.record.name.clone(),
                l.record.name.clone(),
            ));
        }
        if e.seq >= l.seq {
            return Err(EvidenceError::Order {
                earlier: e.seq,
                later: l.seq,
            });
        }
        match OwnershipEvidence::check(e, l) {
            Some(rule) if rule == self.rule => Ok(e.attestation.quorum),
            Some(broken) => Err(EvidenceError::WrongRule {
                broken,
                named: self.rule,
            }),
            None => Err(EvidenceError::NoRule),
        }
    }

    /// What the evidence shows, in words, once verified.
    fn offence(&self) -> String {
        let (e, l) = (&self.earlier, &self.later);
        let name = &e.record.name;
        match self.rule {
            Rule::Duplicate => format!(
                "attested the same record of {name} (id {}) at seq {} and again at seq {} (duplicate)",
                e.record.id().to_base64(),
                e.seq,
                l.seq
            ),
            Rule::NameTaken => format!(
                "attested {name} to {} at seq {} (live until {}), then to {} at seq {} (accepted {}) while the first was live (name_taken)",
                e.record.onion, e.seq, e.record.expires, l.record.onion, l.seq, l.attestation.accepted
            ),
            Rule::StaleSerial => format!(
                "attested {name} for {} with serial {} at seq {} (live until {}), then serial {} at seq {} (accepted {}) without a higher serial (stale_serial)",
                e.record.onion, e.record.serial, e.seq, e.record.expires, l.record.serial, l.seq, l.attestation.accepted
            ),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::SignedHead;
    use crate::keys::SigningKey;
    use crate::name::RegisteredName;
    use crate::record::Claim;
    use std::collections::BTreeMap;

    const T: u64 = 1_800_000_000;
    const DAY: u64 = 86_400;

    fn quorum() -> SigningKey {
        SigningKey::from_seed(&[1; 32])
    }

    fn owner(n: u8) -> SigningKey {
        SigningKey::from_seed(&[n + 20; 32])
    }

    /// A record of `name` by owner `n` with `serial`, issued at `issued`,
    /// live a day.
    fn record(name: &str, n: u8, serial: u64, issued: u64) -> Record {
        let claim = Claim {
            name: RegisteredName::parse(name).unwrap(),
            subdomains: BTreeMap::new(),
            contact: String::new(),
            serial,
            issued,
            expires: issued + DAY,
            work: 0,
        };
        let mut record = Record::from_claim(claim, &owner(n));
        record.sign_with(&owner(n));
        record
    }

    /// `record` attested by `key` at `seq`, accepted at its issue time.
    fn attested_by(key: &SigningKey, seq: u64, record: Record) -> Attested {
        let attestation = Attestation::sign(record.id(), seq, record.issued, key);
        Attested {
            seq,
            record,
            attestation,
        }
    }

    fn attested(seq: u64, record: Record) -> Attested {
        attested_by(&quorum(), seq, record)
    }

    /// E by owner 0 at seq 1; L by owner `n` with `serial` at seq 2,
    /// `after` seconds later.
    fn pair(n: u8, serial: u64, after: u64) -> (Attested, Attested) {
        (
            attested(1, record("example.tor", 0, 5, T)),
            attested(2, record("example.tor", n, serial, T + after)),
        )
    }

    fn name_taken() -> OwnershipEvidence {
        let (e, l) = pair(1, 1, 60);
        OwnershipEvidence::new(Rule::NameTaken, e, l)
    }

    #[test]
    fn name_taken_while_live_and_not_after_expiry() {
        let (e, l) = pair(1, 1, 60);
        assert_eq!(OwnershipEvidence::check(&e, &l), Some(Rule::NameTaken));
        let (e, l) = pair(1, 1, DAY);
        assert_eq!(OwnershipEvidence::check(&e, &l), None, "the name was free");
    }

    #[test]
    fn stale_serial_while_live_and_not_with_a_higher_serial() {
        for serial in [4, 5] {
            let (e, l) = pair(0, serial, 60);
            assert_eq!(OwnershipEvidence::check(&e, &l), Some(Rule::StaleSerial));
        }
        let (e, l) = pair(0, 6, 60);
        assert_eq!(OwnershipEvidence::check(&e, &l), None);
        let (e, l) = pair(0, 1, DAY + 1);
        assert_eq!(OwnershipEvidence::check(&e, &l), None, "the name was free");
    }

    #[test]
    fn duplicate_is_one_record_under_two_seqs() {
        let r = record("example.tor", 0, 5, T);
        let (e, l) = (attested(1, r.clone()), attested(9, r.clone()));
        assert_eq!(OwnershipEvidence::check(&e, &l), Some(Rule::Duplicate));
        let ev = OwnershipEvidence::new(Rule::Duplicate, e.clone(), l);
        assert_eq!(ev.verify(), Ok(quorum().public().into()));
        assert_eq!(OwnershipEvidence::check(&e, &e), None, "one seq");
    }

    #[test]
    fn other_names_and_reversed_seqs_break_nothing() {
        let e = attested(1, record("example.tor", 0, 5, T));
        let other = attested(2, record("other.tor", 1, 1, T + 60));
        assert_eq!(OwnershipEvidence::check(&e, &other), None);
        let (e, l) = pair(1, 1, 60);
        assert_eq!(OwnershipEvidence::check(&l, &e), None);
    }

    #[test]
    fn valid_evidence_round_trips_and_convicts_the_key() {
        let evidence = name_taken();
        let text = evidence.to_value().to_string();
        let file = EvidenceFile::from_json(&text).unwrap();
        assert_eq!(file, EvidenceFile::Ownership(Box::new(evidence.clone())));
        assert_eq!(file.kind(), "ownership");
        let conviction = file.verify().unwrap();
        assert_eq!(conviction.quorum, KeyBytes::from(quorum().public()));
        let said = conviction.to_string();
        for part in [
            quorum().public().to_base64().as_str(),
            "name_taken",
            "seq 1",
            "seq 2",
        ] {
            assert!(said.contains(part), "{said}");
        }
        let (e, l) = pair(0, 5, 60);
        let stale = OwnershipEvidence::new(Rule::StaleSerial, e, l);
        assert_eq!(
            OwnershipEvidence::from_value(&stale.to_value()),
            Ok(stale.clone())
        );
        assert!(stale.verify().is_ok());
    }

    /// A change to the JSON of evidence.
    type Edit = Box<dyn FnOnce(&mut Value)>;

    /// The verdict on name_taken evidence with `edit` made to its JSON.
    fn tampered(edit: impl FnOnce(&mut Value)) -> Result<Conviction, EvidenceError> {
        let mut value = name_taken().to_value();
        edit(&mut value);
        EvidenceFile::from_json(&value.to_string())?.verify()
    }

    #[test]
    fn tampered_evidence_is_refused() {
        let other_onion = record("example.tor", 3, 1, T + 60).to_value()["onion"].clone();
        let other_key = SigningKey::from_seed(&[9; 32]);
        let foreign = attested_by(&other_key, 2, record("example.tor", 1, 1, T + 60));
        let edits: Vec<(&str, Edit)> = vec![
            (
                "another onion",
                Box::new(move |v| v["records"][1]["record"]["onion"] = other_onion),
            ),
            (
                "another seq",
                Box::new(|v| v["records"][1]["seq"] = 3.into()),
            ),
            (
                "a forged time",
                Box::new(|v| v["records"][1]["attestation"]["accepted"] = (T + 61).into()),
            ),
            (
                "another key",
                Box::new(move |v| v["records"][1] = foreign.to_value()),
            ),
            (
                "the wrong rule",
                Box::new(|v| v["rule"] = "stale_serial".into()),
            ),
            ("an unknown rule", Box::new(|v| v["rule"] = "other".into())),
            (
                "reversed",
                Box::new(|v| {
                    let records = v["records"].as_array_mut().unwrap();
                    records.swap(0, 1);
                }),
            ),
            ("an extra key", Box::new(|v| v["note"] = "x".into())),
            (
                "an extra record key",
                Box::new(|v| v["records"][0]["note"] = "x".into()),
            ),
            (
                "one record",
                Box::new(|v| {
                    v["records"].as_array_mut().unwrap().pop();
                }),
            ),
            ("another version", Box::new(|v| v["v"] = 3.into())),
            ("another kind", Box::new(|v| v["kind"] = "other".into())),
        ];
        for (what, edit) in edits {
            assert!(tampered(edit).is_err(), "{what} is refused");
        }
        assert!(EvidenceFile::from_json("[]").is_err());
        assert!(EvidenceFile::from_json("not json").is_err());
    }

    #[test]
    fn records_of_two_names_are_refused() {
        let e = attested(1, record("example.tor", 0, 5, T));
        let l = attested(2, record("other.tor", 1, 1, T + 60));
        let evidence = OwnershipEvidence::new(Rule::NameTaken, e, l);
        assert!(matches!(
            evidence.verify(),
            Err(EvidenceError::TwoNames(..))
        ));
    }

    fn fork() -> Evidence {
        let a = SignedHead::sign(3, T, 2, [1; 32], &quorum());
        let b = SignedHead::sign(3, T, 2, [2; 32], &quorum());
        Evidence::new(a, b).unwrap()
    }

    #[test]
    fn equivocation_is_the_heads_object_and_says_how() {
        let text = fork().to_value().to_string();
        let file = EvidenceFile::from_json(&text).unwrap();
        assert_eq!(file, EvidenceFile::Equivocation(Box::new(fork())));
        assert_eq!(file.to_value(), fork().to_value());
        let said = file.verify().unwrap().to_string();
        assert!(said.contains("fork") && said.contains("seq 3"), "{said}");
        let a = SignedHead::sign(3, T + 10, 2, [1; 32], &quorum());
        let b = SignedHead::sign(4, T, 3, [2; 32], &quorum());
        let rollback = EvidenceFile::Equivocation(Box::new(Evidence::new(a, b).unwrap()));
        assert!(rollback.verify().unwrap().offence.contains("rollback"));
        let mut built = fork();
        built.heads[1].time += 1;
        assert!(EvidenceFile::Equivocation(Box::new(built))
            .verify()
            .is_err());
    }

    #[test]
    fn files_are_written_once_per_content() {
        let dir = std::env::temp_dir().join(format!("onions-evidence-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ownership = EvidenceFile::Ownership(Box::new(name_taken()));
        let first = write_file(&dir, &ownership).unwrap();
        let again = write_file(&dir, &ownership).unwrap();
        assert_eq!(first, again);
        let heads = write_file(&dir, &EvidenceFile::Equivocation(Box::new(fork()))).unwrap();
        let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name(&first).starts_with("evidence-ownership-"), "{first:?}");
        assert!(
            name(&heads).starts_with("evidence-equivocation-"),
            "{heads:?}"
        );
        let hash = name(&first).rsplit('-').next().unwrap().to_owned();
        assert_eq!(hash.len(), "01234567.json".len());
        let text = std::fs::read_to_string(&first).unwrap();
        assert_eq!(EvidenceFile::from_json(&text).unwrap(), ownership);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
