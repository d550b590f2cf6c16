//! Helpers the integration tests share: scratch directories that clean up
//! after themselves, child processes that are always stopped by their PID
//! (even when a test panics), a bounded runner for the `onions-hs` binary,
//! and a real `tor` serving an onion service with the network disabled, so
//! that tests get the key files Tor itself writes.
//!
//! Every wait here is bounded; nothing here mocks Tor or the binaries.

// Each test file compiles this module on its own and uses only some helpers.
#![allow(dead_code)]

pub mod liar;
pub mod servers;
pub mod tor;
pub mod tornet;

use std::ffi::OsStr;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `onions-hs` binary Cargo built for these tests.
pub const ONIONS_HS: &str = env!("CARGO_BIN_EXE_onions-hs");

/// How long an `onions-hs` run may take before the test fails.
pub const HS_LIMIT: Duration = Duration::from_secs(60);

/// How long `tor` may take to write its onion-service keys.
pub const TOR_LIMIT: Duration = Duration::from_secs(60);

/// A fresh directory under the system temp dir, removed with its contents
/// when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a uniquely named directory; `label` makes it recognisable.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "onions-test-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

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

/// Reads a pipe to its end on a thread of its own, so a chatty child can
/// never block on a full pipe.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `onions-hs` with `args` (in the temp dir, so a stray default state
/// file never lands in the source tree) and returns its exit status, stdout
/// and stderr. Fails the test if it runs longer than `limit`; the process is
/// killed either way.
pub fn run_hs_within<I, S>(args: I, limit: Duration) -> (ExitStatus, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let mut child = Command::new(ONIONS_HS)
        .args(&args)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {ONIONS_HS}: {e}"));
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let mut guard = ChildGuard::new(child, "onions-hs");
    let status = guard.wait_within(limit);
    drop(guard);
    let (stdout, stderr) = (
        stdout.join().expect("stdout reader"),
        stderr.join().expect("stderr reader"),
    );
    match status {
        Some(status) => (status, stdout, stderr),
        None => panic!(
            "onions-hs {args:?} still ran after {limit:?} and was killed\nstdout: {stdout}\nstderr: {stderr}"
        ),
    }
}

/// Runs `onions-hs` with `args`, allowing it [`HS_LIMIT`].
pub fn run_hs<I, S>(args: I) -> (ExitStatus, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_hs_within(args, HS_LIMIT)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind an ephemeral port on 127.0.0.1")
}

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
fn make_private_dir(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

/// Asserts the way every onions program fails: a non-zero exit (not a
/// signal), exactly one line on stderr, no panic, nothing on stdout, and a
/// message that contains every one of `needles`. Returns the line.
pub fn assert_one_line_failure(
    what: &str,
    (status, stdout, stderr): &(ExitStatus, String, String),
    needles: &[&str],
) -> String {
    assert!(
        !status.success() && status.code().is_some(),
        "{what}: expected a non-zero exit, got {status}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stdout.contains("panicked"),
        "{what}: panicked\nstderr: {stderr}"
    );
    assert!(
        stderr.ends_with('\n') && stderr.matches('\n').count() == 1,
        "{what}: expected exactly one line on stderr, got {stderr:?}"
    );
    assert!(
        stdout.is_empty(),
        "{what}: expected nothing on stdout, got {stdout:?}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{what}: stderr should mention {needle:?}: {stderr:?}"
        );
    }
    stderr.trim_end().to_owned()
}
