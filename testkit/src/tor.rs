//! A real `tor`: one serving an onion service with the network disabled,
//! so that tests get the key files Tor itself writes
//! ([`start_tor_hidden_service`]); one for the client-daemon tests
//! ([`TestTor`]), raw SOCKS5 clients whose streams
//! can be told apart by their source address, and the `onions-client`
//! binary as a child process with its log in a file.
//!
//! The tor never reaches a network: it uses one bridge on a closed loopback
//! port (Tor's SOCKS listener does not open with `DisableNetwork 1`), so no
//! circuit is ever built. It accepts both its cookie and a password on the
//! control port. Every wait here is bounded, and every process is stopped
//! by its PID.

use crate::streams::Watcher;
use crate::{bins, free_port, ChildGuard, TempDir};
use onions::tor::control::{Auth, ControlAddr, ControlConnection};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long `tor` may take to write its onion-service keys.
pub const TOR_LIMIT: Duration = Duration::from_secs(60);

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

/// Fails the test, with the way out, unless `tor` can be started.
pub fn require_tor() {
    match Command::new("tor")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("`tor --version` failed ({status}); reinstall Debian's tor package"),
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "`tor` is not on PATH: install Debian's tor package (apt-get install -y tor; \
             scripts/test installs it)"
        ),
        Err(e) => panic!("cannot run `tor`: {e}; install Debian's tor package"),
    }
}

/// Starts a real `tor` in `dir` with one onion service and the network
/// disabled, and waits until it has written the service's `hostname` and
/// `hs_ed25519_secret_key`. Returns the running tor and the
/// `HiddenServiceDir`.
pub fn start_tor_hidden_service(dir: &Path) -> (ChildGuard, PathBuf) {
    require_tor();
    let data_dir = dir.join("tor-data");
    let hs_dir = dir.join("hs");
    make_private_dir(&data_dir);
    make_private_dir(&hs_dir);
    let torrc = dir.join("torrc");
    let log = dir.join("tor.log");
    let config = format!(
        "DataDirectory {}\n\
         HiddenServiceDir {}\n\
         HiddenServicePort 80 127.0.0.1:{}\n\
         DisableNetwork 1\n\
         SocksPort 0\n\
         Log notice stderr\n\
         RunAsDaemon 0\n",
        data_dir.display(),
        hs_dir.display(),
        free_port()
    );
    std::fs::write(&torrc, config).expect("cannot write torrc");
    let log_file = std::fs::File::create(&log).expect("cannot create tor.log");
    let child = Command::new("tor")
        .arg("-f")
        .arg(&torrc)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start tor: {e}; install Debian's tor package"));
    let mut tor = ChildGuard::new(child, "tor");
    let hostname = hs_dir.join("hostname");
    let secret = hs_dir.join("hs_ed25519_secret_key");
    let deadline = Instant::now() + TOR_LIMIT;
    loop {
        let host_ready = std::fs::read_to_string(&hostname)
            .map(|h| h.trim_end().ends_with(".onion"))
            .unwrap_or(false);
        let key_ready = std::fs::metadata(&secret)
            .map(|m| m.len() == 96)
            .unwrap_or(false);
        if host_ready && key_ready {
            return (tor, hs_dir);
        }
        if let Some(status) = tor.try_wait() {
            panic!(
                "tor exited ({status}) before writing its onion-service keys; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if Instant::now() >= deadline {
            panic!(
                "tor did not write {} and {} within {TOR_LIMIT:?}; its log:\n{}",
                hostname.display(),
                secret.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Creates `path` with mode 0700, as Tor demands of its directories.
pub fn make_private_dir(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

/// How a [`TestTor`] lets controllers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorAuth {
    /// The cookie (SAFECOOKIE/COOKIE) and the given password.
    Both(&'static str),
    /// The cookie only.
    Cookie,
    /// The given password only.
    Password(&'static str),
}

/// A running tor with a SOCKS port and control ports on 127.0.0.1 and on a
/// Unix socket, letting controllers in as its [`TorAuth`] says.
pub struct TestTor {
    // First, so that tor is stopped before its directory is removed.
    tor: Option<ChildGuard>,
    /// Its directory: torrc, data/, ctl/sock, tor.log.
    pub dir: TempDir,
    /// The SOCKS port.
    pub socks: SocketAddr,
    /// The control port.
    pub control: SocketAddr,
    auth: TorAuth,
}

impl TestTor {
    /// Starts a tor that takes the cookie and [`TOR_PASSWORD`], and waits
    /// until its ports accept and its cookie exists.
    pub fn start() -> TestTor {
        TestTor::start_with(TorAuth::Both(TOR_PASSWORD))
    }

    /// Starts a tor that lets controllers in as `auth` says, and waits until
    /// its ports accept (and its cookie exists, if it takes one).
    pub fn start_with(auth: TorAuth) -> TestTor {
        require_tor();
        let dir = TempDir::new("tor");
        for sub in ["data", "ctl"] {
            make_private_dir(&dir.join(sub));
        }
        std::fs::write(dir.join("empty"), b"").expect("cannot write an empty GeoIP file");
        let socks: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let control: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let auth_lines = match auth {
            TorAuth::Both(password) => format!(
                "CookieAuthentication 1\nHashedControlPassword {}",
                hash_password(password)
            ),
            TorAuth::Cookie => "CookieAuthentication 1".to_owned(),
            TorAuth::Password(password) => {
                format!("HashedControlPassword {}", hash_password(password))
            }
        };
        let torrc = format!(
            "DataDirectory {data}\n\
             SocksPort {socks}\n\
             ControlPort {control}\n\
             ControlPort unix:{unix}\n\
             {auth_lines}\n\
             UseBridges 1\n\
             Bridge 127.0.0.1:{closed}\n\
             GeoIPFile {empty}\n\
             GeoIPv6File {empty}\n\
             Log notice file {log}\n\
             RunAsDaemon 0\n",
            data = dir.join("data").display(),
            unix = dir.join("ctl/sock").display(),
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
            auth,
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
            let cookie_ready = matches!(self.auth, TorAuth::Password(_))
                || std::fs::metadata(self.cookie()).is_ok_and(|m| m.len() == 32);
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

    /// The control port on the Unix socket.
    pub fn unix_addr(&self) -> ControlAddr {
        ControlAddr::Unix(self.dir.join("ctl/sock"))
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

    /// A [`Watcher`] of STREAM events on a connection of the test's own,
    /// waiting up to [`EVENT_LIMIT`] for each.
    pub fn watcher(&self) -> Watcher {
        Watcher::on(self.controller(), EVENT_LIMIT)
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

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
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
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bins().client.display()));
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
        .unwrap_or_else(|e| panic!("cannot start {} --release: {e}", bins().client.display()));
    let mut guard = ChildGuard::new(child, "onions-client --release");
    let status = guard.wait_within(STOP_LIMIT);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        panic!("onions-client --release still ran after {STOP_LIMIT:?}:\n{text}")
    });
    (status, text)
}

fn client_command(args: &[String], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(&bins().client);
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
