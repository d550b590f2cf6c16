//! A mirror whose upstream is down retries with growing waits, answers
//! from its own log and last head meanwhile, and replicates once the
//! upstream is back.

use crate::checks::{assert_continues, assert_found};
use crate::claims::{claim, Accepted};
use crate::{CONVERGE_LIMIT, MIRROR_IP, QUICK, QUORUM_IP};
use std::time::Duration;
use testkit::servers::{attested_seq, log_lines_with, print_key, state_dir, wait_until, Server};
use testkit::TempDir;

/// The waits a mirror announced with "reconnecting in X s", in order.
fn reconnect_waits(mirror: &Server) -> Vec<f64> {
    log_lines_with(mirror, &["upstream", "reconnecting in"])
        .iter()
        .filter_map(|line| {
            let rest = line.split("reconnecting in ").nth(1)?;
            rest.split(' ').next()?.parse().ok()
        })
        .collect()
}

#[test]
fn mirror_with_upstream_down_retries_serves_its_log_and_replicates_later() {
    let tmp = TempDir::new("upstream-down");
    let qstate = state_dir(&tmp, "quorum");
    let key = print_key(&qstate);
    let mut quorum = Server::quorum(QUORUM_IP, &qstate, &[]);
    let mut mirror = Server::mirror(MIRROR_IP, &state_dir(&tmp, "m1"), quorum.addr, &key, QUICK);
    let mut client = quorum.client();
    let mut known = Vec::new();
    for i in 0..3 {
        let record = claim(50, i, &format!("before-{i}.tor"));
        let reply = client.put(&record);
        let seq = attested_seq(&reply, &record, &key);
        known.push(Accepted { record, seq });
    }
    drop(client);
    let before = mirror.wait_head(3, CONVERGE_LIMIT);

    // Both stop; the mirror comes back first, to an upstream that is down.
    assert!(mirror.terminate().success());
    assert!(quorum.terminate().success());
    let retries_before = reconnect_waits(&mirror).len();
    mirror.restart();
    wait_until(
        "the mirror to retry its upstream 3 times",
        Duration::from_secs(30),
        || reconnect_waits(&mirror).len() >= retries_before + 3,
    );
    let waits = reconnect_waits(&mirror)[retries_before..].to_vec();
    // Jitter scales each wait by [0.5, 1.5), but the third base wait is
    // four times the first, so it is always longer.
    assert!(
        waits[2] > waits[0],
        "the backoff does not grow: {waits:?}\n{}",
        mirror.log()
    );
    assert!(
        log_lines_with(&mirror, &["upstream", "connecting (attempt 3)"]).len() == 1,
        "each attempt is logged:\n{}",
        mirror.log()
    );

    // Meanwhile it answers from its own log, against the head it matched
    // before the stop, and says it is cut off.
    let status = mirror.status();
    assert_eq!(
        status.upstream.as_ref().map(|u| u.connected),
        Some(false),
        "{status}"
    );
    assert_eq!(status.seq, 3, "{status}");
    let restored = status.audit.as_ref().and_then(|a| a.matched.clone());
    let restored = restored.unwrap_or_else(|| panic!("no head after the restart: {status}"));
    assert_continues(&restored, &before, "restarted mirror");
    let mut at_mirror = mirror.client();
    for a in &known {
        assert_found(&mut at_mirror, &a.record, a.seq, &key, "cut-off mirror");
    }

    // The upstream returns; a new claim reaches the mirror.
    quorum.restart();
    let record = claim(50, 9, "after-return.tor");
    let reply = quorum.client().put(&record);
    assert_eq!(attested_seq(&reply, &record, &key), 4, "{reply}");
    mirror.wait_head(4, CONVERGE_LIMIT);
    mirror.wait_upstream_up(CONVERGE_LIMIT);
    assert_found(&mut at_mirror, &record, 4, &key, "reconnected mirror");
    assert_found(
        &mut at_mirror,
        &known[0].record,
        known[0].seq,
        &key,
        "reconnected mirror",
    );
}
