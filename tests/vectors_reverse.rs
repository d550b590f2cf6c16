//! Reproduces the worked examples of PROTOCOL.md §12.5
//! (tests/data/vectors-reverse.json) byte for byte: each `reverse` request
//! line, the `names` reply a store holding the log of vectors-v2.json
//! answers as of its head, the names a client shows after confirming each
//! with a lookup answered by that same store, and the requests refused as
//! `bad_request`.

use onions::attest::Attestation;
use onions::head::SignedHead;
use onions::keys::{self, SigningKey};
use onions::lookup::{confirm, Listed, Policy};
use onions::name::LookupName;
use onions::onion::OnionAddress;
use onions::record::Record;
use onions::store::{Answer, Entry, Names, Store};
use onions::verify::Verifier;
use onions::wire::{self, Code, Id, Reply, Request, MAX_REVERSE_NAMES};
use serde_json::Value;
use sodiumoxide::base64::{decode, Variant};
use testkit::TempDir;

fn read(file: &str) -> Value {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("valid JSON")
}

/// The Quorum's key, as vectors.json gives its Tor key file.
fn quorum_key() -> SigningKey {
    keys::init().unwrap();
    let file = read("vectors.json")["quorum"]["tor_secret_key_file_b64"]
        .as_str()
        .unwrap()
        .to_owned();
    SigningKey::from_tor_file_bytes(&decode(&file, Variant::Original).unwrap()).unwrap()
}

/// A store holding the log of vectors-v2.json, sealed with its head.
fn store(dir: &TempDir) -> Store {
    let v2 = read("vectors-v2.json");
    let entries: Vec<Entry> = v2["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let record = Record::from_value(&e["record"]).unwrap();
            let attestation = Attestation::from_value(&e["attestation"]).unwrap();
            let text = onions::canonical::to_string(&attestation.to_value());
            Entry::new(e["seq"].as_u64().unwrap(), &record, text)
        })
        .collect();
    let head = SignedHead::from_value(&read("vectors-reverse.json")["head"]).unwrap();
    assert_eq!(head, SignedHead::from_value(&v2["head"]["head"]).unwrap());
    let (store, _) = Store::open(dir.path()).unwrap();
    let sealing = store.prepare(&entries, head.seq, head.time).unwrap();
    store.seal(&entries, sealing, &head, true).unwrap();
    store
}

/// Seals a later head over the same log, at `time`, signed by the Quorum.
fn seal_later(store: &Store, time: u64) {
    let sealing = store.prepare(&[], 7, time).unwrap();
    let head = SignedHead::sign(7, time, sealing.size(), sealing.root(), &quorum_key());
    store.seal(&[], sealing, &head, true).unwrap();
}

/// The reply line the store's answer to a lookup of `name` makes.
fn lookup_reply(store: &Store, name: &LookupName) -> Reply {
    let line = match store.answer(&name.registered()).unwrap() {
        Answer::Found { entry, proof, head } => wire::found_line(
            &Id::Number(1),
            &entry.record,
            &entry.attestation,
            &head,
            &proof,
            "",
        ),
        Answer::NotFound { proof, head } => wire::not_found_line(&Id::Number(1), &head, &proof, ""),
        Answer::NoHead => panic!("no head"),
    };
    Reply::parse(&line).unwrap()
}

/// What a client checks answers with, as vectors-v2.json's answers say.
fn policy() -> Policy {
    let answers = &read("vectors-v2.json")["answers"];
    Policy {
        verifier: Verifier {
            min_work: answers["min_work"].as_u64().unwrap(),
            trusted: vec![quorum_key().public()],
            max_skew: None,
        },
        max_head_age: answers["max_head_age"].as_u64().unwrap(),
        witnesses: Default::default(),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn requests_and_replies_are_reproduced_byte_for_byte() {
    let dir = TempDir::new("vectors-reverse");
    let store = store(&dir);
    let now = read("vectors-v2.json")["answers"]["now"].as_u64().unwrap();
    for (case, id) in read("vectors-reverse.json")["cases"]
        .as_array()
        .unwrap()
        .iter()
        .zip(1u64..)
    {
        let about = case["about"].as_str().unwrap();
        if let Some(time) = case["head_time"].as_u64() {
            seal_later(&store, time);
        }
        let onion = OnionAddress::parse(case["onion"].as_str().unwrap()).unwrap();
        let request = Request::Reverse {
            id: Id::Number(id),
            onion,
        };
        let line = request.to_line();
        assert_eq!(
            &line[..line.len() - 1],
            case["request"].as_str().unwrap().as_bytes(),
            "{about}"
        );
        assert_eq!(
            Request::parse(case["request"].as_str().unwrap().as_bytes()).unwrap(),
            request
        );

        let leads = onions::server::Limits::default().max_reverse_leads;
        let Names::Listed { names, more, cut } = store
            .names_pointing_at(&onion, MAX_REVERSE_NAMES, leads)
            .unwrap()
        else {
            panic!("{about}: no head");
        };
        assert!(!cut, "{about}: the default limit of leads was hit");
        let listed: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            (listed, more),
            (strings(&case["names"]), case["more"].as_bool().unwrap()),
            "{about}"
        );
        let reply = wire::names_line(&Id::Number(id), &onion, &names, more);
        assert_eq!(
            &reply[..reply.len() - 1],
            case["reply"].as_str().unwrap().as_bytes(),
            "{about}"
        );

        let listed = Listed { onion, names, more };
        let pointing = confirm(listed, &policy(), now, |name| {
            Ok(lookup_reply(&store, name))
        });
        let shown: Vec<String> = pointing
            .confirmed
            .iter()
            .map(|c| c.name.to_string())
            .collect();
        assert_eq!(shown, strings(&case["shown"]), "{about}");
        assert!(
            pointing.refused.is_empty(),
            "{about}: {:?}",
            pointing.refused
        );
    }
}

#[test]
fn the_capped_reply_decodes_and_encodes_to_itself() {
    let cap = &read("vectors-reverse.json")["cap"];
    let line = cap["reply"].as_str().unwrap();
    let reply = Reply::parse(line.as_bytes()).unwrap();
    let Reply::Names {
        names, more, onion, ..
    } = &reply
    else {
        panic!("not a names reply: {reply}");
    };
    assert_eq!(names.len(), MAX_REVERSE_NAMES);
    let listed: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    assert_eq!(listed, strings(&cap["names"]));
    assert!(*more && cap["more"].as_bool().unwrap());
    assert_eq!(onion.to_string(), cap["onion"].as_str().unwrap());
    let again = reply.to_line();
    assert_eq!(&again[..again.len() - 1], line.as_bytes());
}

#[test]
fn invalid_requests_are_bad_requests() {
    for case in read("vectors-reverse.json")["invalid"].as_array().unwrap() {
        let line = case["request"].as_str().unwrap();
        let err = Request::parse(line.as_bytes()).unwrap_err();
        assert_eq!(
            Some(err.code),
            Code::parse(case["code"].as_str().unwrap()),
            "{line}"
        );
        assert_ne!(err.id, Id::Null, "{line}: the id is echoed");
    }
}
