//! The control-port client against a real `tor`: authentication (SAFECOOKIE,
//! COOKIE, password, and the errors a person sees), STREAM events, stream
//! commands, and the safety net of the client daemon: with `*.tor` (and
//! `*.tor.`, `*.tor.onion.` for the trailing-dot spellings Tor keeps as
//! typed) mapped to an invalid onion name, a `.tor` stream nobody redirects
//! fails inside Tor, on no circuit, while other streams go on normally.
//!
//! Each test starts its own tor. Tor's SOCKS listener does not open with
//! `DisableNetwork 1`, so these tors use one bridge on a closed loopback
//! port instead: nothing leaves 127.0.0.1, no circuit is ever built, and a
//! stream that Tor would send to an exit just waits for a circuit.

use crossbeam_channel::Receiver;
use onions::tor::control::{
    Auth, AuthMethod, ControlAddr, ControlConnection, ControlError, Event, StreamEvent, StreamId,
    StreamStatus, GUARDS_FROM, GUARD_FROM, GUARD_FROM_ONION_ROOTED, GUARD_FROM_ROOTED, GUARD_TO,
    REASON_RESOLVEFAILED,
};
use onions::tor::socks::{self, SocksError};
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use testkit::free_port;
use testkit::tor::{TestTor, TorAuth};
use testkit::tornet::statuses;

/// How long an expected event may take.
const EVENT_LIMIT: Duration = Duration::from_secs(10);

/// How soon Tor must fail a `.tor` name it refuses locally.
const LOCAL_FAILURE: Duration = Duration::from_secs(3);

/// The longest a SOCKS client of these tests may wait.
const START_LIMIT: Duration = Duration::from_secs(30);

const TIMEOUT: Duration = Duration::from_secs(10);

/// A valid v3 onion address (checksum and key), for REDIRECTSTREAM.
const ONION: &str = "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion";

const PASSWORD: &str = "pa ss\"w\\ord";

// ------------------------------------------------------------ SOCKS clients

/// How a SOCKS client's CONNECT ended.
#[derive(Debug, PartialEq)]
enum Outcome {
    Connected,
    Refused(u8),
    Failed(String),
}

/// A SOCKS CONNECT on a thread of its own; yields the outcome and how long
/// it took.
fn socks_connect(proxy: SocketAddr, host: &str, wait: Duration) -> JoinHandle<(Outcome, Duration)> {
    let host = host.to_owned();
    std::thread::spawn(move || {
        let start = Instant::now();
        let outcome = match socks::connect(proxy, &host, 80, wait) {
            Ok(_) => Outcome::Connected,
            Err(SocksError::Refused(code)) => Outcome::Refused(code),
            Err(e) => Outcome::Failed(e.to_string()),
        };
        (outcome, start.elapsed())
    })
}

fn join(handle: JoinHandle<(Outcome, Duration)>) -> (Outcome, Duration) {
    handle.join().expect("SOCKS client thread panicked")
}

// ------------------------------------------------------------------ events

/// Collects the STREAM events of the stream for `host` (found by its NEW
/// event, then followed by ID, since REMAP changes the target) until one
/// matches `done`.
fn events_until(
    events: &Receiver<Event>,
    host: &str,
    done: impl Fn(&StreamEvent) -> bool,
) -> Vec<StreamEvent> {
    collect(events, done, |event, seen| match seen.first() {
        Some(first) => first.id == event.id,
        None => event.target_host == host && event.status == StreamStatus::New,
    })
}

/// Collects the further STREAM events of stream `id` until one matches
/// `done`.
fn more_events(
    events: &Receiver<Event>,
    id: &StreamId,
    done: impl Fn(&StreamEvent) -> bool,
) -> Vec<StreamEvent> {
    collect(events, done, |event, _| event.id == *id)
}

fn collect(
    events: &Receiver<Event>,
    done: impl Fn(&StreamEvent) -> bool,
    belongs: impl Fn(&StreamEvent, &[StreamEvent]) -> bool,
) -> Vec<StreamEvent> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + EVENT_LIMIT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(Event::Stream(event)) = events.recv_timeout(left) else {
            continue;
        };
        if !belongs(&event, &seen) {
            continue;
        }
        let finished = done(&event);
        seen.push(event);
        if finished {
            return seen;
        }
    }
    panic!("no matching STREAM event within {EVENT_LIMIT:?}; saw {seen:#?}");
}

/// No further STREAM event for the stream of `id` during `quiet`.
fn assert_quiet(events: &Receiver<Event>, id: &StreamEvent, quiet: Duration) {
    let deadline = Instant::now() + quiet;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let Ok(Event::Stream(event)) = events.recv_timeout(left) {
            assert_ne!(
                event.id, id.id,
                "unexpected event for {}: {event:?}",
                id.target_host
            );
        }
    }
}

/// Asserts the local failure a `.tor` name gets from the guard: NEW, REMAP
/// to the invalid name, FAILED with TORPROTOCOL, CLOSED, all on circuit 0.
fn assert_failed_locally(seen: &[StreamEvent], name: &str) {
    use StreamStatus::*;
    assert_eq!(
        statuses(seen),
        vec![New, Remap, Failed, Closed],
        "{name}: {seen:#?}"
    );
    assert_eq!(seen[1].target_host, GUARD_TO, "{name}: REMAP target");
    assert_eq!(seen[1].source(), Some("CACHE"), "{name}: REMAP source");
    assert_eq!(
        seen[2].reason(),
        Some("TORPROTOCOL"),
        "{name}: FAILED reason"
    );
    for event in seen {
        assert!(!event.on_circuit(), "{name}: on a circuit: {event:?}");
        assert_ne!(event.status, SentConnect, "{name}: {event:?}");
    }
}

// ------------------------------------------------------------------- tests

#[test]
fn cookie_authentication_safecookie_cookie_auto_and_unix_socket() {
    let tor = TestTor::start_with(TorAuth::Cookie);
    let safecookie = tor.controller();
    assert!(safecookie
        .get_info("version")
        .expect("GETINFO version")
        .starts_with("0."));

    let plain = ControlConnection::connect(&tor.control_addr(), TIMEOUT).expect("connect");
    let info = plain.protocol_info().expect("PROTOCOLINFO");
    assert!(info.offers(AuthMethod::SafeCookie) && info.offers(AuthMethod::Cookie));
    assert_eq!(info.cookie_file.as_deref(), Some(tor.cookie().as_path()));
    let cookie = std::fs::read(tor.cookie()).expect("read cookie");
    plain
        .authenticate_cookie(&cookie)
        .expect("COOKIE authentication");
    assert!(plain.get_conf("SocksPort").expect("GETCONF").len() == 1);

    let auto = ControlConnection::open(&tor.control_addr(), &Auth::Auto, TIMEOUT).expect("Auto");
    auto.get_info("version").expect("GETINFO after Auto");
    let unix =
        ControlConnection::open(&tor.unix_addr(), &Auth::Auto, TIMEOUT).expect("Unix socket");
    unix.get_info("version")
        .expect("GETINFO over the Unix socket");
}

#[test]
fn cookie_errors_name_the_file() {
    let tor = TestTor::start_with(TorAuth::Cookie);
    let missing = tor.dir.join("no-such-cookie");
    let err = ControlConnection::open(
        &tor.control_addr(),
        &Auth::CookieFile(missing.clone()),
        TIMEOUT,
    )
    .expect_err("a missing cookie file must fail");
    assert!(matches!(err, ControlError::CookieFile { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let stale = tor.dir.join("stale-cookie");
    std::fs::write(&stale, [7u8; 32]).expect("write stale cookie");
    let err = ControlConnection::open(
        &tor.control_addr(),
        &Auth::CookieFile(stale.clone()),
        TIMEOUT,
    )
    .expect_err("another tor's cookie must fail");
    assert!(
        matches!(err, ControlError::ServerHashMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("stale-cookie"), "{err}");
}

#[test]
fn password_authentication_and_a_wrong_password() {
    let tor = TestTor::start_with(TorAuth::Password(PASSWORD));
    let good = ControlConnection::open(
        &tor.control_addr(),
        &Auth::Password(PASSWORD.into()),
        TIMEOUT,
    )
    .expect("the right password (with a space, quote and backslash) works");
    good.get_info("version").expect("GETINFO after password");

    let wrong = ControlConnection::connect(&tor.control_addr(), TIMEOUT).expect("connect");
    let err = wrong
        .authenticate(&Auth::Password("wrong".into()))
        .expect_err("a wrong password must fail");
    let ControlError::AuthFailed { method, .. } = &err else {
        panic!("expected AuthFailed, got {err:?}");
    };
    assert_eq!(*method, AuthMethod::HashedPassword);
    let text = err.to_string();
    assert!(
        text.contains("515") && text.contains("HashedControlPassword"),
        "{text}"
    );
    let after = wrong.get_info("version").expect_err("Tor closes after 515");
    assert!(
        matches!(after, ControlError::Closed | ControlError::Io(_)),
        "{after:?}"
    );

    let err = ControlConnection::open(&tor.control_addr(), &Auth::Auto, TIMEOUT)
        .expect_err("Auto cannot guess a password");
    assert!(err.to_string().contains("password"), "{err}");
}

#[test]
fn tor_not_listening_is_a_clear_error() {
    let addr = ControlAddr::parse(&format!("127.0.0.1:{}", free_port())).expect("addr");
    let err = ControlConnection::open(&addr, &Auth::Auto, TIMEOUT).expect_err("nobody listens");
    assert!(matches!(err, ControlError::NotListening { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&addr.to_string()) && text.contains("ControlPort"),
        "{text}"
    );
}

#[test]
fn controller_wait_then_closestream_gives_the_client_an_error() {
    let tor = TestTor::start_with(TorAuth::Cookie);
    let control = tor.controller();
    let events = control.events();
    control
        .set_conf(&[("__LeaveStreamsUnattached", "1")])
        .expect("SETCONF");
    control.set_events(&["STREAM"]).expect("SETEVENTS");

    let client = socks_connect(tor.socks, "example.tor", TIMEOUT);
    let seen = events_until(&events, "example.tor", |e| {
        e.status == StreamStatus::ControllerWait
    });
    assert_eq!(
        statuses(&seen),
        vec![StreamStatus::New, StreamStatus::ControllerWait]
    );
    assert_eq!(seen[0].purpose(), Some("USER"));
    assert_eq!(seen[1].target_port, 80);

    control
        .close_stream(&seen[1].id, REASON_RESOLVEFAILED)
        .expect("CLOSESTREAM");
    let (outcome, _) = join(client);
    assert_eq!(
        outcome,
        Outcome::Refused(4),
        "CLOSESTREAM 2 is SOCKS error 4"
    );
    let closed = more_events(&events, &seen[0].id, |e| e.status == StreamStatus::Closed);
    assert_eq!(
        closed.last().and_then(|e| e.reason()),
        Some("RESOLVEFAILED")
    );
}

#[test]
fn away_guard_fails_tor_names_inside_tor_and_other_streams_go_on() {
    let tor = TestTor::start_with(TorAuth::Cookie);
    let control = tor.controller();
    let events = control.events();
    control.set_events(&["STREAM"]).expect("SETEVENTS");
    assert!(!control
        .tor_names_guarded()
        .expect("GETINFO address-mappings"));
    control.guard_tor_names().expect("MAPADDRESS *.tor");
    assert!(control
        .tor_names_guarded()
        .expect("GETINFO address-mappings"));

    // Every spelling: Tor keeps a trailing dot, and `example.tor.onion.`
    // is no .onion host to it; the trailing-dot wildcards catch those.
    for name in [
        "example.tor",
        "www.example.tor",
        "tor",
        "example.tor.",
        "WWW.Example.TOR.",
        "tor.",
        "example.tor.onion.",
        "www.example.tor.onion.",
    ] {
        let client = socks_connect(tor.socks, name, TIMEOUT);
        let seen = events_until(&events, name, |e| e.status == StreamStatus::Closed);
        assert_failed_locally(&seen, name);
        let (outcome, took) = join(client);
        assert_eq!(
            outcome,
            Outcome::Refused(1),
            "{name}: SOCKS general failure"
        );
        assert!(took < LOCAL_FAILURE, "{name}: took {took:?}");
    }

    // Not a .tor name: Tor takes it as usual (it waits for a circuit here).
    let client = socks_connect(tor.socks, "example.com", Duration::from_secs(2));
    let seen = events_until(&events, "example.com", |e| e.status == StreamStatus::New);
    assert_quiet(&events, &seen[0], Duration::from_secs(1));
    let (outcome, _) = join(client);
    assert!(
        matches!(outcome, Outcome::Failed(_)),
        "still waiting: {outcome:?}"
    );
}

#[test]
fn away_guard_from_configuration_works_the_same() {
    let tor = TestTor::start_with(TorAuth::Cookie);
    let control = tor.controller();
    let events = control.events();
    control.set_events(&["STREAM"]).expect("SETEVENTS");
    // torrc's line for `*.tor` alone (as written before the trailing-dot
    // spellings were guarded) leaves those out.
    let line = format!("{GUARD_FROM} {GUARD_TO}");
    control
        .set_conf(&[("MapAddress", &line)])
        .expect("SETCONF MapAddress");
    assert_eq!(
        control.unguarded_in_torrc().expect("address-mappings"),
        vec![GUARD_FROM_ROOTED, GUARD_FROM_ONION_ROOTED]
    );
    assert!(!control.tor_names_guarded().expect("guarded"));

    // The three lines torrc-client.example documents, as Tor reads torrc.
    let lines: Vec<String> = GUARDS_FROM
        .iter()
        .map(|from| format!("{from} {GUARD_TO}"))
        .collect();
    let pairs: Vec<(&str, &str)> = lines.iter().map(|l| ("MapAddress", l.as_str())).collect();
    control.set_conf(&pairs).expect("SETCONF MapAddress");
    assert_eq!(control.get_conf("MapAddress").expect("GETCONF"), lines);
    assert!(control.tor_names_guarded().expect("guarded"));
    assert!(control.unguarded_in_torrc().expect("guarded").is_empty());

    for name in ["EXAMPLE.TOR", "Example.Tor.", "Example.TOR.Onion."] {
        let client = socks_connect(tor.socks, name, TIMEOUT);
        let seen = events_until(&events, name, |e| e.status == StreamStatus::Closed);
        assert_failed_locally(&seen, name);
        assert_eq!(join(client).0, Outcome::Refused(1), "{name}");
    }
}

#[test]
fn guard_stays_out_of_the_daemons_way_and_catches_its_mistakes() {
    let tor = TestTor::start_with(TorAuth::Cookie);
    let control = tor.controller();
    let events = control.events();
    control.guard_tor_names().expect("MAPADDRESS *.tor");
    control
        .set_conf(&[("__LeaveStreamsUnattached", "1")])
        .expect("SETCONF");
    control.set_events(&["STREAM"]).expect("SETEVENTS");

    // The daemon sees the name as typed and redirects it to an onion.
    let redirected = socks_connect(tor.socks, "www.example.tor", Duration::from_secs(3));
    let seen = events_until(&events, "www.example.tor", |e| {
        e.status == StreamStatus::ControllerWait
    });
    assert_eq!(seen[1].target_host, "www.example.tor");
    control
        .redirect_stream(&seen[1].id, ONION)
        .expect("REDIRECTSTREAM");
    control
        .attach_stream(&seen[1].id, 0)
        .expect("ATTACHSTREAM after redirect");
    assert_quiet(&events, &seen[0], Duration::from_secs(1));

    // A daemon that attached a .tor stream without redirecting it: no leak.
    let mistake = socks_connect(tor.socks, "plain.tor", TIMEOUT);
    let waiting = events_until(&events, "plain.tor", |e| {
        e.status == StreamStatus::ControllerWait
    });
    let err = control
        .attach_stream(&waiting[1].id, 0)
        .expect_err("Tor refuses it");
    assert!(
        matches!(err, ControlError::Rejected { code: 551, .. }),
        "{err:?}"
    );
    let rest = more_events(&events, &waiting[0].id, |e| {
        e.status == StreamStatus::Closed
    });
    assert_failed_locally(&[&waiting[..1], &rest[..]].concat(), "plain.tor");
    assert_eq!(join(mistake).0, Outcome::Refused(1));
    assert!(
        matches!(join(redirected).0, Outcome::Failed(_)),
        "onion still pending"
    );
}

#[test]
fn after_a_crash_waiting_streams_are_found_and_handed_back() {
    let tor = TestTor::start_with(TorAuth::Cookie);
    let stuck_tor = socks_connect_after_crash(&tor);
    let control = tor.controller();
    let events = control.events();
    control.set_events(&["STREAM"]).expect("SETEVENTS");
    assert_eq!(
        control
            .get_conf("__LeaveStreamsUnattached")
            .expect("GETCONF"),
        vec!["1"]
    );

    let waiting = control.stream_status().expect("stream-status");
    let hosts: Vec<&str> = waiting
        .iter()
        .filter(|s| s.may_wait_for_controller())
        .map(|s| s.target_host.as_str())
        .collect();
    assert!(
        hosts.contains(&"stuck.tor") && hosts.contains(&"example.com"),
        "{waiting:?}"
    );

    let handed = control.hand_back_streams().expect("hand back");
    assert_eq!(
        (handed.attached, handed.failed_in_tor),
        (1, 1),
        "example.com attached; stuck.tor failed by the guard"
    );
    let (outcome, took) = join(stuck_tor);
    assert_eq!(outcome, Outcome::Refused(1));
    assert!(
        took < START_LIMIT,
        "the .tor client was released, took {took:?}"
    );

    // New streams: .tor fails at once, others no longer wait for a controller.
    let client = socks_connect(tor.socks, "new.tor", TIMEOUT);
    let seen = events_until(&events, "new.tor", |e| e.status == StreamStatus::Closed);
    assert_failed_locally(&seen, "new.tor");
    assert_eq!(join(client).0, Outcome::Refused(1));
    let other = socks_connect(tor.socks, "example.net", Duration::from_secs(2));
    let seen = events_until(&events, "example.net", |e| e.status == StreamStatus::New);
    assert_quiet(&events, &seen[0], Duration::from_secs(1));
    drop(join(other));
}

/// A controller sets the guard and `__LeaveStreamsUnattached`, two streams
/// wait for it, and it vanishes without cleaning up. Returns the `.tor`
/// client, still waiting.
fn socks_connect_after_crash(tor: &TestTor) -> JoinHandle<(Outcome, Duration)> {
    let crashed = tor.controller();
    let events = crashed.events();
    crashed.guard_tor_names().expect("MAPADDRESS");
    crashed
        .set_conf(&[("__LeaveStreamsUnattached", "1")])
        .expect("SETCONF");
    crashed.set_events(&["STREAM"]).expect("SETEVENTS");
    let stuck_tor = socks_connect(tor.socks, "stuck.tor", START_LIMIT);
    events_until(&events, "stuck.tor", |e| {
        e.status == StreamStatus::ControllerWait
    });
    let stuck_other = socks_connect(tor.socks, "example.com", Duration::from_secs(3));
    events_until(&events, "example.com", |e| {
        e.status == StreamStatus::ControllerWait
    });
    drop(crashed);
    std::thread::spawn(move || drop(stuck_other.join()));
    stuck_tor
}
