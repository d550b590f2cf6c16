//! What the tests start: a registry (a Quorum and a mirror serving the
//! test's names), the daemon's flags for tor's control port and for
//! resolving, the daemon itself, and [`Setup`], all of these at once; or
//! [`Away`], a tor without a registry.

use crate::checks::redirected;
use crate::{EXAMPLE, OTHER, REPLICATE_LIMIT, THIRD, WWW};
use onions::wire::Reply;
use std::net::SocketAddr;
use std::path::Path;
use testkit::servers::{owner, print_key, record, Server};
use testkit::streams::Watcher;
use testkit::tor::{Daemon, TestTor, TOR_PASSWORD};
use testkit::TempDir;

/// A Quorum and a mirror that serves example.tor (with `www`), other.tor
/// and third.tor.
pub(crate) struct Registry {
    pub(crate) quorum: Server,
    pub(crate) mirror: Server,
    pub(crate) key: String,
}

impl Registry {
    pub(crate) fn start(tmp: &TempDir) -> Registry {
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
pub(crate) fn cookie_access(tor: &TestTor) -> Vec<String> {
    strings(&[
        "--control",
        &tor.control.to_string(),
        "--cookie",
        &tor.cookie().display().to_string(),
    ])
}

/// Flags that reach tor's control port with the password.
pub(crate) fn password_access(tor: &TestTor) -> Vec<String> {
    strings(&[
        "--control",
        &tor.control.to_string(),
        "--control-password",
        TOR_PASSWORD,
    ])
}

/// Flags that resolve through `mirrors` (in this order), directly,
/// trusting `key`, plus `extra`.
pub(crate) fn resolving(mirrors: &[SocketAddr], key: &str, extra: &[&str]) -> Vec<String> {
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
pub(crate) fn no_registry() -> Vec<String> {
    let nobody: SocketAddr = "127.0.0.2:1".parse().unwrap();
    resolving(&[nobody], &owner(9).public().to_base64(), &[])
}

pub(crate) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// Starts the daemon with `access` and `resolver` flags (and `env`), its
/// log in `dir/log`, and waits until it has attached to `tor`.
pub(crate) fn start_daemon(
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

/// A tor and the test's watcher, with the flags that reach tor's control
/// port: for tests of the daemon going away, whose daemons never resolve
/// a name.
pub(crate) struct Away {
    // Dropped in this order: the watcher before tor, the temp dir last.
    pub(crate) watch: Watcher,
    pub(crate) access: Vec<String>,
    pub(crate) tor: TestTor,
    pub(crate) tmp: TempDir,
}

impl Away {
    /// Starts tor and the watcher in a temp dir for `label`; daemons will
    /// reach tor with the flags `access` gives.
    pub(crate) fn start(label: &str, access: fn(&TestTor) -> Vec<String>) -> Away {
        let tmp = TempDir::new(label);
        let tor = TestTor::start();
        let watch = tor.watcher();
        let access = access(&tor);
        Away {
            watch,
            access,
            tor,
            tmp,
        }
    }

    /// Starts a daemon that resolves nothing ([`no_registry`]), its log in
    /// `log`, and waits until it has attached.
    pub(crate) fn daemon(&self, log: &str) -> Daemon {
        start_daemon(
            self.tmp.path(),
            log,
            &self.tor,
            &self.access,
            &no_registry(),
            &[],
        )
    }
}

/// A registry, a tor, the test's watcher and a daemon resolving through
/// the mirror with `extra` flags.
pub(crate) struct Setup {
    // Dropped in this order: the daemon before tor, the temp dir last.
    pub(crate) daemon: Daemon,
    pub(crate) watch: Watcher,
    pub(crate) tor: TestTor,
    pub(crate) registry: Registry,
    pub(crate) tmp: TempDir,
}

impl Setup {
    pub(crate) fn start(label: &str, extra: &[&str]) -> Setup {
        let tmp = TempDir::new(label);
        let registry = Registry::start(&tmp);
        let tor = TestTor::start();
        let watch = tor.watcher();
        let daemon = registry_daemon(tmp.path(), "daemon.log", &tor, &registry, extra);
        Setup {
            daemon,
            watch,
            tor,
            registry,
            tmp,
        }
    }

    /// Starts a new daemon as [`Setup::start`] did (with no `extra` flags),
    /// its log in `log`, in place of one that died.
    pub(crate) fn restart_daemon(&mut self, log: &str) {
        self.daemon = registry_daemon(self.tmp.path(), log, &self.tor, &self.registry, &[]);
    }

    /// Connects to `host:80` and returns the onion the daemon sent the
    /// stream to (see [`follow_redirect`]).
    pub(crate) fn redirected(&mut self, host: &str) -> String {
        redirected(&mut self.watch, &mut self.daemon, self.tor.socks, host)
    }
}

/// Starts a daemon with the cookie, resolving through `registry`'s mirror
/// with `extra` flags, its log in `dir/log`; waits until it has attached.
fn registry_daemon(
    dir: &Path,
    log: &str,
    tor: &TestTor,
    registry: &Registry,
    extra: &[&str],
) -> Daemon {
    let resolver = resolving(&[registry.mirror.addr], &registry.key, extra);
    start_daemon(dir, log, tor, &cookie_access(tor), &resolver, &[])
}
