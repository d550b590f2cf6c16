//! What the tests check in Tor's STREAM events and `stream-status`: no
//! `.tor` name leaves on a circuit, a stream followed through the daemon's
//! redirect, a stream the daemon closes, a stream failed inside Tor (by
//! the guard or by Tor itself), a stream handed back to Tor, and what
//! `--release` reports.

use onions::name::Host;
use onions::tor::control::{is_tor_target, StreamEvent, StreamId, StreamStatus};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::streams::Watcher;
use testkit::tor::{release, Daemon, SocksReply, SocksRequest, EVENT_LIMIT};
pub(crate) use testkit::tornet::statuses;

/// No event shows a `.tor` target on a circuit, or sent to an exit.
pub(crate) fn assert_no_leak(events: &[StreamEvent], what: &str) {
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
pub(crate) fn redirected(
    watch: &mut Watcher,
    daemon: &mut Daemon,
    proxy: SocketAddr,
    host: &str,
) -> String {
    let (socks, id) = watch.connect(proxy, host, 80);
    follow_redirect(watch, daemon, socks, &id, host)
}

/// Follows stream `id` (of `socks`, asking for `host:80`) through the
/// daemon's redirect: the daemon logs the onion, Tor's `stream-status`
/// shows the stream aimed at it while the client waits, and the CLOSED
/// event after the client hangs up names it too. No event of the stream
/// shows the `.tor` name going out. Returns the onion.
pub(crate) fn follow_redirect(
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
pub(crate) fn refused_by_daemon(watch: &mut Watcher, proxy: SocketAddr, host: &str) -> StreamId {
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

/// Asserts the guard's local failure: a SOCKS error, then REMAP to the
/// invalid onion name, FAILED with TORPROTOCOL, CLOSED, all on circuit 0.
pub(crate) fn assert_failed_locally(watch: &mut Watcher, socks: &mut SocksRequest, id: &StreamId) {
    let what = assert_socks_error(socks);
    watch.assert_guard_failed(id, &what);
}

/// Asserts that Tor itself refused stream `id`'s host, with no mapping
/// involved: a SOCKS error, then FAILED with TORPROTOCOL, CLOSED, all on
/// circuit 0. What a `.tor.onion` name gets when no daemon redirects it.
pub(crate) fn assert_refused_by_tor(watch: &mut Watcher, socks: &mut SocksRequest, id: &StreamId) {
    let what = assert_socks_error(socks);
    watch.assert_refused_by_tor(id, &what);
}

/// Asserts that the client of `socks` gets a SOCKS error; returns what it
/// asked for.
fn assert_socks_error(socks: &mut SocksRequest) -> String {
    let what = socks.what.clone();
    assert!(
        matches!(socks.reply(), SocksReply::Refused(code) if code != 0),
        "{what}: the client gets an error"
    );
    what
}

/// Waits (bounded) until each of the streams `ids` waits for a controller.
pub(crate) fn wait_held(watch: &mut Watcher, ids: &[&StreamId]) {
    for id in ids {
        watch.wait_event(id, "CONTROLLER_WAIT", |e| {
            e.status == StreamStatus::ControllerWait
        });
    }
}

/// Runs `onions-client --release` with `access` in `dir`: it exits 0 and
/// reports `handed` waiting streams handed back, `attached` of them
/// attached and the rest failed inside tor.
pub(crate) fn assert_released(dir: &Path, access: &[String], handed: usize, attached: usize) {
    let (status, text) = release(dir, access, &[]);
    assert_eq!(status.code(), Some(0), "{text}");
    let failed = handed - attached;
    let report = format!(
        "{handed} waiting streams handed back ({attached} attached, {failed} .tor streams \
         failed inside tor)"
    );
    assert!(text.contains(&report), "{text}");
}

/// Asserts that stream `id` no longer waits for a controller: Tor refuses
/// an ATTACHSTREAM of the test's own with 555.
pub(crate) fn assert_handed_back(watch: &Watcher, id: &StreamId, what: &str) {
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
