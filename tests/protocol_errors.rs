//! Every error code of protocol.md §8 and §10.6, provoked on real
//! `onions-server` processes over real sockets, and what the server does
//! next.
//!
//! The story: a Quorum (and, for `read_only` and `no_head`, a mirror) is
//! sent each kind of wrong request: a claim on a name another key holds, a
//! stale serial, a tampered or expired record, missing proof of work, a
//! malformed record, a put to a mirror, a lookup at a mirror that has no
//! head to answer against, a line that is not JSON or not UTF-8, a line
//! over `--max-message`, and requests that are JSON but not valid requests.
//! Each gets `{"type":"error","id":...,"code":...,"message":...}` with the
//! request's id echoed (null when it had none) and a message a person can
//! act on. The server keeps serving: a new connection works, and the same
//! connection does too, except after `bad_json` and `too_large`, when the
//! server closes it (§7). A lookup of a name with no entry is not an error
//! in version 2: it gets `not_found` with a head and an absence proof that
//! holds against the head's root. Also: a retried put of the live record
//! gets the same attestation without raising the seq; claims racing for
//! one name have exactly one winner, and racing updates leave the highest
//! serial live; a record issued more than 600 s ahead is refused while one
//! 300 s ahead is not; the default line limit is 16 KiB; and pipelined
//! requests are answered in order.
//!
//! Every reply is decoded with `onions::wire`; the raw line is looked at
//! only to check that it carries an `id` key (null or not).

use onions::attest::Attestation;
use onions::head::SignedHead;
use onions::keys::SigningKey;
use onions::merkle::{reference_proof, LeafKey, EMPTY};
use onions::name::{LookupName, RegisteredName};
use onions::record::{Claim, Record};
use onions::wire::{AuditState, Code, Id, Reply, Request};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use testkit::servers::{attested_seq, owner, print_key, record, Client, Server};
use testkit::{free_port_on, TempDir};

const DAY: u64 = 86_400;

/// How long a mirror may take to match a head covering a put.
const HEAD_LIMIT: Duration = Duration::from_secs(20);

/// A string id.
fn text(id: &str) -> Id {
    Id::Text(id.into())
}

/// Decodes one reply line. Every reply, an error to a request without an
/// id included, carries an `id` key (§7, §8); anything that is not a
/// well-formed reply fails the test.
fn decode(line: &[u8]) -> Reply {
    let shown = String::from_utf8_lossy(line);
    let raw: Value =
        serde_json::from_slice(line).unwrap_or_else(|e| panic!("not JSON {shown:?}: {e}"));
    assert!(
        raw.get("id").is_some(),
        "a reply always carries id: {shown}"
    );
    Reply::parse(line).unwrap_or_else(|e| panic!("a bad reply {shown:?}: {e}"))
}

/// The next reply on `client`; `None` if the server closed.
fn next_reply(client: &mut Client) -> Option<Reply> {
    client.read_line().map(|line| decode(&line))
}

/// Sends `request` on `client` and returns the reply.
fn exchange(client: &mut Client, request: &Request) -> Reply {
    client.send_raw(&request.to_line());
    next_reply(client).expect("the server closed instead of replying")
}

/// Checks that `reply` is an error with `code` for request `id`, and
/// returns its message.
fn assert_error(reply: &Reply, id: &Id, code: Code) -> String {
    let Reply::Error(error) = reply else {
        panic!("expected {code}: {reply}");
    };
    assert_eq!(error.code, code, "expected {code}: {reply}");
    assert_eq!(&error.id, id, "the id must be echoed: {reply}");
    assert!(!error.message.trim().is_empty(), "empty message: {reply}");
    error.message.clone()
}

/// The attestation of an `accepted` reply; anything else fails the test.
fn accepted(reply: &Reply) -> &Attestation {
    match reply {
        Reply::Accepted { attestation, .. } => attestation,
        other => panic!("expected accepted: {other}"),
    }
}

/// Checks that `head` is signed, and by the Quorum key `key`.
fn assert_signed(head: &SignedHead, key: &str) {
    assert_eq!(head.quorum.to_base64(), key, "head signed by another key");
    assert!(head.signature_holds(), "head signature does not hold");
}

/// The leaf key of the registered name of the lookup name `name`.
fn leaf_key(name: &str) -> LeafKey {
    LeafKey::of(&LookupName::parse(name).unwrap().registered())
}

/// Checks that `reply` answers the lookup `id` of `name` with `not_found`,
/// a head signed by `key` and an absence proof that holds against the
/// head's root (§10.6, §10.7); returns the head.
fn assert_absent(reply: &Reply, id: &Id, name: &str, key: &str) -> SignedHead {
    let Reply::NotFound {
        id: got,
        head,
        proof,
        ..
    } = reply
    else {
        panic!("lookup {name}: expected not_found: {reply}");
    };
    assert_eq!(got, id, "the id must be echoed: {reply}");
    assert_signed(head, key);
    proof
        .verify_absence(&leaf_key(name), &head.root)
        .unwrap_or_else(|e| panic!("the absence proof of {name} does not hold: {e}"));
    head.clone()
}

/// Checks that `reply` answers a lookup of `name` with `record`, attested
/// by `key` at a seq the head covers, a head signed by `key` and a presence
/// proof that holds against the head's root; returns the seq.
fn assert_found(reply: &Reply, name: &str, record: &Record, key: &str) -> u64 {
    let Reply::Found {
        record: got,
        head,
        proof,
        ..
    } = reply
    else {
        panic!("lookup {name}: expected found: {reply}");
    };
    assert_eq!(got, record, "lookup {name}");
    let seq = attested_seq(reply, record, key);
    assert_signed(head, key);
    assert!(seq <= head.seq, "seq {seq} answered against {head:?}");
    proof
        .verify_presence(&leaf_key(name), &record.id(), seq, &head.root)
        .unwrap_or_else(|e| panic!("the presence proof of {name} does not hold: {e}"));
    seq
}

/// A lookup of `name` with request id `id`.
fn lookup(client: &mut Client, id: Id, name: &str) -> Reply {
    exchange(
        client,
        &Request::Lookup {
            id,
            name: LookupName::from_user(name).unwrap(),
        },
    )
}

/// A status request on `client` is answered, with its id.
fn status_works(client: &mut Client, id: &str) {
    match exchange(client, &Request::Status { id: text(id) }) {
        Reply::Status { id: got, .. } => assert_eq!(got, text(id)),
        other => panic!("expected status: {other}"),
    }
}

/// The server still serves on a new connection: its status, and a lookup
/// of an unregistered name answered with a proof of absence against a head
/// signed by the Quorum key `key`.
fn still_serving(server: &Server, key: &str) {
    let status = server.status();
    assert_eq!(status.protocol, 2, "{status}");
    assert_absent(
        &lookup(&mut server.client(), Id::Number(2), "nobody-here.tor"),
        &Id::Number(2),
        "nobody-here.tor",
        key,
    );
}

/// The server closed `client`'s connection (after its error reply).
fn assert_closed(client: &mut Client, what: &str) {
    assert!(
        client.read_line().is_none(),
        "{what}: the server should close the connection"
    );
}

/// A put of `record` (as JSON) with request id `id`.
fn put_value(client: &mut Client, id: Id, record: Value) -> Reply {
    exchange(client, &Request::Put { id, record })
}

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

/// Where each code of `onions::wire::Code` is provoked. The match has no
/// wildcard, so a new code does not compile until it is placed here.
fn provoked_by(code: Code) -> &'static str {
    match code {
        Code::BadJson => "bad_json_gets_an_error_and_the_connection_closes",
        Code::TooLarge => "too_large_gets_an_error_and_the_connection_closes",
        Code::BadRequest => "bad_requests_get_an_error_and_the_connection_stays_open",
        Code::BadRecord => "record_errors_signature_expiry_shape_and_future",
        Code::BadSignature => "record_errors_signature_expiry_shape_and_future",
        Code::InsufficientWork => "insufficient_work_below_the_minimum_or_not_done",
        Code::Expired => "record_errors_signature_expiry_shape_and_future",
        Code::NameTaken => "ownership_errors_name_taken_and_stale_serial",
        Code::StaleSerial => "ownership_errors_name_taken_and_stale_serial",
        Code::ReadOnly => "read_only_at_a_mirror_and_not_found",
        Code::NoHead => "no_head_at_a_mirror_that_never_received_a_head",
        Code::Busy => "tests/limits.rs (a limit has to be hit)",
        Code::Internal => "none: a storage failure cannot be provoked from outside",
    }
}

#[test]
fn every_code_is_spelled_as_the_protocol_says_and_not_found_is_gone() {
    let spelled = [
        ("bad_json", Code::BadJson),
        ("too_large", Code::TooLarge),
        ("bad_request", Code::BadRequest),
        ("bad_record", Code::BadRecord),
        ("bad_signature", Code::BadSignature),
        ("insufficient_work", Code::InsufficientWork),
        ("expired", Code::Expired),
        ("name_taken", Code::NameTaken),
        ("stale_serial", Code::StaleSerial),
        ("read_only", Code::ReadOnly),
        ("busy", Code::Busy),
        ("no_head", Code::NoHead),
        ("internal", Code::Internal),
    ];
    for (text, code) in spelled {
        assert_eq!(code.as_str(), text);
        assert_eq!(Code::parse(text), Some(code));
        assert!(!provoked_by(code).is_empty());
    }
    // Version 2 answers a missing name with a not_found reply, so an error
    // with the old code is not a reply a client accepts (§10.6).
    assert_eq!(Code::parse("not_found"), None);
    let old = br#"{"type":"error","id":2,"code":"not_found","message":"no such name"}"#;
    assert!(Reply::parse(old).is_err(), "the v1 not_found error parsed");
    // Only busy, no_head and internal are worth asking again elsewhere.
    for (_, code) in spelled {
        assert_eq!(
            code.is_transient(),
            matches!(code, Code::Busy | Code::NoHead | Code::Internal),
            "{code}"
        );
    }
}

#[test]
fn ownership_errors_name_taken_and_stale_serial() {
    let tmp = TempDir::new("errors-ownership");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let (holder, rival) = (owner(1), owner(2));
    let live = record(&holder, "taken.tor", 2, 0, &[]);
    let mut client = quorum.client();
    let first = put_value(&mut client, text("first"), live.to_value());
    assert!(
        matches!(&first, Reply::Accepted { id, .. } if *id == text("first")),
        "{first}"
    );
    assert_eq!(attested_seq(&first, &live, &key), 1);

    // name_taken: another key claims the live name, whatever its serial.
    let claim = record(&rival, "taken.tor", 9, 0, &[]);
    let reply = put_value(&mut client, Id::Number(10), claim.to_value());
    let message = assert_error(&reply, &Id::Number(10), Code::NameTaken);
    assert!(message.contains("taken.tor"), "{message}");
    status_works(&mut client, "after name_taken");

    // stale_serial: the same key, the same serial, a different record ...
    let www = owner(3);
    let same = record(&holder, "taken.tor", 2, 0, &[("www", &www)]);
    assert_ne!(same.id(), live.id());
    let reply = put_value(&mut client, text("same"), same.to_value());
    assert_error(&reply, &text("same"), Code::StaleSerial);
    status_works(&mut client, "after stale_serial");
    // ... or a lower serial.
    let lower = record(&holder, "taken.tor", 1, 0, &[("www", &www)]);
    let reply = put_value(&mut client, Id::Number(11), lower.to_value());
    assert_error(&reply, &Id::Number(11), Code::StaleSerial);

    // A retry of the live record itself is accepted with its attestation
    // and does not raise the seq, nor the newest head's.
    let again = put_value(&mut client, text("retry"), live.to_value());
    assert!(
        matches!(&again, Reply::Accepted { id, .. } if *id == text("retry")),
        "{again}"
    );
    assert_eq!(accepted(&again), accepted(&first));
    let status = quorum.status();
    assert_eq!((status.seq, status.records), (1, 1), "{status}");
    let head = status.head.expect("the Quorum holds a head");
    assert_eq!((head.seq, head.size), (1, 1), "{head:?}");

    // The live record is still the first one, and a higher serial replaces it.
    let found = lookup(&mut client, Id::Number(2), "taken.tor");
    assert_eq!(assert_found(&found, "taken.tor", &live, &key), 1);
    let newer = record(&holder, "taken.tor", 3, 0, &[("www", &www)]);
    assert_eq!(attested_seq(&client.put(&newer), &newer, &key), 2);
    // A subdomain lookup answers with the registered name's new record.
    let found = lookup(&mut client, Id::Number(3), "www.taken.tor");
    assert_eq!(assert_found(&found, "www.taken.tor", &newer, &key), 2);
    still_serving(&quorum, &key);
}

#[test]
fn concurrent_claims_have_one_winner() {
    let tmp = TempDir::new("errors-race");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let addr = quorum.addr;

    // Eight keys claim one name at the same moment: one wins.
    let claims: Vec<Record> = (0..8)
        .map(|i| record(&owner(100 + i), "race.tor", 1, 0, &[]))
        .collect();
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = claims
            .iter()
            .map(|rec| scope.spawn(move || Client::connect(addr).put(rec)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<usize> = (0..8)
        .filter(|&i| matches!(replies[i], Reply::Accepted { .. }))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one claim wins: {replies:?}");
    for (i, reply) in replies.iter().enumerate() {
        if i != winners[0] {
            assert_error(reply, &Id::Number(1), Code::NameTaken);
        }
    }
    let winner = &claims[winners[0]];
    assert_eq!(attested_seq(&replies[winners[0]], winner, &key), 1);
    let found = quorum.client().lookup("race.tor");
    assert_eq!(assert_found(&found, "race.tor", winner, &key), 1);

    // One key sends serials 1 to 8 at once: whatever order they arrive in,
    // serial 8 ends up live, and every refusal is stale_serial.
    let mine = owner(120);
    let updates: Vec<Record> = (1..=8)
        .map(|serial| record(&mine, "serials.tor", serial, 0, &[]))
        .collect();
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = updates
            .iter()
            .map(|rec| scope.spawn(move || Client::connect(addr).put(rec)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut accepted = Vec::new();
    for (rec, reply) in updates.iter().zip(&replies) {
        if let Reply::Accepted { .. } = reply {
            accepted.push((attested_seq(reply, rec, &key), rec.serial));
        } else {
            assert_error(reply, &Id::Number(1), Code::StaleSerial);
        }
    }
    accepted.sort();
    assert!(
        accepted.windows(2).all(|w| w[0].1 < w[1].1),
        "accepted serials rise with seq: {accepted:?}"
    );
    assert_eq!(accepted.last().map(|a| a.1), Some(8), "{accepted:?}");
    let last_seq = 1 + accepted.len() as u64;
    let found = quorum.client().lookup("serials.tor");
    assert_eq!(
        assert_found(&found, "serials.tor", &updates[7], &key),
        last_seq
    );
    let status = quorum.status();
    assert_eq!((status.seq, status.records), (last_seq, 2), "{status}");
    // The newest head covers both names, one entry each.
    let head = quorum.wait_head(last_seq, HEAD_LIMIT);
    assert_eq!((head.seq, head.size), (last_seq, 2), "{head:?}");
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
    let cases = [
        ("missing key", missing, "contact"),
        ("extra key", extra, "extra"),
        ("upper-case name", upper, "name"),
        ("lifetime over 30 days", long, "30 days"),
        ("serial of the wrong type", wrong_type, "serial"),
        ("issued an hour ahead", future, "ahead"),
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

#[test]
fn read_only_at_a_mirror_and_not_found() {
    let tmp = TempDir::new("errors-mirror");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    let rec = record(&owner(7), "mirrored.tor", 1, 0, &[]);

    let mut client = mirror.client();
    let reply = put_value(&mut client, text("ro"), rec.to_value());
    let message = assert_error(&reply, &text("ro"), Code::ReadOnly);
    assert!(message.contains("Quorum"), "{message}");
    status_works(&mut client, "after read_only");

    // not_found is a reply, not an error: on the mirror (once it has
    // matched the Quorum's empty head) and on the Quorum, with string and
    // integer ids, each with the one absence proof of the registered name
    // against the empty tree.
    let empty = mirror.wait_head(0, HEAD_LIMIT);
    assert_eq!((empty.size, empty.root), (0, EMPTY), "{empty:?}");
    let reply = lookup(&mut client, text("nf"), "mirrored.tor");
    let head = assert_absent(&reply, &text("nf"), "mirrored.tor", &key);
    assert_eq!(head, empty, "the mirror answers against its matched head");
    let Reply::NotFound { proof, .. } = &reply else {
        unreachable!()
    };
    assert_eq!(*proof, reference_proof(&[], &leaf_key("mirrored.tor")));
    let mut at_quorum = quorum.client();
    let reply = lookup(&mut at_quorum, Id::Number(77), "www.unknown.tor");
    let head = assert_absent(&reply, &Id::Number(77), "www.unknown.tor", &key);
    assert_eq!((head.seq, head.size, head.root), (0, 0, EMPTY), "{head:?}");
    let Reply::NotFound { proof, .. } = &reply else {
        unreachable!()
    };
    assert_eq!(*proof, reference_proof(&[], &leaf_key("unknown.tor")));
    status_works(&mut at_quorum, "after not_found");

    // Once the record is put to the Quorum, the mirror finds it, with a
    // presence proof against a head that covers it.
    assert_eq!(attested_seq(&at_quorum.put(&rec), &rec, &key), 1);
    let head = mirror.wait_head(1, HEAD_LIMIT);
    assert_eq!((head.seq, head.size), (1, 1), "{head:?}");
    let reply = lookup(&mut client, text("f"), "mirrored.tor");
    assert_eq!(assert_found(&reply, "mirrored.tor", &rec, &key), 1);
    // The absence proof of another name now ends at this record's leaf or
    // an empty subtree, and still holds against the new root.
    let reply = lookup(&mut client, text("nf2"), "www.unknown.tor");
    assert_eq!(
        assert_absent(&reply, &text("nf2"), "www.unknown.tor", &key).seq,
        1
    );
    still_serving(&mirror, &key);
    still_serving(&quorum, &key);
}

#[test]
fn no_head_at_a_mirror_that_never_received_a_head() {
    let tmp = TempDir::new("errors-no-head");
    // An upstream where nothing listens: a port that was free a moment ago
    // on an address no test server uses.
    let nowhere: std::net::SocketAddr = format!("127.0.0.3:{}", free_port_on("127.0.0.3"))
        .parse()
        .unwrap();
    let key = owner(9).public().to_base64();
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), nowhere, &key, &[]);

    let mut client = mirror.client();
    for (id, name) in [
        (text("nh"), "anything.tor"),
        (Id::Number(5), "www.anything.tor"),
    ] {
        let reply = lookup(&mut client, id.clone(), name);
        let message = assert_error(&reply, &id, Code::NoHead);
        assert!(message.contains("head"), "{message}");
        // no_head leaves the connection open: a client may ask again.
        status_works(&mut client, name);
    }
    // A put is still read_only, whatever the head.
    let rec = record(&owner(10), "anything.tor", 1, 0, &[]);
    let reply = put_value(&mut client, text("ro"), rec.to_value());
    assert_error(&reply, &text("ro"), Code::ReadOnly);

    // The mirror has no head to answer with, and it says so.
    let status = mirror.status();
    assert_eq!(status.seq, 0, "{status}");
    assert_eq!(status.head, None, "{status}");
    let upstream = status.upstream.as_ref().expect("a mirror has an upstream");
    assert_eq!(upstream.addr, nowhere.to_string(), "{status}");
    assert!(!upstream.connected, "{status}");
    let audit = status.audit.as_ref().expect("a mirror reports its audit");
    assert_eq!(audit.state, AuditState::None, "{status}");
    assert_eq!(
        (audit.matched.as_ref(), audit.checked),
        (None, 0),
        "{status}"
    );

    // A while later, after failed connection attempts, still no head.
    std::thread::sleep(Duration::from_secs(2));
    let reply = lookup(&mut mirror.client(), text("later"), "anything.tor");
    assert_error(&reply, &text("later"), Code::NoHead);
    assert!(mirror.current_head().is_none());
}

#[test]
fn bad_json_gets_an_error_and_the_connection_closes() {
    let tmp = TempDir::new("errors-json");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let lines: [(&str, &[u8]); 4] = [
        ("an unfinished object", b"{\n"),
        ("bytes that are not UTF-8", b"\xff\xfe\xfd\n"),
        (
            "a request with a non-UTF-8 string",
            b"{\"type\":\"status\",\"id\":\"\xc3\x28\"}\n",
        ),
        ("trailing garbage", b"{\"type\":\"status\",\"id\":1} x\n"),
    ];
    for (what, line) in lines {
        let mut client = quorum.client();
        status_works(&mut client, "before");
        client.send_raw(line);
        let reply = next_reply(&mut client)
            .unwrap_or_else(|| panic!("{what}: closed without an error reply"));
        assert_error(&reply, &Id::Null, Code::BadJson);
        assert_closed(&mut client, what);
        still_serving(&quorum, &key);
    }
    // What follows a bad line in the same write is not answered: the
    // connection ends with the error.
    let mut client = quorum.client();
    client.send_raw(b"{\n{\"type\":\"status\",\"id\":\"after\"}\n");
    let reply = next_reply(&mut client).expect("an error reply");
    assert_error(&reply, &Id::Null, Code::BadJson);
    assert_closed(&mut client, "a bad line followed by a good one");
    // A good line before a bad one is answered first.
    let mut client = quorum.client();
    client.send_raw(b"{\"type\":\"status\",\"id\":\"before\"}\n\xff\n");
    match next_reply(&mut client).expect("the status reply") {
        Reply::Status { id, .. } => assert_eq!(id, text("before")),
        other => panic!("expected status: {other}"),
    }
    let reply = next_reply(&mut client).expect("an error reply");
    assert_error(&reply, &Id::Null, Code::BadJson);
    assert_closed(&mut client, "a good line followed by a bad one");
}

#[test]
fn too_large_gets_an_error_and_the_connection_closes() {
    let tmp = TempDir::new("errors-large");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--max-message", "2048"]);
    let key = print_key(&quorum.state);
    // A status request padded with spaces to exactly `len` bytes.
    let padded = |len: usize| {
        let mut line = br#"{"type":"status","id":"big"}"#.to_vec();
        line.resize(len, b' ');
        line
    };

    // A line of exactly the limit is served.
    let mut client = quorum.client();
    let mut line = padded(2048);
    line.push(b'\n');
    client.send_raw(&line);
    match next_reply(&mut client).expect("a reply to a line at the limit") {
        Reply::Status { id, .. } => assert_eq!(id, text("big")),
        other => panic!("expected status: {other}"),
    }

    // One byte more is too large, and the connection is closed.
    let mut line = padded(2049);
    line.push(b'\n');
    client.send_raw(&line);
    let reply = next_reply(&mut client).expect("an error reply to a long line");
    let message = assert_error(&reply, &Id::Null, Code::TooLarge);
    assert!(message.contains("2048"), "{message}");
    assert_closed(&mut client, "a line over the limit");
    still_serving(&quorum, &key);

    // So is a long line that has not even ended yet.
    let mut client = quorum.client();
    client.send_raw(&padded(3000));
    let reply = next_reply(&mut client).expect("an error reply to an endless line");
    assert_error(&reply, &Id::Null, Code::TooLarge);
    assert_closed(&mut client, "an unfinished line over the limit");
    still_serving(&quorum, &key);
    assert!(
        quorum.log().contains("--max-message"),
        "the limit is logged when hit:\n{}",
        quorum.log()
    );
}

/// Sends `bytes` on a fresh connection from a thread of its own (the server
/// may stop reading) and returns the first reply, and whether the
/// connection then ended (end of stream, or a reset because the server
/// closed with bytes unread).
fn first_reply_then_end(addr: std::net::SocketAddr, bytes: Vec<u8>) -> (Reply, bool) {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(testkit::servers::REPLY_LIMIT))
        .unwrap();
    stream
        .set_write_timeout(Some(testkit::servers::REPLY_LIMIT))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        // Fails once the server has closed; that is expected.
        let _ = writer.write_all(&bytes);
    });
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    reader
        .read_until(b'\n', &mut line)
        .unwrap_or_else(|e| panic!("no reply: {e}"));
    assert_eq!(line.pop(), Some(b'\n'), "the reply ended mid-line");
    let reply = decode(&line);
    let mut rest = Vec::new();
    let ended = match reader.read_until(b'\n', &mut rest) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    sender.join().unwrap();
    (reply, ended)
}

#[test]
fn the_default_limit_is_16_kib() {
    let tmp = TempDir::new("errors-default-limit");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let padded = |len: usize| {
        let mut line = br#"{"type":"status","id":"pad"}"#.to_vec();
        line.resize(len, b' ');
        line.push(b'\n');
        line
    };
    let mut client = quorum.client();
    client.send_raw(&padded(16 * 1024));
    match next_reply(&mut client).expect("a reply") {
        Reply::Status { id, .. } => assert_eq!(id, text("pad")),
        other => panic!("expected status: {other}"),
    }
    client.send_raw(&padded(16 * 1024 + 1));
    let reply = next_reply(&mut client).expect("an error reply");
    assert_error(&reply, &Id::Null, Code::TooLarge);
    assert_closed(&mut client, "a line of 16 KiB + 1");
    // A line many times the limit still gets its error reply first.
    let (reply, ended) = first_reply_then_end(quorum.addr, padded(1 << 20));
    assert_error(&reply, &Id::Null, Code::TooLarge);
    assert!(ended, "the connection should end after too_large");
    still_serving(&quorum, &key);
}

#[test]
fn bad_requests_get_an_error_and_the_connection_stays_open() {
    let tmp = TempDir::new("errors-request");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let cases: [(&str, &str, Id); 18] = [
        ("unknown type", r#"{"type":"dance","id":5}"#, Id::Number(5)),
        ("no type", r#"{"id":"t"}"#, text("t")),
        ("type not a string", r#"{"type":3,"id":"t3"}"#, text("t3")),
        ("missing id", r#"{"type":"status"}"#, Id::Null),
        ("null id", r#"{"type":"status","id":null}"#, Id::Null),
        ("fractional id", r#"{"type":"status","id":1.5}"#, Id::Null),
        ("negative id", r#"{"type":"status","id":-3}"#, Id::Null),
        ("array id", r#"{"type":"status","id":[1]}"#, Id::Null),
        (
            "boolean id",
            r#"{"type":"lookup","id":true,"name":"a.tor"}"#,
            Id::Null,
        ),
        (
            "lookup without name",
            r#"{"type":"lookup","id":"l1"}"#,
            text("l1"),
        ),
        (
            "lookup of a bad name",
            r#"{"type":"lookup","id":"l2","name":"bad_name!.tor"}"#,
            text("l2"),
        ),
        (
            "lookup outside .tor",
            r#"{"type":"lookup","id":"l3","name":"example.com"}"#,
            text("l3"),
        ),
        (
            "subscribe from a negative seq",
            r#"{"type":"subscribe","id":"s1","from":-1}"#,
            text("s1"),
        ),
        (
            "subscribe from a string",
            r#"{"type":"subscribe","id":"s2","from":"1"}"#,
            text("s2"),
        ),
        (
            "put without record",
            r#"{"type":"put","id":"p"}"#,
            text("p"),
        ),
        ("a JSON array", r#"[{"type":"status","id":1}]"#, Id::Null),
        ("a JSON string", r#""status""#, Id::Null),
        ("a JSON number", "42", Id::Null),
    ];
    let mut client = quorum.client();
    for (i, (what, line, id)) in cases.into_iter().enumerate() {
        client.send_raw(format!("{line}\n").as_bytes());
        let reply = next_reply(&mut client)
            .unwrap_or_else(|| panic!("{what}: the server closed the connection"));
        let message = assert_error(&reply, &id, Code::BadRequest);
        assert!(message.len() > 10, "{what}: say what was wrong: {message}");
        // The same connection keeps working.
        status_works(&mut client, &format!("after case {i}"));
    }
    // A subscription refused for a bad `from` did not make the connection
    // a subscriber.
    assert_eq!(quorum.status().subscribers, 0);
    still_serving(&quorum, &key);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let tmp = TempDir::new("errors-pipeline");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let rec = record(&owner(8), "piped.tor", 1, 0, &[]);
    let name = |n: &str| LookupName::from_user(n).unwrap();
    let mut bytes = Vec::new();
    bytes.extend(
        Request::Put {
            id: text("1"),
            record: rec.to_value(),
        }
        .to_line(),
    );
    bytes.extend(
        Request::Lookup {
            id: text("2"),
            name: name("piped.tor"),
        }
        .to_line(),
    );
    bytes.extend(
        Request::Lookup {
            id: text("3"),
            name: name("absent.tor"),
        }
        .to_line(),
    );
    // A request type the typed module cannot even spell.
    bytes.extend(b"{\"type\":\"dance\",\"id\":\"4\"}\n");
    bytes.extend(Request::Status { id: text("5") }.to_line());
    let mut client = quorum.client();
    client.send_raw(&bytes);
    let replies: Vec<Reply> = (0..5)
        .map(|i| next_reply(&mut client).unwrap_or_else(|| panic!("closed before reply {i}")))
        .collect();
    let ids: Vec<Id> = replies
        .iter()
        .map(|reply| match reply {
            Reply::Accepted { id, .. }
            | Reply::Found { id, .. }
            | Reply::NotFound { id, .. }
            | Reply::Subscribed { id, .. }
            | Reply::Cosigned { id, .. }
            | Reply::Status { id, .. } => id.clone(),
            Reply::Error(error) => error.id.clone(),
        })
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5"].map(text), "{replies:?}");
    assert_eq!(attested_seq(&replies[0], &rec, &key), 1);
    assert_eq!(
        assert_found(&replies[1], "piped.tor", &rec, &key),
        1,
        "the put came first"
    );
    let Reply::Found { attestation, .. } = &replies[1] else {
        unreachable!()
    };
    assert_eq!(attestation, accepted(&replies[0]));
    let head = assert_absent(&replies[2], &text("3"), "absent.tor", &key);
    assert_eq!(
        (head.seq, head.size),
        (1, 1),
        "the put came first: {head:?}"
    );
    assert_error(&replies[3], &text("4"), Code::BadRequest);
    let Reply::Status { status, .. } = &replies[4] else {
        panic!("expected status: {}", replies[4]);
    };
    assert_eq!(status.seq, 1, "{status}");
    assert_eq!(status.head.as_ref().map(|h| h.seq), Some(1), "{status}");
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
