//! Reproduces every worked example of protocol.md's vectors.json byte for
//! byte: keys, onion addresses, names, the record, its proof of work, its
//! id, and the attestation.

use onions::attest::Attestation;
use onions::codec::b64_encode;
use onions::keys::{self, SigningKey};
use onions::name::{LookupName, RegisteredName, SubdomainKey};
use onions::onion::OnionAddress;
use onions::record::{Record, RecordError, MAX_SUBDOMAINS};
use onions::verify::{Verifier, VerifyError};
use onions::work;
use serde_json::Value;
use sodiumoxide::base64::{decode, Variant};
use testkit::hex;

/// The time at which the vectors' record is valid.
const VECTOR_NOW: u64 = 1_764_000_100;

fn vectors() -> Value {
    let text = include_str!("data/vectors.json");
    serde_json::from_str(text).unwrap()
}

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(v, |v, key| &v[*key])
        .as_str()
        .unwrap_or_else(|| panic!("vectors.json lacks {path:?}"))
}

fn tor_key(v: &Value, who: &str) -> SigningKey {
    keys::init().unwrap();
    let bytes = decode(
        text(v, &[who, "tor_secret_key_file_b64"]),
        Variant::Original,
    )
    .unwrap();
    SigningKey::from_tor_file_bytes(&bytes).unwrap()
}

fn trusting_quorum(v: &Value) -> Verifier {
    Verifier {
        min_work: 8,
        trusted: vec![tor_key(v, "quorum").public()],
        max_skew: None,
    }
}

#[test]
fn owner_key_file_from_seed() {
    let v = vectors();
    let seed: [u8; 32] = (0u8..32).collect::<Vec<_>>().try_into().unwrap();
    let from_seed = SigningKey::from_seed(&seed);
    let from_file = tor_key(&v, "owner");
    assert_eq!(
        b64_encode(&from_seed.to_tor_file_bytes()),
        text(&v, &["owner", "tor_secret_key_file_b64"])
    );
    assert_eq!(
        from_file.public().to_base64(),
        text(&v, &["owner", "public_key_b64"])
    );
    assert_eq!(
        OnionAddress::from_key(from_file.public()).to_string(),
        text(&v, &["owner", "onion"])
    );
}

#[test]
fn onion_addresses_round_trip() {
    let v = vectors();
    for who in ["owner", "www"] {
        let onion = OnionAddress::parse(text(&v, &[who, "onion"])).unwrap();
        assert_eq!(onion.key().to_base64(), text(&v, &[who, "public_key_b64"]));
        assert_eq!(onion.to_string(), text(&v, &[who, "onion"]));
    }
    for bad in v["invalid_onions"].as_array().unwrap() {
        let bad = bad.as_str().unwrap();
        assert!(OnionAddress::parse(bad).is_err(), "{bad} was accepted");
    }
}

#[test]
fn names_valid_and_invalid() {
    let v = vectors();
    for good in v["names"]["valid"].as_array().unwrap() {
        let good = good.as_str().unwrap();
        assert!(LookupName::parse(good).is_ok(), "{good} was refused");
    }
    for bad in v["names"]["invalid"].as_array().unwrap() {
        let bad = bad.as_str().unwrap();
        assert!(LookupName::parse(bad).is_err(), "{bad} was accepted");
        assert!(RegisteredName::parse(bad).is_err(), "{bad} was accepted");
    }
}

#[test]
fn record_canonical_signature_and_id() {
    let v = vectors();
    let record = Record::from_value(&v["record"]).unwrap();
    assert_eq!(record.canonical(), text(&v, &["record_canonical"]));
    assert_eq!(
        record.signed_bytes(),
        text(&v, &["record_signed_bytes"]).as_bytes()
    );
    assert_eq!(record.id().to_base64(), text(&v, &["record_id_b64"]));
    let mut resigned = record.clone();
    resigned.sign_with(&tor_key(&v, "owner"));
    assert_eq!(
        resigned.sig, record.sig,
        "expanded-key signing is deterministic"
    );
}

#[test]
fn proof_of_work_digests() {
    let v = vectors();
    let record = Record::from_value(&v["record"]).unwrap();
    let input = work::input(&record.work_body());
    assert_eq!(hex(&input), text(&v, &["pow", "input_hex"]));
    let nonce = v["pow"]["nonce"].as_u64().unwrap();
    let digest = work::digest(&input, nonce);
    assert_eq!(hex(&digest), text(&v, &["pow", "digest_hex"]));
    assert_eq!(
        u64::from(work::leading_zero_bits(&digest)),
        v["pow"]["leading_zero_bits"].as_u64().unwrap()
    );
    assert_eq!(
        hex(&work::digest(&input, 0)),
        text(&v, &["pow", "digest_nonce_0_hex"])
    );
}

#[test]
fn attestation_signed_bytes_and_signature() {
    let v = vectors();
    let record = Record::from_value(&v["record"]).unwrap();
    let att = Attestation::from_value(&v["attestation"]).unwrap();
    assert_eq!(
        att.signed_bytes(),
        text(&v, &["attestation_signed_bytes"]).as_bytes()
    );
    let quorum = tor_key(&v, "quorum");
    let again = Attestation::sign(record.id(), att.seq, att.accepted, &quorum);
    assert_eq!(again, att);
    assert_eq!(again.to_value(), v["attestation"]);
}

#[test]
fn the_answer_verifies_then_expires() {
    let v = vectors();
    let record = Record::from_value(&v["record"]).unwrap();
    let att = Attestation::from_value(&v["attestation"]).unwrap();
    let verifier = trusting_quorum(&v);
    verifier.check_answer(&record, &att, VECTOR_NOW).unwrap();
    let later = record.expires;
    assert!(matches!(
        verifier.check_answer(&record, &att, later),
        Err(VerifyError::Record(RecordError::Expired { .. }))
    ));
}

#[test]
fn the_servers_checks_hand_back_the_record_as_spelled() {
    let v = vectors();
    let verifier = trusting_quorum(&v);
    let record = Record::from_value(&v["record"]).unwrap();
    let att = Attestation::from_value(&v["attestation"]).unwrap();
    let canonical = text(&v, &["record_canonical"]);
    let id = text(&v, &["record_id_b64"]);
    let spelled = verifier.check_and_spell(&record, VECTOR_NOW).unwrap();
    assert_eq!(
        (spelled.text(), spelled.id().to_base64()),
        (canonical, id.to_owned())
    );
    let spelled = verifier.check_replica(&record, &att).unwrap();
    assert_eq!(
        (spelled.text(), spelled.id().to_base64()),
        (canonical, id.to_owned())
    );

    let mut tampered = record.clone();
    tampered.contact = "someone else".into();
    assert_eq!(
        verifier.check_and_spell(&tampered, VECTOR_NOW).err(),
        verifier.check_record(&tampered, VECTOR_NOW).err(),
    );
    assert_eq!(
        verifier.check_replica(&tampered, &att).err(),
        Some(VerifyError::Attestation(
            onions::attest::AttestError::WrongRecord
        ))
    );
    let mut long = record.clone();
    long.expires = long.issued + 30 * 86400 + 1;
    assert!(matches!(
        verifier.check_and_spell(&long, VECTOR_NOW),
        Err(RecordError::Lifetime { .. })
    ));

    // The size rule reads the spelling's length: as many long subdomains
    // as a record may have make it over 8 KiB.
    let mut big = record.clone();
    let label = "a".repeat(63);
    for i in big.subdomains.len()..MAX_SUBDOMAINS {
        let key = format!("x{i:02}.{label}.{label}.{label}");
        let key = SubdomainKey::parse(&key, &big.name).unwrap();
        big.subdomains.insert(key, big.onion);
    }
    let size = big.canonical().len();
    assert!(size > 8 * 1024, "{size} bytes");
    assert_eq!(
        verifier.check_and_spell(&big, VECTOR_NOW).err(),
        Some(RecordError::TooLarge(size))
    );
    assert_eq!(
        verifier.check_record(&big, VECTOR_NOW),
        Err(RecordError::TooLarge(size))
    );
    let attested = Attestation::sign(big.id(), att.seq, att.accepted, &tor_key(&v, "quorum"));
    assert_eq!(
        verifier.check_replica(&big, &attested).err(),
        Some(VerifyError::Record(RecordError::TooLarge(size)))
    );
}

#[test]
fn each_rule_is_named_when_broken() {
    let v = vectors();
    let verifier = trusting_quorum(&v);
    let record = Record::from_value(&v["record"]).unwrap();
    let att = Attestation::from_value(&v["attestation"]).unwrap();

    let mut tampered = record.clone();
    tampered.contact = "someone else".into();
    let err = verifier.check_record(&tampered, VECTOR_NOW).unwrap_err();
    assert_eq!(
        (err.code(), &err),
        ("bad_signature", &RecordError::BadSignature)
    );
    assert_eq!(
        verifier.check_attestation(&tampered, &att),
        Err(onions::attest::AttestError::WrongRecord)
    );

    let demanding = Verifier {
        min_work: 9,
        ..verifier.clone()
    };
    let err = demanding.check_record(&record, VECTOR_NOW).unwrap_err();
    assert_eq!(err.code(), "insufficient_work");

    let mut lazy = record.clone();
    lazy.nonce = 0;
    lazy.sign_with(&tor_key(&v, "owner"));
    assert_eq!(
        verifier.check_record(&lazy, VECTOR_NOW),
        Err(RecordError::WorkNotDone(8))
    );

    let mut long = record.clone();
    long.expires = long.issued + 30 * 86400 + 1;
    assert!(matches!(
        verifier.check_record(&long, VECTOR_NOW),
        Err(RecordError::Lifetime { .. })
    ));

    let stranger = Verifier {
        trusted: vec![tor_key(&v, "owner").public()],
        ..verifier
    };
    assert_eq!(
        stranger
            .check_answer(&record, &att, VECTOR_NOW)
            .unwrap_err()
            .code(),
        "bad_signature"
    );

    let future = Verifier {
        max_skew: Some(600),
        ..trusting_quorum(&v)
    };
    assert!(matches!(
        future.check_record(&record, record.issued - 601),
        Err(RecordError::IssuedInFuture { .. })
    ));
}

#[test]
fn parsing_names_the_bad_field() {
    let v = vectors();
    let cases: [(&str, Value); 7] = [
        ("name", "Example.tor".into()),
        ("onion", v["invalid_onions"][0].clone()),
        ("serial", (-1).into()),
        ("issued", 1.5.into()),
        ("nonce", (1u64 << 53).into()),
        ("contact", "caf\u{e9}".into()),
        ("sig", "AAAA".into()),
    ];
    for (key, bad) in cases {
        let mut value = v["record"].clone();
        value[key] = bad;
        let err = Record::from_value(&value).unwrap_err();
        assert_eq!(err.code(), "bad_record", "{key}");
        assert!(
            format!("{err}").contains(key) || key == "name" || key == "contact",
            "{key}: {err}"
        );
    }
    let mut extra = v["record"].clone();
    extra["extra"] = 1.into();
    assert!(Record::from_value(&extra)
        .unwrap_err()
        .to_string()
        .contains("extra"));
    let mut missing = v["record"].clone();
    missing.as_object_mut().unwrap().remove("nonce");
    assert!(Record::from_value(&missing)
        .unwrap_err()
        .to_string()
        .contains("nonce"));
}
