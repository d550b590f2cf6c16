//! Streams the daemon redirects: registered names and their subdomains,
//! their `.tor.onion` and trailing-dot spellings, and a transferred name
//! followed to its new onion; other streams are handed straight back.

use crate::checks::{assert_handed_back, follow_redirect, refused_by_daemon, statuses};
use crate::fixtures::Setup;
use crate::{onion_of, EXAMPLE, MOVED, OTHER, PLAIN_ONION, REPLICATE_LIMIT, WWW};
use onions::onion::OnionAddress;
use onions::tor::control::StreamStatus;
use onions::wire::Reply;
use std::time::Duration;
use testkit::servers::{owner, record};
use testkit::tor::{SocksReply, SocksRequest};

#[test]
fn registered_names_and_subdomains_are_redirected_to_their_onions() {
    let mut s = Setup::start("client-redirect", &[]);
    assert_eq!(s.tor.leave_streams_unattached(), "1");
    assert!(s.watch.conn.tor_names_guarded().expect("address-mappings"));

    assert_eq!(s.redirected("example.tor"), onion_of(EXAMPLE));
    assert_eq!(s.redirected("www.example.tor"), onion_of(WWW));
    assert_eq!(s.redirected("other.tor"), onion_of(OTHER));
    // Names are case-insensitive; the cache answers this one.
    assert_eq!(s.redirected("WWW.Example.TOR"), onion_of(WWW));
    assert!(
        s.daemon.log().contains("(cache)"),
        "the second lookup of example.tor comes from the cache:\n{}",
        s.daemon.log()
    );
}

/// PROTOCOL.md §12.6: `X.tor.onion` is `X.tor`; every other `.onion` is
/// Tor's.
#[test]
fn tor_onion_names_are_redirected_like_tor_names() {
    let mut s = Setup::start("client-tor-onion", &[]);
    assert_eq!(s.redirected("example.tor.onion"), onion_of(EXAMPLE));
    assert_eq!(s.redirected("www.example.tor.onion"), onion_of(WWW));
    assert_eq!(s.redirected("other.tor.onion"), onion_of(OTHER));
    assert_eq!(s.redirected("WWW.Example.TOR.Onion"), onion_of(WWW));
    assert!(s.daemon.log().contains("(cache)"), "{}", s.daemon.log());
    // Both spellings are one name: one cache entry, the same answer.
    assert_eq!(s.redirected("example.tor"), onion_of(EXAMPLE));

    let proxy = s.tor.socks;
    for bad in ["bad_name-.tor.onion", "tor.onion"] {
        let id = refused_by_daemon(&mut s.watch, proxy, bad);
        s.daemon.wait_log(
            &[&format!("stream {id}: {bad:?} is not a valid .tor name")],
            1,
        );
    }
    let id = refused_by_daemon(&mut s.watch, proxy, "unknown.tor.onion");
    s.daemon.wait_log(
        &[&format!(
            "stream {id}: unknown.tor not resolved: not registered (proven absent); closed"
        )],
        1,
    );

    // A real v3 address (Tor drops a subdomain of one when it attaches)
    // and a host that only looks like a name are handed straight back: Tor
    // manages them, aimed where the application asked.
    let lookalike = format!("www.{PLAIN_ONION}");
    let mut open = Vec::new();
    for (host, target) in [
        (PLAIN_ONION, PLAIN_ONION),
        (lookalike.as_str(), PLAIN_ONION),
        ("x.tor.onion.evil", "x.tor.onion.evil"),
    ] {
        let (socks, id) = s.watch.connect(proxy, host, 80);
        s.watch.wait_event(&id, "CONTROLLER_WAIT", |e| {
            e.status == StreamStatus::ControllerWait
        });
        open.push((socks, id, host, target));
    }
    // The daemon attaches streams in order: once the last closes, the
    // others were handled.
    refused_by_daemon(&mut s.watch, proxy, "bad_name-.tor.onion");
    for (_, id, host, target) in &open {
        assert_handed_back(&s.watch, id, host);
        let entries = s.watch.conn.stream_status().expect("stream-status");
        let entry = entries.iter().find(|e| e.id == *id);
        assert_eq!(entry.map(|e| e.target_host.as_str()), Some(*target));
    }
    let redirects = s.daemon.log().matches(" -> ").count();
    assert_eq!(redirects, 5, "only the names: {}", s.daemon.log());
}

#[test]
fn other_streams_are_handed_straight_back_to_tor() {
    let mut s = Setup::start("client-pass-through", &[]);
    let proxy = s.tor.socks;
    let (web, web_id) = s.watch.connect(proxy, "example.com", 80);
    s.watch.wait_event(&web_id, "CONTROLLER_WAIT", |e| {
        e.status == StreamStatus::ControllerWait
    });
    let (onion, onion_id) = s.watch.connect(proxy, PLAIN_ONION, 80);
    s.watch.wait_event(&onion_id, "CONTROLLER_WAIT", |e| {
        e.status == StreamStatus::ControllerWait
    });

    // Tor refuses a private address itself once the daemon hands it back.
    let (mut private, private_id) = s.watch.connect(proxy, "127.0.0.1", 9);
    assert!(
        matches!(private.reply(), SocksReply::Refused(code) if code != 0),
        "Tor refuses 127.0.0.1:9"
    );
    let failed = s
        .watch
        .wait_event(&private_id, "FAILED", |e| e.status == StreamStatus::Failed);
    assert_eq!(failed.reason(), Some("PRIVATE_ADDR"), "{failed:?}");
    assert_eq!(
        statuses(&s.watch.events_of(&private_id)[..2]),
        vec![StreamStatus::New, StreamStatus::ControllerWait]
    );

    // The two earlier streams were attached before that one: Tor manages
    // them now, waiting for a circuit, neither closed nor redirected.
    for (id, host) in [(&web_id, "example.com"), (&onion_id, PLAIN_ONION)] {
        assert_handed_back(&s.watch, id, host);
        let events = s.watch.events_of(id);
        assert_eq!(
            statuses(&events),
            vec![StreamStatus::New, StreamStatus::ControllerWait],
            "{host}: {events:#?}"
        );
        let entries = s.watch.conn.stream_status().expect("stream-status");
        let entry = entries.iter().find(|e| e.id == *id);
        assert_eq!(
            entry.map(|e| e.target_host.as_str()),
            Some(host),
            "{host}: {entries:?}"
        );
    }
    assert!(!s.daemon.log().contains(" -> "), "{}", s.daemon.log());
    drop((web, onion));
}

/// A name handed to a new onion (PROTOCOL.md §12.2) is followed there once
/// the cached answer is no longer fresh: the client trusts the new record
/// as it trusted the old, from a proof against a fresh head.
#[test]
fn a_transferred_name_is_followed_to_its_new_onion() {
    let mut s = Setup::start("client-transfer", &["--max-head-age", "3"]);
    assert_eq!(s.redirected("other.tor"), onion_of(OTHER));
    let now = onions::clock::now();
    let statement = onions::transfer::Transfer::sign(
        onions::name::RegisteredName::parse("other.tor").unwrap(),
        OnionAddress::from_key(owner(MOVED).public()),
        1,
        (now, now + 600),
        &owner(OTHER),
    );
    let mut taken = record(&owner(MOVED), "other.tor", 2, 0, &[]);
    taken.transfer = Some(statement);
    taken.sign_with(&owner(MOVED));
    let reply = s.registry.quorum.client().put(&taken);
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    let seq = s.registry.quorum.status().seq;
    s.registry.mirror.wait_head(seq, REPLICATE_LIMIT);
    // Past --max-head-age the cached answer is not used.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(s.redirected("other.tor"), onion_of(MOVED));
}

/// A host may end in the one dot of a fully qualified name. Tor (checked
/// with 0.4.9.11) takes `example.tor.` and `example.tor.onion.` from a
/// SOCKS client and never strips the dot: the NEW and CONTROLLER_WAIT
/// events show `example.tor.:80`. The daemon resolves such a host as the
/// name without the dot, and closes an invalid one as it closes any
/// invalid `.tor` name. Two trailing dots never reach the daemon: Tor
/// refuses the SOCKS request itself (CLOSED with SOCKS_PROTOCOL, no NEW).
#[test]
fn trailing_dot_names_are_redirected_like_the_names_without_it() {
    let mut s = Setup::start("client-trailing-dot", &[]);
    let proxy = s.tor.socks;
    assert!(s.watch.conn.tor_names_guarded().expect("address-mappings"));

    let (socks, id) = s.watch.connect(proxy, "example.tor.", 80);
    let onion = follow_redirect(&mut s.watch, &mut s.daemon, socks, &id, "example.tor.");
    assert_eq!(onion, onion_of(EXAMPLE));
    let events = s.watch.events_of(&id);
    assert_eq!(
        (events[1].target_host.as_str(), events[1].target_port),
        ("example.tor.", 80),
        "Tor kept the dot: {events:#?}"
    );
    assert_eq!(s.redirected("www.example.tor."), onion_of(WWW));
    assert_eq!(s.redirected("example.tor.onion."), onion_of(EXAMPLE));
    assert_eq!(s.redirected("www.example.tor.onion."), onion_of(WWW));
    assert_eq!(s.redirected("Other.TOR.Onion."), onion_of(OTHER));
    // One name in every spelling: the same cache entry, the same answer.
    assert_eq!(s.redirected("other.tor"), onion_of(OTHER));
    assert!(s.daemon.log().contains("(cache)"), "{}", s.daemon.log());
    assert!(
        !s.daemon.log().contains(". -> "),
        "the daemon logs the lookup name, without the dot:\n{}",
        s.daemon.log()
    );

    for bad in [
        "bad_name-.tor.",
        "tor.",
        "tor.onion.",
        "bad_name-.tor.onion.",
    ] {
        let id = refused_by_daemon(&mut s.watch, proxy, bad);
        s.daemon.wait_log(
            &[&format!("stream {id}: {bad:?} is not a valid .tor name")],
            1,
        );
    }
    let id = refused_by_daemon(&mut s.watch, proxy, "unknown.tor.");
    s.daemon.wait_log(
        &[&format!(
            "stream {id}: unknown.tor not resolved: not registered (proven absent); closed"
        )],
        1,
    );

    for host in ["example.tor..", "example.tor.onion.."] {
        let mark = s.watch.mark();
        let mut socks = SocksRequest::connect(proxy, host, 80);
        assert!(
            matches!(socks.reply(), SocksReply::Refused(code) if code != 0),
            "{host}: Tor refuses it"
        );
        let closed = s.watch.wait_for(&format!("{host} closed"), |seen| {
            seen[mark..]
                .iter()
                .find(|e| e.target_host == host && e.status == StreamStatus::Closed)
                .cloned()
        });
        assert_eq!(closed.reason(), Some("SOCKS_PROTOCOL"), "{closed:?}");
        assert_eq!(
            statuses(&s.watch.events_of(&closed.id)),
            vec![StreamStatus::Closed],
            "{host}: no controller ever saw it"
        );
    }
    s.watch.assert_no_leak("trailing-dot names");
}
