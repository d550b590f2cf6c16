//! What a run of the resolution benchmark uses, read from the environment
//! and checked before any work (`ONIONS_BENCH_FETCHES`,
//! `ONIONS_BENCH_WORK`, `TORNET_BASE_PORT`, `TORNET_HTTP_PORT`), and
//! printed first.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The release binaries used.
const PROGRAMS: [&str; 3] = ["onions-server", "onions-client", "onions-hs"];
/// Rounds when `ONIONS_BENCH_FETCHES` is unset or empty.
const DEFAULT_FETCHES: usize = 50;
/// Most rounds accepted.
const MAX_FETCHES: usize = 1000;
/// Proof of work when `ONIONS_BENCH_WORK` is unset or empty.
const DEFAULT_WORK: u64 = 10;
/// Most proof of work accepted (each bit doubles a claim's time).
const MAX_WORK: u64 = 16;
/// The private network's first port when `TORNET_BASE_PORT` is unset.
const DEFAULT_BASE_PORT: u16 = 16100;

/// What a run uses: from the environment, checked before any work.
pub struct Settings {
    /// Measured rounds, one fetch of each kind a round.
    pub fetches: usize,
    /// Proof of work of the claims and the Quorum's minimum.
    pub work: u64,
    /// The private network's first port.
    pub base_port: u16,
    /// Its web servers' port.
    pub http_port: u16,
    /// Where the release binaries are.
    pub bin: PathBuf,
    /// `scripts/tornet`.
    pub scripts: PathBuf,
}

impl Settings {
    /// Reads the environment; exits with a message if a value is wrong or
    /// a binary is missing.
    pub fn from_env() -> Settings {
        let fetches = env_number(
            "ONIONS_BENCH_FETCHES",
            DEFAULT_FETCHES as u64,
            1,
            MAX_FETCHES as u64,
        );
        let work = env_number("ONIONS_BENCH_WORK", DEFAULT_WORK, 0, MAX_WORK);
        let base_port = env_number("TORNET_BASE_PORT", DEFAULT_BASE_PORT.into(), 1024, 65486);
        let http_port = env_number("TORNET_HTTP_PORT", base_port + 80, 1024, 65535);
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bin = root.join("target/release");
        for program in PROGRAMS {
            if !bin.join(program).is_file() {
                fail(&format!(
                    "{} is missing: build it with `cargo build --release --bins` \
                     (scripts/bench-resolution does)",
                    bin.join(program).display()
                ));
            }
        }
        let scripts = root.join("scripts/tornet");
        Settings {
            fetches: fetches as usize,
            work,
            base_port: base_port as u16,
            http_port: http_port as u16,
            bin,
            scripts,
        }
    }

    /// The run's first lines: rounds, ports, binaries, a stale build.
    pub fn print(&self) {
        println!(
            "onions resolution benchmark: {} rounds of one fetch of each kind, claims at work {}",
            self.fetches, self.work
        );
        println!(
            "private Tor network on loopback: ports {}-{}, web servers on port {}",
            self.base_port,
            self.base_port + 49,
            self.http_port
        );
        println!("binaries: {}", self.bin.display());
        for program in PROGRAMS {
            if let Some(newer) = testkit::newer_source(&self.bin.join(program)) {
                println!(
                    "WARNING: {} is newer than {program}; run `cargo build --release --bins`",
                    newer.display()
                );
            }
        }
        println!();
    }

    /// A command running the release binary `name`.
    pub fn program(&self, name: &str) -> Command {
        Command::new(self.bin.join(name))
    }
}

/// A whole number from the environment, `default` when unset or empty.
fn env_number(key: &str, default: u64, min: u64, max: u64) -> u64 {
    match std::env::var(key).unwrap_or_default() {
        text if text.is_empty() => default,
        text => text
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .unwrap_or_else(|| {
                fail(&format!(
                    "{key}={text:?}: expected a number from {min} to {max}"
                ))
            }),
    }
}

/// Prints `message` and exits with a failure status (only before any
/// process is started: exiting skips the guards).
fn fail(message: &str) -> ! {
    eprintln!("bench resolution: {message}");
    std::process::exit(2)
}
