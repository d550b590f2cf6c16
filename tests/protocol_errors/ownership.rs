//! `name_taken` and `stale_serial`: claims on a name another key holds,
//! stale serials, a retried put, and claims and updates racing.

use crate::exchange::{assert_error, lookup, put_value, status_works, still_serving, text};
use crate::HEAD_LIMIT;
use onions::record::Record;
use onions::wire::{Code, Id, Reply};
use testkit::checks::{accepted, assert_found};
use testkit::servers::{attested_seq, owner, print_key, record, Client, Server};
use testkit::TempDir;

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
