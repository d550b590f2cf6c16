//! The worked examples of PROTOCOL.md §12 (tests/data/vectors-life.json),
//! reproduced byte for byte: a transfer statement's signed text, signature
//! and canonical JSON; the record that carries it and a release, with their
//! ids; a live set whose log holds a release, its root and size as the
//! store computes them; and the witness's rules (§12.4) on pairs of
//! attested records.

use onions::attest::Attestation;
use onions::codec::b64_encode;
use onions::evidence::{Attested, OwnershipEvidence};
use onions::keys::SigningKey;
use onions::onion::OnionAddress;
use onions::record::{Claim, Record};
use onions::store::{Entry, Store};
use onions::transfer::Transfer;
use onions::verify::Verifier;
use serde_json::{json, Value};
use testkit::servers::name;

/// Unix seconds at which every example is made.
const T: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

fn vectors() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/vectors-life.json"
    ))
    .expect("tests/data/vectors-life.json");
    serde_json::from_str(&text).expect("valid JSON")
}

/// Key n: the seed byte n repeated 32 times (1 the old owner, 2 the new,
/// 3 a stranger, 9 the Quorum).
fn key(n: u8) -> SigningKey {
    onions::keys::init().unwrap();
    SigningKey::from_seed(&[n; 32])
}

fn onion(n: u8) -> OnionAddress {
    OnionAddress::from_key(key(n).public())
}

/// A record of `name` by key `n` with `serial`, issued `issued`, live a
/// day, no work.
fn unsigned(text: &str, n: u8, serial: u64, issued: u64) -> Record {
    let claim = Claim {
        name: name(text),
        subdomains: Default::default(),
        contact: String::new(),
        serial,
        issued,
        expires: issued + DAY,
        work: 0,
    };
    Record::from_claim(claim, &key(n))
}

fn signed(mut record: Record, n: u8) -> Record {
    record.sign_with(&key(n));
    record
}

/// The statement of the examples: example.tor from key 1 (serial 5) to
/// key 2, valid an hour from T.
fn statement() -> Transfer {
    Transfer::sign(name("example.tor"), onion(2), 5, (T, T + 3600), &key(1))
}

fn transfer_record() -> Record {
    let mut r = unsigned("example.tor", 2, 6, T + 60);
    r.transfer = Some(statement());
    signed(r, 2)
}

fn release_record() -> Record {
    let mut r = unsigned("example.tor", 1, 6, T + 60);
    r.release = true;
    r.expires = T + 60 + DAY;
    signed(r, 1)
}

fn attested(seq: u64, record: Record, accepted: u64) -> Attested {
    let attestation = Attestation::sign(record.id(), seq, accepted, &key(9));
    Attested {
        seq,
        record,
        attestation,
    }
}

fn attested_value(a: &Attested) -> Value {
    json!({"seq": a.seq, "record": a.record.to_value(), "attestation": a.attestation.to_value()})
}

/// The witness's examples: (what, earlier, later, rule broken or null).
fn witness_cases() -> Vec<(&'static str, Attested, Attested, Value)> {
    let live = || attested(1, signed(unsigned("example.tor", 1, 5, T), 1), T);
    let stale = Transfer::sign(name("example.tor"), onion(2), 4, (T, T + 3600), &key(1));
    let mut stale_taker = unsigned("example.tor", 2, 6, T + 60);
    stale_taker.transfer = Some(stale);
    let grab = signed(unsigned("example.tor", 3, 1, T + 120), 3);
    vec![
        (
            "a transfer handing over the live record",
            live(),
            attested(2, transfer_record(), T + 60),
            Value::Null,
        ),
        (
            "a transfer for an old serial",
            live(),
            attested(2, signed(stale_taker, 2), T + 60),
            json!("transfer"),
        ),
        (
            "a transfer accepted after its statement expired",
            live(),
            attested(2, transfer_record(), T + 3600),
            json!("transfer"),
        ),
        (
            "a release by the holder",
            live(),
            attested(2, release_record(), T + 60),
            Value::Null,
        ),
        (
            "a claim by another key while a release holds the name",
            attested(2, release_record(), T + 60),
            attested(3, grab.clone(), T + 120),
            json!("name_taken"),
        ),
        (
            "a claim by another key after the release expired",
            attested(2, release_record(), T + 60),
            attested(3, grab, T + 60 + DAY),
            Value::Null,
        ),
    ]
}

/// The log of the live-set example: example.tor claimed then released,
/// other.tor claimed; as of (3, T + 120) only other.tor is live.
fn log() -> Vec<Entry> {
    let claim = signed(unsigned("example.tor", 1, 5, T), 1);
    let other = signed(unsigned("other.tor", 3, 1, T + 90), 3);
    [
        (1, claim, T),
        (2, release_record(), T + 60),
        (3, other, T + 90),
    ]
    .into_iter()
    .map(|(seq, record, accepted)| {
        let a = Attestation::sign(record.id(), seq, accepted, &key(9));
        let text = onions::canonical::to_string(&a.to_value());
        Entry::new(seq, &record, text)
    })
    .collect()
}

/// Everything the file holds, computed from the seeds.
fn computed() -> Value {
    let t = statement();
    let signed_text = String::from_utf8(t.signed_bytes()).unwrap();
    let taker = transfer_record();
    let release = release_record();
    let dir = std::env::temp_dir().join(format!("onions-vectors-life-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (store, _) = Store::open(&dir).unwrap();
    let entries = log();
    let sealing = store.prepare(&entries, 3, T + 120).unwrap();
    let (root, size) = (sealing.root(), sealing.size());
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
    json!({
        "about": "Worked examples for PROTOCOL.md §12. Key n has the seed byte n repeated 32 times: 1 the old owner of example.tor, 2 the onion it moves to, 3 a stranger, 9 the Quorum. Records carry no work (work 0, nonce 0).",
        "onions": {"1": onion(1).to_string(), "2": onion(2).to_string(), "3": onion(3).to_string()},
        "transfer": {
            "statement": t.to_value(),
            "signed_text": signed_text,
            "canonical": onions::canonical::to_string(&t.to_value()),
        },
        "transfer_record": {
            "record": taker.to_value(),
            "canonical": taker.canonical(),
            "id_b64": taker.id().to_base64(),
        },
        "release_record": {
            "record": release.to_value(),
            "canonical": release.canonical(),
            "id_b64": release.id().to_base64(),
        },
        "live_set": {
            "log": entries.iter().map(|e| json!({
                "seq": e.seq,
                "record": serde_json::from_str::<Value>(&e.record).unwrap(),
            })).collect::<Vec<_>>(),
            "seq": 3,
            "time": T + 120,
            "root_b64": b64_encode(&root),
            "size": size,
        },
        "witness_rules": witness_cases().iter().map(|(what, e, l, rule)| json!({
            "about": what,
            "earlier": attested_value(e),
            "later": attested_value(l),
            "rule": rule,
        })).collect::<Vec<_>>(),
    })
}

#[test]
fn every_example_is_reproduced_byte_for_byte() {
    let (want, got) = (vectors(), computed());
    for key in got.as_object().unwrap().keys() {
        assert_eq!(want[key], got[key], "{key}");
    }
    assert_eq!(want, got);
}

#[test]
fn the_records_of_the_examples_verify_and_parse_back() {
    let v = vectors();
    let verifier = Verifier::default();
    for which in ["transfer_record", "release_record"] {
        let record = Record::from_value(&v[which]["record"]).unwrap();
        assert_eq!(record.canonical(), v[which]["canonical"], "{which}");
        verifier.check_record(&record, T + 60).unwrap();
    }
    let statement = Transfer::from_value(&v["transfer"]["statement"]).unwrap();
    assert_eq!(statement.check_signature(), Ok(()));
}

#[test]
fn the_witness_rules_of_the_examples_hold() {
    for case in vectors()["witness_rules"].as_array().unwrap() {
        let parse = |a: &Value| Attested {
            seq: a["seq"].as_u64().unwrap(),
            record: Record::from_value(&a["record"]).unwrap(),
            attestation: Attestation::from_value(&a["attestation"]).unwrap(),
        };
        let (e, l) = (parse(&case["earlier"]), parse(&case["later"]));
        let rule = OwnershipEvidence::check(&e, &l).map(|r| r.as_str());
        assert_eq!(
            rule.map_or(Value::Null, |r| json!(r)),
            case["rule"],
            "{}",
            case["about"]
        );
    }
}

/// The live set's root, computed the naive way from the file's log: the
/// newest record of each name, left out when it is a release (§12.3).
#[test]
fn the_live_set_leaves_the_release_out() {
    let v = vectors();
    let set = &v["live_set"];
    let mut newest = std::collections::BTreeMap::new();
    for e in set["log"].as_array().unwrap() {
        let record = Record::from_value(&e["record"]).unwrap();
        newest.insert(record.name.clone(), (e["seq"].as_u64().unwrap(), record));
    }
    let time = set["time"].as_u64().unwrap();
    let leaves: Vec<onions::merkle::Leaf> = newest
        .values()
        .filter(|(_, r)| !r.release && r.expires > time)
        .map(|(seq, r)| onions::merkle::Leaf {
            key: onions::merkle::LeafKey::of(&r.name),
            record: r.id(),
            seq: *seq,
        })
        .collect();
    assert_eq!(leaves.len() as u64, set["size"].as_u64().unwrap());
    assert_eq!(
        b64_encode(&onions::merkle::reference_root(&leaves)),
        set["root_b64"]
    );
}
