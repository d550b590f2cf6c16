//! The worked examples of PROTOCOL.md §11 (tests/data/vectors-witness.json),
//! reproduced byte for byte: witness keys from their seeds, the head id,
//! each cosignature's signed message, signature and canonical JSON, the
//! `cosign` request and `cosignatures` push lines, and the client's k-of-n
//! decisions with the time each answer is fresh as of.

use onions::cosign::{CosignError, Cosignature, Quorate};
use onions::head::SignedHead;
use onions::keys::SigningKey;
use onions::wire::{Id, Push, Request};
use serde_json::Value;

fn vectors() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/vectors-witness.json"
    ))
    .expect("tests/data/vectors-witness.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn witnesses() -> Vec<SigningKey> {
    [11u8, 12, 13]
        .iter()
        .map(|b| SigningKey::from_seed(&[*b; 32]))
        .collect()
}

#[test]
fn cosignatures_are_reproduced_byte_for_byte() {
    onions::keys::init().unwrap();
    let v = vectors();
    let head = SignedHead::from_value(&v["head"]).unwrap();
    assert!(head.signature_holds());
    let id = head.id();
    assert_eq!(onions::codec::b64_encode(&id), v["head_id_b64"]);
    let listed = v["witnesses"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for (key, w) in witnesses().iter().zip(listed) {
        assert_eq!(key.public().to_base64(), w["public_key_b64"]);
        let time = w["time"].as_u64().unwrap();
        let message = Cosignature::message(&id, time);
        assert_eq!(String::from_utf8(message).unwrap(), w["message"]);
        let cosig = Cosignature::sign(&head, time, key);
        assert_eq!(cosig.to_value(), w["cosignature"]);
        assert_eq!(
            onions::canonical::to_string(&cosig.to_value()),
            w["canonical"]
        );
        let parsed = Cosignature::from_value(&w["cosignature"]).unwrap();
        assert!(parsed.holds_for(&id));
    }
}

#[test]
fn messages_are_reproduced_byte_for_byte() {
    onions::keys::init().unwrap();
    let v = vectors();
    let head = SignedHead::from_value(&v["head"]).unwrap();
    let cosigs: Vec<Cosignature> = v["witnesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| Cosignature::from_value(&w["cosignature"]).unwrap())
        .collect();
    let request = Request::Cosign {
        id: Id::Number(1),
        head: head.clone(),
        cosignature: cosigs[0].clone(),
    };
    let line = v["cosign_request"].as_str().unwrap();
    assert_eq!(String::from_utf8(request.to_line()).unwrap(), line);
    assert_eq!(Request::parse(line.trim_end().as_bytes()).unwrap(), request);
    let push = Push::Cosignatures {
        head,
        cosignatures: cosigs,
    };
    let line = v["cosignatures_push"].as_str().unwrap();
    assert_eq!(String::from_utf8(push.to_line()).unwrap(), line);
    assert_eq!(
        Push::parse(line.trim_end().as_bytes()).unwrap().unwrap(),
        push
    );
}

#[test]
fn clients_decide_as_the_examples_say() {
    onions::keys::init().unwrap();
    let v = vectors();
    let head = SignedHead::from_value(&v["head"]).unwrap();
    let policy = Quorate {
        trusted: witnesses().iter().map(SigningKey::public).collect(),
        needed: v["client"]["needed"].as_u64().unwrap() as usize,
    };
    let cases = v["client"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let about = case["about"].as_str().unwrap();
        let list = Cosignature::list_from_value(&case["cosignatures"]).unwrap();
        match policy.check(&head.id(), &list) {
            Ok(time) => {
                assert!(case["accepted"].as_bool().unwrap(), "{about}");
                assert_eq!(time, case["fresh_as_of"].as_u64(), "{about}");
            }
            Err(CosignError::TooFew { valid, needed }) => {
                assert!(!case["accepted"].as_bool().unwrap(), "{about}");
                assert_eq!(valid as u64, case["valid"].as_u64().unwrap(), "{about}");
                assert_eq!(needed, 2, "{about}");
            }
            Err(e) => panic!("{about}: {e}"),
        }
    }
}
