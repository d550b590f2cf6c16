//! The daemon and tor going away and coming back: a tor restart, a
//! SIGTERM that hands streams back, a kill -9 followed by `--release`, and
//! a kill -9 followed by a new daemon that takes over waiting streams.

use crate::checks::{
    assert_failed_locally, assert_handed_back, assert_no_leak, assert_released, follow_redirect,
    refused_by_daemon, statuses, wait_held,
};
use crate::fixtures::{cookie_access, password_access, Away, Setup};
use crate::{onion_of, EXAMPLE, OTHER, WWW};
use onions::tor::control::StreamStatus;
use testkit::tor::SocksReply;

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

#[test]
fn sigterm_hands_streams_back_and_tor_names_fail_locally() {
    let mut s = Away::start("client-sigterm", cookie_access);
    let mut daemon = s.daemon("daemon.log");
    assert_eq!(s.tor.leave_streams_unattached(), "1");

    let status = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    daemon.wait_log(&["stopping: stream attachment handed back to tor"], 1);
    assert_eq!(s.tor.leave_streams_unattached(), "0");
    assert!(s.watch.conn.tor_names_guarded().expect("address-mappings"));

    let (web, web_id) = s.watch.connect(s.tor.socks, "example.com", 80);
    let (mut name, id) = s.watch.connect(s.tor.socks, "example.tor", 80);
    assert_failed_locally(&mut s.watch, &mut name, &id);
    s.watch.assert_never_held(&id, "example.tor");
    // example.com's events came before example.tor's: it never waited.
    assert_eq!(
        statuses(&s.watch.events_of(&web_id)),
        vec![StreamStatus::New],
        "{}",
        s.watch.dump()
    );
    assert_handed_back(&s.watch, &web_id, "example.com");
    drop(web);
}

#[test]
fn after_kill_9_release_hands_waiting_streams_back() {
    let mut s = Away::start("client-release", password_access);
    let mut daemon = s.daemon("daemon.log");
    daemon.kill9();
    assert_eq!(
        s.tor.leave_streams_unattached(),
        "1",
        "nobody reset it: streams would hang"
    );

    let (mut stuck, stuck_id) = s.watch.connect(s.tor.socks, "stuck.tor", 80);
    let (web, web_id) = s.watch.connect(s.tor.socks, "example.com", 80);
    wait_held(&mut s.watch, &[&stuck_id, &web_id]);

    assert_released(s.tmp.path(), &s.access, 2, 1);
    assert_eq!(s.tor.leave_streams_unattached(), "0");
    assert_failed_locally(&mut s.watch, &mut stuck, &stuck_id);
    assert_handed_back(&s.watch, &web_id, "example.com");

    // New streams: .tor fails at once, others do not wait for a controller.
    let (web2, web2_id) = s.watch.connect(s.tor.socks, "example.net", 80);
    let (mut name, id) = s.watch.connect(s.tor.socks, "new.tor", 80);
    assert_failed_locally(&mut s.watch, &mut name, &id);
    assert_eq!(
        statuses(&s.watch.events_of(&web2_id)),
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
    wait_held(&mut s.watch, &[&named_id, &unknown_id, &web_id]);

    s.restart_daemon("daemon-2.log");
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
