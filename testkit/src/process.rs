//! Child processes stopped and reaped by their PID: [`ChildGuard`], killed
//! when dropped (also when the test that started it panics), and [`Proc`],
//! a guard with its log in a file that is stopped with SIGTERM first, with
//! its CPU time and memory from /proc; also the caller's own CPU time and
//! the machine's load, which the benchmarks print.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a process may take to stop after SIGTERM before SIGKILL.
pub const STOP_LIMIT: Duration = Duration::from_secs(15);

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(20);

/// A child process that is killed (by its PID) and reaped when dropped,
/// also when the test that started it panics.
pub struct ChildGuard {
    child: Child,
    what: String,
}

impl ChildGuard {
    /// Takes charge of `child`; `what` names it in failure messages.
    pub fn new(child: Child, what: impl Into<String>) -> ChildGuard {
        ChildGuard {
            child,
            what: what.into(),
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has already ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .unwrap_or_else(|e| panic!("cannot poll {} (pid {}): {e}", self.what, self.id()))
    }

    /// Waits at most `limit` for the process to end; `None` if it did not.
    pub fn wait_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // `Child::kill` signals this PID only while it has not been reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// PIDs of children not yet reaped, so that a panic kills them even if
/// the panic strategy were to abort before the guards drop.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Makes a panic kill every child not yet reaped, then run `extra` (for
/// what else the benchmark started, such as a Tor network).
pub fn install_panic_hook(extra: fn()) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        if let Ok(children) = CHILDREN.lock() {
            for &pid in children.iter() {
                // SAFETY: each PID is our own child, not yet reaped (it is
                // removed from the list when reaped), so it names no other
                // process.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        }
        extra();
    }));
}

/// A child process with its output in a log file, stopped (SIGTERM, then
/// SIGKILL) and reaped by its PID when dropped; a [`ChildGuard`] that the
/// kernel also kills if the caller dies without dropping it.
pub struct Proc {
    guard: ChildGuard,
    /// What it is, for messages.
    pub what: String,
    log: PathBuf,
    reaped: bool,
    /// How it ended, once reaped.
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `command` with stdout and stderr going to `log`.
    pub fn spawn(mut command: Command, what: &str, log: &Path) -> Proc {
        let file =
            File::create(log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let copy = file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot dup {}: {e}", log.display()));
        // SAFETY: the closure runs in the forked child before exec and only
        // calls prctl, which is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                // The kernel kills the child if this benchmark dies without
                // running its guards (SIGKILL, an abort).
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
        let child = command
            .stdin(Stdio::null())
            .stdout(copy)
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        children.push(child.id());
        Proc {
            guard: ChildGuard::new(child, what),
            what: what.to_owned(),
            log: log.to_owned(),
            reaped: false,
            status: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.guard.id()
    }

    /// The exit status if the process has ended (reaping it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.reaped {
            return None;
        }
        match self.guard.child.try_wait() {
            Ok(Some(status)) => {
                self.status = Some(status);
                self.forget();
                Some(status)
            }
            Ok(None) => None,
            Err(e) => panic!("cannot poll {} (pid {}): {e}", self.what, self.pid()),
        }
    }

    fn forget(&mut self) {
        self.reaped = true;
        let pid = self.pid();
        let mut children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
        children.retain(|&p| p != pid);
    }

    /// SIGTERM, a bounded wait, then SIGKILL. Returns how the process
    /// ended (`None` if it was reaped before without a status).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if self.reaped || self.exited().is_some() {
            return self.status;
        }
        // SAFETY: our own child, not yet reaped, so the PID is still ours.
        unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if self.reaped || self.exited().is_some() {
                return self.status;
            }
            std::thread::sleep(POLL);
        }
        eprintln!(
            "{}: {} (pid {}) ignored SIGTERM for {STOP_LIMIT:?}; killing it",
            std::env::args().next().unwrap_or_default(),
            self.what,
            self.pid()
        );
        let _ = self.guard.child.kill();
        self.status = self.guard.child.wait().ok();
        self.forget();
        self.status
    }

    /// Waits (bounded) for the process to exit; panics with its log if it
    /// fails or runs over `limit`. Returns its output.
    pub fn finish(mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.exited() {
                break status;
            }
            if Instant::now() >= deadline {
                self.stop();
                panic!(
                    "{} ran over {limit:?}; its output ends:\n{}",
                    self.what,
                    self.log_tail()
                );
            }
            std::thread::sleep(POLL);
        };
        let text = self.log_tail();
        assert!(
            status.success(),
            "{} failed ({status}); its output:\n{text}",
            self.what
        );
        text
    }

    /// The end of the process's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4096);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// Panics, with the log, unless the process still runs.
    pub fn check_running(&mut self) {
        if let Some(status) = self.exited() {
            panic!(
                "{} exited ({status}); its log ends:\n{}",
                self.what,
                self.log_tail()
            );
        }
    }

    /// Waits (bounded) until the log holds `text`.
    pub fn wait_log(&mut self, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(text) {
                return;
            }
            self.check_running();
            assert!(
                Instant::now() < deadline,
                "{} did not log {text:?} within {limit:?}; its log ends:\n{}",
                self.what,
                self.log_tail()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Starts a server `command` on a free port of `ip` (its flags plus
    /// `--listen` and `--state-dir state`, creating it), logging next to
    /// `state`, and waits (bounded by `limit`) until it listens: how the
    /// benchmarks start `onions-server`.
    pub fn start_server(
        mut command: Command,
        label: &str,
        ip: &str,
        state: &Path,
        limit: Duration,
    ) -> (Proc, SocketAddr) {
        std::fs::create_dir_all(state)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", state.display()));
        let addr: SocketAddr = format!("{ip}:{}", crate::free_port_on(ip))
            .parse()
            .expect("an IPv4 socket address");
        command
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--state-dir")
            .arg(state);
        let mut proc = Proc::spawn(
            command,
            &format!("{label} on {addr}"),
            &state.with_extension("log"),
        );
        proc.wait_listening(addr, limit);
        (proc, addr)
    }

    /// Waits (bounded) until `addr` accepts connections; panics, with the
    /// log, if the process exits first or `limit` runs out.
    pub fn wait_listening(&mut self, addr: SocketAddr, limit: Duration) {
        let deadline = Instant::now() + limit;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            self.check_running();
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {addr} within {limit:?}; its log ends:\n{}",
                self.what,
                self.log_tail()
            );
            std::thread::sleep(POLL);
        }
    }

    /// User plus system CPU seconds so far, from /proc/PID/stat.
    pub fn cpu_secs(&self) -> f64 {
        let path = format!("/proc/{}/stat", self.pid());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // Fields after the parenthesised command name, which may hold spaces:
        // state is field 3, utime field 14 and stime field 15.
        let rest = &text[text.rfind(')').unwrap_or_else(|| panic!("{path}: no ')'")) + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| -> u64 {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .unwrap_or_else(|| panic!("{path}: field {} unreadable", i + 3))
        };
        (ticks(11) + ticks(12)) as f64 / clock_ticks()
    }

    /// User plus system CPU seconds of each of the process's threads so
    /// far, summed by thread name, largest first (threads that ended are
    /// not counted).
    pub fn thread_cpu_secs(&self) -> Vec<(String, f64)> {
        let dir = format!("/proc/{}/task", self.pid());
        let mut by_name: Vec<(String, f64)> = Vec::new();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (text.find('('), text.rfind(')')) else {
                continue;
            };
            let name = text[open + 1..close].to_owned();
            let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
            let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            let (Some(user), Some(system)) = (ticks(11), ticks(12)) else {
                continue;
            };
            let secs = (user + system) as f64 / clock_ticks();
            match by_name.iter_mut().find(|(n, _)| *n == name) {
                Some((_, total)) => *total += secs,
                None => by_name.push((name, secs)),
            }
        }
        by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
        by_name
    }

    /// Read and write system calls so far (`syscr` and `syscw` of
    /// /proc/PID/io: file reads and writes, and the reads that drain a
    /// wake-up, not socket `recv`/`send`), for a benchmark's profile.
    pub fn io_calls(&self) -> (u64, u64) {
        let path = format!("/proc/{}/io", self.pid());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{path}: no {name}"))
        };
        (field("syscr"), field("syscw"))
    }

    /// Context switches of every thread so far (voluntary and not), for
    /// a benchmark's profile: each hand-off between threads costs some.
    pub fn context_switches(&self) -> u64 {
        let dir = format!("/proc/{}/task", self.pid());
        let mut total = 0;
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path().join("status")) else {
                continue;
            };
            total += text
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
        total
    }

    /// [`Proc::thread_cpu_secs`] as one line, for benchmark notes.
    pub fn thread_cpu_text(&self) -> String {
        self.thread_cpu_secs()
            .into_iter()
            .filter(|(_, secs)| *secs >= 0.05)
            .map(|(name, secs)| format!("{name} {secs:.1} s"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A `kB` field of /proc/PID/status (such as `VmRSS` or `VmHWM`), in KiB.
    pub fn status_kib(&self, field: &str) -> u64 {
        let path = format!("/proc/{}/status", self.pid());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{path}: no {field}"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// User plus system CPU seconds of `who` (`RUSAGE_SELF`: this process,
/// every thread; `RUSAGE_CHILDREN`: its reaped children).
fn rusage_secs(who: libc::c_int) -> f64 {
    // SAFETY: an all-zero rusage is a valid value, and getrusage only
    // writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// User plus system CPU seconds this benchmark process has used so far.
pub fn own_cpu_secs() -> f64 {
    rusage_secs(libc::RUSAGE_SELF)
}

/// User plus system CPU seconds of this process's children reaped so far.
pub fn children_cpu_secs() -> f64 {
    rusage_secs(libc::RUSAGE_CHILDREN)
}

/// The machine's load averages (1, 5 and 15 minutes) from /proc/loadavg,
/// as text: other work on the machine skews every figure.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Clock ticks per second, as /proc/PID/stat counts CPU time.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(ticks > 0, "sysconf(_SC_CLK_TCK) failed");
    ticks as f64
}
