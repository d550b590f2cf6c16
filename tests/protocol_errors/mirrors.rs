//! At a mirror: a put is `read_only`, a missing name is `not_found` with
//! an absence proof, and a mirror that never received a head answers
//! `no_head`.

use crate::exchange::{
    assert_absent, assert_error, lookup, put_value, status_works, still_serving, text,
};
use crate::HEAD_LIMIT;
use onions::merkle::{reference_proof, EMPTY};
use onions::wire::{AuditState, Code, Id, Reply};
use std::time::Duration;
use testkit::checks::{assert_found, leaf_key};
use testkit::servers::{attested_seq, owner, print_key, record, Server};
use testkit::{free_port_on, TempDir};

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
