//! Fuzz target `objects`: the bytes as JSON (anything else is skipped)
//! through every parser of a signed object: records, attestations, heads,
//! proofs, cosignatures and evidence files.
//!
//! A finding is a panic, or a round trip that does not hold: whatever
//! parses encodes (to a value, and to canonical text) to what parses to the
//! same object. A record that parses also goes through the verifier's
//! checks, with its attestation when the JSON holds one (as a `record`
//! push or an entry of ownership evidence does), under the worked
//! examples' Quorum key.

use crate::trust;
use onions::attest::Attestation;
use onions::canonical;
use onions::cosign::Cosignature;
use onions::evidence::EvidenceFile;
use onions::head::{Evidence, SignedHead};
use onions::merkle::{LeafKey, Proof};
use onions::name::RegisteredName;
use onions::record::{Record, RecordId};
use onions::verify::check_static_rules;
use serde_json::Value;

/// Runs one input; panics only on a finding.
pub fn run(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let record = Record::from_value(&value).ok();
    if let Some(record) = &record {
        record_round_trips(record);
        let _ = (record.id(), record.work_body(), check_static_rules(record));
        let _ = trust::verifiers()[1].check_record(record, trust::NOW);
    }
    if let Ok(attestation) = Attestation::from_value(&value) {
        round_trip("attestation", &attestation, Attestation::to_value, |v| {
            Attestation::from_value(v).map_err(|e| e.to_string())
        });
        let _ = attestation.signature_holds();
        if let Some(record) = &record {
            let _ = trust::verifiers()[0].check_attestation(record, &attestation);
        }
    }
    if let Ok(head) = SignedHead::from_value(&value) {
        head_round_trips(&head);
    }
    if let Ok(proof) = Proof::from_value(&value) {
        proof_round_trips(&proof);
    }
    if let Ok(cosignature) = Cosignature::from_value(&value) {
        round_trip("cosignature", &cosignature, Cosignature::to_value, |v| {
            Cosignature::from_value(v).map_err(|e| e.to_string())
        });
        let _ = cosignature.holds_for(&[0; 32]);
    }
    if let Ok(list) = Cosignature::list_from_value(&value) {
        let again = Cosignature::list_from_value(&Cosignature::list_to_value(&list));
        assert_eq!(again.as_ref(), Ok(&list), "a cosignature list round-trips");
    }
    if let Ok(evidence) = Evidence::from_value(&value) {
        let again = Evidence::from_value(&evidence.to_value());
        assert_eq!(
            again.as_ref(),
            Ok(&evidence),
            "equivocation evidence round-trips"
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        evidence_file(text);
    }
    if let Value::Object(map) = &value {
        parts(map);
    }
}

/// `parse(encode(x)) == x`, or a finding naming `what`.
fn round_trip<T: PartialEq + std::fmt::Debug>(
    what: &str,
    x: &T,
    encode: impl Fn(&T) -> Value,
    parse: impl Fn(&Value) -> Result<T, String>,
) {
    match parse(&encode(x)) {
        Ok(again) => assert_eq!(&again, x, "a {what} decodes to what it encoded"),
        Err(e) => panic!("the {what} {x:?} encodes to what fails: {e}"),
    }
}

fn record_round_trips(record: &Record) {
    round_trip("record", record, Record::to_value, |v| {
        Record::from_value(v).map_err(|e| e.to_string())
    });
    let text = record.canonical();
    let again = Record::from_json(&text);
    assert_eq!(
        again.as_ref(),
        Ok(record),
        "a record's canonical text parses back"
    );
    assert_eq!(
        canonical::to_string(&record.to_value()),
        text,
        "canonical text is one spelling"
    );
}

fn head_round_trips(head: &SignedHead) {
    round_trip("head", head, SignedHead::to_value, |v| {
        SignedHead::from_value(v).map_err(|e| e.to_string())
    });
    let again = SignedHead::from_json(&head.canonical());
    assert_eq!(
        again.as_ref(),
        Ok(head),
        "a head's canonical text parses back"
    );
    assert!(!head.conflicts(head), "a head never conflicts with itself");
    let _ = (head.id(), head.signature_holds());
    let _ = head.check_trusted(&trust::verifiers()[0].trusted);
}

fn proof_round_trips(proof: &Proof) {
    round_trip("proof", proof, Proof::to_value, |v| {
        Proof::from_value(v).map_err(|e| e.to_string())
    });
    let mut text = String::new();
    proof.write_json(&mut text);
    let written = serde_json::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("{proof:?} is written as {text:?}, not JSON: {e}"));
    assert_eq!(
        Proof::from_value(&written).as_ref(),
        Ok(proof),
        "a proof's written text parses back"
    );
    if let Ok(name) = RegisteredName::parse("example.tor") {
        let key = LeafKey::of(&name);
        let _ = proof.verify_absence(&key, &[0; 32]);
        let _ = proof.verify_presence(&key, &RecordId([0; 32]), 1, &[0; 32]);
    }
}

/// An evidence file's text: parsed, checked, and written back.
fn evidence_file(text: &str) {
    let Ok(evidence) = EvidenceFile::from_json(text) else {
        return;
    };
    let _ = (evidence.kind(), evidence.verify());
    let written = canonical::to_string(&evidence.to_value());
    match EvidenceFile::from_json(&written) {
        Ok(again) => assert_eq!(again, evidence, "evidence decodes to what it encoded"),
        Err(e) => panic!("the evidence {evidence:?} is written as what fails: {e}"),
    }
}

/// A record with its attestation, or a head with its cosignatures, in one
/// object: what a mirror and a client check together.
fn parts(map: &serde_json::Map<String, Value>) {
    let record = map.get("record").map(Record::from_value);
    let attestation = map.get("attestation").map(Attestation::from_value);
    if let (Some(Ok(record)), Some(Ok(attestation))) = (record, attestation) {
        let _ = trust::verifiers()[0].check_replica(&record, &attestation);
    }
    let head = map.get("head").map(SignedHead::from_value);
    let cosignatures = map.get("cosignatures").map(Cosignature::list_from_value);
    if let (Some(Ok(head)), Some(Ok(list))) = (head, cosignatures) {
        let _ = trust::policies()[1].witnesses.check(&head.id(), &list);
    }
}
