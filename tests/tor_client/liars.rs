//! Mirrors that lie: every forgery of a lying mirror is caught, never
//! followed, and the liar is set aside; a superseded record replayed under
//! an old head is not followed either.

use crate::checks::redirected;
use crate::fixtures::{cookie_access, resolving, start_daemon, Registry};
use crate::{onion_of, ATTACKER, EXAMPLE, MOVED, OTHER, REPLICATE_LIMIT};
use onions::wire::Reply;
use std::net::SocketAddr;
use std::time::Duration;
use testkit::liar::{Forgery, Liar};
use testkit::servers::{owner, record};
use testkit::streams::Watcher;
use testkit::tor::{Daemon, TestTor};
use testkit::TempDir;

/// Every way a lying mirror answers, in the order it uses them.
const FORGERIES: [Forgery; 6] = [
    Forgery::Deny,
    Forgery::Foreign,
    Forgery::SwapOnion,
    Forgery::OtherName,
    Forgery::DenyOtherRoot,
    Forgery::StripProof,
];

/// A registry and, on 127.0.0.3, a mirror that lies with `forgeries` in
/// turn (third.tor the other name whose answer it sends, `prefetch` the
/// names whose answers it captures at start), in a temp dir for `label`.
fn registry_and_liar(
    label: &str,
    prefetch: &[&str],
    forgeries: &[Forgery],
) -> (TempDir, Registry, Liar) {
    let tmp = TempDir::new(label);
    let registry = Registry::start(&tmp);
    let liar = Liar::mirror(
        "127.0.0.3",
        &tmp.join("liar.log"),
        registry.mirror.addr,
        "third.tor",
        prefetch,
        forgeries,
    );
    (tmp, registry, liar)
}

/// Asks for example.tor and other.tor in turn, `rounds` times: each is
/// redirected to its own onion, never to the attacker's.
fn ask_honest_names(watch: &mut Watcher, daemon: &mut Daemon, proxy: SocketAddr, rounds: usize) {
    let honest = [(EXAMPLE, "example.tor"), (OTHER, "other.tor")];
    for round in 0..rounds {
        let (seed, name) = honest[round % 2];
        let onion = redirected(watch, daemon, proxy, name);
        assert_eq!(onion, onion_of(seed), "round {round}: {name}");
        assert_ne!(onion, onion_of(ATTACKER));
    }
}

#[test]
fn lying_mirrors_are_never_followed_and_are_set_aside() {
    let (tmp, registry, liar) = registry_and_liar("client-lying", &[], &FORGERIES);
    let tor = TestTor::start();
    let mut watch = tor.watcher();
    let mirrors = [liar.addr, registry.mirror.addr];
    let lied = format!("mirror {} lied about", liar.addr);

    // The liar is asked first and denies the name; once it lied it is not
    // asked again. With one name cached, alternating names always go to a
    // mirror.
    let resolver = resolving(&mirrors, &registry.key, &["--cache-size", "1"]);
    let access = cookie_access(&tor);
    let mut daemon = start_daemon(tmp.path(), "set-aside.log", &tor, &access, &resolver, &[]);
    ask_honest_names(&mut watch, &mut daemon, tor.socks, 4);
    assert_eq!(liar.lies(), 1, "asked once, then set aside");
    let lines = daemon.wait_log(&[&lied, "not asking it for 600 s"], 1);
    assert_eq!(lines.len(), 1, "{}", daemon.log());
    assert!(
        lines[0].contains("absence proof"),
        "a denial is caught by its proof: {lines:#?}"
    );
    assert!(!daemon.log().contains("(cache)"), "{}", daemon.log());
    assert_eq!(daemon.terminate().code(), Some(0));

    // Without quarantine the liar is asked every other time and tries each
    // of its other forgeries; none is followed.
    let resolver = resolving(
        &mirrors,
        &registry.key,
        &["--cache-size", "1", "--quarantine", "0"],
    );
    let mut daemon = start_daemon(tmp.path(), "every-time.log", &tor, &access, &resolver, &[]);
    ask_honest_names(&mut watch, &mut daemon, tor.socks, 10);
    assert_eq!(
        liar.lies(),
        1 + FORGERIES.len() - 1,
        "every other forgery once"
    );
    let lines = daemon.wait_log(&[&lied], FORGERIES.len() - 1);
    assert_eq!(lines.len(), FORGERIES.len() - 1, "{}", daemon.log());
    for caught in [
        "not a trusted Quorum key",
        "record for third.tor",
        "absence proof",
        "no \"proof\"",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(caught)),
            "a lie caught as {caught:?}: {lines:#?}"
        );
    }
    assert!(
        lines.iter().all(|l| l.contains("not asking it for")),
        "{lines:#?}"
    );
    assert_eq!(daemon.terminate().code(), Some(0));
}

#[test]
fn a_superseded_record_under_an_old_head_is_not_followed() {
    let (tmp, registry, liar) =
        registry_and_liar("client-stale", &["www.example.tor"], &[Forgery::Replay]);
    // The owner points www elsewhere; the liar keeps the old record and
    // the head it came with.
    let moved = record(
        &owner(EXAMPLE),
        "example.tor",
        2,
        0,
        &[("www", &owner(MOVED))],
    );
    let reply = registry.quorum.client().put(&moved);
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    let seq = registry.quorum.status().seq;
    registry.mirror.wait_head(seq, REPLICATE_LIMIT);
    std::thread::sleep(Duration::from_secs(4));

    let tor = TestTor::start();
    let mut watch = tor.watcher();
    let resolver = resolving(
        &[liar.addr, registry.mirror.addr],
        &registry.key,
        &["--max-head-age", "3"],
    );
    let access = cookie_access(&tor);
    let mut daemon = start_daemon(tmp.path(), "stale.log", &tor, &access, &resolver, &[]);
    let onion = redirected(&mut watch, &mut daemon, tor.socks, "www.example.tor");
    assert_eq!(
        onion,
        onion_of(MOVED),
        "the new record, from the honest mirror"
    );
    assert_eq!(liar.lies(), 1);
    let behind = daemon.wait_log(
        &[&format!("mirror {} did not answer", liar.addr), "behind"],
        1,
    );
    assert_eq!(behind.len(), 1, "{}", daemon.log());
    assert!(
        !daemon.log().contains(&format!("mirror {} lied", liar.addr)),
        "a mirror that is behind is not a liar: {}",
        daemon.log()
    );
    assert_eq!(daemon.terminate().code(), Some(0));
}
