//! What the tests here check after a crash: a record found with its seq
//! and a proof against a head the Quorum signed, heads that continue the
//! ones seen before, and a mirror converged on the Quorum.

use crate::CONVERGE_LIMIT;
use onions::head::SignedHead;
use onions::merkle::LeafKey;
use onions::record::Record;
use onions::wire::Reply;
use std::time::{Duration, Instant};
use testkit::servers::{attested_seq, Client, Server};

/// Checks that `head` is signed, and by the Quorum key `key`.
pub(crate) fn assert_signed(head: &SignedHead, key: &str, at: &str) {
    assert_eq!(
        head.quorum.to_base64(),
        key,
        "{at}: head signed by another key"
    );
    assert!(head.signature_holds(), "{at}: head signature does not hold");
}

/// Looks `record.name` up over `client` and checks the answer is that very
/// record with an attestation of `seq` by `key`, proven present by a proof
/// that holds against the root of the answer's head, itself signed by
/// `key`; `at` names the server in failure messages. Returns the head.
pub(crate) fn assert_found(
    client: &mut Client,
    record: &Record,
    seq: u64,
    key: &str,
    at: &str,
) -> SignedHead {
    let reply = client.lookup(record.name.as_str());
    let Reply::Found {
        record: got,
        head,
        proof,
        ..
    } = &reply
    else {
        panic!("{at}: lookup {}: {reply}", record.name);
    };
    assert_eq!(got, record, "{at}: {} changed", record.name);
    assert_eq!(
        attested_seq(&reply, record, key),
        seq,
        "{at}: {} has another seq",
        record.name
    );
    assert_signed(head, key, at);
    assert!(
        seq <= head.seq,
        "{at}: {} (seq {seq}) answered against head seq {}",
        record.name,
        head.seq
    );
    proof
        .verify_presence(&LeafKey::of(&record.name), &record.id(), seq, &head.root)
        .unwrap_or_else(|e| {
            panic!(
                "{at}: the proof of {} (seq {seq}) does not hold against head seq {}: {e:?}",
                record.name, head.seq
            )
        });
    head.clone()
}

/// Checks that `after`, a server's head after a restart, continues from
/// `before`, a head seen before the crash: lower neither in seq nor in
/// time, and not in conflict with it (§10.4, §10.5).
pub(crate) fn assert_continues(after: &SignedHead, before: &SignedHead, what: &str) {
    assert!(
        after.seq >= before.seq && after.time >= before.time,
        "{what}: head seq {} time {} after the restart is below head seq {} time {} seen before",
        after.seq,
        after.time,
        before.seq,
        before.time
    );
    assert!(
        !after.conflicts(before),
        "{what}: head after the restart conflicts with one seen before: {after:?} / {before:?}"
    );
}

/// The Quorum's log without puts and lookups, for failure messages.
pub(crate) fn quiet_log(server: &Server) -> String {
    server
        .log()
        .lines()
        .filter(|l| !l.contains(": put ") && !l.contains(": lookup "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until `mirror` reports the same seq and live count as `quorum`,
/// then until both answer against heads of that seq, and checks that the
/// two heads agree on root and size. Returns the mirror's head.
pub(crate) fn wait_converged(mirror: &Server, quorum: &Server, what: &str) -> SignedHead {
    let at_quorum = quorum.status();
    let (seq, records) = (at_quorum.seq, at_quorum.records);
    let deadline = Instant::now() + CONVERGE_LIMIT;
    loop {
        let status = mirror.status();
        if status.seq == seq && status.records == records {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: Quorum seq {seq}, records {records}; \
             mirror status {status}; mirror log:\n{}\nQuorum log (no puts or lookups):\n{}",
            mirror.log(),
            quiet_log(quorum)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mirror_head = mirror.wait_head(seq, CONVERGE_LIMIT);
    let quorum_head = quorum
        .current_head()
        .unwrap_or_else(|| panic!("the Quorum has no head: {}", quorum.status()));
    assert_eq!(
        (mirror_head.seq, quorum_head.seq),
        (seq, seq),
        "{what}: heads not at seq {seq}"
    );
    assert_eq!(
        (mirror_head.root, mirror_head.size),
        (quorum_head.root, quorum_head.size),
        "{what}: the mirror's head at seq {seq} disagrees with the Quorum's: \
         mirror {mirror_head:?}, Quorum {quorum_head:?}"
    );
    assert_eq!(
        quorum_head.size, records,
        "{what}: head size is not the live count"
    );
    mirror_head
}
