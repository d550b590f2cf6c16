//! A record that expires leaves the live set on every server, a late
//! mirror's included, and the name is free for another key.

use crate::checks::{
    assert_absent, assert_head_of, assert_serves, assert_the_proof, leaves, pushes_until_head,
};
use crate::REPLICATE_LIMIT;
use onions::head::SignedHead;
use onions::record::Record;
use onions::wire::{Id, Reply, Request};
use std::net::SocketAddr;
use std::time::Duration;
use testkit::checks::accepted;
use testkit::servers::{
    attested_seq, onion_of, owner, print_key, record, short_lived, wait_until, Server,
};
use testkit::TempDir;

/// Waits until `server` answers against a head covering `seq` signed at or
/// after `time`, and returns it.
fn wait_head_after(server: &Server, seq: u64, time: u64) -> SignedHead {
    let mut found = None;
    wait_until(
        &format!(
            "{} to answer against a head at seq {seq} from time {time}",
            server.addr
        ),
        REPLICATE_LIMIT,
        || {
            found = server
                .current_head()
                .filter(|h| h.seq >= seq && h.time >= time);
            found.is_some()
        },
    );
    found.unwrap()
}

#[test]
fn an_expired_record_leaves_the_live_set_everywhere() {
    let tmp = TempDir::new("replication-expiry");
    // A head every second, so that one is signed soon after the expiry:
    // answers are given as of a head, and a record leaves the live set at
    // the first head whose time is past its expiry (protocol.md §10.1).
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--head-interval", "1"]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    let brief = short_lived(&owner(41), "brief.tor", 3);
    let lasting = record(&owner(42), "lasting.tor", 1, 0, &[]);
    assert_eq!(attested_seq(&quorum.client().put(&brief), &brief, &key), 1);
    let reply = quorum.client().put(&lasting);
    assert_eq!(attested_seq(&reply, &lasting, &key), 2);
    let lasting_attestation = accepted(&reply);
    mirror.wait_head(2, REPLICATE_LIMIT);

    // Once it expires, no server answers with it: each proves it absent
    // against a head signed after the expiry, where only lasting.tor lives.
    wait_until("brief.tor to expire", Duration::from_secs(10), || {
        onions::clock::now() > brief.expires
    });
    let live = leaves(&[(&lasting, 2)]);
    let check_expired = |server: &Server| {
        let at = server.addr;
        let current = wait_head_after(server, 2, brief.expires);
        assert_head_of(&current, &live, &format!("{at} after the expiry"));
        let (head, proof) = assert_absent(server, "brief.tor", &key);
        assert!(head.time >= brief.expires, "{at}: {head:?}");
        assert_the_proof(&proof, "brief.tor", &live, &format!("brief.tor on {at}"));
        assert_serves(
            server,
            "lasting.tor",
            &lasting,
            &lasting_attestation,
            &key,
            &onion_of(&owner(42)),
        );
    };
    check_expired(&quorum);
    check_expired(&mirror);
    // A mirror that starts now is sent the expired record too (it keeps it
    // in case it supersedes one, protocol.md §10.8), yet its live set, and
    // so its head, holds lasting.tor only.
    let late = Server::mirror("127.0.0.3", &tmp.join("late"), quorum.addr, &key, &[]);
    late.wait_head(2, REPLICATE_LIMIT);
    check_expired(&late);
    // Both the Quorum and the late mirror still keep it and send it on in
    // a catch-up (retention, protocol.md §10.6), before the head that
    // leaves it out.
    for server in [&quorum, &late] {
        let mut sub = server.client();
        let subscribed = sub.request(&Request::Subscribe {
            id: Id::Number(9),
            from: 1,
        });
        assert!(
            matches!(subscribed, Reply::Subscribed { seq: 2, .. }),
            "{}: {subscribed}",
            server.addr
        );
        let (pushed, head) = pushes_until_head(&mut sub, 0, 2);
        let pushed: Vec<(u64, &Record)> = pushed.iter().map(|(s, r, _)| (*s, r)).collect();
        assert_eq!(
            pushed,
            vec![(1, &brief), (2, &lasting)],
            "{}: catch-up",
            server.addr
        );
        assert!(head.time >= brief.expires, "{}: {head:?}", server.addr);
        assert_head_of(&head, &live, &format!("catch-up head of {}", server.addr));
    }
    // `records` is the live count (protocol §8), and expired records leave
    // the live set (§6): one live record, on every server alike.
    let counts: Vec<(SocketAddr, u64)> = [&quorum, &mirror, &late]
        .iter()
        .map(|s| (s.addr, s.status().records))
        .collect();

    // The name is free again: another key may claim it, everywhere.
    let rival = record(&owner(43), "brief.tor", 1, 0, &[]);
    let reply = quorum.client().put(&rival);
    assert_eq!(attested_seq(&reply, &rival, &key), 3);
    let rival_attestation = accepted(&reply);
    mirror.wait_head(3, REPLICATE_LIMIT);
    late.wait_head(3, REPLICATE_LIMIT);
    let live = leaves(&[(&lasting, 2), (&rival, 3)]);
    for server in [&quorum, &mirror, &late] {
        let (head, proof) = assert_serves(
            server,
            "brief.tor",
            &rival,
            &rival_attestation,
            &key,
            &onion_of(&owner(43)),
        );
        assert_head_of(&head, &live, &format!("{} after the rival", server.addr));
        assert_the_proof(&proof, "brief.tor", &live, "rival");
    }

    assert!(
        counts.iter().all(|(_, records)| *records == 1),
        "status records must count only live records once brief.tor expired \
         (Quorum, mirror, late mirror): {counts:?}"
    );
}
