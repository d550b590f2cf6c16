//! A real `tor` for the client-daemon tests, a STREAM-event watcher on a
//! control connection of the test's own, raw SOCKS5 clients whose streams
//! can be told apart by their source address, and the `onions-client`
//! binary as a child process with its log in a file.
//!
//! The tor never reaches a network: it uses one bridge on a closed loopback
//! port (Tor's SOCKS listener does not open with `DisableNetwork 1`), so no
//! circuit is ever built. It accepts both its cookie and a password on the
//! control port. Every wait here is bounded, and every process is stopped
//! by its PID.

use super::{free_port, require_tor, ChildGuard, TempDir};
use crossbeam_channel::Receiver;
use onions::tor::control::{
    Auth, ControlAddr, ControlConnection, Event, StreamEvent, StreamId, StreamStatus,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `onions-client` binary Cargo built for these tests.
pub const ONIONS_CLIENT: &str = env!("CARGO_BIN_EXE_onions-client");

/// The control password of every [`TestTor`] (a space and a quote, so that
/// quoting is exercised).
pub const TOR_PASSWORD: &str = "open \"sesame\"";

/// How long tor may take to open its ports.
pub const TOR_START_LIMIT: Duration = Duration::from_secs(30);

/// How long a process may take to exit after a signal.
pub const STOP_LIMIT: Duration = Duration::from_secs(20);

/// How long an expected STREAM event or log line may take.
pub const EVENT_LIMIT: Duration = Duration::from_secs(20);

/// How long a SOCKS reply that is due may take.
pub const REPLY_LIMIT: Duration = Duration::from_secs(20);

/// How long to wait for a control connection or a control reply.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------- tor

/// A running tor with a SOCKS port and a control port on 127.0.0.1 that
/// accepts the cookie (SAFECOOKIE/COOKIE) and [`TOR_PASSWORD`].
pub struct TestTor {
    // First, so that tor is stopped before its directory is removed.
    tor: Option<ChildGuard>,
    /// Its directory: torrc, data/, tor.log.
    pub dir: TempDir,
    /// The SOCKS port.
    pub socks: SocketAddr,
    /// The control port.
    pub control: SocketAddr,
}

impl TestTor {
    /// Starts a tor and waits until its ports accept and its cookie exists.
    pub fn start() -> TestTor {
        require_tor();
        let dir = TempDir::new("tor-client");
        make_private_dir(&dir.join("data"));
        std::fs::write(dir.join("empty"), b"").expect("cannot write an empty GeoIP file");
        let socks: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let control: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let torrc = format!(
            "DataDirectory {data}\n\
             SocksPort {socks}\n\
             ControlPort {control}\n\
             CookieAuthentication 1\n\
             HashedControlPassword {hash}\n\
             UseBridges 1\n\
             Bridge 127.0.0.1:{closed}\n\
             GeoIPFile {empty}\n\
             GeoIPv6File {empty}\n\
             Log notice file {log}\n\
             RunAsDaemon 0\n",
            data = dir.join("data").display(),
            hash = hash_password(TOR_PASSWORD),
            closed = free_port(),
            empty = dir.join("empty").display(),
            log = dir.join("tor.log").display(),
        );
        std::fs::write(dir.join("torrc"), torrc).expect("cannot write torrc");
        let mut tor = TestTor {
            tor: None,
            dir,
            socks,
            control,
        };
        tor.spawn();
        tor
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.cookie());
        let child = Command::new("tor")
            .arg("-f")
            .arg(self.dir.join("torrc"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tor: {e}; install Debian's tor package"));
        self.tor = Some(ChildGuard::new(child, "tor"));
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + TOR_START_LIMIT;
        loop {
            let guard = self.tor.as_mut().expect("tor is running");
            if let Some(status) = guard.try_wait() {
                panic!("tor exited ({status}); its log:\n{}", self.log());
            }
            let cookie_ready = std::fs::metadata(self.cookie()).is_ok_and(|m| m.len() == 32);
            if cookie_ready && accepts(self.socks) && accepts(self.control) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tor did not open its ports within {TOR_START_LIMIT:?}; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The control cookie file.
    pub fn cookie(&self) -> PathBuf {
        self.dir.join("data/control_auth_cookie")
    }

    /// The control address as the library takes it.
    pub fn control_addr(&self) -> ControlAddr {
        ControlAddr::Tcp(self.control)
    }

    /// Everything tor logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("tor.log")).unwrap_or_default()
    }

    /// A controller of the test's own, authenticated with the cookie.
    pub fn controller(&self) -> ControlConnection {
        ControlConnection::open(
            &self.control_addr(),
            &Auth::CookieFile(self.cookie()),
            CONTROL_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("cannot open tor's control port: {e}\n{}", self.log()))
    }

    /// `GETCONF __LeaveStreamsUnattached` on a fresh connection.
    pub fn leave_streams_unattached(&self) -> String {
        let values = self
            .controller()
            .get_conf("__LeaveStreamsUnattached")
            .expect("GETCONF __LeaveStreamsUnattached");
        values.join(",")
    }

    /// Stops tor with SIGTERM and waits (bounded) for it to exit.
    pub fn stop(&mut self) {
        let mut guard = self.tor.take().expect("tor is running");
        // SAFETY: signals our own child, which has not been reaped.
        unsafe { libc::kill(guard.id() as libc::pid_t, libc::SIGTERM) };
        if guard.wait_within(STOP_LIMIT).is_none() {
            panic!("tor ignored SIGTERM for {STOP_LIMIT:?}");
        }
    }

    /// Starts tor again with the same torrc: the same ports and data
    /// directory (a new cookie).
    pub fn restart(&mut self) {
        assert!(self.tor.is_none(), "restart needs a stopped tor");
        self.spawn();
    }
}

/// `tor --hash-password`, as a person sets up HashedControlPassword.
fn hash_password(password: &str) -> String {
    let output = Command::new("tor")
        .args(["--hash-password", password])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run tor --hash-password: {e}; install Debian's tor"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find(|l| l.starts_with("16:"))
        .unwrap_or_else(|| panic!("tor --hash-password printed no hash: {stdout}"))
        .to_owned()
}

fn make_private_dir(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).expect("chmod 700");
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

// ------------------------------------------------------------------ events

/// A control connection of the test's own that receives every STREAM event
/// (Tor sends events to each controller that asked) and keeps them all.
pub struct Watcher {
    /// The connection, for GETCONF, GETINFO and probes.
    pub conn: ControlConnection,
    events: Receiver<Event>,
    /// Every STREAM event received so far, in order.
    pub seen: Vec<StreamEvent>,
}

impl Watcher {
    /// Subscribes to STREAM events on a new connection to `tor`.
    pub fn new(tor: &TestTor) -> Watcher {
        let conn = tor.controller();
        let events = conn.events();
        conn.set_events(&["STREAM"]).expect("SETEVENTS STREAM");
        Watcher {
            conn,
            events,
            seen: Vec::new(),
        }
    }

    /// Takes every event that has arrived, waiting at most `wait` for the
    /// first.
    fn pump(&mut self, wait: Duration) {
        let mut next = self.events.recv_timeout(wait).ok();
        while let Some(event) = next {
            if let Event::Stream(event) = event {
                self.seen.push(event);
            }
            next = self.events.try_recv().ok();
        }
    }

    /// Waits (bounded) until `check` finds something in the events so far.
    pub fn wait_for<T>(&mut self, what: &str, check: impl Fn(&[StreamEvent]) -> Option<T>) -> T {
        let deadline = Instant::now() + EVENT_LIMIT;
        loop {
            if let Some(found) = check(&self.seen) {
                return found;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                panic!(
                    "no STREAM event showing {what} within {EVENT_LIMIT:?}; saw:\n{}",
                    self.dump()
                );
            };
            self.pump(left.min(Duration::from_millis(200)));
        }
    }

    /// Sends a SOCKS `CONNECT host:port` to `proxy` and returns it with
    /// its stream (see [`Watcher::open`]).
    pub fn connect(
        &mut self,
        proxy: SocketAddr,
        host: &str,
        port: u16,
    ) -> (SocksRequest, StreamId) {
        self.open(|| SocksRequest::connect(proxy, host, port))
    }

    /// Sends a SOCKS `RESOLVE host` (Tor's 0xF0) to `proxy` and returns it
    /// with its stream.
    pub fn resolve(&mut self, proxy: SocketAddr, host: &str) -> (SocksRequest, StreamId) {
        self.open(|| SocksRequest::resolve(proxy, host))
    }

    /// Sends a SOCKS request and finds its stream: the first NEW or
    /// NEWRESOLVE event after the request whose `SOURCE_ADDR` is the
    /// client's address (a port may be reused by a later client, so events
    /// from before the request do not count).
    fn open(&mut self, send: impl FnOnce() -> SocksRequest) -> (SocksRequest, StreamId) {
        self.pump(Duration::ZERO);
        let mark = self.seen.len();
        let request = send();
        let source = request.source.to_string();
        let what = format!("a new stream from {source} ({})", request.what);
        let id = self.wait_for(&what, |seen| {
            seen[mark..]
                .iter()
                .find(|e| {
                    matches!(e.status, StreamStatus::New | StreamStatus::NewResolve)
                        && e.source_addr() == Some(source.as_str())
                })
                .map(|e| e.id.clone())
        });
        (request, id)
    }

    /// Waits (bounded) for an event of stream `id` that matches `check`.
    pub fn wait_event(
        &mut self,
        id: &StreamId,
        what: &str,
        check: impl Fn(&StreamEvent) -> bool,
    ) -> StreamEvent {
        self.wait_for(&format!("{what} for stream {id}"), |seen| {
            seen.iter().find(|e| e.id == *id && check(e)).cloned()
        })
    }

    /// The events of stream `id` so far.
    pub fn events_of(&self, id: &StreamId) -> Vec<StreamEvent> {
        self.seen.iter().filter(|e| e.id == *id).cloned().collect()
    }

    /// The events so far, one per line, for failure messages.
    pub fn dump(&self) -> String {
        self.seen
            .iter()
            .map(|e| {
                let extras: Vec<String> =
                    e.extras.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(
                    "  {} {:?} circ={} {}:{} {}",
                    e.id,
                    e.status,
                    e.circuit,
                    e.target_host,
                    e.target_port,
                    extras.join(" ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

// ------------------------------------------------------------ SOCKS clients

/// How a SOCKS request ended, as far as the client can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocksReply {
    /// Reply code 0.
    Granted,
    /// A non-zero reply code (RFC 1928; 4 is host unreachable).
    Refused(u8),
    /// No reply yet.
    Pending,
    /// Tor closed the connection without a reply.
    Closed,
}

/// A SOCKS5 request sent to Tor, whose reply is read later. The target is a
/// host name, so Tor (and the daemon) see the name.
pub struct SocksRequest {
    stream: TcpStream,
    /// The client's address: the `SOURCE_ADDR` of its stream's NEW event.
    pub source: SocketAddr,
    /// What was asked, for messages.
    pub what: String,
}

impl SocksRequest {
    /// Sends `CONNECT host:port` (by name) to the SOCKS port `proxy`.
    pub fn connect(proxy: SocketAddr, host: &str, port: u16) -> SocksRequest {
        SocksRequest::send(proxy, 1, host, port, format!("CONNECT {host}:{port}"))
    }

    /// Sends Tor's extension `RESOLVE host` (command 0xF0) to `proxy`.
    pub fn resolve(proxy: SocketAddr, host: &str) -> SocksRequest {
        SocksRequest::send(proxy, 0xf0, host, 0, format!("RESOLVE {host}"))
    }

    fn send(proxy: SocketAddr, command: u8, host: &str, port: u16, what: String) -> SocksRequest {
        let mut stream = TcpStream::connect_timeout(&proxy, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("cannot reach tor's SOCKS port {proxy}: {e}"));
        stream.set_read_timeout(Some(REPLY_LIMIT)).unwrap();
        stream.set_write_timeout(Some(REPLY_LIMIT)).unwrap();
        stream.write_all(&[5, 1, 0]).expect("SOCKS greeting");
        let mut choice = [0u8; 2];
        stream
            .read_exact(&mut choice)
            .expect("tor answers the SOCKS greeting");
        assert_eq!(choice, [5, 0], "tor's SOCKS port takes no-auth");
        let host_len = u8::try_from(host.len()).expect("a short host name");
        let mut request = vec![5, command, 0, 3, host_len];
        request.extend_from_slice(host.as_bytes());
        request.extend_from_slice(&port.to_be_bytes());
        stream.write_all(&request).expect("SOCKS request");
        let source = stream.local_addr().expect("local address");
        SocksRequest {
            stream,
            source,
            what,
        }
    }

    /// Reads the reply, waiting at most `wait`.
    pub fn reply_within(&mut self, wait: Duration) -> SocksReply {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut head = [0u8; 2];
        match self.stream.read_exact(&mut head) {
            Ok(()) if head[1] == 0 => SocksReply::Granted,
            Ok(()) => SocksReply::Refused(head[1]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                SocksReply::Pending
            }
            Err(_) => SocksReply::Closed,
        }
    }

    /// Reads a reply that is due (bounded by [`REPLY_LIMIT`]).
    pub fn reply(&mut self) -> SocksReply {
        self.reply_within(REPLY_LIMIT)
    }
}

// ----------------------------------------------------------------- daemon

/// A running `onions-client`, its stderr in a log file; killed by its PID
/// when dropped.
pub struct Daemon {
    guard: ChildGuard,
    /// Its log file.
    pub log_path: PathBuf,
}

impl Daemon {
    /// Starts `onions-client` with `args` and, besides a clean environment
    /// (no `TOR_*` or `RUST_LOG` from the test's), `env`. Logs at debug
    /// level to `log`.
    pub fn start(log: &Path, args: &[String], env: &[(&str, &str)]) -> Daemon {
        let child = client_command(args, env)
            .arg("--log-level")
            .arg("debug")
            .stdout(Stdio::null())
            .stderr(log_file(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {ONIONS_CLIENT}: {e}"));
        Daemon {
            guard: ChildGuard::new(child, "onions-client"),
            log_path: log.to_owned(),
        }
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits (bounded) until the log has at least `count` lines containing
    /// every one of `needles`; returns those lines. Fails if the daemon
    /// exits first.
    pub fn wait_log(&mut self, needles: &[&str], count: usize) -> Vec<String> {
        let deadline = Instant::now() + EVENT_LIMIT;
        loop {
            let lines: Vec<String> = self
                .log()
                .lines()
                .filter(|l| needles.iter().all(|n| l.contains(n)))
                .map(str::to_owned)
                .collect();
            if lines.len() >= count {
                return lines;
            }
            if let Some(status) = self.guard.try_wait() {
                panic!(
                    "onions-client exited ({status}) before logging {count} x {needles:?}:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "onions-client did not log {count} x {needles:?} within {EVENT_LIMIT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for the daemon to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        self.guard
            .wait_within(EVENT_LIMIT)
            .unwrap_or_else(|| panic!("onions-client still runs:\n{}", self.log()))
    }

    /// True while the daemon runs.
    pub fn is_running(&mut self) -> bool {
        self.guard.try_wait().is_none()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.guard.wait_within(STOP_LIMIT).unwrap_or_else(|| {
            panic!(
                "onions-client ignored SIGTERM for {STOP_LIMIT:?}:\n{}",
                self.log()
            )
        })
    }

    /// Kills the daemon with SIGKILL (no cleanup at all) and reaps it.
    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        self.guard
            .wait_within(STOP_LIMIT)
            .expect("SIGKILL ends onions-client");
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: signals our own child, which has not been reaped.
        unsafe { libc::kill(self.guard.id() as libc::pid_t, signal) };
    }
}

/// Runs `onions-client --release` with `args` (how to reach Tor) and `env`;
/// returns its exit status and stderr. Fails the test if it runs longer
/// than [`STOP_LIMIT`].
pub fn release(dir: &Path, args: &[String], env: &[(&str, &str)]) -> (ExitStatus, String) {
    let log = dir.join("release.log");
    let child = client_command(args, env)
        .arg("--release")
        .stdout(Stdio::null())
        .stderr(log_file(&log))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {ONIONS_CLIENT} --release: {e}"));
    let mut guard = ChildGuard::new(child, "onions-client --release");
    let status = guard.wait_within(STOP_LIMIT);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        panic!("onions-client --release still ran after {STOP_LIMIT:?}:\n{text}")
    });
    (status, text)
}

fn client_command(args: &[String], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(ONIONS_CLIENT);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("TOR_") || key_text == "RUST_LOG" {
            command.env_remove(&key);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    command
}

fn log_file(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}
