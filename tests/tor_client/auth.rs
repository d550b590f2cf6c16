//! How the daemon authenticates to tor's control port: the cookie, the
//! password, and a browser bundle's environment; a wrong password is
//! final.

use crate::fixtures::{cookie_access, no_registry, password_access, start_daemon, strings};
use testkit::tor::{Daemon, TestTor, TOR_PASSWORD};
use testkit::TempDir;

/// Hex of `text`'s bytes, as TOR_CONTROL_PASSWD carries a password.
fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

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
