//! What a run of the servers benchmark uses, read from the environment and
//! checked before any work starts (`ONIONS_BENCH_RECORDS`,
//! `ONIONS_BENCH_LOG_LEVEL`, `ONIONS_BENCH_SERVER`), and printed first.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use testkit::process;

/// Records when `ONIONS_BENCH_RECORDS` is unset or empty: 2^20.
const DEFAULT_RECORDS: usize = 1 << 20;
/// Most records accepted, to keep memory and time bounded.
const MAX_RECORDS: usize = 1 << 24;

/// What a run uses: from the environment, checked before any work.
pub struct Settings {
    /// Records the Quorum ingests and the mirrors replicate.
    pub records: usize,
    /// Cores of the machine.
    pub cores: usize,
    /// The `onions-server` binary run.
    pub server_bin: PathBuf,
    /// `--log-level` given to every server, if any.
    pub log_level: Option<String>,
}

impl Settings {
    /// Reads the environment; exits with a message if something is wrong
    /// or missing (the server binary, redis).
    pub fn from_env() -> Settings {
        let records = match std::env::var("ONIONS_BENCH_RECORDS").unwrap_or_default() {
            text if text.is_empty() => DEFAULT_RECORDS,
            text => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_RECORDS).contains(n))
                .unwrap_or_else(|| {
                    fail(&format!(
                        "ONIONS_BENCH_RECORDS={text:?}: expected a number of records from 1 to {MAX_RECORDS}"
                    ))
                }),
        };
        let log_level = std::env::var("ONIONS_BENCH_LOG_LEVEL")
            .ok()
            .filter(|l| !l.is_empty());
        let server_bin = testkit::bench_server();
        if !server_bin.is_file() {
            fail(&format!(
                "{} is missing: build it with `cargo build --release --bins` (scripts/bench-servers does)",
                server_bin.display()
            ));
        }
        if let Some(tool) = testkit::redis::missing_tool() {
            fail(&format!(
                "`{tool}` is not on PATH: install Debian's redis-server package \
                 (apt-get install -y redis-server; scripts/bench-servers does)"
            ));
        }
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Settings {
            records,
            cores,
            server_bin,
            log_level,
        }
    }

    /// The run's first lines: scale, binary, load, a stale build.
    pub fn print(&self) {
        println!(
            "onions servers benchmark (protocol {}): {} records{}, {} cores, server log level {}",
            onions::wire::PROTOCOL,
            self.records,
            scale_text(self.records),
            self.cores,
            self.log_level.as_deref().unwrap_or("default (info)")
        );
        println!("server binary: {}", self.server_bin.display());
        println!(
            "load average at start: {} (other work on the machine skews every figure)",
            process::load_average()
        );
        if let Some(newer) = testkit::newer_source(&self.server_bin) {
            println!(
                "WARNING: {} is newer than the server binary; run `cargo build --release --bins`",
                newer.display()
            );
        }
        println!();
    }
}

/// " (2^k)" for a power of two, else nothing.
pub fn scale_text(n: usize) -> String {
    if n.is_power_of_two() {
        format!(" (2^{})", n.trailing_zeros())
    } else {
        String::new()
    }
}

/// Prints `message` and exits with a failure status (only before any
/// process is started: exiting skips the guards).
pub fn fail(message: &str) -> ! {
    eprintln!("bench servers: {message}");
    std::process::exit(2)
}
