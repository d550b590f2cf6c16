//! Lying servers: real processes speaking the protocol over real sockets,
//! whose answers are false, so tests can show that nothing believes them.
//!
//! A liar is the test binary itself, started again with only its
//! `liar_process` test selected and its orders in the environment
//! ([`Liar::start`]); every test that starts liars declares that test with
//! [`liar_entry!`] at the root of its test crate (in `main.rs` where the
//! test is a folder), where `--exact` finds it by that name. The process
//! prints where it listens, logs one line per lie to a file, and is stopped
//! by its PID when its guard drops.
//!
//! Two kinds:
//! - a **mirror** that answers lookups with forgeries, taking the genuine
//!   material it mangles from an honest mirror, in turn from a list
//!   ([`Forgery`]), and reverse lookups with the honest mirror's names and
//!   names of its own ([`Liar::reverse_mirror`]);
//! - an **upstream** that relays a real Quorum's subscription stream to
//!   mirrors and lies with the Quorum's own key ([`Plan`]): heads over a
//!   root that does not match the records (a Quorum whose tree disagrees
//!   with its log), a split view (a name's records left out, and every
//!   head re-signed over what was sent: a fork of the real heads), or a
//!   live name handed to another key (bare, or with a transfer statement
//!   its owner never signed).
//!
//! This file holds the orders, the [`Liar`] a test holds and the process's
//! entry point; `mirror.rs` the lying mirror, `upstream.rs` the lying
//! upstream.

use crate::ChildGuard;
use onions::keys::SigningKey;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod mirror;
mod upstream;

pub use mirror::Forgery;
pub use upstream::Plan;

use mirror::{serve_mirror, MirrorLies};
use upstream::serve_upstream;

/// The environment variable that carries a liar's orders.
const ORDERS: &str = "ONIONS_TEST_LIAR";

/// Declares the `liar_process` test that [`Liar::start`] runs in a child
/// process. Ignored in normal runs; without orders it returns at once.
#[macro_export]
macro_rules! liar_entry {
    () => {
        #[test]
        #[ignore = "a lying server, started by tests as a child process"]
        fn liar_process() {
            $crate::liar::serve_from_env();
        }
    };
}

/// What a liar process is told to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Orders {
    /// A lying mirror.
    Mirror {
        /// The honest mirror it takes genuine answers from.
        honest: SocketAddr,
        /// The name whose genuine answer [`Forgery::OtherName`] sends.
        other_name: String,
        /// Names whose answers [`Forgery::Replay`] captures at start.
        prefetch: Vec<String>,
        /// Forgeries, used in turn.
        forgeries: Vec<Forgery>,
        /// Names added to every reverse answer, whatever they point at.
        #[serde(default)]
        claims: Vec<String>,
    },
    /// A lying upstream.
    Upstream {
        /// The real Quorum it relays.
        quorum: SocketAddr,
        /// The Quorum's key file, to re-sign heads.
        key_file: PathBuf,
        /// How it lies.
        plan: Plan,
    },
}

/// A running liar; stopped when dropped.
pub struct Liar {
    _guard: ChildGuard,
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Liar {
    /// Starts a lying mirror on `ip` that mangles answers of `honest`.
    pub fn mirror(
        ip: &str,
        log: &Path,
        honest: SocketAddr,
        other_name: &str,
        prefetch: &[&str],
        forgeries: &[Forgery],
    ) -> Liar {
        let orders = Orders::Mirror {
            honest,
            other_name: other_name.to_owned(),
            prefetch: prefetch.iter().map(|s| s.to_string()).collect(),
            forgeries: forgeries.to_vec(),
            claims: Vec::new(),
        };
        Liar::start(ip, log, &orders)
    }

    /// Starts a lying mirror on `ip` whose reverse answers list the names
    /// of `honest`'s and every name of `claims`, and whose lookups are
    /// answered as `forgeries` say in turn ([`Forgery::Genuine`] for honest
    /// ones).
    pub fn reverse_mirror(
        ip: &str,
        log: &Path,
        honest: SocketAddr,
        claims: &[&str],
        forgeries: &[Forgery],
    ) -> Liar {
        let orders = Orders::Mirror {
            honest,
            other_name: String::new(),
            prefetch: Vec::new(),
            forgeries: forgeries.to_vec(),
            claims: claims.iter().map(|s| s.to_string()).collect(),
        };
        Liar::start(ip, log, &orders)
    }

    /// Starts a lying upstream on `ip` relaying `quorum`, whose key is in
    /// `key_file`, lying as `plan` says.
    pub fn upstream(ip: &str, log: &Path, quorum: SocketAddr, key_file: &Path, plan: Plan) -> Liar {
        let orders = Orders::Upstream {
            quorum,
            key_file: key_file.to_owned(),
            plan,
        };
        Liar::start(ip, log, &orders)
    }

    /// Starts the test binary again as a liar with `orders`.
    fn start(ip: &str, log: &Path, orders: &Orders) -> Liar {
        let exe = std::env::current_exe().expect("the test binary's path");
        let listener_ip: std::net::IpAddr = ip.parse().expect("an IP address");
        let mut child = Command::new(exe)
            .args([
                "liar_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ORDERS, serde_json::to_string(orders).unwrap())
            .env("ONIONS_TEST_LIAR_IP", listener_ip.to_string())
            .env("ONIONS_TEST_LIAR_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a liar process");
        let stdout = child.stdout.take().expect("the liar's stdout");
        let guard = ChildGuard::new(child, format!("liar on {ip}"));
        let addr = read_address(stdout);
        Liar {
            _guard: guard,
            addr,
            log: log.to_owned(),
        }
    }

    /// Lies told so far (one log line each).
    pub fn lies(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .map(|t| t.lines().filter(|l| l.starts_with("lie ")).count())
            .unwrap_or(0)
    }
}

/// Reads the `listening ADDR` line the liar prints (bounded by the
/// liar's own start, which is quick; the guard kills it if the test fails).
fn read_address(stdout: std::process::ChildStdout) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest writes "test liar_process ... " on the same line.
            if let Some((_, addr)) = line.split_once("listening ") {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the liar says where it listens within 30 s");
    addr.parse().expect("a socket address")
}

/// The body of `liar_process`: serves as the orders say, until killed.
pub fn serve_from_env() {
    let Ok(text) = std::env::var(ORDERS) else {
        return;
    };
    onions::keys::init().unwrap();
    let orders: Orders = serde_json::from_str(&text).unwrap();
    let ip = std::env::var("ONIONS_TEST_LIAR_IP").unwrap();
    let log = PathBuf::from(std::env::var("ONIONS_TEST_LIAR_LOG").unwrap());
    let listener = TcpListener::bind((ip.as_str(), 0)).unwrap();
    println!("listening {}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap(),
    ));
    match orders {
        Orders::Mirror {
            honest,
            other_name,
            prefetch,
            forgeries,
            claims,
        } => {
            let lies = MirrorLies {
                honest,
                other_name,
                forgeries,
                claims,
            };
            serve_mirror(&listener, &lies, &prefetch, &log)
        }
        Orders::Upstream {
            quorum,
            key_file,
            plan,
        } => serve_upstream(&listener, quorum, &key_file, plan, &log),
    }
}

/// Writes one line to the liar's log.
fn note(log: &Mutex<std::fs::File>, line: &str) {
    let mut file = log.lock().unwrap();
    let _ = writeln!(file, "{line}");
}

/// The attacker's service key.
fn attacker() -> SigningKey {
    SigningKey::from_seed(&[0xa7; 32])
}
