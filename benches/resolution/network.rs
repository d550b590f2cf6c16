//! The private Tor network on loopback (`scripts/tornet/start`), with the
//! Quorum's and the mirror's onion services forwarding to this run's
//! servers; stopped by `scripts/tornet/stop` (by the PIDs it recorded)
//! when dropped, and by the panic hook if the benchmark panics.

use crate::settings::Settings;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use testkit::process::Proc;
use testkit::tornet::parse_env;

/// How long the private network may take to be ready (its own limit,
/// TORNET_WAIT, is 120 s).
const TORNET_LIMIT: Duration = Duration::from_secs(300);

/// The private network's directory while it runs, for the panic hook.
static NETWORK: Mutex<Option<(PathBuf, PathBuf)>> = Mutex::new(None);

/// Stops the private network, if one runs, when the benchmark panics.
pub fn stop_network_on_panic() {
    if let Ok(mut network) = NETWORK.lock() {
        if let Some((scripts, dir)) = network.take() {
            stop_network(&scripts, &dir);
        }
    }
}

/// The private Tor network, stopped by `scripts/tornet/stop` when dropped.
pub struct Network {
    scripts: PathBuf,
    dir: PathBuf,
    env: BTreeMap<String, String>,
    /// How long the start script took, seconds.
    pub ready_secs: f64,
}

impl Network {
    /// Runs `scripts/tornet/start DIR` (bounded by [`TORNET_LIMIT`]), its
    /// Quorum and mirror services forwarding to the given ports.
    pub fn start(settings: &Settings, dir: &Path, quorum_port: u16, mirror_port: u16) -> Network {
        let started = Instant::now();
        *NETWORK.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((settings.scripts.clone(), dir.to_owned()));
        let mut network = Network {
            scripts: settings.scripts.clone(),
            dir: dir.to_owned(),
            env: BTreeMap::new(),
            ready_secs: 0.0,
        };
        let mut command = Command::new(settings.scripts.join("start"));
        command
            .arg(dir)
            .env("TORNET_BASE_PORT", settings.base_port.to_string())
            .env("TORNET_HTTP_PORT", settings.http_port.to_string())
            .env("TORNET_QUORUM_PORT", quorum_port.to_string())
            .env("TORNET_MIRROR_PORT", mirror_port.to_string())
            .env("TORNET_LIAR_PORT", mirror_port.to_string());
        let log = dir.with_extension("start.log");
        let proc = Proc::spawn(command, "scripts/tornet/start", &log);
        let output = proc.finish(TORNET_LIMIT);
        for line in output.lines().filter(|l| l.starts_with("tornet: ")) {
            println!("  {line}");
        }
        let text = std::fs::read_to_string(dir.join("env"))
            .unwrap_or_else(|e| panic!("{}/env: {e}", dir.display()));
        network.env = parse_env(&text).unwrap_or_else(|e| panic!("{}/env: {e}", dir.display()));
        network.ready_secs = started.elapsed().as_secs_f64();
        network
    }

    /// A value of `DIR/env`.
    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{}/env has no {key}", self.dir.display()))
    }

    /// The client tor's SOCKS port.
    pub fn socks(&self) -> SocketAddr {
        let text = self.get("TORNET_SOCKS");
        text.parse()
            .unwrap_or_else(|e| panic!("TORNET_SOCKS={text:?}: {e}"))
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if NETWORK
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some()
        {
            stop_network(&self.scripts, &self.dir);
        }
    }
}

/// `scripts/tornet/stop DIR`: by the PIDs in DIR/pids, bounded inside.
fn stop_network(scripts: &Path, dir: &Path) {
    let status = Command::new(scripts.join("stop"))
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!(
            "bench resolution: scripts/tornet/stop {} failed ({s})",
            dir.display()
        ),
        Err(e) => eprintln!("bench resolution: cannot run scripts/tornet/stop: {e}"),
    }
}
