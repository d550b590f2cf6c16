//! Small helpers of the story: flags, lookup names and onions, the
//! redirects in a daemon's log, waiting for an onion service, and running
//! `onions-hs`.

use crate::REACH_LIMIT;
use onions::name::Host;
use onions::onion::OnionAddress;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testkit::servers::owner;
use testkit::tor::{Daemon, SocksReply, SocksRequest};

pub(crate) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// The lookup name the daemon logs for `host` (`X.tor` or `X.tor.onion`).
pub(crate) fn lookup_name(host: &str) -> String {
    match Host::classify(host) {
        Host::Name(name) => name.to_string(),
        other => panic!("{host:?} is not a lookup name: {other:?}"),
    }
}

/// The onion address of the key with `seed`.
pub(crate) fn onion_of(seed: u8) -> String {
    OnionAddress::from_key(owner(seed).public()).to_string()
}

/// Every `stream N: NAME -> ONION` line of a daemon's log, as
/// (N, NAME, ONION).
pub(crate) fn redirects(log: &str) -> Vec<(String, String, String)> {
    log.lines()
        .filter_map(|line| {
            let rest = &line[line.find(" stream ")? + " stream ".len()..];
            let (id, rest) = rest.split_once(": ")?;
            let (name, rest) = rest.split_once(" -> ")?;
            let onion = rest.split(' ').next()?;
            Some((id.to_owned(), name.to_owned(), onion.to_owned()))
        })
        .collect()
}

/// Every redirect in `daemon`'s log went where the genuine record says.
pub(crate) fn assert_honest_redirects(daemon: &Daemon, allowed: &[(&str, &str)]) -> usize {
    let log = daemon.log();
    let all = redirects(&log);
    for (id, name, onion) in &all {
        assert!(
            allowed.iter().any(|(n, o)| n == name && o == onion),
            "stream {id}: {name} was sent to {onion}, not to its genuine onion \
             {allowed:?}\n{log}"
        );
    }
    all.len()
}

/// Connects to `host:port` through `socks` until Tor grants it (bounded by
/// [`REACH_LIMIT`]); returns how long it took. Sends nothing, so the lying
/// mirror does not count it as a lookup.
pub(crate) fn reach(socks: SocketAddr, host: &str, port: u16) -> Duration {
    let began = Instant::now();
    loop {
        let mut probe = SocksRequest::connect(socks, host, port);
        let reply = probe.reply_within(Duration::from_secs(20));
        if reply == SocksReply::Granted {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < REACH_LIMIT,
            "{host}:{port} not reachable through {socks} within {REACH_LIMIT:?}: {reply:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Runs `onions-hs` with `args`; it must exit 0. Returns its stdout and
/// stderr.
pub(crate) fn hs_ok(args: &[&str]) -> (String, String) {
    let (status, stdout, stderr) = testkit::run_hs(args);
    assert!(
        status.success(),
        "onions-hs {args:?}: {status}\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}
