//! JSON that is not a valid request (`bad_request`, the connection stays
//! open), and pipelined requests answered in order.

use crate::exchange::{assert_absent, assert_error, next_reply, status_works, still_serving, text};
use onions::name::LookupName;
use onions::wire::{Code, Id, Reply, Request};
use testkit::checks::{accepted, assert_found};
use testkit::servers::{attested_seq, owner, print_key, record, Server};
use testkit::TempDir;

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
            | Reply::Names { id, .. }
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
    assert_eq!(*attestation, accepted(&replies[0]));
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
