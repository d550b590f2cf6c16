//! Evidence that the Quorum misbehaved (PROTOCOL.md §11.6), as files that
//! anyone can check offline: two conflicting heads (§10.5), or two records
//! of one name that the ownership rules (§6) forbid together.
//!
//! Servers write what they find with [`write_value`]; `onions-hs evidence`
//! reads a file back with [`Found::from_json`] and [`Found::verify`].
//! Valid evidence needs no trust in any key: it convicts the key that
//! signed it.

use crate::attest::Attestation;
use crate::head::{Evidence, HeadError};
use crate::keys::KeyBytes;
use crate::record::Record;
use crate::store::Entry;
use serde_json::{json, Map, Value};
use sodiumoxide::crypto::hash::sha256;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The ownership rule two records break together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Another onion took the name while the first record was live.
    NameTaken,
    /// The same onion's serial did not go up while the first was live.
    StaleSerial,
    /// The same record under two seqs.
    Duplicate,
}

impl Rule {
    /// The rule as files spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::NameTaken => "name_taken",
            Rule::StaleSerial => "stale_serial",
            Rule::Duplicate => "duplicate",
        }
    }

    fn parse(text: &str) -> Option<Rule> {
        [Rule::NameTaken, Rule::StaleSerial, Rule::Duplicate]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// One attested record, as in a `record` push.
#[derive(Debug, Clone, PartialEq)]
pub struct Attested {
    /// Its seq.
    pub seq: u64,
    /// The record.
    pub record: Record,
    /// Its attestation.
    pub attestation: Attestation,
}

impl Attested {
    /// The attested record of a stored entry.
    pub fn of_entry(entry: &Entry) -> Result<Attested, String> {
        let record: Value = serde_json::from_str(&entry.record).map_err(|e| e.to_string())?;
        let attestation: Value =
            serde_json::from_str(&entry.attestation).map_err(|e| e.to_string())?;
        Attested::from_parts(entry.seq, &record, &attestation)
    }

    fn from_parts(seq: u64, record: &Value, attestation: &Value) -> Result<Attested, String> {
        Ok(Attested {
            seq,
            record: Record::from_value(record).map_err(|e| format!("record: {e}"))?,
            attestation: Attestation::from_value(attestation)
                .map_err(|e| format!("attestation: {e}"))?,
        })
    }

    fn to_value(&self) -> Value {
        json!({
            "seq": self.seq,
            "record": self.record.to_value(),
            "attestation": self.attestation.to_value(),
        })
    }

    fn from_value(value: &Value) -> Result<Attested, String> {
        let map = value
            .as_object()
            .ok_or("a record entry must be an object")?;
        if map.len() != 3 {
            return Err("a record entry has exactly seq, record and attestation".into());
        }
        let seq = map
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or("seq must be an integer")?;
        Attested::from_parts(
            seq,
            map.get("record").ok_or("record missing")?,
            map.get("attestation").ok_or("attestation missing")?,
        )
    }

    /// Checks the attestation against its record, seq and signature.
    fn check(&self) -> Result<(), String> {
        if self.attestation.seq != self.seq {
            return Err(format!(
                "seq {} has an attestation for another seq",
                self.seq
            ));
        }
        if self.attestation.record != self.record.id() {
            return Err(format!(
                "the attestation at seq {} names another record",
                self.seq
            ));
        }
        if !self.attestation.signature_holds() {
            return Err(format!(
                "the attestation at seq {} does not verify",
                self.seq
            ));
        }
        Ok(())
    }
}

/// Two records of one name, attested by one key, that §6 forbids.
#[derive(Debug, Clone, PartialEq)]
pub struct Ownership {
    /// The rule broken.
    pub rule: Rule,
    /// The earlier record.
    pub earlier: Attested,
    /// The later record.
    pub later: Attested,
}

impl Ownership {
    /// The rule that `later` breaks given `earlier` (same name, lower
    /// seq), if any: what a witness checks of every record it applies.
    pub fn rule_between(earlier: &Attested, later: &Attested) -> Option<Rule> {
        let (e, l) = (&earlier.record, &later.record);
        if e.name != l.name || earlier.seq >= later.seq {
            return None;
        }
        if e.id() == l.id() {
            return Some(Rule::Duplicate);
        }
        let live = e.expires > later.attestation.accepted;
        if !live {
            return None;
        }
        if e.onion != l.onion {
            return Some(Rule::NameTaken);
        }
        (l.serial <= e.serial).then_some(Rule::StaleSerial)
    }

    /// The evidence, if the stored `later` breaks a rule given `earlier`.
    pub fn between(earlier: &Entry, later: &Entry) -> Option<Ownership> {
        let earlier = Attested::of_entry(earlier).ok()?;
        let later = Attested::of_entry(later).ok()?;
        let rule = Ownership::rule_between(&earlier, &later)?;
        Some(Ownership {
            rule,
            earlier,
            later,
        })
    }

    /// The evidence as JSON.
    pub fn to_value(&self) -> Value {
        json!({
            "v": 2,
            "kind": "ownership",
            "rule": self.rule.as_str(),
            "records": [self.earlier.to_value(), self.later.to_value()],
        })
    }

    /// Parses ownership evidence (not yet verified).
    fn from_map(map: &Map<String, Value>) -> Result<Ownership, String> {
        if map.len() != 4 || map.get("v").and_then(Value::as_u64) != Some(2) {
            return Err("ownership evidence has exactly v (2), kind, rule and records".into());
        }
        let rule = map
            .get("rule")
            .and_then(Value::as_str)
            .and_then(Rule::parse)
            .ok_or("rule must be name_taken, stale_serial or duplicate")?;
        let records = map
            .get("records")
            .and_then(Value::as_array)
            .filter(|r| r.len() == 2)
            .ok_or("records must hold two entries")?;
        Ok(Ownership {
            rule,
            earlier: Attested::from_value(&records[0])?,
            later: Attested::from_value(&records[1])?,
        })
    }

    /// Checks that the evidence proves what it says; returns the key
    /// convicted.
    pub fn verify(&self) -> Result<KeyBytes, String> {
        self.earlier.check()?;
        self.later.check()?;
        if self.earlier.attestation.quorum != self.later.attestation.quorum {
            return Err("the two attestations are by different keys".into());
        }
        match Ownership::rule_between(&self.earlier, &self.later) {
            Some(rule) if rule == self.rule => Ok(self.earlier.attestation.quorum),
            Some(other) => Err(format!(
                "the records break {}, not {}",
                other.as_str(),
                self.rule.as_str()
            )),
            None => Err("the two records break no ownership rule".into()),
        }
    }
}

/// An evidence file's content.
#[derive(Debug, Clone)]
pub enum Found {
    /// Two conflicting heads.
    Equivocation(Box<Evidence>),
    /// Two records the ownership rules forbid together.
    Ownership(Box<Ownership>),
}

impl Found {
    /// Parses an evidence file.
    pub fn from_json(text: &str) -> Result<Found, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let map = value.as_object().ok_or("evidence must be a JSON object")?;
        match map.get("kind").and_then(Value::as_str) {
            Some("ownership") => Ok(Found::Ownership(Box::new(Ownership::from_map(map)?))),
            Some(other) => Err(format!("unknown kind {other:?}")),
            None => Evidence::from_value(&value)
                .map(|e| Found::Equivocation(Box::new(e)))
                .map_err(|e: HeadError| e.to_string()),
        }
    }

    /// Checks it; returns what it proves, in words.
    pub fn verify(&self) -> Result<String, String> {
        match self {
            Found::Equivocation(evidence) => {
                let [a, b] = &evidence.heads;
                Ok(format!(
                    "Quorum key {} signed two conflicting heads: seq {} time {} and seq {} time {}",
                    a.quorum.to_base64(),
                    a.seq,
                    a.time,
                    b.seq,
                    b.time
                ))
            }
            Found::Ownership(o) => {
                let key = o.verify()?;
                Ok(format!(
                    "Quorum key {} broke the ownership rule {} for {}: seq {} then seq {}",
                    key.to_base64(),
                    o.rule.as_str(),
                    o.later.record.name,
                    o.earlier.seq,
                    o.later.seq
                ))
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes evidence `value` to `evidence-<kind>-<time>-<hash>.json` in
/// `dir`, durably; the same evidence twice is one file.
pub fn write_value(dir: &Path, value: &Value) -> io::Result<PathBuf> {
    let text = format!("{}\n", crate::canonical::to_string(value));
    let hash = sha256::hash(text.as_bytes()).0;
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("equivocation");
    let short: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    if let Some(existing) = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&format!("evidence-{kind}-"))
                    && n.ends_with(&format!("-{short}.json"))
            })
        })
    {
        return Ok(existing);
    }
    let path = dir.join(format!(
        "evidence-{kind}-{}-{short}.json",
        crate::clock::now()
    ));
    crate::operator::write_atomically(&path, text.as_bytes())?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(path)
}
