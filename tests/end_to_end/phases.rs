//! The story, phase by phase: the network and the servers start, the
//! operator claims `example.tor` through Tor, `onions-client` attaches,
//! curl and Firefox load the names, and no name leaks while the daemon is
//! up, stopped, killed or restarted.

use crate::clock::Clock;
use crate::firefox::screenshot;
use crate::helpers::{assert_honest_redirects, hs_ok, onion_of, reach, redirects};
use crate::story::Story;
use crate::{
    ATTACKER, FETCH_LIMIT, HANG_SHOWN, OTHER, REPLICATE_LIMIT, SERVICE_PORT, TEST_COLOR, TEST_PAGE,
    WORK, WWW_COLOR, WWW_PAGE,
};
use onions::tor::control::StreamStatus;
use std::time::Duration;
use testkit::liar::{Forgery, Liar};
use testkit::servers::{owner, print_key, Server};
use testkit::tor::release;
use testkit::tornet::{
    curl, describe_event, free_base_port, require_program, spawn_curl, Ports, Run, Tornet,
};
use testkit::TempDir;

#[test]
fn a_name_typed_in_a_browser_reaches_its_onion_service_and_never_leaks() {
    for (program, package) in [
        ("tor", "tor"),
        ("curl", "curl"),
        ("python3", "python3"),
        ("firefox-esr", "firefox-esr"),
    ] {
        require_program(program, package);
    }
    let mut clock = Clock::new();
    let scratch = TempDir::keeping("end-to-end");
    let runs = scratch.join("runs");
    std::fs::create_dir(&runs).expect("runs directory");

    // ---------------------------------------------------------------- 1
    clock.phase("1: servers, the lying mirror and the private Tor network start");
    let quorum = Server::quorum("127.0.0.1", &scratch.join("quorum"), &["--min-work", WORK]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &scratch.join("mirror"), quorum.addr, &key, &[]);
    // other.tor, claimed directly with a key of the test's own (written as
    // Tor writes a service key): the genuine answer the liar replays.
    let other_key = scratch.join("other_hs_ed25519_secret_key");
    std::fs::write(&other_key, owner(OTHER).to_tor_file_bytes()).expect("other.tor's key");
    let quorum_addr = quorum.addr.to_string();
    let other_state = scratch.join("other.state");
    hs_ok(&[
        "claim",
        "other.tor",
        "--key",
        &other_key.to_string_lossy(),
        "--work",
        WORK,
        "--quorum",
        &quorum_addr,
        "--direct",
        "--state",
        &other_state.to_string_lossy(),
        "--out",
        &scratch.join("other.json").to_string_lossy(),
    ]);
    mirror.wait_head(1, REPLICATE_LIMIT);
    let liar = Liar::mirror(
        "127.0.0.3",
        &scratch.join("liar.log"),
        mirror.addr,
        "other.tor",
        &[],
        &[Forgery::Deny, Forgery::OtherName, Forgery::Foreign],
    );
    let (base, http) = free_base_port();
    let ports = Ports {
        base,
        http,
        quorum: quorum.addr.port(),
        mirror: mirror.addr.port(),
        liar: liar.addr.port(),
    };
    eprintln!(
        "  Quorum {}, mirror {}, liar {}; network ports {ports:?}",
        quorum.addr, mirror.addr, liar.addr
    );
    let net = Tornet::start(&scratch.join("tornet"), ports);
    eprintln!(
        "  scripts/tornet/start: ready in {:.1} s\n{}",
        net.took.as_secs_f64(),
        net.start_output.trim_end()
    );
    let log = net.watcher();
    let mut story = Story {
        key,
        onion: net.get("TORNET_ONION").to_owned(),
        onion2: net.get("TORNET_ONION2").to_owned(),
        socks: net.socks(),
        runs,
        liar,
        quorum,
        mirror,
        log,
        net,
        scratch,
    };
    for (what, var) in [
        ("the Quorum", "TORNET_QUORUM_ONION"),
        ("the mirror", "TORNET_MIRROR_ONION"),
        ("the lying mirror", "TORNET_LIAR_ONION"),
    ] {
        let onion = story.net.get(var).to_owned();
        let took = reach(story.socks, &onion, SERVICE_PORT);
        eprintln!(
            "  {what} is reachable as {onion}:{SERVICE_PORT} ({:.1} s)",
            took.as_secs_f64()
        );
    }

    // ---------------------------------------------------------------- 2
    clock.phase("2: the operator claims example.tor through Tor");
    let claim_file = story.scratch.join("example.json");
    let quorum_onion = format!("{}:{SERVICE_PORT}", story.net.get("TORNET_QUORUM_ONION"));
    let www = format!("www={}", story.onion2);
    let (_, said) = hs_ok(&[
        "claim",
        "example.tor",
        "--key",
        story.net.get("TORNET_HS_KEY"),
        "--sub",
        &www,
        "--work",
        WORK,
        "--quorum",
        &quorum_onion,
        "--socks",
        &story.socks.to_string(),
        "--state",
        &story.scratch.join("example.state").to_string_lossy(),
        "--out",
        &claim_file.to_string_lossy(),
    ]);
    assert!(
        said.contains(&format!(
            "accepted: example.tor -> {} at seq 2",
            story.onion
        )),
        "{said}"
    );
    eprintln!("  onions-hs: {}", said.trim());
    hs_ok(&[
        "verify",
        &claim_file.to_string_lossy(),
        "--quorum-key",
        &story.key,
        "--min-work",
        WORK,
    ]);
    assert_eq!(story.quorum.status().seq, 2);
    story.mirror.wait_head(2, REPLICATE_LIMIT);
    assert_eq!(story.mirror.status().seq, 2);
    let mirror_onion = format!("{}:{SERVICE_PORT}", story.net.get("TORNET_MIRROR_ONION"));
    let (found, _) = hs_ok(&[
        "lookup",
        "www.example.tor",
        "--server",
        &mirror_onion,
        "--socks",
        &story.socks.to_string(),
        "--quorum-key",
        &story.key,
    ]);
    assert!(found.contains(&story.onion2), "{found}");
    eprintln!("  the mirror replicated it (head 2) and answers over Tor");

    // A volunteer's mirror that knows the Quorum only as an onion service
    // replicates through Tor's SOCKS port.
    let quorum_onion = format!("{}:{SERVICE_PORT}", story.net.get("TORNET_QUORUM_ONION"));
    let socks = story.socks.to_string();
    let onion_mirror = Server::mirror_of(
        "127.0.0.4",
        &story.scratch.join("onion-mirror"),
        &quorum_onion,
        &story.key,
        &["--upstream-socks", &socks],
    );
    onion_mirror.wait_head(2, REPLICATE_LIMIT);
    assert!(onion_mirror.status().upstream.is_some_and(|u| u.connected));
    eprintln!("  a mirror following the Quorum's onion address through Tor has head 2");

    // ---------------------------------------------------------------- 3
    clock.phase("3: onions-client attaches to the client tor (the liar listed first)");
    let mut daemon = story.start_daemon("daemon-1.log");
    assert_eq!(story.leave_streams_unattached(), "1");
    assert!(story
        .log
        .conn
        .tor_names_guarded()
        .expect("address-mappings"));
    let lies_before = story.liar.lies();

    // ---------------------------------------------------------------- 4
    clock.phase(
        "4: curl loads example.tor and www.example.tor, also as .tor.onion; unknown.tor fails",
    );
    let (onion, onion2) = (story.onion.clone(), story.onion2.clone());
    story.fetch_named(&mut daemon, "example.tor", &onion, TEST_PAGE);
    story.fetch_named(&mut daemon, "www.example.tor", &onion2, WWW_PAGE);
    story.fetch_named(&mut daemon, "example.tor.onion", &onion, TEST_PAGE);
    story.fetch_named(&mut daemon, "www.example.tor.onion", &onion2, WWW_PAGE);
    let mark = story.log.mark();
    let unknown = curl(&story.runs, story.socks, "http://unknown.tor/", FETCH_LIMIT);
    assert!(
        !unknown.success() && unknown.stderr.contains("SOCKS"),
        "curl http://unknown.tor/ should fail with a SOCKS error: {}",
        unknown.describe()
    );
    let id = story.log.new_stream_to(mark, "unknown.tor");
    let events = story.log.wait_closed(&id);
    let closed = events.last().expect("CLOSED");
    assert_eq!(closed.reason(), Some("RESOLVEFAILED"), "{events:#?}");
    assert!(events.iter().all(|e| !e.on_circuit()), "{events:#?}");
    daemon.wait_log(
        &[&format!(
            "stream {id}: unknown.tor not resolved: not registered (proven absent)"
        )],
        1,
    );
    eprintln!(
        "  http://unknown.tor/ refused: curl exit {:?}: {}",
        unknown.code(),
        unknown.stderr.trim()
    );
    let lies = story.liar.lies() - lies_before;
    assert!(
        lies > 0,
        "the lying mirror was never asked:\n{}",
        daemon.log()
    );
    let liar_onion = story.net.get("TORNET_LIAR_ONION").to_owned();
    let set_aside = daemon.wait_log(
        &[
            &format!("mirror {liar_onion}:{SERVICE_PORT} lied about"),
            "not asking it for 600 s",
        ],
        1,
    );
    let honest = [
        ("example.tor", onion.as_str()),
        ("www.example.tor", onion2.as_str()),
    ];
    let count = assert_honest_redirects(&daemon, &honest);
    assert!(!daemon.log().contains(&onion_of(ATTACKER)));
    eprintln!(
        "  the liar answered {lies} time(s) and was set aside: {}\n  all {count} redirects \
         went to the genuine onions",
        set_aside[0].trim()
    );
    story.log.assert_no_leak("phase 4");

    // ---------------------------------------------------------------- 5
    clock.phase(
        "5: headless Firefox ESR, set up as Tor Browser, shows example.tor (and .tor.onion)",
    );
    screenshot(&mut story, &daemon, "example.tor", TEST_COLOR);
    screenshot(&mut story, &daemon, "www.example.tor", WWW_COLOR);
    screenshot(&mut story, &daemon, "example.tor.onion", TEST_COLOR);
    assert_honest_redirects(&daemon, &honest);

    // ---------------------------------------------------------------- 6
    clock.phase("6a: leaks: daemon up");
    story.fetch_named(&mut daemon, "example.tor", &onion, TEST_PAGE);
    story.plain_works(true);

    clock.phase("6b: leaks: daemon stopped with SIGTERM");
    let status = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    daemon.wait_log(&["stopping: stream attachment handed back to tor"], 1);
    assert_eq!(story.leave_streams_unattached(), "0");
    assert!(story
        .log
        .conn
        .tor_names_guarded()
        .expect("address-mappings"));
    story.fails_locally("example.tor");
    story.fails_locally("www.example.tor");
    story.plain_works(false);

    clock.phase("6b': leaks: daemon stopped and the guard mapping removed: .tor.onion");
    story.set_guard(false);
    story.refused_by_tor("example.tor.onion");
    story.refused_by_tor("www.example.tor.onion");
    story.set_guard(true);

    clock.phase("6c: leaks: daemon restarted, then killed with -9, then --release");
    let mut daemon = story.start_daemon("daemon-2.log");
    story.fetch_named(&mut daemon, "example.tor", &onion, TEST_PAGE);
    daemon.kill9();
    assert_eq!(
        story.leave_streams_unattached(),
        "1",
        "nobody reset it after kill -9: new streams wait for a controller"
    );
    // Both kinds of stream now hang, waiting for a controller that is gone.
    let mark = story.log.mark();
    let plain_url = format!("http://{onion}/");
    let mut plain = spawn_curl(&story.runs, story.socks, &plain_url, FETCH_LIMIT);
    let plain_id = story.log.new_stream_to(mark, &onion);
    let mut named = spawn_curl(&story.runs, story.socks, "http://example.tor/", FETCH_LIMIT);
    let named_id = story.log.new_stream_to(mark, "example.tor");
    for id in [&plain_id, &named_id] {
        story.log.wait_event(id, "CONTROLLER_WAIT", |e| {
            e.status == StreamStatus::ControllerWait
        });
    }
    std::thread::sleep(HANG_SHOWN);
    assert!(
        plain.is_running() && named.is_running(),
        "both fetches should hang until --release:\n{}",
        story.log.dump_from(mark)
    );
    for id in [&plain_id, &named_id] {
        let last = story.log.events_of(id).last().cloned().expect("events");
        assert_eq!(
            last.status,
            StreamStatus::ControllerWait,
            "stream {id} still waits: {}",
            describe_event(&last)
        );
    }
    eprintln!(
        "  after kill -9: http://{onion}/ and http://example.tor/ both hang in CONTROLLER_WAIT \
         ({:.0} s watched)",
        HANG_SHOWN.as_secs_f64()
    );
    let (status, text) = release(story.scratch.path(), &story.access(), &[]);
    assert_eq!(status.code(), Some(0), "{text}");
    // Both waiting streams are handed back: the plain one attached, the
    // `.tor` one failed inside Tor by the guard; each one's fate also shows
    // in Tor's events below.
    assert!(
        text.contains(
            "2 waiting streams handed back (1 attached, 1 .tor streams failed inside tor)"
        ),
        "onions-client --release said {text:?}"
    );
    assert_eq!(story.leave_streams_unattached(), "0");
    let plain_run: Run = plain.finish(FETCH_LIMIT + Duration::from_secs(10));
    assert!(
        plain_run.success() && plain_run.stdout.contains(TEST_PAGE),
        "after --release the waiting plain fetch completes: {}\n{}",
        plain_run.describe(),
        story.log.dump_from(mark)
    );
    let named_run = named.finish(Duration::from_secs(20));
    assert!(
        !named_run.success(),
        "the waiting .tor fetch fails after --release: {}",
        named_run.describe()
    );
    story.assert_guarded(&named_id, "example.tor");
    eprintln!(
        "  onions-client --release handed back both waiting streams; the plain fetch \
         loaded, the .tor one failed inside Tor (curl exit {:?})",
        named_run.code()
    );
    story.fails_locally("example.tor");
    story.plain_works(false);

    clock.phase("6d: leaks: daemon restarted");
    let mut daemon = story.start_daemon("daemon-3.log");
    story.fetch_named(&mut daemon, "example.tor", &onion, TEST_PAGE);
    story.fetch_named(&mut daemon, "www.example.tor", &onion2, WWW_PAGE);
    story.plain_works(true);
    assert_honest_redirects(&daemon, &honest);
    assert_eq!(daemon.terminate().code(), Some(0), "{}", daemon.log());
    for name in ["daemon-1.log", "daemon-2.log"] {
        let log = std::fs::read_to_string(story.scratch.join(name)).unwrap_or_default();
        for (id, host, target) in redirects(&log) {
            assert!(
                honest.iter().any(|(n, o)| *n == host && *o == target),
                "{name}: stream {id}: {host} -> {target}"
            );
        }
    }

    // ------------------------------------------------------------- the end
    clock.phase("end: no .tor name ever left the client; the network stops");
    story.log.assert_no_leak("the whole story");
    let tor_streams = story
        .log
        .seen
        .iter()
        .filter(|e| {
            e.status == StreamStatus::New && onions::tor::control::is_tor_target(&e.target_host)
        })
        .count();
    eprintln!(
        "  {} STREAM events, {tor_streams} .tor streams, none on a circuit as a name",
        story.log.seen.len()
    );
    let stopped = story.net.stop();
    eprintln!("  {}", stopped.trim_end().replace('\n', "\n  "));
    clock.report();
}
