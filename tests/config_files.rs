//! Config files (`--config FILE`), with the real binaries: `onions-server`
//! starts as a Quorum and as a mirror from a file of `flag-name = value`
//! lines and answers `status` with what the file said; a flag given on the
//! command line wins over the file, also for the repeatable `--quorum-key`;
//! `onions-client` and `onions-hs claim` read theirs the same way; and every
//! bad file (unknown key, bad line, bad value, unreadable) stops a program
//! with one line naming the file, the line and what is wrong.

use onions::keys::SigningKey;
use onions::onion::OnionAddress;
use onions::wire::{Id, Reply, Request, ServerRole, Status};
use serde_json::Value;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use testkit::servers::{owner, print_key, record, Client, Server};
use testkit::{assert_one_line_failure, ChildGuard, TempDir};

/// The `onions-client` binary Cargo built for these tests.
const ONIONS_CLIENT: &str = env!("CARGO_BIN_EXE_onions-client");
const ONIONS_SERVER: &str = env!("CARGO_BIN_EXE_onions-server");
const ONIONS_HS: &str = env!("CARGO_BIN_EXE_onions-hs");

/// How long a program that should fail or finish at once may run.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// How long a server may take to listen.
const START_LIMIT: Duration = Duration::from_secs(30);

/// Writes `text` to `name` in `dir` and returns the path.
fn write_file(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// A `program` command with no Tor settings or log level from the
/// environment the tests run in, started in the temp dir.
fn command(program: &str, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .env_remove("RUST_LOG");
    for (key, _) in std::env::vars() {
        if key.starts_with("TOR_") {
            command.env_remove(key);
        }
    }
    command
}

/// Reads a pipe to its end on a thread of its own.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `program` with `args` to its end (at most [`RUN_LIMIT`]) and
/// returns its exit status, stdout and stderr.
fn run(program: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = command(program, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let mut guard = ChildGuard::new(child, program);
    let status = guard.wait_within(RUN_LIMIT);
    drop(guard);
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let status = status.unwrap_or_else(|| {
        panic!(
            "{program} {args:?} still ran after {RUN_LIMIT:?}\nstdout: {stdout}\nstderr: {stderr}"
        )
    });
    (status, stdout, stderr)
}

/// A server started with exactly `args` (no flags added), listening on
/// `addr`, its log in `log`.
struct Started {
    guard: ChildGuard,
    addr: SocketAddr,
    log: PathBuf,
}

impl Started {
    fn new(args: &[&str], addr: SocketAddr, log: PathBuf) -> Started {
        let log_file = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let child = command(ONIONS_SERVER, args)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {ONIONS_SERVER}: {e}"));
        let mut started = Started {
            guard: ChildGuard::new(child, format!("onions-server {args:?}")),
            addr,
            log,
        };
        let deadline = Instant::now() + START_LIMIT;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = started.guard.try_wait() {
                panic!(
                    "onions-server {args:?} exited ({status}) before listening on {addr}:\n{}",
                    started.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "onions-server {args:?} did not listen on {addr} within {START_LIMIT:?}:\n{}",
                started.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        started
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn status(&self) -> Status {
        let reply = Client::connect(self.addr).request(&Request::Status {
            id: Id::Text("s".into()),
        });
        match reply {
            Reply::Status { status, .. } => *status,
            other => panic!("server on {} answered status with {other}", self.addr),
        }
    }

    /// Stops the server with SIGTERM and expects exit 0.
    fn stop(mut self) {
        // SAFETY: signals our own child, which has not been reaped.
        unsafe { libc::kill(self.guard.id() as libc::pid_t, libc::SIGTERM) };
        let status = self
            .guard
            .wait_within(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("server on {} ignored SIGTERM", self.addr));
        assert!(status.success(), "{status}\n{}", self.log());
    }
}

fn loopback_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], testkit::free_port_on("127.0.0.1")))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

#[test]
fn a_quorum_starts_from_a_config_file_and_explicit_flags_win() {
    let tmp = TempDir::new("config-quorum");
    let state = tmp.join("quorum");
    let in_file = loopback_addr();
    let conf = write_file(
        &tmp,
        "quorum.conf",
        &format!(
            "# The Quorum, as a package would run it.\n\
             \n\
             role = quorum\n\
             listen = {in_file}\n\
             state-dir = {}\n\
             min-work = 7\n\
             log-level = debug\n",
            state.display()
        ),
    );
    let conf = path(&conf);

    let quorum = Started::new(&["--config", conf], in_file, tmp.join("q1.log"));
    let status = quorum.status();
    assert_eq!(status.role, ServerRole::Quorum, "{status}");
    assert_eq!(status.min_work, 7, "{status}");
    assert!(
        quorum.log().contains(&format!("flags from {conf}")),
        "the log names the config file:\n{}",
        quorum.log()
    );
    quorum.stop();

    // --print-key finds the state directory in the file too.
    let (status, stdout, stderr) = run(ONIONS_SERVER, &["--print-key", "--config", conf]);
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout.trim(), print_key(&state));

    // Flags on the command line win, before or after --config.
    let explicit = loopback_addr();
    let explicit_text = explicit.to_string();
    let quorum = Started::new(
        &[
            "--listen",
            &explicit_text,
            "--config",
            conf,
            "--min-work",
            "3",
        ],
        explicit,
        tmp.join("q2.log"),
    );
    let status = quorum.status();
    assert_eq!(status.min_work, 3, "{status}");
    assert!(
        TcpStream::connect_timeout(&in_file, Duration::from_millis(500)).is_err(),
        "the file's --listen {in_file} should have been overridden"
    );
    quorum.stop();
}

#[test]
fn a_mirror_from_a_config_file_replicates_and_one_quorum_key_flag_replaces_the_files() {
    let tmp = TempDir::new("config-mirror");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let other = owner(90).public().to_base64();
    let listen = loopback_addr();
    let mirror_conf = |name: &str, keys: &[&str]| {
        let mut text = format!(
            "role = mirror\nlisten = {listen}\nstate-dir = {}\nupstream = {}\n",
            tmp.join("mirror").display(),
            quorum.addr
        );
        for k in keys {
            text.push_str(&format!("quorum-key = {k}\n"));
        }
        write_file(&tmp, name, &text)
    };

    // Both keys from the file; the mirror replicates what the Quorum takes.
    let both = mirror_conf("both.conf", &[&key, &other]);
    let mirror = Started::new(&["--config", path(&both)], listen, tmp.join("m1.log"));
    let status = mirror.status();
    assert_eq!(status.role, ServerRole::Mirror, "{status}");
    assert_eq!(status.quorum_keys, vec![key.clone(), other], "{status}");
    let reply = quorum
        .client()
        .put(&record(&owner(91), "configured.tor", 1, 0, &[]));
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    // Replicated, and answerable: a head covering the record matched the
    // mirror's audit.
    let deadline = Instant::now() + Duration::from_secs(30);
    while mirror
        .status()
        .audit
        .and_then(|a| a.matched)
        .is_none_or(|h| h.seq < 1)
    {
        assert!(
            Instant::now() < deadline,
            "mirror did not replicate:\n{}",
            mirror.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let found = Client::connect(listen).lookup("configured.tor");
    assert!(
        matches!(&found, Reply::Found { record, .. } if record.name.as_str() == "configured.tor"),
        "{found}"
    );
    mirror.stop();

    // A bad key in the file is an error naming its line ...
    let bad = mirror_conf("bad.conf", &[&key, "not-base64"]);
    let bad_line = format!("{}:6: --quorum-key \"not-base64\"", bad.display());
    let result = run(ONIONS_SERVER, &["--config", path(&bad)]);
    assert_one_line_failure("bad quorum-key line", &result, &[&bad_line]);
    assert_eq!(result.0.code(), Some(1));

    // ... unless the command line gives --quorum-key: then none of the
    // file's quorum-key lines count.
    let mirror = Started::new(
        &["--config", path(&bad), "--quorum-key", &key],
        listen,
        tmp.join("m2.log"),
    );
    let status = mirror.status();
    assert_eq!(status.quorum_keys, vec![key], "{status}");
    assert_eq!(status.seq, 1, "{status}");
    mirror.stop();
}

#[test]
fn bad_server_config_files_fail_on_one_line_naming_file_and_line() {
    let tmp = TempDir::new("config-bad");
    let state = tmp.join("state");
    let good = format!(
        "role = quorum\nstate-dir = {}\nlisten = 127.0.0.1:1\n",
        state.display()
    );
    // (file text, exit status, what the line must say)
    let cases: Vec<(String, i32, Vec<&str>)> = vec![
        (
            format!("{good}# fine\nlisten-on = 127.0.0.1\n"),
            2,
            vec![":5: unknown key \"listen-on\""],
        ),
        (
            format!("{good}min-work 3\n"),
            2,
            vec![":4: expected \"flag-name = value\"", "min-work 3"],
        ),
        (
            format!("{good}listen = 127.0.0.1:2\n"),
            2,
            vec![":4: listen is set twice (first on line 3)"],
        ),
        (
            format!("{good}print-key = true\n"),
            2,
            vec![":4: print-key is for the command line only"],
        ),
        (
            format!("{good}--workers = 2\n"),
            2,
            vec![":4: write the flag name without --"],
        ),
        (
            format!("{good}workers =\n"),
            2,
            vec![":4: workers has no value"],
        ),
        (
            format!("{good}min-work = lots\n"),
            2,
            vec![":4: ", "'--min-work'", "'lots'"],
        ),
        (
            format!(
                "role = quorum\nstate-dir = {}\nlisten = nowhere\n",
                state.display()
            ),
            1,
            vec![":3: --listen \"nowhere\": expected an IPv4 address"],
        ),
        (
            format!("role = primary\nstate-dir = {}\n", state.display()),
            1,
            vec![":1: --role \"primary\": expected quorum or mirror"],
        ),
        (
            format!("{good}idle-timeout = 0\n"),
            1,
            vec![":4: --idle-timeout must be at least 1"],
        ),
    ];
    for (index, (text, code, needles)) in cases.iter().enumerate() {
        let conf = write_file(&tmp, &format!("bad{index}.conf"), text);
        let result = run(ONIONS_SERVER, &["--config", path(&conf)]);
        let what = format!("config {text:?}");
        let line = assert_one_line_failure(&what, &result, needles);
        assert!(
            line.starts_with(&format!("onions-server: {}:", conf.display())),
            "{what}: {line}"
        );
        assert_eq!(result.0.code(), Some(*code), "{what}: {line}");
    }
    assert!(
        !state.exists(),
        "nothing is created before every flag was checked"
    );

    let missing = tmp.join("missing.conf");
    let result = run(ONIONS_SERVER, &["--config", path(&missing)]);
    assert_one_line_failure(
        "missing file",
        &result,
        &[&format!(
            "onions-server: {}: cannot read",
            missing.display()
        )],
    );
    assert_eq!(result.0.code(), Some(2));

    let not_utf8 = tmp.join("latin1.conf");
    std::fs::write(&not_utf8, b"role = quorum\nstate-dir = /tmp/caf\xe9\n").unwrap();
    let result = run(ONIONS_SERVER, &["--config", path(&not_utf8)]);
    assert_one_line_failure(
        "not UTF-8",
        &result,
        &[&format!("{}:2: not UTF-8 text", not_utf8.display())],
    );

    let result = run(ONIONS_SERVER, &["--config"]);
    assert_one_line_failure("--config alone", &result, &["--config needs a FILE"]);
}

#[test]
fn the_client_reads_its_config_file_and_flags_win() {
    let tmp = TempDir::new("config-client");
    let key = owner(1).public().to_base64();
    let refused = loopback_addr();
    let also_refused = loopback_addr();
    let conf = write_file(
        &tmp,
        "client.conf",
        &format!(
            "control = {refused}\n\
             mirror = 127.0.0.1:10054\n\
             mirror = not a mirror\n\
             quorum-key = {key}\n\
             direct = true\n"
        ),
    );
    let conf = path(&conf);

    // The file's second mirror is wrong, and the error names its line.
    let result = run(ONIONS_CLIENT, &["--config", conf]);
    assert_one_line_failure(
        "bad mirror line",
        &result,
        &[
            &format!("onions-client: {conf}:3: --mirror"),
            "not a mirror",
        ],
    );

    // --release needs only the control port: the file's is used ...
    let result = run(ONIONS_CLIENT, &["--release", "--config", conf]);
    assert_one_line_failure("release", &result, &[&refused.to_string()]);
    // ... unless the command line names another.
    let also = also_refused.to_string();
    let result = run(
        ONIONS_CLIENT,
        &["--release", "--config", conf, "--control", &also],
    );
    let line = assert_one_line_failure("release with --control", &result, &[&also]);
    assert!(!line.contains(&refused.to_string()), "{line}");

    let release_in_file = write_file(&tmp, "release.conf", "release = true\n");
    let result = run(ONIONS_CLIENT, &["--config", path(&release_in_file)]);
    assert_one_line_failure(
        "release in a file",
        &result,
        &[":1: release is for the command line only"],
    );
}

#[test]
fn onions_hs_claim_reads_its_config_file() {
    let tmp = TempDir::new("config-hs");
    onions::keys::init().unwrap();
    let key_file = tmp.join("hs_ed25519_secret_key");
    let service = SigningKey::from_seed(&[77; 32]);
    std::fs::write(&key_file, service.to_tor_file_bytes()).unwrap();
    let www = OnionAddress::from_key(owner(78).public()).to_string();
    let from_file = tmp.join("from-file.json");
    let conf = write_file(
        &tmp,
        "hs.conf",
        &format!(
            "# Renewal of configured.tor\n\
             name = configured.tor\n\
             key = {}\n\
             sub = www={www}\n\
             contact = \"  mail # not a comment \"\n\
             work = 0\n\
             lifetime = 2\n\
             dry-run = true\n\
             state = {}\n\
             out = {}\n",
            key_file.display(),
            tmp.join("serials").display(),
            from_file.display()
        ),
    );
    let conf = path(&conf);

    let (status, _, stderr) = run(ONIONS_HS, &["claim", "--config", conf]);
    assert!(status.success(), "{stderr}");
    let made: Value = serde_json::from_slice(&std::fs::read(&from_file).unwrap()).unwrap();
    assert_eq!(made["name"], "configured.tor", "{made}");
    assert_eq!(made["subdomains"]["www"], www.as_str(), "{made}");
    assert_eq!(made["contact"], "  mail # not a comment ", "{made}");
    assert_eq!(made["serial"], 1, "{made}");
    assert_eq!(
        made["expires"].as_u64().unwrap() - made["issued"].as_u64().unwrap(),
        2 * 86_400
    );
    let (status, stdout, stderr) = run(ONIONS_HS, &["verify", path(&from_file)]);
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.starts_with("valid record: configured.tor"),
        "{stdout}"
    );

    // The name and --out on the command line win; the serial rises.
    let explicit = tmp.join("explicit.json");
    let (status, _, stderr) = run(
        ONIONS_HS,
        &[
            "claim",
            "--config",
            conf,
            "explicit.tor",
            "--out",
            path(&explicit),
        ],
    );
    assert!(status.success(), "{stderr}");
    let made: Value = serde_json::from_slice(&std::fs::read(&explicit).unwrap()).unwrap();
    assert_eq!(made["name"], "explicit.tor", "{made}");
    assert_eq!(made["serial"], 2, "{made}");

    // A bad value names its line.
    let bad = write_file(
        &tmp,
        "bad-hs.conf",
        &format!(
            "name = configured.tor\nkey = {}\ndry-run = true\nlifetime = 40\n",
            key_file.display()
        ),
    );
    let result = run(ONIONS_HS, &["claim", "--config", path(&bad)]);
    assert_one_line_failure(
        "lifetime 40",
        &result,
        &[&format!("onions-hs: {}:4: --lifetime 40", bad.display())],
    );
    let bad_name = write_file(
        &tmp,
        "bad-name.conf",
        &format!(
            "name = Not_A_Name.tor\nkey = {}\ndry-run = true\n",
            key_file.display()
        ),
    );
    let result = run(ONIONS_HS, &["claim", "--config", path(&bad_name)]);
    assert_one_line_failure(
        "bad name",
        &result,
        &[&format!(
            "{}:1: name \"Not_A_Name.tor\"",
            bad_name.display()
        )],
    );
    let missing_key = tmp.join("no-such-key");
    let bad_key = write_file(
        &tmp,
        "bad-key.conf",
        &format!(
            "name = configured.tor\ndry-run = true\nkey = {}\n",
            missing_key.display()
        ),
    );
    let result = run(ONIONS_HS, &["claim", "--config", path(&bad_key)]);
    assert_one_line_failure(
        "missing key file",
        &result,
        &[&format!(
            "{}:3: {}: cannot read it",
            bad_key.display(),
            missing_key.display()
        )],
    );
    // Only claim takes --config.
    let result = run(ONIONS_HS, &["verify", path(&from_file), "--config", conf]);
    assert_one_line_failure("verify --config", &result, &["--config"]);
}

/// A file shipped in `etc/onions/`.
fn shipped(name: &str) -> String {
    format!("{}/etc/onions/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_shipped_example_files_are_valid() {
    let tmp = TempDir::new("config-shipped");
    for (file, role) in [("quorum.conf", "quorum"), ("mirror.conf", "mirror")] {
        // --print-key reads the whole file but needs only state-dir, which
        // the command line moves out of /var/lib.
        let state = tmp.join(role);
        let (status, stdout, stderr) = run(
            ONIONS_SERVER,
            &[
                "--print-key",
                "--config",
                &shipped(file),
                "--state-dir",
                path(&state),
            ],
        );
        assert!(status.success(), "{file}: {stderr}");
        assert_eq!(stdout.trim(), print_key(&state), "{file}");
    }
    // The mirror starts once it is told its upstream and key.
    let quorum = Server::quorum("127.0.0.1", &tmp.join("q"), &[]);
    let key = print_key(&quorum.state);
    let listen = loopback_addr();
    let (listen_text, upstream) = (listen.to_string(), quorum.addr.to_string());
    let mirror = Started::new(
        &[
            "--config",
            &shipped("mirror.conf"),
            "--state-dir",
            path(&tmp.join("m")),
            "--listen",
            &listen_text,
            "--upstream",
            &upstream,
            "--quorum-key",
            &key,
        ],
        listen,
        tmp.join("m.log"),
    );
    assert_eq!(mirror.status().role, ServerRole::Mirror);
    mirror.stop();

    // The client gets past its file to Tor's control port.
    let control = loopback_addr().to_string();
    let result = run(
        ONIONS_CLIENT,
        &[
            "--release",
            "--config",
            &shipped("client.conf"),
            "--control",
            &control,
        ],
    );
    assert_one_line_failure("client.conf", &result, &[&control, "does not answer"]);

    // onions-hs claim takes hs.conf once the required values are given.
    onions::keys::init().unwrap();
    let key_file = tmp.join("hs_ed25519_secret_key");
    std::fs::write(
        &key_file,
        SigningKey::from_seed(&[79; 32]).to_tor_file_bytes(),
    )
    .unwrap();
    let out = tmp.join("claim.json");
    let (status, _, stderr) = run(
        ONIONS_HS,
        &[
            "claim",
            "--config",
            &shipped("hs.conf"),
            "shipped.tor",
            "--key",
            path(&key_file),
            "--dry-run",
            "--work",
            "0",
            "--state",
            path(&tmp.join("serials")),
            "--out",
            path(&out),
        ],
    );
    assert!(status.success(), "hs.conf: {stderr}");
    assert!(out.exists());
}
