//! Tests of evidence: each ownership rule, both kinds of file through
//! parsing, checking and tampering, and durable writing.

use super::*;
use crate::attest::Attestation;
use crate::head::SignedHead;
use crate::keys::SigningKey;
use crate::name::RegisteredName;
use crate::record::Claim;
use crate::record::Record;
use crate::transfer::Transfer;
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

/// A record of example.tor by owner `n` taking it from owner 0 (whose
/// record has serial 5) with a statement for `serial`, expiring
/// `lasts` seconds after T, at seq 2 a minute after T.
fn taken_with(n: u8, serial: u64, lasts: u64) -> Attested {
    let to = crate::onion::OnionAddress::from_key(owner(n).public());
    let name = RegisteredName::parse("example.tor").unwrap();
    let statement = Transfer::sign(name, to, serial, (T, T + lasts), &owner(0));
    let mut r = record("example.tor", n, 6, T + 60);
    r.transfer = Some(statement);
    r.sign_with(&owner(n));
    attested(2, r)
}

#[test]
fn a_transfer_must_hand_over_the_live_record() {
    let e = attested(1, record("example.tor", 0, 5, T));
    assert_eq!(OwnershipEvidence::check(&e, &taken_with(1, 5, 600)), None);
    for (l, why) in [
        (taken_with(1, 4, 600), "an old serial"),
        (taken_with(1, 5, 30), "an expired statement"),
    ] {
        assert_eq!(
            OwnershipEvidence::check(&e, &l),
            Some(Rule::Transfer),
            "{why}"
        );
    }
    let by_other = attested(1, record("example.tor", 3, 5, T));
    assert_eq!(
        OwnershipEvidence::check(&by_other, &taken_with(1, 5, 600)),
        Some(Rule::Transfer),
        "a statement by a key that did not hold the name"
    );
    let ev = OwnershipEvidence::new(Rule::Transfer, by_other, taken_with(1, 5, 600));
    assert_eq!(ev.verify(), Ok(quorum().public().into()));
}

#[test]
fn a_release_must_come_from_the_holder_and_then_holds_the_name() {
    let e = attested(1, record("example.tor", 0, 5, T));
    let release = |n: u8, serial: u64| {
        let mut r = record("example.tor", n, serial, T + 60);
        r.release = true;
        r.sign_with(&owner(n));
        attested(2, r)
    };
    assert_eq!(OwnershipEvidence::check(&e, &release(0, 6)), None);
    assert_eq!(
        OwnershipEvidence::check(&e, &release(1, 6)),
        Some(Rule::Release)
    );
    assert_eq!(
        OwnershipEvidence::check(&e, &release(0, 5)),
        Some(Rule::StaleSerial)
    );
    let mut held = release(0, 6);
    held.seq = 1;
    let grab = attested(2, record("example.tor", 1, 1, T + 120));
    assert_eq!(
        OwnershipEvidence::check(&held, &grab),
        Some(Rule::NameTaken),
        "a release holds the name through the cool-down"
    );
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
