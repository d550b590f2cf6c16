//! Real `onions-server` processes on 127.0.0.x for the integration tests,
//! a line-protocol client, and records made with the library.
//!
//! Every server is a child process with its log in a file, stopped by its
//! PID when its guard drops; every wait is bounded.

use crate::{free_port_on, run_within, ChildGuard, TempDir};
use onions::attest::Attestation;
use onions::head::SignedHead;
use onions::keys::SigningKey;
use onions::name::{LookupName, RegisteredName, SubdomainKey};
use onions::onion::OnionAddress;
use onions::record::{Claim, Record};
use onions::wire::{Id, Reply, Request, Status};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start listening.
pub const START_LIMIT: Duration = Duration::from_secs(30);

/// How long one reply may take.
pub const REPLY_LIMIT: Duration = Duration::from_secs(30);

/// A running server.
pub struct Server {
    guard: ChildGuard,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state directory.
    pub state: PathBuf,
    log: PathBuf,
    args: Vec<String>,
}

impl Server {
    /// Starts a Quorum on `ip` with `extra` flags (min work 0 unless given).
    pub fn quorum(ip: &str, state: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["--role", "quorum"];
        if !extra.contains(&"--min-work") {
            args.extend(["--min-work", "0"]);
        }
        args.extend_from_slice(extra);
        Server::start(ip, state, &args)
    }

    /// Starts a mirror on `ip` replicating `upstream`, trusting `key`.
    pub fn mirror(
        ip: &str,
        state: &Path,
        upstream: SocketAddr,
        key: &str,
        extra: &[&str],
    ) -> Server {
        Server::mirror_of(ip, state, &upstream.to_string(), key, extra)
    }

    /// Starts a mirror on `ip` replicating `upstream` given as HOST:PORT
    /// (a .onion one goes through Tor), trusting `key`.
    pub fn mirror_of(ip: &str, state: &Path, upstream: &str, key: &str, extra: &[&str]) -> Server {
        let mut args = vec![
            "--role",
            "mirror",
            "--upstream",
            upstream,
            "--quorum-key",
            key,
        ];
        args.extend_from_slice(extra);
        Server::start(ip, state, &args)
    }

    /// Starts a Quorum listening on `addr` (a restart on the same address
    /// with other flags).
    pub fn quorum_at(addr: SocketAddr, state: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["--role", "quorum", "--min-work", "0"];
        args.extend_from_slice(extra);
        Server::start_at(addr, state, &args)
    }

    /// Starts a mirror listening on `addr` (known before it starts)
    /// replicating `upstream`, trusting `key`.
    pub fn mirror_at(
        addr: SocketAddr,
        state: &Path,
        upstream: SocketAddr,
        key: &str,
        extra: &[&str],
    ) -> Server {
        let upstream = upstream.to_string();
        let mut args = vec![
            "--role",
            "mirror",
            "--upstream",
            &upstream,
            "--quorum-key",
            key,
        ];
        args.extend_from_slice(extra);
        Server::start_at(addr, state, &args)
    }

    fn start(ip: &str, state: &Path, args: &[&str]) -> Server {
        let addr: SocketAddr = format!("{ip}:{}", free_port_on(ip)).parse().unwrap();
        Server::start_at(addr, state, args)
    }

    fn start_at(addr: SocketAddr, state: &Path, args: &[&str]) -> Server {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend([
            "--listen".into(),
            addr.to_string(),
            "--state-dir".into(),
            state.display().to_string(),
        ]);
        let log = state.with_extension(format!("{}.log", addr.port()));
        Server::spawn(addr, state, all, log)
    }

    fn spawn(addr: SocketAddr, state: &Path, args: Vec<String>, log: PathBuf) -> Server {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let child = Command::new(bins_server())
            .args(&args)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bins_server().display()));
        let mut server = Server {
            guard: ChildGuard::new(child, format!("onions-server on {addr}")),
            addr,
            state: state.to_owned(),
            log,
            args,
        };
        server.wait_listening();
        server
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + START_LIMIT;
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = self.guard.try_wait() {
                panic!(
                    "server on {} exited ({status}) before listening:\n{}",
                    self.addr,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "server on {} did not listen within {START_LIMIT:?}:\n{}",
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.guard.id()
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        // SAFETY: sends a signal to our own child, which has not been reaped.
        unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGKILL) };
        self.guard
            .wait_within(Duration::from_secs(10))
            .expect("SIGKILL ends the server");
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        // SAFETY: as in kill9.
        unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGTERM) };
        self.guard
            .wait_within(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("server on {} ignored SIGTERM:\n{}", self.addr, self.log()))
    }

    /// Sends `signal` (SIGTERM, SIGINT, ...) and waits (bounded) for the
    /// exit status.
    pub fn stop_with(&mut self, signal: libc::c_int) -> ExitStatus {
        // SAFETY: as in kill9.
        unsafe { libc::kill(self.pid() as libc::pid_t, signal) };
        self.guard
            .wait_within(Duration::from_secs(20))
            .unwrap_or_else(|| {
                panic!(
                    "server on {} ignored signal {signal}:\n{}",
                    self.addr,
                    self.log()
                )
            })
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.guard.try_wait().is_none()
    }

    /// Starts the same server again (same address, state and flags) after it stopped.
    pub fn restart(&mut self) {
        assert!(!self.is_running(), "restart needs a stopped server");
        let again = Server::spawn(
            self.addr,
            &self.state.clone(),
            self.args.clone(),
            self.log.clone(),
        );
        *self = again;
    }

    /// A new client connection.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// The server's status.
    pub fn status(&self) -> Status {
        match self.client().request(&Request::Status {
            id: Id::Text("s".into()),
        }) {
            Reply::Status { status, .. } => *status,
            other => panic!("server {} answered status with {other}", self.addr),
        }
    }

    /// Waits (bounded) until the server has applied records up to `seq`.
    pub fn wait_seq(&self, seq: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.status();
            if status.seq >= seq {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server {} stuck at {status} waiting for seq {seq}:\n{}",
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (bounded) until a mirror's upstream session is up.
    pub fn wait_upstream_up(&self, limit: Duration) {
        wait_until(
            &format!("mirror {} to connect upstream", self.addr),
            limit,
            || self.status().upstream.is_some_and(|u| u.connected),
        );
    }

    /// The head the server answers against: the Quorum's newest, a
    /// mirror's newest that matched its audit.
    pub fn current_head(&self) -> Option<SignedHead> {
        answering_head(&self.status()).cloned()
    }

    /// Waits (bounded) until the server answers against a head covering
    /// `seq`, and returns that head.
    pub fn wait_head(&self, seq: u64, limit: Duration) -> SignedHead {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(head) = self.current_head().filter(|h| h.seq >= seq) {
                return head;
            }
            assert!(
                Instant::now() < deadline,
                "server {} has no head covering seq {seq} after {limit:?}: {}\n{}",
                self.addr,
                self.status(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The head a server with `status` answers against: a Quorum's newest, a
/// mirror's newest that matched its audit.
pub fn answering_head(status: &Status) -> Option<&SignedHead> {
    match &status.audit {
        Some(audit) => audit.matched.as_ref(),
        None => status.head.as_ref(),
    }
}

/// The state directory `name` inside `tmp`, created.
pub fn state_dir(tmp: &TempDir, name: &str) -> PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir(&dir).unwrap();
    dir
}

/// How long `--print-key` may take.
pub const PRINT_KEY_LIMIT: Duration = Duration::from_secs(30);

/// The Quorum key of the state directory `state`, as `--print-key` prints it.
pub fn print_key(state: &Path) -> String {
    print_key_with(Command::new(bins_server()), state)
}

/// The same with the server run as `server` (another build, or under an
/// emulator): `server --print-key --state-dir STATE`, bounded.
pub fn print_key_with(mut server: Command, state: &Path) -> String {
    server.arg("--print-key").arg("--state-dir").arg(state);
    let (status, stdout, stderr) = run_within(server, PRINT_KEY_LIMIT);
    assert!(status.success(), "--print-key failed ({status}): {stderr}");
    stdout.trim().to_owned()
}

/// The public key of the witness key file `file` (created if missing),
/// as `--print-key` prints it for a mirror with state in `state`.
pub fn witness_key(file: &Path, state: &Path) -> String {
    let mut server = Command::new(bins_server());
    server.args(["--role", "mirror", "--witness-key"]).arg(file);
    print_key_with(server, state)
}

fn bins_server() -> &'static Path {
    &crate::bins().server
}

/// A line-protocol client with a bounded wait for each reply.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        stream.set_read_timeout(Some(REPLY_LIMIT)).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .expect("send to server");
    }

    /// Reads one line, without its newline; `None` if the server closed.
    pub fn read_line(&mut self) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) => None,
            Ok(_) => {
                assert_eq!(line.pop(), Some(b'\n'), "the server ended mid-line");
                Some(line)
            }
            Err(e) => panic!("no reply within {REPLY_LIMIT:?}: {e}"),
        }
    }

    /// Reads one reply; `None` if the server closed. A line that is not a
    /// well-formed reply fails the test.
    pub fn read(&mut self) -> Option<Reply> {
        let line = self.read_line()?;
        Some(Reply::parse(&line).unwrap_or_else(|e| {
            panic!(
                "server sent a bad reply {:?}: {e}",
                String::from_utf8_lossy(&line)
            )
        }))
    }

    /// Reads one line as JSON, for tests that look at a message's bytes.
    pub fn read_json(&mut self) -> Option<Value> {
        let line = self.read_line()?;
        Some(serde_json::from_slice(&line).unwrap_or_else(|e| {
            panic!(
                "server sent non-JSON {:?}: {e}",
                String::from_utf8_lossy(&line)
            )
        }))
    }

    /// Sends one request and returns the reply.
    pub fn request(&mut self, request: &Request) -> Reply {
        self.send_raw(&request.to_line());
        self.read().expect("server closed instead of replying")
    }

    /// Sends one line of JSON (a request, well formed or not) and returns
    /// the reply.
    pub fn request_json(&mut self, request: &Value) -> Reply {
        let mut line = serde_json::to_vec(request).unwrap();
        line.push(b'\n');
        self.send_raw(&line);
        self.read().expect("server closed instead of replying")
    }

    /// Sends a `put` of `record`.
    pub fn put(&mut self, record: &Record) -> Reply {
        self.request(&put_request(record))
    }

    /// Sends a `lookup` of `name`.
    pub fn lookup(&mut self, name: &str) -> Reply {
        self.request(&Request::Lookup {
            id: Id::Number(2),
            name: LookupName::from_user(name).unwrap(),
        })
    }

    /// Sends a `reverse` lookup of `onion`.
    pub fn reverse(&mut self, onion: &OnionAddress) -> Reply {
        self.request(&Request::Reverse {
            id: Id::Number(3),
            onion: *onion,
        })
    }
}

/// A `put` request of `record`.
pub fn put_request(record: &Record) -> Request {
    Request::Put {
        id: Id::Number(1),
        record: record.to_value(),
    }
}

/// A service key made from a one-byte seed, so tests can name owners.
pub fn owner(seed: u8) -> SigningKey {
    onions::keys::init().unwrap();
    SigningKey::from_seed(&[seed; 32])
}

/// `text` as a registered name; a bad one fails the test.
pub fn name(text: &str) -> RegisteredName {
    RegisteredName::parse(text).unwrap()
}

/// A key of its own for every (`tag`, `n`), its other bytes `fill`: a test
/// file that needs many owners picks its own `fill`, so no two share keys.
pub fn owner_key(fill: u8, tag: u8, n: u32) -> SigningKey {
    onions::keys::init().unwrap();
    let mut seed = [fill; 32];
    seed[0] = tag;
    seed[1..5].copy_from_slice(&n.to_le_bytes());
    SigningKey::from_seed(&seed)
}

/// The v3 address of a service key.
pub fn onion_of(key: &SigningKey) -> OnionAddress {
    OnionAddress::from_key(key.public())
}

/// A signed record for `name` by `key` with `serial`, issued now, valid a
/// day, with `work` bits done and optional subdomains.
pub fn record(
    key: &SigningKey,
    name: &str,
    serial: u64,
    work: u64,
    subs: &[(&str, &SigningKey)],
) -> Record {
    let name = RegisteredName::parse(name).unwrap();
    let subdomains: BTreeMap<SubdomainKey, OnionAddress> = subs
        .iter()
        .map(|(label, k)| {
            (
                SubdomainKey::parse(label, &name).unwrap(),
                OnionAddress::from_key(k.public()),
            )
        })
        .collect();
    let issued = onions::clock::now();
    let claim = Claim {
        name,
        subdomains,
        contact: String::new(),
        serial,
        issued,
        expires: issued + 86_400,
        work,
    };
    onions::operator::finish_record(claim, key, 2, Duration::from_millis(50), &mut |_| {}).unwrap()
}

/// A record for `name` by `key` that expires `secs` seconds from now.
pub fn short_lived(key: &SigningKey, name: &str, secs: u64) -> Record {
    let issued = onions::clock::now();
    let claim = Claim {
        name: RegisteredName::parse(name).unwrap(),
        subdomains: Default::default(),
        contact: String::new(),
        serial: 1,
        issued,
        expires: issued + secs,
        work: 0,
    };
    onions::operator::finish_record(claim, key, 1, Duration::from_millis(50), &mut |_| {}).unwrap()
}

/// Checks an `accepted` or `found` reply's attestation against the record
/// and the Quorum key; returns its seq.
pub fn attested_seq(reply: &Reply, record: &Record, quorum_key: &str) -> u64 {
    let attestation: &Attestation = match reply {
        Reply::Accepted { attestation, .. } | Reply::Found { attestation, .. } => attestation,
        other => panic!("expected an attestation, got {other}"),
    };
    assert_eq!(attestation.quorum.to_base64(), quorum_key);
    assert_eq!(attestation.record, record.id());
    assert!(attestation.signature_holds());
    attestation.seq
}

/// Waits (bounded) until `check` holds.
pub fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// Helpers added for tests/crash_recovery/ and tests/limits/.

impl Client {
    /// Connects to `addr`; `None` if nothing accepts there within 5 s (a
    /// server that is down).
    pub fn try_connect(addr: SocketAddr) -> Option<Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
        stream.set_read_timeout(Some(REPLY_LIMIT)).ok()?;
        Some(Client {
            reader: BufReader::new(stream),
        })
    }

    /// Sends one request and returns the reply, or `None` when the
    /// connection failed or closed first (a server that died). A reply
    /// that is not well formed still fails the test.
    pub fn try_request(&mut self, request: &Request) -> Option<Reply> {
        self.reader.get_mut().write_all(&request.to_line()).ok()?;
        let mut reply = Vec::new();
        match self.reader.read_until(b'\n', &mut reply) {
            Ok(0) | Err(_) => None,
            Ok(_) if reply.last() != Some(&b'\n') => None,
            Ok(_) => Some(Reply::parse(&reply).unwrap_or_else(|e| {
                panic!(
                    "server sent a bad reply {:?}: {e}",
                    String::from_utf8_lossy(&reply)
                )
            })),
        }
    }

    /// [`Client::try_request`] of a `put` of `record`.
    pub fn try_put(&mut self, record: &Record) -> Option<Reply> {
        self.try_request(&put_request(record))
    }
}

/// Lines of `server`'s log that contain every one of `needles`.
pub fn log_lines_with(server: &Server, needles: &[&str]) -> Vec<String> {
    server
        .log()
        .lines()
        .filter(|line| needles.iter().all(|n| line.contains(n)))
        .map(str::to_owned)
        .collect()
}
