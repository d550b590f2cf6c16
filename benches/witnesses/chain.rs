//! The servers of the witnesses benchmark: a chain is a Quorum, its three
//! witnesses (none for the baseline) and mirrors A and B, with the policy
//! a client of B checks answers against. Each server is a release
//! `onions-server` on its own 127.0.0.x.

use crate::{CATCH_UP_LIMIT, NEEDED, POLL, REPLY_LIMIT, STALL_LIMIT, START_LIMIT};
use onions::keys::PublicKey;
use onions::lookup::Policy;
use onions::wire::Status;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use testkit::line::LineConn;
use testkit::process::Proc;
use testkit::servers::answering_head;

/// Flags from text with no spaces inside any one of them.
fn flags(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// A running `onions-server`.
pub struct Server {
    /// The process, stopped by its PID when dropped.
    pub proc: Proc,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `bin` with `args` on a free port of 127.0.0.`ip`, its state
    /// in `state` (named after it), and waits (bounded) until it listens.
    fn start(bin: &Path, state: &Path, ip: u8, args: &[String]) -> Server {
        let mut command = Command::new(bin);
        command.args(args);
        let name = state.file_name().unwrap_or_default().to_string_lossy();
        let (proc, addr) =
            Proc::start_server(command, &name, &format!("127.0.0.{ip}"), state, START_LIMIT);
        Server { proc, addr }
    }

    /// The server's status.
    pub fn status(&self) -> Status {
        LineConn::connect(self.addr, REPLY_LIMIT)
            .try_status()
            .unwrap_or_else(|e| panic!("{}: {e}", self.proc.what))
    }

    /// The seq up to which the server has applied records and answers
    /// against a head covering them.
    fn answering(&self) -> u64 {
        let status = self.status();
        answering_head(&status).map_or(0, |h| h.seq.min(status.seq))
    }
}

/// The public key `server --print-key --state-dir STATE` prints (creating
/// the key).
fn print_key(server: Command, state: &Path) -> PublicKey {
    let text = testkit::servers::print_key_with(server, state);
    PublicKey::from_base64(&text).unwrap_or_else(|| panic!("--print-key gave {text:?}"))
}

/// A Quorum, its witnesses (none for the baseline), and mirrors A and B,
/// with what a client of B checks. Stopped from B up when dropped.
pub struct Chain {
    /// Mirror B, under A.
    pub b: Server,
    /// Mirror A, under the first witness (or the Quorum).
    pub a: Server,
    /// The witnesses, under the Quorum.
    pub witnesses: Vec<Server>,
    /// The Quorum.
    pub quorum: Server,
    /// What a client of B checks answers against.
    pub policy: Policy,
}

impl Chain {
    /// Starts a chain: with `witnessed`, three witnesses between the
    /// Quorum and mirror A. `ips`: the last byte of the Quorum's, A's and
    /// B's 127.0.0.x.
    pub fn start(bin: &Path, dir: &Path, witnessed: bool, ips: [u8; 3]) -> Chain {
        let tag = if witnessed { "witnessed" } else { "plain" };
        let state = |what: &str| dir.join(format!("{tag}-{what}"));
        let quorum_state = state("quorum");
        let quorum_key = print_key(Command::new(bin), &quorum_state);
        let n = if witnessed { 3 } else { 0 };
        let key_files: Vec<PathBuf> = (0..n).map(|i| state(&format!("w{i}.key"))).collect();
        let max_head_age = onions::lookup::DEFAULT_MAX_HEAD_AGE;
        let mut policy = Policy {
            max_head_age,
            ..Policy::default()
        };
        policy.verifier.trusted = vec![quorum_key];
        policy.witnesses.needed = if witnessed { NEEDED } else { 0 };
        for file in &key_files {
            let mut server = Command::new(bin);
            server.args(["--role", "mirror", "--witness-key"]).arg(file);
            policy.witnesses.trusted.push(print_key(server, dir));
        }
        let trust: String = (policy.witnesses.trusted.iter())
            .map(|k| format!(" --trust-witness {}", k.to_base64()))
            .collect();
        let args = flags(&format!(
            "--role quorum --min-work 0 --head-interval 1{trust}"
        ));
        let quorum = Server::start(bin, &quorum_state, ips[0], &args);
        let key = policy.verifier.trusted[0].to_base64();
        let mirror = |up: SocketAddr, more: &str| {
            flags(&format!(
                "--role mirror --upstream {up} --quorum-key {key}{more}"
            ))
        };
        let witnesses: Vec<Server> = (key_files.iter().enumerate())
            .map(|(i, file)| {
                let mut args = mirror(quorum.addr, &trust);
                args.extend(["--witness-key".into(), file.display().to_string()]);
                Server::start(bin, &state(&format!("witness{i}")), 11 + i as u8, &args)
            })
            .collect();
        let mut gate = trust.clone();
        if witnessed {
            gate.push_str(&format!(" --witnesses {NEEDED}"));
        }
        let above_a = witnesses.first().map_or(quorum.addr, |w| w.addr);
        let a = Server::start(bin, &state("mirror-A"), ips[1], &mirror(above_a, &gate));
        let b = Server::start(bin, &state("mirror-B"), ips[2], &mirror(a.addr, &gate));
        Chain {
            b,
            a,
            witnesses,
            quorum,
            policy,
        }
    }

    /// Waits (bounded) until A and B answer against heads covering `seq`;
    /// on a stall or at the deadline, fails with every server's status and
    /// the end of its log.
    pub fn wait_caught_up(&mut self, seq: u64) {
        let (deadline, mut last) = (Instant::now() + CATCH_UP_LIMIT, (0, Instant::now()));
        loop {
            let servers = [&mut self.quorum, &mut self.a, &mut self.b];
            for s in servers.into_iter().chain(&mut self.witnesses) {
                s.proc.check_running();
            }
            let answering = self.a.answering().min(self.b.answering());
            if answering >= seq {
                return;
            }
            if answering != last.0 {
                last = (answering, Instant::now());
            }
            if last.1.elapsed() > STALL_LIMIT || Instant::now() > deadline {
                let servers = [&self.quorum, &self.a, &self.b];
                let mut text = String::new();
                for s in servers.into_iter().chain(&self.witnesses) {
                    let (what, log) = (&s.proc.what, s.proc.log_tail());
                    text.push_str(&format!("\n--- {what}: {}\n{log}", s.status()));
                }
                panic!("A and B answer up to seq {answering}, not {seq}:{text}");
            }
            std::thread::sleep(POLL);
        }
    }
}
