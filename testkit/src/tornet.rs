//! The private Tor network of `scripts/tornet/start` for end-to-end tests:
//! started by the script (bounded, failing with the logs' tails), its
//! `DIR/env` parsed, and stopped by `scripts/tornet/stop` (which kills by
//! PID) when dropped. Also
//! bounded runs of programs (curl, python3, firefox) with their output in
//! files.
//!
//! Every wait here is bounded and every process is stopped by its PID.

use crate::streams::Watcher;
use crate::{project_dir, ChildGuard};
use onions::tor::control::{Auth, ControlAddr, ControlConnection, StreamEvent, StreamStatus};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Seconds the start script may wait for the pages (its `TORNET_WAIT`).
pub const TORNET_WAIT: u64 = 120;

/// How long the start script may run in all (key generation, then
/// [`TORNET_WAIT`], then its own cleanup on failure).
pub const START_LIMIT: Duration = Duration::from_secs(TORNET_WAIT + 40);

/// How long `scripts/tornet/stop` may take (it waits 5 s, then kills).
pub const STOP_LIMIT: Duration = Duration::from_secs(30);

/// How long an expected STREAM event may take on the network.
pub const EVENT_LIMIT: Duration = Duration::from_secs(30);

/// The base ports tried in turn: the first whose ports are all free is used.
pub const BASE_PORTS: [u16; 5] = [17000, 17100, 17200, 17300, 17400];

/// The script that starts the network.
pub fn start_script() -> PathBuf {
    project_dir().join("scripts/tornet/start")
}

/// The script that stops it.
pub fn stop_script() -> PathBuf {
    project_dir().join("scripts/tornet/stop")
}

// ------------------------------------------------------------ bounded runs

/// How a bounded run of a program ended.
#[derive(Debug)]
pub struct Run {
    /// The exit status; `None` when it outlived its limit and was killed.
    pub status: Option<ExitStatus>,
    /// What it wrote to stdout.
    pub stdout: String,
    /// What it wrote to stderr.
    pub stderr: String,
    /// How long it ran.
    pub took: Duration,
}

impl Run {
    /// True when it exited 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The exit code, if it exited (not killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// A short account for failure messages.
    pub fn describe(&self) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "still running at its limit: killed".to_owned(),
        };
        format!(
            "{status} after {:.1} s\n--- stdout\n{}\n--- stderr\n{}",
            self.took.as_secs_f64(),
            tail(&self.stdout, 40),
            tail(&self.stderr, 40)
        )
    }
}

/// A program started in the background, its output going to files.
pub struct Running {
    guard: Option<ChildGuard>,
    pid: u32,
    group: bool,
    out: PathBuf,
    err: PathBuf,
    started: Instant,
    /// What was started, for messages.
    pub what: String,
}

static RUNS: AtomicU64 = AtomicU64::new(0);

/// Starts `program` with `args` in the background, stdout and stderr in
/// files under `dir`. With `group`, it leads a process group of its own, so
/// that a kill at its limit reaches the children it started (a browser's
/// content processes) too.
pub fn spawn<I, S>(
    dir: &Path,
    program: &str,
    args: I,
    envs: &[(&str, &OsStr)],
    group: bool,
) -> Running
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    use std::os::unix::process::CommandExt;
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let stem = Path::new(program)
        .file_name()
        .map_or_else(|| "run".to_owned(), |s| s.to_string_lossy().into_owned());
    let out = dir.join(format!("{stem}-{n}.out"));
    let err = dir.join(format!("{stem}-{n}.err"));
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let what = format!(
        "{program} {}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut command = Command::new(program);
    command
        .args(&args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(create(&out))
        .stderr(create(&err));
    if group {
        command.process_group(0);
    }
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let pid = child.id();
    Running {
        guard: Some(ChildGuard::new(child, what.clone())),
        pid,
        group,
        out,
        err,
        started: Instant::now(),
        what,
    }
}

/// Runs `program` with `args` in `dir`, allowing it `limit`; kills it (by
/// its PID) if it runs longer.
pub fn run<I, S>(dir: &Path, program: &str, args: I, limit: Duration) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    spawn(dir, program, args, &[], false).finish(limit)
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// True while it runs.
    pub fn is_running(&mut self) -> bool {
        self.guard
            .as_mut()
            .is_some_and(|guard| guard.try_wait().is_none())
    }

    /// Waits until it ends, at most `limit`; kills it if it does not.
    pub fn finish(mut self, limit: Duration) -> Run {
        let mut guard = self.guard.take().expect("not finished yet");
        let status = guard.wait_within(limit);
        if status.is_none() {
            self.kill_group();
        }
        drop(guard); // kills (by PID) and reaps
        Run {
            status,
            stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
            took: self.started.elapsed(),
        }
    }

    /// Sends SIGTERM, waits up to `limit`, then kills: for a script whose
    /// cleanup runs on SIGTERM.
    pub fn terminate(mut self, limit: Duration) -> Run {
        if self.is_running() {
            signal(self.pid, libc::SIGTERM);
        }
        self.finish(limit)
    }

    fn kill_group(&self) {
        if self.group {
            // The group this test made for the program (its PID is the
            // group's id): the program and what it started.
            // SAFETY: a signal to a process group this test created.
            unsafe { libc::kill(-(self.pid as libc::pid_t), libc::SIGKILL) };
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.guard.is_some() {
            self.kill_group();
        }
        // The guard, if still held, kills and reaps the process by its PID.
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: a signal to a child this test started and has not reaped.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

fn create(path: &Path) -> std::fs::File {
    std::fs::File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()))
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Fails the test, saying how to install it, unless `program` runs with
/// `--version`.
pub fn require_program(program: &str, package: &str) {
    let found = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match found {
        Ok(status) if status.success() => {}
        Ok(status) => {
            panic!("`{program} --version` failed ({status}); reinstall Debian's {package}")
        }
        Err(e) => panic!(
            "`{program}` cannot be run ({e}): install Debian's {package} package \
             (apt-get install -y {package}; scripts/setup installs it)"
        ),
    }
}

// ----------------------------------------------------------------- network

/// The ports a network uses, chosen by the test.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// `TORNET_BASE_PORT`: SOCKS BASE+1, control BASE+2, relays BASE+N.
    pub base: u16,
    /// `TORNET_HTTP_PORT`: the two web servers on 127.0.0.20 and .21.
    pub http: u16,
    /// `TORNET_QUORUM_PORT`: hs-quorum forwards to 127.0.0.1 there.
    pub quorum: u16,
    /// `TORNET_MIRROR_PORT`: hs-mirror forwards to 127.0.0.2 there.
    pub mirror: u16,
    /// `TORNET_LIAR_PORT`: hs-liar forwards to 127.0.0.3 there.
    pub liar: u16,
}

/// The first of [`BASE_PORTS`] whose every address the network binds is
/// free (another network or a demo may be running), with the web servers
/// on BASE+80.
pub fn free_base_port() -> (u16, u16) {
    for base in BASE_PORTS {
        let http = base + 80;
        let mut wanted = vec![
            ("127.0.0.1".to_owned(), base + 1),
            ("127.0.0.1".to_owned(), base + 2),
            ("127.0.0.20".to_owned(), http),
            ("127.0.0.21".to_owned(), http),
        ];
        for n in 11..=16 {
            wanted.push((format!("127.0.0.{n}"), base + n));
        }
        for n in 11..=13 {
            wanted.push((format!("127.0.0.{n}"), base + 20 + n));
        }
        if wanted
            .iter()
            .all(|(ip, port)| TcpListener::bind((ip.as_str(), *port)).is_ok())
        {
            return (base, http);
        }
    }
    panic!("the ports of every base in {BASE_PORTS:?} are in use: stop other tornets first");
}

/// A running private Tor network; stopped (by `scripts/tornet/stop`, which
/// kills by PID) when dropped.
pub struct Tornet {
    dir: PathBuf,
    /// `DIR/env`, unquoted.
    pub env: BTreeMap<String, String>,
    /// How long the start script took.
    pub took: Duration,
    /// What the start script printed.
    pub start_output: String,
    stopped: bool,
}

impl Tornet {
    /// Runs `scripts/tornet/start DIR` with `ports` (bounded by
    /// [`START_LIMIT`]) and reads `DIR/env`. On failure the test fails with
    /// the script's output and the tails of every node's log.
    pub fn start(dir: &Path, ports: Ports) -> Tornet {
        let mut net = Tornet {
            dir: dir.to_owned(),
            env: BTreeMap::new(),
            took: Duration::ZERO,
            start_output: String::new(),
            stopped: false,
        };
        let outputs = dir.parent().expect("DIR has a parent").join(format!(
            "{}-start",
            dir.file_name().unwrap().to_string_lossy()
        ));
        std::fs::create_dir_all(&outputs).expect("a directory for the start script's output");
        let text = |n: u16| n.to_string();
        let envs: Vec<(&str, String)> = vec![
            ("TORNET_BASE_PORT", text(ports.base)),
            ("TORNET_HTTP_PORT", text(ports.http)),
            ("TORNET_QUORUM_PORT", text(ports.quorum)),
            ("TORNET_MIRROR_PORT", text(ports.mirror)),
            ("TORNET_LIAR_PORT", text(ports.liar)),
            ("TORNET_WAIT", TORNET_WAIT.to_string()),
        ];
        let envs: Vec<(&str, &OsStr)> = envs.iter().map(|(k, v)| (*k, OsStr::new(v))).collect();
        let script = start_script();
        let mut running = spawn(&outputs, &script.to_string_lossy(), [dir], &envs, false);
        let started = Instant::now();
        let run = loop {
            if !running.is_running() {
                break running.finish(Duration::from_secs(1));
            }
            if started.elapsed() >= START_LIMIT {
                // SIGTERM lets the script print the logs and stop what it
                // started; whatever is left, Drop stops by DIR/pids.
                break running.terminate(Duration::from_secs(20));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        net.took = run.took;
        net.start_output = format!("{}{}", run.stdout, run.stderr);
        if !run.success() {
            panic!(
                "scripts/tornet/start {} did not bring the network up ({ports:?}): {}\n{}",
                dir.display(),
                run.describe(),
                net.log_tails(15)
            );
        }
        let env_file = dir.join("env");
        let env_text = std::fs::read_to_string(&env_file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", env_file.display()));
        net.env = parse_env(&env_text)
            .unwrap_or_else(|e| panic!("{}: {e}\n{env_text}", env_file.display()));
        for key in [
            "TORNET_SOCKS",
            "TORNET_CONTROL",
            "TORNET_COOKIE",
            "TORNET_ONION",
            "TORNET_ONION2",
            "TORNET_QUORUM_ONION",
            "TORNET_MIRROR_ONION",
            "TORNET_LIAR_ONION",
            "TORNET_HS_KEY",
        ] {
            assert!(
                net.env.contains_key(key),
                "{} lacks {key}:\n{env_text}",
                env_file.display()
            );
        }
        net
    }

    /// The network's directory (DIR).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A value of `DIR/env`.
    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{key} is not in {}/env", self.dir.display()))
    }

    /// The client's SOCKS port.
    pub fn socks(&self) -> SocketAddr {
        self.get("TORNET_SOCKS")
            .parse()
            .expect("TORNET_SOCKS is HOST:PORT")
    }

    /// The client's control port.
    pub fn control(&self) -> SocketAddr {
        self.get("TORNET_CONTROL")
            .parse()
            .expect("TORNET_CONTROL is HOST:PORT")
    }

    /// The client's control cookie.
    pub fn cookie(&self) -> PathBuf {
        PathBuf::from(self.get("TORNET_COOKIE"))
    }

    /// A control connection to the client tor, authenticated with the cookie.
    /// A [`Watcher`] of STREAM events on the client tor, waiting up to
    /// [`EVENT_LIMIT`] for each.
    pub fn watcher(&self) -> Watcher {
        Watcher::on(self.controller(), EVENT_LIMIT)
    }

    pub fn controller(&self) -> ControlConnection {
        ControlConnection::open(
            &ControlAddr::Tcp(self.control()),
            &Auth::CookieFile(self.cookie()),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("cannot open the client tor's control port: {e}"))
    }

    /// The last `lines` lines of every node's log.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path().join("log"))
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        logs.sort();
        logs.iter()
            .map(|log| {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                format!(
                    "--- {} (last {lines} lines)\n{}\n",
                    log.display(),
                    tail(&text, lines)
                )
            })
            .collect()
    }

    /// Runs `scripts/tornet/stop DIR` (bounded by [`STOP_LIMIT`]); returns
    /// what it printed. Idempotent.
    pub fn stop(&mut self) -> String {
        if self.stopped || !self.dir.join("pids").exists() {
            self.stopped = true;
            return String::new();
        }
        self.stopped = true;
        let outputs = self.dir.parent().unwrap_or(&self.dir).to_owned();
        let script = stop_script();
        let run = run(&outputs, &script.to_string_lossy(), [&self.dir], STOP_LIMIT);
        if !run.success() {
            eprintln!(
                "scripts/tornet/stop {}: {}",
                self.dir.display(),
                run.describe()
            );
        }
        run.stdout + &run.stderr
    }
}

impl Drop for Tornet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Parses `DIR/env`: one `KEY='VALUE'` a line, a quote inside VALUE written
/// as `'\''` (shell quoting).
pub fn parse_env(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, quoted) = line
            .split_once('=')
            .ok_or_else(|| format!("line {line:?} is not KEY='VALUE'"))?;
        let mut value = String::new();
        let mut rest = quoted;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("\\'") {
                value.push('\'');
                rest = after;
            } else if let Some(after) = rest.strip_prefix('\'') {
                let end = after
                    .find('\'')
                    .ok_or_else(|| format!("line {line:?}: unterminated quote"))?;
                value.push_str(&after[..end]);
                rest = &after[end + 1..];
            } else {
                return Err(format!("line {line:?}: value not single-quoted"));
            }
        }
        env.insert(key.to_owned(), value);
    }
    Ok(env)
}

/// One event on one line.
pub fn describe_event(e: &StreamEvent) -> String {
    let extras: Vec<String> = e
        .extras
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "ISO_FIELDS" | "NYM_EPOCH" | "SESSION_GROUP"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "  {} {:?} circ={} {}:{} {}",
        e.id,
        e.status,
        e.circuit,
        e.target_host,
        e.target_port,
        extras.join(" ")
    )
}

/// The statuses of `events`, in order.
pub fn statuses(events: &[StreamEvent]) -> Vec<StreamStatus> {
    events.iter().map(|e| e.status.clone()).collect()
}

// ------------------------------------------------------------------- curl

/// `curl --socks5-hostname SOCKS URL`: the name goes to Tor, as a browser
/// with remote DNS sends it. Bounded by `limit` (curl's `-m`, and a kill a
/// little later).
pub fn curl(dir: &Path, socks: SocketAddr, url: &str, limit: Duration) -> Run {
    spawn_curl(dir, socks, url, limit).finish(limit + Duration::from_secs(10))
}

/// [`curl`] in the background, for a fetch that is expected to wait.
pub fn spawn_curl(dir: &Path, socks: SocketAddr, url: &str, limit: Duration) -> Running {
    let max = limit.as_secs().max(1).to_string();
    spawn(
        dir,
        "curl",
        [
            "-sS",
            "--socks5-hostname",
            &socks.to_string(),
            "-m",
            &max,
            url,
        ],
        &[],
        false,
    )
}
