//! The client daemon, `onions-client`, as a browser bundle runs it: a real
//! tor (no network: one bridge on a closed loopback port), a real Quorum on
//! 127.0.0.1 and mirror on 127.0.0.2 (reached with `--direct`), SOCKS
//! clients asking tor for names, and the daemon's log in a file.
//!
//! What the daemon did is read from Tor itself: a control connection of the
//! test's own subscribes to STREAM events (Tor sends them to every
//! controller that asked) and asks `GETINFO stream-status`. A `.tor` stream
//! redirected to an onion cannot connect without a network, but Tor reports
//! its new target (in `stream-status` while the client waits, and in the
//! CLOSED event when the client hangs up). Tor sends no REMAP event for
//! REDIRECTSTREAM.
//!
//! Whether the daemon handed a stream back (ATTACHSTREAM) shows in Tor's
//! answer to an ATTACHSTREAM of the test's own: 555 "not managed by
//! controller" once the stream left CONTROLLER_WAIT. The daemon handles
//! streams in the order Tor reports them and attaches a non-`.tor` stream
//! before it reads the next event, so once a later stream shows the
//! daemon's work, an earlier one was handled too.

use onions::name::Host;
use onions::onion::OnionAddress;
use onions::tor::control::{
    is_tor_target, StreamEvent, StreamId, StreamStatus, GUARD_FROM, GUARD_FROM_ONION_ROOTED,
    GUARD_FROM_ROOTED, GUARD_TO,
};
use onions::wire::Reply;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::liar::{Forgery, Liar};
use testkit::servers::{owner, print_key, record, Server};
use testkit::streams::Watcher;
use testkit::tor::{release, Daemon, SocksReply, SocksRequest, TestTor, EVENT_LIMIT, TOR_PASSWORD};
use testkit::TempDir;

/// How long a mirror may take to replicate the test's records.
const REPLICATE_LIMIT: Duration = Duration::from_secs(30);

/// Seeds of the service keys: example.tor's owner, its `www` subdomain,
/// other.tor's and third.tor's owners, and the lying mirror's attacker.
const EXAMPLE: u8 = 1;
const WWW: u8 = 2;
const OTHER: u8 = 3;
const THIRD: u8 = 4;
const MOVED: u8 = 5;
const ATTACKER: u8 = 0xa7;

/// A valid v3 onion address that is not a `.tor` name.
const PLAIN_ONION: &str = "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion";

/// The onion address of the service key with `seed`, as Tor writes it.
fn onion_of(seed: u8) -> String {
    OnionAddress::from_key(owner(seed).public()).to_string()
}

// ---------------------------------------------------------------- fixtures

/// A Quorum and a mirror that serves example.tor (with `www`), other.tor
/// and third.tor.
struct Registry {
    quorum: Server,
    mirror: Server,
    key: String,
}

impl Registry {
    fn start(tmp: &TempDir) -> Registry {
        let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--head-interval", "1"]);
        let key = print_key(&quorum.state);
        let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
        let records = [
            record(
                &owner(EXAMPLE),
                "example.tor",
                1,
                0,
                &[("www", &owner(WWW))],
            ),
            record(&owner(OTHER), "other.tor", 1, 0, &[]),
            record(&owner(THIRD), "third.tor", 1, 0, &[]),
        ];
        let mut client = quorum.client();
        for record in &records {
            let reply = client.put(record);
            assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
        }
        mirror.wait_head(records.len() as u64, REPLICATE_LIMIT);
        Registry {
            quorum,
            mirror,
            key,
        }
    }
}

/// Flags that reach tor's control port with the cookie.
fn cookie_access(tor: &TestTor) -> Vec<String> {
    strings(&[
        "--control",
        &tor.control.to_string(),
        "--cookie",
        &tor.cookie().display().to_string(),
    ])
}

/// Flags that reach tor's control port with the password.
fn password_access(tor: &TestTor) -> Vec<String> {
    strings(&[
        "--control",
        &tor.control.to_string(),
        "--control-password",
        TOR_PASSWORD,
    ])
}

/// Flags that resolve through `mirrors` (in this order), directly,
/// trusting `key`, plus `extra`.
fn resolving(mirrors: &[SocketAddr], key: &str, extra: &[&str]) -> Vec<String> {
    let mut args = Vec::new();
    for mirror in mirrors {
        args.extend(strings(&["--mirror", &mirror.to_string()]));
    }
    args.extend(strings(&[
        "--quorum-key",
        key,
        "--direct",
        "--timeout",
        "10",
    ]));
    args.extend(strings(extra));
    args
}

/// Resolver flags for tests that never resolve a name.
fn no_registry() -> Vec<String> {
    let nobody: SocketAddr = "127.0.0.2:1".parse().unwrap();
    resolving(&[nobody], &owner(9).public().to_base64(), &[])
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// Starts the daemon with `access` and `resolver` flags (and `env`), its
/// log in `dir/log`, and waits until it has attached to `tor`.
fn start_daemon(
    dir: &Path,
    log: &str,
    tor: &TestTor,
    access: &[String],
    resolver: &[String],
    env: &[(&str, &str)],
) -> Daemon {
    let args = [access, resolver].concat();
    let mut daemon = Daemon::start(&dir.join(log), &args, env);
    daemon.wait_log(&[&format!("attached to tor at {}", tor.control)], 1);
    daemon
}

/// A registry, a tor, the test's watcher and a daemon resolving through
/// the mirror with `extra` flags.
struct Setup {
    // Dropped in this order: the daemon before tor, the temp dir last.
    daemon: Daemon,
    watch: Watcher,
    tor: TestTor,
    registry: Registry,
    tmp: TempDir,
}

impl Setup {
    fn start(label: &str, extra: &[&str]) -> Setup {
        let tmp = TempDir::new(label);
        let registry = Registry::start(&tmp);
        let tor = TestTor::start();
        let watch = tor.watcher();
        let resolver = resolving(&[registry.mirror.addr], &registry.key, extra);
        let daemon = start_daemon(
            tmp.path(),
            "daemon.log",
            &tor,
            &cookie_access(&tor),
            &resolver,
            &[],
        );
        Setup {
            daemon,
            watch,
            tor,
            registry,
            tmp,
        }
    }

    /// Connects to `host:80` and returns the onion the daemon sent the
    /// stream to (see [`follow_redirect`]).
    fn redirected(&mut self, host: &str) -> String {
        redirected(&mut self.watch, &mut self.daemon, self.tor.socks, host)
    }
}

// ------------------------------------------------------------- assertions

fn statuses(events: &[StreamEvent]) -> Vec<StreamStatus> {
    events.iter().map(|e| e.status.clone()).collect()
}

/// No event shows a `.tor` target on a circuit, or sent to an exit.
fn assert_no_leak(events: &[StreamEvent], what: &str) {
    for event in events.iter().filter(|e| is_tor_target(&e.target_host)) {
        assert!(
            !event.on_circuit(),
            "{what}: a .tor target on a circuit: {event:?}"
        );
        assert!(
            !matches!(
                event.status,
                StreamStatus::SentConnect | StreamStatus::SentResolve | StreamStatus::Succeeded
            ),
            "{what}: a .tor target went out: {event:?}"
        );
    }
}

/// Connects to `host:80` and returns the onion the daemon redirected the
/// stream to.
fn redirected(watch: &mut Watcher, daemon: &mut Daemon, proxy: SocketAddr, host: &str) -> String {
    let (socks, id) = watch.connect(proxy, host, 80);
    follow_redirect(watch, daemon, socks, &id, host)
}

/// Follows stream `id` (of `socks`, asking for `host:80`) through the
/// daemon's redirect: the daemon logs the onion, Tor's `stream-status`
/// shows the stream aimed at it while the client waits, and the CLOSED
/// event after the client hangs up names it too. No event of the stream
/// shows the `.tor` name going out. Returns the onion.
fn follow_redirect(
    watch: &mut Watcher,
    daemon: &mut Daemon,
    socks: SocksRequest,
    id: &StreamId,
    host: &str,
) -> String {
    let lookup = lookup_name(host);
    let line = daemon.wait_log(&[&format!("stream {id}: {lookup} -> ")], 1)[0].clone();
    let logged = line
        .split(" -> ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no onion in {line:?}"))
        .to_owned();
    assert!(
        logged.len() == 56 + ".onion".len() && logged.ends_with(".onion"),
        "{host}: {logged:?} is not a v3 onion address"
    );
    assert_eq!(wait_retargeted(watch, id, host), (logged.clone(), 80));
    drop(socks);
    let closed = watch.wait_event(id, "CLOSED", |e| e.status == StreamStatus::Closed);
    assert_eq!(
        (closed.target_host.as_str(), closed.target_port),
        (logged.as_str(), 80),
        "{host}: Tor's CLOSED event names the redirect target"
    );
    let events = watch.events_of(id);
    assert_eq!(
        statuses(&events[..2]),
        vec![StreamStatus::New, StreamStatus::ControllerWait],
        "{host}: {events:#?}"
    );
    assert_no_leak(&events, host);
    logged
}

/// The lookup name the daemon logs for `host` (`X.tor` or `X.tor.onion`).
fn lookup_name(host: &str) -> String {
    match Host::classify(host) {
        Host::Name(name) => name.to_string(),
        other => panic!("{host:?} is not a lookup name: {other:?}"),
    }
}

/// Waits (bounded) until `stream-status` shows stream `id` aimed somewhere
/// other than `host` and attached (no longer NEW: waiting for the onion's
/// descriptor, on no circuit); returns the new target.
fn wait_retargeted(watch: &Watcher, id: &StreamId, host: &str) -> (String, u16) {
    let deadline = Instant::now() + EVENT_LIMIT;
    loop {
        let entries = watch.conn.stream_status().expect("GETINFO stream-status");
        let entry = entries.iter().find(|e| e.id == *id);
        if let Some(entry) =
            entry.filter(|e| e.target_host != host && e.status != StreamStatus::New)
        {
            assert_eq!(entry.circuit, "0", "{host}: {entry:?}");
            return (entry.target_host.clone(), entry.target_port);
        }
        assert!(
            Instant::now() < deadline,
            "stream {id} ({host}) was not redirected and attached within {EVENT_LIMIT:?}: \
             {entries:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connects to `host:80` and asserts the daemon closes the stream with
/// RESOLVEFAILED: the client gets SOCKS error 4, the stream never leaves
/// circuit 0. Returns the stream.
fn refused_by_daemon(watch: &mut Watcher, proxy: SocketAddr, host: &str) -> StreamId {
    let (mut socks, id) = watch.connect(proxy, host, 80);
    assert_eq!(
        socks.reply(),
        SocksReply::Refused(4),
        "{host}: host unreachable"
    );
    let closed = watch.wait_event(&id, "CLOSED", |e| e.status == StreamStatus::Closed);
    assert_eq!(closed.reason(), Some("RESOLVEFAILED"), "{host}: {closed:?}");
    let events = watch.events_of(&id);
    assert_eq!(
        statuses(&events),
        vec![
            StreamStatus::New,
            StreamStatus::ControllerWait,
            StreamStatus::Failed,
            StreamStatus::Closed
        ],
        "{host}: {events:#?}"
    );
    assert_no_leak(&events, host);
    id
}

/// Asserts the guard's local failure: REMAP to the invalid onion name,
/// FAILED with TORPROTOCOL, CLOSED, all on circuit 0, and a SOCKS error.
fn assert_failed_locally(watch: &mut Watcher, socks: &mut SocksRequest, id: &StreamId) {
    let what = socks.what.clone();
    assert!(
        matches!(socks.reply(), SocksReply::Refused(code) if code != 0),
        "{what}: the client gets an error"
    );
    watch.wait_event(id, "CLOSED", |e| e.status == StreamStatus::Closed);
    let events = watch.events_of(id);
    let after_new: Vec<StreamStatus> = statuses(&events)
        .into_iter()
        .filter(|s| !matches!(s, StreamStatus::New | StreamStatus::ControllerWait))
        .collect();
    assert_eq!(
        after_new,
        vec![
            StreamStatus::Remap,
            StreamStatus::Failed,
            StreamStatus::Closed
        ],
        "{what}: {events:#?}"
    );
    let remap = events.iter().find(|e| e.status == StreamStatus::Remap);
    assert_eq!(remap.map(|e| e.target_host.as_str()), Some(GUARD_TO));
    let failed = events.iter().find(|e| e.status == StreamStatus::Failed);
    assert_eq!(failed.and_then(|e| e.reason()), Some("TORPROTOCOL"));
    for event in &events {
        assert!(!event.on_circuit(), "{what}: on a circuit: {event:?}");
        assert_ne!(event.status, StreamStatus::SentConnect, "{what}");
    }
}

/// Asserts that Tor itself refused stream `id`'s host, with no mapping
/// involved: FAILED with TORPROTOCOL, CLOSED, all on circuit 0, and a SOCKS
/// error. What a `.tor.onion` name gets when no daemon redirects it.
fn assert_refused_by_tor(watch: &mut Watcher, socks: &mut SocksRequest, id: &StreamId) {
    let what = socks.what.clone();
    assert!(
        matches!(socks.reply(), SocksReply::Refused(code) if code != 0),
        "{what}: the client gets an error"
    );
    let events = watch.wait_closed(id);
    let after_new: Vec<StreamStatus> = statuses(&events)
        .into_iter()
        .filter(|s| !matches!(s, StreamStatus::New | StreamStatus::ControllerWait))
        .collect();
    assert_eq!(
        after_new,
        vec![StreamStatus::Failed, StreamStatus::Closed],
        "{what}: {events:#?}"
    );
    let failed = events.iter().find(|e| e.status == StreamStatus::Failed);
    assert_eq!(failed.and_then(|e| e.reason()), Some("TORPROTOCOL"));
    assert_no_leak(&events, &what);
}

/// Asserts that stream `id` no longer waits for a controller: Tor refuses
/// an ATTACHSTREAM of the test's own with 555.
fn assert_handed_back(watch: &Watcher, id: &StreamId, what: &str) {
    let reply = watch
        .conn
        .command(&format!("ATTACHSTREAM {id} 0"))
        .expect("ATTACHSTREAM");
    assert_eq!(
        reply.code(),
        555,
        "{what}: stream {id} should have been attached already (555 'not managed by \
         controller'), but Tor answered {reply:?}"
    );
}

/// Hex of `text`'s bytes, as TOR_CONTROL_PASSWD carries a password.
fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

// ------------------------------------------------------------------- tests

#[test]
fn authenticates_with_cookie_password_and_the_bundle_environment() {
    let tmp = TempDir::new("client-auth");
    let tor = TestTor::start();
    let port = tor.control.port().to_string();
    let cookie = tor.cookie().display().to_string();
    let password_hex = hex(TOR_PASSWORD);
    let bundle = |auth: (&'static str, String)| {
        vec![
            ("TOR_CONTROL_HOST", "127.0.0.1".to_owned()),
            ("TOR_CONTROL_PORT", port.clone()),
            auth,
        ]
    };
    // How the daemon is told to authenticate: flags, environment.
    type Case = (&'static str, Vec<String>, Vec<(&'static str, String)>);
    let cases: Vec<Case> = vec![
        ("--cookie (SAFECOOKIE)", cookie_access(&tor), vec![]),
        ("--control-password", password_access(&tor), vec![]),
        (
            "TOR_CONTROL_PASSWD",
            vec![],
            bundle(("TOR_CONTROL_PASSWD", password_hex.clone())),
        ),
        (
            "TOR_CONTROL_COOKIE_AUTH_FILE",
            vec![],
            bundle(("TOR_CONTROL_COOKIE_AUTH_FILE", cookie.clone())),
        ),
    ];
    for (i, (what, access, env)) in cases.iter().enumerate() {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let log = format!("daemon-{i}.log");
        let mut daemon = start_daemon(tmp.path(), &log, &tor, access, &no_registry(), &env);
        assert_eq!(
            tor.leave_streams_unattached(),
            "1",
            "{what}: the daemon takes over stream attachment"
        );
        let status = daemon.terminate();
        assert_eq!(status.code(), Some(0), "{what}: {}", daemon.log());
        assert_eq!(
            tor.leave_streams_unattached(),
            "0",
            "{what}: handed back on SIGTERM"
        );
    }

    // A wrong password is final: one line naming the fix, a non-zero exit,
    // and tor left as it was.
    let wrong = strings(&[
        "--control",
        &tor.control.to_string(),
        "--control-password",
        "not the password",
    ]);
    let args = [wrong, no_registry()].concat();
    let mut daemon = Daemon::start(&tmp.join("wrong.log"), &args, &[]);
    let status = daemon.wait_exit();
    assert_eq!(status.code(), Some(1), "{}", daemon.log());
    let log = daemon.log();
    assert!(
        log.contains("Tor refused the control password") && log.contains("515"),
        "{log}"
    );
    assert!(!log.contains("attached to tor"), "{log}");
    assert_eq!(tor.leave_streams_unattached(), "0");
}

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

/// With the daemon away and no guard mapping at all, Tor refuses a
/// `.tor.onion` name itself (it is no valid onion address), while a bare
/// `.tor` name would wait for a circuit to an exit: why links should carry
/// `.tor.onion`. A `.tor.onion` stream left waiting by a killed daemon is
/// failed inside Tor by `--release` too.
#[test]
fn tor_onion_names_fail_inside_tor_without_daemon_or_guard() {
    let tmp = TempDir::new("client-tor-onion-away");
    let tor = TestTor::start();
    let mut watch = tor.watcher();
    let access = cookie_access(&tor);
    let mut daemon = start_daemon(tmp.path(), "daemon.log", &tor, &access, &no_registry(), &[]);
    daemon.kill9();
    let (mut stuck, stuck_id) = watch.connect(tor.socks, "stuck.tor.onion", 80);
    watch.wait_event(&stuck_id, "CONTROLLER_WAIT", |e| {
        e.status == StreamStatus::ControllerWait
    });
    let (status, text) = release(tmp.path(), &access, &[]);
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "1 waiting streams handed back (0 attached, 1 .tor streams failed inside tor)"
        ),
        "{text}"
    );
    assert_refused_by_tor(&mut watch, &mut stuck, &stuck_id);

    // MAPADDRESS of an address to itself removes its mapping.
    watch
        .conn
        .map_address(GUARD_FROM, GUARD_FROM)
        .expect("MAPADDRESS *.tor=*.tor");
    assert!(!watch.conn.tor_names_guarded().expect("address-mappings"));
    assert_eq!(tor.leave_streams_unattached(), "0");

    let (bare, bare_id) = watch.connect(tor.socks, "example.tor", 80);
    for host in ["example.tor.onion", "www.example.tor.onion"] {
        let (mut socks, id) = watch.connect(tor.socks, host, 80);
        assert_refused_by_tor(&mut watch, &mut socks, &id);
        // No REMAP: no mapping touched it. Tor cut the host to its label
        // before `.onion` and refused that as an onion address.
        let events = watch.events_of(&id);
        let failed = events.iter().find(|e| e.status == StreamStatus::Failed);
        assert_eq!(failed.map(|e| e.target_host.as_str()), Some("tor"));
    }
    // The bare name came first and is still waiting for a circuit: with
    // a network it would have gone to an exit.
    assert_eq!(
        statuses(&watch.events_of(&bare_id)),
        vec![StreamStatus::New],
        "{}",
        watch.dump()
    );
    drop(bare);
    assert_no_leak(&watch.seen, "the .tor.onion streams");
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

#[test]
fn unknown_and_invalid_names_are_closed_with_resolvefailed() {
    let mut s = Setup::start("client-unknown", &[]);
    let proxy = s.tor.socks;

    let id = refused_by_daemon(&mut s.watch, proxy, "unknown.tor");
    s.daemon.wait_log(
        &[&format!(
            "stream {id}: unknown.tor not resolved: not registered (proven absent); closed"
        )],
        1,
    );
    let id = refused_by_daemon(&mut s.watch, proxy, "bad_name.tor");
    s.daemon.wait_log(
        &[&format!(
            "stream {id}: \"bad_name.tor\" is not a valid .tor name"
        )],
        1,
    );
    let id = refused_by_daemon(&mut s.watch, proxy, "nope.example.tor");
    s.daemon.wait_log(
        &[&format!(
            "stream {id}: nope.example.tor not resolved: the record has no subdomain"
        )],
        1,
    );
    let id = refused_by_daemon(&mut s.watch, proxy, "tor");
    s.daemon.wait_log(
        &[&format!("stream {id}: \"tor\" is not a valid .tor name")],
        1,
    );

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
    s.watch.wait_event(&id, "CONTROLLER_WAIT", |e| {
        e.status == StreamStatus::ControllerWait
    });
    let resolver = resolving(&[s.registry.mirror.addr], &s.registry.key, &[]);
    s.daemon = start_daemon(
        s.tmp.path(),
        "daemon-2.log",
        &s.tor,
        &cookie_access(&s.tor),
        &resolver,
        &[],
    );
    assert_eq!(resolve.reply(), SocksReply::Refused(4));
    let closed = s
        .watch
        .wait_event(&id, "CLOSED", |e| e.status == StreamStatus::Closed);
    assert_eq!(closed.reason(), Some("RESOLVEFAILED"), "{}", s.watch.dump());
}

#[test]
fn survives_a_tor_restart() {
    let mut s = Setup::start("client-tor-restart", &[]);
    assert_eq!(s.redirected("example.tor"), onion_of(EXAMPLE));

    s.tor.stop();
    s.daemon.wait_log(&["the control connection closed"], 1);
    s.tor.restart();
    s.daemon
        .wait_log(&[&format!("attached to tor at {}", s.tor.control)], 2);
    assert!(s.daemon.log().contains("reconnecting to tor in"));
    s.watch = s.tor.watcher();
    assert_eq!(s.tor.leave_streams_unattached(), "1");
    assert!(s.watch.conn.tor_names_guarded().expect("address-mappings"));

    assert_eq!(s.redirected("www.example.tor"), onion_of(WWW));
    assert_eq!(s.redirected("other.tor"), onion_of(OTHER));
    let id = refused_by_daemon(&mut s.watch, s.tor.socks, "unknown.tor");
    s.daemon
        .wait_log(&[&format!("stream {id}: unknown.tor not resolved")], 1);
}

/// Every way a lying mirror answers, in the order it uses them.
const FORGERIES: [Forgery; 6] = [
    Forgery::Deny,
    Forgery::Foreign,
    Forgery::SwapOnion,
    Forgery::OtherName,
    Forgery::DenyOtherRoot,
    Forgery::StripProof,
];

#[test]
fn lying_mirrors_are_never_followed_and_are_set_aside() {
    let tmp = TempDir::new("client-lying");
    let registry = Registry::start(&tmp);
    let liar = Liar::mirror(
        "127.0.0.3",
        &tmp.join("liar.log"),
        registry.mirror.addr,
        "third.tor",
        &[],
        &FORGERIES,
    );
    let tor = TestTor::start();
    let mut watch = tor.watcher();
    let honest = [(EXAMPLE, "example.tor"), (OTHER, "other.tor")];
    let mirrors = [liar.addr, registry.mirror.addr];
    let lied = format!("mirror {} lied about", liar.addr);

    // The liar is asked first and denies the name; once it lied it is not
    // asked again. With one name cached, alternating names always go to a
    // mirror.
    let resolver = resolving(&mirrors, &registry.key, &["--cache-size", "1"]);
    let access = cookie_access(&tor);
    let mut daemon = start_daemon(tmp.path(), "set-aside.log", &tor, &access, &resolver, &[]);
    for round in 0..4 {
        let (seed, name) = honest[round % 2];
        let onion = redirected(&mut watch, &mut daemon, tor.socks, name);
        assert_eq!(onion, onion_of(seed), "round {round}: {name}");
        assert_ne!(onion, onion_of(ATTACKER));
    }
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
    for round in 0..10 {
        let (seed, name) = honest[round % 2];
        let onion = redirected(&mut watch, &mut daemon, tor.socks, name);
        assert_eq!(onion, onion_of(seed), "round {round}: {name}");
        assert_ne!(onion, onion_of(ATTACKER));
    }
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
    let tmp = TempDir::new("client-stale");
    let registry = Registry::start(&tmp);
    let liar = Liar::mirror(
        "127.0.0.3",
        &tmp.join("liar.log"),
        registry.mirror.addr,
        "third.tor",
        &["www.example.tor"],
        &[Forgery::Replay],
    );
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

#[test]
fn sigterm_hands_streams_back_and_tor_names_fail_locally() {
    let tmp = TempDir::new("client-sigterm");
    let tor = TestTor::start();
    let mut watch = tor.watcher();
    let access = cookie_access(&tor);
    let mut daemon = start_daemon(tmp.path(), "daemon.log", &tor, &access, &no_registry(), &[]);
    assert_eq!(tor.leave_streams_unattached(), "1");

    let status = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    daemon.wait_log(&["stopping: stream attachment handed back to tor"], 1);
    assert_eq!(tor.leave_streams_unattached(), "0");
    assert!(watch.conn.tor_names_guarded().expect("address-mappings"));

    let (web, web_id) = watch.connect(tor.socks, "example.com", 80);
    let (mut name, id) = watch.connect(tor.socks, "example.tor", 80);
    assert_failed_locally(&mut watch, &mut name, &id);
    assert!(
        !statuses(&watch.events_of(&id)).contains(&StreamStatus::ControllerWait),
        "{}",
        watch.dump()
    );
    // example.com's events came before example.tor's: it never waited.
    assert_eq!(
        statuses(&watch.events_of(&web_id)),
        vec![StreamStatus::New],
        "{}",
        watch.dump()
    );
    assert_handed_back(&watch, &web_id, "example.com");
    drop(web);
}

#[test]
fn after_kill_9_release_hands_waiting_streams_back() {
    let tmp = TempDir::new("client-release");
    let tor = TestTor::start();
    let mut watch = tor.watcher();
    let access = password_access(&tor);
    let mut daemon = start_daemon(tmp.path(), "daemon.log", &tor, &access, &no_registry(), &[]);
    daemon.kill9();
    assert_eq!(
        tor.leave_streams_unattached(),
        "1",
        "nobody reset it: streams would hang"
    );

    let (mut stuck, stuck_id) = watch.connect(tor.socks, "stuck.tor", 80);
    let (web, web_id) = watch.connect(tor.socks, "example.com", 80);
    for id in [&stuck_id, &web_id] {
        watch.wait_event(id, "CONTROLLER_WAIT", |e| {
            e.status == StreamStatus::ControllerWait
        });
    }

    let (status, text) = release(tmp.path(), &access, &[]);
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "2 waiting streams handed back (1 attached, 1 .tor streams failed inside tor)"
        ),
        "{text}"
    );
    assert_eq!(tor.leave_streams_unattached(), "0");
    assert_failed_locally(&mut watch, &mut stuck, &stuck_id);
    assert_handed_back(&watch, &web_id, "example.com");

    // New streams: .tor fails at once, others do not wait for a controller.
    let (web2, web2_id) = watch.connect(tor.socks, "example.net", 80);
    let (mut name, id) = watch.connect(tor.socks, "new.tor", 80);
    assert_failed_locally(&mut watch, &mut name, &id);
    assert_eq!(
        statuses(&watch.events_of(&web2_id)),
        vec![StreamStatus::New]
    );
    drop((web, web2));
}

#[test]
fn after_kill_9_a_restarted_daemon_takes_over_waiting_streams() {
    let mut s = Setup::start("client-takeover", &[]);
    s.daemon.kill9();
    let proxy = s.tor.socks;
    let (named, named_id) = s.watch.connect(proxy, "example.tor", 80);
    let (mut unknown, unknown_id) = s.watch.connect(proxy, "unknown.tor", 80);
    let (web, web_id) = s.watch.connect(proxy, "example.com", 80);
    for id in [&named_id, &unknown_id, &web_id] {
        s.watch.wait_event(id, "CONTROLLER_WAIT", |e| {
            e.status == StreamStatus::ControllerWait
        });
    }

    let resolver = resolving(&[s.registry.mirror.addr], &s.registry.key, &[]);
    s.daemon = start_daemon(
        s.tmp.path(),
        "daemon-2.log",
        &s.tor,
        &cookie_access(&s.tor),
        &resolver,
        &[],
    );
    let line = s
        .daemon
        .wait_log(&["taking over", "streams that were waiting"], 1)[0]
        .clone();
    let count: usize = line
        .split("taking over ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(count >= 3, "{line}");

    assert_eq!(
        follow_redirect(&mut s.watch, &mut s.daemon, named, &named_id, "example.tor"),
        onion_of(EXAMPLE)
    );
    assert_eq!(unknown.reply(), SocksReply::Refused(4));
    let closed = s
        .watch
        .wait_event(&unknown_id, "CLOSED", |e| e.status == StreamStatus::Closed);
    assert_eq!(closed.reason(), Some("RESOLVEFAILED"));
    assert_no_leak(&s.watch.events_of(&unknown_id), "unknown.tor");
    s.daemon.wait_log(
        &[&format!(
            "stream {unknown_id}: unknown.tor not resolved: not registered"
        )],
        1,
    );
    // The take-over attached example.com before any lookup finished.
    assert_handed_back(&s.watch, &web_id, "example.com");
    assert_eq!(s.tor.leave_streams_unattached(), "1");
    drop(web);
}

testkit::liar_entry!();

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
    let tmp = TempDir::new("client-trailing-dot-away");
    let tor = TestTor::start();
    let mut watch = tor.watcher();
    let access = cookie_access(&tor);
    // torrc with the `*.tor` line alone, as documented before.
    watch
        .conn
        .set_conf(&[("MapAddress", &format!("{GUARD_FROM} {GUARD_TO}"))])
        .expect("SETCONF MapAddress");
    let mut daemon = start_daemon(tmp.path(), "daemon.log", &tor, &access, &no_registry(), &[]);
    for from in [GUARD_FROM_ROOTED, GUARD_FROM_ONION_ROOTED] {
        daemon.wait_log(
            &[&format!(
                "torrc guards some .tor spellings but not {from}; add `MapAddress {from} {GUARD_TO}`"
            )],
            1,
        );
    }
    assert!(watch.conn.tor_names_guarded().expect("address-mappings"));

    // Stopped with SIGTERM: new streams fail at once, through the guard.
    assert_eq!(daemon.terminate().code(), Some(0), "{}", daemon.log());
    assert_eq!(tor.leave_streams_unattached(), "0");
    assert!(watch.conn.tor_names_guarded().expect("address-mappings"));
    for host in [
        "example.tor.",
        "www.example.tor.",
        "example.tor.onion.",
        "WWW.Example.TOR.Onion.",
        "tor.",
    ] {
        let (mut socks, id) = watch.connect(tor.socks, host, 80);
        assert_failed_locally(&mut watch, &mut socks, &id);
        assert!(
            !statuses(&watch.events_of(&id)).contains(&StreamStatus::ControllerWait),
            "{}",
            watch.dump()
        );
    }
    // A DNS resolve is never sent out either.
    let (mut resolve, id) = watch.resolve(tor.socks, "example.tor.");
    assert!(
        matches!(resolve.reply(), SocksReply::Refused(code) if code != 0),
        "RESOLVE example.tor."
    );
    for event in watch.wait_closed(&id) {
        assert!(!event.on_circuit(), "{event:?}");
        assert_ne!(event.status, StreamStatus::SentResolve, "{event:?}");
    }

    // Killed with -9 while streams wait for it: --release fails them inside
    // Tor, and later streams fail at once.
    let mut daemon = start_daemon(
        tmp.path(),
        "daemon-2.log",
        &tor,
        &access,
        &no_registry(),
        &[],
    );
    daemon.kill9();
    let (mut stuck, stuck_id) = watch.connect(tor.socks, "stuck.tor.", 80);
    let (mut stuck_onion, stuck_onion_id) = watch.connect(tor.socks, "stuck.tor.onion.", 80);
    for id in [&stuck_id, &stuck_onion_id] {
        watch.wait_event(id, "CONTROLLER_WAIT", |e| {
            e.status == StreamStatus::ControllerWait
        });
    }
    let (status, text) = release(tmp.path(), &access, &[]);
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "2 waiting streams handed back (0 attached, 2 .tor streams failed inside tor)"
        ),
        "{text}"
    );
    assert_failed_locally(&mut watch, &mut stuck, &stuck_id);
    assert_failed_locally(&mut watch, &mut stuck_onion, &stuck_onion_id);
    let (mut name, id) = watch.connect(tor.socks, "new.tor.", 80);
    assert_failed_locally(&mut watch, &mut name, &id);
    watch.assert_no_leak("trailing-dot names with the daemon away");

    // Without the two wildcards: the leak. (MAPADDRESS of an address to
    // itself removes its mapping.)
    for from in [GUARD_FROM_ROOTED, GUARD_FROM_ONION_ROOTED] {
        watch
            .conn
            .map_address(from, from)
            .unwrap_or_else(|e| panic!("MAPADDRESS {from}={from}: {e}"));
    }
    assert_eq!(
        watch.conn.unguarded().expect("address-mappings"),
        vec![GUARD_FROM_ROOTED, GUARD_FROM_ONION_ROOTED]
    );
    let (rooted, rooted_id) = watch.connect(tor.socks, "example.tor.", 80);
    let (onion_rooted, onion_rooted_id) = watch.connect(tor.socks, "example.tor.onion.", 80);
    // A later `*.tor` stream fails at once: Tor has handled the two by then.
    let (mut bare, bare_id) = watch.connect(tor.socks, "example.tor", 80);
    assert_failed_locally(&mut watch, &mut bare, &bare_id);
    let entries = watch.conn.stream_status().expect("stream-status");
    for (id, host) in [
        (&rooted_id, "example.tor."),
        (&onion_rooted_id, "example.tor.onion."),
    ] {
        assert_eq!(
            statuses(&watch.events_of(id)),
            vec![StreamStatus::New],
            "{host}: neither mapped nor refused: {}",
            watch.dump()
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
