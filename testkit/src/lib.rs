//! The one kit the integration tests (tests/) and the benchmarks
//! (benches/) share: scratch directories, child processes stopped by their
//! PID (also when a test panics), free ports on 127.0.0.x, real
//! `onions-server` processes and a line-protocol client ([`servers`]), the
//! checks of their answers every test file makes ([`checks`]), a client for
//! the benchmarks ([`line`]), the records they load servers with
//! ([`records`]), their redis baseline ([`redis`]) and order statistics
//! ([`stats`]),
//! lying servers ([`liar`]), a real `tor` ([`tor`]), one STREAM-event
//! watcher ([`streams`]), and the private Tor network of `scripts/tornet` ([`tornet`]).
//!
//! Every wait here is bounded; nothing here mocks Tor or the binaries.
//!
//! The binaries under test are found with [`bins`]: by default beside the
//! test or benchmark executable (where Cargo puts both), or as given once
//! with [`init`] and [`bins!`] from the crate whose targets they are.

pub mod checks;
pub mod liar;
pub mod line;
pub mod process;
pub mod records;
pub mod redis;
pub mod servers;
pub mod stats;
pub mod streams;
pub mod tor;
pub mod tornet;

pub use process::{ChildGuard, Proc};

use std::ffi::OsStr;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long an `onions-hs` run may take before the test fails.
pub const HS_LIMIT: Duration = Duration::from_secs(60);

// -------------------------------------------------------------- binaries

/// Where the onions binaries under test are.
#[derive(Debug, Clone)]
pub struct Bins {
    /// `onions-server`.
    pub server: PathBuf,
    /// `onions-hs`.
    pub hs: PathBuf,
    /// `onions-client`.
    pub client: PathBuf,
}

/// The binaries Cargo built for the calling test or benchmark, from its
/// `CARGO_BIN_EXE_*` (which only the onions crate's own targets see).
#[macro_export]
macro_rules! bins {
    () => {
        $crate::Bins {
            server: env!("CARGO_BIN_EXE_onions-server").into(),
            hs: env!("CARGO_BIN_EXE_onions-hs").into(),
            client: env!("CARGO_BIN_EXE_onions-client").into(),
        }
    };
}

static BINS: OnceLock<Bins> = OnceLock::new();

/// Sets where the binaries are, before any helper starts one; a later
/// call is ignored.
pub fn init(bins: Bins) {
    let _ = BINS.set(bins);
}

/// Where the binaries are: as given to [`init`], or else beside this
/// executable (Cargo puts tests and benchmarks in `target/PROFILE/deps/`
/// and the binaries in `target/PROFILE/`).
pub fn bins() -> &'static Bins {
    BINS.get_or_init(|| {
        let exe = std::env::current_exe().expect("the path of this executable");
        let mut dir = exe
            .parent()
            .expect("an executable in a directory")
            .to_owned();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let bins = Bins {
            server: dir.join("onions-server"),
            hs: dir.join("onions-hs"),
            client: dir.join("onions-client"),
        };
        for bin in [&bins.server, &bins.hs, &bins.client] {
            assert!(
                bin.is_file(),
                "{} is missing: build the binaries (cargo build), or call \
                 testkit::init(testkit::bins!()) first",
                bin.display()
            );
        }
        bins
    })
}

/// The onions source tree (this kit lives in its `testkit/`).
pub fn project_dir() -> PathBuf {
    let kit = Path::new(env!("CARGO_MANIFEST_DIR"));
    kit.parent().unwrap_or(kit).to_owned()
}

/// The `onions-server` a benchmark runs: `ONIONS_BENCH_SERVER` if set
/// and not empty (another build, such as one with symbols to profile),
/// else the release build `target/release/onions-server`.
pub fn bench_server() -> PathBuf {
    std::env::var_os("ONIONS_BENCH_SERVER")
        .filter(|s| !s.is_empty())
        .map_or_else(
            || project_dir().join("target/release/onions-server"),
            PathBuf::from,
        )
}

/// Where `tool` is on PATH, if anywhere.
pub fn find_on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// A source file of `binary` (the library under `src/`, and its own
/// `src/bin/NAME.rs`) modified after it was built: a benchmark of a stale
/// build says so.
pub fn newer_source(binary: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok()?;
    let program = binary.file_name()?.to_string_lossy().into_owned();
    let src = project_dir().join("src");
    let own = src.join("bin").join(format!("{program}.rs"));
    let mut pending = vec![src.clone()];
    let mut files = Vec::new();
    // Bounded: the source tree is small; stop after a few thousand entries.
    for _ in 0..10_000 {
        let Some(dir) = pending.pop() else {
            break;
        };
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.parent() != Some(&src.join("bin")) || path == own {
                files.push(path);
            }
        }
    }
    files.into_iter().find(|f| {
        std::fs::metadata(f)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t > built)
    })
}

// ----------------------------------------------------------- directories

/// A fresh directory under the system temp dir, removed with its contents
/// when dropped.
pub struct TempDir {
    path: PathBuf,
    keep_on_failure: bool,
}

impl TempDir {
    /// Creates a uniquely named directory; `label` makes it recognisable.
    pub fn new(label: &str) -> TempDir {
        TempDir::create(label, false)
    }

    /// The same, but kept when the test is failing (its path printed), so
    /// the logs and screenshots in it can be read.
    pub fn keeping(label: &str) -> TempDir {
        TempDir::create(label, true)
    }

    fn create(label: &str, keep_on_failure: bool) -> TempDir {
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
        TempDir {
            path,
            keep_on_failure,
        }
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
        if self.keep_on_failure && std::thread::panicking() {
            eprintln!(
                "test failed: its files (logs, screenshots, the network's DIR) are kept in {}",
                self.path.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

// --------------------------------------------------------------- programs

/// Reads a pipe to its end on a thread of its own, so a chatty child can
/// never block on a full pipe.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `command` (stdin empty, stdout and stderr captured) and returns
/// its exit status, stdout and stderr. Fails the test if it runs longer
/// than `limit`; the process is killed either way.
pub fn run_within(mut command: Command, limit: Duration) -> (ExitStatus, String, String) {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let mut guard = ChildGuard::new(child, what.clone());
    let status = guard.wait_within(limit);
    drop(guard);
    let (stdout, stderr) = (
        stdout.join().expect("stdout reader"),
        stderr.join().expect("stderr reader"),
    );
    match status {
        Some(status) => (status, stdout, stderr),
        None => panic!(
            "{what} still ran after {limit:?} and was killed\nstdout: {stdout}\nstderr: {stderr}"
        ),
    }
}

/// Runs `onions-hs` with `args` (in the temp dir, so a stray default state
/// file never lands in the source tree), allowing it `limit`; see
/// [`run_within`].
pub fn run_hs_within<I, S>(args: I, limit: Duration) -> (ExitStatus, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(&bins().hs);
    command.args(args).current_dir(std::env::temp_dir());
    run_within(command, limit)
}

/// Runs `onions-hs` with `args`, allowing it [`HS_LIMIT`].
pub fn run_hs<I, S>(args: I) -> (ExitStatus, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_hs_within(args, HS_LIMIT)
}

// ----------------------------------------------------------------- ports

/// A port on `ip` (127.0.0.x) that was free a moment ago.
pub fn free_port_on(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind an ephemeral port on {ip}: {e}"))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

// ------------------------------------------------------------ randomness

/// A small, fast, seeded pseudo-random sequence (xorshift64*), for the
/// benchmarks' choices of what to ask: repeatable, not for keys.
pub struct XorShift(u64);

impl XorShift {
    /// The sequence for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((u128::from(x) * n as u128) >> 64) as usize
    }
}

// ------------------------------------------------------------------ bytes

/// `bytes` in lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// -------------------------------------------------------------- failures

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
