//! Mirrors that go away: one killed with SIGKILL while it replicates keeps
//! what it applied and catches up; one back after a long absence copies a
//! backlog larger than one catch-up batch.

use crate::checks::{assert_continues, assert_found, assert_signed, wait_converged};
use crate::claims::{claim, stream_puts, Accepted};
use crate::{CONVERGE_LIMIT, MIRROR_IP, QUICK, QUORUM_IP};
use onions::wire::Reply;
use std::sync::{Arc, Mutex};
use testkit::servers::{attested_seq, print_key, state_dir, wait_until, Server};
use testkit::TempDir;

#[test]
fn mirror_killed_while_replicating_keeps_what_it_applied_and_catches_up() {
    let tmp = TempDir::new("crash-mirror");
    let qstate = state_dir(&tmp, "quorum");
    let key = print_key(&qstate);
    let quorum = Server::quorum(QUORUM_IP, &qstate, &["--heartbeat", "1"]);
    let mut mirror = Server::mirror(MIRROR_IP, &state_dir(&tmp, "m1"), quorum.addr, &key, QUICK);
    mirror.wait_upstream_up(CONVERGE_LIMIT);

    let accepted = Arc::new(Mutex::new(Vec::new()));
    let streams: Vec<_> = (0..2u8)
        .map(|c| {
            let records = (0..300)
                .map(|i| claim(20 + c, i, &format!("mk-{c}-{i}.tor")))
                .collect();
            stream_puts(quorum.addr, key.clone(), records, accepted.clone())
        })
        .collect();

    // Kill -9 the mirror once it has applied some of the stream and
    // answers with a head; note both as it reports them.
    let mut last_status = None;
    wait_until(
        "the mirror to apply 30 records under a head",
        CONVERGE_LIMIT,
        || {
            let status = mirror.status();
            let ready = status.seq >= 30
                && status
                    .audit
                    .as_ref()
                    .and_then(|a| a.matched.as_ref())
                    .is_some_and(|h| h.seq >= 1);
            last_status = Some(status);
            ready
        },
    );
    let status = last_status.unwrap();
    let applied = status.seq;
    let before = status.audit.and_then(|a| a.matched).unwrap();
    assert_signed(&before, &key, "the mirror's head before the kill");
    mirror.kill9();

    // More claims while it is down.
    let mut client = quorum.client();
    let mut while_down = Vec::new();
    for i in 0..20 {
        let record = claim(29, i, &format!("while-down-{i}.tor"));
        let reply = client.put(&record);
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
        let seq = attested_seq(&reply, &record, &key);
        while_down.push(Accepted { record, seq });
    }
    for stream in streams {
        assert!(
            !stream.join().expect("a streaming client failed").cut,
            "the Quorum dropped a client"
        );
    }
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 600);

    // Right after the restart: everything it had reported applied is
    // there, and it answers at once with a head that continues the one it
    // answered with before (its last matched head, taken again from its
    // log), so everything that head covers is found and proven.
    mirror.restart();
    let status = mirror.status();
    assert!(
        status.seq >= applied,
        "mirror seq {} fell below {applied}",
        status.seq
    );
    let restored = status
        .audit
        .and_then(|a| a.matched)
        .unwrap_or_else(|| panic!("the restarted mirror has no head:\n{}", mirror.log()));
    assert_signed(&restored, &key, "the restarted mirror's head");
    assert_continues(&restored, &before, "restarted mirror");
    let mut at_mirror = mirror.client();
    for a in accepted.iter().filter(|a| a.seq <= restored.seq) {
        let head = assert_found(&mut at_mirror, &a.record, a.seq, &key, "restarted mirror");
        assert_continues(&head, &before, "restarted mirror's answers");
    }
    // What it applied above that head is answered once a head covers it.
    mirror.wait_head(applied, CONVERGE_LIMIT);
    for a in accepted.iter().filter(|a| a.seq <= applied) {
        assert_found(&mut at_mirror, &a.record, a.seq, &key, "restarted mirror");
    }

    // Then it catches up with the Quorum, including what came meanwhile,
    // and its head agrees with the Quorum's.
    let head = wait_converged(&mirror, &quorum, "the restarted mirror to catch up");
    assert_continues(&head, &before, "caught-up mirror");
    let status = mirror.status();
    assert_eq!(status.records, status.seq);
    for a in while_down.iter().chain(&accepted) {
        assert_found(&mut at_mirror, &a.record, a.seq, &key, "caught-up mirror");
    }
}

#[test]
fn mirror_returning_after_a_long_absence_catches_up_past_one_feed_batch() {
    // A catch-up is fed in batches of about 256 KiB; 1,000 records of about
    // 550 bytes need at least three of them.
    let tmp = TempDir::new("late-mirror");
    let qstate = state_dir(&tmp, "quorum");
    let key = print_key(&qstate);
    let quorum = Server::quorum(QUORUM_IP, &qstate, &["--heartbeat", "1"]);
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let streams: Vec<_> = (0..4u8)
        .map(|c| {
            let records = (0..250)
                .map(|i| claim(60 + c, i, &format!("late-{c}-{i}.tor")))
                .collect();
            stream_puts(quorum.addr, key.clone(), records, accepted.clone())
        })
        .collect();
    for stream in streams {
        assert!(!stream.join().expect("a streaming client failed").cut);
    }
    assert_eq!(quorum.status().seq, 1000);

    let mirror = Server::mirror(MIRROR_IP, &state_dir(&tmp, "m1"), quorum.addr, &key, QUICK);
    wait_converged(&mirror, &quorum, "a new mirror to copy 1,000 records");
    let accepted = accepted.lock().unwrap().clone();
    let mut at_mirror = mirror.client();
    for a in accepted.iter().step_by(9) {
        assert_found(&mut at_mirror, &a.record, a.seq, &key, "late mirror");
    }
}
