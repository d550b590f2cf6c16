//! With the daemon away, names fail inside Tor: a `.tor.onion` name even
//! with no guard mapping at all, trailing-dot names through the guard's
//! wildcards for them (and what happens without those).

use crate::checks::{
    assert_failed_locally, assert_no_leak, assert_refused_by_tor, assert_released, statuses,
    wait_held,
};
use crate::fixtures::{cookie_access, Away};
use onions::tor::control::{
    StreamStatus, GUARD_FROM, GUARD_FROM_ONION_ROOTED, GUARD_FROM_ROOTED, GUARD_TO,
};
use testkit::tor::SocksReply;

/// With the daemon away and no guard mapping at all, Tor refuses a
/// `.tor.onion` name itself (it is no valid onion address), while a bare
/// `.tor` name would wait for a circuit to an exit: why links should carry
/// `.tor.onion`. A `.tor.onion` stream left waiting by a killed daemon is
/// failed inside Tor by `--release` too.
#[test]
fn tor_onion_names_fail_inside_tor_without_daemon_or_guard() {
    let mut s = Away::start("client-tor-onion-away", cookie_access);
    let mut daemon = s.daemon("daemon.log");
    daemon.kill9();
    let (mut stuck, stuck_id) = s.watch.connect(s.tor.socks, "stuck.tor.onion", 80);
    wait_held(&mut s.watch, &[&stuck_id]);
    assert_released(s.tmp.path(), &s.access, 1, 0);
    assert_refused_by_tor(&mut s.watch, &mut stuck, &stuck_id);

    // MAPADDRESS of an address to itself removes its mapping.
    s.watch
        .conn
        .map_address(GUARD_FROM, GUARD_FROM)
        .expect("MAPADDRESS *.tor=*.tor");
    assert!(!s.watch.conn.tor_names_guarded().expect("address-mappings"));
    assert_eq!(s.tor.leave_streams_unattached(), "0");

    let (bare, bare_id) = s.watch.connect(s.tor.socks, "example.tor", 80);
    for host in ["example.tor.onion", "www.example.tor.onion"] {
        let (mut socks, id) = s.watch.connect(s.tor.socks, host, 80);
        assert_refused_by_tor(&mut s.watch, &mut socks, &id);
        // No REMAP: no mapping touched it. Tor cut the host to its label
        // before `.onion` and refused that as an onion address.
        let events = s.watch.events_of(&id);
        let failed = events.iter().find(|e| e.status == StreamStatus::Failed);
        assert_eq!(failed.map(|e| e.target_host.as_str()), Some("tor"));
    }
    // The bare name came first and is still waiting for a circuit: with
    // a network it would have gone to an exit.
    assert_eq!(
        statuses(&s.watch.events_of(&bare_id)),
        vec![StreamStatus::New],
        "{}",
        s.watch.dump()
    );
    drop(bare);
    assert_no_leak(&s.watch.seen, "the .tor.onion streams");
}

/// With the daemon away, a `.tor` name with a trailing dot fails inside
/// Tor like any other: the daemon's guard maps `*.tor.` and `*.tor.onion.`
/// as well as `*.tor`, and they stay in Tor when the daemon stops or dies.
/// Without them (`*.tor` alone, the guard as it was), Tor 0.4.9.11 matches
/// `*.tor` against `example.tor.` literally, and takes `example.tor.onion.`
/// for an ordinary hostname (its last label is empty, not `onion`): both
/// wait for an exit circuit, aimed at the name as typed. That is the leak
/// the two wildcards close. A torrc that guards `*.tor` alone draws a
/// warning naming the missing lines.
#[test]
fn trailing_dot_names_fail_inside_tor_while_the_daemon_is_away() {
    let mut s = Away::start("client-trailing-dot-away", cookie_access);
    // torrc with the `*.tor` line alone, as documented before.
    s.watch
        .conn
        .set_conf(&[("MapAddress", &format!("{GUARD_FROM} {GUARD_TO}"))])
        .expect("SETCONF MapAddress");
    let mut daemon = s.daemon("daemon.log");
    for from in [GUARD_FROM_ROOTED, GUARD_FROM_ONION_ROOTED] {
        daemon.wait_log(
            &[&format!(
                "torrc guards some .tor spellings but not {from}; add `MapAddress {from} {GUARD_TO}`"
            )],
            1,
        );
    }
    assert!(s.watch.conn.tor_names_guarded().expect("address-mappings"));

    // Stopped with SIGTERM: new streams fail at once, through the guard.
    assert_eq!(daemon.terminate().code(), Some(0), "{}", daemon.log());
    assert_eq!(s.tor.leave_streams_unattached(), "0");
    assert!(s.watch.conn.tor_names_guarded().expect("address-mappings"));
    for host in [
        "example.tor.",
        "www.example.tor.",
        "example.tor.onion.",
        "WWW.Example.TOR.Onion.",
        "tor.",
    ] {
        let (mut socks, id) = s.watch.connect(s.tor.socks, host, 80);
        assert_failed_locally(&mut s.watch, &mut socks, &id);
        s.watch.assert_never_held(&id, host);
    }
    // A DNS resolve is never sent out either.
    let (mut resolve, id) = s.watch.resolve(s.tor.socks, "example.tor.");
    assert!(
        matches!(resolve.reply(), SocksReply::Refused(code) if code != 0),
        "RESOLVE example.tor."
    );
    for event in s.watch.wait_closed(&id) {
        assert!(!event.on_circuit(), "{event:?}");
        assert_ne!(event.status, StreamStatus::SentResolve, "{event:?}");
    }

    // Killed with -9 while streams wait for it: --release fails them inside
    // Tor, and later streams fail at once.
    let mut daemon = s.daemon("daemon-2.log");
    daemon.kill9();
    let (mut stuck, stuck_id) = s.watch.connect(s.tor.socks, "stuck.tor.", 80);
    let (mut stuck_onion, stuck_onion_id) = s.watch.connect(s.tor.socks, "stuck.tor.onion.", 80);
    wait_held(&mut s.watch, &[&stuck_id, &stuck_onion_id]);
    assert_released(s.tmp.path(), &s.access, 2, 0);
    assert_failed_locally(&mut s.watch, &mut stuck, &stuck_id);
    assert_failed_locally(&mut s.watch, &mut stuck_onion, &stuck_onion_id);
    let (mut name, id) = s.watch.connect(s.tor.socks, "new.tor.", 80);
    assert_failed_locally(&mut s.watch, &mut name, &id);
    s.watch
        .assert_no_leak("trailing-dot names with the daemon away");

    // Without the two wildcards: the leak. (MAPADDRESS of an address to
    // itself removes its mapping.)
    for from in [GUARD_FROM_ROOTED, GUARD_FROM_ONION_ROOTED] {
        s.watch
            .conn
            .map_address(from, from)
            .unwrap_or_else(|e| panic!("MAPADDRESS {from}={from}: {e}"));
    }
    assert_eq!(
        s.watch.conn.unguarded().expect("address-mappings"),
        vec![GUARD_FROM_ROOTED, GUARD_FROM_ONION_ROOTED]
    );
    let (rooted, rooted_id) = s.watch.connect(s.tor.socks, "example.tor.", 80);
    let (onion_rooted, onion_rooted_id) = s.watch.connect(s.tor.socks, "example.tor.onion.", 80);
    // A later `*.tor` stream fails at once: Tor has handled the two by then.
    let (mut bare, bare_id) = s.watch.connect(s.tor.socks, "example.tor", 80);
    assert_failed_locally(&mut s.watch, &mut bare, &bare_id);
    let entries = s.watch.conn.stream_status().expect("stream-status");
    for (id, host) in [
        (&rooted_id, "example.tor."),
        (&onion_rooted_id, "example.tor.onion."),
    ] {
        assert_eq!(
            statuses(&s.watch.events_of(id)),
            vec![StreamStatus::New],
            "{host}: neither mapped nor refused: {}",
            s.watch.dump()
        );
        let entry = entries.iter().find(|e| e.id == *id);
        assert_eq!(
            entry.map(|e| (e.status.clone(), e.target_host.as_str())),
            Some((StreamStatus::New, host)),
            "{host}: waiting for a circuit, aimed at the name as typed: {entries:?}"
        );
    }
    drop((rooted, onion_rooted));
}
