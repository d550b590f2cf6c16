//! Records refused for what they are: `bad_signature`, `expired`,
//! `bad_record` (shape, lifetime, issued too far ahead, an owner key
//! outside the prime-order subgroup whose signature verifies) and
//! `insufficient_work`; one issued just inside the allowed skew is
//! accepted.

use crate::exchange::{assert_error, put_value, status_works, still_serving, text};
use crate::DAY;
use onions::keys::SigningKey;
use onions::merkle::EMPTY;
use onions::name::RegisteredName;
use onions::record::{Claim, Record};
use onions::wire::{Code, Id, Reply};
use serde_json::{json, Value};
use sodiumoxide::crypto::hash::sha512;
use std::collections::BTreeMap;
use std::time::Duration;
use testkit::checks::assert_signed;
use testkit::servers::{attested_seq, owner, print_key, record, Server};
use testkit::TempDir;

/// A claim on `name` with the given times and work, serial 1.
fn claim_at(name: &str, issued: u64, expires: u64, work: u64) -> Claim {
    Claim {
        name: RegisteredName::parse(name).unwrap(),
        subdomains: BTreeMap::new(),
        contact: String::new(),
        serial: 1,
        issued,
        expires,
        work,
    }
}

/// A record for `name` by `key` with the given times and work, finished as
/// the operator tool does (its static rules must hold).
fn handmade(key: &SigningKey, name: &str, issued: u64, expires: u64, work: u64) -> Record {
    let claim = claim_at(name, issued, expires, work);
    onions::operator::finish_record(claim, key, 1, Duration::from_millis(50), &mut |_| {})
        .unwrap_or_else(|e| panic!("cannot finish a record for {name}: {e}"))
}

/// Like [`handmade`], but built and signed without the operator tool's
/// checks, so that rules it enforces can be broken.
fn unchecked(key: &SigningKey, name: &str, issued: u64, expires: u64) -> Record {
    let mut record = Record::from_claim(claim_at(name, issued, expires, 0), key);
    record.sign_with(key);
    record
}

/// A correctly signed record whose nonce does not give its `work`.
fn without_work(key: &SigningKey, name: &str, work: u64) -> Record {
    let now = onions::clock::now();
    let mut record = handmade(key, name, now, now + DAY, 0);
    record.work = work;
    let input = onions::work::input(&record.work_body());
    record.nonce = (0..)
        .find(|n| !onions::work::holds(&input, *n, work))
        .unwrap();
    record.sign_with(key);
    record
}

/// A point of order 8: one of the small-order points libsodium lists.
const ORDER_8: [u8; 32] = [
    0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
    0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
];

/// `good`, a record by `key`, moved to the owner key A + T (A the public
/// key of `key`, T of order 8) and signed for it with the same secret
/// scalar. Such a key is not of small order, so ed25519's verify takes its
/// signatures whenever the hash k is a multiple of 8 (kT vanishes), one
/// nonce in eight; only the address check of §2, which wants the key in
/// the prime-order subgroup, refuses it. This is why a server checks the
/// owner's key point although it also checks the signature.
fn mixed_order(key: &SigningKey, good: &Value) -> Value {
    // The secret scalar a, as Tor's key file holds it: the first half of
    // the 64 expanded bytes that end the file.
    let file = key.to_tor_file_bytes();
    let scalar = &file[file.len() - 64..][..32];
    let mut mixed = [0u8; 32];
    // SAFETY: every buffer is 32 bytes, as libsodium requires.
    let added = unsafe {
        libsodium_sys::crypto_core_ed25519_add(
            mixed.as_mut_ptr(),
            key.public().as_bytes().as_ptr(),
            ORDER_8.as_ptr(),
        )
    };
    assert_eq!(added, 0);
    let mut onion = String::new();
    onions::onion::spell_into(&mixed, onions::onion::checksum(&mixed), &mut onion);
    let mut unsigned = good.as_object().expect("a record is an object").clone();
    unsigned.remove("sig");
    unsigned.insert("onion".into(), json!(onion));
    let message = onions::canonical::signed_bytes("onions-record-v1\n", unsigned.clone());
    loop {
        let (mut r, mut big_r, mut k, mut ka, mut s) =
            ([0u8; 32], [0u8; 32], [0u8; 32], [0u8; 32], [0u8; 32]);
        let mut state = sha512::State::new();
        // SAFETY: 32-byte scalars and points, a 64-byte hash.
        unsafe {
            libsodium_sys::crypto_core_ed25519_scalar_random(r.as_mut_ptr());
            libsodium_sys::crypto_scalarmult_ed25519_base_noclamp(big_r.as_mut_ptr(), r.as_ptr());
            state.update(&big_r);
            state.update(&mixed);
            state.update(&message);
            let hash = state.finalize().0;
            libsodium_sys::crypto_core_ed25519_scalar_reduce(k.as_mut_ptr(), hash.as_ptr());
            if k[0] & 7 != 0 {
                continue;
            }
            libsodium_sys::crypto_core_ed25519_scalar_mul(
                ka.as_mut_ptr(),
                k.as_ptr(),
                scalar.as_ptr(),
            );
            libsodium_sys::crypto_core_ed25519_scalar_add(s.as_mut_ptr(), r.as_ptr(), ka.as_ptr());
        }
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&big_r);
        sig[32..].copy_from_slice(&s);
        // SAFETY: a 64-byte signature and a 32-byte key.
        let verified = unsafe {
            libsodium_sys::crypto_sign_verify_detached(
                sig.as_ptr(),
                message.as_ptr(),
                message.len() as u64,
                mixed.as_ptr(),
            )
        };
        assert_eq!(verified, 0, "ed25519's verify takes a signature by A + T");
        return onions::canonical::with_sig(unsigned, onions::codec::b64_encode(&sig));
    }
}

#[test]
fn record_errors_signature_expiry_shape_and_future() {
    onions::keys::init().unwrap();
    let tmp = TempDir::new("errors-record");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let qkey = print_key(&quorum.state);
    let mut client = quorum.client();
    let key = owner(4);
    let now = onions::clock::now();
    let good = record(&key, "shape.tor", 1, 0, &[]).to_value();

    // bad_signature: a field changed after signing.
    let mut tampered = good.clone();
    tampered["contact"] = json!("someone else");
    let reply = put_value(&mut client, text("sig"), tampered);
    assert_error(&reply, &text("sig"), Code::BadSignature);
    status_works(&mut client, "after bad_signature");
    let mut tampered = good.clone();
    tampered["serial"] = json!(7);
    let reply = put_value(&mut client, text("sig2"), tampered);
    assert_error(&reply, &text("sig2"), Code::BadSignature);

    // expired: a correctly signed record whose day ended yesterday.
    let old = handmade(&key, "shape.tor", now - 2 * DAY, now - DAY, 0);
    let reply = put_value(&mut client, text("old"), old.to_value());
    let message = assert_error(&reply, &text("old"), Code::Expired);
    assert!(message.contains("expired"), "{message}");
    status_works(&mut client, "after expired");

    // bad_record: a missing key, an extra key, an upper-case name, a
    // lifetime over 30 days, a record that is not an object.
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("contact");
    let mut extra = good.clone();
    extra["extra"] = json!(1);
    let mut upper = good.clone();
    upper["name"] = json!("Shape.tor");
    let long = unchecked(&key, "shape.tor", now, now + 31 * DAY).to_value();
    let mut wrong_type = good.clone();
    wrong_type["serial"] = json!("1");
    let future = handmade(&key, "shape.tor", now + 3600, now + 3600 + DAY, 0).to_value();
    let mixed = mixed_order(&key, &good);
    let cases = [
        ("missing key", missing, "contact"),
        ("extra key", extra, "extra"),
        ("upper-case name", upper, "name"),
        ("lifetime over 30 days", long, "30 days"),
        ("serial of the wrong type", wrong_type, "serial"),
        ("issued an hour ahead", future, "ahead"),
        (
            "owner key A + T, its signature valid",
            mixed,
            "valid ed25519 key",
        ),
    ];
    for (i, (what, value, needle)) in cases.into_iter().enumerate() {
        let id = Id::Number(i as u64);
        let reply = put_value(&mut client, id.clone(), value);
        let message = assert_error(&reply, &id, Code::BadRecord);
        assert!(
            message.contains(needle),
            "{what}: the message should mention {needle:?}: {message}"
        );
        status_works(&mut client, what);
    }

    // Nothing was stored: the seq is 0 and the head is the empty one the
    // Quorum signed when it started.
    let status = quorum.status();
    assert_eq!((status.seq, status.records), (0, 0), "{status}");
    let head = status.head.expect("the Quorum signs a head when it starts");
    assert_eq!((head.seq, head.size, head.root), (0, 0, EMPTY), "{head:?}");
    assert_signed(&head, &qkey);
    // And a good record still goes in.
    let reply = put_value(&mut client, text("good"), good.clone());
    assert!(
        matches!(&reply, Reply::Accepted { id, .. } if *id == text("good")),
        "{reply}"
    );
    still_serving(&quorum, &qkey);
}

#[test]
fn issued_just_inside_the_allowed_skew_is_accepted() {
    onions::keys::init().unwrap();
    let tmp = TempDir::new("errors-skew");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let qkey = print_key(&quorum.state);
    let key = owner(5);
    let now = onions::clock::now();
    // 700 s ahead is refused; 300 s ahead (within 600 s) is accepted.
    let ahead = handmade(&key, "skew.tor", now + 700, now + 700 + DAY, 0);
    let reply = put_value(&mut quorum.client(), text("ahead"), ahead.to_value());
    assert_error(&reply, &text("ahead"), Code::BadRecord);
    let near = handmade(&key, "skew.tor", now + 300, now + 300 + DAY, 0);
    let reply = put_value(&mut quorum.client(), text("near"), near.to_value());
    assert!(
        matches!(&reply, Reply::Accepted { id, .. } if *id == text("near")),
        "{reply}"
    );
    assert_eq!(attested_seq(&reply, &near, &qkey), 1);
}

#[test]
fn insufficient_work_below_the_minimum_or_not_done() {
    onions::keys::init().unwrap();
    let tmp = TempDir::new("errors-work");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--min-work", "4"]);
    let qkey = print_key(&quorum.state);
    assert_eq!(quorum.status().min_work, 4);
    let key = owner(6);
    let mut client = quorum.client();

    let none = record(&key, "work.tor", 1, 0, &[]);
    let reply = put_value(&mut client, text("none"), none.to_value());
    let message = assert_error(&reply, &text("none"), Code::InsufficientWork);
    assert!(
        message.contains('4'),
        "the minimum should be named: {message}"
    );
    status_works(&mut client, "after work below the minimum");

    let claimed = without_work(&key, "work.tor", 8);
    let reply = put_value(&mut client, text("claimed"), claimed.to_value());
    assert_error(&reply, &text("claimed"), Code::InsufficientWork);
    status_works(&mut client, "after work not done");

    // The same name with the work really done is accepted.
    let done = record(&key, "work.tor", 1, 4, &[]);
    let reply = put_value(&mut client, text("done"), done.to_value());
    assert_eq!(attested_seq(&reply, &done, &qkey), 1);
    still_serving(&quorum, &qkey);
}

/// A signature whose last byte has its top bits set (bytes the ed25519
/// library refuses to hold) is refused as a bad signature, and the Quorum
/// keeps serving: found by fuzzing, it used to bring the server down.
#[test]
fn a_signature_with_the_top_bits_of_its_last_byte_set_is_refused() {
    let tmp = TempDir::new("sig-high-bits");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let mut value = record(&owner(9), "highbits.tor", 1, 0, &[]).to_value();
    let sig = value["sig"].as_str().unwrap().to_owned();
    let mut bytes = onions::codec::b64_decode_exact::<64>(&sig).unwrap();
    bytes[63] |= 0xe0;
    value["sig"] = onions::codec::b64_encode(&bytes).into();
    let mut client = quorum.client();
    let reply = client.request_json(&json!({"type": "put", "id": 1, "record": value}));
    assert_error(&reply, &Id::Number(1), Code::BadSignature);
    status_works(&mut quorum.client(), "after");
}
