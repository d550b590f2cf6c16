//! A running release `onions-server` of the benchmark (the Quorum, mirror
//! A or mirror B): how it is started with the run's settings, its status,
//! the wait for a catching-up mirror, and what a client checks its answers
//! against. Its memory and disk are in `footprint`, its restart in
//! `startup`.

use crate::settings::Settings;
use onions::keys::PublicKey;
use onions::lookup::Policy;
use onions::verify::Verifier;
use onions::wire::{HeadTiming, Status};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::line::LineConn;
use testkit::process::Proc;
use testkit::servers::answering_head;

/// How long a server may take to start listening.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long a catching-up mirror's seq and answering head may stay put
/// before it is called stalled: longer than a mirror's default upstream
/// silence limit (45 s), so a mirror that could recover by reconnecting
/// would have done so.
const STALL_LIMIT: Duration = Duration::from_secs(60);
/// How long one reply or push may take.
pub const REPLY_LIMIT: Duration = Duration::from_secs(60);
/// Pause between status polls.
const POLL: Duration = Duration::from_millis(20);

/// A running `onions-server`.
pub struct Server {
    /// The process, stopped by its PID when dropped.
    pub proc: Proc,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state directory.
    pub state: PathBuf,
    /// What it is in the run: "Quorum", "mirror A", ...
    pub label: String,
    /// Its flags besides `--listen` and `--state-dir`.
    pub role_args: Vec<String>,
}

impl Server {
    /// Starts a server of `role_args` on `ip` with its state in `state`.
    pub fn start(
        settings: &Settings,
        label: &str,
        ip: &str,
        state: &Path,
        role_args: &[&str],
    ) -> Server {
        let role_args: Vec<String> = role_args.iter().map(|a| (*a).to_owned()).collect();
        let (proc, addr) =
            Proc::start_server(command(settings, &role_args), label, ip, state, START_LIMIT);
        Server {
            proc,
            addr,
            state: state.to_owned(),
            label: label.to_owned(),
            role_args,
        }
    }

    /// The server's status.
    pub fn status(&self) -> Status {
        LineConn::connect(self.addr, REPLY_LIMIT)
            .try_status()
            .unwrap_or_else(|e| panic!("{}: {e}", self.proc.what))
    }

    /// Waits (bounded by `limit`) until the server has applied records up
    /// to `seq` and answers against a head covering it. Fails if neither
    /// moves for [`STALL_LIMIT`].
    pub fn wait_caught_up(&mut self, seq: u64, limit: Duration) -> Status {
        let deadline = Instant::now() + limit;
        let mut last = ((0, 0), Instant::now());
        loop {
            self.proc.check_running();
            let status = self.status();
            let answering = answering_head(&status).map_or(0, |h| h.seq);
            if status.seq >= seq && answering >= seq {
                return status;
            }
            if (status.seq, answering) != last.0 {
                last = ((status.seq, answering), Instant::now());
            }
            assert!(
                last.1.elapsed() < STALL_LIMIT,
                "{} stalled: seq {} and answering head seq {answering} stayed put for \
                 {STALL_LIMIT:?} while waiting for {seq} (its upstream has them); status {status}; \
                 its log ends:\n{}",
                self.proc.what,
                status.seq,
                self.proc.log_tail()
            );
            assert!(
                Instant::now() < deadline,
                "{} at seq {} (answering head seq {answering}) waiting for {seq} after {limit:?}; \
                 status {status}; its log ends:\n{}",
                self.proc.what,
                status.seq,
                self.proc.log_tail()
            );
            std::thread::sleep(POLL);
        }
    }
}

/// `onions-server` with `role_args` and the run's log level, if any; the
/// caller adds `--listen` and `--state-dir`.
pub fn command(settings: &Settings, role_args: &[String]) -> Command {
    let mut command = Command::new(&settings.server_bin);
    command.args(role_args);
    if let Some(level) = &settings.log_level {
        command.arg("--log-level").arg(level);
    }
    command
}

/// The `head_timing` of a status (zero when the server sends none).
pub fn timing(status: &Status) -> HeadTiming {
    status.head_timing.unwrap_or_default()
}

/// The Quorum key of the state directory `state`, from `--print-key`.
pub fn print_key(settings: &Settings, state: &Path) -> String {
    std::fs::create_dir_all(state)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", state.display()));
    testkit::servers::print_key_with(Command::new(&settings.server_bin), state)
}

/// What a client checks answers against: the run's Quorum key, work 0.
pub fn policy(key: &str) -> Policy {
    let key = PublicKey::from_base64(key)
        .unwrap_or_else(|| panic!("--print-key gave {key:?}, not a Base64 key"));
    Policy {
        verifier: Verifier {
            min_work: 0,
            trusted: vec![key],
            max_skew: None,
        },
        max_head_age: onions::lookup::DEFAULT_MAX_HEAD_AGE,
        witnesses: Default::default(),
    }
}
