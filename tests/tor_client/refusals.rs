//! Streams the daemon closes with RESOLVEFAILED: unknown and invalid
//! names, and DNS resolves of `.tor` names (also one taken over after a
//! restart), which are never looked up.

use crate::checks::{refused_by_daemon, wait_held};
use crate::fixtures::Setup;
use onions::tor::control::StreamStatus;
use testkit::tor::SocksReply;

#[test]
fn unknown_and_invalid_names_are_closed_with_resolvefailed() {
    let mut s = Setup::start("client-unknown", &[]);
    let proxy = s.tor.socks;

    for (host, logged) in [
        (
            "unknown.tor",
            "unknown.tor not resolved: not registered (proven absent); closed",
        ),
        ("bad_name.tor", "\"bad_name.tor\" is not a valid .tor name"),
        (
            "nope.example.tor",
            "nope.example.tor not resolved: the record has no subdomain",
        ),
        ("tor", "\"tor\" is not a valid .tor name"),
    ] {
        let id = refused_by_daemon(&mut s.watch, proxy, host);
        s.daemon.wait_log(&[&format!("stream {id}: {logged}")], 1);
    }

    // A DNS resolve (Tor's SOCKS extension 0xF0) of a registered name gets
    // an error and goes nowhere. (Its close reason: see
    // dns_resolve_of_a_tor_name_is_closed_with_resolvefailed.)
    let (mut resolve, id) = s.watch.resolve(proxy, "example.tor");
    assert_eq!(
        resolve.reply(),
        SocksReply::Refused(4),
        "RESOLVE example.tor"
    );
    s.watch
        .wait_event(&id, "CLOSED", |e| e.status == StreamStatus::Closed);
    let events = s.watch.events_of(&id);
    assert_eq!(events[0].status, StreamStatus::NewResolve, "{events:#?}");
    assert_eq!(events[0].purpose(), Some("DNS_REQUEST"));
    for event in &events {
        assert!(!event.on_circuit(), "{event:?}");
        assert_ne!(event.status, StreamStatus::SentResolve, "{event:?}");
    }
}

/// A DNS resolve of a `.tor` name is refused by the daemon itself, with
/// RESOLVEFAILED, without a lookup: also one taken over after a restart.
#[test]
fn dns_resolve_of_a_tor_name_is_closed_with_resolvefailed() {
    let mut s = Setup::start("client-resolve", &[]);
    let proxy = s.tor.socks;
    for name in ["example.tor", "unknown.tor"] {
        let (mut resolve, id) = s.watch.resolve(proxy, name);
        assert_eq!(resolve.reply(), SocksReply::Refused(4), "RESOLVE {name}");
        let closed = s
            .watch
            .wait_event(&id, "CLOSED", |e| e.status == StreamStatus::Closed);
        assert_eq!(closed.reason(), Some("RESOLVEFAILED"), "{}", s.watch.dump());
        s.daemon
            .wait_log(&[&format!("stream {id}: DNS resolve of {name} refused")], 1);
    }
    assert!(
        !s.daemon.log().contains(" -> "),
        "a DNS resolve must not be looked up:\n{}",
        s.daemon.log()
    );

    // Waiting while the daemon was away, then taken over.
    s.daemon.kill9();
    let (mut resolve, id) = s.watch.resolve(proxy, "example.tor");
    wait_held(&mut s.watch, &[&id]);
    s.restart_daemon("daemon-2.log");
    assert_eq!(resolve.reply(), SocksReply::Refused(4));
    let closed = s
        .watch
        .wait_event(&id, "CLOSED", |e| e.status == StreamStatus::Closed);
    assert_eq!(closed.reason(), Some("RESOLVEFAILED"), "{}", s.watch.dump());
}
