//! How the tests here talk to a server and check its replies: requests
//! sent on a connection, replies decoded (each carrying its `id`), errors
//! with their code and echoed id, `found` and `not_found` with proofs that
//! hold, and a server that keeps serving or closes.

use onions::head::SignedHead;
use onions::name::LookupName;
use onions::wire::{Code, Id, Reply, Request};
use serde_json::Value;
use testkit::checks;
use testkit::servers::{Client, Server};

/// A string id.
pub(crate) fn text(id: &str) -> Id {
    Id::Text(id.into())
}

/// Decodes one reply line. Every reply, an error to a request without an
/// id included, carries an `id` key (§7, §8); anything that is not a
/// well-formed reply fails the test.
pub(crate) fn decode(line: &[u8]) -> Reply {
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
pub(crate) fn next_reply(client: &mut Client) -> Option<Reply> {
    client.read_line().map(|line| decode(&line))
}

/// Sends `request` on `client` and returns the reply.
pub(crate) fn exchange(client: &mut Client, request: &Request) -> Reply {
    client.send_raw(&request.to_line());
    next_reply(client).expect("the server closed instead of replying")
}

/// Checks that `reply` is an error with `code` for request `id`, and
/// returns its message.
pub(crate) fn assert_error(reply: &Reply, id: &Id, code: Code) -> String {
    let Reply::Error(error) = reply else {
        panic!("expected {code}: {reply}");
    };
    assert_eq!(error.code, code, "expected {code}: {reply}");
    assert_eq!(&error.id, id, "the id must be echoed: {reply}");
    assert!(!error.message.trim().is_empty(), "empty message: {reply}");
    error.message.clone()
}

/// Checks that `reply` answers the lookup `id` of `name` with `not_found`,
/// echoing `id`, as [`checks::assert_absent`] checks it; returns the head.
pub(crate) fn assert_absent(reply: &Reply, id: &Id, name: &str, key: &str) -> SignedHead {
    let head = checks::assert_absent(reply, name, key);
    assert!(
        matches!(reply, Reply::NotFound { id: got, .. } if got == id),
        "the id must be echoed: {reply}"
    );
    head
}

/// A lookup of `name` with request id `id`.
pub(crate) fn lookup(client: &mut Client, id: Id, name: &str) -> Reply {
    exchange(
        client,
        &Request::Lookup {
            id,
            name: LookupName::from_user(name).unwrap(),
        },
    )
}

/// A status request on `client` is answered, with its id.
pub(crate) fn status_works(client: &mut Client, id: &str) {
    match exchange(client, &Request::Status { id: text(id) }) {
        Reply::Status { id: got, .. } => assert_eq!(got, text(id)),
        other => panic!("expected status: {other}"),
    }
}

/// The server still serves on a new connection: its status, and a lookup
/// of an unregistered name answered with a proof of absence against a head
/// signed by the Quorum key `key`.
pub(crate) fn still_serving(server: &Server, key: &str) {
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
pub(crate) fn assert_closed(client: &mut Client, what: &str) {
    assert!(
        client.read_line().is_none(),
        "{what}: the server should close the connection"
    );
}

/// A put of `record` (as JSON) with request id `id`.
pub(crate) fn put_value(client: &mut Client, id: Id, record: Value) -> Reply {
    exchange(client, &Request::Put { id, record })
}
