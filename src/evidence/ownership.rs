//! Ownership evidence (PROTOCOL.md §11.6, §12.4): one attested record at
//! its seq ([`Attested`]), and two of one name that the ownership rules
//! forbid together ([`OwnershipEvidence`]), with the rules themselves as a
//! witness checks them ([`OwnershipEvidence::check`]).

use crate::attest::Attestation;
use crate::canonical::INT_LIMIT;
use crate::keys::KeyBytes;
use crate::record::Record;
use crate::store::Entry;
use serde_json::{json, Map, Value};
use std::fmt;

use super::EvidenceError;

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
    /// A record carrying a transfer statement was accepted although the
    /// statement did not hand over the live record (§12.2).
    Transfer,
    /// A release was accepted for a name its onion did not hold (§12.3).
    Release,
}

impl Rule {
    /// Every rule, for parsing.
    const ALL: [Rule; 5] = [
        Rule::NameTaken,
        Rule::StaleSerial,
        Rule::Duplicate,
        Rule::Transfer,
        Rule::Release,
    ];

    /// The rule as evidence files spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::NameTaken => "name_taken",
            Rule::StaleSerial => "stale_serial",
            Rule::Duplicate => "duplicate",
            Rule::Transfer => "transfer",
            Rule::Release => "release",
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

    pub(super) fn to_value(&self) -> Value {
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
        let accepted = later.attestation.accepted;
        let live = e.expires > accepted;
        if let Some(t) = &l.transfer {
            let handed_over = live
                && e.onion == t.from
                && e.serial == t.serial
                && e.onion != t.to
                && t.expires > accepted;
            return (!handed_over).then_some(Rule::Transfer);
        }
        if l.release && !(live && e.onion == l.onion) {
            return Some(Rule::Release);
        }
        if !live {
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

    pub(super) fn from_map(map: &Map<String, Value>) -> Result<OwnershipEvidence, EvidenceError> {
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
    pub(super) fn offence(&self) -> String {
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
            Rule::Transfer => format!(
                "attested {name} for {} with serial {} at seq {} (live until {}), then handed it to {} at seq {} (accepted {}) without that owner's statement for that serial (transfer)",
                e.record.onion, e.record.serial, e.seq, e.record.expires, l.record.onion, l.seq, l.attestation.accepted
            ),
            Rule::Release => format!(
                "attested {name} for {} at seq {} (live until {}), then a release by {} at seq {} (accepted {}) that did not hold it (release)",
                e.record.onion, e.seq, e.record.expires, l.record.onion, l.seq, l.attestation.accepted
            ),
        }
    }
}
