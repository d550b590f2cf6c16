//! Every error code of protocol.md §8, provoked on real `onions-server`
//! processes over real sockets, and what the server does next.
//!
//! The story: a Quorum (and, for `read_only`, a mirror) is sent each kind of
//! wrong request: a claim on a name another key holds, a stale serial, a
//! tampered or expired record, missing proof of work, a malformed record, a
//! put to a mirror, a lookup of an unknown name, a line that is not JSON or
//! not UTF-8, a line over `--max-message`, and requests that are JSON but
//! not valid requests. Each gets `{"type":"error","id":...,"code":...,
//! "message":...}` with the request's id echoed (null when it had none) and
//! a message a person can act on. The server keeps serving: a new connection
//! works, and the same connection does too, except after `bad_json` and
//! `too_large`, when the server closes it (§7). Also: a retried put of the
//! live record gets the same attestation without raising the head; claims
//! racing for one name have exactly one winner, and racing updates leave
//! the highest serial live; a record issued more than 600 s ahead is
//! refused while one 300 s ahead is not; the default line limit is 16 KiB;
//! and pipelined requests are answered in order.

mod common;

use common::servers::{attested_seq, owner, print_key, record, Client, Server};
use common::TempDir;
use onions::keys::SigningKey;
use onions::name::RegisteredName;
use onions::record::{Claim, Record};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const DAY: u64 = 86_400;

/// Checks that `reply` is an error with `code` for request `id`, and
/// returns its message.
fn assert_error(reply: &Value, id: &Value, code: &str) -> String {
    assert_eq!(reply["type"], "error", "expected {code}: {reply}");
    assert_eq!(reply["code"], code, "expected {code}: {reply}");
    assert!(
        reply.get("id").is_some(),
        "an error reply always carries id: {reply}"
    );
    assert_eq!(&reply["id"], id, "the id must be echoed: {reply}");
    let message = reply["message"]
        .as_str()
        .unwrap_or_else(|| panic!("an error needs a message: {reply}"));
    assert!(!message.trim().is_empty(), "empty message: {reply}");
    message.to_owned()
}

/// A status request on `client` is answered, with its id.
fn status_works(client: &mut Client, id: &str) {
    let reply = client.request(&json!({"type": "status", "id": id}));
    assert_eq!(reply["type"], "status", "{reply}");
    assert_eq!(reply["id"], id, "{reply}");
}

/// The server still serves on a new connection.
fn still_serving(server: &Server) {
    let status = server.status();
    assert_eq!(status["type"], "status", "{status}");
    let lookup = server.client().lookup("nobody-here.tor");
    assert_error(&lookup, &json!(2), "not_found");
}

/// The server closed `client`'s connection (after its error reply).
fn assert_closed(client: &mut Client, what: &str) {
    assert!(
        client.read().is_none(),
        "{what}: the server should close the connection"
    );
}

/// A put of `record` (as JSON) with request id `id`.
fn put_value(client: &mut Client, id: Value, record: Value) -> Value {
    client.request(&json!({"type": "put", "id": id, "record": record}))
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

#[test]
fn ownership_errors_name_taken_and_stale_serial() {
    let tmp = TempDir::new("errors-ownership");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let (holder, rival) = (owner(1), owner(2));
    let live = record(&holder, "taken.tor", 2, 0, &[]);
    let mut client = quorum.client();
    let accepted = put_value(&mut client, json!("first"), live.to_value());
    assert_eq!(accepted["id"], "first");
    assert_eq!(attested_seq(&accepted, &live, &key), 1);

    // name_taken: another key claims the live name, whatever its serial.
    let claim = record(&rival, "taken.tor", 9, 0, &[]);
    let reply = put_value(&mut client, json!(10), claim.to_value());
    let message = assert_error(&reply, &json!(10), "name_taken");
    assert!(message.contains("taken.tor"), "{message}");
    status_works(&mut client, "after name_taken");

    // stale_serial: the same key, the same serial, a different record ...
    let www = owner(3);
    let same = record(&holder, "taken.tor", 2, 0, &[("www", &www)]);
    assert_ne!(same.id(), live.id());
    let reply = put_value(&mut client, json!("same"), same.to_value());
    assert_error(&reply, &json!("same"), "stale_serial");
    status_works(&mut client, "after stale_serial");
    // ... or a lower serial.
    let lower = record(&holder, "taken.tor", 1, 0, &[("www", &www)]);
    let reply = put_value(&mut client, json!(11), lower.to_value());
    assert_error(&reply, &json!(11), "stale_serial");

    // A retry of the live record itself is accepted with its attestation
    // and does not raise the head.
    let again = put_value(&mut client, json!("retry"), live.to_value());
    assert_eq!(again["type"], "accepted", "{again}");
    assert_eq!(again["id"], "retry");
    assert_eq!(again["attestation"], accepted["attestation"]);
    let status = quorum.status();
    assert_eq!(
        (status["head"].clone(), status["records"].clone()),
        (json!(1), json!(1))
    );

    // The live record is still the first one, and a higher serial replaces it.
    let found = client.lookup("taken.tor");
    assert_eq!(found["record"], live.to_value(), "{found}");
    let newer = record(&holder, "taken.tor", 3, 0, &[("www", &www)]);
    assert_eq!(attested_seq(&client.put(&newer), &newer, &key), 2);
    still_serving(&quorum);
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
    let replies: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = claims
            .iter()
            .map(|rec| scope.spawn(move || Client::connect(addr).put(rec)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<usize> = (0..8)
        .filter(|&i| replies[i]["type"] == "accepted")
        .collect();
    assert_eq!(winners.len(), 1, "exactly one claim wins: {replies:?}");
    for (i, reply) in replies.iter().enumerate() {
        if i != winners[0] {
            assert_error(reply, &json!(1), "name_taken");
        }
    }
    let winner = &claims[winners[0]];
    assert_eq!(attested_seq(&replies[winners[0]], winner, &key), 1);
    assert_eq!(
        quorum.client().lookup("race.tor")["record"],
        winner.to_value()
    );

    // One key sends serials 1 to 8 at once: whatever order they arrive in,
    // serial 8 ends up live, and every refusal is stale_serial.
    let mine = owner(120);
    let updates: Vec<Record> = (1..=8)
        .map(|serial| record(&mine, "serials.tor", serial, 0, &[]))
        .collect();
    let replies: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = updates
            .iter()
            .map(|rec| scope.spawn(move || Client::connect(addr).put(rec)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut accepted = Vec::new();
    for (rec, reply) in updates.iter().zip(&replies) {
        if reply["type"] == "accepted" {
            accepted.push((attested_seq(reply, rec, &key), rec.serial));
        } else {
            assert_error(reply, &json!(1), "stale_serial");
        }
    }
    accepted.sort();
    assert!(
        accepted.windows(2).all(|w| w[0].1 < w[1].1),
        "accepted serials rise with seq: {accepted:?}"
    );
    assert_eq!(accepted.last().map(|a| a.1), Some(8), "{accepted:?}");
    let found = quorum.client().lookup("serials.tor");
    assert_eq!(found["record"]["serial"], 8, "{found}");
    let status = quorum.status();
    assert_eq!(status["head"], 1 + accepted.len() as u64, "{status}");
    assert_eq!(status["records"], 2, "{status}");
}

#[test]
fn record_errors_signature_expiry_shape_and_future() {
    onions::keys::init().unwrap();
    let tmp = TempDir::new("errors-record");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let mut client = quorum.client();
    let key = owner(4);
    let now = onions::clock::now();
    let good = record(&key, "shape.tor", 1, 0, &[]).to_value();

    // bad_signature: a field changed after signing.
    let mut tampered = good.clone();
    tampered["contact"] = json!("someone else");
    let reply = put_value(&mut client, json!("sig"), tampered);
    assert_error(&reply, &json!("sig"), "bad_signature");
    status_works(&mut client, "after bad_signature");
    let mut tampered = good.clone();
    tampered["serial"] = json!(7);
    let reply = put_value(&mut client, json!("sig2"), tampered);
    assert_error(&reply, &json!("sig2"), "bad_signature");

    // expired: a correctly signed record whose day ended yesterday.
    let old = handmade(&key, "shape.tor", now - 2 * DAY, now - DAY, 0);
    let reply = put_value(&mut client, json!("old"), old.to_value());
    let message = assert_error(&reply, &json!("old"), "expired");
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
        let reply = put_value(&mut client, json!(i), value);
        let message = assert_error(&reply, &json!(i), "bad_record");
        assert!(
            message.contains(needle),
            "{what}: the message should mention {needle:?}: {message}"
        );
        status_works(&mut client, what);
    }

    // Nothing was stored, and a good record still goes in.
    assert_eq!(quorum.status()["head"], 0);
    let reply = put_value(&mut client, json!("good"), good.clone());
    assert_eq!(reply["type"], "accepted", "{reply}");
    still_serving(&quorum);
}

#[test]
fn issued_just_inside_the_allowed_skew_is_accepted() {
    onions::keys::init().unwrap();
    let tmp = TempDir::new("errors-skew");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = owner(5);
    let now = onions::clock::now();
    // 700 s ahead is refused; 300 s ahead (within 600 s) is accepted.
    let ahead = handmade(&key, "skew.tor", now + 700, now + 700 + DAY, 0);
    let reply = put_value(&mut quorum.client(), json!("ahead"), ahead.to_value());
    assert_error(&reply, &json!("ahead"), "bad_record");
    let near = handmade(&key, "skew.tor", now + 300, now + 300 + DAY, 0);
    let reply = put_value(&mut quorum.client(), json!("near"), near.to_value());
    assert_eq!(reply["type"], "accepted", "{reply}");
}

#[test]
fn insufficient_work_below_the_minimum_or_not_done() {
    onions::keys::init().unwrap();
    let tmp = TempDir::new("errors-work");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--min-work", "4"]);
    let qkey = print_key(&quorum.state);
    assert_eq!(quorum.status()["min_work"], 4);
    let key = owner(6);
    let mut client = quorum.client();

    let none = record(&key, "work.tor", 1, 0, &[]);
    let reply = put_value(&mut client, json!("none"), none.to_value());
    let message = assert_error(&reply, &json!("none"), "insufficient_work");
    assert!(
        message.contains('4'),
        "the minimum should be named: {message}"
    );
    status_works(&mut client, "after work below the minimum");

    let claimed = without_work(&key, "work.tor", 8);
    let reply = put_value(&mut client, json!("claimed"), claimed.to_value());
    assert_error(&reply, &json!("claimed"), "insufficient_work");
    status_works(&mut client, "after work not done");

    // The same name with the work really done is accepted.
    let done = record(&key, "work.tor", 1, 4, &[]);
    let reply = put_value(&mut client, json!("done"), done.to_value());
    assert_eq!(attested_seq(&reply, &done, &qkey), 1);
    still_serving(&quorum);
}

#[test]
fn read_only_at_a_mirror_and_not_found() {
    let tmp = TempDir::new("errors-mirror");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    let rec = record(&owner(7), "mirrored.tor", 1, 0, &[]);

    let mut client = mirror.client();
    let reply = put_value(&mut client, json!("ro"), rec.to_value());
    let message = assert_error(&reply, &json!("ro"), "read_only");
    assert!(message.contains("Quorum"), "{message}");
    status_works(&mut client, "after read_only");

    // not_found, on the mirror and on the Quorum, with string and integer ids.
    let reply = client.request(&json!({"type": "lookup", "id": "nf", "name": "mirrored.tor"}));
    let message = assert_error(&reply, &json!("nf"), "not_found");
    assert!(message.contains("mirrored.tor"), "{message}");
    let mut at_quorum = quorum.client();
    let reply = at_quorum.request(&json!({"type": "lookup", "id": 77, "name": "www.unknown.tor"}));
    let message = assert_error(&reply, &json!(77), "not_found");
    assert!(message.contains("unknown.tor"), "{message}");
    status_works(&mut at_quorum, "after not_found");

    // Once the record is put to the Quorum, the mirror finds it.
    assert_eq!(at_quorum.put(&rec)["type"], "accepted");
    mirror.wait_head(1, Duration::from_secs(20));
    let reply = client.lookup("mirrored.tor");
    assert_eq!(reply["type"], "found", "{reply}");
    still_serving(&mirror);
    still_serving(&quorum);
}

#[test]
fn bad_json_gets_an_error_and_the_connection_closes() {
    let tmp = TempDir::new("errors-json");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
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
        let reply = client
            .read()
            .unwrap_or_else(|| panic!("{what}: closed without an error reply"));
        assert_error(&reply, &Value::Null, "bad_json");
        assert_closed(&mut client, what);
        still_serving(&quorum);
    }
    // What follows a bad line in the same write is not answered: the
    // connection ends with the error.
    let mut client = quorum.client();
    client.send_raw(b"{\n{\"type\":\"status\",\"id\":\"after\"}\n");
    let reply = client.read().expect("an error reply");
    assert_error(&reply, &Value::Null, "bad_json");
    assert_closed(&mut client, "a bad line followed by a good one");
    // A good line before a bad one is answered first.
    let mut client = quorum.client();
    client.send_raw(b"{\"type\":\"status\",\"id\":\"before\"}\n\xff\n");
    assert_eq!(client.read().expect("the status reply")["id"], "before");
    let reply = client.read().expect("an error reply");
    assert_error(&reply, &Value::Null, "bad_json");
    assert_closed(&mut client, "a good line followed by a bad one");
}

#[test]
fn too_large_gets_an_error_and_the_connection_closes() {
    let tmp = TempDir::new("errors-large");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--max-message", "2048"]);
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
    let reply = client.read().expect("a reply to a line at the limit");
    assert_eq!(reply["type"], "status", "{reply}");
    assert_eq!(reply["id"], "big", "{reply}");

    // One byte more is too large, and the connection is closed.
    let mut line = padded(2049);
    line.push(b'\n');
    client.send_raw(&line);
    let reply = client.read().expect("an error reply to a long line");
    let message = assert_error(&reply, &Value::Null, "too_large");
    assert!(message.contains("2048"), "{message}");
    assert_closed(&mut client, "a line over the limit");
    still_serving(&quorum);

    // So is a long line that has not even ended yet.
    let mut client = quorum.client();
    client.send_raw(&padded(3000));
    let reply = client.read().expect("an error reply to an endless line");
    assert_error(&reply, &Value::Null, "too_large");
    assert_closed(&mut client, "an unfinished line over the limit");
    still_serving(&quorum);
    assert!(
        quorum.log().contains("--max-message"),
        "the limit is logged when hit:\n{}",
        quorum.log()
    );
}

/// Sends `bytes` on a fresh connection from a thread of its own (the server
/// may stop reading) and returns the first reply line, and whether the
/// connection then ended (end of stream, or a reset because the server
/// closed with bytes unread).
fn first_reply_then_end(addr: std::net::SocketAddr, bytes: Vec<u8>) -> (Value, bool) {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(common::servers::REPLY_LIMIT))
        .unwrap();
    stream
        .set_write_timeout(Some(common::servers::REPLY_LIMIT))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        // Fails once the server has closed; that is expected.
        let _ = writer.write_all(&bytes);
    });
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("no reply: {e}"));
    let reply = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let mut rest = String::new();
    let ended = match reader.read_line(&mut rest) {
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
    let padded = |len: usize| {
        let mut line = br#"{"type":"status","id":"pad"}"#.to_vec();
        line.resize(len, b' ');
        line.push(b'\n');
        line
    };
    let mut client = quorum.client();
    client.send_raw(&padded(16 * 1024));
    assert_eq!(client.read().expect("a reply")["id"], "pad");
    client.send_raw(&padded(16 * 1024 + 1));
    let reply = client.read().expect("an error reply");
    assert_error(&reply, &Value::Null, "too_large");
    assert_closed(&mut client, "a line of 16 KiB + 1");
    // A line many times the limit still gets its error reply first.
    let (reply, ended) = first_reply_then_end(quorum.addr, padded(1 << 20));
    assert_error(&reply, &Value::Null, "too_large");
    assert!(ended, "the connection should end after too_large");
    still_serving(&quorum);
}

#[test]
fn bad_requests_get_an_error_and_the_connection_stays_open() {
    let tmp = TempDir::new("errors-request");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let cases: [(&str, &str, Value); 18] = [
        ("unknown type", r#"{"type":"dance","id":5}"#, json!(5)),
        ("no type", r#"{"id":"t"}"#, json!("t")),
        ("type not a string", r#"{"type":3,"id":"t3"}"#, json!("t3")),
        ("missing id", r#"{"type":"status"}"#, Value::Null),
        ("null id", r#"{"type":"status","id":null}"#, Value::Null),
        (
            "fractional id",
            r#"{"type":"status","id":1.5}"#,
            Value::Null,
        ),
        ("negative id", r#"{"type":"status","id":-3}"#, Value::Null),
        ("array id", r#"{"type":"status","id":[1]}"#, Value::Null),
        (
            "boolean id",
            r#"{"type":"lookup","id":true,"name":"a.tor"}"#,
            Value::Null,
        ),
        (
            "lookup without name",
            r#"{"type":"lookup","id":"l1"}"#,
            json!("l1"),
        ),
        (
            "lookup of a bad name",
            r#"{"type":"lookup","id":"l2","name":"bad_name!.tor"}"#,
            json!("l2"),
        ),
        (
            "lookup outside .tor",
            r#"{"type":"lookup","id":"l3","name":"example.com"}"#,
            json!("l3"),
        ),
        (
            "subscribe from a negative seq",
            r#"{"type":"subscribe","id":"s1","from":-1}"#,
            json!("s1"),
        ),
        (
            "subscribe from a string",
            r#"{"type":"subscribe","id":"s2","from":"1"}"#,
            json!("s2"),
        ),
        (
            "put without record",
            r#"{"type":"put","id":"p"}"#,
            json!("p"),
        ),
        ("a JSON array", r#"[{"type":"status","id":1}]"#, Value::Null),
        ("a JSON string", r#""status""#, Value::Null),
        ("a JSON number", "42", Value::Null),
    ];
    let mut client = quorum.client();
    for (i, (what, line, id)) in cases.into_iter().enumerate() {
        client.send_raw(format!("{line}\n").as_bytes());
        let reply = client
            .read()
            .unwrap_or_else(|| panic!("{what}: the server closed the connection"));
        let message = assert_error(&reply, &id, "bad_request");
        assert!(message.len() > 10, "{what}: say what was wrong: {message}");
        // The same connection keeps working.
        status_works(&mut client, &format!("after case {i}"));
    }
    // A subscription refused for a bad `from` did not make the connection
    // a subscriber.
    assert_eq!(quorum.status()["subscribers"], 0);
    still_serving(&quorum);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let tmp = TempDir::new("errors-pipeline");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let rec = record(&owner(8), "piped.tor", 1, 0, &[]);
    let requests = [
        json!({"type": "put", "id": "1", "record": rec.to_value()}),
        json!({"type": "lookup", "id": "2", "name": "piped.tor"}),
        json!({"type": "lookup", "id": "3", "name": "absent.tor"}),
        json!({"type": "dance", "id": "4"}),
        json!({"type": "status", "id": "5"}),
    ];
    let mut bytes = Vec::new();
    for request in &requests {
        bytes.extend(serde_json::to_vec(request).unwrap());
        bytes.push(b'\n');
    }
    let mut client = quorum.client();
    client.send_raw(&bytes);
    let replies: Vec<Value> = (0..requests.len())
        .map(|i| {
            client
                .read()
                .unwrap_or_else(|| panic!("closed before reply {i}"))
        })
        .collect();
    let ids: Vec<Option<&str>> = replies.iter().map(|r| r["id"].as_str()).collect();
    assert_eq!(
        ids,
        [Some("1"), Some("2"), Some("3"), Some("4"), Some("5")],
        "{replies:?}"
    );
    assert_eq!(replies[0]["type"], "accepted");
    assert_eq!(attested_seq(&replies[0], &rec, &key), 1);
    assert_eq!(
        replies[1]["type"], "found",
        "the put came first: {}",
        replies[1]
    );
    assert_eq!(replies[1]["attestation"], replies[0]["attestation"]);
    assert_error(&replies[2], &json!("3"), "not_found");
    assert_error(&replies[3], &json!("4"), "bad_request");
    assert_eq!(replies[4]["type"], "status");
    assert_eq!(replies[4]["head"], 1);
}
