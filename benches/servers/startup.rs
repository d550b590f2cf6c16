//! Row 10: start-up. A caught-up mirror, then the Quorum, is stopped with
//! SIGTERM and started again on the same address and state, and timed
//! until it answers a lookup of a name it holds with `found`.

use crate::footprint::Memory;
use crate::propagation::PROPAGATION_SAMPLES;
use crate::server::{self, Server, REPLY_LIMIT};
use crate::settings::Settings;
use crate::table::{mib, row, Row};
use crate::{Bench, Report};
use onions::wire::Reply;
use std::time::{Duration, Instant};
use testkit::line::{lookup_request, LineConn};
use testkit::process::Proc;
use testkit::records::Maker;
use testkit::servers::answering_head;

/// How long a restarted server may take to answer a lookup.
const RESTART_LIMIT: Duration = Duration::from_secs(300);
/// Pause between tries while a restarted server is not answering yet.
const RESTART_POLL: Duration = Duration::from_millis(2);
/// The start-up goal (until a lookup is answered `found`), at 2^20.
const STARTUP_GOAL: f64 = 5.0;

/// A server stopped and started again.
pub struct Restart {
    /// How the old process ended.
    exit: String,
    /// SIGTERM to exit, seconds.
    stop: f64,
    /// Start to the first accepted connection, seconds.
    listening: f64,
    /// Start to the first `found` answer, seconds.
    found: f64,
    /// `no_head` (or other transient) refusals before it.
    refusals: u64,
    /// The answer's head is the one it answered with before the stop.
    restored: bool,
    head_seq: u64,
    /// Its status seq then.
    seq: u64,
    /// Its memory then.
    pub memory: Memory,
}

impl Server {
    /// Stops the server with SIGTERM, starts it again on the same address
    /// and state, and times it until it answers a lookup of `name` (a
    /// registered name it holds) with `found`.
    fn restart(&mut self, settings: &Settings, name: &str) -> Restart {
        let before = answering_head(&self.status()).cloned();
        let t = Instant::now();
        let exit = self.proc.stop();
        let stop = t.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut command = server::command(settings, &self.role_args);
        command
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--state-dir")
            .arg(&self.state);
        self.proc = Proc::spawn(
            command,
            &format!("{} on {} (restarted)", self.label, self.addr),
            &self.state.with_extension("restart.log"),
        );
        let request = lookup_request(1, name);
        let deadline = started + RESTART_LIMIT;
        let mut conn: Option<LineConn> = None;
        let mut listening = None;
        let mut refusals = 0u64;
        let head = loop {
            self.proc.check_running();
            assert!(
                Instant::now() < deadline,
                "{} did not answer {name} within {RESTART_LIMIT:?} of its restart; its log ends:\n{}",
                self.proc.what,
                self.proc.log_tail()
            );
            let Some(c) = conn.as_mut() else {
                match LineConn::try_connect(self.addr, Duration::from_millis(200), REPLY_LIMIT) {
                    Ok(c) => {
                        listening.get_or_insert(started.elapsed().as_secs_f64());
                        conn = Some(c);
                    }
                    Err(_) => std::thread::sleep(RESTART_POLL),
                }
                continue;
            };
            match c.try_request(&request) {
                Ok(Reply::Found { record, head, .. }) => {
                    assert_eq!(record.name.as_str(), name, "the restarted server's answer");
                    break head;
                }
                Ok(Reply::Error(e)) if e.code.is_transient() => {
                    refusals += 1;
                    std::thread::sleep(RESTART_POLL);
                }
                Ok(other) => panic!(
                    "{} answered the lookup of {name} with {other} after its restart",
                    self.proc.what
                ),
                Err(_) => {
                    conn = None;
                    std::thread::sleep(RESTART_POLL);
                }
            }
        };
        let found = started.elapsed().as_secs_f64();
        let status = self.status();
        Restart {
            exit: exit.map_or_else(|| "not seen".to_owned(), |s| s.to_string()),
            stop,
            listening: listening.unwrap_or(found),
            found,
            refusals,
            restored: before.as_ref() == Some(&head),
            head_seq: head.seq,
            seq: status.seq,
            memory: self.memory(),
        }
    }
}

impl Bench {
    /// Phases "mirror A stopped and started again" (once it holds every
    /// record, and until it does again) and "Quorum stopped and started
    /// again".
    pub fn restarts(&mut self) -> (Restart, Restart) {
        let n = self.settings.records;
        let total = (n + PROPAGATION_SAMPLES) as u64;
        let t = Instant::now();
        let settings = &self.settings;
        let mirror_a = self.mirror_a.as_mut().expect("started");
        mirror_a.wait_caught_up(total, REPLY_LIMIT);
        let restart_a = mirror_a.restart(settings, &Maker::name(n / 2));
        mirror_a.wait_caught_up(total, REPLY_LIMIT);
        self.phase(
            "mirror A stopped and started again",
            t,
            &format!("answered found {:.3} s after its start", restart_a.found),
        );

        let t = Instant::now();
        let settings = &self.settings;
        let quorum = self.quorum.as_mut().expect("started");
        let restart_quorum = quorum.restart(settings, &Maker::name(n / 3));
        self.phase(
            "Quorum stopped and started again",
            t,
            &format!(
                "answered found {:.3} s after its start",
                restart_quorum.found
            ),
        );
        (restart_a, restart_quorum)
    }
}

impl Report {
    /// Row 10: mirror A's start-up against the goal, then the Quorum's.
    pub fn print_restarts(&self) {
        for (i, (who, r, goal)) in [
            ("mirror A", &self.restart_a, true),
            ("Quorum", &self.restart_quorum, false),
        ]
        .into_iter()
        .enumerate()
        {
            row(Row {
                num: if i == 0 { "10" } else { "" },
                what: &format!("{who} start-up: start -> lookup answered found"),
                value: format!("{:.3} s", r.found),
                base: format!("listening after {:.3} s", r.listening),
                ratio: None,
                goal: if goal { "<= 5 s" } else { "" },
                met: goal.then_some(r.found <= STARTUP_GOAL),
            });
            println!(
                "   {who}: SIGTERM -> exit {:.3} s ({}); {} refusals (no_head) before the answer; \
                 answered with {} (seq {}; status seq {}); VmRSS {:.1} MiB, VmHWM {:.1} MiB then",
                r.stop,
                r.exit,
                r.refusals,
                if r.restored {
                    "the head it held before the stop, restored from its log"
                } else {
                    "a head received or signed after the start"
                },
                r.head_seq,
                r.seq,
                mib(r.memory.rss),
                mib(r.memory.hwm)
            );
        }
    }
}
